//! A mirror's source credentials: the `kubernetes.io/dockerconfigjson` (or legacy `dockercfg`)
//! Secret its spec names, read from its own namespace at every reconcile so a rotated Secret is
//! used at once. Credential helpers named in a Secret are refused: a tenant's Secret must never
//! make the operator run a program.

use std::sync::Arc;

use ferry_registry::Client;
use ferry_registry::auth::{
    Anonymous, ChainCredentials, CredentialProvider, DockerConfig, DockerConfigCredentials,
    HelperPolicy,
};
use ferry_registry::ecr::EcrCredentials;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::error::{Error, Result};

/// The keys a docker config Secret keeps its config under, newest form first.
const KEYS: [&str; 2] = [".dockerconfigjson", ".dockercfg"];

/// A Secret's docker config and the `resourceVersion` it was read at.
pub struct SourceSecret {
    pub config: DockerConfig,
    pub version: Option<String>,
}

/// The docker config of Secret `namespace/name`.
pub async fn read_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<SourceSecret> {
    let origin = format!("Secret {namespace}/{name}");
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|e| Error::Credentials(format!("{origin}: cannot read it: {e}")))?
        .ok_or_else(|| Error::Credentials(format!("{origin} does not exist")))?;
    let version = secret.metadata.resource_version;
    let data = secret.data.unwrap_or_default();
    let Some(bytes) = KEYS.iter().find_map(|k| data.get(*k)) else {
        return Err(Error::Credentials(format!(
            "{origin} has neither a .dockerconfigjson nor a .dockercfg key"
        )));
    };
    let config = DockerConfig::from_slice(&bytes.0, origin.clone(), HelperPolicy::Refuse)
        .map_err(|e| Error::Credentials(e.to_string()))?;
    Ok(SourceSecret { config, version })
}

/// The client one mirror syncs with: its Secret's credentials for the source, then ECR's for
/// the destination, on the shared client's connections, gate and observers.
pub fn tenant_client(
    base: &Client,
    secret: Option<DockerConfig>,
    ecr: Option<Arc<EcrCredentials>>,
) -> Client {
    let mut providers: Vec<Arc<dyn CredentialProvider>> = Vec::new();
    if let Some(config) = secret {
        providers.push(Arc::new(DockerConfigCredentials::from_config(config)));
    }
    if let Some(ecr) = ecr {
        providers.push(ecr);
    }
    if providers.is_empty() {
        // Never the operator's own docker config: a mirror without a Secret pulls anonymously.
        return base.with_credentials(Arc::new(Anonymous));
    }
    base.with_credentials(Arc::new(ChainCredentials::new(providers)))
}
