//! Writing images as OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/...`).

use std::path::Path;

use serde_json::{Value, json};

use crate::image::{Blob, OCI_INDEX};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Writes `top` (an index or a manifest) and `blobs` into the layout at `dir`, tagging `top` as
/// `tag` in `index.json`. An existing layout is extended, so several images can share one.
pub fn write_layout<'a>(
    dir: &Path,
    top: &'a Blob,
    tag: &str,
    blobs: impl Iterator<Item = &'a Blob>,
) -> anyhow::Result<()> {
    let blob_dir = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blob_dir)?;
    std::fs::write(
        dir.join("oci-layout"),
        json!({"imageLayoutVersion": "1.0.0"}).to_string(),
    )?;
    for blob in blobs.chain(std::iter::once(top)) {
        let path = blob_dir.join(blob.hex());
        if !path.exists() {
            std::fs::write(path, &blob.bytes)?;
        }
    }

    let index_path = dir.join("index.json");
    let mut index: Value = match std::fs::read(&index_path) {
        Ok(bytes) => serde_json::from_slice(&bytes)?,
        Err(_) => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
    };
    let mut entry = top.descriptor();
    entry["annotations"] = json!({ REF_NAME: tag });
    let manifests = index["manifests"]
        .as_array_mut()
        .ok_or_else(|| anyhow::anyhow!("{} has no manifests array", index_path.display()))?;
    // A tag names one image: re-writing a tag replaces its entry.
    manifests.retain(|m| m["annotations"][REF_NAME] != tag);
    manifests.push(entry);
    std::fs::write(&index_path, serde_json::to_vec_pretty(&index)?)?;
    Ok(())
}
