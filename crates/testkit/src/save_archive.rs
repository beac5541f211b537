//! `docker save` archives (the classic Engine's format: `<id>/layer.tar`, `<config>.json`,
//! `manifest.json`) of any size, written without the Engine and without holding a layer in
//! memory: a 1 GiB layer of random bytes streams from `/dev/urandom` into the archive while it
//! is hashed for its `diff_id`.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use anyhow::Context;
use sha2::{Digest as _, Sha256};

/// A `Read` that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Writes to `path` an archive of image `name` (`repo:tag`) with one uncompressed layer: a tar
/// holding one file of `bytes` random bytes. Returns the layer's `diff_id`.
///
/// The layer comes first in the archive (its digest names the config, which follows): a reader
/// must not expect `manifest.json` before the layers, and ferry's does not.
pub fn write_random_save_archive(path: &Path, name: &str, bytes: u64) -> anyhow::Result<String> {
    // The layer tar: one header, the data padded to 512 bytes, two zero blocks.
    let mut header = tar::Header::new_ustar();
    header.set_path("data.bin")?;
    header.set_size(bytes);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    let padding = (512 - bytes % 512) % 512;
    let tail = vec![0u8; usize::try_from(padding)? + 1024];
    let layer_size = 512 + bytes + tail.len() as u64;
    let random = File::open("/dev/urandom").context("opening /dev/urandom")?;
    let mut layer = Hashing {
        inner: io::Cursor::new(header.as_bytes().to_vec())
            .chain(random.take(bytes))
            .chain(io::Cursor::new(tail)),
        hasher: Sha256::new(),
    };

    let out = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut archive = tar::Builder::new(io::BufWriter::with_capacity(1 << 20, out));
    let entry = |path: &str, size: u64| {
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        (header, path.to_string())
    };
    let (mut h, layer_path) = entry("0/layer.tar", layer_size);
    archive.append_data(&mut h, &layer_path, &mut layer)?;
    let diff_id = format!("sha256:{}", hex::encode(layer.hasher.finalize()));

    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))?;
    let config_name = format!("{}.json", hex::encode(Sha256::digest(&config)));
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": [name],
        "Layers": [layer_path],
    }]))?;
    for (file, data) in [
        (config_name.as_str(), &config),
        ("manifest.json", &manifest),
    ] {
        let (mut h, file) = entry(file, data.len() as u64);
        archive.append_data(&mut h, &file, &data[..])?;
    }
    archive
        .into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?;
    Ok(diff_id)
}
