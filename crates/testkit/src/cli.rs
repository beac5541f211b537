//! Running a `ferry` binary as a user would, but sealed off from this machine's own setup: a
//! clean environment, a private home (docker config, ferry's cache) and, with a stand-in, the
//! ECR endpoints and test credentials.

use std::path::Path;
use std::process::{Command, Output};

use crate::ecr::EcrStandIn;

/// A command for `bin` with only `PATH`, `DOCKER_HOST` (if set), a private `home` and the
/// stand-in's variables in its environment.
pub fn command(bin: &str, home: &Path, stand_in: Option<&EcrStandIn>) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("DOCKER_CONFIG", home)
        .env("FERRY_CACHE_DIR", home);
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        cmd.env("DOCKER_HOST", host);
    }
    if let Some(stand_in) = stand_in {
        cmd.envs(stand_in.env());
    }
    cmd
}

/// Runs `bin args…` as [`command`] sets it up.
pub fn run(bin: &str, home: &Path, stand_in: Option<&EcrStandIn>, args: &[&str]) -> Output {
    match command(bin, home, stand_in).args(args).output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run {bin}: {e}"),
    }
}

/// stdout parsed as JSON, after checking the command succeeded (else its stderr is the panic).
pub fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout) {
        Ok(value) => value,
        Err(e) => panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        ),
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The workspace's root directory.
pub fn workspace_root() -> std::path::PathBuf {
    // This crate lives in crates/testkit.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap_or_else(|| Path::new("."))
        .to_path_buf()
}

/// The path of release binary `name` (`ferry`, `ferry-operator`, `ferry-testkit`) of the
/// workspace, built by `scripts/build-release.sh` — the static binaries users run — if it is
/// not up to date (in CI, `scripts/test.sh` has built them already; then this is a no-op).
pub fn release_binary(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let build = workspace_root().join("scripts/build-release.sh");
    let out = Command::new("bash").arg(&build).output()?;
    if !out.status.success() {
        anyhow::bail!(
            "{} failed:\n{}",
            build.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ferry = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(Path::new(&ferry).with_file_name(name))
}
