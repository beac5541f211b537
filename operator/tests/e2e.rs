//! The real `ferry-operator` binary against the Kubernetes API stand-in of testkit, driven with
//! the real `kubectl`: the CRD and a mirror applied server-side, the operator run as in a
//! cluster (KUBECONFIG, leader election on), the images copied between real registries and
//! `Ready=True` with digests in `kubectl get -o json`. The (verb, group, resource) the operator
//! used are recorded for the chart's RBAC check (charts/ferry-operator/tests/). Then two
//! replicas (only the Lease holder syncs; the other takes over when it dies) and SIGTERM in the
//! middle of a copy (the tag keeps its complete image; a restart finishes the copy).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{Cluster, destination_digest, pushed};
use ferry_testkit::{TestRegistry, WanConfig, WanProxy};

const RECORDED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../charts/ferry-operator/tests/operator-requests.json"
);

/// The operator, killed on drop; its log (JSON lines) goes to a file.
struct Operator {
    child: Child,
    log: PathBuf,
}

impl Operator {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Waits for the process to end; `None` if it is still running after `limit`.
    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a replica named `name` (its POD_NAME, the Lease holder identity) with leader
/// election on, plus `extra` flags; its log is `dir/<name>.log`.
fn start_operator(kubeconfig: &Path, dir: &Path, name: &str, extra: &[&str]) -> Operator {
    let log = dir.join(format!("{name}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ferry-operator"))
        .args([
            "run",
            "--metrics-address=127.0.0.1:0",
            "--lease-name=ferry-operator",
            "--lease-namespace=default",
        ])
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAME", name)
        .env("POD_NAMESPACE", "default")
        .env("FERRY_LOG", "info")
        .env_remove("AWS_REGION")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    Operator { child, log }
}

/// Starts a replica in `cluster`'s work directory.
fn replica(cluster: &Cluster, name: &str, extra: &[&str]) -> Operator {
    start_operator(&cluster.kubectl.kubeconfig, cluster.dir.path(), name, extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_mirror_is_synced_and_ready_with_digests() {
    let cluster = Cluster::start().await;
    let (api, kubectl) = (&cluster.api, &cluster.kubectl);
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let digests = [
        ("1.0", pushed(&src, "1.0", 1, 4096).await),
        ("1.1", pushed(&src, "1.1", 2, 4096).await),
    ];
    let applied = cluster.apply_mirror(&src.host(), &dst.host(), &["1.0", "1.1"]);
    assert!(
        applied.contains("ecrimagemirror.ferry.dev/app"),
        "{applied}"
    );

    let _operator = replica(&cluster, "replica-a", &[]);
    let status = cluster.ready(1, Duration::from_secs(90)).await;
    for (tag, digest) in &digests {
        let entry = status["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tag"] == *tag)
            .unwrap_or_else(|| panic!("no status for {tag}: {status}"));
        assert_eq!(entry["state"], "Synced");
        assert_eq!(entry["digest"], digest.as_str());
        assert_eq!(
            &destination_digest(&dst.host(), tag).await,
            digest,
            "{tag} at the destination"
        );
    }

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_replicas_only_the_lease_holder_syncs_and_the_other_takes_over() {
    let cluster = Cluster::start().await;
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let first = pushed(&src, "1.0", 1, 4096).await;
    cluster.apply_mirror(&src.host(), &dst.host(), &["1.0"]);

    // A 3 s Lease: a standby may take over 3 s after the leader's last renewal.
    let mut replicas = vec![
        (
            "replica-a",
            replica(&cluster, "replica-a", &["--lease-duration=3s"]),
        ),
        (
            "replica-b",
            replica(&cluster, "replica-b", &["--lease-duration=3s"]),
        ),
    ];
    let status = cluster.ready(1, Duration::from_secs(60)).await;
    assert_eq!(status["tags"][0]["digest"], first.as_str());
    let holder = cluster.lease_holder();
    let leader = replicas
        .iter()
        .position(|(name, _)| *name == holder)
        .unwrap_or_else(|| panic!("the Lease is held by {holder:?}, not a replica"));
    let standby = 1 - leader;
    let standby_log = replicas[standby].1.log();
    assert!(
        standby_log.contains("waiting for the Lease")
            && !standby_log.contains("starting the controller"),
        "the standby ran the controller:\n{standby_log}"
    );
    // Only the leader asked the source: 1.0 was looked up once (a HEAD by tag), not twice.
    let lookups = src
        .log()
        .lines()
        .filter(|l| l.contains("\"HEAD /v2/app/manifests/1.0 "))
        .count();
    assert_eq!(lookups, 1, "{}", src.log());

    // The leader dies without releasing the Lease; a new tag is asked for meanwhile.
    let (_, mut dead) = replicas.remove(leader);
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    let second = pushed(&src, "1.1", 2, 4096).await;
    cluster.apply_mirror(&src.host(), &dst.host(), &["1.0", "1.1"]);
    let status = cluster.ready(2, Duration::from_secs(60)).await;
    let (name, survivor) = &replicas[0];
    assert_eq!(cluster.lease_holder(), *name);
    assert!(
        survivor.log().contains("holding the Lease"),
        "{}",
        survivor.log()
    );
    assert_eq!(destination_digest(&dst.host(), "1.1").await, second);
    assert_eq!(status["tagSummary"], "2/2 synced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_copy_leaves_the_tag_at_its_complete_image_and_a_restart_finishes() {
    let cluster = Cluster::start().await;
    let registry = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    // The source, 1 MiB/s away: the 8 MiB layer below takes 8 s to come through.
    let upstream = format!("127.0.0.1:{}", registry.port()).parse().unwrap();
    let src = WanProxy::start(upstream, WanConfig::new(0, Some(1.0)))
        .await
        .unwrap();
    let old = pushed(&registry, "1.0", 1, 4096).await;
    cluster.apply_mirror(&src.host(), &dst.host(), &["1.0"]);
    let grace = ["--shutdown-grace-period=1s"];
    let mut operator = replica(&cluster, "replica-a", &grace);
    cluster.ready(1, Duration::from_secs(60)).await;
    assert_eq!(destination_digest(&dst.host(), "1.0").await, old);

    // Upstream 1.0 moves to a big image; a sync is asked for and starts pulling it.
    let new = pushed(&registry, "1.0", 2, 8 << 20).await;
    let before = src.stats().bytes_down;
    cluster.kubectl.ok(&[
        "annotate",
        "eim",
        "app",
        "ferry.dev/sync-requested-at=1",
        "--overwrite",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while src.stats().bytes_down < before + (1 << 20) {
        assert!(Instant::now() < deadline, "the copy did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let term = Command::new("kill")
        .args(["-TERM", &operator.pid()])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = operator
        .wait_exit(Duration::from_secs(15))
        .expect("the operator did not stop within 15 s of SIGTERM with a 1 s grace period");
    assert!(exit.success(), "{exit:?}\n{}", operator.log());
    let pulled = src.stats().bytes_down - before;
    assert!(
        pulled < 8 << 20,
        "the copy finished before SIGTERM: {pulled} bytes"
    );
    assert_eq!(
        destination_digest(&dst.host(), "1.0").await,
        old,
        "1.0 moved though its image was cut off"
    );

    // The next operator answers the request that was cut short.
    let _operator = replica(&cluster, "replica-a", &grace);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = cluster.ready(1, Duration::from_secs(30)).await;
        if status["tags"][0]["digest"] == new.as_str() {
            assert_eq!(status["lastHandledSyncRequest"], "1");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "1.0 was not synced after the restart: {status}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(destination_digest(&dst.host(), "1.0").await, new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_apply_server_side_as_they_are() {
    let cluster = Cluster::start().await;
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    for namespace in ["web", "platform"] {
        cluster.kubectl.ok(&["create", "namespace", namespace]);
    }
    let applied = cluster
        .kubectl
        .ok(&["apply", "--server-side", "-f", examples]);
    for object in [
        "ecrimagemirror.ferry.dev/nginx",
        "ecrimagemirror.ferry.dev/tool",
        "secret/hub-creds",
    ] {
        assert!(applied.contains(object), "{applied}");
    }
    // What the cluster holds is what the files say, spec for spec.
    let listed: serde_json::Value =
        serde_json::from_str(&cluster.kubectl.ok(&["get", "eim", "-A", "-o", "json"])).unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{listed}");
    for entry in std::fs::read_dir(examples).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for document in text.split("\n---\n") {
            let document: serde_json::Value = serde_norway::from_str(document).unwrap();
            if document["kind"] != "EcrImageMirror" {
                continue;
            }
            let metadata = &document["metadata"];
            let stored = items
                .iter()
                .find(|i| {
                    i["metadata"]["name"] == metadata["name"]
                        && i["metadata"]["namespace"] == metadata["namespace"]
                })
                .unwrap_or_else(|| panic!("{metadata} not listed: {listed}"));
            assert_eq!(stored["spec"], document["spec"], "{metadata}");
        }
    }
}
