//! `ferry`: get container images into Amazon ECR and keep them there.
//!
//! A thin shell over `ferry-registry`: parse the command line, run one command, print its
//! result, and exit non-zero with a one-line cause on failure.

mod action;
mod cli;
mod commands;
mod hints;
mod logging;
mod output;
mod progress;
mod settings;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let mut cli = cli::Cli::parse();
    // `manifest inspect -v` means "show layers", as `docker manifest inspect -v` does.
    if let cli::Command::Manifest(cli::ManifestArgs {
        command: cli::ManifestCommand::Inspect(args),
    }) = &mut cli.command
    {
        args.layers = cli.verbose > 0;
        cli.verbose = cli.verbose.saturating_sub(1);
    }
    // A re-run with "debug logging" sets RUNNER_DEBUG=1: the Action then logs as `-vv` does.
    if matches!(cli.command, cli::Command::Action)
        && std::env::var("RUNNER_DEBUG").is_ok_and(|v| v == "1")
    {
        cli.verbose = cli.verbose.max(2);
    }
    logging::init(cli.verbose);
    // A copy verifies digests in its async streams, so it wants every core. The other commands
    // do their heavy work (reading an export, compressing, hashing) on threads of their own and
    // drive a handful of connections: one thread does that without handing work between
    // threads, and in a VM waking an idle worker can cost a good part of a millisecond, which a
    // warm push (a few ms in all) notices.
    let mut builder = match cli.command {
        cli::Command::Copy(_) | cli::Command::Mirror(_) => {
            tokio::runtime::Builder::new_multi_thread()
        }
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferry: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(commands::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ferry: error: {}", output::one_line(&error));
            if let Some(hint) = hints::for_cli(&error) {
                eprintln!("ferry: hint: {hint}");
            }
            ExitCode::FAILURE
        }
    };
    // Everything the command started has been awaited; what is left are idle connection tasks
    // and parked threads, and waiting for them would only add to every run's time.
    runtime.shutdown_background();
    code
}
