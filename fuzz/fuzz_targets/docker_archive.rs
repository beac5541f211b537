//! The image-archive reader (`docker save` tars, classic and OCI-layout) over an arbitrary
//! tar, and what a push parses out of one: `manifest.json`, `index.json`, blob paths.
#![no_main]

use std::io::Read;

use bytes::Bytes;
use ferry_local_image::docker_archive::{
    ArchiveEntry, ArchiveReader, SaveManifest, blob_digest, normalize_path,
};
use ferry_registry::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ArchiveReader::new(data).for_each(|entry| {
        match entry {
            ArchiveEntry::Blob { path, size, reader } => {
                let _ = blob_digest(&path);
                let mut sink = Vec::new();
                reader.take(size.min(1 << 20)).read_to_end(&mut sink)?;
            }
            ArchiveEntry::Json { path, bytes } => {
                let _ = blob_digest(&path);
                if path == "manifest.json" {
                    if let Ok(entries) = SaveManifest::parse_all(&bytes) {
                        for entry in entries {
                            let _ = normalize_path(&entry.config);
                            for layer in &entry.layers {
                                let _ = normalize_path(layer);
                            }
                        }
                    }
                } else if path == "index.json" || path.starts_with("blobs/") {
                    let _ = Manifest::from_raw(Bytes::from(bytes), None);
                }
            }
            ArchiveEntry::Link { path, target } => {
                let _ = (blob_digest(&path), blob_digest(&target));
            }
        }
        Ok(())
    });
});
