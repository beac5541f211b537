//! Just enough of the Kubernetes protobuf encoding to read what kubectl's typed clients send
//! (`kubectl create secret|configmap|namespace` POST `application/vnd.kubernetes.protobuf`
//! and do not fall back to JSON): the `k8s\0` envelope, then Secret, ConfigMap or Namespace
//! with the commonly set ObjectMeta fields. Answers stay JSON, which those clients accept.

use base64::Engine;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// One field: number and either a varint or a length-delimited payload.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint longer than 64 bits".into())
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (number, wire) = (key >> 3, key & 7);
        let field = match wire {
            0 => Field::Varint(varint(buf, &mut pos)?),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|e| e.to_string())?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated field")?;
                let bytes = &buf[pos..end];
                pos = end;
                Field::Bytes(bytes)
            }
            1 => {
                pos += 8;
                Field::Varint(0)
            }
            5 => {
                pos += 4;
                Field::Varint(0)
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        out.push((number, field));
    }
    if pos > buf.len() {
        return Err("truncated message".into());
    }
    Ok(out)
}

fn string(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|e| format!("field is not UTF-8: {e}"))
}

/// A `map<string, string|bytes>` entry: key 1, value 2.
fn map_entry(bytes: &[u8]) -> Result<(String, Vec<u8>), String> {
    let (mut key, mut value) = (String::new(), Vec::new());
    for (n, f) in fields(bytes)? {
        match (n, f) {
            (1, Field::Bytes(b)) => key = string(b)?,
            (2, Field::Bytes(b)) => value = b.to_vec(),
            _ => {}
        }
    }
    Ok((key, value))
}

fn object_meta(bytes: &[u8]) -> Result<Value, String> {
    let mut meta = Map::new();
    let (mut labels, mut annotations, mut finalizers) = (Map::new(), Map::new(), Vec::new());
    for (n, f) in fields(bytes)? {
        let Field::Bytes(b) = f else { continue };
        match n {
            1 => _ = meta.insert("name".into(), string(b)?.into()),
            2 => _ = meta.insert("generateName".into(), string(b)?.into()),
            3 => _ = meta.insert("namespace".into(), string(b)?.into()),
            6 => _ = meta.insert("resourceVersion".into(), string(b)?.into()),
            11 | 12 => {
                let (k, v) = map_entry(b)?;
                let target = if n == 11 {
                    &mut labels
                } else {
                    &mut annotations
                };
                target.insert(k, string(&v)?.into());
            }
            14 => finalizers.push(Value::from(string(b)?)),
            _ => {}
        }
    }
    for (key, value) in [("labels", labels), ("annotations", annotations)] {
        if !value.is_empty() {
            meta.insert(key.into(), Value::Object(value));
        }
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(meta))
}

/// Whether a request body is protobuf-encoded.
pub fn is_protobuf(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

/// Decodes an enveloped Secret, ConfigMap or Namespace into its JSON form.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body.strip_prefix(MAGIC).ok_or("no k8s protobuf envelope")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in fields(envelope)? {
        match (n, f) {
            (1, Field::Bytes(type_meta)) => {
                for (tn, tf) in fields(type_meta)? {
                    match (tn, tf) {
                        (1, Field::Bytes(b)) => api_version = string(b)?,
                        (2, Field::Bytes(b)) => kind = string(b)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let mut obj = json!({"apiVersion": api_version, "kind": kind});
    let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
    let (mut data, mut other) = (Map::new(), Map::new());
    for (n, f) in fields(raw)? {
        match (kind.as_str(), n, f) {
            (_, 1, Field::Bytes(b)) => obj["metadata"] = object_meta(b)?,
            ("Secret", 2, Field::Bytes(b)) => {
                let (k, v) = map_entry(b)?;
                data.insert(k, b64(&v).into());
            }
            ("Secret", 3, Field::Bytes(b)) => obj["type"] = string(b)?.into(),
            ("Secret", 4, Field::Bytes(b)) | ("ConfigMap", 2, Field::Bytes(b)) => {
                let (k, v) = map_entry(b)?;
                let target = if kind == "Secret" {
                    &mut other
                } else {
                    &mut data
                };
                target.insert(k, string(&v)?.into());
            }
            ("ConfigMap", 3, Field::Bytes(b)) => {
                let (k, v) = map_entry(b)?;
                other.insert(k, b64(&v).into());
            }
            ("Secret", 5, Field::Varint(v)) | ("ConfigMap", 4, Field::Varint(v)) => {
                obj["immutable"] = (v != 0).into()
            }
            ("Secret" | "ConfigMap" | "Namespace", _, _) => {}
            (other_kind, _, _) => {
                return Err(format!(
                    "protobuf bodies of kind {other_kind:?} are not supported; send JSON"
                ));
            }
        }
    }
    if !data.is_empty() {
        obj["data"] = Value::Object(data);
    }
    if !other.is_empty() {
        let key = if kind == "Secret" {
            "stringData"
        } else {
            "binaryData"
        };
        obj[key] = Value::Object(other);
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(n << 3) | 2, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_an_enveloped_secret() {
        let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
        let meta = field(1, b"regcred");
        let entry = [field(1, b"k"), field(2, b"\x00\x01")].concat();
        let secret = [field(1, &meta), field(2, &entry), field(3, b"Opaque")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &secret)].concat();
        let obj = decode(&body).expect("a valid protobuf Secret");
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"},
                   "type": "Opaque", "data": {"k": "AAE="}})
        );
    }
}
