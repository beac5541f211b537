//! Upload sessions opened while the Docker Engine prepares an export.
//!
//! Why: the Engine writes a whole image out before the first byte of its export (about half a
//! second for 100 MiB), and each layer upload then needs a connection (TCP and TLS handshakes)
//! and a `POST` before its data can flow: two to four round trips per layer to a distant
//! registry, on the critical path of the last layer read. Opening one session per layer that will
//! be uploaded during that wait takes them off it. A session no upload takes is cancelled with
//! a `DELETE` when the push is done with them, on every path (the registry would expire it
//! anyway).

use std::sync::Mutex;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::error::Result;
use ferry_registry::client::Repository;
use ferry_registry::digest::Digest;

pub(crate) struct Sessions {
    dst: Repository,
    handle: Handle,
    opening: Mutex<Vec<JoinHandle<Result<url::Url>>>>,
    /// The config's HEAD, for the upload of the config to take instead of asking again.
    config: Mutex<Option<(Digest, ConfigHead)>>,
}

/// The size of the config blob at the destination, if it is there.
pub(crate) type ConfigHead = JoinHandle<ferry_registry::Result<Option<u64>>>;

impl Sessions {
    /// Starts opening `count` sessions at `dst` in the background, and beside them asks whether
    /// `config` (the image's config blob, if known) is there.
    ///
    /// Why the extra request: it warms one more connection than there are sessions. The config
    /// goes up while the layers stream, and without a connection of its own it takes the idle
    /// one a later layer's upload was to use, which then waits for a new handshake (two round
    /// trips, measured at 70 ms on the last layer's critical path). The config's upload takes
    /// the answer ([`config_head`](Self::config_head)) rather than asking again.
    pub fn open(dst: &Repository, count: usize, config: Option<Digest>) -> Sessions {
        let handle = Handle::current();
        let config = config.map(|digest| {
            let dst = dst.clone();
            let asked = digest.clone();
            let head = handle.spawn(async move { dst.head_blob(&asked).await });
            (digest, head)
        });
        let opening = (0..count)
            .map(|_| {
                let dst = dst.clone();
                handle.spawn(async move { Ok(dst.start_upload().await?) })
            })
            .collect();
        Sessions {
            dst: dst.clone(),
            handle,
            opening: Mutex::new(opening),
            config: Mutex::new(config),
        }
    }

    /// The HEAD of `config` sent by [`open`](Self::open), once, if it asked about that blob.
    pub fn config_head(&self, config: &Digest) -> Option<ConfigHead> {
        let mut slot = self.config.lock().unwrap_or_else(|e| e.into_inner());
        match slot.take() {
            Some((digest, head)) if digest == *config => Some(head),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// A session being opened, if one is left.
    pub fn take(&self) -> Option<JoinHandle<Result<url::Url>>> {
        self.opening.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }
}

impl Sessions {
    /// Cancels the sessions no upload took, and waits for that.
    pub async fn close(self) {
        let left = std::mem::take(&mut *self.opening.lock().unwrap_or_else(|e| e.into_inner()));
        let cancels = left.into_iter().map(|opening| {
            let dst = self.dst.clone();
            async move {
                if let Ok(Ok(location)) = opening.await {
                    cancel(&dst, &location).await;
                }
            }
        });
        futures::future::join_all(cancels).await;
    }
}

/// A push that failed part-way still cancels what it opened, in the background.
impl Drop for Sessions {
    fn drop(&mut self) {
        let left = std::mem::take(&mut *self.opening.lock().unwrap_or_else(|e| e.into_inner()));
        for opening in left {
            let dst = self.dst.clone();
            self.handle.spawn(async move {
                if let Ok(Ok(location)) = opening.await {
                    cancel(&dst, &location).await;
                }
            });
        }
    }
}

/// Best effort: a registry expires abandoned sessions too, so a failure is only logged.
async fn cancel(dst: &Repository, location: &url::Url) {
    if let Err(error) = dst.cancel_upload(location).await {
        tracing::debug!(%error, "cancelling an upload session opened ahead");
    }
}
