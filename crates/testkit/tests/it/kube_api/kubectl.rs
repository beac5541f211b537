// The tests run kubectl blocking on a test thread, so the runtime serving the stand-in needs
// threads of its own: hence the multi-threaded flavour.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use ferry_testkit::{KubeApi, KubeApiOptions};

use super::{CRD, Kubectl, mirror_yaml, rig, rows};

/// The mirror as `kubectl get -o yaml` shows it, with the managed fields kubectl hides by
/// default.
const ALPINE_YAML: &[&str] = &[
    "get",
    "eim",
    "alpine",
    "-o",
    "yaml",
    "--show-managed-fields",
];

/// The CRD and a mirror applied server-side with kubectl, shown with the CRD's printer
/// columns, a status written by a "controller" over HTTP, a changed spec, then deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_crd_and_mirror_server_side() -> anyhow::Result<()> {
    let (api, k) = rig().await?;

    let out = k.ok(&["apply", "--server-side", "-f", CRD]);
    assert_eq!(
        out.trim(),
        "customresourcedefinition.apiextensions.k8s.io/ecrimagemirrors.ferry.dev serverside-applied"
    );
    let crd = k.yaml(&["get", "crd", "ecrimagemirrors.ferry.dev", "-o", "yaml"]);
    let established = crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    assert!(established, "{crd:?}");

    let manifest = k.write(
        "mirror.yaml",
        &mirror_yaml("alpine", "docker.io/library/alpine:3.20", "mirrors/alpine"),
    );
    let manifest = manifest.to_string_lossy().into_owned();
    let out = k.ok(&["apply", "--server-side", "-f", &manifest]);
    assert_eq!(
        out.trim(),
        "ecrimagemirror.ferry.dev/alpine serverside-applied"
    );

    let table = rows(&k.ok(&["get", "eim"]));
    assert_eq!(table[0], ["NAME", "SOURCE", "DESTINATION", "READY", "AGE"]);
    assert_eq!(table.len(), 2, "{table:?}");
    // No Ready condition yet: kubectl leaves the cell empty.
    assert_eq!(table[1].len(), 4, "{table:?}");
    assert_eq!(
        table[1][..3],
        ["alpine", "docker.io/library/alpine:3.20", "mirrors/alpine"]
    );
    assert!(table[1][3].ends_with('s'), "age {:?}", table[1][3]);

    let obj = k.yaml(ALPINE_YAML);
    assert_eq!(obj["apiVersion"], "ferry.dev/v1alpha1");
    assert_eq!(obj["kind"], "EcrImageMirror");
    assert_eq!(obj["metadata"]["namespace"], "default");
    assert_eq!(obj["metadata"]["generation"], 1);
    assert_eq!(obj["metadata"]["labels"]["team"], "platform");
    assert_eq!(
        obj["spec"],
        json!({"source": {"image": "docker.io/library/alpine:3.20"}, "destination": {"repository": "mirrors/alpine"}})
    );
    assert_eq!(obj["metadata"]["managedFields"][0]["manager"], "kubectl");
    assert_eq!(obj["metadata"]["managedFields"][0]["operation"], "Apply");

    // A controller reports status through the subresource with server-side apply.
    let status = json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "EcrImageMirror",
        "metadata": {"name": "alpine"},
        "status": {"observedGeneration": 1, "digest": "sha256:abc",
                   "conditions": [{"type": "Ready", "status": "True", "reason": "Synced"}]},
    });
    let url = format!(
        "{}/apis/ferry.dev/v1alpha1/namespaces/default/ecrimagemirrors/alpine/status?fieldManager=ferry-operator&force=true",
        api.url()
    );
    let resp = reqwest::Client::new()
        .patch(&url)
        .bearer_auth(api.token())
        .header("content-type", "application/apply-patch+yaml")
        .body(status.to_string())
        .send()
        .await?;
    assert_eq!(resp.status(), 200, "{}", resp.text().await?);

    let table = rows(&k.ok(&["get", "eim"]));
    assert_eq!(table[1][3], "True");
    let obj = k.yaml(ALPINE_YAML);
    assert_eq!(obj["status"]["digest"], "sha256:abc");
    assert_eq!(
        obj["metadata"]["generation"], 1,
        "a status write must not bump generation"
    );
    let managers: Vec<(&str, Option<&str>)> = obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["manager"].as_str().unwrap_or(""),
                m["subresource"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        managers,
        [("kubectl", None), ("ferry-operator", Some("status"))]
    );

    // A server-side dry run shows the change without making it.
    let manifest2 = k.write(
        "mirror2.yaml",
        &mirror_yaml("alpine", "docker.io/library/alpine:3.21", "mirrors/alpine"),
    );
    let manifest2 = manifest2.to_string_lossy().into_owned();
    let diff = k.run(&["diff", "--server-side", "-f", &manifest2]);
    assert_eq!(
        diff.status.code(),
        Some(1),
        "kubectl diff exits 1 on differences"
    );
    let diff = String::from_utf8_lossy(&diff.stdout);
    assert!(
        diff.contains("\n-    image: docker.io/library/alpine:3.20\n"),
        "{diff}"
    );
    assert!(
        diff.contains("\n+    image: docker.io/library/alpine:3.21\n"),
        "{diff}"
    );
    let out = k.ok(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        &manifest2,
    ]);
    assert_eq!(
        out.trim(),
        "ecrimagemirror.ferry.dev/alpine serverside-applied (server dry run)"
    );
    let obj = k.yaml(ALPINE_YAML);
    assert_eq!(
        obj["spec"]["source"]["image"],
        "docker.io/library/alpine:3.20"
    );

    // Re-applying a changed spec bumps the generation and keeps the status.
    k.ok(&["apply", "--server-side", "-f", &manifest2]);
    let obj = k.yaml(ALPINE_YAML);
    assert_eq!(obj["metadata"]["generation"], 2);
    assert_eq!(
        obj["spec"]["source"]["image"],
        "docker.io/library/alpine:3.21"
    );
    assert_eq!(obj["status"]["digest"], "sha256:abc");
    // Applying the same manifest again is a no-op: no new resourceVersion.
    let rv = obj["metadata"]["resourceVersion"].clone();
    k.ok(&["apply", "--server-side", "-f", &manifest2]);
    let obj = k.yaml(ALPINE_YAML);
    assert_eq!(obj["metadata"]["resourceVersion"], rv);

    let out = k.ok(&["delete", "eim", "alpine"]);
    assert_eq!(out.trim(), "ecrimagemirror.ferry.dev \"alpine\" deleted");
    let out = k.run(&["get", "eim"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "No resources found in default namespace."
    );
    assert!(api.objects("ferry.dev", "ecrimagemirrors", None).is_empty());

    let log = api.requests();
    let used = |verb: &str, group: &str, resource: &str, sub: Option<&str>| {
        log.iter().any(|r| {
            r.verb == verb
                && r.group == group
                && r.resource == resource
                && r.subresource.as_deref() == sub
        })
    };
    assert!(used(
        "patch",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        None
    ));
    assert!(used("patch", "ferry.dev", "ecrimagemirrors", None));
    assert!(used(
        "patch",
        "ferry.dev",
        "ecrimagemirrors",
        Some("status")
    ));
    assert!(used("list", "ferry.dev", "ecrimagemirrors", None));
    assert!(used("get", "ferry.dev", "ecrimagemirrors", None));
    assert!(used("delete", "ferry.dev", "ecrimagemirrors", None));
    assert!(
        log.iter().all(|r| r.status != 401),
        "kubectl sent its token"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_and_deletes_a_docker_registry_secret() -> anyhow::Result<()> {
    let (api, k) = rig().await?;
    let out = k.ok(&[
        "create",
        "secret",
        "docker-registry",
        "ecr-creds",
        "--docker-server=123456789012.dkr.ecr.us-east-1.amazonaws.com",
        "--docker-username=AWS",
        "--docker-password=s3cret",
    ]);
    assert_eq!(out.trim(), "secret/ecr-creds created");

    let secret: Value = serde_json::from_str(&k.ok(&["get", "secret", "ecr-creds", "-o", "json"]))?;
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(secret["metadata"]["namespace"], "default");
    assert!(
        secret["metadata"].get("generation").is_none(),
        "secrets have no generation"
    );
    let encoded = secret["data"][".dockerconfigjson"]
        .as_str()
        .unwrap_or_default();
    let config: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(encoded)?)?;
    let auth = &config["auths"]["123456789012.dkr.ecr.us-east-1.amazonaws.com"];
    assert_eq!(auth["username"], "AWS");
    assert_eq!(auth["password"], "s3cret");

    let table = rows(&k.ok(&["get", "secrets"]));
    assert_eq!(table[0], ["NAME", "TYPE", "AGE"]);
    assert_eq!(
        table[1][..2],
        ["ecr-creds", "kubernetes.io/dockerconfigjson"]
    );

    let out = k.run(&[
        "create",
        "secret",
        "generic",
        "ecr-creds",
        "--from-literal=a=b",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: failed to create secret secrets \"ecr-creds\" already exists"
    );

    assert_eq!(
        k.ok(&["delete", "secret", "ecr-creds"]).trim(),
        "secret \"ecr-creds\" deleted"
    );
    let out = k.run(&["get", "secret", "ecr-creds"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error from server (NotFound): secrets \"ecr-creds\" not found"
    );
    let verbs: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.resource == "secrets")
        .map(|r| r.verb)
        .collect();
    for verb in ["create", "get", "list", "delete"] {
        assert!(
            verbs.iter().any(|v| v == verb),
            "{verb} missing from {verbs:?}"
        );
    }
    Ok(())
}

/// `kubectl get eim --watch` prints a row for a mirror created over HTTP afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_watch_sees_changes_made_over_http() -> anyhow::Result<()> {
    let (api, k) = rig().await?;
    k.ok(&["apply", "--server-side", "-f", CRD]);
    let first = k.write(
        "first.yaml",
        &mirror_yaml("first", "quay.io/a/b:1", "mirrors/b"),
    );
    k.ok(&["apply", "--server-side", "-f", &first.to_string_lossy()]);

    let mut child = k
        .command(&["get", "eim", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || rx.recv_timeout(Duration::from_secs(15));
    assert!(next_line()?.starts_with("NAME"));
    assert!(next_line()?.starts_with("first"));

    let body = json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "EcrImageMirror",
        "metadata": {"name": "second"},
        "spec": {"source": {"image": "ghcr.io/x/y:2"}, "destination": {"repository": "mirrors/y"}}});
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/apis/ferry.dev/v1alpha1/namespaces/default/ecrimagemirrors",
            api.url()
        ))
        .bearer_auth(api.token())
        .json(&body)
        .send()
        .await?;
    assert_eq!(resp.status(), 201);
    let line = next_line()?;
    let _ = child.kill();
    let _ = child.wait();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols.len(), 4, "{line}");
    assert_eq!(
        cols[..3],
        ["second", "ghcr.io/x/y:2", "mirrors/y"],
        "{line}"
    );
    assert!(
        api.requests()
            .iter()
            .any(|r| r.verb == "watch" && r.resource == "ecrimagemirrors")
    );

    // Selectors and the all-namespaces view, as kubectl spells them.
    let labelled = k.ok(&["get", "eim", "-l", "team=platform", "-o", "name"]);
    assert_eq!(labelled.trim(), "ecrimagemirror.ferry.dev/first");
    let by_name = k.ok(&[
        "get",
        "eim",
        "--field-selector",
        "metadata.name=second",
        "-o",
        "name",
    ]);
    assert_eq!(by_name.trim(), "ecrimagemirror.ferry.dev/second");
    let everywhere = rows(&k.ok(&["get", "eim", "-A"]));
    assert_eq!(everywhere[0][..2], ["NAMESPACE", "NAME"]);
    assert_eq!(everywhere.len(), 3, "{everywhere:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_api_command_serves_kubectl() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferry-testkit"))
        .args(["kube-api", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| l != "READY=1")
        .collect();
    assert!(lines[0].starts_with("url=http://127.0.0.1:"), "{lines:?}");
    let out = std::process::Command::new("kubectl")
        .env_clear()
        .env("HOME", dir.path())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "namespaces"])
        .output()?;
    let _ = child.kill();
    let _ = child.wait();
    let table = rows(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        table[0],
        ["NAME", "STATUS", "AGE"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(table[1][..2], ["default", "Active"]);
    Ok(())
}

/// Over HTTPS kubectl trusts the CA from the kubeconfig and sends the token, which the
/// stand-in then requires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_over_tls_sends_the_token() -> anyhow::Result<()> {
    let api = KubeApi::start_with(KubeApiOptions {
        tls: true,
        ..KubeApiOptions::default()
    })
    .await?;
    assert!(api.url().starts_with("https://127.0.0.1:"));
    let k = Kubectl::new(&api);
    let table = rows(&k.ok(&["get", "namespaces"]));
    assert_eq!(table[1][..2], ["default", "Active"]);
    assert!(api.requests().iter().all(|r| r.status != 401));

    let anonymous = k.write(
        "anonymous",
        &api.kubeconfig()?
            .replace(&format!("token: {}", api.token()), "token: wrong"),
    );
    let out = k
        .command(&["get", "namespaces"])
        .env("KUBECONFIG", &anonymous)
        .arg("--kubeconfig")
        .arg(&anonymous)
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("You must be logged in to the server"),
        "{stderr}"
    );
    Ok(())
}
