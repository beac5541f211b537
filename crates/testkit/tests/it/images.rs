use std::io::Read;

use ferry_testkit::image::{DOCKER_LAYER_GZIP, DOCKER_MANIFEST_LIST, OCI_INDEX};
use ferry_testkit::skopeo::{self, sha256_digest};
use ferry_testkit::{ImageFormat, ImageSpec, TestRegistry, build};

fn json(bytes: &[u8]) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_slice(bytes)?)
}

#[test]
fn layers_are_gzipped_tars_with_correct_diff_ids() -> anyhow::Result<()> {
    let spec = ImageSpec {
        platforms: vec![
            "linux/amd64".into(),
            "linux/arm64".into(),
            "linux/arm/v7".into(),
        ],
        layers: 3,
        layer_size: 10_000,
        shared_layers: 1,
        format: ImageFormat::Oci,
        seed: 42,
    };
    let image = build(&spec)?;
    assert_eq!(image.index.media_type, OCI_INDEX);
    // 3 configs + 1 shared layer + 3 × 2 own layers.
    assert_eq!(image.blobs.len(), 10);

    let index = json(&image.index.bytes)?;
    assert_eq!(index["manifests"][2]["platform"]["variant"], "v7");
    assert_eq!(index["manifests"][2]["platform"]["architecture"], "arm");
    assert!(index["manifests"][0]["platform"].get("variant").is_none());

    let mut first_layers = Vec::new();
    for (i, (platform, manifest)) in image.manifests.iter().enumerate() {
        assert_eq!(index["manifests"][i]["digest"], manifest.digest);
        assert_eq!(sha256_digest(&manifest.bytes), manifest.digest);
        let manifest = json(&manifest.bytes)?;
        let config_digest = manifest["config"]["digest"].as_str().unwrap_or_default();
        let config = image
            .blobs
            .iter()
            .find(|b| b.digest == config_digest)
            .ok_or_else(|| anyhow::anyhow!("config missing"))?;
        let config = json(&config.bytes)?;
        assert_eq!(
            format!(
                "{}/{}",
                config["os"].as_str().unwrap_or_default(),
                config["architecture"].as_str().unwrap_or_default()
            ),
            platform.trim_end_matches("/v7")
        );
        let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        assert_eq!(layers.len(), 3);
        first_layers.push(layers[0]["digest"].clone());
        for (j, layer) in layers.iter().enumerate() {
            let blob = image
                .blobs
                .iter()
                .find(|b| layer["digest"] == b.digest.as_str())
                .ok_or_else(|| anyhow::anyhow!("layer missing"))?;
            assert_eq!(sha256_digest(&blob.bytes), blob.digest);
            assert_eq!(layer["size"], blob.size());
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(&blob.bytes[..]).read_to_end(&mut tar)?;
            assert_eq!(config["rootfs"]["diff_ids"][j], sha256_digest(&tar));
            let mut archive = tar::Archive::new(&tar[..]);
            let sizes: Vec<u64> = archive
                .entries()?
                .map(|e| e.map(|e| e.header().size().unwrap_or(0)))
                .collect::<Result<_, _>>()?;
            assert_eq!(sizes, [10_000]);
        }
    }
    assert!(first_layers.iter().all(|d| *d == first_layers[0]));
    let seconds: std::collections::HashSet<_> = image
        .manifests
        .iter()
        .map(|(_, m)| json(&m.bytes).map(|v| v["layers"][1]["digest"].to_string()))
        .collect::<anyhow::Result<_>>()?;
    assert_eq!(seconds.len(), 3);
    Ok(())
}

#[test]
fn builds_are_reproducible_per_seed() -> anyhow::Result<()> {
    let mut spec = ImageSpec::new(&["linux/amd64", "linux/arm64"]);
    let a = build(&spec)?;
    let b = build(&spec)?;
    assert_eq!(a.index.digest, b.index.digest);
    spec.seed = 2;
    assert_ne!(build(&spec)?.index.digest, a.index.digest);

    spec.format = ImageFormat::Docker;
    let docker = build(&spec)?;
    assert_eq!(docker.index.media_type, DOCKER_MANIFEST_LIST);
    assert!(
        docker
            .blobs
            .iter()
            .any(|b| b.media_type == DOCKER_LAYER_GZIP)
    );
    let single = ferry_testkit::build_single(&spec)?;
    assert_eq!(single.platform, "linux/amd64");
    assert_eq!(Some(&single.manifest), docker.manifest_for("linux/amd64"));
    Ok(())
}

#[tokio::test]
async fn oci_layout_is_readable_by_skopeo() -> anyhow::Result<()> {
    let image = build(&crate::small_spec(30))?;
    let dir = tempfile::tempdir()?;
    image.write_oci_layout(dir.path(), "v1")?;
    image.write_oci_layout(dir.path(), "v1")?;
    let index = json(&std::fs::read(dir.path().join("index.json"))?)?;
    assert_eq!(index["manifests"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );

    let layout = format!("oci:{}:v1", dir.path().display());
    let raw = skopeo::inspect_raw(&layout, None).await?;
    assert_eq!(sha256_digest(&raw), image.index.digest);

    let reg = TestRegistry::anonymous().await?;
    let dst = format!("{}/from-layout:v1", reg.host());
    let opts = skopeo::CopyOptions {
        all: true,
        extra_args: vec!["--preserve-digests".into()],
        ..Default::default()
    };
    skopeo::copy(&layout, &dst, &opts).await?;
    let raw = skopeo::inspect_raw(&dst, None).await?;
    assert_eq!(sha256_digest(&raw), image.index.digest);
    Ok(())
}
