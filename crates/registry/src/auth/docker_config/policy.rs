//! Whether a docker config may name credential helpers.
//!
//! `credsStore` and `credHelpers` make the client run `docker-credential-<name>`. That is
//! docker's own behaviour and right for the user's own `config.json`, but a config that comes
//! from someone else (a tenant's pull Secret in a shared operator) must never run a program of
//! its choosing on the host, so callers loading such configs refuse helpers. The config is
//! refused as a whole, when parsed, rather than the helper skipped at lookup: a silently
//! ignored helper would look like "no credentials" far from the cause.

use std::collections::BTreeMap;

use super::DockerConfigError;

/// What to do with a config that names credential helpers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HelperPolicy {
    /// Run them, as docker does: for the user's own config.
    #[default]
    Run,
    /// Refuse the config with [`DockerConfigError::HelperRefused`]: for configs from others.
    Refuse,
}

impl HelperPolicy {
    pub(super) fn check(
        self,
        origin: &str,
        cred_helpers: &BTreeMap<String, String>,
        creds_store: &Option<String>,
    ) -> Result<(), DockerConfigError> {
        if self == HelperPolicy::Run {
            return Ok(());
        }
        let refused = |field: &'static str, helper: &String| DockerConfigError::HelperRefused {
            origin: origin.to_owned(),
            field,
            helper: helper.clone(),
        };
        if let Some(store) = creds_store {
            return Err(refused("credsStore", store));
        }
        match cred_helpers.values().next() {
            Some(helper) => Err(refused("credHelpers", helper)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::DockerConfig;
    use super::*;

    const WITH_STORE: &str = r#"{"auths": {}, "credsStore": "desktop"}"#;
    const WITH_HELPERS: &str = r#"{"credHelpers": {"ghcr.io": "gh"}}"#;

    #[test]
    fn refuse_names_the_field_the_helper_and_the_config() {
        for (json, field, helper) in [
            (WITH_STORE, "`credsStore`", "\"desktop\""),
            (WITH_HELPERS, "`credHelpers`", "\"gh\""),
        ] {
            let err = DockerConfig::from_slice(
                json.as_bytes(),
                "secret team-a/pull",
                HelperPolicy::Refuse,
            )
            .unwrap_err();
            assert!(
                matches!(err, DockerConfigError::HelperRefused { .. }),
                "{err}"
            );
            let text = err.to_string();
            for part in [field, helper, "secret team-a/pull", "refused"] {
                assert!(text.contains(part), "{part} missing from: {text}");
            }
        }
    }

    #[tokio::test]
    async fn refuse_accepts_a_config_of_plain_auths() {
        let json =
            r#"{"auths": {"ghcr.io": {"username": "u", "password": "p"}}, "credsStore": ""}"#;
        let config =
            DockerConfig::from_slice(json.as_bytes(), "secret", HelperPolicy::Refuse).unwrap();
        let found = config.credentials_for("ghcr.io").await.unwrap();
        assert_eq!(found, Some(super::super::Credentials::basic("u", "p")));
    }

    #[test]
    fn run_keeps_docker_s_behaviour() {
        for json in [WITH_STORE, WITH_HELPERS] {
            DockerConfig::from_slice(json.as_bytes(), "config.json", HelperPolicy::Run).unwrap();
            DockerConfig::from_json(json).unwrap();
        }
    }
}
