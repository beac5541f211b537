//! The spec of an `EcrImageMirror` (`ferry.dev/v1alpha1`): what to copy from a source
//! repository into ECR, and how often. Field names are the YAML ones (camelCase); unknown fields
//! are refused so that a misspelt option is an error rather than a silent default. Checks that
//! need no network are in `validate.rs`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an `EcrImageMirror` asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EcrImageMirrorSpec {
    /// The repository to copy from and which of its tags.
    pub source: SourceSpec,
    /// The ECR repository to copy into.
    #[serde(default)]
    pub destination: DestinationSpec,
    /// Image indexes assembled at the destination from tags this mirror copies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifest_lists: Vec<ManifestListSpec>,
    /// How often to sync: a duration such as `90s`, `15m` or `1h30m` (default `1h`, at least
    /// `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Stop syncing until this is false again.
    #[serde(default)]
    pub suspend: bool,
}

/// The source repository and the tags to copy from it.
// The CEL rules repeat checks of `validate.rs` so that the API server refuses such a spec
// when it is written (`kubectl apply` fails) instead of the operator reporting it later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(has(self.tags) && size(self.tags) > 0) || has(self.tagPolicy)",
    "message": "give the tags to copy, a tagPolicy to choose them, or both",
}]))]
pub struct SourceSpec {
    /// A repository on any registry, without tag or digest (`docker.io/library/nginx`).
    pub image: String,
    /// Tags copied as they are named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Tags chosen from the source's tag list at every sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_policy: Option<TagPolicySpec>,
    /// Platforms (`linux/amd64`, `linux/arm/v7`) copied from an image index; default all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// A `kubernetes.io/dockerconfigjson` Secret with the credentials for the source registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    /// Also copy the signatures, attestations and SBOMs that refer to each image.
    #[serde(default = "yes")]
    pub referrers: bool,
}

/// The tags to take from the source's tag list, with Flux `ImagePolicy` semantics
/// (docs/design/tag-policy.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "(has(self.semver) ? 1 : 0) + (has(self.alphabetical) ? 1 : 0) + (has(self.numerical) ? 1 : 0) == 1",
        "message": "give exactly one order: semver, alphabetical or numerical",
    },
    {
        "rule": "!has(self.keep) || self.keep >= 1",
        "message": "keep must be at least 1",
    },
]))]
pub struct TagPolicySpec {
    /// A regular expression a tag must match to be considered; default every tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// What of the tag the order compares, from the pattern's groups (`$v`, `${v}`, `$1`);
    /// default the whole tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<String>,
    /// Order by semantic version, within a range. Exactly one order is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<SemverPolicy>,
    /// Order by the text, byte by byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alphabetical: Option<OrderPolicy>,
    /// Order by the text read as a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerical: Option<OrderPolicy>,
    /// How many of the newest tags to copy (default 1).
    #[serde(default = "one")]
    pub keep: u32,
    /// Regular expressions; a tag matching any of them is never chosen. Signature,
    /// attestation and SBOM tags (`sha256-<hex>.sig`, …) and referrers tags (`sha256-<hex>`)
    /// are always left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// The semver order: versions in `range`, the highest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SemverPolicy {
    /// A range as Flux (Masterminds/semver) reads it: `>=1.26.0 <2.0.0`, `^1.x`, `1.2 - 1.4`,
    /// `~1.27 || >=2`.
    pub range: String,
}

/// The alphabetical or numerical order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderPolicy {
    /// `asc` (default): the highest value is the newest; `desc`: the lowest is.
    #[serde(default)]
    pub order: SortOrder,
}

/// Which end of the sorted values is the newest, as Flux defines it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// The last value in ascending order (the highest) is the newest.
    #[default]
    Asc,
    /// The first value in ascending order (the lowest) is the newest.
    Desc,
}

/// A Secret in the mirror's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    /// The Secret's name.
    pub name: String,
}

/// Where the images go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationSpec {
    /// An AWS account id or an ECR host; default the account of the caller's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The AWS region; default the caller's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The repository name; default the source's repository path (`library/nginx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// A role to assume for the ECR calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Create the repository when it does not exist (default true).
    #[serde(default = "yes")]
    pub create_repository: bool,
    /// Settings the repository should have, as `ferry copy`'s repository flags set them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_settings: Option<RepositorySettingsSpec>,
}

impl Default for DestinationSpec {
    fn default() -> Self {
        DestinationSpec {
            registry: None,
            region: None,
            repository: None,
            role_arn: None,
            create_repository: true,
            repository_settings: None,
        }
    }
}

/// Repository settings; an absent field is never compared nor changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositorySettingsSpec {
    /// `MUTABLE`, `IMMUTABLE`, `MUTABLE_WITH_EXCLUSION` or `IMMUTABLE_WITH_EXCLUSION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_mutability: Option<String>,
    /// Tag filters (`*` is a wildcard) that are the exception to `tagMutability`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mutability_exclusions: Vec<String>,
    /// Scan images when they are pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_on_push: Option<bool>,
    /// Encryption at creation: `AES256` or `KMS` (ECR cannot change it later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionType>,
    /// The KMS key for `encryption: KMS`; default the AWS managed key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
    /// Resource tags; other tags on the repository are left alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// A lifecycle policy, as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_policy: Option<String>,
    /// A repository policy, as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_policy: Option<String>,
    /// Correct differences on an existing repository instead of only reporting them.
    #[serde(default)]
    pub enforce: bool,
}

/// How a new repository is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum EncryptionType {
    /// Amazon S3 managed keys.
    #[serde(rename = "AES256")]
    Aes256,
    /// AWS KMS, with `kmsKey` or the AWS managed key.
    #[serde(rename = "KMS")]
    Kms,
}

/// An image index pushed to the destination, made of tags this mirror copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestListSpec {
    /// The index's tag.
    pub tag: String,
    /// The tags whose images (or their platforms) the index lists.
    pub sources: Vec<String>,
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}
