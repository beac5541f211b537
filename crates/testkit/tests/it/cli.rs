use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use ferry_testkit::skopeo::{self, sha256_digest};

const BIN: &str = env!("CARGO_BIN_EXE_ferry-testkit");

#[tokio::test]
async fn registry_and_seed_commands() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut registry = Command::new(BIN)
        .args(["registry", "--basic", "u:p", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = registry
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let host = line
        .trim()
        .strip_prefix("host=")
        .unwrap_or_default()
        .to_string();
    assert!(host.starts_with("127.0.0.1:"), "{line:?}");

    let out = Command::new(BIN)
        .args([
            "seed",
            "--registry",
            &host,
            "--repository",
            "bench/app",
            "--tag",
            "v1",
        ])
        .args([
            "--platforms",
            "linux/amd64,linux/arm/v7",
            "--layers",
            "2",
            "--layer-bytes",
            "5000",
        ])
        .args(["--format", "docker", "--seed", "7", "--basic", "u:p"])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = String::from_utf8(out.stdout)?.trim().to_string();
    let raw = skopeo::inspect_raw(&format!("{host}/bench/app:v1"), Some(("u", "p"))).await?;
    assert_eq!(sha256_digest(&raw), digest);

    let status = Command::new("kill")
        .args(["-TERM", &registry.id().to_string()])
        .status()?;
    assert!(status.success());
    let exit = registry.wait()?;
    assert!(exit.success(), "{exit:?}");
    // The docker-registry child went with it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let http = reqwest::Client::builder().no_proxy().build()?;
    assert!(http.get(format!("http://{host}/v2/")).send().await.is_err());
    // --dir keeps the data for the next run.
    assert!(
        dir.path()
            .join("storage/docker/registry/v2/repositories/bench/app")
            .exists()
    );
    Ok(())
}
