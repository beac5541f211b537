//! Shared set-up for the end-to-end tests: clients, references and a built image pushed into a
//! real registry.

#![allow(dead_code, clippy::unwrap_used)]

pub mod faults;

use std::sync::Arc;
use std::time::Duration;

use ferry_registry::auth::{Credentials, StaticCredentials};
use ferry_registry::ecr::{
    Ecr, EcrCredentials, EcrHost, EcrOptions, EnsureMode, RepositorySettings,
};
use ferry_registry::retry::RetryPolicy;
use ferry_registry::{Client, Reference};
use ferry_testkit::ecr::EcrStandIn;
use ferry_testkit::push::RawClient;
use ferry_testkit::{BuiltImage, ImageFormat, ImageSpec, TestRegistry, skopeo};

/// Fast retries so fault tests finish quickly; Retry-After is still honoured.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(5),
    }
}

/// A client that ignores the machine's docker config.
pub fn client() -> Client {
    Client::builder()
        .docker_config(false)
        .retry(quick_retries())
        .build()
        .unwrap()
}

/// A client holding Basic credentials for `hosts`.
pub fn client_with(hosts: &[&str], user: &str, pass: &str) -> Client {
    let creds = Arc::new(StaticCredentials::new());
    for host in hosts {
        creds.set(*host, Credentials::basic(user, pass));
    }
    Client::builder()
        .docker_config(false)
        .credentials(creds)
        .retry(quick_retries())
        .build()
        .unwrap()
}

pub fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

pub fn spec(platforms: &[&str], format: ImageFormat, seed: u64) -> ImageSpec {
    ImageSpec {
        platforms: platforms.iter().map(|p| p.to_string()).collect(),
        layers: 3,
        layer_size: 64 * 1024,
        shared_layers: 1,
        format,
        seed,
    }
}

pub const THREE_PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm64", "linux/arm/v7"];

/// Builds a three-platform image and pushes it to `registry` as `repo:tag`.
pub async fn seeded(
    registry: &TestRegistry,
    repo: &str,
    tag: &str,
    format: ImageFormat,
) -> BuiltImage {
    let image = ferry_testkit::build(&spec(&THREE_PLATFORMS, format, 7)).unwrap();
    image.push(&registry.url(), repo, tag, None).await.unwrap();
    image
}

/// Copies `app:v1` from the registry at `from` to the one at `to` (hosts, possibly proxies).
pub async fn copy_app_v1(
    from: &str,
    to: &str,
    options: ferry_registry::copy::CopyOptions,
) -> Result<ferry_registry::copy::CopyReport, ferry_registry::copy::CopyError> {
    ferry_registry::copy(
        &client(),
        &reference(&format!("{from}/app:v1")),
        &reference(&format!("{to}/app:v1")),
        options,
    )
    .await
}

pub fn sha256(bytes: &[u8]) -> String {
    ferry_testkit::sha256_digest(bytes)
}

/// Requests a counting proxy saw, as `METHOD path?query`, in order.
pub fn seen(proxy: &ferry_testkit::FaultProxy) -> Vec<String> {
    proxy
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path_and_query))
        .collect()
}

/// Asserts that `repo:tag` at `dst` is `image`, byte for byte: the index, every child manifest
/// (skopeo as the witness) and every blob.
pub async fn assert_identical_at(
    dst: &TestRegistry,
    creds: Option<(&str, &str)>,
    repo: &str,
    tag: &str,
    image: &BuiltImage,
) {
    let raw = skopeo::inspect_raw(&format!("{}/{repo}:{tag}", dst.host()), creds)
        .await
        .unwrap();
    assert_eq!(
        sha256(&raw),
        image.index.digest,
        "index digest at the destination"
    );
    for (platform, manifest) in &image.manifests {
        let raw = skopeo::inspect_raw(&format!("{}/{repo}@{}", dst.host(), manifest.digest), creds)
            .await
            .unwrap();
        assert_eq!(sha256(&raw), manifest.digest, "{platform} manifest digest");
    }
    let raw_client = RawClient::new(&dst.url(), creds).unwrap();
    for blob in &image.blobs {
        assert!(
            raw_client.blob_exists(repo, &blob.digest).await.unwrap(),
            "blob {} missing at the destination",
            blob.digest
        );
    }
}

/// The ECR API of the stand-in, with its static test credentials.
pub async fn ecr_for(stand_in: &EcrStandIn) -> Ecr {
    Ecr::new(EcrOptions {
        region: Some(stand_in.region().to_string()),
        role_arn: None,
        endpoint_url: Some(stand_in.api_url()),
        credentials: Some(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        )),
    })
    .await
    .unwrap()
}

/// [`ecr_for`], with `repo` created at the stand-in with default settings.
pub async fn ecr_with_repository(stand_in: &EcrStandIn, repo: &str) -> Ecr {
    let ecr = ecr_for(stand_in).await;
    ecr.ensure_repository(
        &ecr_host(stand_in),
        repo,
        &RepositorySettings::default(),
        EnsureMode::CreateIfMissing,
    )
    .await
    .unwrap();
    ecr
}

/// A client that reaches the stand-in's ECR host at `registry_url` (its registry, or a proxy
/// in front of it) with tokens from `credentials`.
pub fn ecr_client(registry_url: &str, credentials: Arc<EcrCredentials>) -> Client {
    Client::builder()
        .docker_config(false)
        .credentials(credentials)
        .ecr_registry_url(registry_url)
        .retry(quick_retries())
        .build()
        .unwrap()
}

pub fn ecr_host(stand_in: &EcrStandIn) -> EcrHost {
    EcrHost::parse(&stand_in.ecr_host()).unwrap()
}
