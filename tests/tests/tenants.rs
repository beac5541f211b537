//! Many tenants on one client: derived clients share the connection pool and keep their tokens
//! apart; a tenant's docker config comes from bytes and may not run programs; a CA may be given
//! as PEM bytes.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use ferry_registry::auth::{
    Anonymous, Credentials, DockerConfig, DockerConfigCredentials, HelperPolicy, StaticCredentials,
};
use ferry_registry::copy::{CopyOptions, CopyReport};
use ferry_registry::{Client, Error, copy};
use ferry_testkit::token::token_subject;
use ferry_testkit::{BuiltImage, FaultProxy, ImageFormat, Recorded, TestRegistry};

const USERS: &[(&str, &str)] = &[("alice", "pa"), ("bob", "pb"), ("seeder", "ps")];

/// A token registry that refuses anonymous pulls, holding two different images in one
/// repository (`src/app:a` and `src/app:b`), behind a recording proxy.
async fn shared_source() -> (TestRegistry, FaultProxy, BuiltImage, BuiltImage) {
    let registry = TestRegistry::token(USERS, false).await.unwrap();
    let a = ferry_testkit::build(&spec(&THREE_PLATFORMS, ImageFormat::Oci, 31)).unwrap();
    let b = ferry_testkit::build(&spec(&THREE_PLATFORMS, ImageFormat::Oci, 32)).unwrap();
    for (image, tag) in [(&a, "a"), (&b, "b")] {
        image
            .push(&registry.url(), "src/app", tag, Some(("seeder", "ps")))
            .await
            .unwrap();
    }
    registry.token_issuer().unwrap().clear_requests();
    let proxy = FaultProxy::start(&registry.url()).await.unwrap();
    (registry, proxy, a, b)
}

fn tenant(base: &Client, registry: &str, user: &str, pass: &str) -> Client {
    let creds = Arc::new(StaticCredentials::new());
    creds.set(registry, Credentials::basic(user, pass));
    base.with_credentials(creds)
}

/// Copies `src/app:TAG` to `USER/app:TAG` on the same registry, through the proxy.
async fn copy_tag(
    client: &Client,
    proxy: &FaultProxy,
    tag: &str,
    user: &str,
) -> Result<CopyReport, Error> {
    let host = proxy.host();
    let from = reference(&format!("{host}/src/app:{tag}"));
    let to = reference(&format!("{host}/{user}/app:{tag}"));
    Ok(copy(client, &from, &to, CopyOptions::default()).await?)
}

/// Digests only `image` holds (its index, manifests and blobs), as they appear in URLs.
fn digests(image: &BuiltImage) -> HashSet<String> {
    std::iter::once(&image.index)
        .chain(image.manifests.iter().map(|(_, m)| m))
        .chain(&image.blobs)
        .map(|blob| blob.digest.clone())
        .collect()
}

/// Whose request this was: tenant A's when it touches A's destination, tag or digests.
fn owner<'a>(request: &Recorded, tenants: &[(&'a str, &str, &HashSet<String>)]) -> Option<&'a str> {
    let path = request.path_and_query.as_str();
    tenants.iter().find_map(|(user, tag, only_theirs)| {
        let theirs = path.starts_with(&format!("/v2/{user}/"))
            || path.ends_with(&format!("/src/app/manifests/{tag}"))
            || only_theirs.iter().any(|d| path.contains(d.as_str()));
        theirs.then_some(*user)
    })
}

#[tokio::test]
async fn two_tenants_on_one_client_each_use_only_their_own_tokens() {
    let (registry, proxy, a, b) = shared_source().await;
    let base = client();
    let alice = tenant(&base, &proxy.host(), "alice", "pa");
    let bob = tenant(&base, &proxy.host(), "bob", "pb");
    assert!(alice.shares_transport_with(&base) && bob.shares_transport_with(&alice));

    let (report_a, report_b) = tokio::join!(
        copy_tag(&alice, &proxy, "a", "alice"),
        copy_tag(&bob, &proxy, "b", "bob"),
    );
    assert_eq!(report_a.unwrap().digest.as_str(), a.index.digest);
    assert_eq!(report_b.unwrap().digest.as_str(), b.index.digest);

    // Both pulled the same repository, so both asked for the same scope, each with its own
    // credentials: one shared cache would have asked once and handed one user's token to both.
    let issued = registry.token_issuer().unwrap().requests();
    for user in ["alice", "bob"] {
        assert!(
            issued.iter().any(|t| t.user.as_deref() == Some(user)
                && t.status == 200
                && t.scopes
                    .iter()
                    .any(|s| s.starts_with("repository:src/app:"))),
            "no src/app token for {user}: {issued:?}"
        );
    }
    assert!(issued.iter().all(|t| t.user.is_some()), "{issued:?}");

    let (only_a, only_b) = (digests(&a), digests(&b));
    let tenants = [("alice", "a", &only_a), ("bob", "b", &only_b)];
    let mut seen = Vec::new();
    for request in proxy.requests() {
        let Some(auth) = request.headers.get("authorization") else {
            continue;
        };
        let Some(user) = owner(&request, &tenants) else {
            continue;
        };
        let subject = token_subject(auth.to_str().unwrap());
        assert_eq!(
            subject.as_deref(),
            Some(user),
            "{} {} was {user}'s but carried another token",
            request.method,
            request.path_and_query
        );
        seen.push((user, request.path_and_query.starts_with("/v2/src/app/")));
    }
    // The witness saw both tenants' authorised reads of the shared repository.
    for user in ["alice", "bob"] {
        assert!(seen.contains(&(user, true)), "no src/app request of {user}");
        assert!(seen.contains(&(user, false)), "no push request of {user}");
    }
}

#[tokio::test]
async fn a_tenant_without_credentials_is_refused_where_another_is_allowed() {
    let (_registry, proxy, a, _b) = shared_source().await;
    let base = client();
    let alice = tenant(&base, &proxy.host(), "alice", "pa");
    let nobody = base.with_credentials(Arc::new(Anonymous));
    let source = reference(&format!("{}/src/app", proxy.host()));

    // Alice goes first, so her token is cached when the other tenant asks for the same scope.
    let found = alice.repository(&source).head_manifest("a").await.unwrap();
    assert_eq!(found.map(|d| d.digest.to_string()), Some(a.index.digest));
    for refused in [&nobody, &base] {
        let err = refused.repository(&source).head_manifest("a").await;
        assert!(is_refusal(&err), "expected a refusal, got {err:?}");
    }
    let err = copy_tag(&nobody, &proxy, "a", "nobody").await;
    assert!(is_refusal(&err), "expected a refusal, got {err:?}");
}

fn is_refusal<T: std::fmt::Debug>(result: &Result<T, Error>) -> bool {
    match result {
        Err(Error::Auth { .. }) => true,
        Err(other) => other.to_string().contains("401"),
        Ok(_) => false,
    }
}

#[tokio::test]
async fn a_tenant_secret_in_the_legacy_dockercfg_form_authenticates() {
    let (_registry, proxy, a, _b) = shared_source().await;
    // The `.dockercfg` key of a `kubernetes.io/dockercfg` Secret: no `auths` wrapper.
    let secret = format!(
        r#"{{"{}": {{"username": "alice", "password": "pa", "email": "alice@example.com"}}}}"#,
        proxy.host()
    );
    let config = DockerConfig::from_slice(
        secret.as_bytes(),
        "secret team-a/pull",
        HelperPolicy::Refuse,
    )
    .unwrap();
    let alice = client().with_credentials(Arc::new(DockerConfigCredentials::from_config(config)));
    let report = copy_tag(&alice, &proxy, "a", "alice").await.unwrap();
    assert_eq!(report.digest.as_str(), a.index.digest);
}

#[test]
fn a_tenant_secret_naming_a_credential_helper_is_refused() {
    for (secret, field) in [
        (r#"{"auths": {}, "credsStore": "desktop"}"#, "credsStore"),
        (r#"{"credHelpers": {"ghcr.io": "gcloud"}}"#, "credHelpers"),
    ] {
        let err = DockerConfig::from_slice(
            secret.as_bytes(),
            "secret team-b/pull",
            HelperPolicy::Refuse,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(field) && err.contains("secret team-b/pull"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_ca_given_as_pem_bytes_reaches_a_tls_registry() {
    let registry = TestRegistry::anonymous_tls().await.unwrap();
    let image = seeded(&registry, "app", "v1", ImageFormat::Oci).await;
    let source = reference(&format!("{}/app", registry.host()));
    let pem = std::fs::read(registry.ca_pem_path().unwrap()).unwrap();

    let untrusting = client().repository(&source).head_manifest("v1").await;
    assert!(
        untrusting.is_err(),
        "reached without its CA: {untrusting:?}"
    );

    let trusting = Client::builder()
        .docker_config(false)
        .retry(quick_retries())
        .ca_pem(pem)
        .build()
        .unwrap();
    let found = trusting
        .repository(&source)
        .head_manifest("v1")
        .await
        .unwrap();
    assert_eq!(
        found.map(|d| d.digest.to_string()),
        Some(image.index.digest)
    );
}

#[test]
fn a_bad_ca_pem_fails_the_build_naming_it() {
    let none = Client::builder()
        .ca_pem(b"not a certificate".to_vec())
        .build();
    let err = none.err().unwrap().to_string();
    assert!(
        err.contains("CA PEM #1") && err.contains("no PEM certificates"),
        "{err}"
    );

    let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let err = Client::builder()
        .ca_pem(garbage.to_vec())
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("CA PEM #1") && err.contains("malformed"),
        "{err}"
    );
}
