//! A small local cache of what earlier pushes produced, so an unchanged layer is neither
//! recompressed nor re-uploaded, and an unchanged image needs no export at all.
//!
//! Two maps, in one JSON file (`$FERRY_CACHE_DIR`, else `$XDG_CACHE_HOME/ecr-ferry`, else
//! `~/.cache/ecr-ferry`, file `push-cache.json`):
//! - layers: the layer's identity in an export (its `diff_id`, or the classic archive's v1 layer
//!   id, which precedes the layer data in the tar) + compression → the pushed blob;
//! - images: image ID + compression → the manifest pushed for it.
//!
//! The cache only ever saves work: every entry is checked against the registry (a HEAD) before
//! it is trusted, and a missing or unreadable file is an empty cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

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
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Contents {
    #[serde(default)]
    layers: HashMap<String, CachedBlob>,
    #[serde(default)]
    images: HashMap<String, CachedImage>,
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

    /// Writes the cache back (atomically: a crash leaves the old file or the new one). A cache
    /// that cannot be written only costs speed next time, so failures are logged, not raised.
    fn mark_dirty(&self) {
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
    }

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
}
