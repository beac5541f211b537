//! `ferry push IMAGE`: a local image into ECR in one step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_local_image::docker::DockerEngine;
use ferry_local_image::push::{Compression, ExportAhead, PushCache, PushOptions, push};
use ferry_local_image::source::ImageSource;
use ferry_registry::Reference;
use ferry_registry::copy::Progress;
use ferry_registry::ecr::TokenObserver;
use ferry_registry::publish::{self, ManagedRepository, Step};
use serde::Serialize;

use crate::cli::PushArgs;
use crate::settings::repository_settings;

/// What a push did, for the CLI's table and the Action's outputs and job summary.
#[derive(Debug, Clone, Serialize)]
pub struct PushOutcome {
    /// What was pushed, as the user named it (`app:1.0`, `oci:./layout`, …).
    pub source: String,
    /// The ECR registry host.
    pub registry: String,
    pub repository: String,
    /// `<registry>/<repository>`.
    pub repository_uri: String,
    pub digest: String,
    pub media_type: String,
    /// `<registry>/<repository>:<tag>` for each tag, in order.
    pub image_uris: Vec<String>,
    /// Each tag and its fate: `created`, `moved` or `unchanged`.
    pub tags: Vec<TagFate>,
    /// Bytes of the image as stored (config and compressed layers).
    pub size: u64,
    pub bytes_uploaded: u64,
    pub layers_uploaded: u64,
    /// Blobs not sent because the repository had them or mounted them.
    pub layers_skipped: u64,
    /// Of those, blobs mounted from another repository of the registry where ferry pushed them
    /// before.
    pub blobs_mounted: u64,
    pub repository_created: bool,
    /// What the user should know about what was pushed (a platform the Engine lacks, …).
    pub notes: Vec<String>,
    #[serde(with = "millis")]
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct TagFate {
    pub tag: String,
    pub outcome: String,
}

mod millis {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u128(d.as_millis())
    }
}

pub async fn run(args: PushArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let bars = (!args.json && std::io::stderr().is_terminal())
        .then(|| Arc::new(crate::progress::Bars::new("pushing:")));
    let progress = bars.clone().map(|b| b as Arc<dyn Progress>);
    let result = execute(&args, None, progress).await;
    if let Some(bars) = &bars {
        bars.finish();
    }
    let outcome = result?;
    for note in &outcome.notes {
        eprintln!("ferry: note: {note}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print!("{}", crate::output::push_summary(&outcome));
    }
    Ok(())
}

/// Pushes as `args` say. `observer` sees every ECR token fetched, before it is used;
/// `progress` what the push is doing.
pub async fn execute(
    args: &PushArgs,
    observer: Option<TokenObserver>,
    progress: Option<Arc<dyn Progress>>,
) -> anyhow::Result<PushOutcome> {
    let started = Instant::now();
    let source = ImageSource::parse(&args.image).context("IMAGE")?;
    let compression: Compression = args
        .compression
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--compression: {e}"))?;
    let tags = if args.tags.is_empty() {
        source.default_tags()
    } else {
        args.tags.clone()
    };
    let settings = repository_settings(&args.repository_args)?;
    let repository = match (&args.repository, source.default_repository()) {
        (Some(repository), _) => repository.clone(),
        (None, Some(own)) => own,
        (None, None) => anyhow::bail!(
            "--repository is needed: {} names no repository of its own",
            source.display()
        ),
    };

    // Everything the user typed is checked before AWS is touched: a typo must not create a
    // repository.
    let named = Reference::parse(&format!("registry.invalid/{repository}"))
        .with_context(|| format!("--repository {repository:?}"))?;
    for tag in &tags {
        named
            .with_tag(tag)
            .with_context(|| format!("--tag {tag:?}"))?;
    }
    // The local image must be known to exist before any registry is touched: a missing image
    // is the error to report even when the registry is down too, and it must not leave a new
    // ECR repository behind. (This costs a warm push to a plain registry the overlap of the
    // inspect with its tag lookups, about one Engine round trip.)
    let (engine, inspected) = match &source {
        ImageSource::Daemon { name } => {
            let engine = DockerEngine::from_env()?;
            let inspected = engine.inspect(name).await?;
            (Some(engine), Some(inspected))
        }
        ImageSource::OciLayout { dir, .. } if !dir.is_dir() => {
            anyhow::bail!("IMAGE: {} is not a directory", dir.display())
        }
        ImageSource::DockerArchive { path } if !path.is_file() => {
            anyhow::bail!("IMAGE: {} is not a file", path.display())
        }
        _ => (None, None),
    };

    // The Engine writes the whole image out before its first byte: it starts now, beside the
    // registry's preparation (an ECR repository to create) instead of after it.
    let cache = Arc::new(PushCache::open_default());
    let export_ahead = match (&source, &engine, &inspected) {
        (ImageSource::Daemon { name }, Some(engine), Some(inspect)) => {
            ExportAhead::start(engine, name, inspect, &cache, compression)
        }
        _ => ExportAhead::default(),
    };

    // An ECR registry gets its repository created; any other is pushed to as it is.
    let target =
        super::destination(args.registry.as_deref(), &args.registry_args, observer).await?;
    let mode = crate::settings::ensure_mode(&args.repository_args);
    let managed = target.ecr.as_ref().map(|(ecr, host)| ManagedRepository {
        ecr,
        host,
        name: &repository,
        settings: &settings,
        mode,
    });
    let prepared = publish::prepare(managed, Step::Ensure).await?;
    if let Some(state) = &prepared.repository {
        super::copy::report_repository(Some(state), &repository, false);
    }
    let (client, host) = (target.client, target.host);
    let destination = Reference::parse(&format!("{host}/{repository}")).context("--registry")?;

    let options = PushOptions {
        compression,
        tags: tags.clone(),
        immutable_tags: prepared.immutable_tags(),
        cache,
        engine,
        inspected,
        progress,
        export_ahead,
    };
    let report = push(&client, &source, &destination, &options).await?;
    let repository_uri = format!("{host}/{repository}");
    Ok(PushOutcome {
        source: source.display(),
        registry: host.clone(),
        repository: repository.clone(),
        image_uris: super::image_uris(&repository_uri, tags.iter().map(String::as_str)),
        repository_uri,
        digest: report.digest.to_string(),
        media_type: report.media_type.clone(),
        tags: report
            .tags
            .iter()
            .map(|t| TagFate {
                tag: t.tag.clone(),
                outcome: t.outcome.as_str().to_string(),
            })
            .collect(),
        size: report.size,
        bytes_uploaded: report.bytes_uploaded,
        layers_uploaded: report.layers_uploaded,
        layers_skipped: report.layers_skipped,
        blobs_mounted: report.blobs_mounted,
        repository_created: prepared.repository.as_ref().is_some_and(|s| s.created),
        notes: report.notes.clone(),
        elapsed: started.elapsed(),
    })
}
