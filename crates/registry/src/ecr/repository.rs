//! Repository settings as the user asks for them, and a repository's state as ECR reports it.
//! The calls that create and reconcile repositories are in `ensure.rs`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use aws_sdk_ecr::types::ImageTagMutability;
use serde::{Serialize, Serializer};

use super::EcrError;

/// What to do when the repository does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnsureMode {
    CreateIfMissing,
    MustExist,
}

/// The settings a repository should have. `None`/empty means "not asked for": never compared,
/// never changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositorySettings {
    pub tag_mutability: Option<TagMutability>,
    /// Wildcard filters (`*` matches any run of characters) for the tags that are the
    /// exception to `tag_mutability`. Given with plain `MUTABLE`/`IMMUTABLE`, they turn it into
    /// the `…_WITH_EXCLUSION` form, which is what ECR itself does.
    pub mutability_exclusions: Vec<String>,
    pub scan_on_push: Option<bool>,
    /// Only applies at creation: ECR cannot change a repository's encryption, so a difference is
    /// reported and never "corrected".
    pub encryption: Option<Encryption>,
    /// Resource tags. Only these keys are compared; other tags on the repository are left alone.
    pub tags: Vec<(String, String)>,
    /// JSON text, checked to be JSON before any call.
    pub lifecycle_policy: Option<String>,
    /// JSON text, checked to be JSON before any call.
    pub repository_policy: Option<String>,
    /// Correct differences on an existing repository instead of only reporting them.
    pub enforce: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagMutability {
    Mutable,
    Immutable,
    MutableWithExclusion,
    ImmutableWithExclusion,
}

impl TagMutability {
    pub fn as_str(&self) -> &'static str {
        match self {
            TagMutability::Mutable => "MUTABLE",
            TagMutability::Immutable => "IMMUTABLE",
            TagMutability::MutableWithExclusion => "MUTABLE_WITH_EXCLUSION",
            TagMutability::ImmutableWithExclusion => "IMMUTABLE_WITH_EXCLUSION",
        }
    }

    /// Whether tags are immutable by default (exclusions aside).
    pub fn is_immutable(&self) -> bool {
        matches!(
            self,
            TagMutability::Immutable | TagMutability::ImmutableWithExclusion
        )
    }

    fn has_exclusions(&self) -> bool {
        matches!(
            self,
            TagMutability::MutableWithExclusion | TagMutability::ImmutableWithExclusion
        )
    }

    fn with_exclusions(self) -> TagMutability {
        match self {
            TagMutability::Mutable => TagMutability::MutableWithExclusion,
            TagMutability::Immutable => TagMutability::ImmutableWithExclusion,
            other => other,
        }
    }

    pub(crate) fn to_sdk(self) -> ImageTagMutability {
        match self {
            TagMutability::Mutable => ImageTagMutability::Mutable,
            TagMutability::Immutable => ImageTagMutability::Immutable,
            TagMutability::MutableWithExclusion => ImageTagMutability::MutableWithExclusion,
            TagMutability::ImmutableWithExclusion => ImageTagMutability::ImmutableWithExclusion,
        }
    }

    /// A value this SDK does not know yet reads as immutable: callers then compare digests
    /// before pushing a tag, which is right for either kind of repository.
    pub(crate) fn from_sdk(value: Option<&ImageTagMutability>) -> TagMutability {
        match value {
            None | Some(ImageTagMutability::Mutable) => TagMutability::Mutable,
            Some(ImageTagMutability::Immutable) => TagMutability::Immutable,
            Some(ImageTagMutability::MutableWithExclusion) => TagMutability::MutableWithExclusion,
            Some(ImageTagMutability::ImmutableWithExclusion) => {
                TagMutability::ImmutableWithExclusion
            }
            Some(_) => TagMutability::Immutable,
        }
    }
}

impl fmt::Display for TagMutability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TagMutability {
    type Err = EcrError;

    /// `MUTABLE`, `immutable`, `immutable-with-exclusion`, …
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normalised = s.trim().to_ascii_uppercase().replace('-', "_");
        match normalised.as_str() {
            "MUTABLE" => Ok(TagMutability::Mutable),
            "IMMUTABLE" => Ok(TagMutability::Immutable),
            "MUTABLE_WITH_EXCLUSION" => Ok(TagMutability::MutableWithExclusion),
            "IMMUTABLE_WITH_EXCLUSION" => Ok(TagMutability::ImmutableWithExclusion),
            _ => Err(EcrError::InvalidTagMutability {
                input: s.to_string(),
            }),
        }
    }
}

impl Serialize for TagMutability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    Aes256,
    /// `key: None` is the AWS managed key (and accepts any KMS key when comparing).
    Kms {
        key: Option<String>,
    },
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encryption::Aes256 => f.write_str("AES256"),
            Encryption::Kms { key: None } => f.write_str("KMS"),
            Encryption::Kms { key: Some(key) } => write!(f, "KMS ({key})"),
        }
    }
}

/// A repository as ECR reports it, after [`Ecr::ensure_repository`](super::Ecr) did its work.
#[derive(Debug, Clone, Serialize)]
pub struct RepositoryState {
    pub name: String,
    pub uri: String,
    pub arn: Option<String>,
    /// Whether this call created the repository.
    pub created: bool,
    pub tag_mutability: TagMutability,
    pub mutability_exclusions: Vec<String>,
    pub scan_on_push: bool,
    /// Requested settings the repository did not have (corrected or not).
    pub drift: Vec<Drift>,
}

impl RepositoryState {
    /// Whether pushing `tag` here cannot move an existing tag. Exclusion filters are wildcard
    /// patterns (`*` matches any run of characters, including none) naming the tags that are
    /// the exception to the repository's default.
    pub fn tag_is_immutable(&self, tag: &str) -> bool {
        let excluded = || {
            self.mutability_exclusions
                .iter()
                .any(|pattern| wildcard_match(pattern, tag))
        };
        match self.tag_mutability {
            TagMutability::Mutable => false,
            TagMutability::Immutable => true,
            TagMutability::ImmutableWithExclusion => !excluded(),
            TagMutability::MutableWithExclusion => excluded(),
        }
    }
}

/// A requested setting the repository did not have.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    /// `tag_mutability`, `scan_on_push`, `encryption`, `tag:<key>`, `lifecycle_policy`,
    /// `repository_policy`.
    pub setting: String,
    pub wanted: String,
    pub actual: String,
    /// Whether it was changed to what was wanted (only with `enforce`; never for encryption).
    pub corrected: bool,
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return text.is_empty();
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: the whole text must have been the prefix.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The settings after checking everything that can be checked without AWS.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    pub mutability: Option<(TagMutability, BTreeSet<String>)>,
    pub scan_on_push: Option<bool>,
    pub encryption: Option<Encryption>,
    pub tags: Vec<(String, String)>,
    pub lifecycle_policy: Option<(String, serde_json::Value)>,
    pub repository_policy: Option<(String, serde_json::Value)>,
    pub enforce: bool,
}

impl RepositorySettings {
    pub(crate) fn validate(&self) -> Result<Wanted, EcrError> {
        let exclusions: BTreeSet<String> = self
            .mutability_exclusions
            .iter()
            .map(|f| f.trim().to_string())
            .collect();
        for filter in &exclusions {
            let valid_chars = filter
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._*-".contains(&b));
            if filter.is_empty() || filter.len() > 128 || !valid_chars {
                return Err(EcrError::InvalidSetting {
                    setting: "tag mutability exclusions",
                    reason: format!(
                        "{filter:?} is not a tag filter (1-128 of letters, digits, '.', '_', '-' \
                         and '*')"
                    ),
                });
            }
        }
        let mutability = match (self.tag_mutability, exclusions.is_empty()) {
            (None, true) => None,
            (None, false) => {
                return Err(EcrError::InvalidSetting {
                    setting: "tag mutability exclusions",
                    reason: "exclusions need a tag mutability (MUTABLE or IMMUTABLE) to be the \
                             exception to"
                        .into(),
                });
            }
            (Some(m), true) if m.has_exclusions() => {
                return Err(EcrError::InvalidSetting {
                    setting: "tag mutability",
                    reason: format!("{m} needs at least one exclusion filter"),
                });
            }
            (Some(m), true) => Some((m, exclusions)),
            (Some(m), false) => Some((m.with_exclusions(), exclusions)),
        };

        let mut seen = BTreeSet::new();
        for (key, _) in &self.tags {
            if key.is_empty() {
                return Err(EcrError::InvalidSetting {
                    setting: "tags",
                    reason: "a tag key is empty".into(),
                });
            }
            if !seen.insert(key.as_str()) {
                return Err(EcrError::InvalidSetting {
                    setting: "tags",
                    reason: format!("tag {key:?} is given twice"),
                });
            }
        }

        let encryption = match &self.encryption {
            Some(Encryption::Kms { key: Some(key) }) if key.trim().is_empty() => {
                Some(Encryption::Kms { key: None })
            }
            other => other.clone(),
        };

        Ok(Wanted {
            mutability,
            scan_on_push: self.scan_on_push,
            encryption,
            tags: self.tags.clone(),
            lifecycle_policy: parse_policy("lifecycle policy", self.lifecycle_policy.as_deref())?,
            repository_policy: parse_policy(
                "repository policy",
                self.repository_policy.as_deref(),
            )?,
            enforce: self.enforce,
        })
    }
}

fn parse_policy(
    setting: &'static str,
    text: Option<&str>,
) -> Result<Option<(String, serde_json::Value)>, EcrError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| EcrError::InvalidSetting {
            setting,
            reason: format!("not valid JSON: {e}"),
        })?;
    if !value.is_object() {
        return Err(EcrError::InvalidSetting {
            setting,
            reason: "must be a JSON object".into(),
        });
    }
    Ok(Some((text.to_string(), value)))
}

/// How mutability shows in drift reports: `IMMUTABLE_WITH_EXCLUSION (dev-*, latest)`.
pub(crate) fn describe_mutability(
    mutability: TagMutability,
    exclusions: &BTreeSet<String>,
) -> String {
    if exclusions.is_empty() {
        mutability.to_string()
    } else {
        let list: Vec<&str> = exclusions.iter().map(String::as_str).collect();
        format!("{mutability} ({})", list.join(", "))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tag_mutability_parses_case_insensitively() {
        for (input, want) in [
            ("MUTABLE", TagMutability::Mutable),
            ("immutable", TagMutability::Immutable),
            (
                " Mutable_With_Exclusion ",
                TagMutability::MutableWithExclusion,
            ),
            (
                "immutable-with-exclusion",
                TagMutability::ImmutableWithExclusion,
            ),
        ] {
            let parsed: TagMutability = input.parse().unwrap();
            assert_eq!(parsed, want, "{input}");
            assert_eq!(parsed.as_str().parse::<TagMutability>().unwrap(), want);
        }
        let err = "frozen".parse::<TagMutability>().unwrap_err().to_string();
        assert!(
            err.contains("\"frozen\"") && err.contains("IMMUTABLE"),
            "{err}"
        );
        assert!(TagMutability::ImmutableWithExclusion.is_immutable());
        assert!(!TagMutability::MutableWithExclusion.is_immutable());
    }

    #[test]
    fn wildcards_match_as_ecr_defines_them() {
        for (pattern, text, want) in [
            ("latest", "latest", true),
            ("latest", "latest2", false),
            ("latest", "alatest", false),
            ("dev-*", "dev-", true),
            ("dev-*", "dev-123", true),
            ("dev-*", "prod-1", false),
            ("*-rc", "1.0-rc", true),
            ("*-rc", "1.0-rc1", false),
            ("v*.*", "v1.2", true),
            ("v*.*", "v12", false),
            ("*", "", true),
            ("*", "anything", true),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("*x*", "abxcd", true),
        ] {
            assert_eq!(wildcard_match(pattern, text), want, "{pattern} vs {text}");
        }
    }

    fn state(mutability: TagMutability, exclusions: &[&str]) -> RepositoryState {
        RepositoryState {
            name: "app".into(),
            uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/app".into(),
            arn: None,
            created: false,
            tag_mutability: mutability,
            mutability_exclusions: exclusions.iter().map(|s| s.to_string()).collect(),
            scan_on_push: false,
            drift: Vec::new(),
        }
    }

    #[test]
    fn tag_immutability_considers_exclusions() {
        assert!(!state(TagMutability::Mutable, &[]).tag_is_immutable("v1"));
        assert!(state(TagMutability::Immutable, &[]).tag_is_immutable("latest"));
        let mostly_immutable = state(TagMutability::ImmutableWithExclusion, &["latest", "dev-*"]);
        assert!(mostly_immutable.tag_is_immutable("v1.2.3"));
        assert!(!mostly_immutable.tag_is_immutable("latest"));
        assert!(!mostly_immutable.tag_is_immutable("dev-42"));
        let mostly_mutable = state(TagMutability::MutableWithExclusion, &["v*"]);
        assert!(mostly_mutable.tag_is_immutable("v1"));
        assert!(!mostly_mutable.tag_is_immutable("latest"));
    }

    #[test]
    fn settings_are_checked_before_any_call() {
        let bad_json = RepositorySettings {
            lifecycle_policy: Some("{rules: []".into()),
            ..Default::default()
        };
        let err = bad_json.validate().unwrap_err().to_string();
        assert!(
            err.contains("lifecycle policy") && err.contains("not valid JSON"),
            "{err}"
        );

        let not_object = RepositorySettings {
            repository_policy: Some("[1]".into()),
            ..Default::default()
        };
        let err = not_object.validate().unwrap_err().to_string();
        assert!(err.contains("repository policy"), "{err}");

        let lonely_exclusions = RepositorySettings {
            mutability_exclusions: vec!["latest".into()],
            ..Default::default()
        };
        assert!(lonely_exclusions.validate().is_err());

        let empty_exclusion_mode = RepositorySettings {
            tag_mutability: Some(TagMutability::ImmutableWithExclusion),
            ..Default::default()
        };
        assert!(empty_exclusion_mode.validate().is_err());

        let bad_filter = RepositorySettings {
            tag_mutability: Some(TagMutability::Immutable),
            mutability_exclusions: vec!["no spaces".into()],
            ..Default::default()
        };
        assert!(bad_filter.validate().is_err());

        let duplicate_tag = RepositorySettings {
            tags: vec![("team".into(), "a".into()), ("team".into(), "b".into())],
            ..Default::default()
        };
        assert!(duplicate_tag.validate().is_err());
    }

    #[test]
    fn exclusions_upgrade_plain_mutability() {
        let settings = RepositorySettings {
            tag_mutability: Some(TagMutability::Immutable),
            mutability_exclusions: vec!["latest".into(), " dev-* ".into(), "latest".into()],
            ..Default::default()
        };
        let (mutability, exclusions) = settings.validate().unwrap().mutability.unwrap();
        assert_eq!(mutability, TagMutability::ImmutableWithExclusion);
        assert_eq!(
            describe_mutability(mutability, &exclusions),
            "IMMUTABLE_WITH_EXCLUSION (dev-*, latest)"
        );
    }
}
