//! `manifest inspect`: what a reference holds, as a table a person reads and JSON a program
//! reads — for a list, each child's platform, type, digest and size; for an image, its config,
//! platform and layers.

use futures::future::try_join_all;
use serde::Serialize;
use serde_json::Value;

use super::error::platform_label;
use super::sources::config_platform;
use crate::client::{Client, Repository};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Manifest, Platform, descriptor_digest};
use crate::reference::Reference;

#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// `registry/repository[:tag|@digest]` as inspected.
    pub reference: String,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    #[serde(flatten)]
    pub kind: InspectKind,
    /// The manifest exactly as the registry holds it.
    pub manifest: Value,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InspectKind {
    List {
        manifests: Vec<ListEntry>,
    },
    Image {
        config: Digest,
        config_size: u64,
        /// From the config; `None` for an artifact.
        platform: Option<String>,
        layers: Vec<Layer>,
        /// Config and layers: what a pull downloads.
        total_size: u64,
    },
}

/// One child of a list.
#[derive(Debug, Clone, Serialize)]
pub struct ListEntry {
    /// The source it came from (only when ferry just built the list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `os/arch[/variant]`, with ` (os.version)` when the entry declares one.
    pub platform: String,
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// A buildx attestation manifest (`unknown/unknown`), not a runnable image.
    pub attestation: bool,
    /// The child's layers, with `--verbose`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<Layer>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Layer {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// Inspects `reference`; `verbose` fetches every child of a list to show its layers.
pub async fn inspect(client: &Client, reference: &Reference, verbose: bool) -> Result<Inspection> {
    let repo = client.repository(reference);
    let manifest = repo.get_manifest(reference.target()).await?;
    if manifest.is_index() {
        let mut inspection = of_list(reference, &manifest)?;
        if verbose && let InspectKind::List { manifests } = &mut inspection.kind {
            let layers = try_join_all(manifests.iter().map(|entry| {
                let repo = repo.clone();
                async move {
                    let child = repo.get_manifest(entry.digest.as_str()).await?;
                    layers_of(&child)
                }
            }))
            .await?;
            for (entry, layers) in manifests.iter_mut().zip(layers) {
                entry.layers = Some(layers);
            }
        }
        return Ok(inspection);
    }
    of_image(&repo, reference, &manifest).await
}

/// A list's inspection from its own bytes: its entries say all the table needs.
pub fn of_list(reference: &Reference, list: &Manifest) -> Result<Inspection> {
    let manifests = list
        .children()
        .iter()
        .map(|d| {
            let platform = Platform::of(d);
            Ok(ListEntry {
                source: None,
                platform: platform.as_ref().map_or_else(|| "-".into(), platform_label),
                media_type: d.media_type().to_string(),
                digest: descriptor_digest(d)?,
                size: d.size(),
                attestation: platform.is_some_and(|p| p.is_unknown()),
                layers: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Inspection {
        reference: reference.to_string(),
        digest: list.digest().clone(),
        media_type: list.media_type().to_string(),
        size: list.size(),
        kind: InspectKind::List { manifests },
        manifest: raw_json(list)?,
    })
}

async fn of_image(
    repo: &Repository,
    reference: &Reference,
    image: &Manifest,
) -> Result<Inspection> {
    let config = image
        .config()
        .ok_or_else(|| Error::Other(format!("{reference} has no config")))?;
    let platform = config_platform(repo, image)
        .await?
        .ok()
        .map(|p| platform_label(&p));
    let layers = layers_of(image)?;
    let total_size = config.size() + layers.iter().map(|l| l.size).sum::<u64>();
    Ok(Inspection {
        reference: reference.to_string(),
        digest: image.digest().clone(),
        media_type: image.media_type().to_string(),
        size: image.size(),
        kind: InspectKind::Image {
            config: descriptor_digest(config)?,
            config_size: config.size(),
            platform,
            layers,
            total_size,
        },
        manifest: raw_json(image)?,
    })
}

fn layers_of(manifest: &Manifest) -> Result<Vec<Layer>> {
    manifest.layers().iter().map(layer).collect()
}

fn layer(d: &Descriptor) -> Result<Layer> {
    Ok(Layer {
        media_type: d.media_type().to_string(),
        digest: descriptor_digest(d)?,
        size: d.size(),
    })
}

fn raw_json(manifest: &Manifest) -> Result<Value> {
    serde_json::from_slice(manifest.raw())
        .map_err(|e| Error::Other(format!("the manifest is not valid JSON: {e}")))
}
