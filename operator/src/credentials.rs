//! A mirror's source credentials: the `kubernetes.io/dockerconfigjson` (or legacy `dockercfg`)
//! Secret its spec names, in its own namespace. Read from the controller's watch of Secrets
//! (a rotated Secret is there, and triggers its mirrors, as soon as the API server says so);
//! with a GET only when the watch does not hold it — not listed yet, or not visible to the
//! watch (RBAC that grants `get` on named Secrets only). It is parsed (credential helpers
//! refused) and chained before ECR's by the shared crate's `mirror::credentials`.

use ferry_registry::auth::DockerConfig;
use ferry_registry::mirror::credentials::{SECRET_KEYS, secret_config};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::error::{Error, Result};

/// A Secret's docker config and the `resourceVersion` it was read at.
pub struct SourceSecret {
    pub config: DockerConfig,
    pub version: Option<String>,
}

/// The docker config of Secret `namespace/name`, from `watched` if it holds it.
pub async fn read_secret(
    client: &kube::Client,
    watched: &Store<Secret>,
    namespace: &str,
    name: &str,
) -> Result<SourceSecret> {
    let origin = format!("Secret {namespace}/{name}");
    let secret = match watched.get(&ObjectRef::new(name).within(namespace)) {
        Some(secret) => secret,
        None => Arc::new(
            Api::<Secret>::namespaced(client.clone(), namespace)
                .get_opt(name)
                .await
                .map_err(|e| Error::Credentials(format!("{origin}: cannot read it: {e}")))?
                .ok_or_else(|| Error::Credentials(format!("{origin} does not exist")))?,
        ),
    };
    let version = secret.metadata.resource_version.clone();
    let data = secret.data.clone().unwrap_or_default();
    let Some(bytes) = SECRET_KEYS.iter().find_map(|k| data.get(*k)) else {
        return Err(Error::Credentials(format!(
            "{origin} has neither a .dockerconfigjson nor a .dockercfg key"
        )));
    };
    let config =
        secret_config(&bytes.0, origin.clone()).map_err(|e| Error::Credentials(e.to_string()))?;
    Ok(SourceSecret { config, version })
}

/// What the watch keeps of a Secret: a docker config's data, nothing of any other type (a
/// cluster's Secrets include Helm releases and certificates the operator has no use for), and
/// no annotations or managed fields (`kubectl apply` copies the whole Secret into one).
pub fn keep_what_matters(secret: &mut Secret) {
    let docker_config = matches!(
        secret.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson" | "kubernetes.io/dockercfg")
    );
    if !docker_config {
        secret.data = None;
    }
    secret.string_data = None;
    secret.metadata.annotations = None;
    secret.metadata.managed_fields = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(type_: &str) -> Secret {
        let mut secret = Secret {
            type_: Some(type_.into()),
            data: Some([(".dockerconfigjson".to_string(), Default::default())].into()),
            ..Secret::default()
        };
        secret.metadata.annotations = Some([("a".to_string(), "b".to_string())].into());
        secret
    }

    #[test]
    fn the_watch_keeps_docker_configs_and_drops_other_secrets_data() {
        let mut docker = secret("kubernetes.io/dockerconfigjson");
        keep_what_matters(&mut docker);
        assert!(docker.data.is_some());
        assert!(docker.metadata.annotations.is_none());
        let mut release = secret("helm.sh/release.v1");
        keep_what_matters(&mut release);
        assert!(release.data.is_none());
    }
}
