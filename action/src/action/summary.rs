//! The job summary (`$GITHUB_STEP_SUMMARY`): Markdown that the run's page shows.

use std::fmt::Write;

use crate::commands::manifest::ManifestOutcome;
use crate::commands::push::PushOutcome;
use crate::output::{human_size, short_media_type};

pub fn push_summary(outcome: &PushOutcome) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "### ferry push: {}\n", code(&outcome.source));
    let created = if outcome.repository_created {
        " (repository created)"
    } else {
        ""
    };
    let _ = writeln!(
        md,
        "{} → {}{created}\n",
        code(&outcome.source),
        code(&outcome.repository_uri)
    );
    let _ = writeln!(md, "| tag | fate | image |\n|---|---|---|");
    for (tag, uri) in outcome.tags.iter().zip(&outcome.image_uris) {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            cell(&code(&tag.tag)),
            cell(&tag.outcome),
            cell(&code(uri))
        );
    }
    let skipped = match (outcome.layers_skipped, outcome.blobs_mounted) {
        (0, _) => String::new(),
        (n, 0) => format!(", {n} already in the repository"),
        (n, m) => format!(", {n} already in the repository ({m} mounted from another)"),
    };
    let _ = writeln!(md, "\n| | |\n|---|---|");
    let rows = [
        ("digest", code(&outcome.digest)),
        (
            "media type",
            short_media_type(&outcome.media_type).to_string(),
        ),
        ("size", human_size(outcome.size)),
        (
            "uploaded",
            format!(
                "{} in {} {}{skipped}",
                human_size(outcome.bytes_uploaded),
                outcome.layers_uploaded,
                plural(outcome.layers_uploaded, "layer")
            ),
        ),
        ("time", format!("{:.1} s", outcome.elapsed.as_secs_f64())),
    ];
    for (name, value) in rows {
        let _ = writeln!(md, "| {name} | {} |", cell(&value));
    }
    for note in &outcome.notes {
        let _ = writeln!(md, "\n> **Note:** {}", note.replace('\n', " "));
    }
    md
}

/// What the summary says when a command failed: the cause, and what to do about it if known.
pub fn failure_summary(command: &str, subject: &str, cause: &str, hint: Option<&str>) -> String {
    let mut md = format!("### ferry {command} failed: {}\n\n", code(subject));
    let _ = writeln!(md, "```text\n{}\n```", cause.replace("```", "'''"));
    if let Some(hint) = hint {
        let _ = writeln!(md, "\n{hint}");
    }
    md
}

/// `manifest`: the list, a row per child (platform, digest, size) and each tag's fate.
pub fn manifest_summary(outcome: &ManifestOutcome) -> String {
    let report = &outcome.report;
    let mut md = String::new();
    let created = if outcome.repository_created {
        " (repository created)"
    } else {
        ""
    };
    let _ = writeln!(
        md,
        "### ferry manifest: {}{created}\n",
        code(&outcome.repository_uri)
    );
    let _ = writeln!(
        md,
        "{} {}, {}, {} {}\n",
        short_media_type(&report.media_type),
        code(report.digest.as_str()),
        human_size(report.size),
        report.manifests.len(),
        plural(report.manifests.len() as u64, "image")
    );
    let _ = writeln!(
        md,
        "| platform | digest | size | source |\n|---|---|---|---|"
    );
    for m in &report.manifests {
        let platform = if m.attestation {
            format!("{} (attestation)", m.platform)
        } else {
            m.platform.clone()
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            cell(&platform),
            cell(&code(m.digest.as_str())),
            human_size(m.size),
            cell(&code(m.source.as_deref().unwrap_or("-")))
        );
    }
    let _ = writeln!(md, "\n| tag | fate | image |\n|---|---|---|");
    for (tag, uri) in report.tags.iter().zip(&outcome.image_uris) {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            cell(&code(&tag.tag)),
            tag.outcome.as_str(),
            cell(&code(uri))
        );
    }
    if !report.copied.is_empty() {
        let _ = writeln!(
            md,
            "\nBrought from other repositories: {}",
            report
                .copied
                .iter()
                .map(|c| code(c))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    md
}

/// An inline code span that survives any backticks in the text.
pub(super) fn code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// A table cell: a `|`, even inside a code span, would end the cell.
pub(super) fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::commands::push::TagFate;

    /// A hand-made outcome: two tags, one created and one moved.
    pub(crate) fn outcome() -> PushOutcome {
        let registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com".to_string();
        let repository_uri = format!("{registry}/team/app");
        PushOutcome {
            source: "team/app:1.0".into(),
            registry,
            repository: "team/app".into(),
            digest: "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
                .into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            image_uris: vec![
                format!("{repository_uri}:1.0"),
                format!("{repository_uri}:latest"),
            ],
            repository_uri,
            tags: vec![
                TagFate {
                    tag: "1.0".into(),
                    outcome: "created".into(),
                },
                TagFate {
                    tag: "latest".into(),
                    outcome: "moved".into(),
                },
            ],
            size: 3 * 1024 * 1024 + 512,
            bytes_uploaded: 2 * 1024 * 1024,
            layers_uploaded: 2,
            layers_skipped: 1,
            blobs_mounted: 0,
            repository_created: true,
            notes: Vec::new(),
            elapsed: Duration::from_millis(4250),
        }
    }

    #[test]
    fn summary_of_a_push() {
        let expected = "\
### ferry push: `team/app:1.0`

`team/app:1.0` → `123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app` (repository created)

| tag | fate | image |
|---|---|---|
| `1.0` | created | `123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1.0` |
| `latest` | moved | `123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:latest` |

| | |
|---|---|
| digest | `sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef` |
| media type | oci manifest |
| size | 3.0 MiB |
| uploaded | 2.0 MiB in 2 layers, 1 already in the repository |
| time | 4.2 s |
";
        assert_eq!(push_summary(&outcome()), expected);
    }

    #[test]
    fn summary_of_a_warm_push() {
        let mut o = outcome();
        o.repository_created = false;
        o.layers_uploaded = 0;
        o.bytes_uploaded = 0;
        o.layers_skipped = 0;
        o.tags.truncate(1);
        o.tags[0].outcome = "unchanged".into();
        o.image_uris.truncate(1);
        let md = push_summary(&o);
        assert!(md.contains("→ `123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app`\n"));
        assert!(md.contains("| `1.0` | unchanged |"));
        assert!(md.contains("| uploaded | 0 B in 0 layers |"));
        assert!(!md.contains("Note"));
    }

    #[test]
    fn notes_follow_the_table() {
        let mut o = outcome();
        o.notes = vec!["pushed its linux/amd64 image alone".into()];
        let md = push_summary(&o);
        assert!(
            md.ends_with("| time | 4.2 s |\n\n> **Note:** pushed its linux/amd64 image alone\n"),
            "{md}"
        );
    }

    #[test]
    fn markdown_specials_are_neutralised() {
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(cell(&code("oci:x|y")), "`oci:x\\|y`");
        let md = failure_summary("push", "app:1", "bad\n```\nthing", Some("Do this."));
        assert_eq!(
            md,
            "### ferry push failed: `app:1`\n\n```text\nbad\n'''\nthing\n```\n\nDo this.\n"
        );
    }
}
