//! The operator's container image as a cluster runs it: packed by `operator/image.sh` from the
//! shared static release build, within its 25 MB budget, as a non-root user, then run by the
//! Docker Engine with a read-only root filesystem against the Kubernetes API stand-in until a
//! mirror is Ready with its digest.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{CRD, Cluster, destination_digest, pushed};
use ferry_testkit::TestRegistry;

const IMAGE: &str = "ferry-operator:test";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn checked(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `scripts/build-release.sh` (already built by `scripts/test.sh`), then `operator/image.sh`.
fn build_image() {
    let binary = ferry_testkit::cli::release_binary("ferry-operator").unwrap();
    checked(
        "operator/image.sh",
        Command::new("bash")
            .arg(root().join("operator/image.sh"))
            .arg("--binary")
            .arg(&binary)
            .args(["--tag", IMAGE])
            .output()
            .unwrap(),
    );
}

/// A container removed on drop.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_is_small_runs_as_nonroot_and_syncs_a_mirror() {
    tokio::task::spawn_blocking(build_image).await.unwrap();
    let inspect = checked(
        "docker image inspect",
        Command::new("docker")
            .args([
                "image",
                "inspect",
                "--format",
                "{{.Size}} {{.Config.User}}",
                IMAGE,
            ])
            .output()
            .unwrap(),
    );
    let (size, user) = inspect.trim().split_once(' ').unwrap();
    let size: u64 = size.parse().unwrap();
    assert!(size <= 25_000_000, "{IMAGE} is {size} bytes, over 25 MB");
    assert_eq!(user, "65532:65532");

    // `crd` in the image prints what the chart ships.
    let crd = checked(
        "docker run … crd",
        Command::new("docker")
            .args(["run", "--rm", IMAGE, "crd"])
            .output()
            .unwrap(),
    );
    assert_eq!(crd, std::fs::read_to_string(CRD).unwrap());

    let cluster = Cluster::start().await;
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let digest = pushed(&src, "1.0", 7, 4096).await;
    cluster.apply_mirror(&src.host(), &dst.host(), &["1.0"]);

    let name = format!("ferry-operator-test-{}", std::process::id());
    let kubeconfig = cluster.kubectl.kubeconfig.display().to_string();
    checked(
        "docker run … run",
        Command::new("docker")
            .args([
                "run",
                "--detach",
                "--name",
                &name,
                "--network",
                "host",
                "--read-only",
            ])
            .args(["--volume", &format!("{kubeconfig}:/etc/kubeconfig:ro")])
            .args(["--env", "KUBECONFIG=/etc/kubeconfig", IMAGE])
            .args([
                "run",
                "--no-leader-election",
                "--metrics-address=127.0.0.1:0",
            ])
            .output()
            .unwrap(),
    );
    let container = Container(name);
    let status = cluster.ready(1, Duration::from_secs(90)).await;
    assert_eq!(status["tags"][0]["digest"], digest.as_str());
    assert_eq!(destination_digest(&dst.host(), "1.0").await, digest);

    // SIGTERM (docker stop) ends it cleanly.
    checked(
        "docker stop",
        Command::new("docker")
            .args(["stop", "--time", "20", &container.0])
            .output()
            .unwrap(),
    );
    let exit = checked(
        "docker inspect",
        Command::new("docker")
            .args(["inspect", "--format", "{{.State.ExitCode}}", &container.0])
            .output()
            .unwrap(),
    );
    assert_eq!(
        exit.trim(),
        "0",
        "the operator's exit code after docker stop"
    );
}
