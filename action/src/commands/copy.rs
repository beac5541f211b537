//! `ferry copy SRC DST`: an image from any registry into ECR (or another registry).

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use ferry_registry::copy::{Budget, CopyOptions, CopyReport, Progress, RangedFetch};
use ferry_registry::ecr::{EcrHost, RepositoryState, TokenObserver};
use ferry_registry::publish::{self, ManagedRepository, Published};
use ferry_registry::{Platform, Reference};
use serde::Serialize;

use crate::cli::CopyArgs;
use crate::output;
use crate::progress::Bars;
use crate::settings::repository_settings;

/// What a copy did, for the CLI and the Action's outputs and job summary.
#[derive(Debug, Clone, Serialize)]
pub struct CopyOutcome {
    /// The destination registry host.
    pub registry: String,
    /// `<registry>/<repository>`.
    pub repository_uri: String,
    /// `<registry>/<repository>:<tag>` for each tag, in order.
    pub image_uris: Vec<String>,
    #[serde(flatten)]
    pub report: CopyReport,
    /// ECR's view of the destination repository; `None` for another registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepositoryState>,
}

impl CopyOutcome {
    pub fn repository_created(&self) -> bool {
        self.repository.as_ref().is_some_and(|r| r.created)
    }
}

pub async fn run(args: CopyArgs) -> anyhow::Result<()> {
    let bars =
        (!args.json && std::io::stderr().is_terminal()).then(|| Arc::new(Bars::new("copying:")));
    let result = execute(&args, None, bars.clone().map(|b| b as Arc<dyn Progress>)).await;
    if let Some(bars) = &bars {
        bars.finish();
    }
    let outcome = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print!("{}", output::copy_summary(&outcome.report));
    }
    Ok(())
}

/// Copies (or with `--dry-run`, plans) as `args` say. `observer` sees every ECR token fetched,
/// before it is used; `progress` the blobs moving.
pub async fn execute(
    args: &CopyArgs,
    observer: Option<TokenObserver>,
    progress: Option<Arc<dyn Progress>>,
) -> anyhow::Result<CopyOutcome> {
    let source = Reference::parse(&args.source).context("source")?;
    let platforms = args
        .platforms
        .iter()
        .map(|p| Platform::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .context("--platform")?;
    if args.registry.concurrency == 0 {
        anyhow::bail!("--concurrency must be at least 1");
    }
    let settings = repository_settings(&args.repository)?;
    let (registry, rest) =
        super::manifest::split_target(&args.destination, args.to_registry.as_deref())?;
    // Checked as typed before AWS is touched: a typo must not cost a login. (Without a
    // registry it parses as a Docker Hub name, which checks the same grammar.)
    Reference::parse(args.destination.trim()).context("destination")?;

    let target = super::destination(registry.as_deref(), &args.registry, observer.clone()).await?;
    let destination =
        Reference::parse(&format!("{}/{rest}", target.host)).context("destination")?;
    // A source in ECR needs AWS credentials even when the destination is another registry.
    let client = match (&target.ecr, EcrHost::parse(source.api_host())) {
        (None, Some(_)) => {
            let ecr = super::ecr(&args.registry.aws).await?;
            super::client_observed(&args.registry, Some(&ecr), observer)?
        }
        _ => target.client.clone(),
    };

    let mode = crate::settings::ensure_mode(&args.repository);
    let managed = target.ecr.as_ref().map(|(ecr, host)| ManagedRepository {
        ecr,
        host,
        name: destination.repository(),
        settings: &settings,
        mode,
    });
    let options = CopyOptions {
        platforms,
        referrers: args.referrers,
        dry_run: args.dry_run,
        extra_tags: args.tags.clone(),
        budget: Budget::new(args.registry.concurrency),
        progress,
        ranged: RangedFetch {
            parts: args.range_parts,
            ..RangedFetch::default()
        },
        ..CopyOptions::default()
    };
    let Published { report, prepared } =
        publish::copy(&client, managed, &source, &destination, options).await?;
    if managed.is_some() {
        report_repository(
            prepared.repository.as_ref(),
            destination.repository(),
            args.dry_run,
        );
    }
    let repository_uri = destination.name();
    Ok(CopyOutcome {
        registry: target.host.clone(),
        image_uris: super::image_uris(&repository_uri, report.tags.iter().map(|t| t.tag.as_str())),
        repository_uri,
        report,
        repository: prepared.repository,
    })
}

/// Creation and drift go to stderr so `--json` output stays one document.
pub(crate) fn report_repository(state: Option<&RepositoryState>, name: &str, dry_run: bool) {
    let Some(state) = state else {
        if dry_run {
            eprintln!("ferry: repository {name} does not exist; a real run would create it");
        }
        return;
    };
    if state.created {
        eprintln!("ferry: created repository {}", state.uri);
    }
    for drift in &state.drift {
        if drift.corrected {
            eprintln!(
                "ferry: repository {}: set {} to {} (was {})",
                state.name, drift.setting, drift.wanted, drift.actual
            );
        } else {
            eprintln!(
                "ferry: warning: repository {}: {} is {}, not {} (--enforce-settings corrects it)",
                state.name, drift.setting, drift.actual, drift.wanted
            );
        }
    }
}
