//! Credentials a registry client presents, with a `Debug` that never shows a secret.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (docker's `identitytoken`), exchanged at the token realm with a
    /// POST grant_type=refresh_token.
    IdentityToken(String),
    /// A registry bearer token used as-is.
    Bearer(String),
}

const REDACTED: &str = "<redacted>";

impl Credentials {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The `Authorization` header value for Basic credentials: `Basic base64(user:pass)`.
    pub fn basic_header_value(&self) -> Option<String> {
        match self {
            Self::Basic { username, password } => {
                let value = format!(
                    "Basic {}",
                    STANDARD.encode(format!("{username}:{password}"))
                );
                crate::secrets::remember(password);
                crate::secrets::remember_authorization(&value);
                Some(value)
            }
            Self::IdentityToken(_) | Self::Bearer(_) => None,
        }
    }

    pub fn username(&self) -> Option<&str> {
        match self {
            Self::Basic { username, .. } => Some(username),
            Self::IdentityToken(_) | Self::Bearer(_) => None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &REDACTED)
                .finish(),
            Self::IdentityToken(_) => f.debug_tuple("IdentityToken").field(&REDACTED).finish(),
            Self::Bearer(_) => f.debug_tuple("Bearer").field(&REDACTED).finish(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_value_encodes_user_and_password() {
        let creds = Credentials::basic("AWS", "pa:ss");
        assert_eq!(
            creds.basic_header_value().unwrap(),
            format!("Basic {}", STANDARD.encode("AWS:pa:ss"))
        );
        assert_eq!(
            Credentials::basic("user", "pass")
                .basic_header_value()
                .unwrap(),
            "Basic dXNlcjpwYXNz"
        );
        assert_eq!(creds.username(), Some("AWS"));
    }

    #[test]
    fn tokens_have_no_basic_header_or_username() {
        for creds in [
            Credentials::IdentityToken("t".into()),
            Credentials::Bearer("t".into()),
        ] {
            assert_eq!(creds.basic_header_value(), None);
            assert_eq!(creds.username(), None);
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let basic = Credentials::basic("AWS", "hunter2");
        assert_eq!(
            format!("{basic:?}"),
            r#"Basic { username: "AWS", password: "<redacted>" }"#
        );
        let identity = Credentials::IdentityToken("refresh-secret".into());
        assert_eq!(format!("{identity:?}"), r#"IdentityToken("<redacted>")"#);
        let bearer = Credentials::Bearer("bearer-secret".into());
        let pretty = format!("{bearer:#?}");
        assert!(!pretty.contains("bearer-secret"), "{pretty}");
        assert!(!format!("{basic:#?}").contains("hunter2"));
    }
}
