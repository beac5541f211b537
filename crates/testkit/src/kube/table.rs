//! `meta.k8s.io/v1` Table output (`kubectl get`'s server-side printing), from a resource's
//! printer columns.

use serde_json::{Value, json};

use super::jsonpath;
use super::resources::{PrinterColumn, ResourceType};
use crate::util::unix_now;

/// Whether the client asked for a Table (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`).
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').next().is_some_and(|first| {
        let params: Vec<&str> = first.split(';').map(str::trim).collect();
        params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
    })
}

/// Whether the client asked for metadata only (`as=PartialObjectMetadata[List]`).
pub fn wants_metadata(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=PartialObjectMetadata"))
}

/// An object reduced to `PartialObjectMetadata`.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

pub fn table(ty: &ResourceType, objects: &[Value], resource_version: Option<String>) -> Value {
    let mut defs = vec![json!({
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace.",
    })];
    defs.extend(ty.columns.iter().map(|c| {
        json!({"name": c.name, "type": c.type_, "format": c.format, "priority": c.priority,
               "description": c.description})
    }));
    let rows: Vec<Value> = objects.iter().map(|o| row(ty, o)).collect();
    let mut metadata = json!({});
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = rv.into();
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

fn row(ty: &ResourceType, obj: &Value) -> Value {
    let name = obj
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::Null);
    let mut cells = vec![name];
    cells.extend(ty.columns.iter().map(|c| cell(c, obj)));
    json!({"cells": cells, "object": partial_metadata(obj)})
}

/// What the API server puts in a cell: `null` (kubectl prints `<none>`) when the path
/// selects nothing, an age for dates, the value as JSON for other types.
fn cell(col: &PrinterColumn, obj: &Value) -> Value {
    let Some(value) = jsonpath::find(obj, &col.json_path)
        .ok()
        .and_then(|found| found.first().copied())
    else {
        return Value::Null;
    };
    match (col.type_.as_str(), value) {
        ("date", Value::String(s)) => match parse_rfc3339(s) {
            Some(t) => human_duration(unix_now() as i64 - t).into(),
            None => Value::Null,
        },
        ("string", Value::String(s)) => s.clone().into(),
        ("string", other) => other.to_string().into(),
        ("integer", v) if v.is_i64() || v.is_u64() => v.clone(),
        ("number", v) if v.is_number() => v.clone(),
        ("boolean", v) if v.is_boolean() => v.clone(),
        (_, Value::String(s)) => s.clone().into(),
        (_, other) => other.to_string().into(),
    }
}

/// `2026-12-03T10:41:09Z` (fractions and offsets allowed) → Unix seconds.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|p| p.parse::<i64>().ok());
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let tail = s.get(19..)?;
    let tail = tail.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match tail {
        "Z" | "z" => 0,
        t if t.len() == 6 => {
            let sign = if t.starts_with('-') { -1 } else { 1 };
            let h: i64 = t.get(1..3)?.parse().ok()?;
            let mi: i64 = t.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + mi * 60)
        }
        _ => return None,
    };
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

/// The API server's `HumanDuration`: `5s`, `3m20s`, `3h`, `2d4h`, `400d`, `2y30d`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let secs = secs.max(0);
    let (minutes, hours) = (secs / 60, secs / 3600);
    if secs < 120 {
        format!("{secs}s")
    } else if minutes < 10 {
        match secs % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        }
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        match days {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(3 * 3600), "3h");
        assert_eq!(human_duration(52 * 3600), "2d4h");
    }

    #[test]
    fn parses_timestamps() {
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.5+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn accept_headers() {
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
        assert!(wants_metadata(
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
        ));
    }
}
