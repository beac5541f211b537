//! Gzip as a series of members, one per 1 MiB block, compressed on several threads and written
//! in order (a multi-member gzip stream is one valid gzip file; Go's, containerd's and zlib's
//! readers all read it whole). A block that does not compress (random data, already compressed
//! files) is stored instead: gzip's fast level would make it ~5% larger, slowly.
//! The output depends only on the input, so an unchanged layer keeps its digest.
//!
//! Memory: at most `2 × workers` blocks in flight, each an input buffer (reused, never
//! re-zeroed) and its member; a finished member goes to the upload without being copied.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, mpsc};

use super::compress::Forward;
use crate::digest::Sha256;

/// Uncompressed bytes per gzip member.
const BLOCK: usize = 1024 * 1024;
/// How much of a block is test-compressed to decide whether compressing it is worth it: enough
/// for deflate to find the repeats that make data compressible, and only 1/64 of the block, so
/// incompressible data (which is then stored) costs little deflating.
const SAMPLE: usize = 16 * 1024;

/// A block to compress: its sequence number, a buffer and how much of it is data.
type Job = (u64, Vec<u8>, usize);
/// A compressed block, with its buffer back for reuse.
type Done = (u64, io::Result<Vec<u8>>, Vec<u8>);

/// Compresses `input` into `out`; with `hasher`, also hashes the uncompressed bytes.
pub(super) fn gzip_blocks(
    input: &mut dyn Read,
    hasher: &mut Option<Sha256>,
    out: &mut Forward,
) -> io::Result<()> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let in_flight_limit = (workers * 2) as u64;
    std::thread::scope(|scope| -> io::Result<()> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        for _ in 0..workers {
            let job_rx = job_rx.clone();
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, block, len)) = job else { return };
                    let member = gzip_member(&block[..len]);
                    if done_tx.send((seq, member, block)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);

        let mut ordered = Ordered::default();
        loop {
            let mut block = ordered.free.pop().unwrap_or_else(|| vec![0; BLOCK]);
            let len = read_full(input, &mut block)?;
            if len == 0 && ordered.sent > 0 {
                break;
            }
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(&block[..len]);
            }
            job_tx
                .send((ordered.sent, block, len))
                .map_err(|_| workers_stopped())?;
            ordered.sent += 1;
            while ordered.sent - ordered.next >= in_flight_limit {
                ordered.receive(&done_rx, out)?;
            }
            if len < BLOCK {
                break;
            }
        }
        drop(job_tx);
        while ordered.next < ordered.sent {
            ordered.receive(&done_rx, out)?;
        }
        Ok(())
    })
}

/// Members come back from the workers in any order and are written in sequence.
#[derive(Default)]
struct Ordered {
    sent: u64,
    next: u64,
    waiting: BTreeMap<u64, Vec<u8>>,
    /// Input buffers back from the workers.
    free: Vec<Vec<u8>>,
}

impl Ordered {
    /// Takes one finished member and writes whatever is now next in line.
    fn receive(&mut self, done: &mpsc::Receiver<Done>, out: &mut Forward) -> io::Result<()> {
        let (seq, member, block) = done.recv().map_err(|_| workers_stopped())?;
        self.free.push(block);
        self.waiting.insert(seq, member?);
        while let Some(member) = self.waiting.remove(&self.next) {
            out.write_owned(member)?;
            self.next += 1;
        }
        Ok(())
    }
}

fn workers_stopped() -> io::Error {
    io::Error::other("the compression workers stopped")
}

/// Reads until `buf` is full or the input ends. Large reads pass straight through the readers'
/// buffers into `buf`.
fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
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
    // Room for a stored block (5 bytes per 64 KiB) and the header: never grown, never copied.
    let capacity = block.len() + block.len() / 1024 + 64;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(capacity), level);
    encoder.write_all(block)?;
    encoder.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_fill_the_buffer_across_short_reads() {
        // A reader that hands out at most 7 bytes per call.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(7).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let data: Vec<u8> = (0..100u8).collect();
        let mut buf = [0u8; 64];
        let mut input = Trickle(&data);
        assert_eq!(read_full(&mut input, &mut buf).unwrap(), 64);
        assert_eq!(&buf[..], &data[..64]);
        assert_eq!(read_full(&mut input, &mut buf).unwrap(), 36);
        assert_eq!(&buf[..36], &data[64..]);
        assert_eq!(read_full(&mut input, &mut buf).unwrap(), 0);
    }

    #[test]
    fn compressible_blocks_shrink_and_random_ones_are_stored() {
        let text = b"the same line of a config file, again and again\n".repeat(30_000);
        let member = gzip_member(&text[..BLOCK]).unwrap();
        assert!(member.len() < BLOCK / 10, "{}", member.len());

        let random = super::super::compress::tests::random_bytes(BLOCK, 0x9e37_79b9_7f4a_7c15);
        let member = gzip_member(&random).unwrap();
        // Stored: the data, 5 bytes per 64 KiB block, header and trailer.
        assert!(
            member.len() <= BLOCK + BLOCK / 1024 + 64,
            "{}",
            member.len()
        );
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&member[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, random);
    }
}
