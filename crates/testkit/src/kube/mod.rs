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
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use log::KubeRequest;

use crate::server::{self as http, ServerTask};
use crate::tls::TlsFiles;
use server::State;

/// Settings of a [`KubeApi`]; `Default` suits tests.
#[derive(Clone, Debug)]
pub struct KubeApiOptions {
    /// Fixed port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
    /// The bearer token in the kubeconfig. Requests with another credential get 401; requests
    /// without one are let through, as kubectl sends no token over plain HTTP.
    pub token: String,
    /// Serve HTTPS with a certificate from a CA generated at start (in the kubeconfig as
    /// `certificate-authority-data`). Then the token is required: kubectl sends it over TLS.
    pub tls: bool,
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
            tls: false,
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
    tls: Option<TlsFiles>,
    _server: ServerTask,
    // Declared last so the certificate files outlive the server that read them.
    _tls_dir: Option<tempfile::TempDir>,
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
        let (tls_dir, tls, acceptor) = if options.tls {
            let dir = tempfile::Builder::new()
                .prefix("ferry-kube-tls-")
                .tempdir()?;
            let files = crate::tls::generate(dir.path(), &[])?;
            let acceptor = tls_acceptor(&files)?;
            (Some(dir), Some(files), Some(acceptor))
        } else {
            (None, None, None)
        };
        let state = Arc::new(State {
            store: Mutex::new(store::Store::new(options.history_limit)),
            log: Mutex::new(Vec::new()),
            token: options.token,
            require_token: options.tls,
            bookmark_interval: options.bookmark_interval,
            addr,
        });
        let handler_state = state.clone();
        let server = http::spawn(listener, acceptor, move |req| {
            let state = handler_state.clone();
            async move { server::handle(state, req).await }
        });
        Ok(KubeApi {
            addr,
            state,
            tls,
            _server: server,
            _tls_dir: tls_dir,
        })
    }

    /// `http://127.0.0.1:PORT`, or `https://…` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// With TLS: the PEM of the CA that signed the server's certificate.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca_pem.as_path())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// A kubeconfig for this server: cluster, user with the bearer token, and a current
    /// context whose namespace is `default`.
    pub fn kubeconfig(&self) -> anyhow::Result<String> {
        let ca = match self.ca_pem_path() {
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("reading the test CA {}", path.display()))?;
                format!("    certificate-authority-data: {}\n", STANDARD.encode(pem))
            }
            None => String::new(),
        };
        Ok(format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: ferry-testkit\n  cluster:\n    server: {url}\n{ca}\
             users:\n- name: ferry-testkit\n  user:\n    token: {token}\n\
             contexts:\n- name: ferry-testkit\n  context:\n    cluster: ferry-testkit\n    user: ferry-testkit\n    namespace: default\n\
             current-context: ferry-testkit\npreferences: {{}}\n",
            url = self.url(),
            token = self.state.token,
        ))
    }

    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.kubeconfig()?)
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

/// HTTP/1.1 only: clients that offer h2 in ALPN fall back to it.
fn tls_acceptor(files: &TlsFiles) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(&files.server_cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", files.server_cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&files.server_key)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", files.server_key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
