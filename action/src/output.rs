//! What ferry prints: summary tables, sizes, and one-line error causes.

use std::fmt::Write;

use ferry_registry::copy::{CopyReport, ManifestOutcome};

/// The whole cause chain of an error on one line ("source: invalid reference …"), with every
/// secret the process handled blanked out: this is what the CLI, the Action's annotations and
/// its job summary show.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        // The registry crate's messages already carry the useful part of their causes; the
        // HTTP stack's own layers below them only repeat the URL.
        if cause.downcast_ref::<ferry_registry::Error>().is_some()
            || cause.downcast_ref::<ferry_local_image::Error>().is_some()
        {
            break;
        }
    }
    ferry_registry::secrets::redact(&parts.join(": ").replace('\n', " ")).into_owned()
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
    digest_line(&mut out, &report.digest, &report.media_type, report.size);
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
    digest_line(&mut out, &outcome.digest, &outcome.media_type, outcome.size);
    for (tag, uri) in outcome.tags.iter().zip(&outcome.image_uris) {
        let _ = writeln!(out, "{:<10} {uri}", tag.outcome);
    }
    let _ = writeln!(
        out,
        "\nlayers: {} uploaded ({}), {} already there ({} mounted from another repository); \
         {:.1} s",
        outcome.layers_uploaded,
        human_size(outcome.bytes_uploaded),
        outcome.layers_skipped,
        outcome.blobs_mounted,
        outcome.elapsed.as_secs_f64()
    );
    out
}

/// `manifest create`: the list, its children and each tag's fate.
pub fn list_summary(outcome: &crate::commands::manifest::ManifestOutcome) -> String {
    let report = &outcome.report;
    let mut out = String::new();
    let verb = if report.dry_run {
        "Would push"
    } else {
        "Pushed"
    };
    let _ = writeln!(out, "{verb} manifest list {}", outcome.repository_uri);
    digest_line(&mut out, &report.digest, &report.media_type, report.size);
    list_rows(&mut out, &report.manifests, true);
    if !report.copied.is_empty() {
        let verb = if report.dry_run {
            "would be brought"
        } else {
            "brought"
        };
        let _ = writeln!(
            out,
            "\n{verb} from other repositories: {}",
            report.copied.join(", ")
        );
    }
    let _ = writeln!(out);
    for (tag, uri) in report.tags.iter().zip(&outcome.image_uris) {
        let fate = match (report.dry_run, tag.outcome.as_str()) {
            (true, "unchanged") => "unchanged".to_string(),
            (true, fate) => format!("would be {fate}"),
            (false, fate) => fate.to_string(),
        };
        let _ = writeln!(out, "{fate:<10} {uri}");
    }
    out
}

/// `manifest inspect`: a list's children, or an image's config and layers.
pub fn inspection(inspection: &ferry_registry::multi_arch::Inspection) -> String {
    use ferry_registry::multi_arch::InspectKind;
    let mut out = String::new();
    let _ = writeln!(out, "{}", inspection.reference);
    digest_line(
        &mut out,
        &inspection.digest,
        &inspection.media_type,
        inspection.size,
    );
    match &inspection.kind {
        InspectKind::List { manifests } => list_rows(&mut out, manifests, false),
        InspectKind::Image {
            config,
            config_size,
            platform,
            layers,
            total_size,
        } => {
            let _ = writeln!(out, "platform {}", platform.as_deref().unwrap_or("-"));
            let _ = writeln!(out, "config   {config} ({})", human_size(*config_size));
            layer_rows(&mut out, layers, "");
            let _ = writeln!(
                out,
                "total    {} (config and layers)",
                human_size(*total_size)
            );
        }
    }
    out
}

/// `digest sha256:… (docker list, 1.2 KiB)` and a blank line: the head of every result.
fn digest_line(out: &mut String, digest: &impl std::fmt::Display, media_type: &str, size: u64) {
    let _ = writeln!(
        out,
        "digest {digest} ({}, {})\n",
        short_media_type(media_type),
        human_size(size)
    );
}

fn list_rows(out: &mut String, rows: &[ferry_registry::multi_arch::ListEntry], source: bool) {
    let _ = writeln!(
        out,
        "{:<30} {:<16} {:<72} {:>10}{}",
        "PLATFORM",
        "MEDIA TYPE",
        "DIGEST",
        "SIZE",
        if source { "  SOURCE" } else { "" }
    );
    for row in rows {
        let platform = if row.attestation {
            format!("{} (attestation)", row.platform)
        } else {
            row.platform.clone()
        };
        let _ = writeln!(
            out,
            "{platform:<30} {:<16} {:<72} {:>10}{}",
            short_media_type(&row.media_type),
            row.digest.as_str(),
            human_size(row.size),
            match (&row.source, source) {
                (Some(s), true) => format!("  {s}"),
                _ => String::new(),
            }
        );
        if let Some(layers) = &row.layers {
            layer_rows(out, layers, "    ");
        }
    }
}

fn layer_rows(
    out: &mut String,
    layers: &[ferry_registry::multi_arch::inspect::Layer],
    indent: &str,
) {
    for (i, layer) in layers.iter().enumerate() {
        let _ = writeln!(
            out,
            "{indent}layer {:<3} {} {:>10}  {}",
            i + 1,
            layer.digest.as_str(),
            human_size(layer.size),
            layer.media_type
        );
    }
}

/// `ferry mirror`'s table for one mirror: a line per tag and per manifest list.
pub fn mirror_table(mirror: &crate::commands::mirror::MirrorResult, dry_run: bool) -> String {
    let status = &mirror.status;
    let mut out = String::new();
    let destination = mirror.repository_uri.as_deref().unwrap_or("?");
    let plan = if dry_run { " (dry run)" } else { "" };
    let _ = writeln!(
        out,
        "mirror {}: {} → {destination}{plan}",
        mirror.name, mirror.source
    );
    if let Some(error) = &mirror.error {
        let _ = writeln!(out, "  failed: {error}");
        return out;
    }
    let _ = writeln!(
        out,
        "  {:<24} {:<8} {:<19} {:<19} NOTE",
        "TAG", "STATE", "SOURCE DIGEST", "DESTINATION DIGEST"
    );
    let lists = status.manifest_lists.iter().map(|l| (true, l));
    for (is_list, entry) in status.tags.iter().map(|t| (false, t)).chain(lists) {
        let tag = if is_list {
            format!("{} (list)", entry.tag)
        } else {
            entry.tag.clone()
        };
        let _ = writeln!(
            out,
            "  {:<24} {:<8} {:<19} {:<19} {}",
            tag,
            tag_state(entry),
            short_digest(entry.source_digest.as_deref()),
            short_digest(entry.digest.as_deref()),
            tag_note(entry),
        );
    }
    out
}

/// `synced`, `failed`, `pending` or `skipped`.
pub fn tag_state(entry: &ferry_registry::mirror::TagStatus) -> String {
    format!("{:?}", entry.state).to_lowercase()
}

/// Why a tag failed or was skipped, else the platforms copied.
pub fn tag_note(entry: &ferry_registry::mirror::TagStatus) -> String {
    match (&entry.message, entry.platforms.is_empty()) {
        (Some(message), _) => message.clone(),
        (None, false) => entry.platforms.join(", "),
        (None, true) => String::new(),
    }
}

/// `sha256:0123456789ab`: enough to tell digests apart in a table (`--json` has them whole).
fn short_digest(digest: Option<&str>) -> String {
    match digest {
        Some(d) => d.chars().take(19).collect(),
        None => "-".into(),
    }
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

    #[test]
    fn errors_never_show_a_handled_secret() {
        ferry_registry::secrets::remember("token-the-registry-sent");
        let error = anyhow::anyhow!("registry said: bad token token-the-registry-sent")
            .context("GET https://r.example/v2/");
        assert_eq!(
            one_line(&error),
            "GET https://r.example/v2/: registry said: bad token <redacted>"
        );
    }
}
