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
            run::run(args).await
        }
    }
}
