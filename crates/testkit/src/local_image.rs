//! Images in this machine's Docker Engine, built `FROM scratch` with `docker build` (the legacy
//! builder of Engine 20.10) and removed again on drop: what a user pushes.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct LocalImage {
    /// `repo:tag`, unique per process and image.
    pub name: String,
    /// `sha256:…`, the image ID.
    pub id: String,
}

impl LocalImage {
    /// `layers` layers of `kib` KiB of random data each, for the engine's own platform.
    pub fn build(layers: usize, kib: usize) -> anyhow::Result<LocalImage> {
        Self::build_for(None, layers, kib)
    }

    /// As [`build`](Self::build), for `platform` (`linux/arm/v7`): only the config says so,
    /// which is all a `FROM scratch` image of data files needs.
    pub fn build_for(
        platform: Option<&str>,
        layers: usize,
        kib: usize,
    ) -> anyhow::Result<LocalImage> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("ferry-test/app{}-{n}:1", std::process::id());
        let dir = tempfile::tempdir()?;
        let mut rng =
            rand::rngs::StdRng::seed_from_u64(u64::from(std::process::id()) << 32 | u64::from(n));
        let mut dockerfile = String::from("FROM scratch\n");
        for i in 0..layers {
            let mut data = vec![0u8; kib * 1024];
            rng.fill(&mut data[..]);
            std::fs::write(dir.path().join(format!("f{i}")), data)?;
            dockerfile.push_str(&format!("COPY f{i} /f{i}\n"));
        }
        std::fs::write(dir.path().join("Dockerfile"), dockerfile)?;
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", &name]);
        if let Some(platform) = platform {
            cmd.args(["--platform", platform]);
        }
        let out = cmd
            .arg(dir.path())
            .output()
            .context("cannot run docker build")?;
        if !out.status.success() {
            bail!("docker build: {}", String::from_utf8_lossy(&out.stderr));
        }
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(LocalImage { name, id })
    }

    /// `docker save`s the image to `path` (a `docker-archive:` file).
    pub fn save(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let out = Command::new("docker")
            .args(["save", "-o"])
            .arg(path)
            .arg(&self.name)
            .output()?;
        if !out.status.success() {
            bail!("docker save: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// The 12-digit short ID `docker images` shows.
    pub fn short_id(&self) -> String {
        let hex = self.id.trim_start_matches("sha256:");
        hex.get(..12).unwrap_or(hex).to_string()
    }
}

impl Drop for LocalImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.name])
            .output();
    }
}
