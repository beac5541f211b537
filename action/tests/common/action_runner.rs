//! Running the GitHub Action's container image as a runner does: its image built by
//! `action/image.sh`, then `docker run` with `INPUT_*` variables, the Docker socket and a
//! workspace mounted, and the `GITHUB_OUTPUT` / `GITHUB_STEP_SUMMARY` files — against the local
//! ECR stand-in, reached over the host's loopback (`--network host`). Shared by the
//! `action_image*` test binaries.

// Each test binary uses its own part of this.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_testkit::ecr::EcrStandIn;

pub const IMAGE_TAG: &str = "ferry-action:test";
/// A push of two tiny layers takes seconds; this only stops a hung container from hanging CI.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Builds the Action's image once per test binary: the static release binary of
/// `scripts/build-release.sh` (the one build the demo, the benchmarks and `scripts/test.sh`
/// share, so it is already there when the test command runs), packed by `action/image.sh`.
/// Cargo's and docker's output is kept, and shown only if a step fails.
pub async fn action_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    tokio::task::spawn_blocking(|| {
        IMAGE
            .get_or_init(|| {
                require_docker();
                let root = workspace_root();
                let binary = release_ferry();
                let script = root.join("action/image.sh");
                let out = Command::new("bash")
                    .arg(&script)
                    .args(["--binary", &binary, "--tag", IMAGE_TAG])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{} failed:\n{}",
                    script.display(),
                    text(&out.stderr)
                );
                IMAGE_TAG.to_string()
            })
            .as_str()
    })
    .await
    .unwrap()
}

/// The static release `ferry` of `scripts/build-release.sh`: the one build the demo, the
/// benchmarks and `scripts/test.sh` share (built before the tests run, so this is quick).
pub fn release_ferry() -> String {
    ferry_testkit::cli::release_binary("ferry")
        .unwrap()
        .display()
        .to_string()
}

pub fn require_docker() {
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match out {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the Docker Engine is unreachable; these tests need one (CI has it): {}",
            text(&out.stderr)
        ),
        Err(e) => panic!("cannot run `docker` ({e}); these tests need a Docker Engine"),
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub async fn docker(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || Command::new("docker").args(&args).output().unwrap())
        .await
        .unwrap()
}

/// A step's workspace: the directory mounted at /github/workspace, with the empty output and
/// summary files the runner creates before a step.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("out"), "").unwrap();
        std::fs::write(dir.path().join("summary"), "").unwrap();
        Workspace { dir }
    }

    pub fn outputs(&self) -> HashMap<String, String> {
        parse_outputs(&std::fs::read_to_string(self.dir.path().join("out")).unwrap())
    }

    pub fn summary(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("summary")).unwrap()
    }
}

/// The name the container reaches the stand-in by, as a runner reaches ECR by name: the image
/// holds no NSS libraries, so this checks that the static binary resolves names from the
/// `/etc/hosts` docker writes (`--add-host`).
pub const STAND_IN_HOST: &str = "ferry-stand-in.test";

/// `docker run` as the runner does it for a Docker container action, plus `--network host` so
/// the container reaches the stand-in on loopback, by the name [`STAND_IN_HOST`].
pub async fn run_action(image: &str, workspace: &Workspace, env: &[(String, String)]) -> Output {
    let name = format!(
        "ferry-action-test-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut args: Vec<String> = [
        "run",
        "--rm",
        "--name",
        &name,
        "--network",
        "host",
        "--add-host",
        &format!("{STAND_IN_HOST}:127.0.0.1"),
        "--workdir",
        "/github/workspace",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        &format!("{}:/github/workspace", workspace.dir.path().display()),
        "-e",
        "GITHUB_WORKSPACE=/github/workspace",
        "-e",
        "GITHUB_OUTPUT=/github/workspace/out",
        "-e",
        "GITHUB_STEP_SUMMARY=/github/workspace/summary",
        "-e",
        "GITHUB_ACTIONS=true",
        "-e",
        "CI=true",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (key, value) in env {
        args.push("-e".into());
        args.push(format!("{key}={value}"));
    }
    args.push(image.to_string());
    match tokio::time::timeout(RUN_TIMEOUT, docker(args)).await {
        Ok(out) => out,
        Err(_) => {
            docker(vec!["rm".into(), "-f".into(), name]).await;
            panic!("the Action's container ran longer than {RUN_TIMEOUT:?}");
        }
    }
}

/// Runs the Action with `inputs` (as `INPUT_*` variables) against `stand_in`, and returns the
/// result with its stdout and stderr as text, which it also prints (seen with --nocapture:
/// what the run's log would hold).
pub async fn run_with(
    image: &str,
    workspace: &Workspace,
    stand_in: &EcrStandIn,
    inputs: &[(&str, &str)],
) -> (Output, String, String) {
    let mut env: Vec<(String, String)> = inputs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.extend(
        stand_in
            .env()
            .into_iter()
            .map(|(key, value)| (key, value.replace("127.0.0.1", STAND_IN_HOST))),
    );
    let out = run_action(image, workspace, &env).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    eprintln!("--- stdout\n{stdout}--- stderr\n{stderr}---");
    (out, stdout, stderr)
}

/// Reads a `$GITHUB_OUTPUT` file: `name=value` lines and `name<<DELIM` … `DELIM` blocks.
pub fn parse_outputs(text: &str) -> HashMap<String, String> {
    let mut outputs = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for line in lines.by_ref() {
                if line == delimiter {
                    break;
                }
                value.push(line);
            }
            outputs.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            outputs.insert(name.to_string(), value.to_string());
        }
    }
    outputs
}

/// No line of the container's output shows a secret, except the `::add-mask::` lines that hide it.
pub fn assert_secrets_masked(stdout: &str, stderr: &str, secrets: &[&str]) {
    for (stream, output) in [("stdout", stdout), ("stderr", stderr)] {
        for line in output.lines() {
            assert!(
                !secrets.iter().any(|s| line.contains(s)) || line.starts_with("::add-mask::"),
                "a secret escaped on {stream}: {line}"
            );
        }
    }
}
