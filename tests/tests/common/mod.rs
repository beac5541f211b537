//! Shared set-up for the end-to-end tests: clients, references and a built image pushed into a
//! real registry.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use ferry_registry::auth::{Credentials, StaticCredentials};
use ferry_registry::retry::RetryPolicy;
use ferry_registry::{Client, Reference};
use ferry_testkit::{BuiltImage, ImageFormat, ImageSpec, TestRegistry};

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
