//! `command: mirror` as a runner runs the Action (see `common/action_runner.rs`): a workspace
//! folder of `EcrImageMirror` files synced from a test registry into the ECR stand-in.
//!
//! These tests need a Docker Engine and fail, never skip, without one.

#![allow(clippy::unwrap_used)]

mod common;

use common::action_runner::*;
use ferry_testkit::ecr::EcrStandIn;
use ferry_testkit::{ImageSpec, TestRegistry, skopeo};

/// A workspace whose `mirrors/` folder mirrors `tags` of `source`'s `app` into the stand-in's
/// `mirror/app`, next to a document of another kind that must be skipped.
fn workspace_with_mirror(stand_in: &EcrStandIn, source: &TestRegistry, tags: &str) -> Workspace {
    let workspace = Workspace::new();
    let dir = workspace.dir.path().join("mirrors");
    std::fs::create_dir(&dir).unwrap();
    let yaml = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: unrelated}}
spec: {{replicas: 1}}
---
apiVersion: ferry.dev/v1alpha1
kind: EcrImageMirror
metadata: {{name: app}}
spec:
  source: {{image: "{}/app", tags: [{tags}], referrers: false}}
  destination: {{registry: "{}", repository: mirror/app}}
"#,
        source.host(),
        stand_in.account()
    );
    std::fs::write(dir.join("app.yaml"), yaml).unwrap();
    workspace
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_a_workspace_folder_as_a_runner_runs_it() {
    let image = action_image().await;
    let stand_in = EcrStandIn::start().await.unwrap();
    let source = TestRegistry::anonymous().await.unwrap();
    let built = ferry_testkit::build(&ImageSpec::new(&["linux/amd64", "linux/arm64"])).unwrap();
    built.push(&source.url(), "app", "v1", None).await.unwrap();
    let digest = built.index.digest.to_string();
    let host = stand_in.ecr_host();

    let workspace = workspace_with_mirror(&stand_in, &source, "v1");
    let (out, stdout, stderr) = run_with(
        image,
        &workspace,
        &stand_in,
        &[
            ("INPUT_COMMAND", "mirror"),
            ("INPUT_FILE", "mirrors"),
            ("INPUT_STATE", "mirror-state.json"),
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "the Action failed\n{stdout}\n{stderr}"
    );

    // The outputs.
    let outputs = workspace.outputs();
    assert_eq!(outputs["failed"], "0");
    let mirrors: serde_json::Value = serde_json::from_str(&outputs["mirrors"]).unwrap();
    assert_eq!(
        mirrors,
        serde_json::json!([{
            "name": "default/app",
            "repositoryUri": format!("{host}/mirror/app"),
            "tags": [{"tag": "v1", "state": "synced", "digest": digest}],
        }])
    );

    // The image, at the source's digest.
    let password = stand_in.password();
    let raw = skopeo::inspect_raw(
        &format!("{}/mirror/app:v1", stand_in.registry().host()),
        Some(("AWS", &password)),
    )
    .await
    .unwrap();
    assert_eq!(ferry_testkit::sha256_digest(&raw), digest);
    assert!(workspace.dir.path().join("mirror-state.json").is_file());

    // The job summary: a table for the mirror, nothing of the other document.
    let summary = workspace.summary();
    assert!(
        summary.starts_with("### ferry mirror: `/github/workspace/mirrors`\n"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "#### `default/app`: `{}/app` → `{host}/mirror/app`",
            source.host()
        )),
        "{summary}"
    );
    assert!(
        summary.contains("| tag | state | source digest | destination digest | note |"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("| `v1` | synced | `{digest}` | `{digest}` | ")),
        "{summary}"
    );
    assert!(!summary.contains("unrelated"), "{summary}");
    assert!(
        stdout.starts_with("::group::Sync the mirrors of "),
        "{stdout}"
    );
    assert_secrets_masked(&stdout, &stderr, &[&password]);

    // A tag missing at the source: an annotation naming it, exit 1, and still the outputs and
    // summary of the tag that synced.
    let workspace = workspace_with_mirror(&stand_in, &source, "v1, v9");
    let (out, stdout, stderr) = run_with(
        image,
        &workspace,
        &stand_in,
        &[("INPUT_COMMAND", "mirror"), ("INPUT_FILE", "mirrors")],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("::error title=ferry mirror default/app%3A tag v9 failed::")),
        "{stdout}"
    );
    let outputs = workspace.outputs();
    assert_eq!(outputs["failed"], "1");
    let mirrors: serde_json::Value = serde_json::from_str(&outputs["mirrors"]).unwrap();
    assert_eq!(mirrors[0]["tags"][0]["state"], "synced");
    assert_eq!(mirrors[0]["tags"][1]["tag"], "v9");
    assert_eq!(mirrors[0]["tags"][1]["state"], "failed");
    let summary = workspace.summary();
    assert!(summary.contains("| `v1` | synced | "), "{summary}");
    assert!(summary.contains("| `v9` | failed | - | - | "), "{summary}");
}
