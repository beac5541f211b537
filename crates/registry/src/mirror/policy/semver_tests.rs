//! Ranges and versions against the behaviour of Masterminds/semver v3 (the cases of its
//! constraint tests, as a reader of its documentation would expect them) and of Flux's
//! `version.ParseVersion`.

#![allow(clippy::unwrap_used)]

use super::*;

fn check(range: &str, version: &str) -> bool {
    let range = Range::parse(range).unwrap_or_else(|e| panic!("{range:?}: {e}"));
    let version = parse_loose(version).unwrap_or_else(|e| panic!("{version:?}: {e}"));
    range.matches(&version)
}

#[test]
fn ranges_match_as_masterminds_checks_them() {
    let cases = [
        ("*", "1.2.3", true),
        ("~0.0.0", "1.2.3", true),
        ("0.x.x", "1.2.3", false),
        ("0.0.x", "1.2.3", false),
        ("0.0.0", "1.2.3", false),
        ("^0.0.0", "1.2.3", false),
        ("= 2.0", "1.2.3", false),
        ("= 2.0", "2.0.0", true),
        ("4.1", "4.1.0", true),
        ("4.1.x", "4.1.3", true),
        ("1.x", "1.4", true),
        ("!=4.1", "4.1.0", false),
        ("!=4.1-alpha", "4.1.0-alpha", false),
        ("!=4.1-alpha", "4.1.1-alpha", false),
        ("!=4.1-alpha", "4.1.0", true),
        ("!=4.1", "5.1.0", true),
        ("!=4.x", "5.1.0", true),
        ("!=4.x", "4.1.0", false),
        ("!=4.1.x", "4.2.0", true),
        ("!=4.2.x", "4.2.3", false),
        (">1.1", "4.1.0", true),
        (">1.1", "1.1.0", false),
        ("<1.1", "0.1.0", true),
        ("<1.1", "1.1.0", false),
        ("<1.1", "1.1.1", false),
        ("<1.x", "1.1.1", false),
        ("<1.x", "0.1.1", true),
        ("<1.x", "2.0.0", false),
        ("<1.1.x", "1.2.1", false),
        ("<1.1.x", "1.1.500", false),
        ("<1.1.x", "1.0.500", true),
        ("<1.2.x", "1.1.1", true),
        (">=1.1", "4.1.0", true),
        (">=1.1", "4.1.0-beta", false),
        (">=1.1", "1.1.0", true),
        (">=1.1", "0.0.9", false),
        ("<=1.1", "0.1.0", true),
        ("<=1.1", "0.1.0-alpha", false),
        ("<=1.1-a", "0.1.0-alpha", true),
        ("<=1.1", "1.1.0", true),
        ("<=1.x", "1.1.0", true),
        ("<=2.x", "3.0.0", false),
        ("<=1.1", "1.1.1", true),
        ("<=1.1.x", "1.2.500", false),
        ("<=4.5", "3.4.0", true),
        ("<=4.5", "3.7.0", true),
        ("<=4.5", "4.6.3", false),
        (">1.1, <2", "1.1.1", false),
        (">1.1, <2", "1.2.1", true),
        (">1.1, <3", "4.3.2", false),
        (">=1.1, <2, !=1.2.3", "1.2.3", false),
        (">1.1 <2", "1.2.1", true),
        (">1.1    <3", "4.3.2", false),
        (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", true),
        (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", false),
        (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", true),
        (">=1.1, <2, !=1.2.3 || > 3", "3.0.0", false),
        (">=1.1 <2 !=1.2.3 || > 3", "1.2.3", false),
        ("> 1.1, <     2", "1.1.1", false),
        (">= 1.1, <2, != 1.2.3 || >= 3", "3.0.0", true),
        (">=1.1 < 2 !=1.2.3 || > 3", "1.2.3", false),
        (">= 1.0.0  <= 2.0.0-beta", "1.0.1-beta", true),
        (">= 1.0.0  <= 2.0.0-beta", "1.0.1", true),
        (">= 1.0.0  <= 2.0.0-beta", "3.0.0", false),
        (">= 1.0.0  <= 2.0.0-beta || > 3", "1.0.1-beta", true),
        (">= 1.0.0  <= 2.0.0-beta || > 3", "3.0.1-beta", false),
        (
            ">= 1.0.0  <= 2.0.0-beta != 1.0.1 || > 3",
            "1.0.1-beta",
            true,
        ),
        (
            ">= 1.0.0  <= 2.0.0-beta != 1.0.1-beta || > 3",
            "1.0.1-beta",
            false,
        ),
        (">= 1.0.0-0  <= 2.0.0", "1.0.1-beta", true),
        ("1.1 - 2", "1.1.1", true),
        ("1.5.0 - 4.5", "3.7.0", true),
        ("1.5.0 - 4.5", "4.5.9", true),
        ("1.5.0 - 4.5", "4.6.0", false),
        ("1.1-3", "4.3.2", false),
        ("^1.1", "1.1.1", true),
        ("^1.1", "4.3.2", false),
        ("^1.x", "1.1.1", true),
        ("^2.x", "1.1.1", false),
        ("^1.x", "2.1.1", false),
        ("^1.x", "1.1.1-beta1", false),
        ("^1.1.2-alpha", "1.2.1-beta1", true),
        ("^1.2.x-alpha", "1.1.1-beta1", false),
        ("^0.0.1", "0.0.1", true),
        ("^0.0.1", "0.3.1", false),
        ("^0.2.3", "0.2.9", true),
        ("^0.2.3", "0.3.0", false),
        ("^0.0", "0.0.7", true),
        ("^0.0", "0.1.0", false),
        ("~*", "2.1.1", true),
        ("~1", "2.1.1", false),
        ("~1", "1.3.5", true),
        ("~1", "1.4", true),
        ("~1.x", "2.1.1", false),
        ("~1.x", "1.3.5", true),
        ("~1.1", "1.1.1", true),
        ("~1.1", "1.1.1-alpha", false),
        ("~1.1-alpha", "1.1.1-beta", true),
        ("~1.1.1-beta", "1.1.1-alpha", false),
        ("~1.1.1-beta", "1.1.1", true),
        ("~1.2.3", "1.2.5", true),
        ("~1.2.3", "1.2.2", false),
        ("~1.2.3", "1.3.2", false),
        ("~>1.2.3", "1.2.9", true),
        ("~1.1", "1.2.3", false),
        ("=>1.2, =<1.4", "1.4.2", true),
        ("v1.2.3", "1.2.3", true),
        ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", true),
        ("1.0.0 - 2.0.0, <=2.0.0", "1.5.0", true),
        // A prerelease in one comparator opens the whole `&&` group to prereleases, but not
        // the other `||` alternatives.
        (">=1.0.0-0 <2.0.0", "1.27.0-rc.1", true),
        (">=2.0.0-0 || <2.0.0", "1.27.0-rc.1", false),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(range, version, want)| check(range, version) != *want)
        .map(|(range, version, want)| format!("{range:?} vs {version}: want {want}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn ranges_masterminds_refuses_are_refused() {
    for range in [
        "",
        " ",
        ">=1.0 ||",
        ">=1.0,",
        ", >=1.0",
        ">=1.0,,<2",
        ">=1.0<2.0",
        ">=",
        "==1.0",
        "1.2 -1.4",
        ">1.2 - 1.4",
        "1.2 - <1.4",
        "1.2.3.4",
        "1x",
        "a.b.c",
        ">=1.0.0-",
        ">=1.0.0-01",
        "1.0 | 2.0",
    ] {
        assert!(Range::parse(range).is_err(), "{range:?} was accepted");
    }
    let err = Range::parse(">= 1.0 <").unwrap_err();
    assert!(err.contains("\"<\" is not followed by a version"), "{err}");
}

#[test]
fn tags_are_versions_as_flux_reads_them() {
    let version = |tag: &str| parse_tag(tag).map(|v| v.to_string());
    assert_eq!(version("1.27.3").as_deref(), Some("1.27.3"));
    assert_eq!(version("v1.26.1").as_deref(), Some("1.26.1"));
    // Leading zeros are coerced (calendar versions), as Flux documents.
    assert_eq!(
        version("v2025.02.03-rc.1").as_deref(),
        Some("2025.2.3-rc.1")
    );
    assert_eq!(version("1.27.3-alpine").as_deref(), Some("1.27.3-alpine"));
    assert_eq!(version("1.0.0+build.7").as_deref(), Some("1.0.0+build.7"));
    // Two dots are needed somewhere, so `1.2-rc.1` passes as 1.2.0-rc.1 while `1.27` does not.
    assert_eq!(version("1.2-rc.1").as_deref(), Some("1.2.0-rc.1"));
    for tag in [
        "1.27",
        "1",
        "latest",
        "stable",
        "1.27.3.1",
        "V1.2.3",
        "1.2.3-",
        "1.2.3-rc..1",
        "1.2.3-01",
        "1.2.3+",
        "99999999999999999999.0.0",
        "sha256-abc.sig.x",
    ] {
        assert_eq!(version(tag), None, "{tag:?}");
    }
}

#[test]
fn build_metadata_never_orders_versions() {
    let a = parse_loose("1.0.0+a").unwrap();
    let b = parse_loose("1.0.0+b").unwrap();
    assert_eq!(compare(&a, &b), Ordering::Equal);
    let rc = parse_loose("1.0.0-rc.10").unwrap();
    let rc2 = parse_loose("1.0.0-rc.9").unwrap();
    assert_eq!(compare(&rc, &rc2), Ordering::Greater);
    assert_eq!(compare(&rc, &a), Ordering::Less);
}
