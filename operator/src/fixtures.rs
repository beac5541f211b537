//! Test fixtures (controller-rs style): a mocked Kubernetes API server that the test answers
//! request by request, in the order the reconciler must make them, while real registries
//! (ferry-testkit) sit behind the sync. A request the scenario did not expect fails the test.

use std::sync::Arc;
use std::time::Duration;

use ferry_registry::retry::RetryPolicy;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

use crate::context::Context;
use crate::crd::{EcrImageMirror, MirrorSpec};
use crate::engine::{AwsSettings, Engine};
use crate::metrics::Metrics;

pub type ApiServerHandle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// Answers the reconciler's API requests; each method expects one request.
pub struct ApiServerVerifier(ApiServerHandle);

/// The namespace every fixture mirror lives in.
pub const NAMESPACE: &str = "team-a";

/// A context on a mocked API server; the registry client retries fast so failure scenarios end
/// quickly, and never reads this machine's docker config.
pub fn context() -> (Arc<Context>, ApiServerVerifier) {
    context_with(AwsSettings::default(), None)
}

/// [`context`] with AWS reached as `aws` says and ECR hosts' registry API at
/// `ecr_registry_url` (a stand-in's registry).
pub fn context_with(
    aws: AwsSettings,
    ecr_registry_url: Option<String>,
) -> (Arc<Context>, ApiServerVerifier) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, NAMESPACE);
    let metrics = Arc::new(Metrics::default());
    let mut builder = ferry_registry::Client::builder();
    if let Some(url) = ecr_registry_url {
        builder = builder.ecr_registry_url(url);
    }
    let base = builder
        .docker_config(false)
        .retry(RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(1),
        })
        .observer(metrics.clone())
        .build()
        .expect("a registry client");
    let engine = Engine::new(base, 4, 2, aws);
    let ctx = Arc::new(Context::new(client, engine, metrics));
    (ctx, ApiServerVerifier(handle))
}

/// A mirror named `name` at generation 1, with the spec `yaml`, never reconciled.
pub fn mirror(name: &str, yaml: &str) -> EcrImageMirror {
    let inner = serde_norway::from_str(yaml).expect("a fixture spec");
    let mut mirror = EcrImageMirror::new(name, MirrorSpec { inner });
    mirror.metadata.namespace = Some(NAMESPACE.into());
    mirror.metadata.uid = Some(format!("uid-{name}"));
    mirror.metadata.generation = Some(1);
    mirror.metadata.resource_version = Some("100".into());
    mirror
}

impl ApiServerVerifier {
    async fn next(
        &mut self,
    ) -> (
        Request<Body>,
        tower_test::mock::SendResponse<Response<Body>>,
    ) {
        tokio::time::timeout(Duration::from_secs(60), self.0.next_request())
            .await
            .expect("the reconciler made no further API request within 60 s")
            .expect("the API client is gone")
    }

    /// Expects the status apply of `mirror`; answers with the object carrying that status and
    /// returns the applied status.
    pub async fn status_apply(&mut self, mirror: &EcrImageMirror) -> Value {
        let (request, send) = self.next().await;
        let name = mirror.metadata.name.as_deref().unwrap_or_default();
        assert_eq!(request.method(), Method::PATCH);
        let uri = request.uri().to_string();
        assert!(
            uri.starts_with(&format!(
                "/apis/ferry.dev/v1alpha1/namespaces/{NAMESPACE}/ecrimagemirrors/{name}/status?"
            )),
            "{uri}"
        );
        assert!(
            uri.contains("fieldManager=ferry-operator") && uri.contains("force=true"),
            "{uri}"
        );
        let patch = body_json(request).await;
        assert_eq!(patch["kind"], "EcrImageMirror");
        let mut answer = serde_json::to_value(mirror).expect("a mirror serializes");
        answer["status"] = patch["status"].clone();
        send.send_response(json_response(StatusCode::OK, &answer));
        patch["status"].clone()
    }

    /// Expects an event (created, or patched as a repeat of a recent one); returns it.
    pub async fn event(&mut self) -> Value {
        let (request, send) = self.next().await;
        let uri = request.uri().path().to_string();
        assert!(
            uri.starts_with(&format!(
                "/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events"
            )),
            "{} {uri}",
            request.method()
        );
        let event = body_json(request).await;
        send.send_response(json_response(StatusCode::CREATED, &event));
        event
    }

    /// Expects a GET of Secret `name`; answers with a docker config Secret holding `config`,
    /// or 404 when `None`.
    pub async fn secret(&mut self, name: &str, config: Option<Value>) {
        let (request, send) = self.next().await;
        assert_eq!(request.method(), Method::GET);
        assert_eq!(
            request.uri().path(),
            format!("/api/v1/namespaces/{NAMESPACE}/secrets/{name}")
        );
        let Some(config) = config else {
            let status = json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure",
                "reason": "NotFound", "code": 404,
                "message": format!("secrets \"{name}\" not found"),
            });
            send.send_response(json_response(StatusCode::NOT_FOUND, &status));
            return;
        };
        let secret = docker_config_secret(name, &config, "7");
        send.send_response(json_response(StatusCode::OK, &secret));
    }

    /// Plays the API server for a running controller: answers the lists with `mirror` and no
    /// Secrets, keeps watches open, and answers status applies and events until `applies`
    /// status applies and `published` events were made; returns them and the requests seen.
    pub async fn serve_controller(
        &mut self,
        mirror: &EcrImageMirror,
        applies: usize,
        published: usize,
    ) -> (Vec<Value>, Vec<Value>, Vec<String>) {
        let (mut statuses, mut events, mut requests) = (Vec::new(), Vec::new(), Vec::new());
        // Answers to watches are never sent: the watch stays open, as on a quiet cluster.
        let mut watches = Vec::new();
        while statuses.len() < applies || events.len() < published {
            let (request, send) = self.next().await;
            let (method, uri) = (request.method().clone(), request.uri().clone());
            let query = uri.query().unwrap_or_default().to_string();
            requests.push(format!("{method} {}", uri.path()));
            let path = uri.path().to_string();
            if query.contains("watch=true") {
                watches.push(send);
            } else if method == Method::GET && path.ends_with("/ecrimagemirrors") {
                let list = json!({
                    "apiVersion": "ferry.dev/v1alpha1", "kind": "EcrImageMirrorList",
                    "metadata": {"resourceVersion": "100"},
                    "items": [serde_json::to_value(mirror).expect("a mirror serializes")],
                });
                send.send_response(json_response(StatusCode::OK, &list));
            } else if method == Method::GET && path.ends_with("/secrets") {
                let list = json!({
                    "apiVersion": "v1", "kind": "SecretList",
                    "metadata": {"resourceVersion": "100"}, "items": [],
                });
                send.send_response(json_response(StatusCode::OK, &list));
            } else if method == Method::PATCH && path.ends_with("/status") {
                let patch = body_json(request).await;
                let mut answer = serde_json::to_value(mirror).expect("a mirror serializes");
                answer["status"] = patch["status"].clone();
                send.send_response(json_response(StatusCode::OK, &answer));
                statuses.push(patch["status"].clone());
            } else if path.contains("/events") {
                let event = body_json(request).await;
                send.send_response(json_response(StatusCode::CREATED, &event));
                events.push(event);
            } else {
                panic!("unexpected request {method} {uri}");
            }
        }
        (statuses, events, requests)
    }

    /// Fails if the reconciler makes any further request within `wait`.
    pub async fn no_more_requests(mut self, wait: Duration) {
        if let Ok(Some((request, _))) = tokio::time::timeout(wait, self.0.next_request()).await {
            panic!("unexpected request {} {}", request.method(), request.uri());
        }
    }
}

async fn body_json(request: Request<Body>) -> Value {
    let bytes = request
        .into_body()
        .collect_bytes()
        .await
        .expect("a request body");
    serde_json::from_slice(&bytes).expect("a JSON request body")
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string().into_bytes()))
        .expect("a response")
}

/// The condition `type_` of an applied status.
pub fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// A `kubernetes.io/dockerconfigjson` Secret `name` holding `config`, at `version`.
pub fn docker_config_secret(name: &str, config: &Value, version: &str) -> Value {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(config.to_string());
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": name, "namespace": NAMESPACE, "resourceVersion": version},
        "data": {".dockerconfigjson": encoded},
    })
}

/// Puts Secret `name` holding `config` into the controller's watch of Secrets, as the watch
/// does when the API server reports it created or changed.
pub fn watched_secret(ctx: &Context, name: &str, config: &Value, version: &str) {
    let secret: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(docker_config_secret(name, config, version))
            .expect("a Secret deserializes");
    let mut writer = ctx.secrets_writer.lock().expect("the writer's lock");
    writer
        .as_mut()
        .expect("the watch's writer, not taken by a running controller")
        .apply_watcher_event(&kube::runtime::watcher::Event::Apply(secret));
}
