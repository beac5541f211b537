//! Tag policies on realistic tag lists, Flux's documented examples, and invalid policies.

#![allow(clippy::unwrap_used)]

use super::extract::Template;
use super::*;

const SIG: &str = "sha256-8f2d5bcbe1ce8d0d1ab6d2bd96b45ff0a0ae47c2b0ba2e4a49a0c3af3b0b3d91";

/// An nginx-like tag list, in the order a registry might list it.
fn nginx_tags() -> Vec<String> {
    let mut tags: Vec<String> = [
        "0.9.9",
        "1",
        "1.24.0",
        "1.25",
        "1.25.0",
        "1.25.0-alpine",
        "1.25.1",
        "1.25.1-alpine",
        "1.25.2",
        "1.25.3",
        "1.25.3-alpine",
        "1.25.4",
        "1.25.5",
        "1.25.5-alpine",
        "1.26",
        "1.26.0",
        "1.26.0-alpine",
        "1.26.1",
        "1.26.1-alpine",
        "1.26.2",
        "1.26.2-alpine",
        "1.26.3",
        "1.26.3-alpine",
        "1.27",
        "1.27.0",
        "1.27.0-alpine",
        "1.27.0-rc.1",
        "1.27.1",
        "1.27.1-alpine",
        "1.27.2",
        "1.27.2-alpine",
        "1.27.3",
        "1.27.3-alpine",
        "1.27.3-alpine-slim",
        "1.27.3-bookworm",
        "1.27.3-perl",
        "1.28.0-rc.1",
        "2.0.0-beta.1",
        "alpine",
        "latest",
        "mainline",
        "mainline-alpine",
        "stable",
        "stable-alpine",
        "v1.26.1",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    tags.extend([
        SIG.to_string(),
        format!("{SIG}.sig"),
        format!("{SIG}.att"),
        format!("{SIG}.sbom"),
    ]);
    tags
}

fn policy(yaml: &str) -> TagPolicy {
    let spec: TagPolicySpec =
        serde_norway::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    TagPolicy::new(&spec).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn select(yaml: &str, tags: &[String]) -> Vec<String> {
    policy(yaml)
        .select(tags)
        .unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn strings(tags: &[&str]) -> Vec<String> {
    tags.iter().map(|t| t.to_string()).collect()
}

fn invalid_field(yaml: &str) -> (String, String) {
    let spec: TagPolicySpec = serde_norway::from_str(yaml).unwrap();
    match TagPolicy::new(&spec) {
        Err(PolicyError::Invalid { field, reason }) => (field, reason),
        other => panic!("{yaml}: expected an invalid policy, got {other:?}"),
    }
}

#[test]
fn semver_picks_the_highest_release_and_skips_prereleases_and_words() {
    let tags = nginx_tags();
    // Flux's documented example: the latest stable version.
    assert_eq!(select("semver: {range: '>=1.0.0'}", &tags), ["1.27.3"]);
    assert_eq!(
        select("{semver: {range: '>=1.26.0 <2.0.0'}, keep: 3}", &tags),
        ["1.27.3", "1.27.2", "1.27.1"]
    );
    assert_eq!(select("semver: {range: '^1.x'}", &tags), ["1.27.3"]);
    assert_eq!(select("semver: {range: '<1.25'}", &tags), ["1.24.0"]);
    assert_eq!(
        select("{semver: {range: '1.25.2 - 1.25.4'}, keep: 5}", &tags),
        ["1.25.4", "1.25.3", "1.25.2"]
    );
}

#[test]
fn semver_keeps_the_first_of_equal_versions() {
    // `1.26.1` and `v1.26.1` are the same version: Flux keeps the one listed first.
    let tags = nginx_tags();
    assert_eq!(
        select("{semver: {range: '~1.26'}, keep: 4}", &tags),
        ["1.26.3", "1.26.2", "1.26.1", "v1.26.1"]
    );
    let reversed: Vec<String> = tags.iter().rev().cloned().collect();
    assert_eq!(
        select("{semver: {range: '~1.26'}, keep: 3}", &reversed),
        ["1.26.3", "1.26.2", "v1.26.1"]
    );
}

#[test]
fn prereleases_come_in_only_when_the_range_names_one() {
    let tags = nginx_tags();
    assert_eq!(
        select("{semver: {range: '>=1.0.0-0'}, keep: 4}", &tags),
        ["2.0.0-beta.1", "1.28.0-rc.1", "1.27.3", "1.27.3-perl"]
    );
    // The prerelease in one comparator opens the whole `&&` group; and a prerelease of 1.28.0
    // is below 1.28.0.
    assert_eq!(
        select("{semver: {range: '>=1.27.0-0 <1.28.0'}, keep: 3}", &tags),
        ["1.28.0-rc.1", "1.27.3", "1.27.3-perl"]
    );
    // Flux's documented example: the latest release candidate.
    assert_eq!(
        select("{pattern: '.*-rc.*', semver: {range: '^1.x-0'}}", &tags),
        ["1.28.0-rc.1"]
    );
}

#[test]
fn alternatives_are_joined_by_or() {
    let tags = nginx_tags();
    assert_eq!(
        select("{semver: {range: '~1.25 || ~1.26'}, keep: 2}", &tags),
        ["1.26.3", "1.26.2"]
    );
    assert_eq!(
        select("{semver: {range: '<1.25.2 || >=1.27.2'}, keep: 4}", &tags),
        ["1.27.3", "1.27.2", "1.25.1", "1.25.0"]
    );
}

#[test]
fn pattern_and_extract_choose_a_variant_by_its_version() {
    let tags = nginx_tags();
    let yaml = r#"{pattern: '^(?P<v>\d+\.\d+\.\d+)-alpine$', extract: '$v', semver: {range: '>=1.26.0'}, keep: 3}"#;
    assert_eq!(
        select(yaml, &tags),
        ["1.27.3-alpine", "1.27.2-alpine", "1.27.1-alpine"]
    );
    let braced =
        r#"{pattern: '^(\d+\.\d+\.\d+)-alpine$', extract: '${1}', semver: {range: '~1.25'}}"#;
    assert_eq!(select(braced, &tags), ["1.25.5-alpine"]);
}

#[test]
fn tags_extracting_the_same_value_count_once_as_the_later_one() {
    let tags = strings(&["1.27.3", "1.27.3-alpine", "1.27.2-alpine", "1.27.2"]);
    let yaml = r#"{pattern: '^(?P<v>\d+\.\d+\.\d+)(-alpine)?$', extract: '$v', semver: {range: '*'}, keep: 4}"#;
    assert_eq!(select(yaml, &tags), ["1.27.3-alpine", "1.27.2"]);
}

#[test]
fn alphabetical_asc_picks_the_highest_and_desc_the_lowest() {
    let tags = nginx_tags();
    assert_eq!(select("alphabetical: {}", &tags), ["v1.26.1"]);
    assert_eq!(
        select("{alphabetical: {order: asc}, keep: 3}", &tags),
        ["v1.26.1", "stable-alpine", "stable"]
    );
    assert_eq!(
        select("{alphabetical: {order: desc}, keep: 3}", &tags),
        ["0.9.9", "1", "1.24.0"]
    );
    // Byte order, not version order: 1.9 sorts above 1.10.
    let versions = strings(&["1.10.0", "1.9.0"]);
    assert_eq!(select("alphabetical: {}", &versions), ["1.9.0"]);
}

#[test]
fn alphabetical_orders_timestamps_as_flux_documents() {
    // Flux's minio example: `RELEASE.<RFC3339 timestamp>Z`.
    let tags = strings(&[
        "RELEASE.2024-12-18T13-15-44Z",
        "RELEASE.2025-04-22T22-12-26Z",
        "RELEASE.2025-01-20T14-49-07Z",
        "RELEASE.2025-04-22T22-12-26Z.fips",
        "RELEASE.2025-05-01T00-00-00Z-cpuv1",
        "latest",
    ]);
    let yaml = r#"{pattern: '^RELEASE\.(?P<timestamp>.*)Z$', extract: '$timestamp', alphabetical: {order: asc}, keep: 2}"#;
    assert_eq!(
        select(yaml, &tags),
        [
            "RELEASE.2025-04-22T22-12-26Z",
            "RELEASE.2025-01-20T14-49-07Z"
        ]
    );
}

#[test]
fn numerical_orders_build_timestamps() {
    // The branch-build example of Flux's image automation guide.
    let tags = strings(&[
        "main-abc1234-1700000000",
        "main-def5678-1700000300",
        "main-0a1b2c3-1699999999",
        "feature-x-1800000000",
        "latest",
    ]);
    let asc = r#"{pattern: '^main-[a-fA-F0-9]+-(?P<ts>.*)', extract: '$ts', numerical: {order: asc}, keep: 2}"#;
    assert_eq!(
        select(asc, &tags),
        ["main-def5678-1700000300", "main-abc1234-1700000000"]
    );
    let desc =
        r#"{pattern: '^main-[a-fA-F0-9]+-(?P<ts>.*)', extract: '$ts', numerical: {order: desc}}"#;
    assert_eq!(select(desc, &tags), ["main-0a1b2c3-1699999999"]);
    // Numbers, not text: 10 is above 9, and decimals and exponents are read.
    let numbers = strings(&["9", "10", "2.5", "1e1", "-3"]);
    assert_eq!(
        select("{numerical: {}, keep: 5}", &numbers),
        ["1e1", "10", "9", "2.5", "-3"]
    );
}

#[test]
fn numerical_fails_on_a_value_that_is_not_a_number() {
    let err = policy("numerical: {order: asc}")
        .select(&nginx_tags())
        .unwrap_err();
    assert_eq!(
        err,
        PolicyError::NotANumber {
            tag: "0.9.9".into(),
            value: "0.9.9".into()
        }
    );
    assert!(
        err.to_string().contains("\"0.9.9\" is not a number"),
        "{err}"
    );
    for value in ["nan", "1e400", "0x10", "12abc"] {
        let tags = strings(&["1", value]);
        let err = policy("numerical: {}").select(&tags).unwrap_err();
        assert!(
            matches!(&err, PolicyError::NotANumber { tag, .. } if tag == value),
            "{value}: {err:?}"
        );
    }
}

#[test]
fn exclusions_and_signature_tags_are_never_chosen() {
    let tags = nginx_tags();
    assert_eq!(
        select(
            "{semver: {range: '>=1.0.0-0'}, keep: 3, exclude: ['-rc', 'beta', 'alpine|perl']}",
            &tags
        ),
        ["1.27.3", "1.27.3-bookworm", "1.27.2"]
    );
    // Signature tags sort above every other tag here; a short `sha256-` tag is an ordinary tag.
    let signatures = strings(&[
        "release",
        SIG,
        &format!("{SIG}.sig"),
        &format!("{SIG}.att"),
        &format!("{SIG}.sbom"),
    ]);
    assert_eq!(select("alphabetical: {}", &signatures), ["release"]);
    let mut with_short = signatures.clone();
    with_short.push("sha256-abc.sig".into());
    assert_eq!(select("alphabetical: {}", &with_short), ["sha256-abc.sig"]);
}

#[test]
fn nothing_chosen_is_an_error_that_says_why() {
    let tags = nginx_tags();
    let err = policy("semver: {range: '>=3'}").select(&tags).unwrap_err();
    assert_eq!(
        err,
        PolicyError::NothingSelected {
            listed: 49,
            candidates: 45,
            range: Some(">=3".into())
        }
    );
    assert!(
        err.to_string()
            .contains("none of them is a version in range \">=3\""),
        "{err}"
    );
    let err = policy("{pattern: '^nope', alphabetical: {}}")
        .select(&tags)
        .unwrap_err();
    assert!(err.to_string().contains("0 of the 49 listed tags"), "{err}");
}

#[test]
fn invalid_policies_name_the_field() {
    let (field, reason) = invalid_field("{pattern: '(', alphabetical: {}}");
    assert_eq!(field, "pattern");
    assert!(
        reason.contains("\"(\" is not a regular expression"),
        "{reason}"
    );

    let (field, _) = invalid_field("{alphabetical: {}, exclude: ['ok', '[z-a]']}");
    assert_eq!(field, "exclude[1]");

    let (field, reason) = invalid_field("{semver: {range: '>= 1.x <'}}");
    assert_eq!(field, "semver.range");
    assert!(
        reason.starts_with("\">= 1.x <\" is not a semver range: "),
        "{reason}"
    );

    let (field, reason) = invalid_field("{pattern: '^(?P<v>.*)$', extract: '$w', numerical: {}}");
    assert_eq!(field, "extract");
    assert!(reason.contains("$w names no group"), "{reason}");

    let (field, _) = invalid_field("{extract: '$1', numerical: {}}");
    assert_eq!(field, "extract");

    let (field, reason) = invalid_field("{semver: {range: '*'}, numerical: {}}");
    assert_eq!(field, "");
    assert!(reason.contains("only one of"), "{reason}");

    let (_, reason) = invalid_field("{pattern: 'x'}");
    assert!(reason.contains("an order is needed"), "{reason}");

    let (field, _) = invalid_field("{alphabetical: {}, keep: 0}");
    assert_eq!(field, "keep");

    let err = serde_norway::from_str::<TagPolicySpec>("{alphabetical: {order: up}}");
    assert!(err.is_err());
}

#[test]
fn extract_templates_follow_go_rules() {
    let pattern = Regex::new(r"^(?P<major>\d+)\.(\d+)(?P<rest>.*)$").unwrap();
    let expand = |template: &str, tag: &str| {
        let template = Template::parse(template, &pattern).unwrap();
        template.expand(&pattern.captures(tag).unwrap())
    };
    assert_eq!(expand("$major", "1.27.3"), "1");
    assert_eq!(expand("${major}x", "1.27.3"), "1x");
    assert_eq!(expand("$2", "1.27.3"), "27");
    assert_eq!(expand("${2}a", "1.27.3"), "27a");
    assert_eq!(expand("$0", "1.27.3"), "1.27.3");
    assert_eq!(expand("$$major", "1.27.3"), "$major");
    // A `$` that starts no reference is text, as in Go.
    assert_eq!(expand("v$-$", "1.27.3"), "v$-$");
    assert_eq!(expand("${major", "1.27.3"), "${major");
    assert_eq!(expand("$rest", "1.27"), "");

    // `$2a` is the group named `2a` (Go and Rust agree); `$02` is the group named `02` in Go,
    // group 2 in Rust's `Captures::expand`: both are refused rather than guessed.
    for template in ["$2a", "$02", "$4", "${nope}", "$majorx"] {
        let err = Template::parse(template, &pattern).unwrap_err();
        assert!(err.contains("names no group"), "{template}: {err}");
    }
}
