//! Everything about an `EcrImageMirror` spec that can be checked without the network, with
//! errors that name the field by its YAML path (`spec.source.tagPolicy.semver.range: …`).

use std::str::FromStr;
use std::time::Duration;

use super::policy::{PolicyError, TagPolicy};
use super::spec::{EcrImageMirrorSpec, EncryptionType, RepositorySettingsSpec};
use crate::ecr::{EcrError, Encryption, RepositorySettings, TagMutability};
use crate::manifest::Platform;
use crate::reference::Reference;

/// The sync interval when the spec gives none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);
/// The shortest sync interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);

/// What is wrong with a spec or a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A field is wrong; `field` is its YAML path (`spec.source.image`).
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's YAML path.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A document of a YAML file is wrong; `reason` names the field where it can.
    #[error("{origin}: document {index}: {reason}")]
    Document {
        /// Where the text came from (a file name).
        origin: String,
        /// The document's position in the text, from 1.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl EcrImageMirrorSpec {
    /// Checks everything that needs no network: the image, the tags and the tag policy, the
    /// platforms, the manifest lists, the interval and the repository settings.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.source_reference()?;
        let source = &self.source;
        if source.tags.is_empty() && source.tag_policy.is_none() {
            return Err(invalid(
                "spec.source",
                "give the tags to copy, a tagPolicy to choose them, or both",
            ));
        }
        for (i, tag) in source.tags.iter().enumerate() {
            check_tag(&format!("spec.source.tags[{i}]"), tag)?;
        }
        if let Some(policy) = &source.tag_policy {
            TagPolicy::new(policy).map_err(|e| policy_error("spec.source.tagPolicy", e))?;
        }
        for (i, platform) in source.platforms.iter().enumerate() {
            Platform::parse(platform)
                .map_err(|e| invalid(format!("spec.source.platforms[{i}]"), e.to_string()))?;
        }
        if let Some(secret) = &source.credentials_secret_ref
            && secret.name.trim().is_empty()
        {
            return Err(invalid("spec.source.credentialsSecretRef.name", "is empty"));
        }
        for (i, list) in self.manifest_lists.iter().enumerate() {
            let field = format!("spec.manifestLists[{i}]");
            check_tag(&format!("{field}.tag"), &list.tag)?;
            if list.sources.is_empty() {
                return Err(invalid(
                    format!("{field}.sources"),
                    format!("the list {:?} needs at least one source tag", list.tag),
                ));
            }
            for (j, tag) in list.sources.iter().enumerate() {
                check_tag(&format!("{field}.sources[{j}]"), tag)?;
            }
        }
        self.interval()?;
        self.to_settings()?;
        Ok(())
    }

    /// The source repository, checked to have no tag or digest.
    pub fn source_reference(&self) -> Result<Reference, SpecError> {
        let image = &self.source.image;
        let field = "spec.source.image";
        let reference = Reference::parse(image).map_err(|e| invalid(field, e.to_string()))?;
        // `Reference` fills in `latest` when no tag is written, so look at the text: a ':'
        // after the last '/' is a tag (one before it is a registry port).
        let last_component = image.rsplit('/').next().unwrap_or(image);
        if reference.digest().is_some() || last_component.contains(':') {
            return Err(invalid(
                field,
                format!(
                    "{image:?} names a tag or digest; give the repository alone ({:?}) and the \
                     tags in spec.source.tags or spec.source.tagPolicy",
                    reference.name()
                ),
            ));
        }
        Ok(reference)
    }

    /// The sync interval: `interval` parsed, or [`DEFAULT_INTERVAL`].
    pub fn interval(&self) -> Result<Duration, SpecError> {
        let Some(text) = &self.interval else {
            return Ok(DEFAULT_INTERVAL);
        };
        let interval = parse_duration(text).map_err(|reason| invalid("spec.interval", reason))?;
        if interval < MIN_INTERVAL {
            return Err(invalid(
                "spec.interval",
                format!("{text:?} is shorter than the minimum, 1m"),
            ));
        }
        Ok(interval)
    }

    /// The destination's repository settings as `ferry copy` takes them from its flags (all
    /// "not asked for" when the spec has none).
    pub fn to_settings(&self) -> Result<RepositorySettings, SpecError> {
        match &self.destination.repository_settings {
            None => Ok(RepositorySettings::default()),
            Some(spec) => spec.to_settings(),
        }
    }
}

impl RepositorySettingsSpec {
    /// These settings in the form the ECR calls take, checked as `ferry copy` checks its flags.
    pub fn to_settings(&self) -> Result<RepositorySettings, SpecError> {
        let prefix = "spec.destination.repositorySettings";
        let tag_mutability = self
            .tag_mutability
            .as_deref()
            .map(TagMutability::from_str)
            .transpose()
            .map_err(|e| invalid(format!("{prefix}.tagMutability"), e.to_string()))?;
        let encryption = match (self.encryption, &self.kms_key) {
            (None, None) => None,
            (None, Some(_)) | (Some(EncryptionType::Aes256), Some(_)) => {
                return Err(invalid(
                    format!("{prefix}.kmsKey"),
                    "goes with encryption: KMS",
                ));
            }
            (Some(EncryptionType::Aes256), None) => Some(Encryption::Aes256),
            (Some(EncryptionType::Kms), key) => Some(Encryption::Kms { key: key.clone() }),
        };
        let settings = RepositorySettings {
            tag_mutability,
            mutability_exclusions: self.mutability_exclusions.clone(),
            scan_on_push: self.scan_on_push,
            encryption,
            tags: self
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            lifecycle_policy: self.lifecycle_policy.clone(),
            repository_policy: self.repository_policy.clone(),
            enforce: self.enforce,
        };
        // The same checks `ferry copy` runs before any AWS call.
        settings.validate().map_err(|e| match e {
            EcrError::InvalidSetting { setting, reason } => {
                let field = match setting {
                    "tag mutability exclusions" => "mutabilityExclusions",
                    "tag mutability" => "tagMutability",
                    "lifecycle policy" => "lifecyclePolicy",
                    "repository policy" => "repositoryPolicy",
                    other => other,
                };
                invalid(format!("{prefix}.{field}"), reason)
            }
            other => invalid(prefix, other.to_string()),
        })?;
        Ok(settings)
    }
}

fn policy_error(prefix: &str, error: PolicyError) -> SpecError {
    match error {
        PolicyError::Invalid { field, reason } if field.is_empty() => invalid(prefix, reason),
        PolicyError::Invalid { field, reason } => invalid(format!("{prefix}.{field}"), reason),
        other => invalid(prefix, other.to_string()),
    }
}

/// A tag as the distribution spec allows it: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn check_tag(field: &str, tag: &str) -> Result<(), SpecError> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!(
                "{tag:?} is not a tag (1 to 128 letters, digits, '_', '.' and '-', not starting \
                 with '.' or '-')"
            ),
        ))
    }
}

/// `90s`, `15m`, `1h30m`: whole numbers each followed by `h`, `m` or `s`, as Kubernetes
/// durations are usually written (Go's fractions and sub-second units are not needed here).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let shape = || format!("{text:?} is not a duration such as 90s, 15m or 1h30m");
    if text.is_empty() {
        return Err(shape());
    }
    let mut seconds: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(shape());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| shape())?;
        let unit = match rest[digits..].chars().next() {
            Some('h') => 3600,
            Some('m') => 60,
            Some('s') => 1,
            _ => return Err(shape()),
        };
        seconds = value
            .checked_mul(unit)
            .and_then(|s| seconds.checked_add(s))
            .ok_or_else(|| format!("{text:?} is too long"))?;
        rest = &rest[digits + 1..];
    }
    Ok(Duration::from_secs(seconds))
}
