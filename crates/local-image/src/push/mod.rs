//! Pushing a local image — from the Docker Engine, a `docker save` archive or an OCI layout —
//! to a registry.
//!
//! The data path, top-down, for an image in the Docker Engine:
//! 1. Inspect it (image ID, layer `diff_ids`) and `HEAD` every destination tag, at once.
//! 2. If the cache holds the manifest pushed for this image ID: when every tag already points
//!    at it, stop (no export at all); when every blob it names is in the repository, or can be
//!    mounted from another repository of the registry that the cache says holds it
//!    ([`mount`]) — for an index, when each of its images is in the repository — just set the
//!    tags.
//! 3. Otherwise export the image as a stream and push each layer in one pass ([`archive`]):
//!    compressed on the fly unless it arrives compressed, skipped (or mounted) when the cache
//!    knows what it becomes and the registry has it.
//! 4. For an export of the containerd image store, push its own manifests as they are
//!    ([`exported`]); for any other, upload the config and build the manifest from the
//!    archive's `manifest.json` ([`rebuilt`]).
//! 5. Push it under the first tag, then each further tag by a manifest PUT only — last, so a
//!    tag never points at anything incomplete.
//!
//! A pass that fails on the way (a reset, a 5xx, an expired token under a streamed upload) is
//! run again whole, as the retry policy allows; see [`push_once`] for why and what it costs.

mod archive;
mod buffers;
pub mod cache;
pub mod compress;
mod exported;
mod gzip;
mod hashing;
mod layout;
mod mount;
mod rebuilt;
mod sessions;
mod spool;
#[cfg(test)]
mod tests;
mod upload;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::future::try_join_all;
use serde::Serialize;

pub use cache::PushCache;
pub use compress::Compression;

use crate::docker::{DockerEngine, DockerError, ExportReader, ImageInspect};
use crate::error::{Error, Result};
use crate::source::ImageSource;
use ferry_registry::client::{Client, Repository, RequestCounters, RequestCounts};
use ferry_registry::copy::{ImmutableTags, Progress, TagEntry, TagOutcome};
use ferry_registry::digest::Digest;
use ferry_registry::manifest::Manifest;
use ferry_registry::reference::Reference;
use ferry_registry::retry::Restarts;

pub struct PushOptions {
    pub compression: Compression,
    /// Tags to set, in order; at least one.
    pub tags: Vec<String>,
    pub immutable_tags: Option<ImmutableTags>,
    pub cache: Arc<PushCache>,
    /// The engine for [`ImageSource::Daemon`]; default: from `DOCKER_HOST`.
    pub engine: Option<DockerEngine>,
    /// The engine's inspect of the image, when the caller already has it.
    pub inspected: Option<crate::docker::ImageInspect>,
    /// Live progress: what the source is doing, each layer as it is read.
    pub progress: Option<Arc<dyn Progress>>,
    /// An export of the image started ahead by the caller ([`ExportAhead::start`]).
    pub export_ahead: ExportAhead,
}

type ExportTask = tokio::task::JoinHandle<std::result::Result<ExportReader, DockerError>>;

/// An export of the Docker Engine started before the push itself, while the caller prepares
/// the registry (an ECR repository to create, AWS credentials to fetch: a few hundred ms on real
/// AWS), so that the Engine's own preparation (about half a second per 100 MiB, before its
/// first byte) overlaps them. Dropped unused, it closes the connection and the Engine stops.
#[derive(Default)]
pub struct ExportAhead(std::sync::Mutex<Option<ExportTask>>);

impl ExportAhead {
    /// Starts exporting `name` now, unless `cache` shows the image pushed before: then the push
    /// may need no export at all, and decides itself.
    pub fn start(
        engine: &DockerEngine,
        name: &str,
        inspect: &ImageInspect,
        cache: &PushCache,
        compression: Compression,
    ) -> ExportAhead {
        ExportAhead(std::sync::Mutex::new(export_unless_cached(
            engine,
            name,
            inspect,
            cache,
            compression,
        )))
    }

    fn take(&self) -> Option<ExportTask> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Starts the Engine's export of `name` on a blocking thread (read straight off the socket),
/// unless `cache` shows the image pushed before: then the push may need no export at all.
fn export_unless_cached(
    engine: &DockerEngine,
    name: &str,
    inspect: &ImageInspect,
    cache: &PushCache,
    compression: Compression,
) -> Option<ExportTask> {
    if cache.image(&image_key(inspect, compression)).is_some() {
        return None;
    }
    let (engine, name) = (engine.clone(), name.to_string());
    Some(tokio::task::spawn_blocking(move || engine.export(&name)))
}

/// The push cache's key for an image pushed with `compression`.
fn image_key(inspect: &ImageInspect, compression: Compression) -> String {
    format!("{}|{}", inspect.id, compression.as_str())
}

#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    pub source: String,
    pub destination: String,
    pub digest: Digest,
    pub media_type: String,
    /// Config and layers, as stored.
    pub size: u64,
    pub tags: Vec<TagEntry>,
    pub layers_uploaded: u64,
    /// Blobs not sent: the repository had them, or (counted in `blobs_mounted` too) the
    /// registry mounted them from another repository.
    pub layers_skipped: u64,
    /// Blobs (layers and config) mounted from another repository of the registry.
    pub blobs_mounted: u64,
    pub bytes_uploaded: u64,
    /// Whether the image had to be read from its source (false: the cache sufficed).
    pub read_source: bool,
    /// What the user should know about what was pushed (a platform left out, …).
    pub notes: Vec<String>,
    pub requests: RequestCounts,
    pub elapsed_ms: u64,
}

#[derive(Default)]
pub(crate) struct Tally {
    uploaded: AtomicU64,
    skipped: AtomicU64,
    mounted: AtomicU64,
    bytes: AtomicU64,
}

impl Tally {
    fn uploaded(&self, size: u64) {
        self.uploaded.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(size, Ordering::Relaxed);
    }

    fn skipped(&self, _size: u64) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// A blob mounted from another repository; a layer counts as skipped too.
    fn mounted(&self, layer: bool) {
        if layer {
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
        self.mounted.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self, pushed: &archive::PushedBlob) {
        match pushed.fate {
            archive::Fate::Uploaded => self.uploaded(pushed.blob.size),
            archive::Fate::Present => self.skipped(pushed.blob.size),
            archive::Fate::Mounted => self.mounted(true),
        }
    }
}

/// Pushes `source` to the repository `destination` names, under `options.tags`.
pub async fn push(
    client: &Client,
    source: &ImageSource,
    destination: &Reference,
    options: &PushOptions,
) -> Result<PushReport> {
    let started = Instant::now();
    if options.tags.is_empty() {
        return Err(Error::Config("a push needs at least one tag".into()));
    }
    let counters = Arc::new(RequestCounters::default());
    let dst = client
        .repository(destination)
        .with_counters(counters.clone());
    let mut restarts = Restarts::new(client.retry_policy().clone());
    let (pushed, tally) = loop {
        let tally = Tally::default();
        let error = match push_once(&dst, source, options, &tally).await {
            Ok(pushed) => break (pushed, tally),
            Err(error) => error,
        };
        // A layer's upload streams the export as it is read, and the export cannot be
        // rewound: the pass is the unit that can run again (what it stored stays).
        let Some(delay) = error.registry().and_then(|e| restarts.after(e)) else {
            return Err(error);
        };
        let attempt = restarts.attempt();
        tracing::warn!(%error, ?delay, attempt, "the push failed; pushing again");
        if let Some(progress) = &options.progress {
            progress.phase(&format!("{error}; pushing again (what is stored stays)…"));
        }
        tokio::time::sleep(delay).await;
    };
    let Pushed {
        manifest,
        size,
        notes,
        tags,
        read_source,
    } = pushed;
    Ok(PushReport {
        source: source.display(),
        destination: format!("{}/{}", destination.registry(), destination.repository()),
        digest: manifest.digest().clone(),
        media_type: manifest.media_type().to_string(),
        size,
        tags,
        layers_uploaded: tally.uploaded.load(Ordering::Relaxed),
        layers_skipped: tally.skipped.load(Ordering::Relaxed),
        blobs_mounted: tally.mounted.load(Ordering::Relaxed),
        bytes_uploaded: tally.bytes.load(Ordering::Relaxed),
        read_source,
        notes,
        requests: counters.snapshot(),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// What one pass of a push achieved: the manifest, stored and tagged.
struct Pushed {
    manifest: Manifest,
    size: u64,
    notes: Vec<String>,
    tags: Vec<TagEntry>,
    read_source: bool,
}

/// One pass of a push, from the tag lookups to the last tag.
///
/// Why a failed pass is run again whole: a layer's upload is a streamed request made of the
/// export as it is read, and the export cannot be rewound, so an upload cut short (a reset, a
/// 5xx answer to the stream, a token that expired under it) can only be redone by reading the
/// image again. What the failed pass stored is not sent twice: each layer it committed is in
/// the push cache under its `diff_id`, and the next pass finds it by `HEAD` and skips it. No tag
/// is set before every blob is in, so a failed pass leaves the tags as they were.
async fn push_once(
    dst: &Repository,
    source: &ImageSource,
    options: &PushOptions,
    tally: &Tally,
) -> Result<Pushed> {
    let heads = try_join_all(options.tags.iter().map(|tag| dst.head_manifest(tag)));
    let (current, ready, read_source) = match source {
        ImageSource::Daemon { name } => {
            let engine = match &options.engine {
                Some(engine) => engine.clone(),
                None => DockerEngine::from_env()?,
            };
            // An image this cache never saw pushed has to be exported whatever the tags say,
            // and the Engine writes the whole image out before its first byte (~0.5 s for
            // 100 MiB): so the export starts as soon as the inspect names the image, alongside
            // the tag lookups and the connection to the registry.
            let start_export = |inspect: &ImageInspect| {
                let export = options.export_ahead.take().or_else(|| {
                    export_unless_cached(
                        &engine,
                        name,
                        inspect,
                        &options.cache,
                        options.compression,
                    )
                });
                if export.is_some()
                    && let Some(progress) = &options.progress
                {
                    progress.phase(&format!("the Docker Engine is exporting {name}…"));
                }
                export
            };
            // The Engine and the registry answer at the same time: a warm push is these two
            // round trips, so they overlap. A missing image is reported as soon as the Engine
            // says so, whatever the registry is doing (it may be down and retried).
            let (heads, inspect, export) = match &options.inspected {
                Some(inspect) => {
                    let export = start_export(inspect);
                    (heads.await?, inspect.clone(), export)
                }
                None => {
                    let inspected = async {
                        let inspect = engine.inspect(name).await?;
                        let export = start_export(&inspect);
                        Ok::<_, Error>((inspect, export))
                    };
                    let heads = async { Ok::<_, Error>(heads.await?) };
                    let ((inspect, export), heads) = tokio::try_join!(inspected, heads)?;
                    (heads, inspect, export)
                }
            };
            let current = tag_digests(heads);
            let image_key = image_key(&inspect, options.compression);
            let cached =
                reuse_cached(dst, &options.cache, &image_key, &options.tags, &current).await?;
            match (cached, export) {
                (Some(reused), _) => {
                    for layer in reused.mounted {
                        tally.mounted(layer);
                    }
                    (current, reused.ready, false)
                }
                (None, export) => {
                    let sessions = sessions_ahead(dst, &inspect, options);
                    let export = export.unwrap_or_else(|| {
                        let (engine, name) = (engine.clone(), name.clone());
                        tokio::task::spawn_blocking(move || engine.export(&name))
                    });
                    let reader = export
                        .await
                        .map_err(|e| Error::Other(format!("starting the export failed: {e}")))??;
                    let from = ArchiveOrigin::Engine {
                        wanted: name.as_str(),
                    };
                    let ready = push_archive(reader, dst, options, tally, from, sessions).await?;
                    options.cache.set_image(
                        image_key,
                        cache::CachedImage {
                            manifest: String::from_utf8_lossy(ready.manifest.raw()).into_owned(),
                            media_type: ready.manifest.media_type().to_string(),
                            size: Some(ready.size),
                        },
                    );
                    (current, ready, true)
                }
            }
        }
        ImageSource::DockerArchive { path } => {
            let file = std::fs::File::open(path).map_err(|e| {
                Error::Config(format!(
                    "cannot read docker archive {}: {e}",
                    path.display()
                ))
            })?;
            let current = tag_digests(heads.await?);
            let ready = push_archive(file, dst, options, tally, ArchiveOrigin::File, None).await?;
            (current, ready, true)
        }
        ImageSource::OciLayout { dir, tag } => {
            let current = tag_digests(heads.await?);
            let manifest = layout::select(dir, tag.as_deref()).await?;
            layout::push_contents(dir, &manifest, dst, tally, &options.progress).await?;
            (current, Ready::of(manifest), true)
        }
    };
    let Ready {
        manifest,
        size,
        notes,
    } = ready;
    // Every blob the manifest names is in the repository now: remember where, so a push of
    // these blobs to another repository of this registry can mount them.
    if !manifest.is_index() {
        let digests: Vec<Digest> = manifest
            .blobs()
            .into_iter()
            .filter_map(|d| ferry_registry::manifest::descriptor_digest(d).ok())
            .collect();
        options
            .cache
            .record_holder(dst.registry(), dst.name(), &digests);
    }
    options.cache.save();

    let tags = set_tags(
        dst,
        &manifest,
        &options.tags,
        current,
        options.immutable_tags.as_ref(),
    )
    .await?;
    Ok(Pushed {
        manifest,
        size,
        notes,
        tags,
        read_source,
    })
}

/// Opens an upload session for each layer of `inspect` that the cache cannot account for (so
/// it will be uploaded), while the Engine prepares the export; see [`sessions`].
fn sessions_ahead(
    dst: &Repository,
    inspect: &ImageInspect,
    options: &PushOptions,
) -> Option<sessions::Sessions> {
    let unknown = inspect
        .diff_ids
        .iter()
        .filter(|d| {
            let key = archive::diff_id_key(d, options.compression);
            options.cache.layer(&key).is_none()
        })
        .count();
    let count = unknown.min(upload::UPLOADS_IN_FLIGHT);
    // A classic store's image ID is its config's digest.
    let config = Some(inspect.id.clone());
    (count > 0).then(|| sessions::Sessions::open(dst, count, config))
}

fn tag_digests(
    heads: Vec<Option<ferry_registry::endpoints::manifests::ManifestHead>>,
) -> Vec<Option<Digest>> {
    heads
        .into_iter()
        .map(|head| head.map(|h| h.digest))
        .collect()
}

/// A manifest whose contents are all in the repository, ready to be tagged.
struct Ready {
    manifest: Manifest,
    /// Config and layer bytes, an index's images' included.
    size: u64,
    notes: Vec<String>,
}

impl Ready {
    fn of(manifest: Manifest) -> Ready {
        let size = manifest.blobs().iter().map(|d| d.size()).sum();
        Ready {
            manifest,
            size,
            notes: Vec::new(),
        }
    }
}

/// A cached manifest that can stand as it is.
struct Reused {
    ready: Ready,
    /// One entry per blob the registry mounted from another repository to make it so: whether
    /// it is a layer (else the config).
    mounted: Vec<bool>,
}

/// The manifest pushed last time for this image, if it can stand as it is: every tag already
/// points at it, or every blob it names is in the repository or was just mounted there.
///
/// The blobs are checked all at once. If any is missing and cannot be mounted, the image is
/// exported as if nothing were cached — blobs mounted meanwhile are then found by HEAD — and
/// nothing points at the manifest until every blob is in.
async fn reuse_cached(
    dst: &Repository,
    cache: &PushCache,
    image_key: &str,
    tags: &[String],
    current: &[Option<Digest>],
) -> Result<Option<Reused>> {
    let Some(cached) = cache.image(image_key) else {
        return Ok(None);
    };
    let Ok(manifest) = Manifest::from_raw(
        cached.manifest.into_bytes().into(),
        Some(&cached.media_type),
    ) else {
        return Ok(None);
    };
    let ready = |manifest: Manifest| {
        let mut ready = Ready::of(manifest);
        ready.size = cached.size.unwrap_or(ready.size);
        ready
    };
    if !tags.is_empty()
        && current
            .iter()
            .all(|d| d.as_ref() == Some(manifest.digest()))
    {
        return Ok(Some(Reused {
            ready: ready(manifest),
            mounted: Vec::new(),
        }));
    }
    if manifest.is_index() {
        // An index may stand if every image of it is in the repository already; bringing
        // them from elsewhere is an export's work.
        let present = try_join_all(
            manifest
                .children()
                .iter()
                .map(|d| dst.head_manifest(d.digest().as_ref())),
        )
        .await?;
        if present.iter().any(Option::is_none) {
            return Ok(None);
        }
        return Ok(Some(Reused {
            ready: ready(manifest),
            mounted: Vec::new(),
        }));
    }
    let presence = try_join_all(manifest.blobs().into_iter().map(|d| async move {
        let digest = ferry_registry::manifest::descriptor_digest(d)?;
        mount::ensure(dst, cache, &digest).await
    }))
    .await?;
    if presence.contains(&mount::Presence::Absent) {
        return Ok(None);
    }
    // `blobs()` lists the config first, then the layers.
    let first_layer = usize::from(manifest.config().is_some());
    let mounted = presence
        .iter()
        .enumerate()
        .filter(|(_, p)| **p == mount::Presence::Mounted)
        .map(|(i, _)| i >= first_layer)
        .collect();
    Ok(Some(Reused {
        ready: ready(manifest),
        mounted,
    }))
}

/// Where an archive comes from, which decides what is trusted.
#[derive(Clone, Copy)]
enum ArchiveOrigin<'a> {
    /// An export of the Docker Engine, which checked every layer against its `diff_id` while
    /// exporting; `wanted` is the image as the user named it.
    Engine { wanted: &'a str },
    /// A `docker save` file: its layers are hashed as they are read.
    File,
}

/// Pushes an exported image's layers and config, and returns its manifest (not yet tagged).
async fn push_archive(
    input: impl std::io::Read + Send + 'static,
    dst: &Repository,
    options: &PushOptions,
    tally: &Tally,
    origin: ArchiveOrigin<'_>,
    sessions: Option<sessions::Sessions>,
) -> Result<Ready> {
    let handle = tokio::runtime::Handle::current();
    let (wanted, hash_input) = match origin {
        ArchiveOrigin::Engine { wanted } => (Some(wanted), false),
        ArchiveOrigin::File => (None, true),
    };
    let mut collected = {
        let dst = dst.clone();
        let cache = options.cache.clone();
        let compression = options.compression;
        let progress = options.progress.clone();
        if let Some(progress) = &progress {
            progress.phase("pushing:");
        }
        let (pushed, sessions) = tokio::task::spawn_blocking(move || {
            let progress = progress.as_deref();
            let pass = archive::Pass {
                dst: &dst,
                compression,
                cache: &cache,
                handle: &handle,
                hash_input,
                progress,
                sessions: sessions.as_ref(),
            };
            let pushed = archive::push_layers(input, pass);
            (pushed, sessions)
        })
        .await
        .map_err(|e| Error::Other(format!("the archive reader failed: {e}")))?;
        if let Some(sessions) = sessions {
            sessions.close().await;
        }
        pushed?
    };
    for pushed in collected.blobs.values() {
        tally.count(pushed);
    }
    if let Some(exported) = exported::select(&collected, wanted) {
        return exported::push(dst, exported).await;
    }

    rebuilt::push_config_and_build(&mut collected, dst, options, wanted, hash_input).await
}

/// Points every tag at `manifest`: tags already there are left alone (even on immutable
/// repositories); a tag that would move on an immutable repository fails before any is set.
async fn set_tags(
    dst: &Repository,
    manifest: &Manifest,
    tags: &[String],
    current: Vec<Option<Digest>>,
    immutable: Option<&ImmutableTags>,
) -> Result<Vec<TagEntry>> {
    if let Some(rule) = immutable {
        rule.check(dst, tags, &current, manifest.digest())?;
    }
    let entries = TagEntry::plan(tags, current, manifest.digest());
    for entry in &entries {
        if entry.outcome != TagOutcome::Unchanged {
            dst.put_manifest(&entry.tag, manifest).await?;
        }
    }
    Ok(entries)
}
