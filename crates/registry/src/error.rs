//! The crate's one error type.
//!
//! Every failure that came from a registry carries the request that failed and the registry's
//! own error code, so a user (or the operator's metrics) can tell "denied" from "missing" from
//! "throttled" without parsing prose.

use std::fmt;

use serde::Deserialize;

use crate::auth::challenge::ChallengeError;
use crate::auth::docker_config::DockerConfigError;
use crate::digest::DigestError;
use crate::manifest::ManifestError;
use crate::reference::ReferenceError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error code from the distribution spec (`{"errors":[{"code": …}]}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    Unavailable,
    /// Any code the spec does not list (ECR and others add their own).
    Other(String),
}

impl ErrorCode {
    pub fn parse(code: &str) -> ErrorCode {
        match code {
            "BLOB_UNKNOWN" => ErrorCode::BlobUnknown,
            "BLOB_UPLOAD_INVALID" => ErrorCode::BlobUploadInvalid,
            "BLOB_UPLOAD_UNKNOWN" => ErrorCode::BlobUploadUnknown,
            "DIGEST_INVALID" => ErrorCode::DigestInvalid,
            "MANIFEST_BLOB_UNKNOWN" => ErrorCode::ManifestBlobUnknown,
            "MANIFEST_INVALID" => ErrorCode::ManifestInvalid,
            "MANIFEST_UNKNOWN" => ErrorCode::ManifestUnknown,
            "NAME_INVALID" => ErrorCode::NameInvalid,
            "NAME_UNKNOWN" => ErrorCode::NameUnknown,
            "SIZE_INVALID" => ErrorCode::SizeInvalid,
            "UNAUTHORIZED" => ErrorCode::Unauthorized,
            "DENIED" => ErrorCode::Denied,
            "UNSUPPORTED" => ErrorCode::Unsupported,
            "TOOMANYREQUESTS" => ErrorCode::TooManyRequests,
            "UNAVAILABLE" => ErrorCode::Unavailable,
            other => ErrorCode::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Other(s) => s,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The request an error belongs to, for messages like `PUT https://…/manifests/v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    pub method: String,
    pub url: String,
}

impl fmt::Display for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.url)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    #[error(transparent)]
    Digest(#[from] DigestError),

    #[error(transparent)]
    Manifest(#[from] ManifestError),

    /// A credentials file (docker config JSON) that cannot be read or is refused.
    #[error(transparent)]
    Credentials(#[from] DockerConfigError),

    #[error(transparent)]
    Ecr(#[from] crate::ecr::EcrError),

    #[error(transparent)]
    MultiArch(#[from] crate::multi_arch::ListError),

    #[error("{request}: {source}")]
    Challenge {
        request: RequestInfo,
        source: ChallengeError,
    },

    /// The registry answered with an error status.
    #[error("{request}: {status}{}{}", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default(), if message.is_empty() { String::new() } else { format!(": {message}") })]
    Registry {
        request: RequestInfo,
        status: u16,
        code: Option<ErrorCode>,
        message: String,
    },

    /// The request never got an HTTP answer (connection refused, reset, timeout, TLS).
    #[error("{request}: {}", transport_cause(source))]
    Transport {
        request: RequestInfo,
        source: reqwest::Error,
    },

    /// A request that failed every attempt the retry policy allowed.
    #[error("{source} (gave up after {attempts} attempts)")]
    GaveUp { attempts: u32, source: Box<Error> },

    #[error("authentication with {registry} failed: {reason}")]
    Auth { registry: String, reason: String },

    /// The registry answered in a way the protocol does not allow.
    #[error("{request}: unexpected answer from the registry: {reason}")]
    Protocol {
        request: RequestInfo,
        reason: String,
    },

    /// Moving this tag would rewrite an immutable tag.
    #[error(
        "tag {tag:?} of {repository} is immutable (tag mutability {mutability}) and points at \
         {current}; refusing to move it to {new}. Push under a new tag, or change the repository's \
         tag mutability"
    )]
    ImmutableTag {
        repository: String,
        tag: String,
        current: crate::digest::Digest,
        new: crate::digest::Digest,
        mutability: String,
    },

    #[error("invalid configuration: {0}")]
    Config(String),

    #[error("{0}")]
    Other(String),
}

/// reqwest's Display stops at the outermost layer ("error sending request for url (…)"); the
/// cause a user can act on ("Connection refused") is at the bottom of the chain.
fn transport_cause(err: &reqwest::Error) -> String {
    let mut causes: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.starts_with("client error (")
            && !text.starts_with("error sending request")
            && !causes.iter().any(|c| c.contains(&text))
        {
            causes.push(text);
        }
        source = s.source();
    }
    let detail = if causes.is_empty() {
        err.to_string()
    } else {
        causes.join(": ")
    };
    if err.is_timeout() {
        format!("timed out: {detail}")
    } else if err.is_connect() {
        format!("cannot connect: {detail}")
    } else {
        detail
    }
}

impl Error {
    /// A short, stable label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Reference(_) => "invalid_reference",
            Error::Digest(_) => "digest_mismatch",
            Error::Manifest(_) => "invalid_manifest",
            Error::Credentials(_) => "credentials",
            Error::Ecr(_) => "ecr",
            Error::MultiArch(_) => "manifest_list",
            Error::Challenge { .. } | Error::Auth { .. } => "auth",
            Error::Registry { status, code, .. } => match (status, code) {
                (_, Some(ErrorCode::TooManyRequests)) | (429, _) => "throttled",
                (401, _) | (_, Some(ErrorCode::Unauthorized)) => "unauthorized",
                (403, _) | (_, Some(ErrorCode::Denied)) => "denied",
                (404, _) => "not_found",
                (s, _) if *s >= 500 => "registry_unavailable",
                _ => "registry_error",
            },
            Error::Transport { .. } => "transport",
            Error::GaveUp { source, .. } => source.metric_label(),
            Error::Protocol { .. } => "protocol",
            Error::ImmutableTag { .. } => "immutable_tag",
            Error::Config(_) => "config",
            Error::Other(_) => "other",
        }
    }

    /// The registry's error code, when the registry sent one.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            Error::Registry { code, .. } => code.as_ref(),
            Error::GaveUp { source, .. } => source.code(),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Registry { status, .. } => Some(*status),
            Error::GaveUp { source, .. } => source.status(),
            _ => None,
        }
    }

    /// Whether the thing asked for does not exist (as opposed to any other failure).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::ManifestUnknown | ErrorCode::BlobUnknown | ErrorCode::NameUnknown)
        ) || self.status() == Some(404)
    }

    /// Whether trying the same thing again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { source, .. } => !source.is_builder(),
            Error::Registry { status, .. } => crate::retry::is_retryable_status(*status),
            // A corrupted transfer is worth one more go from scratch; a persistent mismatch will
            // exhaust the attempts and surface.
            Error::Digest(_) => true,
            // Its attempts are spent: retrying it whole would multiply them.
            Error::GaveUp { .. } => false,
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    code: Option<String>,
    message: Option<String>,
}

/// Builds a [`Error::Registry`] from a response status and body (the spec's JSON error
/// envelope, or whatever text the registry sent).
pub(crate) fn registry_error(request: RequestInfo, status: u16, body: &[u8]) -> Error {
    let (code, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) if !parsed.errors.is_empty() => {
            let first = &parsed.errors[0];
            let code = first.code.as_deref().map(ErrorCode::parse);
            let message = parsed
                .errors
                .iter()
                .filter_map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            (code, message)
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            // An HTML error page from a proxy says nothing useful and buries the status.
            let message = if text.starts_with('<') || text.len() > 300 {
                String::new()
            } else {
                text.to_string()
            };
            (None, message)
        }
    };
    Error::Registry {
        request,
        status,
        code,
        message,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req() -> RequestInfo {
        RequestInfo {
            method: "GET".into(),
            url: "http://127.0.0.1:5000/v2/a/manifests/v1".into(),
        }
    }

    #[test]
    fn parses_spec_error_envelope() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v1"}}]}"#;
        let err = registry_error(req(), 404, body);
        assert_eq!(err.code(), Some(&ErrorCode::ManifestUnknown));
        assert!(err.is_not_found());
        assert_eq!(err.metric_label(), "not_found");
        assert_eq!(
            err.to_string(),
            "GET http://127.0.0.1:5000/v2/a/manifests/v1: 404 MANIFEST_UNKNOWN: manifest unknown"
        );
    }

    #[test]
    fn throttling_is_retryable_and_labelled() {
        let body = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#;
        let err = registry_error(req(), 429, body);
        assert!(err.is_retryable());
        assert_eq!(err.metric_label(), "throttled");
    }

    #[test]
    fn html_bodies_are_not_echoed() {
        let err = registry_error(req(), 502, b"<html><body>Bad Gateway</body></html>");
        assert_eq!(
            err.to_string(),
            "GET http://127.0.0.1:5000/v2/a/manifests/v1: 502"
        );
        assert!(err.is_retryable());
    }

    #[test]
    fn unknown_codes_are_kept() {
        let body = br#"{"errors":[{"code":"IMAGE_TAG_ALREADY_EXISTS","message":"tag exists"}]}"#;
        let err = registry_error(req(), 400, body);
        assert_eq!(
            err.code(),
            Some(&ErrorCode::Other("IMAGE_TAG_ALREADY_EXISTS".into()))
        );
        assert!(!err.is_retryable());
    }
}
