//! Tag-list pagination for registries that do not paginate themselves.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use super::ProxyBody;
use crate::server::BoxError;

/// Fetches the whole tag list upstream and answers with the page after `last` (query
/// parameter), at most `min(n, page)` tags, and a `Link: <…>; rel="next"` when more follow.
pub(super) async fn serve_page(
    client: &Client<HttpConnector, ProxyBody>,
    upstream: &str,
    path_and_query: &str,
    page: usize,
) -> Result<Response<ProxyBody>, BoxError> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut n = page.max(1);
    let mut last: Option<String> = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "n" => n = v.parse::<usize>().unwrap_or(n).clamp(1, page.max(1)),
            "last" => last = Some(v.to_string()),
            _ => {}
        }
    }
    let request = Request::get(format!("{upstream}{path}")).body(
        Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    )?;
    let response = client.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if status != StatusCode::OK {
        return Ok(Response::builder().status(status).body(
            Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync(),
        )?);
    }
    let full: Value = serde_json::from_slice(&body)?;
    let mut tags: Vec<String> = full["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    let start = last
        .as_ref()
        .map(|l| tags.iter().position(|t| t > l).unwrap_or(tags.len()))
        .unwrap_or(0);
    let end = (start + n).min(tags.len());
    let page_tags = &tags[start..end];
    let out = json!({"name": full["name"], "tags": page_tags});
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json");
    if end < tags.len()
        && let Some(last_tag) = page_tags.last()
    {
        builder = builder.header(
            http::header::LINK,
            format!("<{path}?n={n}&last={last_tag}>; rel=\"next\""),
        );
    }
    Ok(builder.body(
        Full::new(Bytes::from(out.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    )?)
}
