//! Gzip as a series of members, one per 1 MiB block, compressed on several threads and written
//! in order (a multi-member gzip stream is one valid gzip file; Go's, containerd's and zlib's
//! readers all read it whole). A block that does not compress (random data, already compressed
//! files) is stored instead: gzip's fast level would make it ~5% larger, slowly.
//! The output depends only on the input, so an unchanged layer keeps its digest.
//!
//! Memory: at most `2 × workers` blocks in flight, each an input buffer and its member, both
//! from the push's [`BufferPool`] (reused, never re-zeroed); a finished member goes to the
//! upload without being copied. Each worker keeps its deflate states and resets them per
//! member: building one allocates and zeroes ~300 KiB, which twice per MiB (probe and member)
//! cost as much as the compressing of incompressible data itself.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::{Arc, Mutex, mpsc};

use flate2::{Compress, FlushCompress, Status};

use super::buffers::BufferPool;
use super::compress::Forward;
use ferry_registry::digest::Sha256;

/// Uncompressed bytes per gzip member.
pub(super) const BLOCK: usize = 1024 * 1024;
/// How much of a block is test-compressed to decide whether compressing it is worth it: enough
/// for deflate to find the repeats that make data compressible, and only 1/64 of the block, so
/// incompressible data (which is then stored) costs little deflating.
const SAMPLE: usize = 16 * 1024;
/// The member header: no name, no time, XFL 4 ("fastest"), OS 255 ("unknown") — what flate2's
/// `GzEncoder` writes at levels 0 and 1, so the bytes do not depend on the host.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];

/// A block to compress: its sequence number, a buffer and how much of it is data.
type Job = (u64, Vec<u8>, usize);
/// A compressed block, with its buffer back for reuse.
type Done = (u64, io::Result<Vec<u8>>, Vec<u8>);

/// Compresses `input` into `out`; with `hasher`, also hashes the uncompressed bytes.
pub(super) fn gzip_blocks(
    input: &mut dyn Read,
    hasher: &mut Option<Sha256>,
    out: &mut Forward,
    pool: &Arc<BufferPool>,
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
                let mut writer = MemberWriter::new();
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, block, len)) = job else { return };
                    let mut member = pool.take();
                    let written = writer.member(&block[..len], &mut member).map(|()| member);
                    if done_tx.send((seq, written, block)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);

        let mut ordered = Ordered {
            pool,
            sent: 0,
            next: 0,
            waiting: BTreeMap::new(),
            free: Vec::new(),
        };
        loop {
            let mut block = ordered
                .free
                .pop()
                .unwrap_or_else(|| pool.take_filled(BLOCK));
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
        for block in ordered.free.drain(..) {
            pool.give(block);
        }
        Ok(())
    })
}

/// Members come back from the workers in any order and are written in sequence.
struct Ordered<'p> {
    pool: &'p Arc<BufferPool>,
    sent: u64,
    next: u64,
    waiting: BTreeMap<u64, Vec<u8>>,
    /// Input buffers back from the workers.
    free: Vec<Vec<u8>>,
}

impl Ordered<'_> {
    /// Takes one finished member and writes whatever is now next in line.
    fn receive(&mut self, done: &mpsc::Receiver<Done>, out: &mut Forward) -> io::Result<()> {
        let (seq, member, block) = done.recv().map_err(|_| workers_stopped())?;
        self.free.push(block);
        self.waiting.insert(seq, member?);
        while let Some(member) = self.waiting.remove(&self.next) {
            out.write_owned(self.pool.share(member))?;
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

/// A compression worker's deflate states and probe buffer, reused for every member.
struct MemberWriter {
    fast: Compress,
    stored: Compress,
    probe: Vec<u8>,
}

impl MemberWriter {
    fn new() -> Self {
        MemberWriter {
            fast: Compress::new(flate2::Compression::fast(), false),
            stored: Compress::new(flate2::Compression::none(), false),
            probe: Vec::with_capacity(SAMPLE + SAMPLE / 8 + 64),
        }
    }

    /// Appends `block` to `out` as one gzip member: compressed at level 1 if a sample of it
    /// shrinks below 97%, else stored.
    fn member(&mut self, block: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let sample = &block[..block.len().min(SAMPLE)];
        self.probe.clear();
        deflate_all(&mut self.fast, sample, &mut self.probe)?;
        let deflater = if self.probe.len() * 100 < sample.len() * 97 {
            &mut self.fast
        } else {
            &mut self.stored
        };
        out.extend_from_slice(&HEADER);
        deflate_all(deflater, block, out)?;
        let mut crc = flate2::Crc::new();
        crc.update(block);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE is the length modulo 2^32; a block is 1 MiB at most.
        out.extend_from_slice(&(block.len() as u32).to_le_bytes());
        Ok(())
    }
}

/// Deflates all of `input` as one final stream onto the end of `out` (which grows only if its
/// room runs out), then resets `deflater` for the next member.
fn deflate_all(deflater: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let start = deflater.total_in();
    loop {
        if out.capacity() - out.len() < 256 {
            out.reserve(64 * 1024);
        }
        let consumed = usize::try_from(deflater.total_in() - start).map_err(io::Error::other)?;
        let status = deflater
            .compress_vec(&input[consumed..], out, FlushCompress::Finish)
            .map_err(io::Error::other)?;
        match status {
            Status::StreamEnd => break,
            Status::Ok => {}
            // No progress with room to spare would be a bug in the deflater; do not spin.
            Status::BufError => out.reserve(out.capacity().max(64 * 1024)),
        }
    }
    deflater.reset();
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn member_of(block: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        MemberWriter::new().member(block, &mut out).unwrap();
        out
    }

    fn gunzip(member: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(member)
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    #[test]
    fn a_reused_writer_writes_what_a_fresh_one_does() {
        // Determinism across members: a state left over from the member before must not
        // change the next one's bytes (an unchanged layer keeps its digest).
        let text = b"the same line of a config file, again and again\n".repeat(30_000);
        let random = super::super::compress::tests::random_bytes(BLOCK, 42);
        let blocks: [&[u8]; 6] = [
            &text[..BLOCK],
            &random,
            &text[..1000],
            &random[..5000],
            &text[7..BLOCK],
            &[],
        ];
        let mut reused = MemberWriter::new();
        for block in blocks {
            let mut out = Vec::new();
            reused.member(block, &mut out).unwrap();
            let fresh = member_of(block);
            assert!(
                out == fresh,
                "{} bytes: {} vs {} bytes out",
                block.len(),
                out.len(),
                fresh.len()
            );
            assert!(gunzip(&out) == block, "{} bytes", block.len());
            assert_eq!(out[..10], HEADER);
        }
    }

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
        let member = member_of(&text[..BLOCK]);
        assert!(member.len() < BLOCK / 10, "{}", member.len());

        let random = super::super::compress::tests::random_bytes(BLOCK, 0x9e37_79b9_7f4a_7c15);
        let member = member_of(&random);
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
