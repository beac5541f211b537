//! Repository settings flags → the registry crate's `RepositorySettings`, with errors that
//! name the flag.

use anyhow::{Context, bail};
use ferry_registry::ecr::{Encryption, EnsureMode, RepositorySettings, TagMutability};

use crate::cli::RepositoryArgs;

pub fn repository_settings(args: &RepositoryArgs) -> anyhow::Result<RepositorySettings> {
    let tag_mutability = args
        .tag_mutability
        .as_deref()
        .map(str::parse::<TagMutability>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--tag-mutability: {e}"))?;
    let encryption = match (args.encryption.as_deref(), &args.kms_key) {
        (None, None) => None,
        (None, Some(_)) => bail!("--kms-key needs --encryption KMS"),
        (Some(kind), key) => match kind.to_ascii_uppercase().as_str() {
            "AES256" if key.is_none() => Some(Encryption::Aes256),
            "AES256" => bail!("--kms-key goes with --encryption KMS, not AES256"),
            "KMS" => Some(Encryption::Kms { key: key.clone() }),
            other => bail!("--encryption: {other:?} is not AES256 or KMS"),
        },
    };
    let tags = args
        .repository_tags
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--repository-tag {kv:?}: expected KEY=VALUE"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let read = |flag: &str, path: &Option<std::path::PathBuf>| -> anyhow::Result<Option<String>> {
        path.as_ref()
            .map(|p| {
                std::fs::read_to_string(p)
                    .with_context(|| format!("{flag}: cannot read {}", p.display()))
            })
            .transpose()
    };
    Ok(RepositorySettings {
        tag_mutability,
        mutability_exclusions: args.mutability_exclusions.clone(),
        scan_on_push: args.scan_on_push,
        encryption,
        tags,
        lifecycle_policy: read("--lifecycle-policy", &args.lifecycle_policy)?,
        repository_policy: read("--repository-policy", &args.repository_policy)?,
        enforce: args.enforce_settings,
    })
}

/// `--no-create` as the registry crate's mode.
pub fn ensure_mode(args: &RepositoryArgs) -> EnsureMode {
    if args.no_create {
        EnsureMode::MustExist
    } else {
        EnsureMode::CreateIfMissing
    }
}
