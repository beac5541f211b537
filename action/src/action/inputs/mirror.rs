//! `command: mirror`: the `EcrImageMirror` files of the workspace synced once.

use std::path::PathBuf;

use anyhow::{anyhow, bail};

use super::{Inputs, registry_args};
use crate::cli::MirrorArgs;

pub(super) fn read(inputs: &Inputs<'_>) -> anyhow::Result<MirrorArgs> {
    let file = inputs.get("file").ok_or_else(|| {
        anyhow!(
            "input `file` is required for command mirror: a YAML file of EcrImageMirror \
             documents, or a folder of them, relative to the workspace (e.g. `mirrors/`)"
        )
    })?;
    let workspace = inputs.env("GITHUB_WORKSPACE").map(PathBuf::from);
    let in_workspace = |value: &str| match &workspace {
        Some(dir) => dir.join(value),
        None => PathBuf::from(value),
    };
    let files = in_workspace(&file);
    if !files.exists() {
        bail!(
            "input `file`: no file or folder {} (a path relative to the workspace)",
            files.display()
        );
    }
    Ok(MirrorArgs {
        files: vec![files],
        state: inputs.get("state").map(|s| in_workspace(&s)),
        names: Vec::new(),
        dry_run: inputs.bool("dry-run")?.unwrap_or(false),
        json: false,
        // The CLI's default; the run's log shows each mirror as it finishes.
        parallel: 4,
        // The runner's docker config serves the sources; Secrets are the operator's concern.
        secrets_dir: None,
        registry_args: registry_args(inputs),
    })
}
