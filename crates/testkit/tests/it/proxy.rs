use std::time::{Duration, Instant};

use ferry_testkit::push::RawClient;
use ferry_testkit::skopeo::sha256_digest;
use ferry_testkit::{Fault, FaultAction, FaultProxy, TestRegistry, build};

use crate::small_spec;

fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().no_proxy().build()?)
}

/// A registry holding one small image, with a proxy in front of it.
async fn rig() -> anyhow::Result<(TestRegistry, FaultProxy, ferry_testkit::BuiltImage)> {
    let reg = TestRegistry::anonymous().await?;
    let image = build(&small_spec(20))?;
    image.push(&reg.url(), "app", "v1", None).await?;
    let proxy = FaultProxy::start(&reg.url()).await?;
    Ok((reg, proxy, image))
}

#[tokio::test]
async fn proxy_records_requests_and_keeps_uploads_on_the_proxy() -> anyhow::Result<()> {
    let reg = TestRegistry::anonymous().await?;
    let proxy = FaultProxy::start(&reg.url()).await?;
    let image = build(&small_spec(21))?;
    image.push(&proxy.url(), "app", "v1", None).await?;

    let blobs = image.blobs.len();
    assert_eq!(proxy.count("POST", "/v2/app/blobs/uploads/"), blobs);
    // The PUTs reached the proxy: distribution built Location from our forwarded Host header.
    assert_eq!(proxy.count("put", "/blobs/uploads/"), blobs);
    assert_eq!(proxy.count("PUT", "/manifests/"), image.manifests.len() + 1);
    assert_eq!(proxy.count("", "/v2/"), proxy.requests().len());
    assert!(
        proxy
            .requests()
            .iter()
            .all(|r| r.status != 0 && r.fault.is_none())
    );
    assert!(proxy.max_concurrent() >= 1);

    proxy.clear();
    assert!(proxy.requests().is_empty());
    let client = RawClient::new(&proxy.url(), None)?;
    let got = client.get_manifest("app", "v1").await?;
    assert_eq!(got.map(|b| b.digest), Some(image.index.digest.clone()));
    let recorded = proxy.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].status, 200);
    assert!(recorded[0].headers.get("accept").is_some());
    Ok(())
}

#[tokio::test]
async fn status_faults_answer_without_upstream() -> anyhow::Result<()> {
    let (reg, proxy, _image) = rig().await?;
    let http = http()?;
    proxy.add_fault(
        Fault::new(
            "/manifests/v1",
            FaultAction::Status {
                code: 429,
                retry_after: Some(3),
            },
        )
        .times(2),
    );
    proxy.add_fault(Fault::new(
        "/tags/list",
        FaultAction::Status {
            code: 503,
            retry_after: None,
        },
    ));
    let url = format!("{}/v2/app/manifests/v1", proxy.url());
    for _ in 0..2 {
        let resp = http.get(&url).send().await?;
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "3");
        let body: serde_json::Value = resp.json().await?;
        assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
    }
    let resp = http
        .get(&url)
        .header("accept", ferry_testkit::push::MANIFEST_ACCEPT)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);

    let resp = http
        .get(format!("{}/v2/app/tags/list", proxy.url()))
        .send()
        .await?;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_none());
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");
    assert_eq!(proxy.pending_faults(), 0);

    // Faulted requests never reached the registry.
    let log = reg.log();
    assert_eq!(
        log.matches("\"GET /v2/app/manifests/v1 HTTP/1.1\"").count(),
        1
    );
    assert!(!log.contains("GET /v2/app/tags/list"));
    Ok(())
}

#[tokio::test]
async fn method_filter_and_delay() -> anyhow::Result<()> {
    let (_reg, proxy, image) = rig().await?;
    let http = http()?;
    let blob = &image.blobs[1];
    let url = format!("{}/v2/app/blobs/{}", proxy.url(), blob.digest);
    proxy.add_fault(
        Fault::new(
            &blob.digest,
            FaultAction::Status {
                code: 500,
                retry_after: None,
            },
        )
        .method("HEAD"),
    );
    proxy.add_fault(
        Fault::new(&blob.digest, FaultAction::Delay(Duration::from_millis(300))).method("GET"),
    );

    let started = Instant::now();
    let body = http.get(&url).send().await?.bytes().await?;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(sha256_digest(&body), blob.digest);
    assert_eq!(http.head(&url).send().await?.status(), 500);
    assert_eq!(http.head(&url).send().await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn reset_mid_body_is_an_error_not_a_short_body() -> anyhow::Result<()> {
    let (_reg, proxy, image) = rig().await?;
    let http = http()?;
    let blob = &image.blobs[1];
    assert!(blob.size() > 4096);
    proxy.add_fault(Fault::new(
        &blob.digest,
        FaultAction::ResetMidBody { after_bytes: 1000 },
    ));
    let url = format!("{}/v2/app/blobs/{}", proxy.url(), blob.digest);
    let resp = http.get(&url).send().await?;
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err());
    // The next request is clean.
    let body = http.get(&url).send().await?.bytes().await?;
    assert_eq!(sha256_digest(&body), blob.digest);
    Ok(())
}

#[tokio::test]
async fn corrupt_body_flips_exactly_one_byte() -> anyhow::Result<()> {
    let (_reg, proxy, image) = rig().await?;
    let http = http()?;
    let blob = &image.blobs[1];
    proxy.add_fault(Fault::new(
        &blob.digest,
        FaultAction::CorruptBody { at_byte: 5000 },
    ));
    let url = format!("{}/v2/app/blobs/{}", proxy.url(), blob.digest);
    let body = http.get(&url).send().await?.bytes().await?;
    assert_eq!(body.len(), blob.bytes.len());
    let diffs: Vec<usize> = (0..body.len())
        .filter(|&i| body[i] != blob.bytes[i])
        .collect();
    assert_eq!(diffs, [5000]);
    Ok(())
}

#[tokio::test]
async fn upload_faults() -> anyhow::Result<()> {
    let (_reg, proxy, _image) = rig().await?;
    let http = http()?;
    let data = vec![7u8; 64 * 1024];
    let digest = sha256_digest(&data);
    let start_upload = || async {
        let resp = http
            .post(format!("{}/v2/up/blobs/uploads/", proxy.url()))
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 202, "POST: {}", resp.status());
        let location = resp.headers()["location"].to_str()?.to_string();
        anyhow::Ok(format!("{location}&digest={digest}"))
    };

    proxy.add_fault(
        Fault::new(
            "/blobs/uploads/",
            FaultAction::ResetMidUpload {
                after_bytes: 10_000,
            },
        )
        .method("PUT"),
    );
    let put = start_upload().await?;
    assert!(put.starts_with(&proxy.url()), "{put}");
    let result = http.put(&put).body(data.clone()).send().await;
    assert!(result.is_err(), "{result:?}");
    let last = proxy.requests().pop();
    assert_eq!(
        last.map(|r| (r.method, r.status)),
        Some(("PUT".to_string(), 0))
    );

    proxy.add_fault(
        Fault::new(
            "/blobs/uploads/",
            FaultAction::CorruptUpload { at_byte: 100 },
        )
        .method("PUT"),
    );
    let put = start_upload().await?;
    let resp = http.put(&put).body(data.clone()).send().await?;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await?.contains("DIGEST_INVALID"));

    let put = start_upload().await?;
    let resp = http.put(&put).body(data.clone()).send().await?;
    assert_eq!(resp.status(), 201);
    Ok(())
}

#[tokio::test]
async fn dropped_proxy_stops_answering() -> anyhow::Result<()> {
    let reg = TestRegistry::anonymous().await?;
    let proxy = FaultProxy::start(&reg.url()).await?;
    let http = http()?;
    let url = format!("{}/v2/", proxy.url());
    assert_eq!(http.get(&url).send().await?.status(), 200);
    drop(proxy);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fresh = reqwest::Client::builder().no_proxy().build()?;
    assert!(fresh.get(&url).send().await.is_err());
    Ok(())
}
