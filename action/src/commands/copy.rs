//! `ferry copy SRC DST`.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use ferry_registry::copy::{Budget, CopyOptions, Progress};
use ferry_registry::{Platform, Reference};

use crate::cli::CopyArgs;
use crate::output;
use crate::progress::Bars;

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
    let client = super::client(&args.registry)?;

    let bars = (!args.json && std::io::stderr().is_terminal()).then(|| Arc::new(Bars::new()));
    let options = CopyOptions {
        platforms,
        referrers: args.referrers,
        dry_run: args.dry_run,
        extra_tags: args.tags.clone(),
        budget: Budget::new(args.registry.concurrency),
        progress: bars.clone().map(|b| b as Arc<dyn Progress>),
    };
    let result = ferry_registry::copy(&client, &source, &destination, options).await;
    if let Some(bars) = &bars {
        bars.finish();
    }
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", output::copy_summary(&report));
    }
    Ok(())
}
