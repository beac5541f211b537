#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn throttled_headers(retry_after: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::RETRY_AFTER, retry_after.parse().unwrap());
    headers
}

fn answer(status: u16, headers: Option<&HeaderMap>) -> Outcome<'_> {
    Outcome {
        method: "GET",
        status,
        headers,
        ..Outcome::default()
    }
}

#[test]
fn actions_are_classified_from_method_and_path() {
    let base = "https://registry.example.com/v2/team/app";
    let cases = [
        ("GET", format!("{base}/manifests/v1"), Action::ManifestGet),
        (
            "HEAD",
            format!("{base}/manifests/sha256:ab"),
            Action::ManifestHead,
        ),
        ("PUT", format!("{base}/manifests/v1"), Action::ManifestPut),
        ("HEAD", format!("{base}/blobs/sha256:ab"), Action::BlobHead),
        ("GET", format!("{base}/blobs/sha256:ab"), Action::BlobGet),
        (
            "POST",
            format!("{base}/blobs/uploads/?mount=sha256:ab&from=x"),
            Action::BlobUpload,
        ),
        (
            "PUT",
            format!("{base}/blobs/uploads/1f2e?digest=sha256:ab"),
            Action::BlobUpload,
        ),
        ("GET", format!("{base}/tags/list?n=100"), Action::TagList),
        (
            "GET",
            format!("{base}/referrers/sha256:ab"),
            Action::Referrers,
        ),
        (
            "GET",
            "https://registry.example.com/v2/".to_string(),
            Action::Other,
        ),
        // A repository named like an endpoint still classifies by the endpoint.
        (
            "GET",
            "http://127.0.0.1:5000/v2/blobs/manifests/v1".to_string(),
            Action::ManifestGet,
        ),
    ];
    for (method, url, expected) in cases {
        assert_eq!(Action::classify(method, &url), expected, "{method} {url}");
    }
}

#[test]
fn docker_hub_quota_headers_are_read() {
    let mut headers = HeaderMap::new();
    headers.insert("ratelimit-limit", "100;w=21600".parse().unwrap());
    headers.insert("ratelimit-remaining", "76;w=21600".parse().unwrap());
    assert_eq!(
        Quota::from_headers(&headers),
        Some(Quota {
            limit: 100,
            remaining: 76,
            window_secs: Some(21600)
        })
    );
    headers.remove("ratelimit-remaining");
    assert_eq!(Quota::from_headers(&headers), None);
}

#[tokio::test(start_paused = true)]
async fn retry_after_closes_the_whole_lane_for_that_long() {
    let gate = Gate::default();
    let first = gate.acquire("hub", Action::ManifestGet).await;
    let headers = throttled_headers("3");
    first.finish(&answer(429, Some(&headers)), &[]);

    let started = Instant::now();
    let state = gate.state("hub", Action::ManifestGet).unwrap();
    assert_eq!(state.paused_for, Some(Duration::from_secs(3)));
    assert_eq!(state.concurrency, 32.0, "halved from 64");

    // Another action on the same host, and the same action on another host, are not held.
    drop(gate.acquire("hub", Action::BlobGet).await);
    drop(gate.acquire("quay", Action::ManifestGet).await);
    assert_eq!(Instant::now(), started);

    // A request that never saw the 429 still waits out the pause.
    drop(gate.acquire("hub", Action::ManifestGet).await);
    assert_eq!(Instant::now() - started, Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_cut_on_throttling_and_recovers_on_success() {
    let mut limits = HashMap::new();
    limits.insert(Action::BlobHead, Limits::concurrency(4.0));
    let gate = Gate::new(limits, Vec::new());
    let slots = |gate: &Gate| gate.state("h", Action::BlobHead).unwrap().concurrency;

    let permits: Vec<_> =
        futures::future::join_all((0..4).map(|_| gate.acquire("h", Action::BlobHead))).await;
    // The fifth waits for a slot.
    let fifth =
        tokio::time::timeout(Duration::from_secs(1), gate.acquire("h", Action::BlobHead)).await;
    assert!(
        fifth.is_err(),
        "a fifth request was admitted past a limit of 4"
    );

    // All four in flight answer 503: one cut, not four.
    for permit in permits {
        permit.finish(&answer(503, None), &[]);
    }
    assert_eq!(slots(&gate), 2.0);
    let a = gate.acquire("h", Action::BlobHead).await;
    let _b = gate.acquire("h", Action::BlobHead).await;
    let third =
        tokio::time::timeout(Duration::from_secs(1), gate.acquire("h", Action::BlobHead)).await;
    assert!(third.is_err(), "only two slots after the cut");

    a.finish(&answer(200, None), &[]);
    assert_eq!(slots(&gate), 3.0);
    gate.acquire("h", Action::BlobHead)
        .await
        .finish(&answer(200, None), &[]);
    assert_eq!(slots(&gate), 4.0);
    let state = gate.state("h", Action::BlobHead).unwrap();
    assert_eq!((state.throttled, state.admitted), (4, 7));
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_lane_spaces_requests_at_its_rate() {
    // PutImage: 10 per second, a bucket of one second's worth.
    let gate = Gate::default();
    let started = Instant::now();
    for _ in 0..30 {
        gate.acquire("ecr.us-east-1", Action::Ecr("PutImage"))
            .await
            .finish(&answer(200, None), &[]);
    }
    // 10 at once from the full bucket, then 20 more at 10/s.
    let elapsed = Instant::now() - started;
    assert!(
        (Duration::from_millis(1900)..=Duration::from_millis(2100)).contains(&elapsed),
        "{elapsed:?}"
    );
}

struct Counting(AtomicUsize, Mutex<Vec<(String, Action, u16, u64)>>);

impl Observer for Counting {
    fn on_request(&self, event: &Event<'_>) {
        self.0.fetch_add(1, Ordering::SeqCst);
        lock(&self.1).push((
            event.host.to_string(),
            event.action,
            event.status,
            event.bytes,
        ));
    }
}

#[tokio::test]
async fn observers_and_a_copys_counters_see_the_same_requests() {
    let observer = Arc::new(Counting(AtomicUsize::new(0), Mutex::new(Vec::new())));
    let gate = Gate::new(HashMap::new(), vec![observer.clone()]);
    let counters = RequestCounters::default();
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_LENGTH, "512".parse().unwrap());
    gate.acquire("h", Action::ManifestGet)
        .await
        .finish(&answer(200, Some(&headers)), &[&counters]);
    gate.acquire("h", Action::BlobUpload).await.finish(
        &Outcome {
            method: "PUT",
            status: 201,
            bytes_sent: 1000,
            ..Outcome::default()
        },
        &[&counters],
    );
    assert_eq!(
        *lock(&observer.1),
        vec![
            ("h".to_string(), Action::ManifestGet, 200, 512),
            ("h".to_string(), Action::BlobUpload, 201, 1000),
        ]
    );
    let counts = counters.snapshot();
    assert_eq!((counts.get, counts.put, counts.total()), (1, 1, 2));
}

#[test]
fn ecr_hosts_get_their_operations_quotas() {
    let ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    assert_eq!(limits_for(ecr, Action::ManifestPut).rate, Some(10.0));
    assert_eq!(limits_for(ecr, Action::BlobUpload).rate, Some(20.0));
    assert_eq!(
        limits_for("registry-1.docker.io", Action::ManifestPut).rate,
        None
    );
    assert_eq!(
        limits_for(ecr, Action::BlobGet).rate,
        None,
        "bounded by the copy's Budget"
    );
}
