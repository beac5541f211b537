//! `ferry login`: an ECR password on stdout, for `docker login --password-stdin`.

use anyhow::Context;
use ferry_registry::ecr::resolve_registry;

use crate::cli::LoginArgs;

pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let ecr = super::ecr(&args.aws).await?;
    let host = match &args.registry {
        Some(registry) => {
            resolve_registry(registry, args.aws.region.as_deref()).context("--registry")?
        }
        None => ecr.default_registry(args.aws.region.as_deref()).await?,
    };
    let token = ecr.authorization_token(&host).await?;
    eprintln!(
        "ferry: password for {host} (user {}); pipe it to `docker login --username {} --password-stdin {host}`",
        token.username, token.username
    );
    println!("{}", token.password);
    Ok(())
}
