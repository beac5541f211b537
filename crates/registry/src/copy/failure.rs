//! How a copy that did not finish says so: the cause, and the tags it had already set.

use std::fmt;

use super::report::TagEntry;
use crate::error::Error;

/// A copy that failed or was cancelled. `tags` lists the tags it had already set (created or
/// moved), in order; every other tag still points where it did before.
#[derive(Debug)]
pub struct CopyError {
    pub error: Error,
    pub tags: Vec<TagEntry>,
    /// Stopped by the copy's cancellation token rather than by a failure.
    pub cancelled: bool,
}

impl CopyError {
    pub(crate) fn cancelled(source: &str, destination: &str, tags: Vec<TagEntry>) -> Self {
        CopyError {
            error: Error::Other(format!(
                "the copy of {source} to {destination} was cancelled"
            )),
            tags,
            cancelled: true,
        }
    }
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if self.tags.is_empty() {
            if self.cancelled {
                write!(f, " before any tag was set")?;
            }
            return Ok(());
        }
        let set: Vec<String> = self
            .tags
            .iter()
            .map(|t| match &t.previous {
                Some(previous) => format!("{} (moved from {previous} to {})", t.tag, t.digest),
                None => format!("{} (created at {})", t.tag, t.digest),
            })
            .collect();
        write!(f, "; tags already set: {}", set.join(", "))
    }
}

impl std::error::Error for CopyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// For callers that only need the cause. The tags already set stay in the message.
impl From<CopyError> for Error {
    fn from(failure: CopyError) -> Self {
        if failure.tags.is_empty() && !failure.cancelled {
            failure.error
        } else {
            Error::Other(failure.to_string())
        }
    }
}
