//! Versions and version ranges read the way Flux's `ImagePolicy` reads them: tags through
//! `fluxcd/pkg/version.ParseVersion`, ranges through `Masterminds/semver` v3 constraints.
//! `semver::VersionReq` is Cargo's dialect (a bare `1.2` means `^1.2`, no `||`, no hyphen
//! ranges, other prerelease rules), so the range grammar and checks are our own, on top of
//! `semver::Version`. docs/design/tag-policy.md lists the rules with examples.

use std::cmp::Ordering;
use std::fmt;

use semver::{BuildMetadata, Prerelease, Version};

/// A tag as a version, or `None` when Flux's semver policy would skip it: Flux wants at least
/// two dots, then accepts a leading `v`, leading zeros in the numbers, a missing patch
/// (`1.2-rc.1` is `1.2.0-rc.1`) and build metadata.
pub(crate) fn parse_tag(tag: &str) -> Option<Version> {
    if tag.matches('.').count() < 2 {
        return None;
    }
    parse_loose(tag).ok()
}

/// Masterminds' `NewVersion`: `v?N(.N)?(.N)?(-pre)?(+build)?`, missing numbers are 0.
pub(crate) fn parse_loose(text: &str) -> Result<Version, String> {
    let body = text.strip_prefix('v').unwrap_or(text);
    let (body, build) = match body.split_once('+') {
        Some((body, build)) => (body, Some(build)),
        None => (body, None),
    };
    let (numbers, pre) = match body.split_once('-') {
        Some((numbers, pre)) => (numbers, Some(pre)),
        None => (body, None),
    };
    let parts: Vec<&str> = numbers.split('.').collect();
    if parts.len() > 3 {
        return Err(format!("{text:?} has more than three version numbers"));
    }
    let mut values = [0u64; 3];
    for (slot, part) in values.iter_mut().zip(&parts) {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{text:?} is not a version (expected numbers like 1.2.3)"
            ));
        }
        *slot = part
            .parse()
            .map_err(|_| format!("{text:?}: {part} is too large for a version number"))?;
    }
    let pre = match pre {
        None => Prerelease::EMPTY,
        Some(pre) => identifiers(pre)
            .and_then(|()| Prerelease::new(pre).map_err(|e| e.to_string()))
            .map_err(|e| format!("{text:?}: prerelease {pre:?}: {e}"))?,
    };
    let build = match build {
        None => BuildMetadata::EMPTY,
        Some(build) => identifiers(build)
            .and_then(|()| BuildMetadata::new(build).map_err(|e| e.to_string()))
            .map_err(|e| format!("{text:?}: build metadata {build:?}: {e}"))?,
    };
    let [major, minor, patch] = values;
    Ok(Version {
        major,
        minor,
        patch,
        pre,
        build,
    })
}

/// Dot-separated, non-empty identifiers of letters, digits and '-' (the semver crate checks
/// the rest, such as leading zeros in numeric prerelease identifiers, as Masterminds does).
fn identifiers(text: &str) -> Result<(), String> {
    let valid = text
        .split('.')
        .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if valid {
        Ok(())
    } else {
        Err("expected dot-separated identifiers of letters, digits and '-'".into())
    }
}

/// Masterminds compares precedence only: build metadata never orders two versions.
pub(crate) fn compare(a: &Version, b: &Version) -> Ordering {
    a.cmp_precedence(b)
}

/// A Masterminds range: alternatives joined by `||`, each a list of comparators that must all
/// hold.
#[derive(Debug, Clone)]
pub(crate) struct Range {
    text: String,
    alternatives: Vec<Alternative>,
}

#[derive(Debug, Clone)]
struct Alternative {
    comparators: Vec<Comparator>,
    /// Masterminds lets prerelease versions through a whole `&&` group as soon as one of its
    /// comparators names a prerelease (`>=1.0.0-0 <2.0.0` includes `1.5.0-rc.1`).
    includes_prerelease: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `=` or nothing: equality, or `~` when the version has a wildcard.
    Equal,
    NotEqual,
    Greater,
    Less,
    GreaterOrEqual,
    LessOrEqual,
    Tilde,
    Caret,
}

/// Which part of the comparator's version was a wildcard or missing (`1` is `1.x.x`). The
/// checks depend on it: `>1.2` is `>=1.3.0`, and `<=1.2` is `<1.3.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wild {
    None,
    Major,
    Minor,
    Patch,
}

#[derive(Debug, Clone)]
struct Comparator {
    op: Op,
    version: Version,
    wild: Wild,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Range {
    /// Parses a range as Masterminds does; the error says what is wrong, without the input.
    pub(crate) fn parse(text: &str) -> Result<Range, String> {
        let alternatives = text
            .split("||")
            .map(|part| {
                let comparators = parse_alternative(part)?;
                let includes_prerelease = comparators.iter().any(|c| !c.version.pre.is_empty());
                Ok(Alternative {
                    comparators,
                    includes_prerelease,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Range {
            text: text.to_string(),
            alternatives,
        })
    }

    /// Whether `version` is in the range.
    pub(crate) fn matches(&self, version: &Version) -> bool {
        self.alternatives.iter().any(|alternative| {
            if !version.pre.is_empty() && !alternative.includes_prerelease {
                return false;
            }
            alternative.comparators.iter().all(|c| c.matches(version))
        })
    }
}

const OPERATORS: [(&str, Op); 11] = [
    ("!=", Op::NotEqual),
    (">=", Op::GreaterOrEqual),
    ("=>", Op::GreaterOrEqual),
    ("<=", Op::LessOrEqual),
    ("=<", Op::LessOrEqual),
    ("~>", Op::Tilde),
    ("=", Op::Equal),
    (">", Op::Greater),
    ("<", Op::Less),
    ("~", Op::Tilde),
    ("^", Op::Caret),
];

fn is_version_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '*')
}

/// One `||` alternative: comparators separated by spaces or a comma, where `A - B` (spaces
/// around the hyphen, no operators) is `>=A, <=B`.
fn parse_alternative(text: &str) -> Result<Vec<Comparator>, String> {
    let mut rest = text;
    let mut comparators = Vec::new();
    loop {
        rest = rest.trim_start();
        let op = OPERATORS
            .iter()
            .find(|(symbol, _)| rest.starts_with(symbol))
            .map(|(symbol, op)| {
                rest = rest[symbol.len()..].trim_start();
                (*symbol, *op)
            });
        let (version, after) = split_version(rest);
        if version.is_empty() {
            return Err(match (op, rest.chars().next()) {
                (Some((symbol, _)), _) => format!("{symbol:?} is not followed by a version"),
                (None, None) => "a constraint is empty (check for a stray ',' or '||')".into(),
                (None, Some(c)) => format!("unexpected {c:?} where a version should be"),
            });
        }
        rest = after;
        let trimmed = rest.trim_start();
        let hyphen = op.is_none()
            && trimmed.len() < rest.len()
            && trimmed.starts_with('-')
            && trimmed[1..].starts_with(char::is_whitespace);
        if hyphen {
            let (upper, after) = split_version(trimmed[1..].trim_start());
            if upper.is_empty() {
                return Err(format!(
                    "the hyphen range starting at {version:?} has no upper version"
                ));
            }
            comparators.push(parse_comparator(Op::GreaterOrEqual, version)?);
            comparators.push(parse_comparator(Op::LessOrEqual, upper)?);
            rest = after;
        } else {
            let op = op.map_or(Op::Equal, |(_, op)| op);
            comparators.push(parse_comparator(op, version)?);
        }
        let trimmed = rest.trim_start();
        let had_space = trimmed.len() < rest.len();
        rest = trimmed;
        if rest.is_empty() {
            return Ok(comparators);
        }
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma;
        } else if !had_space {
            return Err(format!(
                "expected a space or ',' before {rest:?} (after {version:?})"
            ));
        }
    }
}

fn split_version(text: &str) -> (&str, &str) {
    let end = text.find(|c| !is_version_char(c)).unwrap_or(text.len());
    text.split_at(end)
}

fn is_wildcard(part: &str) -> bool {
    matches!(part, "x" | "X" | "*")
}

/// A comparator's version: a missing or wildcard number makes it "dirty" at that position, and
/// it is then read as zeros from there (keeping any prerelease, dropping build metadata).
fn parse_comparator(op: Op, text: &str) -> Result<Comparator, String> {
    let body = text.strip_prefix('v').unwrap_or(text);
    let numbers_end = body.find(['-', '+']).unwrap_or(body.len());
    let (numbers, tail) = body.split_at(numbers_end);
    let parts: Vec<&str> = numbers.split('.').collect();
    let wild_at = (0..3).find(|&i| parts.get(i).is_none_or(|p| is_wildcard(p)));
    let wild = match wild_at {
        None => Wild::None,
        Some(0) => Wild::Major,
        Some(1) => Wild::Minor,
        Some(_) => Wild::Patch,
    };
    let version = match wild_at {
        None => parse_loose(text),
        Some(at) => {
            if parts.len() > 3 {
                return Err(format!("{text:?} has more than three version numbers"));
            }
            // Masterminds ignores what follows the first wildcard (`1.x.3` is `1.x`) but still
            // wants it to be a number or a wildcard.
            if let Some(bad) = parts.iter().find(|p| {
                p.is_empty() || !(is_wildcard(p) || p.bytes().all(|b| b.is_ascii_digit()))
            }) {
                return Err(format!(
                    "{text:?}: {bad:?} is neither a number nor x, X or *"
                ));
            }
            let pre = tail.split_once('+').map_or(tail, |(pre, _)| pre);
            let mut kept: Vec<&str> = parts[..at].to_vec();
            kept.resize(3, "0");
            parse_loose(&format!("{}{pre}", kept.join(".")))
        }
    }?;
    Ok(Comparator { op, version, wild })
}

impl Comparator {
    fn matches(&self, v: &Version) -> bool {
        let c = &self.version;
        let dirty = self.wild != Wild::None;
        let minor_dirty = self.wild == Wild::Minor;
        let patch_dirty = self.wild == Wild::Patch;
        let order = compare(v, c);
        match self.op {
            Op::Equal if dirty => self.tilde(v),
            Op::Equal => order == Ordering::Equal,
            Op::NotEqual => {
                if dirty {
                    if v.major != c.major {
                        return true;
                    }
                    if minor_dirty {
                        return false;
                    }
                    if v.minor != c.minor {
                        return true;
                    }
                    if patch_dirty {
                        // `!=1.2` excludes every 1.2.z release; a prerelease differs by its tag.
                        return v.pre != c.pre;
                    }
                    if v.patch != c.patch {
                        return true;
                    }
                }
                order != Ordering::Equal
            }
            Op::Greater => {
                if !dirty {
                    return order == Ordering::Greater;
                }
                match v.major.cmp(&c.major) {
                    Ordering::Greater => true,
                    Ordering::Less => false,
                    Ordering::Equal if minor_dirty => false,
                    Ordering::Equal if patch_dirty => v.minor > c.minor,
                    Ordering::Equal => order == Ordering::Greater,
                }
            }
            Op::Less => order == Ordering::Less,
            Op::GreaterOrEqual => order != Ordering::Less,
            Op::LessOrEqual => {
                if !dirty {
                    return order != Ordering::Greater;
                }
                !(v.major > c.major || (v.major == c.major && v.minor > c.minor && !minor_dirty))
            }
            Op::Tilde => self.tilde(v),
            Op::Caret => self.caret(v),
        }
    }

    /// `~1.2.3` is `>=1.2.3 <1.3.0`, `~1.2` and `~1` keep the major (and minor when given),
    /// `~*` (or `~0.0.0`) is anything.
    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if compare(v, c) == Ordering::Less {
            return false;
        }
        let any = c.major == 0 && c.minor == 0 && c.patch == 0;
        if any && !matches!(self.wild, Wild::Minor | Wild::Patch) {
            return true;
        }
        v.major == c.major && (v.minor == c.minor || self.wild == Wild::Minor)
    }

    /// `^1.2.3` is `>=1.2.3 <2.0.0`; below 1.0.0 the first non-zero number (or the last one
    /// given) must stay: `^0.2.3` is `<0.3.0`, `^0.0.3` is `=0.0.3`, `^0.0` is `<0.1.0`.
    fn caret(&self, v: &Version) -> bool {
        let c = &self.version;
        if compare(v, c) == Ordering::Less {
            return false;
        }
        if c.major > 0 || self.wild == Wild::Minor {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.wild == Wild::Patch {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        v.patch == c.patch
    }
}

#[cfg(test)]
#[path = "semver_tests.rs"]
mod tests;
