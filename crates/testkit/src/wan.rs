//! `WanProxy`: a TCP pass-through that makes a loopback registry behave as if it were across the
//! internet — one-way latency on every byte in each direction, a round trip before a new
//! connection carries data (the TCP handshake), and a bandwidth cap per connection and direction.
//!
//! It works below TLS and HTTP (it never looks at the bytes), so it fronts TLS registries and
//! shows every protocol's real cost: handshakes, HTTP/2 flow-control stalls, connection counts.
//! Design and limits: `docs/design/wan-rig.md`.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

mod pace;

use pace::Pacer;

/// Largest read (and so the largest burst) per chunk; 64–256 KiB keeps per-chunk overhead
/// negligible at hundreds of MiB per run.
const MAX_CHUNK: usize = 256 * 1024;
const MIN_CHUNK: usize = 16 * 1024;
/// With a rate cap, a chunk is this long a burst at that rate: small enough that a stream looks
/// smooth at round-trip scale, large enough to keep the work per byte low.
const BURST: Duration = Duration::from_millis(5);
/// Chunks in flight beyond the bandwidth-delay product, so the queue never limits throughput.
const SLACK_CHUNKS: usize = 4;
/// Without a rate cap: room for 16 MiB in flight per direction (≈ 1 GiB/s at 15 ms).
const UNCAPPED_SLOTS: usize = 64;

/// How the link behaves; one `WanProxy` (one upstream) has one config.
#[derive(Clone, Debug, Default)]
pub struct WanConfig {
    /// Added to every byte in each direction: 15 ms gives a 30 ms round trip. A new connection
    /// also waits one round trip before its first byte is forwarded, as a TCP handshake would.
    pub latency: Duration,
    /// Bytes per second, per connection and per direction; `None` (or 0) is unlimited.
    pub rate: Option<u64>,
    /// Append one line per accepted connection here (see [`WanProxy`] for the format).
    pub connection_log: Option<PathBuf>,
    /// TCP slow start: each connection and direction starts with a 10-segment window that
    /// grows by every byte sent (doubling per round trip) until the rate is reached, and
    /// shrinks again after idle (halved per 200 ms + RTT), as Linux does. Off by default.
    pub slow_start: bool,
}

impl WanConfig {
    /// `latency_ms` one way, `rate_mib` MiB/s per connection and direction (`None`: unlimited).
    pub fn new(latency_ms: u64, rate_mib: Option<f64>) -> WanConfig {
        WanConfig {
            latency: Duration::from_millis(latency_ms),
            rate: rate_mib.map(|r| (r * 1024.0 * 1024.0) as u64),
            connection_log: None,
            slow_start: false,
        }
    }

    pub fn slow_start(mut self, on: bool) -> WanConfig {
        self.slow_start = on;
        self
    }

    pub fn connection_log(mut self, path: impl Into<PathBuf>) -> WanConfig {
        self.connection_log = Some(path.into());
        self
    }
}

/// A snapshot of a proxy's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WanStats {
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Most connections open at once since start (or the last `reset_max_open`).
    pub max_open: u64,
    /// Bytes delivered client → upstream.
    pub bytes_up: u64,
    /// Bytes delivered upstream → client.
    pub bytes_down: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    open: AtomicU64,
    max_open: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// A listening pass-through to one upstream address. Dropping it closes the listener and every
/// connection it carries.
///
/// The connection log (optional) gets one line per accepted connection, written when it is
/// accepted: `<n> <unix-ms> <client-addr>`, e.g. `3 1764751234567 127.0.0.1:50312`, where `n`
/// counts from 1 for this proxy. `wc -l` of the file is the number of connections opened.
pub struct WanProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

struct Link {
    latency: Duration,
    /// Bytes per second, `None` unlimited.
    rate: Option<f64>,
    chunk: usize,
    slots: usize,
    slow_start: bool,
    log: Option<Mutex<File>>,
}

impl WanProxy {
    /// Listens on `127.0.0.1:<free port>`.
    pub async fn start(upstream: SocketAddr, config: WanConfig) -> anyhow::Result<WanProxy> {
        Self::start_on(0, upstream, config).await
    }

    /// Listens on `127.0.0.1:port` (`0`: a free one).
    pub async fn start_on(
        port: u16,
        upstream: SocketAddr,
        config: WanConfig,
    ) -> anyhow::Result<WanProxy> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding the WAN proxy to 127.0.0.1:{port}"))?;
        Self::from_listener(listener, upstream, config)
    }

    /// Serves an already bound listener: lets a caller learn the proxy's address (to give it to
    /// the upstream as its public address) before the upstream exists.
    pub fn from_listener(
        listener: TcpListener,
        upstream: SocketAddr,
        config: WanConfig,
    ) -> anyhow::Result<WanProxy> {
        let addr = listener.local_addr()?;
        let log = match &config.connection_log {
            Some(path) => Some(Mutex::new(open_log(path)?)),
            None => None,
        };
        let link = Arc::new(Link::new(&config, log));
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(accept_loop(listener, upstream, link, counters.clone()));
        Ok(WanProxy {
            addr,
            upstream,
            counters,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, the form image references use.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    pub fn stats(&self) -> WanStats {
        let c = &self.counters;
        WanStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            open: c.open.load(Ordering::Relaxed),
            max_open: c.max_open.load(Ordering::Relaxed),
            bytes_up: c.bytes_up.load(Ordering::Relaxed),
            bytes_down: c.bytes_down.load(Ordering::Relaxed),
        }
    }

    /// Starts a new "most open at once" measurement from the connections open now.
    pub fn reset_max_open(&self) {
        let open = self.counters.open.load(Ordering::Relaxed);
        self.counters.max_open.store(open, Ordering::Relaxed);
    }
}

impl Drop for WanProxy {
    fn drop(&mut self) {
        // The accept loop owns the connections' JoinSet: aborting it aborts them all.
        self.task.abort();
    }
}

impl Link {
    fn new(config: &WanConfig, log: Option<Mutex<File>>) -> Link {
        let rate = config.rate.filter(|&r| r > 0).map(|r| r as f64);
        let (chunk, slots) = match rate {
            Some(r) => {
                let chunk = ((r * BURST.as_secs_f64()) as usize).clamp(MIN_CHUNK, MAX_CHUNK);
                let bdp = r * config.latency.as_secs_f64();
                (chunk, (bdp / chunk as f64).ceil() as usize + SLACK_CHUNKS)
            }
            None => (MAX_CHUNK, UNCAPPED_SLOTS),
        };
        Link {
            latency: config.latency,
            rate,
            chunk,
            slots,
            slow_start: config.slow_start,
            log,
        }
    }
}

fn open_log(path: &Path) -> anyhow::Result<File> {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening connection log {}", path.display()))
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    link: Arc<Link>,
    counters: Arc<Counters>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, peer)) = accepted else {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let n = counters.accepted.fetch_add(1, Ordering::Relaxed) + 1;
                let open = counters.open.fetch_add(1, Ordering::Relaxed) + 1;
                counters.max_open.fetch_max(open, Ordering::Relaxed);
                let guard = OpenGuard(counters.clone());
                if let Some(log) = &link.log {
                    log_accept(log, n, peer);
                }
                conns.spawn(serve(client, upstream, link.clone(), guard));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

fn log_accept(log: &Mutex<File>, n: u64, peer: SocketAddr) {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut file = log.lock().unwrap_or_else(|e| e.into_inner());
    // One write per line: a reader of the file never sees half a line. A full disk only costs
    // the log, never the connection.
    let _ = file.write_all(format!("{n} {ms} {peer}\n").as_bytes());
}

/// Counts a connection as open until its task ends, however it ends (aborts included).
struct OpenGuard(Arc<Counters>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, link: Arc<Link>, guard: OpenGuard) {
    // The client's connect() returned at once on loopback; a real one would have waited a round
    // trip for the SYN-ACK. Holding its first bytes back that long costs the same.
    tokio::time::sleep(link.latency * 2).await;
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    // The pipes batch by time themselves; Nagle would only add delay on top.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    let counters = &guard.0;
    // Either direction failing (a reset) ends both, as it would end the real connection.
    let _ = tokio::try_join!(
        pipe(client_read, server_write, &link, &counters.bytes_up),
        pipe(server_read, client_write, &link, &counters.bytes_down),
    );
}

/// One direction: a reader that takes bytes as fast as the rate allows and stamps each chunk
/// with the time it may arrive, and a writer that delivers chunks at their time. Reading goes
/// on while earlier chunks are in flight (no stop-and-wait); the bounded queue is the link's
/// capacity, and when it is full the reader stops, so TCP back-pressure reaches the sender.
async fn pipe<R, W>(
    mut from: R,
    mut to: W,
    link: &Link,
    delivered: &AtomicU64,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(link.slots);
    let reader = async move {
        let mut buf = BytesMut::new();
        let slow_start = link
            .slow_start
            .then_some((link.latency * 2, link.slots * link.chunk));
        let mut pacer = Pacer::new(link.rate, link.chunk, BURST, slow_start);
        loop {
            let (not_before, limit) = pacer.next_read();
            if not_before > Instant::now() {
                tokio::time::sleep_until(not_before).await;
            }
            buf.reserve(limit);
            let n = from.read_buf(&mut (&mut buf).limit(limit)).await?;
            if n == 0 {
                // EOF: dropping the sender lets the writer drain and half-close.
                return Ok::<(), std::io::Error>(());
            }
            let now = Instant::now();
            pacer.paid(n, now);
            if tx
                .send((now + link.latency, buf.split().freeze()))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            to.write_all(&chunk).await?;
            delivered.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        // The sender closed its side: pass the half-close on, keep the other direction open.
        to.shutdown().await
    };
    tokio::try_join!(reader, writer).map(|_| ())
}
