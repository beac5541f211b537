//! The command line. Every flag is documented here; `ferry help <command>` prints it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "ferry",
    version,
    about = "Get container images into Amazon ECR and keep them there",
    long_about = None
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). FERRY_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Copy an image (a single manifest, or a multi-arch index with all its children) between
    /// registries, tags last.
    Copy(CopyArgs),
}

/// Options shared by every command that talks to registries.
#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Talk plain HTTP (no TLS) to this registry host (`host` or `host:port`). Repeatable.
    /// Loopback registries (localhost, 127.0.0.0/8, [::1]) always use plain HTTP.
    #[arg(long = "insecure", value_name = "HOST")]
    pub insecure: Vec<String>,

    /// Also trust the CA certificates in this PEM file (the system trust store is always used).
    #[arg(long = "ca-file", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Blob transfers to run at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,
}

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// Source image reference, e.g. `docker.io/library/alpine:3.20` or `host:5000/app@sha256:…`.
    pub source: String,

    /// Destination reference, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/alpine:3.20`.
    /// Without a tag, `latest`.
    pub destination: String,

    /// Copy only this platform of a multi-arch image (`os/arch[/variant]`, e.g. `linux/arm64`).
    /// Repeatable; the destination then gets a new index holding only these. Default: all.
    #[arg(long = "platform", value_name = "OS/ARCH[/VARIANT]")]
    pub platforms: Vec<String>,

    /// Also tag the destination with this tag. Repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// Also copy referrers: signatures, SBOMs and attestations that refer to the image.
    #[arg(long)]
    pub referrers: bool,

    /// Show what would be copied; change nothing at the destination.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the copy report as JSON on stdout instead of the summary table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}
