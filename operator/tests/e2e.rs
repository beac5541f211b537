//! The real `ferry-operator` binary against the Kubernetes API stand-in of testkit, driven with
//! the real `kubectl`: the CRD and a mirror applied server-side, the operator run as in a
//! cluster (KUBECONFIG, leader election on), the images copied between real registries and
//! `Ready=True` with digests in `kubectl get -o json`. The (verb, group, resource) the operator
//! used are recorded for the chart's RBAC check (charts/ferry-operator/tests/).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_testkit::{ImageSpec, KubeApi, TestRegistry, skopeo};
use serde_json::Value;

const CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../charts/ferry-operator/crds/ecrimagemirrors.ferry.dev.yaml"
);
const RECORDED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../charts/ferry-operator/tests/operator-requests.json"
);

struct Kubectl {
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// The operator, killed on drop.
struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_operator(kubeconfig: &Path, name: &str) -> Operator {
    let child = Command::new(env!("CARGO_BIN_EXE_ferry-operator"))
        .args([
            "run",
            "--metrics-address=127.0.0.1:0",
            "--lease-name=ferry-operator",
            "--lease-namespace=default",
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAME", name)
        .env("POD_NAMESPACE", "default")
        .env("FERRY_LOG", "info")
        .env_remove("AWS_REGION")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Operator(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_mirror_is_synced_and_ready_with_digests() {
    let api = KubeApi::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).unwrap();
    let kubectl = Kubectl {
        kubeconfig: kubeconfig.clone(),
    };

    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let mut digests = Vec::new();
    for (seed, tag) in [(1u64, "1.0"), (2, "1.1")] {
        let mut spec = ImageSpec::new(&["linux/amd64"]);
        spec.seed = seed;
        let image = ferry_testkit::build_single(&spec).unwrap();
        image.push(&src.url(), "app", tag, None).await.unwrap();
        digests.push((tag, image.manifest.digest.clone()));
    }

    kubectl.ok(&["apply", "--server-side", "-f", CRD]);
    let mirror = dir.path().join("mirror.yaml");
    std::fs::write(
        &mirror,
        format!(
            "apiVersion: ferry.dev/v1alpha1\nkind: EcrImageMirror\nmetadata: {{name: app, \
             namespace: default}}\nspec:\n  source: {{image: {}/app, tags: ['1.0', '1.1'], \
             referrers: false}}\n  destination: {{registry: '{}', repository: mirror/app}}\n",
            src.host(),
            dst.host()
        ),
    )
    .unwrap();
    let applied = kubectl.ok(&["apply", "--server-side", "-f", mirror.to_str().unwrap()]);
    assert!(
        applied.contains("ecrimagemirror.ferry.dev/app"),
        "{applied}"
    );

    let _operator = start_operator(&kubeconfig, "replica-a");
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        let object: Value =
            serde_json::from_str(&kubectl.ok(&["get", "eim", "app", "-o", "json"])).unwrap();
        let ready = object["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        if ready {
            break object["status"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "not Ready within 90 s: {}",
            serde_json::to_string_pretty(&object).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    for (tag, digest) in &digests {
        let entry = status["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tag"] == *tag)
            .unwrap_or_else(|| panic!("no status for {tag}: {status}"));
        assert_eq!(entry["state"], "Synced");
        assert_eq!(entry["digest"], digest.as_str());
        let raw = skopeo::inspect_raw(&format!("{}/mirror/app:{tag}", dst.host()), None)
            .await
            .unwrap();
        assert_eq!(
            &ferry_testkit::sha256_digest(&raw),
            digest,
            "{tag} at the destination"
        );
    }
    assert_eq!(status["observedGeneration"], 1);

    let printed = kubectl.ok(&["get", "eim"]);
    let row = printed.lines().nth(1).unwrap_or_default();
    assert!(row.contains("True"), "{printed}");

    // What the operator used, by RBAC verb, API group and resource: the chart grants exactly
    // these (charts/ferry-operator/tests/check_chart.py compares them with its rules).
    let used: BTreeSet<(String, String, String)> = api
        .requests()
        .into_iter()
        .filter(|r| {
            !r.user_agent
                .as_deref()
                .is_some_and(|a| a.starts_with("kubectl"))
        })
        .map(|r| {
            let resource = match &r.subresource {
                Some(sub) => format!("{}/{sub}", r.resource),
                None => r.resource.clone(),
            };
            (r.verb.clone(), r.group.clone(), resource)
        })
        .filter(|(_, _, resource)| !resource.is_empty())
        .collect();
    let recorded: BTreeSet<(String, String, String)> = match std::fs::read(RECORDED) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
        Err(_) => BTreeSet::new(),
    };
    if std::env::var_os("FERRY_RECORD_OPERATOR_REQUESTS").is_some() {
        std::fs::write(
            RECORDED,
            serde_json::to_string_pretty(&used).unwrap() + "\n",
        )
        .unwrap();
    } else {
        assert!(
            used.is_subset(&recorded),
            "the operator used requests that {RECORDED} (and so the chart's RBAC) lacks: {:?}; \
             rerun with FERRY_RECORD_OPERATOR_REQUESTS=1 and update the chart",
            used.difference(&recorded).collect::<Vec<_>>()
        );
    }
}
