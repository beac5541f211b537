//! `ferry-testkit`: the rig's command line, for bench and demo shell scripts.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use ferry_testkit::{
    EcrStandIn, ImageFormat, ImageSpec, KubeApi, KubeApiOptions, RegistryAuth, RegistryOptions,
    TestRegistry, TlsOptions, TokenConfig, WanConfig, WanRegistry,
};

#[derive(Parser)]
#[command(name = "ferry-testkit", about = "Test rig for ecr-ferry")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a docker-registry in the foreground until Ctrl-C or SIGTERM. Once it answers, prints
    /// in one write on stdout: `host=127.0.0.1:PORT` (first; the proxy's with a WAN flag),
    /// `log=PATH` (the registry's log, one access-log line per request), with --tls `ca=PATH`
    /// and `certdir=DIR` (a dir holding only `ca.crt`), with a WAN flag `direct=127.0.0.1:PORT`
    /// (the registry itself).
    Registry {
        /// The port clients use: the registry's, or the proxy's with a WAN flag.
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
        /// Serve HTTPS with a certificate (for 127.0.0.1, localhost, ::1) from a CA generated at
        /// start; its PEM is the `ca=` line.
        #[arg(long)]
        tls: bool,
        /// With --tls: one more DNS name for the server certificate; repeatable.
        #[arg(long, value_name = "NAME", requires = "tls")]
        tls_dns_name: Vec<String>,
        /// The registry's public base URL (`http.host`), where its upload `Location`s point.
        /// Default: the proxy with a WAN flag, else whatever `Host` the client sent.
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
        /// WAN: put a TCP proxy in front that delays every byte this long in each direction
        /// (and a new connection's first byte by one round trip more, like a TCP handshake).
        #[arg(long, value_name = "MS")]
        wan_latency_ms: Option<u64>,
        /// WAN: cap each proxied connection at this many MiB/s in each direction.
        #[arg(long, value_name = "MIB")]
        wan_rate_mib: Option<f64>,
        /// WAN: emulate TCP slow start on each proxied connection (a 10-segment window doubling
        /// per round trip up to the rate, shrinking again after 200 ms + RTT idle).
        #[arg(long)]
        wan_slow_start: bool,
        /// WAN: append one line per connection the proxy accepts to FILE:
        /// `<n> <unix-ms> <client-addr>` (so `wc -l` counts connections).
        #[arg(long, value_name = "FILE")]
        connection_log: Option<PathBuf>,
    },
    /// Run the ECR stand-in (moto behind the token proxy, plus a Basic-auth registry) in the
    /// foreground until Ctrl-C or SIGTERM. Prints the environment for a `ferry` process as
    /// `KEY=VALUE` lines on stdout once everything answers, then `READY=1`.
    Ecr,
    /// Run the in-process Kubernetes API stand-in in the foreground until Ctrl-C or SIGTERM.
    /// Prints `url=http(s)://127.0.0.1:PORT`, `token=TOKEN`, with --tls `ca=PATH` and, with
    /// --kubeconfig, `kubeconfig=FILE` on stdout once it listens, then `READY=1`.
    KubeApi {
        #[arg(long)]
        port: Option<u16>,
        /// Serve HTTPS (CA generated at start) and require the token.
        #[arg(long)]
        tls: bool,
        /// Write a kubeconfig for it here (cluster, bearer-token user, namespace default).
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
    },
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
        /// Trust this CA (PEM) too, for an `https://` --registry (e.g. `registry --tls`'s `ca=`).
        #[arg(long, value_name = "PEM")]
        ca_cert: Option<PathBuf>,
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
            tls,
            tls_dns_name,
            public_url,
            wan_latency_ms,
            wan_rate_mib,
            wan_slow_start,
            connection_log,
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
            let mut opts = RegistryOptions::new(auth);
            opts.dir = dir;
            opts.public_url = public_url;
            if tls {
                opts.tls = Some(TlsOptions {
                    extra_dns_names: tls_dns_name,
                });
            }
            if let Some(rate) = wan_rate_mib
                && !(rate > 0.0 && rate.is_finite())
            {
                anyhow::bail!("--wan-rate-mib must be a positive number of MiB/s, not {rate}");
            }
            if wan_latency_ms.is_some()
                || wan_rate_mib.is_some()
                || wan_slow_start
                || connection_log.is_some()
            {
                let mut wan = WanConfig::new(wan_latency_ms.unwrap_or(0), wan_rate_mib)
                    .slow_start(wan_slow_start);
                wan.connection_log = connection_log;
                run_wan_registry(opts, wan, port).await
            } else {
                opts.port = port;
                run_registry(opts).await
            }
        }
        Cmd::Ecr => run_ecr().await,
        Cmd::KubeApi {
            port,
            tls,
            kubeconfig,
        } => run_kube_api(port, tls, kubeconfig).await,
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
            ca_cert,
        } => {
            if let Some(path) = ca_cert {
                let pem = std::fs::read(&path)
                    .with_context(|| format!("reading --ca-cert {}", path.display()))?;
                ferry_testkit::push::trust_ca_pem(&pem);
            }
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
    print_registry(&registry, &registry.host(), None)?;
    wait_for_shutdown().await?;
    // Dropping the registry kills and reaps the docker-registry child.
    drop(registry);
    Ok(())
}

async fn run_wan_registry(
    opts: RegistryOptions,
    wan: WanConfig,
    port: Option<u16>,
) -> anyhow::Result<()> {
    let rig = WanRegistry::start_with(opts, wan, port).await?;
    print_registry(rig.registry(), &rig.host(), Some(&rig.registry().host()))?;
    wait_for_shutdown().await?;
    // The proxy stops first, then the docker-registry child is killed and reaped.
    drop(rig);
    Ok(())
}

/// All lines in one write, so a script that sees `host=` in the output file sees the rest too.
fn print_registry(registry: &TestRegistry, host: &str, direct: Option<&str>) -> anyhow::Result<()> {
    eprintln!("registry log: {}", registry.log_path().display());
    if let Some(issuer) = registry.token_issuer() {
        eprintln!("token realm: {}", issuer.realm());
    }
    let mut out = format!("host={host}\nlog={}\n", registry.log_path().display());
    if let (Some(ca), Some(dir)) = (registry.ca_pem_path(), registry.cert_dir()) {
        out.push_str(&format!("ca={}\ncertdir={}\n", ca.display(), dir.display()));
    }
    if let Some(direct) = direct {
        out.push_str(&format!("direct={direct}\n"));
    }
    let mut stdout = std::io::stdout();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
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

async fn run_kube_api(
    port: Option<u16>,
    tls: bool,
    kubeconfig: Option<PathBuf>,
) -> anyhow::Result<()> {
    let api = KubeApi::start_with(KubeApiOptions {
        port,
        tls,
        ..KubeApiOptions::default()
    })
    .await?;
    let mut out = format!("url={}\ntoken={}\n", api.url(), api.token());
    if let Some(ca) = api.ca_pem_path() {
        out.push_str(&format!("ca={}\n", ca.display()));
    }
    if let Some(path) = &kubeconfig {
        api.write_kubeconfig(path)?;
        out.push_str(&format!("kubeconfig={}\n", path.display()));
    }
    out.push_str("READY=1\n");
    let mut stdout = std::io::stdout();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    wait_for_shutdown().await?;
    api.stop();
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
