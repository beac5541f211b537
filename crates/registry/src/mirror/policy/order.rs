//! The three orders of a tag policy, as Flux's `internal/policy` applies them, extended from
//! "the newest tag" to "the newest N": the candidates are ranked newest first and the caller
//! keeps the head.

use super::PolicyError;
use super::semver::{self, Range};
use crate::mirror::spec::SortOrder;

/// How candidates are ranked.
#[derive(Debug, Clone)]
pub(crate) enum Order {
    /// Versions in the range, highest first; values that are not versions are skipped.
    Semver(Range),
    /// Byte-wise string order.
    Alphabetical(SortOrder),
    /// Values read as floating-point numbers; one that is not a number fails the policy.
    Numerical(SortOrder),
}

/// A tag that passed the exclusions and the pattern, with what the order compares.
#[derive(Debug, Clone)]
pub(crate) struct Candidate<'a> {
    pub tag: &'a str,
    pub value: String,
    /// Where the tag was in the source's list: ties are broken the way Flux's loops break them.
    pub position: usize,
}

impl Order {
    /// `candidates` ranked newest first (semver drops those out of range or not versions).
    pub(crate) fn rank<'a>(
        &self,
        candidates: Vec<Candidate<'a>>,
    ) -> Result<Vec<Candidate<'a>>, PolicyError> {
        match self {
            Order::Semver(range) => {
                let mut versions: Vec<_> = candidates
                    .into_iter()
                    .filter_map(|c| semver::parse_tag(&c.value).map(|v| (v, c)))
                    .filter(|(v, _)| range.matches(v))
                    .collect();
                // Flux keeps the first of equal versions (`1.2.3` and `v1.2.3`): it only
                // replaces its pick with a strictly greater one.
                versions.sort_by(|(va, a), (vb, b)| {
                    semver::compare(vb, va).then(a.position.cmp(&b.position))
                });
                Ok(versions.into_iter().map(|(_, c)| c).collect())
            }
            Order::Alphabetical(order) => {
                let mut ranked = candidates;
                ranked.sort_by(|a, b| {
                    let by_value = match order {
                        SortOrder::Asc => b.value.as_bytes().cmp(a.value.as_bytes()),
                        SortOrder::Desc => a.value.as_bytes().cmp(b.value.as_bytes()),
                    };
                    by_value.then(a.position.cmp(&b.position))
                });
                Ok(ranked)
            }
            Order::Numerical(order) => {
                let mut numbers = candidates
                    .into_iter()
                    .map(|c| match parse_number(&c.value) {
                        Some(n) => Ok((n, c)),
                        None => Err(PolicyError::NotANumber {
                            tag: c.tag.to_string(),
                            value: c.value.clone(),
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                // Flux's loop lets a later equal value replace its pick, in either order.
                numbers.sort_by(|(na, a), (nb, b)| {
                    let by_value = match order {
                        SortOrder::Asc => nb.total_cmp(na),
                        SortOrder::Desc => na.total_cmp(nb),
                    };
                    by_value.then(b.position.cmp(&a.position))
                });
                Ok(numbers.into_iter().map(|(_, c)| c).collect())
            }
        }
    }

    /// The range, for messages.
    pub(crate) fn range(&self) -> Option<&Range> {
        match self {
            Order::Semver(range) => Some(range),
            _ => None,
        }
    }
}

/// Go's `strconv.ParseFloat` as far as tags can spell it: decimal and exponent forms, `inf`;
/// a value out of `f64`'s range is an error there too. NaN is refused: it has no place in an
/// order (Go's comparisons with it are all false, which makes Flux's pick depend on the list's
/// order). Go's hexadecimal floats (`0x1p4`) are not read.
fn parse_number(text: &str) -> Option<f64> {
    let value: f64 = text.parse().ok()?;
    if value.is_nan() {
        return None;
    }
    if value.is_infinite() {
        let unsigned = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
        if unsigned != "inf" && unsigned != "infinity" {
            return None;
        }
    }
    Some(value)
}
