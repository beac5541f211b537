//! ECR logins as a [`CredentialProvider`], so the registry client authenticates to ECR hosts by
//! itself, refreshing the 12-hour password before it runs out.
//!
//! ECR Public is answered with `None`: pulls from it are anonymous, and pushing there (which
//! needs `ecr-public:GetAuthorizationToken`) is out of scope.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;

use super::{Ecr, EcrHost};
use crate::auth::{CredentialProvider, Credentials};
use crate::error::Result;

/// How long ECR documents a token to be valid.
const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Refresh this long before expiry, so a token never runs out in the middle of a copy.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// However odd the expiry a server reports, a token is used at least this long: a provider must
/// not turn every request into a GetAuthorizationToken call.
const MIN_REUSE: Duration = Duration::from_secs(60);

/// Answers ECR hosts with `AWS` + a GetAuthorizationToken password, cached per registry.
pub struct EcrCredentials {
    ecr: Ecr,
    /// Registry names that are not ECR hosts but stand for one (a test registry in front of a
    /// stand-in ECR API, a pull-through proxy).
    aliases: HashMap<String, EcrHost>,
    slots: Mutex<HashMap<EcrHost, Arc<Slot>>>,
    fetches: AtomicU64,
    observer: Option<TokenObserver>,
}

/// Called with every freshly fetched token, before it is used: the GitHub Action masks the
/// password in its logs this way, including tokens refreshed in the middle of a run.
pub type TokenObserver = Arc<dyn Fn(&super::EcrToken) + Send + Sync>;

#[derive(Default)]
struct Slot {
    cached: Mutex<Option<Cached>>,
    /// Held while fetching, so concurrent callers wait for one fetch instead of each making one.
    fetching: tokio::sync::Mutex<()>,
}

struct Cached {
    credentials: Credentials,
    refresh_at: Instant,
}

impl EcrCredentials {
    pub fn new(ecr: Ecr) -> Self {
        Self {
            ecr,
            aliases: HashMap::new(),
            slots: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
            observer: None,
        }
    }

    pub fn with_observer(mut self, observer: TokenObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Answers for `registry` (as named in references, e.g. `127.0.0.1:5000`) with `host`'s
    /// login.
    pub fn with_alias(mut self, registry: impl Into<String>, host: EcrHost) -> Self {
        self.aliases
            .insert(registry.into().to_ascii_lowercase(), host);
        self
    }

    /// How many GetAuthorizationToken calls were made.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn host_for(&self, registry: &str) -> Option<EcrHost> {
        let host = EcrHost::parse(registry)
            .or_else(|| self.aliases.get(&registry.to_ascii_lowercase()).cloned())?;
        (!host.is_public()).then_some(host)
    }

    fn slot(&self, host: &EcrHost) -> Arc<Slot> {
        lock(&self.slots).entry(host.clone()).or_default().clone()
    }

    async fn get(&self, host: EcrHost) -> Result<Credentials> {
        let slot = self.slot(&host);
        if let Some(credentials) = slot.fresh() {
            return Ok(credentials);
        }
        let _fetching = slot.fetching.lock().await;
        // Whoever held the lock before us may have just fetched.
        if let Some(credentials) = slot.fresh() {
            return Ok(credentials);
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let token = self.ecr.authorization_token(&host).await?;
        if let Some(observer) = &self.observer {
            observer(&token);
        }
        let refresh_in = refresh_after(SystemTime::now(), token.expires_at);
        tracing::debug!(registry = %host, ?refresh_in, "fetched an ECR login");
        let credentials = Credentials::basic(token.username, token.password);
        *lock(&slot.cached) = Some(Cached {
            credentials: credentials.clone(),
            refresh_at: Instant::now() + refresh_in,
        });
        Ok(credentials)
    }
}

impl Slot {
    fn fresh(&self) -> Option<Credentials> {
        lock(&self.cached)
            .as_ref()
            .filter(|c| Instant::now() < c.refresh_at)
            .map(|c| c.credentials.clone())
    }
}

impl CredentialProvider for EcrCredentials {
    fn credentials<'a>(&'a self, registry: &'a str) -> BoxFuture<'a, Result<Option<Credentials>>> {
        Box::pin(async move {
            match self.host_for(registry) {
                Some(host) => Ok(Some(self.get(host).await?)),
                None => Ok(None),
            }
        })
    }

    fn invalidate(&self, registry: &str) {
        if let Some(host) = self.host_for(registry)
            && let Some(slot) = lock(&self.slots).get(&host)
        {
            *lock(&slot.cached) = None;
        }
    }
}

/// How long a token fetched at `now` may be used: until 5 minutes before it expires, or, when
/// the expiry is missing or already past (moto reports 2015-01-01), for ECR's documented 12
/// hours from now.
fn refresh_after(now: SystemTime, expires_at: Option<SystemTime>) -> Duration {
    let lifetime = expires_at
        .and_then(|at| at.duration_since(now).ok())
        .filter(|left| !left.is_zero())
        .unwrap_or(TOKEN_LIFETIME);
    lifetime.saturating_sub(REFRESH_MARGIN).max(MIN_REUSE)
}

/// The maps hold plain values, so a panic while one was held left nothing half-done.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn refresh_five_minutes_before_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(
            refresh_after(now, Some(now + 12 * HOUR)),
            12 * HOUR - REFRESH_MARGIN
        );
        assert_eq!(refresh_after(now, Some(now + HOUR)), HOUR - REFRESH_MARGIN);
    }

    #[test]
    fn missing_or_past_expiry_means_twelve_hours() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let moto = SystemTime::UNIX_EPOCH + Duration::from_secs(1_420_070_400);
        let full = TOKEN_LIFETIME - REFRESH_MARGIN;
        assert_eq!(refresh_after(now, Some(moto)), full);
        assert_eq!(refresh_after(now, Some(now)), full);
        assert_eq!(refresh_after(now, None), full);
    }

    #[test]
    fn an_imminent_expiry_is_still_reused_for_a_while() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(
            refresh_after(now, Some(now + Duration::from_secs(2))),
            MIN_REUSE
        );
    }
}
