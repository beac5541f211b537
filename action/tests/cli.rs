//! The `ferry` binary as a user runs it: output, exit codes and one-line errors.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use base64::Engine;
use ferry_testkit::{ImageFormat, ImageSpec, TestRegistry, skopeo};

fn ferry(args: &[&str]) -> Output {
    ferry_with_env(args, &[])
}

fn ferry_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let empty_config = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    // Never read the machine's own docker credentials.
    cmd.env("DOCKER_CONFIG", empty_config.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn seeded(registry: &TestRegistry, basic: Option<(&str, &str)>) -> ferry_testkit::BuiltImage {
    let mut spec = ImageSpec::new(&["linux/amd64", "linux/arm64"]);
    spec.format = ImageFormat::Docker;
    let image = ferry_testkit::build(&spec).unwrap();
    image
        .push(&registry.url(), "app", "v1", basic)
        .await
        .unwrap();
    image
}

#[tokio::test]
async fn copy_prints_a_summary_and_json_report() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, None).await;
    let from = format!("{}/app:v1", src.host());
    let to = format!("{}/copy/app:v1", dst.host());

    let out = ferry(&["copy", &from, &to, "--tag", "stable"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("Copied {from} -> {to}")), "{text}");
    assert!(text.contains(&image.index.digest), "{text}");
    assert!(text.contains("linux/arm64"), "{text}");
    assert!(
        text.contains("tag v1") && text.contains("tag stable"),
        "{text}"
    );
    assert!(text.contains("created"), "{text}");

    let out = ferry(&["copy", &from, &to, "--tag", "stable", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["digest"], image.index.digest.as_str());
    assert_eq!(report["tags"][0]["outcome"], "unchanged");
    assert_eq!(report["tags"][1]["outcome"], "unchanged");
    // Warm: a HEAD of the source and one per tag, no manifest GET.
    assert_eq!(report["totals"]["requests"]["get"], 0);
    assert_eq!(report["totals"]["requests"]["head"], 3);
    assert_eq!(report["source_digest"], image.index.digest.as_str());
    assert_eq!(report["tags"][0]["digest"], image.index.digest.as_str());

    let raw = skopeo::inspect_raw(&format!("{}/copy/app:stable", dst.host()), None)
        .await
        .unwrap();
    assert_eq!(ferry_testkit::sha256_digest(&raw), image.index.digest);
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    seeded(&src, None).await;
    let out = ferry(&[
        "copy",
        &format!("{}/app:v1", src.host()),
        &format!("{}/app:v1", dst.host()),
        "--dry-run",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Would copy"), "{}", stdout(&out));
    assert!(stdout(&out).contains("would push"), "{}", stdout(&out));
    assert!(
        skopeo::inspect_raw(&format!("{}/app:v1", dst.host()), None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn platform_flag_copies_a_subset() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, None).await;
    let out = ferry(&[
        "copy",
        &format!("{}/app:v1", src.host()),
        &format!("{}/app:arm", dst.host()),
        "--platform",
        "linux/arm64",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifests = report["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2, "the new index and one child");
    assert_eq!(manifests[1]["platform"], "linux/arm64");
    assert_eq!(
        manifests[1]["digest"],
        image.manifest_for("linux/arm64").unwrap().digest.as_str()
    );
}

#[tokio::test]
async fn credentials_come_from_docker_config() {
    let src = TestRegistry::basic("alice", "s3cret").await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, Some(("alice", "s3cret"))).await;
    let config = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::write(
        config.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, src.host()),
    )
    .unwrap();
    let out = ferry_with_env(
        &[
            "copy",
            &format!("{}/app:v1", src.host()),
            &format!("{}/app:v1", dst.host()),
            "--json",
        ],
        &[("DOCKER_CONFIG", config.path().to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["digest"], image.index.digest.as_str());
    assert!(!stderr(&out).contains("s3cret"));

    // Nor at the loudest log level, in any form the registry sees.
    for (flag, filter) in [
        ("-vvv", "trace"),
        ("-v", "hyper=trace,reqwest=trace,h2=trace"),
    ] {
        let out = ferry_with_env(
            &[
                flag,
                "copy",
                &format!("{}/app:v1", src.host()),
                &format!("{}/again:v1", dst.host()),
            ],
            &[
                ("DOCKER_CONFIG", config.path().to_str().unwrap()),
                ("FERRY_LOG", filter),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(" DEBUG ") || err.contains(" TRACE "), "{err}");
        assert!(!err.contains("s3cret") && !err.contains(&auth), "{err}");
    }
}

fn assert_one_line_failure(out: &Output, expect: &str) {
    assert!(!out.status.success(), "should fail: {}", stdout(out));
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("ferry: error: "), "{err}");
    assert!(lines[0].contains(expect), "expected {expect:?} in: {err}");
}

#[test]
fn malformed_reference_is_a_one_line_error_naming_the_input() {
    let out = ferry(&["copy", "Nginx:latest", "127.0.0.1:1/x:y"]);
    assert_one_line_failure(&out, "source: invalid reference \"Nginx:latest\"");
    let out = ferry(&["copy", "127.0.0.1:1/x:y", "127.0.0.1:1/x:bad tag"]);
    assert_one_line_failure(&out, "destination: invalid reference");
}

#[test]
fn bad_platform_names_the_flag() {
    let out = ferry(&[
        "copy",
        "127.0.0.1:1/x:y",
        "127.0.0.1:1/x:z",
        "--platform",
        "linux",
    ]);
    assert_one_line_failure(&out, "--platform");
}

#[test]
fn unreachable_registry_is_a_one_line_error() {
    // Port 1 on loopback: nothing listens there.
    let out = ferry(&["copy", "127.0.0.1:1/app:v1", "127.0.0.1:1/other:v1"]);
    assert_one_line_failure(&out, "127.0.0.1:1");
    assert!(
        stderr(&out).to_lowercase().contains("connect"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("(gave up after 5 attempts)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn retries_are_logged_at_v() {
    let out = ferry(&["-v", "copy", "127.0.0.1:1/app:v1", "127.0.0.1:1/other:v1"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let retries: Vec<&str> = err.lines().filter(|l| l.contains("retrying in ")).collect();
    // Five attempts: four waits, each announced with the attempt it leads to and the cause.
    assert_eq!(retries.len(), 4, "{err}");
    for (line, next) in retries.iter().zip(2..) {
        assert!(line.contains(" INFO "), "{line}");
        assert!(
            line.contains(&format!("attempt {next} of 5: HEAD ")),
            "{line}"
        );
        assert!(line.contains("Connection refused"), "{line}");
        let secs = line.split("retrying in ").nth(1).unwrap();
        let secs: f64 = secs.split(' ').next().unwrap().parse().unwrap();
        assert!((0.0..=3.2).contains(&secs), "{line}");
    }
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("ferry: error: ") && last.ends_with("(gave up after 5 attempts)"),
        "{err}"
    );
}

#[tokio::test]
async fn images_lists_tags_and_digests_on_a_plain_registry() {
    let registry = TestRegistry::anonymous().await.unwrap();
    let host = registry.host();
    let image = seeded(&registry, None).await;
    let mut other = ImageSpec::new(&["linux/amd64"]);
    other.seed = 3;
    let other = ferry_testkit::build_single(&other).unwrap();
    other
        .push(&registry.url(), "app", "v2", None)
        .await
        .unwrap();
    let out = ferry(&[
        "copy",
        &format!("{host}/app:v1"),
        &format!("{host}/app:stable"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A manifest list whose sources are missing points at the listing of its repository.
    let out = ferry(&[
        "manifest",
        "create",
        &format!("{host}/app:list"),
        "v1",
        "nope",
    ]);
    assert!(!out.status.success());
    let hinted = format!("ferry images {host}/app");
    assert!(stderr(&out).contains(&hinted), "{}", stderr(&out));

    // That command works without any AWS setup: one image per digest, with all its tags.
    let empty = tempfile::tempdir().unwrap();
    let out = ferry_testkit::cli::run(
        env!("CARGO_BIN_EXE_ferry"),
        empty.path(),
        None,
        &["images", &format!("{host}/app"), "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let of = |digest: &str| listed.iter().find(|i| i["digest"] == digest).unwrap();
    let index = of(&image.index.digest);
    let mut tags: Vec<&str> = index["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, ["stable", "v1"]);
    assert_eq!(index["media_type"], image.index.media_type.as_str());
    assert_eq!(
        of(&other.manifest.digest)["tags"],
        serde_json::json!(["v2"])
    );

    let out = ferry(&["images", "app", "--registry", &host]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(
        table.starts_with(&format!("{host}/app: 2 image(s)")),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with(&image.index.digest))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("stable") && row.contains("v1"), "{table}");

    let out = ferry(&["images", &format!("{host}/nothing-here")]);
    assert_one_line_failure(&out, "nothing-here");
}

#[tokio::test]
async fn missing_source_tag_is_a_clear_error() {
    let src = TestRegistry::anonymous().await.unwrap();
    seeded(&src, None).await;
    let out = ferry(&[
        "copy",
        &format!("{}/app:nope", src.host()),
        &format!("{}/x:y", src.host()),
    ]);
    assert_one_line_failure(&out, "MANIFEST_UNKNOWN");
}
