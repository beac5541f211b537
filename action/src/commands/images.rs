//! `ferry images REPOSITORY`: what an ECR repository holds.

use anyhow::Context;
use ferry_registry::ecr::{EcrHost, resolve_registry};

use crate::cli::ImagesArgs;
use crate::output::{human_size, short_media_type};

pub async fn run(args: ImagesArgs) -> anyhow::Result<()> {
    let ecr = super::ecr(&args.aws).await?;
    // `REGISTRY/REPOSITORY` names the registry itself; a bare repository needs --registry or
    // the caller's default.
    let (host, repository) = match args.repository.split_once('/') {
        Some((first, rest)) if EcrHost::parse(first).is_some() => {
            (EcrHost::parse(first), rest.to_string())
        }
        _ => (None, args.repository.clone()),
    };
    let host = match (host, &args.registry) {
        (Some(host), _) => host,
        (None, Some(registry)) => {
            resolve_registry(registry, args.aws.region.as_deref()).context("--registry")?
        }
        (None, None) => ecr.default_registry(args.aws.region.as_deref()).await?,
    };
    let images = ecr.describe_images(&host, &repository).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&images)?);
        return Ok(());
    }
    println!("{host}/{repository}: {} image(s)", images.len());
    println!(
        "{:<73} {:<30} {:>10}  {:<25} MEDIA TYPE",
        "DIGEST", "TAGS", "SIZE", "PUSHED"
    );
    for image in &images {
        let tags = if image.tags.is_empty() {
            "<untagged>".to_string()
        } else {
            image.tags.join(",")
        };
        println!(
            "{:<73} {:<30} {:>10}  {:<25} {}",
            image.digest,
            tags,
            image.size.map(human_size).unwrap_or_else(|| "-".into()),
            image.pushed_at.as_deref().unwrap_or("-"),
            image
                .media_type
                .as_deref()
                .map(short_media_type)
                .unwrap_or("-")
        );
    }
    Ok(())
}
