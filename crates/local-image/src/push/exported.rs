//! An export whose manifests can go up as they are: the OCI layout the containerd image store
//! writes (Docker Engine with the containerd snapshotter). Its layers are the registry blobs
//! already (compressed, named by their digests), so pushing its own manifests keeps the local
//! image's digests — what `docker push` pushes and `docker images --digests` shows — and a
//! multi-platform image stays one.
//!
//! Which image: the `index.json` entry whose `io.containerd.image.name` is the name the image
//! was asked for, or the only entry. Anything short of "every blob it names went up as it is,
//! or is here whole" turns the export down, and the caller rebuilds a manifest from
//! `manifest.json` as for a classic export — this is also what becomes of the classic store's
//! OCI-shaped exports, whose layers are uncompressed tars that ferry compresses.
//!
//! The Engine leaves out content it does not hold (`docker pull` of a multi-platform image
//! fetches one platform's layers). Then, as `docker push` does, the platform `manifest.json`
//! names — the Engine's default — goes up alone instead of the index, and the report says
//! which platforms were left out.

use std::collections::HashMap;

use bytes::Bytes;
use futures::future::try_join_all;

use super::Ready;
use super::archive::Collected;
use crate::docker_archive::{SaveManifest, blob_digest, blob_path, normalize_path};
use crate::error::{Error, Result};
use ferry_registry::client::Repository;
use ferry_registry::digest::Digest;
use ferry_registry::manifest::{Descriptor, Manifest, Platform, descriptor_digest};
use ferry_registry::media_type::OCI_INDEX;
use ferry_registry::reference::Reference;

const IMAGE_NAME: &str = "io.containerd.image.name";
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// What goes up from an export, in order: blobs, then `children` by digest, then `top` by tag.
pub(super) struct Exported {
    pub top: Manifest,
    /// Child manifests of `top` (an index); empty for a single manifest.
    pub children: Vec<Manifest>,
    /// Blobs the archive reader held whole (configs, small JSON layers such as attestations),
    /// which went nowhere yet.
    pub json_blobs: Vec<(Digest, Bytes)>,
    /// Config and layer bytes of every image in it.
    pub size: u64,
    /// Set when `top` is one image of an index whose other platforms the export lacks.
    pub note: Option<String>,
}

/// The export's own manifests for `wanted` (the image as the user named it), if they can go up
/// as they are.
pub(super) fn select(collected: &Collected, wanted: Option<&str>) -> Option<Exported> {
    let raw = collected.jsons.get("index.json")?;
    let index = Manifest::from_raw(Bytes::copy_from_slice(raw), Some(OCI_INDEX)).ok()?;
    let top = manifest_at(collected, entry_for(index.children(), wanted)?)?;
    if !top.is_index() {
        let image = Image::check(collected, &top)?;
        return Some(Exported::single(top, image, None));
    }

    // Each image of the index, with what it needs if the export holds all of it.
    let images: Vec<(&Descriptor, Option<Manifest>, Option<Image>)> = top
        .children()
        .iter()
        .map(|desc| {
            let child = manifest_at(collected, desc).filter(|m| !m.is_index());
            let image = child.as_ref().and_then(|m| Image::check(collected, m));
            (desc, child, image)
        })
        .collect();
    if images.iter().all(|(_, _, image)| image.is_some()) {
        let (mut children, mut json_blobs, mut size) = (Vec::new(), HashMap::new(), 0);
        for (_, child, image) in images {
            if let (Some(child), Some(image)) = (child, image) {
                size += image.size;
                json_blobs.extend(image.json_blobs);
                children.push(child);
            }
        }
        return Some(Exported {
            top,
            children,
            json_blobs: json_blobs.into_iter().collect(),
            size,
            note: None,
        });
    }

    // The Engine's default platform, which `manifest.json` describes, alone. An attestation
    // goes with its image; only platforms are worth naming as left out.
    let left_out: Vec<String> = images
        .iter()
        .filter(|(desc, _, image)| image.is_none() && !is_attestation(desc))
        .map(|(desc, _, _)| platform_name(desc))
        .collect();
    let default = default_config(collected)?;
    let (desc, chosen, image) = images.into_iter().find(|(_, child, image)| {
        image.is_some()
            && child
                .as_ref()
                .and_then(|m| m.config())
                .and_then(|c| descriptor_digest(c).ok())
                .is_some_and(|c| c == default)
    })?;
    let missing = if left_out.is_empty() {
        "its attestations".to_string()
    } else {
        left_out.join(", ")
    };
    let note = format!(
        "the image is a multi-platform index ({}), but the Docker Engine holds no content for \
         {missing}: pushed its {} image alone, not the index",
        top.digest(),
        platform_name(desc)
    );
    Some(Exported::single(chosen?, image?, Some(note)))
}

impl Exported {
    fn single(top: Manifest, image: Image, note: Option<String>) -> Exported {
        Exported {
            top,
            children: Vec::new(),
            json_blobs: image.json_blobs.into_iter().collect(),
            size: image.size,
            note,
        }
    }
}

/// Pushes what an export's own manifests need beyond its layers (which are in): the blobs
/// held whole, then an index's images by digest. The top manifest is left for the tags.
pub(super) async fn push(dst: &Repository, exported: Exported) -> Result<Ready> {
    // Configs, mostly: like a classic export's config, not counted among the layers.
    try_join_all(
        exported
            .json_blobs
            .into_iter()
            .map(|(digest, bytes)| async move {
                if dst.head_blob(&digest).await?.is_none() {
                    dst.push_blob_bytes(&digest, bytes).await?;
                }
                Ok::<_, Error>(())
            }),
    )
    .await?;
    try_join_all(exported.children.iter().map(|child| async move {
        let digest = child.digest().as_str();
        if dst.head_manifest(digest).await?.is_none() {
            dst.put_manifest(digest, child).await?;
        }
        Ok::<_, Error>(())
    }))
    .await?;
    Ok(Ready {
        manifest: exported.top,
        size: exported.size,
        notes: exported.note.into_iter().collect(),
    })
}

/// The index entry for `wanted`: by the containerd image name the Engine writes, else the only
/// entry.
fn entry_for<'a>(entries: &'a [Descriptor], wanted: Option<&str>) -> Option<&'a Descriptor> {
    // The Engine names images in full, tag included: `docker.io/library/app:latest`.
    let named = wanted.and_then(|w| Reference::parse(w).ok()).map(|r| {
        match (r.tag(), r.digest()) {
            (None, None) => r.with_tag("latest").unwrap_or(r),
            _ => r,
        }
        .to_string()
    });
    if let Some(named) = named
        && let Some(found) = entries
            .iter()
            .find(|d| annotation(d, IMAGE_NAME) == Some(&named))
    {
        return Some(found);
    }
    match entries {
        [only] => Some(only),
        _ => None,
    }
}

fn annotation<'a>(d: &'a Descriptor, key: &str) -> Option<&'a str> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

fn is_attestation(d: &Descriptor) -> bool {
    annotation(d, REFERENCE_TYPE) == Some("attestation-manifest")
}

fn platform_name(d: &Descriptor) -> String {
    match Platform::of(d) {
        Some(platform) => platform.to_string(),
        None => format!("the image {}", d.digest().as_ref() as &str),
    }
}

/// The manifest `desc` names, held whole by the reader, if its bytes are what it claims.
fn manifest_at(collected: &Collected, desc: &Descriptor) -> Option<Manifest> {
    let digest = descriptor_digest(desc).ok()?;
    let raw = collected.jsons.get(&blob_path(&digest))?;
    let manifest = Manifest::from_raw(
        Bytes::copy_from_slice(raw),
        Some(desc.media_type().as_ref()),
    )
    .ok()?;
    (manifest.digest() == &digest).then_some(manifest)
}

/// The config digest of the image `manifest.json` describes (its first entry).
fn default_config(collected: &Collected) -> Option<Digest> {
    let entries: Vec<SaveManifest> =
        serde_json::from_slice(collected.jsons.get("manifest.json")?).ok()?;
    blob_digest(&normalize_path(&entries.first()?.config))
}

/// A single-platform manifest whose every blob is accounted for.
struct Image {
    size: u64,
    json_blobs: HashMap<Digest, Bytes>,
}

impl Image {
    /// Every blob `manifest` names went up unchanged (a layer ferry compressed is a different
    /// blob) or is held whole, with the right digest; `None` otherwise.
    fn check(collected: &Collected, manifest: &Manifest) -> Option<Image> {
        let mut image = Image {
            size: 0,
            json_blobs: HashMap::new(),
        };
        for desc in manifest.blobs() {
            let digest = descriptor_digest(desc).ok()?;
            let path = blob_path(&digest);
            image.size += desc.size();
            if let Some(pushed) = collected.blob(&path) {
                if pushed.compressed_here || pushed.blob.digest != digest {
                    return None;
                }
            } else {
                let bytes = collected.jsons.get(&path)?;
                if Digest::sha256_of(bytes) != digest {
                    return None;
                }
                image
                    .json_blobs
                    .insert(digest, Bytes::copy_from_slice(bytes));
            }
        }
        Some(image)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::push::archive::{Fate, PushedBlob};
    use crate::push::cache::CachedBlob;

    fn path(bytes: &[u8]) -> String {
        blob_path(&Digest::sha256_of(bytes))
    }

    /// An export of one image (config + one layer) under `names`, its layer pushed as it came
    /// (`compressed_here` false) or compressed by ferry.
    fn export(names: &[&str], compressed_here: bool) -> (Collected, Vec<u8>) {
        let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
        let layer = Digest::sha256_of(b"a gzip layer");
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": ferry_registry::media_type::OCI_MANIFEST,
            "config": {"mediaType": ferry_registry::media_type::OCI_CONFIG,
                       "digest": Digest::sha256_of(&config), "size": config.len()},
            "layers": [{"mediaType": ferry_registry::media_type::OCI_LAYER_GZIP,
                        "digest": layer, "size": 12}],
        }))
        .unwrap();
        let entries: Vec<_> = names
            .iter()
            .map(|name| {
                json!({"mediaType": ferry_registry::media_type::OCI_MANIFEST,
                       "digest": Digest::sha256_of(&manifest), "size": manifest.len(),
                       "annotations": {IMAGE_NAME: name}})
            })
            .collect();
        let index = json!({"schemaVersion": 2, "manifests": entries});
        let mut collected = Collected::default();
        collected
            .jsons
            .insert("index.json".into(), index.to_string().into_bytes());
        collected.jsons.insert(path(&config), config);
        collected.jsons.insert(path(&manifest), manifest.clone());
        let pushed = if compressed_here {
            Digest::sha256_of(b"what ferry made of it")
        } else {
            layer.clone()
        };
        collected.blobs.insert(
            blob_path(&layer),
            PushedBlob {
                blob: CachedBlob {
                    digest: pushed,
                    size: 12,
                    media_type: ferry_registry::media_type::OCI_LAYER_GZIP.into(),
                },
                fate: Fate::Uploaded,
                compressed_here,
            },
        );
        (collected, manifest)
    }

    #[test]
    fn an_export_whose_layers_went_up_as_they_are_keeps_its_manifest() {
        let (collected, manifest) = export(&["docker.io/library/app:1"], false);
        let exported = select(&collected, Some("app:1")).unwrap();
        assert_eq!(exported.top.raw().as_ref(), manifest.as_slice());
        assert!(exported.children.is_empty() && exported.note.is_none());
        // The config was held whole and still has to go up.
        assert_eq!(exported.json_blobs.len(), 1);
        assert_eq!(exported.size, 12 + 37);
    }

    #[test]
    fn layers_ferry_compressed_mean_a_rebuilt_manifest() {
        // The classic store's OCI-shaped export: uncompressed layers, compressed here.
        let (collected, _) = export(&["docker.io/library/app:1"], true);
        assert!(select(&collected, Some("app:1")).is_none());
    }

    #[test]
    fn the_entry_is_found_by_the_engines_name_or_is_the_only_one() {
        let (collected, _) = export(
            &["docker.io/library/app:1", "docker.io/library/app:2"],
            false,
        );
        assert!(select(&collected, Some("app:2")).is_some());
        assert!(select(&collected, Some("docker.io/library/app:1")).is_some());
        // Two entries and no name: nothing to go by (the caller falls back to manifest.json).
        assert!(select(&collected, None).is_none());
        assert!(select(&collected, Some("other:1")).is_none());
        let (collected, _) = export(&["docker.io/library/app:latest"], false);
        assert!(select(&collected, Some("app")).is_some());
        assert!(select(&collected, None).is_some());
    }
}
