//! `RawClient`: a deliberately small distribution client used to seed and inspect registries
//! without going through ferry's own code.

use std::sync::Mutex;

use anyhow::{Context, bail};
use base64::Engine;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use reqwest::{RequestBuilder, Response, StatusCode};
use url::Url;

use crate::image::Blob;

/// All four manifest types: distribution answers 404 for an OCI index unless OCI is accepted.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

const BLOB_CONCURRENCY: usize = 4;

/// CAs (PEM) every `RawClient` trusts besides the system's: the rig's own TLS registries add
/// theirs when they start, so seeding and checks work against them unchanged.
static TRUSTED_CAS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Makes every `RawClient` created from now on in this process trust this CA (PEM).
pub fn trust_ca_pem(pem: &[u8]) {
    let mut cas = TRUSTED_CAS.lock().unwrap_or_else(|e| e.into_inner());
    if !cas.iter().any(|c| c == pem) {
        cas.push(pem.to_vec());
    }
}

fn client_builder() -> anyhow::Result<reqwest::ClientBuilder> {
    let cas = TRUSTED_CAS.lock().unwrap_or_else(|e| e.into_inner());
    let certs = cas
        .iter()
        .map(|pem| reqwest::Certificate::from_pem(pem))
        .collect::<Result<Vec<_>, _>>()
        .context("loading a trusted test CA")?;
    // HTTP/1.1: concurrent blob uploads get a connection each. Over TLS reqwest would otherwise
    // negotiate HTTP/2 and put them all on one connection, which a WAN proxy caps as one flow.
    Ok(reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tls_certs_merge(certs))
}

pub struct RawClient {
    base: Url,
    http: reqwest::Client,
    basic: Option<(String, String)>,
    bearer: Mutex<Option<String>>,
}

impl RawClient {
    /// `registry` is `host:port` or a URL. Handles anonymous, Basic and Bearer-token auth (the
    /// token is requested for `pull,push` on the repository being accessed).
    pub fn new(registry: &str, basic: Option<(&str, &str)>) -> anyhow::Result<RawClient> {
        let base = Url::parse(&crate::util::base_url(registry))?;
        Ok(RawClient {
            base,
            http: client_builder()?.build()?,
            basic: basic.map(|(u, p)| (u.to_string(), p.to_string())),
            bearer: Mutex::new(None),
        })
    }

    pub async fn push_blobs(&self, repo: &str, blobs: &[Blob]) -> anyhow::Result<()> {
        // Get a token before fanning out, or every concurrent first request fetches its own.
        self.authenticate(repo).await?;
        futures::stream::iter(blobs)
            .map(|blob| self.push_blob(repo, blob))
            .buffer_unordered(BLOB_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// POST an upload session, then one monolithic `PUT ?digest=`; skipped if already present.
    pub async fn push_blob(&self, repo: &str, blob: &Blob) -> anyhow::Result<()> {
        if self.blob_exists(repo, &blob.digest).await? {
            return Ok(());
        }
        let start = self.url(&format!("/v2/{repo}/blobs/uploads/"))?;
        let resp = self
            .send(repo, |c| {
                c.post(start.clone()).header("content-length", "0")
            })
            .await?;
        let resp = expect(resp, StatusCode::ACCEPTED, "starting blob upload").await?;
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .context("upload session without Location")?
            .to_str()?;
        let mut put_url = start.join(location)?;
        put_url
            .query_pairs_mut()
            .append_pair("digest", &blob.digest);
        let resp = self
            .send(repo, |c| {
                c.put(put_url.clone())
                    .header("content-type", "application/octet-stream")
                    .body(blob.bytes.clone())
            })
            .await?;
        expect(
            resp,
            StatusCode::CREATED,
            &format!("uploading {}", blob.digest),
        )
        .await?;
        Ok(())
    }

    pub async fn blob_exists(&self, repo: &str, digest: &str) -> anyhow::Result<bool> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let resp = self.send(repo, |c| c.head(url.clone())).await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => bail!("HEAD blob {digest}: {s}"),
        }
    }

    pub async fn get_blob(&self, repo: &str, digest: &str) -> anyhow::Result<Option<Bytes>> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let resp = self.send(repo, |c| c.get(url.clone())).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = expect(resp, StatusCode::OK, &format!("GET blob {digest}")).await?;
        Ok(Some(resp.bytes().await?))
    }

    /// PUT a manifest or index under a tag or its digest; checks the digest the registry reports.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        manifest: &Blob,
    ) -> anyhow::Result<()> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .send(repo, |c| {
                c.put(url.clone())
                    .header("content-type", &manifest.media_type)
                    .body(manifest.bytes.clone())
            })
            .await?;
        let resp = expect(
            resp,
            StatusCode::CREATED,
            &format!("PUT manifest {reference}"),
        )
        .await?;
        if let Some(got) = resp.headers().get("docker-content-digest")
            && got.to_str()? != manifest.digest
        {
            bail!(
                "registry stored manifest {reference} as {got:?}, expected {}",
                manifest.digest
            );
        }
        Ok(())
    }

    /// The manifest's exact bytes with the media type the registry served, or `None` on 404.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> anyhow::Result<Option<Blob>> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .send(repo, |c| {
                c.get(url.clone()).header("accept", MANIFEST_ACCEPT)
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = expect(resp, StatusCode::OK, &format!("GET manifest {reference}")).await?;
        let media_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(Some(Blob::new(&media_type, resp.bytes().await?)))
    }

    pub async fn delete_manifest(&self, repo: &str, digest: &str) -> anyhow::Result<()> {
        let url = self.url(&format!("/v2/{repo}/manifests/{digest}"))?;
        let resp = self.send(repo, |c| c.delete(url.clone())).await?;
        expect(
            resp,
            StatusCode::ACCEPTED,
            &format!("DELETE manifest {digest}"),
        )
        .await?;
        Ok(())
    }

    /// Tags of `repo` (empty when the repository does not exist).
    pub async fn tags(&self, repo: &str) -> anyhow::Result<Vec<String>> {
        let url = self.url(&format!("/v2/{repo}/tags/list"))?;
        let resp = self.send(repo, |c| c.get(url.clone())).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        let resp = expect(resp, StatusCode::OK, "GET tags").await?;
        let body: serde_json::Value = resp.json().await?;
        Ok(body["tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Fetches a Bearer token for `repo` now if the registry wants one and none is held yet.
    pub async fn authenticate(&self, repo: &str) -> anyhow::Result<()> {
        if self
            .bearer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            return Ok(());
        }
        let url = self.url("/v2/")?;
        self.send(repo, |c| c.get(url.clone())).await?;
        Ok(())
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        Ok(self.base.join(path)?)
    }

    fn authorize(&self, req: RequestBuilder) -> RequestBuilder {
        let bearer = self
            .bearer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match (bearer, &self.basic) {
            (Some(token), _) => req.bearer_auth(token),
            (None, Some((u, p))) => req.basic_auth(u, Some(p)),
            (None, None) => req,
        }
    }

    /// Sends once; on a Bearer challenge fetches a token and sends again.
    async fn send(
        &self,
        repo: &str,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> anyhow::Result<Response> {
        let resp = self.authorize(make(&self.http)).send().await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let Some(challenge) = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_bearer_challenge)
        else {
            return Ok(resp);
        };
        let token = self.fetch_token(&challenge, repo).await?;
        *self.bearer.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
        Ok(self.authorize(make(&self.http)).send().await?)
    }

    async fn fetch_token(&self, challenge: &Challenge, repo: &str) -> anyhow::Result<String> {
        let mut url = Url::parse(&challenge.realm)?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = &challenge.service {
                q.append_pair("service", service);
            }
            q.append_pair("scope", &format!("repository:{repo}:pull,push"));
        }
        let mut req = self.http.get(url);
        if let Some((u, p)) = &self.basic {
            req = req.header(
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                ),
            );
        }
        let resp = expect(req.send().await?, StatusCode::OK, "fetching token").await?;
        let body: serde_json::Value = resp.json().await?;
        body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .map(String::from)
            .context("token response without token")
    }
}

struct Challenge {
    realm: String,
    service: Option<String>,
}

/// Parses `Bearer realm="…",service="…",scope="…"` (values may contain commas inside quotes).
fn parse_bearer_challenge(header: &str) -> Option<Challenge> {
    let rest = header.strip_prefix("Bearer ")?;
    let mut realm = None;
    let mut service = None;
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars
            .by_ref()
            .skip_while(|c| *c == ',' || *c == ' ')
            .take_while(|c| *c != '=')
            .collect();
        if key.is_empty() {
            break;
        }
        let value: String = if chars.peek() == Some(&'"') {
            chars.next();
            chars.by_ref().take_while(|c| *c != '"').collect()
        } else {
            chars.by_ref().take_while(|c| *c != ',').collect()
        };
        match key.trim() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
    }
    Some(Challenge {
        realm: realm?,
        service,
    })
}

async fn expect(resp: Response, want: StatusCode, what: &str) -> anyhow::Result<Response> {
    if resp.status() == want {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    bail!("{what}: expected {want}, got {status}: {body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parses() {
        let c = parse_bearer_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="svc",scope="repository:a:pull,push""#,
        );
        let c = c.map(|c| (c.realm, c.service));
        assert_eq!(
            c,
            Some(("http://127.0.0.1:1/token".into(), Some("svc".into())))
        );
        assert!(parse_bearer_challenge("Basic realm=x").is_none());
    }
}
