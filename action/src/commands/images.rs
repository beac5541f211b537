//! `ferry images REPOSITORY`: what a repository holds. ECR answers through its API (sizes,
//! push times, untagged images); any other registry through its tag list.

use anyhow::{Context, bail};
use ferry_registry::Reference;

use crate::cli::ImagesArgs;
use crate::output::{human_size, short_media_type};

pub async fn run(args: ImagesArgs) -> anyhow::Result<()> {
    if args.registry_args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let (registry, repository) =
        super::manifest::split_target(&args.repository, args.registry.as_deref())?;
    let target = super::destination(registry.as_deref(), &args.registry_args, None).await?;
    let images = match &target.ecr {
        Some((ecr, host)) => ecr.describe_images(host, &repository).await?,
        None => {
            let reference = Reference::parse(&format!("{}/{repository}", target.host))
                .with_context(|| format!("REPOSITORY {:?}", args.repository))?;
            target
                .client
                .repository(&reference)
                .list_images(args.registry_args.concurrency)
                .await?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&images)?);
        return Ok(());
    }
    println!("{}/{repository}: {} image(s)", target.host, images.len());
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
