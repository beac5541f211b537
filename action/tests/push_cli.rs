//! `ferry push` on this machine's real Docker Engine into the ECR stand-in: by `repo:tag` and by
//! short image ID, warm re-pushes, extra tags, `oci:` and `docker-archive:` sources, and the
//! errors a user meets.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use ferry_testkit::ecr::EcrStandIn;
use ferry_testkit::{ImageSpec, LocalImage, cli, skopeo};

fn ferry(stand_in: &EcrStandIn, cache: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = cli::command(env!("CARGO_BIN_EXE_ferry"), cache, Some(stand_in));
    cmd.envs(extra_env.iter().copied());
    cmd.args(args).output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    cli::json(out)
}

fn stderr(out: &Output) -> String {
    cli::stderr(out)
}

async fn manifest_at(stand_in: &EcrStandIn, reference: &str) -> serde_json::Value {
    let password = stand_in.password();
    let raw = skopeo::inspect_raw(
        &format!("{}/{reference}", stand_in.registry().host()),
        Some(("AWS", &password)),
    )
    .await
    .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_by_name_then_warm_and_extra_tags() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let image = LocalImage::build(3, 256).unwrap();

    let first = json(&ferry(
        &stand_in,
        cache.path(),
        &[
            "push",
            &image.name,
            "--repository",
            "team/app",
            "--tag",
            "v1",
            "--json",
        ],
        &[],
    ));
    assert_eq!(first["layers_uploaded"], 3);
    assert_eq!(first["tags"][0]["outcome"], "created");
    assert!(first["repository_created"].as_bool().unwrap());
    let digest = first["digest"].as_str().unwrap().to_string();
    assert_eq!(
        first["image_uris"][0],
        format!("{}/team/app:v1", stand_in.ecr_host())
    );

    // What the registry holds: the engine's exact config (its digest is the image ID) and
    // three gzip layers.
    let manifest = manifest_at(&stand_in, "team/app:v1").await;
    assert_eq!(manifest["config"]["digest"], image.id.as_str());
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 3);
    let password = stand_in.password();
    let raw = skopeo::inspect_raw(
        &format!("{}/team/app:v1", stand_in.registry().host()),
        Some(("AWS", &password)),
    )
    .await
    .unwrap();
    assert_eq!(ferry_testkit::sha256_digest(&raw), digest);

    assert_layers_match_diff_ids(&stand_in, "team/app:v1").await;

    // Again: nothing uploaded, tags unchanged.
    let again = json(&ferry(
        &stand_in,
        cache.path(),
        &[
            "push",
            &image.name,
            "--repository",
            "team/app",
            "--tag",
            "v1",
            "--json",
        ],
        &[],
    ));
    assert_eq!(again["layers_uploaded"], 0);
    assert_eq!(again["bytes_uploaded"], 0);
    assert_eq!(again["tags"][0]["outcome"], "unchanged");
    assert_eq!(again["digest"], digest.as_str());

    // Extra tags cost manifest PUTs only.
    let tagged = json(&ferry(
        &stand_in,
        cache.path(),
        &[
            "push",
            &image.name,
            "--repository",
            "team/app",
            "--tag",
            "v1",
            "--tag",
            "stable",
            "--tag",
            "prod",
            "--json",
        ],
        &[],
    ));
    assert_eq!(tagged["layers_uploaded"], 0);
    let outcomes: Vec<&str> = tagged["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["unchanged", "created", "created"]);
    let prod = manifest_at(&stand_in, "team/app:prod").await;
    assert_eq!(prod["config"]["digest"], image.id.as_str());

    // A cold cache on a warm registry: layers are read and compressed again (same bytes, same
    // digest) but the tag stays unchanged.
    let cold_cache = tempfile::tempdir().unwrap();
    let recomputed = json(&ferry(
        &stand_in,
        cold_cache.path(),
        &[
            "push",
            &image.name,
            "--repository",
            "team/app",
            "--tag",
            "v1",
            "--json",
        ],
        &[],
    ));
    assert_eq!(
        recomputed["digest"],
        digest.as_str(),
        "compression is deterministic"
    );
    assert_eq!(recomputed["tags"][0]["outcome"], "unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_by_short_image_id_and_default_repository() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let image = LocalImage::build(2, 64).unwrap();
    let by_id = json(&ferry(
        &stand_in,
        cache.path(),
        &["push", &image.short_id(), "--repository", "by-id", "--json"],
        &[],
    ));
    assert_eq!(by_id["tags"][0]["tag"], "latest");
    let by_name = json(&ferry(
        &stand_in,
        cache.path(),
        &["push", &image.name, "--json"],
        &[],
    ));
    assert_eq!(by_name["digest"], by_id["digest"]);
    let (own_repo, own_tag) = image.name.split_once(':').unwrap();
    assert_eq!(by_name["repository"], own_repo);
    // No --tag: a `repo:tag` source keeps its own tag.
    assert_eq!(by_name["tags"][0]["tag"], own_tag);
    assert_eq!(by_name["tags"].as_array().unwrap().len(), 1);
    assert_eq!(
        by_name["image_uris"][0],
        format!("{}/{}", stand_in.ecr_host(), image.name)
    );

    let out = ferry(&stand_in, cache.path(), &["push", &image.short_id()], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--repository"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_from_oci_layout_and_docker_archive() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();

    let built = ferry_testkit::build(&ImageSpec::new(&["linux/amd64", "linux/arm64"])).unwrap();
    let layout = tempfile::tempdir().unwrap();
    built.write_oci_layout(layout.path(), "v9").unwrap();
    let source = format!("oci:{}:v9", layout.path().display());
    let pushed = json(&ferry(
        &stand_in,
        cache.path(),
        &["push", &source, "--repository", "from-oci", "--json"],
        &[],
    ));
    assert_eq!(
        pushed["digest"],
        built.index.digest.as_str(),
        "an OCI layout goes up unchanged"
    );
    // No --tag: the layout's tag.
    assert_eq!(pushed["tags"][0]["tag"], "v9");
    let password = stand_in.password();
    let raw = skopeo::inspect_raw(
        &format!("{}/from-oci:v9", stand_in.registry().host()),
        Some(("AWS", &password)),
    )
    .await
    .unwrap();
    assert_eq!(ferry_testkit::sha256_digest(&raw), built.index.digest);

    let image = LocalImage::build(2, 64).unwrap();
    let archive = tempfile::tempdir().unwrap();
    let tar = archive.path().join("image.tar");
    image.save(&tar).unwrap();
    let source = format!("docker-archive:{}", tar.display());
    let from_file = json(&ferry(
        &stand_in,
        cache.path(),
        &["push", &source, "--repository", "from-file", "--json"],
        &[],
    ));
    let manifest = manifest_at(&stand_in, "from-file:latest").await;
    assert_eq!(manifest["config"]["digest"], image.id.as_str());
    assert_eq!(from_file["layers_uploaded"], 2);
}

/// The layers stored are the engine's, byte for byte (see the helper).
async fn assert_layers_match_diff_ids(stand_in: &EcrStandIn, reference: &str) {
    let password = stand_in.password();
    let at = format!("{}/{reference}", stand_in.registry().host());
    skopeo::pull_checking_diff_ids(&at, Some(("AWS", &password)))
        .await
        .unwrap();
}

/// One error line (and at most one `ferry: hint:` line saying what to do about it).
fn assert_clear_failure(out: &Output, expect: &str) {
    assert!(!out.status.success(), "should fail");
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let hints = lines
        .iter()
        .filter(|l| l.starts_with("ferry: hint: "))
        .count();
    assert!(hints <= 1, "at most one hint: {err}");
    assert_eq!(lines.len() - hints, 1, "one line: {err}");
    assert!(err.contains(expect), "expected {expect:?} in {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_errors_for_what_users_get_wrong() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = ferry(
        &stand_in,
        cache.path(),
        &["push", "ferry-push-test/does-not-exist:1"],
        &[],
    );
    assert_clear_failure(&out, "no such local image");
    let out = ferry(
        &stand_in,
        cache.path(),
        &["push", "app:1", "--tag", "bad tag"],
        &[],
    );
    assert_clear_failure(&out, "--tag");
    let out = ferry(&stand_in, cache.path(), &["push", "Bad::Ref"], &[]);
    assert_clear_failure(&out, "IMAGE");
    let out = ferry(
        &stand_in,
        cache.path(),
        &["push", "app:1", "--repository", "Upper/Case"],
        &[],
    );
    assert_clear_failure(&out, "--repository");
    let out = ferry(
        &stand_in,
        cache.path(),
        &["push", "app:1"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_clear_failure(&out, "Docker Engine");

    let image = LocalImage::build(1, 4).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = cli::command(env!("CARGO_BIN_EXE_ferry"), empty.path(), None)
        .envs(stand_in.env_without_credentials())
        .args(["push", &image.name])
        .output()
        .unwrap();
    assert_clear_failure(&out, "no AWS credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_to_a_plain_registry_without_aws() {
    let registry = ferry_testkit::TestRegistry::anonymous().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let image = LocalImage::build(2, 64).unwrap();
    let out = cli::command(env!("CARGO_BIN_EXE_ferry"), cache.path(), None)
        .args([
            "push",
            &image.name,
            "--registry",
            &registry.host(),
            "--repository",
            "plain/app",
            "--tag",
            "v1",
            "--json",
        ])
        .output()
        .unwrap();
    let report = json(&out);
    assert_eq!(
        report["repository_uri"],
        format!("{}/plain/app", registry.host())
    );
    let raw = skopeo::inspect_raw(&format!("{}/plain/app:v1", registry.host()), None)
        .await
        .unwrap();
    assert_eq!(
        ferry_testkit::sha256_digest(&raw),
        report["digest"].as_str().unwrap()
    );

    // No --tag: the image's own tag, here too.
    let out = cli::command(env!("CARGO_BIN_EXE_ferry"), cache.path(), None)
        .args([
            "push",
            &image.name,
            "--registry",
            &registry.host(),
            "--json",
        ])
        .output()
        .unwrap();
    let own_tag = image.name.split_once(':').unwrap().1;
    assert_eq!(json(&out)["tags"][0]["tag"], own_tag);
    let own = format!("{}/{}", registry.host(), image.name);
    let raw = skopeo::inspect_raw(&own, None).await.unwrap();
    assert_eq!(ferry_testkit::sha256_digest(&raw), report["digest"]);
}

#[test]
fn a_missing_local_image_is_reported_before_the_registry_is_tried() {
    // A port nothing listens on: were the registry tried first, its refusal (and five
    // attempts at it) would be the error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let registry = closed.local_addr().unwrap().to_string();
    drop(closed);
    let cache = tempfile::tempdir().unwrap();
    let out = cli::command(env!("CARGO_BIN_EXE_ferry"), cache.path(), None)
        .args(["-v", "push", "ferry-push-test/does-not-exist:tag"])
        .args(["--registry", &registry])
        .output()
        .unwrap();
    assert_clear_failure(
        &out,
        "no such local image: ferry-push-test/does-not-exist:tag",
    );
    assert!(!stderr(&out).contains("retrying"), "{}", stderr(&out));
}

/// A registry, a ferry cache and a scratch directory for a containerd-store export of a
/// two-platform image (three layers each, the first shared) built from `seed`.
async fn containerd_rig(
    seed: u64,
) -> (
    ferry_testkit::TestRegistry,
    tempfile::TempDir,
    tempfile::TempDir,
    ferry_testkit::BuiltImage,
) {
    let image = ferry_testkit::build(&ImageSpec {
        shared_layers: 1,
        layers: 3,
        seed,
        ..ImageSpec::new(&["linux/amd64", "linux/arm64"])
    })
    .unwrap();
    let registry = ferry_testkit::TestRegistry::anonymous().await.unwrap();
    let (cache, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    (registry, cache, dir, image)
}

/// What the containerd image store exports goes up with its own manifests: the local image's
/// digests, a multi-platform index whole — or, when the Engine lacks a platform's layers, the
/// default platform's image alone, with a note naming what was left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_a_containerd_store_export_keeps_its_digests() {
    let (registry, cache, dir, image) = containerd_rig(31).await;
    let name = "docker.io/library/app:1";
    let push = |file: &Path, tag: &str| {
        cli::command(env!("CARGO_BIN_EXE_ferry"), cache.path(), None)
            .args(["push", &format!("docker-archive:{}", file.display())])
            .args(["--registry", &registry.host(), "--repository", "c8d/app"])
            .args(["--tag", tag, "--json"])
            .output()
            .unwrap()
    };
    let raw_at = |target: String| {
        let reference = format!("{}/c8d/app{target}", registry.host());
        async move { skopeo::inspect_raw(&reference, None).await.unwrap() }
    };

    let whole = dir.path().join("whole.tar");
    ferry_testkit::write_containerd_export(&image, name, "linux/amd64", &[], &whole).unwrap();
    let out = push(&whole, "1");
    let report = json(&out);
    assert_eq!(report["digest"], image.index.digest, "{report}");
    assert_eq!(report["notes"], serde_json::json!([]));
    assert_eq!(raw_at(":1".into()).await, image.index.bytes);
    for (platform, manifest) in &image.manifests {
        let raw = raw_at(format!("@{}", manifest.digest)).await;
        assert_eq!(raw, manifest.bytes, "{platform}");
    }
    let layers = report["layers_uploaded"].as_u64().unwrap();
    assert_eq!(layers, 5, "one shared layer and two per platform: {report}");

    // The Engine pulled only linux/amd64's layers: that image goes up alone, as it is.
    let partial = dir.path().join("partial.tar");
    ferry_testkit::write_containerd_export(&image, name, "linux/amd64", &["linux/arm64"], &partial)
        .unwrap();
    let out = push(&partial, "amd64-only");
    let report = json(&out);
    let amd64 = &image.manifests[0];
    assert_eq!(amd64.0, "linux/amd64");
    assert_eq!(report["digest"], amd64.1.digest, "{report}");
    assert_eq!(raw_at(":amd64-only".into()).await, amd64.1.bytes);
    let note = report["notes"][0].as_str().unwrap();
    assert!(
        note.contains("linux/arm64") && note.contains(&image.index.digest),
        "{note}"
    );
    let stderr = stderr(&out);
    assert!(
        stderr.contains("ferry: note: ") && stderr.contains("linux/arm64"),
        "{stderr}"
    );
}

/// The same from an Engine with the containerd store (a stand-in: this machine's Engine has the
/// classic store): the export goes up with its own index, and the cache then spares the export
/// for the same tag, for a new tag in the same repository (its images are there) — but not for
/// a new repository, where the images must go up first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_from_a_containerd_store_engine_then_warm() {
    let (registry, cache, dir, image) = containerd_rig(32).await;
    let export = dir.path().join("export.tar");
    ferry_testkit::write_containerd_export(
        &image,
        "docker.io/library/app:1",
        "linux/amd64",
        &[],
        &export,
    )
    .unwrap();
    let engine = ferry_testkit::ContainerdEngine::start(&image, "app:1", &export)
        .await
        .unwrap();
    let push = |repository: &str, tag: &str| {
        let out = cli::command(env!("CARGO_BIN_EXE_ferry"), cache.path(), None)
            .env("DOCKER_HOST", engine.docker_host())
            .args(["push", "app:1", "--registry", &registry.host()])
            .args(["--repository", repository, "--tag", tag, "--json"])
            .output()
            .unwrap();
        json(&out)
    };
    let fate = |report: &serde_json::Value| report["tags"][0]["outcome"].clone();

    let cold = push("c8d/app", "1");
    assert_eq!(cold["digest"], image.index.digest, "{cold}");
    assert_eq!(fate(&cold), "created");
    assert_eq!(engine.exports(), 1);
    let raw = skopeo::inspect_raw(&format!("{}/c8d/app:1", registry.host()), None)
        .await
        .unwrap();
    assert_eq!(raw, image.index.bytes);

    let warm = push("c8d/app", "1");
    assert_eq!(
        (fate(&warm), engine.exports()),
        ("unchanged".into(), 1),
        "{warm}"
    );
    assert_eq!(warm["size"], cold["size"]);
    let retag = push("c8d/app", "stable");
    assert_eq!(
        (fate(&retag), engine.exports()),
        ("created".into(), 1),
        "{retag}"
    );
    assert_eq!(retag["digest"], image.index.digest);

    let elsewhere = push("c8d/other", "1");
    assert_eq!(engine.exports(), 2, "{elsewhere}");
    assert_eq!(elsewhere["digest"], image.index.digest);
    for (platform, manifest) in &image.manifests {
        let at = format!("{}/c8d/other@{}", registry.host(), manifest.digest);
        assert_eq!(
            skopeo::inspect_raw(&at, None).await.unwrap(),
            manifest.bytes,
            "{platform}"
        );
    }
}
