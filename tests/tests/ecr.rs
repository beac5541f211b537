//! ECR through the local stand-in (moto for the control plane, a real registry for the data
//! plane): login, repository creation, immutable tags, token refresh, and copies into ECR.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use ferry_registry::copy::{CopyOptions, ImmutableTags, TagOutcome};
use ferry_registry::ecr::{EcrCredentials, EnsureMode, RepositorySettings, TagMutability};
use ferry_registry::{Error, copy};
use ferry_testkit::ecr::EcrStandIn;
use ferry_testkit::{ImageFormat, TestRegistry, skopeo};

#[tokio::test]
async fn copy_into_ecr_with_aws_credentials_preserves_digests() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let src = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, "app", "v1", ImageFormat::Docker).await;
    let ecr = ecr_with_repository(&stand_in, "team/app").await;
    let credentials = Arc::new(EcrCredentials::new(ecr));

    let report = copy(
        &ecr_client(&stand_in.registry_url(), credentials.clone()),
        &reference(&format!("{}/app:v1", src.host())),
        &reference(&format!("{}/team/app:v1", stand_in.ecr_host())),
        CopyOptions::default(),
    )
    .await
    .unwrap();

    assert_eq!(report.digest.as_str(), image.index.digest);
    assert_eq!(credentials.fetches(), 1, "one token for the whole copy");
    let creds = ("AWS", stand_in.password());
    let raw = skopeo::inspect_raw(
        &format!("{}/team/app:v1", stand_in.registry().host()),
        Some((creds.0, &creds.1)),
    )
    .await
    .unwrap();
    assert_eq!(sha256(&raw), image.index.digest);
    for (_, manifest) in &image.manifests {
        let raw = skopeo::inspect_raw(
            &format!(
                "{}/team/app@{}",
                stand_in.registry().host(),
                manifest.digest
            ),
            Some((creds.0, &creds.1)),
        )
        .await
        .unwrap();
        assert_eq!(sha256(&raw), manifest.digest);
    }
}

#[tokio::test]
async fn a_rotated_token_is_refreshed_once_on_401() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let src = TestRegistry::anonymous().await.unwrap();
    seeded(&src, "app", "v1", ImageFormat::Oci).await;
    let ecr = ecr_with_repository(&stand_in, "app").await;
    let credentials = Arc::new(EcrCredentials::new(ecr));
    let client = ecr_client(&stand_in.registry_url(), credentials.clone());
    let from = reference(&format!("{}/app:v1", src.host()));

    copy(
        &client,
        &from,
        &reference(&format!("{}/app:one", stand_in.ecr_host())),
        CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(credentials.fetches(), 1);

    // moto's tokens "expired" in 2015: the client must not refetch on that account alone,
    // but once the registry refuses the token it fetches exactly one new one.
    stand_in.rotate_password().unwrap();
    let report = copy(
        &client,
        &from,
        &reference(&format!("{}/app:two", stand_in.ecr_host())),
        CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.tags[0].outcome, TagOutcome::Created);
    assert_eq!(credentials.fetches(), 2);
    assert_eq!(stand_in.token_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_first_requests_at_once_share_one_login() {
    // Every first request is challenged, having carried no credentials; only a refusal of
    // credentials we sent may drop them, or the later challenges throw away the login the
    // first one fetched and each fetches another.
    let stand_in = EcrStandIn::start().await.unwrap();
    let ecr = ecr_with_repository(&stand_in, "app").await;
    let credentials = Arc::new(EcrCredentials::new(ecr));
    let client = ecr_client(&stand_in.registry_url(), credentials.clone());
    let repository = client.repository(&reference(&format!("{}/app", stand_in.ecr_host())));
    let heads = (0..8).map(|i| {
        let repository = repository.clone();
        async move { repository.head_manifest(&format!("t{i}")).await }
    });
    for head in futures::future::join_all(heads).await {
        assert!(head.unwrap().is_none(), "no tag was pushed");
    }
    assert_eq!(credentials.fetches(), 1, "one login for the first requests");
    assert_eq!(stand_in.token_requests(), 1);
}

#[tokio::test]
async fn immutable_repository_same_digest_is_unchanged_and_a_move_is_refused() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let src = TestRegistry::anonymous().await.unwrap();
    let v1 = seeded(&src, "app", "v1", ImageFormat::Oci).await;
    let v2 = ferry_testkit::build(&spec(&THREE_PLATFORMS, ImageFormat::Oci, 99)).unwrap();
    v2.push(&src.url(), "app", "v2", None).await.unwrap();

    let ecr = ecr_for(&stand_in).await;
    let settings = RepositorySettings {
        tag_mutability: Some(TagMutability::Immutable),
        ..RepositorySettings::default()
    };
    let state = ecr
        .ensure_repository(
            &ecr_host(&stand_in),
            "locked",
            &settings,
            EnsureMode::CreateIfMissing,
        )
        .await
        .unwrap();
    assert!(state.created);
    assert_eq!(state.tag_mutability, TagMutability::Immutable);
    let client = ecr_client(&stand_in.registry_url(), Arc::new(EcrCredentials::new(ecr)));
    let options = CopyOptions {
        immutable_tags: Some(ImmutableTags::all("IMMUTABLE")),
        ..CopyOptions::default()
    };
    let to = reference(&format!("{}/locked:release", stand_in.ecr_host()));

    let first = copy(
        &client,
        &reference(&format!("{}/app:v1", src.host())),
        &to,
        options.clone(),
    )
    .await
    .unwrap();
    assert_eq!(first.tags[0].outcome, TagOutcome::Created);
    let again = copy(
        &client,
        &reference(&format!("{}/app:v1", src.host())),
        &to,
        options.clone(),
    )
    .await
    .unwrap();
    assert_eq!(again.tags[0].outcome, TagOutcome::Unchanged);
    assert_eq!(again.totals.requests.put, 0);

    let err = copy(
        &client,
        &reference(&format!("{}/app:v2", src.host())),
        &to,
        options,
    )
    .await
    .unwrap_err();
    assert!(matches!(err.error, Error::ImmutableTag { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("\"release\""), "{text}");
    assert!(
        text.contains(&v1.index.digest) && text.contains(&v2.index.digest),
        "{text}"
    );
    assert!(text.contains("IMMUTABLE"), "{text}");
    // Nothing of v2 was pushed: the tag still points at v1.
    let creds = ("AWS", stand_in.password());
    let raw = skopeo::inspect_raw(
        &format!("{}/locked:release", stand_in.registry().host()),
        Some((creds.0, &creds.1)),
    )
    .await
    .unwrap();
    assert_eq!(sha256(&raw), v1.index.digest);
}
