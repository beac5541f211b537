//! Amazon ECR's control plane: registry hosts, login tokens, repositories and image listings.
//!
//! The registry protocol itself (manifests, blobs) goes through [`crate::Client`] like any other
//! registry; this module supplies what only the AWS API can: a password for the registry
//! ([`EcrCredentials`] plugs it into the client), and repositories, which ECR never creates on
//! push ([`Ecr::ensure_repository`]).
//!
//! ECR Public (`public.ecr.aws`) is recognised so that pulls from it go anonymous; pushing there
//! needs the separate `ecr-public` API and is out of scope.

mod convert;
mod credentials;
mod ensure;
mod error;
mod gated;
mod host;
mod images;
mod repository;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use base64::Engine as _;

use crate::gate::Gate;
use base64::engine::general_purpose::STANDARD;

pub use credentials::{EcrCredentials, TokenObserver};
pub use error::EcrError;
pub use host::{EcrHost, EcrKind, is_ecr_host, names_ecr, other_registry, resolve_registry};
pub use images::ImageDetail;
pub use repository::{
    Drift, Encryption, EnsureMode, RepositorySettings, RepositoryState, TagMutability,
};

/// The session name CloudTrail shows for calls made under an assumed role.
const SESSION_NAME: &str = "ecr-ferry";

/// How to reach AWS. Every field defaults to what the AWS CLI would do.
#[derive(Debug, Clone, Default)]
pub struct EcrOptions {
    /// Default: the SDK's region chain (`AWS_REGION`, the profile, IMDS).
    pub region: Option<String>,
    /// Assume this role (session name `ecr-ferry`) before any ECR call, for registries in other
    /// accounts.
    pub role_arn: Option<String>,
    /// Send ECR API calls here instead of AWS (tests, private endpoints). The SDK also honours
    /// `AWS_ENDPOINT_URL_ECR` by itself.
    pub endpoint_url: Option<String>,
    /// Static credentials (tests). Default: the SDK's chain (environment, profile, web
    /// identity/IRSA, EKS Pod Identity, IMDS).
    pub credentials: Option<aws_credential_types::Credentials>,
}

/// The ECR API, with one SDK client per region. Cheap to clone.
#[derive(Clone)]
pub struct Ecr {
    inner: Arc<Inner>,
    /// Lanes per (region, operation); share a client's gate with [`with_gate`](Self::with_gate).
    gate: Gate,
}

impl fmt::Debug for Ecr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ecr")
            .field("region", &self.default_region())
            .field("endpoint_url", &self.inner.endpoint_url)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: SdkConfig,
    endpoint_url: Option<String>,
    /// Keyed by (region, FIPS endpoint).
    clients: Mutex<HashMap<(String, bool), aws_sdk_ecr::Client>>,
}

impl Ecr {
    /// Loads the AWS configuration (nothing is called yet: credentials are resolved on the first
    /// API call, so a run that never needs ECR never needs AWS credentials).
    pub async fn new(options: EcrOptions) -> Result<Ecr, EcrError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = options.region.filter(|r| !r.trim().is_empty()) {
            let region = region.trim().to_string();
            if !host::is_region(&region) {
                return Err(EcrError::InvalidSetting {
                    setting: "region",
                    reason: format!("{region:?} is not an AWS region name"),
                });
            }
            loader = loader.region(Region::new(region));
        }
        if let Some(credentials) = options.credentials {
            loader = loader.credentials_provider(credentials);
        }
        let mut config = loader.load().await;
        if let Some(role_arn) = options.role_arn.filter(|r| !r.trim().is_empty()) {
            // The role is assumed with whatever the default chain found; STS keeps its own
            // endpoint (endpoint_url only redirects ECR).
            let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn.trim())
                .session_name(SESSION_NAME)
                .configure(&config)
                .build()
                .await;
            config = config
                .into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build();
        }
        Ok(Self::from_config(config, options.endpoint_url))
    }

    /// Uses an already loaded AWS configuration as is (the operator builds its own).
    pub fn from_config(config: SdkConfig, endpoint_url: Option<String>) -> Ecr {
        Ecr {
            inner: Arc::new(Inner {
                config,
                endpoint_url: endpoint_url.filter(|u| !u.trim().is_empty()),
                clients: Mutex::new(HashMap::new()),
            }),
            gate: Gate::default(),
        }
    }

    /// Sends ECR API calls through `gate` (e.g. [`crate::Client::gate`], so one set of
    /// observers sees registry and ECR API traffic alike).
    pub fn with_gate(mut self, gate: Gate) -> Ecr {
        self.gate = gate;
        self
    }

    /// The region AWS configuration resolved to, if any.
    pub fn default_region(&self) -> Option<String> {
        self.inner.config.region().map(|r| r.to_string())
    }

    /// The ECR API client for `region` (cached).
    pub fn client(&self, region: &str) -> aws_sdk_ecr::Client {
        self.client_for(region, false)
    }

    /// The client serving `host`'s registry: its region, FIPS endpoints for FIPS hosts.
    pub(crate) fn host_client(&self, host: &EcrHost) -> aws_sdk_ecr::Client {
        self.client_for(&host.region, host.kind == EcrKind::Fips)
    }

    fn client_for(&self, region: &str, fips: bool) -> aws_sdk_ecr::Client {
        let key = (region.to_string(), fips);
        let mut clients = match self.inner.clients.lock() {
            Ok(guard) => guard,
            // A panic elsewhere while holding the lock left nothing half-written: a map insert.
            Err(poisoned) => poisoned.into_inner(),
        };
        clients
            .entry(key)
            .or_insert_with(|| {
                let mut builder = aws_sdk_ecr::config::Builder::from(&self.inner.config)
                    .region(Region::new(region.to_string()));
                if fips {
                    builder = builder.use_fips(true);
                }
                if let Some(url) = &self.inner.endpoint_url {
                    builder = builder.endpoint_url(url);
                }
                aws_sdk_ecr::Client::from_conf(builder.build())
            })
            .clone()
    }

    fn region_or_default(&self, region: Option<&str>) -> Result<String, EcrError> {
        region
            .map(str::to_string)
            .filter(|r| !r.trim().is_empty())
            .or_else(|| self.default_region())
            .ok_or(EcrError::NoRegion)
    }

    /// The ECR registry a destination setting names: `registry` (an ECR host or an account id)
    /// in `region`, or without one the caller's own registry there (which asks ECR). The one
    /// resolver of `ferry copy/push/manifest --registry` and a mirror's `destination.registry`.
    pub async fn destination_host(
        &self,
        registry: Option<&str>,
        region: Option<&str>,
    ) -> Result<EcrHost, EcrError> {
        match registry {
            Some(registry) => resolve_registry(registry, region),
            None => self.default_registry(region).await,
        }
    }

    /// The caller's own private registry in `region` (default: the configured region), read
    /// from the `proxyEndpoint` GetAuthorizationToken answers with, which saves an STS call.
    pub async fn default_registry(&self, region: Option<&str>) -> Result<EcrHost, EcrError> {
        let region = self.region_or_default(region)?;
        let token = self
            .fetch_token(&self.client(&region), &region, &region)
            .await?;
        let endpoint = token
            .proxy_endpoint
            .as_deref()
            .ok_or_else(|| EcrError::Unexpected {
                operation: "GetAuthorizationToken",
                target: region.clone(),
                reason: "no proxyEndpoint in the answer".into(),
            })?;
        let host = endpoint
            .strip_prefix("https://")
            .unwrap_or(endpoint)
            .trim_end_matches('/');
        EcrHost::parse(host).ok_or_else(|| EcrError::Unexpected {
            operation: "GetAuthorizationToken",
            target: region,
            reason: format!("proxyEndpoint {endpoint:?} is not an ECR registry host"),
        })
    }

    /// A login for `host`'s registry: GetAuthorizationToken in the registry's region, decoded.
    /// The token is the caller's, valid for every registry it may access in that region (AWS
    /// deprecated asking for specific registry ids), so no registry id is sent.
    pub async fn authorization_token(&self, host: &EcrHost) -> Result<EcrToken, EcrError> {
        if host.is_public() {
            return Err(EcrError::Unsupported {
                what: "logging in with GetAuthorizationToken (ECR Public has its own API)".into(),
                registry: host.host(),
            });
        }
        self.fetch_token(&self.host_client(host), &host.region, &host.api_target())
            .await
    }

    async fn fetch_token(
        &self,
        client: &aws_sdk_ecr::Client,
        region: &str,
        target: &str,
    ) -> Result<EcrToken, EcrError> {
        const OP: &str = "GetAuthorizationToken";
        let output = self
            .gated(region, OP, client.get_authorization_token().send())
            .await
            .map_err(|e| EcrError::from_sdk(OP, target, e))?;
        let data = output
            .authorization_data()
            .first()
            .ok_or_else(|| EcrError::Unexpected {
                operation: OP,
                target: target.to_string(),
                reason: "no authorizationData in the answer".into(),
            })?;
        let encoded = data
            .authorization_token()
            .ok_or_else(|| EcrError::Unexpected {
                operation: OP,
                target: target.to_string(),
                reason: "no authorizationToken in the answer".into(),
            })?;
        // Remembered before anything can fail, so no later log line or error can show them.
        crate::secrets::remember(encoded);
        let (username, password) = decode_token(encoded).ok_or_else(|| EcrError::Unexpected {
            operation: OP,
            target: target.to_string(),
            reason: "the authorization token is not base64 of USER:PASSWORD".into(),
        })?;
        crate::secrets::remember(&password);
        Ok(EcrToken {
            username,
            password,
            expires_at: data
                .expires_at()
                .and_then(|at| SystemTime::try_from(*at).ok()),
            proxy_endpoint: data.proxy_endpoint().map(str::to_string),
        })
    }
}

/// `base64("AWS:<password>")` → ("AWS", password). The password itself may hold colons.
fn decode_token(encoded: &str) -> Option<(String, String)> {
    let bytes = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (username, password) = text.split_once(':')?;
    if username.is_empty() || password.is_empty() {
        return None;
    }
    Some((username.to_string(), password.to_string()))
}

/// A registry login from GetAuthorizationToken. `Debug` hides the password.
#[derive(Clone)]
pub struct EcrToken {
    /// Always `AWS` for ECR.
    pub username: String,
    pub password: String,
    pub expires_at: Option<SystemTime>,
    /// `https://<account>.dkr.ecr.<region>.amazonaws.com`
    pub proxy_endpoint: Option<String>,
}

impl fmt::Debug for EcrToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcrToken")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("proxy_endpoint", &self.proxy_endpoint)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::*;

    #[test]
    fn decodes_user_and_password_keeping_colons() {
        let encoded = STANDARD.encode("AWS:pass:with:colons");
        assert_eq!(
            decode_token(&encoded).unwrap(),
            ("AWS".into(), "pass:with:colons".into())
        );
        assert_eq!(decode_token("not base64!"), None);
        assert_eq!(decode_token(&STANDARD.encode("no-colon")), None);
        assert_eq!(decode_token(&STANDARD.encode("AWS:")), None);
    }

    #[test]
    fn token_debug_hides_the_password() {
        let token = EcrToken {
            username: "AWS".into(),
            password: "s3cret-password".into(),
            expires_at: None,
            proxy_endpoint: Some("https://123456789012.dkr.ecr.us-east-1.amazonaws.com".into()),
        };
        let shown = format!("{token:?} {token:#?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
