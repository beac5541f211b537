//! Referrers (signatures, SBOMs, attestations): the OCI 1.1 referrers API, falling back to the
//! `sha256-<hex>` tag schema on registries that lack it (distribution 2.8, older ECR).

use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};

use crate::client::{Repository, Request, expect, header_str};
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
        // A registry with the API answers 200 with an index (possibly empty); anything else
        // means it has no such endpoint.
        if response.status() == StatusCode::OK && is_index {
            let response = expect(response, info.clone(), &[StatusCode::OK]).await?;
            let raw = response
                .bytes()
                .await
                .map_err(|source| crate::Error::Transport {
                    request: info,
                    source,
                })?;
            let index = Manifest::from_raw(raw, Some(OCI_INDEX))?;
            return Ok((index.children().to_vec(), ReferrersSource::Api));
        }
        let tagged = self.fetch_manifest(&digest.tag_schema()).await?;
        let children = tagged
            .filter(|m| m.is_index())
            .map(|m| m.children().to_vec())
            .unwrap_or_default();
        Ok((children, ReferrersSource::TagSchema))
    }
}
