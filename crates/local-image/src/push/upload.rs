//! Layer uploads while the export is read: each layer goes up as one streamed `PATCH` that
//! starts with its first compressed chunk, and is committed (`PUT ?digest=`) once its digest is
//! known; meanwhile the reading moves on to the next layer.
//!
//! Why several at once: the export is one stream, but a registry takes in a single upload far
//! slower than the stream comes (it hashes and writes every byte, and syncs the file to disk on
//! commit), so reading ahead lets it work on several layers, and this process hash one layer
//! while it compresses the next.
//!
//! Memory: the compressed chunks waiting to be sent count against one budget for all uploads
//! ([`QUEUED_BYTES`]). When it is spent, chunks go to a bounded spool on disk ([`super::spool`])
//! so that reading runs ahead of slow uploads; only when that is full too does reading wait.
//! A chunk is one pooled buffer of at most 1 MiB and counts whole until its last slice is sent
//! (a slice keeps its buffer alive). Beyond the budget, each upload has up to 16 slices (4 MiB)
//! in the HTTP client, and the layer being read its hasher's queue (8 MiB) and the compression
//! workers' blocks (two per worker).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::archive::{Fate, PushedBlob, diff_id_key};
use super::cache::{CachedBlob, PushCache};
use super::compress::Compression;
use super::hashing::PendingDigest;
use super::sessions::Sessions;
use super::spool::{Queued, SPOOL_BYTES, SpoolWriter, read_back};
use crate::error::{Error, Result};
use ferry_registry::client::Repository;
use ferry_registry::digest::Digest;

/// Layer uploads at once, each on its own connection: as many as a copy's default budget of blob
/// transfers ([`ferry_registry::copy::Budget`]).
pub(crate) const UPLOADS_IN_FLIGHT: usize = 8;
/// Compressed bytes read ahead of the uploads in memory, all layers together; more go to the
/// spool. The spool's data comes back from the page cache, so a larger budget saves little.
const QUEUED_BYTES: usize = 16 * 1024 * 1024;

/// An upload under way and what to record once it is through.
struct Started {
    task: JoinHandle<Result<Option<Digest>>>,
    path: String,
    key: Option<String>,
    layer: Finished,
}

/// What is known of a layer when its data has been read.
pub(crate) struct Finished {
    pub size: u64,
    pub media_type: String,
    /// Compressed here from the uncompressed layer, whose digest (the `diff_id`) is
    /// `read_digest` if it was computed.
    pub compressed_here: bool,
    pub read_digest: Option<Digest>,
}

/// The uploads of one pass over an archive.
pub(crate) struct Uploads<'a> {
    handle: &'a Handle,
    cache: &'a PushCache,
    compression: Compression,
    budget: Arc<Semaphore>,
    spool: Arc<Semaphore>,
    started: VecDeque<Started>,
    sessions: Option<&'a Sessions>,
}

/// The sending end of one upload, for the thread that compresses the layer.
pub(crate) struct Feed {
    chunks: mpsc::UnboundedSender<Queued>,
    digest: oneshot::Sender<PendingDigest>,
    task: JoinHandle<Result<Option<Digest>>>,
    budget: Arc<Semaphore>,
    spool: SpoolWriter,
}

impl<'a> Uploads<'a> {
    /// `sessions`: upload sessions opened ahead, which uploads take before opening their own.
    pub fn new(
        handle: &'a Handle,
        cache: &'a PushCache,
        compression: Compression,
        sessions: Option<&'a Sessions>,
    ) -> Self {
        Uploads {
            handle,
            cache,
            compression,
            budget: Arc::new(Semaphore::new(QUEUED_BYTES)),
            spool: Arc::new(Semaphore::new(SPOOL_BYTES)),
            started: VecDeque::new(),
            sessions,
        }
    }

    /// Opens an upload to `dst` whose data will come through the returned [`Feed`].
    pub fn open(&self, dst: &Repository) -> Feed {
        let (chunks, rx) = mpsc::unbounded_channel();
        let (digest, digest_rx) = oneshot::channel::<PendingDigest>();
        let body = reqwest::Body::wrap_stream(ChunkStream::new(rx));
        let dst = dst.clone();
        let opened = self.sessions.and_then(Sessions::take);
        let task = self.handle.spawn(async move {
            let location = match opened {
                Some(opening) => match opening.await {
                    Ok(Ok(location)) => location,
                    // Opened ahead but failed: open one now, which reports the error if it
                    // is not passing.
                    _ => dst.start_upload().await?,
                },
                None => dst.start_upload().await?,
            };
            let location = dst.patch_upload(location, body).await?;
            tracing::debug!("layer sent; committing it");
            // No digest: reading the layer failed, and that error is reported; the partial
            // upload is never committed.
            let Ok(pending) = digest_rx.await else {
                return Ok(None);
            };
            let digest = tokio::task::spawn_blocking(move || pending.wait())
                .await
                .map_err(|e| Error::Other(format!("the hashing task failed: {e}")))?
                .map_err(|e| Error::Other(format!("hashing a layer: {e}")))?;
            dst.commit_upload(location, &digest).await?;
            tracing::debug!(%digest, "layer stored");
            Ok(Some(digest))
        });
        Feed {
            chunks,
            digest,
            task,
            budget: self.budget.clone(),
            spool: SpoolWriter::new(self.spool.clone()),
        }
    }

    /// Hands a fed upload over to finish in the background; its blob is recorded (in
    /// `blobs` and the cache) when it is through.
    pub fn started(
        &mut self,
        feed: Feed,
        digest: PendingDigest,
        path: String,
        key: Option<String>,
        layer: Finished,
    ) {
        // If the task has failed already, the digest is not needed: joining reports why.
        let _ = feed.digest.send(digest);
        self.started.push_back(Started {
            task: feed.task,
            path,
            key,
            layer,
        });
    }

    /// Records the uploads that are through, and waits for the oldest while too many are
    /// under way, so that a failed upload stops the push at the next layer.
    ///
    /// Every upload that is through is recorded even when another failed: [`Self::finish`]
    /// waits for the rest, and a push run again after the failure skips what was stored.
    pub fn settle(&mut self, blobs: &mut HashMap<String, PushedBlob>) -> Result<()> {
        let mut first = Ok(());
        let mut waiting = VecDeque::new();
        while let Some(started) = self.started.pop_front() {
            if started.task.is_finished() {
                let result = self.record(started, blobs);
                if first.is_ok() {
                    first = result;
                }
            } else {
                waiting.push_back(started);
            }
        }
        self.started = waiting;
        while first.is_ok() && self.started.len() >= UPLOADS_IN_FLIGHT {
            if let Some(oldest) = self.started.pop_front() {
                first = self.record(oldest, blobs);
            }
        }
        first
    }

    /// Waits for every upload; the first error wins, but all are waited for.
    pub fn finish(mut self, blobs: &mut HashMap<String, PushedBlob>) -> Result<()> {
        let mut first = Ok(());
        while let Some(started) = self.started.pop_front() {
            let result = self.record(started, blobs);
            if first.is_ok() {
                first = result;
            }
        }
        first
    }

    fn record(&self, started: Started, blobs: &mut HashMap<String, PushedBlob>) -> Result<()> {
        let Some(digest) = join(self.handle, started.task)? else {
            return Err(Error::Other(
                "a layer upload ended before its layer was read".into(),
            ));
        };
        let layer = started.layer;
        let blob = CachedBlob {
            digest,
            size: layer.size,
            media_type: layer.media_type,
        };
        if let (true, Some(diff_id)) = (layer.compressed_here, &layer.read_digest) {
            // What was read was the uncompressed layer: its digest is the diff_id, the
            // identity a newer (OCI-shaped) export names the layer by.
            self.cache
                .set_layer(diff_id_key(diff_id, self.compression), blob.clone());
        }
        if let Some(key) = started.key {
            self.cache.set_layer(key, blob.clone());
        }
        blobs.insert(
            started.path,
            PushedBlob {
                blob,
                fate: Fate::Uploaded,
                compressed_here: layer.compressed_here,
            },
        );
        Ok(())
    }
}

impl Feed {
    /// Queues a chunk for the upload: in memory if the budget has room, else in the spool if
    /// it has, else in memory once the budget has room. Fails when the upload has stopped (it
    /// failed), which stops the compression.
    pub fn send(&mut self, handle: &Handle, chunk: Bytes) -> io::Result<()> {
        // Counted whole: the chunk is one pooled buffer (see `compress::Sink`).
        let share = u32::try_from(chunk.len().min(QUEUED_BYTES)).unwrap_or(u32::MAX);
        let queued = match self.budget.clone().try_acquire_many_owned(share) {
            Ok(permit) => Queued::Memory(chunk, permit),
            Err(_) => match self.spool.write(&chunk) {
                Some(spooled) => spooled,
                None => {
                    let permit = handle
                        .block_on(self.budget.clone().acquire_many_owned(share))
                        .map_err(io::Error::other)?;
                    Queued::Memory(chunk, permit)
                }
            },
        };
        self.chunks
            .send(queued)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    /// Reading the layer failed: ends the upload uncommitted and returns the upload's own
    /// error if it had one (it stopped taking data, which explains more).
    pub fn abandon(self, handle: &Handle) -> Result<()> {
        drop(self.chunks);
        drop(self.digest);
        join(handle, self.task).map(|_| ())
    }
}

fn join(handle: &Handle, task: JoinHandle<Result<Option<Digest>>>) -> Result<Option<Digest>> {
    handle
        .block_on(task)
        .map_err(|e| Error::Other(format!("layer upload task failed: {e}")))?
}

/// An upload's body: its chunks as the compressing thread queues them, handed to the HTTP
/// client in slices of at most [`SLICE`]. A chunk's share of the in-memory budget is given
/// back once its last slice is taken; its share of the spool only when the upload ends, since
/// the layer's spool file keeps its bytes until then.
struct ChunkStream {
    queue: mpsc::UnboundedReceiver<Queued>,
    /// What is left of the chunk being sent.
    current: Current,
    spooled: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// The most bytes handed to the HTTP client at once. It queues up to 16 writes per connection
/// before it waits for the socket, so this bounds what each upload holds there (4 MiB).
const SLICE: usize = 256 * 1024;

enum Current {
    None,
    /// The permit is the chunk's share of the budget, held until its last slice is taken.
    Memory(Bytes, #[allow(dead_code)] tokio::sync::OwnedSemaphorePermit),
    Spooled {
        file: Arc<std::fs::File>,
        offset: u64,
        left: usize,
    },
}

impl ChunkStream {
    fn new(queue: mpsc::UnboundedReceiver<Queued>) -> Self {
        ChunkStream {
            queue,
            current: Current::None,
            spooled: None,
        }
    }

    /// The next slice of the current chunk, if any is left.
    fn next_slice(&mut self) -> Option<io::Result<Bytes>> {
        match &mut self.current {
            Current::None => None,
            Current::Memory(chunk, _) => {
                let slice = chunk.split_to(chunk.len().min(SLICE));
                if chunk.is_empty() {
                    // Last slice: the chunk's budget goes back.
                    self.current = Current::None;
                }
                Some(Ok(slice))
            }
            Current::Spooled { file, offset, left } => {
                let len = (*left).min(SLICE);
                let slice = read_back(file, *offset, len);
                *offset += len as u64;
                *left -= len;
                if *left == 0 {
                    self.current = Current::None;
                }
                Some(slice)
            }
        }
    }
}

impl futures::Stream for ChunkStream {
    type Item = io::Result<Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        loop {
            if let Some(slice) = self.next_slice() {
                return std::task::Poll::Ready(Some(slice));
            }
            let next = std::task::ready!(self.queue.poll_recv(cx));
            self.current = match next {
                None => return std::task::Poll::Ready(None),
                Some(Queued::Memory(chunk, share)) => Current::Memory(chunk, share),
                Some(Queued::Spooled {
                    file,
                    offset,
                    len,
                    share,
                }) => {
                    match &mut self.spooled {
                        Some(held) => held.merge(share),
                        None => self.spooled = Some(share),
                    }
                    Current::Spooled {
                        file,
                        offset,
                        left: len,
                    }
                }
            };
        }
    }
}
