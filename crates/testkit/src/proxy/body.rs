//! Body wrapper that streams frames through while cutting or corrupting them at a byte offset.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};

use crate::server::BoxError;

const FLUSH_PAUSE: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Pass,
    /// Yield exactly this many bytes, then fail: hyper aborts the connection on a body error,
    /// so the peer sees a truncated message rather than a clean end.
    CutAfter(u64),
    FlipAt(u64),
}

/// Counts a request as in flight until its response body is dropped.
pub struct InFlight {
    counter: Arc<AtomicUsize>,
}

impl InFlight {
    pub fn enter(counter: &Arc<AtomicUsize>, max: &AtomicUsize) -> InFlight {
        let now = counter.fetch_add(1, Ordering::SeqCst) + 1;
        max.fetch_max(now, Ordering::SeqCst);
        InFlight {
            counter: counter.clone(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct FaultyBody<B> {
    inner: B,
    mode: Mode,
    pos: u64,
    cut: bool,
    /// Pause before failing: hyper flushes buffered output only when the body is pending, and
    /// without the pause the peer would lose the status line and bytes already "sent".
    flush_pause: Option<Pin<Box<tokio::time::Sleep>>>,
    _in_flight: Option<InFlight>,
}

impl<B> FaultyBody<B> {
    pub fn new(inner: B, mode: Mode, in_flight: Option<InFlight>) -> Self {
        FaultyBody {
            inner,
            mode,
            pos: 0,
            cut: false,
            flush_pause: None,
            _in_flight: in_flight,
        }
    }

    fn cut_reached(&self) -> bool {
        self.cut || matches!(self.mode, Mode::CutAfter(n) if self.pos >= n)
    }
}

impl<B> Body for FaultyBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.cut_reached() {
            this.cut = true;
            let pause = this
                .flush_pause
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(FLUSH_PAUSE)));
            ready!(pause.as_mut().poll(cx));
            return Poll::Ready(Some(Err("connection cut by FaultProxy".into())));
        }
        let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            None => return Poll::Ready(None),
            Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
            Some(Ok(frame)) => frame,
        };
        let mut data = match frame.into_data() {
            Ok(data) => data,
            Err(other) => return Poll::Ready(Some(Ok(other))),
        };
        let start = this.pos;
        let end = start + data.len() as u64;
        this.pos = end;
        match this.mode {
            Mode::Pass => {}
            Mode::CutAfter(n) => {
                if end > n {
                    data.truncate((n - start) as usize);
                    this.cut = true;
                }
            }
            Mode::FlipAt(at) => {
                if (start..end).contains(&at) {
                    let mut owned = BytesMut::from(data);
                    owned[(at - start) as usize] ^= 0xff;
                    data = owned.freeze();
                }
            }
        }
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        !self.cut_reached() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
