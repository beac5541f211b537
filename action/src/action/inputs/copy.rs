//! `command: copy`: an image from any registry into an ECR repository.

use anyhow::{Context, anyhow, bail};
use ferry_registry::{Platform, Reference};

use super::{Inputs, Staged, registry_args, repository_args};
use crate::cli::CopyArgs;

/// The CLI's `--range-parts` default.
const RANGE_PARTS: usize = 4;

pub(super) fn read(inputs: &Inputs<'_>) -> anyhow::Result<Staged<CopyArgs>> {
    let source = inputs.get("source").ok_or_else(|| {
        anyhow!(
            "input `source` is required for command copy: the image to copy, on any registry \
             (e.g. `docker.io/library/alpine:3.20` or `ghcr.io/org/app@sha256:…`)"
        )
    })?;
    let parsed = Reference::parse(&source).context("input `source`")?;
    let destination = inputs.get("destination").ok_or_else(|| {
        anyhow!(
            "input `destination` is required for command copy: the ECR repository, or \
             `repository:tag` (the registry comes from `registry`)"
        )
    })?;
    let platforms = inputs.list("platforms");
    for platform in &platforms {
        Platform::parse(platform).with_context(|| format!("input `platforms`: {platform:?}"))?;
    }
    let tags = inputs.list("tags");
    let (destination, extra_tags) = destination_tags(&destination, tags, parsed.tag())?;
    let mut staged = Vec::new();
    let repository = repository_args(inputs, &mut staged)?;
    let args = CopyArgs {
        source,
        destination,
        to_registry: inputs.get("registry"),
        platforms,
        tags: extra_tags,
        referrers: inputs.bool("referrers")?.unwrap_or(true),
        dry_run: false,
        json: false,
        range_parts: RANGE_PARTS,
        registry: registry_args(inputs),
        repository,
    };
    Ok(Staged {
        args,
        _staged: staged,
    })
}

/// The destination reference and the further tags: a tag in `destination` comes first, then
/// `tags`; with neither, the source's own tag (`latest` for a source by digest).
fn destination_tags(
    destination: &str,
    tags: Vec<String>,
    source_tag: Option<&str>,
) -> anyhow::Result<(String, Vec<String>)> {
    if destination.contains('@') {
        bail!(
            "input `destination`: {destination:?} holds a digest; give `repository` or `repository:tag`"
        );
    }
    // A `:` after the last `/` is a tag; one before it belongs to a registry's port.
    let last = destination.rsplit('/').next().unwrap_or(destination);
    if last.contains(':') {
        return Ok((destination.to_string(), tags));
    }
    let mut tags = tags.into_iter();
    let first = tags
        .next()
        .or_else(|| source_tag.map(str::to_string))
        .unwrap_or_else(|| "latest".into());
    Ok((format!("{destination}:{first}"), tags.collect()))
}
