//! `command: mirror`: every `EcrImageMirror` of the workspace's files synced once, with each
//! mirror's tags as the step's outputs and job summary. A mirror or tag that failed is an
//! annotation of its own and fails the step, but only after what did sync is reported.

use std::fmt::Write as _;

use serde::Serialize;

use super::inputs::Lookup;
use super::summary::{cell, code};
use super::workflow::{self, command, error_line, output_entry};
use crate::cli::MirrorArgs;
use crate::commands::mirror::{self, MirrorOutcome, MirrorResult};
use crate::output::{tag_note, tag_state};
use ferry_registry::mirror::{TagState, TagStatus};

pub async fn run(args: MirrorArgs, env: Lookup<'_>) -> anyhow::Result<()> {
    let subject = args
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let work = mirror::execute(&args, Some(workflow::masking_observer()));
    let title = format!("Sync the mirrors of {subject}");
    let outcome = super::run_step("mirror", &title, &subject, work, env).await?;
    for mirror in &outcome.mirrors {
        print!("{}", crate::output::mirror_table(mirror, outcome.dry_run));
    }
    super::write_files(env, &outputs(&outcome)?, &summary(&subject, &outcome))?;
    for mirror in &outcome.mirrors {
        for line in annotations(mirror) {
            command(&line);
        }
    }
    let failures = outcome.failures();
    if !failures.is_empty() {
        anyhow::bail!(
            "{} of {} mirror(s) failed: {}",
            failures.len(),
            outcome.mirrors.len(),
            failures.join("; ")
        );
    }
    Ok(())
}

/// An `::error::` per failed mirror, or per failed tag of a mirror that synced otherwise.
fn annotations(mirror: &MirrorResult) -> Vec<String> {
    if let Some(error) = &mirror.error {
        return vec![error_line(
            &format!("ferry mirror {} failed", mirror.name),
            error,
        )];
    }
    failed(mirror)
        .map(|t| {
            error_line(
                &format!("ferry mirror {}: tag {} failed", mirror.name, t.tag),
                t.message.as_deref().unwrap_or("failed"),
            )
        })
        .collect()
}

fn failed(mirror: &MirrorResult) -> impl Iterator<Item = &TagStatus> {
    entries(mirror).filter(|t| t.state == TagState::Failed)
}

/// The tags, then the manifest lists.
fn entries(mirror: &MirrorResult) -> impl Iterator<Item = &TagStatus> {
    mirror
        .status
        .tags
        .iter()
        .chain(&mirror.status.manifest_lists)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MirrorEntry<'a> {
    name: &'a str,
    repository_uri: Option<&'a str>,
    tags: Vec<TagEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct TagEntry<'a> {
    tag: &'a str,
    state: String,
    digest: Option<&'a str>,
}

/// `mirrors`, the JSON array on one line, and `failed`, how many mirrors failed.
pub fn outputs(outcome: &MirrorOutcome) -> anyhow::Result<String> {
    let mirrors: Vec<MirrorEntry> = outcome
        .mirrors
        .iter()
        .map(|m| MirrorEntry {
            name: &m.name,
            repository_uri: m.repository_uri.as_deref(),
            tags: entries(m)
                .map(|t| TagEntry {
                    tag: &t.tag,
                    state: tag_state(t),
                    digest: t.digest.as_deref(),
                })
                .collect(),
            error: m.error.as_deref(),
        })
        .collect();
    Ok([
        output_entry("mirrors", &serde_json::to_string(&mirrors)?),
        output_entry("failed", &outcome.failures().len().to_string()),
    ]
    .concat())
}

/// A heading and a table per mirror: tag, state, source digest, destination digest, note.
pub fn summary(subject: &str, outcome: &MirrorOutcome) -> String {
    let mut md = String::new();
    let plan = if outcome.dry_run { " (dry run)" } else { "" };
    let _ = writeln!(md, "### ferry mirror: {}{plan}\n", code(subject));
    for m in &outcome.mirrors {
        let destination = m.repository_uri.as_deref().unwrap_or("?");
        let _ = writeln!(
            md,
            "#### {}: {} → {}\n",
            code(&m.name),
            code(&m.source),
            code(destination)
        );
        if let Some(error) = &m.error {
            let _ = writeln!(md, "> **Failed:** {}\n", error.replace('\n', " "));
            continue;
        }
        let _ = writeln!(
            md,
            "| tag | state | source digest | destination digest | note |\n|---|---|---|---|---|"
        );
        for t in entries(m) {
            let tag = if m.status.manifest_lists.contains(t) {
                format!("{} (list)", code(&t.tag))
            } else {
                code(&t.tag)
            };
            let digest = |d: Option<&str>| d.map(code).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                cell(&tag),
                tag_state(t),
                cell(&digest(t.source_digest.as_deref())),
                cell(&digest(t.digest.as_deref())),
                cell(&tag_note(t))
            );
        }
        let _ = writeln!(md);
    }
    md
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use ferry_registry::mirror::EcrImageMirrorStatus;

    use super::*;

    fn tag(name: &str, state: TagState, message: Option<&str>) -> TagStatus {
        let mut t = TagStatus::new(name);
        t.state = state;
        t.message = message.map(String::from);
        if state == TagState::Synced {
            t.source_digest = Some(format!("sha256:{}", "a".repeat(64)));
            t.digest = Some(format!("sha256:{}", "b".repeat(64)));
            t.platforms = vec!["linux/amd64".into()];
        }
        t
    }

    fn outcome() -> MirrorOutcome {
        let ok = MirrorResult {
            name: "default/nginx".into(),
            file: PathBuf::from("mirrors/nginx.yaml"),
            source: "docker.io/library/nginx".into(),
            repository_uri: Some("1.dkr.ecr.eu-west-1.amazonaws.com/mirror/nginx".into()),
            status: EcrImageMirrorStatus {
                tags: vec![
                    tag("1.27", TagState::Synced, None),
                    tag("1.28", TagState::Failed, Some("manifest unknown")),
                ],
                ..EcrImageMirrorStatus::default()
            },
            error: None,
        };
        let broken = MirrorResult {
            name: "team/redis".into(),
            file: PathBuf::from("mirrors/redis.yaml"),
            source: "docker.io/library/redis".into(),
            repository_uri: None,
            status: EcrImageMirrorStatus::default(),
            error: Some("listing the tags of docker.io/library/redis: 401".into()),
        };
        MirrorOutcome {
            mirrors: vec![ok, broken],
            dry_run: false,
        }
    }

    #[test]
    fn outputs_are_one_json_line_and_a_count() {
        let text = outputs(&outcome()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let json: serde_json::Value =
            serde_json::from_str(lines[0].strip_prefix("mirrors=").unwrap()).unwrap();
        assert_eq!(json[0]["name"], "default/nginx");
        assert_eq!(
            json[0]["repositoryUri"],
            "1.dkr.ecr.eu-west-1.amazonaws.com/mirror/nginx"
        );
        assert_eq!(json[0]["tags"][0]["state"], "synced");
        assert_eq!(
            json[0]["tags"][0]["digest"],
            format!("sha256:{}", "b".repeat(64))
        );
        assert_eq!(json[0]["tags"][1]["state"], "failed");
        assert_eq!(json[1]["repositoryUri"], serde_json::Value::Null);
        assert_eq!(lines[1], "failed=2");
    }

    #[test]
    fn summary_has_a_table_per_mirror_and_the_failures() {
        let md = summary("mirrors", &outcome());
        assert!(md.starts_with("### ferry mirror: `mirrors`\n"), "{md}");
        assert!(md.contains(
            "#### `default/nginx`: `docker.io/library/nginx` → \
             `1.dkr.ecr.eu-west-1.amazonaws.com/mirror/nginx`"
        ));
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        assert!(
            md.contains(&format!(
                "| `1.27` | synced | `{a}` | `{b}` | linux/amd64 |"
            )),
            "{md}"
        );
        assert!(
            md.contains("| `1.28` | failed | - | - | manifest unknown |"),
            "{md}"
        );
        assert!(md.contains("> **Failed:** listing the tags of docker.io/library/redis: 401"));
    }

    #[test]
    fn each_failure_is_an_annotation() {
        let o = outcome();
        assert_eq!(
            annotations(&o.mirrors[0]),
            ["::error title=ferry mirror default/nginx%3A tag 1.28 failed::manifest unknown"]
        );
        assert_eq!(
            annotations(&o.mirrors[1]),
            [
                "::error title=ferry mirror team/redis failed::listing the tags of \
                 docker.io/library/redis: 401"
            ]
        );
    }
}
