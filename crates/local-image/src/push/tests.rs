//! Mounting known blobs instead of exporting: against a small in-process registry that links
//! blobs per repository, mounts (201) only what the source repository holds and otherwise opens
//! an upload session (202), as docker-registry and ECR do.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::cache::{CachedImage, PushCache};
use super::mount::{Presence, ensure};
use super::reuse_cached;
use ferry_registry::client::Client;
use ferry_registry::digest::Digest;
use ferry_registry::reference::Reference;

/// Which repository holds which blob, and every request seen ("METHOD /path?query").
#[derive(Default)]
struct State {
    linked: HashSet<(String, String)>,
    requests: Vec<String>,
}

struct FakeRegistry {
    host: String,
    state: Arc<Mutex<State>>,
}

impl FakeRegistry {
    async fn start() -> FakeRegistry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, &request)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        FakeRegistry { host, state }
    }

    fn link(&self, repository: &str, digest: &Digest) {
        let mut state = self.state.lock().unwrap();
        state
            .linked
            .insert((repository.to_string(), digest.to_string()));
    }

    fn has(&self, repository: &str, digest: &Digest) -> bool {
        let state = self.state.lock().unwrap();
        state
            .linked
            .contains(&(repository.to_string(), digest.to_string()))
    }

    /// The requests seen so far, then forgets them.
    fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().requests)
    }

    fn repository(&self, name: &str) -> ferry_registry::client::Repository {
        let client = Client::builder().build().unwrap();
        client.repository(&Reference::parse(&format!("{}/{name}", self.host)).unwrap())
    }
}

fn answer(state: &Mutex<State>, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let mut state = state.lock().unwrap();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    state
        .requests
        .push(format!("{} {path}?{query}", request.method()));
    let status = |code: StatusCode| {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = code;
        response
    };
    let repo_of = |marker: &str| {
        path.strip_prefix("/v2/")
            .and_then(|p| p.split_once(marker))
            .map(|(repo, rest)| (repo.to_string(), rest.to_string()))
    };
    match request.method().as_str() {
        "HEAD" => match repo_of("/blobs/") {
            Some(key) if state.linked.contains(&key) => status(StatusCode::OK),
            _ => status(StatusCode::NOT_FOUND),
        },
        "POST" => {
            let Some((repo, _)) = repo_of("/blobs/uploads/") else {
                return status(StatusCode::NOT_FOUND);
            };
            let param = |name: &str| {
                url::form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            };
            // A repository the caller may not pull from, as a token server would deny it.
            if param("from").as_deref() == Some("private") {
                return status(StatusCode::FORBIDDEN);
            }
            if let (Some(digest), Some(from)) = (param("mount"), param("from"))
                && state.linked.contains(&(from, digest.clone()))
            {
                state.linked.insert((repo, digest));
                return status(StatusCode::CREATED);
            }
            let mut response = status(StatusCode::ACCEPTED);
            response.headers_mut().insert(
                http::header::LOCATION,
                format!("/v2/{repo}/blobs/uploads/session-1")
                    .parse()
                    .unwrap(),
            );
            response
        }
        "DELETE" => status(StatusCode::NO_CONTENT),
        _ => status(StatusCode::METHOD_NOT_ALLOWED),
    }
}

fn digests() -> (Digest, Digest, Digest) {
    (
        Digest::sha256_of(b"config"),
        Digest::sha256_of(b"layer 1"),
        Digest::sha256_of(b"layer 2"),
    )
}

/// A registry where `linked_in` (if any) holds one layer, a cache that says `recorded` holds
/// it, and the destination repository team/b.
async fn one_layer(
    linked_in: Option<&str>,
    recorded: &str,
) -> (
    FakeRegistry,
    PushCache,
    ferry_registry::client::Repository,
    Digest,
) {
    let registry = FakeRegistry::start().await;
    let (_, layer, _) = digests();
    if let Some(repository) = linked_in {
        registry.link(repository, &layer);
    }
    let cache = PushCache::disabled();
    let dst = registry.repository("team/b");
    cache.record_holder(dst.registry(), recorded, [&layer]);
    (registry, cache, dst, layer)
}

#[tokio::test]
async fn a_blob_another_repository_holds_is_mounted_without_a_head() {
    let (registry, cache, dst, layer) = one_layer(Some("team/a"), "team/a").await;

    assert_eq!(
        ensure(&dst, &cache, &layer).await.unwrap(),
        Presence::Mounted
    );
    assert!(registry.has("team/b", &layer));
    let requests = registry.take_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].starts_with("POST /v2/team/b/blobs/uploads/?mount=sha256"));
    assert!(requests[0].ends_with("from=team%2Fa"), "{requests:?}");
}

#[tokio::test]
async fn a_refused_mount_cancels_its_session_forgets_the_source_and_says_absent() {
    // The cache says team/a holds it, but the registry no longer has it there.
    let (registry, cache, dst, layer) = one_layer(None, "team/a").await;

    assert_eq!(
        ensure(&dst, &cache, &layer).await.unwrap(),
        Presence::Absent
    );
    let requests = registry.take_requests();
    let methods = methods(&requests);
    // The mount, the cancelled session it opened instead, and a last look in the destination.
    assert_eq!(methods, ["POST", "DELETE", "HEAD"], "{requests:?}");
    assert!(requests[1].starts_with("DELETE /v2/team/b/blobs/uploads/session-1"));
    assert!(cache.holders(dst.registry(), &layer).is_empty());
}

#[tokio::test]
async fn a_denied_mount_is_no_error_the_blob_is_just_sent() {
    let (registry, cache, dst, layer) = one_layer(Some("private"), "private").await;

    assert_eq!(
        ensure(&dst, &cache, &layer).await.unwrap(),
        Presence::Absent
    );
    let requests = registry.take_requests();
    let methods = methods(&requests);
    assert_eq!(methods, ["POST", "HEAD"], "{requests:?}");
    assert!(cache.holders(dst.registry(), &layer).is_empty());
}

#[tokio::test]
async fn a_blob_known_to_be_in_the_destination_is_checked_with_a_head() {
    let (registry, cache, dst, layer) = one_layer(Some("team/b"), "team/b").await;

    assert_eq!(
        ensure(&dst, &cache, &layer).await.unwrap(),
        Presence::Present
    );
    assert_eq!(
        registry.take_requests(),
        [format!("HEAD /v2/team/b/blobs/{layer}?")]
    );
}

/// The method of each request, in order.
fn methods(requests: &[String]) -> Vec<&str> {
    requests
        .iter()
        .map(|r| r.split(' ').next().unwrap())
        .collect()
}

/// The manifest ferry would have pushed for an image of `config` and two layers.
fn cached_image(config: &Digest, layers: [&Digest; 2]) -> CachedImage {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": ferry_registry::media_type::DOCKER_MANIFEST,
        "config": {"mediaType": ferry_registry::media_type::DOCKER_CONFIG, "size": 6, "digest": config},
        "layers": layers.iter().map(|d| serde_json::json!({
            "mediaType": ferry_registry::media_type::DOCKER_LAYER_GZIP, "size": 7, "digest": d,
        })).collect::<Vec<_>>(),
    });
    CachedImage {
        manifest: manifest.to_string(),
        media_type: ferry_registry::media_type::DOCKER_MANIFEST.to_string(),
        size: None,
    }
}

/// Reuses the cached image of config + two layers, pushed before to team/a (which the registry
/// says holds `linked` of them), for team/b.
async fn reuse_for_team_b(linked: usize) -> (FakeRegistry, Option<super::Reused>) {
    let registry = FakeRegistry::start().await;
    let (config, one, two) = digests();
    for d in [&config, &one, &two].into_iter().take(linked) {
        registry.link("team/a", d);
    }
    let cache = PushCache::disabled();
    let dst = registry.repository("team/b");
    cache.set_image("img|gzip".into(), cached_image(&config, [&one, &two]));
    cache.record_holder(dst.registry(), "team/a", [&config, &one, &two]);
    let tags = ["v1".to_string()];
    let reused = reuse_cached(&dst, &cache, "img|gzip", &tags, &[None])
        .await
        .unwrap();
    (registry, reused)
}

#[tokio::test]
async fn a_known_image_goes_to_a_new_repository_by_mounts_alone() {
    let (registry, reused) = reuse_for_team_b(3).await;
    let reused = reused.expect("every blob mountable: no export needed");
    // The config and both layers.
    assert_eq!(reused.mounted, [false, true, true]);
    let requests = registry.take_requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert!(
        requests.iter().all(|r| r.contains("?mount=")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn one_blob_that_cannot_be_mounted_means_an_export() {
    // team/a lost layer two.
    let (registry, reused) = reuse_for_team_b(2).await;
    assert!(
        reused.is_none(),
        "a blob is missing: the image must be read"
    );
    assert!(!registry.has("team/b", &digests().2));
    // Nothing but blob requests: no manifest was pushed.
    assert!(
        registry
            .take_requests()
            .iter()
            .all(|r| r.contains("/blobs/")),
    );
}
