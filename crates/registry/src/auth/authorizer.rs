//! Turns credentials into `Authorization` headers.
//!
//! Nothing is sent before a registry asks: the first request to a host goes out anonymously,
//! and its `401` challenge teaches the authorizer the host's scheme. From then on the header is
//! sent up front, so each new scope costs one token request and no extra round trip to the
//! registry. Tokens are cached per host and scope set until shortly before they expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::CredentialProvider;
use super::challenge::{Challenge, parse_www_authenticate};
use super::credentials::Credentials;
use super::scope::{Scope, scopes_key};
use crate::error::{Error, RequestInfo, Result};
use crate::gate::{Action, Gate, Outcome};
use crate::transport::Transport;

/// What a host asked for when it challenged us.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostScheme {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Clone)]
struct CachedToken {
    value: String,
    refresh_at: Instant,
}

type TokenSlot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

pub struct Authorizer {
    provider: Arc<dyn CredentialProvider>,
    transport: Arc<Transport>,
    schemes: Mutex<HashMap<String, HostScheme>>,
    /// Bumped per host each time rejected credentials are thrown away, so that many requests
    /// refused at once (after a rotation) start over once, not once each.
    generations: Mutex<HashMap<String, u64>>,
    /// One slot per (host, scopes): concurrent requests for the same scope wait for one token
    /// fetch instead of each starting their own.
    tokens: Mutex<HashMap<(String, String), TokenSlot>>,
    /// Token fetches pass the request gate like registry requests (lane: realm host, token).
    gate: Gate,
}

/// The spec's default when a token response carries no `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

impl Authorizer {
    pub(crate) fn new(provider: Arc<dyn CredentialProvider>, transport: Arc<Transport>) -> Self {
        Self {
            provider,
            transport,
            schemes: Mutex::new(HashMap::new()),
            generations: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            gate: Gate::default(),
        }
    }

    /// Shares `gate` (the client's) instead of a gate of its own.
    pub(crate) fn with_gate(mut self, gate: Gate) -> Self {
        self.gate = gate;
        self
    }

    fn scheme(&self, host: &str) -> Option<HostScheme> {
        self.schemes
            .lock()
            .ok()
            .and_then(|map| map.get(host).cloned())
    }

    /// The credential generation of `host`; pass it back to [`challenged`](Self::challenged)
    /// with the answer to the request it was read before.
    pub fn generation(&self, host: &str) -> u64 {
        self.generations
            .lock()
            .ok()
            .and_then(|map| map.get(host).copied())
            .unwrap_or(0)
    }

    /// The header to send with a request to `host` that needs `scopes`, if the host is known to
    /// want one.
    pub async fn authorization(
        &self,
        registry: &str,
        host: &str,
        scopes: &[Scope],
    ) -> Result<Option<String>> {
        match self.scheme(host) {
            None => Ok(None),
            Some(HostScheme::Basic) => self.basic_header(registry).await,
            Some(HostScheme::Bearer { realm, service }) => {
                let token = self
                    .token(registry, host, &realm, service.as_deref(), scopes, false)
                    .await?;
                crate::secrets::remember(&token);
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Handles a `401` to a request whose authorization was read at credential generation
    /// `sent_at` (`None`: it carried none): learns the scheme from the challenge, drops whatever
    /// was rejected (unless a concurrent request already did) and returns the header to retry
    /// with once.
    pub async fn challenged(
        &self,
        registry: &str,
        host: &str,
        scopes: &[Scope],
        www_authenticate: Option<&str>,
        request: &RequestInfo,
        sent_at: Option<u64>,
    ) -> Result<Option<String>> {
        let header = www_authenticate.ok_or_else(|| Error::Auth {
            registry: registry.to_string(),
            reason: format!("{request} answered 401 without a WWW-Authenticate challenge"),
        })?;
        let challenges = parse_www_authenticate(header).map_err(|source| Error::Challenge {
            request: request.clone(),
            source,
        })?;
        let scheme = challenges
            .iter()
            .find_map(|c| match c {
                Challenge::Bearer { realm, service, .. } => Some(HostScheme::Bearer {
                    realm: realm.clone(),
                    service: service.clone(),
                }),
                Challenge::Basic { .. } => None,
            })
            .or_else(|| {
                challenges
                    .iter()
                    .any(|c| matches!(c, Challenge::Basic { .. }))
                    .then_some(HostScheme::Basic)
            })
            .ok_or_else(|| Error::Auth {
                registry: registry.to_string(),
                reason: format!(
                    "{request} asked for an unsupported authentication scheme: {header}"
                ),
            })?;

        let previous = self
            .schemes
            .lock()
            .ok()
            .and_then(|mut map| map.insert(host.to_string(), scheme.clone()));
        // A request that carried no authorization refused nothing we hold: several first
        // requests at once are all challenged, and the later ones must not drop the login the
        // first one just fetched.
        if let Some(sent_at) = sent_at
            && previous.as_ref() == Some(&scheme)
            && self.bump_generation(host, sent_at)
        {
            // We already authenticated this way and were refused: the credentials or the token
            // went stale (an ECR token rotated). Start over once with fresh ones.
            self.provider.invalidate(registry);
            self.forget_tokens(host);
        }

        match scheme {
            HostScheme::Basic => match self.basic_header(registry).await? {
                Some(h) => Ok(Some(h)),
                None => Err(Error::Auth {
                    registry: registry.to_string(),
                    reason: "the registry requires a login and no credentials were found for it"
                        .to_string(),
                }),
            },
            HostScheme::Bearer { realm, service } => {
                let token = self
                    .token(registry, host, &realm, service.as_deref(), scopes, true)
                    .await?;
                crate::secrets::remember(&token);
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Moves `host` to the next generation if it is still at `seen`; false if another request
    /// already did.
    fn bump_generation(&self, host: &str, seen: u64) -> bool {
        let Ok(mut map) = self.generations.lock() else {
            return true;
        };
        let current = map.entry(host.to_string()).or_insert(0);
        if *current != seen {
            return false;
        }
        *current += 1;
        true
    }

    async fn basic_header(&self, registry: &str) -> Result<Option<String>> {
        Ok(self
            .provider
            .credentials(registry)
            .await?
            .and_then(|c| c.basic_header_value()))
    }

    fn forget_tokens(&self, host: &str) {
        if let Ok(mut map) = self.tokens.lock() {
            map.retain(|(h, _), _| h != host);
        }
    }

    async fn token(
        &self,
        registry: &str,
        host: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[Scope],
        force: bool,
    ) -> Result<String> {
        let slot = {
            let mut map = self
                .tokens
                .lock()
                .map_err(|_| Error::Other("token cache lock poisoned".into()))?;
            map.entry((host.to_string(), scopes_key(scopes)))
                .or_default()
                .clone()
        };
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref()
            && !force
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        let fresh = self.fetch_token(registry, realm, service, scopes).await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    async fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[Scope],
    ) -> Result<CachedToken> {
        let credentials = self.provider.credentials(registry).await?;
        let auth_error = |reason: String| Error::Auth {
            registry: registry.to_string(),
            reason,
        };
        let mut url = url::Url::parse(realm)
            .map_err(|e| auth_error(format!("the token realm {realm:?} is not a URL: {e}")))?;
        let scope_strings: Vec<String> = scopes.iter().map(Scope::to_string).collect();

        let request = match &credentials {
            Some(Credentials::Bearer(token)) => {
                // A registry token given to us directly: nothing to exchange.
                return Ok(CachedToken {
                    value: token.clone(),
                    refresh_at: Instant::now() + Duration::from_secs(3600),
                });
            }
            Some(Credentials::IdentityToken(refresh)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("refresh_token", refresh.clone()),
                    ("client_id", "ecr-ferry".to_string()),
                ];
                if let Some(s) = service {
                    form.push(("service", s.to_string()));
                }
                if !scope_strings.is_empty() {
                    form.push(("scope", scope_strings.join(" ")));
                }
                self.transport
                    .for_url(url.as_str())?
                    .post(url.clone())
                    .form(&form)
            }
            basic_or_none => {
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(s) = service {
                        query.append_pair("service", s);
                    }
                    for scope in &scope_strings {
                        query.append_pair("scope", scope);
                    }
                }
                let mut req = self.transport.for_url(url.as_str())?.get(url.clone());
                if let Some(header) = basic_or_none.as_ref().and_then(|c| c.basic_header_value()) {
                    req = req.header(reqwest::header::AUTHORIZATION, header);
                }
                req
            }
        };

        let who = credentials
            .as_ref()
            .and_then(|c| c.username().map(|u| format!(" for user {u:?}")))
            .unwrap_or_default();
        let realm_host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (host, None) => host.unwrap_or_default().to_string(),
            (None, Some(_)) => String::new(),
        };
        let method = match &credentials {
            Some(Credentials::IdentityToken(_)) => "POST",
            _ => "GET",
        };
        let permit = self.gate.acquire(&realm_host, Action::Token).await;
        let sent = request.send().await;
        permit.finish(
            &Outcome {
                method,
                status: sent.as_ref().map_or(0, |r| r.status().as_u16()),
                headers: sent.as_ref().ok().map(reqwest::Response::headers),
                ..Outcome::default()
            },
            &[],
        );
        let response =
            sent.map_err(|e| auth_error(format!("token service {realm} unreachable: {e}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            self.provider.invalidate(registry);
            return Err(auth_error(format!(
                "token service {realm} refused the credentials{who} ({status})"
            )));
        }
        if !status.is_success() {
            return Err(auth_error(format!(
                "token service {realm} answered {status}"
            )));
        }
        let started = Instant::now();
        let body: TokenResponse = response.json().await.map_err(|e| {
            auth_error(format!(
                "token service {realm} sent an unreadable token: {e}"
            ))
        })?;
        let value = body
            .token
            .or(body.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| auth_error(format!("token service {realm} sent no token")))?;
        let lifetime = body
            .expires_in
            .map(Duration::from_secs)
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        // Refresh a little early so a token never expires between header and request.
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        Ok(CachedToken {
            value,
            refresh_at: started + lifetime - margin,
        })
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}
