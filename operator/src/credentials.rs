//! A mirror's source credentials: the `kubernetes.io/dockerconfigjson` (or legacy `dockercfg`)
//! Secret its spec names, read from its own namespace at every reconcile so a rotated Secret is
//! used at once. It is parsed (credential helpers refused) and chained before ECR's by the
//! shared crate's `mirror::credentials`.

use ferry_registry::auth::DockerConfig;
use ferry_registry::mirror::credentials::{SECRET_KEYS, secret_config};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::error::{Error, Result};

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
    let Some(bytes) = SECRET_KEYS.iter().find_map(|k| data.get(*k)) else {
        return Err(Error::Credentials(format!(
            "{origin} has neither a .dockerconfigjson nor a .dockercfg key"
        )));
    };
    let config =
        secret_config(&bytes.0, origin.clone()).map_err(|e| Error::Credentials(e.to_string()))?;
    Ok(SourceSecret { config, version })
}
