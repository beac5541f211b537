//! The command line: `ferry-operator run` and `ferry-operator crd`. Every `run` flag also reads
//! an environment variable, so a Deployment can set them either way.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "ferry-operator",
    version,
    about = "Keeps EcrImageMirror resources copied into Amazon ECR"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller.
    Run(RunArgs),
    /// Print the EcrImageMirror CustomResourceDefinition as YAML.
    Crd,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Watch only these namespaces (repeat or comma-separate); default all.
    #[arg(
        long = "namespace",
        env = "FERRY_WATCH_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,
    /// Mirrors synced at once.
    #[arg(long, env = "FERRY_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Blob transfers at once, shared by all mirrors.
    #[arg(long, env = "FERRY_TRANSFERS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub transfers: u32,
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, env = "FERRY_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: SocketAddr,
    /// Run the controller only while holding the lease (one active replica).
    #[arg(long, env = "FERRY_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// The Lease leader election holds.
    #[arg(long, env = "FERRY_LEASE_NAME", default_value = "ferry-operator")]
    pub lease_name: String,
    /// The Lease's namespace; default the pod's own (POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// After SIGTERM, how long running syncs may go on before they are cancelled.
    #[arg(long, env = "FERRY_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_seconds)]
    pub shutdown_grace: Duration,
    /// The AWS region for ECR destinations; default the SDK's (AWS_REGION, IMDS).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
}

/// `30s`, `2m` or a plain number of seconds.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.strip_suffix('m') {
        Some(minutes) => (minutes, 60),
        None => (text.strip_suffix('s').unwrap_or(text), 1),
    };
    number
        .parse::<u64>()
        .map(|n| Duration::from_secs(n * unit))
        .map_err(|_| format!("{text:?} is not a duration such as 30s or 2m"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_flags() {
        let cli = Cli::try_parse_from(["ferry-operator", "run"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert!(args.leader_elect);
        assert_eq!(args.metrics_address.to_string(), "0.0.0.0:8080");
        assert_eq!(args.shutdown_grace, Duration::from_secs(30));
        let cli = Cli::try_parse_from([
            "ferry-operator",
            "run",
            "--namespace",
            "a,b",
            "--leader-elect",
            "false",
            "--shutdown-grace",
            "2m",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.namespaces, ["a", "b"]);
        assert!(!args.leader_elect);
        assert_eq!(args.shutdown_grace, Duration::from_secs(120));
        assert!(Cli::try_parse_from(["ferry-operator", "run", "--concurrency", "0"]).is_err());
    }
}
