//! The manifest endpoints: `HEAD`, `GET`, `PUT` and `DELETE /v2/<name>/manifests/<reference>`.
//!
//! A manifest travels as raw bytes in both directions: what is pushed is exactly what was
//! fetched (or built), so its digest is stable end to end.

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use crate::client::{Body, Repository, Request, expect, header_str, settled};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::media_type::MANIFEST_ACCEPT;

/// Manifests are small; a registry serving more than this is broken or hostile.
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// What a `HEAD` tells about a manifest without fetching it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// What a `PUT` of a manifest established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedManifest {
    pub digest: Digest,
    /// The registry indexed the manifest's `subject` itself (answered `OCI-Subject`), so the
    /// referrers tag schema need not be maintained by the client.
    pub subject_indexed: bool,
}

impl Repository {
    /// `HEAD` a manifest by tag or digest; `None` when it does not exist.
    pub async fn head_manifest(&self, target: &str) -> Result<Option<ManifestHead>> {
        let request = Request::new(
            Method::HEAD,
            self.url(&format!("/manifests/{target}")),
            self.pull_scope(),
        )
        .header(ACCEPT, MANIFEST_ACCEPT);
        let info = request.info();
        let response = self.send(request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = expect(response, info.clone(), &[StatusCode::OK]).await?;
        let media_type = header_str(&response, "content-type")
            .unwrap_or_default()
            .to_string();
        let size = response.content_length().unwrap_or(0);
        match header_str(&response, "docker-content-digest") {
            Some(digest) => Ok(Some(ManifestHead {
                digest: Digest::parse(digest)?,
                size,
                media_type,
            })),
            // Some registries omit the digest on HEAD; the bytes are the only truth then.
            None => {
                let manifest = self.get_manifest(target).await?;
                Ok(Some(ManifestHead {
                    digest: manifest.digest().clone(),
                    size: manifest.size(),
                    media_type: manifest.media_type().to_string(),
                }))
            }
        }
    }

    /// `GET` a manifest's raw bytes by tag or digest. When `target` is a digest, the bytes are
    /// verified against it.
    pub async fn get_manifest(&self, target: &str) -> Result<Manifest> {
        match self.fetch_manifest(target).await? {
            Some(manifest) => Ok(manifest),
            None => Err(self.manifest_not_found("GET", target)),
        }
    }

    /// The error for a manifest that is not there, as the registry's 404 would say it.
    pub(crate) fn manifest_not_found(&self, method: &str, target: &str) -> Error {
        Error::Registry {
            request: crate::error::RequestInfo {
                method: method.into(),
                url: self.url(&format!("/manifests/{target}")),
            },
            status: 404,
            code: Some(crate::error::ErrorCode::ManifestUnknown),
            message: format!("manifest {target} not found in {}", self.name()),
        }
    }

    /// Like [`get_manifest`](Self::get_manifest), but `None` when it does not exist.
    pub async fn fetch_manifest(&self, target: &str) -> Result<Option<Manifest>> {
        let request = Request::new(
            Method::GET,
            self.url(&format!("/manifests/{target}")),
            self.pull_scope(),
        )
        .header(ACCEPT, MANIFEST_ACCEPT);
        let info = request.info();
        let response = self.send(request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = expect(response, info.clone(), &[StatusCode::OK]).await?;
        let info = settled(info, &response);
        if response.content_length().unwrap_or(0) > MAX_MANIFEST_BYTES as u64 {
            return Err(Error::Protocol {
                request: info,
                reason: format!("manifest larger than {MAX_MANIFEST_BYTES} bytes"),
            });
        }
        let content_type = header_str(&response, "content-type").map(str::to_string);
        let raw = response.bytes().await.map_err(|source| Error::Transport {
            request: info.clone(),
            source,
        })?;
        let manifest = Manifest::from_raw(raw, content_type.as_deref())?;
        if let Ok(expected) = Digest::parse(target)
            && manifest.digest() != &expected
        {
            return Err(crate::digest::DigestError::Mismatch {
                expected,
                actual: manifest.digest().clone(),
            }
            .into());
        }
        Ok(Some(manifest))
    }

    /// `PUT` a manifest under a tag or its digest.
    pub async fn put_manifest(&self, target: &str, manifest: &Manifest) -> Result<PushedManifest> {
        self.put_manifest_raw(target, manifest.media_type(), manifest.raw().clone())
            .await
    }

    pub async fn put_manifest_raw(
        &self,
        target: &str,
        media_type: &str,
        raw: Bytes,
    ) -> Result<PushedManifest> {
        let digest = Digest::sha256_of(&raw);
        let request = Request::new(
            Method::PUT,
            self.url(&format!("/manifests/{target}")),
            self.push_scope(),
        )
        .header(CONTENT_TYPE, media_type)
        .body(Body::Bytes(raw));
        let info = request.info();
        let response = self.send(request).await?;
        let response = expect(
            response,
            info.clone(),
            &[StatusCode::CREATED, StatusCode::OK],
        )
        .await?;
        if let Some(returned) = header_str(&response, "docker-content-digest")
            && returned != digest.as_str()
        {
            return Err(Error::Protocol {
                request: info,
                reason: format!(
                    "stored the manifest as {returned}, but its bytes hash to {digest}"
                ),
            });
        }
        Ok(PushedManifest {
            subject_indexed: response.headers().contains_key("oci-subject"),
            digest,
        })
    }

    /// `DELETE` a manifest by digest.
    pub async fn delete_manifest(&self, digest: &Digest) -> Result<()> {
        let request = Request::new(
            Method::DELETE,
            self.url(&format!("/manifests/{digest}")),
            self.push_scope(),
        );
        let info = request.info();
        let response = self.send(request).await?;
        expect(response, info, &[StatusCode::ACCEPTED, StatusCode::OK]).await?;
        Ok(())
    }
}
