//! Tag policies of an `EcrImageMirror` (Flux ImagePolicy semantics): the semver range, the
//! pattern/extract template and exclude expressions, then choosing among tags.
//!
//! Input, one field per line: an order line (`s<range>`, `a`, `A`, `n`, `N`: semver,
//! alphabetical asc/desc, numerical asc/desc), the pattern, the extract, one exclude
//! expression, `keep` (a number), then the tags.
#![no_main]

use ferry_registry::mirror::TagPolicy;
use ferry_registry::mirror::{OrderPolicy, SemverPolicy, SortOrder, TagPolicySpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let order = lines.next().unwrap_or_default();
    let optional = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
    let pattern = optional(lines.next());
    let extract = optional(lines.next());
    let exclude: Vec<String> = optional(lines.next()).into_iter().collect();
    let keep = lines.next().and_then(|k| k.parse().ok()).unwrap_or(1);
    let tags: Vec<String> = lines.map(str::to_owned).collect();

    let mut spec = TagPolicySpec {
        pattern,
        extract,
        semver: None,
        alphabetical: None,
        numerical: None,
        keep,
        exclude,
    };
    let policy = |order| OrderPolicy { order };
    match order.split_at_checked(1) {
        Some(("s", range)) => {
            spec.semver = Some(SemverPolicy {
                range: range.to_owned(),
            })
        }
        Some(("a", _)) => spec.alphabetical = Some(policy(SortOrder::Asc)),
        Some(("A", _)) => spec.alphabetical = Some(policy(SortOrder::Desc)),
        Some(("n", _)) => spec.numerical = Some(policy(SortOrder::Asc)),
        Some(("N", _)) => spec.numerical = Some(policy(SortOrder::Desc)),
        _ => return,
    }
    let Ok(tag_policy) = TagPolicy::new(&spec) else {
        return;
    };
    if let Ok(chosen) = tag_policy.select(&tags) {
        assert!(
            !chosen.is_empty(),
            "select returned Ok with nothing for {spec:?}"
        );
        assert!(chosen.len() <= keep as usize, "more than keep for {spec:?}");
        for tag in &chosen {
            assert!(tags.contains(tag), "{tag:?} is not one of the tags");
        }
    }
});
