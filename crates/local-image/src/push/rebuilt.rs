//! The manifest of a classic export (`docker save`, or the classic store's OCI-shaped one):
//! built here from `manifest.json`, the config and what each layer became when it was pushed
//! (compressed here, or as it came). Its digest is ferry's own, the same for the same image and
//! compression; the config — whose digest is the image ID — goes up unchanged.

use super::archive::{Collected, PushedBlob};
use super::cache::{self, PushCache};
use super::compress::Compression;
use super::{PushOptions, Ready};
use crate::docker_archive::{SaveManifest, normalize_path};
use crate::error::{Error, Result};
use ferry_registry::client::Repository;
use ferry_registry::digest::Digest;
use ferry_registry::manifest::Manifest;
use ferry_registry::media_type::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST,
};

/// Uploads the config of the image `manifest.json` lists under `wanted` (else its first) and
/// returns its manifest, every layer of which is in the repository already.
pub(super) async fn push_config_and_build(
    collected: &mut Collected,
    dst: &Repository,
    options: &PushOptions,
    wanted: Option<&str>,
    hash_input: bool,
) -> Result<Ready> {
    let entries: Vec<SaveManifest> = collected
        .jsons
        .get("manifest.json")
        .ok_or_else(|| {
            Error::Config(
                "the image archive has no manifest.json (is it a `docker save` tar?)".into(),
            )
        })
        .and_then(|bytes| {
            serde_json::from_slice(bytes)
                .map_err(|e| Error::Config(format!("the archive's manifest.json is invalid: {e}")))
        })?;
    let entry = pick_entry(&entries, wanted)?;
    let config = collected
        .jsons
        .get(&normalize_path(&entry.config))
        .ok_or_else(|| {
            Error::Config(format!(
                "the archive lacks the image config {}",
                entry.config
            ))
        })?;
    let config_digest = Digest::sha256_of(config);
    match collected.configs.remove(&config_digest) {
        Some(started) => started
            .await
            .map_err(|e| Error::Other(format!("the config upload failed: {e}")))??,
        None => {
            if dst.head_blob(&config_digest).await?.is_none() {
                dst.push_blob_bytes(&config_digest, config.clone().into())
                    .await?;
            }
        }
    }
    let pushed = entry
        .layers
        .iter()
        .map(|path| {
            collected.blob(&normalize_path(path)).ok_or_else(|| {
                Error::Config(format!(
                    "the archive's manifest.json names {path}, which it does not hold"
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if !hash_input {
        remember_diff_ids(&options.cache, config, &pushed, options.compression);
    }
    let layers: Vec<cache::CachedBlob> = pushed.into_iter().map(|p| p.blob.clone()).collect();
    build_manifest(
        &config_digest,
        config.len() as u64,
        &layers,
        options.compression,
    )
    .map(Ready::of)
}

/// Records what each uncompressed layer became under its `diff_id` (the config lists them in
/// layer order), the key an OCI-shaped export and later pushes know a layer by. Only for
/// exports whose layers the source verified against these `diff_id`s.
fn remember_diff_ids(
    cache: &PushCache,
    config: &[u8],
    layers: &[&PushedBlob],
    compression: Compression,
) {
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    #[derive(serde::Deserialize)]
    struct RootFs {
        diff_ids: Vec<Digest>,
    }
    let Ok(config) = serde_json::from_slice::<Config>(config) else {
        return;
    };
    if config.rootfs.diff_ids.len() != layers.len() {
        return;
    }
    for (diff_id, layer) in config.rootfs.diff_ids.iter().zip(layers) {
        // A layer the source held compressed is not the tar its diff_id names; one found in
        // the cache was recorded when it was compressed.
        if layer.compressed_here {
            cache.set_layer(
                super::archive::diff_id_key(diff_id, compression),
                layer.blob.clone(),
            );
        }
    }
}

fn pick_entry<'a>(entries: &'a [SaveManifest], wanted: Option<&str>) -> Result<&'a SaveManifest> {
    if let Some(name) = wanted
        && let Some(found) = entries
            .iter()
            .find(|e| e.repo_tags.iter().any(|t| t == name))
    {
        return Ok(found);
    }
    entries
        .first()
        .ok_or_else(|| Error::Config("the archive's manifest.json lists no image".into()))
}

/// A Docker v2 manifest when every layer is gzip (what `docker push` makes, readable
/// everywhere), else an OCI manifest.
fn build_manifest(
    config: &Digest,
    config_size: u64,
    layers: &[cache::CachedBlob],
    compression: Compression,
) -> Result<Manifest> {
    let docker = compression == Compression::Gzip
        && layers
            .iter()
            .all(|l| l.media_type == DOCKER_LAYER_GZIP || l.media_type == OCI_LAYER_GZIP);
    let layer_type = |l: &cache::CachedBlob| -> String {
        if docker {
            DOCKER_LAYER_GZIP.to_string()
        } else if l.media_type == DOCKER_LAYER_GZIP {
            OCI_LAYER_GZIP.to_string()
        } else {
            l.media_type.clone()
        }
    };
    let (media_type, config_type) = if docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG)
    } else {
        (OCI_MANIFEST, OCI_CONFIG)
    };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "size": config_size, "digest": config},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": layer_type(l), "size": l.size, "digest": l.digest,
        })).collect::<Vec<_>>(),
    });
    let raw = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Other(format!("cannot encode the manifest: {e}")))?;
    Ok(Manifest::from_raw(raw.into(), Some(media_type))?)
}
