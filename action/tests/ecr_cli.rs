//! `ferry login`, `ferry images` and `ferry copy` into ECR, run as a user would, against the
//! local ECR stand-in (moto + a real registry).
//!
//! The stand-in's token proxy runs inside the test process, so these tests use a multi-threaded
//! runtime: the blocking `ferry` subprocess must not starve it.

#![allow(clippy::unwrap_used)]

use std::process::Output;

use ferry_testkit::ecr::EcrStandIn;
use ferry_testkit::{ImageSpec, TestRegistry, cli, skopeo};

fn ferry(stand_in: &EcrStandIn, args: &[&str]) -> Output {
    let empty = tempfile::tempdir().unwrap();
    cli::run(
        env!("CARGO_BIN_EXE_ferry"),
        empty.path(),
        Some(stand_in),
        args,
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn source_with_image(tag: &str, seed: u64) -> (TestRegistry, ferry_testkit::BuiltImage) {
    let src = TestRegistry::anonymous().await.unwrap();
    let mut spec = ImageSpec::new(&["linux/amd64", "linux/arm64"]);
    spec.seed = seed;
    let image = ferry_testkit::build(&spec).unwrap();
    image.push(&src.url(), "app", tag, None).await.unwrap();
    (src, image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_prints_the_registry_password_only() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let out = ferry(&stand_in, &["login"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim_end(), stand_in.password());
    assert!(!text(&out.stderr).contains(&stand_in.password()));

    let out = ferry(&stand_in, &["login", "--registry", stand_in.account()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim_end(), stand_in.password());

    let out = ferry(&stand_in, &["login", "--registry", "12345"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--registry"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_creates_the_repository_with_settings_and_reports_drift() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let (src, image) = source_with_image("v1", 1).await;
    let policy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        policy.path(),
        r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#,
    )
    .unwrap();
    let to = format!("{}/team/app:v1", stand_in.ecr_host());
    let out = ferry(
        &stand_in,
        &[
            "copy",
            &format!("{}/app:v1", src.host()),
            &to,
            "--tag-mutability",
            "IMMUTABLE",
            "--scan-on-push",
            "true",
            "--repository-tag",
            "team=core",
            "--lifecycle-policy",
            policy.path().to_str().unwrap(),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("created repository"),
        "{}",
        text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["digest"], image.index.digest.as_str());
    assert_eq!(report["repository"]["tag_mutability"], "IMMUTABLE");
    assert_eq!(report["repository"]["scan_on_push"], true);

    let password = stand_in.password();
    let raw = skopeo::inspect_raw(
        &format!("{}/team/app:v1", stand_in.registry().host()),
        Some(("AWS", &password)),
    )
    .await
    .unwrap();
    assert_eq!(ferry_testkit::sha256_digest(&raw), image.index.digest);

    // The same image again: unchanged, even though the repository is immutable.
    let out = ferry(
        &stand_in,
        &["copy", &format!("{}/app:v1", src.host()), &to, "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["tags"][0]["outcome"], "unchanged");

    // Asking for other settings reports the drift; --enforce-settings corrects it.
    let out = ferry(
        &stand_in,
        &[
            "copy",
            &format!("{}/app:v1", src.host()),
            &to,
            "--scan-on-push",
            "false",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    let out = ferry(
        &stand_in,
        &[
            "copy",
            &format!("{}/app:v1", src.host()),
            &to,
            "--scan-on-push",
            "false",
            "--enforce-settings",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["repository"]["scan_on_push"], false);
}

/// A destination naming no registry goes where --registry says, else to the caller's own ECR
/// registry, as `ferry push` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_without_a_registry_goes_to_ecr() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let (src, image) = source_with_image("v1", 3).await;
    let from = format!("{}/app:v1", src.host());
    let host = stand_in.ecr_host();
    for (destination, extra) in [
        ("team/default:v1", vec![]),
        ("team/by-account", vec!["--registry", stand_in.account()]),
    ] {
        let mut args = vec!["copy", from.as_str(), destination, "--json"];
        args.extend(extra);
        let out = ferry(&stand_in, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let repository = destination.split(':').next().unwrap();
        assert_eq!(report["registry"], host.as_str());
        assert_eq!(report["repository_uri"], format!("{host}/{repository}"));
        // No tag in the destination: `latest`.
        let tag = if destination.contains(':') {
            "v1"
        } else {
            "latest"
        };
        assert_eq!(
            report["image_uris"][0],
            format!("{host}/{repository}:{tag}")
        );
        assert_eq!(report["digest"], image.index.digest.as_str());
        assert_eq!(report["repository"]["created"], true);
    }
    let out = ferry(
        &stand_in,
        &[
            "copy",
            &from,
            &format!("{host}/team/x:v1"),
            "--registry",
            "localhost:5000",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--registry"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_an_immutable_tag_fails_with_both_digests() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let (src, v1) = source_with_image("v1", 1).await;
    let v2 = ferry_testkit::build(&{
        let mut spec = ImageSpec::new(&["linux/amd64"]);
        spec.seed = 2;
        spec
    })
    .unwrap();
    v2.push(&src.url(), "app", "v2", None).await.unwrap();
    let to = format!("{}/locked:release", stand_in.ecr_host());
    let out = ferry(
        &stand_in,
        &[
            "copy",
            &format!("{}/app:v1", src.host()),
            &to,
            "--tag-mutability",
            "IMMUTABLE",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = ferry(&stand_in, &["copy", &format!("{}/app:v2", src.host()), &to]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("immutable") && err.contains("IMMUTABLE"),
        "{err}"
    );
    assert!(
        err.contains(&v1.index.digest) && err.contains(&v2.index.digest),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_create_refuses_a_missing_repository() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let (src, _) = source_with_image("v1", 1).await;
    let out = ferry(
        &stand_in,
        &[
            "copy",
            &format!("{}/app:v1", src.host()),
            &format!("{}/nowhere:v1", stand_in.ecr_host()),
            "--no-create",
        ],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    // One line for the cause, one for what to do about it in the CLI's terms.
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].contains("nowhere"), "{err}");
    assert_eq!(
        lines[1], "ferry: hint: drop --no-create to create it",
        "{err}"
    );
}

/// The stand-in's data plane does not tell moto about pushes, so record the image in moto the
/// way ECR would have (PutImage, with the digest given explicitly as rig-notes advise).
async fn record_in_control_plane(
    stand_in: &EcrStandIn,
    repository: &str,
    tag: &str,
    manifest: &ferry_testkit::Blob,
) {
    let body = serde_json::json!({
        "repositoryName": repository,
        "imageManifest": String::from_utf8(manifest.bytes.to_vec()).unwrap(),
        "imageManifestMediaType": manifest.media_type,
        "imageTag": tag,
        "imageDigest": manifest.digest,
    });
    let response = reqwest::Client::new()
        .post(stand_in.api_url())
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "X-Amz-Target",
            "AmazonEC2ContainerRegistry_V20150921.PutImage",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_lists_what_the_repository_holds() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let (src, image) = source_with_image("v1", 1).await;
    let out = ferry(
        &stand_in,
        &[
            "copy",
            &format!("{}/app:v1", src.host()),
            &format!("{}/listed:v1", stand_in.ecr_host()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    record_in_control_plane(&stand_in, "listed", "v1", &image.index).await;

    let out = ferry(&stand_in, &["images", "listed", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let images: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = images.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{images}");
    assert_eq!(listed[0]["digest"], image.index.digest.as_str());
    assert_eq!(listed[0]["tags"][0], "v1");

    let out = ferry(
        &stand_in,
        &["images", &format!("{}/listed", stand_in.ecr_host())],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table.contains(&image.index.digest) && table.contains("v1"),
        "{table}"
    );

    let out = ferry(&stand_in, &["images", "does-not-exist"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does-not-exist"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_aws_credentials_is_a_clear_error() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = cli::command(env!("CARGO_BIN_EXE_ferry"), empty.path(), None)
        .envs(stand_in.env_without_credentials())
        .args(["login"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].contains("no AWS credentials found"), "{err}");
    assert!(
        lines[1].starts_with("ferry: hint: set AWS_ACCESS_KEY_ID"),
        "{err}"
    );
}
