#![allow(clippy::unwrap_used)]

use super::*;

const HEX: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn sha() -> String {
    format!("sha256:{HEX}")
}

struct Want {
    registry: &'static str,
    api_host: &'static str,
    repository: &'static str,
    tag: Option<&'static str>,
    digest: bool,
    display: String,
    loopback: bool,
}

#[test]
fn valid_references() {
    let d = sha();
    let cases: Vec<(String, Want)> = vec![
        (
            "nginx".into(),
            Want {
                registry: "docker.io",
                api_host: "registry-1.docker.io",
                repository: "library/nginx",
                tag: Some("latest"),
                digest: false,
                display: "docker.io/library/nginx:latest".into(),
                loopback: false,
            },
        ),
        (
            "user/app:1.0".into(),
            Want {
                registry: "docker.io",
                api_host: "registry-1.docker.io",
                repository: "user/app",
                tag: Some("1.0"),
                digest: false,
                display: "docker.io/user/app:1.0".into(),
                loopback: false,
            },
        ),
        (
            format!("localhost:5000/a/b:tag@{d}"),
            Want {
                registry: "localhost:5000",
                api_host: "localhost:5000",
                repository: "a/b",
                tag: Some("tag"),
                digest: true,
                display: format!("localhost:5000/a/b:tag@{d}"),
                loopback: true,
            },
        ),
        (
            "127.0.0.1:5000/x".into(),
            Want {
                registry: "127.0.0.1:5000",
                api_host: "127.0.0.1:5000",
                repository: "x",
                tag: Some("latest"),
                digest: false,
                display: "127.0.0.1:5000/x:latest".into(),
                loopback: true,
            },
        ),
        (
            "[::1]:5000/x:y".into(),
            Want {
                registry: "[::1]:5000",
                api_host: "[::1]:5000",
                repository: "x",
                tag: Some("y"),
                digest: false,
                display: "[::1]:5000/x:y".into(),
                loopback: true,
            },
        ),
        (
            format!("ghcr.io/o/r@{d}"),
            Want {
                registry: "ghcr.io",
                api_host: "ghcr.io",
                repository: "o/r",
                tag: None,
                digest: true,
                display: format!("ghcr.io/o/r@{d}"),
                loopback: false,
            },
        ),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:v1".into(),
            Want {
                registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                api_host: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                repository: "team/app",
                tag: Some("v1"),
                digest: false,
                display: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:v1".into(),
                loopback: false,
            },
        ),
        (
            "index.docker.io/library/alpine".into(),
            Want {
                registry: "docker.io",
                api_host: "registry-1.docker.io",
                repository: "library/alpine",
                tag: Some("latest"),
                digest: false,
                display: "docker.io/library/alpine:latest".into(),
                loopback: false,
            },
        ),
        (
            "index.docker.io/alpine".into(),
            Want {
                registry: "docker.io",
                api_host: "registry-1.docker.io",
                repository: "library/alpine",
                tag: Some("latest"),
                digest: false,
                display: "docker.io/library/alpine:latest".into(),
                loopback: false,
            },
        ),
        (
            "docker.io/alpine:3".into(),
            Want {
                registry: "docker.io",
                api_host: "registry-1.docker.io",
                repository: "library/alpine",
                tag: Some("3"),
                digest: false,
                display: "docker.io/library/alpine:3".into(),
                loopback: false,
            },
        ),
        (
            "localhost/app".into(),
            Want {
                registry: "localhost",
                api_host: "localhost",
                repository: "app",
                tag: Some("latest"),
                digest: false,
                display: "localhost/app:latest".into(),
                loopback: true,
            },
        ),
        (
            // Uppercase makes the first component a registry, exactly as in docker.
            "MyRegistry/app".into(),
            Want {
                registry: "MyRegistry",
                api_host: "MyRegistry",
                repository: "app",
                tag: Some("latest"),
                digest: false,
                display: "MyRegistry/app:latest".into(),
                loopback: false,
            },
        ),
        (
            "127.1.2.3/x".into(),
            Want {
                registry: "127.1.2.3",
                api_host: "127.1.2.3",
                repository: "x",
                tag: Some("latest"),
                digest: false,
                display: "127.1.2.3/x:latest".into(),
                loopback: true,
            },
        ),
        (
            "[2001:db8::1]/x".into(),
            Want {
                registry: "[2001:db8::1]",
                api_host: "[2001:db8::1]",
                repository: "x",
                tag: Some("latest"),
                digest: false,
                display: "[2001:db8::1]/x:latest".into(),
                loopback: false,
            },
        ),
        (
            "my-registry.example.com:443/a.b/c_d/e__f/g---h:_Tag.1-x".into(),
            Want {
                registry: "my-registry.example.com:443",
                api_host: "my-registry.example.com:443",
                repository: "a.b/c_d/e__f/g---h",
                tag: Some("_Tag.1-x"),
                digest: false,
                display: "my-registry.example.com:443/a.b/c_d/e__f/g---h:_Tag.1-x".into(),
                loopback: false,
            },
        ),
        (
            // No "/" means no registry: docker reads this as a Docker Hub image with tag 5000.
            "localhost:5000".into(),
            Want {
                registry: "docker.io",
                api_host: "registry-1.docker.io",
                repository: "library/localhost",
                tag: Some("5000"),
                digest: false,
                display: "docker.io/library/localhost:5000".into(),
                loopback: false,
            },
        ),
        (
            "a/b/c/d/e".into(),
            Want {
                registry: "docker.io",
                api_host: "registry-1.docker.io",
                repository: "a/b/c/d/e",
                tag: Some("latest"),
                digest: false,
                display: "docker.io/a/b/c/d/e:latest".into(),
                loopback: false,
            },
        ),
    ];
    for (input, want) in cases {
        let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(r.registry(), want.registry, "{input}");
        assert_eq!(r.api_host(), want.api_host, "{input}");
        assert_eq!(r.repository(), want.repository, "{input}");
        assert_eq!(r.tag(), want.tag, "{input}");
        assert_eq!(r.digest().is_some(), want.digest, "{input}");
        assert_eq!(r.to_string(), want.display, "{input}");
        assert_eq!(r.is_loopback(), want.loopback, "{input}");
        assert_eq!(
            r.repository_url_path(),
            format!("/v2/{}", want.repository),
            "{input}"
        );
        let expected_target = if want.digest {
            sha()
        } else {
            want.tag.unwrap().to_string()
        };
        assert_eq!(r.target(), expected_target, "{input}");
        // The normalised form must parse back to the same reference.
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r, "{input}");
    }
}

#[test]
fn invalid_references() {
    let d = sha();
    let long_tag = "t".repeat(129);
    let long_name = format!("example.com/{}", "a".repeat(250));
    type Check = fn(&ReferenceError) -> bool;
    let cases: Vec<(String, Check)> = vec![
        (String::new(), |e| matches!(e, ReferenceError::Empty)),
        ("Nginx".into(), |e| {
            matches!(e, ReferenceError::UppercaseRepository { .. })
        }),
        ("ghcr.io/Owner/app".into(), |e| {
            matches!(e, ReferenceError::UppercaseRepository { .. })
        }),
        ("a//b".into(), |e| {
            matches!(e, ReferenceError::EmptyPathComponent { .. })
        }),
        ("ghcr.io/o/r/".into(), |e| {
            matches!(e, ReferenceError::EmptyPathComponent { .. })
        }),
        ("nginx:".into(), |e| {
            matches!(e, ReferenceError::EmptyTag { .. })
        }),
        (format!("nginx:{long_tag}"), |e| {
            matches!(e, ReferenceError::TagTooLong { len: 129, .. })
        }),
        ("nginx:-dash".into(), |e| {
            matches!(e, ReferenceError::InvalidTag { .. })
        }),
        ("nginx:.dot".into(), |e| {
            matches!(e, ReferenceError::InvalidTag { .. })
        }),
        ("nginx:a:b".into(), |e| {
            matches!(e, ReferenceError::InvalidTag { .. })
        }),
        ("nginx:v1+build".into(), |e| {
            matches!(e, ReferenceError::InvalidTag { .. })
        }),
        ("localhost:99999/x".into(), |e| {
            matches!(e, ReferenceError::InvalidPort { .. })
        }),
        ("localhost:0/x".into(), |e| {
            matches!(e, ReferenceError::InvalidPort { .. })
        }),
        ("localhost:/x".into(), |e| {
            matches!(e, ReferenceError::InvalidPort { .. })
        }),
        ("localhost:http/x".into(), |e| {
            matches!(e, ReferenceError::InvalidPort { .. })
        }),
        ("[::1]:x/y".into(), |e| {
            matches!(e, ReferenceError::InvalidPort { .. })
        }),
        ("nginx@sha256:abc".into(), |e| {
            matches!(
                e,
                ReferenceError::InvalidDigest {
                    source: DigestError::WrongLength { .. },
                    ..
                }
            )
        }),
        (format!("nginx@md5:{HEX}"), |e| {
            matches!(
                e,
                ReferenceError::InvalidDigest {
                    source: DigestError::UnsupportedAlgorithm { .. },
                    ..
                }
            )
        }),
        ("nginx@".into(), |e| {
            matches!(e, ReferenceError::InvalidDigest { .. })
        }),
        (
            "http://registry.example.com/app".into(),
            |e| matches!(e, ReferenceError::Scheme { scheme, .. } if scheme == "http://"),
        ),
        ("docker://nginx".into(), |e| {
            matches!(e, ReferenceError::Scheme { .. })
        }),
        ("nginx latest".into(), |e| {
            matches!(e, ReferenceError::Whitespace { .. })
        }),
        ("nginx\n".into(), |e| {
            matches!(e, ReferenceError::Whitespace { .. })
        }),
        (HEX.into(), |e| {
            matches!(e, ReferenceError::HexIdentifier { .. })
        }),
        (":tag".into(), |e| {
            matches!(e, ReferenceError::MissingRepository { .. })
        }),
        ("ghcr.io/".into(), |e| {
            matches!(e, ReferenceError::MissingRepository { .. })
        }),
        (format!("ghcr.io/@{d}"), |e| {
            matches!(e, ReferenceError::MissingRepository { .. })
        }),
        ("my_registry.com/app".into(), |e| {
            matches!(e, ReferenceError::InvalidRegistry { .. })
        }),
        ("-bad.example.com/app".into(), |e| {
            matches!(e, ReferenceError::InvalidRegistry { .. })
        }),
        ("example..com/app".into(), |e| {
            matches!(e, ReferenceError::InvalidRegistry { .. })
        }),
        ("[::1/app".into(), |e| {
            matches!(e, ReferenceError::InvalidRegistry { .. })
        }),
        ("[fe80::1%eth0]/app".into(), |e| {
            matches!(e, ReferenceError::InvalidRegistry { .. })
        }),
        ("[::1]5000/app".into(), |e| {
            matches!(e, ReferenceError::InvalidRegistry { .. })
        }),
        (
            "app-/x".into(),
            |e| matches!(e, ReferenceError::InvalidPathComponent { component, .. } if component == "app-"),
        ),
        ("a/_b".into(), |e| {
            matches!(e, ReferenceError::InvalidPathComponent { .. })
        }),
        ("a/b___c".into(), |e| {
            matches!(e, ReferenceError::InvalidPathComponent { .. })
        }),
        ("a/b..c".into(), |e| {
            matches!(e, ReferenceError::InvalidPathComponent { .. })
        }),
        ("a/b.".into(), |e| {
            matches!(e, ReferenceError::InvalidPathComponent { .. })
        }),
        ("a/ü".into(), |e| {
            matches!(e, ReferenceError::InvalidPathComponent { .. })
        }),
        (long_name, |e| {
            matches!(e, ReferenceError::NameTooLong { len: 262, .. })
        }),
    ];
    for (input, check) in cases {
        let err = Reference::parse(&input).expect_err(&input);
        assert!(check(&err), "{input:?} gave {err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("invalid reference {input:?}: ")),
            "message must quote the whole input: {message}"
        );
    }
}

#[test]
fn error_messages() {
    let msg = |s: &str| Reference::parse(s).unwrap_err().to_string();
    assert_eq!(
        msg("Nginx"),
        r#"invalid reference "Nginx": repository name must be lowercase"#
    );
    assert!(msg("https://ghcr.io/o/r").contains("remove the scheme \"https://\""));
    assert!(msg("nginx@sha256:abc").contains("expected 64 hex characters"));
}

#[test]
fn name_length_limit_is_inclusive() {
    // "example.com/" is 12 characters; 12 + 243 = 255.
    let ok = format!("example.com/{}", "a".repeat(243));
    assert!(Reference::parse(&ok).is_ok());
    let too_long = format!("example.com/{}", "a".repeat(244));
    assert!(matches!(
        Reference::parse(&too_long),
        Err(ReferenceError::NameTooLong { len: 256, .. })
    ));
    let tag = format!("x:{}", "t".repeat(128));
    assert!(Reference::parse(&tag).is_ok());
}

#[test]
fn builders() {
    let r = Reference::parse(&format!("ghcr.io/o/r:v1@{}", sha())).unwrap();
    assert_eq!(r.target(), sha());

    let tagged = r.with_tag("v2").unwrap();
    assert_eq!(tagged.to_string(), "ghcr.io/o/r:v2");
    assert_eq!(tagged.target(), "v2");
    assert!(tagged.digest().is_none());
    assert!(matches!(
        r.with_tag("bad tag"),
        Err(ReferenceError::InvalidTag { input, .. }) if input == "ghcr.io/o/r:bad tag"
    ));
    assert!(matches!(
        r.with_tag(""),
        Err(ReferenceError::EmptyTag { .. })
    ));

    let pinned = tagged.with_digest(Digest::sha256_of(b"x"));
    assert_eq!(pinned.tag(), None);
    assert_eq!(pinned.target(), Digest::sha256_of(b"x").as_str());
    assert_eq!(
        pinned.to_string(),
        format!("ghcr.io/o/r@{}", Digest::sha256_of(b"x"))
    );

    let moved = r.with_repository("team/other").unwrap();
    assert_eq!(moved.repository(), "team/other");
    assert_eq!(moved.tag(), Some("v1"));
    assert_eq!(moved.digest(), r.digest());
    assert_eq!(moved.registry(), "ghcr.io");
    for (bad, check) in [
        ("Team/x", "lowercase"),
        ("a//b", "empty path component"),
        ("a:b", "path component"),
        ("", "missing"),
        ("a b", "whitespace"),
    ] {
        let err = r.with_repository(bad).unwrap_err().to_string();
        assert!(err.contains(check), "{bad:?}: {err}");
    }

    let hub = Reference::parse("nginx").unwrap();
    assert_eq!(
        hub.with_repository("alpine").unwrap().repository(),
        "library/alpine"
    );
}

#[test]
fn host_and_loopback() {
    let cases = [
        ("localhost:5000/x", "localhost", true),
        ("LOCALHOST/x", "LOCALHOST", true),
        ("127.0.0.1/x", "127.0.0.1", true),
        ("127.255.255.254:80/x", "127.255.255.254", true),
        ("128.0.0.1/x", "128.0.0.1", false),
        ("[::1]:5000/x", "::1", true),
        ("[::]/x", "::", false),
        ("[::ffff:7f00:1]/x", "::ffff:7f00:1", true),
        ("localhost.example.com/x", "localhost.example.com", false),
        ("nginx", "docker.io", false),
    ];
    for (input, host, loopback) in cases {
        let r = Reference::parse(input).unwrap();
        assert_eq!(r.host(), host, "{input}");
        assert_eq!(r.is_loopback(), loopback, "{input}");
    }
}

#[test]
fn traits() {
    let r: Reference = "nginx:1".parse().unwrap();
    assert_eq!(
        format!("{r:?}"),
        r#"Reference("docker.io/library/nginx:1")"#
    );
    assert_eq!(r.name(), "docker.io/library/nginx");
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, r#""docker.io/library/nginx:1""#);
    assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
    assert!(serde_json::from_str::<Reference>(r#""Nginx""#).is_err());
    let same: std::collections::HashSet<Reference> = ["nginx", "docker.io/library/nginx:latest"]
        .iter()
        .map(|s| Reference::parse(s).unwrap())
        .collect();
    assert_eq!(same.len(), 1);
}
