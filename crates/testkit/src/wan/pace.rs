//! When one direction of a proxied connection may read its next chunk, and how much: a token
//! bucket for the rate cap, and optionally TCP's slow start.

use std::time::Duration;

use tokio::time::Instant;

/// RFC 6928's initial congestion window: 10 segments.
const INITIAL_WINDOW: f64 = 10.0 * 1460.0;
/// Linux's minimum retransmission timeout; idle longer than RTO shrinks the window
/// (`tcp_slow_start_after_idle`, on by default).
const RTO_MIN: Duration = Duration::from_millis(200);

pub(super) struct Pacer {
    /// Bytes per second, `None` unlimited.
    rate: Option<f64>,
    chunk: usize,
    burst: Duration,
    /// Token bucket as a virtual clock: the time the bytes read so far have paid for.
    paid_until: Instant,
    window: Option<Window>,
}

/// A congestion window that grows by every byte sent (doubling per round trip) up to what the
/// cap or the in-flight bound can use, and decays after idle.
struct Window {
    bytes: f64,
    max: f64,
    rtt: f64,
    rto: Duration,
}

impl Pacer {
    /// `max_in_flight` bounds the window without a rate cap; `rtt` zero means no slow start.
    pub(super) fn new(
        rate: Option<f64>,
        chunk: usize,
        burst: Duration,
        slow_start: Option<(Duration, usize)>,
    ) -> Pacer {
        let window = slow_start
            .filter(|(rtt, _)| !rtt.is_zero())
            .map(|(rtt, max_in_flight)| {
                let rtt_s = rtt.as_secs_f64();
                let max = rate.map_or(max_in_flight as f64, |r| r * rtt_s);
                Window {
                    bytes: INITIAL_WINDOW.min(max.max(1.0)),
                    max: max.max(INITIAL_WINDOW),
                    rtt: rtt_s,
                    rto: RTO_MIN + rtt,
                }
            });
        Pacer {
            rate,
            chunk,
            burst,
            paid_until: Instant::now(),
            window,
        }
    }

    /// The earliest time of the next read, and its largest size.
    pub(super) fn next_read(&self) -> (Instant, usize) {
        let limit = match &self.window {
            Some(w) => (w.bytes as usize).clamp(1, self.chunk),
            None => self.chunk,
        };
        (self.paid_until, limit)
    }

    /// `n` bytes were read at `now`.
    pub(super) fn paid(&mut self, n: usize, now: Instant) {
        let rate = match &mut self.window {
            Some(w) => {
                let idle = now.saturating_duration_since(self.paid_until);
                if idle > w.rto {
                    // Linux halves the window per RTO of idle, down to the initial window.
                    let halvings = (idle.as_secs_f64() / w.rto.as_secs_f64()).min(30.0);
                    w.bytes = (w.bytes / 2f64.powf(halvings.floor())).max(INITIAL_WINDOW);
                }
                let ramp = w.bytes / w.rtt;
                w.bytes = (w.bytes + n as f64).min(w.max);
                Some(self.rate.map_or(ramp, |cap| ramp.min(cap)))
            }
            None => self.rate,
        };
        if let Some(rate) = rate {
            // An idle link may send one burst at once, never more.
            let floor = now.checked_sub(self.burst).unwrap_or(now);
            self.paid_until = self.paid_until.max(floor) + Duration::from_secs_f64(n as f64 / rate);
        }
    }
}
