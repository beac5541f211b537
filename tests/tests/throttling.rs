//! The request gate against a throttling registry: a share of all requests answered 429 with
//! `Retry-After`, several copies at once on one client.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use ferry_registry::copy::CopyOptions;
use ferry_registry::gate::{Action, Event, Limits, Observer};
use ferry_registry::{Client, copy};
use ferry_testkit::{Fault, FaultAction, FaultProxy, ImageFormat, TestRegistry, skopeo};

const COPIES: usize = 4;
/// Small ceilings so a cut and its recovery take a handful of requests.
const CEILING: f64 = 8.0;

fn gated_client() -> Client {
    Client::builder()
        .docker_config(false)
        .retry(quick_retries())
        .gate_limits(Action::ManifestGet, Limits::concurrency(CEILING))
        .gate_limits(Action::BlobGet, Limits::concurrency(CEILING))
        .build()
        .unwrap()
}

/// Copies `proxy`'s `app:v1` to `dst` as `app0:v1`… all at once; returns their digests.
async fn copy_all(client: &Client, proxy: &FaultProxy, dst: &TestRegistry) -> Vec<String> {
    let copies = (0..COPIES).map(|i| {
        let client = client.clone();
        let src = reference(&format!("{}/app:v1", proxy.host()));
        let dst = reference(&format!("{}/app{i}:v1", dst.host()));
        async move { copy(&client, &src, &dst, CopyOptions::default()).await }
    });
    futures::future::join_all(copies)
        .await
        .into_iter()
        .map(|report| report.unwrap().digest.to_string())
        .collect()
}

#[tokio::test]
async fn a_fifth_of_requests_throttled_every_copy_completes_and_the_gate_adapts() {
    let src = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, "app", "v1", ImageFormat::Oci).await;
    let proxy = FaultProxy::start(&src.url()).await.unwrap();

    // What the copies cost when nothing is throttled.
    let baseline_dst = TestRegistry::anonymous().await.unwrap();
    copy_all(&gated_client(), &proxy, &baseline_dst).await;
    let baseline = proxy.requests().len();
    proxy.clear();

    let dst = TestRegistry::anonymous().await.unwrap();
    proxy.add_fault(
        Fault::new(
            "/v2/",
            FaultAction::Status {
                code: 429,
                retry_after: Some(1),
            },
        )
        .every(5)
        .times(10_000),
    );
    let client = gated_client();
    let host = proxy.host();

    // Watch the lanes while the copies run.
    let lowest = Arc::new(Mutex::new((CEILING, CEILING)));
    let watcher = {
        let (client, host, lowest) = (client.clone(), host.clone(), lowest.clone());
        tokio::spawn(async move {
            loop {
                let now = |action| client.gate().state(&host, action).map(|s| s.concurrency);
                let (manifests, blobs) = (now(Action::ManifestGet), now(Action::BlobGet));
                {
                    let mut low = lowest.lock().unwrap();
                    low.0 = low.0.min(manifests.unwrap_or(CEILING));
                    low.1 = low.1.min(blobs.unwrap_or(CEILING));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let digests = copy_all(&client, &proxy, &dst).await;
    watcher.abort();

    for (i, digest) in digests.iter().enumerate() {
        assert_eq!(digest, &image.index.digest, "copy {i}");
        let raw = skopeo::inspect_raw(&format!("{}/app{i}:v1", dst.host()), None)
            .await
            .unwrap();
        assert_eq!(
            sha256(&raw),
            image.index.digest,
            "app{i} at the destination"
        );
    }

    let records = proxy.requests();
    let throttled = records.iter().filter(|r| r.status == 429).count();
    assert!(throttled > 0, "the fault never fired");
    // Each 429 costs one retry and nothing more: no transfer restarted, no retry storm.
    assert!(
        records.len() <= baseline + baseline / 4 + COPIES,
        "{} requests ({throttled} answered 429) against {baseline} unthrottled",
        records.len()
    );
    let manifests = client.gate().state(&host, Action::ManifestGet).unwrap();
    let blobs = client.gate().state(&host, Action::BlobGet).unwrap();
    assert!(manifests.throttled + blobs.throttled > 0);
    let (low_manifests, low_blobs) = *lowest.lock().unwrap();
    assert!(
        low_manifests < CEILING || low_blobs < CEILING,
        "no lane was cut (lowest: manifests {low_manifests}, blobs {low_blobs})"
    );

    // Once the registry stops throttling, successes bring the limits back to their ceiling.
    proxy.clear_faults();
    let repository = client.repository(&reference(&format!("{host}/app:v1")));
    for _ in 0..CEILING as usize {
        repository.get_manifest("v1").await.unwrap();
        let digest = image.blobs[0].digest.parse().unwrap();
        repository.get_blob_bytes(&digest, None).await.unwrap();
    }
    let manifests = client.gate().state(&host, Action::ManifestGet).unwrap();
    let blobs = client.gate().state(&host, Action::BlobGet).unwrap();
    assert_eq!(
        (manifests.concurrency, blobs.concurrency),
        (CEILING, CEILING)
    );
}

/// When each request of a lane was admitted (its answer's time less its latency), and its status.
#[derive(Default)]
struct Admissions(Mutex<Vec<(Instant, Action, u16)>>);

impl Observer for Admissions {
    fn on_request(&self, event: &Event<'_>) {
        let admitted = Instant::now() - event.latency;
        self.0
            .lock()
            .unwrap()
            .push((admitted, event.action, event.status));
    }
}

#[tokio::test]
async fn retry_after_holds_back_the_other_copies_requests_of_that_lane() {
    let src = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, "app", "v1", ImageFormat::Oci).await;
    let dst = TestRegistry::anonymous().await.unwrap();
    let proxy = FaultProxy::start(&src.url()).await.unwrap();
    // The first manifest GET is told to wait 2 s.
    proxy.add_fault(
        Fault::new(
            "/manifests/",
            FaultAction::Status {
                code: 429,
                retry_after: Some(2),
            },
        )
        .method("GET")
        .times(1),
    );
    let admissions = Arc::new(Admissions::default());
    let client = Client::builder()
        .docker_config(false)
        .retry(quick_retries())
        .observer(admissions.clone())
        .build()
        .unwrap();

    // One copy meets the 429; the others start after it, while the lane is closed.
    let src_ref = reference(&format!("{}/app:v1", proxy.host()));
    let first = {
        let (client, src_ref) = (client.clone(), src_ref.clone());
        let dst_ref = reference(&format!("{}/first:v1", dst.host()));
        tokio::spawn(async move { copy(&client, &src_ref, &dst_ref, CopyOptions::default()).await })
    };
    while proxy.count("GET", "/manifests/") == 0 || proxy.pending_faults() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let digests = copy_all(&client, &proxy, &dst).await;
    let first = first.await.unwrap().unwrap();
    assert!(digests.iter().all(|d| d == &image.index.digest));
    assert_eq!(first.digest.to_string(), image.index.digest);

    let events = admissions.0.lock().unwrap();
    let (throttled_at, _, _) = *events
        .iter()
        .find(|(_, action, status)| *action == Action::ManifestGet && *status == 429)
        .expect("the 429 reached the observer");
    let answered = throttled_at; // admission of the throttled request, a lower bound of its answer
    for (admitted, action, status) in events.iter() {
        if *action == Action::ManifestGet && *status != 429 {
            assert!(
                *admitted >= answered + Duration::from_millis(1900),
                "a manifest GET went out {:?} after the 429, inside its 2 s Retry-After",
                *admitted - answered
            );
        }
    }
    assert_eq!(
        proxy.requests().iter().filter(|r| r.status == 429).count(),
        1
    );
    let state = client
        .gate()
        .state(&proxy.host(), Action::ManifestGet)
        .unwrap();
    assert_eq!((state.throttled, state.paused_for), (1, None));
}
