//! Memory bounds: `ferry copy` of an image whose one layer is 1 GiB, and `ferry push` of a
//! `docker save` archive whose one (uncompressed) layer is 1 GiB, each stay under 64 MB of peak
//! RSS, read from `/proc/<pid>/status` (`VmHWM`) of the running process — the static release
//! binary, as users run it. Blob bytes are streamed, never held whole: a copy holds at most its
//! range parts (4 × 4 MiB) besides what is in flight; a push its upload queue (16 MiB, the rest
//! spooled to disk) and the blocks being compressed.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use ferry_testkit::push::RawClient;
use ferry_testkit::{TestRegistry, cli, skopeo};

/// 64 MB (decimal) in the KiB `/proc` reports, the stricter reading of "64 MB".
const LIMIT_KB: u64 = 62_500;
const GIB: usize = 1 << 30;

/// The peak RSS (KiB) of `child` up to its exit, polled from /proc: `VmHWM` only grows, so the
/// last reading before the process goes is its peak within one polling interval.
fn peak_rss_kb(mut child: Child) -> (std::process::ExitStatus, u64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak = peak.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` (a `ferry` command moving a 1 GiB layer) to its end and asserts it succeeded
/// with a peak RSS under [`LIMIT_KB`].
async fn assert_runs_under_the_limit(mut cmd: Command) {
    let what = format!("{cmd:?}");
    let child = cmd.stdout(std::process::Stdio::null()).spawn().unwrap();
    let (status, peak) = tokio::task::spawn_blocking(move || peak_rss_kb(child))
        .await
        .unwrap();
    assert!(status.success(), "{what} failed: {status:?}");
    assert!(peak > 0, "no reading of /proc");
    assert!(
        peak < LIMIT_KB,
        "{what} (a 1 GiB layer) peaked at {peak} kB of RSS"
    );
}

fn ferry(binary: &str, home: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = cli::command(binary, home, None);
    cmd.args(args);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copying_a_1_gib_layer_stays_under_64_mb() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    // Seeded by the release `ferry-testkit` of the same build: a debug build takes minutes to
    // make and compress 1 GiB of random data.
    let ferry_bin = common::action_runner::release_ferry();
    let testkit = ferry_testkit::cli::release_binary("ferry-testkit").unwrap();
    let seeded = Command::new(&testkit)
        .args([
            "seed",
            "--registry",
            &src.host(),
            "--repository",
            "big",
            "--tag",
            "v1",
        ])
        .args([
            "--single",
            "--layers",
            "1",
            "--layer-bytes",
            &GIB.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let digest = String::from_utf8_lossy(&seeded.stdout).trim().to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");

    let home = tempfile::tempdir().unwrap();
    let (from, to) = (
        format!("{}/big:v1", src.host()),
        format!("{}/big:v1", dst.host()),
    );
    // The default path: the layer is large enough for parallel ranges.
    assert_runs_under_the_limit(ferry(&ferry_bin, home.path(), &["copy", &from, &to])).await;
    let raw = skopeo::inspect_raw(&to, None).await.unwrap();
    assert_eq!(ferry_testkit::sha256_digest(&raw), digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushing_a_1_gib_layer_stays_under_64_mb() {
    let dst = TestRegistry::anonymous().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("big.tar");
    let diff_id = {
        let archive = archive.clone();
        tokio::task::spawn_blocking(move || {
            ferry_testkit::save_archive::write_random_save_archive(&archive, "big:1", GIB as u64)
        })
        .await
        .unwrap()
        .unwrap()
    };

    let ferry_bin = common::action_runner::release_ferry();
    let home = tempfile::tempdir().unwrap();
    let source = format!("docker-archive:{}", archive.display());
    let args = [
        "push",
        &source,
        "--registry",
        &dst.host(),
        "--repository",
        "big",
        "--tag",
        "v1",
        "--json",
    ];
    assert_runs_under_the_limit(ferry(&ferry_bin, home.path(), &args)).await;

    // What went up is the layer: gzip that decompresses to the diff_id's bytes.
    let raw = skopeo::inspect_raw(&format!("{}/big:v1", dst.host()), None)
        .await
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = RawClient::new(&dst.url(), None)
        .unwrap()
        .get_blob("big", layer)
        .await
        .unwrap()
        .unwrap();
    let unpacked =
        tokio::task::spawn_blocking(move || ferry_testkit::gunzipped_sha256_digest(&blob))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(unpacked, diff_id);
}
