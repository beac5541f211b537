//! A small local cache of what earlier pushes produced, so an unchanged layer is neither
//! recompressed nor re-uploaded, and an unchanged image needs no export at all.
//!
//! Three maps, in one JSON file (`$FERRY_CACHE_DIR`, else `$XDG_CACHE_HOME/ecr-ferry`, else
//! `~/.cache/ecr-ferry`, file `push-cache.json`):
//! - layers: the layer's identity in an export (its `diff_id`, or the classic archive's v1 layer
//!   id, which precedes the layer data in the tar) + compression → the pushed blob;
//! - images: image ID + compression → the manifest pushed for it (the same on every registry:
//!   compression is deterministic);
//! - holders: registry → blob digest → the repositories a push left it in, newest first, so a
//!   push to another repository of that registry can mount the blob instead of sending it —
//!   what the Docker Engine remembers for `docker push`.
//!
//! The cache only ever saves work: every entry is checked against the registry (a HEAD, or a
//! mount the registry may refuse) before it is trusted, and a missing or unreadable file is an
//! empty cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use ferry_registry::digest::Digest;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CachedBlob {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CachedImage {
    /// The manifest's exact bytes, as pushed.
    pub manifest: String,
    pub media_type: String,
    /// Config and layer bytes; for an index, its images' (which the index itself does not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Repositories remembered per blob and registry: enough to find one that still has it, and a
/// bound on the file's growth when one image goes to many repositories.
const HOLDERS_PER_BLOB: usize = 4;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Contents {
    #[serde(default)]
    layers: HashMap<String, CachedBlob>,
    #[serde(default)]
    images: HashMap<String, CachedImage>,
    /// registry → digest → repositories, newest first.
    #[serde(default)]
    holders: HashMap<String, HashMap<String, Vec<String>>>,
}

pub struct PushCache {
    path: Option<PathBuf>,
    contents: Mutex<Contents>,
    /// Whether anything changed since the file was read: a warm push writes nothing.
    dirty: std::sync::atomic::AtomicBool,
}

impl PushCache {
    /// The cache at its default place; `None` (no cache) when no place can be found.
    pub fn open_default() -> PushCache {
        PushCache::open(default_dir().map(|d| d.join("push-cache.json")))
    }

    pub fn open(path: Option<PathBuf>) -> PushCache {
        let contents = path
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        PushCache {
            path,
            contents: Mutex::new(contents),
            dirty: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A cache that remembers nothing beyond this process.
    pub fn disabled() -> PushCache {
        PushCache::open(None)
    }

    pub fn layer(&self, key: &str) -> Option<CachedBlob> {
        self.contents.lock().ok()?.layers.get(key).cloned()
    }

    pub fn set_layer(&self, key: String, blob: CachedBlob) {
        if let Ok(mut c) = self.contents.lock()
            && c.layers.get(&key) != Some(&blob)
        {
            c.layers.insert(key, blob);
            self.mark_dirty();
        }
    }

    pub fn image(&self, key: &str) -> Option<CachedImage> {
        self.contents.lock().ok()?.images.get(key).cloned()
    }

    pub fn set_image(&self, key: String, image: CachedImage) {
        if let Ok(mut c) = self.contents.lock()
            && c.images.get(&key) != Some(&image)
        {
            c.images.insert(key, image);
            self.mark_dirty();
        }
    }

    /// The repositories of `registry` that a push left `digest` in, newest first.
    pub fn holders(&self, registry: &str, digest: &Digest) -> Vec<String> {
        self.contents
            .lock()
            .ok()
            .and_then(|c| c.holders.get(registry)?.get(digest.as_str()).cloned())
            .unwrap_or_default()
    }

    /// Records that `repository` of `registry` holds every one of `digests` (all present there
    /// now). Unchanged knowledge leaves the cache clean, so a warm push writes nothing.
    pub fn record_holder<'a>(
        &self,
        registry: &str,
        repository: &str,
        digests: impl IntoIterator<Item = &'a Digest>,
    ) {
        let Ok(mut c) = self.contents.lock() else {
            return;
        };
        let by_digest = c.holders.entry(registry.to_string()).or_default();
        let mut changed = false;
        for digest in digests {
            let repos = by_digest.entry(digest.as_str().to_string()).or_default();
            if repos.first().map(String::as_str) == Some(repository) {
                continue;
            }
            repos.retain(|r| r != repository);
            repos.insert(0, repository.to_string());
            repos.truncate(HOLDERS_PER_BLOB);
            changed = true;
        }
        drop(c);
        if changed {
            self.mark_dirty();
        }
    }

    /// Forgets that `repository` holds `digest`: the registry would not mount it from there.
    pub fn forget_holder(&self, registry: &str, repository: &str, digest: &Digest) {
        let Ok(mut c) = self.contents.lock() else {
            return;
        };
        let Some(repos) = c
            .holders
            .get_mut(registry)
            .and_then(|d| d.get_mut(digest.as_str()))
        else {
            return;
        };
        let before = repos.len();
        repos.retain(|r| r != repository);
        let changed = repos.len() != before;
        drop(c);
        if changed {
            self.mark_dirty();
        }
    }

    fn mark_dirty(&self) {
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Writes the cache back (atomically: a crash leaves the old file or the new one). A cache
    /// that cannot be written only costs speed next time, so failures are logged, not raised.
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        if !self.dirty.swap(false, std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let Ok(contents) = self.contents.lock() else {
            return;
        };
        if let Err(e) = write_atomically(path, &contents) {
            tracing::warn!(path = %path.display(), error = %e, "could not save the push cache");
        }
    }
}

fn write_atomically(path: &Path, contents: &Contents) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(contents)?)?;
    std::fs::rename(tmp, path)
}

fn default_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("FERRY_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("ecr-ferry")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("ecr-ferry")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_round_trip_and_tolerates_garbage() {
        let dir = std::env::temp_dir().join(format!("ferry-cache-test-{}", std::process::id()));
        let path = dir.join("push-cache.json");
        let cache = PushCache::open(Some(path.clone()));
        let blob = CachedBlob {
            digest: Digest::sha256_of(b"x"),
            size: 1,
            media_type: "m".into(),
        };
        cache.set_layer("v1:abc|gzip".into(), blob.clone());
        cache.save();
        assert_eq!(
            PushCache::open(Some(path.clone())).layer("v1:abc|gzip"),
            Some(blob)
        );
        std::fs::write(&path, b"not json").unwrap();
        assert_eq!(PushCache::open(Some(path)).layer("v1:abc|gzip"), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn remembers_holders_newest_first_per_registry_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("push-cache.json");
        let cache = PushCache::open(Some(path.clone()));
        let (a, b) = (Digest::sha256_of(b"a"), Digest::sha256_of(b"b"));
        cache.record_holder("reg:5000", "team/one", [&a, &b]);
        cache.record_holder("reg:5000", "team/two", [&a]);
        cache.record_holder("other:5000", "elsewhere", [&a]);
        assert_eq!(cache.holders("reg:5000", &a), ["team/two", "team/one"]);
        assert_eq!(cache.holders("reg:5000", &b), ["team/one"]);
        assert_eq!(cache.holders("other:5000", &a), ["elsewhere"]);
        assert!(cache.holders("nowhere", &a).is_empty());

        // Pushing to a known holder again moves it to the front; the list stays bounded.
        cache.record_holder("reg:5000", "team/one", [&a]);
        assert_eq!(cache.holders("reg:5000", &a), ["team/one", "team/two"]);
        for n in 0..10 {
            cache.record_holder("reg:5000", &format!("r{n}"), [&a]);
        }
        assert_eq!(
            cache.holders("reg:5000", &a),
            ["r9", "r8", "r7", "r6"],
            "only the newest {HOLDERS_PER_BLOB} are kept"
        );
        cache.forget_holder("reg:5000", "r8", &a);
        assert_eq!(cache.holders("reg:5000", &a), ["r9", "r7", "r6"]);
        cache.save();
        assert_eq!(
            PushCache::open(Some(path)).holders("reg:5000", &b),
            ["team/one"]
        );
    }

    #[test]
    fn recording_what_is_known_leaves_the_cache_clean() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("push-cache.json");
        let cache = PushCache::open(Some(path.clone()));
        let a = Digest::sha256_of(b"a");
        cache.record_holder("reg", "app", [&a]);
        cache.save();
        std::fs::remove_file(&path).unwrap();
        // The same fact again, and forgetting what was never known: nothing to write.
        cache.record_holder("reg", "app", [&a]);
        cache.forget_holder("reg", "other", &a);
        cache.save();
        assert!(!path.exists(), "a warm push must not rewrite the cache");
    }
}
