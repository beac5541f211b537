//! Compressing a layer while it streams: the uncompressed bytes are hashed (the `diff_id`), the
//! compressed bytes are hashed and counted (the blob digest and size) and handed to the upload
//! in chunks. Nothing is held beyond one chunk.

use std::io::{self, Read, Write};
use std::str::FromStr;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use crate::digest::Digest;
use crate::media_type::{DOCKER_LAYER_GZIP, OCI_LAYER_GZIP, OCI_LAYER_ZSTD};

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
#[derive(Debug, Clone)]
pub(crate) struct Streamed {
    /// sha256 of what was read (the uncompressed tar for a compressed layer).
    pub read_digest: Digest,
    /// sha256 and size of what was sent.
    pub digest: Digest,
    pub size: u64,
}

const CHUNK: usize = 256 * 1024;

/// A `Write` that hashes, counts and forwards bytes to the upload in chunks.
struct Forward {
    tx: mpsc::Sender<io::Result<Bytes>>,
    hasher: Sha256,
    size: u64,
    pending: Vec<u8>,
}

impl Forward {
    fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Self {
        Self {
            tx,
            hasher: Sha256::new(),
            size: 0,
            pending: Vec::with_capacity(CHUNK),
        }
    }

    fn send_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.pending,
            Vec::with_capacity(CHUNK),
        ));
        // The upload ended early (it failed): stop compressing.
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    fn finish(mut self) -> io::Result<(Digest, u64)> {
        self.send_pending()?;
        Ok((hex_digest(self.hasher), self.size))
    }
}

impl Write for Forward {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= CHUNK {
            self.send_pending()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn hex_digest(hasher: Sha256) -> Digest {
    let hex = hex::encode(hasher.finalize());
    // A 64-character lowercase hex string is always a valid digest.
    Digest::parse(&format!("sha256:{hex}")).unwrap_or_else(|_| Digest::sha256_of(b""))
}

/// Reads `input` to its end, compressing it (or, with `None`, passing it through) into `tx`.
/// Blocking: run it on a blocking thread.
pub(crate) fn stream_layer(
    input: &mut dyn Read,
    compression: Option<Compression>,
    tx: mpsc::Sender<io::Result<Bytes>>,
) -> io::Result<Streamed> {
    let mut read_hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let forward = Forward::new(tx);
    let (digest, size) = match compression {
        None => {
            let mut out = forward;
            pump(input, &mut read_hasher, &mut buf, &mut out)?;
            out.finish()?
        }
        Some(Compression::Gzip) => {
            let mut out = forward;
            gzip_blocks(input, &mut read_hasher, &mut out)?;
            out.finish()?
        }
        Some(Compression::Zstd) => {
            let mut encoder = zstd::stream::write::Encoder::new(forward, 3)?;
            pump(input, &mut read_hasher, &mut buf, &mut encoder)?;
            encoder.finish()?.finish()?
        }
    };
    Ok(Streamed {
        read_digest: hex_digest(read_hasher),
        digest,
        size,
    })
}

/// Uncompressed bytes per gzip member.
const BLOCK: usize = 1024 * 1024;
/// How much of a block is test-compressed to decide whether compressing it is worth it.
const SAMPLE: usize = 64 * 1024;

/// Gzip as a series of members, one per 1 MiB block, compressed on several threads and written
/// in order (a multi-member gzip stream is one valid gzip file; Go's, containerd's and zlib's
/// readers all read it whole). A block that does not compress (random data, already compressed
/// files) is stored instead: gzip's fast level would make it ~5% larger, slowly.
/// The output depends only on the input, so an unchanged layer keeps its digest.
fn gzip_blocks(input: &mut dyn Read, hasher: &mut Sha256, out: &mut dyn Write) -> io::Result<()> {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex, mpsc as std_mpsc};

    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let in_flight_limit = workers * 2;
    std::thread::scope(|scope| -> io::Result<()> {
        let (job_tx, job_rx) = std_mpsc::channel::<(u64, Vec<u8>)>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = std_mpsc::channel::<(u64, io::Result<Vec<u8>>)>();
        for _ in 0..workers {
            let job_rx = job_rx.clone();
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, block)) = job else { return };
                    if done_tx.send((seq, gzip_member(&block))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);

        let mut next_to_write = 0u64;
        let mut sent = 0u64;
        let mut pending: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut write_ready =
            |pending: &mut BTreeMap<u64, Vec<u8>>, next: &mut u64| -> io::Result<()> {
                while let Some(member) = pending.remove(next) {
                    out.write_all(&member)?;
                    *next += 1;
                }
                Ok(())
            };
        let receive_one = |pending: &mut BTreeMap<u64, Vec<u8>>| -> io::Result<()> {
            let (seq, member) = done_rx
                .recv()
                .map_err(|_| io::Error::other("the compression workers stopped"))?;
            pending.insert(seq, member?);
            Ok(())
        };
        loop {
            let block = read_block(input)?;
            if block.is_empty() && sent > 0 {
                break;
            }
            hasher.update(&block);
            let last = block.len() < BLOCK;
            job_tx
                .send((sent, block))
                .map_err(|_| io::Error::other("the compression workers stopped"))?;
            sent += 1;
            while sent - next_to_write >= in_flight_limit as u64 {
                receive_one(&mut pending)?;
                write_ready(&mut pending, &mut next_to_write)?;
            }
            if last {
                break;
            }
        }
        drop(job_tx);
        while next_to_write < sent {
            receive_one(&mut pending)?;
            write_ready(&mut pending, &mut next_to_write)?;
        }
        Ok(())
    })
}

fn read_block(input: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut block = Vec::with_capacity(BLOCK);
    input.take(BLOCK as u64).read_to_end(&mut block)?;
    Ok(block)
}

fn gzip_member(block: &[u8]) -> io::Result<Vec<u8>> {
    let sample = &block[..block.len().min(SAMPLE)];
    let mut probe = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    probe.write_all(sample)?;
    let probed = probe.finish()?;
    // Header and trailer are 18 bytes; below 97% of the sample it pays to compress.
    let level = if (probed.len().saturating_sub(18)) * 100 < sample.len() * 97 {
        flate2::Compression::fast()
    } else {
        flate2::Compression::none()
    };
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(block.len() / 2 + 64), level);
    encoder.write_all(block)?;
    encoder.finish()
}

fn pump(
    input: &mut dyn Read,
    hasher: &mut Sha256,
    buf: &mut [u8],
    out: &mut dyn Write,
) -> io::Result<()> {
    loop {
        let n = match input.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(data: &[u8], compression: Option<Compression>) -> (Streamed, Vec<u8>) {
        let (tx, mut rx) = mpsc::channel(1024);
        let streamed = stream_layer(&mut &data[..], compression, tx).unwrap();
        let mut out = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            out.extend_from_slice(&chunk.unwrap());
        }
        (streamed, out)
    }

    #[test]
    fn gzip_round_trips_with_both_digests() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let (streamed, out) = run(&data, Some(Compression::Gzip));
        assert_eq!(streamed.read_digest, Digest::sha256_of(&data));
        assert_eq!(streamed.digest, Digest::sha256_of(&out));
        assert_eq!(streamed.size, out.len() as u64);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn random_data_is_stored_not_inflated() {
        let mut x = 0x1234_5678_u64;
        let data: Vec<u8> = (0..2_500_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
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
        assert_eq!(streamed.read_digest, Digest::sha256_of(&data));
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
        assert_eq!(plain.digest, plain.read_digest);
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
