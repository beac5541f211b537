//! Copies under faults and with authentication: corruption never reaches a tag, throttling is
//! waited out, interrupted transfers restart, and each auth scheme works.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use ferry_registry::copy::CopyOptions;
use ferry_registry::{Error, copy};
use ferry_testkit::push::RawClient;
use ferry_testkit::{Fault, FaultAction, FaultProxy, ImageFormat, TestRegistry, skopeo};

#[tokio::test]
async fn corrupted_source_bytes_fail_the_copy_and_tag_nothing() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, "app", "v1", ImageFormat::Oci).await;
    let proxy = FaultProxy::start(&src.url()).await.unwrap();
    // Every blob read is corrupted, so retries cannot help.
    proxy.add_fault(
        Fault::new("/blobs/sha256:", FaultAction::CorruptBody { at_byte: 100 })
            .method("GET")
            .times(1000),
    );

    let err = copy(
        &client(),
        &reference(&format!("{}/app:v1", proxy.host())),
        &reference(&format!("{}/app:v1", dst.host())),
        CopyOptions::default(),
    )
    .await
    .unwrap_err();

    assert!(
        matches!(err.error, Error::Digest(_)),
        "expected a digest error, got: {err}"
    );
    assert!(
        err.to_string().contains("sha256:"),
        "names the digest: {err}"
    );
    let dst_raw = RawClient::new(&dst.url(), None).unwrap();
    assert!(
        dst_raw.tags("app").await.unwrap().is_empty(),
        "nothing may be tagged"
    );
    for blob in &image.blobs {
        if blob.size() > 100 {
            assert!(
                !dst_raw.blob_exists("app", &blob.digest).await.unwrap(),
                "a corrupted blob was stored: {}",
                blob.digest
            );
        }
    }
}

#[tokio::test]
async fn a_transient_corruption_is_retried_from_scratch() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, "app", "v1", ImageFormat::Oci).await;
    let proxy = FaultProxy::start(&src.url()).await.unwrap();
    proxy.add_fault(
        Fault::new("/blobs/sha256:", FaultAction::CorruptBody { at_byte: 10 })
            .method("GET")
            .times(1),
    );
    proxy.add_fault(
        Fault::new(
            "/blobs/sha256:",
            FaultAction::ResetMidBody { after_bytes: 1000 },
        )
        .method("GET")
        .times(1),
    );

    let report = copy(
        &client(),
        &reference(&format!("{}/app:v1", proxy.host())),
        &reference(&format!("{}/app:v1", dst.host())),
        CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.totals.blobs_uploaded as usize, image.blobs.len());
    assert_eq!(proxy.pending_faults(), 0, "both faults were hit");
    let raw = skopeo::inspect_raw(&format!("{}/app:v1", dst.host()), None)
        .await
        .unwrap();
    assert_eq!(sha256(&raw), image.index.digest);
}

#[tokio::test]
async fn throttling_with_retry_after_is_waited_out() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, "app", "v1", ImageFormat::Oci).await;
    let proxy = FaultProxy::start(&src.url()).await.unwrap();
    proxy.add_fault(
        Fault::new(
            "/manifests/v1",
            FaultAction::Status {
                code: 429,
                retry_after: Some(1),
            },
        )
        // The first request of a copy: the HEAD of the source tag.
        .method("HEAD")
        .times(2),
    );

    let started = Instant::now();
    let report = copy(
        &client(),
        &reference(&format!("{}/app:v1", proxy.host())),
        &reference(&format!("{}/app:v1", dst.host())),
        CopyOptions::default(),
    )
    .await
    .unwrap();

    assert_eq!(report.digest.as_str(), image.index.digest);
    let throttled = proxy.requests().iter().filter(|r| r.status == 429).count();
    assert_eq!(throttled, 2);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After: 1 twice must wait at least 2 s, took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn server_errors_beyond_the_retry_budget_surface_with_their_code() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    // A single manifest: exactly one manifest PUT to retry.
    let image = ferry_testkit::build_single(&spec(&["linux/amd64"], ImageFormat::Oci, 5)).unwrap();
    image.push(&src.url(), "app", "v1", None).await.unwrap();
    let proxy = FaultProxy::start(&dst.url()).await.unwrap();
    proxy.add_fault(
        Fault::new(
            "/manifests/",
            FaultAction::Status {
                code: 503,
                retry_after: None,
            },
        )
        .method("PUT")
        .times(100),
    );

    let err = copy(
        &client(),
        &reference(&format!("{}/app:v1", src.host())),
        &reference(&format!("{}/app:v1", proxy.host())),
        CopyOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error.status(), Some(503));
    assert!(
        err.to_string().contains("PUT http://"),
        "names the request: {err}"
    );
    assert_eq!(proxy.count("PUT", "/manifests/"), 4, "bounded attempts");
    assert!(
        err.to_string().ends_with("(gave up after 4 attempts)"),
        "says the retries were spent: {err}"
    );
}

#[tokio::test]
async fn basic_auth_source_and_destination() {
    let src = TestRegistry::basic("alice", "s3cret").await.unwrap();
    let dst = TestRegistry::basic("bob", "hunter2").await.unwrap();
    let image = ferry_testkit::build(&spec(&THREE_PLATFORMS, ImageFormat::Docker, 11)).unwrap();
    image
        .push(&src.url(), "app", "v1", Some(("alice", "s3cret")))
        .await
        .unwrap();

    let creds = std::sync::Arc::new(ferry_registry::auth::StaticCredentials::new());
    creds.set(
        src.host(),
        ferry_registry::auth::Credentials::basic("alice", "s3cret"),
    );
    creds.set(
        dst.host(),
        ferry_registry::auth::Credentials::basic("bob", "hunter2"),
    );
    let client = ferry_registry::Client::builder()
        .docker_config(false)
        .credentials(creds)
        .retry(quick_retries())
        .build()
        .unwrap();
    let report = copy(
        &client,
        &reference(&format!("{}/app:v1", src.host())),
        &reference(&format!("{}/app:v1", dst.host())),
        CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.digest.as_str(), image.index.digest);
    let raw = skopeo::inspect_raw(&format!("{}/app:v1", dst.host()), Some(("bob", "hunter2")))
        .await
        .unwrap();
    assert_eq!(sha256(&raw), image.index.digest);
}

#[tokio::test]
async fn wrong_basic_password_is_a_clear_auth_error() {
    let src = TestRegistry::basic("alice", "s3cret").await.unwrap();
    let client = client_with(&[&src.host()], "alice", "wrong");
    let err = client
        .repository(&reference(&format!("{}/app", src.host())))
        .head_manifest("v1")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "never print the password: {err}"
    );
}

#[tokio::test]
async fn bearer_token_flow_with_cached_tokens() {
    // The source lets anyone pull; only "seeder" may push.
    let src = TestRegistry::token(&[("seeder", "pw")], true)
        .await
        .unwrap();
    let dst = TestRegistry::token(&[("carol", "pw")], false)
        .await
        .unwrap();
    let image = ferry_testkit::build(&spec(&THREE_PLATFORMS, ImageFormat::Oci, 12)).unwrap();
    image
        .push(&src.url(), "app", "v1", Some(("seeder", "pw")))
        .await
        .unwrap();
    src.token_issuer().unwrap().clear_requests();

    let client = client_with(&[&dst.host()], "carol", "pw");
    let report = copy(
        &client,
        &reference(&format!("{}/app:v1", src.host())),
        &reference(&format!("{}/app:v1", dst.host())),
        CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.digest.as_str(), image.index.digest);

    // Anonymous pull at the source: tokens were asked for without credentials.
    let src_tokens = src.token_issuer().unwrap().requests();
    assert!(src_tokens.iter().any(|t| t.user.is_none()));
    // Tokens are cached per scope: a handful of token requests for dozens of registry requests.
    let dst_tokens = dst.token_issuer().unwrap().requests();
    assert!(
        !dst_tokens.is_empty() && dst_tokens.len() <= 3,
        "token requests: {dst_tokens:?}"
    );
    assert!(
        dst_tokens
            .iter()
            .all(|t| t.user.as_deref() == Some("carol"))
    );
    let raw = skopeo::inspect_raw(&format!("{}/app:v1", dst.host()), Some(("carol", "pw")))
        .await
        .unwrap();
    assert_eq!(sha256(&raw), image.index.digest);
}

#[tokio::test]
async fn bearer_refusal_names_the_token_service() {
    let dst = TestRegistry::token(&[("carol", "pw")], false)
        .await
        .unwrap();
    let client = client_with(&[&dst.host()], "carol", "not-the-password");
    let err = client
        .repository(&reference(&format!("{}/app", dst.host())))
        .head_manifest("v1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("refused the credentials for user \"carol\""),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-password"));
}
