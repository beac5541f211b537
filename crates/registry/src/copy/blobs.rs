//! Moving one blob from a source repository to a destination repository.
//!
//! In order of cost: already at the destination (one `HEAD`), mountable from a repository on
//! the same registry (one `POST`), or streamed source → destination through memory in chunks —
//! never a whole layer in memory, never a temp file — with the digest verified on the way.
//! A failed transfer is restarted from scratch: upload sessions are not resumable on ECR. The
//! session of a failed or stopped attempt is cancelled (`DELETE`), so none is left open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use tokio::sync::OnceCell;

use super::report::{BlobOutcome, Progress};
use super::{Budget, Ctx};
use crate::client::Repository;
use crate::digest::Digest;
use crate::endpoints::blobs::MountOutcome;
use crate::error::{Error, Result};
use crate::retry::Restarts;

type Slot = Arc<OnceCell<BlobOutcome>>;

/// Blobs already handled in this run, shared by every copy of one [`Copier`](super::Copier):
/// a layer shared by three platforms, or by two images, moves once.
#[derive(Default)]
pub(crate) struct BlobLedger {
    /// (destination host, repository, digest) → how it got there.
    done: Mutex<HashMap<(String, String, Digest), Slot>>,
    /// (destination host, digest) → a repository there that has it, to mount from.
    homes: Mutex<HashMap<(String, Digest), String>>,
}

impl BlobLedger {
    fn slot(&self, dst: &Repository, digest: &Digest) -> Slot {
        let key = (
            dst.host().to_string(),
            dst.name().to_string(),
            digest.clone(),
        );
        match self.done.lock() {
            Ok(mut map) => map.entry(key).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    fn home(&self, dst: &Repository, digest: &Digest) -> Option<String> {
        let map = self.homes.lock().ok()?;
        map.get(&(dst.host().to_string(), digest.clone()))
            .filter(|repo| repo.as_str() != dst.name())
            .cloned()
    }

    fn settle(&self, dst: &Repository, digest: &Digest) {
        if let Ok(mut map) = self.homes.lock() {
            map.entry((dst.host().to_string(), digest.clone()))
                .or_insert_with(|| dst.name().to_string());
        }
    }
}

/// Ensures `digest` is in the destination repository, once per run.
pub(crate) async fn ensure_blob(ctx: &Ctx<'_>, digest: &Digest, size: u64) -> Result<BlobOutcome> {
    let slot = ctx.ledger.slot(&ctx.dst, digest);
    let outcome = *slot
        .get_or_try_init(|| async {
            let outcome = move_blob(ctx, digest, size).await?;
            if !ctx.dry_run {
                ctx.ledger.settle(&ctx.dst, digest);
            }
            ctx.tally.blob(outcome, size);
            if let Some(progress) = &ctx.progress {
                progress.blob_finished(digest, size, outcome);
            }
            Ok::<_, Error>(outcome)
        })
        .await?;
    Ok(outcome)
}

async fn move_blob(ctx: &Ctx<'_>, digest: &Digest, size: u64) -> Result<BlobOutcome> {
    // A blob another copy failed to move is tried again by the next one asking for it: not
    // once this copy has stopped.
    super::check_stop(ctx)?;
    let _permit = tokio::select! {
        biased;
        () = ctx.stop.cancelled() => return Err(super::stopped()),
        permit = ctx.budget.acquire() => permit?,
    };
    if ctx.dst.head_blob(digest).await?.is_some() {
        return Ok(BlobOutcome::Skipped);
    }
    // Same registry: the source repository itself; otherwise a repository this run already
    // uploaded the blob to.
    let mount_from = if ctx.same_registry && ctx.src.name() != ctx.dst.name() {
        Some(ctx.src.name().to_string())
    } else {
        ctx.ledger.home(&ctx.dst, digest)
    };
    if ctx.dry_run {
        return Ok(if mount_from.is_some() {
            BlobOutcome::Mounted
        } else {
            BlobOutcome::Uploaded
        });
    }

    let mut restarts = Restarts::new(ctx.dst.client().retry_policy().clone());
    loop {
        let error = match transfer_once(ctx, digest, size, mount_from.as_deref()).await {
            Ok(outcome) => return Ok(outcome),
            Err(error) => error,
        };
        let Some(delay) = restarts.after(&error) else {
            return Err(error);
        };
        let attempt = restarts.attempt();
        tracing::warn!(%digest, %error, ?delay, attempt, "blob transfer failed; restarting it");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = ctx.stop.cancelled() => return Err(super::stopped()),
        }
    }
}

/// One attempt. The upload session it opens is cancelled when the attempt fails or the copy
/// stops, so an abandoned transfer never leaves one behind.
async fn transfer_once(
    ctx: &Ctx<'_>,
    digest: &Digest,
    size: u64,
    mount_from: Option<&str>,
) -> Result<BlobOutcome> {
    // Opening a session is never raced against the stop: a POST cut off in flight would leave
    // a session whose Location was never seen, so nothing could cancel it.
    let mut session = match mount_from {
        Some(from) => match ctx.dst.mount_blob(digest, from).await? {
            MountOutcome::Mounted => return Ok(BlobOutcome::Mounted),
            // Mounting refused (ECR without BLOB_MOUNTING, or not there after all): the
            // registry opened a normal session, which the upload below reuses.
            MountOutcome::Upload(location) => Some(location),
        },
        None => None,
    };
    let result = async {
        let source = tokio::select! {
            biased;
            () = ctx.stop.cancelled() => return Err(super::stopped()),
            // A large blob comes in parallel ranges when the source serves them.
            source = super::ranged::source_stream(ctx, digest, size) => source?,
        };
        let location = match &session {
            Some(location) => location.clone(),
            None => {
                let location = ctx.dst.start_upload().await?;
                session = Some(location.clone());
                location
            }
        };
        tokio::select! {
            biased;
            () = ctx.stop.cancelled() => Err(super::stopped()),
            result = send_blob(ctx, digest, size, source, location) => result,
        }
    }
    .await;
    if result.is_err()
        && let Some(location) = &session
    {
        match ctx.dst.cancel_upload(location).await {
            Ok(()) => tracing::debug!(%digest, "cancelled the upload session of a failed transfer"),
            Err(error) => {
                tracing::warn!(%digest, %error, "could not cancel the upload session of a failed transfer")
            }
        }
    }
    result
}

/// Streams `source` into the open session at `location`.
async fn send_blob(
    ctx: &Ctx<'_>,
    digest: &Digest,
    size: u64,
    source: crate::endpoints::blobs::BlobStream,
    location: url::Url,
) -> Result<BlobOutcome> {
    if let Some(progress) = &ctx.progress {
        progress.blob_started(digest, size);
    }

    // reqwest reports a failing body stream as an opaque "error sending request"; keep our own
    // error (a digest mismatch, a reset source) to report the real cause.
    let failure: Arc<Mutex<Option<Error>>> = Arc::default();
    let progress: Option<Arc<dyn Progress>> = ctx.progress.clone();
    let body_failure = failure.clone();
    let advancing = digest.clone();
    let stream = source
        .inspect_ok(move |chunk| {
            if let Some(p) = &progress {
                p.blob_advanced(&advancing, chunk.len() as u64);
            }
        })
        .map_err(move |error| {
            let message = error.to_string();
            if let Ok(mut slot) = body_failure.lock() {
                slot.get_or_insert(error);
            }
            std::io::Error::other(message)
        });
    let body = reqwest::Body::wrap_stream(stream);

    match ctx.dst.finish_upload(location, digest, size, body).await {
        Ok(()) => Ok(BlobOutcome::Uploaded),
        Err(put_error) => {
            let source_error = failure.lock().ok().and_then(|mut slot| slot.take());
            Err(source_error.unwrap_or(put_error))
        }
    }
}

impl Budget {
    async fn acquire(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.0
            .acquire()
            .await
            .map_err(|_| Error::Other("the concurrency budget was closed".into()))
    }
}
