//! GitHub Actions workflow commands (`::add-mask::`, `::error::`, `::group::`) and the
//! environment files (`$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`).
//!
//! The runner parses commands from the step's stdout line by line, so each one is written as a
//! whole line and flushed at once: a mask that sat in a buffer while something else printed
//! would come too late.

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use ferry_registry::ecr::{EcrToken, TokenObserver};

/// Escapes a command's message the way the runner unescapes it; without this a multi-line
/// cause would end the command at its first newline and print the rest as a plain log line.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command property (`title=…`), where `:` and `,` are separators too.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

pub fn add_mask_line(secret: &str) -> String {
    format!("::add-mask::{}", escape_data(secret))
}

pub fn error_line(title: &str, message: &str) -> String {
    format!(
        "::error title={}::{}",
        escape_property(title),
        escape_data(message)
    )
}

pub fn warning_line(title: &str, message: &str) -> String {
    format!(
        "::warning title={}::{}",
        escape_property(title),
        escape_data(message)
    )
}

pub fn group_line(title: &str) -> String {
    format!("::group::{}", escape_data(title))
}

pub const END_GROUP: &str = "::endgroup::";

/// Prints one command line on stdout and flushes it.
pub fn command(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout leaves nothing to report to: the runner is gone.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The mask lines for an ECR login: the password, and the base64 `AWS:password` token that
/// GetAuthorizationToken returns and docker stores in config.json — either one leaked into a
/// log would let anyone with read access push to the registry for 12 hours.
pub fn token_masks(token: &EcrToken) -> Vec<String> {
    if token.password.is_empty() {
        return Vec::new();
    }
    let basic = base64(format!("{}:{}", token.username, token.password).as_bytes());
    vec![add_mask_line(&token.password), add_mask_line(&basic)]
}

/// A token observer that masks every ECR login the moment it is fetched, before the client
/// uses it (and so before any error or log line could contain it).
pub fn masking_observer() -> TokenObserver {
    // Each registry's client fetches its own login; one mask per secret keeps the log short.
    let masked = Mutex::new(HashSet::new());
    Arc::new(move |token: &EcrToken| {
        let mut masked = masked.lock().unwrap_or_else(|e| e.into_inner());
        for line in token_masks(token) {
            if masked.insert(line.clone()) {
                command(&line);
            }
        }
    })
}

/// `name=value`, or the heredoc form for a value that spans lines.
pub fn output_entry(name: &str, value: &str) -> String {
    if value.contains(['\n', '\r']) {
        heredoc_entry(name, value)
    } else {
        format!("{name}={value}\n")
    }
}

/// `name<<DELIM`, the value, `DELIM`: with a random delimiter that occurs nowhere in the value,
/// so no value can end the block early and smuggle in outputs of its own.
pub fn heredoc_entry(name: &str, value: &str) -> String {
    let mut delimiter = random_delimiter();
    while value.contains(&delimiter) {
        delimiter = random_delimiter();
    }
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

/// Appends to an environment file the runner gave us (it holds what earlier steps wrote).
pub fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// 128 random bits without a dependency: std seeds every `RandomState` from the OS.
pub fn random_hex() -> String {
    let mut hex = String::new();
    for _ in 0..2 {
        let _ = write!(hex, "{:016x}", RandomState::new().build_hasher().finish());
    }
    hex
}

fn random_delimiter() -> String {
    format!("ghadelimiter_{}", random_hex())
}

/// Standard base64 with padding (RFC 4648), for the one token this crate encodes.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn escapes_as_the_runner_unescapes() {
        assert_eq!(escape_data("100% done\r\nnext"), "100%25 done%0D%0Anext");
        assert_eq!(
            escape_property("push: failed, retry"),
            "push%3A failed%2C retry"
        );
        assert_eq!(
            error_line("ferry push failed", "a\nb: 50%"),
            "::error title=ferry push failed::a%0Ab: 50%25"
        );
        assert_eq!(group_line("Push app:1"), "::group::Push app:1");
    }

    #[test]
    fn masks_the_password_and_the_docker_token() {
        let token = EcrToken {
            username: "AWS".into(),
            password: "s3cret%pass".into(),
            expires_at: None,
            proxy_endpoint: None,
        };
        let expected = base64::engine::general_purpose::STANDARD.encode("AWS:s3cret%pass");
        assert_eq!(
            token_masks(&token),
            vec![
                "::add-mask::s3cret%25pass".to_string(),
                format!("::add-mask::{expected}")
            ]
        );
        let empty = EcrToken {
            password: String::new(),
            ..token
        };
        assert!(token_masks(&empty).is_empty());
    }

    #[test]
    fn base64_matches_the_reference_encoder() {
        let engine = base64::engine::general_purpose::STANDARD;
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base64(&bytes), engine.encode(&bytes), "length {len}");
        }
    }

    #[test]
    fn single_line_outputs_are_plain_and_multi_line_ones_heredocs() {
        assert_eq!(output_entry("digest", "sha256:ab"), "digest=sha256:ab\n");
        let entry = output_entry("image-uris", "r/a:1\nr/a:2");
        let mut lines = entry.lines();
        let first = lines.next().unwrap_or_default();
        let delimiter = first.strip_prefix("image-uris<<").expect("heredoc header");
        assert!(delimiter.starts_with("ghadelimiter_") && delimiter.len() > 40);
        assert_eq!(lines.collect::<Vec<_>>(), ["r/a:1", "r/a:2", delimiter]);
        assert!(entry.ends_with('\n'));
        assert_ne!(random_hex(), random_hex());
    }

    #[test]
    fn append_keeps_what_is_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out");
        std::fs::write(&path, "earlier=1\n").expect("seed");
        append(&path, "digest=sha256:ab\n").expect("append");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "earlier=1\ndigest=sha256:ab\n"
        );
    }
}
