//! Reproducible image builders: real gzip'd tar layers of seeded random data, configs with
//! correct `diff_ids`, per-platform manifests and an OCI index or Docker manifest list.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use serde_json::{Value, json};

use crate::push::RawClient;
use crate::util::sha256_digest;

mod artifact;

pub use artifact::{Artifact, EMPTY_CONFIG_TYPE, SBOM_ARTIFACT_TYPE, build_artifact};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Content-addressed bytes with the media type they are served under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub bytes: Bytes,
    pub digest: String,
    pub media_type: String,
}

impl Blob {
    pub fn new(media_type: &str, bytes: impl Into<Bytes>) -> Blob {
        let bytes = bytes.into();
        Blob {
            digest: sha256_digest(&bytes),
            bytes,
            media_type: media_type.to_string(),
        }
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// `{mediaType, digest, size}`, as used in manifests and indexes.
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size()})
    }

    /// The hex part of the digest (file name under `blobs/sha256/`).
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Oci,
    Docker,
}

impl ImageFormat {
    pub fn manifest_type(self) -> &'static str {
        match self {
            ImageFormat::Oci => OCI_MANIFEST,
            ImageFormat::Docker => DOCKER_MANIFEST,
        }
    }

    pub fn index_type(self) -> &'static str {
        match self {
            ImageFormat::Oci => OCI_INDEX,
            ImageFormat::Docker => DOCKER_MANIFEST_LIST,
        }
    }

    fn config_type(self) -> &'static str {
        match self {
            ImageFormat::Oci => OCI_CONFIG,
            ImageFormat::Docker => DOCKER_CONFIG,
        }
    }

    fn layer_type(self) -> &'static str {
        match self {
            ImageFormat::Oci => OCI_LAYER_GZIP,
            ImageFormat::Docker => DOCKER_LAYER_GZIP,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// `os/arch[/variant]`, e.g. "linux/amd64", "linux/arm/v7".
    pub platforms: Vec<String>,
    pub layers: usize,
    /// Bytes of random file data per layer (the tar and gzip framing add a little).
    pub layer_size: usize,
    /// The first N layers are byte-identical across platforms.
    pub shared_layers: usize,
    pub format: ImageFormat,
    /// Same seed, same bytes, same digests; change it to get a different image.
    pub seed: u64,
}

impl ImageSpec {
    /// Small defaults for fast tests: 2 layers of 4 KiB, nothing shared, OCI, seed 1.
    pub fn new(platforms: &[&str]) -> ImageSpec {
        ImageSpec {
            platforms: platforms.iter().map(|p| p.to_string()).collect(),
            layers: 2,
            layer_size: 4096,
            shared_layers: 0,
            format: ImageFormat::Oci,
            seed: 1,
        }
    }
}

/// A multi-platform image: the index (or manifest list), one manifest per platform and every
/// config and layer blob (deduplicated by digest).
#[derive(Clone, Debug)]
pub struct BuiltImage {
    pub index: Blob,
    pub manifests: Vec<(String, Blob)>,
    pub blobs: Vec<Blob>,
}

/// A single-platform image with no index above its manifest.
#[derive(Clone, Debug)]
pub struct SingleImage {
    pub platform: String,
    pub manifest: Blob,
    pub blobs: Vec<Blob>,
}

pub fn build(spec: &ImageSpec) -> anyhow::Result<BuiltImage> {
    if spec.platforms.is_empty() {
        bail!("an image needs at least one platform");
    }
    let platforms = build_platforms(spec)?;
    let mut entries = Vec::new();
    let mut manifests = Vec::new();
    let mut blobs: Vec<Blob> = Vec::new();
    for p in platforms {
        let mut entry = p.manifest.descriptor();
        entry["platform"] = p.platform_json;
        entries.push(entry);
        for blob in p.blobs {
            if !blobs.iter().any(|b| b.digest == blob.digest) {
                blobs.push(blob);
            }
        }
        manifests.push((p.platform, p.manifest));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": spec.format.index_type(),
        "manifests": entries,
    });
    Ok(BuiltImage {
        index: Blob::new(spec.format.index_type(), serde_json::to_vec(&index)?),
        manifests,
        blobs,
    })
}

/// Builds only the first platform of `spec`, as an index-less image.
pub fn build_single(spec: &ImageSpec) -> anyhow::Result<SingleImage> {
    let first = spec
        .platforms
        .first()
        .context("an image needs a platform")?;
    let one = ImageSpec {
        platforms: vec![first.clone()],
        ..spec.clone()
    };
    let p = build_platforms(&one)?
        .pop()
        .context("no platform was built")?;
    Ok(SingleImage {
        platform: p.platform,
        manifest: p.manifest,
        blobs: p.blobs,
    })
}

impl BuiltImage {
    pub fn write_oci_layout(&self, dir: &Path, tag: &str) -> anyhow::Result<()> {
        let children = self.manifests.iter().map(|(_, m)| m);
        crate::layout::write_layout(dir, &self.index, tag, self.blobs.iter().chain(children))
    }

    /// Pushes with plain HTTP (blobs by POST + monolithic PUT, child manifests by digest, the
    /// index by tag). Handles anonymous, Basic and Bearer-token registries.
    pub async fn push(
        &self,
        registry_url: &str,
        repo: &str,
        tag: &str,
        basic: Option<(&str, &str)>,
    ) -> anyhow::Result<()> {
        let client = RawClient::new(registry_url, basic)?;
        client.push_blobs(repo, &self.blobs).await?;
        for (_, manifest) in &self.manifests {
            client
                .put_manifest(repo, &manifest.digest, manifest)
                .await?;
        }
        client.put_manifest(repo, tag, &self.index).await?;
        Ok(())
    }

    /// Sum of config and layer sizes (each distinct blob once), excluding manifests.
    pub fn total_blob_bytes(&self) -> u64 {
        self.blobs.iter().map(Blob::size).sum()
    }

    pub fn manifest_for(&self, platform: &str) -> Option<&Blob> {
        self.manifests
            .iter()
            .find(|(p, _)| p == platform)
            .map(|(_, m)| m)
    }
}

impl SingleImage {
    pub fn write_oci_layout(&self, dir: &Path, tag: &str) -> anyhow::Result<()> {
        crate::layout::write_layout(dir, &self.manifest, tag, self.blobs.iter())
    }

    pub async fn push(
        &self,
        registry_url: &str,
        repo: &str,
        tag: &str,
        basic: Option<(&str, &str)>,
    ) -> anyhow::Result<()> {
        let client = RawClient::new(registry_url, basic)?;
        client.push_blobs(repo, &self.blobs).await?;
        client.put_manifest(repo, tag, &self.manifest).await?;
        Ok(())
    }

    pub fn total_blob_bytes(&self) -> u64 {
        self.blobs.iter().map(Blob::size).sum()
    }
}

struct PlatformImage {
    platform: String,
    platform_json: Value,
    manifest: Blob,
    /// Config first, then layers in order.
    blobs: Vec<Blob>,
}

struct Layer {
    blob: Blob,
    diff_id: String,
}

fn build_platforms(spec: &ImageSpec) -> anyhow::Result<Vec<PlatformImage>> {
    let shared = spec.shared_layers.min(spec.layers);
    // One job per distinct layer: shared layers once, the rest per platform.
    let mut jobs: Vec<(u64, String)> = (0..shared)
        .map(|j| {
            (
                mix(spec.seed, u64::MAX, j as u64),
                format!("shared-{j}.bin"),
            )
        })
        .collect();
    for (i, _) in spec.platforms.iter().enumerate() {
        for j in shared..spec.layers {
            jobs.push((mix(spec.seed, i as u64, j as u64), format!("p{i}-l{j}.bin")));
        }
    }
    let built = build_layers(&jobs, spec.layer_size, spec.format)?;

    let mut out = Vec::new();
    for (i, platform) in spec.platforms.iter().enumerate() {
        let layers: Vec<&Layer> = (0..spec.layers)
            .map(|j| {
                if j < shared {
                    &built[j]
                } else {
                    &built[shared + i * (spec.layers - shared) + (j - shared)]
                }
            })
            .collect();
        let platform_json = platform_json(platform)?;
        let mut config = json!({
            "architecture": platform_json["architecture"],
            "os": platform_json["os"],
            "created": "1970-01-01T00:00:00Z",
            "config": {},
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
            },
            "history": (0..layers.len())
                .map(|j| json!({"created_by": format!("ferry-testkit layer {j}")}))
                .collect::<Vec<_>>(),
        });
        if let Some(variant) = platform_json.get("variant") {
            config["variant"] = variant.clone();
        }
        let config = Blob::new(spec.format.config_type(), serde_json::to_vec(&config)?);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": spec.format.manifest_type(),
            "config": config.descriptor(),
            "layers": layers.iter().map(|l| l.blob.descriptor()).collect::<Vec<_>>(),
        });
        let manifest = Blob::new(spec.format.manifest_type(), serde_json::to_vec(&manifest)?);
        let mut blobs = vec![config];
        blobs.extend(layers.iter().map(|l| l.blob.clone()));
        out.push(PlatformImage {
            platform: platform.clone(),
            platform_json,
            manifest,
            blobs,
        });
    }
    Ok(out)
}

/// Builds layers on all cores: gzip and sha256 of 300 MiB are seconds of CPU otherwise.
fn build_layers(
    jobs: &[(u64, String)],
    size: usize,
    format: ImageFormat,
) -> anyhow::Result<Vec<Layer>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(jobs.len().max(1));
    let chunk = jobs.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(seed, name)| build_layer(*seed, name, size, format))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut layers = Vec::with_capacity(jobs.len());
        for handle in handles {
            let built = handle
                .join()
                .map_err(|_| anyhow::anyhow!("layer builder thread panicked"))??;
            layers.extend(built);
        }
        Ok(layers)
    })
}

fn build_layer(seed: u64, name: &str, size: usize, format: ImageFormat) -> anyhow::Result<Layer> {
    let mut data = vec![0u8; size];
    rand::rngs::SmallRng::seed_from_u64(seed).fill_bytes(&mut data);

    let mut header = tar::Header::new_gnu();
    header.set_path(name)?;
    header.set_size(size as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::with_capacity(size + 4096));
    builder.append(&header, data.as_slice())?;
    let tar = builder.into_inner()?;
    drop(data);

    let diff_id = sha256_digest(&tar);
    // Random data does not compress, so every level emits stored blocks of nearly the same
    // size; level 0 gets there 1.6x (release) to 3x (debug) faster than level 1.
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(tar.len() + tar.len() / 100 + 64),
        flate2::Compression::none(),
    );
    gz.write_all(&tar)?;
    let compressed = gz.finish()?;
    Ok(Layer {
        blob: Blob::new(format.layer_type(), compressed),
        diff_id,
    })
}

/// `linux/arm/v7` → `{"os":"linux","architecture":"arm","variant":"v7"}`.
pub fn platform_json(platform: &str) -> anyhow::Result<Value> {
    let parts: Vec<&str> = platform.split('/').collect();
    match parts.as_slice() {
        [os, arch] => Ok(json!({"os": os, "architecture": arch})),
        [os, arch, variant] => Ok(json!({"os": os, "architecture": arch, "variant": variant})),
        _ => bail!("platform {platform:?} is not os/arch[/variant]"),
    }
}

/// splitmix64 over the inputs, so every (seed, platform, layer) gets unrelated random data.
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut x =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
