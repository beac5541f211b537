//! What every reconcile shares: the Kubernetes client, the copy engine, the metrics, the event
//! recorder, and each mirror's failures in a row (the controller's own backoff is per trigger,
//! not per object, so a mirror failing every hour would never back off).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store, store::Writer};

use crate::engine::Engine;
use crate::metrics::Metrics;

/// The field manager of the status apply and the events' reporting controller.
pub const MANAGER: &str = "ferry-operator";

/// The first retry after a failure; doubled at each further failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// Retries are never further apart than this (but see `interval` in [`backoff`]).
pub const BACKOFF_MAX: Duration = Duration::from_secs(600);

pub struct Context {
    pub client: kube::Client,
    pub engine: Engine,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// The Secrets the controller watches (docker configs only; see `controller::run`), so a
    /// reconcile reads its credentials from memory instead of with a GET each time.
    pub secrets: Store<Secret>,
    /// The writing side of [`Self::secrets`], for the watch that fills it.
    pub secrets_writer: Mutex<Option<Writer<Secret>>>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: kube::Client, engine: Engine, metrics: Arc<Metrics>) -> Context {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let (secrets, writer) = reflector::store();
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            engine,
            metrics,
            secrets,
            secrets_writer: Mutex::new(Some(writer)),
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // A panic elsewhere while holding the map leaves plain counters: still usable.
        match self.failures.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Failures in a row of mirror `key` so far.
    pub fn failure_count(&self, key: &str) -> u32 {
        self.failures().get(key).copied().unwrap_or(0)
    }

    /// Counts one more failure of `key`; returns the count.
    pub fn record_failure(&self, key: &str) -> u32 {
        let mut failures = self.failures();
        let count = failures.entry(key.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    pub fn record_success(&self, key: &str) {
        self.failures().remove(key);
    }
}

/// How long to wait after the `failures`-th failure in a row: doubling from [`BACKOFF_BASE`],
/// at most [`BACKOFF_MAX`], and never later than the mirror's own `interval` (a slow schedule
/// should not become slower because of a failure).
pub fn backoff(failures: u32, interval: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let delay = BACKOFF_BASE.saturating_mul(1 << doublings);
    delay.min(BACKOFF_MAX).min(interval)
}

/// `interval` ±10 %, so mirrors created together do not all sync in the same second forever.
pub fn jittered(interval: Duration) -> Duration {
    let factor = rand::random_range(0.9..=1.1);
    interval.mul_f64(factor)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_the_interval() {
        let hour = Duration::from_secs(3600);
        let delays: Vec<u64> = (1..=9).map(|n| backoff(n, hour).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 600, 600]);
        assert_eq!(backoff(9, Duration::from_secs(120)).as_secs(), 120);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let hour = Duration::from_secs(3600);
        for _ in 0..200 {
            let d = jittered(hour).as_secs_f64();
            assert!((3240.0..=3960.0).contains(&d), "{d}");
        }
    }
}
