//! Log output on stderr, from `-v`/`-vv`/`-vvv` or `FERRY_LOG`, that never carries a secret.
//!
//! Two guards, because either alone has a gap:
//! - a cap: code other than ferry's own logs at most at debug, whatever the filter asks for.
//!   The AWS SDK's trace output holds whole responses (GetAuthorizationToken's is a registry
//!   login) and the HTTP stack's holds headers; this is the only guard that works for a secret
//!   logged before ferry itself has seen it.
//! - redaction: every line is written with each secret the process has handled (registry
//!   passwords and their base64 forms, bearer tokens, the AWS keys in the environment) blanked
//!   out, so a secret that reaches a message any other way is still not printed.

use std::io::{self, Write};

use ferry_registry::secrets;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// The most detail code outside ferry may log.
const THIRD_PARTY_CAP: Level = Level::DEBUG;

/// AWS credentials a user may have in the environment; remembered so they are redacted too.
const SECRET_VARIABLES: &[&str] = &["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

pub fn init(verbose: u8) {
    // The AWS SDK warns about things a user did on purpose (AWS_CONFIG_FILE pointing nowhere);
    // only its errors are worth a line by default.
    let default = match verbose {
        0 => "error,ferry=warn,ferry_registry=warn",
        1 => "warn,ferry=info,ferry_registry=info",
        2 => "info,ferry=debug,ferry_registry=debug",
        _ => "trace",
    };
    for name in SECRET_VARIABLES {
        if let Ok(value) = std::env::var(name) {
            secrets::remember(&value);
        }
    }
    let filter = EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(RedactingStderr)
        // Colour codes only help a terminal; in a CI log or a file they are noise.
        .with_ansi(io::stderr().is_terminal())
        .with_target(false)
        .with_filter(filter.and(filter_fn(within_cap)));
    tracing_subscriber::registry().with(layer).init();
}

/// Whether an event or span is within what its crate may log.
fn within_cap(metadata: &Metadata<'_>) -> bool {
    is_ferry(metadata.target()) || *metadata.level() <= THIRD_PARTY_CAP
}

fn is_ferry(target: &str) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    matches!(krate, "ferry" | "ferry_registry")
}

struct RedactingStderr;

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter
    }
}

/// The fmt layer formats an event whole, then hands it over in one `write_all`: each call here
/// sees a complete line, so no secret can straddle two calls.
struct RedactingWriter;

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr()
            .lock()
            .write_all(secrets::redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ferrys_own_targets_are_uncapped() {
        for target in ["ferry", "ferry::commands::push", "ferry_registry::retry"] {
            assert!(is_ferry(target), "{target}");
        }
        for target in [
            "aws_smithy_runtime::client::orchestrator",
            "aws_sdk_ecr",
            "hyper_util::client",
            "reqwest::connect",
            "h2::codec",
            "rustls::client",
            "ferrous",
            "ferry_registryx",
        ] {
            assert!(!is_ferry(target), "{target}");
        }
    }
}
