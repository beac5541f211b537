//! `ferry mirror -f FILE|DIR`: every `EcrImageMirror` of the files synced once, with the shared
//! crate's `mirror::sync` — the operator's reconcile without Kubernetes. This file only reads
//! the files, the state and the credentials, and prints.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};
use ferry_registry::auth::DockerConfig;
use ferry_registry::copy::Budget;
use ferry_registry::ecr::{Ecr, EcrCredentials, EcrOptions, TokenObserver, names_ecr};
use ferry_registry::mirror::credentials::{SECRET_KEYS, secret_config};
use ferry_registry::mirror::{
    EcrImageMirrorDocument, EcrImageMirrorStatus, SyncEngine, SyncOutcome, TagState, WithoutSecret,
    parse_documents, sync, tenant_client,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::cli::MirrorArgs;
use crate::output;

/// A mirror as found in a file.
struct Found {
    file: PathBuf,
    document: EcrImageMirrorDocument,
}

impl Found {
    /// `namespace/name`, the key of the state file and of `--name`.
    fn key(&self) -> String {
        let meta = &self.document.metadata;
        format!(
            "{}/{}",
            meta.namespace.as_deref().unwrap_or("default"),
            meta.name
        )
    }
}

/// The state file: each mirror's last status, by `namespace/name`.
#[derive(Default, Serialize, Deserialize)]
struct State {
    mirrors: BTreeMap<String, EcrImageMirrorStatus>,
}

/// What a run did, for the CLI's tables and the Action's outputs and job summary.
#[derive(Debug, Clone)]
pub struct MirrorOutcome {
    pub mirrors: Vec<MirrorResult>,
    pub dry_run: bool,
}

/// One mirror's sync.
#[derive(Debug, Clone)]
pub struct MirrorResult {
    /// `namespace/name`.
    pub name: String,
    /// The file that defines it.
    pub file: PathBuf,
    /// `spec.source.image`.
    pub source: String,
    /// The destination repository, once resolved.
    pub repository_uri: Option<String>,
    /// Each tag's and each manifest list's state after the sync.
    pub status: EcrImageMirrorStatus,
    /// Set when the mirror as a whole could not sync; the tag states say the rest.
    pub error: Option<String>,
}

impl MirrorResult {
    fn new(found: &Found, outcome: SyncOutcome) -> MirrorResult {
        MirrorResult {
            name: found.key(),
            file: found.file.clone(),
            source: found.document.spec.source.image.clone(),
            repository_uri: outcome.status.repository_uri.clone(),
            status: outcome.status,
            error: outcome.error,
        }
    }

    /// The tags and lists that failed: `tag (why)`.
    pub fn failed_tags(&self) -> Vec<String> {
        self.status
            .tags
            .iter()
            .chain(&self.status.manifest_lists)
            .filter(|t| t.state == TagState::Failed)
            .map(|t| format!("{} ({})", t.tag, t.message.as_deref().unwrap_or("failed")))
            .collect()
    }

    /// Why the mirror failed, as a whole or in part; `None` when everything synced.
    pub fn failure(&self) -> Option<String> {
        if let Some(error) = &self.error {
            return Some(error.clone());
        }
        let failed = self.failed_tags();
        (!failed.is_empty()).then(|| format!("tag {}", failed.join(", tag ")))
    }
}

impl MirrorOutcome {
    /// `name: why` for every mirror that failed, as a whole or in part.
    pub fn failures(&self) -> Vec<String> {
        self.mirrors
            .iter()
            .filter_map(|m| m.failure().map(|why| format!("mirror {}: {why}", m.name)))
            .collect()
    }
}

/// What `--json` prints for a mirror.
#[derive(Serialize)]
struct Printed<'a> {
    name: &'a str,
    file: String,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    status: &'a EcrImageMirrorStatus,
}

pub async fn run(args: MirrorArgs) -> anyhow::Result<()> {
    let outcome = execute(&args, None).await?;
    if args.json {
        let json: Vec<Printed> = outcome
            .mirrors
            .iter()
            .map(|m| Printed {
                name: &m.name,
                file: m.file.display().to_string(),
                source: &m.source,
                error: m.error.as_deref(),
                status: &m.status,
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for mirror in &outcome.mirrors {
            print!("{}", output::mirror_table(mirror, outcome.dry_run));
        }
    }
    let failures = outcome.failures();
    if !failures.is_empty() {
        bail!(
            "{} of {} mirror(s) failed: {}",
            failures.len(),
            outcome.mirrors.len(),
            failures.join("; ")
        );
    }
    Ok(())
}

/// Syncs every mirror of the files once (or with `--dry-run`, plans). A mirror or tag that
/// fails is recorded in the outcome and the others go on; only what stops every mirror (an
/// unreadable file, an invalid document, no AWS access) is an error. `observer` sees every
/// ECR token fetched, before it is used.
pub async fn execute(
    args: &MirrorArgs,
    observer: Option<TokenObserver>,
) -> anyhow::Result<MirrorOutcome> {
    if args.registry_args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let mut mirrors = read_mirrors(&args.files)?;
    if !args.names.is_empty() {
        mirrors.retain(|m| {
            args.names
                .iter()
                .any(|n| *n == m.document.metadata.name || *n == m.key())
        });
        if mirrors.is_empty() {
            bail!(
                "--name: no mirror of the files is named {}",
                args.names.join(", ")
            );
        }
    }
    if mirrors.is_empty() {
        bail!("no EcrImageMirror document in {}", shown(&args.files));
    }
    let mut state = match &args.state {
        Some(path) => read_state(path)?,
        None => State::default(),
    };

    let needs_aws = mirrors.iter().any(|m| {
        m.document
            .spec
            .destination
            .registry
            .as_deref()
            .is_none_or(names_ecr)
    });
    let base = super::client(&args.registry_args, None)?;
    let budget = Budget::new(args.registry_args.concurrency);
    // One ECR handle and one token cache per role, shared by the mirrors writing as it.
    let mut ecrs: HashMap<Option<String>, (Ecr, Arc<EcrCredentials>)> = HashMap::new();
    // Set-up first, in order (AWS access once per role, Secrets read), so a set-up error stops
    // the run before any copy; then the syncs, `--parallel` at once.
    let mut prepared = Vec::with_capacity(mirrors.len());
    for mirror in &mirrors {
        let spec = &mirror.document.spec;
        let ecr = if needs_aws {
            let role = spec
                .destination
                .role_arn
                .clone()
                .or_else(|| args.registry_args.aws.role_arn.clone());
            Some(match ecrs.get(&role) {
                Some(found) => found.clone(),
                None => {
                    let ecr = Ecr::new(EcrOptions {
                        region: args.registry_args.aws.region.clone(),
                        role_arn: role.clone(),
                        endpoint_url: None,
                        credentials: None,
                    })
                    .await
                    .context("cannot set up AWS access")?;
                    let mut credentials = EcrCredentials::new(ecr.clone());
                    if let Some(observer) = observer.clone() {
                        credentials = credentials.with_observer(observer);
                    }
                    let found = (ecr, Arc::new(credentials));
                    ecrs.insert(role, found.clone());
                    found
                }
            })
        } else {
            None
        };
        let (ecr, logins) = ecr.unzip();
        // A Secret only with --secrets-dir; else the user's docker config, as for `ferry copy`.
        let secret = match (&args.secrets_dir, &spec.source.credentials_secret_ref) {
            (Some(dir), Some(secret)) => {
                Some(read_secret(dir, &secret.name).with_context(|| {
                    format!("mirror {}: spec.source.credentialsSecretRef", mirror.key())
                })?)
            }
            _ => None,
        };
        let client = tenant_client(&base, secret, WithoutSecret::UserDockerConfig, logins);
        let engine = SyncEngine {
            client,
            ecr,
            budget: budget.clone(),
            cancel: CancellationToken::new(),
            dry_run: args.dry_run,
        };
        let last = state
            .mirrors
            .get(&mirror.key())
            .cloned()
            .unwrap_or_default();
        prepared.push((mirror, engine, last));
    }
    let total = prepared.len();
    let done = AtomicUsize::new(0);
    let done = &done;
    let outcomes: Vec<(&Found, SyncOutcome)> = futures::stream::iter(&prepared)
        .map(|(mirror, engine, last)| async move {
            let outcome = sync(engine, &mirror.document.spec, last).await;
            // Progress on long runs (a CronJob's hundreds of mirrors); the tables or the JSON
            // come on stdout at the end.
            if total > 1 {
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                eprintln!(
                    "ferry: [{n}/{total}] mirror {}: {}",
                    mirror.key(),
                    progress(&outcome)
                );
            }
            (*mirror, outcome)
        })
        .buffered(usize::from(args.parallel))
        .collect()
        .await;
    let mut results = Vec::with_capacity(total);
    for (mirror, outcome) in outcomes {
        if !args.dry_run {
            state.mirrors.insert(mirror.key(), outcome.status.clone());
        }
        results.push(MirrorResult::new(mirror, outcome));
    }
    if let (Some(path), false) = (&args.state, args.dry_run) {
        write_state(path, &state)?;
    }
    Ok(MirrorOutcome {
        mirrors: results,
        dry_run: args.dry_run,
    })
}

/// One line on how a mirror's sync went: `3 synced`, `2 synced, 1 failed`, or its error.
fn progress(outcome: &SyncOutcome) -> String {
    if let Some(error) = &outcome.error {
        return format!("failed: {error}");
    }
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for tag in outcome
        .status
        .tags
        .iter()
        .chain(&outcome.status.manifest_lists)
    {
        *counts.entry(tag.state.as_str()).or_default() += 1;
    }
    if counts.is_empty() {
        return "no tag chosen".into();
    }
    counts
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Secret's docker config from `dir`: `<name>/.dockerconfigjson`, `<name>/.dockercfg` or
/// `<name>.json`.
fn read_secret(dir: &Path, name: &str) -> anyhow::Result<DockerConfig> {
    if name.contains('/') || name.contains("..") {
        bail!("{name:?} is not a Secret name");
    }
    let candidates = SECRET_KEYS
        .iter()
        .map(|key| dir.join(name).join(key))
        .chain([dir.join(format!("{name}.json"))]);
    for path in candidates {
        match std::fs::read(&path) {
            Ok(bytes) => {
                return secret_config(&bytes, path.display().to_string())
                    .map_err(anyhow::Error::from);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => bail!("cannot read {}: {e}", path.display()),
        }
    }
    bail!(
        "Secret {name:?} not found in {} (looked for {name}/.dockerconfigjson, {name}/.dockercfg \
         and {name}.json)",
        dir.display()
    )
}

fn read_mirrors(paths: &[PathBuf]) -> anyhow::Result<Vec<Found>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect_yaml(path, &mut files).with_context(|| format!("--file {}", path.display()))?;
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("--file {}: no such file or folder", path.display());
        }
    }
    let mut mirrors: Vec<Found> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        for document in parse_documents(&text, &file.display().to_string())? {
            let found = Found {
                file: file.clone(),
                document,
            };
            if let Some(twin) = mirrors.iter().find(|m| m.key() == found.key()) {
                bail!(
                    "mirror {} is defined twice: in {} and in {}",
                    found.key(),
                    twin.file.display(),
                    file.display()
                );
            }
            mirrors.push(found);
        }
    }
    Ok(mirrors)
}

/// Every `*.yaml` / `*.yml` below `dir`, in name order (so runs are repeatable).
fn collect_yaml(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_yaml(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    Ok(())
}

fn read_state(path: &Path) -> anyhow::Result<State> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("--state {}: not a ferry mirror state file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => bail!("--state {}: {e}", path.display()),
    }
}

/// Written to a temporary file and renamed, so an interrupted run leaves the old state whole.
fn write_state(path: &Path, state: &State) -> anyhow::Result<()> {
    let text = serde_json::to_vec_pretty(state)?;
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("--state {}: cannot write", path.display()))
}

fn shown(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
