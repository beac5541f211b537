//! The Kubernetes API stand-in, held against the real kubectl and a plain HTTP client.

mod http;
mod kubectl;

use std::path::PathBuf;
use std::process::{Command, Output};

use ferry_testkit::KubeApi;
use serde_json::Value;

const CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/ecrimagemirror-crd.yaml"
);

/// kubectl sealed off from this machine's ~/.kube: its own home, cache and kubeconfig.
struct Kubectl {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn new(api: &KubeApi) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        api.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        Kubectl { dir, kubeconfig }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running kubectl")
    }

    /// stdout of a successful run (else its stderr is the panic).
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn yaml(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("not YAML ({e}): {text}"))
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("writing manifest");
        path
    }
}

/// A fresh stand-in and a kubectl configured for it.
async fn rig() -> anyhow::Result<(KubeApi, Kubectl)> {
    let api = KubeApi::start().await?;
    let kubectl = Kubectl::new(&api);
    Ok((api, kubectl))
}

fn mirror_yaml(name: &str, image: &str, repository: &str) -> String {
    format!(
        "apiVersion: ferry.dev/v1alpha1\nkind: EcrImageMirror\nmetadata:\n  name: {name}\n  labels:\n    team: platform\n\
         spec:\n  source:\n    image: {image}\n  destination:\n    repository: {repository}\n"
    )
}

/// The table lines kubectl printed, split into columns.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}
