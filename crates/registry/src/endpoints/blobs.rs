//! The blob endpoints: `HEAD`/`GET /v2/<name>/blobs/<digest>`, uploads and cross-repository
//! mounts.
//!
//! Uploads are always `POST` (open a session) then one streamed `PUT ?digest=` carrying the
//! whole blob. Chunked `PATCH` uploads are deliberately not used: ECR acknowledges later chunks
//! and then drops their data (see docs/design/uploads.md).

use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};

use crate::auth::Scope;
use crate::client::{Body, Repository, Request, expect, header_str, settled};
use crate::digest::{Digest, verify_stream};
use crate::error::{Error, Result};

/// A blob's bytes as they arrive, verified: a mismatch surfaces as an error in place of the
/// last chunk, so a consumer streaming into an upload never completes a corrupted blob.
pub type BlobStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// The result of asking the registry to mount a blob from another repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOutcome {
    /// The registry linked the existing blob: nothing to upload.
    Mounted,
    /// The registry could not mount (unknown in the source repository, mounting disabled, as on
    /// ECR by default) and opened an ordinary upload session instead.
    Upload(url::Url),
}

impl Repository {
    /// `HEAD` a blob: its size if this repository has it, `None` if not.
    pub async fn head_blob(&self, digest: &Digest) -> Result<Option<u64>> {
        let request = Request::new(
            Method::HEAD,
            self.url(&format!("/blobs/{digest}")),
            self.pull_scope(),
        );
        let info = request.info();
        let response = self.send(request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = expect(response, info, &[StatusCode::OK]).await?;
        Ok(Some(response.content_length().unwrap_or(0)))
    }

    /// Streams a blob, verifying its digest (and size, when known) as the bytes pass.
    pub async fn get_blob(&self, digest: &Digest, size: Option<u64>) -> Result<BlobStream> {
        let request = Request::new(
            Method::GET,
            self.url(&format!("/blobs/{digest}")),
            self.pull_scope(),
        );
        let info = request.info();
        let response = self.send(request).await?;
        let response = expect(response, info.clone(), &[StatusCode::OK]).await?;
        let info = settled(info, &response);
        let bytes = response
            .bytes_stream()
            .map_err(move |source| Error::Transport {
                request: info.clone(),
                source,
            });
        Ok(Box::pin(verify_stream(bytes, digest.clone(), size)))
    }

    /// Fetches a small blob (a config) whole, verified.
    pub async fn get_blob_bytes(&self, digest: &Digest, size: Option<u64>) -> Result<Bytes> {
        let chunks: Vec<Bytes> = self.get_blob(digest, size).await?.try_collect().await?;
        Ok(chunks.concat().into())
    }

    /// Opens an upload session (`POST /blobs/uploads/`) and returns where to send the data.
    pub async fn start_upload(&self) -> Result<url::Url> {
        let request = Request::new(Method::POST, self.url("/blobs/uploads/"), self.push_scope())
            .header(CONTENT_LENGTH, "0");
        let info = request.info();
        let response = self.send(request).await?;
        let response = expect(response, info.clone(), &[StatusCode::ACCEPTED]).await?;
        self.location(&response, &info)
    }

    /// Asks the registry to link `digest` from repository `from` on the same registry.
    pub async fn mount_blob(&self, digest: &Digest, from: &str) -> Result<MountOutcome> {
        let mut url = self.resolve(&self.url("/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("mount", digest.as_str())
            .append_pair("from", from);
        let scopes = vec![Scope::push(self.name()), Scope::pull(from)];
        let request =
            Request::new(Method::POST, url.to_string(), scopes).header(CONTENT_LENGTH, "0");
        let info = request.info();
        let response = self.send(request).await?;
        let response = expect(
            response,
            info.clone(),
            &[StatusCode::CREATED, StatusCode::ACCEPTED],
        )
        .await?;
        if response.status() == StatusCode::CREATED {
            return Ok(MountOutcome::Mounted);
        }
        Ok(MountOutcome::Upload(self.location(&response, &info)?))
    }

    /// Completes an upload session with the whole blob in one `PUT`. `body` must yield exactly
    /// `size` bytes; the registry checks them against `digest`.
    pub async fn finish_upload(
        &self,
        mut location: url::Url,
        digest: &Digest,
        size: u64,
        body: reqwest::Body,
    ) -> Result<()> {
        location
            .query_pairs_mut()
            .append_pair("digest", digest.as_str());
        let request = Request::new(Method::PUT, location.to_string(), self.push_scope())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size.to_string())
            .body(Body::Stream(Some(body)));
        let info = request.info();
        let response = self.send(request).await?;
        let response = expect(response, info.clone(), &[StatusCode::CREATED]).await?;
        if let Some(stored) = header_str(&response, "docker-content-digest")
            && stored != digest.as_str()
        {
            return Err(Error::Protocol {
                request: info,
                reason: format!("stored the blob as {stored}, expected {digest}"),
            });
        }
        Ok(())
    }

    /// Abandons an open upload session (`DELETE` its Location) so the registry frees what it
    /// holds. A session that is already gone (404) counts as cancelled.
    pub async fn cancel_upload(&self, location: &url::Url) -> Result<()> {
        let request = Request::new(Method::DELETE, location.to_string(), self.push_scope());
        let info = request.info();
        let response = self.send(request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        expect(
            response,
            info,
            &[StatusCode::NO_CONTENT, StatusCode::ACCEPTED, StatusCode::OK],
        )
        .await?;
        Ok(())
    }

    /// Sends a blob whose digest is not known yet (it is being compressed on the fly) as one
    /// streamed `PATCH` to an open session; returns where to commit it. One PATCH per blob is
    /// the shape every registry handles, ECR included: what ECR drops is data spread over
    /// several PATCHes. Commit with [`commit_upload`](Self::commit_upload).
    pub async fn patch_upload(&self, location: url::Url, body: reqwest::Body) -> Result<url::Url> {
        let request = Request::new(Method::PATCH, location.to_string(), self.push_scope())
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(Body::Stream(Some(body)));
        let info = request.info();
        let response = self.send(request).await?;
        let response = expect(
            response,
            info.clone(),
            &[
                StatusCode::ACCEPTED,
                StatusCode::NO_CONTENT,
                StatusCode::CREATED,
            ],
        )
        .await?;
        match response.headers().get(LOCATION) {
            Some(_) => self.location(&response, &info),
            None => Ok(location),
        }
    }

    /// Completes a session whose data was sent with [`patch_upload`](Self::patch_upload).
    pub async fn commit_upload(&self, mut location: url::Url, digest: &Digest) -> Result<()> {
        location
            .query_pairs_mut()
            .append_pair("digest", digest.as_str());
        let request = Request::new(Method::PUT, location.to_string(), self.push_scope())
            .header(CONTENT_LENGTH, "0");
        let info = request.info();
        let response = self.send(request).await?;
        expect(response, info, &[StatusCode::CREATED]).await?;
        Ok(())
    }

    /// Uploads a blob held in memory (configs, small artifacts).
    pub async fn push_blob_bytes(&self, digest: &Digest, data: Bytes) -> Result<()> {
        let location = self.start_upload().await?;
        let size = data.len() as u64;
        self.finish_upload(location, digest, size, reqwest::Body::from(data))
            .await
    }

    fn location(
        &self,
        response: &reqwest::Response,
        info: &crate::error::RequestInfo,
    ) -> Result<url::Url> {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Protocol {
                request: info.clone(),
                reason: "upload session opened without a Location".into(),
            })?;
        self.resolve(location)
    }
}
