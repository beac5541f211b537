//! Whose credentials a mirror's sync uses. A mirror names its source credentials as a docker
//! config Secret (`spec.source.credentialsSecretRef`); the operator reads it from the
//! Kubernetes API, `ferry mirror -f` from `--secrets-dir`. Either way the bytes are parsed
//! here, with credential helpers refused — a tenant's Secret must never make ferry run a
//! program — and chained before the destination's ECR credentials on the shared client, so
//! mirrors share connections, the gate and observers but never each other's credentials.

use std::sync::Arc;

use crate::Client;
use crate::auth::docker_config::DockerConfigError;
use crate::auth::{
    Anonymous, ChainCredentials, CredentialProvider, DockerConfig, DockerConfigCredentials,
    HelperPolicy,
};
use crate::ecr::EcrCredentials;

/// The keys a docker config Secret keeps its config under, newest form first
/// (`kubernetes.io/dockerconfigjson`, then the legacy `kubernetes.io/dockercfg`).
pub const SECRET_KEYS: [&str; 2] = [".dockerconfigjson", ".dockercfg"];

/// Parses a Secret's value (either key's form); `origin` names it in errors. Credential helpers
/// are refused.
pub fn secret_config(
    bytes: &[u8],
    origin: impl Into<String>,
) -> Result<DockerConfig, DockerConfigError> {
    DockerConfig::from_slice(bytes, origin, HelperPolicy::Refuse)
}

/// What a mirror without a Secret pulls its source with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithoutSecret {
    /// Nothing: the operator's own docker config must never serve a tenant's mirror.
    Anonymous,
    /// The user's docker config (`~/.docker/config.json`, its helpers included): `ferry
    /// mirror -f` runs as the user the mirror belongs to.
    UserDockerConfig,
}

/// The client one mirror syncs with: its Secret's credentials for the source (else
/// `without_secret`), then `ecr`'s for an ECR destination, on `base`'s connections.
pub fn tenant_client(
    base: &Client,
    secret: Option<DockerConfig>,
    without_secret: WithoutSecret,
    ecr: Option<Arc<EcrCredentials>>,
) -> Client {
    let mut providers: Vec<Arc<dyn CredentialProvider>> = Vec::new();
    match (secret, without_secret) {
        (Some(config), _) => providers.push(Arc::new(DockerConfigCredentials::from_config(config))),
        (None, WithoutSecret::UserDockerConfig) => {
            providers.push(Arc::new(DockerConfigCredentials::new()));
        }
        (None, WithoutSecret::Anonymous) => {}
    }
    if let Some(ecr) = ecr {
        providers.push(ecr);
    }
    if providers.is_empty() {
        return base.with_credentials(Arc::new(Anonymous));
    }
    base.with_credentials(Arc::new(ChainCredentials::new(providers)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_naming_a_credential_helper_is_refused_with_its_origin() {
        let secret = br#"{"auths": {}, "credHelpers": {"registry.example": "evil"}}"#;
        let error = secret_config(secret, "Secret team-a/pull")
            .unwrap_err()
            .to_string();
        assert!(error.contains("Secret team-a/pull"), "{error}");
        let plain = br#"{"auths": {"registry.example": {"auth": "dTpw"}}}"#;
        assert!(secret_config(plain, "Secret team-a/pull").is_ok());
    }
}
