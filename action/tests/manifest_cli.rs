//! `ferry manifest create|push|inspect` against the ECR stand-in (children built for amd64,
//! arm64 and arm/v7 with the real Docker Engine and pushed by `ferry push`) and against a plain
//! registry (children from testkit's builders, including a buildx-style list with an
//! attestation). skopeo reads every list back as the witness.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use ferry_testkit::{EcrStandIn, ImageFormat, ImageSpec, LocalImage, TestRegistry, cli, skopeo};
use serde_json::Value;

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

fn ferry(stand_in: &EcrStandIn, home: &Path, args: &[&str]) -> Output {
    cli::run(FERRY, home, Some(stand_in), args)
}

/// Pushes `image` to `repository:tag` on the stand-in and returns the digest ferry reports.
fn push(
    stand_in: &EcrStandIn,
    home: &Path,
    image: &LocalImage,
    repository: &str,
    tag: &str,
) -> String {
    let out = cli::json(&ferry(
        stand_in,
        home,
        &[
            "push",
            &image.name,
            "--repository",
            repository,
            "--tag",
            tag,
            "--json",
        ],
    ));
    out["digest"].as_str().unwrap().to_string()
}

/// stderr of a run that must have failed.
fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    cli::stderr(out)
}

/// `skopeo inspect --raw` of `reference` in the stand-in's registry.
async fn inspect_at(stand_in: &EcrStandIn, reference: &str) -> anyhow::Result<Vec<u8>> {
    let password = stand_in.password();
    skopeo::inspect_raw(
        &format!("{}/{reference}", stand_in.registry().host()),
        Some(("AWS", &password)),
    )
    .await
}

async fn raw_at(stand_in: &EcrStandIn, reference: &str) -> Vec<u8> {
    inspect_at(stand_in, reference).await.unwrap()
}

/// Whether the stand-in has nothing at `reference`.
async fn absent_at(stand_in: &EcrStandIn, reference: &str) -> bool {
    inspect_at(stand_in, reference).await.is_err()
}

/// `(digest, os/arch[/variant])` of each entry of a list as skopeo fetched it.
fn entries(raw: &[u8]) -> Vec<(String, String)> {
    let list: Value = serde_json::from_slice(raw).unwrap();
    list["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let mut platform = format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            );
            if let Some(v) = p["variant"].as_str() {
                platform.push('/');
                platform.push_str(v);
            }
            (m["digest"].as_str().unwrap().to_string(), platform)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_architectures_into_ecr_created_inspected_and_read_back() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"];
    let images: Vec<LocalImage> = platforms
        .iter()
        .map(|p| LocalImage::build_for(Some(p), 1, 64).unwrap())
        .collect();
    let tags = ["1.0-amd64", "1.0-arm64", "1.0-armv7"];
    let digests: Vec<String> = images
        .iter()
        .zip(tags)
        .map(|(image, tag)| push(&stand_in, home, image, "team/multi", tag))
        .collect();

    // A dry run checks everything, prints the list, and pushes nothing.
    let dry = cli::json(&ferry(
        &stand_in,
        home,
        &[
            "manifest",
            "create",
            "team/multi:1.0",
            tags[0],
            tags[1],
            tags[2],
            "--dry-run",
            "--json",
        ],
    ));
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["tags"][0]["outcome"], "created");
    assert!(
        absent_at(&stand_in, "team/multi:1.0").await,
        "a dry run must not push the list"
    );

    let created = cli::json(&ferry(
        &stand_in,
        home,
        &[
            "manifest",
            "create",
            "team/multi:1.0",
            tags[0],
            tags[1],
            tags[2],
            "--tag",
            "1.0",
            "--tag",
            "latest",
            "--json",
        ],
    ));
    assert_eq!(
        created["digest"], dry["digest"],
        "the dry run showed the very list pushed"
    );
    // Every child is a Docker manifest (what the engine's images become): a Docker list.
    assert_eq!(
        created["media_type"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let fates: Vec<&str> = created["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(fates, ["created", "created"]);
    let uri = format!("{}/team/multi", stand_in.ecr_host());
    assert_eq!(created["image_uris"][1], format!("{uri}:latest"));

    // The witness: the list's bytes name exactly the pushed children and their platforms.
    let raw = raw_at(&stand_in, "team/multi:1.0").await;
    assert_eq!(
        ferry_testkit::sha256_digest(&raw),
        created["digest"].as_str().unwrap()
    );
    let expected: Vec<(String, String)> = digests
        .iter()
        .cloned()
        .zip(platforms.iter().map(|p| p.to_string()))
        .collect();
    assert_eq!(entries(&raw), expected);
    assert_eq!(raw, raw_at(&stand_in, "team/multi:latest").await);

    // Inspect: each child's size is the length of its manifest as the registry serves it.
    let inspected = cli::json(&ferry(
        &stand_in,
        home,
        &["manifest", "inspect", "team/multi:1.0", "--json"],
    ));
    assert_eq!(inspected["kind"], "list");
    assert_eq!(inspected["digest"], created["digest"]);
    assert_eq!(inspected["size"], raw.len() as u64);
    for (i, tag) in tags.iter().enumerate() {
        let child = raw_at(&stand_in, &format!("team/multi:{tag}")).await;
        let row = &inspected["manifests"][i];
        assert_eq!(row["size"], child.len() as u64, "{tag}");
        assert_eq!(row["digest"], digests[i]);
        assert_eq!(row["platform"], platforms[i]);
        assert!(row.get("layers").is_none());
    }
    assert_eq!(
        inspected["manifest"]["manifests"].as_array().unwrap().len(),
        3
    );

    // -v adds each child's layers; the table says what a person needs.
    let verbose = cli::json(&ferry(
        &stand_in,
        home,
        &["manifest", "inspect", "-v", "team/multi:1.0", "--json"],
    ));
    assert_eq!(
        verbose["manifests"][2]["layers"].as_array().unwrap().len(),
        1
    );
    let table = ferry(&stand_in, home, &["manifest", "inspect", "team/multi:1.0"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{}", cli::stderr(&table));
    for (digest, platform) in &expected {
        assert!(
            text.contains(digest) && text.contains(platform.as_str()),
            "{text}"
        );
    }

    // A single image: its platform (from its config), layers and total size.
    let single = cli::json(&ferry(
        &stand_in,
        home,
        &[
            "manifest",
            "inspect",
            &format!("team/multi@{}", digests[2]),
            "--json",
        ],
    ));
    assert_eq!(single["kind"], "image");
    assert_eq!(single["platform"], "linux/arm/v7");
    let layers = single["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        single["total_size"].as_u64().unwrap(),
        single["config_size"].as_u64().unwrap() + layers[0]["size"].as_u64().unwrap()
    );

    // Every missing source is named at once, and nothing is pushed.
    let missing = ferry(
        &stand_in,
        home,
        &[
            "manifest",
            "create",
            "team/multi:2.0",
            tags[0],
            "nope-1",
            "nope-2",
        ],
    );
    let err = failure(&missing);
    assert!(
        err.contains("nope-1") && err.contains("nope-2") && err.contains("2 of 3"),
        "{err}"
    );
    assert!(
        !err.contains(&format!("{} (", tags[0])),
        "a present source is not missing: {err}"
    );
    assert!(
        absent_at(&stand_in, "team/multi:2.0").await,
        "nothing may be pushed when a source is missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_overrides_flattening_and_immutable_reruns() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let amd = LocalImage::build_for(Some("linux/amd64"), 1, 16).unwrap();
    let amd2 = LocalImage::build_for(Some("linux/amd64"), 1, 16).unwrap();
    let arm = LocalImage::build_for(Some("linux/arm64"), 1, 16).unwrap();
    let repo = "team/frozen";
    let out = cli::json(&ferry(
        &stand_in,
        home,
        &[
            "push",
            &amd.name,
            "--repository",
            repo,
            "--tag",
            "amd",
            "--tag-mutability",
            "IMMUTABLE",
            "--json",
        ],
    ));
    assert_eq!(out["repository_created"], true);
    push(&stand_in, home, &amd2, repo, "amd2");
    push(&stand_in, home, &arm, repo, "arm");

    // Two images for one platform: refused, naming both, unless allowed or overridden.
    let dup = ferry(
        &stand_in,
        home,
        &["manifest", "create", &format!("{repo}:dup"), "amd", "amd2"],
    );
    let err = failure(&dup);
    assert!(
        err.contains("linux/amd64") && err.contains("amd, amd2"),
        "{err}"
    );
    let allowed = cli::json(&ferry(
        &stand_in,
        home,
        &[
            "manifest",
            "create",
            &format!("{repo}:dup"),
            "amd",
            "amd2",
            "--allow-duplicate-platforms",
            "--json",
        ],
    ));
    assert_eq!(allowed["manifests"].as_array().unwrap().len(), 2);

    let overridden = cli::json(&ferry(
        &stand_in,
        home,
        &[
            "manifest",
            "create",
            &format!("{repo}:base"),
            "amd",
            "arm",
            "--format",
            "oci",
            "--annotation",
            "org.opencontainers.image.source=https://example.com/app",
            "--json",
        ],
    ));
    assert_eq!(
        overridden["media_type"],
        "application/vnd.oci.image.index.v1+json"
    );
    let raw = raw_at(&stand_in, &format!("{repo}:base")).await;
    let list: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        list["annotations"]["org.opencontainers.image.source"],
        "https://example.com/app"
    );

    // A list of lists is flattened: base's two children plus amd2 (as ppc64le, overridden).
    let flat = cli::json(&ferry(
        &stand_in,
        home,
        &[
            "manifest",
            "create",
            &format!("{repo}:all"),
            "base",
            "amd2",
            "--platform-override",
            "amd2=linux/ppc64le",
            "--json",
        ],
    ));
    let raw = raw_at(&stand_in, &format!("{repo}:all")).await;
    let platforms: Vec<String> = entries(&raw).into_iter().map(|(_, p)| p).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64", "linux/ppc64le"]);
    assert_eq!(flat["tags"][0]["outcome"], "created");

    // Re-run on the IMMUTABLE repository: the same list, so the tag is unchanged, not refused.
    let again = cli::json(&ferry(
        &stand_in,
        home,
        &[
            "manifest",
            "push",
            &format!("{repo}:all"),
            "base",
            "amd2",
            "--platform-override",
            "amd2=linux/ppc64le",
            "--json",
        ],
    ));
    assert_eq!(again["digest"], flat["digest"]);
    assert_eq!(again["tags"][0]["outcome"], "unchanged");
    // A different list under the same tag would move it: refused before anything is pushed.
    let moved = ferry(
        &stand_in,
        home,
        &["manifest", "create", &format!("{repo}:all"), "amd", "arm"],
    );
    let err = failure(&moved);
    assert!(
        err.contains("immutable") && err.contains("IMMUTABLE"),
        "{err}"
    );
    assert_eq!(raw_at(&stand_in, &format!("{repo}:all")).await, raw);

    // A source in another repository of the registry is brought into the list's repository.
    let other = LocalImage::build_for(Some("linux/s390x"), 1, 16).unwrap();
    let other_digest = push(&stand_in, home, &other, "team/other", "s390x");
    let cross = cli::json(&ferry(
        &stand_in,
        home,
        &[
            "manifest",
            "create",
            "team/multi2:1",
            "team/other:s390x",
            "--json",
        ],
    ));
    assert_eq!(
        cross["copied"][0],
        format!("{}/team/other@{other_digest}", stand_in.ecr_host())
    );
    assert_eq!(cross["repository_created"], true);
    let child = raw_at(&stand_in, &format!("team/multi2@{other_digest}")).await;
    assert_eq!(ferry_testkit::sha256_digest(&child), other_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_registry_formats_and_attestations() {
    let registry = TestRegistry::anonymous().await.unwrap();
    let host = registry.host();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let run = |args: &[&str]| cli::run(FERRY, home, None, args);

    // A buildx-style OCI index: two images and an attestation manifest (unknown/unknown).
    let mut spec = ImageSpec::new(&["linux/amd64", "linux/arm64", "unknown/unknown"]);
    spec.seed = 7;
    let buildx = ferry_testkit::build(&spec).unwrap();
    buildx
        .push(&registry.url(), "app", "buildx", None)
        .await
        .unwrap();
    let mut s390 = ImageSpec::new(&["linux/s390x"]);
    s390.seed = 8;
    let s390 = ferry_testkit::build_single(&s390).unwrap();
    s390.push(&registry.url(), "app", "s390x", None)
        .await
        .unwrap();

    let kept = cli::json(&run(&[
        "manifest",
        "create",
        &format!("{host}/app:kept"),
        "buildx",
        "s390x",
        "--json",
    ]));
    assert_eq!(
        kept["media_type"],
        "application/vnd.oci.image.index.v1+json"
    );
    let rows = kept["manifests"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows.iter().filter(|r| r["attestation"] == true).count(), 1);

    let dropped = cli::json(&run(&[
        "manifest",
        "create",
        "app:dropped",
        "buildx",
        "s390x",
        "--attestations",
        "drop",
        "--registry",
        &host,
        "--json",
    ]));
    let raw = skopeo::inspect_raw(&format!("{host}/app:dropped"), None)
        .await
        .unwrap();
    let platforms: Vec<String> = entries(&raw).into_iter().map(|(_, p)| p).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64", "linux/s390x"]);
    assert_eq!(
        ferry_testkit::sha256_digest(&raw),
        dropped["digest"].as_str().unwrap()
    );

    // An OCI child cannot go into a Docker list; Docker children make one by default.
    let refused = run(&[
        "manifest",
        "create",
        &format!("{host}/app:d"),
        "s390x",
        "--format",
        "docker",
    ]);
    assert!(!refused.status.success());
    assert!(
        cli::stderr(&refused).contains("--format docker"),
        "{}",
        cli::stderr(&refused)
    );
    let mut docker = ImageSpec::new(&["linux/amd64", "linux/arm/v7"]);
    docker.format = ImageFormat::Docker;
    docker.seed = 9;
    let docker = ferry_testkit::build(&docker).unwrap();
    docker
        .push(&registry.url(), "app", "docker-src", None)
        .await
        .unwrap();
    let made = cli::json(&run(&[
        "manifest",
        "create",
        &format!("{host}/app:docker"),
        "docker-src",
        "--json",
    ]));
    assert_eq!(
        made["media_type"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let raw = skopeo::inspect_raw(&format!("{host}/app:docker"), None)
        .await
        .unwrap();
    let expected: Vec<String> = docker
        .manifests
        .iter()
        .map(|(_, m)| m.digest.clone())
        .collect();
    let got: Vec<String> = entries(&raw).into_iter().map(|(d, _)| d).collect();
    assert_eq!(got, expected);

    // Bad input: named, before anything is fetched.
    let target = format!("{host}/app:x");
    let cases: [(&[&str], &str); 3] = [
        (
            &["s390x", "--platform-override", "nope=linux/amd64"],
            "nope is not one of the sources",
        ),
        (&["ghcr.io/x/y:1"], "ferry copy"),
        (&["s390x", "--format", "zip"], "--format"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["manifest", "create", target.as_str()];
        all.extend_from_slice(args);
        let out = run(&all);
        assert!(!out.status.success(), "{args:?}");
        let err = cli::stderr(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}
