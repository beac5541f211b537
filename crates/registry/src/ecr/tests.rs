//! The ECR module against a real moto server (one per test, killed on drop), and DescribeImages
//! paging against a tiny fake, since moto answers every DescribeImages in one page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use super::*;
use crate::auth::{CredentialProvider, Credentials};
use support::{ACCOUNT, Moto, NoCredentials, ecr_at, fake_paging_ecr, registry};

const MOTO_PASSWORD: &str = "123456789012-auth-token";

const LIFECYCLE: &str = r#"{"rules":[{"rulePriority":1,"description":"expire untagged",
    "selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days",
    "countNumber":14},"action":{"type":"expire"}}]}"#;
const LIFECYCLE_30: &str = r#"{"rules":[{"rulePriority":1,"description":"expire untagged",
    "selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days",
    "countNumber":30},"action":{"type":"expire"}}]}"#;
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow",
    "Principal":{"AWS":"arn:aws:iam::210987654321:root"},
    "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}"#;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn authorization_token_is_decoded() {
    let moto = Moto::start().await;
    let token = moto
        .ecr()
        .await
        .authorization_token(&registry())
        .await
        .unwrap();
    assert_eq!(token.username, "AWS");
    assert_eq!(token.password, MOTO_PASSWORD);
    // moto's expiry is 2015-01-01: already past, which the credential cache must cope with.
    assert!(token.expires_at.unwrap() < SystemTime::now());
    assert_eq!(
        token.proxy_endpoint.as_deref(),
        Some("https://123456789012.dkr.ecr.us-east-1.amazonaws.com")
    );
    assert!(!format!("{token:?}").contains(MOTO_PASSWORD));

    let public = EcrHost::parse("public.ecr.aws").unwrap();
    let err = moto
        .ecr()
        .await
        .authorization_token(&public)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("public.ecr.aws"), "{err}");
}

#[tokio::test]
async fn default_registry_comes_from_the_proxy_endpoint() {
    let moto = Moto::start().await;
    let ecr = moto.ecr().await;
    assert_eq!(ecr.default_region().as_deref(), Some("us-east-1"));
    assert_eq!(ecr.default_registry(None).await.unwrap(), registry());
    assert_eq!(
        ecr.default_registry(Some("eu-west-1"))
            .await
            .unwrap()
            .host(),
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    );
}

#[tokio::test]
async fn credentials_are_cached_despite_a_past_expiry_and_refetched_once_after_invalidate() {
    let moto = Moto::start().await;
    let provider =
        Arc::new(EcrCredentials::new(moto.ecr().await).with_alias("127.0.0.1:5000", registry()));
    let host = registry().host();
    let want = Credentials::basic("AWS", MOTO_PASSWORD);

    // Concurrent first callers share one fetch.
    let callers = (0..16).map(|_| {
        let provider = provider.clone();
        let host = host.clone();
        tokio::spawn(async move { provider.credentials(&host).await.unwrap() })
    });
    for found in futures::future::join_all(callers).await {
        assert_eq!(found.unwrap(), Some(want.clone()));
    }
    for _ in 0..20 {
        assert_eq!(
            provider.credentials(&host).await.unwrap(),
            Some(want.clone())
        );
    }
    let with_port = format!("{}:443", host.to_uppercase());
    assert_eq!(
        provider.credentials(&with_port).await.unwrap(),
        Some(want.clone())
    );
    assert_eq!(
        provider.credentials("127.0.0.1:5000").await.unwrap(),
        Some(want.clone())
    );
    assert_eq!(provider.fetches(), 1);

    provider.invalidate(&host);
    for _ in 0..10 {
        assert_eq!(
            provider.credentials(&host).await.unwrap(),
            Some(want.clone())
        );
    }
    assert_eq!(provider.fetches(), 2);
    // An alias shares its registry's token.
    provider.invalidate("127.0.0.1:5000");
    provider.credentials(&host).await.unwrap();
    assert_eq!(provider.fetches(), 3);

    for other in ["docker.io", "localhost:5001", "public.ecr.aws", "ghcr.io"] {
        assert_eq!(provider.credentials(other).await.unwrap(), None, "{other}");
        provider.invalidate(other);
    }
    assert_eq!(provider.fetches(), 3);
}

#[tokio::test]
async fn ensure_creates_a_repository_with_every_setting() {
    let moto = Moto::start().await;
    let ecr = moto.ecr().await;
    let settings = RepositorySettings {
        tag_mutability: Some(TagMutability::Immutable),
        mutability_exclusions: vec!["latest".into(), "dev-*".into()],
        scan_on_push: Some(true),
        encryption: Some(Encryption::Kms {
            key: Some("arn:aws:kms:us-east-1:123456789012:key/abcd".into()),
        }),
        tags: vec![
            ("team".into(), "platform".into()),
            ("env".into(), "prod".into()),
        ],
        lifecycle_policy: Some(LIFECYCLE.into()),
        repository_policy: Some(POLICY.into()),
        enforce: false,
    };
    let state = ecr
        .ensure_repository(
            &registry(),
            "team/app",
            &settings,
            EnsureMode::CreateIfMissing,
        )
        .await
        .unwrap();
    assert!(state.created);
    assert!(state.drift.is_empty(), "{:?}", state.drift);
    assert_eq!(state.name, "team/app");
    assert_eq!(
        state.uri,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app"
    );
    assert_eq!(state.tag_mutability, TagMutability::ImmutableWithExclusion);
    assert_eq!(state.mutability_exclusions, ["dev-*", "latest"]);
    assert!(state.scan_on_push);
    assert!(state.tag_is_immutable("v1") && !state.tag_is_immutable("dev-7"));

    // Read everything back with plain SDK calls.
    let client = ecr.client("us-east-1");
    let described = client
        .describe_repositories()
        .registry_id(ACCOUNT)
        .repository_names("team/app")
        .send()
        .await
        .unwrap();
    let repo = &described.repositories()[0];
    assert_eq!(
        repo.image_tag_mutability().map(|m| m.as_str()),
        Some("IMMUTABLE_WITH_EXCLUSION")
    );
    assert_eq!(repo.image_tag_mutability_exclusion_filters().len(), 2);
    assert!(repo.image_scanning_configuration().unwrap().scan_on_push());
    let encryption = repo.encryption_configuration().unwrap();
    assert_eq!(encryption.encryption_type().as_str(), "KMS");
    assert_eq!(
        encryption.kms_key(),
        Some("arn:aws:kms:us-east-1:123456789012:key/abcd")
    );
    let tags = client
        .list_tags_for_resource()
        .resource_arn(repo.repository_arn().unwrap())
        .send()
        .await
        .unwrap();
    let tags: HashMap<&str, &str> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags, HashMap::from([("team", "platform"), ("env", "prod")]));
    let lifecycle = client
        .get_lifecycle_policy()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json(lifecycle.lifecycle_policy_text().unwrap()),
        json(LIFECYCLE)
    );
    let policy = client
        .get_repository_policy()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(json(policy.policy_text().unwrap()), json(POLICY));

    // Asking again for the same settings finds nothing to do.
    let again = ecr
        .ensure_repository(&registry(), "team/app", &settings, EnsureMode::MustExist)
        .await
        .unwrap();
    assert!(!again.created);
    assert!(again.drift.is_empty(), "{:?}", again.drift);
    let described = ecr
        .describe_repository(&registry(), "team/app")
        .await
        .unwrap();
    assert_eq!(described.unwrap().arn, again.arn);
    assert!(
        ecr.describe_repository(&registry(), "nope")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn concurrent_creators_both_succeed_and_one_created() {
    let moto = Moto::start().await;
    let ecr = moto.ecr().await;
    let settings = RepositorySettings {
        scan_on_push: Some(true),
        ..Default::default()
    };
    let host = registry();
    let ensure = || ecr.ensure_repository(&host, "race", &settings, EnsureMode::CreateIfMissing);
    let (a, b) = tokio::join!(ensure(), ensure());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(u8::from(a.created) + u8::from(b.created), 1);
    assert!(a.drift.is_empty() && b.drift.is_empty());
    assert_eq!(a.arn, b.arn);
}

#[tokio::test]
async fn must_exist_names_the_missing_repository() {
    let moto = Moto::start().await;
    let err = moto
        .ecr()
        .await
        .ensure_repository(
            &registry(),
            "team/missing",
            &RepositorySettings::default(),
            EnsureMode::MustExist,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EcrError::RepositoryNotFound { .. }));
    assert_eq!(
        err.to_string(),
        "repository team/missing does not exist in 123456789012.dkr.ecr.us-east-1.amazonaws.com \
         (and creating it is turned off)"
    );
}

#[tokio::test]
async fn drift_is_reported_and_corrected_only_when_enforced() {
    let moto = Moto::start().await;
    let ecr = moto.ecr().await;
    let initial = RepositorySettings {
        tags: vec![("team".into(), "a".into()), ("keep".into(), "me".into())],
        lifecycle_policy: Some(LIFECYCLE.into()),
        ..Default::default()
    };
    ecr.ensure_repository(&registry(), "drifty", &initial, EnsureMode::CreateIfMissing)
        .await
        .unwrap();

    let mut wanted = RepositorySettings {
        tag_mutability: Some(TagMutability::Immutable),
        scan_on_push: Some(true),
        encryption: Some(Encryption::Kms { key: None }),
        tags: vec![("team".into(), "b".into()), ("env".into(), "prod".into())],
        lifecycle_policy: Some(LIFECYCLE_30.into()),
        repository_policy: Some(POLICY.into()),
        enforce: false,
        ..Default::default()
    };
    let reported = ecr
        .ensure_repository(&registry(), "drifty", &wanted, EnsureMode::MustExist)
        .await
        .unwrap();
    let drift: HashMap<&str, &Drift> = reported
        .drift
        .iter()
        .map(|d| (d.setting.as_str(), d))
        .collect();
    let mut settings: Vec<&str> = drift.keys().copied().collect();
    settings.sort();
    assert_eq!(
        settings,
        [
            "encryption",
            "lifecycle_policy",
            "repository_policy",
            "scan_on_push",
            "tag:env",
            "tag:team",
            "tag_mutability"
        ]
    );
    assert!(reported.drift.iter().all(|d| !d.corrected));
    assert_eq!(drift["tag_mutability"].actual, "MUTABLE");
    assert_eq!(drift["tag_mutability"].wanted, "IMMUTABLE");
    assert_eq!(drift["tag:team"].actual, "a");
    assert_eq!(drift["tag:env"].actual, "<none>");
    assert_eq!(drift["repository_policy"].actual, "<none>");
    assert_eq!(drift["encryption"].actual, "AES256");
    assert_eq!(reported.tag_mutability, TagMutability::Mutable);
    // Reporting changed nothing.
    let still = ecr
        .describe_repository(&registry(), "drifty")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.tag_mutability, TagMutability::Mutable);
    assert!(!still.scan_on_push);

    wanted.enforce = true;
    let corrected = ecr
        .ensure_repository(&registry(), "drifty", &wanted, EnsureMode::MustExist)
        .await
        .unwrap();
    assert_eq!(corrected.drift.len(), 7);
    for d in &corrected.drift {
        assert_eq!(d.corrected, d.setting != "encryption", "{d:?}");
    }
    assert_eq!(corrected.tag_mutability, TagMutability::Immutable);
    assert!(corrected.scan_on_push);

    // Now only the encryption, which ECR cannot change, still differs.
    let after = ecr
        .ensure_repository(&registry(), "drifty", &wanted, EnsureMode::MustExist)
        .await
        .unwrap();
    let left: Vec<&str> = after.drift.iter().map(|d| d.setting.as_str()).collect();
    assert_eq!(left, ["encryption"]);
    let client = ecr.client("us-east-1");
    let tags = client
        .list_tags_for_resource()
        .resource_arn(after.arn.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    let tags: HashMap<&str, &str> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
    // Tags nobody asked about are left alone.
    assert_eq!(
        tags,
        HashMap::from([("team", "b"), ("env", "prod"), ("keep", "me")])
    );
}

#[tokio::test]
async fn exclusions_are_compared_and_corrected() {
    let moto = Moto::start().await;
    let ecr = moto.ecr().await;
    let mut settings = RepositorySettings {
        tag_mutability: Some(TagMutability::ImmutableWithExclusion),
        mutability_exclusions: vec!["latest".into()],
        ..Default::default()
    };
    ecr.ensure_repository(&registry(), "excl", &settings, EnsureMode::CreateIfMissing)
        .await
        .unwrap();
    settings.mutability_exclusions = vec!["latest".into(), "dev-*".into()];
    settings.enforce = true;
    let state = ecr
        .ensure_repository(&registry(), "excl", &settings, EnsureMode::MustExist)
        .await
        .unwrap();
    assert_eq!(state.drift.len(), 1);
    assert_eq!(state.drift[0].actual, "IMMUTABLE_WITH_EXCLUSION (latest)");
    assert_eq!(
        state.drift[0].wanted,
        "IMMUTABLE_WITH_EXCLUSION (dev-*, latest)"
    );
    let read_back = ecr
        .describe_repository(&registry(), "excl")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read_back.mutability_exclusions, ["dev-*", "latest"]);
}

#[tokio::test]
async fn describe_images_lists_every_image_from_moto() {
    let moto = Moto::start().await;
    let ecr = moto.ecr().await;
    ecr.ensure_repository(
        &registry(),
        "images",
        &RepositorySettings::default(),
        EnsureMode::CreateIfMissing,
    )
    .await
    .unwrap();
    let client = ecr.client("us-east-1");
    let mut digests = Vec::new();
    for i in 0..7 {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": format!("sha256:{i:064x}"),
                "size": 2,
            },
            "layers": [],
        })
        .to_string();
        // moto derives a wrong digest unless it is given one.
        let digest = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(manifest.as_bytes()))
        );
        client
            .put_image()
            .repository_name("images")
            .image_manifest(&manifest)
            .image_tag(format!("v{i}"))
            .image_digest(&digest)
            .send()
            .await
            .unwrap();
        digests.push(digest);
    }
    // moto ignores maxResults and never pages; the fake below covers real paging.
    let images = ecr
        .describe_images_paged(&registry(), "images", 3)
        .await
        .unwrap();
    let mut found: Vec<&str> = images.iter().map(|i| i.digest.as_str()).collect();
    found.sort();
    digests.sort();
    assert_eq!(found, digests);
    for image in &images {
        assert_eq!(image.tags.len(), 1);
        assert_eq!(
            image.media_type.as_deref(),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
        assert!(image.pushed_at.as_deref().unwrap().ends_with('Z'));
    }
    assert!(images.windows(2).all(|w| w[0].pushed_at >= w[1].pushed_at));

    let err = ecr
        .describe_images(&registry(), "no-such-repo")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("RepositoryNotFoundException"));
    let text = err.to_string();
    assert!(
        text.starts_with(
            "DescribeImages no-such-repo in 123456789012/us-east-1: RepositoryNotFoundException: "
        ),
        "{text}"
    );
}

#[tokio::test]
async fn describe_images_follows_every_page_newest_first() {
    let image = |n: u64, pushed: f64| {
        serde_json::json!({
            "imageDigest": format!("sha256:{n:064x}"),
            "imageTags": [format!("t{n}")],
            "imagePushedAt": pushed,
            "imageSizeInBytes": 1000 + n,
            "imageManifestMediaType": "application/vnd.oci.image.index.v1+json",
        })
    };
    let page = |images: Vec<serde_json::Value>, next: Option<&str>| {
        let mut page = serde_json::json!({ "imageDetails": images });
        if let Some(next) = next {
            page["nextToken"] = next.into();
        }
        page
    };
    let pages = vec![
        page(
            vec![image(1, 1_700_000_001.0), image(2, 1_700_000_005.5)],
            Some("1"),
        ),
        page(
            vec![image(3, 1_700_000_003.0), image(4, 1_700_000_005.0)],
            Some("2"),
        ),
        page(vec![image(5, 1_700_000_002.0)], None),
    ];
    let (url, seen) = fake_paging_ecr(pages).await;
    let images = ecr_at(&url)
        .await
        .describe_images_paged(&registry(), "paged", 2)
        .await
        .unwrap();
    let order: Vec<&str> = images.iter().map(|i| i.tags[0].as_str()).collect();
    assert_eq!(order, ["t2", "t4", "t3", "t5", "t1"]);
    assert_eq!(images[0].size, Some(1002));
    assert_eq!(
        images[0].pushed_at.as_deref(),
        Some("2023-11-14T22:13:25.5Z")
    );
    let seen = seen.lock().unwrap();
    let tokens: Vec<Option<&str>> = seen.iter().map(|r| r["nextToken"].as_str()).collect();
    assert_eq!(tokens, [None, Some("1"), Some("2")]);
    assert!(
        seen.iter()
            .all(|r| r["maxResults"] == 2 && r["registryId"] == ACCOUNT)
    );
}

#[tokio::test]
async fn missing_credentials_read_as_such() {
    // Nothing listens on port 1; the call must fail before it would get there.
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(NoCredentials)
        .load()
        .await;
    let ecr = Ecr::from_config(config, Some("http://127.0.0.1:1".into()));
    let err = ecr.authorization_token(&registry()).await.unwrap_err();
    assert!(matches!(err, EcrError::NoCredentials { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "GetAuthorizationToken 123456789012/us-east-1: no AWS credentials found"
    );
    let as_crate_error = crate::Error::from(err);
    assert_eq!(as_crate_error.metric_label(), "ecr");
}

#[tokio::test]
async fn bad_settings_fail_before_any_call() {
    // Port 1: any call would fail with a transport error instead of the setting's own.
    let ecr = ecr_at("http://127.0.0.1:1").await;
    let settings = RepositorySettings {
        repository_policy: Some("{\"Version\": ".into()),
        ..Default::default()
    };
    let err = ecr
        .ensure_repository(&registry(), "app", &settings, EnsureMode::CreateIfMissing)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid repository setting repository policy: not valid JSON"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_api_is_one_line_ending_in_its_cause() {
    // A port nothing listens on: the SDK's dispatch failure, after its own retries.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = ecr_at(&url)
        .await
        .ensure_repository(
            &registry(),
            "app",
            &RepositorySettings::default(),
            EnsureMode::CreateIfMissing,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("app in 123456789012/us-east-1"), "{error}");
    assert!(
        error.ends_with("Connection refused (os error 111)"),
        "{error}"
    );
    assert!(!error.contains("DispatchFailure"), "a Debug dump: {error}");
}
