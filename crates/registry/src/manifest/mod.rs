//! Manifests and indexes: what a registry served, parsed enough to walk the graph of blobs
//! and child manifests, while the original bytes are what gets pushed.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde_json::Value;

pub use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::digest::{Digest, DigestError};
use crate::media_type;

#[cfg(test)]
mod tests;

// Not boxed: a manifest is held once per copy step, and the plain oci-spec types keep matching
// on the body simple.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ManifestBody {
    Image(ImageManifest),
    Index(ImageIndex),
}

/// A manifest as the registry served it. The raw bytes are kept and are what gets pushed: a
/// copied manifest is never re-serialised (its digest is sha256 of these bytes).
#[derive(Debug, Clone)]
pub struct Manifest {
    raw: Bytes,
    digest: Digest,
    media_type: String,
    body: ManifestBody,
}

impl Manifest {
    /// Parses a manifest. Its media type is the document's own `mediaType` field if present,
    /// else the `Content-Type` it was served with (parameters ignored; a non-manifest type such
    /// as `application/json` counts as absent), else inferred from its shape.
    pub fn from_raw(raw: Bytes, content_type: Option<&str>) -> Result<Manifest, ManifestError> {
        let digest = Digest::sha256_of(&raw);
        let mut value: Value =
            serde_json::from_slice(&raw).map_err(|source| ManifestError::Json { source })?;
        let Some(object) = value.as_object() else {
            return Err(ManifestError::NotAnObject);
        };

        let schema_version = object.get("schemaVersion").cloned();
        let declared = object.get("mediaType").and_then(Value::as_str);
        let served = content_type
            .map(media_type::essence)
            .filter(|ct| media_type::is_manifest(ct) || media_type::is_schema1(ct));
        let media_type = match declared.or(served) {
            Some(mt) => mt.to_string(),
            None if object.contains_key("manifests") => media_type::OCI_INDEX.to_string(),
            None if object.contains_key("config") || object.contains_key("layers") => {
                media_type::OCI_MANIFEST.to_string()
            }
            // Schema 1 has neither, and is reported as such below.
            None if schema_version != Some(Value::from(1)) => {
                return Err(ManifestError::UnknownFormat);
            }
            None => media_type::DOCKER_SCHEMA1.to_string(),
        };

        if schema_version == Some(Value::from(1)) || media_type::is_schema1(&media_type) {
            return Err(ManifestError::SchemaOne { media_type });
        }
        if !media_type::is_manifest(&media_type) {
            return Err(ManifestError::UnsupportedMediaType { media_type });
        }
        if schema_version != Some(Value::from(2)) {
            return Err(ManifestError::SchemaVersion {
                found: schema_version.map_or_else(|| "missing".to_string(), |v| v.to_string()),
            });
        }

        let is_index = media_type::is_index(&media_type);
        normalise_for_oci_spec(&mut value, is_index);
        let malformed = |source| ManifestError::Malformed {
            media_type: media_type.clone(),
            source,
        };
        let body = if is_index {
            ManifestBody::Index(serde_json::from_value(value).map_err(malformed)?)
        } else {
            ManifestBody::Image(serde_json::from_value(value).map_err(malformed)?)
        };
        Ok(Manifest {
            raw,
            digest,
            media_type,
            body,
        })
    }

    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    pub fn size(&self) -> u64 {
        u64::try_from(self.raw.len()).unwrap_or(u64::MAX)
    }

    pub fn is_index(&self) -> bool {
        matches!(self.body, ManifestBody::Index(_))
    }

    pub fn body(&self) -> &ManifestBody {
        &self.body
    }

    /// The manifests an index lists; empty for an image manifest.
    pub fn children(&self) -> &[Descriptor] {
        match &self.body {
            ManifestBody::Index(index) => index.manifests(),
            ManifestBody::Image(_) => &[],
        }
    }

    pub fn config(&self) -> Option<&Descriptor> {
        match &self.body {
            ManifestBody::Image(image) => Some(image.config()),
            ManifestBody::Index(_) => None,
        }
    }

    pub fn layers(&self) -> &[Descriptor] {
        match &self.body {
            ManifestBody::Image(image) => image.layers(),
            ManifestBody::Index(_) => &[],
        }
    }

    /// Every blob an image manifest references, config first; empty for an index.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        self.config().into_iter().chain(self.layers()).collect()
    }

    /// The manifest this one refers to (OCI 1.1 referrers), e.g. the image a signature signs.
    pub fn subject(&self) -> Option<&Descriptor> {
        match &self.body {
            ManifestBody::Image(image) => image.subject().as_ref(),
            ManifestBody::Index(index) => index.subject().as_ref(),
        }
    }

    /// The document's own `artifactType` field (not the config media type fallback the
    /// referrers API applies).
    pub fn artifact_type(&self) -> Option<&str> {
        let artifact_type = match &self.body {
            ManifestBody::Image(image) => image.artifact_type(),
            ManifestBody::Index(index) => index.artifact_type(),
        };
        artifact_type.as_ref().map(AsRef::as_ref)
    }
}

/// oci-spec 0.10 cannot read some valid real-world documents as served. Only the parsed view is
/// adjusted; the raw bytes, and so the digest and what is pushed, are untouched.
fn normalise_for_oci_spec(value: &mut Value, is_index: bool) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    // Go encoders write a nil slice as `null`, and some artifact tools omit an empty `layers`;
    // oci-spec requires an array.
    let list = if is_index { "manifests" } else { "layers" };
    if object.get(list).is_none_or(Value::is_null) {
        object.insert(list.to_string(), Value::Array(Vec::new()));
    }
    for (key, v) in object.iter_mut() {
        match key.as_str() {
            "config" | "subject" => rename_platform_fields(v),
            "layers" | "manifests" => {
                if let Some(descriptors) = v.as_array_mut() {
                    descriptors.iter_mut().for_each(rename_platform_fields);
                }
            }
            _ => {}
        }
    }
}

/// oci-spec's descriptor `Platform` has no serde renames, so the spec's `os.version` and
/// `os.features` (set by Windows images) would be silently dropped; give them the names it reads.
fn rename_platform_fields(descriptor: &mut Value) {
    let Some(platform) = descriptor
        .get_mut("platform")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (spec_name, oci_spec_name) in [("os.version", "os_version"), ("os.features", "os_features")]
    {
        if let Some(v) = platform.remove(spec_name) {
            platform.insert(oci_spec_name.to_string(), v);
        }
    }
}

/// A descriptor's digest as ours: only sha256 is accepted, so other algorithms fail here.
pub fn descriptor_digest(d: &Descriptor) -> Result<Digest, ManifestError> {
    let digest: &str = d.digest().as_ref();
    Digest::parse(digest).map_err(|source| ManifestError::InvalidDescriptorDigest {
        digest: digest.to_string(),
        source,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub os_version: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]` as users write it (`linux/amd64`, `linux/arm/v7`), accepting
    /// the common uname-style aliases (`x86_64`, `aarch64`, `armhf`).
    pub fn parse(s: &str) -> Result<Platform, ManifestError> {
        let invalid = |reason: &'static str| ManifestError::InvalidPlatform {
            input: s.to_string(),
            reason,
        };
        if s.is_empty() {
            return Err(invalid("it is empty"));
        }
        let parts: Vec<&str> = s.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => return Err(invalid("it needs two or three parts separated by '/'")),
        };
        for part in &parts {
            if part.is_empty() {
                return Err(invalid("it has an empty part"));
            }
            if !part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(invalid(
                    "parts may only contain letters, digits, '.', '_' and '-'",
                ));
            }
        }
        let arch = arch.to_ascii_lowercase();
        let (architecture, implied_variant) = canonical_arch(&arch);
        let variant = variant
            .map(|v| canonical_variant(architecture, &v.to_ascii_lowercase()))
            .or(implied_variant.map(str::to_string));
        Ok(Platform {
            os: os.to_ascii_lowercase(),
            architecture: architecture.to_string(),
            variant,
            os_version: None,
        })
    }

    /// The platform of an index entry, if it declares one.
    pub fn of(d: &Descriptor) -> Option<Platform> {
        d.platform().as_ref().map(|p| Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
            os_version: p.os_version().clone(),
        })
    }

    /// Whether an index entry with platform `other` satisfies this requested platform: os and
    /// architecture equal, the variant too if one was asked for, with containerd's defaults
    /// (arm64 means v8, arm means v7, amd64 means v1) so `linux/arm64/v8` finds a plain
    /// `linux/arm64` entry.
    pub fn matches(&self, other: &Platform) -> bool {
        let (os, arch, variant) = self.canonical();
        let (other_os, other_arch, other_variant) = other.canonical();
        // An alias such as "armhf" names a variant as much as "arm/v7" does.
        let variant_requested = self.variant.is_some()
            || canonical_arch(&self.architecture.to_ascii_lowercase())
                .1
                .is_some();
        os == other_os
            && arch == other_arch
            && (!variant_requested || variant == other_variant)
            && self
                .os_version
                .as_ref()
                .is_none_or(|v| other.os_version.as_ref() == Some(v))
    }

    /// `unknown/unknown`: what buildx gives its attestation manifests in an index.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }

    fn canonical(&self) -> (String, String, Option<String>) {
        let arch = self.architecture.to_ascii_lowercase();
        let (arch, implied) = canonical_arch(&arch);
        let variant = match (&self.variant, implied) {
            (Some(v), _) => Some(canonical_variant(arch, &v.to_ascii_lowercase())),
            (None, Some(v)) => Some(v.to_string()),
            (None, None) => default_variant(arch).map(str::to_string),
        };
        let variant = variant.filter(|v| !(arch == "amd64" && v == "v1"));
        (self.os.to_ascii_lowercase(), arch.to_string(), variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

/// GOARCH names for the aliases `uname -m` and Debian use, plus the variant an alias implies.
fn canonical_arch(arch: &str) -> (&str, Option<&'static str>) {
    match arch {
        "x86_64" | "x86-64" => ("amd64", None),
        "aarch64" => ("arm64", None),
        "armhf" => ("arm", Some("v7")),
        "armel" => ("arm", Some("v6")),
        "i386" | "i686" => ("386", None),
        other => (other, None),
    }
}

/// "7" → "v7" for the architectures whose variants are versions.
fn canonical_variant(arch: &str, variant: &str) -> String {
    let numeric = !variant.is_empty() && variant.bytes().all(|b| b.is_ascii_digit());
    if numeric && matches!(arch, "arm" | "arm64" | "amd64") {
        format!("v{variant}")
    } else {
        variant.to_string()
    }
}

/// What an entry without a variant is taken to be, as containerd does.
fn default_variant(arch: &str) -> Option<&'static str> {
    match arch {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    }
}

/// Builds a new index of the same media type holding only the children whose platform matches
/// any of `platforms`, in their original order. Children without a platform are dropped.
///
/// The original JSON is edited rather than rebuilt from the parsed types, so every other field
/// and annotation survives, including ones oci-spec does not model. The output is compact JSON
/// (keys in serde_json's map order), so the same input always gives the same digest.
pub fn filter_index(index: &Manifest, platforms: &[Platform]) -> Result<Manifest, ManifestError> {
    if !index.is_index() {
        return Err(ManifestError::NotAnIndex {
            media_type: index.media_type.clone(),
        });
    }
    if platforms.is_empty() {
        return Err(ManifestError::NoPlatformsRequested);
    }
    let mut value: Value =
        serde_json::from_slice(&index.raw).map_err(|source| ManifestError::Json { source })?;
    let entries = value
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    // The parsed children came from these same entries, in the same order.
    let mut kept = Vec::new();
    let mut available = Vec::new();
    for (entry, child) in entries.into_iter().zip(index.children()) {
        let Some(platform) = Platform::of(child) else {
            continue;
        };
        if platforms.iter().any(|p| p.matches(&platform)) {
            kept.push(entry);
        }
        if !available.contains(&platform) {
            available.push(platform);
        }
    }
    if kept.is_empty() {
        return Err(ManifestError::NoMatchingPlatform {
            requested: platforms.to_vec(),
            available,
        });
    }
    if let Some(manifests) = value.get_mut("manifests") {
        *manifests = Value::Array(kept);
    }
    let raw = serde_json::to_vec(&value).map_err(|source| ManifestError::Json { source })?;
    Manifest::from_raw(Bytes::from(raw), Some(&index.media_type))
}

fn join(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return "none".to_string();
    }
    platforms
        .iter()
        .map(Platform::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {source}")]
    Json { source: serde_json::Error },

    #[error("manifest is not a JSON object")]
    NotAnObject,

    #[error(
        "Docker image manifest schema 1 ({media_type}) is not supported: it is deprecated and most registries no longer accept it; rebuild or re-push the image with a current Docker or buildx to get a schema 2 or OCI manifest"
    )]
    SchemaOne { media_type: String },

    #[error(
        "unsupported manifest media type {media_type:?}; supported: Docker manifest v2 and manifest list, OCI image manifest and index"
    )]
    UnsupportedMediaType { media_type: String },

    #[error(
        "cannot tell what kind of manifest this is: it has no \"mediaType\" field, was not served with a manifest Content-Type, and has neither \"manifests\" nor \"config\"/\"layers\""
    )]
    UnknownFormat,

    #[error("unsupported manifest schemaVersion {found}; expected 2")]
    SchemaVersion { found: String },

    #[error("malformed {media_type} document: {source}")]
    Malformed {
        media_type: String,
        source: serde_json::Error,
    },

    #[error("descriptor digest {digest:?} cannot be used: {source}")]
    InvalidDescriptorDigest { digest: String, source: DigestError },

    #[error(
        "invalid platform {input:?}: {reason}; expected \"os/arch[/variant]\", e.g. \"linux/amd64\" or \"linux/arm/v7\""
    )]
    InvalidPlatform { input: String, reason: &'static str },

    #[error(
        "cannot select platforms from a {media_type} manifest: it is a single image, not an index or manifest list"
    )]
    NotAnIndex { media_type: String },

    #[error("no platforms requested")]
    NoPlatformsRequested,

    #[error(
        "no image in the index matches the requested platform(s) {}; it has: {}",
        join(.requested),
        join(.available)
    )]
    NoMatchingPlatform {
        requested: Vec<Platform>,
        available: Vec<Platform>,
    },
}
