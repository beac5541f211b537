//! Where a mirror writes: the destination registry and repository, resolved from the spec's
//! `destination` (an account id, an ECR host, none — the caller's own ECR registry — or, for
//! tests and non-ECR mirrors, any other registry host).

use super::spec::{DestinationSpec, EcrImageMirrorSpec};
use crate::digest::Digest;
use crate::ecr::{Ecr, EcrHost, other_registry};
use crate::error::{Error, Result};
use crate::reference::{Reference, ReferenceError};

/// A mirror's destination repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The registry host (`123456789012.dkr.ecr.eu-west-1.amazonaws.com`, `localhost:5000`).
    pub registry: String,
    /// The repository's name in it (`mirror/nginx`).
    pub repository: String,
    /// Set for an ECR registry: its repository is managed through the ECR API.
    pub ecr: Option<EcrHost>,
}

impl Destination {
    /// `registry/repository`, as `docker pull` takes it.
    pub fn uri(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The destination reference for `tag`.
    pub fn reference(&self, tag: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(&format!("{}:{tag}", self.uri()))
    }
}

/// Resolves the spec's destination. `source` gives the default repository name (its path at
/// the source, `library/nginx`).
pub async fn resolve(
    ecr: Option<&Ecr>,
    spec: &EcrImageMirrorSpec,
    source: &Reference,
) -> Result<Destination> {
    let wanted = &spec.destination;
    let repository = wanted
        .repository
        .clone()
        .unwrap_or_else(|| source.repository().to_string());
    if let Some(registry) = other_registry(wanted.registry.as_deref()) {
        return Ok(Destination {
            registry,
            repository,
            ecr: None,
        });
    }
    let Some(ecr) = ecr else {
        return Err(Error::Config(format!(
            "spec.destination.registry: {} is an ECR registry, and no AWS access was set up",
            wanted
                .registry
                .as_deref()
                .unwrap_or("the caller's own registry")
        )));
    };
    let region = wanted.region.clone().or_else(|| ecr.default_region());
    let host = ecr
        .destination_host(wanted.registry.as_deref(), region.as_deref())
        .await
        .map_err(|e| match wanted.registry {
            Some(_) => Error::Config(format!("spec.destination.registry: {e}")),
            None => e.into(),
        })?;
    Ok(Destination {
        registry: host.host(),
        repository,
        ecr: Some(host),
    })
}

/// A short fingerprint of the destination's spec: when it changes, the repository is ensured
/// again at the next sync instead of waiting for the periodic check.
pub fn settings_key(destination: &DestinationSpec) -> String {
    let text = serde_json::to_vec(destination).unwrap_or_default();
    let digest = Digest::sha256_of(&text).to_string();
    digest
        .trim_start_matches("sha256:")
        .chars()
        .take(16)
        .collect()
}
