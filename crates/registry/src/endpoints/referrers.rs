//! Referrers (signatures, SBOMs, attestations): the OCI 1.1 referrers API, falling back to the
//! `sha256-<hex>` tag schema on registries that lack it (distribution 2.8, older ECR).
//!
//! A registry found without the API is remembered (per host, for the process), and the tag
//! schema is asked with a `HEAD` first: on such a registry an image without referrers then
//! costs one `HEAD`, which is what lets a warm resync stay within three requests per tag.

use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};

use crate::client::{Repository, Request, expect, header_str, settled};
use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::{Descriptor, Manifest};
use crate::media_type::OCI_INDEX;

/// Where a repository's referrers list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrersSource {
    Api,
    TagSchema,
}

impl Repository {
    /// The manifests whose `subject` is `digest`.
    pub async fn referrers(&self, digest: &Digest) -> Result<(Vec<Descriptor>, ReferrersSource)> {
        if !self.lacks_referrers_api() {
            if let Some(children) = self.referrers_api(digest).await? {
                return Ok((children, ReferrersSource::Api));
            }
            self.set_lacks_referrers_api();
        }
        let tag = digest.tag_schema();
        if self.head_manifest(&tag).await?.is_none() {
            return Ok((Vec::new(), ReferrersSource::TagSchema));
        }
        let tagged = self.fetch_manifest(&tag).await?;
        let children = tagged
            .filter(|m| m.is_index())
            .map(|m| m.children().to_vec())
            .unwrap_or_default();
        Ok((children, ReferrersSource::TagSchema))
    }

    /// The referrers API's answer, or `None` when the registry has no such endpoint.
    async fn referrers_api(&self, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        let request = Request::new(
            Method::GET,
            self.url(&format!("/referrers/{digest}")),
            self.pull_scope(),
        )
        .header(ACCEPT, OCI_INDEX);
        let info = request.info();
        let response = self.send(request).await?;
        let is_index =
            header_str(&response, "content-type").is_some_and(|ct| ct.starts_with(OCI_INDEX));
        // A registry with the API answers 200 with an index (possibly empty). One without it
        // answers 404 (distribution), 405 or 400, or serves something else at the path; a
        // server error says nothing about the endpoint and fails like any other request.
        let absent = matches!(
            response.status(),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::BAD_REQUEST
        ) || (response.status() == StatusCode::OK && !is_index);
        if absent {
            return Ok(None);
        }
        let response = expect(response, info.clone(), &[StatusCode::OK]).await?;
        let info = settled(info, &response);
        let raw = response
            .bytes()
            .await
            .map_err(|source| crate::Error::Transport {
                request: info,
                source,
            })?;
        let index = Manifest::from_raw(raw, Some(OCI_INDEX))?;
        Ok(Some(index.children().to_vec()))
    }
}
