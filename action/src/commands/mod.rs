//! One module per subcommand, plus what they share: building the registry client and reaching
//! ECR.

mod copy;
mod images;
mod login;
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
        Command::Action => crate::action::run().await,
        Command::Login(args) => login::run(args).await,
        Command::Images(args) => images::run(args).await,
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
