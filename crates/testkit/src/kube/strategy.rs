//! What the API server's per-resource strategies add on write: a namespace's phase and
//! finalizer, a CRD's accepted names and conditions (and the resource types it serves).

use serde_json::{Value, json};

use super::resources::{self, ResourceType};
use super::status::ApiError;
use crate::util::{rfc3339, unix_now};

/// What the real server's strategies add: a namespace's phase, a CRD's accepted names and
/// conditions (and the types it serves from now on).
pub fn prepare(
    types: &mut Vec<ResourceType>,
    ty: &ResourceType,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if ty.custom {
        return Ok(());
    }
    if ty.group.is_empty() && ty.plural == "namespaces" {
        obj["spec"]["finalizers"] = json!(["kubernetes"]);
        let phase = if is_deleting(obj) {
            "Terminating"
        } else {
            "Active"
        };
        obj["status"] = json!({"phase": phase});
    } else if ty.plural == "customresourcedefinitions" {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let defined = resources::from_crd(obj).map_err(|e| ApiError::invalid(ty, name, e))?;
        if let Some(old) = old
            && old.pointer("/spec/group") != obj.pointer("/spec/group")
        {
            return Err(ApiError::invalid(
                ty,
                name,
                "spec.group: field is immutable",
            ));
        }
        let stored: Vec<Value> = obj
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| v["storage"] == true)
            .map(|v| v["name"].clone())
            .collect();
        let now = rfc3339(unix_now());
        let condition = |type_: &str, reason: &str, message: &str| {
            json!({"type": type_, "status": "True", "reason": reason, "message": message,
                   "lastTransitionTime": now})
        };
        obj["status"] = json!({
            "acceptedNames": obj["spec"]["names"].clone(),
            "storedVersions": stored,
            "conditions": [
                condition("NamesAccepted", "NoConflicts", "no conflicts found for the names"),
                condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ],
        });
        if let Some(old) = old {
            // Keep the transition times of conditions that did not change.
            if old.pointer("/status/conditions").is_some() {
                obj["status"]["conditions"] = old["status"]["conditions"].clone();
            }
        }
        if let Some(first) = defined.first() {
            let (g, p) = (first.group.clone(), first.plural.clone());
            types.retain(|t| !(t.custom && t.group == g && t.plural == p));
        }
        types.extend(defined);
    }
    Ok(())
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

pub fn finalizers_empty(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
}

pub fn new_uid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Five characters from the alphabet the API server uses for `generateName`.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}
