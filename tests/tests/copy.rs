//! `copy` against real registries: digests preserved end to end (skopeo as the witness),
//! platform subsets, warm copies, mounts and referrers.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferry_registry::copy::{CopyOptions, ManifestOutcome, TagOutcome};
use ferry_registry::{Platform, copy};
use ferry_testkit::push::RawClient;
use ferry_testkit::{Fault, FaultAction, FaultProxy, ImageFormat, TestRegistry, skopeo};

async fn multi_arch_copy_preserves_every_digest(format: ImageFormat) {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, "team/app", "v1", format).await;

    let report = copy(
        &client(),
        &reference(&format!("{}/team/app:v1", src.host())),
        &reference(&format!("{}/mirror/app:v1", dst.host())),
        CopyOptions::default(),
    )
    .await
    .unwrap();

    assert_eq!(report.digest.as_str(), image.index.digest);
    assert_eq!(report.media_type, format.index_type());
    // The top-level index and its three children, each with its platform.
    assert_eq!(report.manifests.len(), 4);
    let mut platforms: Vec<_> = report.manifests[1..]
        .iter()
        .map(|m| m.platform.clone().unwrap())
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm/v7", "linux/arm64"]);
    // One layer is shared by all platforms: it moves once.
    assert_eq!(report.totals.blobs_uploaded as usize, image.blobs.len());
    assert_eq!(report.totals.bytes_uploaded, image.total_blob_bytes());
    assert_eq!(report.tags[0].outcome, TagOutcome::Created);
    assert_identical_at(&dst, None, "mirror/app", "v1", &image).await;
}

#[tokio::test]
async fn copies_an_oci_index_with_identical_digests() {
    multi_arch_copy_preserves_every_digest(ImageFormat::Oci).await;
}

#[tokio::test]
async fn copies_a_docker_manifest_list_with_identical_digests() {
    multi_arch_copy_preserves_every_digest(ImageFormat::Docker).await;
}

#[tokio::test]
async fn platform_subset_gets_a_new_index_of_just_those_children() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, "app", "v1", ImageFormat::Oci).await;

    let options = CopyOptions {
        platforms: vec![
            Platform::parse("linux/arm64").unwrap(),
            Platform::parse("linux/arm/v7").unwrap(),
        ],
        ..CopyOptions::default()
    };
    let report = copy(
        &client(),
        &reference(&format!("{}/app:v1", src.host())),
        &reference(&format!("{}/app:arm", dst.host())),
        options,
    )
    .await
    .unwrap();

    let raw = skopeo::inspect_raw(&format!("{}/app:arm", dst.host()), None)
        .await
        .unwrap();
    assert_eq!(sha256(&raw), report.digest.as_str());
    assert_ne!(
        report.digest.as_str(),
        image.index.digest,
        "a subset is a new index"
    );
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let children: Vec<(String, String)> = index["manifests"]
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
                platform = format!("{platform}/{v}");
            }
            (platform, m["digest"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(children.len(), 2);
    for (platform, digest) in &children {
        assert_eq!(&image.manifest_for(platform).unwrap().digest, digest);
    }
    // The amd64 image was not copied.
    let amd64 = image.manifest_for("linux/amd64").unwrap();
    assert!(
        skopeo::inspect_raw(&format!("{}/app@{}", dst.host(), amd64.digest), None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn warm_copy_costs_one_head_at_the_source_and_one_per_tag_and_no_get() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    seeded(&src, "app", "v1", ImageFormat::Oci).await;
    let src_proxy = FaultProxy::start(&src.url()).await.unwrap();
    let dst_proxy = FaultProxy::start(&dst.url()).await.unwrap();
    let from = reference(&format!("{}/app:v1", src_proxy.host()));
    let to = reference(&format!("{}/app:v1", dst_proxy.host()));
    let options = CopyOptions {
        extra_tags: vec!["stable".into()],
        ..CopyOptions::default()
    };

    let cold = copy(&client(), &from, &to, options.clone()).await.unwrap();
    assert!(cold.totals.blobs_uploaded > 0);
    src_proxy.clear();
    dst_proxy.clear();

    let warm = copy(&client(), &from, &to, options).await.unwrap();
    let at_source = src_proxy.requests();
    let at_destination = dst_proxy.requests();
    assert_eq!(at_source.len(), 1, "source requests: {at_source:?}");
    assert_eq!(at_source[0].method, "HEAD");
    assert!(at_source[0].path_and_query.ends_with("/manifests/v1"));
    assert_eq!(
        at_destination.len(),
        2,
        "destination requests: {at_destination:?}"
    );
    assert!(at_destination.iter().all(|r| r.method == "HEAD"));
    assert!(warm.tags.iter().all(|t| t.outcome == TagOutcome::Unchanged));
    assert_eq!(warm.source_digest, cold.digest);
    assert_eq!(warm.digest, cold.digest);
    assert!(
        warm.manifests
            .iter()
            .all(|m| m.outcome == ManifestOutcome::Present)
    );
    assert_eq!(warm.totals.requests.total(), 3);
}

#[tokio::test]
async fn same_registry_copies_mount_blobs_instead_of_uploading() {
    let registry = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&registry, "team/app", "v1", ImageFormat::Oci).await;
    let proxy = FaultProxy::start(&registry.url()).await.unwrap();

    let report = copy(
        &client(),
        &reference(&format!("{}/team/app:v1", proxy.host())),
        &reference(&format!("{}/other/app:v1", proxy.host())),
        CopyOptions::default(),
    )
    .await
    .unwrap();

    assert_eq!(report.totals.blobs_mounted as usize, image.blobs.len());
    assert_eq!(report.totals.blobs_uploaded, 0);
    assert_eq!(proxy.count("POST", "mount="), image.blobs.len());
    assert_eq!(
        proxy.count("GET", "/blobs/"),
        0,
        "no blob was read from the source"
    );
    assert_identical_at(&registry, None, "other/app", "v1", &image).await;
}

#[tokio::test]
async fn blobs_uploaded_earlier_in_a_run_are_mounted_for_the_next_image() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    seeded(&src, "app", "v1", ImageFormat::Oci).await;
    let copier = ferry_registry::Copier::new(client(), CopyOptions::default());
    let first = copier
        .copy(
            &reference(&format!("{}/app:v1", src.host())),
            &reference(&format!("{}/one/app:v1", dst.host())),
        )
        .await
        .unwrap();
    let second = copier
        .copy(
            &reference(&format!("{}/app:v1", src.host())),
            &reference(&format!("{}/two/app:v1", dst.host())),
        )
        .await
        .unwrap();
    assert!(first.totals.blobs_uploaded > 0);
    assert_eq!(second.totals.blobs_uploaded, 0);
    assert_eq!(second.totals.blobs_mounted, first.totals.blobs_uploaded);
}

#[tokio::test]
async fn dry_run_reports_the_plan_and_changes_nothing() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, "app", "v1", ImageFormat::Oci).await;
    let options = CopyOptions {
        dry_run: true,
        ..CopyOptions::default()
    };
    let report = copy_app_v1(&src.host(), &dst.host(), options)
        .await
        .unwrap();
    assert!(report.dry_run);
    assert_eq!(report.totals.blobs_uploaded as usize, image.blobs.len());
    assert_eq!(report.totals.requests.put + report.totals.requests.post, 0);
    assert!(
        RawClient::new(&dst.url(), None)
            .unwrap()
            .tags("app")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn referrers_are_copied_and_indexed_at_the_destination() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let image = seeded(&src, "app", "v1", ImageFormat::Oci).await;
    let amd64 = image.manifest_for("linux/amd64").unwrap();
    let sbom = ferry_testkit::build_artifact(
        amd64,
        ferry_testkit::image::SBOM_ARTIFACT_TYPE,
        b"{\"sbom\":1}",
    )
    .unwrap();
    sbom.push(&src.url(), "app", None).await.unwrap();

    let options = CopyOptions {
        referrers: true,
        ..CopyOptions::default()
    };
    let report = copy_app_v1(&src.host(), &dst.host(), options)
        .await
        .unwrap();

    assert_eq!(report.referrers.len(), 1);
    assert_eq!(report.referrers[0].digest.as_str(), sbom.manifest.digest);
    let raw = skopeo::inspect_raw(
        &format!("{}/app@{}", dst.host(), sbom.manifest.digest),
        None,
    )
    .await
    .unwrap();
    assert_eq!(sha256(&raw), sbom.manifest.digest);
    // distribution 2.8 has no referrers API: the tag schema index must list the SBOM.
    let tag_index = skopeo::inspect_raw(
        &format!("{}/app:{}", dst.host(), sbom.referrers_tag()),
        None,
    )
    .await
    .unwrap();
    let tag_index: serde_json::Value = serde_json::from_slice(&tag_index).unwrap();
    assert_eq!(
        tag_index["manifests"][0]["digest"],
        sbom.manifest.digest.as_str()
    );
}

#[tokio::test]
async fn tags_are_listed_across_pages() {
    let registry = TestRegistry::anonymous().await.unwrap();
    let image = ferry_testkit::build_single(&spec(&["linux/amd64"], ImageFormat::Oci, 3)).unwrap();
    let mut expected = Vec::new();
    for i in 0..7 {
        let tag = format!("t{i}");
        image
            .push(&registry.url(), "paged", &tag, None)
            .await
            .unwrap();
        expected.push(tag);
    }
    let proxy = FaultProxy::start(&registry.url()).await.unwrap();
    proxy.add_fault(
        Fault::new("/tags/list", FaultAction::PaginateTags { page: 3 }).times(usize::MAX),
    );
    let repo = client().repository(&reference(&format!("{}/paged", proxy.host())));
    let mut tags = repo.list_tags_paged(3).await.unwrap();
    tags.sort();
    assert_eq!(tags, expected);
    assert_eq!(proxy.count("GET", "/tags/list"), 3, "7 tags in pages of 3");
}
