//! `command: copy`: an image from any registry into ECR, with the copy's outputs and job
//! summary.

use std::fmt::Write as _;

use ferry_registry::copy::ManifestOutcome;

use super::inputs::{Lookup, Staged};
use super::summary::{cell, code};
use super::workflow::{self, output_entry};
use crate::cli::CopyArgs;
use crate::commands::copy::{self, CopyOutcome};
use crate::output::{human_size, short_media_type};

pub async fn run(inputs: Staged<CopyArgs>, env: Lookup<'_>) -> anyhow::Result<()> {
    let source = inputs.args.source.clone();
    let work = copy::execute(&inputs.args, Some(workflow::masking_observer()), None);
    let title = format!("Copy {source} to {}", inputs.args.destination);
    let result = super::run_step("copy", &title, &source, work, env).await;
    // Removes the inline policies staged in /tmp: they may hold account ids and ARNs.
    drop(inputs);
    let outcome = result?;
    print!("{}", crate::output::copy_summary(&outcome.report));
    super::write_files(env, &outputs(&outcome), &summary(&outcome))
}

/// As for a push (`registry`, `repository-uri`, `image-uri`, `image-uris`, `digest`: the
/// destination's), plus `source-digest`, what the source reference resolved to.
fn outputs(outcome: &CopyOutcome) -> String {
    super::outputs::image_outputs(
        &outcome.registry,
        &outcome.repository_uri,
        &outcome.image_uris,
        outcome.report.digest.as_str(),
    ) + &output_entry("source-digest", outcome.report.source_digest.as_str())
}

/// Source → destination, each tag's previous and new digest, each manifest, bytes copied.
fn summary(outcome: &CopyOutcome) -> String {
    let report = &outcome.report;
    let mut md = String::new();
    let created = if outcome.repository_created() {
        " (repository created)"
    } else {
        ""
    };
    let _ = writeln!(md, "### ferry copy: {}\n", code(&report.source));
    let _ = writeln!(
        md,
        "{} → {}{created}\n",
        code(&report.source),
        code(&outcome.repository_uri)
    );
    let _ = writeln!(
        md,
        "| tag | previous digest | new digest | fate |\n|---|---|---|---|"
    );
    for tag in &report.tags {
        let previous = tag.previous.as_ref().map(|d| code(d.as_str()));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            cell(&code(&tag.tag)),
            previous.as_deref().unwrap_or("-"),
            code(tag.digest.as_str()),
            tag.outcome.as_str()
        );
    }
    let _ = writeln!(
        md,
        "\n| platform | media type | size | digest | |\n|---|---|---|---|---|"
    );
    for m in report.manifests.iter().chain(&report.referrers) {
        let fate = match m.outcome {
            ManifestOutcome::Pushed => "pushed",
            ManifestOutcome::Present => "present",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {fate} |",
            cell(m.platform.as_deref().unwrap_or("-")),
            short_media_type(&m.media_type),
            human_size(m.size),
            code(m.digest.as_str())
        );
    }
    let t = &report.totals;
    let _ = writeln!(
        md,
        "\nCopied {} in {} {} ({} mounted, {} already there); source digest {}.",
        human_size(t.bytes_uploaded),
        t.blobs_uploaded,
        if t.blobs_uploaded == 1 {
            "blob"
        } else {
            "blobs"
        },
        t.blobs_mounted,
        t.blobs_skipped,
        code(report.source_digest.as_str())
    );
    md
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ferry_registry::copy::{CopyReport, ManifestEntry, TagEntry, TagOutcome, Totals};
    use ferry_registry::digest::Digest;

    use super::*;

    fn outcome() -> CopyOutcome {
        let index = Digest::sha256_of(b"index");
        let old = Digest::sha256_of(b"old");
        let child = Digest::sha256_of(b"amd64");
        let registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com".to_string();
        let repository_uri = format!("{registry}/mirror/alpine");
        let manifest = |platform: Option<&str>, digest: &Digest, outcome| ManifestEntry {
            platform: platform.map(str::to_string),
            digest: digest.clone(),
            size: 1536,
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            outcome,
        };
        CopyOutcome {
            image_uris: vec![
                format!("{repository_uri}:3.20"),
                format!("{repository_uri}:stable"),
            ],
            registry,
            repository_uri,
            report: CopyReport {
                source: "docker.io/library/alpine:3.20".into(),
                destination: "x".into(),
                source_digest: index.clone(),
                digest: index.clone(),
                media_type: "application/vnd.oci.image.index.v1+json".into(),
                size: 1536,
                manifests: vec![
                    manifest(None, &index, ManifestOutcome::Pushed),
                    manifest(Some("linux/amd64"), &child, ManifestOutcome::Present),
                ],
                tags: vec![
                    TagEntry {
                        tag: "3.20".into(),
                        outcome: TagOutcome::Created,
                        previous: None,
                        digest: index.clone(),
                    },
                    TagEntry {
                        tag: "stable".into(),
                        outcome: TagOutcome::Moved,
                        previous: Some(old),
                        digest: index,
                    },
                ],
                referrers: Vec::new(),
                totals: Totals {
                    blobs_uploaded: 3,
                    bytes_uploaded: 3 * 1024 * 1024,
                    blobs_skipped: 1,
                    ..Totals::default()
                },
                dry_run: false,
            },
            repository: None,
        }
    }

    #[test]
    fn outputs_are_the_destination_and_the_source_digest() {
        let o = outcome();
        let text = outputs(&o);
        let lines: Vec<&str> = text.lines().collect();
        let index = Digest::sha256_of(b"index");
        assert_eq!(
            lines[2],
            "image-uri=123456789012.dkr.ecr.eu-west-1.amazonaws.com/mirror/alpine:3.20"
        );
        assert!(lines[3].starts_with("image-uris<<"), "{text}");
        assert_eq!(lines[7], format!("digest={index}"));
        assert_eq!(lines[8], format!("source-digest={index}"));
        assert_eq!(lines.len(), 9, "{text}");
    }

    #[test]
    fn summary_has_each_tag_and_manifest() {
        let md = summary(&outcome());
        let index = Digest::sha256_of(b"index");
        let old = Digest::sha256_of(b"old");
        let child = Digest::sha256_of(b"amd64");
        assert!(md.starts_with(
            "### ferry copy: `docker.io/library/alpine:3.20`\n\n`docker.io/library/alpine:3.20` → \
             `123456789012.dkr.ecr.eu-west-1.amazonaws.com/mirror/alpine`\n"
        ));
        assert!(
            md.contains(&format!("| `3.20` | - | `{index}` | created |")),
            "{md}"
        );
        assert!(
            md.contains(&format!("| `stable` | `{old}` | `{index}` | moved |")),
            "{md}"
        );
        assert!(
            md.contains(&format!("| - | oci index | 1.5 KiB | `{index}` | pushed |")),
            "{md}"
        );
        assert!(
            md.contains(&format!(
                "| linux/amd64 | oci index | 1.5 KiB | `{child}` | present |"
            )),
            "{md}"
        );
        assert!(
            md.contains("Copied 3.0 MiB in 3 blobs (0 mounted, 1 already there)"),
            "{md}"
        );
    }
}
