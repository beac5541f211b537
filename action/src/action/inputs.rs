//! The Action's inputs (`INPUT_*` variables) → the CLI's argument structs.
//!
//! Everything is validated here, before any AWS or registry call, with errors that name the
//! input as the workflow spells it (`scan-on-push`), not the CLI flag behind it.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use ferry_registry::ecr::TagMutability;

use crate::cli::{AwsArgs, PushArgs, RegistryArgs, RepositoryArgs};

/// The commands the Action runs, as the `command` input names them.
pub const COMMANDS: &[&str] = &["push"];

/// The CLI's `--concurrency` default.
const CONCURRENCY: usize = 8;

/// Reads a variable of the process environment; tests pass a map instead.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub enum ActionCommand {
    Push(PushInputs),
}

pub struct PushInputs {
    pub args: PushArgs,
    /// Inline policies written to files (the CLI takes paths); removed when this is dropped.
    pub _staged: Vec<StagedFile>,
}

pub fn read(env: Lookup<'_>) -> anyhow::Result<ActionCommand> {
    let inputs = Inputs { env };
    let command = inputs.get("command").unwrap_or_else(|| "push".into());
    match command.to_ascii_lowercase().as_str() {
        "push" => push(&inputs).map(ActionCommand::Push),
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
    let mut tags = inputs.list("tags");
    if tags.is_empty() {
        tags.push("latest".into());
    }
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
        registry_args: RegistryArgs {
            insecure: Vec::new(),
            ca_file: None,
            concurrency: CONCURRENCY,
            ecr_registry_url: inputs.env("FERRY_ECR_REGISTRY_URL"),
            aws: AwsArgs {
                region: inputs.get("region").or_else(|| inputs.env("AWS_REGION")),
                role_arn: inputs.get("role-arn"),
            },
        },
        repository_args,
    };
    Ok(PushInputs {
        args,
        _staged: staged,
    })
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
    if let Some(bad) = repository_tags
        .iter()
        .find(|kv| !matches!(kv.split_once('='), Some((k, _)) if !k.trim().is_empty()))
    {
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
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read_with(vars: &[(&str, &str)]) -> anyhow::Result<PushInputs> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |key: &str| map.get(key).cloned();
        match read(&lookup)? {
            ActionCommand::Push(push) => Ok(push),
        }
    }

    fn error(vars: &[(&str, &str)]) -> String {
        match read_with(vars) {
            Ok(_) => panic!("expected an error for {vars:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults() {
        let push = read_with(&[("INPUT_IMAGE", "app:1"), ("INPUT_TAGS", "")]).unwrap();
        let a = &push.args;
        assert_eq!(a.image, "app:1");
        assert_eq!(a.tags, ["latest"]);
        assert_eq!(a.repository, None);
        assert_eq!(a.registry, None);
        assert_eq!(a.compression, "gzip");
        assert!(!a.json);
        assert_eq!(a.registry_args.concurrency, 8);
        assert_eq!(a.registry_args.aws.region, None);
        assert_eq!(a.registry_args.ecr_registry_url, None);
        let r = &a.repository_args;
        assert!(!r.no_create);
        assert!(!r.enforce_settings);
        assert_eq!(r.scan_on_push, None);
        assert!(r.mutability_exclusions.is_empty() && r.repository_tags.is_empty());
        assert!(push._staged.is_empty());
    }

    #[test]
    fn every_input_reaches_its_argument() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lifecycle.json"), "{}").unwrap();
        let push = read_with(&[
            ("INPUT_COMMAND", "Push"),
            ("INPUT_IMAGE", " team/app:1.0 "),
            ("INPUT_REPOSITORY", "team/app"),
            ("INPUT_TAGS", "1.0, 1\nlatest\n\n"),
            ("INPUT_REGISTRY", "123456789012"),
            ("INPUT_REGION", "eu-west-1"),
            ("AWS_REGION", "us-east-1"),
            ("INPUT_ROLE-ARN", "arn:aws:iam::123456789012:role/push"),
            ("INPUT_CREATE-REPOSITORY", "FALSE"),
            ("INPUT_TAG-MUTABILITY", "immutable_with_exclusion"),
            ("INPUT_MUTABILITY-EXCLUSIONS", "dev-*\nlatest"),
            ("INPUT_SCAN-ON-PUSH", "True"),
            ("INPUT_ENCRYPTION", "kms"),
            ("INPUT_KMS-KEY", "alias/ecr"),
            ("INPUT_REPOSITORY-TAGS", "team=core\ncost-center=42"),
            ("INPUT_LIFECYCLE-POLICY", "lifecycle.json"),
            ("INPUT_REPOSITORY-POLICY", r#"{"Version": "2012-10-17"}"#),
            ("INPUT_ENFORCE-SETTINGS", "true"),
            ("INPUT_COMPRESSION", "ZSTD"),
            ("GITHUB_WORKSPACE", dir.path().to_str().unwrap()),
            ("FERRY_ECR_REGISTRY_URL", "http://127.0.0.1:5000"),
        ])
        .unwrap();
        let a = &push.args;
        assert_eq!(a.image, "team/app:1.0");
        assert_eq!(a.repository.as_deref(), Some("team/app"));
        assert_eq!(a.tags, ["1.0", "1", "latest"]);
        assert_eq!(a.registry.as_deref(), Some("123456789012"));
        assert_eq!(a.compression, "zstd");
        assert_eq!(a.registry_args.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            a.registry_args.aws.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/push")
        );
        assert_eq!(
            a.registry_args.ecr_registry_url.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        let r = &a.repository_args;
        assert!(r.no_create);
        assert_eq!(
            r.tag_mutability.as_deref(),
            Some("immutable_with_exclusion")
        );
        assert_eq!(r.mutability_exclusions, ["dev-*", "latest"]);
        assert_eq!(r.scan_on_push, Some(true));
        assert_eq!(r.encryption.as_deref(), Some("KMS"));
        assert_eq!(r.kms_key.as_deref(), Some("alias/ecr"));
        assert_eq!(r.repository_tags, ["team=core", "cost-center=42"]);
        assert_eq!(
            r.lifecycle_policy.as_deref(),
            Some(dir.path().join("lifecycle.json").as_path())
        );
        assert!(r.enforce_settings);

        // The inline policy is staged in a file that lives as long as the inputs do.
        let staged = r.repository_policy.clone().unwrap();
        assert_eq!(push._staged.len(), 1);
        assert_eq!(
            std::fs::read_to_string(&staged).unwrap(),
            r#"{"Version": "2012-10-17"}"#
        );
        drop(push);
        assert!(!staged.exists());
    }

    #[test]
    fn region_falls_back_to_aws_region_and_underscored_names_work() {
        let push = read_with(&[
            ("INPUT_IMAGE", "app"),
            ("AWS_REGION", "ap-south-1"),
            ("INPUT_CREATE_REPOSITORY", "false"),
        ])
        .unwrap();
        assert_eq!(
            push.args.registry_args.aws.region.as_deref(),
            Some("ap-south-1")
        );
        assert!(push.args.repository_args.no_create);
    }

    #[test]
    fn lists_split_on_newlines_and_commas() {
        assert_eq!(split_list(" a ,b\n\n c,\r\nd ,"), ["a", "b", "c", "d"]);
        assert!(split_list(" \n , ").is_empty());
    }

    #[test]
    fn booleans_are_true_or_false_only() {
        assert!(parse_bool("x", "TRUE").unwrap());
        assert!(!parse_bool("x", " false ").unwrap());
        let e = error(&[("INPUT_IMAGE", "app"), ("INPUT_SCAN-ON-PUSH", "yes")]);
        assert_eq!(
            e,
            r#"input `scan-on-push`: expected true or false, got "yes""#
        );
        let e = error(&[("INPUT_IMAGE", "app"), ("INPUT_CREATE-REPOSITORY", "1")]);
        assert!(e.contains("`create-repository`"), "{e}");
    }

    #[test]
    fn errors_name_the_input() {
        let e = error(&[("INPUT_COMMAND", "deploy"), ("INPUT_IMAGE", "app")]);
        assert_eq!(
            e,
            r#"input `command`: unknown command "deploy"; known: push"#
        );
        assert!(error(&[]).starts_with("input `image` is required"));
        assert!(error(&[("INPUT_IMAGE", "  ")]).starts_with("input `image` is required"));
        let cases: &[(&str, &str, &str)] = &[
            (
                "INPUT_TAG-MUTABILITY",
                "sometimes",
                "input `tag-mutability`: invalid",
            ),
            (
                "INPUT_ENCRYPTION",
                "rot13",
                "input `encryption`: expected AES256 or KMS",
            ),
            (
                "INPUT_KMS-KEY",
                "alias/x",
                "input `kms-key` needs `encryption: KMS`",
            ),
            (
                "INPUT_REPOSITORY-TAGS",
                "a=1,=2",
                "input `repository-tags`: \"=2\"",
            ),
            (
                "INPUT_COMPRESSION",
                "brotli",
                "input `compression`: expected gzip or zstd",
            ),
            (
                "INPUT_LIFECYCLE-POLICY",
                "{nope",
                "input `lifecycle-policy`: inline JSON",
            ),
            (
                "INPUT_REPOSITORY-POLICY",
                "missing.json",
                "input `repository-policy`: no file",
            ),
        ];
        for (key, value, expected) in cases {
            let e = error(&[("INPUT_IMAGE", "app"), (key, value)]);
            assert!(e.starts_with(expected), "{key}={value}: {e}");
        }
        let e = error(&[
            ("INPUT_IMAGE", "app"),
            ("INPUT_ENCRYPTION", "AES256"),
            ("INPUT_KMS-KEY", "k"),
        ]);
        assert!(e.contains("`kms-key`"), "{e}");
    }
}
