//! Choosing tags from a source's tag list the way Flux's `ImagePolicy` chooses one, generalised
//! to the newest `keep` tags.
//!
//! A tag goes through, in turn: the built-in exclusion of signature, attestation, SBOM and
//! referrers tags; the `exclude` expressions; the `pattern` (tags it does not match are
//! skipped), whose first match gives the value through `extract` (default the whole tag); and
//! the order, which ranks the values. As in Flux, two tags that extract the same value count
//! once, as the later of the two in the list. docs/design/tag-policy.md has the rules and
//! examples; `semver.rs` the range grammar.

mod extract;
mod order;
mod semver;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use regex::Regex;

use self::extract::Template;
use self::order::{Candidate, Order};
use self::semver::Range;
use super::spec::TagPolicySpec;

/// A checked, compiled tag policy.
#[derive(Debug, Clone)]
pub struct TagPolicy {
    pattern: Option<Regex>,
    extract: Option<Template>,
    order: Order,
    keep: usize,
    exclude: Vec<Regex>,
}

/// Why a policy is invalid or chose nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A field of the policy is wrong; `field` is its path below `tagPolicy` (`semver.range`,
    /// `exclude[1]`), empty for the policy as a whole.
    #[error("{}{reason}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
    Invalid {
        /// The field's path below `tagPolicy`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The numerical order met a value that is not a number (Flux fails the policy too).
    #[error(
        "tag {tag:?}: {value:?} is not a number, and the numerical order needs every tag that \
         passes the exclusions and the pattern to be one (narrow the pattern or the extract)"
    )]
    NotANumber {
        /// The tag as listed by the source.
        tag: String,
        /// What `extract` made of it.
        value: String,
    },
    /// No tag passed the policy.
    #[error(
        "no tag chosen: {candidates} of the {listed} listed tags passed the exclusions and the \
         pattern{}",
        range.as_ref().map(|r| format!(", and none of them is a version in range {r:?}")).unwrap_or_default()
    )]
    NothingSelected {
        /// How many tags the source listed.
        listed: usize,
        /// How many passed the exclusions and the pattern.
        candidates: usize,
        /// The semver range, when that was the order.
        range: Option<String>,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl TagPolicy {
    /// Checks and compiles `spec`: the expressions, the extract's group names, the range, that
    /// exactly one order is given, and that `keep` is at least 1.
    pub fn new(spec: &TagPolicySpec) -> Result<TagPolicy, PolicyError> {
        let compile = |field: String, text: &str| {
            Regex::new(text)
                .map_err(|e| invalid(field, format!("{text:?} is not a regular expression: {e}")))
        };
        let pattern = spec
            .pattern
            .as_deref()
            .map(|p| compile("pattern".into(), p))
            .transpose()?;
        let extract = match (spec.extract.as_deref(), &pattern) {
            (None | Some(""), _) => None,
            (Some(_), None) => {
                return Err(invalid("extract", "needs a pattern whose groups it names"));
            }
            (Some(text), Some(pattern)) => {
                Some(Template::parse(text, pattern).map_err(|reason| invalid("extract", reason))?)
            }
        };
        let order = match (&spec.semver, &spec.alphabetical, &spec.numerical) {
            (Some(semver), None, None) => {
                Order::Semver(Range::parse(&semver.range).map_err(|reason| {
                    invalid(
                        "semver.range",
                        format!("{:?} is not a semver range: {reason}", semver.range),
                    )
                })?)
            }
            (None, Some(alphabetical), None) => Order::Alphabetical(alphabetical.order),
            (None, None, Some(numerical)) => Order::Numerical(numerical.order),
            (None, None, None) => {
                return Err(invalid(
                    "",
                    "an order is needed: one of semver, alphabetical or numerical",
                ));
            }
            _ => {
                return Err(invalid(
                    "",
                    "only one of semver, alphabetical and numerical may be given",
                ));
            }
        };
        if spec.keep == 0 {
            return Err(invalid("keep", "must be at least 1"));
        }
        let exclude = spec
            .exclude
            .iter()
            .enumerate()
            .map(|(i, text)| compile(format!("exclude[{i}]"), text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TagPolicy {
            pattern,
            extract,
            order,
            keep: usize::try_from(spec.keep).unwrap_or(usize::MAX),
            exclude,
        })
    }

    /// The newest `keep` of `tags` (a source's tag list, in its order), newest first. Fails
    /// when none is chosen, or when the numerical order meets a value that is not a number.
    pub fn select(&self, tags: &[String]) -> Result<Vec<String>, PolicyError> {
        let candidates = self.candidates(tags);
        let count = candidates.len();
        let ranked = self.order.rank(candidates)?;
        if ranked.is_empty() {
            return Err(PolicyError::NothingSelected {
                listed: tags.len(),
                candidates: count,
                range: self.order.range().map(ToString::to_string),
            });
        }
        Ok(ranked
            .into_iter()
            .take(self.keep)
            .map(|c| c.tag.to_string())
            .collect())
    }

    /// The tags past the exclusions and the pattern, with their values; of tags sharing a
    /// value only the later stays, as in Flux's value-to-tag map.
    fn candidates<'a>(&self, tags: &'a [String]) -> Vec<Candidate<'a>> {
        let mut by_value: HashMap<String, Candidate<'a>> = HashMap::new();
        for (position, tag) in tags.iter().enumerate() {
            if is_signature_tag(tag) || self.exclude.iter().any(|re| re.is_match(tag)) {
                continue;
            }
            let value = match &self.pattern {
                None => tag.clone(),
                Some(pattern) => {
                    let Some(captures) = pattern.captures(tag) else {
                        continue;
                    };
                    match &self.extract {
                        Some(template) => template.expand(&captures),
                        None => tag.clone(),
                    }
                }
            };
            by_value.insert(
                value.clone(),
                Candidate {
                    tag,
                    value,
                    position,
                },
            );
        }
        let mut candidates: Vec<Candidate<'a>> = by_value.into_values().collect();
        candidates.sort_by_key(|c| c.position);
        candidates
    }
}

/// Tags that stand for artifacts about an image rather than an image to mirror: cosign's
/// `sha256-<hex>.sig`, `.att` and `.sbom`, and the referrers fallback tags `sha256-<hex>`.
pub(crate) fn is_signature_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let (hex, suffix) = rest.split_at(rest.len().min(64));
    let is_hex = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    is_hex && matches!(suffix, "" | ".sig" | ".att" | ".sbom")
}
