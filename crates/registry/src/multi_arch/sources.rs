//! The sources of a list, as the user names them, resolved to the children the list will hold.
//!
//! A source is a tag or digest in the target's repository (`amd64`, `sha256:…`), or a
//! reference elsewhere in the same registry (`other/app:arm64`, `host/other/app@sha256:…`). An
//! image manifest becomes one child, with the platform its config declares; a list becomes its
//! children, with the platforms its entries declare.

use std::collections::HashMap;

use futures::future::try_join_all;
use serde::Deserialize;

use super::error::{ListError, MissingSource};
use crate::client::{Client, Repository};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Manifest, Platform, descriptor_digest};
use crate::media_type;
use crate::reference::{Reference, named_registry};

/// buildx marks the attestation manifests it adds to an index with this annotation (and the
/// platform `unknown/unknown`).
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// One entry of the list to build.
#[derive(Debug, Clone)]
pub struct Child {
    /// The source it came from, as the user typed it.
    pub source: String,
    /// The repository holding it, when that is not the target's.
    pub from: Option<Reference>,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub platform: Platform,
    /// A buildx attestation (SBOM, provenance), not a runnable image.
    pub attestation: bool,
    /// The entry's annotations in the list it came from, kept when flattening.
    pub annotations: HashMap<String, String>,
}

/// A source resolved against the target: the full reference, and what was typed.
#[derive(Debug, Clone)]
pub struct Source {
    pub typed: String,
    pub reference: Reference,
}

impl Source {
    /// Parses `typed` relative to `target` (a reference to the list's repository).
    pub fn parse(typed: &str, target: &Reference) -> Result<Source> {
        let text = typed.trim();
        let reference = if let Ok(digest) = Digest::parse(text.trim_start_matches('@')) {
            target.with_digest(digest)
        } else if !text.contains(['/', ':', '@']) {
            target.with_tag(text)?
        } else if named_registry(text).is_some() {
            Reference::parse(text)?
        } else {
            Reference::parse(&format!("{}/{text}", target.registry()))?
        };
        if reference.api_host() != target.api_host() {
            return Err(ListError::OtherRegistry {
                source_ref: typed.to_string(),
                repository: reference.repository().to_string(),
                registry: reference.registry().to_string(),
                target_registry: target.registry().to_string(),
            }
            .into());
        }
        Ok(Source {
            typed: typed.to_string(),
            reference,
        })
    }

    fn is_in(&self, target: &Reference) -> bool {
        self.reference.repository() == target.repository()
    }
}

/// What fetching one source found.
pub enum Fetched {
    Found {
        source: Source,
        manifest: Box<Manifest>,
    },
    Missing(MissingSource),
}

/// Fetches every source at once; a missing one is reported, not an error, so that all of them
/// can be named together.
pub async fn fetch_all(client: &Client, sources: &[Source]) -> Result<Vec<Fetched>> {
    try_join_all(sources.iter().map(|source| async move {
        let repo = client.repository(&source.reference);
        Ok(
            match repo.fetch_manifest(source.reference.target()).await? {
                Some(manifest) => Fetched::Found {
                    source: source.clone(),
                    manifest: Box::new(manifest),
                },
                None => Fetched::Missing(MissingSource {
                    source: source.typed.clone(),
                    reason: match source.reference.digest() {
                        Some(_) => format!("no manifest with that digest in {}", repo.name()),
                        None => format!("no tag {} in {}", source.reference.target(), repo.name()),
                    },
                }),
            },
        )
    }))
    .await
}

/// The children one found source contributes, with `platform_override` applied.
pub async fn children(
    client: &Client,
    target: &Reference,
    source: &Source,
    manifest: &Manifest,
    platform_override: Option<&Platform>,
) -> Result<Vec<Child>> {
    let from = (!source.is_in(target)).then(|| source.reference.clone());
    if manifest.is_index() {
        if platform_override.is_some() {
            return Err(ListError::OverrideOnList {
                source_ref: source.typed.clone(),
            }
            .into());
        }
        let repo = client.repository(&source.reference);
        return try_join_all(
            manifest
                .children()
                .iter()
                .map(|d| entry_child(&repo, source, from.clone(), d)),
        )
        .await;
    }
    let platform = match platform_override {
        Some(platform) => platform.clone(),
        None => {
            let repo = client.repository(&source.reference);
            config_platform(&repo, manifest)
                .await?
                .map_err(|reason| ListError::NoPlatform {
                    source_ref: source.typed.clone(),
                    reason,
                })?
        }
    };
    Ok(vec![Child {
        source: source.typed.clone(),
        from,
        digest: manifest.digest().clone(),
        media_type: manifest.media_type().to_string(),
        size: manifest.size(),
        attestation: platform.is_unknown(),
        platform,
        annotations: HashMap::new(),
    }])
}

/// A child of a source list. Its entry's platform is taken as declared; an entry without one
/// (rare, but valid) is read from the child's config.
async fn entry_child(
    repo: &Repository,
    source: &Source,
    from: Option<Reference>,
    desc: &Descriptor,
) -> Result<Child> {
    let digest = descriptor_digest(desc)?;
    let annotations = desc.annotations().clone().unwrap_or_default();
    let platform = match Platform::of(desc) {
        Some(platform) => platform,
        None => {
            let child = repo.get_manifest(digest.as_str()).await?;
            config_platform(repo, &child)
                .await?
                .map_err(|reason| ListError::NoPlatform {
                    source_ref: format!("{} (child {digest})", source.typed),
                    reason,
                })?
        }
    };
    let attestation = platform.is_unknown()
        || annotations.get(REFERENCE_TYPE).map(String::as_str) == Some("attestation-manifest");
    Ok(Child {
        source: format!("{} ({})", source.typed, platform),
        from,
        digest,
        media_type: desc.media_type().to_string(),
        size: desc.size(),
        platform,
        attestation,
        annotations,
    })
}

/// The platform fields of an image config (OCI and Docker configs share them).
#[derive(Deserialize)]
struct ConfigPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    variant: Option<String>,
    #[serde(rename = "os.version")]
    os_version: Option<String>,
}

/// The platform an image manifest's config declares; `Err(reason)` when it declares none (an
/// artifact, or a config without `os`/`architecture`).
pub async fn config_platform(
    repo: &Repository,
    manifest: &Manifest,
) -> Result<std::result::Result<Platform, String>> {
    let Some(config) = manifest.config() else {
        return Ok(Err("it has no config".into()));
    };
    let config_type = config.media_type().to_string();
    if config_type != media_type::DOCKER_CONFIG && config_type != media_type::OCI_CONFIG {
        return Ok(Err(format!(
            "its config is {config_type}, not an image config"
        )));
    }
    let digest = descriptor_digest(config)?;
    let bytes = repo.get_blob_bytes(&digest, Some(config.size())).await?;
    let parsed: ConfigPlatform = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Config(format!(
            "the image config {digest} in {} is not valid JSON: {e}",
            repo.name()
        ))
    })?;
    if parsed.os.is_empty() || parsed.architecture.is_empty() {
        return Ok(Err("its config names no os and architecture".into()));
    }
    Ok(Ok(Platform {
        os: parsed.os,
        architecture: parsed.architecture,
        variant: parsed.variant.filter(|v| !v.is_empty()),
        os_version: parsed.os_version.filter(|v| !v.is_empty()),
    }))
}

/// Whether two platforms name the same thing (`linux/arm64` and `linux/arm64/v8` do).
pub fn same_platform(a: &Platform, b: &Platform) -> bool {
    a.matches(b) && b.matches(a)
}
