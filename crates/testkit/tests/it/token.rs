use ferry_testkit::push::RawClient;
use ferry_testkit::skopeo::{self, sha256_digest};
use ferry_testkit::{TestRegistry, build};

use crate::small_spec;

#[tokio::test]
async fn token_registry_with_anonymous_pull() -> anyhow::Result<()> {
    let reg = TestRegistry::token(&[("alice", "pw")], true).await?;
    let issuer = reg
        .token_issuer()
        .ok_or_else(|| anyhow::anyhow!("no issuer"))?;
    let image = build(&small_spec(10))?;

    let denied = image.push(&reg.url(), "lib/app", "v1", None).await;
    assert!(denied.is_err(), "anonymous push must be denied");
    assert!(issuer.requests().iter().all(|r| r.user.is_none()));

    issuer.clear_requests();
    image
        .push(&reg.url(), "lib/app", "v1", Some(("alice", "pw")))
        .await?;
    // Only alice's requests: a token request of the aborted anonymous push may land late.
    let requests: Vec<_> = issuer
        .requests()
        .into_iter()
        .filter(|r| r.user.is_some())
        .collect();
    // RawClient fetches one token and reuses it for every request of the push.
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].user.as_deref(), Some("alice"));
    assert_eq!(requests[0].scopes, ["repository:lib/app:pull,push"]);
    assert_eq!(requests[0].service.as_deref(), Some(issuer.service()));

    let reference = format!("{}/lib/app:v1", reg.host());
    let raw = skopeo::inspect_raw(&reference, None).await?;
    assert_eq!(sha256_digest(&raw), image.index.digest);
    let raw = skopeo::inspect_raw(&reference, Some(("alice", "pw"))).await?;
    assert_eq!(sha256_digest(&raw), image.index.digest);
    Ok(())
}

#[tokio::test]
async fn token_registry_without_anonymous_pull() -> anyhow::Result<()> {
    let reg = TestRegistry::token(&[("alice", "pw")], false).await?;
    let image = build(&small_spec(11))?;
    image
        .push(&reg.url(), "app", "v1", Some(("alice", "pw")))
        .await?;

    let reference = format!("{}/app:v1", reg.host());
    assert!(skopeo::inspect_raw(&reference, None).await.is_err());
    let wrong = skopeo::inspect_raw(&reference, Some(("alice", "nope"))).await;
    assert!(wrong.is_err());
    let issuer = reg
        .token_issuer()
        .ok_or_else(|| anyhow::anyhow!("no issuer"))?;
    assert!(issuer.requests().iter().any(|r| r.status == 401));

    // Password rotation goes to the issuer in token mode.
    reg.set_basic_password("alice", "pw2")?;
    assert!(
        skopeo::inspect_raw(&reference, Some(("alice", "pw")))
            .await
            .is_err()
    );
    let raw = skopeo::inspect_raw(&reference, Some(("alice", "pw2"))).await?;
    assert_eq!(sha256_digest(&raw), image.index.digest);
    Ok(())
}

#[tokio::test]
async fn token_endpoint_protocol() -> anyhow::Result<()> {
    let reg = TestRegistry::token(&[("alice", "pw")], true).await?;
    let issuer = reg
        .token_issuer()
        .ok_or_else(|| anyhow::anyhow!("no issuer"))?;
    let http = reqwest::Client::builder().no_proxy().build()?;

    let challenge = http.get(format!("{}/v2/", reg.url())).send().await?;
    assert_eq!(challenge.status(), 401);
    let www = challenge
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(www.contains(&issuer.realm()), "{www}");

    let bad = http
        .get(issuer.realm())
        .query(&[
            ("service", issuer.service()),
            ("scope", "repository:x:pull"),
        ])
        .basic_auth("alice", Some("wrong"))
        .send()
        .await?;
    assert_eq!(bad.status(), 401);

    let ok: serde_json::Value = http
        .get(issuer.realm())
        .query(&[
            ("service", issuer.service()),
            ("scope", "repository:x:pull,push"),
            ("scope", "repository:y:*"),
            ("account", "alice"),
        ])
        .basic_auth("alice", Some("pw"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(ok["expires_in"], 300);
    assert_eq!(ok["token"], ok["access_token"]);
    assert!(ok["issued_at"].as_str().is_some_and(|s| s.ends_with('Z')));
    let claims = jwt_part(ok["token"].as_str().unwrap_or_default(), 1)?;
    assert_eq!(claims["aud"], issuer.service());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(
        claims["access"][0]["actions"],
        serde_json::json!(["pull", "push"])
    );
    assert_eq!(claims["access"][1]["actions"], serde_json::json!(["*"]));
    let header = jwt_part(ok["token"].as_str().unwrap_or_default(), 0)?;
    assert_eq!(header["alg"], "ES256");
    assert!(header["x5c"][0].is_string());

    let anon: serde_json::Value = http
        .get(issuer.realm())
        .query(&[
            ("service", issuer.service()),
            ("scope", "repository:x:pull,push"),
        ])
        .send()
        .await?
        .json()
        .await?;
    let claims = jwt_part(anon["token"].as_str().unwrap_or_default(), 1)?;
    assert_eq!(claims["access"][0]["actions"], serde_json::json!(["pull"]));

    // A token minted for pull only is rejected for a push by the real registry.
    let token = issuer.mint(None, &["repository:x:pull"])?;
    let push = http
        .post(format!("{}/v2/x/blobs/uploads/", reg.url()))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(push.status(), 401);
    let token = issuer.mint(Some("alice"), &["repository:x:pull,push"])?;
    let push = http
        .post(format!("{}/v2/x/blobs/uploads/", reg.url()))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(push.status(), 202);

    // The anonymous client path of RawClient also works for pulls.
    let client = RawClient::new(&reg.url(), None)?;
    assert!(client.get_manifest("x", "missing").await?.is_none());
    Ok(())
}

fn jwt_part(token: &str, i: usize) -> anyhow::Result<serde_json::Value> {
    use base64::Engine;
    let part = token.split('.').nth(i).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part)?;
    Ok(serde_json::from_slice(&bytes)?)
}

#[tokio::test]
async fn expired_tokens_are_rejected_after_distributions_leeway() -> anyhow::Result<()> {
    let reg = TestRegistry::token(&[("alice", "pw")], false).await?;
    let issuer = reg
        .token_issuer()
        .ok_or_else(|| anyhow::anyhow!("no issuer"))?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let url = format!("{}/v2/x/tags/list", reg.url());

    // Default: exp = now + 300, so the token works.
    let token = issuer.mint(Some("alice"), &["repository:x:pull"])?;
    let status = http.get(&url).bearer_auth(&token).send().await?.status();
    assert_eq!(status, 404);

    // exp 61 s in the past is beyond the registry's 60 s leeway.
    issuer.set_jwt_exp_offset(Some(-61));
    let token = issuer.mint(Some("alice"), &["repository:x:pull"])?;
    let resp = http.get(&url).bearer_auth(&token).send().await?;
    assert_eq!(resp.status(), 401);
    let www = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().map(String::from));
    assert!(
        matches!(www, Some(Ok(ref w)) if w.contains("invalid_token")),
        "{www:?}"
    );

    // 58 s in the past: still inside the leeway for a moment, then rejected.
    issuer.set_jwt_exp_offset(Some(-58));
    let token = issuer.mint(Some("alice"), &["repository:x:pull"])?;
    let status = http.get(&url).bearer_auth(&token).send().await?.status();
    assert_eq!(status, 404);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let status = http.get(&url).bearer_auth(&token).send().await?.status();
    assert_eq!(status, 401);
    Ok(())
}
