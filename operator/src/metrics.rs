//! Prometheus metrics, served at `/metrics`. Registry traffic is counted by the shared crate's
//! request gate (`ClientBuilder::observer`), so every request of every mirror is seen once,
//! including token fetches and ECR API calls, without the operator wrapping the client.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ferry_registry::gate::{Action, Event, Observer};
use ferry_registry::mirror::{EcrImageMirrorStatus, TagState};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::Error;

type Labels = Vec<(&'static str, String)>;

/// Every metric of the process. Counter names get `_total` appended by the encoder.
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    reconcile_errors: Family<Labels, Counter>,
    reconcile_seconds: Histogram,
    tags: Family<Labels, Gauge>,
    bytes_copied: Counter,
    registry_requests: Family<Labels, Counter>,
    token_refreshes: Family<Labels, Counter>,
    /// Each mirror's tag counts by state, so the `tags` gauge is a sum over mirrors that a
    /// resync replaces rather than adds to.
    per_mirror: Mutex<HashMap<String, [i64; TagState::ALL.len()]>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let reconciles = Counter::default();
        let reconcile_errors = Family::<Labels, Counter>::default();
        let reconcile_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        let tags = Family::<Labels, Gauge>::default();
        let bytes_copied = Counter::default();
        let registry_requests = Family::<Labels, Counter>::default();
        let token_refreshes = Family::<Labels, Counter>::default();
        registry.register(
            "ferry_operator_reconciles",
            "Reconciles run",
            reconciles.clone(),
        );
        registry.register(
            "ferry_operator_reconcile_errors",
            "Reconciles failed, by reason",
            reconcile_errors.clone(),
        );
        registry.register(
            "ferry_operator_reconcile_duration_seconds",
            "Time a reconcile took",
            reconcile_seconds.clone(),
        );
        registry.register(
            "ferry_operator_tags",
            "Tags and manifest lists of all mirrors, by state",
            tags.clone(),
        );
        registry.register(
            "ferry_operator_bytes_copied",
            "Bytes uploaded to destination registries",
            bytes_copied.clone(),
        );
        registry.register(
            "ferry_operator_registry_requests",
            "Registry and ECR API requests, by host, action and HTTP status (0: no answer)",
            registry_requests.clone(),
        );
        registry.register(
            "ferry_operator_token_refreshes",
            "Registry tokens and ECR authorization tokens fetched, by host",
            token_refreshes.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_seconds,
            tags,
            bytes_copied,
            registry_requests,
            token_refreshes,
            per_mirror: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, took: Duration) {
        self.reconciles.inc();
        self.reconcile_seconds.observe(took.as_secs_f64());
    }

    pub fn failed(&self, error: &Error) {
        self.reconcile_errors
            .get_or_create(&vec![("reason", error.metric_label().to_string())])
            .inc();
    }

    /// Records the tag states of mirror `key` after a sync.
    pub fn tag_states(&self, key: &str, status: &EcrImageMirrorStatus) {
        let mut counts = [0i64; TagState::ALL.len()];
        for tag in status.tags.iter().chain(&status.manifest_lists) {
            if let Some(i) = TagState::ALL.iter().position(|s| *s == tag.state) {
                counts[i] += 1;
            }
        }
        let mut per_mirror = match self.per_mirror.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        per_mirror.insert(key.to_string(), counts);
        self.set_tag_totals(&per_mirror);
    }

    /// Forgets the tag counts of mirrors that no longer exist (the controller is not told
    /// about deletions, so it prunes against its store).
    pub fn retain_mirrors(&self, exists: impl Fn(&str) -> bool) {
        let mut per_mirror = match self.per_mirror.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        per_mirror.retain(|key, _| exists(key));
        self.set_tag_totals(&per_mirror);
    }

    fn set_tag_totals(&self, per_mirror: &HashMap<String, [i64; TagState::ALL.len()]>) {
        for (i, state) in TagState::ALL.iter().enumerate() {
            let total: i64 = per_mirror.values().map(|c| c[i]).sum();
            self.tags
                .get_or_create(&vec![("state", state.as_str().to_string())])
                .set(total);
        }
    }

    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

impl Observer for Metrics {
    fn on_request(&self, event: &Event<'_>) {
        self.registry_requests
            .get_or_create(&vec![
                ("host", event.host.to_string()),
                ("action", event.action.as_str().to_string()),
                ("status", event.status.to_string()),
            ])
            .inc();
        let ok = (200..300).contains(&event.status);
        match event.action {
            Action::BlobUpload if ok => {
                self.bytes_copied.inc_by(event.bytes);
            }
            Action::Token | Action::Ecr("GetAuthorizationToken") if ok => {
                self.token_refreshes
                    .get_or_create(&vec![("host", event.host.to_string())])
                    .inc();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferry_registry::mirror::TagStatus;

    #[test]
    fn tag_gauge_sums_mirrors_a_resync_replaces_and_a_deleted_mirror_leaves() {
        let metrics = Metrics::default();
        let mut status = EcrImageMirrorStatus::default();
        let mut synced = TagStatus::new("1.0");
        synced.state = TagState::Synced;
        status.set_tag(synced);
        status.set_tag(TagStatus::new("2.0"));
        metrics.tag_states("a/one", &status);
        metrics.tag_states("a/one", &status);
        metrics.tag_states("a/two", &status);
        let text = metrics.encode().unwrap();
        assert!(
            text.contains("ferry_operator_tags{state=\"synced\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("ferry_operator_tags{state=\"pending\"} 2"),
            "{text}"
        );
        metrics.retain_mirrors(|key| key == "a/two");
        let text = metrics.encode().unwrap();
        assert!(
            text.contains("ferry_operator_tags{state=\"synced\"} 1"),
            "{text}"
        );
    }
}
