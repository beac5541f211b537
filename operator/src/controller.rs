//! The `EcrImageMirror` controller: reconcile = one `mirror::sync` of the shared crate, then the
//! status by server-side apply. Everything about registries and ECR is the shared crate's;
//! this file decides *when* to sync and how to report it.
//!
//! A reconcile is triggered by any change of the object, its own status apply included, so a
//! mirror only syncs when it is due: its spec changed (generation), `nextSyncTime` has passed,
//! its credentials Secret changed, or its `ferry.dev/sync-requested-at` annotation has a value
//! the last sync did not answer. That also keeps a restarted operator from resyncing every
//! mirror at once.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ferry_registry::mirror::time::{parse_rfc3339, rfc3339};
use ferry_registry::mirror::{DEFAULT_INTERVAL, SyncOutcome, TagState, sync};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Config, Controller, Error as ControllerError};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::conditions::{self, Verdict};
use crate::context::{Context, MANAGER, backoff, jittered};
use crate::crd::{EcrImageMirror, MirrorStatus, SYNC_REQUEST_ANNOTATION, tag_summary};
use crate::credentials::{SourceSecret, keep_what_matters, read_secret};
use crate::error::{Error, Result};

/// Reconciles one mirror.
pub async fn reconcile(mirror: Arc<EcrImageMirror>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let result = Reconcile::new(&mirror, &ctx)?.run().await;
    ctx.metrics.reconciled(started.elapsed());
    result
}

/// After a failed reconcile: retry after a per-mirror exponential backoff.
pub fn error_policy(mirror: Arc<EcrImageMirror>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = key_of(&mirror);
    let failures = ctx.record_failure(&key);
    ctx.metrics.failed(error);
    let interval = mirror.spec.interval().unwrap_or(DEFAULT_INTERVAL);
    let delay = backoff(failures, interval);
    tracing::warn!(mirror = %key, %error, failures, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

fn key_of(mirror: &EcrImageMirror) -> String {
    format!(
        "{}/{}",
        mirror.namespace().unwrap_or_default(),
        mirror.name_any()
    )
}

/// One reconcile's view of its mirror.
struct Reconcile<'a> {
    mirror: &'a EcrImageMirror,
    ctx: &'a Context,
    api: Api<EcrImageMirror>,
    namespace: String,
    name: String,
    key: String,
    previous: MirrorStatus,
    now: SystemTime,
}

impl<'a> Reconcile<'a> {
    fn new(mirror: &'a EcrImageMirror, ctx: &'a Context) -> Result<Reconcile<'a>> {
        let namespace = mirror.namespace().ok_or_else(|| {
            Error::Object(format!(
                "EcrImageMirror {} has no namespace",
                mirror.name_any()
            ))
        })?;
        Ok(Reconcile {
            mirror,
            ctx,
            api: Api::namespaced(ctx.client.clone(), &namespace),
            name: mirror.name_any(),
            key: key_of(mirror),
            namespace,
            previous: mirror.status.clone().unwrap_or_default(),
            now: SystemTime::now(),
        })
    }

    fn generation(&self) -> Option<i64> {
        self.mirror.metadata.generation
    }

    /// The `ferry.dev/sync-requested-at` annotation, if set.
    fn sync_request(&self) -> Option<&String> {
        self.mirror.annotations().get(SYNC_REQUEST_ANNOTATION)
    }

    async fn run(self) -> Result<Action> {
        let spec = &self.mirror.spec.inner;
        if spec.suspend {
            let status = self.status_with(&Verdict::Suspended, None);
            self.apply(&status).await?;
            self.ctx.record_success(&self.key);
            return Ok(Action::await_change());
        }
        if let Err(error) = spec.validate() {
            return self.invalid(error.to_string()).await;
        }
        let secret = match &spec.source.credentials_secret_ref {
            Some(secret) => Some(
                read_secret(
                    &self.ctx.client,
                    &self.ctx.secrets,
                    &self.namespace,
                    &secret.name,
                )
                .await,
            ),
            None => None,
        };
        let secret_version = match &secret {
            Some(Ok(secret)) => secret.version.clone(),
            _ => self.previous.secret_version.clone(),
        };
        if let Some(wait) = self.not_due(&secret_version) {
            return Ok(Action::requeue(wait));
        }
        let config = match secret {
            Some(Ok(SourceSecret { config, .. })) => Some(config),
            Some(Err(error)) => {
                return self
                    .failed("CredentialsUnavailable", error, Vec::new())
                    .await;
            }
            None => None,
        };
        let engine = match self.ctx.engine.for_mirror(spec, config).await {
            Ok(engine) => engine,
            Err(error) => return self.failed("AwsUnavailable", error, Vec::new()).await,
        };
        let outcome = {
            let _slot = self.ctx.engine.slot().await?;
            sync(&engine, spec, &self.previous.inner).await
        };
        self.synced(outcome, secret_version).await
    }

    /// `Some(wait)` when nothing asks for a sync before `wait` from now.
    fn not_due(&self, secret_version: &Option<String>) -> Option<Duration> {
        let previous = &self.previous;
        if previous.inner.observed_generation != self.generation()
            || previous.secret_version != *secret_version
            || previous.last_handled_sync_request.as_ref() != self.sync_request()
        {
            return None;
        }
        let next = parse_rfc3339(previous.next_sync_time.as_deref()?)?;
        next.duration_since(self.now).ok().filter(|d| !d.is_zero())
    }

    async fn invalid(&self, message: String) -> Result<Action> {
        let verdict = Verdict::InvalidSpec { message };
        let status = self.status_with(&verdict, None);
        self.apply(&status).await?;
        if self.ready_changed(&status) {
            self.event(EventType::Warning, "InvalidSpec", ready_message(&status))
                .await;
        }
        self.ctx.record_success(&self.key);
        // Retrying cannot help: the next spec change triggers a reconcile by itself.
        Ok(Action::await_change())
    }

    /// Reports a failure (then `events`, the sync's own) and hands `error` to the error policy.
    async fn failed(
        &self,
        reason: &'static str,
        error: Error,
        events: Vec<TagEvent>,
    ) -> Result<Action> {
        let failures = self.ctx.failure_count(&self.key) + 1;
        let verdict = Verdict::Failed {
            reason,
            message: error.to_string(),
            failures,
        };
        let interval = self.mirror.spec.interval().unwrap_or(DEFAULT_INTERVAL);
        // From now, not from the reconcile's start: after a long failing sync, a retry time
        // already past would make the status apply's own watch event retry at once.
        let next = SystemTime::now() + backoff(failures, interval);
        let status = self.status_with(&verdict, Some(next));
        self.apply(&status).await?;
        // A sync's own events say what failed; the reason alone only for other failures.
        if events.is_empty() && self.ready_changed(&status) {
            self.event(EventType::Warning, reason, error.to_string())
                .await;
        }
        self.publish(events).await;
        Err(error)
    }

    async fn synced(&self, outcome: SyncOutcome, secret_version: Option<String>) -> Result<Action> {
        self.ctx.metrics.tag_states(&self.key, &outcome.status);
        if outcome.invalid_spec {
            let message = outcome.error.unwrap_or_else(|| "invalid spec".into());
            return self.invalid(message).await;
        }
        let mut previous = self.previous.clone();
        previous.inner = outcome.status.clone();
        previous.secret_version = secret_version;
        let this = Reconcile {
            previous,
            api: self.api.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            key: self.key.clone(),
            ..*self
        };
        let events = tag_events(&self.previous, &outcome);
        if outcome.failed() {
            let error = Error::Sync(failure_summary(&outcome));
            return this.failed("SyncFailed", error, events).await;
        }
        let interval = jittered(self.mirror.spec.interval().unwrap_or(DEFAULT_INTERVAL));
        let synced = outcome.status.tags.len() + outcome.status.manifest_lists.len();
        let verdict = Verdict::Synced {
            message: format!("{synced} tag(s) and list(s) synced"),
        };
        this.apply(&this.status_with(&verdict, Some(SystemTime::now() + interval)))
            .await?;
        this.publish(events).await;
        self.ctx.record_success(&self.key);
        Ok(Action::requeue(interval))
    }

    /// The status after `verdict`, from the last one (with the new sync's shared part, if any).
    fn status_with(&self, verdict: &Verdict, next: Option<SystemTime>) -> MirrorStatus {
        let now = rfc3339(self.now);
        let mut status = self.previous.clone();
        status.inner.observed_generation = self.generation();
        status.conditions =
            conditions::next(&self.previous.conditions, verdict, self.generation(), &now);
        status.next_sync_time = next.map(rfc3339);
        status.last_handled_sync_request = self.sync_request().cloned();
        status.tag_summary = Some(tag_summary(&status.inner));
        status
    }

    fn ready_changed(&self, status: &MirrorStatus) -> bool {
        let before = self.previous.condition(conditions::READY);
        let after = status.condition(conditions::READY);
        before.map(|c| (&c.status, &c.reason, &c.message))
            != after.map(|c| (&c.status, &c.reason, &c.message))
    }

    async fn apply(&self, status: &MirrorStatus) -> Result<()> {
        let patch = serde_json::json!({
            "apiVersion": "ferry.dev/v1alpha1",
            "kind": "EcrImageMirror",
            "status": status,
        });
        self.api
            .patch_status(
                &self.name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        Ok(())
    }

    async fn publish(&self, events: Vec<TagEvent>) {
        for (type_, reason, note) in events {
            self.event(type_, reason, note).await;
        }
    }

    /// Publishes an event; a refused event is logged, never a reason to fail the reconcile.
    async fn event(&self, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(truncated(note, 1000)),
            action: "Sync".into(),
            secondary: None,
        };
        let reference = self.mirror.object_ref(&());
        if let Err(error) = self.ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(mirror = %self.key, %error, "cannot publish an event");
        }
    }
}

/// An event's type, reason and note.
type TagEvent = (EventType, &'static str, String);

/// Events for what a sync changed: tags new at the destination, tags whose digest moved, and
/// tags that failed (one event per kind, listing the tags, to keep the API traffic small).
fn tag_events(previous: &MirrorStatus, outcome: &SyncOutcome) -> Vec<TagEvent> {
    let (mut new, mut moved, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for tag in outcome
        .status
        .tags
        .iter()
        .chain(&outcome.status.manifest_lists)
    {
        let before = previous
            .inner
            .tag(&tag.tag)
            .or_else(|| previous.inner.manifest_list(&tag.tag));
        match tag.state {
            TagState::Synced => match before.and_then(|b| b.digest.as_deref()) {
                None => new.push(tag.tag.clone()),
                Some(digest) if Some(digest) != tag.digest.as_deref() => {
                    moved.push(format!(
                        "{} ({} → {})",
                        tag.tag,
                        short(digest),
                        short(tag.digest.as_deref().unwrap_or("?"))
                    ));
                }
                Some(_) => {}
            },
            TagState::Failed => failed.push(format!(
                "{}: {}",
                tag.tag,
                tag.message.as_deref().unwrap_or("failed")
            )),
            TagState::Pending | TagState::Skipped => {}
        }
    }
    let mut events = Vec::new();
    if !new.is_empty() {
        events.push((EventType::Normal, "TagsSynced", new.join(", ")));
    }
    if !moved.is_empty() {
        events.push((EventType::Normal, "TagsMoved", moved.join(", ")));
    }
    if !failed.is_empty() {
        events.push((EventType::Warning, "TagsFailed", failed.join("; ")));
    }
    if let Some(error) = &outcome.error {
        events.push((EventType::Warning, "SyncFailed", error.clone()));
    }
    events
}

fn failure_summary(outcome: &SyncOutcome) -> String {
    if let Some(error) = &outcome.error {
        return error.clone();
    }
    let failed: Vec<&str> = outcome
        .status
        .tags
        .iter()
        .chain(&outcome.status.manifest_lists)
        .filter(|t| t.state == TagState::Failed)
        .map(|t| t.tag.as_str())
        .collect();
    format!("{} tag(s) failed: {}", failed.len(), failed.join(", "))
}

fn ready_message(status: &MirrorStatus) -> String {
    status
        .condition(conditions::READY)
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.get(..12).unwrap_or(hex)
}

fn truncated(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The mirrors of `store` whose credentials are `secret`: a rotated Secret resyncs only them.
pub fn mirrors_using(
    store: &Store<EcrImageMirror>,
    secret: &Secret,
) -> Vec<ObjectRef<EcrImageMirror>> {
    let (Some(namespace), Some(name)) = (
        secret.metadata.namespace.as_deref(),
        secret.metadata.name.as_deref(),
    ) else {
        return Vec::new();
    };
    store
        .state()
        .iter()
        .filter(|m| m.namespace().as_deref() == Some(namespace))
        .filter(|m| {
            m.spec
                .source
                .credentials_secret_ref
                .as_ref()
                .is_some_and(|s| s.name == name)
        })
        .map(|m| ObjectRef::from_obj(m.as_ref()))
        .collect()
}

/// Runs the controller over `namespace` (all when `None`) until `stop` is cancelled; then it
/// takes no new reconciles and returns once the running ones are done.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    concurrency: u16,
    stop: CancellationToken,
) {
    let client = ctx.client.clone();
    let (mirrors, secrets) = match &namespace {
        Some(ns) => (
            Api::<EcrImageMirror>::namespaced(client.clone(), ns),
            Api::<Secret>::namespaced(client, ns),
        ),
        None => (Api::all(client.clone()), Api::all(client)),
    };
    let controller = Controller::new(mirrors, watcher::Config::default().any_semantic())
        .with_config(Config::default().concurrency(concurrency));
    let store = controller.store();
    tokio::spawn(prune_metrics(
        ctx.clone(),
        store.clone(),
        namespace.clone(),
        stop.clone(),
    ));
    // The Secrets' watch fills the store reconciles read credentials from, and triggers the
    // mirrors of a Secret that changed.
    let writer = ctx
        .secrets_writer
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_else(|| reflector::store().1);
    let secret_changes = watcher(secrets, watcher::Config::default())
        .modify(keep_what_matters)
        .reflect(writer)
        .touched_objects();
    controller
        .watches_stream(secret_changes, move |secret| mirrors_using(&store, &secret))
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                // Logged by the error policy already; a deleted object is not news.
                Ok(_)
                | Err(ControllerError::ReconcilerFailed(..))
                | Err(ControllerError::ObjectNotFound(_)) => {}
                // A watch failing (RBAC refusing a list, the API server away) is retried with
                // backoff, but the operator is blind meanwhile: worth a warning.
                Err(error) => tracing::warn!(%error, "controller"),
            }
        })
        .await;
}

/// Every minute, drops the tag counts of deleted mirrors of `namespace` (all when `None`) from
/// the metrics; other namespaces are other controllers' to prune.
async fn prune_metrics(
    ctx: Arc<Context>,
    store: Store<EcrImageMirror>,
    namespace: Option<String>,
    stop: CancellationToken,
) {
    let prefix = namespace.map(|ns| format!("{ns}/"));
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        // An empty store may just not be synced yet; the counts stay until it is.
        if store.is_empty() {
            continue;
        }
        let keys: std::collections::HashSet<String> =
            store.state().iter().map(|m| key_of(m)).collect();
        let ours = |key: &str| prefix.as_ref().is_none_or(|p| key.starts_with(p.as_str()));
        ctx.metrics
            .retain_mirrors(|key| !ours(key) || keys.contains(key));
    }
}
