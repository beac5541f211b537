//! Compressing a layer while it streams: the compressed bytes are hashed and counted (the blob
//! digest and size) and handed to the upload in chunks; the uncompressed bytes are hashed too
//! (the `diff_id`) only when the caller asks. Nothing is held beyond one chunk.

use std::io::{self, Read, Write};
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;

use super::buffers::{BUFFER, BufferPool};
use super::gzip::BLOCK;
use super::hashing::{Hasher, PendingDigest};
use ferry_registry::digest::{Digest, Sha256};
use ferry_registry::media_type::{DOCKER_LAYER_GZIP, OCI_LAYER_GZIP, OCI_LAYER_ZSTD};

/// How uncompressed layers are compressed for the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Readable by every client. Level 1: layers are often incompressible, and the time saved
    /// matters more than a few percent of size.
    #[default]
    Gzip,
    /// Smaller and faster; needs containerd ≥ 1.5 / Docker ≥ 23 to pull.
    Zstd,
}

impl Compression {
    pub fn as_str(&self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The layer media type: Docker's for gzip (a Docker v2 manifest is what `docker push`
    /// makes), OCI's for zstd (Docker manifests have no zstd type).
    pub fn layer_media_type(&self) -> &'static str {
        match self {
            Compression::Gzip => DOCKER_LAYER_GZIP,
            Compression::Zstd => OCI_LAYER_ZSTD,
        }
    }
}

impl FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "gzip" | "gz" => Ok(Compression::Gzip),
            "zstd" | "zst" => Ok(Compression::Zstd),
            _ => Err(format!(
                "{s:?} is not a compression ferry knows (gzip or zstd)"
            )),
        }
    }
}

/// Layers that arrive compressed already are pushed as they are.
pub(crate) fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(OCI_LAYER_GZIP)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(OCI_LAYER_ZSTD)
    } else {
        None
    }
}

/// What streaming a layer produced.
pub(crate) struct Streamed {
    /// sha256 of what was read (the uncompressed tar for a compressed layer), when asked for.
    pub read_digest: Option<Digest>,
    /// sha256 and size of what was sent (the digest perhaps still being computed).
    pub digest: PendingDigest,
    pub size: u64,
}

/// Where compressed bytes go (the upload), a whole pooled buffer (at most [`BUFFER`]) at a
/// time; an error stops the compression.
///
/// Whole buffers, not slices: a slice keeps its whole buffer alive, so an upload queue that
/// counted slices by their length would let a short tail slice (the last 98 bytes of a gzip
/// member) hold a MiB. Pushing a 1 GiB layer peaked at 700 MB that way.
pub(crate) type Sink<'a> = &'a mut (dyn FnMut(Bytes) -> io::Result<()> + Send);

/// A `Write` that hashes, counts and forwards bytes to the upload. Written bytes collect in a
/// pooled buffer and go out a block at a time.
pub(super) struct Forward<'a> {
    sink: Sink<'a>,
    hasher: Hasher,
    size: u64,
    pending: Vec<u8>,
    pool: &'a Arc<BufferPool>,
}

impl<'a> Forward<'a> {
    fn new(sink: Sink<'a>, hasher: Hasher, pool: &'a Arc<BufferPool>) -> Self {
        Self {
            sink,
            hasher,
            size: 0,
            pending: pool.take(),
            pool,
        }
    }

    fn send_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::replace(&mut self.pending, self.pool.take());
        self.send(self.pool.share(pending))
    }

    /// Every byte passes here, in order: hashed, then handed to the upload.
    fn send(&mut self, bytes: Bytes) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.size += bytes.len() as u64;
        self.hasher.update(&bytes)?;
        (self.sink)(bytes)
    }

    /// Like `write_all`, for a buffer the caller owns (at most [`BUFFER`]): sent without
    /// being copied.
    pub(super) fn write_owned(&mut self, bytes: Bytes) -> io::Result<()> {
        self.send_pending()?;
        self.send(bytes)
    }

    fn finish(mut self) -> io::Result<(PendingDigest, u64)> {
        self.send_pending()?;
        self.pool.give(std::mem::take(&mut self.pending));
        Ok((self.hasher.finish(), self.size))
    }
}

impl Write for Forward<'_> {
    /// Takes what fits in the pending buffer (so it never reallocates) and sends it once a
    /// block has collected.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BUFFER - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() >= BLOCK {
            self.send_pending()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads `input` to its end, compressing it (or, with `None`, passing it through) into `sink`
/// in buffers of at most [`BUFFER`], which `hasher` hashes. `hash_input`: also compute the
/// sha256 of what was read — a second full pass of hashing, so only when someone needs it.
/// Blocking: run it on a blocking thread.
pub(crate) fn stream_layer(
    input: &mut dyn Read,
    compression: Option<Compression>,
    sink: Sink<'_>,
    hasher: Hasher,
    hash_input: bool,
    pool: &Arc<BufferPool>,
) -> io::Result<Streamed> {
    let mut read_hasher = hash_input.then(Sha256::new);
    let forward = Forward::new(sink, hasher, pool);
    let (digest, size) = match compression {
        None => {
            let mut out = forward;
            pump(input, &mut read_hasher, pool, &mut out)?;
            out.finish()?
        }
        Some(Compression::Gzip) => {
            let mut out = forward;
            super::gzip::gzip_blocks(input, &mut read_hasher, &mut out, pool)?;
            out.finish()?
        }
        Some(Compression::Zstd) => {
            let mut encoder = zstd::stream::write::Encoder::new(forward, 3)?;
            pump(input, &mut read_hasher, pool, &mut encoder)?;
            encoder.finish()?.finish()?
        }
    };
    Ok(Streamed {
        read_digest: read_hasher.map(Sha256::finish),
        digest,
        size,
    })
}

fn pump(
    input: &mut dyn Read,
    hasher: &mut Option<Sha256>,
    pool: &BufferPool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut buf = pool.take_filled(BLOCK);
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(hasher) = hasher.as_mut() {
            hasher.update(&buf[..n]);
        }
        out.write_all(&buf[..n])?;
    }
    pool.give(buf);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests {
    use super::*;

    /// A [`Streamed`] with its digest known.
    struct Done {
        read_digest: Option<Digest>,
        digest: Digest,
        size: u64,
    }

    fn run(data: &[u8], compression: Option<Compression>) -> (Done, Vec<u8>) {
        run_hashing(data, compression, true)
    }

    /// Hashes the output inline when hashing the input too, else in the background: both ways
    /// are exercised.
    fn run_hashing(
        data: &[u8],
        compression: Option<Compression>,
        hash_input: bool,
    ) -> (Done, Vec<u8>) {
        let mut out = Vec::new();
        let mut sink = |chunk: Bytes| {
            assert!(chunk.len() <= BUFFER);
            out.extend_from_slice(&chunk);
            Ok(())
        };
        let hasher = if hash_input {
            Hasher::inline()
        } else {
            Hasher::background().unwrap()
        };
        let pool = BufferPool::new();
        let streamed = stream_layer(
            &mut &data[..],
            compression,
            &mut sink,
            hasher,
            hash_input,
            &pool,
        )
        .unwrap();
        let done = Done {
            read_digest: streamed.read_digest,
            digest: streamed.digest.wait().unwrap(),
            size: streamed.size,
        };
        (done, out)
    }

    #[test]
    fn gzip_round_trips_with_both_digests() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let (streamed, out) = run(&data, Some(Compression::Gzip));
        assert_eq!(streamed.read_digest, Some(Digest::sha256_of(&data)));
        assert_eq!(streamed.digest, Digest::sha256_of(&out));
        assert_eq!(streamed.size, out.len() as u64);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    /// Incompressible bytes (xorshift), the same for the same seed.
    pub(in crate::push) fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn random_data_is_stored_not_inflated() {
        let data = random_bytes(2_500_000, 0x1234_5678);
        let (streamed, out) = run(&data, Some(Compression::Gzip));
        assert!(
            streamed.size < data.len() as u64 * 1001 / 1000,
            "{} vs {}",
            streamed.size,
            data.len()
        );
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&out[..]), &mut back)
            .unwrap();
        assert_eq!(back, data);
        assert_eq!(streamed.read_digest, Some(Digest::sha256_of(&data)));
    }

    #[test]
    fn empty_layers_are_valid_gzip() {
        let (streamed, out) = run(b"", Some(Compression::Gzip));
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&out[..]), &mut back)
            .unwrap();
        assert!(back.is_empty());
        assert_eq!(streamed.digest, Digest::sha256_of(&out));
    }

    #[test]
    fn compression_is_deterministic() {
        let data = vec![7u8; 500_000];
        assert_eq!(
            run(&data, Some(Compression::Zstd)).0.digest,
            run(&data, Some(Compression::Zstd)).0.digest
        );
        assert_eq!(
            run(&data, Some(Compression::Gzip)).0.digest,
            run(&data, Some(Compression::Gzip)).0.digest
        );
    }

    #[test]
    fn zstd_round_trips_and_passthrough_is_identity() {
        let data = b"hello layer".repeat(10_000);
        let (streamed, out) = run(&data, Some(Compression::Zstd));
        assert_eq!(zstd::decode_all(&out[..]).unwrap(), data);
        assert_eq!(streamed.digest, Digest::sha256_of(&out));
        let (plain, out) = run(&data, None);
        assert_eq!(out, data);
        assert_eq!(Some(plain.digest), plain.read_digest);
    }

    #[test]
    fn the_input_is_hashed_only_when_asked() {
        let data = b"layer bytes ".repeat(50_000);
        for compression in [None, Some(Compression::Gzip), Some(Compression::Zstd)] {
            let (streamed, out) = run_hashing(&data, compression, false);
            assert_eq!(streamed.read_digest, None, "{compression:?}");
            assert_eq!(streamed.digest, Digest::sha256_of(&out), "{compression:?}");
            assert_eq!(streamed.digest, run(&data, compression).0.digest);
        }
    }

    #[test]
    fn sniffs_compressed_layers() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Some(OCI_LAYER_GZIP));
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Some(OCI_LAYER_ZSTD));
        assert_eq!(sniff(b"ustar"), None);
    }

    #[test]
    fn parses_names() {
        assert_eq!("GZIP".parse::<Compression>().unwrap(), Compression::Gzip);
        assert_eq!("zstd".parse::<Compression>().unwrap(), Compression::Zstd);
        assert!("lz4".parse::<Compression>().unwrap_err().contains("lz4"));
    }
}
