//! The step's outputs, as lines for `$GITHUB_OUTPUT`.

use super::workflow::{heredoc_entry, output_entry};
use crate::commands::manifest::ManifestOutcome;
use crate::commands::push::PushOutcome;

/// `registry`, `repository-uri`, `image-uri` (the first tag's), `image-uris` (one per line, as
/// a heredoc even when there is one, so a workflow reads it the same way always) and `digest`:
/// what every command that writes an image outputs.
pub fn image_outputs(
    registry: &str,
    repository_uri: &str,
    image_uris: &[String],
    digest: &str,
) -> String {
    let first = image_uris.first().map(String::as_str).unwrap_or("");
    [
        output_entry("registry", registry),
        output_entry("repository-uri", repository_uri),
        output_entry("image-uri", first),
        heredoc_entry("image-uris", &image_uris.join("\n")),
        output_entry("digest", digest),
    ]
    .concat()
}

pub fn push_outputs(outcome: &PushOutcome) -> String {
    image_outputs(
        &outcome.registry,
        &outcome.repository_uri,
        &outcome.image_uris,
        &outcome.digest,
    )
}

/// As for a push, plus `manifest`: what `ferry manifest inspect --json` prints for the list.
pub fn manifest_outputs(outcome: &ManifestOutcome) -> anyhow::Result<String> {
    let inspection = serde_json::to_string(&outcome.inspection)?;
    Ok(image_outputs(
        &outcome.registry,
        &outcome.repository_uri,
        &outcome.image_uris,
        outcome.report.digest.as_str(),
    ) + &output_entry("manifest", &inspection))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::action::summary::tests::outcome;

    #[test]
    fn outputs_file_format() {
        let text = push_outputs(&outcome());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..3],
            [
                "registry=123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                "repository-uri=123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app",
                "image-uri=123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1.0",
            ]
        );
        let delimiter = lines[3].strip_prefix("image-uris<<").unwrap();
        assert_eq!(
            lines[4..7],
            [
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1.0",
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:latest",
                delimiter,
            ]
        );
        assert_eq!(
            lines[7],
            "digest=sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );
        assert_eq!(lines.len(), 8);
        assert!(text.ends_with('\n'));
    }
}
