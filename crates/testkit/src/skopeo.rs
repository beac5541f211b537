//! Thin async wrappers around the `skopeo` CLI, the reference client ferry is compared with.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::Command;

pub use crate::util::sha256_digest;

const TIMEOUT: Duration = Duration::from_secs(300);
const TRANSPORTS: &[&str] = &[
    "docker://",
    "oci:",
    "oci-archive:",
    "dir:",
    "docker-archive:",
    "docker-daemon:",
    "containers-storage:",
];

/// Options for `copy`; `Default` is a single-image copy without credentials.
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// `--all`: copy every platform of an index, not just the host's.
    pub all: bool,
    pub src_creds: Option<(String, String)>,
    pub dst_creds: Option<(String, String)>,
    /// Appended to the `copy` subcommand, e.g. `--retry-times 3` or `--format oci`.
    pub extra_args: Vec<String>,
}

/// `skopeo inspect --raw`: the manifest bytes exactly as the registry serves them.
/// `reference` is `127.0.0.1:PORT/repo:tag` (or `@sha256:…`) or any skopeo transport reference.
pub async fn inspect_raw(reference: &str, creds: Option<(&str, &str)>) -> anyhow::Result<Vec<u8>> {
    let mut args = vec![
        "inspect".to_string(),
        "--raw".to_string(),
        "--tls-verify=false".to_string(),
    ];
    args.extend(creds_args("", creds));
    args.push(transport_ref(reference));
    run(&args).await
}

/// `skopeo copy --all` between two references (see `inspect_raw` for their form).
pub async fn copy_all(
    src: &str,
    dst: &str,
    src_creds: Option<(&str, &str)>,
    dst_creds: Option<(&str, &str)>,
) -> anyhow::Result<()> {
    let owned = |c: Option<(&str, &str)>| c.map(|(u, p)| (u.to_string(), p.to_string()));
    let opts = CopyOptions {
        all: true,
        src_creds: owned(src_creds),
        dst_creds: owned(dst_creds),
        extra_args: Vec::new(),
    };
    copy(src, dst, &opts).await
}

pub async fn copy(src: &str, dst: &str, opts: &CopyOptions) -> anyhow::Result<()> {
    let mut args = vec![
        "copy".to_string(),
        "--src-tls-verify=false".to_string(),
        "--dest-tls-verify=false".to_string(),
    ];
    if opts.all {
        args.push("--all".to_string());
    }
    let joined = |c: &Option<(String, String)>| c.as_ref().map(|(u, p)| format!("{u}:{p}"));
    match joined(&opts.src_creds) {
        Some(c) => args.extend(["--src-creds".to_string(), c]),
        None if is_docker(src) => args.push("--src-no-creds".to_string()),
        None => {}
    }
    match joined(&opts.dst_creds) {
        Some(c) => args.extend(["--dest-creds".to_string(), c]),
        None if is_docker(dst) => args.push("--dest-no-creds".to_string()),
        None => {}
    }
    args.extend(opts.extra_args.iter().cloned());
    args.push(transport_ref(src));
    args.push(transport_ref(dst));
    run(&args).await?;
    Ok(())
}

/// Runs skopeo with a permissive signature policy of our own, so the host's
/// `/etc/containers/policy.json` (present or not) does not matter. Returns stdout.
pub async fn run(args: &[String]) -> anyhow::Result<Vec<u8>> {
    let mut policy = tempfile::NamedTempFile::new()?;
    policy.write_all(br#"{"default":[{"type":"insecureAcceptAnything"}]}"#)?;
    policy.flush()?;
    let mut cmd = Command::new("skopeo");
    cmd.arg("--policy")
        .arg(policy.path())
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(TIMEOUT, cmd.output())
        .await
        .with_context(|| format!("skopeo {} timed out after {TIMEOUT:?}", args.join(" ")))?
        .context("running skopeo (is the Debian skopeo package installed?)")?;
    if !output.status.success() {
        bail!(
            "skopeo {} failed ({}): {}",
            redact(args).join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output.stdout)
}

fn creds_args(prefix: &str, creds: Option<(&str, &str)>) -> Vec<String> {
    match creds {
        Some((u, p)) => vec![format!("--{prefix}creds"), format!("{u}:{p}")],
        None => vec![format!("--{prefix}no-creds")],
    }
}

fn is_docker(reference: &str) -> bool {
    transport_ref(reference).starts_with("docker://")
}

fn transport_ref(reference: &str) -> String {
    if TRANSPORTS.iter().any(|t| reference.starts_with(t)) {
        reference.to_string()
    } else {
        format!("docker://{reference}")
    }
}

/// Hides passwords in error messages: the argument after a `--*creds` flag.
fn redact(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide = false;
    for a in args {
        if hide {
            out.push(a.split(':').next().unwrap_or_default().to_string() + ":***");
        } else {
            out.push(a.clone());
        }
        hide = a.ends_with("creds");
    }
    out
}

/// Pulls `reference` (as for [`inspect_raw`]) with skopeo, which verifies every blob's digest,
/// and checks each decompressed layer against the config's `diff_ids`: what a push stored is
/// the image's layers, byte for byte. Returns the manifest (parsed).
pub async fn pull_checking_diff_ids(
    reference: &str,
    creds: Option<(&str, &str)>,
) -> anyhow::Result<serde_json::Value> {
    let out_dir = tempfile::tempdir()?;
    let dir = format!("dir:{}", out_dir.path().display());
    let opts = CopyOptions {
        src_creds: creds.map(|(u, p)| (u.to_string(), p.to_string())),
        ..CopyOptions::default()
    };
    copy(reference, &dir, &opts).await?;
    let read = |name: &str| {
        let path = out_dir.path().join(name.trim_start_matches("sha256:"));
        std::fs::read(&path).with_context(|| format!("skopeo wrote no {}", path.display()))
    };
    let manifest: serde_json::Value = serde_json::from_slice(&read("manifest.json")?)?;
    let digest_of = |v: &serde_json::Value| v["digest"].as_str().unwrap_or_default().to_string();
    let config: serde_json::Value =
        serde_json::from_slice(&read(&digest_of(&manifest["config"]))?)?;
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .context("the config has no rootfs.diff_ids")?;
    let layers = manifest["layers"]
        .as_array()
        .context("the manifest has no layers")?;
    if layers.len() != diff_ids.len() {
        bail!("{} layers for {} diff_ids", layers.len(), diff_ids.len());
    }
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        let actual = crate::util::gunzipped_sha256_digest(&read(&digest_of(layer))?)?;
        if Some(actual.as_str()) != diff_id.as_str() {
            bail!(
                "layer {} decompresses to {actual}, not {diff_id}",
                digest_of(layer)
            );
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_get_a_transport() {
        assert_eq!(
            transport_ref("127.0.0.1:5000/a:b"),
            "docker://127.0.0.1:5000/a:b"
        );
        assert_eq!(transport_ref("oci:/tmp/x:tag"), "oci:/tmp/x:tag");
    }

    #[test]
    fn redacts_passwords() {
        let args: Vec<String> = ["copy", "--src-creds", "u:secret", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(redact(&args)[2], "u:***");
    }
}
