//! Listing a repository's images through the ECR API (with push times and sizes, which the
//! registry protocol does not have).

use std::cmp::Reverse;

use aws_smithy_types::date_time::Format;

use super::error::repo_target;
use super::{Ecr, EcrError, EcrHost};

/// DescribeImages' maximum page: fewest calls for big repositories.
const PAGE_SIZE: i32 = 1000;

pub use crate::images::ImageDetail;

impl Ecr {
    /// Every image in the repository (all pages), newest first.
    pub async fn describe_images(
        &self,
        host: &EcrHost,
        name: &str,
    ) -> Result<Vec<ImageDetail>, EcrError> {
        self.describe_images_paged(host, name, PAGE_SIZE).await
    }

    /// [`describe_images`](Self::describe_images) asking for `page_size` images per call.
    pub async fn describe_images_paged(
        &self,
        host: &EcrHost,
        name: &str,
        page_size: i32,
    ) -> Result<Vec<ImageDetail>, EcrError> {
        if host.is_public() {
            return Err(EcrError::Unsupported {
                what: "listing images (ECR Public has its own API)".into(),
                registry: host.host(),
            });
        }
        // Pages by hand rather than with the SDK's paginator: each page is then one gated
        // call, and the gate never admits the paginator's final "no page left".
        let mut images: Vec<(Option<(i64, u32)>, ImageDetail)> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut call = self
                .host_client(host)
                .describe_images()
                .repository_name(name)
                .max_results(page_size.clamp(1, PAGE_SIZE))
                .set_next_token(token.clone());
            if let Some(account) = &host.account {
                call = call.registry_id(account);
            }
            let page = self
                .gated(&host.region, "DescribeImages", call.send())
                .await
                .map_err(|e| EcrError::from_sdk("DescribeImages", repo_target(host, name), e))?;
            for image in page.image_details() {
                let Some(digest) = image.image_digest() else {
                    continue;
                };
                let pushed = image.image_pushed_at();
                images.push((
                    pushed.map(|at| (at.secs(), at.subsec_nanos())),
                    ImageDetail {
                        digest: digest.to_string(),
                        tags: image.image_tags().to_vec(),
                        size: image
                            .image_size_in_bytes()
                            .and_then(|s| u64::try_from(s).ok()),
                        pushed_at: pushed.and_then(|at| at.fmt(Format::DateTime).ok()),
                        media_type: image.image_manifest_media_type().map(str::to_string),
                        artifact_media_type: image.artifact_media_type().map(str::to_string),
                    },
                ));
            }
            // A service that hands back the token it was given would otherwise page forever.
            match page.next_token() {
                Some(next) if token.as_deref() != Some(next) => token = Some(next.to_string()),
                _ => break,
            }
        }
        // Newest first; images without a push time last; the digest keeps the order stable.
        images.sort_by(|(a_at, a), (b_at, b)| {
            (Reverse(a_at.is_some()), Reverse(*a_at), &a.digest).cmp(&(
                Reverse(b_at.is_some()),
                Reverse(*b_at),
                &b.digest,
            ))
        });
        Ok(images.into_iter().map(|(_, image)| image).collect())
    }
}
