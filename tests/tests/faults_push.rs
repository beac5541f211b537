//! A push under faults, judged by what the destination holds: over a link that cuts uploads
//! short and answers 5xx and 429, a push from the Docker Engine lands every layer byte for
//! byte and sends no layer twice once it is stored; an ECR token that expires under a layer's
//! upload is refreshed once and the push completes.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::faults::*;
use common::*;
use ferry_local_image::push::{Compression, PushCache, PushOptions, push};
use ferry_local_image::source::ImageSource;
use ferry_registry::Reference;
use ferry_registry::ecr::EcrCredentials;
use ferry_testkit::ecr::EcrStandIn;
use ferry_testkit::{Fault, FaultAction, LocalImage, skopeo};

fn options(cache: &std::path::Path) -> PushOptions {
    PushOptions {
        compression: Compression::Gzip,
        tags: vec!["v1".into(), "stable".into()],
        immutable_tags: None,
        cache: Arc::new(PushCache::open(Some(cache.join("push-cache.json")))),
        engine: None,
        inspected: None,
        progress: None,
        export_ahead: Default::default(),
    }
}

/// Blob commits the registry accepted (`201`), per digest.
fn commits(proxy: &ferry_testkit::FaultProxy) -> HashMap<String, usize> {
    let mut per_digest = HashMap::new();
    for r in proxy.requests() {
        if is_blob_commit(&r) && r.status == 201 {
            let digest = r.path_and_query.split("digest=").nth(1).unwrap_or("?");
            *per_digest.entry(digest.replace("%3A", ":")).or_default() += 1;
        }
    }
    per_digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_over_a_lossy_throttling_wan_lands_every_layer_intact() {
    let dst = FaultyLink::start().await;
    // 12 layers of 128 KiB: 12 streamed uploads in the first pass, and random data so gzip
    // keeps them that size.
    let image = LocalImage::build(12, 128).unwrap();
    // One layer upload in eight cut after 64 KiB; 15 % of all responses a 500, 503 or 429.
    dst.faults.add_fault(
        Fault::new(
            "/blobs/uploads/",
            FaultAction::ResetMidUpload {
                after_bytes: 64 * 1024,
            },
        )
        .method("PATCH")
        .every(8)
        .times(usize::MAX),
    );
    for code in [500, 503, 429] {
        dst.faults.add_fault(throttle(code, 20));
    }
    let cache = tempfile::tempdir().unwrap();
    let destination = Reference::parse(&format!("{}/app", dst.host())).unwrap();

    // A pass fails at its first cut upload, so each pass stores only part of the image: the
    // push gets eight passes (the default policy's five can run out at these fault rates).
    let client = ferry_registry::Client::builder()
        .docker_config(false)
        .retry(ferry_registry::retry::RetryPolicy {
            max_attempts: 8,
            ..quick_retries()
        })
        .build()
        .unwrap();
    let report = push(
        &client,
        &ImageSource::Daemon {
            name: image.name.clone(),
        },
        &destination,
        &options(cache.path()),
    )
    .await
    .unwrap();

    // Both tags name the pushed image, whose layers are the Engine's byte for byte (skopeo
    // checks every blob digest; the helper every layer against the config's diff_ids) and
    // whose config is the image itself.
    let at = |tag: &str| format!("{}/app:{tag}", dst.registry.host());
    for tag in ["v1", "stable"] {
        let raw = skopeo::inspect_raw(&at(tag), None).await.unwrap();
        assert_eq!(sha256(&raw), report.digest.as_str(), "{tag}");
    }
    let manifest = skopeo::pull_checking_diff_ids(&at("v1"), None)
        .await
        .unwrap();
    assert_eq!(
        manifest["config"]["digest"].as_str(),
        Some(image.id.as_str())
    );
    assert_eq!(manifest["layers"].as_array().map(Vec::len), Some(12));

    let cut = |a: &FaultAction| matches!(a, FaultAction::ResetMidUpload { .. });
    assert!(fired(&dst.faults, cut) > 0, "no upload was cut");
    for code in [500, 503, 429] {
        let answered = fired(
            &dst.faults,
            |a| matches!(a, FaultAction::Status { code: c, .. } if *c == code),
        );
        assert!(answered > 0, "no {code} was injected");
    }
    // What a failed pass stored, the next one skipped: no blob was committed twice.
    let commits = commits(&dst.faults);
    assert!(
        commits.values().all(|n| *n == 1),
        "blobs committed more than once: {commits:?}"
    );
    assert_eq!(commits.len(), 13, "12 layers and the config: {commits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecr_token_that_expires_mid_push_is_refreshed_once() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let ecr = ecr_with_repository(&stand_in, "app").await;
    let credentials = Arc::new(EcrCredentials::new(ecr));
    let proxy = ferry_testkit::FaultProxy::start(&stand_in.registry_url())
        .await
        .unwrap();
    let client = ecr_client(&proxy.url(), credentials.clone());
    let image = LocalImage::build(3, 256).unwrap();
    // The second layer's upload is held while the token expires: ECR then refuses the stream
    // as the registry refuses a rotated password.
    proxy.add_fault(
        Fault::new(
            "/blobs/uploads/",
            FaultAction::Delay(Duration::from_secs(1)),
        )
        .method("PATCH")
        .every(2),
    );
    let cache = tempfile::tempdir().unwrap();
    let destination = Reference::parse(&format!("{}/app", stand_in.ecr_host())).unwrap();
    let pushing = tokio::spawn({
        let options = options(cache.path());
        let source = ImageSource::Daemon {
            name: image.name.clone(),
        };
        async move { push(&client, &source, &destination, &options).await }
    });
    wait_for(&proxy, "the held upload", |requests| {
        requests.iter().any(is_delay)
    })
    .await;
    stand_in.rotate_password().unwrap();
    let report = pushing.await.unwrap().unwrap();

    let held = proxy.requests().into_iter().find(is_delay).unwrap();
    assert_eq!(held.status, 401, "the expired token was accepted");
    assert_eq!(credentials.fetches(), 2, "one token, then one refresh");
    let password = stand_in.password();
    let at = format!("{}/app:v1", stand_in.registry().host());
    let raw = skopeo::inspect_raw(&at, Some(("AWS", &password)))
        .await
        .unwrap();
    assert_eq!(sha256(&raw), report.digest.as_str());
    skopeo::pull_checking_diff_ids(&at, Some(("AWS", &password)))
        .await
        .unwrap();
    let commits = commits(&proxy);
    assert!(
        commits.values().all(|n| *n == 1),
        "blobs committed more than once: {commits:?}"
    );
}
