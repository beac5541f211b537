//! Hashing what an upload sends, on the thread that compresses or on a thread of its own.
//!
//! A blob's sha256 is one sequential pass, and it is most of a push's CPU. Done by the thread
//! that reads the export, it caps the reading at the hashing speed; done beside it, one layer's
//! hashing overlaps the reading (and hashing) of the next, and the digest arrives when the
//! upload needs it for its commit.

use std::io;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use bytes::Bytes;

use ferry_registry::digest::{Digest, Sha256};

/// Buffers queued for a background hasher (of at most 1 MiB each): 8 MiB. Reading waits when
/// the hasher is this far behind; the buffers are the ones being uploaded, shared, not copied.
const QUEUE_CHUNKS: usize = 8;

pub(crate) enum Hasher {
    Inline(Sha256),
    Background {
        queue: SyncSender<Bytes>,
        thread: JoinHandle<Digest>,
    },
}

impl Hasher {
    pub fn inline() -> Hasher {
        Hasher::Inline(Sha256::new())
    }

    pub fn background() -> io::Result<Hasher> {
        let (queue, chunks) = sync_channel::<Bytes>(QUEUE_CHUNKS);
        let thread = std::thread::Builder::new()
            .name("ferry-hash".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for chunk in chunks {
                    hasher.update(&chunk);
                }
                hasher.finish()
            })?;
        Ok(Hasher::Background { queue, thread })
    }

    pub fn update(&mut self, chunk: &Bytes) -> io::Result<()> {
        match self {
            Hasher::Inline(hasher) => {
                hasher.update(chunk);
                Ok(())
            }
            Hasher::Background { queue, .. } => queue
                .send(chunk.clone())
                .map_err(|_| io::Error::other("the hashing thread stopped")),
        }
    }

    /// The digest of everything updated, now or once the background thread is through.
    pub fn finish(self) -> PendingDigest {
        match self {
            Hasher::Inline(hasher) => PendingDigest::Ready(hasher.finish()),
            Hasher::Background { queue, thread } => {
                // Closing the queue ends the thread's loop.
                drop(queue);
                PendingDigest::Hashing(thread)
            }
        }
    }
}

/// A digest being computed.
pub(crate) enum PendingDigest {
    Ready(Digest),
    Hashing(JoinHandle<Digest>),
}

impl PendingDigest {
    /// Blocks until the digest is known.
    pub fn wait(self) -> io::Result<Digest> {
        match self {
            PendingDigest::Ready(digest) => Ok(digest),
            PendingDigest::Hashing(thread) => thread
                .join()
                .map_err(|_| io::Error::other("the hashing thread panicked")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn both_ways_give_the_same_digest() {
        let chunks: Vec<Bytes> = (0..100u8)
            .map(|i| Bytes::from(vec![i; 10_000 + usize::from(i)]))
            .collect();
        let all: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        for mut hasher in [Hasher::inline(), Hasher::background().unwrap()] {
            for chunk in &chunks {
                hasher.update(chunk).unwrap();
            }
            assert_eq!(hasher.finish().wait().unwrap(), Digest::sha256_of(&all));
        }
    }
}
