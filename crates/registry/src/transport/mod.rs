//! The HTTP clients behind a registry client, built on first use: one verifying TLS against
//! the system trust store (plus any extra CA files), one for plain-HTTP registries.
//!
//! Why two, and why lazily: loading the system trust store costs milliseconds, which is most of
//! a warm push to a local registry. A run that only talks plain HTTP (loopback mirrors, test
//! rigs, the ECR stand-in) never pays for it.
//!
//! Why HTTP/1.1 only, with a pool of connections per host (see `docs/design/transport.md`):
//! parallel blob transfers then run on parallel TCP connections, each with its own congestion
//! window and per-connection rate, as docker and skopeo do; and a manifest or `HEAD` never waits
//! behind a large body on a shared connection. Over HTTP/2 every transfer to a registry shared
//! one connection: 2.5–4× slower than the peers once the registry was 30 ms away. Idle
//! connections are kept for reuse across requests and copies, and rustls resumes TLS sessions
//! (its default in-memory session cache), so a new connection to a known host costs one round
//! trip less.

mod loopback;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::error::{Error, Result};
use loopback::{LoopbackSchemes, Speaks};

const USER_AGENT: &str = concat!("ecr-ferry/", env!("CARGO_PKG_VERSION"));

/// Extra CA certificates to trust, as the caller holds them.
pub(crate) enum CaSource {
    File(PathBuf),
    Pem(Vec<u8>),
}

pub(crate) struct Transport {
    /// Parsed when the client is built, so a bad CA fails there and not at the first request.
    extra_roots: Vec<reqwest::Certificate>,
    connect_timeout: Duration,
    read_timeout: Duration,
    tls: OnceLock<reqwest::Client>,
    plain: OnceLock<reqwest::Client>,
    loopback: LoopbackSchemes,
    /// Registries seen without the referrers API: asked once, then straight to the tag schema
    /// (what a registry serves is the same for every tenant, so this is shared).
    no_referrers_api: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Transport {
    pub fn new(
        cas: Vec<CaSource>,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Result<Self> {
        let mut extra_roots = Vec::new();
        for (index, ca) in cas.iter().enumerate() {
            extra_roots.extend(ca.certificates(index)?);
        }
        Ok(Self {
            extra_roots,
            connect_timeout,
            read_timeout,
            tls: OnceLock::new(),
            plain: OnceLock::new(),
            loopback: LoopbackSchemes::default(),
            no_referrers_api: Default::default(),
        })
    }

    /// Whether `host` answered without the referrers API before.
    pub fn lacks_referrers_api(&self, host: &str) -> bool {
        self.no_referrers_api
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(host)
    }

    pub fn set_lacks_referrers_api(&self, host: &str) {
        self.no_referrers_api
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(host.to_string());
    }

    /// Turns `https://` into `http://` for a loopback host that turns out to speak plain HTTP
    /// (asked once per host; see [`loopback`]). Other URLs are left as they are.
    pub async fn settle_scheme(&self, url: &mut String) {
        if !url.starts_with("https://") {
            return;
        }
        let Ok(parsed) = url::Url::parse(url) else {
            return;
        };
        let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
            return;
        };
        if !crate::client::is_loopback_host(host) {
            return;
        }
        let authority = format!("{host}:{port}");
        if self.loopback.speaks(&authority, self.connect_timeout).await == Speaks::PlainHttp {
            url.replace_range(..5, "http");
        }
    }

    /// The client for `url`: the plain one for `http://`, the verifying one otherwise.
    pub fn for_url(&self, url: &str) -> Result<&reqwest::Client> {
        if url.starts_with("http://") {
            get_or_build(&self.plain, || self.build(false))
        } else {
            get_or_build(&self.tls, || self.build(true))
        }
    }

    fn build(&self, tls: bool) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .tcp_nodelay(true)
            .http1_only()
            .pool_idle_timeout(Duration::from_secs(90));
        if tls {
            builder = builder.tls_certs_merge(self.extra_roots.iter().cloned());
        } else {
            // No roots at all: this client only ever speaks plain HTTP (a redirect to https
            // from a plain registry fails verification rather than going unchecked).
            builder = builder.tls_certs_only(Vec::new());
        }
        builder
            .build()
            .map_err(|e| Error::Config(format!("cannot set up the HTTP client: {e}")))
    }
}

fn get_or_build(
    cell: &OnceLock<reqwest::Client>,
    build: impl FnOnce() -> Result<reqwest::Client>,
) -> Result<&reqwest::Client> {
    if let Some(client) = cell.get() {
        return Ok(client);
    }
    let client = build()?;
    // A concurrent first use may have won the race; either client is equivalent.
    Ok(cell.get_or_init(|| client))
}

impl CaSource {
    /// The certificates this source holds; `index` tells PEM sources apart in errors.
    fn certificates(&self, index: usize) -> Result<Vec<reqwest::Certificate>> {
        let (pem, origin) = match self {
            CaSource::File(path) => (
                std::fs::read(path).map_err(|e| {
                    Error::Config(format!("cannot read CA file {}: {e}", path.display()))
                })?,
                format!("CA file {}", path.display()),
            ),
            CaSource::Pem(pem) => (pem.clone(), format!("CA PEM #{} (in memory)", index + 1)),
        };
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| Error::Config(format!("{origin} holds no PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "{origin} holds no PEM certificates (no -----BEGIN CERTIFICATE----- block)"
            )));
        }
        // reqwest reads the DER inside each block only when a client is built: build a
        // throwaway one (no system roots, so it is cheap) to fail here, naming the input.
        reqwest::Client::builder()
            .tls_certs_only(certs.clone())
            .build()
            .map_err(|e| Error::Config(format!("{origin} holds a malformed certificate: {e}")))?;
        Ok(certs)
    }
}
