//! The HTTP client: one connection pool, one authorizer and one retry policy, shared by every
//! clone. A [`Repository`] is a cheap handle onto one repository of one registry; the protocol
//! operations live next to their concepts ([`crate::endpoints::blobs`], [`crate::endpoints::tags`], …) as methods on it.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderName, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};

use crate::auth::{
    Authorizer, ChainCredentials, CredentialProvider, DockerConfigCredentials, Scope,
};
use crate::error::{Error, RequestInfo, Result, registry_error};
use crate::gate::{Action, Gate, Limits, Observer, Outcome};
pub use crate::gate::{RequestCounters, RequestCounts};
use crate::reference::Reference;
use crate::retry::{
    Attempts, RetryPolicy, gave_up, is_retryable_status, mark_attempts, parse_retry_after,
};
use crate::transport::{CaSource, Transport};

/// Builds a [`Client`]. Defaults: credentials from docker's `config.json`, TLS verified
/// against the system trust store, plain HTTP only for loopback hosts, 5 attempts per request.
pub struct ClientBuilder {
    insecure_hosts: Vec<String>,
    cas: Vec<CaSource>,
    credentials: Option<Arc<dyn CredentialProvider>>,
    docker_config: bool,
    retry: RetryPolicy,
    connect_timeout: Duration,
    read_timeout: Duration,
    ecr_registry_url: Option<String>,
    gate_limits: HashMap<Action, Limits>,
    observers: Vec<Arc<dyn Observer>>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            insecure_hosts: Vec::new(),
            cas: Vec::new(),
            credentials: None,
            docker_config: true,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(300),
            ecr_registry_url: None,
            gate_limits: HashMap::new(),
            observers: Vec::new(),
        }
    }
}

impl ClientBuilder {
    /// Talk plain HTTP to this host (`host` or `host:port`). Loopback hosts never need this.
    pub fn insecure_host(mut self, host: impl Into<String>) -> Self {
        self.insecure_hosts.push(host.into());
        self
    }

    /// Trust the CA certificates in this PEM file in addition to the system's.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cas.push(CaSource::File(path.into()));
        self
    }

    /// Trust the CA certificates in these PEM bytes (one or more `CERTIFICATE` blocks), in
    /// addition to the system's: for a CA held in memory, such as a Kubernetes Secret's
    /// `ca.crt`. Checked by [`build`](Self::build).
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.cas.push(CaSource::Pem(pem.into()));
        self
    }

    /// Where credentials come from; consulted before docker's `config.json` (unless that is
    /// turned off with [`docker_config`](Self::docker_config)).
    pub fn credentials(mut self, provider: Arc<dyn CredentialProvider>) -> Self {
        self.credentials = Some(provider);
        self
    }

    pub fn docker_config(mut self, enabled: bool) -> Self {
        self.docker_config = enabled;
        self
    }

    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Send registry API calls for every ECR host to this base URL instead: for private endpoints, and for the local ECR stand-in in tests, whose control plane names
    /// the real AWS host in `proxyEndpoint`. Credentials are still looked up for the ECR host.
    pub fn ecr_registry_url(mut self, url: impl Into<String>) -> Self {
        self.ecr_registry_url = Some(url.into());
        self
    }

    /// Tell `observer` about every request the client sends (host, action, status, latency,
    /// bytes), e.g. to export metrics.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Limit every host's `action` lane of the request gate to `limits` instead of the default.
    pub fn gate_limits(mut self, action: Action, limits: Limits) -> Self {
        self.gate_limits.insert(action, limits);
        self
    }

    pub fn build(self) -> Result<Client> {
        let ecr_endpoint = self
            .ecr_registry_url
            .as_deref()
            .map(Endpoint::parse)
            .transpose()?;
        let transport = Arc::new(Transport::new(
            self.cas,
            self.connect_timeout,
            self.read_timeout,
        )?);

        let mut providers: Vec<Arc<dyn CredentialProvider>> = Vec::new();
        providers.extend(self.credentials);
        if self.docker_config {
            providers.push(Arc::new(DockerConfigCredentials::new()));
        }
        let provider: Arc<dyn CredentialProvider> = Arc::new(ChainCredentials::new(providers));

        let gate = Gate::new(self.gate_limits, self.observers);
        Ok(Client {
            inner: Arc::new(Inner {
                authorizer: Authorizer::new(provider, transport.clone()).with_gate(gate.clone()),
                gate,
                transport,
                insecure: self.insecure_hosts.into_iter().collect(),
                retry: self.retry,
                ecr_endpoint,
            }),
        })
    }
}

/// A registry client. Clones share the connection pool, the credential provider and the token
/// cache, so one client serves any number of concurrent copies. A client derived with
/// [`with_credentials`](Client::with_credentials) shares only the pool and TLS settings.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Arc<Transport>,
    authorizer: Authorizer,
    gate: Gate,
    insecure: HashSet<String>,
    retry: RetryPolicy,
    ecr_endpoint: Option<Endpoint>,
}

/// A registry base URL that replaces `https://<host>`.
#[derive(Debug, Clone)]
struct Endpoint {
    /// `scheme://host[:port][/prefix]`, without a trailing slash.
    base: String,
    /// `host[:port]`, what authentication state is kept under.
    host: String,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Endpoint> {
        let parsed = url::Url::parse(url).map_err(|e| {
            Error::Config(format!("the ECR registry URL {url:?} is not a URL: {e}"))
        })?;
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => {
                return Err(Error::Config(format!(
                    "the ECR registry URL {url:?} names no host"
                )));
            }
        };
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "the ECR registry URL {url:?} must be an http:// or https:// URL"
            )));
        }
        Ok(Endpoint {
            base: url.trim_end_matches('/').to_string(),
            host,
        })
    }
}

impl Client {
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A handle on the repository `reference` names (its tag and digest are ignored).
    pub fn repository(&self, reference: &Reference) -> Repository {
        let (host, root) = match &self.inner.ecr_endpoint {
            Some(endpoint) if crate::ecr::is_ecr_host(reference.api_host()) => {
                (endpoint.host.clone(), endpoint.base.clone())
            }
            _ => {
                let host = reference.api_host().to_string();
                let scheme = if self.is_plain_http(&host) {
                    "http"
                } else {
                    "https"
                };
                (host.clone(), format!("{scheme}://{host}"))
            }
        };
        Repository {
            base: format!("{root}/v2/{}", reference.repository()),
            client: self.clone(),
            registry: reference.registry().to_string(),
            host,
            name: reference.repository().to_string(),
            counters: Arc::new(RequestCounters::default()),
        }
    }

    /// The request gate every request of this client and its clones passes.
    pub fn gate(&self) -> &Gate {
        &self.inner.gate
    }

    /// A client for another tenant: it shares this client's connection pool, TLS settings and
    /// retry policy, and has its own authorizer and token cache, fed by `provider` alone (not by
    /// this client's providers, nor docker's `config.json`). A token fetched with one client's
    /// credentials is never sent by the other. For a tenant's pull Secret, see
    /// [`DockerConfig::from_slice`](crate::auth::DockerConfig::from_slice) with
    /// [`HelperPolicy::Refuse`](crate::auth::HelperPolicy::Refuse).
    pub fn with_credentials(&self, provider: Arc<dyn CredentialProvider>) -> Client {
        let inner = &self.inner;
        Client {
            inner: Arc::new(Inner {
                authorizer: Authorizer::new(provider, inner.transport.clone())
                    .with_gate(inner.gate.clone()),
                transport: inner.transport.clone(),
                gate: inner.gate.clone(),
                insecure: inner.insecure.clone(),
                retry: inner.retry.clone(),
                ecr_endpoint: inner.ecr_endpoint.clone(),
            }),
        }
    }

    /// Whether `other` sends its requests over this client's connection pool.
    pub fn shares_transport_with(&self, other: &Client) -> bool {
        Arc::ptr_eq(&self.inner.transport, &other.inner.transport)
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// Hosts named insecure. A loopback host without that mark starts as `https://` and is
    /// asked which it speaks on its first request (see `transport::loopback`).
    fn is_plain_http(&self, host: &str) -> bool {
        self.inner.insecure.contains(host) || self.inner.insecure.contains(strip_port(host))
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Loopback registries may speak either protocol, so they are asked (docker tries HTTPS first
/// there and falls back to HTTP).
pub fn is_loopback_host(host: &str) -> bool {
    let name = strip_port(host);
    name == "localhost"
        || name
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// A request body. Byte bodies are replayed on retry; a stream is sent once (a failed streamed
/// upload is restarted from scratch by the caller, which can reopen the source).
pub(crate) enum Body {
    Empty,
    Bytes(Bytes),
    Stream(Option<reqwest::Body>),
}

pub(crate) struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(HeaderName, String)>,
    pub body: Body,
    pub scopes: Vec<Scope>,
}

impl Request {
    pub fn new(method: Method, url: String, scopes: Vec<Scope>) -> Self {
        Self {
            method,
            url,
            headers: Vec::new(),
            body: Body::Empty,
            scopes,
        }
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    pub fn info(&self) -> RequestInfo {
        RequestInfo {
            method: self.method.to_string(),
            url: self.url.clone(),
        }
    }
}

/// One repository on one registry. Cheap to clone; clones share request counters.
#[derive(Clone)]
pub struct Repository {
    client: Client,
    registry: String,
    host: String,
    name: String,
    base: String,
    counters: Arc<RequestCounters>,
}

impl Repository {
    /// The registry as named in references (`docker.io`), which is what credentials are keyed by.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host the API is served from (`registry-1.docker.io`).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counts this handle's requests into `counters` (shared with other handles of one copy).
    pub fn with_counters(mut self, counters: Arc<RequestCounters>) -> Self {
        self.counters = counters;
        self
    }

    pub fn counters(&self) -> &Arc<RequestCounters> {
        &self.counters
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `scheme://host/v2/<name><path>`.
    pub(crate) fn lacks_referrers_api(&self) -> bool {
        self.client.inner.transport.lacks_referrers_api(&self.host)
    }

    pub(crate) fn set_lacks_referrers_api(&self) {
        self.client
            .inner
            .transport
            .set_lacks_referrers_api(&self.host)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Resolves an upload `Location`, which registries may send relative to the host.
    pub(crate) fn resolve(&self, location: &str) -> Result<url::Url> {
        let base = url::Url::parse(&self.base)
            .map_err(|e| Error::Config(format!("bad registry URL {}: {e}", self.base)))?;
        base.join(location)
            .map_err(|e| Error::Other(format!("registry sent a bad Location {location:?}: {e}")))
    }

    pub(crate) fn pull_scope(&self) -> Vec<Scope> {
        vec![Scope::pull(&self.name)]
    }

    pub(crate) fn push_scope(&self) -> Vec<Scope> {
        vec![Scope::push(&self.name)]
    }

    /// Sends a request with authentication and retries. Returns the response whatever its
    /// status once retries are spent, so callers decide what a 404 means; see [`expect`].
    pub(crate) async fn send(&self, mut request: Request) -> Result<Response> {
        let inner = &self.client.inner;
        let policy = &inner.retry;
        let replayable = !matches!(request.body, Body::Stream(_));
        let mut attempt = 1;
        let mut reauthenticated = false;
        inner.transport.settle_scheme(&mut request.url).await;
        let action = Action::classify(request.method.as_str(), &request.url);
        loop {
            let generation = inner.authorizer.generation(&self.host);
            let auth = inner
                .authorizer
                .authorization(&self.registry, &self.host, &request.scopes)
                .await?;
            let mut builder = inner
                .transport
                .for_url(&request.url)?
                .request(request.method.clone(), &request.url);
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            let sent_at = auth.is_some().then_some(generation);
            if let Some(auth) = auth {
                builder = builder.header(reqwest::header::AUTHORIZATION, auth);
            }
            builder = match &mut request.body {
                Body::Empty => builder,
                Body::Bytes(bytes) => builder.body(bytes.clone()),
                Body::Stream(stream) => match stream.take() {
                    Some(body) => builder.body(body),
                    None => {
                        return Err(Error::Other(format!(
                            "{}: a streamed body cannot be sent twice",
                            request.info()
                        )));
                    }
                },
            };
            let bytes_sent = match &request.body {
                Body::Bytes(bytes) => bytes.len() as u64,
                _ => 0,
            };
            let permit = inner.gate.acquire(&self.host, action).await;
            tracing::trace!(method = %request.method, url = %request.url, attempt, "request");
            let sent = builder.send().await;
            permit.finish(
                &Outcome {
                    method: request.method.as_str(),
                    status: sent.as_ref().map_or(0, |r| r.status().as_u16()),
                    headers: sent.as_ref().ok().map(Response::headers),
                    bytes_sent,
                    throttled: false,
                },
                &[self.counters.as_ref()],
            );

            let response = match sent {
                Ok(response) => response,
                Err(source) => {
                    let error = Error::Transport {
                        request: request.info(),
                        source,
                    };
                    if replayable && error.is_retryable() && policy.should_retry(attempt) {
                        policy
                            .wait(attempt, policy.delay(attempt, None), &error)
                            .await;
                        attempt += 1;
                        continue;
                    }
                    return Err(gave_up(error, attempt));
                }
            };

            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !reauthenticated && replayable {
                let challenge = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                inner
                    .authorizer
                    .challenged(
                        &self.registry,
                        &self.host,
                        &request.scopes,
                        challenge.as_deref(),
                        &request.info(),
                        sent_at,
                    )
                    .await?;
                reauthenticated = true;
                continue;
            }
            if is_retryable_status(status.as_u16()) && replayable && policy.should_retry(attempt) {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let delay = policy.delay(attempt, retry_after);
                drop(response);
                let cause = format!("{}: {status}", request.info());
                policy.wait(attempt, delay, &cause).await;
                attempt += 1;
                continue;
            }
            return Ok(mark_attempts(response, attempt));
        }
    }
}

/// Passes responses with one of the `expected` statuses; turns any other into the registry's
/// error (with its code and message).
pub(crate) async fn expect(
    response: Response,
    info: RequestInfo,
    expected: &[StatusCode],
) -> Result<Response> {
    if expected.contains(&response.status()) {
        return Ok(response);
    }
    let info = settled(info, &response);
    let status = response.status().as_u16();
    let attempts = response.extensions().get::<Attempts>().map_or(1, |a| a.0);
    let body = response.bytes().await.unwrap_or_default();
    Err(gave_up(registry_error(info, status, &body), attempts))
}

/// `info` naming the URL the request really went to: a loopback registry's scheme is settled in
/// `send`, after the caller described the request, so an error reported from the response or
/// its body would otherwise name the `https://` guess for a plain-HTTP registry.
pub(crate) fn settled(info: RequestInfo, response: &Response) -> RequestInfo {
    RequestInfo {
        url: response.url().to_string(),
        ..info
    }
}

pub(crate) fn header_str<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "registry.example.com",
            "10.0.0.1:5000",
            "[2001:db8::1]:443",
            "localhost.evil.com",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
