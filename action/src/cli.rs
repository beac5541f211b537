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
    /// More log output on stderr (-v info: each retry; -vv debug; -vvv trace). FERRY_LOG (an
    /// env_logger-style filter) overrides. No level prints a secret. For `manifest inspect`, -v
    /// shows each child's layers instead and the log levels start at -vv.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Copy an image (a single manifest, or a multi-arch index with all its children) between
    /// registries, tags last. An ECR destination is logged into with AWS credentials and its
    /// repository created if missing.
    Copy(Box<CopyArgs>),
    /// Push a local image (Docker Engine, `oci:DIR[:TAG]` or `docker-archive:FILE`) to ECR in one
    /// step: log in, create the repository if missing, upload what is missing, set every tag.
    Push(Box<PushArgs>),
    /// Multi-arch manifest lists: create one from images already in the registry, or inspect
    /// what a reference holds. No experimental switches, no local state.
    Manifest(ManifestArgs),
    /// Run as the GitHub Action (reads INPUT_* variables; see action.yml).
    Action,
    /// Print an ECR registry password for `docker login --username AWS --password-stdin`, like
    /// `aws ecr get-login-password` (valid 12 hours).
    Login(LoginArgs),
    /// List the images in a repository: digest, tags and media type on any registry; for ECR
    /// also size and push time (and untagged images), from the ECR API.
    Images(ImagesArgs),
    /// Sync `EcrImageMirror` documents once: choose each mirror's tags, copy what changed into
    /// ECR, assemble its manifest lists, and print each tag's state (the same YAML the
    /// ferry-operator reconciles in a cluster).
    Mirror(Box<MirrorArgs>),
}

#[derive(Args, Debug)]
pub struct MirrorArgs {
    /// A YAML file of `EcrImageMirror` documents, or a folder of them (every `*.yaml` / `*.yml`
    /// below it). Documents of other kinds in the same files are skipped, so the files a GitOps
    /// repository applies to a cluster work as they are. Repeatable.
    #[arg(short = 'f', long = "file", value_name = "FILE|DIR", required = true)]
    pub files: Vec<PathBuf>,

    /// Keep each mirror's last status in this JSON file between runs (created when missing):
    /// with it, a tag that has not moved costs one HEAD at the source and one at the
    /// destination, and no manifest GET.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Only the mirrors named so (`metadata.name`, or `namespace/name`). Repeatable.
    #[arg(long = "name", value_name = "NAME")]
    pub names: Vec<String>,

    /// Show the plan (which tags would be copied, which lists built) and change nothing; the
    /// state file is not written.
    #[arg(long)]
    pub dry_run: bool,

    /// Print one JSON document (every mirror's status) instead of tables.
    #[arg(long)]
    pub json: bool,

    /// Mirrors synced at once (their blob transfers share `--concurrency`). Each finished
    /// mirror is reported on stderr as `[n/total]`; the tables (or `--json`) follow at the end.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,

    /// Where the Secrets named by `credentialsSecretRef` are: a folder with a folder per
    /// Secret holding its `.dockerconfigjson` (or `.dockercfg`) — the layout of Secrets mounted
    /// as volumes — or a `<name>.json` docker config per Secret. Such a config never runs a
    /// credential helper. Without this flag, docker's config.json serves every registry.
    #[arg(long, value_name = "DIR")]
    pub secrets_dir: Option<PathBuf>,

    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

/// Options shared by every command that talks to registries.
#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Talk plain HTTP (no TLS) to this registry host (`host` or `host:port`). Repeatable.
    /// Not needed for loopback registries (localhost, 127.0.0.0/8, [::1]): ferry asks them
    /// whether they speak TLS on first contact and uses plain HTTP where they do not.
    #[arg(long = "insecure", value_name = "HOST")]
    pub insecure: Vec<String>,

    /// Also trust the CA certificates in this PEM file (the system trust store is always used).
    #[arg(long = "ca-file", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Blob transfers to run at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,

    /// Send registry API calls for ECR hosts to this base URL instead (private endpoints, local
    /// stand-ins). Credentials are still fetched for the ECR host.
    #[arg(
        long,
        value_name = "URL",
        env = "FERRY_ECR_REGISTRY_URL",
        hide_env_values = true
    )]
    pub ecr_registry_url: Option<String>,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// How ferry reaches AWS. Credentials come from the AWS SDK's default chain: environment
/// (AWS_ACCESS_KEY_ID, …), shared profile (AWS_PROFILE), web identity / IRSA, EKS Pod Identity,
/// or the instance metadata service.
#[derive(Args, Debug, Clone, Default)]
pub struct AwsArgs {
    /// AWS region of the ECR API when a registry does not name one (default: AWS_REGION, the
    /// profile's region, or the instance's).
    #[arg(
        long,
        value_name = "REGION",
        env = "AWS_REGION",
        hide_env_values = true
    )]
    pub region: Option<String>,

    /// Assume this IAM role before calling ECR (for registries in another account).
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
}

/// Settings for an ECR repository that ferry creates; compared with an existing repository's.
#[derive(Args, Debug, Clone, Default)]
pub struct RepositoryArgs {
    /// Fail instead of creating a missing ECR repository.
    #[arg(long)]
    pub no_create: bool,

    /// Tag mutability: MUTABLE, IMMUTABLE, MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION.
    #[arg(long, value_name = "MUTABILITY")]
    pub tag_mutability: Option<String>,

    /// A tag filter (wildcard `*`) exempt from the tag mutability rule; repeatable. Goes with
    /// the *_WITH_EXCLUSION mutabilities.
    #[arg(long = "mutability-exclusion", value_name = "FILTER")]
    pub mutability_exclusions: Vec<String>,

    /// Scan images for vulnerabilities on push (true or false).
    #[arg(long, value_name = "BOOL")]
    pub scan_on_push: Option<bool>,

    /// Encryption at rest for a new repository: AES256 or KMS. ECR cannot change it later.
    #[arg(long, value_name = "TYPE")]
    pub encryption: Option<String>,

    /// KMS key (ARN, id or alias) with --encryption KMS; default: the AWS-managed key.
    #[arg(long, value_name = "KEY")]
    pub kms_key: Option<String>,

    /// A resource tag for the repository, KEY=VALUE; repeatable.
    #[arg(long = "repository-tag", value_name = "KEY=VALUE")]
    pub repository_tags: Vec<String>,

    /// Lifecycle policy for the repository: a JSON file.
    #[arg(long, value_name = "FILE")]
    pub lifecycle_policy: Option<PathBuf>,

    /// Repository (permissions) policy: a JSON file.
    #[arg(long, value_name = "FILE")]
    pub repository_policy: Option<PathBuf>,

    /// Correct settings of an existing repository that differ from the ones given (by default
    /// differences are only reported).
    #[arg(long)]
    pub enforce_settings: bool,
}

#[derive(Args, Debug, Clone)]
pub struct PushArgs {
    /// The local image: `repo:tag` (`repo` alone is `repo:latest`) or an image ID (full or short) in the
    /// Docker Engine (DOCKER_HOST, default unix:///var/run/docker.sock); `oci:DIR[:TAG]` (an OCI
    /// image layout directory); or `docker-archive:FILE` (a `docker save` tar).
    pub image: String,

    /// Repository to push to. Default: the image's own repository name (`team/app` for
    /// `team/app:1.0`).
    #[arg(long, value_name = "NAME")]
    pub repository: Option<String>,

    /// Tag to set; repeatable. Default: the image's own tag (`1.2` for `app:1.2` and
    /// `oci:DIR:1.2`); `latest` for an image ID, a digest, an untagged name or an archive.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// The registry: an ECR host (`123456789012.dkr.ecr.eu-west-1.amazonaws.com`) or account id
    /// (default: the caller's own ECR registry in the region), or any other registry host
    /// (`localhost:5000`), which is pushed to with docker's credentials and no repository
    /// management.
    #[arg(long, value_name = "HOST|ACCOUNT_ID")]
    pub registry: Option<String>,

    /// Compression for layers the source holds uncompressed: gzip (default, what every client
    /// reads) or zstd (smaller and faster; needs containerd ≥ 1.5 / Docker ≥ 23 to pull).
    #[arg(long, value_name = "ALGORITHM", default_value = "gzip")]
    pub compression: String,

    /// Print the push report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub registry_args: RegistryArgs,

    #[command(flatten)]
    pub repository_args: RepositoryArgs,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The ECR registry: a host (`123456789012.dkr.ecr.eu-west-1.amazonaws.com`) or an account
    /// id. Default: the caller's own registry in the region.
    #[arg(long, value_name = "HOST|ACCOUNT_ID")]
    pub registry: Option<String>,

    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// The repository, e.g. `team/app`, or `<registry>/<repository>`
    /// (`localhost:5000/team/app`, `123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app`).
    pub repository: String,

    /// The registry for a REPOSITORY without one: an ECR host or account id (default: the
    /// caller's own ECR registry in the region), or any other registry host (`localhost:5000`),
    /// whose tags are listed and looked up one by one (--concurrency at a time).
    #[arg(long, value_name = "HOST|ACCOUNT_ID")]
    pub registry: Option<String>,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// Source image reference, e.g. `docker.io/library/alpine:3.20` or `host:5000/app@sha256:…`.
    pub source: String,

    /// Destination reference, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/alpine:3.20`,
    /// or `repository[:tag]` in the registry --registry names (default: the caller's own ECR
    /// registry in the region). Without a tag, `latest`.
    pub destination: String,

    /// The registry for a DESTINATION without one: an ECR host or account id, or any other
    /// registry host (`localhost:5000`).
    #[arg(long = "registry", value_name = "HOST|ACCOUNT_ID")]
    pub to_registry: Option<String>,

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

    /// Fetch a blob of 64 MiB or more as up to N parallel 4 MiB `Range` requests when the
    /// source serves ranges (spare transfer budget only); 0 or 1: one `GET` per blob.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub range_parts: usize,

    #[command(flatten)]
    pub registry: RegistryArgs,

    #[command(flatten)]
    pub repository: RepositoryArgs,
}

#[derive(Args, Debug)]
pub struct ManifestArgs {
    #[command(subcommand)]
    pub command: ManifestCommand,
}

#[derive(Subcommand, Debug)]
pub enum ManifestCommand {
    /// Create a manifest list (multi-arch image) from images already in the registry and push
    /// it: every source is fetched first, and one error names every missing one. There is no
    /// `annotate`: give --platform-override and --annotation here instead.
    Create(Box<ManifestCreateArgs>),
    /// The same as `create`, under the verb `docker manifest push` users expect.
    Push(Box<ManifestCreateArgs>),
    /// Show what a reference holds: for a list, each child's platform, media type, digest and
    /// size; for an image, its config, platform, layers and total size.
    Inspect(ManifestInspectArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ManifestCreateArgs {
    /// The list to create: `repo:tag` in the registry that --registry names (default: the
    /// caller's own ECR registry), or a full reference `<registry>/<repo>:<tag>`.
    pub target: String,

    /// The images the list holds: tags or digests in TARGET's repository (`1.0-amd64`,
    /// `sha256:…`), or references in another repository of the same registry (`app-arm:1.0`,
    /// `<registry>/app-arm@sha256:…`), which are mounted into TARGET's repository first. A
    /// source that is itself a list contributes its children.
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,

    /// Tag to set; repeatable. Default: TARGET's tag.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// oci (an OCI image index), docker (a Docker manifest list; every child must be a Docker
    /// manifest) or auto (docker when every child is a Docker manifest and no --annotation is
    /// given, else oci).
    #[arg(long, value_name = "FORMAT", default_value = "auto")]
    pub format: String,

    /// An annotation of the list itself, KEY=VALUE; repeatable (OCI index only).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    /// Record this platform for SOURCE (as typed among the sources) instead of the one its
    /// config declares; repeatable. What `docker manifest annotate --os/--arch/--variant` does.
    #[arg(long = "platform-override", value_name = "SOURCE=OS/ARCH[/VARIANT]")]
    pub platform_overrides: Vec<String>,

    /// What to do with buildx attestation manifests (platform unknown/unknown) in a source that
    /// is a list: keep or drop.
    #[arg(long, value_name = "keep|drop", default_value = "keep")]
    pub attestations: String,

    /// Allow two children with the same platform (by default that is an error: a runtime would
    /// pick one of them at random).
    #[arg(long)]
    pub allow_duplicate_platforms: bool,

    /// Check everything and print the list that would be pushed; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the result as JSON (the list itself under `manifest`).
    #[arg(long)]
    pub json: bool,

    /// The registry for a TARGET without one: an ECR host or account id (default: the caller's
    /// own ECR registry in the region), or any other registry host (`localhost:5000`).
    #[arg(long, value_name = "HOST|ACCOUNT_ID")]
    pub registry: Option<String>,

    #[command(flatten)]
    pub registry_args: RegistryArgs,

    #[command(flatten)]
    pub repository_args: RepositoryArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ManifestInspectArgs {
    /// What to inspect: `repo:tag`, `repo@sha256:…`, or a full reference.
    pub reference: String,

    /// The registry for a REFERENCE without one (as for `manifest create`).
    #[arg(long, value_name = "HOST|ACCOUNT_ID")]
    pub registry: Option<String>,

    /// Print JSON: the raw manifest under `manifest`, plus the table's rows.
    #[arg(long)]
    pub json: bool,

    /// For a list, also fetch and show each child's layers: ferry's global `--verbose`/`-v`
    /// (like `docker manifest inspect -v`); for this command it raises the log level only from
    /// `-vv` on.
    #[arg(skip)]
    pub layers: bool,

    #[command(flatten)]
    pub registry_args: RegistryArgs,
}
