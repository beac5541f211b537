//! Copying an image — a single manifest or an index and all its children — between
//! repositories, possibly on different registries.
//!
//! The data path, top-down:
//! 1. `GET` the source manifest (by tag or digest) and, for a platform subset, build the new
//!    index holding only those children.
//! 2. `HEAD` every destination tag. If each already points at that digest, stop: a warm copy
//!    costs one request at the source and one per tag at the destination.
//! 3. For each child (concurrently): `HEAD` it at the destination by digest; if missing, fetch
//!    it, ensure its blobs ([`blobs`]), and push it by digest.
//! 4. Push the top-level manifest under each tag — last, so a tag never points at anything
//!    whose children and blobs are not all present.
//! 5. Optionally copy referrers ([`referrers`]).
//!
//! Concurrency is bounded by a [`Budget`] of blob transfers that many copies can share.

mod blobs;
mod ranged;
mod referrers;
pub mod report;

use std::sync::Arc;
use std::time::Instant;

use futures::future::{BoxFuture, try_join_all};
use tokio::sync::Semaphore;

use crate::client::{Client, Repository, RequestCounters};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Manifest, Platform, descriptor_digest, filter_index};
use crate::reference::Reference;

use blobs::BlobLedger;
pub use ranged::RangedFetch;
use report::Tally;
pub use report::{
    BlobOutcome, CopyReport, ManifestEntry, ManifestOutcome, Progress, TagEntry, TagOutcome, Totals,
};

/// How many blob transfers may run at once. Clone it into several copies' options to share one
/// budget between them (the operator copies for many resources at once).
#[derive(Clone, Debug)]
pub struct Budget(Arc<Semaphore>);

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
    /// Large blobs fetched in parallel ranges (see [`RangedFetch`]).
    pub ranged: RangedFetch,
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

/// Copies images with a shared client, budget and ledger of blobs already moved in this run.
pub struct Copier {
    client: Client,
    options: CopyOptions,
    ledger: BlobLedger,
}

/// Everything one copy's steps need, borrowed from the [`Copier`] and the copy.
pub(crate) struct Ctx<'a> {
    pub src: Repository,
    pub dst: Repository,
    pub same_registry: bool,
    pub dry_run: bool,
    pub ledger: &'a BlobLedger,
    pub tally: &'a Tally,
    pub budget: &'a Budget,
    pub ranged: RangedFetch,
    pub progress: Option<Arc<dyn Progress>>,
}

/// Copies `src` to `dst` once. Use a [`Copier`] to copy several images in one run.
pub async fn copy(
    client: &Client,
    src: &Reference,
    dst: &Reference,
    options: CopyOptions,
) -> Result<CopyReport> {
    Copier::new(client.clone(), options).copy(src, dst).await
}

impl Copier {
    pub fn new(client: Client, options: CopyOptions) -> Self {
        Self {
            client,
            options,
            ledger: BlobLedger::default(),
        }
    }

    pub async fn copy(&self, src: &Reference, dst: &Reference) -> Result<CopyReport> {
        let started = Instant::now();
        let counters = Arc::new(RequestCounters::default());
        let tally = Tally::default();
        let ctx = Ctx {
            src: self.client.repository(src).with_counters(counters.clone()),
            dst: self.client.repository(dst).with_counters(counters.clone()),
            same_registry: src.api_host() == dst.api_host(),
            dry_run: self.options.dry_run,
            ledger: &self.ledger,
            tally: &tally,
            budget: &self.options.budget,
            ranged: self.options.ranged,
            progress: self.options.progress.clone(),
        };

        let fetched = ctx.src.get_manifest(src.target()).await?;
        let top = if !self.options.platforms.is_empty() && fetched.is_index() {
            filter_index(&fetched, &self.options.platforms)?
        } else {
            fetched
        };
        if let Some(wanted) = dst.digest()
            && wanted != top.digest()
        {
            return Err(Error::Config(format!(
                "destination {dst} names digest {wanted}, but the source resolves to {}",
                top.digest()
            )));
        }

        let tags = destination_tags(dst, &self.options.extra_tags);
        let current: Vec<Option<Digest>> =
            try_join_all(tags.iter().map(|tag| ctx.dst.head_manifest(tag)))
                .await?
                .into_iter()
                .map(|head| head.map(|h| h.digest))
                .collect();
        if let Some(rule) = &self.options.immutable_tags {
            rule.check(&ctx.dst, &tags, &current, top.digest())?;
        }
        let warm = !tags.is_empty() && current.iter().all(|d| d.as_ref() == Some(top.digest()));

        let mut manifests = vec![entry(None, &top, ManifestOutcome::Pushed)];
        if warm {
            manifests[0].outcome = ManifestOutcome::Present;
            manifests.extend(top.children().iter().filter_map(present_child));
        } else {
            manifests.extend(copy_contents(&ctx, &top).await?);
            if tags.is_empty() {
                push(&ctx, top.digest().as_str(), &top).await?;
            }
        }

        // Tags last: everything they point at is in place by now.
        let tag_entries = TagEntry::plan(&tags, current, top.digest());
        for entry in &tag_entries {
            if entry.outcome != TagOutcome::Unchanged {
                push(&ctx, &entry.tag, &top).await?;
            }
        }

        let referrers = if self.options.referrers {
            let subjects: Vec<Digest> = manifests.iter().map(|m| m.digest.clone()).collect();
            referrers::copy_referrers(&ctx, &subjects).await?
        } else {
            Vec::new()
        };

        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(CopyReport {
            source: src.to_string(),
            destination: dst.to_string(),
            digest: top.digest().clone(),
            media_type: top.media_type().to_string(),
            size: top.size(),
            manifests,
            tags: tag_entries,
            referrers,
            totals: tally.totals(counters.snapshot(), elapsed_ms),
            dry_run: self.options.dry_run,
        })
    }
}

/// The destination reference's tag plus the extra tags, without duplicates.
fn destination_tags(dst: &Reference, extra: &[String]) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in dst
        .tag()
        .into_iter()
        .chain(extra.iter().map(String::as_str))
    {
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    }
    tags
}

fn entry(platform: Option<String>, manifest: &Manifest, outcome: ManifestOutcome) -> ManifestEntry {
    ManifestEntry {
        platform,
        digest: manifest.digest().clone(),
        size: manifest.size(),
        media_type: manifest.media_type().to_string(),
        outcome,
    }
}

fn present_child(desc: &Descriptor) -> Option<ManifestEntry> {
    Some(ManifestEntry {
        platform: Platform::of(desc).map(|p| p.to_string()),
        digest: descriptor_digest(desc).ok()?,
        size: desc.size(),
        media_type: desc.media_type().to_string(),
        outcome: ManifestOutcome::Present,
    })
}

/// Everything `manifest` references: its blobs, or its children and theirs. Returns an entry
/// per child of an index.
fn copy_contents<'a>(
    ctx: &'a Ctx<'a>,
    manifest: &'a Manifest,
) -> BoxFuture<'a, Result<Vec<ManifestEntry>>> {
    Box::pin(async move {
        if manifest.is_index() {
            try_join_all(
                manifest
                    .children()
                    .iter()
                    .map(|child| copy_child(ctx, child)),
            )
            .await
        } else {
            try_join_all(manifest.blobs().into_iter().map(|blob| async move {
                let digest = descriptor_digest(blob)?;
                blobs::ensure_blob(ctx, &digest, blob.size()).await
            }))
            .await?;
            Ok(Vec::new())
        }
    })
}

/// One child of an index, by digest: skipped whole when the destination has it.
async fn copy_child(ctx: &Ctx<'_>, desc: &Descriptor) -> Result<ManifestEntry> {
    let digest = descriptor_digest(desc)?;
    let platform = Platform::of(desc).map(|p| p.to_string());
    if ctx.dst.head_manifest(digest.as_str()).await?.is_some() {
        return Ok(ManifestEntry {
            platform,
            digest,
            size: desc.size(),
            media_type: desc.media_type().to_string(),
            outcome: ManifestOutcome::Present,
        });
    }
    let child = ctx.src.get_manifest(digest.as_str()).await?;
    copy_contents(ctx, &child).await?;
    push(ctx, digest.as_str(), &child).await?;
    Ok(entry(platform, &child, ManifestOutcome::Pushed))
}

async fn push(ctx: &Ctx<'_>, target: &str, manifest: &Manifest) -> Result<()> {
    if ctx.dry_run {
        return Ok(());
    }
    ctx.dst.put_manifest(target, manifest).await?;
    ctx.tally.manifest();
    if let Some(progress) = &ctx.progress {
        progress.manifest_pushed(target, manifest.digest());
    }
    Ok(())
}
