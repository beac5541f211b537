//! `sync`: one pass of a mirror, from (spec, last status) to the new status. The data path:
//!
//! 1. **Check** the spec (no network). A spec that cannot work fails the whole mirror, naming
//!    the field; nothing is asked of any registry.
//! 2. **Choose tags**: the spec's exact tags, then the newest `keep` of the source's tag list by
//!    the tag policy (one tag-list request, only when there is a policy).
//! 3. **Repository**: on ECR, ensure it with its settings when the destination spec changed
//!    since the last sync or the last check is older than [`REPOSITORY_RECHECK`]; otherwise trust
//!    the last status (drift is not worth a DescribeRepositories per sync).
//! 4. **Copy** each chosen tag, handing in what the last sync found ([`LastCopy`]), so an
//!    unchanged tag costs one `HEAD` at the source and one at the destination, and no `GET`.
//!    A failing tag records why; the others go on.
//! 5. **Lists**: assemble each manifest list whose sources moved in step 4 (or that failed, is
//!    new, or names other sources than last time), from the destination's tags.
//!
//! The caller brings the engine ([`SyncEngine`]): a client that holds the source's credentials
//! and ECR's, and the transfer budget it shares with every other mirror in the process.

use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::spec::EcrImageMirrorSpec;
use super::status::{EcrImageMirrorStatus, TagState, TagStatus};
use super::target::{self, Destination};
use super::time::{parse_rfc3339, rfc3339};
use super::{SpecError, TagPolicy};
use crate::Client;
use crate::copy::{Budget, CopyOptions, CopyReport, LastCopy, TagOutcome};
use crate::digest::Digest;
use crate::ecr::Ecr;
use crate::error::Error;
use crate::manifest::Platform;
use crate::multi_arch::{self, ListOptions};
use crate::publish::{self, Step};
use crate::reference::Reference;

/// How long a repository's settings are trusted before a sync compares them again.
pub const REPOSITORY_RECHECK: Duration = Duration::from_secs(6 * 3600);

/// Tags copied at once within one mirror (blob transfers are capped by the budget anyway).
const TAGS_AT_ONCE: usize = 4;

/// What a sync runs on, shared by every mirror of the process.
#[derive(Clone)]
pub struct SyncEngine {
    /// Credentials for the source (and ECR for the destination) are the client's.
    pub client: Client,
    /// The ECR API, for destinations in ECR; `None` when every destination is another registry.
    pub ecr: Option<Ecr>,
    pub budget: Budget,
    /// Once cancelled, no further tag moves and the sync ends with what it has.
    pub cancel: CancellationToken,
    /// Read and plan, change nothing.
    pub dry_run: bool,
}

/// The outcome of one sync.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    pub status: EcrImageMirrorStatus,
    /// Set when the mirror as a whole could not sync (invalid spec, no tag list, repository
    /// refused); the per-tag states say the rest.
    pub error: Option<String>,
    /// Whether the spec itself is at fault (retrying cannot help until it changes).
    pub invalid_spec: bool,
}

impl SyncOutcome {
    /// Whether anything failed: the mirror, a tag or a list.
    pub fn failed(&self) -> bool {
        self.error.is_some()
            || self
                .status
                .tags
                .iter()
                .chain(&self.status.manifest_lists)
                .any(|t| t.state == TagState::Failed)
    }
}

/// One pass of the mirror `spec`, from the `last` status it produced.
pub async fn sync(
    engine: &SyncEngine,
    spec: &EcrImageMirrorSpec,
    last: &EcrImageMirrorStatus,
) -> SyncOutcome {
    let mut status = EcrImageMirrorStatus {
        observed_generation: last.observed_generation,
        ..last.clone()
    };
    let fail = |status: EcrImageMirrorStatus, error: String, invalid_spec: bool| SyncOutcome {
        status,
        error: Some(crate::secrets::redact(&error).into_owned()),
        invalid_spec,
    };

    // 1. Check.
    let checked = match Checked::new(spec) {
        Ok(checked) => checked,
        Err(error) => return fail(status, error.to_string(), true),
    };

    // 2. Choose tags.
    let tags = match choose_tags(engine, spec, &checked).await {
        Ok(tags) => tags,
        Err(error) => return fail(status, error, false),
    };

    // 3. Repository.
    let destination = match target::resolve(engine.ecr.as_ref(), spec, &checked.source).await {
        Ok(destination) => destination,
        Err(error) => return fail(status, error.to_string(), false),
    };
    status.repository_uri = Some(destination.uri());
    let immutable = match ensure_repository(engine, spec, &destination, &mut status).await {
        Ok(immutable) => immutable,
        Err(error) => return fail(status, error.to_string(), false),
    };

    // 4. Copy.
    let now = rfc3339(SystemTime::now());
    // Collected before streaming: a lazy `map` closure over `&String` makes the sync's future
    // fail the `Send` check of `tokio::spawn` (rustc's "FnOnce is not general enough"), which
    // the operator's controller needs.
    let pending: Vec<_> = tags
        .iter()
        .map(|tag| {
            let last = last.tag(tag);
            copy_tag(
                engine,
                &checked,
                &destination,
                tag,
                last,
                immutable.clone(),
                &now,
            )
        })
        .collect();
    let copies = futures::stream::iter(pending)
        .buffered(TAGS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    let moved: Vec<String> = copies
        .iter()
        .filter(|(_, moved)| *moved)
        .map(|(t, _)| t.tag.clone())
        .collect();
    status.tags = copies.into_iter().map(|(t, _)| t).collect();

    // 5. Lists.
    let mut lists = Vec::new();
    for list in &spec.manifest_lists {
        let previous = last.manifest_list(&list.tag);
        let entry = build_list(engine, &destination, list, &status, previous, &moved, &now).await;
        lists.push(entry);
    }
    status.manifest_lists = lists;
    if !engine.dry_run {
        status.last_sync_time = Some(now);
    }
    SyncOutcome {
        status,
        error: None,
        invalid_spec: false,
    }
}

/// What step 1 derives from the spec.
struct Checked {
    source: Reference,
    policy: Option<TagPolicy>,
    platforms: Vec<Platform>,
    referrers: bool,
}

impl Checked {
    fn new(spec: &EcrImageMirrorSpec) -> Result<Checked, SpecError> {
        spec.validate()?;
        let source = spec.source_reference()?;
        let policy = match &spec.source.tag_policy {
            Some(policy) => Some(TagPolicy::new(policy).map_err(|e| SpecError::Invalid {
                field: "spec.source.tagPolicy".into(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let platforms = spec
            .source
            .platforms
            .iter()
            .filter_map(|p| Platform::parse(p).ok())
            .collect();
        Ok(Checked {
            source,
            policy,
            platforms,
            referrers: spec.source.referrers,
        })
    }
}

async fn choose_tags(
    engine: &SyncEngine,
    spec: &EcrImageMirrorSpec,
    checked: &Checked,
) -> Result<Vec<String>, String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in &spec.source.tags {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    if let Some(policy) = &checked.policy {
        let listed = engine
            .client
            .repository(&checked.source)
            .list_tags_strict()
            .await
            .map_err(|e| format!("listing the tags of {}: {e}", checked.source.name()))?;
        let chosen = policy
            .select(&listed)
            .map_err(|e| format!("spec.source.tagPolicy: {e}"))?;
        for tag in chosen {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
    }
    Ok(tags)
}

/// Step 3. Returns the immutable-tag rule when the repository was looked at this time.
async fn ensure_repository(
    engine: &SyncEngine,
    spec: &EcrImageMirrorSpec,
    destination: &Destination,
    status: &mut EcrImageMirrorStatus,
) -> Result<Option<crate::copy::ImmutableTags>, Error> {
    let Some(host) = &destination.ecr else {
        return Ok(None);
    };
    let Some(ecr) = &engine.ecr else {
        return Err(Error::Config(format!(
            "{} is an ECR registry, and this sync has no access to the ECR API",
            destination.registry
        )));
    };
    let settings_key = target::settings_key(&spec.destination);
    let checked_recently = status
        .repository_checked_at
        .as_deref()
        .and_then(parse_rfc3339)
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .is_some_and(|age| age < REPOSITORY_RECHECK);
    let unchanged = status.repository_settings.as_deref() == Some(settings_key.as_str());
    if checked_recently && unchanged {
        return Ok(None);
    }
    let settings = spec
        .destination
        .repository_settings
        .clone()
        .unwrap_or_default()
        .to_settings()
        .map_err(|e| Error::Config(e.to_string()))?;
    let managed = publish::ManagedRepository {
        ecr,
        host,
        name: &destination.repository,
        settings: &settings,
        mode: if spec.destination.create_repository {
            crate::ecr::EnsureMode::CreateIfMissing
        } else {
            crate::ecr::EnsureMode::MustExist
        },
    };
    let step = if engine.dry_run {
        Step::Describe
    } else {
        Step::Ensure
    };
    let prepared = publish::prepare(Some(managed), step).await?;
    if !engine.dry_run {
        status.repository_checked_at = Some(rfc3339(SystemTime::now()));
        status.repository_settings = Some(settings_key);
    }
    Ok(prepared.immutable_tags())
}

/// Step 4 for one tag: its new status, and whether its destination tag moved.
async fn copy_tag(
    engine: &SyncEngine,
    checked: &Checked,
    destination: &Destination,
    tag: &str,
    last: Option<&TagStatus>,
    immutable: Option<crate::copy::ImmutableTags>,
    now: &str,
) -> (TagStatus, bool) {
    let failed = |message: String| {
        let mut entry = last.cloned().unwrap_or_else(|| TagStatus::new(tag));
        entry.state = TagState::Failed;
        entry.message = Some(crate::secrets::redact(&message).into_owned());
        (entry, false)
    };
    let (source, target) = match (checked.source.with_tag(tag), destination.reference(tag)) {
        (Ok(source), Ok(target)) => (source, target),
        (Err(e), _) | (_, Err(e)) => return failed(format!("tag {tag:?}: {e}")),
    };
    let options = CopyOptions {
        platforms: checked.platforms.clone(),
        referrers: checked.referrers,
        dry_run: engine.dry_run,
        budget: engine.budget.clone(),
        immutable_tags: immutable,
        last: last.and_then(last_copy),
        cancel: engine.cancel.clone(),
        ..CopyOptions::default()
    };
    match crate::copy(&engine.client, &source, &target, options).await {
        Ok(report) => synced(tag, &report, last, now, engine.dry_run),
        Err(error) => failed(error.to_string()),
    }
}

/// The status of a tag the copy reached, and whether its destination tag moved.
fn synced(
    tag: &str,
    report: &CopyReport,
    last: Option<&TagStatus>,
    now: &str,
    dry_run: bool,
) -> (TagStatus, bool) {
    let moved = report
        .tags
        .iter()
        .any(|t| t.outcome != TagOutcome::Unchanged);
    let platforms: Vec<String> = report
        .manifests
        .iter()
        .filter_map(|m| m.platform.clone())
        .collect();
    // A warm copy stops at the HEADs and never reads the children: keep what the last one saw.
    let platforms = match last {
        Some(last) if platforms.is_empty() && !moved => last.platforms.clone(),
        _ => platforms,
    };
    let state = if dry_run && moved {
        TagState::Pending
    } else {
        TagState::Synced
    };
    let synced_at = match last {
        Some(last) if !moved && last.state == TagState::Synced => last.synced_at.clone(),
        _ if dry_run => None,
        _ => Some(now.to_string()),
    };
    let entry = TagStatus {
        tag: tag.to_string(),
        source_digest: Some(report.source_digest.to_string()),
        digest: Some(report.digest.to_string()),
        platforms,
        state,
        message: (dry_run && moved).then(|| "would be copied".to_string()),
        synced_at,
        sources: Vec::new(),
    };
    (entry, moved)
}

/// What the last sync of a tag found, when it succeeded.
fn last_copy(last: &TagStatus) -> Option<LastCopy> {
    if last.state != TagState::Synced {
        return None;
    }
    Some(LastCopy {
        source_digest: last.source_digest.as_deref()?.parse::<Digest>().ok()?,
        digest: last.digest.as_deref()?.parse::<Digest>().ok()?,
    })
}

/// Step 5 for one list.
async fn build_list(
    engine: &SyncEngine,
    destination: &Destination,
    list: &super::spec::ManifestListSpec,
    status: &EcrImageMirrorStatus,
    previous: Option<&TagStatus>,
    moved: &[String],
    now: &str,
) -> TagStatus {
    let mut entry = previous
        .cloned()
        .unwrap_or_else(|| TagStatus::new(&list.tag));
    entry.sources = list.sources.clone();
    let not_ready: Vec<&str> = list
        .sources
        .iter()
        .filter(|s| status.tag(s).is_none_or(|t| t.state != TagState::Synced))
        .map(String::as_str)
        .collect();
    if !not_ready.is_empty() {
        entry.state = if engine.dry_run {
            TagState::Pending
        } else {
            TagState::Skipped
        };
        entry.message = Some(format!(
            "not built: source tag(s) {} not synced",
            not_ready.join(", ")
        ));
        return entry;
    }
    let up_to_date = previous.is_some_and(|p| {
        p.state == TagState::Synced && p.sources == list.sources && p.digest.is_some()
    }) && !list.sources.iter().any(|s| moved.contains(s));
    if up_to_date {
        return entry;
    }
    let target = match destination.reference(&list.tag) {
        Ok(target) => target,
        Err(e) => {
            entry.state = TagState::Failed;
            entry.message = Some(e.to_string());
            return entry;
        }
    };
    let sources: Vec<String> = list
        .sources
        .iter()
        .map(|s| format!("{}:{s}", destination.uri()))
        .collect();
    let options = ListOptions {
        copy: CopyOptions {
            budget: engine.budget.clone(),
            cancel: engine.cancel.clone(),
            ..CopyOptions::default()
        },
        ..ListOptions::default()
    };
    let result = async {
        let plan = multi_arch::plan(&engine.client, &target, &sources, &options).await?;
        if engine.dry_run {
            multi_arch::dry_run_report(&plan)
        } else {
            multi_arch::apply(&engine.client, &plan, &options).await
        }
    }
    .await;
    match result {
        Ok(report) => {
            entry.digest = Some(report.digest.to_string());
            entry.platforms = report
                .manifests
                .iter()
                .map(|m| m.platform.clone())
                .collect();
            entry.state = if engine.dry_run {
                TagState::Pending
            } else {
                TagState::Synced
            };
            entry.message = engine.dry_run.then(|| "would be built".to_string());
            if !engine.dry_run {
                entry.synced_at = Some(now.to_string());
            }
        }
        Err(error) => {
            entry.state = TagState::Failed;
            entry.message = Some(crate::secrets::redact(&error.to_string()).into_owned());
        }
    }
    entry
}
