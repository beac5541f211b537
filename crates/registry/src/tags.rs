//! The tag list endpoint, `GET /v2/<name>/tags/list`, following `Link` pagination.

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::client::{Repository, Request, expect, header_str};
use crate::error::{Error, Result};

/// Page size asked for; registries may send fewer and paginate with `Link`.
const PAGE_SIZE: usize = 1000;

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Repository {
    /// Every tag in the repository, in the registry's order, across all pages.
    pub async fn list_tags(&self) -> Result<Vec<String>> {
        self.list_tags_paged(PAGE_SIZE).await
    }

    /// Like [`list_tags`](Self::list_tags) with an explicit page size (`n`).
    pub async fn list_tags_paged(&self, page_size: usize) -> Result<Vec<String>> {
        self.collect_tags(page_size, true).await
    }

    /// Like [`list_tags`](Self::list_tags), but a repository the registry does not know is an
    /// error rather than no tags.
    pub async fn list_tags_strict(&self) -> Result<Vec<String>> {
        self.collect_tags(PAGE_SIZE, false).await
    }

    async fn collect_tags(&self, page_size: usize, missing_is_empty: bool) -> Result<Vec<String>> {
        let mut tags = Vec::new();
        let mut next = Some(self.url(&format!("/tags/list?n={page_size}")));
        while let Some(url) = next.take() {
            let request = Request::new(Method::GET, url, self.pull_scope());
            let info = request.info();
            let response = self.send(request).await?;
            if missing_is_empty && response.status() == StatusCode::NOT_FOUND && tags.is_empty() {
                return Ok(tags);
            }
            let response = expect(response, info.clone(), &[StatusCode::OK]).await?;
            if let Some(link) = header_str(&response, "link") {
                next = next_link(link)
                    .map(|target| self.resolve(&target).map(|u| u.to_string()))
                    .transpose()?;
            }
            let page: TagList = response.json().await.map_err(|e| Error::Protocol {
                request: info,
                reason: format!("tag list is not JSON: {e}"),
            })?;
            tags.extend(page.tags.unwrap_or_default());
        }
        Ok(tags)
    }
}

/// The target of the `rel="next"` entry of an RFC 8288 `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|entry| {
        let (target, params) = entry.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn finds_next_link() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://x/prev>; rel="prev", <https://x/next>; rel=next"#).as_deref(),
            Some("https://x/next")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
