#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use super::*;

/// Reads the inputs from `vars` instead of the process environment.
fn read_vars(vars: &[(&str, &str)]) -> anyhow::Result<ActionCommand> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |key: &str| map.get(key).cloned();
    read(&lookup)
}

fn read_with(vars: &[(&str, &str)]) -> anyhow::Result<PushInputs> {
    match read_vars(vars)? {
        ActionCommand::Push(push) => Ok(push),
        _ => panic!("expected the push command"),
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
    assert!(a.tags.is_empty(), "{:?}", a.tags);
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
        r#"input `command`: unknown command "deploy"; known: push, manifest, copy, mirror"#
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

fn manifest_with(vars: &[(&str, &str)]) -> anyhow::Result<ManifestCreateArgs> {
    match read_vars(vars)? {
        ActionCommand::Manifest(m) => Ok(m.args),
        _ => panic!("expected the manifest command"),
    }
}

#[test]
fn manifest_inputs() {
    let m = manifest_with(&[
        ("INPUT_COMMAND", "manifest"),
        ("INPUT_REPOSITORY", "team/app"),
        ("INPUT_IMAGES", "1.0-amd64\n1.0-arm64, sha256:ab"),
        ("INPUT_TAGS", "1.0,latest"),
        ("INPUT_FORMAT", "OCI"),
        (
            "INPUT_ANNOTATIONS",
            "org.opencontainers.image.source=https://x",
        ),
        ("INPUT_PLATFORM-OVERRIDES", "1.0-arm64=linux/arm64/v8"),
        ("INPUT_ATTESTATIONS", "drop"),
        ("INPUT_ALLOW-DUPLICATE-PLATFORMS", "true"),
        ("INPUT_REGISTRY", "123456789012"),
    ])
    .unwrap();
    assert_eq!(m.target, "team/app:1.0");
    assert_eq!(m.sources, ["1.0-amd64", "1.0-arm64", "sha256:ab"]);
    assert_eq!(m.tags, ["1.0", "latest"]);
    assert_eq!(m.format, "OCI");
    assert_eq!(m.annotations, ["org.opencontainers.image.source=https://x"]);
    assert_eq!(m.platform_overrides, ["1.0-arm64=linux/arm64/v8"]);
    assert_eq!(m.attestations, "drop");
    assert!(m.allow_duplicate_platforms);
    assert_eq!(m.registry.as_deref(), Some("123456789012"));

    let defaults = manifest_with(&[
        ("INPUT_COMMAND", "manifest"),
        ("INPUT_REPOSITORY", "app"),
        ("INPUT_IMAGES", "a,b"),
    ])
    .unwrap();
    assert_eq!(defaults.target, "app:latest");
    assert_eq!(defaults.format, "auto");
    assert_eq!(defaults.attestations, "keep");

    let err = |vars: &[(&str, &str)]| match manifest_with(vars) {
        Ok(_) => panic!("expected an error for {vars:?}"),
        Err(e) => e.to_string(),
    };
    let base = [("INPUT_COMMAND", "manifest"), ("INPUT_REPOSITORY", "app")];
    assert!(err(&base).starts_with("input `images` is required"));
    let with = |k, v| {
        let mut vars = base.to_vec();
        vars.push(("INPUT_IMAGES", "a"));
        vars.push((k, v));
        err(&vars)
    };
    assert!(with("INPUT_FORMAT", "zip").starts_with("input `format`"));
    assert!(with("INPUT_ATTESTATIONS", "maybe").starts_with("input `attestations`"));
    assert!(with("INPUT_ANNOTATIONS", "novalue").starts_with("input `annotations`"));
    assert!(
        err(&[("INPUT_COMMAND", "manifest"), ("INPUT_IMAGES", "a")])
            .starts_with("input `repository` is required")
    );
}

/// The inputs of `action.yml`, read with a line scanner (its layout is ours: two-space keys).
fn declared_inputs() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../action.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut inside = false;
    let mut names = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            inside = line == "inputs:";
            continue;
        }
        if inside
            && let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && !name.starts_with(' ')
        {
            names.push(name.to_string());
        }
    }
    names
}

#[test]
fn action_yml_declares_exactly_the_inputs_read() {
    let declared = declared_inputs();
    assert!(declared.len() > 10, "{declared:?}");
    assert_eq!(declared, INPUTS, "action.yml and INPUTS differ");
}

fn mirror_with(vars: &[(&str, &str)]) -> anyhow::Result<MirrorArgs> {
    let mut all = vec![("INPUT_COMMAND", "mirror")];
    all.extend_from_slice(vars);
    match read_vars(&all)? {
        ActionCommand::Mirror(m) => Ok(m),
        _ => panic!("expected the mirror command"),
    }
}

#[test]
fn mirror_inputs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mirrors")).unwrap();
    let workspace = dir.path().to_str().unwrap();
    let m = mirror_with(&[
        ("INPUT_FILE", " mirrors "),
        ("INPUT_STATE", ".ferry/state.json"),
        ("INPUT_DRY-RUN", "TRUE"),
        ("INPUT_ROLE-ARN", "arn:aws:iam::123456789012:role/mirror"),
        ("GITHUB_WORKSPACE", workspace),
    ])
    .unwrap();
    assert_eq!(m.files, [dir.path().join("mirrors")]);
    assert_eq!(m.state, Some(dir.path().join(".ferry/state.json")));
    assert!(m.dry_run && !m.json && m.names.is_empty() && m.secrets_dir.is_none());
    assert_eq!(
        m.registry_args.aws.role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/mirror")
    );
    let m = mirror_with(&[("INPUT_FILE", "mirrors"), ("GITHUB_WORKSPACE", workspace)]).unwrap();
    assert!(!m.dry_run && m.state.is_none());

    let error = |vars: &[(&str, &str)]| mirror_with(vars).err().unwrap().to_string();
    let missing = error(&[("INPUT_FILE", ""), ("GITHUB_WORKSPACE", workspace)]);
    assert!(
        missing.starts_with("input `file` is required for command mirror"),
        "{missing}"
    );
    let absent = error(&[("INPUT_FILE", "nope.yaml"), ("GITHUB_WORKSPACE", workspace)]);
    assert!(
        absent.starts_with("input `file`: no file or folder ") && absent.contains("nope.yaml"),
        "{absent}"
    );
    assert_eq!(
        error(&[
            ("INPUT_FILE", "mirrors"),
            ("INPUT_DRY-RUN", "yes"),
            ("GITHUB_WORKSPACE", workspace)
        ]),
        "input `dry-run`: expected true or false, got \"yes\""
    );
}

fn copy_with(vars: &[(&str, &str)]) -> anyhow::Result<CopyArgs> {
    let mut all = vec![("INPUT_COMMAND", "copy")];
    all.extend_from_slice(vars);
    match read_vars(&all)? {
        ActionCommand::Copy(c) => Ok(c.args),
        _ => panic!("expected the copy command"),
    }
}

fn copy_error(vars: &[(&str, &str)]) -> String {
    match copy_with(vars) {
        Ok(_) => panic!("expected an error for {vars:?}"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn copy_inputs() {
    let c = copy_with(&[
        ("INPUT_SOURCE", "docker.io/library/alpine:3.20"),
        ("INPUT_DESTINATION", "mirror/alpine"),
        ("INPUT_REGISTRY", "123456789012"),
        ("INPUT_PLATFORMS", "linux/amd64,\nlinux/arm64/v8\n"),
        ("INPUT_TAG-MUTABILITY", "IMMUTABLE"),
    ])
    .unwrap();
    assert_eq!(c.source, "docker.io/library/alpine:3.20");
    // No tag anywhere: the source's own.
    assert_eq!(c.destination, "mirror/alpine:3.20");
    assert!(c.tags.is_empty(), "{:?}", c.tags);
    assert_eq!(c.to_registry.as_deref(), Some("123456789012"));
    assert_eq!(c.platforms, ["linux/amd64", "linux/arm64/v8"]);
    assert!(c.referrers, "referrers default to true");
    assert_eq!(c.repository.tag_mutability.as_deref(), Some("IMMUTABLE"));
    assert!(!c.dry_run && !c.json);

    // The first of `tags` names the destination, the rest are extra tags.
    let c = copy_with(&[
        ("INPUT_SOURCE", "ghcr.io/org/app@sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"),
        ("INPUT_DESTINATION", "app"),
        ("INPUT_TAGS", "1.0, stable"),
        ("INPUT_REFERRERS", "false"),
    ])
    .unwrap();
    assert_eq!(c.destination, "app:1.0");
    assert_eq!(c.tags, ["stable"]);
    assert!(!c.referrers);

    // A tag in `destination` wins; `tags` are all extra. A source by digest alone: `latest`.
    let digest =
        "ghcr.io/org/app@sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
    let c = copy_with(&[
        ("INPUT_SOURCE", digest),
        ("INPUT_DESTINATION", "app:2.0"),
        ("INPUT_TAGS", "stable"),
    ])
    .unwrap();
    assert_eq!(
        (c.destination.as_str(), c.tags.as_slice()),
        ("app:2.0", &["stable".to_string()][..])
    );
    let c = copy_with(&[
        ("INPUT_SOURCE", digest),
        ("INPUT_DESTINATION", "localhost:5000/app"),
    ])
    .unwrap();
    assert_eq!(c.destination, "localhost:5000/app:latest");
}

#[test]
fn copy_errors_name_the_input() {
    let err = copy_error(&[("INPUT_DESTINATION", "app")]);
    assert!(
        err.contains("input `source` is required for command copy"),
        "{err}"
    );
    let err = copy_error(&[("INPUT_SOURCE", "alpine:3.20")]);
    assert!(
        err.contains("input `destination` is required for command copy"),
        "{err}"
    );
    let err = copy_error(&[
        ("INPUT_SOURCE", "Not A Reference!"),
        ("INPUT_DESTINATION", "app"),
    ]);
    assert!(err.starts_with("input `source`"), "{err}");
    let err = copy_error(&[
        ("INPUT_SOURCE", "alpine:3.20"),
        ("INPUT_DESTINATION", "app"),
        ("INPUT_REFERRERS", "yes"),
    ]);
    assert!(
        err.contains("input `referrers`: expected true or false"),
        "{err}"
    );
    let err = copy_error(&[
        ("INPUT_SOURCE", "alpine:3.20"),
        ("INPUT_DESTINATION", "app"),
        ("INPUT_PLATFORMS", "linux/amd64, amd64"),
    ]);
    assert!(err.starts_with("input `platforms`: \"amd64\""), "{err}");
    let err = copy_error(&[
        ("INPUT_SOURCE", "alpine:3.20"),
        (
            "INPUT_DESTINATION",
            "app@sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
        ),
    ]);
    assert!(err.starts_with("input `destination`"), "{err}");
    let err = copy_error(&[
        ("INPUT_SOURCE", "alpine:3.20"),
        ("INPUT_DESTINATION", "app"),
        ("INPUT_SCAN-ON-PUSH", "maybe"),
    ]);
    assert!(err.contains("input `scan-on-push`"), "{err}");
}
