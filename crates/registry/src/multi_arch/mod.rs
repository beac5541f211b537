//! Multi-arch manifest lists: building one from images already in a registry, and inspecting
//! what a reference holds.
//!
//! The data path of `create`, top-down:
//! 1. [`plan`] resolves every source against the target ([`sources`]), fetches them all at
//!    once and fails naming *every* missing one; reads each child's platform (an image's from
//!    its config, a list's children from their entries — a list is flattened); drops
//!    attestations if asked; refuses two children with one platform; builds the list's bytes
//!    ([`build`]); and `HEAD`s every tag, so an immutable tag that would move fails here —
//!    all before anything is written.
//! 2. [`apply`] brings children from other repositories of the registry into the target's
//!    (mounted by the copy engine, so a list never names a manifest its repository lacks),
//!    pushes the list by digest, then each tag that does not already point at it.

mod build;
pub mod error;
pub mod inspect;
mod sources;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use futures::future::try_join_all;
use serde::Serialize;

pub use build::ListFormat;
pub use error::{ListError, MissingSource};
pub use inspect::{InspectKind, Inspection, ListEntry, inspect};
pub use sources::{Child, Source};

use crate::client::{Client, Repository};
use crate::copy::{Copier, CopyOptions, ImmutableTags, TagEntry, TagOutcome};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, Platform};
use crate::reference::Reference;
use error::platform_label;
use sources::Fetched;

/// What to do with buildx's attestation manifests (`unknown/unknown`) in a source list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Attestations {
    /// Keep them: provenance and SBOMs stay attached to the images they describe.
    #[default]
    Keep,
    Drop,
}

impl std::str::FromStr for Attestations {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "keep" => Ok(Attestations::Keep),
            "drop" => Ok(Attestations::Drop),
            _ => Err(format!("expected keep or drop, got {s:?}")),
        }
    }
}

#[derive(Clone, Default)]
pub struct ListOptions {
    pub format: ListFormat,
    pub attestations: Attestations,
    pub allow_duplicate_platforms: bool,
    /// Index-level annotations (OCI only).
    pub annotations: BTreeMap<String, String>,
    /// `(source as typed, platform)`: the platform to record for that source's image.
    pub platform_overrides: Vec<(String, Platform)>,
    /// Tags to set, in order; empty means the target's own tag.
    pub tags: Vec<String>,
    pub immutable_tags: Option<ImmutableTags>,
    /// Blob transfers at once when children are brought from other repositories.
    pub copy: CopyOptions,
}

/// A list ready to push: everything checked, nothing written.
pub struct ListPlan {
    pub target: Reference,
    pub manifest: Manifest,
    pub children: Vec<Child>,
    pub tags: Vec<TagEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListReport {
    /// The list's repository, without the registry (`team/app`).
    pub repository: String,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub manifests: Vec<ListEntry>,
    pub tags: Vec<TagEntry>,
    /// Children brought from other repositories (`repository@digest`).
    pub copied: Vec<String>,
    /// The list exactly as pushed (or, in a dry run, as it would be).
    pub manifest: serde_json::Value,
    pub dry_run: bool,
}

/// Checks everything and builds the list `target` would get from `sources`.
pub async fn plan(
    client: &Client,
    target: &Reference,
    sources: &[String],
    options: &ListOptions,
) -> Result<ListPlan> {
    if sources.is_empty() {
        return Err(ListError::NoSources.into());
    }
    if let Some(digest) = target.digest() {
        return Err(Error::Config(format!(
            "the list's target {target} names a digest ({digest}); name it by tag: the list's \
             digest is known only once it is built"
        )));
    }
    let parsed = sources
        .iter()
        .map(|s| Source::parse(s, target))
        .collect::<Result<Vec<_>>>()?;
    for (typed, _) in &options.platform_overrides {
        if !sources.iter().any(|s| s.trim() == typed.trim()) {
            return Err(ListError::OverrideUnknownSource {
                source_ref: typed.clone(),
            }
            .into());
        }
    }

    let mut found = Vec::new();
    let mut missing = Vec::new();
    for fetched in sources::fetch_all(client, &parsed).await? {
        match fetched {
            Fetched::Found { source, manifest } => found.push((source, manifest)),
            Fetched::Missing(m) => missing.push(m),
        }
    }
    if !missing.is_empty() {
        return Err(ListError::MissingSources {
            registry: target.registry().to_string(),
            repository: target.repository().to_string(),
            total: sources.len(),
            missing,
        }
        .into());
    }

    let nested = try_join_all(found.iter().map(|(source, manifest)| {
        let override_for = options
            .platform_overrides
            .iter()
            .find(|(typed, _)| typed.trim() == source.typed.trim())
            .map(|(_, p)| p);
        sources::children(client, target, source, manifest, override_for)
    }))
    .await?;
    let mut children: Vec<Child> = Vec::new();
    for child in nested.into_iter().flatten() {
        if child.attestation && options.attestations == Attestations::Drop {
            continue;
        }
        // The same image named twice (a tag and its digest, or a list and one of its
        // children) is one entry.
        if !children.iter().any(|c| c.digest == child.digest) {
            children.push(child);
        }
    }
    if children.is_empty() {
        return Err(ListError::Empty.into());
    }
    if !options.allow_duplicate_platforms {
        check_platforms(&children)?;
    }

    let media_type = build::media_type(options.format, &children, &options.annotations)?;
    let manifest = build::build(media_type, &children, &options.annotations)?;

    let tags = list_tags(target, &options.tags);
    let dst = client.repository(target);
    let current: Vec<Option<Digest>> = try_join_all(tags.iter().map(|t| dst.head_manifest(t)))
        .await?
        .into_iter()
        .map(|h| h.map(|h| h.digest))
        .collect();
    if let Some(rule) = &options.immutable_tags {
        rule.check(&dst, &tags, &current, manifest.digest())?;
    }
    Ok(ListPlan {
        target: target.clone(),
        tags: TagEntry::plan(&tags, current, manifest.digest()),
        manifest,
        children,
    })
}

/// Pushes a planned list: children from other repositories first, then the list by digest,
/// then the tags that do not already point at it.
pub async fn apply(client: &Client, plan: &ListPlan, options: &ListOptions) -> Result<ListReport> {
    let dst = client.repository(&plan.target);
    let copied = bring_children(client, &dst, plan, options).await?;
    let changed: Vec<&TagEntry> = plan
        .tags
        .iter()
        .filter(|t| t.outcome != TagOutcome::Unchanged)
        .collect();
    // Without any tag the list is pushed by digest alone.
    if !changed.is_empty() || plan.tags.is_empty() {
        dst.put_manifest(plan.manifest.digest().as_str(), &plan.manifest)
            .await?;
        for entry in changed {
            dst.put_manifest(&entry.tag, &plan.manifest).await?;
        }
    }
    report(plan, copied, false)
}

/// What `plan` would push, as a report (for `--dry-run`).
pub fn dry_run_report(plan: &ListPlan) -> Result<ListReport> {
    let copied = plan
        .children
        .iter()
        .filter_map(|c| {
            c.from
                .as_ref()
                .map(|f| format!("{}@{}", f.name(), c.digest))
        })
        .collect();
    report(plan, copied, true)
}

fn report(plan: &ListPlan, copied: Vec<String>, dry_run: bool) -> Result<ListReport> {
    let manifests = plan
        .children
        .iter()
        .map(|c| ListEntry {
            source: Some(c.source.clone()),
            platform: platform_label(&c.platform),
            media_type: c.media_type.clone(),
            digest: c.digest.clone(),
            size: c.size,
            attestation: c.attestation,
            layers: None,
        })
        .collect();
    Ok(ListReport {
        repository: plan.target.repository().to_string(),
        digest: plan.manifest.digest().clone(),
        media_type: plan.manifest.media_type().to_string(),
        size: plan.manifest.size(),
        manifests,
        tags: plan.tags.clone(),
        copied,
        manifest: serde_json::from_slice(plan.manifest.raw())
            .map_err(|e| Error::Other(format!("the list is not valid JSON: {e}")))?,
        dry_run,
    })
}

/// Children that live in another repository of the registry are copied into the target's by
/// digest (blobs mounted, not uploaded) unless it has them already.
async fn bring_children(
    client: &Client,
    dst: &Repository,
    plan: &ListPlan,
    options: &ListOptions,
) -> Result<Vec<String>> {
    let copier = Copier::new(client.clone(), options.copy.clone());
    let mut copied = Vec::new();
    for child in &plan.children {
        let Some(from) = &child.from else { continue };
        if dst.head_manifest(child.digest.as_str()).await?.is_some() {
            continue;
        }
        let src = from.with_digest(child.digest.clone());
        copier
            .copy(&src, &plan.target.with_digest(child.digest.clone()))
            .await?;
        copied.push(format!("{}@{}", from.name(), child.digest));
    }
    Ok(copied)
}

/// The tags to set: the given ones, or the target's own; without repeats.
fn list_tags(target: &Reference, tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let given = if tags.is_empty() {
        target.tag().map(str::to_string).into_iter().collect()
    } else {
        tags.to_vec()
    };
    for tag in given {
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    out
}

/// Fails on two runnable children with the same platform, naming the sources of each clash.
fn check_platforms(children: &[Child]) -> Result<()> {
    let images: Vec<&Child> = children.iter().filter(|c| !c.attestation).collect();
    for (i, a) in images.iter().enumerate() {
        let clashes: Vec<&&Child> = images[i + 1..]
            .iter()
            .filter(|b| sources::same_platform(&a.platform, &b.platform))
            .collect();
        if !clashes.is_empty() {
            let mut names = vec![a.source.clone()];
            names.extend(clashes.iter().map(|c| c.source.clone()));
            return Err(Error::from(ListError::DuplicatePlatform {
                platform: platform_label(&a.platform),
                sources: names,
            }));
        }
    }
    Ok(())
}
