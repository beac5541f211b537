use std::time::Duration;

use ferry_testkit::{KubeApi, KubeApiOptions};
use futures::StreamExt;
use serde_json::{Value, json};

/// What a watch stream delivered, one JSON event per line.
async fn watch_events(resp: reqwest::Response, stop_after: usize) -> anyhow::Result<Vec<Value>> {
    let mut events = Vec::new();
    let mut buf = Vec::new();
    let mut stream = resp.bytes_stream();
    while events.len() < stop_after {
        let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.next()).await?
        else {
            break;
        };
        buf.extend_from_slice(&chunk?);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            events.push(serde_json::from_slice(&line)?);
        }
    }
    Ok(events)
}

/// A list, then a watch from its resourceVersion: later changes replayed in order, bookmarks
/// that carry the resourceVersion reached, and 410 Gone once the history is compacted.
#[tokio::test]
async fn list_then_watch_from_resource_version_with_bookmarks() -> anyhow::Result<()> {
    let api = KubeApi::start_with(KubeApiOptions {
        bookmark_interval: Duration::from_millis(200),
        ..KubeApiOptions::default()
    })
    .await?;
    let http = reqwest::Client::new();
    let cms = format!("{}/api/v1/namespaces/default/configmaps", api.url());

    let list: Value = http
        .get(&cms)
        .bearer_auth(api.token())
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"], json!([]));
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!rv.is_empty());

    let created = http
        .post(&cms)
        .bearer_auth(api.token())
        .json(&json!({"metadata": {"name": "a", "labels": {"app": "ferry"}}, "data": {"k": "v"}}))
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await?;
    let dup = http
        .post(&cms)
        .bearer_auth(api.token())
        .json(&json!({"metadata": {"name": "a"}}))
        .send()
        .await?;
    assert_eq!(dup.status(), 409);
    let status: Value = dup.json().await?;
    assert_eq!(
        (status["kind"].as_str(), status["reason"].as_str()),
        (Some("Status"), Some("AlreadyExists"))
    );

    // An update carrying a stale resourceVersion loses.
    let mut stale = created.clone();
    stale["metadata"]["resourceVersion"] = rv.clone().into();
    let conflict = http
        .put(format!("{cms}/a"))
        .bearer_auth(api.token())
        .json(&stale)
        .send()
        .await?;
    assert_eq!(conflict.status(), 409);
    assert_eq!(conflict.json::<Value>().await?["reason"], "Conflict");
    let patched: Value = http
        .patch(format!("{cms}/a"))
        .bearer_auth(api.token())
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"data":{"k":"w"}}"#)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(patched["data"]["k"], "w");

    let resp = http
        .get(format!("{cms}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&labelSelector=app%3Dferry&timeoutSeconds=5"))
        .bearer_auth(api.token())
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let events = watch_events(resp, 3).await?;
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "BOOKMARK"], "{events:?}");
    assert_eq!(events[0]["object"]["data"]["k"], "v");
    assert_eq!(events[1]["object"]["data"]["k"], "w");
    assert_eq!(events[2]["object"]["kind"], "ConfigMap");
    assert_eq!(
        events[2]["object"]["metadata"]["resourceVersion"],
        patched["metadata"]["resourceVersion"]
    );

    // timeoutSeconds ends the stream.
    let started = std::time::Instant::now();
    let resp = http
        .get(format!(
            "{cms}?watch=1&resourceVersion={}&timeoutSeconds=1",
            api.resource_version()
        ))
        .bearer_auth(api.token())
        .send()
        .await?;
    let rest = tokio::time::timeout(Duration::from_secs(5), resp.bytes()).await??;
    assert!(rest.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(900));

    api.compact();
    let gone = http
        .get(format!("{cms}?watch=true&resourceVersion={rv}"))
        .bearer_auth(api.token())
        .send()
        .await?;
    assert_eq!(gone.status(), 410);
    assert_eq!(gone.json::<Value>().await?["reason"], "Expired");

    let log = api.requests();
    let verbs: Vec<&str> = log.iter().map(|r| r.verb.as_str()).collect();
    assert_eq!(
        verbs,
        [
            "list", "create", "create", "update", "patch", "watch", "watch", "watch"
        ]
    );
    assert_eq!(
        log[5].rbac(),
        ("watch", "", "configmaps", None, Some("default"))
    );
    Ok(())
}

#[tokio::test]
async fn requests_with_a_wrong_token_are_unauthorized() -> anyhow::Result<()> {
    let api = KubeApi::start().await?;
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/namespaces", api.url()))
        .bearer_auth("not-the-token")
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await?["reason"], "Unauthorized");
    Ok(())
}

/// A watch with a label selector sees an object that gains the label as ADDED and one that
/// loses it as DELETED, as reflectors filtering by label expect.
#[tokio::test]
async fn selector_watch_sees_objects_enter_and_leave() -> anyhow::Result<()> {
    let api = KubeApi::start().await?;
    let http = reqwest::Client::new();
    let cms = format!("{}/api/v1/namespaces/default/configmaps", api.url());
    let created = http
        .post(&cms)
        .bearer_auth(api.token())
        .json(&json!({"metadata": {"name": "b", "labels": {"app": "other"}}}))
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    let watch = http
        .get(format!(
            "{cms}?watch=true&resourceVersion={}&labelSelector=app%3Dferry",
            api.resource_version()
        ))
        .bearer_auth(api.token())
        .send()
        .await?;
    for label in ["ferry", "other"] {
        let resp = http
            .patch(format!("{cms}/b"))
            .bearer_auth(api.token())
            .header("content-type", "application/merge-patch+json")
            .body(json!({"metadata": {"labels": {"app": label}}}).to_string())
            .send()
            .await?;
        assert_eq!(resp.status(), 200);
    }
    let events = watch_events(watch, 2).await?;
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            let label = e["object"]["metadata"]["labels"]["app"].as_str();
            (e["type"].as_str().unwrap_or(""), label.unwrap_or(""))
        })
        .collect();
    assert_eq!(seen, [("ADDED", "ferry"), ("DELETED", "other")]);
    Ok(())
}

/// Deleting an object with a finalizer only marks it; removing the finalizer (as kube-rs's
/// finalizer helper does, by JSON patch) deletes it, and objects it owns go with it.
#[tokio::test]
async fn finalizers_hold_deletion_and_owners_take_dependents_along() -> anyhow::Result<()> {
    let api = KubeApi::start().await?;
    let http = reqwest::Client::new();
    let ns = format!("{}/api/v1/namespaces/default", api.url());
    let owner: Value = http
        .post(format!("{ns}/configmaps"))
        .bearer_auth(api.token())
        .json(&json!({"metadata": {"name": "owner", "finalizers": ["ferry.dev/cleanup"]}}))
        .send()
        .await?
        .json()
        .await?;
    let uid = owner["metadata"]["uid"].clone();
    assert_eq!(uid.as_str().map(str::len), Some(36));
    let owned = json!({"metadata": {"name": "owned", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]},
        "type": "Opaque"});
    let resp = http
        .post(format!("{ns}/secrets"))
        .bearer_auth(api.token())
        .json(&owned)
        .send()
        .await?;
    assert_eq!(resp.status(), 201);

    let deleting: Value = http
        .delete(format!("{ns}/configmaps/owner"))
        .bearer_auth(api.token())
        .send()
        .await?
        .json()
        .await?;
    assert!(
        deleting["metadata"]["deletionTimestamp"].is_string(),
        "{deleting}"
    );
    assert_eq!(api.objects("", "configmaps", Some("default")).len(), 1);

    let remove = json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": "ferry.dev/cleanup"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
    ]);
    let resp = http
        .patch(format!("{ns}/configmaps/owner"))
        .bearer_auth(api.token())
        .header("content-type", "application/json-patch+json")
        .body(remove.to_string())
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    for path in ["configmaps/owner", "secrets/owned"] {
        let resp = http
            .get(format!("{ns}/{path}"))
            .bearer_auth(api.token())
            .send()
            .await?;
        assert_eq!(resp.status(), 404, "{path}");
        assert_eq!(resp.json::<Value>().await?["reason"], "NotFound");
    }
    Ok(())
}

/// With a status subresource, writes to the object ignore `.status` and writes to `/status`
/// change nothing else; only spec changes move `generation`; a write that changes nothing
/// keeps the resourceVersion.
#[tokio::test]
async fn status_subresource_separates_spec_and_status() -> anyhow::Result<()> {
    let api = KubeApi::start().await?;
    let http = reqwest::Client::new();
    let crd: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(super::CRD)?)?;
    let resp = http
        .post(format!(
            "{}/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            api.url()
        ))
        .bearer_auth(api.token())
        .json(&crd)
        .send()
        .await?;
    assert_eq!(resp.status(), 201);
    let mirrors = format!(
        "{}/apis/ferry.dev/v1alpha1/namespaces/default/ecrimagemirrors",
        api.url()
    );
    let put = |url: String, body: Value| http.put(url).bearer_auth(api.token()).json(&body).send();

    let mut obj = json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "EcrImageMirror",
        "metadata": {"generateName": "m-"},
        "spec": {"source": {"image": "a"}, "destination": {"repository": "b"}},
        "status": {"digest": "ignored"}});
    let created: Value = http
        .post(&mirrors)
        .bearer_auth(api.token())
        .json(&obj)
        .send()
        .await?
        .json()
        .await?;
    let name = created["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(name.starts_with("m-") && name.len() == 7, "{name}");
    assert!(
        created.get("status").is_none(),
        "status dropped on create: {created}"
    );
    assert_eq!(created["metadata"]["generation"], 1);

    obj = created.clone();
    obj["status"] = json!({"digest": "sha256:1"});
    let with_status: Value = put(format!("{mirrors}/{name}/status"), obj.clone())
        .await?
        .json()
        .await?;
    assert_eq!(with_status["status"]["digest"], "sha256:1");
    assert_eq!(with_status["metadata"]["generation"], 1);

    // Through the main resource: spec changes, the status in the body is ignored.
    let mut changed = with_status.clone();
    changed["spec"]["source"]["image"] = "c".into();
    changed["status"]["digest"] = "sha256:forged".into();
    let updated: Value = put(format!("{mirrors}/{name}"), changed)
        .await?
        .json()
        .await?;
    assert_eq!(updated["spec"]["source"]["image"], "c");
    assert_eq!(updated["status"]["digest"], "sha256:1");
    assert_eq!(updated["metadata"]["generation"], 2);

    // Through /status: a spec change in the body is ignored.
    let mut sneaky = updated.clone();
    sneaky["spec"]["source"]["image"] = "d".into();
    let after: Value = put(format!("{mirrors}/{name}/status"), sneaky)
        .await?
        .json()
        .await?;
    assert_eq!(after["spec"]["source"]["image"], "c");
    assert_eq!(
        after["metadata"]["resourceVersion"],
        updated["metadata"]["resourceVersion"]
    );
    Ok(())
}

/// Streaming lists (`sendInitialEvents=true`, what kube-rs's `streaming_lists()` asks for):
/// the current objects as ADDED, then a bookmark marking the end of the initial state.
#[tokio::test]
async fn streaming_list_ends_initial_events_with_a_bookmark() -> anyhow::Result<()> {
    let api = KubeApi::start().await?;
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/namespaces?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
            api.url()
        ))
        .bearer_auth(api.token())
        .send()
        .await?;
    let events = watch_events(resp, 2).await?;
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "default");
    assert_eq!(events[1]["type"], "BOOKMARK");
    let annotations = &events[1]["object"]["metadata"]["annotations"];
    assert_eq!(annotations["k8s.io/initial-events-end"], "true");
    Ok(())
}
