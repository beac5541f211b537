//! `command: copy` of the GitHub Action, run as a runner runs it (see `common::action_runner`):
//! an image of another registry copied into the ECR stand-in.
//!
//! These tests need a Docker Engine and fail, never skip, without one.

#![allow(clippy::unwrap_used)]

mod common;

use common::action_runner::*;
use ferry_testkit::ecr::EcrStandIn;
use ferry_testkit::{ImageSpec, TestRegistry, skopeo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_an_image_of_another_registry_as_a_runner_runs_it() {
    let image = action_image().await;
    let stand_in = EcrStandIn::start().await.unwrap();
    let source = TestRegistry::anonymous().await.unwrap();
    let built = ferry_testkit::build(&ImageSpec::new(&["linux/amd64", "linux/arm64"])).unwrap();
    built
        .push(&source.url(), "library/app", "3.20", None)
        .await
        .unwrap();
    let from = format!("{}/library/app:3.20", source.host());
    let source_digest = built.index.digest.as_str().to_string();

    let workspace = Workspace::new();
    let inputs = [
        ("INPUT_COMMAND", "copy"),
        ("INPUT_SOURCE", from.as_str()),
        ("INPUT_DESTINATION", "mirror/app"),
        ("INPUT_REGISTRY", stand_in.account()),
        ("INPUT_TAGS", ""),
        ("INPUT_SCAN-ON-PUSH", "true"),
    ];
    let (out, stdout, stderr) = run_with(image, &workspace, &stand_in, &inputs).await;
    assert!(
        out.status.success(),
        "the Action failed\n{stdout}\n{stderr}"
    );

    // Without a tag anywhere, the destination gets the source's own.
    let host = stand_in.ecr_host();
    let outputs = workspace.outputs();
    assert_eq!(outputs["registry"], host);
    assert_eq!(outputs["repository-uri"], format!("{host}/mirror/app"));
    assert_eq!(outputs["image-uri"], format!("{host}/mirror/app:3.20"));
    assert_eq!(outputs["image-uris"], format!("{host}/mirror/app:3.20"));
    assert_eq!(outputs["source-digest"], source_digest);
    assert_eq!(outputs["digest"], source_digest);
    let password = stand_in.password();
    let raw = skopeo::inspect_raw(
        &format!("{}/mirror/app:3.20", stand_in.registry().host()),
        Some(("AWS", &password)),
    )
    .await
    .unwrap();
    assert_eq!(ferry_testkit::sha256_digest(&raw).as_str(), source_digest);
    assert_eq!(stand_in.api_call_count("CreateRepository"), 1);

    let summary = workspace.summary();
    assert!(
        summary.starts_with(&format!("### ferry copy: `{from}`\n")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "`{from}` → `{host}/mirror/app` (repository created)"
        )),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("| `3.20` | - | `{source_digest}` | created |")),
        "{summary}"
    );
    for (platform, manifest) in &built.manifests {
        let row = summary
            .lines()
            .find(|l| l.starts_with(&format!("| {platform} |")))
            .unwrap_or_else(|| panic!("no row for {platform} in\n{summary}"));
        assert!(
            row.ends_with(&format!("| `{}` | pushed |", manifest.digest)),
            "{row}"
        );
    }
    assert!(summary.contains("\nCopied "), "{summary}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("::group::Copy {from} to mirror/app:3.20"));
    assert_secrets_masked(&stdout, &stderr, &[&password]);

    // Again: nothing to copy, the tag unchanged, its previous digest shown.
    let warm = Workspace::new();
    let (out, stdout, stderr) = run_with(image, &warm, &stand_in, &inputs).await;
    assert!(out.status.success(), "warm run failed\n{stdout}\n{stderr}");
    assert_eq!(warm.outputs()["digest"], source_digest);
    let summary = warm.summary();
    assert!(
        summary.contains(&format!(
            "| `3.20` | `{source_digest}` | `{source_digest}` | unchanged |"
        )),
        "{summary}"
    );
    assert!(!summary.contains("repository created"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_source_is_an_annotation_and_no_outputs() {
    let image = action_image().await;
    let stand_in = EcrStandIn::start().await.unwrap();
    let source = TestRegistry::anonymous().await.unwrap();
    let from = format!("{}/library/app:9.9", source.host());
    let workspace = Workspace::new();
    let (out, stdout, stderr) = run_with(
        image,
        &workspace,
        &stand_in,
        &[
            ("INPUT_COMMAND", "copy"),
            ("INPUT_SOURCE", from.as_str()),
            ("INPUT_DESTINATION", "mirror/app"),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let annotation = stdout
        .lines()
        .find(|l| l.starts_with("::error title=ferry copy failed::"))
        .unwrap_or_else(|| panic!("no annotation in\n{stdout}"));
    assert!(annotation.contains("9.9"), "{annotation}");
    assert!(workspace.outputs().is_empty());
    let summary = workspace.summary();
    assert!(
        summary.starts_with(&format!("### ferry copy failed: `{from}`")),
        "{summary}"
    );
}
