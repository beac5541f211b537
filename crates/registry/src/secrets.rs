//! Every secret this process has handled (registry passwords, their base64 `user:password`
//! forms, bearer tokens), so that whatever writes logs or errors can blank them out.
//!
//! Why a process-wide set: a secret reaches a log line through code that never saw it as one
//! (a library's debug output, an error that quotes a response), so redaction has to happen
//! where text leaves the process, and that place only needs to ask "what is secret?".

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::RwLock;

/// What a redacted secret reads as.
pub const REDACTED: &str = "<redacted>";

/// Shorter strings are not remembered: blanking out every "AWS" or "1" would mangle logs and
/// protect nothing.
const MIN_LEN: usize = 8;

static SECRETS: RwLock<BTreeSet<String>> = RwLock::new(BTreeSet::new());

/// Remembers `secret` for [`redact`]. Cheap when it is already known.
pub fn remember(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_LEN {
        return;
    }
    let known = SECRETS
        .read()
        .map(|set| set.contains(secret))
        .unwrap_or(false);
    if !known {
        let mut set = SECRETS.write().unwrap_or_else(|e| e.into_inner());
        set.insert(secret.to_string());
    }
}

/// Remembers an `Authorization` header value: the whole value and its credentials part
/// (`Basic <base64>`, `Bearer <token>`).
pub fn remember_authorization(value: &str) {
    remember(value);
    if let Some((_, credentials)) = value.split_once(' ') {
        remember(credentials);
    }
}

/// `text` with every remembered secret replaced by [`REDACTED`]; borrowed when none occurs.
pub fn redact(text: &str) -> Cow<'_, str> {
    let set = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    // Longest first, so a password inside a longer token does not leave the token's rest.
    let mut secrets: Vec<&String> = set.iter().collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_secrets_are_blanked_out() {
        remember("s3cret-password-1");
        remember_authorization("Basic QVdTOnMzY3JldC1wYXNzd29yZC0x");
        remember("short");
        let line =
            "user AWS pass s3cret-password-1 header Basic QVdTOnMzY3JldC1wYXNzd29yZC0x short";
        assert_eq!(
            redact(line),
            "user AWS pass <redacted> header <redacted> short"
        );
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }
}
