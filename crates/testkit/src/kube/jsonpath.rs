//! The JSONPath subset of CRD printer columns: `.a.b`, `[N]`, `[*]`, `['key']` and filters
//! `[?(@.field=="value")]` / `!=`.

use serde_json::Value;

/// Every value `path` selects in `obj`, in document order.
pub fn find<'a>(obj: &'a Value, path: &str) -> Result<Vec<&'a Value>, String> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut current = vec![obj];
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            rest = &r[end..];
            if key.is_empty() {
                continue;
            }
            current = current.into_iter().filter_map(|v| v.get(key)).collect();
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = closing_bracket(r).ok_or_else(|| format!("unclosed '[' in {path:?}"))?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            current = index(current, inner).map_err(|e| format!("{e} in {path:?}"))?;
        } else {
            return Err(format!("unexpected {rest:?} in {path:?}"));
        }
    }
    Ok(current)
}

/// The `]` that closes the bracket, skipping any inside quotes.
fn closing_bracket(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ']') => return Some(i),
            _ => {}
        }
    }
    None
}

fn index<'a>(current: Vec<&'a Value>, inner: &str) -> Result<Vec<&'a Value>, String> {
    let inner = inner.trim();
    if inner == "*" {
        return Ok(current
            .into_iter()
            .flat_map(|v| match v {
                Value::Array(a) => a.iter().collect::<Vec<_>>(),
                Value::Object(m) => m.values().collect(),
                _ => Vec::new(),
            })
            .collect());
    }
    if let Some(filter) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
        let (lhs, equal, rhs) = if let Some((l, r)) = filter.split_once("==") {
            (l, true, r)
        } else if let Some((l, r)) = filter.split_once("!=") {
            (l, false, r)
        } else {
            return Err(format!("unsupported filter {filter:?}"));
        };
        let field = lhs
            .trim()
            .strip_prefix('@')
            .ok_or_else(|| format!("filter {filter:?} must start with @"))?
            .to_string();
        let expected = literal(rhs.trim());
        return Ok(current
            .into_iter()
            .filter_map(Value::as_array)
            .flatten()
            .filter(|item| {
                let actual = find(item, &field).ok().and_then(|v| v.first().copied());
                (actual == Some(&expected)) == equal
            })
            .collect());
    }
    if let Some(key) = quoted(inner) {
        return Ok(current.into_iter().filter_map(|v| v.get(key)).collect());
    }
    let i: i64 = inner
        .parse()
        .map_err(|_| format!("unsupported index [{inner}]"))?;
    Ok(current
        .into_iter()
        .filter_map(Value::as_array)
        .filter_map(|a| {
            let idx = if i < 0 { a.len() as i64 + i } else { i };
            usize::try_from(idx).ok().and_then(|idx| a.get(idx))
        })
        .collect())
}

fn quoted(s: &str) -> Option<&str> {
    s.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
}

fn literal(s: &str) -> Value {
    if let Some(q) = quoted(s) {
        return Value::String(q.to_string());
    }
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn printer_column_paths() {
        let obj = json!({"spec": {"source": {"image": "a:1"}, "tags": ["x", "y"]},
            "status": {"conditions": [{"type": "Synced", "status": "False"},
                                      {"type": "Ready", "status": "True"}]}});
        let one = |p: &str| {
            find(&obj, p)
                .expect("valid path")
                .first()
                .map(|v| (*v).clone())
        };
        assert_eq!(one(".spec.source.image"), Some(json!("a:1")));
        assert_eq!(
            one(r#".status.conditions[?(@.type=="Ready")].status"#),
            Some(json!("True"))
        );
        assert_eq!(
            one(".status.conditions[?(@.type=='Synced')].status"),
            Some(json!("False"))
        );
        assert_eq!(one(".spec.tags[-1]"), Some(json!("y")));
        assert_eq!(find(&obj, ".spec.tags[*]").expect("valid path").len(), 2);
        assert_eq!(one(".spec.missing"), None);
        assert!(find(&obj, ".spec[").is_err());
    }
}
