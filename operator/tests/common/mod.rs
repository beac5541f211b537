//! What the operator's end-to-end tests share: the Kubernetes API stand-in with the CRD
//! applied, driven by the real `kubectl`, and images pushed to and read back from real
//! registries.

// Each test binary uses its own part of this.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_testkit::{ImageSpec, KubeApi, TestRegistry, skopeo};
use serde_json::Value;

pub const CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../charts/ferry-operator/crds/ecrimagemirrors.ferry.dev.yaml"
);

pub struct Kubectl {
    pub kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// The API stand-in with the CRD applied, a kubeconfig for it and a work directory.
pub struct Cluster {
    pub api: KubeApi,
    pub kubectl: Kubectl,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let api = KubeApi::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        api.write_kubeconfig(&kubeconfig).unwrap();
        let kubectl = Kubectl { kubeconfig };
        kubectl.ok(&["apply", "--server-side", "-f", CRD]);
        Cluster { api, kubectl, dir }
    }

    /// `kubectl apply --server-side` of mirror `app` copying `tags` from `source` (a
    /// registry host, repository `app`) to `destination`'s `mirror/app`.
    pub fn apply_mirror(&self, source: &str, destination: &str, tags: &[&str]) -> String {
        let mirror = self.dir.path().join("mirror.yaml");
        std::fs::write(
            &mirror,
            format!(
                "apiVersion: ferry.dev/v1alpha1\nkind: EcrImageMirror\nmetadata: {{name: app, \
                 namespace: default}}\nspec:\n  source: {{image: {source}/app, tags: {tags:?}, \
                 referrers: false}}\n  destination: {{registry: '{destination}', repository: \
                 mirror/app}}\n  interval: 24h\n",
            ),
        )
        .unwrap();
        self.kubectl
            .ok(&["apply", "--server-side", "-f", mirror.to_str().unwrap()])
    }

    pub fn mirror(&self) -> Value {
        serde_json::from_str(&self.kubectl.ok(&["get", "eim", "app", "-o", "json"])).unwrap()
    }

    /// Waits (up to `limit`) for `app` to be Ready=True for spec generation `generation`;
    /// returns its status.
    pub async fn ready(&self, generation: i64, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let object = self.mirror();
            let status = &object["status"];
            let ready = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            if ready && status["observedGeneration"] == generation {
                return status.clone();
            }
            assert!(
                Instant::now() < deadline,
                "not Ready for generation {generation} within {limit:?}: {}",
                serde_json::to_string_pretty(&object).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    pub fn lease_holder(&self) -> String {
        self.kubectl.ok(&[
            "get",
            "lease",
            "ferry-operator",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
    }
}

/// Pushes a single-platform image as `app:tag`; returns its digest.
pub async fn pushed(registry: &TestRegistry, tag: &str, seed: u64, layer_size: usize) -> String {
    let mut spec = ImageSpec::new(&["linux/amd64"]);
    spec.seed = seed;
    spec.layers = 1;
    spec.layer_size = layer_size;
    let image = ferry_testkit::build_single(&spec).unwrap();
    image.push(&registry.url(), "app", tag, None).await.unwrap();
    image.manifest.digest.clone()
}

/// The digest `host/mirror/app:tag` points at, by skopeo.
pub async fn destination_digest(host: &str, tag: &str) -> String {
    let raw = skopeo::inspect_raw(&format!("{host}/mirror/app:{tag}"), None)
        .await
        .unwrap();
    ferry_testkit::sha256_digest(&raw)
}
