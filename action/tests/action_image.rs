//! The GitHub Action as a runner runs it: its image built by `action/image.sh`, then
//! `docker run` with `INPUT_*` variables, the Docker socket and a workspace mounted, and the
//! `GITHUB_OUTPUT` / `GITHUB_STEP_SUMMARY` files — against the local ECR stand-in, reached over
//! the host's loopback (`--network host`).
//!
//! These tests need a Docker Engine and fail, never skip, without one. The stand-in's token
//! proxy runs inside this process, so the runtime is multi-threaded and every `docker` command
//! runs on a blocking thread.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::action_runner::*;
use ferry_testkit::ecr::EcrStandIn;
use ferry_testkit::skopeo;

const MAX_IMAGE_BYTES: u64 = 25_000_000;

/// A local image of two layers of random bytes, built with `docker build` from scratch.
struct LocalImage {
    name: String,
}

impl LocalImage {
    async fn build(name: &str) -> LocalImage {
        let dir = tempfile::tempdir().unwrap();
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            ^ u64::from(std::process::id());
        for (i, file) in ["a", "b"].iter().enumerate() {
            std::fs::write(
                dir.path().join(file),
                random_bytes(seed + i as u64, 64 * 1024),
            )
            .unwrap();
        }
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY a /a\nCOPY b /b\n",
        )
        .unwrap();
        let out = docker(vec![
            "build".into(),
            "-q".into(),
            "-t".into(),
            name.into(),
            dir.path().display().to_string(),
        ])
        .await;
        assert!(out.status.success(), "docker build: {}", text(&out.stderr));
        LocalImage { name: name.into() }
    }
}

impl Drop for LocalImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.name])
            .output();
    }
}

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_is_small_and_has_no_shell() {
    let image = action_image().await;
    let out = docker(
        [
            "image",
            "inspect",
            "--format",
            "{{.Size}} {{json .Config.Entrypoint}}",
            image,
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let inspected = text(&out.stdout);
    let (size, entrypoint) = inspected.trim().split_once(' ').unwrap();
    let size: u64 = size.parse().unwrap();
    assert!(
        size <= MAX_IMAGE_BYTES,
        "the Action's image is {size} bytes, over the {MAX_IMAGE_BYTES}-byte budget"
    );
    assert_eq!(entrypoint, r#"["/ferry","action"]"#);

    let out = docker(
        [
            "run",
            "--rm",
            "--entrypoint",
            "/bin/sh",
            image,
            "-c",
            "true",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(!out.status.success(), "the image has a shell");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_fails_with_an_annotation() {
    let image = action_image().await;
    let workspace = Workspace::new();
    let env = [
        ("INPUT_COMMAND", "push"),
        ("INPUT_IMAGE", "app:1"),
        ("INPUT_SCAN-ON-PUSH", "sometimes"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let out = run_action(image, &workspace, &env).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(
            "::error title=ferry action%3A invalid input::input `scan-on-push`: expected true \
             or false, got \"sometimes\""
        ),
        "{}",
        text(&out.stdout)
    );
    assert!(workspace.outputs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_a_local_image_as_a_runner_runs_it() {
    let image = action_image().await;
    let stand_in = EcrStandIn::start().await.unwrap();
    let app = LocalImage::build(&format!("ferry-action-test/app{}:1", std::process::id())).await;
    let workspace = Workspace::new();

    let (out, stdout, stderr) = run_with(
        image,
        &workspace,
        &stand_in,
        &[
        ("INPUT_COMMAND", "push"),
        ("INPUT_IMAGE", app.name.as_str()),
        ("INPUT_REPOSITORY", "team/app"),
        ("INPUT_TAGS", "1.0\nlatest"),
        ("INPUT_CREATE-REPOSITORY", "true"),
        ("INPUT_SCAN-ON-PUSH", "true"),
        (
            "INPUT_LIFECYCLE-POLICY",
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#,
        ),
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "the Action failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );

    // Outputs.
    let host = stand_in.ecr_host();
    let outputs = workspace.outputs();
    assert_eq!(outputs["registry"], host);
    assert_eq!(outputs["repository-uri"], format!("{host}/team/app"));
    assert_eq!(outputs["image-uri"], format!("{host}/team/app:1.0"));
    assert_eq!(
        outputs["image-uris"],
        format!("{host}/team/app:1.0\n{host}/team/app:latest")
    );
    let digest = &outputs["digest"];
    let password = stand_in.password();
    let raw = skopeo::inspect_raw(
        &format!("{}/team/app:latest", stand_in.registry().host()),
        Some(("AWS", &password)),
    )
    .await
    .unwrap();
    assert_eq!(&ferry_testkit::sha256_digest(&raw), digest);
    // The inline lifecycle policy went through a file in the image's /tmp.
    assert_eq!(stand_in.api_call_count("PutLifecyclePolicy"), 1);

    // The job summary.
    let summary = workspace.summary();
    assert!(summary.starts_with("### ferry push: "), "{summary}");
    assert!(summary.contains(&format!("| `1.0` | created | `{host}/team/app:1.0` |")));
    assert!(summary.contains(&format!(
        "| `latest` | created | `{host}/team/app:latest` |"
    )));
    assert!(summary.contains(&format!("| digest | `{digest}` |")));
    assert!(summary.contains("| uploaded | "), "{summary}");
    assert!(summary.contains("| time | "), "{summary}");

    // The log: one group around the push; the password masked before anything else printed
    // it, and nowhere but on the mask lines.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("::group::Push {}", app.name));
    let mask = format!("::add-mask::{password}");
    let first_mask = lines.iter().position(|l| *l == mask).unwrap_or_else(|| {
        panic!("no {mask:?} line\n{stdout}");
    });
    assert!(
        lines[..first_mask]
            .iter()
            .all(|l| l.starts_with("::group::")),
        "something was printed before the mask\n{stdout}"
    );
    let end_group = lines.iter().position(|l| *l == "::endgroup::").unwrap();
    assert!(first_mask < end_group, "{stdout}");
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
    assert!(
        lines.contains(&format!("::add-mask::{token}").as_str()),
        "{stdout}"
    );
    assert_secrets_masked(&stdout, &stderr, &[&password, &token]);
    let files = std::fs::read_to_string(workspace.dir.path().join("out")).unwrap() + &summary;
    assert!(!files.contains(&password));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_push_is_an_annotation_and_a_summary() {
    let image = action_image().await;
    let stand_in = EcrStandIn::start().await.unwrap();
    let workspace = Workspace::new();
    let missing = format!("ferry-action-test/missing{}:1", std::process::id());
    let (out, stdout, stderr) = run_with(
        image,
        &workspace,
        &stand_in,
        &[
            ("INPUT_IMAGE", missing.as_str()),
            ("INPUT_REPOSITORY", "team/app"),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let annotation = stdout
        .lines()
        .find(|l| l.starts_with("::error title=ferry push failed::"))
        .unwrap_or_else(|| panic!("no error annotation\n{stdout}"));
    assert!(annotation.len() > "::error title=ferry push failed::".len());
    // The annotation is outside the log group, where the run's page shows it first.
    let end_group = stdout.find("::endgroup::").unwrap();
    assert!(stdout.find("::error ").unwrap() > end_group, "{stdout}");
    let summary = workspace.summary();
    assert!(
        summary.starts_with(&format!("### ferry push failed: `{missing}`")),
        "{summary}"
    );
    assert!(workspace.outputs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_a_manifest_list_as_a_runner_runs_it() {
    let image = action_image().await;
    let stand_in = EcrStandIn::start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    // The per-architecture images, pushed as an earlier step would (here by the CLI).
    let mut digests = Vec::new();
    for (platform, tag) in [("linux/amd64", "1.0-amd64"), ("linux/arm64", "1.0-arm64")] {
        let local = tokio::task::spawn_blocking(move || {
            ferry_testkit::LocalImage::build_for(Some(platform), 1, 16).unwrap()
        })
        .await
        .unwrap();
        let out = ferry_testkit::cli::run(
            env!("CARGO_BIN_EXE_ferry"),
            home.path(),
            Some(&stand_in),
            &[
                "push",
                &local.name,
                "--repository",
                "team/app",
                "--tag",
                tag,
                "--json",
            ],
        );
        let pushed = ferry_testkit::cli::json(&out);
        digests.push(pushed["digest"].as_str().unwrap().to_string());
    }

    let workspace = Workspace::new();
    let (out, stdout, stderr) = run_with(
        image,
        &workspace,
        &stand_in,
        &[
            ("INPUT_COMMAND", "manifest"),
            ("INPUT_REPOSITORY", "team/app"),
            ("INPUT_IMAGES", "1.0-amd64\n1.0-arm64\n"),
            ("INPUT_TAGS", "1.0, latest"),
            ("INPUT_FORMAT", "oci"),
            ("INPUT_ANNOTATIONS", "org.opencontainers.image.version=1.0"),
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "the Action failed\n{stdout}\n{stderr}"
    );

    let host = stand_in.ecr_host();
    let outputs = workspace.outputs();
    assert_eq!(outputs["image-uri"], format!("{host}/team/app:1.0"));
    assert_eq!(
        outputs["image-uris"],
        format!("{host}/team/app:1.0\n{host}/team/app:latest")
    );
    let password = stand_in.password();
    let raw = skopeo::inspect_raw(
        &format!("{}/team/app:latest", stand_in.registry().host()),
        Some(("AWS", &password)),
    )
    .await
    .unwrap();
    assert_eq!(ferry_testkit::sha256_digest(&raw), outputs["digest"]);
    // `manifest` is the inspect JSON: the list's rows and the list itself.
    let inspected: serde_json::Value = serde_json::from_str(&outputs["manifest"]).unwrap();
    assert_eq!(inspected["kind"], "list");
    assert_eq!(
        inspected["media_type"],
        "application/vnd.oci.image.index.v1+json"
    );
    let rows: Vec<(&str, &str)> = inspected["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"].as_str().unwrap(),
                m["digest"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("linux/amd64", digests[0].as_str()),
            ("linux/arm64", digests[1].as_str())
        ]
    );
    let list: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(inspected["manifest"], list);
    assert_eq!(
        list["annotations"]["org.opencontainers.image.version"],
        "1.0"
    );

    let summary = workspace.summary();
    assert!(summary.starts_with("### ferry manifest: "), "{summary}");
    assert!(
        summary.contains(&format!("| linux/arm64 | `{}` |", digests[1])),
        "{summary}"
    );
    assert!(summary.contains(&format!(
        "| `latest` | created | `{host}/team/app:latest` |"
    )));

    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("::group::Create the manifest list"),
        "{stdout}"
    );
    assert_secrets_masked(&stdout, &stderr, &[&password]);

    // A missing image: an annotation naming it, a failure summary, no outputs.
    let workspace = Workspace::new();
    let (out, stdout, stderr) = run_with(
        image,
        &workspace,
        &stand_in,
        &[
            ("INPUT_COMMAND", "manifest"),
            ("INPUT_REPOSITORY", "team/app"),
            ("INPUT_IMAGES", "1.0-amd64,1.0-s390x"),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let annotation = stdout
        .lines()
        .find(|l| l.starts_with("::error title=ferry manifest failed::"))
        .unwrap_or_else(|| panic!("no error annotation\n{stdout}"));
    assert!(annotation.contains("1.0-s390x"), "{annotation}");
    assert!(
        workspace
            .summary()
            .starts_with("### ferry manifest failed: ")
    );
    assert!(workspace.outputs().is_empty());
}
