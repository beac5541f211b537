//! Progress bars on a terminal: one per blob in flight and a running total.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ferry_registry::Digest;
use ferry_registry::copy::{BlobOutcome, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    blobs: Mutex<HashMap<Digest, ProgressBar>>,
}

impl Bars {
    /// Bars whose running total is labelled `verb` ("copying:").
    pub fn new(verb: &str) -> Self {
        let multi = MultiProgress::new();
        let total = multi.add(ProgressBar::new(0));
        total.set_style(
            ProgressStyle::with_template("{spinner} {msg} {bytes} sent, {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        total.set_message(verb.to_string());
        total.enable_steady_tick(Duration::from_millis(120));
        Self {
            multi,
            total,
            blobs: Mutex::new(HashMap::new()),
        }
    }

    pub fn finish(&self) {
        self.total.finish_and_clear();
        let _ = self.multi.clear();
    }
}

fn short(digest: &Digest) -> &str {
    &digest.hex()[..12.min(digest.hex().len())]
}

impl Progress for Bars {
    fn phase(&self, what: &str) {
        self.total.set_message(what.to_string());
    }

    fn blob_started(&self, digest: &Digest, size: u64) {
        let bar = self.multi.add(ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template("  {prefix} [{bar:30}] {bytes}/{total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(short(digest).to_string());
        if let Ok(mut map) = self.blobs.lock() {
            map.insert(digest.clone(), bar);
        }
    }

    fn blob_advanced(&self, digest: &Digest, bytes: u64) {
        self.total.inc(bytes);
        if let Ok(map) = self.blobs.lock()
            && let Some(bar) = map.get(digest)
        {
            bar.inc(bytes);
        }
    }

    fn blob_finished(&self, digest: &Digest, _size: u64, outcome: BlobOutcome) {
        if let Ok(mut map) = self.blobs.lock()
            && let Some(bar) = map.remove(digest)
        {
            bar.finish_and_clear();
        }
        if outcome != BlobOutcome::Uploaded {
            self.multi
                .println(format!("  {} {:?}", short(digest), outcome).to_lowercase())
                .ok();
        }
    }
}
