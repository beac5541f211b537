//! Registry authentication: where credentials come from, and how they become an
//! `Authorization` header (anonymous, Basic, or the Bearer token flow).
//!
//! Credentials are looked up per registry through a [`CredentialProvider`] every time a token
//! is fetched, so a long-lived [`Client`](crate::Client) picks up rotated credentials (an ECR
//! token refreshed every few hours, a rewritten `config.json`) without being rebuilt.

pub mod authorizer;
pub mod challenge;
pub mod credentials;
pub mod docker_config;
pub mod scope;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;
use tokio::sync::OnceCell;

pub use authorizer::Authorizer;
pub use credentials::Credentials;
pub use docker_config::{DockerConfig, HelperPolicy};
pub use scope::Scope;

use crate::error::Result;

/// A source of credentials for registries, consulted on demand.
pub trait CredentialProvider: Send + Sync + 'static {
    /// Credentials for `registry` (the name as in references: `docker.io`, `localhost:5000`,
    /// `123456789012.dkr.ecr.eu-west-1.amazonaws.com`), or `None` to go anonymous.
    fn credentials<'a>(&'a self, registry: &'a str) -> BoxFuture<'a, Result<Option<Credentials>>>;

    /// The registry rejected what [`credentials`](Self::credentials) returned. A provider that
    /// can fetch fresh ones (ECR) should do so on the next call; others ignore it.
    fn invalidate(&self, _registry: &str) {}
}

/// Credentials set explicitly, per registry; replace them at any time to rotate.
#[derive(Default)]
pub struct StaticCredentials {
    by_registry: RwLock<HashMap<String, Credentials>>,
}

impl StaticCredentials {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&self, registry: impl Into<String>, credentials: Credentials) {
        if let Ok(mut map) = self.by_registry.write() {
            map.insert(registry.into(), credentials);
        }
    }

    pub fn remove(&self, registry: &str) {
        if let Ok(mut map) = self.by_registry.write() {
            map.remove(registry);
        }
    }

    fn get(&self, registry: &str) -> Option<Credentials> {
        self.by_registry
            .read()
            .ok()
            .and_then(|map| map.get(registry).cloned())
    }
}

impl CredentialProvider for StaticCredentials {
    fn credentials<'a>(&'a self, registry: &'a str) -> BoxFuture<'a, Result<Option<Credentials>>> {
        Box::pin(async move { Ok(self.get(registry)) })
    }
}

/// Credentials from docker's `config.json` (`auths`, `credHelpers`, `credsStore`), read once,
/// on first use, so a run that never needs credentials never touches the file.
#[derive(Default)]
pub struct DockerConfigCredentials {
    config: OnceCell<Option<DockerConfig>>,
}

impl DockerConfigCredentials {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_config(config: DockerConfig) -> Self {
        Self {
            config: OnceCell::new_with(Some(Some(config))),
        }
    }
}

impl CredentialProvider for DockerConfigCredentials {
    fn credentials<'a>(&'a self, registry: &'a str) -> BoxFuture<'a, Result<Option<Credentials>>> {
        Box::pin(async move {
            let config = self
                .config
                .get_or_try_init(|| async { DockerConfig::load_default() })
                .await?;
            match config {
                Some(config) => Ok(config.credentials_for(registry).await?),
                None => Ok(None),
            }
        })
    }
}

/// Asks each provider in turn; the first that has credentials wins.
pub struct ChainCredentials {
    providers: Vec<Arc<dyn CredentialProvider>>,
}

impl ChainCredentials {
    pub fn new(providers: Vec<Arc<dyn CredentialProvider>>) -> Self {
        Self { providers }
    }
}

impl CredentialProvider for ChainCredentials {
    fn credentials<'a>(&'a self, registry: &'a str) -> BoxFuture<'a, Result<Option<Credentials>>> {
        Box::pin(async move {
            for provider in &self.providers {
                if let Some(found) = provider.credentials(registry).await? {
                    return Ok(Some(found));
                }
            }
            Ok(None)
        })
    }

    fn invalidate(&self, registry: &str) {
        for provider in &self.providers {
            provider.invalidate(registry);
        }
    }
}

/// No credentials anywhere: every registry is anonymous.
pub struct Anonymous;

impl CredentialProvider for Anonymous {
    fn credentials<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<Credentials>>> {
        Box::pin(async { Ok(None) })
    }
}
