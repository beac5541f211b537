//! `mirror::sync` against real registries, with the counting proxy as the witness: tags chosen
//! by a policy from the source's tag list, a warm resync that costs HEADs only, an upstream
//! tag that moves (only it is copied again, and the list naming it rebuilt), a failing tag that
//! does not stop the others, an invalid spec that asks nothing of any registry, and a dry run
//! that changes nothing.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferry_registry::copy::Budget;
use ferry_registry::mirror::{
    EcrImageMirrorSpec, EcrImageMirrorStatus, SyncEngine, SyncOutcome, TagState, sync,
};
use ferry_testkit::{FaultProxy, ImageSpec, SingleImage, TestRegistry, skopeo};
use tokio_util::sync::CancellationToken;

fn engine(dry_run: bool) -> SyncEngine {
    SyncEngine {
        client: client(),
        ecr: None,
        budget: Budget::default(),
        cancel: CancellationToken::new(),
        dry_run,
    }
}

fn mirror(yaml: &str) -> EcrImageMirrorSpec {
    serde_norway::from_str(yaml).unwrap()
}

/// A small single-platform image, different for every `seed`.
async fn pushed(
    registry: &TestRegistry,
    repo: &str,
    tag: &str,
    platform: &str,
    seed: u64,
) -> SingleImage {
    let mut spec = ImageSpec::new(&[platform]);
    spec.seed = seed;
    let image = ferry_testkit::build_single(&spec).unwrap();
    image.push(&registry.url(), repo, tag, None).await.unwrap();
    image
}

fn state_of<'a>(outcome: &'a SyncOutcome, tag: &str) -> &'a ferry_registry::mirror::TagStatus {
    outcome
        .status
        .tag(tag)
        .unwrap_or_else(|| panic!("no status for {tag}: {:?}", outcome.status))
}

#[tokio::test]
async fn a_policy_chooses_tags_and_a_warm_resync_costs_two_heads_per_tag() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    let mut digests = std::collections::HashMap::new();
    for (i, tag) in ["1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1", "latest", "nightly"]
        .iter()
        .enumerate()
    {
        let image = pushed(&src, "app", tag, "linux/amd64", i as u64 + 1).await;
        digests.insert(*tag, image.manifest.digest.clone());
    }
    let src_proxy = FaultProxy::start(&src.url()).await.unwrap();
    let dst_proxy = FaultProxy::start(&dst.url()).await.unwrap();
    let spec = mirror(&format!(
        r#"
source:
  image: {}/app
  tags: [latest]
  tagPolicy: {{semver: {{range: ">=1.0.0 <2.0.0"}}, keep: 2}}
  referrers: false
destination: {{registry: "{}", repository: mirror/app}}
"#,
        src_proxy.host(),
        dst_proxy.host()
    ));

    let cold = sync(&engine(false), &spec, &EcrImageMirrorStatus::default()).await;
    assert!(!cold.failed(), "{cold:?}");
    let chosen: Vec<&str> = cold.status.tags.iter().map(|t| t.tag.as_str()).collect();
    assert_eq!(chosen, ["latest", "1.2.0", "1.1.0"]);
    for tag in &chosen {
        let entry = state_of(&cold, tag);
        assert_eq!(entry.state, TagState::Synced);
        assert_eq!(entry.source_digest.as_deref(), Some(digests[tag].as_str()));
        assert_eq!(entry.digest.as_deref(), Some(digests[tag].as_str()));
        let raw = skopeo::inspect_raw(&format!("{}/mirror/app:{tag}", dst.host()), None)
            .await
            .unwrap();
        assert_eq!(sha256(&raw), digests[tag], "{tag} at the destination");
    }
    assert_eq!(
        cold.status.repository_uri.as_deref(),
        Some(format!("{}/mirror/app", dst_proxy.host()).as_str())
    );

    src_proxy.clear();
    dst_proxy.clear();
    let warm = sync(&engine(false), &spec, &cold.status).await;
    assert!(!warm.failed(), "{warm:?}");
    assert_eq!(warm.status.tags, cold.status.tags, "nothing moved");
    let at_source = seen(&src_proxy);
    assert_eq!(src_proxy.count("GET", "/manifests/"), 0, "{at_source:?}");
    assert_eq!(src_proxy.count("GET", "/tags/list"), 1, "{at_source:?}");
    assert_eq!(src_proxy.count("HEAD", "/manifests/"), 3, "{at_source:?}");
    assert_eq!(at_source.len(), 4, "{at_source:?}");
    let at_destination = seen(&dst_proxy);
    assert_eq!(
        at_destination.len(),
        3,
        "one HEAD per tag: {at_destination:?}"
    );
    assert_eq!(dst_proxy.count("HEAD", "/manifests/"), 3);
}

#[tokio::test]
async fn with_referrers_a_warm_resync_stays_within_three_requests_per_tag() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    for (i, tag) in ["a", "b", "c"].iter().enumerate() {
        pushed(&src, "app", tag, "linux/amd64", i as u64 + 10).await;
    }
    let src_proxy = FaultProxy::start(&src.url()).await.unwrap();
    let dst_proxy = FaultProxy::start(&dst.url()).await.unwrap();
    let spec = mirror(&format!(
        "source: {{image: {}/app, tags: [a, b, c]}}\ndestination: {{registry: \"{}\"}}\n",
        src_proxy.host(),
        dst_proxy.host()
    ));
    // One engine for both syncs, as in the operator: what it learnt of the source registry
    // (no referrers API) it keeps.
    let engine = engine(false);
    let cold = sync(&engine, &spec, &EcrImageMirrorStatus::default()).await;
    assert!(!cold.failed(), "{cold:?}");

    src_proxy.clear();
    dst_proxy.clear();
    let warm = sync(&engine, &spec, &cold.status).await;
    assert!(!warm.failed(), "{warm:?}");
    let requests = src_proxy.requests().len() + dst_proxy.requests().len();
    assert!(
        requests <= 3 * 3,
        "{requests} requests for 3 tags: {:?} {:?}",
        seen(&src_proxy),
        seen(&dst_proxy)
    );
    assert_eq!(
        src_proxy.count("GET", "/manifests/"),
        0,
        "{:?}",
        seen(&src_proxy)
    );
}

#[tokio::test]
async fn an_upstream_tag_that_moves_is_copied_again_and_its_list_rebuilt() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    pushed(&src, "app", "1.2-amd64", "linux/amd64", 1).await;
    pushed(&src, "app", "1.2-arm64", "linux/arm64", 2).await;
    pushed(&src, "app", "tools", "linux/amd64", 3).await;
    let dst_proxy = FaultProxy::start(&dst.url()).await.unwrap();
    let spec = mirror(&format!(
        r#"
source: {{image: {}/app, tags: [1.2-amd64, 1.2-arm64, tools], referrers: false}}
destination: {{registry: "{}"}}
manifestLists: [{{tag: "1.2", sources: [1.2-amd64, 1.2-arm64]}}]
"#,
        src.host(),
        dst_proxy.host()
    ));
    let cold = sync(&engine(false), &spec, &EcrImageMirrorStatus::default()).await;
    assert!(!cold.failed(), "{cold:?}");
    let list = cold.status.manifest_list("1.2").unwrap();
    assert_eq!(list.state, TagState::Synced);
    assert_eq!(list.platforms, ["linux/amd64", "linux/arm64"]);

    let moved = pushed(&src, "app", "1.2-arm64", "linux/arm64", 99).await;
    dst_proxy.clear();
    let next = sync(&engine(false), &spec, &cold.status).await;
    assert!(!next.failed(), "{next:?}");
    assert_eq!(
        state_of(&next, "1.2-arm64").digest.as_deref(),
        Some(moved.manifest.digest.as_str())
    );
    assert_eq!(state_of(&next, "tools"), state_of(&cold, "tools"));
    assert_eq!(state_of(&next, "1.2-amd64"), state_of(&cold, "1.2-amd64"));
    let puts: Vec<String> = seen(&dst_proxy)
        .into_iter()
        .filter(|r| r.starts_with("PUT") && r.contains("/manifests/"))
        .collect();
    assert!(
        puts.iter().any(|p| p.ends_with("/manifests/1.2-arm64")),
        "{puts:?}"
    );
    assert!(
        puts.iter().any(|p| p.ends_with("/manifests/1.2")),
        "{puts:?}"
    );
    assert!(
        !puts
            .iter()
            .any(|p| p.contains("tools") || p.contains("amd64")),
        "{puts:?}"
    );

    let rebuilt = next.status.manifest_list("1.2").unwrap();
    assert_ne!(rebuilt.digest, list.digest);
    let raw = skopeo::inspect_raw(&format!("{}/app:1.2", dst.host()), None)
        .await
        .unwrap();
    assert_eq!(Some(sha256(&raw)), rebuilt.digest);
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let children: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert!(
        children.contains(&moved.manifest.digest.as_str()),
        "{index}"
    );
}

#[tokio::test]
async fn a_failing_tag_leaves_the_others_synced_and_says_why() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    pushed(&src, "app", "v1", "linux/amd64", 5).await;
    let spec = mirror(&format!(
        "source: {{image: {}/app, tags: [gone, v1], referrers: false}}\n\
         destination: {{registry: \"{}\"}}\n\
         manifestLists: [{{tag: all, sources: [gone, v1]}}]\n",
        src.host(),
        dst.host()
    ));
    let outcome = sync(&engine(false), &spec, &EcrImageMirrorStatus::default()).await;
    assert!(outcome.failed());
    assert_eq!(outcome.error, None, "the mirror itself ran");
    assert_eq!(state_of(&outcome, "v1").state, TagState::Synced);
    let gone = state_of(&outcome, "gone");
    assert_eq!(gone.state, TagState::Failed);
    let message = gone.message.as_deref().unwrap();
    assert!(message.contains("gone"), "{message}");
    let list = outcome.status.manifest_list("all").unwrap();
    assert_eq!(list.state, TagState::Skipped);
    assert!(
        list.message.as_deref().unwrap().contains("gone"),
        "{list:?}"
    );
}

#[tokio::test]
async fn an_invalid_spec_names_the_field_and_asks_no_registry() {
    let src = TestRegistry::anonymous().await.unwrap();
    let proxy = FaultProxy::start(&src.url()).await.unwrap();
    let spec = mirror(&format!(
        "source: {{image: {}/app, tagPolicy: {{semver: {{range: \">=1.0 <<2\"}}}}}}\n\
         destination: {{registry: \"{}\"}}\n",
        proxy.host(),
        proxy.host()
    ));
    let outcome = sync(&engine(false), &spec, &EcrImageMirrorStatus::default()).await;
    assert!(outcome.invalid_spec);
    let error = outcome.error.unwrap();
    assert!(error.contains("spec.source.tagPolicy"), "{error}");
    assert!(proxy.requests().is_empty(), "{:?}", seen(&proxy));
}

#[tokio::test]
async fn a_dry_run_plans_and_changes_nothing() {
    let src = TestRegistry::anonymous().await.unwrap();
    let dst = TestRegistry::anonymous().await.unwrap();
    pushed(&src, "app", "v1", "linux/amd64", 8).await;
    let spec = mirror(&format!(
        "source: {{image: {}/app, tags: [v1], referrers: false}}\ndestination: {{registry: \"{}\"}}\n",
        src.host(),
        dst.host()
    ));
    let plan = sync(&engine(true), &spec, &EcrImageMirrorStatus::default()).await;
    assert!(!plan.failed(), "{plan:?}");
    let v1 = state_of(&plan, "v1");
    assert_eq!(v1.state, TagState::Pending);
    assert_eq!(v1.message.as_deref(), Some("would be copied"));
    assert_eq!(plan.status.last_sync_time, None);
    assert!(
        skopeo::inspect_raw(&format!("{}/app:v1", dst.host()), None)
            .await
            .is_err(),
        "a dry run pushed the image"
    );
}

#[test]
fn the_readme_example_is_a_valid_mirror() {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## `ferry mirror").unwrap()..];
    let start = section.find("```yaml\n").unwrap() + "```yaml\n".len();
    let yaml = &section[start..start + section[start..].find("```").unwrap()];
    let documents = ferry_registry::mirror::parse_documents(yaml, "README.md").unwrap();
    assert_eq!(documents.len(), 1);
    let spec = &documents[0].spec;
    assert_eq!(spec.source.image, "docker.io/library/nginx");
    assert_eq!(spec.manifest_lists[0].sources, ["stable"]);
}

#[test]
fn the_examples_are_valid_mirrors_and_other_kinds_are_skipped() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let documents =
            ferry_registry::mirror::parse_documents(&text, &path.display().to_string()).unwrap();
        names.extend(documents.into_iter().map(|d| d.metadata.name));
    }
    names.sort();
    assert_eq!(names, ["nginx", "tool"]);
}
