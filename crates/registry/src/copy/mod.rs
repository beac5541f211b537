//! Copying an image — a single manifest or an index and all its children — between
//! repositories, possibly on different registries.
//!
//! The data path, top-down:
//! 1. `HEAD` the source manifest and every destination tag. If each tag already points at what
//!    the source resolves to (or, for a platform subset, at what the last copy produced from
//!    this same source digest, [`LastCopy`]), stop: a warm copy costs one `HEAD` at the source
//!    and one per tag at the destination, and no manifest `GET` (with referrers, one more
//!    request for the top-level image's referrers, which may have been signed since).
//! 2. `GET` the source manifest by the digest the `HEAD` gave and, for a platform subset, build
//!    the new index holding only those children.
//! 3. For each child (concurrently): `HEAD` it at the destination by digest; if missing, fetch
//!    it, ensure its blobs ([`blobs`]), and push it by digest.
//! 4. Optionally copy referrers ([`referrers`]) — before any tag, so a tag never points at an
//!    image whose signatures are not there yet.
//! 5. Push the top-level manifest under each tag — last, so a tag never points at anything
//!    whose children, blobs and referrers are not all present.
//!
//! A failed copy returns a [`CopyError`] naming the tags it had already set. The copy's
//! cancellation token ([`CopyOptions::cancel`]) stops transfers (their upload sessions
//! cancelled) and the setting of further tags; a failing transfer stops its siblings the same
//! way, so no upload session is left open.
//!
//! Concurrency is bounded by a [`Budget`] of blob transfers that many copies can share.

mod blobs;
mod failure;
mod options;
mod ranged;
mod referrers;
pub mod report;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures::future::{BoxFuture, join_all, try_join_all};
/// The token [`CopyOptions::cancel`] takes, re-exported so callers need no tokio-util of their own.
pub use tokio_util::sync::CancellationToken;

use crate::client::{Client, Repository, RequestCounters};
use crate::digest::Digest;
use crate::endpoints::manifests::ManifestHead;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Manifest, Platform, descriptor_digest, filter_index};
use crate::media_type;
use crate::reference::Reference;

use blobs::BlobLedger;
pub use failure::CopyError;
pub use options::{Budget, CopyOptions, ImmutableTags, LastCopy};
pub use ranged::RangedFetch;
use report::Tally;
pub use report::{
    BlobOutcome, CopyReport, ManifestEntry, ManifestOutcome, Progress, TagEntry, TagOutcome, Totals,
};

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
    /// Cancelled with the caller's token, or by the first failing step so its siblings stop
    /// (and cancel their upload sessions) instead of being dropped mid-transfer.
    pub stop: CancellationToken,
}

/// What a step returns when the copy was stopped; the real cause is reported instead.
const STOPPED: &str = "the copy was stopped";

pub(crate) fn stopped() -> Error {
    Error::Other(STOPPED.into())
}

fn is_stopped(error: &Error) -> bool {
    matches!(error, Error::Other(message) if message == STOPPED)
}

/// Runs `steps` concurrently to the end. The first failure stops the others, which wind down
/// (cancelling their upload sessions); the error returned is that failure, not a sibling's
/// "stopped".
pub(crate) async fn all<T, F>(ctx: &Ctx<'_>, steps: impl IntoIterator<Item = F>) -> Result<Vec<T>>
where
    F: Future<Output = Result<T>>,
{
    let results = join_all(steps.into_iter().map(|step| async {
        let result = step.await;
        if result.is_err() {
            ctx.stop.cancel();
        }
        result
    }))
    .await;
    let mut first_stop = None;
    let mut values = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(value) => values.push(value),
            Err(error) if is_stopped(&error) => {
                first_stop.get_or_insert(error);
            }
            Err(error) => return Err(error),
        }
    }
    match first_stop {
        Some(error) => Err(error),
        None => Ok(values),
    }
}

fn check_stop(ctx: &Ctx<'_>) -> Result<()> {
    if ctx.stop.is_cancelled() {
        Err(stopped())
    } else {
        Ok(())
    }
}

/// Copies `src` to `dst` once. Use a [`Copier`] to copy several images in one run.
pub async fn copy(
    client: &Client,
    src: &Reference,
    dst: &Reference,
    options: CopyOptions,
) -> std::result::Result<CopyReport, CopyError> {
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

    /// Copies `src` to `dst`. On failure the error names the tags already set.
    pub async fn copy(
        &self,
        src: &Reference,
        dst: &Reference,
    ) -> std::result::Result<CopyReport, CopyError> {
        let mut set = Vec::new();
        let result = self.run(src, dst, &mut set).await;
        match result {
            Ok(report) => Ok(report),
            Err(_) if self.options.cancel.is_cancelled() => Err(CopyError::cancelled(
                &src.to_string(),
                &dst.to_string(),
                set,
            )),
            Err(error) => Err(CopyError {
                error,
                tags: set,
                cancelled: false,
            }),
        }
    }

    async fn run(
        &self,
        src: &Reference,
        dst: &Reference,
        set: &mut Vec<TagEntry>,
    ) -> Result<CopyReport> {
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
            stop: self.options.cancel.child_token(),
        };
        let report = |source_digest: Digest, top: TopLevel, manifests, tags, referrers| {
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            CopyReport {
                source: src.to_string(),
                destination: dst.to_string(),
                source_digest,
                digest: top.digest,
                media_type: top.media_type,
                size: top.size,
                manifests,
                tags,
                referrers,
                totals: tally.totals(counters.snapshot(), elapsed_ms),
                dry_run: self.options.dry_run,
            }
        };

        check_stop(&ctx)?;
        let source = match ctx.src.head_manifest(src.target()).await? {
            Some(head) => head,
            None => return Err(ctx.src.manifest_not_found("HEAD", src.target())),
        };
        let tags = destination_tags(dst, &self.options.extra_tags);
        let heads: Vec<Option<ManifestHead>> =
            try_join_all(tags.iter().map(|tag| ctx.dst.head_manifest(tag))).await?;
        let current: Vec<Option<Digest>> = heads
            .iter()
            .map(|h| h.as_ref().map(|h| h.digest.clone()))
            .collect();

        // What the tags will point at, when the HEADs alone tell: the source itself, unless a
        // platform subset of an index makes a new one, whose digest only the last copy knows.
        let expected =
            if self.options.platforms.is_empty() || !media_type::is_index(&source.media_type) {
                Some(source.digest.clone())
            } else {
                self.options
                    .last
                    .as_ref()
                    .filter(|last| last.source_digest == source.digest)
                    .map(|last| last.digest.clone())
            };
        if let Some(expected) = &expected
            && !tags.is_empty()
            && current.iter().all(|d| d.as_ref() == Some(expected))
            && dst.digest().is_none_or(|wanted| wanted == expected)
            && let Some(Some(head)) = heads.first()
        {
            let top = TopLevel::from_head(head);
            let manifests = vec![ManifestEntry {
                platform: None,
                digest: top.digest.clone(),
                size: top.size,
                media_type: top.media_type.clone(),
                outcome: ManifestOutcome::Present,
            }];
            // Signatures can be added to an unchanged image: ask for the top-level image's
            // referrers (one request when there are none). The children's are looked at only
            // when the image itself is copied: reading them would cost the manifest GET a warm
            // copy exists to avoid, and signers sign the digest a tag names.
            let referrers = if self.options.referrers {
                referrers::copy_referrers(&ctx, std::slice::from_ref(expected)).await?
            } else {
                Vec::new()
            };
            let tags = TagEntry::plan(&tags, current, expected);
            return Ok(report(source.digest, top, manifests, tags, referrers));
        }

        check_stop(&ctx)?;
        // By digest: what the HEAD saw, even if the tag moves meanwhile.
        let fetched = ctx.src.get_manifest(source.digest.as_str()).await?;
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
            // By digest first when nothing else will name it yet: untagged, or referrers
            // about to be pushed with it as their subject.
            if tags.is_empty() || self.options.referrers {
                push(&ctx, top.digest().as_str(), &top).await?;
            }
        }

        // Referrers before tags: a tag never points at an image without its signatures.
        let referrers = if self.options.referrers {
            let subjects: Vec<Digest> = manifests.iter().map(|m| m.digest.clone()).collect();
            referrers::copy_referrers(&ctx, &subjects).await?
        } else {
            Vec::new()
        };

        // Tags last: everything they point at is in place by now.
        let tag_entries = TagEntry::plan(&tags, current, top.digest());
        for entry in &tag_entries {
            if entry.outcome != TagOutcome::Unchanged {
                check_stop(&ctx)?;
                push(&ctx, &entry.tag, &top).await?;
                set.push(entry.clone());
            }
        }

        let top_level = TopLevel::from_manifest(&top);
        Ok(report(
            source.digest,
            top_level,
            manifests,
            tag_entries,
            referrers,
        ))
    }
}

/// The top-level manifest as the report describes it.
struct TopLevel {
    digest: Digest,
    media_type: String,
    size: u64,
}

impl TopLevel {
    fn from_head(head: &ManifestHead) -> Self {
        TopLevel {
            digest: head.digest.clone(),
            media_type: head.media_type.clone(),
            size: head.size,
        }
    }

    fn from_manifest(manifest: &Manifest) -> Self {
        TopLevel {
            digest: manifest.digest().clone(),
            media_type: manifest.media_type().to_string(),
            size: manifest.size(),
        }
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
            all(
                ctx,
                manifest
                    .children()
                    .iter()
                    .map(|child| copy_child(ctx, child)),
            )
            .await
        } else {
            all(
                ctx,
                manifest.blobs().into_iter().map(|blob| async move {
                    let digest = descriptor_digest(blob)?;
                    blobs::ensure_blob(ctx, &digest, blob.size()).await
                }),
            )
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
    check_stop(ctx)?;
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
