//! `EcrImageMirror` documents: reading YAML files, the checks and their messages, the schema,
//! and the status helpers.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::validate::parse_duration;
use super::*;
use crate::ecr::{Encryption, RepositorySettings, TagMutability};

const ISSUE_EXAMPLE: &str = r#"
apiVersion: ferry.dev/v1alpha1
kind: EcrImageMirror
metadata:
  name: nginx
  namespace: mirrors
  labels: {team: web}
spec:
  source:
    image: docker.io/library/nginx
    tags: ["1.27.3", "stable"]
    tagPolicy:
      pattern: '^(?P<v>\d+\.\d+\.\d+)-alpine$'
      extract: '$v'
      semver: {range: '>=1.26.0 <2.0.0'}
      keep: 3
      exclude: ['-rc']
    platforms: [linux/amd64, linux/arm64]
    credentialsSecretRef: {name: hub-creds}
    referrers: true
  destination:
    registry: "123456789012"
    region: us-east-1
    repository: mirror/nginx
    roleArn: arn:aws:iam::123456789012:role/mirror
    createRepository: true
    repositorySettings:
      tagMutability: IMMUTABLE
      mutabilityExclusions: [stable]
      scanOnPush: true
      encryption: KMS
      kmsKey: alias/mirror
      tags: {team: web, cost-centre: "42"}
      lifecyclePolicy: '{"rules": []}'
      enforce: true
  manifestLists:
    - tag: "1.2"
      sources: ["1.2-amd64", "1.2-arm64"]
  interval: 1h30m
  suspend: false
"#;

fn spec(yaml: &str) -> EcrImageMirrorSpec {
    serde_norway::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

/// The error of validating the minimal spec with `source`'s extra lines and `rest`.
fn spec_error(source_extra: &str, rest: &str) -> String {
    let yaml = format!("source:\n  image: nginx\n{source_extra}{rest}");
    spec(&yaml)
        .validate()
        .map(|()| panic!("{yaml}: accepted"))
        .unwrap_err()
        .to_string()
}

#[test]
fn the_issue_example_reads_and_checks() {
    let documents = parse_documents(ISSUE_EXAMPLE, "nginx.yaml").unwrap();
    assert_eq!(documents.len(), 1);
    let doc = &documents[0];
    assert_eq!(doc.metadata.name, "nginx");
    assert_eq!(doc.metadata.namespace.as_deref(), Some("mirrors"));
    let spec = &doc.spec;
    assert_eq!(
        spec.source_reference().unwrap().repository(),
        "library/nginx"
    );
    assert_eq!(spec.interval().unwrap(), Duration::from_secs(5400));
    assert_eq!(spec.manifest_lists[0].sources, ["1.2-amd64", "1.2-arm64"]);

    let policy = TagPolicy::new(spec.source.tag_policy.as_ref().unwrap()).unwrap();
    let tags: Vec<String> = [
        "1.25.0-alpine",
        "1.26.2-alpine",
        "1.27.0-alpine",
        "1.27.1-alpine",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    assert_eq!(
        policy.select(&tags).unwrap(),
        ["1.27.1-alpine", "1.27.0-alpine", "1.26.2-alpine"]
    );

    assert_eq!(
        spec.to_settings().unwrap(),
        RepositorySettings {
            tag_mutability: Some(TagMutability::Immutable),
            mutability_exclusions: vec!["stable".into()],
            scan_on_push: Some(true),
            encryption: Some(Encryption::Kms {
                key: Some("alias/mirror".into())
            }),
            tags: vec![
                ("cost-centre".into(), "42".into()),
                ("team".into(), "web".into())
            ],
            lifecycle_policy: Some(r#"{"rules": []}"#.into()),
            repository_policy: None,
            enforce: true,
        }
    );
}

#[test]
fn other_kinds_and_empty_documents_are_skipped_and_defaults_apply() {
    let text = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: b}
---
---
apiVersion: ferry.dev/v1alpha1
kind: EcrImageMirror
metadata: {name: first}
spec:
  source: {image: ghcr.io/owner/app, tags: [v1]}
---
apiVersion: ferry.dev/v1beta1
kind: EcrImageMirror
metadata: {name: newer-version}
spec: {anything: goes}
---
apiVersion: ferry.dev/v1alpha1
kind: EcrImageMirror
metadata: {name: second}
spec:
  source:
    image: localhost:5000/team/app
    tagPolicy: {alphabetical: {}}
"#;
    let documents = parse_documents(text, "all.yaml").unwrap();
    let names: Vec<&str> = documents.iter().map(|d| d.metadata.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);
    let first = &documents[0].spec;
    assert!(first.source.referrers);
    assert!(first.destination.create_repository);
    assert!(!first.suspend);
    assert_eq!(first.interval().unwrap(), DEFAULT_INTERVAL);
    assert_eq!(first.to_settings().unwrap(), RepositorySettings::default());
    let policy = documents[1].spec.source.tag_policy.as_ref().unwrap();
    assert_eq!(policy.keep, 1);
    assert_eq!(policy.alphabetical.as_ref().unwrap().order, SortOrder::Asc);
    assert!(parse_documents("", "empty.yaml").unwrap().is_empty());
}

#[test]
fn document_errors_name_the_origin_the_document_and_the_field() {
    let header = "apiVersion: ferry.dev/v1alpha1\nkind: EcrImageMirror\nmetadata: {name: m}\n";
    let good = format!("{header}spec:\n  source: {{image: nginx, tags: [stable]}}\n");
    let misspelt =
        format!("{header}spec:\n  source:\n    image: nginx\n    tagPolicy: {{patern: x}}\n");
    let text = format!("{good}---\n{good}---\n{misspelt}");
    let err = parse_documents(&text, "mirrors.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("mirrors.yaml: document 3: spec.source.tagPolicy: unknown field `patern`"),
        "{err}"
    );
    assert!(err.contains("at line 19 column 17"), "{err}");

    let bad_range = format!(
        "{header}spec:\n  source:\n    image: nginx\n    tagPolicy: {{semver: {{range: '>=x1'}}}}\n"
    );
    let err = parse_documents(&format!("{good}---\n{bad_range}"), "mirrors.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "mirrors.yaml: document 2: spec.source.tagPolicy.semver.range: \">=x1\" is not a \
             semver range: "
        ),
        "{err}"
    );

    let err = parse_documents("a: [1\n", "broken.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("broken.yaml: document 1: not YAML"),
        "{err}"
    );

    let nameless = "apiVersion: ferry.dev/v1alpha1\nkind: EcrImageMirror\nmetadata: {name: ''}\n\
                    spec:\n  source: {image: nginx, tags: [a]}\n";
    let err = parse_documents(nameless, "x.yaml").unwrap_err().to_string();
    assert_eq!(err, "x.yaml: document 1: metadata.name: is empty");
}

#[test]
fn checks_name_the_field_by_its_yaml_path() {
    let policy = "  tagPolicy: {alphabetical: {}}\n";
    let cases: [(&str, &str, &str); 17] = [
        ("", "", "spec.source: give the tags to copy"),
        (
            "  tags: [a, '-b']\n",
            "",
            "spec.source.tags[1]: \"-b\" is not a tag",
        ),
        (
            "  tagPolicy: {alphabetical: {}, keep: 0}\n",
            "",
            "spec.source.tagPolicy.keep: must be at least 1",
        ),
        (
            "  tagPolicy: {alphabetical: {}, numerical: {}}\n",
            "",
            "spec.source.tagPolicy: only one of semver, alphabetical and numerical",
        ),
        (
            "  tagPolicy: {pattern: '(', semver: {range: '*'}}\n",
            "",
            "spec.source.tagPolicy.pattern: \"(\" is not a regular expression",
        ),
        (
            "  tagPolicy: {pattern: '(?P<v>.*)', extract: '$w', numerical: {}}\n",
            "",
            "spec.source.tagPolicy.extract: $w names no group",
        ),
        (
            "  tags: [a]\n  platforms: [linux]\n",
            "",
            "spec.source.platforms[0]: ",
        ),
        (
            "  tags: [a]\n  credentialsSecretRef: {name: ''}\n",
            "",
            "spec.source.credentialsSecretRef.name: is empty",
        ),
        (
            policy,
            "manifestLists: [{tag: '1.2', sources: []}]\n",
            "spec.manifestLists[0].sources: the list \"1.2\" needs at least one source tag",
        ),
        (
            policy,
            "manifestLists: [{tag: '', sources: [a]}]\n",
            "spec.manifestLists[0].tag: \"\" is not a tag",
        ),
        (
            policy,
            "manifestLists: [{tag: b, sources: [a, 'x y']}]\n",
            "spec.manifestLists[0].sources[1]: \"x y\" is not a tag",
        ),
        (
            policy,
            "interval: 30s\n",
            "spec.interval: \"30s\" is shorter than the minimum, 1m",
        ),
        (
            policy,
            "interval: 1d\n",
            "spec.interval: \"1d\" is not a duration",
        ),
        (
            policy,
            "destination: {repositorySettings: {tagMutability: frozen}}\n",
            "spec.destination.repositorySettings.tagMutability: invalid tag mutability \"frozen\"",
        ),
        (
            policy,
            "destination: {repositorySettings: {encryption: AES256, kmsKey: k}}\n",
            "spec.destination.repositorySettings.kmsKey: goes with encryption: KMS",
        ),
        (
            policy,
            "destination: {repositorySettings: {lifecyclePolicy: '{'}}\n",
            "spec.destination.repositorySettings.lifecyclePolicy: not valid JSON",
        ),
        (
            policy,
            "destination: {repositorySettings: {mutabilityExclusions: [latest]}}\n",
            "spec.destination.repositorySettings.mutabilityExclusions: exclusions need a tag mutability",
        ),
    ];
    for (source_extra, rest, want) in cases {
        let err = spec_error(source_extra, rest);
        assert!(err.starts_with(want), "want {want:?}, got {err:?}");
    }
}

#[test]
fn the_image_is_a_repository_without_tag_or_digest() {
    let check = |image: &str| {
        spec(&format!("source: {{image: '{image}', tags: [a]}}"))
            .validate()
            .map_err(|e| e.to_string())
    };
    for image in [
        "nginx",
        "docker.io/library/nginx",
        "localhost:5000/team/app",
        "[::1]:5000/app",
    ] {
        assert_eq!(check(image), Ok(()), "{image}");
    }
    let err = check("nginx:1.27").unwrap_err();
    assert!(
        err.starts_with("spec.source.image: \"nginx:1.27\" names a tag or digest")
            && err.contains("\"docker.io/library/nginx\""),
        "{err}"
    );
    let digest = format!("nginx@sha256:{}", "a".repeat(64));
    assert!(
        check(&digest)
            .unwrap_err()
            .contains("names a tag or digest")
    );
    assert!(
        check("localhost:5000")
            .unwrap_err()
            .contains("names a tag or digest")
    );
    assert!(
        check("Nginx")
            .unwrap_err()
            .starts_with("spec.source.image: invalid reference")
    );
}

#[test]
fn unknown_fields_are_refused() {
    for yaml in [
        "source: {image: nginx, tag: [a]}",
        "source: {image: nginx, tags: [a]}\nintervall: 1h",
        "source: {image: nginx, tags: [a]}\ndestination: {repo: x}",
        "source: {image: nginx, tags: [a]}\ndestination: {repositorySettings: {encryption: aes}}",
    ] {
        assert!(
            serde_norway::from_str::<EcrImageMirrorSpec>(yaml).is_err(),
            "{yaml}"
        );
    }
}

#[test]
fn durations_read_as_kubernetes_writes_them() {
    for (text, seconds) in [
        ("1m", 60),
        ("90s", 90),
        ("1h30m", 5400),
        ("2h", 7200),
        ("1h0m0s", 3600),
    ] {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_secs(seconds)),
            "{text}"
        );
    }
    for text in ["", "1", "h", "1x", "1.5h", "-1m", "1h 30m"] {
        assert!(parse_duration(text).is_err(), "{text}");
    }
}

#[test]
fn the_schema_describes_the_yaml_fields() {
    let schema = serde_json::to_value(schemars::schema_for!(EcrImageMirrorDocument)).unwrap();
    let text = schema.to_string();
    for needle in [
        "\"apiVersion\"",
        "\"tagPolicy\"",
        "\"credentialsSecretRef\"",
        "\"manifestLists\"",
        "\"asc\"",
        "\"desc\"",
        "\"AES256\"",
        "\"additionalProperties\":false",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    let status = serde_json::to_value(schemars::schema_for!(EcrImageMirrorStatus))
        .unwrap()
        .to_string();
    for state in [
        "Synced",
        "Failed",
        "Pending",
        "Skipped",
        "observedGeneration",
    ] {
        assert!(status.contains(state), "{state} missing from {status}");
    }
}

#[test]
fn status_records_the_last_state_of_each_tag() {
    let mut status = EcrImageMirrorStatus::default();
    let entry = |state: TagState, message: Option<&str>| TagStatus {
        tag: "1.27.3".into(),
        source_digest: Some(format!("sha256:{}", "1".repeat(64))),
        digest: None,
        platforms: vec!["linux/amd64".into()],
        state,
        message: message.map(str::to_string),
        synced_at: None,
        sources: Vec::new(),
    };
    status.set_tag(entry(TagState::Failed, Some("503 from the source")));
    status.set_tag(entry(TagState::Synced, None));
    assert_eq!(status.tags.len(), 1);
    assert_eq!(status.tag("1.27.3").unwrap().state, TagState::Synced);
    assert!(status.tag("1.27.2").is_none());
    status.set_manifest_list(TagStatus {
        tag: "1.27".into(),
        state: TagState::Skipped,
        ..entry(
            TagState::Skipped,
            Some("source tag 1.27-arm64 is not chosen"),
        )
    });
    assert_eq!(
        status.manifest_list("1.27").unwrap().state,
        TagState::Skipped
    );

    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["tags"][0]["state"], "Synced");
    assert_eq!(
        json["tags"][0]["sourceDigest"],
        format!("sha256:{}", "1".repeat(64))
    );
    assert_eq!(
        json["manifestLists"][0]["message"],
        "source tag 1.27-arm64 is not chosen"
    );
    assert!(json.get("lastSyncTime").is_none());
    let back: EcrImageMirrorStatus = serde_json::from_value(json).unwrap();
    assert_eq!(back, status);
}
