use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ferry_testkit::skopeo::{self, sha256_digest};
use ferry_testkit::{RegistryAuth, RegistryOptions, WanConfig, WanProxy, WanRegistry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::small_spec;

const MIB: usize = 1024 * 1024;

fn https_client(ca: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let pem = std::fs::read(ca.ok_or_else(|| anyhow::anyhow!("registry without TLS"))?)?;
    Ok(reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem)?])
        .build()?)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn skopeo_pushes_through_the_proxy_to_a_tls_registry() -> anyhow::Result<()> {
    let rig = WanRegistry::start(WanConfig::new(2, None)).await?;
    let cert_dir = rig.cert_dir().map(|d| d.display().to_string());
    let cert_dir = cert_dir.unwrap_or_default();
    let image = ferry_testkit::build_single(&small_spec(40))?;
    let layout = tempfile::tempdir()?;
    image.write_oci_layout(layout.path(), "v1")?;

    let dest = format!("docker://{}/wan/app:v1", rig.host());
    let src = format!("oci:{}:v1", layout.path().display());
    skopeo::run(&args(&[
        "copy",
        "--dest-tls-verify=true",
        "--dest-cert-dir",
        &cert_dir,
        "--dest-no-creds",
        &src,
        &dest,
    ]))
    .await?;

    let raw = skopeo::run(&args(&[
        "inspect",
        "--raw",
        "--tls-verify=true",
        "--cert-dir",
        &cert_dir,
        "--no-creds",
        &dest,
    ]))
    .await?;
    assert_eq!(sha256_digest(&raw), image.manifest.digest);
    // Upload bodies went to the registry's Locations: every blob byte passed the proxy, so
    // those Locations named the proxy, not the registry behind it.
    let stats = rig.stats();
    assert!(
        stats.bytes_up >= image.total_blob_bytes(),
        "{stats:?} for {} blob bytes",
        image.total_blob_bytes()
    );
    assert!(stats.accepted >= 1);
    // The certificate is really checked: without the test CA, skopeo refuses the registry.
    let untrusted = skopeo::run(&args(&[
        "inspect",
        "--raw",
        "--tls-verify=true",
        "--no-creds",
        &dest,
    ]))
    .await;
    let err = format!(
        "{:#}",
        untrusted.err().unwrap_or_else(|| anyhow::anyhow!(""))
    );
    assert!(err.contains("certificate"), "{err}");
    Ok(())
}

#[tokio::test]
async fn upload_locations_name_the_proxy() -> anyhow::Result<()> {
    let rig = WanRegistry::start(WanConfig::new(1, None)).await?;
    let http = https_client(rig.ca_pem_path())?;
    // Even asked directly, the registry sends the upload to its public address.
    let resp = http
        .post(format!("{}/v2/up/blobs/uploads/", rig.registry().url()))
        .send()
        .await?;
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str()?.to_string();
    assert!(
        location.starts_with(&format!("https://{}/v2/up/blobs/uploads/", rig.host())),
        "{location}"
    );
    let body = vec![3u8; MIB];
    let put = format!("{location}&digest={}", sha256_digest(&body));
    let before = rig.stats();
    let resp = http.put(&put).body(body.clone()).send().await?;
    assert_eq!(resp.status(), 201);
    let after = rig.stats();
    assert_eq!(after.accepted, before.accepted + 1);
    assert!(after.bytes_up >= before.bytes_up + MIB as u64, "{after:?}");

    // The rig's own client trusts the rig's CA: seeding a TLS registry needs nothing more.
    let image = ferry_testkit::build(&small_spec(42))?;
    image.push(&rig.url(), "seeded/app", "v1", None).await?;
    let client = ferry_testkit::push::RawClient::new(&rig.url(), None)?;
    let got = client.get_manifest("seeded/app", "v1").await?;
    assert_eq!(got.map(|b| b.digest), Some(image.index.digest.clone()));
    Ok(())
}

#[tokio::test]
async fn every_byte_pays_the_latency() -> anyhow::Result<()> {
    let rig = WanRegistry::start(WanConfig::new(15, None)).await?;
    let http = https_client(rig.ca_pem_path())?;
    let timed = |url: String| {
        let http = http.clone();
        async move {
            let started = Instant::now();
            let status = http.get(url).send().await?.status();
            anyhow::ensure!(status == 200, "GET /v2/: {status}");
            anyhow::Ok(started.elapsed())
        }
    };
    let via = format!("{}/v2/", rig.url());
    // A new connection: TCP handshake, TLS 1.3 handshake, then the request — three round trips.
    let fresh = timed(via.clone()).await?;
    assert!(fresh >= Duration::from_millis(90), "{fresh:?}");
    // On the open connection: one round trip.
    let reused = timed(via).await?;
    assert!(reused >= Duration::from_millis(30), "{reused:?}");
    assert_eq!(rig.stats().accepted, 1);
    Ok(())
}

/// A server that reads until its client half-closes, then sends back as many bytes as it got.
async fn mirror_server() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                let mut total = 0;
                while let Ok(n @ 1..) = conn.read(&mut buf).await {
                    total += n;
                }
                let reply = vec![9u8; total];
                let _ = conn.write_all(&reply).await;
            });
        }
    });
    Ok(addr)
}

/// Sends `size` bytes, half-closes, reads the mirrored reply: time and bytes received.
async fn round(proxy: SocketAddr, size: usize) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let mut conn = TcpStream::connect(proxy).await?;
    conn.write_all(&vec![1u8; size]).await?;
    conn.shutdown().await?;
    let mut got = Vec::new();
    conn.read_to_end(&mut got).await?;
    Ok((started.elapsed(), got.len()))
}

#[tokio::test]
async fn bandwidth_is_capped_per_connection_and_direction() -> anyhow::Result<()> {
    let upstream = mirror_server().await?;
    let proxy = WanProxy::start(upstream, WanConfig::new(0, Some(8.0))).await?;
    let size = 4 * MIB;

    // 4 MiB each way at 8 MiB/s: 0.5 s up, and (after the half-close passed) 0.5 s down.
    let (single, got) = round(proxy.addr(), size).await?;
    assert_eq!(got, size);
    assert!(single >= Duration::from_millis(800), "{single:?}");

    // Two connections each get their own cap: together hardly slower than one alone.
    let started = Instant::now();
    let (a, b) = tokio::join!(round(proxy.addr(), size), round(proxy.addr(), size));
    let both = started.elapsed();
    assert_eq!((a?.1, b?.1), (size, size));
    assert!(both < single.mul_f64(1.5), "{both:?} vs {single:?} alone");

    let stats = proxy.stats();
    assert_eq!(stats.bytes_up, 3 * size as u64);
    assert_eq!(stats.bytes_down, 3 * size as u64);
    Ok(())
}

/// A server that sends back every byte as it arrives.
async fn echo_server() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    Ok(addr)
}

/// Sends `size` bytes on an open connection while reading their echo: the time both took.
async fn echo_round(conn: &mut TcpStream, size: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let (mut r, mut w) = conn.split();
    let data = vec![5u8; size];
    let mut back = vec![0u8; size];
    let (sent, got) = tokio::join!(w.write_all(&data), r.read_exact(&mut back));
    sent?;
    got?;
    Ok(started.elapsed())
}

#[tokio::test]
async fn slow_start_ramps_up_keeps_its_window_and_restarts_after_idle() -> anyhow::Result<()> {
    let upstream = echo_server().await?;
    let wan = WanConfig::new(15, Some(25.0)).slow_start(true);
    let proxy = WanProxy::start(upstream, wan).await?;
    let size = 2 * MIB;
    let mut conn = TcpStream::connect(proxy.addr()).await?;

    // From a 10-segment window, 2 MiB takes six round trips of doubling before the 25 MiB/s
    // (750 KiB per round trip) is reached: at least 5 × 30 ms, plus the handshake.
    let cold = echo_round(&mut conn, size).await?;
    assert!(cold >= Duration::from_millis(180), "{cold:?}");
    // The grown window stays while the connection is busy: about 80 ms of rate, one round trip.
    let warm = echo_round(&mut conn, size).await?;
    assert!(warm * 2 < cold, "warm {warm:?}, cold {cold:?}");
    // After a second of idle the window has shrunk back: ramping up again costs round trips.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let idle = echo_round(&mut conn, size).await?;
    assert!(idle >= Duration::from_millis(150), "{idle:?}");
    Ok(())
}

#[tokio::test]
async fn counts_and_logs_connections() -> anyhow::Result<()> {
    let upstream = mirror_server().await?;
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("connections.log");
    let proxy = WanProxy::start(upstream, WanConfig::new(1, None).connection_log(&log)).await?;
    const N: usize = 5;

    let mut conns = Vec::new();
    for _ in 0..N {
        conns.push(TcpStream::connect(proxy.addr()).await?);
    }
    wait_until(|| proxy.stats().open == N as u64).await?;
    let stats = proxy.stats();
    assert_eq!(stats.accepted, N as u64);
    assert!(stats.max_open >= N as u64, "{stats:?}");

    drop(conns);
    wait_until(|| proxy.stats().open == 0).await?;
    proxy.reset_max_open();
    let (_, got) = round(proxy.addr(), 10).await?;
    assert_eq!(got, 10);
    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.max_open), (N as u64 + 1, 1));

    let text = std::fs::read_to_string(&log)?;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), N + 1, "{text}");
    for (i, line) in lines.iter().enumerate() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "{line}");
        assert_eq!(fields[0], (i + 1).to_string());
        assert!(fields[1].parse::<u64>().is_ok(), "{line}");
        assert!(fields[2].parse::<SocketAddr>().is_ok(), "{line}");
    }

    // A dropped proxy stops listening and closes the connections it carried.
    let mut open = TcpStream::connect(proxy.addr()).await?;
    wait_until(|| proxy.stats().open == 1).await?;
    let addr = proxy.addr();
    drop(proxy);
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), open.read(&mut byte)).await?;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(TcpStream::connect(addr).await.is_err());
    Ok(())
}

#[tokio::test]
async fn plain_http_registry_behind_the_proxy() -> anyhow::Result<()> {
    let rig = WanRegistry::start_with(
        RegistryOptions::new(RegistryAuth::Anonymous),
        WanConfig::new(1, Some(50.0)),
        None,
    )
    .await?;
    assert!(rig.url().starts_with("http://"));
    assert!(rig.ca_pem_path().is_none());
    let image = ferry_testkit::build(&small_spec(41))?;
    image.push(&rig.url(), "plain/app", "v1", None).await?;
    assert!(rig.stats().bytes_up >= image.total_blob_bytes());
    let log = std::fs::read_to_string(rig.log_path())?;
    assert!(log.contains("\"PUT /v2/plain/app/manifests/v1 HTTP/1.1\" 201"));
    Ok(())
}

async fn wait_until(cond: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        anyhow::ensure!(Instant::now() < deadline, "condition not met within 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
