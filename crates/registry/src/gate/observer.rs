//! What the gate reports about each request: to the copy's own counters (the CLI's `--json`
//! totals) and to observers an embedding program registers (the operator's metrics).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::{Action, Quota};

/// One finished request (or token fetch, or ECR API call).
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// The registry host (`registry-1.docker.io`), the token realm's host, or for the ECR API
    /// `ecr.<region>`.
    pub host: &'a str,
    pub action: Action,
    /// The HTTP method (`GET`…; `POST` for ECR API calls).
    pub method: &'a str,
    /// The status answered; 0 when no answer came (connection refused, reset, timeout).
    pub status: u16,
    /// From the gate's admission to the answer's headers.
    pub latency: Duration,
    /// Bytes sent in the request body plus the answer's declared `Content-Length`, where known.
    pub bytes: u64,
    /// The pull quota the answer announced (Docker Hub's `ratelimit-*` headers).
    pub quota: Option<Quota>,
}

/// Told about every request the gate admits, once its answer (or failure) is known. Called on
/// the request's task: keep it quick and non-blocking (update counters, not a network call).
pub trait Observer: Send + Sync {
    fn on_request(&self, event: &Event<'_>);
}

/// Requests sent, by method: what a copy cost, as the report shows it.
#[derive(Debug, Default)]
pub struct RequestCounters {
    get: AtomicU64,
    head: AtomicU64,
    put: AtomicU64,
    post: AtomicU64,
    patch: AtomicU64,
    delete: AtomicU64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    pub get: u64,
    pub head: u64,
    pub put: u64,
    pub post: u64,
    pub patch: u64,
    pub delete: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.get + self.head + self.put + self.post + self.patch + self.delete
    }
}

impl RequestCounters {
    fn record(&self, method: &str) {
        let counter = match method {
            "GET" => &self.get,
            "HEAD" => &self.head,
            "PUT" => &self.put,
            "POST" => &self.post,
            "PATCH" => &self.patch,
            "DELETE" => &self.delete,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            get: self.get.load(Ordering::Relaxed),
            head: self.head.load(Ordering::Relaxed),
            put: self.put.load(Ordering::Relaxed),
            post: self.post.load(Ordering::Relaxed),
            patch: self.patch.load(Ordering::Relaxed),
            delete: self.delete.load(Ordering::Relaxed),
        }
    }
}

/// A copy's counters are one more observer of the same events the operator's metrics see.
impl Observer for RequestCounters {
    fn on_request(&self, event: &Event<'_>) {
        self.record(event.method);
    }
}
