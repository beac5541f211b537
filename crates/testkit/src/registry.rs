//! `TestRegistry`: a real `docker-registry serve` (CNCF distribution 2.8) process on a loopback
//! port, with its own storage, killed when dropped.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::tls::TlsFiles;
use crate::token::{TokenConfig, TokenIssuer};
use crate::util::{free_port, kill_and_reap, log_tail, read_lossy, read_lossy_from};

mod config;

use config::{write_config, yaml_str};

const BINARY: &str = "docker-registry";
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const START_ATTEMPTS: usize = 5;
/// bcrypt cost for htpasswd entries: the minimum sensible one, so auth checks stay fast.
const BCRYPT_COST: u32 = 5;

pub enum RegistryAuth {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// Bearer tokens from a `TokenIssuer` the registry starts and owns.
    Token(TokenConfig),
}

pub struct RegistryOptions {
    pub auth: RegistryAuth,
    /// Fixed port; `None` picks a free one (and retries with another if it gets taken).
    pub port: Option<u16>,
    /// Directory for storage, config, htpasswd and log; kept after drop. `None` uses a temp
    /// dir removed on drop.
    pub dir: Option<PathBuf>,
    /// Serve HTTPS with a certificate from a CA generated for this registry.
    pub tls: Option<TlsOptions>,
    /// The registry's public base URL (`http.host`), e.g. `https://127.0.0.1:<proxy port>`:
    /// upload `Location`s point there instead of at whatever `Host` the client sent.
    pub public_url: Option<String>,
}

/// TLS settings of a test registry.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// DNS names the server certificate covers besides `127.0.0.1`, `localhost` and `::1`.
    pub extra_dns_names: Vec<String>,
}

impl RegistryOptions {
    pub fn new(auth: RegistryAuth) -> Self {
        RegistryOptions {
            auth,
            port: None,
            dir: None,
            tls: None,
            public_url: None,
        }
    }

    /// Serve HTTPS (a CA and certificate for the loopback names).
    pub fn with_tls(mut self) -> Self {
        self.tls = Some(TlsOptions::default());
        self
    }

    pub fn with_public_url(mut self, url: &str) -> Self {
        self.public_url = Some(url.to_string());
        self
    }
}

pub struct TestRegistry {
    port: u16,
    root: PathBuf,
    child: Mutex<Option<Child>>,
    htpasswd: Option<Mutex<Htpasswd>>,
    token: Option<TokenIssuer>,
    tls: Option<TlsFiles>,
    // Declared last so the directory outlives the process that writes into it.
    _tmp: Option<TempDir>,
}

struct Htpasswd {
    path: PathBuf,
    users: BTreeMap<String, String>,
    last_mtime: SystemTime,
}

impl TestRegistry {
    pub async fn start(auth: RegistryAuth) -> anyhow::Result<TestRegistry> {
        Self::start_with(RegistryOptions::new(auth)).await
    }

    pub async fn anonymous() -> anyhow::Result<TestRegistry> {
        Self::start(RegistryAuth::Anonymous).await
    }

    /// An anonymous registry serving HTTPS; its CA is in `ca_pem_path()`.
    pub async fn anonymous_tls() -> anyhow::Result<TestRegistry> {
        Self::start_with(RegistryOptions::new(RegistryAuth::Anonymous).with_tls()).await
    }

    pub async fn basic(user: &str, pass: &str) -> anyhow::Result<TestRegistry> {
        Self::start(RegistryAuth::Basic {
            username: user.to_string(),
            password: pass.to_string(),
        })
        .await
    }

    /// Starts a registry behind its own `TokenIssuer` (see `token_issuer()`).
    pub async fn token(
        users: &[(&str, &str)],
        anonymous_pull: bool,
    ) -> anyhow::Result<TestRegistry> {
        Self::start(RegistryAuth::Token(TokenConfig::new(users, anonymous_pull))).await
    }

    pub async fn start_with(opts: RegistryOptions) -> anyhow::Result<TestRegistry> {
        let (tmp, root) = match opts.dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                (None, dir)
            }
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("ferry-registry-")
                    .tempdir()?;
                let root = tmp.path().to_path_buf();
                (Some(tmp), root)
            }
        };
        std::fs::create_dir_all(root.join("storage"))?;
        let tls = match &opts.tls {
            Some(t) => {
                let files = crate::tls::generate(&root, &t.extra_dns_names)?;
                // The rig's own client (seeding, checks) trusts what the rig serves.
                crate::push::trust_ca_pem(&std::fs::read(&files.ca_pem)?);
                Some(files)
            }
            None => None,
        };

        let mut htpasswd = None;
        let mut token = None;
        let auth_yaml = match opts.auth {
            RegistryAuth::Anonymous => String::new(),
            RegistryAuth::Basic { username, password } => {
                let mut h = Htpasswd {
                    path: root.join("htpasswd"),
                    users: BTreeMap::new(),
                    last_mtime: SystemTime::UNIX_EPOCH,
                };
                h.users.insert(username, password);
                h.write()?;
                let yaml = format!(
                    "auth:\n  htpasswd:\n    realm: ferry-testkit\n    path: {}\n",
                    yaml_str(&h.path)
                );
                htpasswd = Some(Mutex::new(h));
                yaml
            }
            RegistryAuth::Token(cfg) => {
                let issuer = TokenIssuer::start(cfg).await?;
                let yaml = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    issuer.realm(),
                    issuer.service(),
                    issuer.issuer(),
                    yaml_str(issuer.cert_path())
                );
                token = Some(issuer);
                yaml
            }
        };

        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let port = match opts.port {
                Some(p) => p,
                None => free_port()?,
            };
            write_config(
                &root,
                port,
                &auth_yaml,
                tls.as_ref(),
                opts.public_url.as_deref(),
            )?;
            match spawn_and_wait(&root, port, tls.as_ref()).await {
                Ok(child) => {
                    return Ok(TestRegistry {
                        port,
                        root,
                        child: Mutex::new(Some(child)),
                        htpasswd,
                        token,
                        tls,
                        _tmp: tmp,
                    });
                }
                // A fixed port that fails will fail again; a random one may have been taken
                // between our probe and the registry's bind.
                Err(e) if opts.port.is_some() => return Err(e),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("registry did not start")))
    }

    /// `127.0.0.1:PORT`, the form image references use.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`, or `https://…` with TLS. The registry itself; with a public URL
    /// set, upload `Location`s point there instead.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The PEM of the CA that signed the server certificate, with TLS.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca_pem.as_path())
    }

    /// A directory holding only the CA as `ca.crt`, for `skopeo --src-cert-dir`/`--dest-cert-dir`
    /// or a copy into `/etc/docker/certs.d/<host:port>/`; with TLS.
    pub fn cert_dir(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.cert_dir.as_path())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registry's combined stdout/stderr so far (app log and one access-log line per request).
    pub fn log(&self) -> String {
        read_lossy(&log_path(&self.root))
    }

    pub fn log_path(&self) -> PathBuf {
        log_path(&self.root)
    }

    pub fn storage_dir(&self) -> PathBuf {
        self.root.join("storage")
    }

    pub fn token_issuer(&self) -> Option<&TokenIssuer> {
        self.token.as_ref()
    }

    /// Adds a user or changes its password. Basic mode rewrites htpasswd: distribution 2.8.2
    /// re-reads the file when its mtime changes, so no restart is needed. Token mode changes the
    /// issuer's user table.
    pub fn set_basic_password(&self, user: &str, pass: &str) -> anyhow::Result<()> {
        if let Some(issuer) = &self.token {
            issuer.set_password(user, pass);
            return Ok(());
        }
        let Some(h) = &self.htpasswd else {
            bail!("registry runs without authentication; there is no password to set");
        };
        let mut h = h.lock().unwrap_or_else(|e| e.into_inner());
        h.users.insert(user.to_string(), pass.to_string());
        h.write()
    }

    /// Kills the process (the registry "goes down"); `restart` brings it back.
    pub fn stop(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = guard.take() {
            kill_and_reap(&mut child);
        }
    }

    /// Restarts the process on the same port with the same storage and auth.
    pub async fn restart(&self) -> anyhow::Result<()> {
        self.stop();
        let child = spawn_and_wait(&self.root, self.port, self.tls.as_ref()).await?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(())
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Htpasswd {
    fn write(&mut self) -> anyhow::Result<()> {
        let mut text = String::new();
        for (user, pass) in &self.users {
            let hash = bcrypt::hash(pass, BCRYPT_COST)?;
            text.push_str(&format!("{user}:{hash}\n"));
        }
        // Write-then-rename so the registry never reads a half-written file.
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        // The registry reloads only when the mtime differs from the one it saw; coarse kernel
        // timestamps could repeat within a few ms, so force a strictly newer one.
        let mtime = SystemTime::now().max(self.last_mtime + Duration::from_millis(10));
        File::options()
            .write(true)
            .open(&tmp)?
            .set_modified(mtime)?;
        std::fs::rename(&tmp, &self.path)?;
        self.last_mtime = mtime;
        Ok(())
    }
}

fn log_path(root: &Path) -> PathBuf {
    root.join("registry.log")
}

async fn spawn_and_wait(root: &Path, port: u16, tls: Option<&TlsFiles>) -> anyhow::Result<Child> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(root))?;
    // A restart appends to the same log: only what this process writes counts as its readiness.
    let log_offset = log.metadata()?.len() as usize;
    let mut child = Command::new(BINARY)
        .arg("serve")
        .arg(root.join("config.yml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| {
            format!("starting {BINARY} (is the Debian docker-registry package installed?)")
        })?;
    match wait_ready(&mut child, root, port, tls, log_offset).await {
        Ok(()) => Ok(child),
        Err(e) => {
            kill_and_reap(&mut child);
            Err(e.context(format!(
                "registry on port {port} did not come up; log tail:\n{}",
                log_tail(&log_path(root))
            )))
        }
    }
}

/// Ready means our process logged that it listens on the port *and* `/v2/` answers: the
/// answer alone could come from whoever else grabbed the port.
async fn wait_ready(
    child: &mut Child,
    root: &Path,
    port: u16,
    tls: Option<&TlsFiles>,
    log_offset: usize,
) -> anyhow::Result<()> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2));
    if let Some(tls) = tls {
        let pem = std::fs::read(&tls.ca_pem)?;
        builder = builder.tls_certs_only([reqwest::Certificate::from_pem(&pem)?]);
    }
    let client = builder.build()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://127.0.0.1:{port}/v2/");
    let listening = format!("listening on 127.0.0.1:{port}");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("{BINARY} exited early with {status}");
        }
        if read_lossy_from(&log_path(root), log_offset).contains(&listening)
            && let Ok(resp) = client.get(&url).send().await
            && matches!(resp.status().as_u16(), 200 | 401)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {READY_TIMEOUT:?} waiting for {url}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
