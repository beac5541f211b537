//! Getting a blob into the destination repository without sending it: it is there already, or
//! another repository of the same registry holds it (the push cache remembers which) and the
//! registry links it with a cross-repository mount — what `docker push` does with the
//! repositories the Engine remembers.
//!
//! A registry may refuse a mount (the source lost the blob, or mounting is off, as on ECR
//! without `BLOB_MOUNTING`): it then opens an ordinary upload session instead (202). That
//! session is cancelled and the blob counts as absent, so the caller sends it; a refused source
//! is forgotten, so the next push does not ask it again. A mount that fails outright (denied
//! access to the source) is treated the same way.

use super::cache::PushCache;
use crate::error::Result;
use ferry_registry::client::Repository;
use ferry_registry::digest::Digest;
use ferry_registry::endpoints::blobs::MountOutcome;

/// Sources asked per blob at most: each refusal costs a POST and a DELETE, and where a registry
/// refuses every mount, more tries only cost more requests.
const MOUNT_TRIES: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// The repository had it.
    Present,
    /// Linked from another repository of the registry.
    Mounted,
    /// Not there: it has to be sent.
    Absent,
}

/// Makes `digest` present in `dst` if that is possible without sending it.
///
/// Requests: a HEAD when the cache names `dst` itself or no other repository; otherwise a mount
/// (POST) per source tried, then — all refused — a HEAD, since a registry also refuses to mount
/// a blob the destination already has from elsewhere.
pub(crate) async fn ensure(
    dst: &Repository,
    cache: &PushCache,
    digest: &Digest,
) -> Result<Presence> {
    let holders = cache.holders(dst.registry(), digest);
    let (here, others): (Vec<String>, Vec<String>) =
        holders.into_iter().partition(|r| r == dst.name());
    let head_first = !here.is_empty() || others.is_empty();
    if head_first && dst.head_blob(digest).await?.is_some() {
        return Ok(Presence::Present);
    }
    for from in others.iter().take(MOUNT_TRIES) {
        match dst.mount_blob(digest, from).await {
            Ok(MountOutcome::Mounted) => return Ok(Presence::Mounted),
            Ok(MountOutcome::Upload(session)) => {
                // Best effort: a session nobody cancels expires in the registry anyway.
                if let Err(error) = dst.cancel_upload(&session).await {
                    tracing::debug!(%error, %session, "could not cancel an upload session");
                }
            }
            // Denied (no pull access to the source, say): a mount is only ever a shortcut, so
            // any failure means sending the blob; a real fault shows in that upload.
            Err(error) => tracing::debug!(%error, %digest, from = %from, "mount failed"),
        }
        cache.forget_holder(dst.registry(), from, digest);
    }
    if !head_first && dst.head_blob(digest).await?.is_some() {
        return Ok(Presence::Present);
    }
    Ok(Presence::Absent)
}
