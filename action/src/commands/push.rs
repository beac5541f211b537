//! `ferry push IMAGE`: a local image into ECR in one step.

use std::time::Duration;

use ferry_registry::ecr::TokenObserver;
use serde::Serialize;

use crate::cli::PushArgs;

/// What a push did, for the CLI's table and the Action's outputs and job summary.
#[derive(Debug, Clone, Serialize)]
pub struct PushOutcome {
    /// What was pushed, as the user named it (`app:1.0`, `oci:./layout`, …).
    pub source: String,
    /// The ECR registry host.
    pub registry: String,
    pub repository: String,
    /// `<registry>/<repository>`.
    pub repository_uri: String,
    pub digest: String,
    pub media_type: String,
    /// `<registry>/<repository>:<tag>` for each tag, in order.
    pub image_uris: Vec<String>,
    /// Each tag and its fate: `created`, `moved` or `unchanged`.
    pub tags: Vec<TagFate>,
    /// Bytes of the image as stored (config and compressed layers).
    pub size: u64,
    pub bytes_uploaded: u64,
    pub layers_uploaded: u64,
    pub layers_skipped: u64,
    pub repository_created: bool,
    #[serde(with = "millis")]
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct TagFate {
    pub tag: String,
    pub outcome: String,
}

mod millis {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u128(d.as_millis())
    }
}

pub async fn run(args: PushArgs) -> anyhow::Result<()> {
    let outcome = execute(&args, None).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print!("{}", crate::output::push_summary(&outcome));
    }
    Ok(())
}

/// Pushes as `args` say. `observer` sees every ECR token fetched, before it is used.
pub async fn execute(
    args: &PushArgs,
    observer: Option<TokenObserver>,
) -> anyhow::Result<PushOutcome> {
    let _ = (args, observer);
    anyhow::bail!("ferry push is being written")
}
