//! What a copy is asked to do: [`CopyOptions`], the shared transfer [`Budget`], the immutable-tag
//! rule and what an earlier copy found ([`LastCopy`]).

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::ranged::RangedFetch;
use super::report::{CopyReport, Progress};
use crate::client::Repository;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::Platform;

/// How many blob transfers may run at once. Clone it into several copies' options to share one
/// budget between them (the operator copies for many resources at once).
#[derive(Clone, Debug)]
pub struct Budget(pub(super) Arc<Semaphore>);

impl Budget {
    pub fn new(transfers: usize) -> Self {
        Budget(Arc::new(Semaphore::new(transfers.max(1))))
    }
}

impl Default for Budget {
    /// Eight transfers: enough to fill a fast link, few enough to stay polite to a registry.
    fn default() -> Self {
        Budget::new(8)
    }
}

#[derive(Clone, Default)]
pub struct CopyOptions {
    /// Only these platforms of an index (a new index holding just them is pushed). Empty: all.
    pub platforms: Vec<Platform>,
    /// Also copy referrers (signatures, SBOMs, attestations) of every manifest copied.
    pub referrers: bool,
    /// Read everything, change nothing, and report what would be done.
    pub dry_run: bool,
    /// Tags to set besides the destination reference's own.
    pub extra_tags: Vec<String>,
    pub budget: Budget,
    pub progress: Option<Arc<dyn Progress>>,
    /// Which destination tags may not move (an immutable ECR repository).
    pub immutable_tags: Option<ImmutableTags>,
    /// What the previous copy of this source to this destination found and produced. With a
    /// platform subset the destination's digest differs from the source's, so only this lets a
    /// warm copy stop after the `HEAD`s, without fetching the source manifest.
    pub last: Option<LastCopy>,
    /// Once cancelled, no further tag is set and running transfers stop (their upload sessions
    /// cancelled); the copy fails saying so. The default is never cancelled.
    pub cancel: CancellationToken,
    /// Large blobs fetched in parallel ranges (see [`RangedFetch`]).
    pub ranged: RangedFetch,
}

/// The two digests a resync remembers from one copy to the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastCopy {
    /// What the source reference resolved to ([`CopyReport::source_digest`]).
    pub source_digest: Digest,
    /// What the destination tags were set to ([`CopyReport::digest`]).
    pub digest: Digest,
}

impl From<&CopyReport> for LastCopy {
    fn from(report: &CopyReport) -> Self {
        LastCopy {
            source_digest: report.source_digest.clone(),
            digest: report.digest.clone(),
        }
    }
}

/// Tags that must never be moved once set. Setting one to the digest it already has is fine
/// ("unchanged"); moving one fails the copy before anything is pushed.
#[derive(Clone)]
pub struct ImmutableTags {
    /// How the registry describes the rule, for the error (`IMMUTABLE`).
    pub mutability: String,
    pub applies_to: Arc<dyn Fn(&str) -> bool + Send + Sync>,
}

impl ImmutableTags {
    /// Fails if pointing `tags` (currently at `current`) to `new` would move an immutable one.
    pub fn check(
        &self,
        dst: &Repository,
        tags: &[String],
        current: &[Option<Digest>],
        new: &Digest,
    ) -> Result<()> {
        for (tag, previous) in tags.iter().zip(current) {
            if let Some(previous) = previous
                && previous != new
                && (self.applies_to)(tag)
            {
                return Err(Error::ImmutableTag {
                    repository: format!("{}/{}", dst.registry(), dst.name()),
                    tag: tag.clone(),
                    current: previous.clone(),
                    new: new.clone(),
                    mutability: self.mutability.clone(),
                });
            }
        }
        Ok(())
    }

    /// Every tag is immutable.
    pub fn all(mutability: impl Into<String>) -> Self {
        Self {
            mutability: mutability.into(),
            applies_to: Arc::new(|_| true),
        }
    }
}
