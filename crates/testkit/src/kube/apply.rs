//! Server-side apply, approximated: the applied configuration is merged onto the stored
//! object (maps recursively, lists replaced, `metadata.finalizers` united), fields this
//! manager applied before but no longer does are removed unless someone else owns them, and
//! changing a field another manager owns is a conflict unless `force` is set.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::managed::{self, FieldOwner, Path};
use super::resources::ResourceType;
use super::status::ApiError;

/// Parses an apply body: YAML, of which JSON is a subset.
pub fn parse_config(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    serde_yaml_ng::from_slice::<Value>(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML apply configuration: {e}")))
}

/// The part of `config` the endpoint may change: only `.status` on `/status`, all but
/// `.status` on the main resource when the status is a subresource.
pub fn scope(ty: &ResourceType, subresource: Option<&str>, config: &Value) -> Value {
    let mut scoped = config.clone();
    if let Some(map) = scoped.as_object_mut() {
        if subresource == Some("status") {
            map.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "status"));
            map.insert(
                "metadata".into(),
                json!({"name": config.pointer("/metadata/name")}),
            );
        } else if ty.status_subresource {
            map.remove("status");
        }
    }
    scoped
}

/// The object after applying `config` (already scoped) onto `old`, and the owner to record.
pub fn apply(
    ty: &ResourceType,
    name: &str,
    old: Option<&Value>,
    config: &Value,
    owner_name: &str,
    subresource: Option<&str>,
    force: bool,
) -> Result<(Value, FieldOwner), ApiError> {
    let Some(map) = config.as_object() else {
        return Err(ApiError::bad_request(
            "the apply configuration must be an object",
        ));
    };
    for required in ["apiVersion", "kind"] {
        if map
            .get(required)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::bad_request(format!(
                "invalid object type: the apply configuration of {} {name:?} has no {required}",
                ty.group_resource()
            )));
        }
    }
    let applied = managed::leaves(config);
    let owner = FieldOwner {
        manager: owner_name.to_string(),
        operation: "Apply",
        subresource: subresource.map(str::to_string),
        applied: Some(applied.clone()),
    };
    let Some(old) = old else {
        return Ok((config.clone(), owner));
    };
    if !force {
        check_conflicts(ty, name, old, config, &owner, &applied)?;
    }
    let mut merged = old.clone();
    merge(&mut merged, config, &mut Vec::new());
    let dropped: Vec<Path> = managed::applied_by(old, &owner)
        .difference(&applied)
        .filter(|p| managed::other_owners(old, &owner, p).is_empty())
        .cloned()
        .collect();
    for path in dropped {
        managed::remove(&mut merged, &path);
    }
    Ok((merged, owner))
}

fn check_conflicts(
    ty: &ResourceType,
    name: &str,
    old: &Value,
    config: &Value,
    owner: &FieldOwner,
    applied: &BTreeSet<Path>,
) -> Result<(), ApiError> {
    let mut conflicts = Vec::new();
    for path in applied {
        let current = managed::get(old, path);
        if current.is_none() || current == managed::get(config, path) {
            continue;
        }
        for other in managed::other_owners(old, owner, path) {
            conflicts.push(format!("conflict with {other:?}: .{}", path.join(".")));
        }
    }
    if conflicts.is_empty() {
        return Ok(());
    }
    let n = conflicts.len();
    let noun = if n == 1 { "conflict" } else { "conflicts" };
    Err(ApiError::apply_conflict(
        ty,
        name,
        format!("{n} {noun}: {}", conflicts.join("\n")),
    ))
}

fn merge(target: &mut Value, config: &Value, path: &mut Vec<String>) {
    let (Some(target_map), Some(config_map)) = (target.as_object_mut(), config.as_object()) else {
        *target = config.clone();
        return;
    };
    for (key, value) in config_map {
        path.push(key.clone());
        if value.is_null() {
            target_map.remove(key);
        } else if path.as_slice() == ["metadata", "finalizers"] {
            // A set: each manager adds its own finalizers, as the real listType=set does.
            let mut union: Vec<Value> = target_map
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for item in value.as_array().into_iter().flatten() {
                if !union.contains(item) {
                    union.push(item.clone());
                }
            }
            target_map.insert(key.clone(), Value::Array(union));
        } else {
            match target_map.get_mut(key) {
                Some(existing) if existing.is_object() && value.is_object() => {
                    merge(existing, value, path)
                }
                _ => {
                    target_map.insert(key.clone(), value.clone());
                }
            }
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::resources::builtins;

    fn cm() -> ResourceType {
        builtins()
            .into_iter()
            .find(|t| t.plural == "configmaps")
            .expect("configmaps are built in")
    }

    fn applied(
        config: &Value,
        old: Option<&Value>,
        manager: &str,
        force: bool,
    ) -> Result<Value, ApiError> {
        let (mut new, owner) = apply(&cm(), "c", old, config, manager, None, force)?;
        managed::record(&mut new, old, &owner, "v1");
        Ok(new)
    }

    #[test]
    fn reapply_removes_fields_the_manager_dropped_but_keeps_others() {
        let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                           "data": {"a": "1", "b": "2"}});
        let v1 = applied(&first, None, "me", false).expect("first apply");
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                           "data": {"z": "9"}});
        let v2 = applied(&other, Some(&v1), "you", false).expect("apply by another manager");
        let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                            "data": {"a": "1"}});
        let v3 = applied(&second, Some(&v2), "me", false).expect("first apply");
        assert_eq!(v3["data"], json!({"a": "1", "z": "9"}));
    }

    #[test]
    fn changing_another_managers_field_conflicts_unless_forced() {
        let mine = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                          "data": {"a": "1"}});
        let v1 = applied(&mine, None, "me", false).expect("first apply");
        let theirs = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                            "data": {"a": "2"}});
        let err = applied(&theirs, Some(&v1), "you", false).expect_err("conflict");
        assert_eq!(err.code, 409);
        assert!(
            err.message.contains("conflict with \"me\": .data.a"),
            "{}",
            err.message
        );
        let forced = applied(&theirs, Some(&v1), "you", true).expect("forced apply");
        assert_eq!(forced["data"]["a"], "2");
    }
}
