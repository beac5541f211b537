//! A minimal Docker Engine API client: enough to find a local image and export it, without the
//! `docker` CLI.
//!
//! Only three endpoints are used (`/_ping`, `/images/{name}/json`, `/images/{name}/get`), so a
//! full client library would be dead weight; one HTTP/1.1 connection per request keeps the
//! transport trivially correct for both a unix socket and plain TCP. Paths are unversioned: the
//! Engine then answers with its own API version, and these three endpoints have not changed
//! shape since API 1.12.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, HOST, USER_AGENT};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};

pub use export::ExportReader;

use ferry_registry::digest::Digest;

mod export;
#[cfg(test)]
pub(crate) mod test_image;
#[cfg(test)]
mod tests;

/// Where the Engine listens when `DOCKER_HOST` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The port the Engine listens on for plain-HTTP TCP when `tcp://host` names none.
const DEFAULT_TCP_PORT: u16 = 2375;

/// A TCP connect to a host that drops packets would otherwise hang for minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `_ping` does no work in the Engine, so anything slower means it is stuck.
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// Inspecting and starting an export both wait on the Engine's image store lock, which a
/// concurrent build or pull can hold for a while.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);

/// Inspect answers are a few KiB; the cap only stops a misbehaving peer from filling memory.
const INSPECT_BODY_LIMIT: usize = 16 * 1024 * 1024;
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A connection to one Docker Engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    /// As the user gave it, for messages.
    host: String,
    endpoint: Endpoint,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

/// What `GET /images/{name}/json` says about an image, reduced to what a push needs.
#[derive(Debug, Clone)]
pub struct ImageInspect {
    /// The image ID: the digest of its config.
    pub id: Digest,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// The uncompressed layer digests (`RootFS.Layers`), base layer first.
    pub diff_ids: Vec<Digest>,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    /// The Engine's `Size`: the unpacked size of all layers.
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach the Docker Engine at {host}: {cause} ({hint})")]
    Unreachable {
        host: String,
        cause: String,
        hint: &'static str,
    },

    #[error("no such local image: {name}")]
    NoSuchImage { name: String },

    #[error("invalid image name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },

    /// The Engine answered with an error status.
    #[error("Docker Engine: {request}: {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Api {
        status: u16,
        message: String,
        request: String,
    },

    #[error("invalid Docker Engine host {host:?}: {reason}")]
    InvalidHost { host: String, reason: String },

    /// The peer answered in a way the Engine API does not (it may not be a Docker Engine).
    #[error("unexpected answer from the Docker Engine to {request}: {reason}")]
    Protocol { request: String, reason: String },

    #[error("the Docker Engine did not answer {request} within {}s", after.as_secs())]
    Timeout { request: String, after: Duration },

    /// The answer started but its body broke off.
    #[error("reading {request} from the Docker Engine failed: {cause}")]
    Transfer { request: String, cause: String },

    /// The Engine hit an error after it had started sending the export: it then appends its
    /// error message to the tar stream instead of failing the request.
    #[error("the Docker Engine failed while exporting {name}: {message}")]
    ExportFailed { name: String, message: String },
}

impl From<DockerError> for io::Error {
    fn from(e: DockerError) -> io::Error {
        io::Error::other(e)
    }
}

impl DockerEngine {
    /// From `DOCKER_HOST` (`unix:///path`, or `tcp://host:port` plain HTTP), default
    /// `unix:///var/run/docker.sock`.
    pub fn from_env() -> Result<DockerEngine, DockerError> {
        let host = std::env::var("DOCKER_HOST").ok();
        let tls = std::env::var("DOCKER_TLS_VERIFY").ok();
        DockerEngine::from_env_values(host.as_deref(), tls.as_deref())
    }

    fn from_env_values(
        host: Option<&str>,
        tls_verify: Option<&str>,
    ) -> Result<DockerEngine, DockerError> {
        let host = host.map(str::trim).filter(|h| !h.is_empty());
        let engine = DockerEngine::new(host.unwrap_or(DEFAULT_HOST))?;
        // Talking plain HTTP to a TLS port fails with a baffling protocol error; say why instead.
        if matches!(engine.endpoint, Endpoint::Tcp(_)) && tls_verify.is_some_and(|v| !v.is_empty())
        {
            return Err(DockerError::InvalidHost {
                host: engine.host,
                reason: "DOCKER_TLS_VERIFY is set, but TLS to the Docker Engine is not supported; \
                         use a unix socket or a plain-HTTP tcp:// endpoint"
                    .into(),
            });
        }
        Ok(engine)
    }

    /// `unix:///path/to/socket`, or `tcp://host[:port]` (plain HTTP, port 2375 by default).
    pub fn new(host: &str) -> Result<DockerEngine, DockerError> {
        let invalid = |reason: &str| DockerError::InvalidHost {
            host: host.to_string(),
            reason: reason.to_string(),
        };
        let endpoint = if let Some(path) = host.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(invalid(
                    "the socket path is missing (unix:///path/to/docker.sock)",
                ));
            }
            Endpoint::Unix(PathBuf::from(path))
        } else if let Some(rest) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            let authority = rest.strip_suffix('/').unwrap_or(rest);
            if authority.is_empty() {
                return Err(invalid("the host is missing (tcp://host:port)"));
            }
            if authority.contains(['/', '?', '#', '@']) {
                return Err(invalid(
                    "expected only host and port after tcp:// (tcp://host:port)",
                ));
            }
            Endpoint::Tcp(with_default_port(authority).map_err(|r| invalid(&r))?)
        } else if host.starts_with("https://") {
            return Err(invalid(
                "TLS to the Docker Engine is not supported; use a unix socket or a plain-HTTP \
                 tcp:// endpoint",
            ));
        } else if let Some((scheme, _)) = host.split_once("://") {
            return Err(invalid(&format!(
                "{scheme}:// is not supported; use unix:///path/to/docker.sock or tcp://host:port"
            )));
        } else if host.starts_with('/') {
            return Err(invalid(&format!(
                "a socket path needs the unix:// scheme: unix://{host}"
            )));
        } else {
            return Err(invalid(
                "expected unix:///path/to/docker.sock or tcp://host:port",
            ));
        };
        Ok(DockerEngine {
            host: host.to_string(),
            endpoint,
        })
    }

    /// The host as given (`unix:///var/run/docker.sock`), for messages.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `GET /_ping`: fails early and clearly when the Engine is not there.
    pub async fn ping(&self) -> Result<(), DockerError> {
        let path = "/_ping";
        let response = self.get(path, PING_TIMEOUT).await?;
        if response.status() == StatusCode::OK {
            return Ok(());
        }
        Err(self.error_from(response, path, None).await)
    }

    /// `GET /images/{name}/json`. `name` is `repo:tag` (the Engine applies the default tag
    /// itself), `repo@digest`, or an image ID, full (`sha256:…`) or a hex prefix of it.
    pub async fn inspect(&self, name: &str) -> Result<ImageInspect, DockerError> {
        let path = format!("/images/{}/json", encode_name(name)?);
        let response = self.get(&path, RESPONSE_TIMEOUT).await?;
        if response.status() != StatusCode::OK {
            return Err(self.error_from(response, &path, Some(name)).await);
        }
        let body = Limited::new(response.into_body(), INSPECT_BODY_LIMIT)
            .collect()
            .await
            .map_err(|e| DockerError::Transfer {
                request: format!("GET {path}"),
                cause: e.to_string(),
            })?
            .to_bytes();
        parse_inspect(&body).map_err(|reason| DockerError::Protocol {
            request: format!("GET {path}"),
            reason,
        })
    }

    async fn get(&self, path: &str, timeout: Duration) -> Result<Response<Incoming>, DockerError> {
        let request = format!("GET {path}");
        let host_header = match &self.endpoint {
            // The Engine ignores Host on its socket, but HTTP/1.1 requires one.
            Endpoint::Unix(_) => "docker",
            Endpoint::Tcp(authority) => authority.as_str(),
        };
        let http_request = Request::get(path)
            .header(HOST, host_header)
            .header(USER_AGENT, concat!("ecr-ferry/", env!("CARGO_PKG_VERSION")))
            .header(ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| DockerError::InvalidName {
                name: path.to_string(),
                reason: e.to_string(),
            })?;
        let exchange = async {
            match &self.endpoint {
                Endpoint::Unix(socket) => {
                    let stream = tokio::net::UnixStream::connect(socket)
                        .await
                        .map_err(|e| self.unreachable(&e))?;
                    send(stream, http_request, &request).await
                }
                Endpoint::Tcp(authority) => {
                    let stream = tokio::time::timeout(
                        CONNECT_TIMEOUT,
                        tokio::net::TcpStream::connect(authority.as_str()),
                    )
                    .await
                    .map_err(|_| DockerError::Unreachable {
                        host: self.host.clone(),
                        cause: format!("no connection within {}s", CONNECT_TIMEOUT.as_secs()),
                        hint: HINT_NOT_RUNNING,
                    })?
                    .map_err(|e| self.unreachable(&e))?;
                    send(stream, http_request, &request).await
                }
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| DockerError::Timeout {
                request: request.clone(),
                after: timeout,
            })?
    }

    fn unreachable(&self, e: &io::Error) -> DockerError {
        DockerError::Unreachable {
            host: self.host.clone(),
            cause: e.to_string(),
            hint: if e.kind() == io::ErrorKind::PermissionDenied {
                "is this user allowed to use the Docker socket, e.g. in the docker group? \
                 or set DOCKER_HOST"
            } else {
                HINT_NOT_RUNNING
            },
        }
    }

    async fn error_from(
        &self,
        response: Response<Incoming>,
        path: &str,
        image: Option<&str>,
    ) -> DockerError {
        let status = response.status();
        if status == StatusCode::NOT_FOUND
            && let Some(name) = image
        {
            return DockerError::NoSuchImage {
                name: name.to_string(),
            };
        }
        // The status alone is still worth reporting if the body cannot be read.
        let body = Limited::new(response.into_body(), ERROR_BODY_LIMIT)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        DockerError::Api {
            status: status.as_u16(),
            message: error_message(&body),
            request: format!("GET {path}"),
        }
    }
}

const HINT_NOT_RUNNING: &str = "is Docker running? set DOCKER_HOST";

async fn send<T>(
    io: T,
    http_request: Request<Empty<Bytes>>,
    request: &str,
) -> Result<Response<Incoming>, DockerError>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let protocol = |e: hyper::Error| DockerError::Protocol {
        request: request.to_string(),
        reason: e.to_string(),
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(protocol)?;
    // The connection must be driven for the response (and an export's body) to arrive; it ends
    // by itself once the body has been read or dropped.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("Docker Engine connection ended: {e}");
        }
    });
    sender.send_request(http_request).await.map_err(protocol)
}

fn with_default_port(authority: &str) -> Result<String, String> {
    // An IPv6 literal is bracketed, so only a colon after the closing bracket starts a port.
    let host_end = if authority.starts_with('[') {
        authority
            .find(']')
            .map(|i| i + 1)
            .ok_or_else(|| "unclosed '[' in an IPv6 address".to_string())?
    } else {
        0
    };
    match authority[host_end..].rfind(':') {
        Some(i) => {
            let port = &authority[host_end + i + 1..];
            match port.parse::<u16>() {
                Ok(p) if p > 0 => Ok(authority.to_string()),
                _ => Err(format!("port {port:?} is not a number from 1 to 65535")),
            }
        }
        None => Ok(format!("{authority}:{DEFAULT_TCP_PORT}")),
    }
}

/// The image name as a path segment. The Engine routes `/images/{name:.*}/json`, so `/` and `:`
/// go through as they are (that is what the docker CLI sends); everything else outside the
/// reference grammar is percent-encoded so the name cannot change the request's path or query.
fn encode_name(name: &str) -> Result<String, DockerError> {
    let invalid = |reason: &str| DockerError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    // The Engine's router cleans the path first, so these would silently name another endpoint.
    if name
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(invalid(
            "empty, '.' or '..' path components are not allowed",
        ));
    }
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/:@".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(encoded)
}

/// The Engine's error body is `{"message": "…"}`.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct EngineError {
        message: String,
    }
    match serde_json::from_slice::<EngineError>(body) {
        Ok(e) => e.message,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.starts_with('<') || text.len() > 300 {
                String::new()
            } else {
                text.to_string()
            }
        }
    }
}

fn parse_inspect(body: &[u8]) -> Result<ImageInspect, String> {
    // Fields the Engine leaves out or sends as null for some images (no tags, no layers,
    // pre-manifest-list images) default to empty rather than failing the push.
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Raw {
        id: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        #[serde(default)]
        repo_digests: Option<Vec<String>>,
        #[serde(default, rename = "RootFS")]
        root_fs: Option<RootFs>,
        #[serde(default)]
        os: String,
        #[serde(default)]
        architecture: String,
        #[serde(default)]
        variant: Option<String>,
        #[serde(default)]
        size: Option<i64>,
    }
    #[derive(Deserialize)]
    struct RootFs {
        #[serde(rename = "Layers", default)]
        layers: Option<Vec<String>>,
    }

    let raw: Raw = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let id = Digest::parse(&raw.id).map_err(|e| format!("image Id: {e}"))?;
    let diff_ids = raw
        .root_fs
        .and_then(|r| r.layers)
        .unwrap_or_default()
        .iter()
        .map(|l| Digest::parse(l).map_err(|e| format!("RootFS.Layers: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ImageInspect {
        id,
        repo_tags: raw.repo_tags.unwrap_or_default(),
        repo_digests: raw.repo_digests.unwrap_or_default(),
        diff_ids,
        os: raw.os,
        architecture: raw.architecture,
        variant: raw.variant.filter(|v| !v.is_empty()),
        size: raw.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
    })
}

/// The Engine's streamed error message, if `tail` ends with one.
fn engine_error_tail(tail: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct StreamError {
        #[serde(default)]
        error: Option<String>,
        #[serde(default, rename = "errorDetail")]
        error_detail: Option<ErrorDetail>,
    }
    #[derive(Deserialize)]
    struct ErrorDetail {
        #[serde(default)]
        message: Option<String>,
    }

    let end = tail.iter().rposition(|b| !b.is_ascii_whitespace())?;
    if tail[end] != b'}' {
        return None;
    }
    let marker = b"{\"errorDetail\"";
    let start = tail
        .windows(marker.len())
        .rposition(|w| w == marker)
        .or_else(|| {
            let marker = b"{\"error\"";
            tail.windows(marker.len()).rposition(|w| w == marker)
        })?;
    let parsed: StreamError = serde_json::from_slice(&tail[start..=end]).ok()?;
    parsed
        .error_detail
        .and_then(|d| d.message)
        .or(parsed.error)
        .filter(|m| !m.is_empty())
}
