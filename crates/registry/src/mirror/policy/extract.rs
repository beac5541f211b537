//! The `extract` template: what of a tag the order compares, written as Go's
//! `Regexp.ExpandString` reads it, since that is what Flux runs on the pattern's first match.
//!
//! `regex::Captures::expand` is close but not the same: it reads `$01` as group 1 (Go: the
//! group *named* `01`), accepts any name inside `${…}` (Go: only letters, digits and `_`, else
//! the `$` is literal text) and reads `${}` as a reference (Go: literal). So the template is
//! parsed here once, with Go's rules, and every reference must name a group the pattern has:
//! Go would silently expand an unknown name to nothing, which is never what a user meant.

use regex::{Captures, Regex};

/// A parsed template: literal text and references to the pattern's groups.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Group(usize),
}

impl Template {
    /// Parses `template` against `pattern`'s groups. The error names the reference.
    pub(crate) fn parse(template: &str, pattern: &Regex) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some((before, after)) = rest.split_once('$') {
            text.push_str(before);
            rest = after;
            if let Some(after_dollar) = rest.strip_prefix('$') {
                text.push('$');
                rest = after_dollar;
                continue;
            }
            let Some((name, after_name)) = reference(rest) else {
                text.push('$');
                continue;
            };
            rest = after_name;
            let group = group_index(name, pattern).ok_or_else(|| {
                let groups = describe_groups(pattern);
                format!("${name} names no group of the pattern (it has {groups})")
            })?;
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Group(group));
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template { pieces })
    }

    /// The template with the match's groups filled in; a group that did not take part in the
    /// match is empty, as in Go.
    pub(crate) fn expand(&self, captures: &Captures<'_>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Group(index) => {
                    if let Some(m) = captures.get(*index) {
                        out.push_str(m.as_str());
                    }
                }
            }
        }
        out
    }
}

/// Go's `extract`: after a `$`, the longest run of letters, digits and `_`, optionally in
/// braces. `None` when there is no such name (the `$` is then literal text).
fn reference(text: &str) -> Option<(&str, &str)> {
    let (braced, body) = match text.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let end = body
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    if end == 0 {
        return None;
    }
    let (name, after) = body.split_at(end);
    if braced {
        let after = after.strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, after))
}

/// A name of ASCII digits without a leading zero is a group number (Go stops at nine digits);
/// anything else is a group name.
fn group_index(name: &str, pattern: &Regex) -> Option<usize> {
    let numeric = name.bytes().all(|b| b.is_ascii_digit())
        && !(name.len() > 1 && name.starts_with('0'))
        && name.len() <= 9;
    if numeric {
        let index: usize = name.parse().ok()?;
        return (index < pattern.captures_len()).then_some(index);
    }
    pattern
        .capture_names()
        .position(|candidate| candidate == Some(name))
}

fn describe_groups(pattern: &Regex) -> String {
    let numbered = pattern.captures_len() - 1;
    let names: Vec<String> = pattern
        .capture_names()
        .flatten()
        .map(|n| format!("${n}"))
        .collect();
    let mut text = format!("$0 to ${numbered}");
    if numbered == 0 {
        text = "only $0, the whole match".into();
    }
    if !names.is_empty() {
        text.push_str(&format!(" and {}", names.join(", ")));
    }
    text
}
