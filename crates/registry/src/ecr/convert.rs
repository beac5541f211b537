//! Between this module's types and the SDK's.

use std::collections::BTreeSet;

use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageTagMutabilityExclusionFilter,
    ImageTagMutabilityExclusionFilterType, Repository, Tag,
};

use super::{EcrError, EcrHost, Encryption, RepositoryState, TagMutability};

pub(crate) fn state_of(host: &EcrHost, name: &str, repo: &Repository) -> RepositoryState {
    let mut exclusions: Vec<String> = repo
        .image_tag_mutability_exclusion_filters()
        .iter()
        .map(|f| f.filter().to_string())
        .collect();
    exclusions.sort();
    exclusions.dedup();
    RepositoryState {
        name: repo.repository_name().unwrap_or(name).to_string(),
        uri: repo
            .repository_uri()
            .map_or_else(|| format!("{host}/{name}"), str::to_string),
        arn: repo.repository_arn().map(str::to_string),
        created: false,
        tag_mutability: TagMutability::from_sdk(repo.image_tag_mutability()),
        mutability_exclusions: exclusions,
        scan_on_push: repo
            .image_scanning_configuration()
            .is_some_and(|c| c.scan_on_push()),
        drift: Vec::new(),
    }
}

pub(crate) fn exclusion_filters(
    exclusions: &BTreeSet<String>,
) -> Result<Vec<ImageTagMutabilityExclusionFilter>, EcrError> {
    exclusions
        .iter()
        .map(|filter| {
            ImageTagMutabilityExclusionFilter::builder()
                .filter_type(ImageTagMutabilityExclusionFilterType::Wildcard)
                .filter(filter)
                .build()
                .map_err(|e| EcrError::InvalidSetting {
                    setting: "tag mutability exclusions",
                    reason: e.to_string(),
                })
        })
        .collect()
}

pub(crate) fn sdk_tags(tags: &[(String, String)]) -> Result<Vec<Tag>, EcrError> {
    tags.iter()
        .map(|(key, value)| {
            Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| EcrError::InvalidSetting {
                    setting: "tags",
                    reason: e.to_string(),
                })
        })
        .collect()
}

pub(crate) fn encryption_configuration(
    encryption: &Encryption,
) -> Result<EncryptionConfiguration, EcrError> {
    let builder = match encryption {
        Encryption::Aes256 => {
            EncryptionConfiguration::builder().encryption_type(EncryptionType::Aes256)
        }
        Encryption::Kms { key } => EncryptionConfiguration::builder()
            .encryption_type(EncryptionType::Kms)
            .set_kms_key(key.clone()),
    };
    builder.build().map_err(|e| EcrError::InvalidSetting {
        setting: "encryption",
        reason: e.to_string(),
    })
}

/// A KMS key may be given as an id where ECR reports the key's ARN (`…:key/<id>`); an alias
/// cannot be resolved without KMS, so it reports as drift (harmless: never corrected).
pub(crate) fn encryption_matches(
    want: &Encryption,
    actual: Option<&EncryptionConfiguration>,
) -> bool {
    let actual_type = actual.map_or(&EncryptionType::Aes256, |c| c.encryption_type());
    match want {
        Encryption::Aes256 => *actual_type == EncryptionType::Aes256,
        Encryption::Kms { key } => {
            *actual_type == EncryptionType::Kms
                && key.as_deref().is_none_or(|key| {
                    actual
                        .and_then(|c| c.kms_key())
                        .is_some_and(|arn| arn == key || arn.ends_with(&format!("/{key}")))
                })
        }
    }
}

pub(crate) fn describe_encryption(config: &EncryptionConfiguration) -> String {
    match config.kms_key() {
        Some(key) => format!("{} ({key})", config.encryption_type().as_str()),
        None => config.encryption_type().as_str().to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kms_keys_match_by_id_or_arn() {
        let arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd";
        let kms = EncryptionConfiguration::builder()
            .encryption_type(EncryptionType::Kms)
            .kms_key(arn)
            .build()
            .unwrap();
        let aes = EncryptionConfiguration::builder()
            .encryption_type(EncryptionType::Aes256)
            .build()
            .unwrap();
        let by_id = Encryption::Kms {
            key: Some("1234abcd".into()),
        };
        assert!(encryption_matches(&by_id, Some(&kms)));
        assert!(encryption_matches(
            &Encryption::Kms {
                key: Some(arn.into())
            },
            Some(&kms)
        ));
        assert!(encryption_matches(
            &Encryption::Kms { key: None },
            Some(&kms)
        ));
        assert!(!encryption_matches(
            &Encryption::Kms {
                key: Some("other".into())
            },
            Some(&kms)
        ));
        assert!(!encryption_matches(&by_id, Some(&aes)));
        assert!(encryption_matches(&Encryption::Aes256, Some(&aes)));
        assert!(encryption_matches(&Encryption::Aes256, None));
        assert_eq!(describe_encryption(&kms), format!("KMS ({arn})"));
    }
}
