//! A streaming reader over an exported image tar: the classic `docker save` format
//! (`<id>/layer.tar`, `<config hex>.json`, `manifest.json`) or the OCI layout that Docker
//! Engine 25+ exports (`oci-layout`, `index.json`, `blobs/sha256/…`, plus a `manifest.json`).
//!
//! A classic export puts `manifest.json` last, so nothing can know which file is which layer
//! before the layers have gone by. The reader therefore hands every entry over in tar order:
//! small JSON files whole, everything else as a reader to stream from, never buffered.
//!
//! Synchronous on purpose: `tar` is, and the push engine runs this on a blocking thread that
//! reads the export straight off the Engine's socket ([`crate::docker::ExportReader`]).

use std::io::{self, BufRead, BufReader, Cursor, Read};

use serde::{Deserialize, Deserializer};

use ferry_registry::digest::Digest;

/// JSON files are configs and manifests: a few KiB, and never near this.
pub const JSON_LIMIT: u64 = 16 * 1024 * 1024;

/// Enough to see a blob's first byte without a second read; big enough that a layer's first
/// reads by the consumer are served from it without extra copies.
const PEEK_CAPACITY: usize = 64 * 1024;

/// One file of the archive, in tar order.
pub enum ArchiveEntry<'a> {
    /// A layer or other blob (`<id>/layer.tar`, `blobs/sha256/<hex>`): read it through `reader`,
    /// as far as needed; the rest is skipped when the callback returns.
    Blob {
        path: String,
        size: u64,
        reader: &'a mut dyn Read,
    },
    /// A small JSON file (configs, `manifest.json`, `index.json`, `repositories`, `<id>/json`,
    /// `oci-layout`, a JSON blob), read whole.
    Json { path: String, bytes: Vec<u8> },
    /// A symlink or hard link to an earlier entry. `docker save` writes a layer that repeats an
    /// earlier one in the same image (same diff ID) as a symlink to the first copy, and
    /// `manifest.json` lists the link's path. `target` is resolved to an archive path.
    Link { path: String, target: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("reading the image archive: {}", io_chain(.0))]
    Io(#[from] io::Error),

    #[error("the image archive is empty")]
    Empty,

    #[error(
        "{path} in the image archive is {size} bytes; a JSON file of an image is never more than \
         {JSON_LIMIT} bytes"
    )]
    JsonTooLarge { path: String, size: u64 },

    #[error("invalid manifest.json in the image archive: {0}")]
    InvalidManifest(serde_json::Error),

    /// A failure of the callback's own, carried through unchanged.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// `tar` wraps the underlying error in its own context ("failed to read entire block"); the
/// cause a user can act on (the Engine's own message, a reset connection) is further down.
fn io_chain(e: &io::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Reads an exported image tar entry by entry. Send when `R` is, so it can be moved to a
/// blocking thread.
pub struct ArchiveReader<R: Read> {
    archive: tar::Archive<R>,
}

impl<R: Read> ArchiveReader<R> {
    pub fn new(r: R) -> Self {
        ArchiveReader {
            archive: tar::Archive::new(r),
        }
    }

    /// Calls `f` with every file, link and JSON document of the archive, in tar order.
    /// Directories and `VERSION` files are skipped. Stops at the first error, `f`'s or the
    /// archive's.
    pub fn for_each(
        mut self,
        mut f: impl FnMut(ArchiveEntry<'_>) -> Result<(), ArchiveError>,
    ) -> Result<(), ArchiveError> {
        let mut any = false;
        for entry in self.archive.entries()? {
            let entry = entry?;
            any = true;
            let path = normalize_path(&String::from_utf8_lossy(&entry.path_bytes()));
            let entry_type = entry.header().entry_type();
            match entry_type {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let Some(link) = entry.link_name_bytes() else {
                        continue;
                    };
                    let link = String::from_utf8_lossy(&link).into_owned();
                    // A symlink is relative to its own directory, a hard link to the archive root.
                    let target = if entry_type == tar::EntryType::Symlink && !link.starts_with('/')
                    {
                        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
                        normalize_path(&format!("{dir}/{link}"))
                    } else {
                        normalize_path(&link)
                    };
                    f(ArchiveEntry::Link { path, target })?;
                }
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse => read_file(path, entry, &mut f)?,
                _ => {}
            }
        }
        if any {
            Ok(())
        } else {
            Err(ArchiveError::Empty)
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Skip,
    Json,
    /// A blob of an OCI layout: JSON or a layer, known only from its content.
    Sniff,
    Blob,
}

fn classify(path: &str) -> Kind {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == "VERSION" {
        Kind::Skip
    } else if name.ends_with(".json")
        || name == "json"
        || name == "repositories"
        || name == "oci-layout"
    {
        Kind::Json
    } else if path.starts_with("blobs/") {
        Kind::Sniff
    } else {
        Kind::Blob
    }
}

fn read_file<R: Read>(
    path: String,
    entry: tar::Entry<'_, R>,
    f: &mut impl FnMut(ArchiveEntry<'_>) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    let size = entry.size();
    let entry = Exact {
        inner: entry,
        remaining: size,
        path: path.clone(),
    };
    match classify(&path) {
        Kind::Skip => Ok(()),
        Kind::Json => {
            let bytes = read_json(&path, size, entry)?;
            f(ArchiveEntry::Json { path, bytes })
        }
        Kind::Blob => {
            let mut reader = BufReader::with_capacity(PEEK_CAPACITY, entry);
            f(ArchiveEntry::Blob {
                path,
                size,
                reader: &mut reader,
            })
        }
        Kind::Sniff => {
            let mut reader = BufReader::with_capacity(PEEK_CAPACITY, entry);
            let starts_like_json = reader
                .fill_buf()?
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b == b'{');
            if !starts_like_json || size > JSON_LIMIT {
                return f(ArchiveEntry::Blob {
                    path,
                    size,
                    reader: &mut reader,
                });
            }
            // A layer tar whose first file is named "{…" starts like JSON too; it is small
            // enough to hold, and parsing tells the two apart.
            let bytes = read_json(&path, size, reader)?;
            if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() {
                f(ArchiveEntry::Json { path, bytes })
            } else {
                f(ArchiveEntry::Blob {
                    path,
                    size,
                    reader: &mut Cursor::new(bytes),
                })
            }
        }
    }
}

/// An entry's data that fails, rather than ends early, when the archive is cut off inside it:
/// `tar` reports a short entry as a normal end, and a short layer would be pushed under the
/// digest of the wrong content.
struct Exact<R> {
    inner: R,
    remaining: u64,
    path: String,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.remaining > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the archive ends inside {} with {} bytes of it missing",
                    self.path, self.remaining
                ),
            ));
        }
        self.remaining = self.remaining.saturating_sub(n as u64);
        Ok(n)
    }
}

fn read_json(path: &str, size: u64, reader: impl Read) -> Result<Vec<u8>, ArchiveError> {
    if size > JSON_LIMIT {
        return Err(ArchiveError::JsonTooLarge {
            path: path.to_string(),
            size,
        });
    }
    // The header's size bounds the allocation; `take` bounds the read should the two disagree.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    reader.take(JSON_LIMIT).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Where an OCI-shaped export keeps the blob `digest`: `blobs/<algorithm>/<hex>`.
pub fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.hex())
}

/// The digest an OCI-shaped export's blob path names, if `path` is one.
pub fn blob_digest(path: &str) -> Option<Digest> {
    let hex = path.strip_prefix("blobs/sha256/")?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

/// An archive path as this module reports it: relative, no `.`/`..`/empty components. Paths in
/// `manifest.json` and `index.json` should go through it too before comparing.
pub fn normalize_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

/// One image of a `docker save` `manifest.json`: `[{Config, RepoTags, Layers}]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SaveManifest {
    /// Path of the config in the archive.
    pub config: String,
    /// null for an image exported by ID.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub repo_tags: Vec<String>,
    /// Paths of the layers in the archive, base layer first; null for an image without layers.
    #[serde(deserialize_with = "null_as_empty")]
    pub layers: Vec<String>,
}

impl SaveManifest {
    /// Parses a whole `manifest.json`.
    pub fn parse_all(bytes: &[u8]) -> Result<Vec<SaveManifest>, ArchiveError> {
        serde_json::from_slice(bytes).map_err(ArchiveError::InvalidManifest)
    }
}

/// Go encodes an empty slice as null.
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::docker::test_image::TestImage;
    use crate::docker::{DockerEngine, DockerError};
    use ferry_registry::digest::Digest;

    /// What a pass over an archive saw.
    #[derive(Default, Debug)]
    struct Seen {
        /// Every entry's path, in order.
        order: Vec<String>,
        /// Blob path → (digest of what the reader yielded, declared size).
        blobs: HashMap<String, (Digest, u64)>,
        jsons: HashMap<String, Vec<u8>>,
        links: HashMap<String, String>,
    }

    fn collect(reader: impl Read) -> Result<Seen, ArchiveError> {
        let mut seen = Seen::default();
        ArchiveReader::new(reader).for_each(|entry| {
            match entry {
                ArchiveEntry::Blob { path, size, reader } => {
                    let mut bytes = Vec::new();
                    reader.read_to_end(&mut bytes)?;
                    assert_eq!(bytes.len() as u64, size, "{path}");
                    seen.order.push(path.clone());
                    seen.blobs.insert(path, (Digest::sha256_of(&bytes), size));
                }
                ArchiveEntry::Json { path, bytes } => {
                    seen.order.push(path.clone());
                    seen.jsons.insert(path, bytes);
                }
                ArchiveEntry::Link { path, target } => {
                    seen.order.push(path.clone());
                    seen.links.insert(path, target);
                }
            }
            Ok(())
        })?;
        Ok(seen)
    }

    /// Exports and reads the tar on a blocking thread, as a push does.
    async fn export_and_read(engine: &DockerEngine, name: &str) -> Seen {
        let (engine, name) = (engine.clone(), name.to_string());
        tokio::task::spawn_blocking(move || collect(engine.export(&name).unwrap()))
            .await
            .unwrap()
            .unwrap()
    }

    /// The digest of a layer path from manifest.json, following a link if it is one.
    fn layer_digest(seen: &Seen, path: &str) -> Digest {
        let path = normalize_path(path);
        let path = seen.links.get(&path).unwrap_or(&path);
        seen.blobs[path].0.clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_a_classic_export_from_the_engine() {
        let image = TestImage::two_layers("archive");
        let engine = DockerEngine::new(crate::docker::DEFAULT_HOST).unwrap();
        let inspect = engine.inspect(&image.tag).await.unwrap();
        let seen = export_and_read(&engine, &image.tag).await;

        let manifests = SaveManifest::parse_all(&seen.jsons["manifest.json"]).unwrap();
        assert_eq!(manifests.len(), 1);
        let manifest = &manifests[0];
        assert_eq!(manifest.repo_tags, vec![image.tag.clone()]);
        let layers: Vec<Digest> = manifest
            .layers
            .iter()
            .map(|l| layer_digest(&seen, l))
            .collect();
        assert_eq!(layers, inspect.diff_ids);
        assert_eq!(Digest::sha256_of(&seen.jsons[&manifest.config]), inspect.id);

        // Each layer's `<id>/json` is metadata, VERSION files are dropped, and the manifest
        // only comes after every layer.
        assert_eq!(seen.blobs.len(), 2, "{:?}", seen.order);
        assert!(seen.order.iter().all(|p| !p.ends_with("VERSION")));
        assert!(seen.jsons.keys().any(|p| p.ends_with("/json")));
        assert!(seen.jsons.contains_key("repositories"));
        let manifest_at = seen
            .order
            .iter()
            .position(|p| p == "manifest.json")
            .unwrap();
        for layer in &manifest.layers {
            assert!(seen.order.iter().position(|p| p == layer).unwrap() < manifest_at);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_repeated_layer_is_a_link_to_the_first() {
        // /f goes back to its first content: the third layer equals the first.
        let image = TestImage::build(
            "archive-dup",
            &[("one", b"one\n"), ("two", b"three-three\n")],
            &[("one", "/f"), ("two", "/f"), ("one", "/f")],
        );
        let engine = DockerEngine::new(crate::docker::DEFAULT_HOST).unwrap();
        let inspect = engine.inspect(&image.tag).await.unwrap();
        assert_eq!(inspect.diff_ids.len(), 3);
        assert_eq!(inspect.diff_ids[0], inspect.diff_ids[2]);
        // By ID, so manifest.json has "RepoTags": null.
        let seen = export_and_read(&engine, inspect.id.as_str()).await;

        assert_eq!(seen.links.len(), 1, "{:?}", seen.order);
        let manifests = SaveManifest::parse_all(&seen.jsons["manifest.json"]).unwrap();
        let manifest = &manifests[0];
        assert!(manifest.repo_tags.is_empty());
        assert_eq!(
            seen.links[&manifest.layers[2]],
            normalize_path(&manifest.layers[0])
        );
        let layers: Vec<Digest> = manifest
            .layers
            .iter()
            .map(|l| layer_digest(&seen, l))
            .collect();
        assert_eq!(layers, inspect.diff_ids);
    }

    /// A tar builder with small helpers for regular files, directories and symlinks.
    struct TarBuilder(tar::Builder<Vec<u8>>);

    impl TarBuilder {
        fn new() -> Self {
            TarBuilder(tar::Builder::new(Vec::new()))
        }

        fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            self.0.append_data(&mut header, path, data).unwrap();
            self
        }

        fn dir(&mut self, path: &str) -> &mut Self {
            let mut header = tar::Header::new_gnu();
            header.set_size(0);
            header.set_mode(0o755);
            header.set_entry_type(tar::EntryType::Directory);
            self.0.append_data(&mut header, path, io::empty()).unwrap();
            self
        }

        fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
            let mut header = tar::Header::new_gnu();
            header.set_size(0);
            header.set_entry_type(tar::EntryType::Symlink);
            self.0.append_link(&mut header, path, target).unwrap();
            self
        }

        fn finish(&mut self) -> Vec<u8> {
            let mut builder = std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()));
            builder.finish().unwrap();
            builder.into_inner().unwrap()
        }
    }

    fn blob_path(data: &[u8]) -> String {
        format!("blobs/sha256/{}", Digest::sha256_of(data).hex())
    }

    /// Deterministic bytes that do not compress or look like anything.
    fn noise(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn classifies_an_oci_export() {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec();
        // Larger than the peek buffer, so bytes past it must come through too.
        let mut layer = vec![b'a'; 10];
        layer.extend(noise(300 * 1024));
        let gzip_layer = [&[0x1f, 0x8b, 0x08][..], &noise(1000)].concat();
        let not_json = b"{this is a tar whose first file is named with a brace".to_vec();
        let manifest =
            br#"  {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#
                .to_vec();
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        let save_manifest = format!(
            r#"[{{"Config":"{}","RepoTags":["app:1"],"Layers":["{}","{}"]}}]"#,
            blob_path(&config),
            blob_path(&layer),
            blob_path(&gzip_layer)
        );
        let tar = TarBuilder::new()
            .dir("blobs/")
            .dir("blobs/sha256/")
            .file(&blob_path(&layer), &layer)
            .file(&blob_path(&gzip_layer), &gzip_layer)
            .file(&blob_path(&config), &config)
            .file(&blob_path(&not_json), &not_json)
            .file(&blob_path(b""), b"")
            .file(&blob_path(&manifest), &manifest)
            .file("index.json", index)
            .file("./manifest.json", save_manifest.as_bytes())
            .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
            .file("VERSION", b"1.0")
            .symlink("blobs/sha256/alias", "../../index.json")
            .finish();

        let seen = collect(tar.as_slice()).unwrap();
        let mut blobs: Vec<&str> = seen.blobs.keys().map(String::as_str).collect();
        blobs.sort_unstable();
        let mut expected_blobs = vec![
            blob_path(&layer),
            blob_path(&gzip_layer),
            blob_path(&not_json),
            blob_path(b""),
        ];
        expected_blobs.sort_unstable();
        assert_eq!(blobs, expected_blobs);
        for (path, (digest, _)) in &seen.blobs {
            assert_eq!(blob_path_of(digest), *path, "content came through whole");
        }
        let mut jsons: Vec<&str> = seen.jsons.keys().map(String::as_str).collect();
        jsons.sort_unstable();
        let mut expected_jsons = vec![
            blob_path(&config),
            blob_path(&manifest),
            "index.json".to_string(),
            "manifest.json".to_string(),
            "oci-layout".to_string(),
        ];
        expected_jsons.sort_unstable();
        assert_eq!(jsons, expected_jsons);
        assert_eq!(seen.jsons[&blob_path(&manifest)], manifest);
        assert_eq!(seen.links["blobs/sha256/alias"], "index.json");

        let manifests = SaveManifest::parse_all(&seen.jsons["manifest.json"]).unwrap();
        assert_eq!(
            layer_digest(&seen, &manifests[0].layers[0]),
            Digest::sha256_of(&layer)
        );
    }

    fn blob_path_of(digest: &Digest) -> String {
        format!("blobs/sha256/{}", digest.hex())
    }

    #[test]
    fn a_blob_read_in_part_does_not_disturb_the_next_entry() {
        let big = noise(200 * 1024);
        let tar = TarBuilder::new()
            .file("x/layer.tar", &big)
            .file("y/layer.tar", b"second")
            .finish();
        let mut second = Vec::new();
        ArchiveReader::new(tar.as_slice())
            .for_each(|entry| {
                if let ArchiveEntry::Blob { path, reader, .. } = entry {
                    if path == "x/layer.tar" {
                        let mut start = [0u8; 10];
                        reader.read_exact(&mut start)?;
                    } else {
                        reader.read_to_end(&mut second)?;
                    }
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(second, b"second");
    }

    #[test]
    fn long_paths_survive() {
        let long = format!("{}/layer.tar", "d".repeat(150));
        let tar = TarBuilder::new().file(&long, b"data").finish();
        let seen = collect(tar.as_slice()).unwrap();
        assert!(seen.blobs.contains_key(&long));
    }

    #[test]
    fn oversized_json_is_refused() {
        let big = vec![b' '; usize::try_from(JSON_LIMIT).unwrap() + 1];
        let tar = TarBuilder::new().file("x.json", &big).finish();
        let err = collect(tar.as_slice()).unwrap_err();
        assert!(matches!(err, ArchiveError::JsonTooLarge { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("x.json in the image archive is")
        );
    }

    #[test]
    fn callback_errors_stop_the_pass() {
        let tar = TarBuilder::new()
            .file("a/layer.tar", b"a")
            .file("b/layer.tar", b"b")
            .finish();
        let mut calls = 0;
        let err = ArchiveReader::new(tar.as_slice())
            .for_each(|_| {
                calls += 1;
                Err(ArchiveError::Other("upload failed".into()))
            })
            .unwrap_err();
        assert_eq!(calls, 1);
        assert_eq!(err.to_string(), "upload failed");
    }

    #[test]
    fn broken_archives() {
        let err = collect(io::empty()).unwrap_err();
        assert!(matches!(err, ArchiveError::Empty), "{err:?}");

        let tar = TarBuilder::new().file("a/layer.tar", &noise(5000)).finish();
        let err = collect(&tar[..3000]).unwrap_err();
        assert!(matches!(err, ArchiveError::Io(_)), "{err:?}");

        let err = collect(&noise(2048)[..]).unwrap_err();
        assert!(matches!(err, ArchiveError::Io(_)), "{err:?}");
    }

    /// A source that fails after some bytes, as the export bridge does when the Engine fails.
    struct FailingAfter {
        data: Vec<u8>,
        pos: usize,
    }

    impl Read for FailingAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos >= self.data.len() {
                return Err(io::Error::from(DockerError::ExportFailed {
                    name: "app:1".into(),
                    message: "disk on fire".into(),
                }));
            }
            let n = buf.len().min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn the_sources_own_error_is_reported() {
        let tar = TarBuilder::new()
            .file("a/layer.tar", &noise(5000))
            .file("b/layer.tar", b"b")
            .finish();
        for cut in [700, 2560] {
            let source = FailingAfter {
                data: tar[..cut].to_vec(),
                pos: 0,
            };
            let err = collect(source).unwrap_err();
            assert!(
                err.to_string()
                    .contains("the Docker Engine failed while exporting app:1: disk on fire"),
                "{cut}: {err}"
            );
        }
    }

    #[test]
    fn save_manifests() {
        let parsed = SaveManifest::parse_all(
            br#"[{"Config":"c.json","RepoTags":null,"Layers":null},{"Config":"d.json","Layers":["x/layer.tar"]}]"#,
        )
        .unwrap();
        assert!(parsed[0].repo_tags.is_empty() && parsed[0].layers.is_empty());
        assert_eq!(parsed[1].layers, vec!["x/layer.tar"]);
        let err = SaveManifest::parse_all(br#"[{"Config":"c.json"}]"#).unwrap_err();
        assert!(err.to_string().contains("Layers"), "{err}");
    }

    #[test]
    fn paths() {
        assert_eq!(normalize_path("./manifest.json"), "manifest.json");
        assert_eq!(normalize_path("/a//b/./c"), "a/b/c");
        assert_eq!(normalize_path("a/b/../../c/layer.tar"), "c/layer.tar");
        assert_eq!(normalize_path("../../x"), "x");
        assert_eq!(classify("abc/json"), Kind::Json);
        assert_eq!(classify("abc/VERSION"), Kind::Skip);
        assert_eq!(classify("abc/layer.tar"), Kind::Blob);
        assert_eq!(classify("blobs/sha256/abc"), Kind::Sniff);
        assert_eq!(classify("0123.json"), Kind::Json);
    }

    #[test]
    fn the_reader_can_move_to_a_blocking_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<ArchiveReader<std::fs::File>>();
    }
}
