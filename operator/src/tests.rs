//! Reconciler scenarios: a mocked API server (fixtures.rs) answers the requests the reconciler
//! must make, in order, while real registries (ferry-testkit) are the source and destination.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferry_registry::mirror::time::parse_rfc3339;
use ferry_testkit::{EcrStandIn, FaultProxy, ImageSpec, TestRegistry, sha256_digest, skopeo};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::context::{Context, backoff};
use crate::controller::{self, error_policy, mirrors_using, reconcile};
use crate::crd::{EcrImageMirror, MirrorStatus};
use crate::engine::AwsSettings;
use crate::error::Error;
use crate::fixtures::{self, ApiServerVerifier, condition};

/// Pushes a small single-platform image, different for every `seed`; returns its digest.
async fn pushed(
    registry: &TestRegistry,
    tag: &str,
    seed: u64,
    basic: Option<(&str, &str)>,
) -> String {
    let mut spec = ImageSpec::new(&["linux/amd64"]);
    spec.seed = seed;
    let image = ferry_testkit::build_single(&spec).unwrap();
    image
        .push(&registry.url(), "app", tag, basic)
        .await
        .unwrap();
    image.manifest.digest.clone()
}

fn tag<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag"] == name)
        .unwrap_or_else(|| panic!("no status for tag {name}: {status}"))
}

/// The mirror as the next watch event delivers it: with the status just applied.
fn with_status(mirror: &EcrImageMirror, status: &Value) -> Arc<EcrImageMirror> {
    let mut next = mirror.clone();
    next.status = Some(serde_json::from_value::<MirrorStatus>(status.clone()).unwrap());
    Arc::new(next)
}

/// Reconciles `mirror` (as the watch delivers it) while the API server expects a status apply
/// and then one event; returns them and the reconcile's result.
async fn reconciled_with_event(
    api: &mut ApiServerVerifier,
    ctx: &Arc<Context>,
    mirror: Arc<EcrImageMirror>,
) -> (Value, Value, Result<Action, Error>) {
    let task = tokio::spawn(reconcile(mirror.clone(), ctx.clone()));
    let status = api.status_apply(&mirror).await;
    let event = api.event().await;
    (status, event, task.await.unwrap())
}

fn assert_ready(status: &Value, expected: &str, reason: &str) {
    let ready = condition(status, "Ready").unwrap_or_else(|| panic!("no Ready in {status}"));
    assert_eq!(ready["status"], expected, "{status}");
    assert_eq!(ready["reason"], reason, "{status}");
}

fn time(status: &Value, field: &str) -> SystemTime {
    parse_rfc3339(status[field].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn new_mirror_copies_its_tags_reports_ready_and_resyncs_only_when_due() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let digests = [
        ("1.0", pushed(&src, "1.0", 1, None).await),
        ("2.0", pushed(&src, "2.0", 2, None).await),
    ];
    let proxy = FaultProxy::start(&src.url()).await.unwrap();
    let mirror = fixtures::mirror(
        "app",
        &format!(
            "source: {{image: \"{}/app\", tags: [\"1.0\", \"2.0\"], referrers: false}}\n\
             destination: {{registry: \"{}\", repository: mirror/app}}\ninterval: 10m\n",
            proxy.host(),
            dst.host()
        ),
    );
    let (ctx, mut api) = fixtures::context();

    let (status, event, action) =
        reconciled_with_event(&mut api, &ctx, Arc::new(mirror.clone())).await;
    let action = action.unwrap();

    assert_ready(&status, "True", "Synced");
    assert_eq!(
        condition(&status, "Ready").unwrap()["observedGeneration"],
        1
    );
    assert_eq!(status["observedGeneration"], 1);
    assert!(condition(&status, "Stalled").is_none() && condition(&status, "Reconciling").is_none());
    assert_eq!(status["tagSummary"], "2/2 synced");
    assert_eq!(
        status["repositoryUri"],
        format!("{}/mirror/app", dst.host())
    );
    for (name, digest) in &digests {
        let entry = tag(&status, name);
        assert_eq!(entry["state"], "Synced");
        assert_eq!(entry["sourceDigest"], digest.as_str());
        assert_eq!(entry["digest"], digest.as_str());
        let raw = skopeo::inspect_raw(&format!("{}/mirror/app:{name}", dst.host()), None)
            .await
            .unwrap();
        assert_eq!(&sha256_digest(&raw), digest, "{name} at the destination");
    }
    assert_eq!(
        (&event["type"], &event["reason"]),
        (&json!("Normal"), &json!("TagsSynced"))
    );
    assert_eq!(event["note"], "1.0, 2.0");
    assert_eq!(event["regarding"]["name"], "app");
    // The next sync is the interval (10 min) ±10 % after this one.
    let gap = time(&status, "nextSyncTime")
        .duration_since(time(&status, "lastSyncTime"))
        .unwrap();
    assert!((530..=661).contains(&gap.as_secs()), "{gap:?}");
    assert_ne!(action, Action::await_change());
    let metrics = ctx.metrics.encode().unwrap();
    assert!(
        metrics.contains("ferry_operator_tags{state=\"synced\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("action=\"manifest_put\""), "{metrics}");

    // The status apply triggers a reconcile of its own: nothing is due, so nothing happens.
    let requests = proxy.requests().len();
    let again = reconcile(with_status(&mirror, &status), ctx.clone())
        .await
        .unwrap();
    assert_ne!(again, Action::await_change());
    assert_eq!(
        proxy.requests().len(),
        requests,
        "a resync that was not due"
    );

    // Upstream, 2.0 moves; once the sync is due, only it is copied again, with an event.
    let moved = pushed(&src, "2.0", 3, None).await;
    let mut due = status.clone();
    due["nextSyncTime"] = json!("2000-01-01T00:00:00Z");
    let (status, event, action) =
        reconciled_with_event(&mut api, &ctx, with_status(&mirror, &due)).await;
    action.unwrap();
    assert_eq!(tag(&status, "2.0")["digest"], moved.as_str());
    assert_eq!(tag(&status, "1.0")["digest"], digests[0].1.as_str());
    assert_eq!(
        (&event["type"], &event["reason"]),
        (&json!("Normal"), &json!("TagsMoved"))
    );
    let note = event["note"].as_str().unwrap();
    assert!(note.starts_with("2.0 (") && !note.contains("1.0"), "{note}");
    api.no_more_requests(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_sync_request_annotation_resyncs_once_before_the_interval() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let first = pushed(&src, "1.0", 1, None).await;
    let proxy = FaultProxy::start(&src.url()).await.unwrap();
    let mut mirror = fixtures::mirror(
        "app",
        &format!(
            "source: {{image: \"{}/app\", tags: [\"1.0\"], referrers: false}}\n\
             destination: {{registry: \"{}\", repository: mirror/app}}\ninterval: 24h\n",
            proxy.host(),
            dst.host()
        ),
    );
    let (ctx, mut api) = fixtures::context();
    let (status, _event, action) =
        reconciled_with_event(&mut api, &ctx, Arc::new(mirror.clone())).await;
    action.unwrap();
    assert_eq!(tag(&status, "1.0")["digest"], first.as_str());
    assert!(status.get("lastHandledSyncRequest").is_none(), "{status}");

    // Upstream moves; a day before the next sync, someone asks for one now.
    let moved = pushed(&src, "1.0", 2, None).await;
    mirror
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(crate::crd::SYNC_REQUEST_ANNOTATION.into(), "1".into());
    let (status, event, action) =
        reconciled_with_event(&mut api, &ctx, with_status(&mirror, &status)).await;
    action.unwrap();
    assert_eq!(tag(&status, "1.0")["digest"], moved.as_str());
    assert_eq!(event["reason"], "TagsMoved");
    assert_eq!(status["lastHandledSyncRequest"], "1");

    // The same request again (the status apply's own watch event) is already answered.
    let requests = proxy.requests().len();
    reconcile(with_status(&mirror, &status), ctx.clone())
        .await
        .unwrap();
    assert_eq!(proxy.requests().len(), requests, "a request answered twice");
    api.no_more_requests(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn suspended_mirror_asks_no_registry_and_says_suspended() {
    let src = TestRegistry::anonymous().await.unwrap();
    pushed(&src, "1.0", 1, None).await;
    let proxy = FaultProxy::start(&src.url()).await.unwrap();
    let mirror = fixtures::mirror(
        "paused",
        &format!(
            "source: {{image: \"{}/app\", tags: [\"1.0\"]}}\n\
             destination: {{registry: \"{}\"}}\nsuspend: true\n",
            proxy.host(),
            proxy.host()
        ),
    );
    let (ctx, mut api) = fixtures::context();

    let task = tokio::spawn(reconcile(Arc::new(mirror.clone()), ctx.clone()));
    let status = api.status_apply(&mirror).await;
    let action = task.await.unwrap().unwrap();

    let suspended = condition(&status, "Suspended").unwrap();
    assert_eq!(suspended["status"], "True");
    assert_eq!(condition(&status, "Ready").unwrap()["status"], "Unknown");
    assert!(status.get("nextSyncTime").is_none());
    assert_eq!(action, Action::await_change());
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
    api.no_more_requests(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn invalid_spec_is_reported_once_and_not_retried() {
    let src = TestRegistry::anonymous().await.unwrap();
    let proxy = FaultProxy::start(&src.url()).await.unwrap();
    let mirror = fixtures::mirror(
        "too-often",
        &format!(
            "source: {{image: \"{}/app\", tags: [\"1.0\"]}}\n\
             destination: {{registry: \"{}\"}}\ninterval: 10s\n",
            proxy.host(),
            proxy.host()
        ),
    );
    let (ctx, mut api) = fixtures::context();

    let (status, event, action) =
        reconciled_with_event(&mut api, &ctx, Arc::new(mirror.clone())).await;
    let action = action.unwrap();

    assert_ready(&status, "False", "InvalidSpec");
    let ready = condition(&status, "Ready").unwrap();
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.starts_with("spec.interval:") && message.contains("1m"),
        "{message}"
    );
    assert_eq!(condition(&status, "Stalled").unwrap()["status"], "True");
    assert_eq!(
        (&event["type"], &event["reason"]),
        (&json!("Warning"), &json!("InvalidSpec"))
    );
    assert_eq!(
        action,
        Action::await_change(),
        "no requeue for a spec that cannot work"
    );

    // The watch delivers the new status: same verdict, no new event, still no requeue.
    let task = tokio::spawn(reconcile(with_status(&mirror, &status), ctx.clone()));
    let again = api.status_apply(&mirror).await;
    assert_eq!(task.await.unwrap().unwrap(), Action::await_change());
    assert_eq!(again["conditions"], status["conditions"]);
    api.no_more_requests(Duration::from_millis(200)).await;
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}

#[tokio::test]
async fn source_down_backs_off_longer_each_time_then_stalls() {
    let dst = TestRegistry::anonymous().await.unwrap();
    // A port nothing listens on any more: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mirror = fixtures::mirror(
        "down",
        &format!(
            "source: {{image: \"127.0.0.1:{port}/app\", tags: [\"1.0\"], referrers: false}}\n\
             destination: {{registry: \"{}\"}}\n",
            dst.host()
        ),
    );
    let (ctx, mut api) = fixtures::context();
    let mut delays = Vec::new();
    for attempt in 1..=3u32 {
        let (status, event, result) =
            reconciled_with_event(&mut api, &ctx, Arc::new(mirror.clone())).await;
        let error = result.unwrap_err();
        assert!(matches!(error, Error::Sync(_)), "{error}");
        assert_eq!(event["reason"], "TagsFailed");
        assert!(
            event["note"].as_str().unwrap().starts_with("1.0: "),
            "{event}"
        );
        assert_eq!(tag(&status, "1.0")["state"], "Failed");
        assert_ready(&status, "False", "SyncFailed");
        let (expected, absent) = if attempt < 3 {
            ("Reconciling", "Stalled")
        } else {
            ("Stalled", "Reconciling")
        };
        assert_eq!(
            condition(&status, expected).unwrap()["status"],
            "True",
            "{attempt}"
        );
        assert!(condition(&status, absent).is_none(), "{attempt}");
        // The status says when the retry comes: the same backoff the error policy applies.
        let until = time(&status, "nextSyncTime")
            .duration_since(SystemTime::now() - Duration::from_secs(2))
            .unwrap();
        assert!(until <= backoff(attempt, Duration::from_secs(3600)) + Duration::from_secs(3));
        delays.push(error_policy(Arc::new(mirror.clone()), &error, ctx.clone()));
    }
    let expected: Vec<Action> = [5, 10, 20]
        .map(|s| Action::requeue(Duration::from_secs(s)))
        .to_vec();
    assert_eq!(delays, expected);
    let metrics = ctx.metrics.encode().unwrap();
    assert!(
        metrics.contains("ferry_operator_reconcile_errors_total{reason=\"sync\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferry_operator_tags{state=\"failed\"} 1"),
        "{metrics}"
    );
    api.no_more_requests(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn secret_credentials_reach_a_basic_auth_source_and_a_missing_secret_is_a_condition() {
    let src = TestRegistry::basic("alice", "s3cret").await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let digest = pushed(&src, "1.0", 7, Some(("alice", "s3cret"))).await;
    let mirror = fixtures::mirror(
        "private",
        &format!(
            "source:\n  image: \"{}/app\"\n  tags: [\"1.0\"]\n  referrers: false\n  \
             credentialsSecretRef: {{name: src-pull}}\n\
             destination: {{registry: \"{}\", repository: private/app}}\n",
            src.host(),
            dst.host()
        ),
    );
    let (ctx, mut api) = fixtures::context();

    // No Secret yet: reported, retried with backoff, no crash and no registry request.
    let task = tokio::spawn(reconcile(Arc::new(mirror.clone()), ctx.clone()));
    api.secret("src-pull", None).await;
    let status = api.status_apply(&mirror).await;
    let event = api.event().await;
    let error = task.await.unwrap().unwrap_err();
    assert_eq!(error.metric_label(), "credentials");
    let ready = condition(&status, "Ready").unwrap();
    assert_eq!(ready["reason"], "CredentialsUnavailable");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("Secret team-a/src-pull does not exist")
    );
    assert_eq!(event["reason"], "CredentialsUnavailable");
    let _ = error_policy(Arc::new(mirror.clone()), &error, ctx.clone());

    // The Secret appears: its watch holds it and triggers the mirror, whose reconcile reads
    // it from there (no GET: the next request the API sees is the status apply), and its
    // credentials open the source.
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
    };
    let config = json!({"auths": {src.host(): {"auth": auth}}});
    fixtures::watched_secret(&ctx, "src-pull", &config, "7");
    let task = tokio::spawn(reconcile(with_status(&mirror, &status), ctx.clone()));
    let status = api.status_apply(&mirror).await;
    let event = api.event().await;
    task.await.unwrap().unwrap();
    assert_eq!(
        condition(&status, "Ready").unwrap()["status"],
        "True",
        "{status}"
    );
    assert_eq!(tag(&status, "1.0")["digest"], digest.as_str());
    assert_eq!(status["secretVersion"], "7");
    assert_eq!(event["reason"], "TagsSynced");
    api.no_more_requests(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn ecr_destinations_get_their_repositories_and_share_one_token() {
    let src = TestRegistry::anonymous().await.unwrap();
    let digest = pushed(&src, "1.0", 21, None).await;
    let ecr = EcrStandIn::start().await.unwrap();
    let aws = AwsSettings {
        region: Some(ecr.region().to_string()),
        endpoint_url: Some(ecr.api_url()),
        credentials: Some(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        )),
    };
    let (ctx, mut api) = fixtures::context_with(aws, Some(ecr.registry_url()));
    for name in ["one", "two"] {
        let mirror = fixtures::mirror(
            name,
            &format!(
                "source: {{image: \"{}/app\", tags: [\"1.0\"], referrers: false}}\n\
                 destination: {{registry: \"{}\", repository: mirror/{name}}}\n",
                src.host(),
                ecr.ecr_host()
            ),
        );
        let (status, _, result) = reconciled_with_event(&mut api, &ctx, Arc::new(mirror)).await;
        result.unwrap();
        assert_ready(&status, "True", "Synced");
        assert_eq!(
            status["repositoryUri"],
            format!("{}/mirror/{name}", ecr.ecr_host())
        );
        assert_eq!(tag(&status, "1.0")["digest"], digest.as_str());
    }
    assert_eq!(
        ecr.api_call_count("CreateRepository"),
        2,
        "{:?}",
        ecr.api_calls()
    );
    assert_eq!(
        ecr.token_requests(),
        1,
        "one login for every mirror of the role"
    );
    let metrics = ctx.metrics.encode().unwrap();
    assert!(metrics.contains("action=\"CreateRepository\""), "{metrics}");
    api.no_more_requests(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn the_controller_syncs_the_mirrors_it_lists_and_stops_when_told() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let digest = pushed(&src, "1.0", 11, None).await;
    let mirror = fixtures::mirror(
        "listed",
        &format!(
            "source: {{image: \"{}/app\", tags: [\"1.0\"], referrers: false}}\n\
             destination: {{registry: \"{}\"}}\n",
            src.host(),
            dst.host()
        ),
    );
    let (ctx, mut api) = fixtures::context();
    let stop = CancellationToken::new();
    let controller = tokio::spawn(controller::run(
        ctx.clone(),
        Some(fixtures::NAMESPACE.into()),
        2,
        stop.clone(),
    ));
    let (statuses, events, requests) = api.serve_controller(&mirror, 1, 1).await;
    assert_ready(&statuses[0], "True", "Synced");
    assert_eq!(tag(&statuses[0], "1.0")["digest"], digest.as_str());
    assert_eq!(events[0]["reason"], "TagsSynced", "{events:?}");
    // Both the mirrors and the Secrets they use are watched, in the given namespace only.
    for listed in ["ecrimagemirrors", "secrets"] {
        assert!(
            requests
                .iter()
                .any(|r| r.starts_with("GET ")
                    && r.ends_with(&format!("/namespaces/team-a/{listed}"))),
            "{requests:?}"
        );
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), controller)
        .await
        .expect("the controller stops once told to")
        .unwrap();
}

#[test]
fn a_rotated_secret_triggers_only_the_mirrors_that_use_it() {
    let uses = |name: &str, secret: &str| {
        fixtures::mirror(
            name,
            &format!(
                "source: {{image: r.example/app, tags: [a], credentialsSecretRef: {{name: {secret}}}}}"
            ),
        )
    };
    let (store, mut writer) = reflector::store::<EcrImageMirror>();
    let mut elsewhere = uses("elsewhere", "pull");
    elsewhere.metadata.namespace = Some("team-b".into());
    for mirror in [
        uses("one", "pull"),
        uses("two", "other"),
        elsewhere,
        uses("three", "pull"),
    ] {
        writer.apply_watcher_event(&watcher::Event::Apply(mirror));
    }
    let mut secret = k8s_openapi::api::core::v1::Secret::default();
    secret.metadata.name = Some("pull".into());
    secret.metadata.namespace = Some(fixtures::NAMESPACE.into());
    let mut names: Vec<String> = mirrors_using(&store, &secret)
        .into_iter()
        .map(|r: ObjectRef<EcrImageMirror>| r.name)
        .collect();
    names.sort();
    assert_eq!(names, ["one", "three"]);
}
