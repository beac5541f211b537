//! What ferry prints: summary tables, sizes, and one-line error causes.

use std::fmt::Write;

use ferry_registry::copy::{CopyReport, ManifestOutcome};

/// The whole cause chain of an error on one line ("source: invalid reference …").
pub fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        // The registry crate's messages already carry the useful part of their causes; the
        // HTTP stack's own layers below them only repeat the URL.
        if cause.downcast_ref::<ferry_registry::Error>().is_some() {
            break;
        }
    }
    parts.join(": ").replace('\n', " ")
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `application/vnd.oci.image.index.v1+json` → `oci index`.
pub fn short_media_type(media_type: &str) -> &str {
    match media_type {
        "application/vnd.oci.image.index.v1+json" => "oci index",
        "application/vnd.oci.image.manifest.v1+json" => "oci manifest",
        "application/vnd.docker.distribution.manifest.list.v2+json" => "docker list",
        "application/vnd.docker.distribution.manifest.v2+json" => "docker manifest",
        other => other,
    }
}

pub fn copy_summary(report: &CopyReport) -> String {
    let mut out = String::new();
    let verb = if report.dry_run {
        "Would copy"
    } else {
        "Copied"
    };
    let _ = writeln!(out, "{verb} {} -> {}", report.source, report.destination);
    let _ = writeln!(
        out,
        "digest {} ({}, {})\n",
        report.digest,
        short_media_type(&report.media_type),
        human_size(report.size)
    );
    let _ = writeln!(
        out,
        "{:<16} {:<73} {:>10}  {:<16} STATUS",
        "PLATFORM", "DIGEST", "SIZE", "MEDIA TYPE"
    );
    for m in report.manifests.iter().chain(report.referrers.iter()) {
        let status = match (m.outcome, report.dry_run) {
            (ManifestOutcome::Present, _) => "present",
            (ManifestOutcome::Pushed, true) => "would push",
            (ManifestOutcome::Pushed, false) => "pushed",
        };
        let _ = writeln!(
            out,
            "{:<16} {:<73} {:>10}  {:<16} {}",
            m.platform.as_deref().unwrap_or("-"),
            m.digest.as_str(),
            human_size(m.size),
            short_media_type(&m.media_type),
            status
        );
    }
    if !report.tags.is_empty() {
        let _ = writeln!(out);
        for tag in &report.tags {
            let _ = writeln!(out, "tag {:<30} {}", tag.tag, tag.outcome.as_str());
        }
    }
    let t = &report.totals;
    let r = &t.requests;
    let _ = writeln!(
        out,
        "\nblobs: {} uploaded ({}), {} mounted, {} skipped; manifests pushed: {}; requests: {} \
         (GET {}, HEAD {}, PUT {}, POST {}); {:.1} s",
        t.blobs_uploaded,
        human_size(t.bytes_uploaded),
        t.blobs_mounted,
        t.blobs_skipped,
        t.manifests_pushed,
        r.total(),
        r.get,
        r.head,
        r.put,
        r.post,
        t.elapsed_ms as f64 / 1000.0
    );
    out
}

pub fn push_summary(outcome: &crate::commands::push::PushOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Pushed {} -> {}",
        outcome.source, outcome.repository_uri
    );
    let _ = writeln!(
        out,
        "digest {} ({}, {})\n",
        outcome.digest,
        short_media_type(&outcome.media_type),
        human_size(outcome.size)
    );
    for (tag, uri) in outcome.tags.iter().zip(&outcome.image_uris) {
        let _ = writeln!(out, "{:<10} {uri}", tag.outcome);
    }
    let _ = writeln!(
        out,
        "\nlayers: {} uploaded ({}), {} already there; {:.1} s",
        outcome.layers_uploaded,
        human_size(outcome.bytes_uploaded),
        outcome.layers_skipped,
        outcome.elapsed.as_secs_f64()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(20 * 1024 * 1024), "20.0 MiB");
    }
}
