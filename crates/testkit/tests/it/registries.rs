use ferry_testkit::push::RawClient;
use ferry_testkit::skopeo::{self, sha256_digest};
use ferry_testkit::{ImageFormat, TestRegistry, build, build_artifact, build_single};

use crate::small_spec;

#[tokio::test]
async fn anonymous_registry_accepts_push_and_serves_exact_bytes() -> anyhow::Result<()> {
    let reg = TestRegistry::anonymous().await?;
    assert!(reg.url().starts_with("http://127.0.0.1:"));
    let image = build(&small_spec(1))?;
    image.push(&reg.url(), "team/app", "v1", None).await?;

    let raw = skopeo::inspect_raw(&format!("{}/team/app:v1", reg.host()), None).await?;
    assert_eq!(sha256_digest(&raw), image.index.digest);
    let (_, child) = &image.manifests[1];
    let raw =
        skopeo::inspect_raw(&format!("{}/team/app@{}", reg.host(), child.digest), None).await?;
    assert_eq!(sha256_digest(&raw), child.digest);

    // One access-log line per request is what makes the log useful for counting.
    assert!(
        reg.log()
            .contains("\"PUT /v2/team/app/manifests/v1 HTTP/1.1\" 201")
    );
    Ok(())
}

#[tokio::test]
async fn basic_registry_requires_and_accepts_credentials() -> anyhow::Result<()> {
    let reg = TestRegistry::basic("alice", "s3cret").await?;
    let mut spec = small_spec(2);
    spec.format = ImageFormat::Docker;
    let image = build(&spec)?;
    assert!(image.push(&reg.url(), "app", "v1", None).await.is_err());
    image
        .push(&reg.url(), "app", "v1", Some(("alice", "s3cret")))
        .await?;

    let reference = format!("{}/app:v1", reg.host());
    let raw = skopeo::inspect_raw(&reference, Some(("alice", "s3cret"))).await?;
    assert_eq!(sha256_digest(&raw), image.index.digest);
    let err = skopeo::inspect_raw(&reference, None).await.err();
    assert!(format!("{err:?}").contains("unauthorized"), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn htpasswd_changes_apply_without_restart() -> anyhow::Result<()> {
    let reg = TestRegistry::basic("alice", "old").await?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let status = |user: &'static str, pass: &'static str| {
        let req = client
            .get(format!("{}/v2/", reg.url()))
            .basic_auth(user, Some(pass));
        async move { anyhow::Ok(req.send().await?.status().as_u16()) }
    };
    assert_eq!(status("alice", "old").await?, 200);
    reg.set_basic_password("alice", "new")?;
    assert_eq!(status("alice", "old").await?, 401);
    assert_eq!(status("alice", "new").await?, 200);
    reg.set_basic_password("bob", "other")?;
    assert_eq!(status("bob", "other").await?, 200);
    assert_eq!(status("alice", "new").await?, 200);
    Ok(())
}

#[tokio::test]
async fn restart_keeps_port_and_storage() -> anyhow::Result<()> {
    let reg = TestRegistry::anonymous().await?;
    let image = build_single(&small_spec(3))?;
    image.push(&reg.host(), "single", "v1", None).await?;
    let host = reg.host();

    reg.stop();
    assert!(
        skopeo::inspect_raw(&format!("{host}/single:v1"), None)
            .await
            .is_err()
    );
    reg.restart().await?;
    assert_eq!(reg.host(), host);
    let raw = skopeo::inspect_raw(&format!("{host}/single:v1"), None).await?;
    assert_eq!(sha256_digest(&raw), image.manifest.digest);
    Ok(())
}

#[tokio::test]
async fn skopeo_copy_all_between_registries_preserves_digests() -> anyhow::Result<()> {
    let (src, dst) = tokio::try_join!(TestRegistry::anonymous(), TestRegistry::basic("u", "p"))?;
    let image = build(&small_spec(4))?;
    image.push(&src.url(), "a", "v1", None).await?;
    skopeo::copy_all(
        &format!("{}/a:v1", src.host()),
        &format!("{}/b:v1", dst.host()),
        None,
        Some(("u", "p")),
    )
    .await?;
    let raw = skopeo::inspect_raw(&format!("{}/b:v1", dst.host()), Some(("u", "p"))).await?;
    assert_eq!(sha256_digest(&raw), image.index.digest);
    Ok(())
}

#[tokio::test]
async fn artifact_push_maintains_referrers_fallback_tag() -> anyhow::Result<()> {
    let reg = TestRegistry::anonymous().await?;
    let image = build(&small_spec(5))?;
    image.push(&reg.url(), "app", "v1", None).await?;
    let sbom = build_artifact(
        &image.index,
        ferry_testkit::image::SBOM_ARTIFACT_TYPE,
        b"{\"sbom\":1}",
    )?;
    let sig = build_artifact(&image.index, "application/vnd.example.sig", b"sig")?;
    sbom.push(&reg.url(), "app", None).await?;
    sig.push(&reg.url(), "app", None).await?;
    sig.push(&reg.url(), "app", None).await?;

    let client = RawClient::new(&reg.url(), None)?;
    let stored = client.get_manifest("app", &sbom.manifest.digest).await?;
    assert_eq!(stored.map(|b| b.digest), Some(sbom.manifest.digest.clone()));
    let tag = sbom.referrers_tag();
    assert_eq!(tag, image.index.digest.replace(':', "-"));
    let index = client.get_manifest("app", &tag).await?;
    let index: serde_json::Value =
        serde_json::from_slice(&index.map(|b| b.bytes).unwrap_or_default())?;
    let types: Vec<&str> = index["manifests"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|d| d["artifactType"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        types,
        [
            "application/vnd.example.sbom",
            "application/vnd.example.sig"
        ]
    );
    let mut tags = client.tags("app").await?;
    tags.sort();
    assert_eq!(tags, [tag, "v1".to_string()]);
    Ok(())
}
