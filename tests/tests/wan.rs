//! Transfers over an emulated WAN (TLS registries behind testkit's `WanProxy`): what the
//! transport does with connections, not how fast it is (`bench/wan.sh` measures that).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{quick_retries, reference};
use ferry_registry::copy::RangedFetch;
use ferry_registry::{Budget, Client, CopyOptions, copy};
use ferry_testkit::wan::WanConfig;
use ferry_testkit::{ImageFormat, ImageSpec, WanRegistry};

/// A client that trusts the test CAs of `registries` (and reaches them by their loopback
/// address, which it must find to speak TLS without being told).
fn client_for(registries: &[&WanRegistry]) -> Client {
    let mut builder = Client::builder()
        .docker_config(false)
        .retry(quick_retries());
    for registry in registries {
        builder = builder.ca_file(registry.ca_pem_path().unwrap());
    }
    builder.build().unwrap()
}

fn image(layers: usize, layer_size: usize) -> ImageSpec {
    ImageSpec {
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        layers,
        layer_size,
        shared_layers: 0,
        format: ImageFormat::Oci,
        seed: 11,
    }
}

#[tokio::test]
async fn a_copy_spreads_its_blobs_over_several_connections_within_the_budget() {
    let wan = WanConfig::new(5, Some(4.0));
    let src = WanRegistry::start(wan.clone()).await.unwrap();
    let dst = WanRegistry::start(wan).await.unwrap();
    // One image of 8 layers of 256 KiB and a config: each blob takes tens of ms at the cap, so
    // transfers overlap whenever the client lets them. (A single manifest, so that every
    // connection beyond the first request's is a blob transfer's: an index's children are
    // fetched alongside the blobs, on connections of their own, by design.)
    let built = ferry_testkit::build_single(&image(8, 256 * 1024)).unwrap();
    built
        .push(&src.url(), "team/app", "v1", None)
        .await
        .unwrap();
    // The seeding client's connections close once it is dropped; count from a quiet link.
    let deadline = Instant::now() + Duration::from_secs(5);
    while src.stats().open > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = (src.stats().accepted, dst.stats().accepted);
    src.proxy().reset_max_open();
    dst.proxy().reset_max_open();

    let budget = 3;
    let report = copy(
        &client_for(&[&src, &dst]),
        &reference(&format!("{}/team/app:v1", src.host())),
        &reference(&format!("{}/mirror/app:v1", dst.host())),
        CopyOptions {
            budget: Budget::new(budget),
            ..CopyOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.digest.as_str(), built.manifest.digest);
    assert_eq!(report.totals.blobs_uploaded as usize, built.blobs.len());

    for (side, registry, accepted_before) in
        [("source", &src, before.0), ("destination", &dst, before.1)]
    {
        let stats = registry.stats();
        // One connection per registry is what HTTP/2 gave: every transfer shared one window.
        assert!(
            stats.max_open > 1,
            "{side}: blobs moved over {} connection(s) at once: {stats:?}",
            stats.max_open
        );
        assert!(
            stats.max_open <= budget as u64,
            "{side}: {} connections open at once with a budget of {budget}: {stats:?}",
            stats.max_open
        );
        // Connections are kept and reused: 9 blobs and their manifest requests went over at
        // most `budget` connections, plus the one that asked whether the host speaks TLS.
        let opened = stats.accepted - accepted_before;
        assert!(
            opened <= budget as u64 + 1,
            "{side}: {opened} connections opened for one copy with a budget of {budget}"
        );
    }
}

#[tokio::test]
async fn a_manifest_head_does_not_wait_behind_streaming_blobs() {
    // 40 ms round trips, 2 MiB/s per connection: each 3 MiB layer streams for ~1.5 s.
    let wan = WanConfig::new(20, Some(2.0));
    let src = WanRegistry::start(wan.clone()).await.unwrap();
    let dst = WanRegistry::start(wan).await.unwrap();
    let built = ferry_testkit::build(&image(2, 3 * 1024 * 1024)).unwrap();
    built
        .push(&src.url(), "team/app", "v1", None)
        .await
        .unwrap();
    let client = client_for(&[&src, &dst]);
    let src_ref = reference(&format!("{}/team/app:v1", src.host()));
    let dst_ref = reference(&format!("{}/mirror/app:v1", dst.host()));

    let copying = tokio::spawn({
        let client = client.clone();
        let (src_ref, dst_ref) = (src_ref.clone(), dst_ref.clone());
        async move { copy(&client, &src_ref, &dst_ref, CopyOptions::default()).await }
    });
    // Wait until the layers are streaming out of the source.
    let deadline = Instant::now() + Duration::from_secs(10);
    while src.stats().bytes_down < 1024 * 1024 {
        assert!(
            Instant::now() < deadline,
            "the copy never started streaming"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let started = Instant::now();
    let head = client
        .repository(&src_ref)
        .head_manifest("v1")
        .await
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(head.digest.as_str(), built.index.digest);
    // A fresh connection costs a TCP handshake, a TLS handshake and the request itself: about
    // four round trips (160 ms). Behind 4 × 3 MiB of blob bodies at 2 MiB/s on one connection it
    // would have taken seconds.
    assert!(
        took < Duration::from_millis(480),
        "a HEAD took {took:?} while blobs streamed"
    );
    assert!(
        !copying.is_finished(),
        "the blobs were no longer streaming when the HEAD was answered"
    );
    copying.await.unwrap().unwrap();
}

/// When the uploads are slower than the export (one connection's rate each), the export is
/// still read to its end long before they are done: later layers do not wait for earlier
/// uploads, so several go up at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_reads_the_whole_export_ahead_of_slow_uploads() {
    use std::sync::{Arc, Mutex};

    use ferry_local_image::push::{Compression, PushCache, PushOptions, push};
    use ferry_local_image::source::ImageSource;
    use ferry_registry::copy::{BlobOutcome, Progress};
    use ferry_registry::{Digest, Reference};
    use ferry_testkit::LocalImage;

    /// What had reached the registry when each layer was read to its end.
    struct SentWhenRead {
        registry: Arc<WanRegistry>,
        sent: Mutex<Vec<u64>>,
    }
    impl Progress for SentWhenRead {
        fn blob_finished(&self, _: &Digest, _: u64, _: BlobOutcome) {
            let sent = self.registry.stats().bytes_up;
            self.sent.lock().unwrap().push(sent);
        }
    }

    // 3 layers of 24 MiB (random, so they stay that size) through 16 MiB/s per connection:
    // 1.5 s a layer. Beyond the 32 MiB that uploads may queue in memory, layers are spooled.
    const LAYER: u64 = 24 * 1024 * 1024;
    let registry = Arc::new(
        WanRegistry::start(WanConfig::new(5, Some(16.0)))
            .await
            .unwrap(),
    );
    let image = LocalImage::build(3, (LAYER / 1024) as usize).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("image.tar");
    image.save(&tar).unwrap();
    let recorder = Arc::new(SentWhenRead {
        registry: registry.clone(),
        sent: Mutex::default(),
    });
    let options = PushOptions {
        compression: Compression::Gzip,
        tags: vec!["v1".into()],
        immutable_tags: None,
        cache: Arc::new(PushCache::disabled()),
        engine: None,
        inspected: None,
        progress: Some(recorder.clone() as Arc<dyn Progress>),
        export_ahead: Default::default(),
    };
    let destination = Reference::parse(&format!("{}/spooled/app", registry.host())).unwrap();
    registry.proxy().reset_max_open();
    let report = push(
        &client_for(&[&registry]),
        &ImageSource::DockerArchive { path: tar },
        &destination,
        &options,
    )
    .await
    .unwrap();
    assert_eq!(report.layers_uploaded, 3);

    let sent = recorder.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 3, "one event per layer read: {sent:?}");
    // Reading the last layer waited for no upload: less than one layer had reached the
    // registry then (without the spool, all but the 32 MiB in memory would have had to).
    assert!(
        sent[2] < LAYER,
        "{} MiB had been sent when the export was read to its end",
        sent[2] / (1024 * 1024)
    );
    let stats = registry.stats();
    assert!(
        stats.max_open >= 3,
        "the three layers went up one after another: {stats:?}"
    );
}

/// A copy of one large layer with ranged fetching as configured; returns the source registry's
/// access-log lines for that layer's `GET`s and the source's peak of open connections.
async fn copy_large_layer(ranged: RangedFetch) -> (Vec<String>, u64) {
    // 10 ms round trips, 4 MiB/s per connection: a 6 MiB layer streams for 1.5 s on one.
    let wan = WanConfig::new(5, Some(4.0));
    let src = WanRegistry::start(wan.clone()).await.unwrap();
    let dst = WanRegistry::start(wan).await.unwrap();
    let built = ferry_testkit::build_single(&image(1, 6 * 1024 * 1024 + 12_345)).unwrap();
    built
        .push(&src.url(), "team/app", "v1", None)
        .await
        .unwrap();
    let layer = built.blobs.iter().max_by_key(|b| b.bytes.len()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while src.stats().open > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    src.proxy().reset_max_open();

    let client = client_for(&[&src, &dst]);
    let dst_ref = reference(&format!("{}/mirror/app:v1", dst.host()));
    copy(
        &client,
        &reference(&format!("{}/team/app:v1", src.host())),
        &dst_ref,
        CopyOptions {
            budget: Budget::new(4),
            ranged,
            ..CopyOptions::default()
        },
    )
    .await
    .unwrap();

    let digest: ferry_registry::Digest = layer.digest.parse().unwrap();
    let copied = client
        .repository(&dst_ref)
        .get_blob_bytes(&digest, None)
        .await
        .unwrap();
    assert!(
        copied == layer.bytes,
        "the destination's layer differs from the source's"
    );
    let log = std::fs::read_to_string(src.log_path()).unwrap();
    let gets = log
        .lines()
        .filter(|line| line.contains(&format!("GET /v2/team/app/blobs/{}", layer.digest)))
        .map(str::to_string)
        .collect();
    (gets, src.stats().max_open)
}

#[tokio::test]
async fn a_large_layer_is_fetched_in_parallel_ranges_and_arrives_intact() {
    let ranged = RangedFetch {
        parts: 4,
        part_bytes: 1024 * 1024,
        threshold: 4 * 1024 * 1024,
    };
    let (gets, max_open) = copy_large_layer(ranged).await;
    // 6 MiB and a bit in 1 MiB parts: 7 ranged GETs, each answered 206, no whole-blob GET.
    assert_eq!(gets.len(), 7, "layer GETs at the source: {gets:#?}");
    assert!(
        gets.iter().all(|line| line.contains("\" 206 ")),
        "a layer GET was not answered with a range: {gets:#?}"
    );
    // Its parts came over several connections at once, within the budget of 4 (plus the
    // TLS probe's connection).
    assert!(max_open > 1, "the parts shared one connection");
    assert!(
        max_open <= 5,
        "{max_open} source connections with a budget of 4"
    );
}

#[tokio::test]
async fn ranged_fetching_off_fetches_a_large_layer_with_one_get() {
    let (gets, _) = copy_large_layer(RangedFetch::off()).await;
    assert_eq!(gets.len(), 1, "layer GETs at the source: {gets:#?}");
    assert!(gets[0].contains("\" 200 "), "{gets:#?}");
}
