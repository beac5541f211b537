//! The bytes of a new list. Built once and pushed as built: the digest a dry run prints is the
//! digest a real run pushes, because the same children always give the same bytes.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde_json::{Map, Value, json};

use super::error::ListError;
use super::sources::Child;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::media_type::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX};

/// Which kind of list to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListFormat {
    /// A Docker manifest list when every child is a Docker image manifest and no index
    /// annotation is asked for (what `docker manifest create` writes); else an OCI index.
    #[default]
    Auto,
    Oci,
    Docker,
}

impl FromStr for ListFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(ListFormat::Auto),
            "oci" => Ok(ListFormat::Oci),
            "docker" => Ok(ListFormat::Docker),
            _ => Err(format!("expected oci, docker or auto, got {s:?}")),
        }
    }
}

/// The media type `format` gives a list of `children`, or why it cannot.
pub fn media_type(
    format: ListFormat,
    children: &[Child],
    annotations: &BTreeMap<String, String>,
) -> Result<&'static str, ListError> {
    let all_docker = children.iter().all(|c| c.media_type == DOCKER_MANIFEST);
    match format {
        ListFormat::Oci => Ok(OCI_INDEX),
        ListFormat::Auto if all_docker && annotations.is_empty() => Ok(DOCKER_MANIFEST_LIST),
        ListFormat::Auto => Ok(OCI_INDEX),
        ListFormat::Docker => {
            if !annotations.is_empty() {
                return Err(ListError::DockerAnnotations);
            }
            match children.iter().find(|c| c.media_type != DOCKER_MANIFEST) {
                Some(child) => Err(ListError::NotDockerChild {
                    source_ref: child.source.clone(),
                    media_type: child.media_type.clone(),
                }),
                None => Ok(DOCKER_MANIFEST_LIST),
            }
        }
    }
}

/// The list of `children`, in order. Entry annotations survive into an OCI index (buildx's
/// attestations need theirs to name their subject); a Docker list has no place for them.
pub fn build(
    media_type: &str,
    children: &[Child],
    annotations: &BTreeMap<String, String>,
) -> Result<Manifest> {
    let oci = media_type == OCI_INDEX;
    let entries: Vec<Value> = children
        .iter()
        .map(|child| {
            let mut platform = Map::new();
            platform.insert(
                "architecture".into(),
                child.platform.architecture.clone().into(),
            );
            platform.insert("os".into(), child.platform.os.clone().into());
            if let Some(version) = &child.platform.os_version {
                platform.insert("os.version".into(), version.clone().into());
            }
            if let Some(variant) = &child.platform.variant {
                platform.insert("variant".into(), variant.clone().into());
            }
            let mut entry = json!({
                "mediaType": child.media_type,
                "digest": child.digest,
                "size": child.size,
                "platform": platform,
            });
            if oci && !child.annotations.is_empty() {
                let sorted: BTreeMap<_, _> = child.annotations.iter().collect();
                entry["annotations"] = json!(sorted);
            }
            entry
        })
        .collect();
    let mut list = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": entries,
    });
    if oci && !annotations.is_empty() {
        list["annotations"] = json!(annotations);
    }
    let raw = serde_json::to_vec_pretty(&list)
        .map_err(|e| Error::Other(format!("cannot encode the manifest list: {e}")))?;
    Ok(Manifest::from_raw(raw.into(), Some(media_type))?)
}
