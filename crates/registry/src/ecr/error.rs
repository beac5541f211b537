//! What can go wrong talking to the ECR API, each failure naming the operation, the registry
//! (and repository) and AWS's own error code, so "denied" reads differently from "missing".

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ecr::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

const NO_CREDENTIALS: &str = "no AWS credentials found";

#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    /// AWS answered with an error, e.g.
    /// `CreateRepository team/app in 123456789012/eu-west-1: AccessDeniedException: …`.
    #[error("{operation} {target}: {}", code_and_message(code.as_deref(), message))]
    Api {
        operation: &'static str,
        /// `repo in account/region`, or `account/region` for registry-wide calls.
        target: String,
        code: Option<String>,
        message: String,
    },

    /// The request got no answer from AWS (connection, timeout), or the SDK could not build it.
    #[error("{operation} {target}: {message}")]
    Transport {
        operation: &'static str,
        target: String,
        message: String,
    },

    #[error("{operation} {target}: {NO_CREDENTIALS}")]
    NoCredentials {
        operation: &'static str,
        target: String,
    },

    /// Credentials were found but could not be turned into usable ones (an assumed role that
    /// STS refused, a broken profile).
    #[error("{operation} {target}: cannot load AWS credentials: {message}")]
    Credentials {
        operation: &'static str,
        target: String,
        message: String,
    },

    #[error("no AWS region configured")]
    NoRegion,

    #[error("repository {repository} does not exist in {registry} (and creating it is turned off)")]
    RepositoryNotFound {
        repository: String,
        registry: String,
    },

    #[error("invalid ECR registry {input:?}: {reason}")]
    InvalidRegistry { input: String, reason: String },

    /// A repository setting that cannot be sent as given (bad JSON, incompatible options).
    #[error("invalid repository setting {setting}: {reason}")]
    InvalidSetting {
        setting: &'static str,
        reason: String,
    },

    #[error(
        "invalid tag mutability {input:?}: expected MUTABLE, IMMUTABLE, MUTABLE_WITH_EXCLUSION or \
         IMMUTABLE_WITH_EXCLUSION"
    )]
    InvalidTagMutability { input: String },

    /// AWS answered successfully but without something it always sends; never echoes secrets.
    #[error("{operation} {target}: unexpected answer from AWS: {reason}")]
    Unexpected {
        operation: &'static str,
        target: String,
        reason: String,
    },

    #[error("{what} is not supported for {registry}")]
    Unsupported { what: String, registry: String },
}

impl EcrError {
    /// AWS's error code (`RepositoryNotFoundException`, `AccessDeniedException`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            EcrError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Whether the same call may succeed later (throttling, AWS-side trouble, no answer). The
    /// SDK has already retried these a few times by then.
    pub fn is_retryable(&self) -> bool {
        match self {
            EcrError::Transport { .. } => true,
            EcrError::Api { code, .. } => matches!(
                code.as_deref(),
                Some(
                    "ThrottlingException"
                        | "TooManyRequestsException"
                        | "ServerException"
                        | "ServiceUnavailableException"
                )
            ),
            _ => false,
        }
    }

    pub(crate) fn from_sdk<E, R>(
        operation: &'static str,
        target: impl Into<String>,
        err: SdkError<E, R>,
    ) -> EcrError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let target = target.into();
        if let Some(service) = err.as_service_error() {
            return EcrError::Api {
                operation,
                target,
                code: service.code().map(str::to_string),
                message: service.message().unwrap_or_default().to_string(),
            };
        }
        if let SdkError::ResponseError(_) = &err {
            // An answer that was not AWS's (a proxy's error page, NotImplemented from a stand-in)
            // has no code to show; its status is in the error context.
            return EcrError::Transport {
                operation,
                target,
                message: DisplayErrorContext(&err).to_string(),
            };
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(current) = source {
            if let Some(credentials) = current.downcast_ref::<CredentialsError>() {
                return match credentials {
                    CredentialsError::CredentialsNotLoaded(_) => {
                        EcrError::NoCredentials { operation, target }
                    }
                    other => EcrError::Credentials {
                        operation,
                        target,
                        message: DisplayErrorContext(other).to_string(),
                    },
                };
            }
            source = current.source();
        }
        EcrError::Transport {
            operation,
            target,
            message: causes(&err),
        }
    }
}

/// The error and its causes as `dispatch failure: io error: …: Connection refused (os error
/// 111)`, each once. `DisplayErrorContext` says the same and then appends a Debug dump of the
/// whole error, which a one-line error message does not need; a registry's answer that was not
/// AWS's keeps it, since only that dump shows the status.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(error) = current {
        let text = error.to_string();
        if !text.is_empty() && !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = error.source();
    }
    parts.join(": ")
}

/// `AccessDeniedException: User … is not authorized`; AWS sometimes sends no message.
fn code_and_message(code: Option<&str>, message: &str) -> String {
    let code = code.unwrap_or("error");
    if message.is_empty() {
        code.to_string()
    } else {
        format!("{code}: {message}")
    }
}

/// `team/app in 123456789012/eu-west-1`.
pub(crate) fn repo_target(host: &super::EcrHost, repository: &str) -> String {
    format!("{repository} in {}", host.api_target())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_name_operation_target_and_code() {
        let err = EcrError::Api {
            operation: "CreateRepository",
            target: "team/app in 123456789012/eu-west-1".into(),
            code: Some("AccessDeniedException".into()),
            message: "User is not authorized".into(),
        };
        assert_eq!(
            err.to_string(),
            "CreateRepository team/app in 123456789012/eu-west-1: AccessDeniedException: User is \
             not authorized"
        );
        assert_eq!(err.code(), Some("AccessDeniedException"));
        assert!(!err.is_retryable());
    }

    #[test]
    fn missing_credentials_name_the_call_and_no_cli_setting() {
        let err = EcrError::NoCredentials {
            operation: "GetAuthorizationToken",
            target: "123456789012/eu-west-1".into(),
        };
        let text = err.to_string();
        assert_eq!(
            text,
            "GetAuthorizationToken 123456789012/eu-west-1: no AWS credentials found"
        );
    }
}
