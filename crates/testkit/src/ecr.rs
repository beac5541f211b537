//! `EcrStandIn`: a local stand-in for Amazon ECR.
//!
//! - Control plane: moto, behind a small "token proxy" that forwards every API call unchanged
//!   except `GetAuthorizationToken`, which it answers itself so the token's password can rotate
//!   and its `expiresAt` can be chosen (moto's is fixed and in 2015).
//! - Data plane: a `TestRegistry` with htpasswd Basic auth for user `AWS` and the password the
//!   tokens carry, as ECR does (`docker login -u AWS -p <password from the token>`).
//!
//! moto and the registry share no state: a repository created through the API does not exist
//! in the registry until something is pushed to it, and pushes never show up in moto.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::moto::{MOTO_ACCOUNT, MotoServer};
use crate::registry::TestRegistry;
use crate::server::{self, BoxError, ServerTask};

pub const ECR_USER: &str = "AWS";
pub const DEFAULT_REGION: &str = "us-east-1";
const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";
const GET_AUTHORIZATION_TOKEN: &str = "GetAuthorizationToken";
/// 2015-01-01T00:00:00Z, what moto returns: already expired, on purpose, for every client.
const MOTO_EXPIRES_AT: f64 = 1_420_070_400.0;

struct State {
    moto: String,
    region: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Held across an htpasswd rewrite, so no token carries a password the registry does not
    /// (yet) accept.
    password: Mutex<String>,
    expires_at: Mutex<Option<SystemTime>>,
    token_requests: AtomicUsize,
    calls: Mutex<Vec<String>>,
}

pub struct EcrStandIn {
    account: String,
    state: Arc<State>,
    addr: SocketAddr,
    rotations: AtomicUsize,
    registry: TestRegistry,
    moto: MotoServer,
    aws_dir: TempDir,
    _server: ServerTask,
}

impl EcrStandIn {
    /// Account 123456789012 (moto's default), region us-east-1. Starts moto and the registry
    /// in parallel; moto's Python start-up dominates (~1 s).
    pub async fn start() -> anyhow::Result<EcrStandIn> {
        let account = MOTO_ACCOUNT.to_string();
        let password = format!("{account}-auth-token");
        let (moto, registry) = tokio::try_join!(
            MotoServer::start(),
            TestRegistry::basic(ECR_USER, &password)
        )?;
        let state = Arc::new(State {
            moto: moto.url(),
            region: DEFAULT_REGION.to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            password: Mutex::new(password),
            expires_at: Mutex::new(None),
            token_requests: AtomicUsize::new(0),
            calls: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let handler_state = state.clone();
        let server = server::spawn(listener, None, move |req| {
            handle(handler_state.clone(), req)
        });
        Ok(EcrStandIn {
            account,
            state,
            addr,
            rotations: AtomicUsize::new(0),
            registry,
            moto,
            aws_dir: tempfile::Builder::new().prefix("ferry-aws-").tempdir()?,
            _server: server,
        })
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn region(&self) -> &str {
        &self.state.region
    }

    /// The real ECR registry host for the account and region, as in `proxyEndpoint` and
    /// moto's `repositoryUri`. Nothing listens there: use `registry_url()` to reach the data plane.
    pub fn ecr_host(&self) -> String {
        format!(
            "{}.dkr.ecr.{}.amazonaws.com",
            self.account, self.state.region
        )
    }

    /// The ECR API endpoint to give the SDK (`AWS_ENDPOINT_URL_ECR`): the token proxy.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// moto itself, bypassing the token proxy (moto's own tokens, no counting).
    pub fn moto_url(&self) -> String {
        self.moto.url()
    }

    pub fn moto(&self) -> &MotoServer {
        &self.moto
    }

    /// The data plane.
    pub fn registry(&self) -> &TestRegistry {
        &self.registry
    }

    /// `http://127.0.0.1:PORT`, what `FERRY_ECR_REGISTRY_URL` should be.
    pub fn registry_url(&self) -> String {
        self.registry.url()
    }

    /// The current data-plane password, the one tokens carry.
    pub fn password(&self) -> String {
        lock(&self.state.password).clone()
    }

    /// Rotates the password in both the registry's htpasswd and the tokens handed out from now
    /// on: a client holding the old token gets 401 until it fetches a new one. Returns the new
    /// password.
    pub fn rotate_password(&self) -> anyhow::Result<String> {
        let n = self.rotations.fetch_add(1, Ordering::SeqCst) + 1;
        let new = format!("{}-auth-token-{n}", self.account);
        let mut current = lock(&self.state.password);
        // htpasswd first: once this returns the registry refuses the old password (2.8.2
        // re-reads the file on its next request because the mtime changed).
        self.registry.set_basic_password(ECR_USER, &new)?;
        *current = new.clone();
        Ok(new)
    }

    /// `expiresAt` of tokens handed out from now on; `None` → moto's 2015-01-01, in the past.
    pub fn set_token_expiry(&self, expires_at: Option<SystemTime>) {
        *lock(&self.state.expires_at) = expires_at;
    }

    /// `GetAuthorizationToken` calls answered so far.
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Every API call through `api_url()`, by operation name (`CreateRepository`, …), in
    /// arrival order; requests without an ECR `X-Amz-Target` appear as their `METHOD /path`.
    pub fn api_calls(&self) -> Vec<String> {
        lock(&self.state.calls).clone()
    }

    /// How many calls of this operation went through `api_url()`.
    pub fn api_call_count(&self, operation: &str) -> usize {
        lock(&self.state.calls)
            .iter()
            .filter(|c| *c == operation)
            .count()
    }

    /// Environment for a `ferry` subprocess: static test credentials, the region, the API and
    /// registry endpoints, no instance metadata, and AWS config/credentials files that do not
    /// exist, so the machine's own AWS setup is never read. See also `apply_env`.
    pub fn env(&self) -> Vec<(String, String)> {
        let absent = |name: &str| -> String { self.absent_path(name).display().to_string() };
        [
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            ("AWS_REGION", self.state.region.clone()),
            ("AWS_ENDPOINT_URL_ECR", self.api_url()),
            ("FERRY_ECR_REGISTRY_URL", self.registry_url()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("AWS_CONFIG_FILE", absent("config")),
            ("AWS_SHARED_CREDENTIALS_FILE", absent("credentials")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// [`env`](Self::env) without the access keys: for a process that must find no AWS
    /// credentials anywhere (and so fail clearly) while everything else points at the stand-in.
    pub fn env_without_credentials(&self) -> Vec<(String, String)> {
        self.env()
            .into_iter()
            .filter(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY")
            .collect()
    }

    /// Removes every inherited `AWS_*` variable (a developer's `AWS_PROFILE` or
    /// `AWS_SESSION_TOKEN` would otherwise mix with the test credentials), then sets `env()`.
    pub fn apply_env<'a>(
        &self,
        cmd: &'a mut std::process::Command,
    ) -> &'a mut std::process::Command {
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(self.env())
    }

    fn absent_path(&self, name: &str) -> PathBuf {
        // Inside a directory only we own and never write to, so it stays absent.
        self.aws_dir.path().join("absent").join(name)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not turn every later request into a second panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let operation = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .map(String::from);
    lock(&state.calls).push(
        operation
            .clone()
            .unwrap_or_else(|| format!("{} {}", req.method(), req.uri().path())),
    );
    let (mut parts, body) = req.into_parts();
    // API requests and answers are small JSON documents: buffering keeps this simple.
    let body = body.collect().await?.to_bytes();
    if operation.as_deref() == Some(GET_AUTHORIZATION_TOKEN) {
        return Ok(authorization_token(&state, &body));
    }

    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("{}{path_and_query}", state.moto).parse()?;
    strip_hop_by_hop(&mut parts.headers);
    if !parts.headers.contains_key(http::header::AUTHORIZATION) {
        // moto picks the service from the SigV4 credential scope; an unsigned request with an
        // unknown X-Amz-Target would land in S3. It does not verify signatures.
        let scope = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20150101/{}/ecr/aws4_request, \
             SignedHeaders=host, Signature=0",
            state.region
        );
        parts
            .headers
            .insert(http::header::AUTHORIZATION, HeaderValue::from_str(&scope)?);
    }
    let resp = match state
        .client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
    {
        Ok(resp) => resp,
        Err(e) => {
            return Ok(api_error(
                StatusCode::BAD_GATEWAY,
                "ServerException",
                &format!("moto: {e}"),
            ));
        }
    };
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// moto's answer, with the stand-in's password and expiry: one entry per requested
/// `registryIds` element, or one for the default account.
fn authorization_token(state: &State, body: &[u8]) -> Response<Full<Bytes>> {
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "SerializationException",
                    &e.to_string(),
                );
            }
        }
    };
    let accounts: Vec<String> = match request.get("registryIds").and_then(Value::as_array) {
        Some(ids) if !ids.is_empty() => ids
            .iter()
            .map(|id| id.as_str().map_or_else(|| id.to_string(), String::from))
            .collect(),
        _ => vec![MOTO_ACCOUNT.to_string()],
    };
    let expires_at = match *lock(&state.expires_at) {
        Some(t) => t
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        None => MOTO_EXPIRES_AT,
    };
    let token = STANDARD.encode(format!("{ECR_USER}:{}", lock(&state.password)));
    // Counted once the answer is certain, so a rejected request does not inflate the count.
    state.token_requests.fetch_add(1, Ordering::SeqCst);
    let data: Vec<Value> = accounts
        .iter()
        .map(|account| {
            json!({
                "authorizationToken": token,
                "expiresAt": expires_at,
                "proxyEndpoint": format!("https://{account}.dkr.ecr.{}.amazonaws.com", state.region),
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "authorizationData": data }))
}

fn api_error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    let mut resp = json_response(status, &json!({"__type": kind, "message": message}));
    if let Ok(v) = HeaderValue::from_str(kind) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    let request_id = hex::encode(rand::random::<[u8; 16]>());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    resp
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
