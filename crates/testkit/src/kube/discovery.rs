//! Legacy (unaggregated) discovery: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/G[/V]`.
//! Clients that ask for aggregated discovery first fall back to these when the answer's
//! content type is plain `application/json`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::resources::ResourceType;

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.4-ferry-testkit",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.8",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// Versions per non-core group, in the order types were registered.
fn groups(types: &[ResourceType]) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        let versions = groups.entry(t.group.clone()).or_default();
        if !versions.contains(&t.version) {
            versions.push(t.version.clone());
        }
    }
    groups
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": versions.first().map(gv).unwrap_or(Value::Null),
    })
}

pub fn group_list(types: &[ResourceType]) -> Value {
    let groups: Vec<Value> = groups(types)
        .iter()
        .map(|(name, versions)| group_json(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(types: &[ResourceType], name: &str) -> Option<Value> {
    let groups = groups(types);
    let versions = groups.get(name)?;
    let mut group = group_json(name, versions);
    group["kind"] = "APIGroup".into();
    group["apiVersion"] = "v1".into();
    Some(group)
}

/// The `APIResourceList` of one group version, or `None` if nothing is served there.
pub fn resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for t in types
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        let mut r = json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": VERBS,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        if t.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// `group/version` paths as OpenAPI v3 names them: `api/v1`, `apis/ferry.dev/v1alpha1`.
fn openapi_gv_paths(types: &[ResourceType]) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for t in types {
        let p = if t.group.is_empty() {
            format!("api/{}", t.version)
        } else {
            format!("apis/{}/{}", t.group, t.version)
        };
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    paths
}

/// The `/openapi/v3` index. kubectl reads it (and one group version's document) only to learn
/// that PATCH takes `fieldValidation`, so it leaves validation to the server.
pub fn openapi_v3_root(types: &[ResourceType]) -> Value {
    let paths: serde_json::Map<String, Value> = openapi_gv_paths(types)
        .into_iter()
        .map(|p| {
            let doc = openapi_v3_doc(types, &p)
                .map(|d| d.to_string())
                .unwrap_or_default();
            let hash = crate::util::sha256_digest(doc.as_bytes()).replace("sha256:", "");
            let url = format!("/openapi/v3/{p}?hash={}", &hash[..32]);
            (p, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// A minimal OpenAPI v3 document for one group version: each resource's PATCH operation with
/// its group-version-kind and the `fieldValidation` query parameter.
pub fn openapi_v3_doc(types: &[ResourceType], gv_path: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    for t in types {
        let prefix = if t.group.is_empty() {
            format!("api/{}", t.version)
        } else {
            format!("apis/{}/{}", t.group, t.version)
        };
        if prefix != gv_path {
            continue;
        }
        let path = if t.namespaced {
            format!("/{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("/{prefix}/{}/{{name}}", t.plural)
        };
        let param = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string"}});
        paths.insert(
            path,
            json!({"patch": {
                "operationId": format!("patch{}", t.kind),
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": t.group, "version": t.version, "kind": t.kind},
                "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")],
                "responses": {"200": {"description": "OK"}},
            }}),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (ferry-testkit stand-in)", "version": "v1.32.4"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
