//! `ferry push` of an image it pushed before, to another repository of the same registry: the
//! cache knows where every blob is, so the registry mounts them and nothing is exported or
//! uploaded — and when a mount is refused, the push reads the image as usual and still
//! succeeds. Against this machine's Docker Engine and a real docker-registry.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use ferry_testkit::{LocalImage, TestRegistry, cli, skopeo};

fn push(registry: &TestRegistry, cache: &Path, image: &str, repository: &str) -> Output {
    cli::run(
        env!("CARGO_BIN_EXE_ferry"),
        cache,
        None,
        &[
            "push",
            image,
            "--registry",
            &registry.host(),
            "--repository",
            repository,
            "--tag",
            "v1",
            "--json",
        ],
    )
}

/// Status codes of the registry's access-log lines since `from` (a length of the log) whose
/// request line starts with `request` (`"POST /v2/team/b/blobs/uploads/?mount=`).
fn statuses(log: &str, from: usize, request: &str) -> Vec<u16> {
    log[from..]
        .lines()
        .filter_map(|line| {
            let at = line.find(request)?;
            let rest = &line[at..];
            let after = rest.get(rest.find("\" ")? + 2..)?;
            after.split(' ').next()?.parse().ok()
        })
        .collect()
}

async fn manifest_digest(registry: &TestRegistry, reference: &str) -> String {
    let raw = skopeo::inspect_raw(&format!("{}/{reference}", registry.host()), None)
        .await
        .unwrap();
    ferry_testkit::sha256_digest(&raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_image_goes_to_another_repository_by_mounts_alone() {
    let registry = TestRegistry::anonymous().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let image = LocalImage::build(3, 256).unwrap();

    let first = cli::json(&push(&registry, cache.path(), &image.name, "team/a"));
    assert_eq!(first["layers_uploaded"], 3);

    let before = registry.log().len();
    let second = cli::json(&push(&registry, cache.path(), &image.name, "team/b"));
    let log = registry.log();
    assert_eq!(second["layers_uploaded"], 0, "{second}");
    assert_eq!(second["bytes_uploaded"], 0, "{second}");
    assert_eq!(second["tags"][0]["outcome"], "created");
    assert_eq!(second["digest"], first["digest"]);

    // Config and three layers linked from team/a; not a byte of blob data sent.
    let mounts = statuses(&log, before, "\"POST /v2/team/b/blobs/uploads/?mount=");
    assert_eq!(mounts, [201, 201, 201, 201], "{}", &log[before..]);
    assert!(statuses(&log, before, "\"PATCH /v2/team/b/").is_empty());
    assert!(statuses(&log, before, "\"PUT /v2/team/b/blobs/").is_empty());
    assert_eq!(
        statuses(&log, before, "\"PUT /v2/team/b/manifests/v1"),
        [201]
    );

    // team/b serves the very manifest team/a does, and it pulls.
    let digest = first["digest"].as_str().unwrap();
    assert_eq!(manifest_digest(&registry, "team/b:v1").await, digest);
    let copied = tempfile::tempdir().unwrap();
    skopeo::run(&[
        "copy".into(),
        "--src-tls-verify=false".into(),
        format!("docker://{}/team/b:v1", registry.host()),
        format!("dir:{}", copied.path().display()),
    ])
    .await
    .unwrap();

    // The same push again is warm: nothing mounted, nothing sent.
    let before = registry.log().len();
    let again = cli::json(&push(&registry, cache.path(), &image.name, "team/b"));
    assert_eq!(again["tags"][0]["outcome"], "unchanged");
    assert!(statuses(&registry.log(), before, "\"POST ").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_mount_falls_back_to_reading_the_image() {
    let registry = TestRegistry::anonymous().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let image = LocalImage::build(2, 128).unwrap();

    let first = cli::json(&push(&registry, cache.path(), &image.name, "team/a"));
    assert_eq!(first["layers_uploaded"], 2);
    // team/a loses its blobs (as after a garbage collection): the registry will refuse to
    // mount them from there, though the cache still says team/a holds them.
    let layers = registry
        .storage_dir()
        .join("docker/registry/v2/repositories/team/a/_layers");
    std::fs::remove_dir_all(&layers).unwrap();

    let before = registry.log().len();
    let second = cli::json(&push(&registry, cache.path(), &image.name, "team/c"));
    let log = registry.log();
    assert_eq!(second["layers_uploaded"], 2, "{second}");
    assert_eq!(second["tags"][0]["outcome"], "created");
    assert_eq!(second["digest"], first["digest"]);

    let mounts = statuses(&log, before, "\"POST /v2/team/c/blobs/uploads/?mount=");
    assert!(
        !mounts.is_empty() && mounts.iter().all(|s| *s == 202),
        "mounts tried and refused: {mounts:?}"
    );
    // Each session a refused mount opened is cancelled, not left behind.
    let cancelled = statuses(&log, before, "\"DELETE /v2/team/c/blobs/uploads/");
    assert_eq!(cancelled.len(), mounts.len(), "{}", &log[before..]);
    assert_eq!(statuses(&log, before, "\"PATCH /v2/team/c/").len(), 2);
    let digest = first["digest"].as_str().unwrap();
    assert_eq!(manifest_digest(&registry, "team/c:v1").await, digest);

    // The refused source is forgotten: the next push to a new repository mounts from team/c.
    let before = registry.log().len();
    let third = cli::json(&push(&registry, cache.path(), &image.name, "team/d"));
    assert_eq!(third["layers_uploaded"], 0, "{third}");
    let mounts = statuses(
        &registry.log(),
        before,
        "\"POST /v2/team/d/blobs/uploads/?mount=",
    );
    assert_eq!(mounts, [201, 201, 201]);
}
