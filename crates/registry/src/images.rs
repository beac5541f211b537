//! What a repository holds, on any registry: every tagged image with its digest. The registry
//! protocol has no listing of manifests, so this is the tag list, then a `HEAD` per tag, grouped
//! by digest. (ECR's API says more — sizes, push times, untagged images — see
//! [`crate::ecr::Ecr::describe_images`], which returns the same type.)

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::client::Repository;
use crate::error::Result;

/// One image (manifest) in a repository.
#[derive(Debug, Clone, Serialize)]
pub struct ImageDetail {
    pub digest: String,
    pub tags: Vec<String>,
    /// Config and layers as stored; only ECR's API says.
    pub size: Option<u64>,
    /// RFC 3339; only ECR's API says.
    pub pushed_at: Option<String>,
    pub media_type: Option<String>,
    pub artifact_media_type: Option<String>,
}

impl Repository {
    /// Every tagged image, in the order of the registry's tag list (each image where its first
    /// tag is), with `concurrency` `HEAD`s at a time. A repository the registry does not know is
    /// an error (`NAME_UNKNOWN`), not an empty list.
    pub async fn list_images(&self, concurrency: usize) -> Result<Vec<ImageDetail>> {
        let tags = self.list_tags_strict().await?;
        let heads: Vec<_> = futures::stream::iter(tags)
            .map(|tag| async move {
                let head = self.head_manifest(&tag).await?;
                Ok::<_, crate::Error>((tag, head))
            })
            .buffered(concurrency.max(1))
            .try_collect()
            .await?;
        let mut images: Vec<ImageDetail> = Vec::new();
        // A tag deleted between the listing and its HEAD is simply gone.
        for (tag, head) in heads.into_iter().filter_map(|(t, h)| h.map(|h| (t, h))) {
            let digest = head.digest.to_string();
            match images.iter_mut().find(|i| i.digest == digest) {
                Some(image) => image.tags.push(tag),
                None => images.push(ImageDetail {
                    digest,
                    tags: vec![tag],
                    size: None,
                    pushed_at: None,
                    media_type: Some(head.media_type).filter(|m| !m.is_empty()),
                    artifact_media_type: None,
                }),
            }
        }
        Ok(images)
    }
}
