//! `command: copy`: an image from any registry into ECR, with the copy's outputs and job
//! summary.

use std::fmt::Write as _;

use ferry_registry::copy::ManifestOutcome;

use super::inputs::{Lookup, Staged};
use super::summary::{cell, code};
use super::workflow::{self, heredoc_entry, output_entry};
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
    let first = outcome.image_uris.first().map(String::as_str).unwrap_or("");
    [
        output_entry("registry", &outcome.registry),
        output_entry("repository-uri", &outcome.repository_uri),
        output_entry("image-uri", first),
        heredoc_entry("image-uris", &outcome.image_uris.join("\n")),
        output_entry("digest", outcome.report.digest.as_str()),
        output_entry("source-digest", outcome.report.source_digest.as_str()),
    ]
    .concat()
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
