//! `KubeApi`: an in-process stand-in for the Kubernetes API server, enough for `kubectl` and a
//! kube-rs controller: discovery, a few built-in resources, CRDs and their custom resources,
//! get/list/watch/create/update/patch/server-side apply/delete, the status subresource,
//! server-side table printing, and a log of every request in RBAC terms.
//!
//! Independent of any Kubernetes client library on purpose: it is what a client is tested
//! against. Its own tests hold it against the real `kubectl`.

mod apply;
mod discovery;
mod jsonpath;
mod log;
mod managed;
mod patch;
mod protobuf;
mod resources;
mod selector;
mod server;
mod status;
mod store;
mod strategy;
mod table;
mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

pub use log::KubeRequest;

use crate::server::{self as http, ServerTask};
use server::State;

/// Settings of a [`KubeApi`]; `Default` suits tests.
#[derive(Clone, Debug)]
pub struct KubeApiOptions {
    /// Fixed port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
    /// The bearer token in the kubeconfig. Requests with another credential get 401; requests
    /// without one are let through, as kubectl sends no token over plain HTTP.
    pub token: String,
    /// How often watches with `allowWatchBookmarks=true` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Watch events kept for resuming watches; older resourceVersions get 410 Gone.
    pub history_limit: usize,
}

impl Default for KubeApiOptions {
    fn default() -> Self {
        KubeApiOptions {
            port: None,
            token: "ferry-testkit-token".to_string(),
            bookmark_interval: Duration::from_secs(1),
            history_limit: 10_000,
        }
    }
}

/// A running stand-in; dropping it (or [`KubeApi::stop`]) closes the listener, every
/// connection and every watch.
pub struct KubeApi {
    addr: SocketAddr,
    state: Arc<State>,
    _server: ServerTask,
}

impl KubeApi {
    pub async fn start() -> anyhow::Result<KubeApi> {
        Self::start_with(KubeApiOptions::default()).await
    }

    pub async fn start_with(options: KubeApiOptions) -> anyhow::Result<KubeApi> {
        let bind = format!("127.0.0.1:{}", options.port.unwrap_or(0));
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .with_context(|| format!("binding the Kubernetes API stand-in to {bind}"))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            store: Mutex::new(store::Store::new(options.history_limit)),
            log: Mutex::new(Vec::new()),
            token: options.token,
            bookmark_interval: options.bookmark_interval,
            addr,
        });
        let handler_state = state.clone();
        let server = http::spawn(listener, move |req| {
            let state = handler_state.clone();
            async move { server::handle(state, req).await }
        });
        Ok(KubeApi {
            addr,
            state,
            _server: server,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// A kubeconfig for this server: cluster, user with the bearer token, and a current
    /// context whose namespace is `default`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: ferry-testkit\n  cluster:\n    server: {url}\n\
             users:\n- name: ferry-testkit\n  user:\n    token: {token}\n\
             contexts:\n- name: ferry-testkit\n  context:\n    cluster: ferry-testkit\n    user: ferry-testkit\n    namespace: default\n\
             current-context: ferry-testkit\npreferences: {{}}\n",
            url = self.url(),
            token = self.state.token,
        )
    }

    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.kubeconfig())
            .with_context(|| format!("writing kubeconfig {}", path.display()))
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<KubeRequest> {
        self.state
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn clear_requests(&self) {
        self.state
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The stored objects of `group`'s `resource` (`""` for core; any served version), in
    /// `namespace` or, with `None`, everywhere. Empty if the resource is unknown.
    pub fn objects(&self, group: &str, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        let store = self.state.store();
        let Some(ty) = store
            .types()
            .iter()
            .find(|t| t.group == group && t.plural == resource)
            .cloned()
        else {
            return Vec::new();
        };
        store.list(&ty, namespace)
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state.store().resource_version()
    }

    /// Forgets the watch history, as etcd compaction does: watches resuming from any older
    /// resourceVersion get 410 Gone, and clients must list again.
    pub fn compact(&self) {
        self.state.store().compact();
    }

    pub fn stop(self) {}
}
