//! ECR API calls through the request gate: one lane per (region, operation), limited to the
//! operation's published per-region rate quota (see `gate::Action::default_limits`). Every
//! call the crate makes goes through here, so the operator's many mirrors share one budget
//! per account and region.

use std::future::Future;

use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};

use super::Ecr;
use crate::gate::{Action, Outcome, Permit};

impl Ecr {
    /// Runs `call` (an SDK `send()`) once the lane `ecr.<region>`/`operation` admits it. The
    /// SDK's own retries happen inside `call`; the gate sees the final answer.
    pub(crate) async fn gated<T, E, R>(
        &self,
        region: &str,
        operation: &'static str,
        call: impl Future<Output = Result<T, SdkError<E, R>>>,
    ) -> Result<T, SdkError<E, R>>
    where
        E: ProvideErrorMetadata,
    {
        let permit = self.permit(region, operation).await;
        let result = call.await;
        finish(permit, &result);
        result
    }

    async fn permit(&self, region: &str, operation: &'static str) -> Permit {
        self.gate
            .acquire(&format!("ecr.{region}"), Action::Ecr(operation))
            .await
    }
}

fn finish<T, E: ProvideErrorMetadata, R>(permit: Permit, result: &Result<T, SdkError<E, R>>) {
    let (status, throttled) = match result {
        Ok(_) => (200, false),
        Err(SdkError::ServiceError(e)) => {
            let code = e.err().code().unwrap_or_default();
            let throttled = code.contains("Throttl") || code.contains("TooManyRequests");
            // The SDK keeps the status in the raw response, whose type is generic here; what
            // the gate needs is only throttled or not.
            (if throttled { 429 } else { 400 }, throttled)
        }
        Err(_) => (0, false),
    };
    permit.finish(
        &Outcome {
            method: "POST",
            status,
            throttled,
            ..Outcome::default()
        },
        &[],
    );
}
