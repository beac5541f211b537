//! Pushing the layers of an exported image (a `docker save` tar, from the Docker Engine or a
//! file) in one pass over the tar: each layer is compressed as it is read and streamed to the
//! registry, so nothing but a chunk is ever held and no temp file is written.
//!
//! A classic archive names a layer `<v1 id>/layer.tar` and lists the order only in its last
//! file, `manifest.json`; so blobs are collected by path and the manifest is assembled at the
//! end ([`super::build_manifest`]).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_stream_shim::ReceiverStream;

use super::cache::{CachedBlob, PushCache};
use super::compress::{Compression, sniff, stream_layer};
use crate::client::Repository;
use crate::docker_archive::{ArchiveEntry, ArchiveError, ArchiveReader};
use crate::error::{Error, Result};

/// What a pass over an archive left: every JSON file by path, and every blob by path.
#[derive(Default)]
pub(crate) struct Collected {
    pub jsons: HashMap<String, Vec<u8>>,
    pub blobs: HashMap<String, PushedBlob>,
    /// Archive paths that are links to other entries.
    pub links: HashMap<String, String>,
}

impl Collected {
    /// The blob at `path`, following links.
    pub fn blob(&self, path: &str) -> Option<&PushedBlob> {
        let mut path = path;
        for _ in 0..8 {
            if let Some(blob) = self.blobs.get(path) {
                return Some(blob);
            }
            path = self.links.get(path)?;
        }
        None
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PushedBlob {
    pub blob: CachedBlob,
    /// False when the registry had it already (known from the cache) and it was not sent.
    pub uploaded: bool,
}

/// The cache key of a layer: what identifies it in an archive before its data is read.
fn layer_key(path: &str, compression: Compression) -> Option<String> {
    let id = if let Some(hex) = path.strip_prefix("blobs/sha256/") {
        format!("diff:{hex}")
    } else if let Some(v1) = path.strip_suffix("/layer.tar") {
        format!("v1:{v1}")
    } else {
        return None;
    };
    Some(format!("{id}|{}", compression.as_str()))
}

/// Reads the archive from `input` (blocking; run on a blocking thread) and pushes every layer
/// that the cache does not show to be at `dst` already.
pub(crate) fn push_layers(
    input: impl Read + Send,
    dst: &Repository,
    compression: Compression,
    cache: &PushCache,
    handle: &Handle,
) -> Result<Collected> {
    let mut collected = Collected::default();
    let mut failure: Option<Error> = None;
    let outcome = ArchiveReader::new(input).for_each(|entry| {
        let result = match entry {
            ArchiveEntry::Json { path, bytes } => {
                collected.jsons.insert(path, bytes);
                Ok(())
            }
            ArchiveEntry::Blob { path, reader, .. } => {
                push_one(&path, reader, dst, compression, cache, handle).map(|pushed| {
                    collected.blobs.insert(path, pushed);
                })
            }
            // A layer repeated within the image is stored once; the link names the first copy.
            ArchiveEntry::Link { path, target } => {
                collected.links.insert(path, target);
                Ok(())
            }
        };
        result.map_err(|e| {
            let message = e.to_string();
            failure = Some(e);
            ArchiveError::Io(io::Error::other(message))
        })
    });
    if let Some(error) = failure {
        return Err(error);
    }
    outcome.map_err(|e| Error::Other(e.to_string()))?;
    Ok(collected)
}

fn push_one(
    path: &str,
    reader: &mut dyn Read,
    dst: &Repository,
    compression: Compression,
    cache: &PushCache,
    handle: &Handle,
) -> Result<PushedBlob> {
    let key = layer_key(path, compression);
    if let Some(hit) = key.as_deref().and_then(|k| cache.layer(k))
        && handle.block_on(dst.head_blob(&hit.digest))?.is_some()
    {
        // The tar reader skips the unread rest of this entry by itself.
        return Ok(PushedBlob {
            blob: hit,
            uploaded: false,
        });
    }

    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let already = sniff(buffered.fill_buf().map_err(io_error)?);
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let body = reqwest::Body::wrap_stream(ReceiverStream::new(rx));
    let upload = {
        let dst = dst.clone();
        handle.spawn(async move {
            let location = dst.start_upload().await?;
            dst.patch_upload(location, body).await
        })
    };
    let streamed = stream_layer(
        &mut buffered,
        if already.is_some() {
            None
        } else {
            Some(compression)
        },
        tx,
    );
    let location = handle
        .block_on(upload)
        .map_err(|e| Error::Other(format!("layer upload task failed: {e}")))??;
    let streamed = streamed.map_err(io_error)?;
    handle.block_on(dst.commit_upload(location, &streamed.digest))?;

    let blob = CachedBlob {
        digest: streamed.digest,
        size: streamed.size,
        media_type: already
            .unwrap_or(compression.layer_media_type())
            .to_string(),
    };
    if already.is_none() {
        // What we read was the uncompressed layer: its digest is the diff_id, the identity a
        // newer (OCI-shaped) export names the layer by.
        let by_diff_id = format!(
            "diff:{}|{}",
            streamed.read_digest.hex(),
            compression.as_str()
        );
        cache.set_layer(by_diff_id, blob.clone());
    }
    if let Some(key) = key {
        cache.set_layer(key, blob.clone());
    }
    Ok(PushedBlob {
        blob,
        uploaded: true,
    })
}

fn io_error(e: io::Error) -> Error {
    Error::Other(format!("reading the image: {e}"))
}

/// A minimal `Stream` over a tokio mpsc receiver (tokio-stream's wrapper, without the crate).
mod tokio_stream_shim {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::sync::mpsc::Receiver;

    pub struct ReceiverStream<T>(Receiver<T>);

    impl<T> ReceiverStream<T> {
        pub fn new(rx: Receiver<T>) -> Self {
            Self(rx)
        }
    }

    impl<T> futures::Stream for ReceiverStream<T> {
        type Item = T;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
}
