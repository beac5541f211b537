//! `FaultProxy`: an HTTP/1.1 reverse proxy that records every request and injects faults.
//!
//! Bodies stream through in both directions (layers are tens of MiB), and the client's `Host`
//! header is forwarded unchanged: distribution builds upload `Location` URLs from `Host`, so
//! they point back at the proxy and follow-up requests stay observable.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::server::{self, BoxError, ServerTask};

mod body;
mod paging;

use body::{FaultyBody, InFlight, Mode};

type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Wait this long before forwarding.
    Delay(Duration),
    /// Answer with this status and a registry-style JSON error, never contacting upstream.
    /// The request body is drained first so the client reliably reads the answer.
    Status { code: u16, retry_after: Option<u64> },
    /// Forward, then abort the connection after this many bytes of the *response* body.
    ResetMidBody { after_bytes: u64 },
    /// Forward, flipping every bit of the response body byte at this offset.
    CorruptBody { at_byte: u64 },
    /// Read this many bytes of the *request* body (an upload), then abort the connection
    /// without answering; upstream never sees the request.
    ResetMidUpload { after_bytes: u64 },
    /// Forward the request with the request body byte at this offset flipped.
    CorruptUpload { at_byte: u64 },
    /// Answer `GET …/tags/list` a page of at most this many tags at a time, with a `Link` to the
    /// next page, as ECR and Docker Hub do (distribution 2.8 ignores `n` and sends every tag).
    PaginateTags { page: usize },
}

#[derive(Clone, Debug)]
pub struct Fault {
    /// `None` matches any method; otherwise compared case-insensitively.
    pub method: Option<String>,
    /// Substring of the request's path and query.
    pub path_contains: String,
    /// Applied to this many matching requests, then removed.
    pub times: usize,
    /// Applied to every `every`-th matching request only (1: each one), so a share of the
    /// traffic fails as under real throttling: `every(5)` answers 20 %.
    pub every: usize,
    /// Matching requests seen so far, for `every`.
    seen: usize,
    pub action: FaultAction,
}

impl Fault {
    /// A fault for the next matching request of any method.
    pub fn new(path_contains: &str, action: FaultAction) -> Fault {
        Fault {
            method: None,
            path_contains: path_contains.to_string(),
            times: 1,
            every: 1,
            seen: 0,
            action,
        }
    }

    pub fn every(mut self, every: usize) -> Fault {
        self.every = every.max(1);
        self
    }

    pub fn method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_string());
        self
    }

    pub fn times(mut self, times: usize) -> Fault {
        self.times = times;
        self
    }

    fn matches(&self, method: &str, path_and_query: &str) -> bool {
        self.times > 0
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path_and_query.contains(&self.path_contains)
    }
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path_and_query: String,
    /// Status sent to the client; 0 while pending or when the connection was cut before any
    /// answer (`ResetMidUpload`).
    pub status: u16,
    pub headers: HeaderMap,
    pub fault: Option<FaultAction>,
}

struct State {
    upstream: String,
    client: Client<HttpConnector, ProxyBody>,
    faults: Mutex<Vec<Fault>>,
    recorded: Mutex<Vec<(u64, Recorded)>>,
    next_id: AtomicU64,
    latency_ms: AtomicU64,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    _server: ServerTask,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream_url` (e.g. `TestRegistry::url()`).
    pub async fn start(upstream_url: &str) -> anyhow::Result<FaultProxy> {
        let upstream = crate::util::base_url(upstream_url);
        upstream.parse::<Uri>()?;
        let state = Arc::new(State {
            upstream,
            client: Client::builder(TokioExecutor::new()).build_http(),
            faults: Mutex::new(Vec::new()),
            recorded: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            latency_ms: AtomicU64::new(0),
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: Arc::new(AtomicUsize::new(0)),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let handler_state = state.clone();
        let server = server::spawn(listener, None, move |req| {
            handle(handler_state.clone(), req)
        });
        Ok(FaultProxy {
            addr,
            state,
            _server: server,
        })
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_fault(&self, fault: Fault) {
        lock(&self.state.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.state.faults).clear();
    }

    /// Faults not yet used up; 0 means every injected fault fired.
    pub fn pending_faults(&self) -> usize {
        lock(&self.state.faults).iter().map(|f| f.times).sum()
    }

    /// Extra delay before every forwarded request, a crude stand-in for WAN latency.
    pub fn set_latency(&self, latency: Duration) {
        self.state
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.recorded)
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Requests whose method equals `method` (case-insensitive; "" matches any) and whose path
    /// and query contain `path_contains`.
    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        lock(&self.state.recorded)
            .iter()
            .filter(|(_, r)| method.is_empty() || r.method.eq_ignore_ascii_case(method))
            .filter(|(_, r)| r.path_and_query.contains(path_contains))
            .count()
    }

    /// Forgets recorded requests and the concurrency high-water mark (faults stay).
    pub fn clear(&self) {
        lock(&self.state.recorded).clear();
        self.state.max_in_flight.store(0, Ordering::SeqCst);
    }

    /// Highest number of requests in progress at once (until their response body ended).
    pub fn max_concurrent(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn take_fault(&self, method: &str, path_and_query: &str) -> Option<FaultAction> {
        let mut faults = lock(&self.faults);
        let idx = faults.iter_mut().position(|f| {
            if !f.matches(method, path_and_query) {
                return false;
            }
            f.seen += 1;
            f.seen % f.every == 0
        })?;
        faults[idx].times -= 1;
        let action = faults[idx].action.clone();
        if faults[idx].times == 0 {
            faults.remove(idx);
        }
        Some(action)
    }

    fn set_status(&self, id: u64, status: u16) {
        let mut recorded = lock(&self.recorded);
        if let Some((_, r)) = recorded.iter_mut().rev().find(|(i, _)| *i == id) {
            r.status = status;
        }
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, BoxError> {
    let in_flight = InFlight::enter(&state.in_flight, &state.max_in_flight);
    let method = req.method().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let fault = state.take_fault(&method, &path_and_query);
    let id = state.next_id.fetch_add(1, Ordering::SeqCst);
    lock(&state.recorded).push((
        id,
        Recorded {
            method,
            path_and_query: path_and_query.clone(),
            status: 0,
            headers: req.headers().clone(),
            fault: fault.clone(),
        },
    ));

    let latency = state.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    let result = match fault {
        Some(FaultAction::Delay(d)) => {
            tokio::time::sleep(d).await;
            forward(
                &state,
                req,
                &path_and_query,
                Mode::Pass,
                Mode::Pass,
                in_flight,
            )
            .await
        }
        Some(FaultAction::Status { code, retry_after }) => {
            // Drain so a client still sending an upload reads our answer instead of EPIPE.
            let _ = req.into_body().collect().await;
            Ok(error_response(code, retry_after, "injected by FaultProxy"))
        }
        Some(FaultAction::ResetMidUpload { after_bytes }) => {
            let mut body = req.into_body();
            let mut seen = 0u64;
            while seen < after_bytes {
                match body.frame().await {
                    Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len() as u64),
                    _ => break,
                }
            }
            // An error from the service makes hyper drop the connection without a response.
            Err("connection cut by FaultProxy (ResetMidUpload)".into())
        }
        Some(FaultAction::CorruptUpload { at_byte }) => {
            let mode = Mode::FlipAt(at_byte);
            forward(&state, req, &path_and_query, mode, Mode::Pass, in_flight).await
        }
        Some(FaultAction::ResetMidBody { after_bytes }) => {
            let mode = Mode::CutAfter(after_bytes);
            forward(&state, req, &path_and_query, Mode::Pass, mode, in_flight).await
        }
        Some(FaultAction::PaginateTags { page }) => {
            let _ = req.into_body().collect().await;
            paging::serve_page(&state.client, &state.upstream, &path_and_query, page).await
        }
        Some(FaultAction::CorruptBody { at_byte }) => {
            let mode = Mode::FlipAt(at_byte);
            forward(&state, req, &path_and_query, Mode::Pass, mode, in_flight).await
        }
        None => {
            forward(
                &state,
                req,
                &path_and_query,
                Mode::Pass,
                Mode::Pass,
                in_flight,
            )
            .await
        }
    };
    if let Ok(resp) = &result {
        state.set_status(id, resp.status().as_u16());
    }
    result
}

async fn forward(
    state: &State,
    req: Request<Incoming>,
    path_and_query: &str,
    request_mode: Mode,
    response_mode: Mode,
    in_flight: InFlight,
) -> Result<Response<ProxyBody>, BoxError> {
    let (mut parts, body) = req.into_parts();
    parts.uri = format!("{}{}", state.upstream, path_and_query).parse()?;
    strip_hop_by_hop(&mut parts.headers);
    let body = FaultyBody::new(body, request_mode, None).boxed_unsync();
    let resp = match state.client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => resp,
        Err(e) => return Ok(error_response(502, None, &format!("upstream: {e}"))),
    };
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let body = FaultyBody::new(body, response_mode, Some(in_flight)).boxed_unsync();
    Ok(Response::from_parts(parts, body))
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

fn error_code(status: u16) -> &'static str {
    match status {
        400 => "UNSUPPORTED",
        401 => "UNAUTHORIZED",
        403 => "DENIED",
        404 => "NAME_UNKNOWN",
        429 => "TOOMANYREQUESTS",
        502..=504 => "UNAVAILABLE",
        _ => "UNKNOWN",
    }
}

fn error_response(code: u16, retry_after: Option<u64>, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({
        "errors": [{"code": error_code(code), "message": message, "detail": null}]
    })
    .to_string();
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    if let Some(secs) = retry_after {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}
