//! What a copy did, for people (the summary table) and programs (`--json`), and the progress
//! events it emits while it works.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::client::RequestCounts;
use crate::digest::Digest;

#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    pub source: String,
    pub destination: String,
    /// What the source reference resolved to. The same as `digest` unless a platform subset
    /// made a new index.
    pub source_digest: Digest,
    /// The digest the destination tag(s) now point at.
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The top-level manifest first, then each child of an index. A warm copy that stopped
    /// after its `HEAD`s lists the top-level manifest alone: it never read the children.
    pub manifests: Vec<ManifestEntry>,
    pub tags: Vec<TagEntry>,
    pub referrers: Vec<ManifestEntry>,
    pub totals: Totals,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestEntry {
    /// `os/arch[/variant]` for children of an index.
    pub platform: Option<String>,
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub outcome: ManifestOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestOutcome {
    /// Pushed (or, in a dry run, would be).
    Pushed,
    /// The destination already had it.
    Present,
}

#[derive(Debug, Clone, Serialize)]
pub struct TagEntry {
    pub tag: String,
    pub outcome: TagOutcome,
    /// Where the tag pointed before the copy; `None` when it did not exist.
    pub previous: Option<Digest>,
    /// Where it points now (in a dry run: would point).
    pub digest: Digest,
}

impl TagEntry {
    /// What setting each of `tags` (currently pointing at `current`) to `new` will do.
    pub fn plan(tags: &[String], current: Vec<Option<Digest>>, new: &Digest) -> Vec<TagEntry> {
        tags.iter()
            .zip(current)
            .map(|(tag, previous)| TagEntry {
                tag: tag.clone(),
                outcome: match &previous {
                    Some(d) if d == new => TagOutcome::Unchanged,
                    Some(_) => TagOutcome::Moved,
                    None => TagOutcome::Created,
                },
                previous,
                digest: new.clone(),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TagOutcome {
    Created,
    Moved,
    Unchanged,
}

impl TagOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            TagOutcome::Created => "created",
            TagOutcome::Moved => "moved",
            TagOutcome::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    pub blobs_uploaded: u64,
    pub blobs_mounted: u64,
    pub blobs_skipped: u64,
    /// Blob bytes sent to the destination.
    pub bytes_uploaded: u64,
    pub manifests_pushed: u64,
    pub requests: RequestCounts,
    pub elapsed_ms: u64,
}

/// How one blob reached the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobOutcome {
    Uploaded,
    Mounted,
    /// Already there.
    Skipped,
}

/// Live progress of a copy or a push; every method has a no-op default.
///
/// A push reports each layer under its identity in the source (the digest of the layer as the
/// export names it: its `diff_id`, or a classic archive's v1 id), with the size and bytes read
/// there, since what it becomes is known only once it is through.
pub trait Progress: Send + Sync {
    /// What is happening now, when it is not a blob moving (the Engine preparing an export).
    fn phase(&self, _what: &str) {}
    fn blob_started(&self, _digest: &Digest, _size: u64) {}
    /// `bytes` more bytes of this blob went out (for a push: were read).
    fn blob_advanced(&self, _digest: &Digest, _bytes: u64) {}
    fn blob_finished(&self, _digest: &Digest, _size: u64, _outcome: BlobOutcome) {}
    fn manifest_pushed(&self, _target: &str, _digest: &Digest) {}
}

/// Counters a copy fills in concurrently.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    uploaded: AtomicU64,
    mounted: AtomicU64,
    skipped: AtomicU64,
    bytes: AtomicU64,
    manifests: AtomicU64,
}

impl Tally {
    pub fn blob(&self, outcome: BlobOutcome, size: u64) {
        let counter = match outcome {
            BlobOutcome::Uploaded => {
                self.bytes.fetch_add(size, Ordering::Relaxed);
                &self.uploaded
            }
            BlobOutcome::Mounted => &self.mounted,
            BlobOutcome::Skipped => &self.skipped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn manifest(&self) {
        self.manifests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn totals(&self, requests: RequestCounts, elapsed_ms: u64) -> Totals {
        Totals {
            blobs_uploaded: self.uploaded.load(Ordering::Relaxed),
            blobs_mounted: self.mounted.load(Ordering::Relaxed),
            blobs_skipped: self.skipped.load(Ordering::Relaxed),
            bytes_uploaded: self.bytes.load(Ordering::Relaxed),
            manifests_pushed: self.manifests.load(Ordering::Relaxed),
            requests,
            elapsed_ms,
        }
    }
}
