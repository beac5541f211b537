use std::collections::HashMap;
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

/// Stops the child when the test ends, however it ends: SIGTERM first, so a `registry` or `ecr`
/// command stops its own children (a SIGKILL would orphan them), SIGKILL if it hangs.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            for _ in 0..100 {
                if !matches!(self.0.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `seed --oci-layout`: what the demo pushes from when there is no Docker Engine. Two images go
/// into one layout under their own tags, and skopeo (a real reader of layouts) serves each.
#[tokio::test]
async fn seed_writes_single_images_into_one_oci_layout() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let layout = dir.path().join("layout");
    let mut digests = Vec::new();
    for (arch, seed) in [("amd64", "1"), ("arm64", "2")] {
        let out = Command::new(BIN)
            .args(["seed", "--oci-layout"])
            .arg(&layout)
            .args(["--tag", &format!("1.0-{arch}"), "--single"])
            .args([
                "--platforms",
                &format!("linux/{arch}"),
                "--layer-bytes",
                "4096",
            ])
            .args(["--seed", seed])
            .output()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        digests.push(String::from_utf8(out.stdout)?.trim().to_string());
    }
    assert_ne!(digests[0], digests[1]);
    for (arch, digest) in [("amd64", &digests[0]), ("arm64", &digests[1])] {
        let reference = format!("oci:{}:1.0-{arch}", layout.display());
        let raw = skopeo::inspect_raw(&reference, None).await?;
        assert_eq!(&sha256_digest(&raw), digest, "{reference}");
    }

    // Neither a registry nor a layout: refused, naming both.
    let out = Command::new(BIN)
        .args(["seed", "--repository", "a", "--tag", "1"])
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--registry") && stderr.contains("--oci-layout"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn ecr_command_prints_env_and_stops_on_sigterm() -> anyhow::Result<()> {
    let mut child = KillOnDrop(
        Command::new(BIN)
            .arg("ecr")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let stdout = child
        .0
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut env = HashMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line == "READY=1" {
            break;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("not KEY=VALUE: {line:?}"))?;
        env.insert(k.to_string(), v.to_string());
    }
    let var = |k: &str| env.get(k).cloned().unwrap_or_default();
    assert_eq!(var("AWS_ACCESS_KEY_ID"), "testing");
    assert_eq!(var("AWS_REGION"), "us-east-1");
    assert_eq!(var("AWS_EC2_METADATA_DISABLED"), "true");
    assert!(!std::path::Path::new(&var("AWS_CONFIG_FILE")).exists());

    let http = reqwest::Client::builder().no_proxy().build()?;
    let answer: serde_json::Value = http
        .post(var("AWS_ENDPOINT_URL_ECR"))
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "x-amz-target",
            "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
        )
        .body("{}")
        .send()
        .await?
        .json()
        .await?;
    let token = answer["authorizationData"][0]["authorizationToken"]
        .as_str()
        .unwrap_or_default();
    let registry = var("FERRY_ECR_REGISTRY_URL");
    let v2 = http
        .get(format!("{registry}/v2/"))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await?;
    assert_eq!(v2.status(), 200);

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()?;
    assert!(status.success());
    let exit = child.0.wait()?;
    assert!(exit.success(), "{exit:?}");
    let mut stderr = String::new();
    if let Some(mut err) = child.0.stderr.take() {
        std::io::Read::read_to_string(&mut err, &mut stderr)?;
    }
    let moto = stderr
        .lines()
        .find_map(|l| l.strip_prefix("moto: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    assert!(moto.starts_with("http://127.0.0.1:"), "{stderr}");
    // moto and docker-registry went with it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(http.get(format!("{moto}/moto-api/")).send().await.is_err());
    assert!(http.get(format!("{registry}/v2/")).send().await.is_err());
    Ok(())
}

/// Starts `ferry-testkit registry ARGS…` and reads its `key=value` lines (all in one write).
fn start_registry(args: &[&str]) -> anyhow::Result<(KillOnDrop, HashMap<String, String>)> {
    let mut child = KillOnDrop(
        Command::new(BIN)
            .arg("registry")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let stdout = child
        .0
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let mut out = HashMap::new();
    let expected = if args.contains(&"--tls") { 4 } else { 2 };
    let expected = expected + usize::from(args.iter().any(|a| a.starts_with("--wan")));
    while out.len() < expected {
        let line = lines
            .next()
            .ok_or_else(|| anyhow::anyhow!("registry exited after {out:?}"))??;
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("not KEY=VALUE: {line:?}"))?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok((child, out))
}

#[tokio::test]
async fn registry_command_serves_tls_behind_a_wan_proxy() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let conn_log = dir.path().join("conns.log");
    let conn_log_arg = conn_log.display().to_string();
    let (_child, out) = start_registry(&[
        "--tls",
        "--wan-latency-ms",
        "15",
        "--wan-rate-mib",
        "25",
        "--connection-log",
        &conn_log_arg,
    ])?;
    let get = |k: &str| out.get(k).cloned().unwrap_or_default();
    assert_ne!(get("host"), get("direct"));
    let ca = std::fs::read(get("ca"))?;
    assert_eq!(std::fs::read(format!("{}/ca.crt", get("certdir")))?, ca);
    let http = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca)?])
        .build()?;

    let started = std::time::Instant::now();
    let resp = http
        .get(format!("https://{}/v2/", get("host")))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    // TCP and TLS handshakes and the request: three round trips of 30 ms.
    assert!(started.elapsed() >= Duration::from_millis(90));
    assert_eq!(std::fs::read_to_string(&conn_log)?.lines().count(), 1);
    let resp = http
        .post(format!("https://{}/v2/a/blobs/uploads/", get("direct")))
        .send()
        .await?;
    let location = resp.headers()["location"].to_str()?.to_string();
    assert!(
        location.starts_with(&format!("https://{}/", get("host"))),
        "{location}"
    );

    // The access log the benchmarks count requests in.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = std::fs::read_to_string(get("log"))?;
    assert!(
        log.contains("\"GET /v2/ HTTP/1.1\" 200") || log.contains("\"GET /v2/ HTTP/2.0\" 200"),
        "{log}"
    );
    Ok(())
}

#[tokio::test]
async fn registry_command_serves_tls_without_a_proxy() -> anyhow::Result<()> {
    let (_child, out) = start_registry(&["--tls"])?;
    assert!(!out.contains_key("direct"));
    let host = out.get("host").cloned().unwrap_or_default();
    let cert_dir = out.get("certdir").cloned().unwrap_or_default();
    let raw = skopeo::run(&[
        "inspect".to_string(),
        "--raw".to_string(),
        "--cert-dir".to_string(),
        cert_dir,
        "--no-creds".to_string(),
        format!("docker://{host}/missing:v1"),
    ])
    .await;
    // Reached over verified TLS: the answer is about the image, not the certificate.
    let err = format!("{:#}", raw.err().unwrap_or_else(|| anyhow::anyhow!("")));
    assert!(err.contains("manifest unknown"), "{err}");
    assert!(!err.contains("certificate"), "{err}");
    Ok(())
}
