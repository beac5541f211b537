#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Read;

use super::test_image::TestImage;
use super::*;

fn engine() -> DockerEngine {
    DockerEngine::new(DEFAULT_HOST).unwrap()
}

/// The whole export, read on a blocking thread as a push reads it.
async fn export_all(engine: &DockerEngine, name: &str) -> Result<Vec<u8>, DockerError> {
    let (engine, name) = (engine.clone(), name.to_string());
    tokio::task::spawn_blocking(move || {
        let mut reader = engine.export(&name)?;
        let mut tar = Vec::new();
        reader
            .read_to_end(&mut tar)
            .map_err(|e| DockerError::Transfer {
                request: "GET export".into(),
                cause: e.to_string(),
            })?;
        Ok(tar)
    })
    .await
    .unwrap()
}

#[test]
fn hosts() {
    let unix = DockerEngine::new("unix:///run/user/1000/docker.sock").unwrap();
    assert_eq!(
        unix.endpoint,
        Endpoint::Unix(PathBuf::from("/run/user/1000/docker.sock"))
    );
    let cases = [
        ("tcp://127.0.0.1:2375", "127.0.0.1:2375"),
        ("tcp://docker", "docker:2375"),
        ("tcp://docker:2376/", "docker:2376"),
        ("http://localhost:8080", "localhost:8080"),
        ("tcp://[::1]", "[::1]:2375"),
        ("tcp://[::1]:23", "[::1]:23"),
    ];
    for (host, authority) in cases {
        let engine = DockerEngine::new(host).unwrap();
        assert_eq!(engine.endpoint, Endpoint::Tcp(authority.into()), "{host}");
        assert_eq!(engine.host(), host);
    }
}

#[test]
fn invalid_hosts_say_what_to_use() {
    let cases = [
        (
            "",
            "expected unix:///path/to/docker.sock or tcp://host:port",
        ),
        ("unix://", "socket path is missing"),
        ("/var/run/docker.sock", "unix:///var/run/docker.sock"),
        ("ssh://me@box", "ssh:// is not supported"),
        (
            "npipe:////./pipe/docker_engine",
            "npipe:// is not supported",
        ),
        (
            "https://box:2376",
            "TLS to the Docker Engine is not supported",
        ),
        ("tcp://", "host is missing"),
        ("tcp://box:99999", "port \"99999\""),
        ("tcp://box:2375/v1.41", "only host and port"),
        ("docker.example.com:2375", "expected unix://"),
    ];
    for (host, expected) in cases {
        let err = DockerEngine::new(host).unwrap_err();
        assert!(matches!(err, DockerError::InvalidHost { .. }), "{host}");
        let message = err.to_string();
        assert!(message.contains(expected), "{host}: {message}");
    }
}

#[test]
fn docker_host_from_the_environment() {
    let default = DockerEngine::from_env_values(None, None).unwrap();
    assert_eq!(default.host(), DEFAULT_HOST);
    let blank = DockerEngine::from_env_values(Some(" "), None).unwrap();
    assert_eq!(blank.host(), DEFAULT_HOST);
    let tcp = DockerEngine::from_env_values(Some("tcp://box:2375"), None).unwrap();
    assert_eq!(tcp.endpoint, Endpoint::Tcp("box:2375".into()));
    let err = DockerEngine::from_env_values(Some("tcp://box:2376"), Some("1")).unwrap_err();
    assert!(err.to_string().contains("DOCKER_TLS_VERIFY"), "{err}");
    // TLS settings are irrelevant to a unix socket.
    DockerEngine::from_env_values(Some("unix:///x.sock"), Some("1")).unwrap();
}

#[test]
fn names_are_encoded_for_the_path() {
    assert_eq!(encode_name("team/app:1.0").unwrap(), "team/app:1.0");
    assert_eq!(
        encode_name("localhost:5000/app@sha256:abc").unwrap(),
        "localhost:5000/app@sha256:abc"
    );
    assert_eq!(encode_name("a b?c#d%").unwrap(), "a%20b%3Fc%23d%25");
    assert_eq!(encode_name("é").unwrap(), "%C3%A9");
    for bad in ["", "../_ping", "a/./b", "a//b", "/abs", "app/"] {
        let err = encode_name(bad).unwrap_err();
        assert!(matches!(err, DockerError::InvalidName { .. }), "{bad}");
    }
}

#[test]
fn inspect_answers_with_nulls_and_missing_fields_parse() {
    let body = br#"{"Id":"sha256:6790d375eb3a8ae8d91bf1ec78dddc5a7b8dd96e7cf74309a87254630773e6f0",
        "RepoTags":null,"RepoDigests":null,"Architecture":"arm64","Variant":"v8","Os":"linux",
        "Size":-1,"RootFS":{"Type":"layers"}}"#;
    let inspect = parse_inspect(body).unwrap();
    assert!(inspect.repo_tags.is_empty() && inspect.diff_ids.is_empty());
    assert_eq!(inspect.variant.as_deref(), Some("v8"));
    assert_eq!(inspect.size, 0);
    let err = parse_inspect(br#"{"Id":"6790"}"#).unwrap_err();
    assert!(err.contains("image Id"), "{err}");
}

#[tokio::test]
async fn ping() {
    engine().ping().await.unwrap();
}

#[tokio::test]
async fn unreachable_socket() {
    let dir = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/docker.sock", dir.path().display());
    let engine = DockerEngine::new(&host).unwrap();
    let err = engine.ping().await.unwrap_err();
    assert!(matches!(err, DockerError::Unreachable { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot reach the Docker Engine at {host}: No such file or directory (os error 2) \
             (is Docker running? set DOCKER_HOST)"
        )
    );
    let err = engine.inspect("app:1").await.unwrap_err();
    assert!(matches!(err, DockerError::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn unreachable_tcp_port() {
    // Bind and drop to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let engine = DockerEngine::new(&format!("tcp://127.0.0.1:{port}")).unwrap();
    let err = engine.ping().await.unwrap_err();
    assert!(matches!(err, DockerError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("refused"), "{err}");
}

#[tokio::test]
async fn missing_images() {
    let engine = engine();
    let err = engine
        .inspect("ferry-docker-test/missing:1")
        .await
        .unwrap_err();
    assert!(matches!(err, DockerError::NoSuchImage { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "no such local image: ferry-docker-test/missing:1"
    );
    let err = export_all(&engine, "ferry-docker-test/missing:1")
        .await
        .unwrap_err();
    assert!(matches!(err, DockerError::NoSuchImage { .. }), "{err:?}");
}

#[tokio::test]
async fn invalid_names_get_the_engines_reason() {
    let err = engine().inspect("App:1").await.unwrap_err();
    let DockerError::Api {
        status, message, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*status, 400);
    assert!(message.contains("must be lowercase"), "{message}");
    // Encoded, so the name cannot smuggle a query string in.
    let err = engine().inspect("app:1?x=y").await.unwrap_err();
    assert!(
        matches!(err, DockerError::Api { status: 400, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn inspect_by_tag_full_id_and_short_id() {
    let image = TestImage::two_layers("inspect");
    let engine = engine();
    let by_tag = engine.inspect(&image.tag).await.unwrap();
    assert_eq!(by_tag.repo_tags, vec![image.tag.clone()]);
    assert_eq!(by_tag.diff_ids.len(), 2);
    assert_eq!(by_tag.os, "linux");
    assert!(!by_tag.architecture.is_empty());
    assert!(by_tag.size > 3000);

    let by_id = engine.inspect(by_tag.id.as_str()).await.unwrap();
    assert_eq!(by_id.id, by_tag.id);
    let short = &by_tag.id.hex()[..12];
    let by_short = engine.inspect(short).await.unwrap();
    assert_eq!(by_short.id, by_tag.id);
    assert_eq!(by_short.diff_ids, by_tag.diff_ids);
}

#[tokio::test]
async fn export_streams_a_docker_save_tar() {
    let image = TestImage::two_layers("export");
    let engine = engine();
    let inspect = engine.inspect(&image.tag).await.unwrap();
    let tar_bytes = export_all(&engine, &image.tag).await.unwrap();

    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.insert(path, data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let layers: Vec<String> = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let layer_digests: Vec<Digest> = layers
        .iter()
        .map(|l| Digest::sha256_of(&files[l.as_str()]))
        .collect();
    assert_eq!(layer_digests, inspect.diff_ids);
    let config = manifest[0]["Config"].as_str().unwrap();
    assert_eq!(Digest::sha256_of(&files[config]), inspect.id);
}

#[tokio::test]
async fn export_by_short_id() {
    let image = TestImage::two_layers("export-id");
    let engine = engine();
    let inspect = engine.inspect(&image.tag).await.unwrap();
    let total = export_all(&engine, &inspect.id.hex()[..12])
        .await
        .unwrap()
        .len();
    assert!(total > 3000 && total.is_multiple_of(512), "{total}");
}

/// The same Engine reached over plain-HTTP TCP, through a loopback forwarder to its socket.
#[tokio::test]
async fn over_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let forwarder = tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut unix = tokio::net::UnixStream::connect("/var/run/docker.sock")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
            });
        }
    });
    let engine = DockerEngine::new(&format!("tcp://{addr}")).unwrap();
    engine.ping().await.unwrap();
    let err = engine
        .inspect("ferry-docker-test/missing:1")
        .await
        .unwrap_err();
    assert!(matches!(err, DockerError::NoSuchImage { .. }), "{err:?}");
    // The export takes its own (blocking) connection: over TCP too, the same bytes as over the
    // socket.
    let image = TestImage::two_layers("export-tcp");
    let over_tcp = export_all(&engine, &image.tag).await.unwrap();
    assert_eq!(
        over_tcp,
        export_all(&self::engine(), &image.tag).await.unwrap()
    );
    forwarder.abort();
}
