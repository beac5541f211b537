//! The error of a push: a registry failure (the shared crate's [`ferry_registry::Error`]), a
//! Docker Engine failure, or a local image that cannot be read.
//!
//! Kept apart from the registry error on purpose: the operator links `ferry-registry` alone,
//! and its errors have no business naming the Docker Engine.

use crate::docker::DockerError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registry(#[from] ferry_registry::Error),

    #[error(transparent)]
    Engine(#[from] DockerError),

    /// The local image or the push's options are unusable (unreadable layout, no tag, …).
    #[error("invalid configuration: {0}")]
    Config(String),

    #[error("{0}")]
    Other(String),
}

impl Error {
    /// A short, stable label for metrics and logs (the registry's own labels pass through).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Registry(error) => error.metric_label(),
            Error::Engine(_) => "docker",
            Error::Config(_) => "config",
            Error::Other(_) => "other",
        }
    }

    /// The registry failure underneath, when there is one.
    pub fn registry(&self) -> Option<&ferry_registry::Error> {
        match self {
            Error::Registry(error) => Some(error),
            _ => None,
        }
    }
}

impl From<ferry_registry::digest::DigestError> for Error {
    fn from(error: ferry_registry::digest::DigestError) -> Error {
        Error::Registry(error.into())
    }
}

impl From<ferry_registry::manifest::ManifestError> for Error {
    fn from(error: ferry_registry::manifest::ManifestError) -> Error {
        Error::Registry(error.into())
    }
}
