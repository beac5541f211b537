//! A tiny distribution token issuer (the `auth.token` realm of a registry).
//!
//! Implements `GET /token?service=S&scope=T:NAME:ACTIONS[&scope=...][&account=A]` with optional
//! `Authorization: Basic`. Tokens are ES256 JWTs whose header carries the signing certificate in
//! `x5c`; distribution 2.8 accepts them when that certificate is in its `rootcertbundle`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::server::{self, BoxError, ServerTask};
use crate::util::{rfc3339, unix_now};

/// Who may do what. Users get every action they ask for; requests without credentials get
/// `pull` only when `anonymous_pull` is set.
#[derive(Clone, Debug)]
pub struct TokenConfig {
    pub users: Vec<(String, String)>,
    pub anonymous_pull: bool,
    /// Lifetime of issued tokens in seconds (`expires_in` and the JWT `exp`).
    pub expires_in: u64,
}

impl TokenConfig {
    pub fn new(users: &[(&str, &str)], anonymous_pull: bool) -> Self {
        TokenConfig {
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            anonymous_pull,
            expires_in: 300,
        }
    }
}

/// One request the issuer answered, so tests can assert how often a client asks for tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub scopes: Vec<String>,
    /// The Basic-auth user, if credentials were sent (even wrong ones).
    pub user: Option<String>,
    pub service: Option<String>,
    pub account: Option<String>,
    /// 200, or 401 for bad credentials.
    pub status: u16,
}

pub const DEFAULT_SERVICE: &str = "ferry-test-registry";
pub const DEFAULT_ISSUER: &str = "ferry-testkit";

struct State {
    key: SigningKey,
    x5c: String,
    service: String,
    issuer: String,
    users: Mutex<HashMap<String, String>>,
    anonymous_pull: AtomicBool,
    expires_in: AtomicU64,
    exp_offset: Mutex<Option<i64>>,
    requests: Mutex<Vec<TokenRequest>>,
}

pub struct TokenIssuer {
    addr: SocketAddr,
    state: Arc<State>,
    cert_path: PathBuf,
    _dir: TempDir,
    _server: ServerTask,
}

impl TokenIssuer {
    pub async fn start(config: TokenConfig) -> anyhow::Result<TokenIssuer> {
        let key_pair = rcgen::KeyPair::generate().context("generating P-256 key")?;
        let key = SigningKey::from_pkcs8_der(&key_pair.serialize_der())
            .map_err(|e| anyhow::anyhow!("loading generated key: {e}"))?;
        let mut params = rcgen::CertificateParams::new(vec!["ferry-testkit-token".to_string()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ferry-testkit token issuer");
        let cert = params.self_signed(&key_pair)?;

        let dir = tempfile::Builder::new().prefix("ferry-token-").tempdir()?;
        let cert_path = dir.path().join("token-cert.pem");
        std::fs::write(&cert_path, cert.pem())?;

        let state = Arc::new(State {
            key,
            x5c: STANDARD.encode(cert.der()),
            service: DEFAULT_SERVICE.to_string(),
            issuer: DEFAULT_ISSUER.to_string(),
            users: Mutex::new(config.users.into_iter().collect()),
            anonymous_pull: AtomicBool::new(config.anonymous_pull),
            expires_in: AtomicU64::new(config.expires_in),
            exp_offset: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let handler_state = state.clone();
        let server = server::spawn(listener, None, move |req| {
            let state = handler_state.clone();
            async move { Ok::<_, BoxError>(handle(&state, req)) }
        });
        Ok(TokenIssuer {
            addr,
            state,
            cert_path,
            _dir: dir,
            _server: server,
        })
    }

    /// The `auth.token.realm` URL, `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    pub fn service(&self) -> &str {
        &self.state.service
    }

    /// The `iss` claim, which must equal the registry's `auth.token.issuer`.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// PEM of the signing certificate, for the registry's `auth.token.rootcertbundle`.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        lock(&self.state.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.state.requests).clear();
    }

    /// Adds the user or changes its password; takes effect on the next token request.
    pub fn set_password(&self, user: &str, pass: &str) {
        lock(&self.state.users).insert(user.to_string(), pass.to_string());
    }

    pub fn set_anonymous_pull(&self, allowed: bool) {
        self.state.anonymous_pull.store(allowed, Ordering::SeqCst);
    }

    /// Lifetime of tokens issued from now on; short values let tests exercise expiry.
    pub fn set_expires_in(&self, secs: u64) {
        self.state.expires_in.store(secs, Ordering::SeqCst);
    }

    /// Sets the JWT `exp` to `now + offset` seconds, independent of the advertised
    /// `expires_in` (`None` restores `exp = now + expires_in`). Distribution 2.8 accepts tokens
    /// up to 60 s past `exp`, so an offset of -58 gives tokens that the registry starts
    /// rejecting about 2 s after issue, while clients still believe they have `expires_in` left.
    pub fn set_jwt_exp_offset(&self, offset: Option<i64>) {
        *lock(&self.state.exp_offset) = offset;
    }

    /// Mints a token directly (bypassing HTTP and credential checks), e.g. to hand a client a
    /// token for a scope it would not be granted.
    pub fn mint(&self, user: Option<&str>, scopes: &[&str]) -> anyhow::Result<String> {
        let access: Vec<Value> = scopes
            .iter()
            .filter_map(|s| parse_scope(s))
            .map(|(kind, name, actions)| json!({"type": kind, "name": name, "actions": actions}))
            .collect();
        sign_jwt(&self.state, user.unwrap_or(""), &self.state.service, access)
    }
}

/// The `sub` claim (the user a token was issued to; empty for anonymous) of a bearer token or
/// an `Authorization: Bearer …` value, so tests can tell whose token a request carried.
pub fn token_subject(token: &str) -> Option<String> {
    let token = token.strip_prefix("Bearer ").unwrap_or(token);
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("sub")?.as_str().map(str::to_string)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not turn every later request into a second panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/token" || req.method() != hyper::Method::GET {
        // containerd falls back from POST (OAuth2) to GET on 404/405.
        return json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"}));
    }
    let mut scopes = Vec::new();
    let mut service = None;
    let mut account = None;
    for (k, v) in url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            // Some clients join several scopes with spaces in one parameter.
            "scope" => scopes.extend(v.split(' ').filter(|s| !s.is_empty()).map(String::from)),
            "service" => service = Some(v.into_owned()),
            "account" => account = Some(v.into_owned()),
            _ => {}
        }
    }
    let creds = basic_credentials(&req);
    let user = creds.as_ref().map(|(u, _)| u.clone());
    let authed = match &creds {
        Some((u, p)) => lock(&state.users).get(u) == Some(p),
        None => false,
    };
    let mut record = TokenRequest {
        scopes: scopes.clone(),
        user: user.clone(),
        service: service.clone(),
        account,
        status: 200,
    };
    if creds.is_some() && !authed {
        record.status = 401;
        lock(&state.requests).push(record);
        let mut resp = json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]}),
        );
        resp.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Basic realm=\"ferry-testkit\""),
        );
        return resp;
    }
    let anonymous_pull = state.anonymous_pull.load(Ordering::SeqCst);
    let access: Vec<Value> = scopes
        .iter()
        .filter_map(|s| parse_scope(s))
        .filter_map(|(kind, name, actions)| {
            let granted: Vec<String> = if authed {
                actions
            } else if anonymous_pull && kind == "repository" {
                actions
                    .into_iter()
                    .filter(|a| a == "pull" || a == "*")
                    .map(|_| "pull".to_string())
                    .take(1)
                    .collect()
            } else {
                Vec::new()
            };
            (!granted.is_empty()).then(|| json!({"type": kind, "name": name, "actions": granted}))
        })
        .collect();
    let aud = service.unwrap_or_else(|| state.service.clone());
    let token = match sign_jwt(state, user.as_deref().unwrap_or(""), &aud, access) {
        Ok(t) => t,
        Err(e) => {
            record.status = 500;
            lock(&state.requests).push(record);
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": e.to_string()}),
            );
        }
    };
    lock(&state.requests).push(record);
    let now = unix_now();
    json_response(
        StatusCode::OK,
        &json!({
            "token": token,
            "access_token": token,
            "expires_in": state.expires_in.load(Ordering::SeqCst),
            "issued_at": rfc3339(now),
        }),
    )
}

/// Splits `type:name:actions`; names never contain ':' but a type may carry a `(class)`.
fn parse_scope(scope: &str) -> Option<(String, String, Vec<String>)> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let kind = kind.split('(').next().unwrap_or(kind).to_string();
    let actions = actions
        .split(',')
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect();
    Some((kind, name.to_string(), actions))
}

fn basic_credentials<B>(req: &Request<B>) -> Option<(String, String)> {
    let value = req
        .headers()
        .get(hyper::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn sign_jwt(state: &State, sub: &str, aud: &str, access: Vec<Value>) -> anyhow::Result<String> {
    let now = unix_now();
    let exp = match *lock(&state.exp_offset) {
        Some(offset) => now.saturating_add_signed(offset),
        None => now + state.expires_in.load(Ordering::SeqCst),
    };
    let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [state.x5c]});
    let claims = json!({
        "iss": state.issuer,
        "sub": sub,
        "aud": aud,
        "exp": exp,
        // Backdated so a registry whose clock reads a hair earlier still accepts it.
        "nbf": now.saturating_sub(10),
        "iat": now,
        "jti": hex::encode(rand::random::<[u8; 16]>()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?)
    );
    // ES256 in JWS is the raw 64-byte r||s, which is what `Signature::to_bytes` gives.
    let sig: Signature = state.key.sign(signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(sig.to_bytes())
    ))
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse() {
        assert_eq!(
            parse_scope("repository:a/b:pull,push"),
            Some((
                "repository".into(),
                "a/b".into(),
                vec!["pull".into(), "push".into()]
            ))
        );
        assert_eq!(
            parse_scope("repository(plugin):x:*").map(|s| s.0),
            Some("repository".into())
        );
        assert_eq!(parse_scope("nonsense"), None);
    }
}
