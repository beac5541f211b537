//! What can make a reconcile fail. Each variant has a metric label, so
//! `ferry_operator_reconcile_errors_total{reason}` says which part broke without parsing text.

/// A reconcile that did not reach its goal; the controller retries it with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The Secret named by `spec.source.credentialsSecretRef` is missing or unusable.
    #[error("credentials: {0}")]
    Credentials(String),
    /// AWS access for the destination could not be set up.
    #[error("AWS: {0}")]
    Aws(String),
    /// The sync ran but the mirror or some of its tags failed; the status says which.
    #[error("sync failed: {0}")]
    Sync(String),
    /// The object cannot be handled at all (no namespace: a cluster-scoped copy of the kind).
    #[error("{0}")]
    Object(String),
}

impl Error {
    /// The `reason` label of the error counter.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube_api",
            Error::Credentials(_) => "credentials",
            Error::Aws(_) => "aws",
            Error::Sync(_) => "sync",
            Error::Object(_) => "object",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
