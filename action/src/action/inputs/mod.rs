//! The Action's inputs (`INPUT_*` variables) → the CLI's argument structs.
//!
//! Everything is validated here, before any AWS or registry call, with errors that name the
//! input as the workflow spells it (`scan-on-push`), not the CLI flag behind it.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use ferry_registry::ecr::TagMutability;

use crate::cli::{
    AwsArgs, CopyArgs, ManifestCreateArgs, MirrorArgs, PushArgs, RegistryArgs, RepositoryArgs,
};

mod copy;
mod mirror;

/// The commands the Action runs, as the `command` input names them.
pub const COMMANDS: &[&str] = &["push", "manifest", "copy", "mirror"];

/// Every input `action.yml` declares; reading any other is a bug (a test keeps the two equal).
pub const INPUTS: &[&str] = &[
    "command",
    "image",
    "repository",
    "tags",
    "images",
    "format",
    "annotations",
    "platform-overrides",
    "attestations",
    "allow-duplicate-platforms",
    "registry",
    "region",
    "role-arn",
    "create-repository",
    "tag-mutability",
    "mutability-exclusions",
    "scan-on-push",
    "encryption",
    "kms-key",
    "repository-tags",
    "lifecycle-policy",
    "repository-policy",
    "enforce-settings",
    "compression",
    "file",
    "state",
    "dry-run",
    "source",
    "destination",
    "platforms",
    "referrers",
];

/// The CLI's `--concurrency` default.
const CONCURRENCY: usize = 8;

/// Reads a variable of the process environment; tests pass a map instead.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub enum ActionCommand {
    Push(Staged<PushArgs>),
    Manifest(Staged<ManifestCreateArgs>),
    Mirror(MirrorArgs),
    Copy(Staged<CopyArgs>),
}

pub type PushInputs = Staged<PushArgs>;

/// A command's arguments, with the inline policies written to files for it (the CLI takes
/// paths); the files are removed when this is dropped.
pub struct Staged<A> {
    pub args: A,
    pub _staged: Vec<StagedFile>,
}

pub fn read(env: Lookup<'_>) -> anyhow::Result<ActionCommand> {
    let inputs = Inputs { env };
    let command = inputs.get("command").unwrap_or_else(|| "push".into());
    match command.to_ascii_lowercase().as_str() {
        "push" => push(&inputs).map(ActionCommand::Push),
        "manifest" => manifest(&inputs).map(ActionCommand::Manifest),
        "mirror" => mirror::read(&inputs).map(ActionCommand::Mirror),
        "copy" => copy::read(&inputs).map(ActionCommand::Copy),
        _ => bail!(
            "input `command`: unknown command {command:?}; known: {}",
            COMMANDS.join(", ")
        ),
    }
}

struct Inputs<'a> {
    env: Lookup<'a>,
}

impl Inputs<'_> {
    /// `name`'s value, trimmed; empty means unset, as the runner passes every declared input,
    /// given or not. The runner keeps the dashes (`INPUT_CREATE-REPOSITORY`); the underscore
    /// spelling is accepted too because shells cannot export the dashed one, which matters
    /// when the image is run by hand.
    fn get(&self, name: &str) -> Option<String> {
        debug_assert!(INPUTS.contains(&name), "input {name} is not in action.yml");
        let upper = name.to_ascii_uppercase();
        [
            format!("INPUT_{upper}"),
            format!("INPUT_{}", upper.replace('-', "_")),
        ]
        .iter()
        .find_map(|key| (self.env)(key))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.get(name).map(|v| split_list(&v)).unwrap_or_default()
    }

    fn bool(&self, name: &str) -> anyhow::Result<Option<bool>> {
        self.get(name).map(|v| parse_bool(name, &v)).transpose()
    }

    fn env(&self, key: &str) -> Option<String> {
        (self.env)(key).filter(|v| !v.trim().is_empty())
    }
}

/// Items separated by newlines or commas, trimmed, empties dropped: YAML block scalars and
/// one-line lists both work, and so does a trailing newline.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

pub fn parse_bool(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => bail!("input `{name}`: expected true or false, got {value:?}"),
    }
}

fn push(inputs: &Inputs<'_>) -> anyhow::Result<PushInputs> {
    let image = inputs.get("image").ok_or_else(|| {
        anyhow!(
            "input `image` is required for command push: the local image to push, e.g. \
             `app:1.0` built earlier in the job, `oci:DIR` or `docker-archive:FILE`"
        )
    })?;
    // Empty: `ferry push`'s own default (the image's tag, else `latest`).
    let tags = inputs.list("tags");
    let compression = inputs
        .get("compression")
        .map(|c| c.to_ascii_lowercase())
        .unwrap_or_else(|| "gzip".into());
    if !matches!(compression.as_str(), "gzip" | "zstd") {
        bail!("input `compression`: expected gzip or zstd, got {compression:?}");
    }
    let mut staged = Vec::new();
    let repository_args = repository_args(inputs, &mut staged)?;
    let args = PushArgs {
        image,
        repository: inputs.get("repository"),
        tags,
        registry: inputs.get("registry"),
        compression,
        json: false,
        registry_args: registry_args(inputs),
        repository_args,
    };
    Ok(Staged {
        args,
        _staged: staged,
    })
}

/// `command: manifest`: a list `repository:<first tag>` of `images`.
fn manifest(inputs: &Inputs<'_>) -> anyhow::Result<Staged<ManifestCreateArgs>> {
    let repository = inputs.get("repository").ok_or_else(|| {
        anyhow!("input `repository` is required for command manifest: the repository of the list")
    })?;
    let sources = inputs.list("images");
    if sources.is_empty() {
        bail!(
            "input `images` is required for command manifest: the images of the list, tags or \
             digests in the repository (e.g. `1.0-amd64`), separated by newlines or commas"
        );
    }
    let mut tags = inputs.list("tags");
    if tags.is_empty() {
        tags.push("latest".into());
    }
    let format = inputs.get("format").unwrap_or_else(|| "auto".into());
    format
        .parse::<ferry_registry::multi_arch::ListFormat>()
        .map_err(|e| anyhow!("input `format`: {e}"))?;
    let attestations = inputs.get("attestations").unwrap_or_else(|| "keep".into());
    attestations
        .parse::<ferry_registry::multi_arch::Attestations>()
        .map_err(|e| anyhow!("input `attestations`: {e}"))?;
    let annotations = inputs.list("annotations");
    if let Some(bad) = annotations.iter().find(|kv| !is_key_value(kv)) {
        bail!("input `annotations`: {bad:?} is not KEY=VALUE");
    }
    let platform_overrides = inputs.list("platform-overrides");
    if let Some(bad) = platform_overrides.iter().find(|kv| !is_key_value(kv)) {
        bail!("input `platform-overrides`: {bad:?} is not SOURCE=OS/ARCH[/VARIANT]");
    }
    let mut staged = Vec::new();
    let repository_args = repository_args(inputs, &mut staged)?;
    let args = ManifestCreateArgs {
        target: format!("{repository}:{}", tags[0]),
        sources,
        tags,
        format,
        annotations,
        platform_overrides,
        attestations,
        allow_duplicate_platforms: inputs.bool("allow-duplicate-platforms")?.unwrap_or(false),
        dry_run: false,
        json: false,
        registry: inputs.get("registry"),
        registry_args: registry_args(inputs),
        repository_args,
    };
    Ok(Staged {
        args,
        _staged: staged,
    })
}

fn is_key_value(kv: &str) -> bool {
    matches!(kv.split_once('='), Some((k, _)) if !k.trim().is_empty())
}

fn registry_args(inputs: &Inputs<'_>) -> RegistryArgs {
    RegistryArgs {
        insecure: Vec::new(),
        ca_file: None,
        concurrency: CONCURRENCY,
        ecr_registry_url: inputs.env("FERRY_ECR_REGISTRY_URL"),
        aws: AwsArgs {
            region: inputs.get("region").or_else(|| inputs.env("AWS_REGION")),
            role_arn: inputs.get("role-arn"),
        },
    }
}

fn repository_args(
    inputs: &Inputs<'_>,
    staged: &mut Vec<StagedFile>,
) -> anyhow::Result<RepositoryArgs> {
    let tag_mutability = inputs.get("tag-mutability");
    if let Some(value) = &tag_mutability {
        value
            .parse::<TagMutability>()
            .map_err(|e| anyhow!("input `tag-mutability`: {e}"))?;
    }
    let encryption = inputs.get("encryption").map(|e| e.to_ascii_uppercase());
    let kms_key = inputs.get("kms-key");
    match (encryption.as_deref(), kms_key.is_some()) {
        (None | Some("AES256" | "KMS"), false) | (Some("KMS"), true) => {}
        (None | Some("AES256"), true) => bail!("input `kms-key` needs `encryption: KMS`"),
        (Some(other), _) => bail!("input `encryption`: expected AES256 or KMS, got {other:?}"),
    }
    let repository_tags = inputs.list("repository-tags");
    if let Some(bad) = repository_tags.iter().find(|kv| !is_key_value(kv)) {
        bail!("input `repository-tags`: {bad:?} is not KEY=VALUE");
    }
    let workspace = inputs.env("GITHUB_WORKSPACE").map(PathBuf::from);
    let mut policy = |name: &str| -> anyhow::Result<Option<PathBuf>> {
        inputs
            .get(name)
            .map(|value| policy_file(name, &value, workspace.as_deref(), staged))
            .transpose()
    };
    let lifecycle_policy = policy("lifecycle-policy")?;
    let repository_policy = policy("repository-policy")?;
    Ok(RepositoryArgs {
        no_create: !inputs.bool("create-repository")?.unwrap_or(true),
        tag_mutability,
        mutability_exclusions: inputs.list("mutability-exclusions"),
        scan_on_push: inputs.bool("scan-on-push")?,
        encryption,
        kms_key,
        repository_tags,
        lifecycle_policy,
        repository_policy,
        enforce_settings: inputs.bool("enforce-settings")?.unwrap_or(false),
    })
}

/// A policy input is inline JSON (starts with `{`) or a path relative to the workspace.
fn policy_file(
    name: &str,
    value: &str,
    workspace: Option<&Path>,
    staged: &mut Vec<StagedFile>,
) -> anyhow::Result<PathBuf> {
    if value.starts_with('{') {
        // Checked here so a typo fails before anything is pushed; serde's message gives the
        // line and column, never the text.
        serde_json::from_str::<serde_json::Value>(value)
            .map_err(|e| anyhow!("input `{name}`: inline JSON is invalid: {e}"))?;
        let file = StagedFile::write(name, value)?;
        let path = file.path.clone();
        staged.push(file);
        return Ok(path);
    }
    let path = match workspace {
        Some(dir) => dir.join(value),
        None => PathBuf::from(value),
    };
    if !path.is_file() {
        bail!(
            "input `{name}`: no file {} (a path relative to the workspace, or inline JSON \
             starting with `{{`)",
            path.display()
        );
    }
    Ok(path)
}

/// A temporary file holding an inline input, deleted on drop.
pub struct StagedFile {
    pub path: PathBuf,
}

impl StagedFile {
    fn write(name: &str, contents: &str) -> anyhow::Result<StagedFile> {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!(
            "ferry-{name}-{}.json",
            super::workflow::random_hex()
        ));
        // create_new: never follow a planted symlink or reuse someone else's file.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("input `{name}`: cannot stage it in {}", path.display()))?;
        let staged = StagedFile { path };
        file.write_all(contents.as_bytes())
            .with_context(|| format!("input `{name}`: cannot write {}", staged.path.display()))?;
        Ok(staged)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests;
