//! The legacy `.dockercfg` form (docker before 1.7, and the `.dockercfg` key of a
//! `kubernetes.io/dockercfg` Secret): the `auths` map alone, with no wrapper object.
//!
//! Read as a `config.json` it has no `auths` key and would parse silently to "no credentials",
//! so it is recognised by its shape instead.

use serde_json::{Map, Value};

/// Keys only a `config.json` has at its top level; one of them rules the legacy form out.
const CONFIG_JSON_KEYS: &[&str] = &["auths", "credsStore", "credHelpers"];

/// Fields of a legacy entry; `email` is obsolete but still written by old tools.
const ENTRY_FIELDS: &[&str] = &["auth", "username", "password", "email"];

/// A bare map whose every value is an object, at least one of them holding a credential
/// field. Other `config.json` settings (`HttpHeaders`, `proxies`) are objects too, but never
/// carry these fields, so a config with only such settings stays a `config.json`.
pub(super) fn is_legacy(root: &Map<String, Value>) -> bool {
    if CONFIG_JSON_KEYS.iter().any(|key| root.contains_key(*key)) {
        return false;
    }
    let mut entries = root.values().map(|value| value.as_object());
    let all_objects = entries.clone().all(|entry| entry.is_some());
    all_objects
        && entries.any(|entry| {
            entry.is_some_and(|entry| ENTRY_FIELDS.iter().any(|f| entry.contains_key(*f)))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::super::{Credentials, DockerConfig, HelperPolicy};

    fn config(json: &str) -> DockerConfig {
        DockerConfig::from_slice(json.as_bytes(), "secret", HelperPolicy::Refuse).unwrap()
    }

    #[tokio::test]
    async fn a_legacy_dockercfg_gives_its_credentials() {
        let json = format!(
            r#"{{"https://index.docker.io/v1/": {{"auth": "{}", "email": "a@example.com"}},
                "quay.io": {{"username": "q", "password": "pw", "email": ""}}}}"#,
            STANDARD.encode("alice:s3cret")
        );
        let config = config(&json);
        assert_eq!(
            config.credentials_for("docker.io").await.unwrap(),
            Some(Credentials::basic("alice", "s3cret"))
        );
        assert_eq!(
            config.credentials_for("quay.io").await.unwrap(),
            Some(Credentials::basic("q", "pw"))
        );
        assert_eq!(config.credentials_for("ghcr.io").await.unwrap(), None);
    }

    #[test]
    fn a_broken_legacy_entry_is_named() {
        let err = DockerConfig::from_slice(
            br#"{"quay.io": {"auth": 5}}"#,
            "secret team-b/pull",
            HelperPolicy::Refuse,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("secret team-b/pull"), "{err}");
        assert!(err.contains(r#".dockercfg["quay.io"].auth"#), "{err}");
    }
}
