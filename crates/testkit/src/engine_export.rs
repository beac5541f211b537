//! Tar files shaped like the export of a Docker Engine whose images live in the containerd
//! image store (`docker save`, `GET /images/{name}/get`): an OCI layout — `oci-layout`,
//! `blobs/sha256/…` holding the index, manifests, configs and the compressed layers as pulled
//! or built, `index.json` naming the image — plus the older Engines' `manifest.json` for one
//! platform, the Engine's default. This machine's Engine (20.10, classic store) cannot write
//! one, so tests build them from a [`BuiltImage`].
//!
//! Like the Engine, an export can lack content the store does not hold (`docker pull` of a
//! multi-platform image fetches one platform's layers): the manifests and configs of those
//! platforms are exported, their layers are not.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::image::{Blob, BuiltImage};
use crate::server::{self, ServerTask};

/// Writes `image` as the Engine exports it under `name` (a full reference, e.g.
/// `docker.io/library/app:1`) to `path`. `default` is the platform `manifest.json` describes;
/// `lacking` are platforms whose layers the Engine does not hold.
pub fn write_containerd_export(
    image: &BuiltImage,
    name: &str,
    default: &str,
    lacking: &[&str],
    path: &Path,
) -> anyhow::Result<()> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut blob = |files: &mut Vec<(String, Vec<u8>)>, b: &Blob| {
        if seen.insert(b.digest.clone()) {
            files.push((format!("blobs/sha256/{}", b.hex()), b.bytes.to_vec()));
        }
    };
    blob(&mut files, &image.index);
    let mut save_manifest = None;
    for (platform, manifest) in &image.manifests {
        blob(&mut files, manifest);
        let parsed: Value = serde_json::from_slice(&manifest.bytes)?;
        let config = find(image, &parsed["config"])?;
        blob(&mut files, config);
        let mut layer_paths = Vec::new();
        for layer in parsed["layers"]
            .as_array()
            .context("a manifest without layers")?
        {
            let layer = find(image, layer)?;
            layer_paths.push(format!("blobs/sha256/{}", layer.hex()));
            if !lacking.contains(&platform.as_str()) {
                blob(&mut files, layer);
            }
        }
        if platform == default {
            save_manifest = Some(json!([{
                "Config": format!("blobs/sha256/{}", config.hex()),
                "RepoTags": [name],
                "Layers": layer_paths,
            }]));
        }
    }
    let save_manifest =
        save_manifest.with_context(|| format!("the image has no platform {default}"))?;
    let tag = name.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
    let mut entry = image.index.descriptor();
    entry["annotations"] = json!({
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": tag,
    });
    let index = json!({
        "schemaVersion": 2,
        "mediaType": crate::image::OCI_INDEX,
        "manifests": [entry],
    });
    files.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    files.push(("index.json".into(), serde_json::to_vec(&index)?));
    files.push(("manifest.json".into(), serde_json::to_vec(&save_manifest)?));

    let mut tar = tar::Builder::new(std::fs::File::create(path)?);
    for (name, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, &name, bytes.as_slice())?;
    }
    tar.into_inner()?.flush()?;
    Ok(())
}

/// The blob a descriptor names.
fn find<'a>(image: &'a BuiltImage, descriptor: &Value) -> anyhow::Result<&'a Blob> {
    let digest = descriptor["digest"]
        .as_str()
        .context("a descriptor without a digest")?;
    image
        .blobs
        .iter()
        .find(|b| b.digest == digest)
        .with_context(|| format!("the image lacks blob {digest}"))
}

/// A Docker Engine API stand-in holding one image in the containerd store: it answers the
/// inspect and the export of that image (from a file [`write_containerd_export`] wrote) over
/// plain HTTP, for `DOCKER_HOST=tcp://…`, and counts the exports. Only for what this machine's
/// Engine cannot be: everything else talks to the real one.
pub struct ContainerdEngine {
    host: String,
    exports: Arc<AtomicUsize>,
    _server: ServerTask,
}

impl ContainerdEngine {
    /// Serves `image` under `name` (as the user names it, e.g. `app:1`) from the export at
    /// `export`. The image ID is the index digest, as the containerd store reports it.
    pub async fn start(image: &BuiltImage, name: &str, export: &Path) -> anyhow::Result<Self> {
        let tar = Bytes::from(std::fs::read(export)?);
        let inspect = Bytes::from(serde_json::to_vec(&json!({
            "Id": image.index.digest,
            "RepoTags": [name],
            "RepoDigests": [],
            "Os": "linux",
            "Architecture": "amd64",
            "Size": tar.len(),
        }))?);
        let exports = Arc::new(AtomicUsize::new(0));
        let counter = exports.clone();
        let wanted = name.to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let host = format!("tcp://{}", listener.local_addr()?);
        let server = server::spawn(
            listener,
            None,
            move |req: Request<hyper::body::Incoming>| {
                let path = req.uri().path().to_string();
                let (tar, inspect, counter) = (tar.clone(), inspect.clone(), counter.clone());
                let image_path = format!("/images/{wanted}/");
                async move {
                    // Any API version prefix (`/v1.41/images/…`) or none.
                    let rest = path
                        .find("/images/")
                        .map(|i| &path[i..])
                        .unwrap_or(path.as_str());
                    let response = match rest.strip_prefix(&image_path) {
                        Some("json") => Response::new(Full::new(inspect)),
                        Some("get") => {
                            counter.fetch_add(1, Ordering::SeqCst);
                            Response::new(Full::new(tar))
                        }
                        _ if rest == "/_ping" || path.ends_with("/_ping") => {
                            Response::new(Full::new(Bytes::from_static(b"OK")))
                        }
                        _ => {
                            let body = br#"{"message":"No such image"}"#;
                            let mut response = Response::new(Full::new(Bytes::from_static(body)));
                            *response.status_mut() = StatusCode::NOT_FOUND;
                            response
                        }
                    };
                    Ok::<_, server::BoxError>(response)
                }
            },
        );
        Ok(ContainerdEngine {
            host,
            exports,
            _server: server,
        })
    }

    /// `DOCKER_HOST` for this Engine.
    pub fn docker_host(&self) -> &str {
        &self.host
    }

    /// Exports served so far.
    pub fn exports(&self) -> usize {
        self.exports.load(Ordering::SeqCst)
    }
}
