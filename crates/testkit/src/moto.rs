//! `MotoServer`: moto's standalone server (`python3 -m moto.server`) on a loopback port, as a
//! local AWS API (ecr-ferry uses it for ECR's control plane), killed when dropped.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::util::{free_port, kill_and_reap, log_tail, read_lossy};

/// Overrides the interpreter, e.g. a venv's `bin/python` when moto is not installed for the
/// default `python3`.
pub const PYTHON_ENV: &str = "FERRY_TESTKIT_PYTHON";
/// moto's default account; pinned so a caller's `MOTO_ACCOUNT_ID` cannot change it.
pub const MOTO_ACCOUNT: &str = "123456789012";

// Importing moto takes ~0.6 s warm, but a first run compiles its .pyc files; on a busy 2-core
// machine that can take many seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const START_ATTEMPTS: usize = 5;

pub struct MotoServer {
    port: u16,
    child: Mutex<Option<Child>>,
    log: PathBuf,
    // Declared last so the log's directory outlives the process writing into it.
    _dir: TempDir,
}

impl MotoServer {
    pub async fn start() -> anyhow::Result<MotoServer> {
        let dir = tempfile::Builder::new().prefix("ferry-moto-").tempdir()?;
        let log = dir.path().join("moto.log");
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            match spawn_and_wait(&log, port).await {
                Ok(child) => {
                    return Ok(MotoServer {
                        port,
                        child: Mutex::new(Some(child)),
                        log,
                        _dir: dir,
                    });
                }
                // The probed port may have been taken before moto bound it: try another.
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("moto did not start")))
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// moto's stdout/stderr so far (werkzeug logs one line per request).
    pub fn log(&self) -> String {
        read_lossy(&self.log)
    }

    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    /// Forgets every resource in every service (`POST /moto-api/reset`).
    pub async fn reset(&self) -> anyhow::Result<()> {
        let resp = http_client()?
            .post(format!("{}/moto-api/reset", self.url()))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("moto reset answered {}", resp.status());
        }
        Ok(())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = guard.take() {
            kill_and_reap(&mut child);
        }
    }
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?)
}

async fn spawn_and_wait(log_path: &std::path::Path, port: u16) -> anyhow::Result<Child> {
    // Truncated per attempt so readiness and the error's log tail concern this process only.
    let log = File::create(log_path)?;
    let python = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".to_string());
    let mut child = Command::new(&python)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .env("MOTO_ACCOUNT_ID", MOTO_ACCOUNT)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {python} -m moto.server"))?;
    match wait_ready(&mut child, log_path, port).await {
        Ok(()) => Ok(child),
        Err(e) => {
            kill_and_reap(&mut child);
            Err(e.context(format!(
                "moto on port {port} did not come up (is `moto[server]` installed for {python}? \
                 set {PYTHON_ENV} to pick another interpreter); log tail:\n{}",
                log_tail(log_path)
            )))
        }
    }
}

/// Ready means our process logged that it runs on the port *and* `/moto-api/` answers: the
/// answer alone could come from whoever else grabbed the port.
async fn wait_ready(
    child: &mut Child,
    log_path: &std::path::Path,
    port: u16,
) -> anyhow::Result<()> {
    let client = http_client()?;
    let url = format!("http://127.0.0.1:{port}/moto-api/");
    let running = format!("Running on http://127.0.0.1:{port}");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("moto exited early with {status}");
        }
        if read_lossy(log_path).contains(&running)
            && let Ok(resp) = client.get(&url).send().await
            && resp.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {READY_TIMEOUT:?} waiting for {url}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
