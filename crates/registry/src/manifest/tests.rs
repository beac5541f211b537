#![allow(clippy::unwrap_used)]

use super::*;
use crate::media_type::*;

const DOCKER_MANIFEST_JSON: &[u8] = include_bytes!("fixtures/docker_manifest.json");
const DOCKER_LIST_JSON: &[u8] = include_bytes!("fixtures/docker_manifest_list.json");
const OCI_MANIFEST_JSON: &[u8] = include_bytes!("fixtures/oci_manifest.json");
const OCI_INDEX_JSON: &[u8] = include_bytes!("fixtures/oci_index.json");
const OCI_ARTIFACT_JSON: &[u8] = include_bytes!("fixtures/oci_artifact.json");
const OCI_ARTIFACT_NO_LAYERS_JSON: &[u8] = include_bytes!("fixtures/oci_artifact_no_layers.json");
const BUILDX_INDEX_JSON: &[u8] = include_bytes!("fixtures/buildx_index.json");
const BUILDX_ATTESTATION_JSON: &[u8] = include_bytes!("fixtures/buildx_attestation_manifest.json");
const SCHEMA1_JSON: &[u8] = include_bytes!("fixtures/schema1_signed.json");

fn parse(raw: &'static [u8]) -> Manifest {
    Manifest::from_raw(Bytes::from_static(raw), None).unwrap()
}

fn platform(s: &str) -> Platform {
    Platform::parse(s).unwrap()
}

fn hex_of(d: &Descriptor) -> String {
    descriptor_digest(d).unwrap().hex()[..8].to_string()
}

struct Shape {
    media_type: &'static str,
    index: bool,
    children: usize,
    layers: usize,
    config: Option<&'static str>,
    subject: bool,
    artifact_type: Option<&'static str>,
}

#[test]
fn parses_every_format() {
    let cases = [
        (
            "docker v2 schema 2",
            DOCKER_MANIFEST_JSON,
            Shape {
                media_type: DOCKER_MANIFEST,
                index: false,
                children: 0,
                layers: 3,
                config: Some(DOCKER_CONFIG),
                subject: false,
                artifact_type: None,
            },
        ),
        (
            "docker manifest list",
            DOCKER_LIST_JSON,
            Shape {
                media_type: DOCKER_MANIFEST_LIST,
                index: true,
                children: 4,
                layers: 0,
                config: None,
                subject: false,
                artifact_type: None,
            },
        ),
        (
            "oci manifest",
            OCI_MANIFEST_JSON,
            Shape {
                media_type: OCI_MANIFEST,
                index: false,
                children: 0,
                layers: 2,
                config: Some(OCI_CONFIG),
                subject: false,
                artifact_type: None,
            },
        ),
        (
            "oci index",
            OCI_INDEX_JSON,
            Shape {
                media_type: OCI_INDEX,
                index: true,
                children: 4,
                layers: 0,
                config: None,
                subject: false,
                artifact_type: None,
            },
        ),
        (
            "oci 1.1 artifact",
            OCI_ARTIFACT_JSON,
            Shape {
                media_type: OCI_MANIFEST,
                index: false,
                children: 0,
                layers: 1,
                config: Some(OCI_EMPTY),
                subject: true,
                artifact_type: Some("application/vnd.dev.cosign.artifact.sig.v1+json"),
            },
        ),
        (
            "oci 1.1 artifact without layers",
            OCI_ARTIFACT_NO_LAYERS_JSON,
            Shape {
                media_type: OCI_MANIFEST,
                index: false,
                children: 0,
                layers: 0,
                config: Some(OCI_EMPTY),
                subject: true,
                artifact_type: Some("application/vnd.example.marker"),
            },
        ),
        (
            "buildx index with attestations",
            BUILDX_INDEX_JSON,
            Shape {
                media_type: OCI_INDEX,
                index: true,
                children: 4,
                layers: 0,
                config: None,
                subject: false,
                artifact_type: None,
            },
        ),
        (
            "buildx attestation manifest",
            BUILDX_ATTESTATION_JSON,
            Shape {
                media_type: OCI_MANIFEST,
                index: false,
                children: 0,
                layers: 1,
                config: Some(OCI_CONFIG),
                subject: false,
                artifact_type: None,
            },
        ),
    ];
    for (name, raw, want) in cases {
        let m = Manifest::from_raw(Bytes::from_static(raw), None)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.media_type(), want.media_type, "{name}");
        assert_eq!(m.is_index(), want.index, "{name}");
        assert_eq!(
            matches!(m.body(), ManifestBody::Index(_)),
            want.index,
            "{name}"
        );
        assert_eq!(m.children().len(), want.children, "{name}");
        assert_eq!(m.layers().len(), want.layers, "{name}");
        assert_eq!(
            m.config().map(|c| c.media_type().to_string()).as_deref(),
            want.config,
            "{name}"
        );
        let expected_blobs = if want.index { 0 } else { 1 + want.layers };
        assert_eq!(m.blobs().len(), expected_blobs, "{name}");
        assert_eq!(m.subject().is_some(), want.subject, "{name}");
        assert_eq!(m.artifact_type(), want.artifact_type, "{name}");
        // The digest is of the exact bytes served, whitespace and all.
        assert_eq!(m.digest(), &Digest::sha256_of(raw), "{name}");
        assert_eq!(m.raw().as_ref(), raw, "{name}");
        assert_eq!(m.size(), raw.len() as u64, "{name}");
        for d in m.children().iter().chain(m.blobs()) {
            descriptor_digest(d).unwrap();
        }
    }
}

#[test]
fn digest_depends_on_exact_bytes() {
    let compact = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let spaced = br#"{ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [] }
"#;
    let a = Manifest::from_raw(Bytes::from_static(compact), None).unwrap();
    let b = Manifest::from_raw(Bytes::from_static(spaced), None).unwrap();
    assert_ne!(a.digest(), b.digest());
    assert_eq!(b.digest(), &Digest::sha256_of(spaced));
    assert_eq!(b.size(), spaced.len() as u64);
}

#[test]
fn blobs_are_config_then_layers_in_order() {
    let m = parse(DOCKER_MANIFEST_JSON);
    let hexes: Vec<String> = m.blobs().into_iter().map(hex_of).collect();
    assert_eq!(hexes, ["5feceb66", "6b86b273", "d4735e3a", "4e074085"]);
}

#[test]
fn manifest_list_platforms_including_windows_os_version() {
    let m = parse(DOCKER_LIST_JSON);
    let platforms: Vec<Platform> = m.children().iter().filter_map(Platform::of).collect();
    assert_eq!(
        platforms,
        vec![
            Platform {
                os: "linux".into(),
                architecture: "amd64".into(),
                variant: None,
                os_version: None,
            },
            Platform {
                os: "linux".into(),
                architecture: "arm".into(),
                variant: Some("v7".into()),
                os_version: None,
            },
            Platform {
                os: "linux".into(),
                architecture: "arm64".into(),
                variant: Some("v8".into()),
                os_version: None,
            },
            Platform {
                os: "windows".into(),
                architecture: "amd64".into(),
                variant: None,
                os_version: Some("10.0.17763.5696".into()),
            },
        ]
    );
    let features = m.children()[3]
        .platform()
        .as_ref()
        .and_then(|p| p.os_features().clone());
    assert_eq!(features, Some(vec!["win32k".to_string()]));
    let features = m.children()[2]
        .platform()
        .as_ref()
        .and_then(|p| p.features().clone());
    assert_eq!(features, Some(vec!["sse4".to_string()]));
}

#[test]
fn buildx_attestations_are_unknown_platform() {
    let m = parse(BUILDX_INDEX_JSON);
    let unknown: Vec<bool> = m
        .children()
        .iter()
        .map(|d| Platform::of(d).unwrap().is_unknown())
        .collect();
    assert_eq!(unknown, [false, false, true, true]);
    let annotations = m.children()[2].annotations().as_ref().unwrap();
    assert_eq!(
        annotations
            .get("vnd.docker.reference.type")
            .map(String::as_str),
        Some("attestation-manifest")
    );
}

#[test]
fn media_type_resolution() {
    let untyped_index = br#"{"schemaVersion":2,"manifests":[]}"#;
    let untyped_image = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9","size":2},"layers":[]}"#;
    let cases: [(&'static [u8], Option<&str>, &str); 7] = [
        // The document's own field wins over the header.
        (OCI_INDEX_JSON, Some(DOCKER_MANIFEST_LIST), OCI_INDEX),
        (
            untyped_index,
            Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
            OCI_INDEX,
        ),
        (
            untyped_index,
            Some(DOCKER_MANIFEST_LIST),
            DOCKER_MANIFEST_LIST,
        ),
        (untyped_index, None, OCI_INDEX),
        (untyped_index, Some("application/json"), OCI_INDEX),
        (untyped_image, None, OCI_MANIFEST),
        (untyped_image, Some(DOCKER_MANIFEST), DOCKER_MANIFEST),
    ];
    for (raw, content_type, want) in cases {
        let m = Manifest::from_raw(Bytes::from_static(raw), content_type).unwrap();
        assert_eq!(m.media_type(), want, "{content_type:?}");
    }
}

#[test]
fn go_style_null_lists_are_accepted() {
    let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}"#;
    assert!(parse(index).children().is_empty());
    let artifact = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/x.example","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":null}"#;
    assert!(parse(artifact).layers().is_empty());
}

#[test]
fn rejections() {
    type Check = fn(&ManifestError) -> bool;
    let cases: Vec<(&str, &'static [u8], Option<&str>, Check)> = vec![
        ("not json", b"<html>", None, |e| {
            matches!(e, ManifestError::Json { .. })
        }),
        ("array", b"[]", None, |e| {
            matches!(e, ManifestError::NotAnObject)
        }),
        ("schema 1 signed", SCHEMA1_JSON, None, |e| {
            matches!(e, ManifestError::SchemaOne { .. })
        }),
        (
            "schema 1 by header",
            SCHEMA1_JSON,
            Some(DOCKER_SCHEMA1_SIGNED),
            |e| matches!(e, ManifestError::SchemaOne { media_type } if media_type == DOCKER_SCHEMA1_SIGNED),
        ),
        (
            "schema 1 media type",
            br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v1+json"}"#,
            None,
            |e| matches!(e, ManifestError::SchemaOne { .. }),
        ),
        (
            "schemaVersion 3",
            br#"{"schemaVersion":3,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
            None,
            |e| matches!(e, ManifestError::SchemaVersion { found } if found == "3"),
        ),
        (
            "schemaVersion missing",
            br#"{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
            None,
            |e| matches!(e, ManifestError::SchemaVersion { found } if found == "missing"),
        ),
        (
            "artifact manifest",
            br#"{"mediaType":"application/vnd.oci.artifact.manifest.v1+json","artifactType":"x/y","blobs":[]}"#,
            None,
            |e| matches!(e, ManifestError::UnsupportedMediaType { .. }),
        ),
        ("unknown shape", br#"{"schemaVersion":2}"#, None, |e| {
            matches!(e, ManifestError::UnknownFormat)
        }),
        (
            "image without config",
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#,
            None,
            |e| matches!(e, ManifestError::Malformed { .. }),
        ),
        (
            "uppercase digest",
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:5FECEB66FFC86F38D952786C6D696C79C2DBC239DD4E91B46729D73A27FB57E9","size":1}]}"#,
            None,
            |e| matches!(e, ManifestError::Malformed { .. }),
        ),
    ];
    for (name, raw, content_type, check) in cases {
        let err = Manifest::from_raw(Bytes::from_static(raw), content_type).unwrap_err();
        assert!(check(&err), "{name}: {err:?}");
    }
    let err = Manifest::from_raw(Bytes::from_static(SCHEMA1_JSON), None).unwrap_err();
    assert!(err.to_string().contains("schema 1 "), "{err}");
}

#[test]
fn descriptor_digest_rejects_other_algorithms() {
    let raw = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e","size":1}]}"#;
    let m = parse(raw);
    let err = descriptor_digest(&m.children()[0]).unwrap_err();
    assert!(matches!(
        err,
        ManifestError::InvalidDescriptorDigest {
            source: DigestError::UnsupportedAlgorithm { .. },
            ..
        }
    ));
    assert!(err.to_string().contains("sha512:cf83"), "{err}");
}

#[test]
fn platform_parse_table() {
    let cases: [(&str, &str, &str, Option<&str>, &str); 12] = [
        ("linux/amd64", "linux", "amd64", None, "linux/amd64"),
        ("linux/arm64", "linux", "arm64", None, "linux/arm64"),
        (
            "linux/arm64/v8",
            "linux",
            "arm64",
            Some("v8"),
            "linux/arm64/v8",
        ),
        ("linux/arm/v7", "linux", "arm", Some("v7"), "linux/arm/v7"),
        ("linux/arm/6", "linux", "arm", Some("v6"), "linux/arm/v6"),
        ("linux/x86_64", "linux", "amd64", None, "linux/amd64"),
        ("linux/aarch64", "linux", "arm64", None, "linux/arm64"),
        ("linux/armhf", "linux", "arm", Some("v7"), "linux/arm/v7"),
        ("linux/armel", "linux", "arm", Some("v6"), "linux/arm/v6"),
        ("Linux/AMD64", "linux", "amd64", None, "linux/amd64"),
        ("windows/amd64", "windows", "amd64", None, "windows/amd64"),
        ("linux/riscv64", "linux", "riscv64", None, "linux/riscv64"),
    ];
    for (input, os, arch, variant, display) in cases {
        let p = platform(input);
        assert_eq!(p.os, os, "{input}");
        assert_eq!(p.architecture, arch, "{input}");
        assert_eq!(p.variant.as_deref(), variant, "{input}");
        assert_eq!(p.os_version, None, "{input}");
        assert_eq!(p.to_string(), display, "{input}");
        assert_eq!(input.parse::<Platform>().unwrap(), p);
    }
}

#[test]
fn platform_parse_errors() {
    for input in [
        "",
        "linux",
        "linux/",
        "/amd64",
        "linux//v7",
        "linux/arm/v7/extra",
        "linux/amd 64",
        "linux/amd64:v2",
    ] {
        let err = Platform::parse(input).unwrap_err();
        assert!(
            matches!(&err, ManifestError::InvalidPlatform { input: i, .. } if i == input),
            "{input:?}: {err:?}"
        );
        assert!(err.to_string().contains(&format!("{input:?}")), "{err}");
    }
}

#[test]
fn platform_match_table() {
    let entry = |os: &str, arch: &str, variant: Option<&str>| Platform {
        os: os.into(),
        architecture: arch.into(),
        variant: variant.map(str::to_string),
        os_version: None,
    };
    let cases = [
        ("linux/amd64", entry("linux", "amd64", None), true),
        ("linux/amd64", entry("linux", "amd64", Some("v3")), true),
        ("linux/amd64", entry("linux", "arm64", None), false),
        ("linux/amd64", entry("windows", "amd64", None), false),
        ("linux/amd64/v1", entry("linux", "amd64", None), true),
        ("linux/amd64/v3", entry("linux", "amd64", None), false),
        ("linux/arm64", entry("linux", "arm64", Some("v8")), true),
        ("linux/arm64/v8", entry("linux", "arm64", None), true),
        ("linux/arm64/v8", entry("linux", "arm64", Some("v8")), true),
        ("linux/arm64/v9", entry("linux", "arm64", None), false),
        ("linux/aarch64", entry("linux", "arm64", None), true),
        ("linux/arm", entry("linux", "arm", Some("v6")), true),
        ("linux/arm/v7", entry("linux", "arm", Some("v7")), true),
        ("linux/arm/v7", entry("linux", "arm", Some("v6")), false),
        ("linux/arm/v7", entry("linux", "arm", None), true),
        ("linux/arm/v6", entry("linux", "arm", None), false),
        ("linux/armhf", entry("linux", "arm", Some("v7")), true),
        ("linux/armhf", entry("linux", "arm", Some("v6")), false),
        ("linux/arm/v7", entry("linux", "arm64", Some("v8")), false),
        ("linux/amd64", entry("unknown", "unknown", None), false),
    ];
    for (requested, entry, want) in cases {
        assert_eq!(
            platform(requested).matches(&entry),
            want,
            "{requested} vs {entry}"
        );
    }

    let mut windows = platform("windows/amd64");
    let ltsc2019 = Platform {
        os_version: Some("10.0.17763.5696".into()),
        ..entry("windows", "amd64", None)
    };
    assert!(windows.matches(&ltsc2019));
    windows.os_version = Some("10.0.20348.1".into());
    assert!(!windows.matches(&ltsc2019));
}

#[test]
fn filter_index_keeps_order_fields_and_annotations() {
    let index = parse(OCI_INDEX_JSON);
    let filtered =
        filter_index(&index, &[platform("linux/s390x"), platform("linux/amd64")]).unwrap();
    assert_eq!(filtered.media_type(), OCI_INDEX);
    assert!(filtered.is_index());
    let kept: Vec<String> = filtered.children().iter().map(hex_of).collect();
    assert_eq!(kept, ["4fc82b26", "3fdba35f"]);
    assert_eq!(filtered.digest(), &Digest::sha256_of(filtered.raw()));

    let value: Value = serde_json::from_slice(filtered.raw()).unwrap();
    assert_eq!(value["mediaType"], OCI_INDEX);
    assert_eq!(value["schemaVersion"], 2);
    assert_eq!(value["annotations"]["com.example.pipeline"], "release-42");
    assert_eq!(
        value["annotations"]["org.opencontainers.image.created"],
        "2024-06-12T09:14:33Z"
    );
    assert_eq!(
        value["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "amd64-build"
    );
    // The kept entries are byte-for-byte the original JSON values.
    let original: Value = serde_json::from_slice(OCI_INDEX_JSON).unwrap();
    assert_eq!(value["manifests"][0], original["manifests"][0]);
    assert_eq!(value["manifests"][1], original["manifests"][2]);

    let again = filter_index(&index, &[platform("linux/s390x"), platform("linux/amd64")]).unwrap();
    assert_eq!(again.raw(), filtered.raw());
}

#[test]
fn filter_docker_list_keeps_media_type_and_unknown_fields() {
    let list = parse(DOCKER_LIST_JSON);
    let filtered = filter_index(&list, &[platform("windows/amd64")]).unwrap();
    assert_eq!(filtered.media_type(), DOCKER_MANIFEST_LIST);
    let value: Value = serde_json::from_slice(filtered.raw()).unwrap();
    let entry = &value["manifests"][0]["platform"];
    // Written back under the spec's names, not the ones used for oci-spec internally.
    assert_eq!(entry["os.version"], "10.0.17763.5696");
    assert_eq!(entry["os.features"][0], "win32k");
    assert!(entry.get("os_version").is_none());
    assert_eq!(filtered.children().len(), 1);

    let arm = filter_index(
        &list,
        &[platform("linux/arm64/v8"), platform("linux/arm/v7")],
    )
    .unwrap();
    let kept: Vec<String> = arm.children().iter().map(hex_of).collect();
    assert_eq!(kept, ["ef2d127d", "e7f6c011"]);
}

#[test]
fn filter_drops_attestations_and_platformless_children() {
    let index = parse(BUILDX_INDEX_JSON);
    let filtered = filter_index(&index, &[platform("linux/arm64")]).unwrap();
    let kept: Vec<String> = filtered.children().iter().map(hex_of).collect();
    assert_eq!(kept, ["9400f1b2"]);

    let index = parse(OCI_INDEX_JSON);
    let all = filter_index(
        &index,
        &[
            platform("linux/amd64"),
            platform("linux/arm64"),
            platform("linux/s390x"),
        ],
    )
    .unwrap();
    assert_eq!(all.children().len(), 3, "the entry without a platform goes");
}

#[test]
fn filter_errors() {
    let index = parse(OCI_INDEX_JSON);
    let err = filter_index(
        &index,
        &[platform("linux/ppc64le"), platform("windows/amd64")],
    )
    .unwrap_err();
    let ManifestError::NoMatchingPlatform {
        requested,
        available,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(requested.len(), 2);
    assert_eq!(available.len(), 3);
    assert_eq!(
        err.to_string(),
        "no image in the index matches the requested platform(s) linux/ppc64le, windows/amd64; it has: linux/amd64, linux/arm64, linux/s390x"
    );

    assert!(matches!(
        filter_index(&index, &[]),
        Err(ManifestError::NoPlatformsRequested)
    ));
    assert!(matches!(
        filter_index(&parse(OCI_MANIFEST_JSON), &[platform("linux/amd64")]),
        Err(ManifestError::NotAnIndex { .. })
    ));
}
