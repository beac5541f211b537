//! `ferry manifest create|push|inspect`: multi-arch lists from images already in a registry.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use ferry_registry::copy::{Budget, CopyOptions};
use ferry_registry::ecr::TokenObserver;
use ferry_registry::multi_arch::{self, Inspection, ListOptions, ListReport};
use ferry_registry::publish::{self, ManagedRepository, Step};
use ferry_registry::{Platform, Reference};
use serde::Serialize;

use crate::cli::{ManifestArgs, ManifestCommand, ManifestCreateArgs, ManifestInspectArgs};
use crate::output;
use crate::settings::repository_settings;

/// What `manifest create` did, for the CLI and the Action's outputs and job summary.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestOutcome {
    pub registry: String,
    /// `<registry>/<repository>`.
    pub repository_uri: String,
    /// `<registry>/<repository>:<tag>` for each tag, in order.
    pub image_uris: Vec<String>,
    #[serde(flatten)]
    pub report: ListReport,
    /// What `ferry manifest inspect --json` prints for the list.
    #[serde(skip)]
    pub inspection: Inspection,
    pub repository_created: bool,
}

pub async fn run(args: ManifestArgs) -> anyhow::Result<()> {
    match args.command {
        ManifestCommand::Create(args) | ManifestCommand::Push(args) => {
            let outcome = execute(&args, None).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&outcome)?);
            } else {
                print!("{}", output::list_summary(&outcome));
                if outcome.report.dry_run {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&outcome.report.manifest)?
                    );
                }
            }
            Ok(())
        }
        ManifestCommand::Inspect(args) => inspect(&args).await,
    }
}

/// Creates (or with `--dry-run`, plans) the list `args` describe. `observer` sees every ECR
/// token fetched, before it is used.
pub async fn execute(
    args: &ManifestCreateArgs,
    observer: Option<TokenObserver>,
) -> anyhow::Result<ManifestOutcome> {
    let options = list_options(args)?;
    let settings = repository_settings(&args.repository_args)?;
    let (registry, rest) = split_target(&args.target, args.registry.as_deref())?;
    let target = super::destination(registry.as_deref(), &args.registry_args, observer).await?;
    let reference = Reference::parse(&format!("{}/{rest}", target.host))
        .with_context(|| format!("TARGET {:?}", args.target))?;

    let mode = crate::settings::ensure_mode(&args.repository_args);
    let managed = target.ecr.as_ref().map(|(ecr, host)| ManagedRepository {
        ecr,
        host,
        name: reference.repository(),
        settings: &settings,
        mode,
    });
    // The rule for immutable tags has to be known before the plan checks the tags.
    let described = publish::prepare(managed, Step::Describe).await?;
    let options = ListOptions {
        immutable_tags: described.immutable_tags(),
        ..options
    };
    let plan = multi_arch::plan(&target.client, &reference, &args.sources, &options).await?;

    let mut created = false;
    let report = if args.dry_run {
        multi_arch::dry_run_report(&plan)?
    } else {
        // Only now, with every source found: a typo must not leave a new repository behind.
        let prepared = publish::prepare(managed, Step::Ensure).await?;
        if let Some(state) = &prepared.repository {
            super::copy::report_repository(Some(state), reference.repository(), false);
            created = state.created;
        }
        multi_arch::apply(&target.client, &plan, &options).await?
    };
    let inspection = multi_arch::inspect::of_list(&reference, &plan.manifest)?;
    let repository_uri = reference.name();
    Ok(ManifestOutcome {
        registry: target.host.clone(),
        image_uris: super::image_uris(&repository_uri, report.tags.iter().map(|t| t.tag.as_str())),
        repository_uri,
        report,
        inspection,
        repository_created: created,
    })
}

async fn inspect(args: &ManifestInspectArgs) -> anyhow::Result<()> {
    let (registry, rest) = split_target(&args.reference, args.registry.as_deref())?;
    let target = super::destination(registry.as_deref(), &args.registry_args, None).await?;
    let reference = Reference::parse(&format!("{}/{rest}", target.host))
        .with_context(|| format!("REFERENCE {:?}", args.reference))?;
    let inspection = multi_arch::inspect(&target.client, &reference, args.layers).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&inspection)?);
    } else {
        print!("{}", output::inspection(&inspection));
    }
    Ok(())
}

/// Splits a reference into the registry it names (or `--registry`'s) and the rest.
pub(super) fn split_target(
    text: &str,
    flag: Option<&str>,
) -> anyhow::Result<(Option<String>, String)> {
    let text = text.trim();
    match (ferry_registry::reference::named_registry(text), flag) {
        (Some((host, _)), Some(flag)) if !host.eq_ignore_ascii_case(flag) => bail!(
            "{text:?} names registry {host}, but --registry says {flag}; give only one of them"
        ),
        (Some((host, rest)), _) => Ok((Some(host.to_string()), rest.to_string())),
        (None, flag) => Ok((flag.map(str::to_string), text.to_string())),
    }
}

fn list_options(args: &ManifestCreateArgs) -> anyhow::Result<ListOptions> {
    if args.registry_args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let mut annotations = BTreeMap::new();
    for kv in &args.annotations {
        match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                annotations.insert(k.trim().to_string(), v.to_string());
            }
            _ => bail!("--annotation {kv:?}: expected KEY=VALUE"),
        }
    }
    let platform_overrides = args
        .platform_overrides
        .iter()
        .map(|o| {
            let (source, platform) = o.rsplit_once('=').with_context(|| {
                format!("--platform-override {o:?}: expected SOURCE=OS/ARCH[/VARIANT]")
            })?;
            let platform =
                Platform::parse(platform).with_context(|| format!("--platform-override {o:?}"))?;
            Ok((source.trim().to_string(), platform))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(ListOptions {
        format: args
            .format
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--format: {e}"))?,
        attestations: args
            .attestations
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--attestations: {e}"))?,
        allow_duplicate_platforms: args.allow_duplicate_platforms,
        annotations,
        platform_overrides,
        tags: args.tags.clone(),
        immutable_tags: None,
        copy: CopyOptions {
            budget: Budget::new(args.registry_args.concurrency),
            ..CopyOptions::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::split_target;

    #[test]
    fn a_target_names_its_registry_or_takes_the_flags() {
        let split = |t: &str, f: Option<&str>| split_target(t, f).expect(t);
        assert_eq!(split("app:1.0", None), (None, "app:1.0".to_string()));
        assert_eq!(
            split("team/app:1.0", Some("localhost:5000")),
            (
                Some("localhost:5000".to_string()),
                "team/app:1.0".to_string()
            )
        );
        assert_eq!(
            split("localhost:5000/team/app:1.0", None),
            (
                Some("localhost:5000".to_string()),
                "team/app:1.0".to_string()
            )
        );
        let err = split_target("localhost:5000/app:1", Some("other:5000")).expect_err("clash");
        assert!(err.to_string().contains("--registry"));
    }
}
