//! `ferry mirror -f FILE|DIR` run as a user would, syncing a source registry (behind a
//! `FaultProxy` that records every request) into the local ECR stand-in.
//!
//! The stand-in's token proxy runs inside the test process, so these tests use a multi-threaded
//! runtime: the blocking `ferry` subprocess must not starve it.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use ferry_testkit::ecr::EcrStandIn;
use ferry_testkit::{FaultProxy, ImageSpec, TestRegistry, cli, skopeo};

fn ferry(stand_in: &EcrStandIn, args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    cli::run(
        env!("CARGO_BIN_EXE_ferry"),
        home.path(),
        Some(stand_in),
        args,
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A source registry holding `app:v1` and `app:v2` (different images), seen through a proxy.
struct Source {
    _registry: TestRegistry,
    proxy: FaultProxy,
    digests: Vec<String>,
}

async fn source() -> Source {
    let registry = TestRegistry::anonymous().await.unwrap();
    let mut digests = Vec::new();
    for (seed, tag) in [(11, "v1"), (12, "v2")] {
        let mut spec = ImageSpec::new(&["linux/amd64", "linux/arm64"]);
        spec.seed = seed;
        let image = ferry_testkit::build(&spec).unwrap();
        image.push(&registry.url(), "app", tag, None).await.unwrap();
        digests.push(image.index.digest.to_string());
    }
    let proxy = FaultProxy::start(&registry.url()).await.unwrap();
    Source {
        _registry: registry,
        proxy,
        digests,
    }
}

/// A folder with one mirror of `tags` into the stand-in's `mirror/app`, and a document of
/// another kind that must be skipped.
fn mirrors_dir(
    stand_in: &EcrStandIn,
    source: &Source,
    tags: &str,
    extra: &str,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: unrelated}}
data: {{key: value}}
---
apiVersion: ferry.dev/v1alpha1
kind: EcrImageMirror
metadata: {{name: app}}
spec:
  source: {{image: "{}/app", tags: [{tags}], referrers: false{extra}}}
  destination: {{registry: "{}", repository: mirror/app}}
"#,
        source.proxy.host(),
        stand_in.account()
    );
    std::fs::write(dir.path().join("app.yaml"), yaml).unwrap();
    dir
}

async fn destination_digest(stand_in: &EcrStandIn, tag: &str) -> Option<String> {
    let password = stand_in.password();
    skopeo::inspect_raw(
        &format!("{}/mirror/app:{tag}", stand_in.registry().host()),
        Some(("AWS", &password)),
    )
    .await
    .ok()
    .map(|raw| ferry_testkit::sha256_digest(&raw).to_string())
}

/// The state column of the table row for `tag`.
fn tag_state(stdout: &str, tag: &str) -> Option<String> {
    stdout.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some(tag)).then(|| words.next().unwrap_or("").to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_then_cold_then_warm_with_a_state_file() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let source = source().await;
    let dir = mirrors_dir(&stand_in, &source, "v1, v2", "");
    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("state.json");
    let (dir_arg, state_arg) = (dir.path().to_str().unwrap(), state_file.to_str().unwrap());

    // A dry run plans and pushes nothing, and writes no state.
    let out = ferry(
        &stand_in,
        &["mirror", "-f", dir_arg, "--state", state_arg, "--dry-run"],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("(dry run)"), "{stdout}");
    assert_eq!(
        tag_state(&stdout, "v1").as_deref(),
        Some("pending"),
        "{stdout}"
    );
    assert_eq!(destination_digest(&stand_in, "v1").await, None);
    assert!(!state_file.exists());

    // Cold: both tags copied, the other document skipped.
    let out = ferry(&stand_in, &["mirror", "-f", dir_arg, "--state", state_arg]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    assert!(stdout.contains("mirror default/app: "), "{stdout}");
    assert!(!stdout.contains("unrelated"), "{stdout}");
    for (tag, digest) in ["v1", "v2"].iter().zip(&source.digests) {
        assert_eq!(
            tag_state(&stdout, tag).as_deref(),
            Some("synced"),
            "{stdout}"
        );
        assert_eq!(
            destination_digest(&stand_in, tag).await.as_ref(),
            Some(digest)
        );
    }
    assert!(state_file.is_file());

    // Warm: every tag synced again, without a single manifest GET at the source.
    source.proxy.clear();
    let out = ferry(
        &stand_in,
        &["mirror", "-f", dir_arg, "--state", state_arg, "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["name"], "default/app");
    let tags = json[0]["status"]["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 2, "{json}");
    for (tag, digest) in tags.iter().zip(&source.digests) {
        assert_eq!(tag["state"], "Synced", "{json}");
        assert_eq!(tag["digest"], digest.as_str());
    }
    assert_eq!(source.proxy.count("GET", "/manifests/"), 0);
    assert!(source.proxy.count("HEAD", "/manifests/") > 0);

    // The table says the same.
    let out = ferry(&stand_in, &["mirror", "-f", dir_arg, "--state", state_arg]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for tag in ["v1", "v2"] {
        assert_eq!(
            tag_state(&stdout, tag).as_deref(),
            Some("synced"),
            "{stdout}"
        );
    }
    assert_eq!(source.proxy.count("GET", "/manifests/"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_missing_at_the_source_fails_alone() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let source = source().await;
    let dir = mirrors_dir(&stand_in, &source, "v1, v9", "");
    let out = ferry(&stand_in, &["mirror", "-f", dir.path().to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("mirror default/app") && stderr.contains("v9"),
        "{stderr}"
    );
    assert_eq!(
        tag_state(&stdout, "v1").as_deref(),
        Some("synced"),
        "{stdout}"
    );
    assert_eq!(
        tag_state(&stdout, "v9").as_deref(),
        Some("failed"),
        "{stdout}"
    );
    assert_eq!(
        destination_digest(&stand_in, "v1").await.as_ref(),
        Some(&source.digests[0])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_document_is_named_and_nothing_syncs() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let source = source().await;
    let dir = mirrors_dir(&stand_in, &source, "v1", "");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\napiVersion: ferry.dev/v1alpha1\n\
         kind: EcrImageMirror\nmetadata: {name: broken}\nspec:\n  source: {tags: [v1]}\n  \
         destination: {repository: mirror/broken}\n",
    )
    .unwrap();
    let out = ferry(&stand_in, &["mirror", "-f", dir.path().to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(bad.to_str().unwrap()), "{stderr}");
    assert!(
        stderr.contains("document 2: spec.source: missing field `image`"),
        "{stderr}"
    );
    assert_eq!(source.proxy.requests().len(), 0);
    assert_eq!(destination_digest(&stand_in, "v1").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_naming_a_credential_helper_is_refused() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let source = source().await;
    let dir = mirrors_dir(
        &stand_in,
        &source,
        "v1",
        ", credentialsSecretRef: {name: regcred}",
    );
    let secrets = tempfile::tempdir().unwrap();
    write_secret(secrets.path(), "regcred", r#"{"credsStore": "desktop"}"#);
    let out = ferry(
        &stand_in,
        &[
            "mirror",
            "-f",
            dir.path().to_str().unwrap(),
            "--secrets-dir",
            secrets.path().to_str().unwrap(),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("credentialsSecretRef"), "{stderr}");
    assert!(
        stderr.contains("\"desktop\"") && stderr.contains("refused"),
        "{stderr}"
    );
    assert_eq!(source.proxy.requests().len(), 0);
}

fn write_secret(dir: &Path, name: &str, config: &str) {
    std::fs::create_dir(dir.join(name)).unwrap();
    std::fs::write(dir.join(name).join(".dockerconfigjson"), config).unwrap();
}

/// The repository a mirror creates has the spec's `repositorySettings`, as ECR reports them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_settings_of_the_spec_are_applied() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let source = source().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"apiVersion: ferry.dev/v1alpha1
kind: EcrImageMirror
metadata: {{name: app}}
spec:
  source: {{image: "{}/app", tags: [v1], referrers: false}}
  destination:
    registry: "{}"
    repository: mirror/app
    repositorySettings:
      tagMutability: IMMUTABLE
      scanOnPush: true
      lifecyclePolicy: '{{"rules":[{{"rulePriority":1,"selection":{{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14}},"action":{{"type":"expire"}}}}]}}'
"#,
        source.proxy.host(),
        stand_in.account()
    );
    std::fs::write(dir.path().join("app.yaml"), yaml).unwrap();
    let out = ferry(&stand_in, &["mirror", "-f", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        tag_state(&text(&out.stdout), "v1").as_deref(),
        Some("synced")
    );
    assert_eq!(stand_in.api_call_count("CreateRepository"), 1);
    assert_eq!(stand_in.api_call_count("PutLifecyclePolicy"), 1);

    // What ECR holds now, as `ferry copy --json` reports the repository it writes to.
    let out = ferry(
        &stand_in,
        &[
            "copy",
            &format!("{}/app:v1", source.proxy.host()),
            "mirror/app:v1",
            "--registry",
            stand_in.account(),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["repository"]["created"], false);
    assert_eq!(report["repository"]["tag_mutability"], "IMMUTABLE");
    assert_eq!(report["repository"]["scan_on_push"], true);
    assert_eq!(report["tags"][0]["outcome"], "unchanged");
    assert_eq!(report["digest"], source.digests[0].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_mirrors_sync_in_parallel_with_progress_and_tables_in_file_order() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let source = source().await;
    let dir = tempfile::tempdir().unwrap();
    let names = ["m1", "m2", "m3", "m4", "m5"];
    let yaml: String = names
        .iter()
        .map(|name| {
            format!(
                "---\napiVersion: ferry.dev/v1alpha1\nkind: EcrImageMirror\nmetadata: {{name: \
                 {name}}}\nspec:\n  source: {{image: \"{}/app\", tags: [v1], referrers: \
                 false}}\n  destination: {{registry: \"{}\", repository: mirror/{name}}}\n",
                source.proxy.host(),
                stand_in.account()
            )
        })
        .collect();
    std::fs::write(dir.path().join("many.yaml"), yaml).unwrap();
    let state = dir.path().join("state.json");

    let out = ferry(
        &stand_in,
        &[
            "mirror",
            "-f",
            dir.path().join("many.yaml").to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--parallel",
            "3",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}\n{stdout}");
    // One progress line per mirror as it finishes, counting up to the total.
    for n in 1..=names.len() {
        assert!(
            stderr.contains(&format!("[{n}/5] mirror default/")),
            "{stderr}"
        );
    }
    for name in names {
        assert!(
            stderr.contains(&format!("mirror default/{name}: 1 synced")),
            "{stderr}"
        );
    }
    // The tables come in the file's order, whatever order the syncs ended in.
    let positions: Vec<usize> = names
        .iter()
        .map(|name| stdout.find(&format!("mirror default/{name}: ")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{stdout}");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["mirrors"].as_object().unwrap().len(), 5, "{saved}");

    assert!(
        ferry(&stand_in, &["mirror", "-f", "x.yaml", "--parallel", "0"])
            .status
            .code()
            == Some(2),
        "--parallel 0 is a usage error"
    );
}
