//! `ferry copy SRC DST`.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use ferry_registry::copy::{Budget, CopyOptions, Progress, RangedFetch};
use ferry_registry::ecr::{EcrHost, RepositoryState};
use ferry_registry::publish::{self, ManagedRepository, Published};
use ferry_registry::{Platform, Reference};

use crate::cli::CopyArgs;
use crate::output;
use crate::progress::Bars;
use crate::settings::repository_settings;

pub async fn run(args: CopyArgs) -> anyhow::Result<()> {
    let source = Reference::parse(&args.source).context("source")?;
    let destination = Reference::parse(&args.destination).context("destination")?;
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

    let dst_ecr = EcrHost::parse(destination.api_host());
    let needs_aws = dst_ecr.is_some() || EcrHost::parse(source.api_host()).is_some();
    let ecr = if needs_aws {
        Some(super::ecr(&args.registry.aws).await?)
    } else {
        None
    };
    let client = super::client(&args.registry, ecr.as_ref())?;

    let mode = crate::settings::ensure_mode(&args.repository);
    let target = match (&ecr, &dst_ecr) {
        (Some(ecr), Some(host)) => Some(ManagedRepository {
            ecr,
            host,
            name: destination.repository(),
            settings: &settings,
            mode,
        }),
        _ => None,
    };

    let bars =
        (!args.json && std::io::stderr().is_terminal()).then(|| Arc::new(Bars::new("copying:")));
    let options = CopyOptions {
        platforms,
        referrers: args.referrers,
        dry_run: args.dry_run,
        extra_tags: args.tags.clone(),
        budget: Budget::new(args.registry.concurrency),
        progress: bars.clone().map(|b| b as Arc<dyn Progress>),
        ranged: RangedFetch {
            parts: args.range_parts,
            ..RangedFetch::default()
        },
        ..CopyOptions::default()
    };
    let result = publish::copy(&client, target, &source, &destination, options).await;
    if let Some(bars) = &bars {
        bars.finish();
    }
    let Published { report, prepared } = result?;
    if target.is_some() {
        report_repository(
            prepared.repository.as_ref(),
            destination.repository(),
            args.dry_run,
        );
    }
    if args.json {
        let mut json = serde_json::to_value(&report)?;
        if let Some(state) = &prepared.repository {
            json["repository"] = serde_json::to_value(state)?;
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!("{}", output::copy_summary(&report));
    }
    Ok(())
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
