//! Throwaway images in the real Docker Engine, for tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A tagged image, removed (`docker rmi`) on drop.
pub(crate) struct TestImage {
    pub tag: String,
}

impl TestImage {
    /// Builds `FROM scratch` plus one `COPY src dest` per entry of `copies`, from `files` (name,
    /// content). Every file gets a fixed, distinct mtime so layers depend on content alone, and
    /// a unique label comes first so no two tests share an image or a build-cache chain.
    pub(crate) fn build(label: &str, files: &[(&str, &[u8])], copies: &[(&str, &str)]) -> Self {
        let unique = format!(
            "{label}-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let tag = format!("ferry-docker-test/{unique}:1");
        let dir = tempfile::tempdir().unwrap();
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800);
        for (i, (name, content)) in files.iter().enumerate() {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(base + Duration::from_secs(i as u64))
                .unwrap();
        }
        let mut dockerfile = format!("FROM scratch\nLABEL ferry.test={unique}\n");
        for (src, dest) in copies {
            dockerfile.push_str(&format!("COPY {src} {dest}\n"));
        }
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        let output = Command::new("docker")
            .args(["build", "-q", "-t", &tag])
            .arg(dir.path())
            // BuildKit needs the buildx plugin; the classic builder is always there.
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .expect("run docker build");
        assert!(
            output.status.success(),
            "docker build failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        TestImage { tag }
    }

    /// Two files, two layers.
    pub(crate) fn two_layers(label: &str) -> Self {
        TestImage::build(
            label,
            &[("a.txt", b"first file\n"), ("b.bin", &[7u8; 3000])],
            &[("a.txt", "/a.txt"), ("b.bin", "/data/b.bin")],
        )
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.tag])
            .output();
    }
}
