//! The tag list endpoint, `GET /v2/<name>/tags/list`, following `Link` pagination.
//!
//! A registry decides the pages; ferry only follows them, so it guards against a registry that
//! leads it in circles: a page already visited (or one repeating the previous page's tags) ends
//! the listing, and more than [`MAX_PAGES`] pages is an error rather than a listing that never
//! ends.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::client::{Repository, Request, expect, header_str};
use crate::error::{Error, Result};

/// Page size asked for; registries may send fewer and paginate with `Link`.
const PAGE_SIZE: usize = 1000;

/// At most this many pages (a million tags at the page size asked for).
pub const MAX_PAGES: usize = 1000;

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
        self.collect_tags_capped(page_size, missing_is_empty, MAX_PAGES)
            .await
    }

    async fn collect_tags_capped(
        &self,
        page_size: usize,
        missing_is_empty: bool,
        max_pages: usize,
    ) -> Result<Vec<String>> {
        let mut tags = Vec::new();
        let mut visited = HashSet::new();
        let mut previous_page: Option<Vec<String>> = None;
        let mut next = Some(self.url(&format!("/tags/list?n={page_size}")));
        while let Some(url) = next.take() {
            if !visited.insert(url.clone()) {
                tracing::warn!(%url, "the tag list links back to a page already read; stopping");
                break;
            }
            let request = Request::new(Method::GET, url, self.pull_scope());
            let info = request.info();
            if visited.len() > max_pages {
                return Err(Error::Protocol {
                    request: info,
                    reason: format!(
                        "the tag list goes on for more than {max_pages} pages; stopped there"
                    ),
                });
            }
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
            let page = page.tags.unwrap_or_default();
            // A registry that ignores `last` serves the first page again under a new link.
            if !page.is_empty() && previous_page.as_ref() == Some(&page) {
                tracing::warn!("the tag list repeats its previous page; stopping");
                break;
            }
            tags.extend(page.iter().cloned());
            previous_page = Some(page);
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
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::next_link;
    use crate::{Client, Reference};

    /// A registry whose tag list never ends: every answer is `page(n)` for the n-th request,
    /// linking to `link(n)`. Returns its address and the count of requests served.
    async fn endless_tag_list(
        page: fn(usize) -> &'static str,
        link: fn(usize) -> String,
    ) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let n = count.fetch_add(1, Ordering::SeqCst);
                let body = page(n);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlink: <{}>; \
                     rel=\"next\"\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    link(n),
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (addr, served)
    }

    fn repository(addr: &str) -> crate::Repository {
        let client = Client::builder().insecure_host(addr).build().unwrap();
        client.repository(&Reference::parse(&format!("{addr}/loop")).unwrap())
    }

    #[tokio::test]
    async fn a_tag_list_linking_back_to_itself_stops_after_one_round() {
        let (addr, served) = endless_tag_list(
            |_| r#"{"name":"loop","tags":["a","b"]}"#,
            |_| "/v2/loop/tags/list?n=1000".into(),
        )
        .await;
        let tags = repository(&addr).list_tags().await.unwrap();
        assert_eq!(tags, ["a", "b"]);
        assert_eq!(served.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_registry_ignoring_last_stops_at_the_repeated_page() {
        let (addr, served) = endless_tag_list(
            |_| r#"{"name":"loop","tags":["a","b"]}"#,
            |n| format!("/v2/loop/tags/list?n=2&last=x{n}"),
        )
        .await;
        let tags = repository(&addr).list_tags().await.unwrap();
        assert_eq!(tags, ["a", "b"]);
        assert_eq!(served.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_endless_tag_list_is_an_error_at_the_page_cap() {
        const PAGES: [&str; 2] = [r#"{"tags":["a"]}"#, r#"{"tags":["b"]}"#];
        let (addr, served) = endless_tag_list(
            |n| PAGES[n % 2],
            |n| format!("/v2/loop/tags/list?n=1&last=t{n}"),
        )
        .await;
        let err = repository(&addr)
            .collect_tags_capped(1, true, 5)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("more than 5 pages"), "{err}");
        assert_eq!(served.load(Ordering::SeqCst), 5);
    }

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
