//! Writing into a repository the way every writer must: the sequence `ferry copy`, `ferry push`,
//! `ferry manifest create` and the mirror all follow, kept in one place.
//!
//! 1. **Repository.** On ECR, make sure the destination repository exists with the requested
//!    settings ([`Ecr::ensure_repository`]) — or, on a dry run, only look at it: a plan must not
//!    create anything. Other registries create repositories on first push; there is nothing
//!    to do.
//! 2. **Immutable tags.** Read the repository's tag-mutability rule from what step 1 saw, so the
//!    write refuses up front to move an immutable tag (ECR would reject the manifest PUT only
//!    after every blob went up).
//! 3. **Write.** Copy, push or assemble, with that rule in the options ([`copy`] does this for
//!    a copy; the push pipeline and the list builder take [`Prepared::immutable_tags`]).
//!
//! Why one call: each command used to repeat steps 1–2 with small differences (one forgot the
//! dry run, one asked ECR twice), and the operator is one more caller.

use std::sync::Arc;

use crate::Client;
use crate::copy::{CopyOptions, CopyReport, ImmutableTags};
use crate::ecr::{Ecr, EcrHost, EnsureMode, RepositorySettings, RepositoryState};
use crate::error::Result;
use crate::reference::Reference;

/// An ECR repository to write into, and how it should be set up.
#[derive(Clone, Copy)]
pub struct ManagedRepository<'a> {
    pub ecr: &'a Ecr,
    pub host: &'a EcrHost,
    /// The repository's name in the registry (`team/app`).
    pub name: &'a str,
    pub settings: &'a RepositorySettings,
    pub mode: EnsureMode,
}

/// What step 1 does to the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Look only (dry runs, and plans made before anything may be created).
    Describe,
    /// Create it when missing (as `mode` allows) and compare or correct its settings.
    Ensure,
}

/// The repository as steps 1–2 left it.
#[derive(Clone, Default)]
pub struct Prepared {
    /// ECR's view of the repository: `None` for a registry that is not ECR, and on a dry run
    /// for a repository that does not exist yet.
    pub repository: Option<RepositoryState>,
}

impl Prepared {
    /// The rule a write must respect, when the repository makes tags immutable.
    pub fn immutable_tags(&self) -> Option<ImmutableTags> {
        let state = self.repository.clone()?;
        state.tag_mutability.is_immutable().then(|| ImmutableTags {
            mutability: state.tag_mutability.as_str().to_string(),
            applies_to: Arc::new(move |tag| state.tag_is_immutable(tag)),
        })
    }
}

/// Steps 1 and 2: the repository made ready (or, with [`Step::Describe`], looked at). `None`
/// for a destination that is not an ECR repository.
pub async fn prepare(target: Option<ManagedRepository<'_>>, step: Step) -> Result<Prepared> {
    let Some(target) = target else {
        return Ok(Prepared::default());
    };
    let repository = match step {
        Step::Describe => {
            target
                .ecr
                .describe_repository(target.host, target.name)
                .await?
        }
        Step::Ensure => Some(
            target
                .ecr
                .ensure_repository(target.host, target.name, target.settings, target.mode)
                .await?,
        ),
    };
    Ok(Prepared { repository })
}

/// A copy and what was done to its repository on the way.
pub struct Published {
    pub report: CopyReport,
    pub prepared: Prepared,
}

/// The whole sequence for a copy: the repository prepared (only described on a dry run), then
/// the image copied under the repository's immutable-tag rule.
pub async fn copy(
    client: &Client,
    target: Option<ManagedRepository<'_>>,
    source: &Reference,
    destination: &Reference,
    options: CopyOptions,
) -> Result<Published> {
    let step = if options.dry_run {
        Step::Describe
    } else {
        Step::Ensure
    };
    let prepared = prepare(target, step).await?;
    let options = CopyOptions {
        immutable_tags: prepared.immutable_tags().or(options.immutable_tags),
        ..options
    };
    let report = crate::copy(client, source, destination, options).await?;
    Ok(Published { report, prepared })
}
