//! `WanRegistry`: a test registry as a client across the internet sees it — reached only through
//! a [`WanProxy`], with upload `Location`s pointing at the proxy too.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::registry::{RegistryAuth, RegistryOptions, TestRegistry};
use crate::wan::{WanConfig, WanProxy, WanStats};

pub struct WanRegistry {
    // Declared first: the proxy stops before the registry behind it.
    proxy: WanProxy,
    registry: TestRegistry,
}

impl WanRegistry {
    /// An anonymous TLS registry behind a proxy with `wan`'s latency and rate.
    pub async fn start(wan: WanConfig) -> anyhow::Result<WanRegistry> {
        Self::start_with(
            RegistryOptions::new(RegistryAuth::Anonymous).with_tls(),
            wan,
            None,
        )
        .await
    }

    /// Any registry (TLS or not, any auth) behind a proxy listening on `proxy_port` (`None`: a
    /// free one). The registry's public URL is set to the proxy unless `registry` sets one.
    pub async fn start_with(
        mut registry: RegistryOptions,
        wan: WanConfig,
        proxy_port: Option<u16>,
    ) -> anyhow::Result<WanRegistry> {
        // Bind first: the registry must know the proxy's address before it starts.
        let port = proxy_port.unwrap_or(0);
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding the WAN proxy to 127.0.0.1:{port}"))?;
        let proxy_addr = listener.local_addr()?;
        if registry.public_url.is_none() {
            let scheme = if registry.tls.is_some() {
                "https"
            } else {
                "http"
            };
            registry.public_url = Some(format!("{scheme}://{proxy_addr}"));
        }
        let registry = TestRegistry::start_with(registry).await?;
        let upstream = SocketAddr::from(([127, 0, 0, 1], registry.port()));
        let proxy = WanProxy::from_listener(listener, upstream, wan)?;
        Ok(WanRegistry { proxy, registry })
    }

    /// The proxy's `127.0.0.1:PORT`: what clients should use in image references.
    pub fn host(&self) -> String {
        self.proxy.host()
    }

    /// The proxy's base URL, `https://127.0.0.1:PORT` (or `http://` without TLS).
    pub fn url(&self) -> String {
        let scheme = if self.registry.is_tls() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.proxy.host())
    }

    pub fn port(&self) -> u16 {
        self.proxy.port()
    }

    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.registry.ca_pem_path()
    }

    /// See [`TestRegistry::cert_dir`].
    pub fn cert_dir(&self) -> Option<&Path> {
        self.registry.cert_dir()
    }

    pub fn stats(&self) -> WanStats {
        self.proxy.stats()
    }

    /// The registry's log (one access-log line per request).
    pub fn log_path(&self) -> PathBuf {
        self.registry.log_path()
    }

    pub fn proxy(&self) -> &WanProxy {
        &self.proxy
    }

    /// The registry itself, reachable directly at `registry().url()` (no latency), though the
    /// `Location`s it hands out still point at the proxy.
    pub fn registry(&self) -> &TestRegistry {
        &self.registry
    }
}
