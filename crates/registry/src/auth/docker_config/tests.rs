#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::engine::general_purpose::STANDARD;

use super::*;

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

/// A scratch directory removed on drop; the crate has no tempfile dependency.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "ferry-docker-config-{}-{name}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    #[cfg(unix)]
    fn helper(&self, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.0.join(format!("docker-credential-{name}"));
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn lookup(json: &str, registry: &str) -> Result<Option<Credentials>, DockerConfigError> {
    let config = DockerConfig::from_json(json).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(config.credentials_for(registry))
}

#[test]
fn normalizes_registry_names() {
    for (input, expected) in [
        ("docker.io", "docker.io"),
        ("https://index.docker.io/v1/", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("HTTPS://Registry.Hub.Docker.com", "docker.io"),
        ("https://ghcr.io", "ghcr.io"),
        ("ghcr.io/", "ghcr.io"),
        ("http://localhost:5000/v2/", "localhost:5000"),
        ("localhost:5000", "localhost:5000"),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        ),
        (" quay.io ", "quay.io"),
    ] {
        assert_eq!(normalize_registry(input), expected, "{input}");
    }
}

#[test]
fn reads_auths_entries() {
    let cases: Vec<(String, Option<Credentials>)> = vec![
        (
            format!(r#"{{"auth":"{}"}}"#, b64("AWS:eyJ:with:colons")),
            Some(Credentials::basic("AWS", "eyJ:with:colons")),
        ),
        (
            format!(r#"{{"auth":"{}"}}"#, b64("user:pw").trim_end_matches('=')),
            Some(Credentials::basic("user", "pw")),
        ),
        (
            r#"{"username":"octo","password":"pat"}"#.to_owned(),
            Some(Credentials::basic("octo", "pat")),
        ),
        (
            format!(r#"{{"auth":"{}","identitytoken":"refresh"}}"#, b64("octo:")),
            Some(Credentials::IdentityToken("refresh".into())),
        ),
        (
            r#"{"registrytoken":"bearer"}"#.to_owned(),
            Some(Credentials::Bearer("bearer".into())),
        ),
        (r#"{}"#.to_owned(), None),
        (r#"{"auth":"","email":"x@example.com"}"#.to_owned(), None),
    ];
    for (entry, expected) in cases {
        let json = format!(r#"{{"auths":{{"ghcr.io":{entry}}}}}"#);
        assert_eq!(lookup(&json, "ghcr.io").unwrap(), expected, "{entry}");
    }
}

#[test]
fn matches_keys_with_scheme_path_and_hub_aliases() {
    let auth = b64("user:pw");
    for key in [
        "https://index.docker.io/v1/",
        "index.docker.io",
        "registry-1.docker.io",
        "docker.io",
    ] {
        let json = format!(r#"{{"auths":{{"{key}":{{"auth":"{auth}"}}}}}}"#);
        for registry in ["docker.io", "index.docker.io"] {
            assert_eq!(
                lookup(&json, registry).unwrap(),
                Some(Credentials::basic("user", "pw")),
                "{key} for {registry}"
            );
        }
        assert_eq!(lookup(&json, "ghcr.io").unwrap(), None);
    }
    for (key, registry) in [
        ("https://ghcr.io", "ghcr.io"),
        ("http://localhost:5000/v2/", "localhost:5000"),
    ] {
        let json = format!(r#"{{"auths":{{"{key}":{{"auth":"{auth}"}}}}}}"#);
        assert!(lookup(&json, registry).unwrap().is_some(), "{key}");
    }
}

#[test]
fn exact_key_wins_and_empty_aliases_are_skipped() {
    let json = format!(
        r#"{{"auths":{{
            "https://index.docker.io/v1/":{{"auth":"{}"}},
            "docker.io":{{"auth":"{}"}},
            "https://ghcr.io":{{"auth":"{}"}},
            "ghcr.io":{{}}
        }}}}"#,
        b64("alias:pw"),
        b64("exact:pw"),
        b64("octo:pw")
    );
    assert_eq!(
        lookup(&json, "docker.io").unwrap(),
        Some(Credentials::basic("exact", "pw"))
    );
    assert_eq!(
        lookup(&json, "ghcr.io").unwrap(),
        Some(Credentials::basic("octo", "pw"))
    );
}

#[test]
fn broken_auth_fails_only_its_registry_and_hides_the_value() {
    let json = format!(
        r#"{{"auths":{{"bad.example":{{"auth":"hunter2!!"}},"nocolon.example":{{"auth":"{}"}},"ok.example":{{"auth":"{}"}}}}}}"#,
        b64("hunter2"),
        b64("u:p")
    );
    let err = lookup(&json, "bad.example").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, DockerConfigError::InvalidAuth { .. }));
    assert!(message.contains("bad.example") && message.contains("base64"));
    assert!(!message.contains("hunter2"), "{message}");
    let message = lookup(&json, "nocolon.example").unwrap_err().to_string();
    assert!(message.contains("user:password"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(lookup(&json, "ok.example").unwrap().is_some());
}

#[test]
fn rejects_invalid_json_without_echoing_values() {
    for (json, expected) in [
        (r#"{"auths": {"#, "EOF"),
        ("[]", "top level"),
        (r#"{"auths": []}"#, "auths must be an object"),
        (
            r#"{"auths": {"x": "hunter2"}}"#,
            r#"auths["x"] must be an object"#,
        ),
        (
            r#"{"auths": {"x": {"password": ["hunter2"]}}}"#,
            r#"auths["x"].password must be a string"#,
        ),
        (r#"{"credHelpers": {"x": 1}}"#, r#"credHelpers["x"]"#),
        (r#"{"credsStore": true}"#, "credsStore must be a string"),
    ] {
        let message = DockerConfig::from_json(json).unwrap_err().to_string();
        assert!(message.contains("(inline JSON)"), "{message}");
        assert!(message.contains(expected), "{json}: {message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
    // Unknown fields are docker's business, not ours.
    let config = DockerConfig::from_json(
        r#"{"auths":null,"psFormat":"table","proxies":{"default":{}},"HttpHeaders":{"a":"b"}}"#,
    );
    assert!(config.is_ok());
}

#[test]
fn load_names_the_path_and_the_problem() {
    let dir = TempDir::new("load");
    let missing = dir.0.join("missing.json");
    let err = DockerConfig::load(&missing).unwrap_err();
    assert!(
        matches!(&err, DockerConfigError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound)
    );
    assert!(err.to_string().contains("missing.json"), "{err}");

    let invalid = dir.0.join("invalid.json");
    fs::write(&invalid, "{not json").unwrap();
    let message = DockerConfig::load(&invalid).unwrap_err().to_string();
    assert!(message.contains("invalid.json"), "{message}");
    assert!(message.contains("line 1"), "{message}");

    let valid = dir.0.join("config.json");
    fs::write(&valid, r#"{"credsStore":"desktop"}"#).unwrap();
    let config = DockerConfig::load(&valid).unwrap();
    assert_eq!(config.creds_store.as_deref(), Some("desktop"));
}

#[test]
fn default_path_prefers_docker_config() {
    let os = |s: &str| Some(OsString::from(s));
    assert_eq!(
        default_path_from(os("/etc/docker-cfg"), os("/home/me")),
        Some(PathBuf::from("/etc/docker-cfg/config.json"))
    );
    assert_eq!(
        default_path_from(None, os("/home/me")),
        Some(PathBuf::from("/home/me/.docker/config.json"))
    );
    assert_eq!(
        default_path_from(os(""), os("/home/me")),
        Some(PathBuf::from("/home/me/.docker/config.json"))
    );
    assert_eq!(default_path_from(None, None), None);
    assert_eq!(default_path_from(None, os("")), None);
}

#[test]
fn debug_redacts_secrets() {
    let json = format!(
        r#"{{"auths":{{"a":{{"auth":"{}"}},"b":{{"username":"u","password":"hunter2","identitytoken":"hunter3","registrytoken":"hunter4"}}}}}}"#,
        b64("u:hunter1")
    );
    let config = DockerConfig::from_json(&json).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter"), "{debug}");
    assert!(!debug.contains(&b64("u:hunter1")), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}

#[cfg(unix)]
mod helpers {
    use super::*;

    /// Answers with the server URL it was given as the username, so tests can check it.
    const ECHO: &str = r#"[ "$1" = get ] || { echo "unexpected arguments: $*" >&2; exit 2; }
read -r server || true
printf '{"ServerURL":"%s","Username":"%s","Secret":"s3cret"}\n' "$server" "$server""#;

    fn fixture() -> TempDir {
        let dir = TempDir::new("helpers");
        dir.helper("echo", ECHO);
        dir.helper(
            "token",
            r#"printf '{"ServerURL":"x","Username":"<token>","Secret":"refresh"}'"#,
        );
        dir.helper(
            "missing",
            "echo 'credentials not found in native keychain'; exit 1",
        );
        dir.helper(
            "broken",
            "echo 'secret service unavailable: dbus' >&2; exit 3",
        );
        dir.helper("garbage", "echo 'Secret: s3cret-value'");
        dir.helper(
            "empty",
            r#"echo '{"ServerURL":"","Username":"","Secret":""}'"#,
        );
        dir.helper("slow", "exec sleep 5");
        dir
    }

    fn config(dir: &TempDir, json: &str) -> DockerConfig {
        DockerConfig::from_json(json)
            .unwrap()
            .with_helper_dir(&dir.0)
    }

    #[tokio::test]
    async fn helpers_are_consulted_in_docker_order() {
        let dir = fixture();
        let json = format!(
            r#"{{"auths":{{"ghcr.io":{{"auth":"{}"}},"quay.io":{{"auth":"{}"}}}},
                "credHelpers":{{"localhost:5000":"echo","quay.io":"missing"}},
                "credsStore":"echo"}}"#,
            b64("octo:pw"),
            b64("q:pw")
        );
        let config = config(&dir, &json);
        let basic = |user: &str| Some(Credentials::basic(user, "s3cret"));
        // credsStore, asked with Docker Hub's legacy server URL.
        assert_eq!(
            config.credentials_for("docker.io").await.unwrap(),
            basic("https://index.docker.io/v1/")
        );
        assert_eq!(
            config.credentials_for("localhost:5000").await.unwrap(),
            basic("localhost:5000")
        );
        assert_eq!(
            config.credentials_for("ghcr.io").await.unwrap(),
            Some(Credentials::basic("octo", "pw"))
        );
        // A per-registry helper that finds nothing does not fall back to `auths`.
        assert_eq!(config.credentials_for("quay.io").await.unwrap(), None);
    }

    #[tokio::test]
    async fn helper_results() {
        let dir = fixture();
        let json = r#"{"credHelpers":{"token.example":"token","missing.example":"missing","empty.example":"empty"}}"#;
        let config = config(&dir, json);
        assert_eq!(
            config.credentials_for("token.example").await.unwrap(),
            Some(Credentials::IdentityToken("refresh".into()))
        );
        assert_eq!(
            config.credentials_for("missing.example").await.unwrap(),
            None
        );
        assert_eq!(config.credentials_for("empty.example").await.unwrap(), None);
    }

    #[tokio::test]
    async fn helper_failures_name_the_helper() {
        let dir = fixture();
        let json = r#"{"credHelpers":{"broken.example":"broken","garbage.example":"garbage","nope.example":"nope","escape.example":"../echo"}}"#;
        let config = config(&dir, json);

        let err = config.credentials_for("broken.example").await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, DockerConfigError::HelperFailed { .. }));
        assert!(message.contains("docker-credential-broken"), "{message}");
        assert!(message.contains("dbus"), "{message}");

        let err = config.credentials_for("garbage.example").await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, DockerConfigError::HelperOutput { .. }));
        assert!(!message.contains("s3cret"), "{message}");

        for registry in ["nope.example", "escape.example"] {
            let err = config.credentials_for(registry).await.unwrap_err();
            assert!(
                matches!(err, DockerConfigError::HelperNotFound { .. }),
                "{err}"
            );
            assert!(err.to_string().contains("not found"), "{err}");
        }
        let message = config
            .credentials_for("nope.example")
            .await
            .unwrap_err()
            .to_string();
        assert!(message.contains("docker-credential-nope"), "{message}");
    }

    #[tokio::test]
    async fn helper_times_out() {
        let dir = fixture();
        let config = config(&dir, r#"{"credsStore":"slow"}"#)
            .with_helper_timeout(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let err = config.credentials_for("ghcr.io").await.unwrap_err();
        assert!(
            matches!(err, DockerConfigError::HelperTimeout { .. }),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}
