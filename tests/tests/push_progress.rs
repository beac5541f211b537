//! What a push shows while it works (the CLI's progress bars are drawn from these events): the
//! Engine's export phase, each layer started, read to its size and finished with its fate —
//! uploaded the first time, already there the next. A `docker save` file of a real Engine image
//! and an OCI layout, pushed into a real registry.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferry_local_image::push::{Compression, PushCache, PushOptions, push};
use ferry_local_image::source::ImageSource;
use ferry_registry::copy::{BlobOutcome, Progress};
use ferry_registry::{Digest, Reference};
use ferry_testkit::{ImageSpec, LocalImage, TestRegistry};

/// Every event, in order, as text; and the bytes each blob advanced by.
#[derive(Default)]
struct Recorded {
    events: Mutex<Vec<String>>,
    advanced: Mutex<HashMap<Digest, u64>>,
}

impl Progress for Recorded {
    fn phase(&self, what: &str) {
        self.events.lock().unwrap().push(format!("phase {what}"));
    }
    fn blob_started(&self, digest: &Digest, size: u64) {
        self.events
            .lock()
            .unwrap()
            .push(format!("started {digest} {size}"));
    }
    fn blob_advanced(&self, digest: &Digest, bytes: u64) {
        *self
            .advanced
            .lock()
            .unwrap()
            .entry(digest.clone())
            .or_default() += bytes;
    }
    fn blob_finished(&self, digest: &Digest, size: u64, outcome: BlobOutcome) {
        self.events
            .lock()
            .unwrap()
            .push(format!("finished {digest} {size} {outcome:?}"));
    }
}

impl Recorded {
    fn take(&self) -> (Vec<String>, HashMap<Digest, u64>) {
        (
            std::mem::take(&mut *self.events.lock().unwrap()),
            std::mem::take(&mut *self.advanced.lock().unwrap()),
        )
    }
}

fn options(cache: &Arc<PushCache>, progress: &Arc<Recorded>) -> PushOptions {
    PushOptions {
        compression: Compression::Gzip,
        tags: vec!["v1".into()],
        immutable_tags: None,
        cache: cache.clone(),
        engine: None,
        inspected: None,
        progress: Some(progress.clone() as Arc<dyn Progress>),
        export_ahead: Default::default(),
    }
}

/// Pushes `source` to `repository` of `registry` with no cache, and returns what it showed.
async fn shown_by_one_push(
    registry: &TestRegistry,
    source: &ImageSource,
    repository: &str,
) -> (Vec<String>, HashMap<Digest, u64>) {
    let destination = Reference::parse(&format!("{}/{repository}", registry.host())).unwrap();
    let (cache, progress) = (
        Arc::new(PushCache::disabled()),
        Arc::new(Recorded::default()),
    );
    push(
        &common::client(),
        source,
        &destination,
        &options(&cache, &progress),
    )
    .await
    .unwrap();
    progress.take()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_save_file_shows_each_layer_then_skips_it() {
    let registry = TestRegistry::anonymous().await.unwrap();
    let image = LocalImage::build(2, 96).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("image.tar");
    image.save(&tar).unwrap();
    let source = ImageSource::DockerArchive { path: tar };
    let destination = Reference::parse(&format!("{}/progress/app", registry.host())).unwrap();
    let cache = Arc::new(PushCache::open(Some(dir.path().join("cache.json"))));
    let progress = Arc::new(Recorded::default());
    let client = common::client();

    let report = push(&client, &source, &destination, &options(&cache, &progress))
        .await
        .unwrap();
    assert_eq!(report.layers_uploaded, 2);
    let (events, advanced) = progress.take();
    assert_eq!(events[0], "phase pushing:", "{events:#?}");
    let started: Vec<&String> = events.iter().filter(|e| e.starts_with("started")).collect();
    assert_eq!(started.len(), 2, "{events:#?}");
    for line in started {
        let mut parts = line.split(' ').skip(1);
        let (id, size) = (parts.next().unwrap(), parts.next().unwrap());
        let id = Digest::parse(id).unwrap();
        // Read to the end: the layer's tar, 96 KiB of file data and its headers.
        assert_eq!(advanced[&id].to_string(), size, "{id}");
        assert!(advanced[&id] > 96 * 1024);
        assert!(
            events.contains(&format!("finished {id} {size} Uploaded")),
            "{events:#?}"
        );
    }

    // The same file again: the cache knows both layers and the registry confirms them.
    push(&client, &source, &destination, &options(&cache, &progress))
        .await
        .unwrap();
    let (events, advanced) = progress.take();
    let skipped = events.iter().filter(|e| e.ends_with(" Skipped")).count();
    assert_eq!(skipped, 2, "{events:#?}");
    assert!(
        !events.iter().any(|e| e.starts_with("started")),
        "{events:#?}"
    );
    assert!(
        advanced.is_empty(),
        "nothing was read for skipped layers: {advanced:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oci_layout_shows_each_blob() {
    let registry = TestRegistry::anonymous().await.unwrap();
    let built = ferry_testkit::build(&ImageSpec::new(&["linux/amd64", "linux/arm64"])).unwrap();
    let dir = tempfile::tempdir().unwrap();
    built.write_oci_layout(dir.path(), "v1").unwrap();
    let source = ImageSource::OciLayout {
        dir: dir.path().to_path_buf(),
        tag: Some("v1".into()),
    };
    let (events, advanced) = shown_by_one_push(&registry, &source, "progress/oci").await;
    for blob in &built.blobs {
        let id = Digest::parse(&blob.digest).unwrap();
        let size = blob.size();
        assert!(
            events.contains(&format!("started {id} {size}")),
            "{events:#?}"
        );
        assert!(
            events.contains(&format!("finished {id} {size} Uploaded")),
            "{events:#?}"
        );
        assert_eq!(advanced[&id], size, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_image_says_the_engine_is_exporting_first() {
    let registry = TestRegistry::anonymous().await.unwrap();
    let image = LocalImage::build(1, 16).unwrap();
    let source = ImageSource::Daemon {
        name: image.name.clone(),
    };
    let (events, _) = shown_by_one_push(&registry, &source, "progress/engine").await;
    assert_eq!(
        events[..2],
        [
            format!("phase the Docker Engine is exporting {}…", image.name),
            "phase pushing:".to_string()
        ],
        "{events:#?}"
    );
    assert!(events[2].starts_with("started "), "{events:#?}");
}
