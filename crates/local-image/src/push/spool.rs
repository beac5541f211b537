//! A bounded spool on disk for compressed layer data that the uploads have not taken yet.
//!
//! Why: the Engine's export is one stream, layer after layer, and each upload runs at the pace
//! of one connection. If reading waited for the uploads (as it did with only the in-memory
//! queue), a push to a registry 30 ms away would go no faster than one upload at a time however
//! many connections were open. So once the in-memory queue ([`super::upload`]) is full, further
//! chunks are written to a temporary file per layer and each upload reads its file back in
//! order, while the export reads on.
//!
//! Cost: at most [`SPOOL_BYTES`] of disk for one push (the data is usually still in the page
//! cache when it is read back, so it costs memory only as page cache, which the kernel may
//! reclaim). When the spool is full, or a file cannot be created or written, chunks go to the
//! in-memory queue and reading waits for the uploads, as before: the spool only ever adds speed.
//! The files are unnamed (`O_TMPFILE`, or created and unlinked at once), so they vanish when the
//! upload ends, fails or the process dies.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Disk one push may fill with data its uploads have not sent yet.
pub(crate) const SPOOL_BYTES: usize = 1024 * 1024 * 1024;

/// One chunk waiting for its upload.
pub(crate) enum Queued {
    /// In memory, holding its share of the in-memory budget until sent.
    Memory(Bytes, OwnedSemaphorePermit),
    /// In the layer's spool file, holding its share of the spool until the file is dropped.
    Spooled {
        file: Arc<File>,
        offset: u64,
        len: usize,
        share: OwnedSemaphorePermit,
    },
}

/// The spool file of one layer, written by the thread that compresses it.
pub(crate) struct SpoolWriter {
    budget: Arc<Semaphore>,
    file: Option<Arc<File>>,
    written: u64,
    /// A file could not be created or written: stop trying for this layer.
    failed: bool,
}

impl SpoolWriter {
    pub fn new(budget: Arc<Semaphore>) -> Self {
        SpoolWriter {
            budget,
            file: None,
            written: 0,
            failed: false,
        }
    }

    /// Writes `chunk` to the spool if it has room; `None` when it has not (or the disk failed),
    /// and the caller queues the chunk in memory instead.
    pub fn write(&mut self, chunk: &Bytes) -> Option<Queued> {
        if self.failed {
            return None;
        }
        let len = chunk.len();
        let share = self
            .budget
            .clone()
            .try_acquire_many_owned(u32::try_from(len).ok()?)
            .ok()?;
        let file = match &self.file {
            Some(file) => file.clone(),
            None => match tempfile::tempfile() {
                Ok(file) => self.file.insert(Arc::new(file)).clone(),
                Err(error) => return self.give_up(&error),
            },
        };
        let offset = self.written;
        if let Err(error) = file.write_all_at(chunk, offset) {
            return self.give_up(&error);
        }
        self.written += len as u64;
        Some(Queued::Spooled {
            file,
            offset,
            len,
            share,
        })
    }

    fn give_up(&mut self, error: &std::io::Error) -> Option<Queued> {
        tracing::debug!(%error, "spooling a layer to disk failed; streaming it instead");
        self.failed = true;
        None
    }
}

/// Reads a spooled chunk back. Called from the upload body's `poll_next`: a blocking read, but
/// of data just written, so it comes from the page cache in microseconds.
pub(crate) fn read_back(file: &File, offset: u64, len: usize) -> std::io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(len);
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_come_back_in_order_and_the_cap_holds() {
        let budget = Arc::new(Semaphore::new(10));
        let mut writer = SpoolWriter::new(budget.clone());
        let mut spooled = Vec::new();
        for chunk in [&b"abcd"[..], b"efgh"] {
            spooled.push(writer.write(&Bytes::copy_from_slice(chunk)).expect("room"));
        }
        // 8 of 10 bytes used: a 4-byte chunk no longer fits and is refused, not blocked on.
        assert!(writer.write(&Bytes::from_static(b"ijkl")).is_none());
        let mut read = Vec::new();
        for queued in &spooled {
            let Queued::Spooled {
                file, offset, len, ..
            } = queued
            else {
                panic!("spooled");
            };
            read.extend_from_slice(&read_back(file, *offset, *len).expect("read back"));
        }
        assert_eq!(read, b"abcdefgh");
        drop(spooled);
        assert_eq!(
            budget.available_permits(),
            10,
            "dropping the chunks frees the spool"
        );
    }
}
