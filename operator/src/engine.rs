//! The one copy engine every mirror of the process shares: one registry client (one connection
//! pool, one request gate, one metrics observer), one ECR API handle per role (the STS session
//! and authorization token are worth keeping), one transfer budget, and a cap on syncs running
//! at once so a burst of mirrors cannot exhaust memory or the registries' patience.

use std::collections::HashMap;
use std::sync::Arc;

use ferry_registry::Client;
use ferry_registry::auth::DockerConfig;
use ferry_registry::copy::Budget;
use ferry_registry::ecr::{Ecr, EcrCredentials, EcrOptions, names_ecr};
use ferry_registry::mirror::{EcrImageMirrorSpec, SyncEngine, WithoutSecret, tenant_client};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// How AWS is reached for ECR destinations.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// Default: the SDK's region chain.
    pub region: Option<String>,
    /// Send ECR API calls here (private endpoints, tests).
    pub endpoint_url: Option<String>,
    /// Static credentials (tests); default the SDK's chain (IRSA, Pod Identity, …).
    pub credentials: Option<aws_credential_types::Credentials>,
}

/// One role's ECR API handle and registry logins.
type RoleAccess = (Ecr, Arc<EcrCredentials>);

#[derive(Clone)]
pub struct Engine {
    base: Client,
    budget: Budget,
    aws: AwsSettings,
    /// By role ARN (`None`: the operator's own identity), with its registry logins: shared by
    /// every mirror of the role, so a 12-hour token is fetched once, not once per sync.
    ecrs: Arc<Mutex<HashMap<Option<String>, RoleAccess>>>,
    syncs: Arc<Semaphore>,
    /// Cancelled when the shutdown grace period is over: running syncs stop moving tags.
    pub cancel: CancellationToken,
}

impl Engine {
    pub fn new(base: Client, transfers: usize, max_syncs: usize, aws: AwsSettings) -> Engine {
        Engine {
            base,
            budget: Budget::new(transfers.max(1)),
            aws,
            ecrs: Arc::default(),
            syncs: Arc::new(Semaphore::new(max_syncs.max(1))),
            cancel: CancellationToken::new(),
        }
    }

    /// Waits for a sync slot; hold the permit for the duration of the sync.
    pub async fn slot(&self) -> Result<OwnedSemaphorePermit> {
        self.syncs
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Object("the sync slots are closed".into()))
    }

    /// What `spec` syncs with: the shared parts, its Secret's credentials and, for an ECR
    /// destination, the ECR handle of its role.
    pub async fn for_mirror(
        &self,
        spec: &EcrImageMirrorSpec,
        secret: Option<DockerConfig>,
    ) -> Result<SyncEngine> {
        let needs_aws = spec.destination.registry.as_deref().is_none_or(names_ecr);
        let (ecr, logins) = if needs_aws {
            let (ecr, logins) = self.ecr(spec.destination.role_arn.clone()).await?;
            (Some(ecr), Some(logins))
        } else {
            (None, None)
        };
        Ok(SyncEngine {
            // Never the operator's own docker config: a mirror without a Secret pulls anonymously.
            client: tenant_client(&self.base, secret, WithoutSecret::Anonymous, logins),
            ecr,
            budget: self.budget.clone(),
            cancel: self.cancel.clone(),
            dry_run: false,
        })
    }

    async fn ecr(&self, role_arn: Option<String>) -> Result<RoleAccess> {
        // Held across the set-up so concurrent mirrors of a new role create one session.
        let mut ecrs = self.ecrs.lock().await;
        if let Some(found) = ecrs.get(&role_arn) {
            return Ok(found.clone());
        }
        let ecr = Ecr::new(EcrOptions {
            region: self.aws.region.clone(),
            role_arn: role_arn.clone(),
            endpoint_url: self.aws.endpoint_url.clone(),
            credentials: self.aws.credentials.clone(),
        })
        .await
        .map_err(|e| {
            let role = role_arn.as_deref().unwrap_or("the operator's own identity");
            Error::Aws(format!("cannot set up ECR access as {role}: {e}"))
        })?
        // The client's gate: ECR API calls share its rate lanes and reach the metrics observer.
        .with_gate(self.base.gate().clone());
        let found = (ecr.clone(), Arc::new(EcrCredentials::new(ecr)));
        ecrs.insert(role_arn, found.clone());
        Ok(found)
    }
}
