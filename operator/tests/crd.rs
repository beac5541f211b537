//! The CRD as a cluster sees it: the committed chart copy is the generated one, the CEL rules
//! refuse what `validate.rs` refuses (evaluated client-side with kube's CEL validator), the
//! printer columns and short name are there, and the spec schema is the shared crate's.

#![allow(clippy::unwrap_used)]

use ferry_operator::crd::{CRD_PATH, EcrImageMirror, crd_yaml};
use kube::CustomResourceExt;
use serde_json::{Value, json};

fn crd() -> Value {
    serde_json::to_value(EcrImageMirror::crd()).unwrap()
}

fn object(source: Value) -> Value {
    json!({
        "apiVersion": "ferry.dev/v1alpha1",
        "kind": "EcrImageMirror",
        "metadata": {"name": "m", "namespace": "default"},
        "spec": {"source": source, "destination": {"repository": "mirror/app"}},
    })
}

/// The CEL verdict on `source`: `Ok` or the rule messages.
fn cel(source: Value) -> Result<(), String> {
    let mirror: EcrImageMirror = serde_json::from_value(object(source)).unwrap();
    kube::core::cel::validate_cel(&mirror).map_err(|e| e.to_string())
}

#[test]
fn the_committed_crd_is_the_generated_one() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(CRD_PATH);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == crd_yaml().unwrap(),
        "{CRD_PATH} differs from the CRD the code generates; regenerate it with\n  \
         cargo run -p ferry-operator -- crd > {CRD_PATH}"
    );
}

#[test]
fn cel_rules_refuse_a_source_without_tags_and_a_policy_with_no_or_two_orders() {
    assert_eq!(
        cel(json!({"image": "docker.io/library/nginx", "tags": ["1.27"]})),
        Ok(())
    );
    let policy = |policy: Value| json!({"image": "docker.io/library/nginx", "tagPolicy": policy});
    assert_eq!(
        cel(policy(json!({"semver": {"range": ">=1"}, "keep": 2}))),
        Ok(())
    );

    let none = cel(json!({"image": "docker.io/library/nginx"})).unwrap_err();
    assert!(none.contains("give the tags to copy"), "{none}");
    let empty = cel(json!({"image": "docker.io/library/nginx", "tags": []})).unwrap_err();
    assert!(empty.contains("give the tags to copy"), "{empty}");

    let two = cel(policy(
        json!({"semver": {"range": ">=1"}, "numerical": {"order": "asc"}}),
    ))
    .unwrap_err();
    assert!(two.contains("exactly one order"), "{two}");
    let zero = cel(policy(json!({"pattern": "^v"}))).unwrap_err();
    assert!(zero.contains("exactly one order"), "{zero}");
    let keep = cel(policy(json!({"alphabetical": {}, "keep": 0}))).unwrap_err();
    assert!(keep.contains("keep must be at least 1"), "{keep}");
}

#[test]
fn names_columns_and_subresources_are_those_kubectl_shows() {
    let crd = crd();
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["eim"]));
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["subresources"]["status"], json!({}));
    let columns: Vec<(String, String)> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["jsonPath"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("Source", ".spec.source.image"),
        ("Destination", ".status.repositoryUri"),
        ("Tags", ".status.tagSummary"),
        ("Ready", ".status.conditions[?(@.type==\"Ready\")].status"),
        ("Last Sync", ".status.lastSyncTime"),
        ("Age", ".metadata.creationTimestamp"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, p)| (n.to_string(), p.to_string()))
        .collect();
    assert_eq!(columns, expected);
}

#[test]
fn the_spec_schema_is_the_shared_spec_and_the_status_has_kstatus_conditions() {
    let schema = &crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let spec = &schema["properties"]["spec"];
    let shared = serde_json::to_value(schemars::schema_for!(
        ferry_registry::mirror::EcrImageMirrorSpec
    ))
    .unwrap();
    let keys = |v: &Value| {
        let mut keys: Vec<String> = v["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(spec), keys(&shared));
    assert_eq!(spec["required"], shared["required"]);
    // Structural schemas may not say `additionalProperties: false` next to `properties`.
    assert!(!spec.to_string().contains("\"additionalProperties\":false"));
    let condition = &schema["properties"]["status"]["properties"]["conditions"]["items"];
    for field in [
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    ] {
        assert!(
            condition["properties"][field].is_object(),
            "conditions[].{field}"
        );
    }
    let status = &schema["properties"]["status"]["properties"];
    for field in [
        "tags",
        "lastSyncTime",
        "nextSyncTime",
        "observedGeneration",
        "repositoryUri",
    ] {
        assert!(status[field].is_object(), "status.{field}");
    }
}
