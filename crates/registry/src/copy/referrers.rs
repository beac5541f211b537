//! Copying the referrers (signatures, SBOMs, attestations) of copied manifests.
//!
//! Each referrer is copied by digest like any child. A destination registry with the referrers
//! API indexes them itself (it answers `OCI-Subject` to the push); for one without, the
//! `sha256-<hex>` tag index is brought up to date so clients there can still find them.

use futures::future::BoxFuture;

use super::report::{ManifestEntry, ManifestOutcome};
use super::{Ctx, all, check_stop, copy_contents, entry};
use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::{Descriptor, descriptor_digest};
use crate::media_type::OCI_INDEX;

/// Signatures of attestations of an image are common; deeper chains are not.
const MAX_DEPTH: usize = 3;

pub(crate) async fn copy_referrers(
    ctx: &Ctx<'_>,
    subjects: &[Digest],
) -> Result<Vec<ManifestEntry>> {
    let lists = all(
        ctx,
        subjects
            .iter()
            .map(|s| copy_referrers_of(ctx, s.clone(), 0)),
    )
    .await?;
    Ok(lists.into_iter().flatten().collect())
}

fn copy_referrers_of<'a>(
    ctx: &'a Ctx<'a>,
    subject: Digest,
    depth: usize,
) -> BoxFuture<'a, Result<Vec<ManifestEntry>>> {
    Box::pin(async move {
        if depth >= MAX_DEPTH {
            return Ok(Vec::new());
        }
        let (descriptors, _) = ctx.src.referrers(&subject).await?;
        if descriptors.is_empty() {
            return Ok(Vec::new());
        }
        let mut entries = Vec::new();
        let mut needs_tag_index = false;
        for desc in &descriptors {
            let digest = descriptor_digest(desc)?;
            if ctx.dst.head_manifest(digest.as_str()).await?.is_some() {
                entries.push(ManifestEntry {
                    platform: None,
                    digest: digest.clone(),
                    size: desc.size(),
                    media_type: desc.media_type().to_string(),
                    outcome: ManifestOutcome::Present,
                });
            } else {
                let manifest = ctx.src.get_manifest(digest.as_str()).await?;
                copy_contents(ctx, &manifest).await?;
                check_stop(ctx)?;
                if !ctx.dry_run {
                    let pushed = ctx.dst.put_manifest(digest.as_str(), &manifest).await?;
                    ctx.tally.manifest();
                    needs_tag_index |= !pushed.subject_indexed;
                }
                entries.push(entry(None, &manifest, ManifestOutcome::Pushed));
            }
            entries.extend(copy_referrers_of(ctx, digest, depth + 1).await?);
        }
        if needs_tag_index {
            update_tag_index(ctx, &subject, &descriptors).await?;
        }
        Ok(entries)
    })
}

/// Merges `descriptors` into the destination's `sha256-<hex>` index for `subject`.
async fn update_tag_index(
    ctx: &Ctx<'_>,
    subject: &Digest,
    descriptors: &[Descriptor],
) -> Result<()> {
    let tag = subject.tag_schema();
    let mut merged: Vec<Descriptor> = match ctx.dst.fetch_manifest(&tag).await? {
        Some(existing) if existing.is_index() => existing.children().to_vec(),
        _ => Vec::new(),
    };
    for desc in descriptors {
        if !merged.iter().any(|m| m.digest() == desc.digest()) {
            merged.push(desc.clone());
        }
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": merged,
    });
    check_stop(ctx)?;
    let raw = serde_json::to_vec(&index)
        .map_err(|e| crate::Error::Other(format!("cannot encode the referrers index: {e}")))?;
    ctx.dst
        .put_manifest_raw(&tag, OCI_INDEX, raw.into())
        .await?;
    ctx.tally.manifest();
    Ok(())
}
