//! `ferry-testkit`: the rig's command line, for bench and demo shell scripts.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use ferry_testkit::{
    EcrStandIn, ImageFormat, ImageSpec, RegistryAuth, RegistryOptions, TestRegistry, TokenConfig,
};

#[derive(Parser)]
#[command(name = "ferry-testkit", about = "Test rig for ecr-ferry")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a docker-registry in the foreground until Ctrl-C or SIGTERM. Prints `host=HOST:PORT`
    /// on stdout once it answers.
    Registry {
        #[arg(long)]
        port: Option<u16>,
        /// Keep storage, config and log here (default: a temp dir removed on exit).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Require HTTP Basic auth with USER:PASS.
        #[arg(long, value_name = "USER:PASS", conflicts_with = "token")]
        basic: Option<String>,
        /// Require Bearer tokens from a built-in issuer; repeat for more users.
        #[arg(long, value_name = "USER:PASS")]
        token: Vec<String>,
        /// With --token: let requests without credentials pull.
        #[arg(long, requires = "token")]
        anonymous_pull: bool,
    },
    /// Run the ECR stand-in (moto behind the token proxy, plus a Basic-auth registry) in the
    /// foreground until Ctrl-C or SIGTERM. Prints the environment for a `ferry` process as
    /// `KEY=VALUE` lines on stdout once everything answers, then `READY=1`.
    Ecr,
    /// Build an image and push it (or write it into an OCI image layout); prints the digest of
    /// its index (or manifest with --single).
    Seed {
        /// HOST:PORT or URL of the registry (this or --oci-layout).
        #[arg(long)]
        registry: Option<String>,
        /// Write the image into this OCI image layout directory (created or extended), tagged
        /// --tag, instead of pushing it; --repository is then ignored.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["registry", "basic"])]
        oci_layout: Option<PathBuf>,
        #[arg(long, default_value = "")]
        repository: String,
        #[arg(long)]
        tag: String,
        #[arg(long, value_delimiter = ',', default_value = "linux/amd64")]
        platforms: Vec<String>,
        #[arg(long, default_value_t = 2)]
        layers: usize,
        #[arg(long, default_value_t = 1)]
        layer_mib: usize,
        /// Exact layer size in bytes; overrides --layer-mib.
        #[arg(long)]
        layer_bytes: Option<usize>,
        /// The first N layers are identical across platforms.
        #[arg(long, default_value_t = 0)]
        shared_layers: usize,
        #[arg(long, value_enum, default_value_t = Format::Oci)]
        format: Format,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Push only the first platform, without an index.
        #[arg(long)]
        single: bool,
        #[arg(long, value_name = "USER:PASS")]
        basic: Option<String>,
    },
}

/// Where `seed` puts the image it builds.
enum Target<'a> {
    Registry(&'a str, &'a str, Option<(&'a str, &'a str)>),
    Layout(&'a std::path::Path),
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Oci,
    Docker,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Registry {
            port,
            dir,
            basic,
            token,
            anonymous_pull,
        } => {
            let auth = if let Some(b) = basic {
                let (username, password) = split_creds(&b)?;
                RegistryAuth::Basic {
                    username: username.to_string(),
                    password: password.to_string(),
                }
            } else if !token.is_empty() {
                let users = token
                    .iter()
                    .map(|t| split_creds(t))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                RegistryAuth::Token(TokenConfig::new(&users, anonymous_pull))
            } else {
                RegistryAuth::Anonymous
            };
            run_registry(RegistryOptions { auth, port, dir }).await
        }
        Cmd::Ecr => run_ecr().await,
        Cmd::Seed {
            registry,
            oci_layout,
            repository,
            tag,
            platforms,
            layers,
            layer_mib,
            layer_bytes,
            shared_layers,
            format,
            seed,
            single,
            basic,
        } => {
            let spec = ImageSpec {
                platforms,
                layers,
                layer_size: layer_bytes.unwrap_or(layer_mib * 1024 * 1024),
                shared_layers,
                format: match format {
                    Format::Oci => ImageFormat::Oci,
                    Format::Docker => ImageFormat::Docker,
                },
                seed,
            };
            let creds = basic.as_deref().map(split_creds).transpose()?;
            let target = match (&registry, &oci_layout) {
                (_, Some(dir)) => Target::Layout(dir),
                (Some(registry), None) => {
                    anyhow::ensure!(!repository.is_empty(), "--registry needs --repository");
                    Target::Registry(registry, &repository, creds)
                }
                (None, None) => anyhow::bail!("seed needs --registry HOST or --oci-layout DIR"),
            };
            let started = Instant::now();
            let digest = if single {
                let image = ferry_testkit::build_single(&spec)?;
                let built = started.elapsed();
                match target {
                    Target::Layout(dir) => image.write_oci_layout(dir, &tag)?,
                    Target::Registry(url, repo, creds) => {
                        image.push(url, repo, &tag, creds).await?
                    }
                }
                report(built, started, image.total_blob_bytes());
                image.manifest.digest
            } else {
                let image = ferry_testkit::build(&spec)?;
                let built = started.elapsed();
                match target {
                    Target::Layout(dir) => image.write_oci_layout(dir, &tag)?,
                    Target::Registry(url, repo, creds) => {
                        image.push(url, repo, &tag, creds).await?
                    }
                }
                report(built, started, image.total_blob_bytes());
                image.index.digest
            };
            println!("{digest}");
            Ok(())
        }
    }
}

async fn run_registry(opts: RegistryOptions) -> anyhow::Result<()> {
    let registry = TestRegistry::start_with(opts).await?;
    eprintln!("registry log: {}", registry.log_path().display());
    if let Some(issuer) = registry.token_issuer() {
        eprintln!("token realm: {}", issuer.realm());
    }
    let mut stdout = std::io::stdout();
    writeln!(stdout, "host={}", registry.host())?;
    stdout.flush()?;

    wait_for_shutdown().await?;
    // Dropping the registry kills and reaps the docker-registry child.
    drop(registry);
    Ok(())
}

async fn run_ecr() -> anyhow::Result<()> {
    let ecr = EcrStandIn::start().await?;
    eprintln!(
        "moto: {} (log {})",
        ecr.moto_url(),
        ecr.moto().log_path().display()
    );
    eprintln!("registry log: {}", ecr.registry().log_path().display());
    eprintln!("ECR host: {}", ecr.ecr_host());
    let mut stdout = std::io::stdout().lock();
    for (key, value) in ecr.env() {
        writeln!(stdout, "{key}={value}")?;
    }
    // A terminator, so a script reading the lines knows it has all of them.
    writeln!(stdout, "READY=1")?;
    stdout.flush()?;
    drop(stdout);

    wait_for_shutdown().await?;
    // Dropping the stand-in kills and reaps moto and docker-registry.
    drop(ecr);
    Ok(())
}

async fn wait_for_shutdown() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// Timings go to stderr so stdout stays the bare digest for scripts.
fn report(built: Duration, started: Instant, bytes: u64) {
    let total = started.elapsed();
    eprintln!(
        "built {bytes} blob bytes in {:.2}s, stored in {:.2}s",
        built.as_secs_f64(),
        (total - built).as_secs_f64()
    );
}

fn split_creds(s: &str) -> anyhow::Result<(&str, &str)> {
    s.split_once(':').context("credentials must be USER:PASS")
}
