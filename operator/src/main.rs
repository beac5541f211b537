use clap::Parser;
use ferry_operator::cli::{Cli, Command};
use ferry_operator::{crd, run, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", crd::crd_yaml()?);
            Ok(())
        }
        Command::Run(args) => {
            telemetry::init();
            // As a JSON log line too: in a cluster, stderr text is easy to miss among them.
            if let Err(error) = run::run(args).await {
                tracing::error!(error = format!("{error:#}"), "ferry-operator stopped");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
