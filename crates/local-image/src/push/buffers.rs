//! Reusable buffers for the bytes a push reads and sends: the blocks read from the image and
//! the gzip members that go to the upload.
//!
//! Why: a fresh MiB from the allocator is 256 page faults on first touch (large allocations
//! are fresh mappings, and freed ones go back to the kernel). Every byte of a layer passes
//! through such a buffer at least once, so a push of 100 MiB took ~33,000 faults, a third of
//! its system time, on a machine whose two cores it shares with the Engine and the registry.
//! A buffer sent to the upload comes back here when the HTTP client has written its last slice.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// The size every pooled buffer has room for: a 1 MiB block, or the gzip member made of one
/// (a stored block's framing is 5 bytes per 64 KiB, plus the member's header and trailer).
pub(crate) const BUFFER: usize = super::gzip::BLOCK + super::gzip::BLOCK / 1024 + 64;

/// Buffers kept for reuse: what the uploads' queue ([`super::upload`], 16 MiB), the hasher's
/// queue and the compression workers hold at their fullest. More are allocated when needed,
/// and dropped when they come back to a full pool.
const KEEP: usize = 32;

#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    pub fn new() -> Arc<BufferPool> {
        Arc::new(BufferPool::default())
    }

    /// An empty buffer with room for [`BUFFER`] bytes.
    pub fn take(&self) -> Vec<u8> {
        let reused = self.free.lock().ok().and_then(|mut free| free.pop());
        let mut buffer = reused.unwrap_or_else(|| Vec::with_capacity(BUFFER));
        buffer.clear();
        buffer
    }

    /// A buffer of `len` bytes (at most [`BUFFER`]) to read into. Its contents are whatever
    /// was there before (zeros if new): a reader overwrites what it reports as read.
    pub fn take_filled(&self, len: usize) -> Vec<u8> {
        let mut buffer = self.take();
        buffer.resize(len.min(BUFFER), 0);
        buffer
    }

    /// Hands a buffer back. One that grew past [`BUFFER`] is kept too; a foreign one that is
    /// smaller is dropped.
    pub fn give(&self, buffer: Vec<u8>) {
        if buffer.capacity() < BUFFER {
            return;
        }
        if let Ok(mut free) = self.free.lock()
            && free.len() < KEEP
        {
            free.push(buffer);
        }
    }

    /// `buffer` as shared bytes that return it to this pool once the last slice is dropped.
    pub fn share(self: &Arc<Self>, buffer: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buffer,
            pool: self.clone(),
        })
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.free.lock().map(|f| f.len()).unwrap_or(0)
    }
}

struct Pooled {
    buffer: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shared_buffers_come_back_when_the_last_slice_is_dropped() {
        let pool = BufferPool::new();
        let mut buffer = pool.take();
        buffer.extend_from_slice(&[7; 1000]);
        let address = buffer.as_ptr();
        let mut bytes = pool.share(buffer);
        let head = bytes.split_to(10);
        assert_eq!((&head[..], bytes.len()), (&[7u8; 10][..], 990));
        drop(bytes);
        assert_eq!(pool.kept(), 0, "a slice is still alive");
        drop(head);
        assert_eq!(pool.kept(), 1);
        let again = pool.take();
        assert!(again.is_empty());
        assert_eq!(
            again.as_ptr(),
            address,
            "the same memory, not a new allocation"
        );
    }

    #[test]
    fn the_pool_is_bounded_and_ignores_small_buffers() {
        let pool = BufferPool::new();
        pool.give(Vec::with_capacity(16));
        assert_eq!(pool.kept(), 0);
        for _ in 0..KEEP + 5 {
            pool.give(Vec::with_capacity(BUFFER));
        }
        assert_eq!(pool.kept(), KEEP);
        assert_eq!(pool.take_filled(4096).len(), 4096);
    }
}
