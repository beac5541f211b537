//! Token scopes (`repository:<name>:pull,push`), as the Bearer token flow asks for them.

use std::fmt;

/// Access to one repository. Pushing always asks for pull too: registries need it to answer
/// the HEAD requests that precede every upload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub repository: String,
    pub push: bool,
}

impl Scope {
    pub fn pull(repository: impl Into<String>) -> Self {
        Self {
            repository: repository.into(),
            push: false,
        }
    }

    pub fn push(repository: impl Into<String>) -> Self {
        Self {
            repository: repository.into(),
            push: true,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let actions = if self.push { "pull,push" } else { "pull" };
        write!(f, "repository:{}:{actions}", self.repository)
    }
}

/// The cache key for a set of scopes: order-independent, so `[a, b]` and `[b, a]` share a token.
pub(crate) fn scopes_key(scopes: &[Scope]) -> String {
    let mut parts: Vec<String> = scopes.iter().map(Scope::to_string).collect();
    parts.sort();
    parts.dedup();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_token_spec() {
        assert_eq!(
            Scope::pull("library/nginx").to_string(),
            "repository:library/nginx:pull"
        );
        assert_eq!(Scope::push("a/b").to_string(), "repository:a/b:pull,push");
    }

    #[test]
    fn key_ignores_order_and_duplicates() {
        let a = scopes_key(&[Scope::push("x"), Scope::pull("y")]);
        let b = scopes_key(&[Scope::pull("y"), Scope::push("x"), Scope::pull("y")]);
        assert_eq!(a, b);
    }
}
