//! Proof under faults, judged by what the destination holds: a copy over a lossy, throttling WAN
//! link lands every digest intact; a blob that never arrives tags nothing; a registry that goes
//! away mid-copy costs only what was not stored yet; an ECR token that expires mid-copy is
//! refreshed once.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::faults::*;
use common::*;
use ferry_registry::copy;
use ferry_registry::copy::CopyOptions;
use ferry_registry::ecr::EcrCredentials;
use ferry_testkit::ecr::EcrStandIn;
use ferry_testkit::push::RawClient;
use ferry_testkit::{Fault, FaultAction, FaultProxy, ImageFormat, ImageSpec, TestRegistry};

#[tokio::test]
async fn a_copy_over_a_lossy_throttling_wan_lands_every_digest_intact() {
    let src = FaultyLink::start().await;
    let dst = FaultyLink::start().await;
    // 16 blobs: enough requests that every fault below fires at least once.
    let image = ferry_testkit::build(&ImageSpec {
        layers: 5,
        ..spec(&THREE_PLATFORMS, ImageFormat::Oci, 21)
    })
    .unwrap();
    image
        .push(&src.registry.url(), "app", "v1", None)
        .await
        .unwrap();
    // Source: one blob body in ten cut short, one response in ten throttled.
    src.faults.add_fault(
        Fault::new(
            "/blobs/sha256:",
            FaultAction::ResetMidBody { after_bytes: 4096 },
        )
        .method("GET")
        .every(10)
        .times(usize::MAX),
    );
    src.faults.add_fault(throttle(429, 10));
    // Destination: one response in ten a server error, half 500 and half 503.
    dst.faults.add_fault(throttle(500, 20));
    dst.faults.add_fault(throttle(503, 20));

    let report = copy_app_v1(&src.host(), &dst.host(), CopyOptions::default())
        .await
        .unwrap();

    assert_eq!(report.digest.as_str(), image.index.digest);
    assert_identical_at(&dst.registry, None, "app", "v1", &image).await;
    // The blobs crossed the link both ways, not around it.
    let blob_bytes = image.total_blob_bytes();
    assert!(src.wan.stats().bytes_down >= blob_bytes);
    assert!(dst.wan.stats().bytes_up >= blob_bytes);
    let cut = |a: &FaultAction| matches!(a, FaultAction::ResetMidBody { .. });
    assert!(fired(&src.faults, cut) > 0, "no body was cut");
    for (proxy, code) in [(&src.faults, 429), (&dst.faults, 500), (&dst.faults, 503)] {
        let answered = fired(
            proxy,
            |a| matches!(a, FaultAction::Status { code: c, .. } if *c == code),
        );
        assert!(answered > 0, "no {code} was answered");
    }
}

#[tokio::test]
async fn a_blob_that_never_arrives_is_named_and_nothing_is_tagged() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, "app", "v1", ImageFormat::Oci).await;
    let proxy = FaultProxy::start(&src.url()).await.unwrap();
    // A layer: its body is cut short on every attempt.
    let lost = &image.blobs.iter().max_by_key(|b| b.size()).unwrap().digest;
    proxy.add_fault(
        Fault::new(
            &format!("/blobs/{lost}"),
            FaultAction::ResetMidBody { after_bytes: 1000 },
        )
        .method("GET")
        .times(usize::MAX),
    );

    let err = copy_app_v1(&proxy.host(), &dst.host(), CopyOptions::default())
        .await
        .unwrap_err();

    assert!(
        err.to_string().contains(lost.as_str()),
        "names the blob: {err}"
    );
    // The request as it was sent: plain HTTP, not the https:// tried first on loopback.
    assert!(
        err.to_string().contains(&format!("GET {}/", proxy.url())),
        "names the request: {err}"
    );
    assert!(err.tags.is_empty(), "reports a tag set: {err}");
    assert!(
        proxy.count("GET", &format!("/blobs/{lost}")) > 1,
        "the blob was not retried"
    );
    let dst_raw = RawClient::new(&dst.url(), None).unwrap();
    assert!(
        dst_raw.tags("app").await.unwrap().is_empty(),
        "a tag points at a partial image"
    );
    assert!(!dst_raw.blob_exists("app", lost).await.unwrap());
}

#[tokio::test]
async fn a_registry_that_goes_away_mid_copy_fails_it_and_a_rerun_sends_only_what_is_missing() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, "app", "v1", ImageFormat::Oci).await;
    let proxy = FaultProxy::start(&dst.url()).await.unwrap();
    // The third blob commit is held back, so the destination goes down with some blobs stored
    // and that one (at least) not.
    proxy.add_fault(
        Fault::new(
            "/blobs/uploads/",
            FaultAction::Delay(Duration::from_secs(2)),
        )
        .method("PUT")
        .every(3),
    );

    let copying = tokio::spawn({
        let (from, to) = (src.host(), proxy.host());
        async move { copy_app_v1(&from, &to, CopyOptions::default()).await }
    });
    wait_for(&proxy, "a stored blob and a held commit", |requests| {
        requests.iter().any(is_delay)
            && requests
                .iter()
                .any(|r| is_blob_commit(r) && r.status == 201)
    })
    .await;
    dst.stop();
    let err = copying.await.unwrap().unwrap_err();
    dst.restart().await.unwrap();

    assert!(err.tags.is_empty(), "reports a tag set: {err}");
    let dst_raw = RawClient::new(&dst.url(), None).unwrap();
    assert!(
        dst_raw.tags("app").await.unwrap().is_empty(),
        "a tag points at a partial image"
    );
    let mut stored = Vec::new();
    for blob in &image.blobs {
        if dst_raw.blob_exists("app", &blob.digest).await.unwrap() {
            stored.push(blob);
        }
    }
    assert!(
        !stored.is_empty() && stored.len() < image.blobs.len(),
        "{} of {} blobs stored before the outage",
        stored.len(),
        image.blobs.len()
    );

    proxy.clear();
    let report = copy_app_v1(&src.host(), &proxy.host(), CopyOptions::default())
        .await
        .unwrap();

    assert_identical_at(&dst, None, "app", "v1", &image).await;
    for blob in &stored {
        assert_eq!(
            proxy.count("PUT", blob.hex()),
            0,
            "{} was stored already and sent again",
            blob.digest
        );
    }
    let missing = (image.blobs.len() - stored.len()) as u64;
    assert_eq!(report.totals.blobs_uploaded, missing);
    assert_eq!(proxy.count("POST", "/blobs/uploads/") as u64, missing);
}

#[tokio::test]
async fn an_ecr_token_that_expires_mid_copy_is_refreshed_once() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let src = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, "app", "v1", ImageFormat::Oci).await;
    let ecr = ecr_with_repository(&stand_in, "app").await;
    let credentials = Arc::new(EcrCredentials::new(ecr));
    let proxy = FaultProxy::start(&stand_in.registry_url()).await.unwrap();
    let client = ecr_client(&proxy.url(), credentials.clone());
    // The third blob upload, streaming with the token the first two went up with, is held
    // while the token expires: ECR then refuses it as the registry refuses a rotated password.
    proxy.add_fault(
        Fault::new(
            "/blobs/uploads/",
            FaultAction::Delay(Duration::from_secs(1)),
        )
        .method("PUT")
        .every(3),
    );

    let copying = tokio::spawn({
        let from = reference(&format!("{}/app:v1", src.host()));
        let to = reference(&format!("{}/app:v1", stand_in.ecr_host()));
        async move { copy(&client, &from, &to, CopyOptions::default()).await }
    });
    wait_for(&proxy, "the held upload", |requests| {
        requests.iter().any(is_delay)
    })
    .await;
    stand_in.rotate_password().unwrap();
    let report = copying.await.unwrap().unwrap();

    assert_eq!(report.digest.as_str(), image.index.digest);
    let held = proxy.requests().into_iter().find(is_delay).unwrap();
    assert_eq!(held.status, 401, "the expired token was accepted");
    assert_eq!(credentials.fetches(), 2, "one token, then one refresh");
    assert_eq!(stand_in.token_requests(), 2);
    let password = stand_in.password();
    assert_identical_at(
        stand_in.registry(),
        Some(("AWS", &password)),
        "app",
        "v1",
        &image,
    )
    .await;
}
