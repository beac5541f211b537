//! `metadata.managedFields`: which manager set which fields. Fields are tracked as leaf paths
//! (a scalar, a list — lists are atomic here — or an empty map) and written as `FieldsV1`.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::util::{rfc3339, unix_now};

/// A path of map keys from the object's root.
pub type Path = Vec<String>;

/// Who is writing, and how.
#[derive(Clone, Debug)]
pub struct FieldOwner {
    pub manager: String,
    /// `Apply` (server-side apply) or `Update` (create, update, patch).
    pub operation: &'static str,
    pub subresource: Option<String>,
    /// For `Apply`: the fields of the applied configuration (the manager's whole set from now
    /// on). For `Update`: `None`, the fields the write changed are added to the manager's set.
    pub applied: Option<BTreeSet<Path>>,
}

impl FieldOwner {
    pub fn update(manager: &str, subresource: Option<&str>) -> Self {
        FieldOwner {
            manager: manager.to_string(),
            operation: "Update",
            subresource: subresource.map(str::to_string),
            applied: None,
        }
    }

    fn same_entry(&self, entry: &Value) -> bool {
        entry["manager"] == self.manager.as_str()
            && entry["operation"] == self.operation
            && entry.get("subresource").and_then(Value::as_str) == self.subresource.as_deref()
    }
}

/// Metadata the server owns; never part of anyone's field set.
const SERVER_METADATA: [&str; 10] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The leaf paths an object (or apply configuration) sets.
pub fn leaves(obj: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    if let Some(map) = obj.as_object() {
        for (key, value) in map {
            match key.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" => {
                    if let Some(meta) = value.as_object() {
                        for (mk, mv) in meta {
                            if !SERVER_METADATA.contains(&mk.as_str()) && !mv.is_null() {
                                walk(mv, &mut vec!["metadata".into(), mk.clone()], &mut out);
                            }
                        }
                    }
                }
                _ => walk(value, &mut vec![key.clone()], &mut out),
            }
        }
    }
    out
}

fn walk(value: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
    match value.as_object() {
        Some(map) if !map.is_empty() => {
            for (k, v) in map {
                path.push(k.clone());
                walk(v, path, out);
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The leaf paths whose value differs between `old` and `new` (present in `new`).
fn changed(old: Option<&Value>, new: &Value) -> BTreeSet<Path> {
    leaves(new)
        .into_iter()
        .filter(|p| old.and_then(|o| get(o, p)) != get(new, p))
        .collect()
}

pub fn get<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.get(k))
}

/// Removes the value at `path`, if present.
pub fn remove(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for k in parents {
        match cur.get_mut(k) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(map) = cur.as_object_mut() {
        map.remove(last);
    }
}

/// `FieldsV1` for a set of leaves: `{"f:spec":{".":{},"f:image":{}}}`.
pub fn to_fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut cur = &mut root;
        for (i, key) in path.iter().enumerate() {
            let node = cur
                .entry(format!("f:{key}"))
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(map) = node else { break };
            if i > 0 && i + 1 < path.len() {
                map.entry(".").or_insert_with(|| json!({}));
            }
            cur = map;
        }
    }
    // Top-level fields carry no "." marker, as the API server writes them.
    Value::Object(root)
}

/// The leaves of a `FieldsV1` set; list item keys (`k:`, `v:`, `i:`) collapse to their list.
pub fn from_fields_v1(fields: &Value) -> BTreeSet<Path> {
    fn rec(node: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
        let children: Vec<(&String, &Value)> = node
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| k.starts_with("f:")).collect())
            .unwrap_or_default();
        let has_items = node.as_object().is_some_and(|m| {
            m.keys()
                .any(|k| k.starts_with("k:") || k.starts_with("v:") || k.starts_with("i:"))
        });
        if children.is_empty() || has_items {
            if !path.is_empty() {
                out.insert(path.clone());
            }
            return;
        }
        for (k, v) in children {
            path.push(k[2..].to_string());
            rec(v, path, out);
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    rec(fields, &mut Vec::new(), &mut out);
    out
}

pub fn entries(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The fields of `owner`'s own `Apply` entry in `obj`.
pub fn applied_by(obj: &Value, owner: &FieldOwner) -> BTreeSet<Path> {
    entries(obj)
        .iter()
        .find(|e| owner.same_entry(e))
        .map(|e| from_fields_v1(&e["fieldsV1"]))
        .unwrap_or_default()
}

/// Other managers owning `path`, by name.
pub fn other_owners(obj: &Value, owner: &FieldOwner, path: &Path) -> Vec<String> {
    entries(obj)
        .iter()
        .filter(|e| !owner.same_entry(e) && e["manager"] != owner.manager.as_str())
        .filter(|e| from_fields_v1(&e["fieldsV1"]).contains(path))
        .filter_map(|e| e["manager"].as_str().map(str::to_string))
        .collect()
}

/// Updates `new`'s managed fields for a write by `owner`, unless the client rewrote them
/// itself (which is how clients reset or migrate ownership).
pub fn record(new: &mut Value, old: Option<&Value>, owner: &FieldOwner, api_version: &str) {
    let old_entries = old.map(entries).unwrap_or_default();
    match (old, new.pointer("/metadata/managedFields")) {
        (Some(_), Some(sent)) if sent.as_array() != Some(&old_entries) => return,
        (None, _) | (Some(_), None) => new["metadata"]["managedFields"] = Value::Array(old_entries),
        _ => {}
    }
    let changed = changed(old, new);
    let mine = match &owner.applied {
        Some(applied) => applied.clone(),
        None => {
            let mut set = applied_by(new, owner);
            set.extend(changed.iter().cloned());
            set
        }
    };
    let mine_entry = (!mine.is_empty()).then(|| {
        let mut entry = json!({
            "manager": owner.manager,
            "operation": owner.operation,
            "apiVersion": api_version,
            "time": rfc3339(unix_now()),
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(&mine),
        });
        if let Some(sub) = &owner.subresource {
            entry["subresource"] = sub.clone().into();
        }
        entry
    });
    let mut kept: Vec<Value> = Vec::new();
    let mut mine_entry = mine_entry;
    for entry in entries(new) {
        if owner.same_entry(&entry) {
            // In its old place, so a repeated write leaves the list as it was.
            kept.extend(mine_entry.take());
            continue;
        }
        // Fields whose value this write changed now belong to the writer alone.
        let mut theirs = from_fields_v1(&entry["fieldsV1"]);
        let before = theirs.len();
        theirs.retain(|p| !changed.contains(p));
        if theirs.is_empty() {
            continue;
        }
        let mut entry = entry;
        if theirs.len() != before {
            entry["fieldsV1"] = to_fields_v1(&theirs);
        }
        kept.push(entry);
    }
    kept.extend(mine_entry);
    new["metadata"]["managedFields"] = Value::Array(kept);
}

/// Equal except for the resourceVersion and the times in managed fields.
pub fn same_ignoring_bookkeeping(old: &Value, new: &Value) -> bool {
    fn strip(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
            if let Some(entries) = meta.get_mut("managedFields").and_then(Value::as_array_mut) {
                for e in entries {
                    if let Some(e) = e.as_object_mut() {
                        e.remove("time");
                    }
                }
            }
        }
        v
    }
    strip(old) == strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_round_trips_leaves() {
        let obj = json!({"apiVersion": "v1", "kind": "X",
            "metadata": {"name": "n", "labels": {"a": "1"}},
            "spec": {"source": {"image": "i"}, "tags": ["a"], "empty": {}}});
        let set = leaves(&obj);
        let fields = to_fields_v1(&set);
        assert_eq!(
            fields,
            json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}},
                   "f:spec": {"f:source": {".": {}, "f:image": {}}, "f:tags": {}, "f:empty": {}}})
        );
        assert_eq!(from_fields_v1(&fields), set);
    }

    #[test]
    fn update_takes_changed_fields_from_other_managers() {
        let old = json!({"metadata": {"name": "n", "managedFields": [
            {"manager": "a", "operation": "Apply", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:x": {}, "f:y": {}}}}]},
            "spec": {"x": 1, "y": 2}});
        let mut new = old.clone();
        new["spec"]["x"] = 5.into();
        record(&mut new, Some(&old), &FieldOwner::update("b", None), "v1");
        let by = |m: &str| {
            entries(&new)
                .iter()
                .find(|e| e["manager"] == m)
                .map(|e| from_fields_v1(&e["fieldsV1"]))
                .unwrap_or_default()
        };
        assert_eq!(
            by("a"),
            BTreeSet::from([vec!["spec".to_string(), "y".to_string()]])
        );
        assert_eq!(
            by("b"),
            BTreeSet::from([vec!["spec".to_string(), "x".to_string()]])
        );
    }
}
