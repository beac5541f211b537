use std::collections::{BTreeMap, HashMap};

use super::build::{self, ListFormat};
use super::sources::{Child, Source};
use super::{ListError, check_platforms, list_tags};
use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::Platform;
use crate::media_type::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::reference::Reference;

fn target() -> Reference {
    Reference::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1.0").expect("target")
}

fn child(source: &str, n: u8, platform: &str, media_type: &str) -> Child {
    Child {
        source: source.into(),
        from: None,
        digest: Digest::sha256_of(&[n]),
        media_type: media_type.into(),
        size: 500 + u64::from(n),
        platform: Platform::parse(platform).expect("platform"),
        attestation: platform == "unknown/unknown",
        annotations: HashMap::new(),
    }
}

#[test]
fn sources_resolve_against_the_target() {
    let target = target();
    let tag = Source::parse("1.0-arm64", &target).expect("tag");
    assert_eq!(
        tag.reference.to_string(),
        format!("{}:1.0-arm64", target.name())
    );

    let digest = Digest::sha256_of(b"x");
    let by_digest = Source::parse(digest.as_str(), &target).expect("digest");
    assert_eq!(by_digest.reference.digest(), Some(&digest));
    assert_eq!(by_digest.reference.repository(), "team/app");

    let other = Source::parse("team/app-arm:v1", &target).expect("other repository");
    assert_eq!(other.reference.repository(), "team/app-arm");
    assert_eq!(other.reference.registry(), target.registry());

    let full = Source::parse(&format!("{}/base:v1", target.registry()), &target).expect("full");
    assert_eq!(full.reference.repository(), "base");
}

#[test]
fn a_source_in_another_registry_is_refused_by_name() {
    let err = Source::parse("ghcr.io/team/app:1.0", &target()).expect_err("other registry");
    let text = err.to_string();
    assert!(matches!(
        err,
        Error::MultiArch(ListError::OtherRegistry { .. })
    ));
    assert!(
        text.contains("ghcr.io/team/app:1.0") && text.contains("copy the image there first"),
        "{text}"
    );
    assert!(Source::parse("bad tag!", &target()).is_err());
}

#[test]
fn auto_format_is_docker_only_for_docker_children_without_annotations() {
    let none = BTreeMap::new();
    let docker = [
        child("a", 1, "linux/amd64", DOCKER_MANIFEST),
        child("b", 2, "linux/arm64", DOCKER_MANIFEST),
    ];
    let mixed = [
        child("a", 1, "linux/amd64", DOCKER_MANIFEST),
        child("b", 2, "linux/arm64", OCI_MANIFEST),
    ];
    assert_eq!(
        build::media_type(ListFormat::Auto, &docker, &none).ok(),
        Some(DOCKER_MANIFEST_LIST)
    );
    assert_eq!(
        build::media_type(ListFormat::Auto, &mixed, &none).ok(),
        Some(OCI_INDEX)
    );
    let annotated = BTreeMap::from([("org.opencontainers.image.source".into(), "x".into())]);
    assert_eq!(
        build::media_type(ListFormat::Auto, &docker, &annotated).ok(),
        Some(OCI_INDEX)
    );
    assert_eq!(
        build::media_type(ListFormat::Oci, &docker, &none).ok(),
        Some(OCI_INDEX)
    );
    let err = build::media_type(ListFormat::Docker, &mixed, &none).expect_err("oci child");
    assert!(err.to_string().contains("\"b\"") || err.to_string().contains("b is an OCI"));
    assert!(matches!(
        build::media_type(ListFormat::Docker, &docker, &annotated),
        Err(ListError::DockerAnnotations)
    ));
    assert!("zip".parse::<ListFormat>().is_err());
}

#[test]
fn the_list_names_each_child_with_its_platform_and_is_deterministic() {
    let mut arm = child("b", 2, "linux/arm/v7", OCI_MANIFEST);
    arm.annotations
        .insert("vnd.docker.reference.digest".into(), "sha256:ab".into());
    let children = [child("a", 1, "linux/amd64", DOCKER_MANIFEST), arm];
    let annotations = BTreeMap::from([("k".to_string(), "v".to_string())]);
    let list = build::build(OCI_INDEX, &children, &annotations).expect("build");
    let again = build::build(OCI_INDEX, &children, &annotations).expect("build again");
    assert_eq!(list.digest(), again.digest());
    assert_eq!(list.media_type(), OCI_INDEX);

    let value: serde_json::Value = serde_json::from_slice(list.raw()).expect("json");
    assert_eq!(value["annotations"]["k"], "v");
    let entries = value["manifests"].as_array().expect("manifests");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["digest"], children[0].digest.as_str());
    assert_eq!(entries[0]["platform"]["architecture"], "amd64");
    assert_eq!(entries[1]["platform"]["variant"], "v7");
    assert_eq!(
        entries[1]["annotations"]["vnd.docker.reference.digest"],
        "sha256:ab"
    );

    let docker =
        build::build(DOCKER_MANIFEST_LIST, &children[..1], &BTreeMap::new()).expect("docker list");
    let value: serde_json::Value = serde_json::from_slice(docker.raw()).expect("json");
    assert_eq!(value["mediaType"], DOCKER_MANIFEST_LIST);
    assert!(value.get("annotations").is_none());
}

#[test]
fn duplicate_platforms_name_every_clashing_source() {
    let ok = [
        child("amd", 1, "linux/amd64", DOCKER_MANIFEST),
        child("arm", 2, "linux/arm64", DOCKER_MANIFEST),
        child("att1", 3, "unknown/unknown", OCI_MANIFEST),
        child("att2", 4, "unknown/unknown", OCI_MANIFEST),
    ];
    assert!(
        check_platforms(&ok).is_ok(),
        "attestations may share unknown/unknown"
    );
    let clash = [
        child("arm", 2, "linux/arm64", DOCKER_MANIFEST),
        child("amd", 1, "linux/amd64", DOCKER_MANIFEST),
        child("arm-v8", 5, "linux/arm64/v8", DOCKER_MANIFEST),
    ];
    let text = check_platforms(&clash).expect_err("clash").to_string();
    assert!(
        text.contains("linux/arm64") && text.contains("arm, arm-v8"),
        "{text}"
    );
}

#[test]
fn tags_default_to_the_targets_own() {
    assert_eq!(list_tags(&target(), &[]), ["1.0"]);
    let given = ["a".to_string(), "b".to_string(), "a".to_string()];
    assert_eq!(list_tags(&target(), &given), ["a", "b"]);
}
