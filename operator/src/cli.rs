//! The command line: `ferry-operator run` and `ferry-operator crd`. Every `run` flag also reads
//! an environment variable, so a Deployment can set them either way; the flag names are the
//! ones charts/ferry-operator's Deployment passes.

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
    #[arg(long, env = "FERRY_TRANSFER_BUDGET", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub transfer_budget: u32,
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, env = "FERRY_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: SocketAddr,
    /// Run the controller without leader election: only for a single replica.
    #[arg(long, env = "FERRY_NO_LEADER_ELECTION")]
    pub no_leader_election: bool,
    /// The Lease leader election holds (only its holder runs the controller).
    #[arg(long, env = "FERRY_LEASE_NAME", default_value = "ferry-operator")]
    pub lease_name: String,
    /// The Lease's namespace; default the pod's own (POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// How long the leader's claim on the Lease lasts without renewal: a standby takes over at
    /// most this long after the leader dies. It renews a third of this before expiry.
    #[arg(long, env = "FERRY_LEASE_DURATION", default_value = "30s", value_parser = parse_lease_duration)]
    pub lease_duration: Duration,
    /// After SIGTERM, how long running syncs may go on before they are cancelled.
    #[arg(long, env = "FERRY_SHUTDOWN_GRACE_PERIOD", default_value = "30s", value_parser = parse_seconds)]
    pub shutdown_grace_period: Duration,
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

/// A Lease duration: whole seconds, at least 3 so a third of it is left to renew in.
fn parse_lease_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_seconds(text)?;
    if duration < Duration::from_secs(3) {
        return Err(format!("{text:?} is too short for a Lease: at least 3s"));
    }
    Ok(duration)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_the_flags_the_chart_passes() {
        let cli = Cli::try_parse_from(["ferry-operator", "run"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert!(!args.no_leader_election);
        assert_eq!(args.metrics_address.to_string(), "0.0.0.0:8080");
        assert_eq!(args.shutdown_grace_period, Duration::from_secs(30));
        assert_eq!(args.lease_duration, Duration::from_secs(30));
        assert_eq!((args.concurrency, args.transfer_budget), (4, 8));
        // As charts/ferry-operator/templates/deployment.yaml writes them.
        let cli = Cli::try_parse_from([
            "ferry-operator",
            "run",
            "--metrics-address=0.0.0.0:9090",
            "--concurrency=2",
            "--transfer-budget=16",
            "--shutdown-grace-period=45s",
            "--namespace=a",
            "--namespace=b",
            "--no-leader-election",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.namespaces, ["a", "b"]);
        assert!(args.no_leader_election);
        assert_eq!((args.concurrency, args.transfer_budget), (2, 16));
        assert_eq!(args.shutdown_grace_period, Duration::from_secs(45));
        assert_eq!(args.metrics_address.port(), 9090);
        assert!(Cli::try_parse_from(["ferry-operator", "run", "--concurrency", "0"]).is_err());
        assert!(
            Cli::try_parse_from(["ferry-operator", "run", "--shutdown-grace-period=soon"]).is_err()
        );
        let error = Cli::try_parse_from(["ferry-operator", "run", "--lease-duration=1s"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--lease-duration") && error.contains("at least 3s"),
            "{error}"
        );
    }
}
