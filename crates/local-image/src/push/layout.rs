//! Pushing from an OCI image layout directory (`oci:DIR[:TAG]`): blobs and manifests are
//! already content-addressed files, so they go up as they are — digests unchanged, multi-platform
//! indexes included.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use futures::StreamExt;
use futures::future::{BoxFuture, try_join_all};

use super::Tally;
use crate::error::{Error, Result};
use ferry_registry::client::Repository;
use ferry_registry::copy::{BlobOutcome, Progress};
use ferry_registry::digest::Digest;
use ferry_registry::manifest::{Descriptor, Manifest, descriptor_digest};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Reads `index.json` and returns the manifest `tag` names (or the only one).
pub(crate) async fn select(dir: &Path, tag: Option<&str>) -> Result<Manifest> {
    let index_path = dir.join("index.json");
    let raw = tokio::fs::read(&index_path).await.map_err(|e| {
        Error::Config(format!(
            "{} is not an OCI image layout: cannot read {}: {e}",
            dir.display(),
            index_path.display()
        ))
    })?;
    let index = Manifest::from_raw(raw.into(), Some(ferry_registry::media_type::OCI_INDEX))?;
    let chosen = match tag {
        Some(tag) => index.children().iter().find(|d| ref_name(d) == Some(tag)),
        None if index.children().len() == 1 => index.children().first(),
        None => None,
    };
    let Some(desc) = chosen else {
        let names: Vec<&str> = index.children().iter().filter_map(ref_name).collect();
        return Err(Error::Config(format!(
            "{}: {} (the layout names: {})",
            dir.display(),
            match tag {
                Some(tag) => format!("no image tagged {tag:?}"),
                None => "holds several images; name one as oci:DIR:TAG".to_string(),
            },
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    };
    read_manifest(dir, desc).await
}

fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME))
        .map(String::as_str)
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs")
        .join(digest.algorithm())
        .join(digest.hex())
}

async fn read_manifest(dir: &Path, desc: &Descriptor) -> Result<Manifest> {
    let digest = descriptor_digest(desc)?;
    let path = blob_path(dir, &digest);
    let raw = tokio::fs::read(&path)
        .await
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    let manifest = Manifest::from_raw(raw.into(), Some(desc.media_type().as_ref()))?;
    if manifest.digest() != &digest {
        return Err(ferry_registry::digest::DigestError::Mismatch {
            expected: digest,
            actual: manifest.digest().clone(),
        }
        .into());
    }
    Ok(manifest)
}

/// Pushes everything `manifest` references (children by digest, blobs), not `manifest` itself.
pub(crate) fn push_contents<'a>(
    dir: &'a Path,
    manifest: &'a Manifest,
    dst: &'a Repository,
    tally: &'a Tally,
    progress: &'a Option<Arc<dyn Progress>>,
) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        if manifest.is_index() {
            try_join_all(manifest.children().iter().map(|desc| async move {
                let child = read_manifest(dir, desc).await?;
                if dst.head_manifest(child.digest().as_str()).await?.is_none() {
                    push_contents(dir, &child, dst, tally, progress).await?;
                    dst.put_manifest(child.digest().as_str(), &child).await?;
                }
                Ok::<_, Error>(())
            }))
            .await?;
        } else {
            try_join_all(manifest.blobs().into_iter().map(|desc| async move {
                let digest = descriptor_digest(desc)?;
                push_file(dir, &digest, desc.size(), dst, tally, progress).await
            }))
            .await?;
        }
        Ok(())
    })
}

async fn push_file(
    dir: &Path,
    digest: &Digest,
    size: u64,
    dst: &Repository,
    tally: &Tally,
    progress: &Option<Arc<dyn Progress>>,
) -> Result<()> {
    if dst.head_blob(digest).await?.is_some() {
        tally.skipped(size);
        if let Some(progress) = progress {
            progress.blob_finished(digest, size, BlobOutcome::Skipped);
        }
        return Ok(());
    }
    let path = blob_path(dir, digest);
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    let location = dst.start_upload().await?;
    if let Some(progress) = progress {
        progress.blob_started(digest, size);
    }
    let shown = progress.clone().map(|p| (p, digest.clone()));
    let stream = tokio_util::io::ReaderStream::new(file).inspect(move |chunk| {
        if let (Some((progress, digest)), Ok(chunk)) = (&shown, chunk) {
            progress.blob_advanced(digest, chunk.len() as u64);
        }
    });
    // The registry checks the bytes against the digest in the PUT.
    dst.finish_upload(location, digest, size, reqwest::Body::wrap_stream(stream))
        .await?;
    tally.uploaded(size);
    if let Some(progress) = progress {
        progress.blob_finished(digest, size, BlobOutcome::Uploaded);
    }
    Ok(())
}
