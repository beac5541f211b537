//! OCI 1.1 artifacts that refer to a manifest through `subject`, for referrers tests.

use serde_json::{Value, json};

use super::{Blob, OCI_INDEX, OCI_MANIFEST};
use crate::push::RawClient;

pub const SBOM_ARTIFACT_TYPE: &str = "application/vnd.example.sbom";
pub const EMPTY_CONFIG_TYPE: &str = "application/vnd.oci.empty.v1+json";

#[derive(Clone, Debug)]
pub struct Artifact {
    pub manifest: Blob,
    /// The empty config (`{}`) and the payload layer.
    pub blobs: Vec<Blob>,
    pub artifact_type: String,
    /// Descriptor of the manifest this artifact refers to.
    pub subject: Value,
}

/// An artifact manifest with `artifactType`, the empty config, one layer holding `payload` and
/// `subject` = the descriptor of `subject`.
pub fn build_artifact(
    subject: &Blob,
    artifact_type: &str,
    payload: &[u8],
) -> anyhow::Result<Artifact> {
    let config = Blob::new(EMPTY_CONFIG_TYPE, &b"{}"[..]);
    let layer = Blob::new("application/json", payload.to_vec());
    let subject = subject.descriptor();
    let mut config_desc = config.descriptor();
    // The empty descriptor conventionally inlines its two bytes.
    config_desc["data"] = json!("e30=");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": config_desc,
        "layers": [layer.descriptor()],
        "subject": subject,
        "annotations": {"org.opencontainers.image.created": "1970-01-01T00:00:00Z"},
    });
    Ok(Artifact {
        manifest: Blob::new(OCI_MANIFEST, serde_json::to_vec(&manifest)?),
        blobs: vec![config, layer],
        artifact_type: artifact_type.to_string(),
        subject,
    })
}

impl Artifact {
    /// Tag of the referrers tag-schema fallback for this artifact's subject: `sha256-<hex>`.
    pub fn referrers_tag(&self) -> String {
        self.subject["digest"]
            .as_str()
            .unwrap_or_default()
            .replace(':', "-")
    }

    /// The entry describing this artifact in a referrers index.
    pub fn referrer_descriptor(&self) -> Value {
        let mut desc = self.manifest.descriptor();
        desc["artifactType"] = json!(self.artifact_type);
        desc["annotations"] = json!({"org.opencontainers.image.created": "1970-01-01T00:00:00Z"});
        desc
    }

    /// Pushes the artifact by digest and, because distribution 2.8 has no referrers API, also
    /// adds it to the fallback index tagged `referrers_tag()` (as oras and skopeo-era tools do).
    pub async fn push(
        &self,
        registry_url: &str,
        repo: &str,
        basic: Option<(&str, &str)>,
    ) -> anyhow::Result<()> {
        let client = RawClient::new(registry_url, basic)?;
        client.push_blobs(repo, &self.blobs).await?;
        client
            .put_manifest(repo, &self.manifest.digest, &self.manifest)
            .await?;
        let tag = self.referrers_tag();
        let mut index = match client.get_manifest(repo, &tag).await? {
            Some(existing) => serde_json::from_slice::<Value>(&existing.bytes)?,
            None => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
        };
        let entry = self.referrer_descriptor();
        if let Some(list) = index["manifests"].as_array_mut()
            && !list.iter().any(|m| m["digest"] == entry["digest"])
        {
            list.push(entry);
        }
        let index = Blob::new(OCI_INDEX, serde_json::to_vec(&index)?);
        client.put_manifest(repo, &tag, &index).await?;
        Ok(())
    }
}
