//! The request gate: every registry request, token fetch and ECR API call waits here for
//! admission to its lane, one lane per (host, action), shared by every clone of a client and
//! every copy in the process.
//!
//! A lane limits requests in flight (and, for ECR's published per-API quotas, requests per
//! second). It adapts: each success adds a slot back (additive increase), a throttling answer
//! (429, 503, ECR's `ThrottlingException`) halves the limits (multiplicative decrease), and a
//! `Retry-After` closes the whole lane for that long, so the requests queued behind the one
//! that was told to wait do not each go and get told the same. See docs/design/gate.md.

mod aimd;
mod observer;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::HeaderMap;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use aimd::{Aimd, Limits};
pub use observer::{Event, Observer, RequestCounters, RequestCounts};

/// What a request does, as far as a registry's throttling is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    ManifestGet,
    ManifestHead,
    /// PUT and DELETE of a manifest.
    ManifestPut,
    BlobHead,
    BlobGet,
    /// Everything of an upload session: POST (and mount), PATCH, PUT, DELETE.
    BlobUpload,
    TagList,
    Referrers,
    /// A token fetch from the host's token service.
    Token,
    /// The `/v2/` ping and anything else.
    Other,
    /// An ECR API operation (`PutImage`, `GetAuthorizationToken`…).
    Ecr(&'static str),
}

impl Action {
    /// Classifies a registry request from its method and URL (or path).
    pub fn classify(method: &str, url: &str) -> Action {
        let path = url
            .find("://")
            .map_or(url, |i| &url[i + 3..])
            .split(['?', '#'])
            .next()
            .unwrap_or_default();
        let Some((_, api)) = path.split_once("/v2/") else {
            return Action::Other;
        };
        if api.contains("/blobs/uploads") {
            return Action::BlobUpload;
        }
        if api.contains("/manifests/") {
            return match method {
                "GET" => Action::ManifestGet,
                "HEAD" => Action::ManifestHead,
                _ => Action::ManifestPut,
            };
        }
        if api.contains("/blobs/") {
            return match method {
                "HEAD" => Action::BlobHead,
                "GET" => Action::BlobGet,
                _ => Action::BlobUpload,
            };
        }
        if api.ends_with("/tags/list") {
            return Action::TagList;
        }
        if api.contains("/referrers/") {
            return Action::Referrers;
        }
        Action::Other
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Action::ManifestGet => "manifest_get",
            Action::ManifestHead => "manifest_head",
            Action::ManifestPut => "manifest_put",
            Action::BlobHead => "blob_head",
            Action::BlobGet => "blob_get",
            Action::BlobUpload => "blob_upload",
            Action::TagList => "tag_list",
            Action::Referrers => "referrers",
            Action::Token => "token",
            Action::Other => "other",
            Action::Ecr(operation) => operation,
        }
    }

    /// Defaults that never hold back a healthy registry: blob transfers are already bounded by
    /// the copy's `Budget`, and a copy has a few dozen manifest requests in flight at most.
    /// ECR operations get their published per-region rate quotas.
    pub fn default_limits(&self) -> Limits {
        match self {
            Action::Token => Limits::concurrency(16.0),
            Action::Ecr(operation) => Limits::rate(ecr_quota(operation)),
            _ => Limits::concurrency(64.0),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// On an ECR registry host the registry API is served by ECR API operations with their own
/// per-region rate quotas: a manifest PUT is a PutImage, an upload's POST an
/// InitiateLayerUpload and its final PUT a CompleteLayerUpload (10 per second each).
fn limits_for(host: &str, action: Action) -> Limits {
    if !crate::ecr::is_ecr_host(host) {
        return action.default_limits();
    }
    match action {
        Action::ManifestPut => Action::Ecr("PutImage").default_limits(),
        // Two rate-limited requests per blob (POST, then the PUT that completes it).
        Action::BlobUpload => Limits::rate(2.0 * ecr_quota("InitiateLayerUpload")),
        Action::ManifestGet => Action::Ecr("BatchGetImage").default_limits(),
        Action::BlobHead => Action::Ecr("BatchCheckLayerAvailability").default_limits(),
        _ => action.default_limits(),
    }
}

/// Requests per second per account and region, from the "Amazon ECR service quotas" page
/// (docs/design/gate.md cites it). Operations it lists no rate for get a cautious 20.
fn ecr_quota(operation: &str) -> f64 {
    match operation {
        "GetAuthorizationToken" => 200.0,
        "BatchGetImage" => 2000.0,
        "BatchCheckLayerAvailability" => 1000.0,
        "PutImage" | "InitiateLayerUpload" | "CompleteLayerUpload" => 10.0,
        "UploadLayerPart" => 500.0,
        _ => 20.0,
    }
}

/// Docker Hub's pull quota as its `ratelimit-limit` / `ratelimit-remaining` headers state it
/// (`100;w=21600`: 100 pulls per 21600 s window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quota {
    pub limit: u64,
    pub remaining: u64,
    /// The window the limit applies to, when the header names one.
    pub window_secs: Option<u64>,
}

impl Quota {
    pub fn from_headers(headers: &HeaderMap) -> Option<Quota> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (limit, window_secs) = parse_quota_value(header("ratelimit-limit")?)?;
        let (remaining, _) = parse_quota_value(header("ratelimit-remaining")?)?;
        Some(Quota {
            limit,
            remaining,
            window_secs,
        })
    }
}

fn parse_quota_value(value: &str) -> Option<(u64, Option<u64>)> {
    let mut parts = value.split(';');
    let count = parts.next()?.trim().parse().ok()?;
    let window = parts
        .filter_map(|p| p.trim().strip_prefix("w="))
        .find_map(|w| w.trim().parse().ok());
    Some((count, window))
}

/// A lane's state as [`Gate::state`] reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaneState {
    /// Requests allowed in flight now.
    pub concurrency: f64,
    /// Requests per second allowed now, for rate-limited lanes.
    pub rate: Option<f64>,
    pub in_flight: usize,
    /// How much longer a `Retry-After` keeps the lane closed.
    pub paused_for: Option<Duration>,
    /// Requests admitted so far.
    pub admitted: u64,
    /// Throttling answers so far (429, 503, ECR throttling errors).
    pub throttled: u64,
    /// The last pull quota the host announced (Docker Hub).
    pub quota: Option<Quota>,
}

/// How a gated request ended, for [`Permit::finish`].
#[derive(Debug, Clone, Default)]
pub struct Outcome<'a> {
    pub method: &'a str,
    /// 0 when no answer came.
    pub status: u16,
    /// The answer's headers, read for `Retry-After` and the pull quota.
    pub headers: Option<&'a HeaderMap>,
    /// Body bytes sent with the request, where known.
    pub bytes_sent: u64,
    /// The answer says "too many requests" some other way than its status (an ECR
    /// `ThrottlingException`).
    pub throttled: bool,
}

/// Upper bound of an honoured `Retry-After` (the retry policy caps its own wait the same way).
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// The gate. Cheap to clone; clones share every lane.
#[derive(Clone, Default)]
pub struct Gate {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    lanes: Mutex<HashMap<(String, Action), Arc<Lane>>>,
    overrides: HashMap<Action, Limits>,
    observers: Vec<Arc<dyn Observer>>,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("lanes", &lock(&self.inner.lanes).len())
            .field("observers", &self.inner.observers.len())
            .finish()
    }
}

impl Gate {
    /// A gate with the default limits of every action except those in `overrides`, reporting
    /// to `observers`.
    pub fn new(overrides: HashMap<Action, Limits>, observers: Vec<Arc<dyn Observer>>) -> Gate {
        Gate {
            inner: Arc::new(Inner {
                lanes: Mutex::new(HashMap::new()),
                overrides,
                observers,
            }),
        }
    }

    /// The state of the lane for (`host`, `action`), if any request went through it yet.
    pub fn state(&self, host: &str, action: Action) -> Option<LaneState> {
        let lane = lock(&self.inner.lanes)
            .get(&(host.to_string(), action))
            .cloned()?;
        let state = lane.lock();
        Some(state.snapshot(Instant::now()))
    }

    /// Every lane's state, for metrics.
    pub fn lanes(&self) -> Vec<(String, Action, LaneState)> {
        let lanes: Vec<_> = lock(&self.inner.lanes)
            .iter()
            .map(|((host, action), lane)| (host.clone(), *action, lane.clone()))
            .collect();
        let now = Instant::now();
        lanes
            .into_iter()
            .map(|(host, action, lane)| {
                let state = lane.lock().snapshot(now);
                (host, action, state)
            })
            .collect()
    }

    fn lane(&self, host: &str, action: Action) -> Arc<Lane> {
        lock(&self.inner.lanes)
            .entry((host.to_string(), action))
            .or_insert_with(|| {
                let limits = self
                    .inner
                    .overrides
                    .get(&action)
                    .copied()
                    .unwrap_or_else(|| limits_for(host, action));
                Arc::new(Lane::new(limits))
            })
            .clone()
    }

    /// Waits until the lane of (`host`, `action`) admits one more request.
    pub async fn acquire(&self, host: &str, action: Action) -> Permit {
        let lane = self.lane(host, action);
        let epoch = loop {
            let changed = lane.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let verdict = lane.lock().try_admit(Instant::now());
            match verdict {
                Admission::Admitted { epoch } => break epoch,
                Admission::WaitUntil(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = changed => {}
                    }
                }
                Admission::WaitForSlot => changed.await,
            }
        };
        Permit {
            gate: self.clone(),
            lane,
            host: host.to_string(),
            action,
            epoch,
            started: Instant::now(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state consistent; a panic in one poisons nothing real.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

struct Lane {
    state: Mutex<State>,
    /// Woken when a slot frees up, a pause is set, or the limits change.
    changed: Notify,
}

struct State {
    aimd: Aimd,
    in_flight: usize,
    paused_until: Option<Instant>,
    /// Token bucket of rate-limited lanes.
    tokens: f64,
    refilled: Instant,
    admitted: u64,
    throttled: u64,
    quota: Option<Quota>,
}

enum Admission {
    Admitted { epoch: u64 },
    WaitUntil(Instant),
    WaitForSlot,
}

impl Lane {
    fn new(limits: Limits) -> Lane {
        Lane {
            state: Mutex::new(State {
                aimd: Aimd::new(limits),
                in_flight: 0,
                paused_until: None,
                tokens: limits.rate.map_or(0.0, |r| r.max(1.0)),
                refilled: Instant::now(),
                admitted: 0,
                throttled: 0,
                quota: None,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl State {
    fn try_admit(&mut self, now: Instant) -> Admission {
        if let Some(until) = self.paused_until {
            if now < until {
                return Admission::WaitUntil(until);
            }
            self.paused_until = None;
        }
        if self.in_flight >= self.aimd.slots() {
            return Admission::WaitForSlot;
        }
        if let Some(rate) = self.aimd.rate() {
            let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate).min(rate.max(1.0));
            self.refilled = now;
            if self.tokens < 1.0 {
                let wait = Duration::from_secs_f64((1.0 - self.tokens) / rate);
                return Admission::WaitUntil(now + wait);
            }
            self.tokens -= 1.0;
        }
        self.in_flight += 1;
        self.admitted += 1;
        Admission::Admitted {
            epoch: self.aimd.epoch(),
        }
    }

    fn snapshot(&self, now: Instant) -> LaneState {
        LaneState {
            concurrency: self.aimd.concurrency(),
            rate: self.aimd.rate(),
            in_flight: self.in_flight,
            paused_for: self
                .paused_until
                .filter(|until| *until > now)
                .map(|until| until - now),
            admitted: self.admitted,
            throttled: self.throttled,
            quota: self.quota,
        }
    }
}

/// One admitted request. Dropping it frees the slot; [`finish`](Self::finish) also teaches the
/// lane what the answer was.
pub struct Permit {
    gate: Gate,
    lane: Arc<Lane>,
    host: String,
    action: Action,
    epoch: u64,
    started: Instant,
}

impl Permit {
    /// Records the answer: adapts the lane, honours `Retry-After`, reads the pull quota, and
    /// tells the observers (the gate's and `extra`, such as a copy's own counters).
    pub fn finish(self, outcome: &Outcome<'_>, extra: &[&dyn Observer]) {
        let throttled = outcome.throttled || matches!(outcome.status, 429 | 503);
        let retry_after = outcome
            .headers
            .and_then(|h| h.get(http::header::RETRY_AFTER))
            .and_then(|v| v.to_str().ok())
            .and_then(crate::retry::parse_retry_after);
        let quota = outcome.headers.and_then(Quota::from_headers);
        {
            let mut state = self.lane.lock();
            if throttled {
                state.throttled += 1;
                if state.aimd.on_throttle(self.epoch) {
                    tracing::info!(
                        host = %self.host,
                        action = %self.action,
                        concurrency = state.aimd.concurrency(),
                        rate = ?state.aimd.rate(),
                        "throttled: limits lowered"
                    );
                }
            } else if (200..400).contains(&outcome.status) || outcome.status == 404 {
                state.aimd.on_success();
            }
            if let Some(wait) = retry_after.filter(|_| throttled) {
                let until = Instant::now() + wait.min(MAX_PAUSE);
                if state.paused_until.is_none_or(|current| current < until) {
                    state.paused_until = Some(until);
                }
            }
            if quota.is_some() {
                state.quota = quota;
            }
        }
        let bytes = outcome.bytes_sent
            + outcome
                .headers
                .and_then(|h| h.get(http::header::CONTENT_LENGTH))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        let event = Event {
            host: &self.host,
            action: self.action,
            method: outcome.method,
            status: outcome.status,
            latency: self.started.elapsed(),
            bytes,
            quota,
        };
        for observer in self.gate.inner.observers.iter().map(|o| o.as_ref()) {
            observer.on_request(&event);
        }
        for observer in extra {
            observer.on_request(&event);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.lane.lock().in_flight -= 1;
        self.lane.changed.notify_waiters();
    }
}
