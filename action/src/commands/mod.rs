//! One module per subcommand, plus what they share: building the registry client and reaching
//! ECR.

pub mod copy;
mod images;
mod login;
pub mod manifest;
pub mod mirror;
pub mod push;

use std::sync::Arc;

use anyhow::Context;
use ferry_registry::Client;
use ferry_registry::ecr::{Ecr, EcrCredentials, EcrOptions};

use crate::cli::{AwsArgs, Command, RegistryArgs};

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Copy(args) => copy::run(*args).await,
        Command::Push(args) => push::run(*args).await,
        Command::Manifest(args) => manifest::run(args).await,
        Command::Action => crate::action::run().await,
        Command::Login(args) => login::run(args).await,
        Command::Images(args) => images::run(args).await,
        Command::Mirror(args) => mirror::run(*args).await,
    }
}

/// The AWS side, set up only when a command touches an ECR registry.
pub async fn ecr(aws: &AwsArgs) -> anyhow::Result<Ecr> {
    Ecr::new(EcrOptions {
        region: aws.region.clone(),
        role_arn: aws.role_arn.clone(),
        endpoint_url: None,
        credentials: None,
    })
    .await
    .context("cannot set up AWS access")
}

/// A registry client configured from the shared flags. With `ecr`, ECR registries are logged
/// into with AWS credentials; everything else uses docker's config.json.
pub fn client(args: &RegistryArgs, ecr: Option<&Ecr>) -> anyhow::Result<Client> {
    client_observed(args, ecr, None)
}

/// Like [`client`], showing every ECR token fetched to `observer` first.
pub fn client_observed(
    args: &RegistryArgs,
    ecr: Option<&Ecr>,
    observer: Option<ferry_registry::ecr::TokenObserver>,
) -> anyhow::Result<Client> {
    let mut builder = Client::builder();
    for host in &args.insecure {
        builder = builder.insecure_host(host.clone());
    }
    if let Some(ca) = &args.ca_file {
        builder = builder.ca_file(ca.clone());
    }
    if let Some(url) = &args.ecr_registry_url {
        builder = builder.ecr_registry_url(url.clone());
    }
    if let Some(ecr) = ecr {
        let mut credentials = EcrCredentials::new(ecr.clone());
        if let Some(observer) = observer {
            credentials = credentials.with_observer(observer);
        }
        builder = builder.credentials(Arc::new(credentials));
    }
    builder.build().context("cannot set up the registry client")
}

/// `<repository_uri>:<tag>` for each tag, in order: the Action's `image-uris` output and the
/// `--json` field of every command that writes tags.
pub fn image_uris<'a>(
    repository_uri: &str,
    tags: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    tags.into_iter()
        .map(|tag| format!("{repository_uri}:{tag}"))
        .collect()
}

/// Where a command writes, and a client for it.
pub struct Destination {
    pub client: Client,
    /// The registry host (`123456789012.dkr.ecr.eu-west-1.amazonaws.com`, `localhost:5000`).
    pub host: String,
    /// Set for an ECR registry: its repositories are managed through the AWS API.
    pub ecr: Option<(Ecr, ferry_registry::ecr::EcrHost)>,
}

/// Resolves `registry` — an ECR host, an account id, none (the caller's own ECR registry in
/// the region), or any other registry host — to a logged-in client. ECR gets AWS credentials
/// (each token shown to `observer` first); any other registry docker's config.json.
pub async fn destination(
    registry: Option<&str>,
    args: &RegistryArgs,
    observer: Option<ferry_registry::ecr::TokenObserver>,
) -> anyhow::Result<Destination> {
    if let Some(host) = ferry_registry::ecr::other_registry(registry) {
        return Ok(Destination {
            client: client(args, None)?,
            host,
            ecr: None,
        });
    }
    let ecr = ecr(&args.aws).await?;
    let host = ecr
        .destination_host(registry, args.aws.region.as_deref())
        .await
        .with_context(|| match registry {
            Some(registry) => format!("--registry {registry}"),
            None => "your own ECR registry (no --registry)".to_string(),
        })?;
    Ok(Destination {
        client: client_observed(args, Some(&ecr), observer)?,
        host: host.to_string(),
        ecr: Some((ecr, host)),
    })
}
