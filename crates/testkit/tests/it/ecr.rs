use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_testkit::push::RawClient;
use ferry_testkit::{EcrStandIn, MotoServer, build};
use serde_json::{Value, json};

use crate::small_spec;

const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921";

fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().no_proxy().build()?)
}

/// An unsigned JSON 1.1 call, as the SDK would send it minus SigV4.
async fn api(url: &str, operation: &str, body: Value) -> anyhow::Result<(u16, Value)> {
    api_raw(url, operation, body.to_string()).await
}

async fn api_raw(url: &str, operation: &str, body: String) -> anyhow::Result<(u16, Value)> {
    let resp = http()?
        .post(url)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("{TARGET}.{operation}"))
        .body(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, serde_json::from_slice(&resp.bytes().await?)?))
}

/// `(user, password, expiresAt, proxyEndpoint)` of every `authorizationData` entry.
fn tokens(answer: &Value) -> anyhow::Result<Vec<(String, String, f64, String)>> {
    let Some(entries) = answer["authorizationData"].as_array() else {
        anyhow::bail!("no authorizationData in {answer}");
    };
    entries
        .iter()
        .map(|e| {
            let decoded = STANDARD.decode(e["authorizationToken"].as_str().unwrap_or_default())?;
            let (user, pass) = std::str::from_utf8(&decoded)?
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("token without ':'"))?;
            Ok((
                user.to_string(),
                pass.to_string(),
                e["expiresAt"].as_f64().unwrap_or(-1.0),
                e["proxyEndpoint"].as_str().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

async fn v2_status(registry_url: &str, user: &str, pass: &str) -> anyhow::Result<u16> {
    let resp = http()?
        .get(format!("{registry_url}/v2/"))
        .basic_auth(user, Some(pass))
        .send()
        .await?;
    Ok(resp.status().as_u16())
}

#[tokio::test]
async fn moto_server_starts_answers_and_dies_with_drop() -> anyhow::Result<()> {
    let moto = MotoServer::start().await?;
    let url = moto.url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        http()?
            .get(format!("{url}/moto-api/"))
            .send()
            .await?
            .status()
            .is_success()
    );
    moto.reset().await?;
    drop(moto);
    assert!(
        http()?
            .get(format!("{url}/moto-api/"))
            .send()
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn token_from_the_api_pushes_to_the_registry_and_repositories_reach_moto()
-> anyhow::Result<()> {
    let ecr = EcrStandIn::start().await?;
    assert_eq!(ecr.account(), "123456789012");
    assert_eq!(ecr.region(), "us-east-1");
    assert_eq!(
        ecr.ecr_host(),
        "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    );
    assert_eq!(ecr.registry_url(), ecr.registry().url());
    assert_eq!(ecr.token_requests(), 0);

    let (status, answer) = api(&ecr.api_url(), "GetAuthorizationToken", json!({})).await?;
    assert_eq!(status, 200, "{answer}");
    let tokens = tokens(&answer)?;
    assert_eq!(tokens.len(), 1);
    let (user, pass, expires_at, endpoint) = &tokens[0];
    assert_eq!(user, "AWS");
    assert_eq!(pass, "123456789012-auth-token");
    assert_eq!(*pass, ecr.password());
    // moto's fixed date, already past: clients must not treat "expired" as "refresh forever".
    assert_eq!(*expires_at, 1_420_070_400.0);
    assert_eq!(*endpoint, format!("https://{}", ecr.ecr_host()));
    assert_eq!(ecr.token_requests(), 1);

    assert_eq!(v2_status(&ecr.registry_url(), "AWS", "wrong").await?, 401);
    let image = build(&small_spec(40))?;
    image
        .push(&ecr.registry_url(), "team/app", "v1", Some(("AWS", pass)))
        .await?;
    let client = RawClient::new(&ecr.registry_url(), Some(("AWS", pass)))?;
    assert_eq!(client.tags("team/app").await?, vec!["v1".to_string()]);

    let (status, created) = api(
        &ecr.api_url(),
        "CreateRepository",
        json!({"repositoryName": "team/app"}),
    )
    .await?;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        created["repository"]["repositoryUri"],
        format!("{}/team/app", ecr.ecr_host())
    );
    let (status, again) = api(
        &ecr.api_url(),
        "CreateRepository",
        json!({"repositoryName": "team/app"}),
    )
    .await?;
    assert_eq!(status, 400);
    assert_eq!(again["__type"], "RepositoryAlreadyExistsException");
    let (status, described) = api(
        &ecr.api_url(),
        "DescribeRepositories",
        json!({"repositoryNames": ["team/app"]}),
    )
    .await?;
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["repositories"][0]["repositoryName"], "team/app");
    // Only the token proxy answered GetAuthorizationToken; everything else reached moto.
    assert_eq!(moto_posts(&ecr), 3);
    assert_eq!(ecr.token_requests(), 1);
    assert_eq!(
        ecr.api_calls(),
        [
            "GetAuthorizationToken",
            "CreateRepository",
            "CreateRepository",
            "DescribeRepositories"
        ]
    );
    assert_eq!(ecr.api_call_count("CreateRepository"), 2);
    Ok(())
}

fn moto_posts(ecr: &EcrStandIn) -> usize {
    ecr.moto().log().matches("\"POST / HTTP/1.1\"").count()
}

#[tokio::test]
async fn rotation_refuses_the_old_password_at_once() -> anyhow::Result<()> {
    let ecr = EcrStandIn::start().await?;
    let url = ecr.registry_url();
    let old = ecr.password();
    assert_eq!(v2_status(&url, "AWS", &old).await?, 200);

    // Several rounds: a rotation must take effect on the very next request, every time.
    for round in 1..=3 {
        let new = ecr.rotate_password()?;
        assert_ne!(new, old);
        assert_eq!(ecr.password(), new);
        assert_eq!(v2_status(&url, "AWS", &old).await?, 401, "round {round}");
        assert_eq!(v2_status(&url, "AWS", &new).await?, 200, "round {round}");
        let (_, answer) = api(&ecr.api_url(), "GetAuthorizationToken", json!({})).await?;
        assert_eq!(tokens(&answer)?[0].1, new);
        assert_eq!(ecr.token_requests(), round);
    }

    // A push with a stale token fails; with a fresh one it succeeds.
    let image = build(&small_spec(41))?;
    assert!(
        image
            .push(&url, "app", "v1", Some(("AWS", &old)))
            .await
            .is_err()
    );
    let current = ecr.password();
    image
        .push(&url, "app", "v1", Some(("AWS", &current)))
        .await?;
    Ok(())
}

#[tokio::test]
async fn token_expiry_and_registry_ids_are_honoured() -> anyhow::Result<()> {
    let ecr = EcrStandIn::start().await?;
    let in_12h = SystemTime::now() + Duration::from_secs(12 * 3600);
    ecr.set_token_expiry(Some(in_12h));
    let (status, answer) = api(
        &ecr.api_url(),
        "GetAuthorizationToken",
        json!({"registryIds": ["123456789012", "210987654321"]}),
    )
    .await?;
    assert_eq!(status, 200, "{answer}");
    let tokens = tokens(&answer)?;
    let expected = in_12h.duration_since(UNIX_EPOCH)?.as_secs_f64();
    assert_eq!(tokens.len(), 2);
    for (user, pass, expires_at, _) in &tokens {
        assert_eq!(
            (user.as_str(), pass.as_str()),
            ("AWS", "123456789012-auth-token")
        );
        assert!(
            (expires_at - expected).abs() < 0.01,
            "{expires_at} vs {expected}"
        );
    }
    assert_eq!(
        tokens[1].3,
        "https://210987654321.dkr.ecr.us-east-1.amazonaws.com"
    );

    ecr.set_token_expiry(None);
    let (_, answer) = api(&ecr.api_url(), "GetAuthorizationToken", json!({})).await?;
    assert_eq!(answer["authorizationData"][0]["expiresAt"], 1_420_070_400.0);

    let (status, bad) = api_raw(&ecr.api_url(), "GetAuthorizationToken", "{".into()).await?;
    assert_eq!(status, 400);
    assert_eq!(bad["__type"], "SerializationException");
    assert_eq!(ecr.token_requests(), 2, "a rejected request is not counted");
    Ok(())
}

#[tokio::test]
async fn the_aws_sdk_talks_to_the_stand_in() -> anyhow::Result<()> {
    use aws_sdk_ecr::config::{BehaviorVersion, Credentials, Region};

    let ecr = EcrStandIn::start().await?;
    ecr.set_token_expiry(Some(SystemTime::now() + Duration::from_secs(3600)));
    let config = aws_sdk_ecr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(ecr.region().to_string()))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(ecr.api_url())
        .build();
    let client = aws_sdk_ecr::Client::from_conf(config);

    let out = client.get_authorization_token().send().await?;
    let data = &out.authorization_data()[0];
    let decoded = STANDARD.decode(data.authorization_token().unwrap_or_default())?;
    assert_eq!(decoded, format!("AWS:{}", ecr.password()).as_bytes());
    let expires = data.expires_at().map(|t| t.secs()).unwrap_or_default();
    assert!(expires > 0 && SystemTime::now() < UNIX_EPOCH + Duration::from_secs(expires as u64));
    assert_eq!(
        data.proxy_endpoint(),
        Some(format!("https://{}", ecr.ecr_host()).as_str())
    );

    client
        .create_repository()
        .repository_name("sdk/app")
        .send()
        .await?;
    let err = client
        .create_repository()
        .repository_name("sdk/app")
        .send()
        .await
        .err()
        .map(|e| e.into_service_error());
    assert!(
        err.as_ref()
            .is_some_and(|e| e.is_repository_already_exists_exception()),
        "{err:?}"
    );
    let described = client
        .describe_repositories()
        .repository_names("sdk/app")
        .send()
        .await?;
    assert_eq!(
        described.repositories()[0].repository_uri(),
        Some(format!("{}/sdk/app", ecr.ecr_host()).as_str())
    );
    assert_eq!(ecr.token_requests(), 1);
    Ok(())
}
