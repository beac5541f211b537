//! Small helpers shared by the rig's modules.

use std::net::TcpListener;
use std::path::Path;
use std::process::Child;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of the given bytes, the form registries use in `Docker-Content-Digest`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The sha256 of what gzip (or multi-member gzip) `bytes` decompress to, streamed: a layer's
/// `diff_id` from its blob.
pub fn gunzipped_sha256_digest(bytes: &[u8]) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut flate2::read::MultiGzDecoder::new(bytes), &mut hasher)?;
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 3339 UTC timestamp; written by hand to avoid pulling a date crate into the rig.
pub fn rfc3339(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Accepts `host:port` or a full URL and returns a base URL without a trailing slash.
pub fn base_url(registry: &str) -> String {
    let trimmed = registry.trim_end_matches('/');
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    }
}

/// A port that was free a moment ago. Another process may take it before the caller binds,
/// so callers that hand it to a child process retry with a new one.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

pub fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

pub fn read_lossy(path: &Path) -> String {
    read_lossy_from(path, 0)
}

pub fn read_lossy_from(path: &Path, offset: usize) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(b.get(offset..).unwrap_or_default()).into_owned())
        .unwrap_or_default()
}

/// The last lines of a child's log, for error messages.
pub fn log_tail(path: &Path) -> String {
    let log = read_lossy(path);
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn base_url_forms() {
        assert_eq!(base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(base_url("http://h:1/"), "http://h:1");
    }
}
