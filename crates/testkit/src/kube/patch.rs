//! The patch formats of PATCH requests other than server-side apply.

use serde_json::{Map, Value};

/// RFC 7386 JSON merge patch: maps merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(target_map) = target.as_object_mut() else {
        return;
    };
    for (key, value) in patch_map {
        if value.is_null() {
            target_map.remove(key);
        } else {
            merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Strategic merge patch, approximated as a merge patch after dropping its `$` directives
/// (`$patch`, `$retainKeys`, `$setElementOrder/…`, `$deleteFromPrimitiveList/…`): right for
/// the maps and atomic lists of Secrets, ConfigMaps and custom resources.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    merge_patch(target, &without_directives(patch));
}

fn without_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), without_directives(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// RFC 6902 JSON patch. Errors name the failing operation.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    for (i, op) in ops.iter().enumerate() {
        let field = |name: &str| -> Result<&str, String> {
            op.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("operation {i}: missing {name:?}: {op}"))
        };
        let kind = field("op")?;
        let path = field("path")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| format!("operation {i} ({kind} {path}): missing \"value\""))
        };
        let result = match kind {
            "add" => value().and_then(|v| add(target, path, v)),
            "remove" => take(target, path).map(drop),
            "replace" => value().and_then(|v| {
                take(target, path)?;
                add(target, path, v)
            }),
            "move" => {
                let from = field("from")?;
                take(target, from).and_then(|v| add(target, path, v))
            }
            "copy" => {
                let from = field("from")?;
                let v = target
                    .pointer(from)
                    .cloned()
                    .ok_or_else(|| format!("path {from} does not exist"))?;
                add(target, path, v)
            }
            "test" => {
                let expected = value()?;
                match target.pointer(path) {
                    Some(actual) if *actual == expected => Ok(()),
                    actual => Err(format!(
                        "test failed: {path} is {}, not {expected}",
                        actual.map_or("missing".to_string(), Value::to_string)
                    )),
                }
            }
            other => Err(format!("unknown operation {other:?}")),
        };
        result.map_err(|e| format!("JSON patch operation {i} ({kind} {path}): {e}"))?;
    }
    Ok(())
}

fn split(path: &str) -> Result<(&str, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("{path:?} is not a JSON pointer"))?;
    Ok((parent, last.replace("~1", "/").replace("~0", "~")))
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split(path)?;
    match target.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= items.len())
                    .ok_or_else(|| format!("index {last} is out of range"))?
            };
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!("parent {parent:?} does not exist")),
    }
}

fn take(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split(path)?;
    let missing = || format!("path {path} does not exist");
    match target.pointer_mut(parent) {
        Some(Value::Object(map)) => map.remove(&last).ok_or_else(missing),
        Some(Value::Array(items)) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => Ok(items.remove(i)),
            _ => Err(missing()),
        },
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_merges_maps_and_deletes_nulls() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(t, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_edits_lists_and_tests() {
        let mut t = json!({"metadata": {"finalizers": ["a", "b"]}});
        json_patch(
            &mut t,
            &json!([
                {"op": "test", "path": "/metadata/finalizers/0", "value": "a"},
                {"op": "remove", "path": "/metadata/finalizers/0"},
                {"op": "add", "path": "/metadata/finalizers/-", "value": "c"},
            ]),
        )
        .expect("patch applies");
        assert_eq!(t, json!({"metadata": {"finalizers": ["b", "c"]}}));
        let err = json_patch(
            &mut t,
            &json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "z"}]),
        );
        assert!(err.expect_err("failed test op").contains("test failed"));
    }
}
