//! Pushing the layers of an exported image (a `docker save` tar, from the Docker Engine or a
//! file) in one pass over the tar: each layer is compressed as it is read and streamed to the
//! registry, so no layer is ever held whole and no temp file is written. A layer's upload
//! finishes in the background while the next one is read ([`super::upload`]).
//!
//! A classic archive names a layer `<v1 id>/layer.tar` and lists the order only in its last
//! file, `manifest.json`; so blobs are collected by path and the manifest is assembled at the
//! end ([`super::build_manifest`]).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::buffers::BufferPool;
use super::cache::{CachedBlob, PushCache};
use super::compress::{Compression, sniff, stream_layer};
use super::hashing::Hasher;
use super::mount::{self, Presence};
use super::sessions::Sessions;
use super::upload::{Finished, Uploads};
use crate::docker_archive::{ArchiveEntry, ArchiveError, ArchiveReader};
use crate::error::{Error, Result};
use ferry_registry::client::Repository;
use ferry_registry::copy::{BlobOutcome, Progress};
use ferry_registry::digest::Digest;

/// What a pass over an archive left: every JSON file by path, and every blob by path.
#[derive(Default)]
pub(crate) struct Collected {
    pub jsons: HashMap<String, Vec<u8>>,
    pub blobs: HashMap<String, PushedBlob>,
    /// Archive paths that are links to other entries.
    pub links: HashMap<String, String>,
    /// Uploads of image configs started as soon as they were read ([`early_config`]).
    pub configs: HashMap<Digest, JoinHandle<Result<()>>>,
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
    pub fate: Fate,
    /// Compressed by this push from the uncompressed layer (what a `diff_id` names).
    pub compressed_here: bool,
}

/// How a blob got into the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Uploaded,
    /// The repository had it (the cache said what the layer becomes; a HEAD confirmed it).
    Present,
    /// Another repository of the registry had it and the registry linked it.
    Mounted,
}

/// What identifies a layer in an archive before its data is read: an OCI-shaped export's
/// `blobs/sha256/<diff_id>` or a classic archive's `<v1 id>/layer.tar`.
enum LayerName<'a> {
    Blob(Digest),
    V1(&'a str),
}

impl<'a> LayerName<'a> {
    fn of(path: &'a str) -> Option<Self> {
        if path.starts_with("blobs/") {
            crate::docker_archive::blob_digest(path).map(LayerName::Blob)
        } else {
            path.strip_suffix("/layer.tar").map(LayerName::V1)
        }
    }

    /// The cache key of the layer, compressed as `compression`.
    fn key(&self, compression: Compression) -> String {
        match self {
            LayerName::Blob(digest) => diff_id_key(digest, compression),
            LayerName::V1(id) => format!("v1:{id}|{}", compression.as_str()),
        }
    }

    /// The digest progress shows the layer by (a v1 id is a sha256 too).
    fn shown_as(&self) -> Option<Digest> {
        match self {
            LayerName::Blob(digest) => Some(digest.clone()),
            LayerName::V1(id) => Digest::parse(&format!("sha256:{id}")).ok(),
        }
    }
}

/// The cache key of an uncompressed layer by its `diff_id`.
pub(crate) fn diff_id_key(diff_id: &Digest, compression: Compression) -> String {
    format!("diff:{}|{}", diff_id.hex(), compression.as_str())
}

/// Where and how one pass over an archive pushes its layers.
pub(crate) struct Pass<'a> {
    pub dst: &'a Repository,
    pub compression: Compression,
    pub cache: &'a PushCache,
    pub handle: &'a Handle,
    /// Hash each uncompressed layer to learn its `diff_id`. The Docker Engine verifies every
    /// layer against its `diff_id` while it exports (a mismatch fails the export), and the
    /// caller maps layers to `diff_id`s from the config, so an engine export skips this second
    /// pass of hashing; a tar file from elsewhere gets it.
    pub hash_input: bool,
    pub progress: Option<&'a dyn Progress>,
    /// Upload sessions opened ahead ([`super::sessions`]).
    pub sessions: Option<&'a Sessions>,
}

/// Reads the archive from `input` (blocking; run on a blocking thread) and pushes every layer
/// that the cache does not show to be at `dst` (or mountable there) already.
pub(crate) fn push_layers(input: impl Read + Send, pass: Pass<'_>) -> Result<Collected> {
    let Pass {
        dst,
        compression,
        cache,
        handle,
        hash_input,
        progress,
        sessions,
    } = pass;
    let mut collected = Collected::default();
    let mut uploads = Uploads::new(handle, cache, compression, sessions);
    let layer = Layer {
        dst,
        compression,
        cache,
        handle,
        hash_input,
        pool: BufferPool::new(),
        progress,
    };
    let mut failure: Option<Error> = None;
    let outcome = ArchiveReader::new(input).for_each(|entry| {
        let result = match entry {
            ArchiveEntry::Json { path, bytes } => {
                if let Some(digest) = early_config(&path, &bytes) {
                    let (dst, config) = (dst.clone(), Bytes::from(bytes.clone()));
                    let asked = sessions.and_then(|s| s.config_head(&digest));
                    let task = handle.spawn(async move {
                        // The HEAD `Sessions` sent to warm a connection answers this too.
                        let present = match asked {
                            Some(head) => match head.await {
                                Ok(answer) => answer?,
                                Err(_) => dst.head_blob(&digest).await?,
                            },
                            None => dst.head_blob(&digest).await?,
                        };
                        if present.is_none() {
                            dst.push_blob_bytes(&digest, config).await?;
                        }
                        Ok(())
                    });
                    collected.configs.insert(Digest::sha256_of(&bytes), task);
                }
                collected.jsons.insert(path, bytes);
                Ok(())
            }
            ArchiveEntry::Blob { path, reader, size } => uploads
                .settle(&mut collected.blobs)
                .and_then(|()| layer.push(path.clone(), size, reader, &mut uploads))
                .map(|skipped| {
                    if let Some(pushed) = skipped {
                        collected.blobs.insert(path, pushed);
                    }
                }),
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
    // Every upload is finished (or failed) before anything refers to its blob.
    let finished = uploads.finish(&mut collected.blobs);
    if let Some(error) = failure {
        return Err(error);
    }
    outcome.map_err(|e| Error::Other(e.to_string()))?;
    finished?;
    Ok(collected)
}

/// The digest of a classic archive's image config, `<hex>.json` at the top whose content
/// hashes to `<hex>`: it goes up at once, beside the layer uploads, instead of after the last
/// layer (three round trips off the end of a push to a distant registry). Any other JSON waits
/// for `manifest.json` to say what it is.
fn early_config(path: &str, bytes: &[u8]) -> Option<Digest> {
    let hex = path.strip_suffix(".json")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digest = Digest::sha256_of(bytes);
    (digest.hex() == hex).then_some(digest)
}

/// Layers this large (uncompressed) are hashed on a thread of their own.
const BACKGROUND_HASH_FROM: u64 = 1024 * 1024;

/// What pushing a layer needs.
struct Layer<'a> {
    dst: &'a Repository,
    compression: Compression,
    cache: &'a PushCache,
    handle: &'a Handle,
    hash_input: bool,
    pool: Arc<BufferPool>,
    progress: Option<&'a dyn Progress>,
}

impl Layer<'_> {
    /// Pushes one layer: skipped or mounted if the cache knows what it becomes (returned now),
    /// else compressed and streamed to an upload that finishes in `uploads`.
    fn push(
        &self,
        path: String,
        size: u64,
        reader: &mut dyn Read,
        uploads: &mut Uploads<'_>,
    ) -> Result<Option<PushedBlob>> {
        let (dst, handle) = (self.dst, self.handle);
        let name = LayerName::of(&path);
        let key = name.as_ref().map(|n| n.key(self.compression));
        let shown = self
            .progress
            .zip(name.as_ref().and_then(LayerName::shown_as));
        if let Some(hit) = key.as_deref().and_then(|k| self.cache.layer(k)) {
            let fate = match handle.block_on(mount::ensure(dst, self.cache, &hit.digest))? {
                Presence::Present => Some(Fate::Present),
                Presence::Mounted => Some(Fate::Mounted),
                Presence::Absent => None,
            };
            if let Some(fate) = fate {
                if let Some((progress, id)) = &shown {
                    let outcome = match fate {
                        Fate::Mounted => BlobOutcome::Mounted,
                        _ => BlobOutcome::Skipped,
                    };
                    progress.blob_finished(id, size, outcome);
                }
                // The tar reader skips the unread rest of this entry by itself.
                return Ok(Some(PushedBlob {
                    blob: hit,
                    fate,
                    compressed_here: false,
                }));
            }
        }

        if let Some((progress, id)) = &shown {
            progress.blob_started(id, size);
        }
        tracing::debug!(%path, size, "reading a layer");
        let mut counted = Counted {
            inner: reader,
            shown: shown.as_ref().map(|(p, id)| (*p, id)),
        };
        let mut buffered = BufReader::with_capacity(256 * 1024, &mut counted);
        let already = sniff(buffered.fill_buf().map_err(io_error)?);
        let mut feed = uploads.open(dst);
        let compression = if already.is_some() {
            None
        } else {
            Some(self.compression)
        };
        // The digest of what is sent is computed beside this thread, so that reading the next
        // layer need not wait for it; for a small layer a thread would cost more than it saves.
        let hasher = if size >= BACKGROUND_HASH_FROM {
            Hasher::background().map_err(io_error)?
        } else {
            Hasher::inline()
        };
        let mut sink = |chunk: Bytes| feed.send(handle, chunk);
        match stream_layer(
            &mut buffered,
            compression,
            &mut sink,
            hasher,
            self.hash_input,
            &self.pool,
        ) {
            Ok(streamed) => {
                if let Some((progress, id)) = &shown {
                    progress.blob_finished(id, size, BlobOutcome::Uploaded);
                }
                tracing::debug!(%path, sent = streamed.size, "layer read; its upload goes on");
                let layer = Finished {
                    size: streamed.size,
                    media_type: already
                        .unwrap_or(self.compression.layer_media_type())
                        .to_string(),
                    compressed_here: already.is_none(),
                    read_digest: streamed.read_digest,
                };
                uploads.started(feed, streamed.digest, path, key, layer);
                Ok(None)
            }
            Err(error) => {
                feed.abandon(handle)?;
                Err(io_error(error))
            }
        }
    }
}

/// A layer's reader that shows what it yields as progress.
struct Counted<'a> {
    inner: &'a mut dyn Read,
    shown: Option<(&'a dyn Progress, &'a Digest)>,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some((progress, id)) = self.shown {
            progress.blob_advanced(id, n as u64);
        }
        Ok(n)
    }
}

fn io_error(e: io::Error) -> Error {
    Error::Other(format!("reading the image: {e}"))
}
