//! One module per subcommand.

mod copy;

use anyhow::Context;
use ferry_registry::Client;

use crate::cli::{Command, RegistryArgs};

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Copy(args) => copy::run(args).await,
    }
}

/// A registry client configured from the shared flags.
pub fn client(args: &RegistryArgs) -> anyhow::Result<Client> {
    let mut builder = Client::builder();
    for host in &args.insecure {
        builder = builder.insecure_host(host.clone());
    }
    if let Some(ca) = &args.ca_file {
        builder = builder.ca_file(ca.clone());
    }
    builder.build().context("cannot set up the registry client")
}
