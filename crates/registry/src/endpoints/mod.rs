//! The distribution API's endpoints, one file each, as methods on [`crate::Repository`]:
//! [`manifests`] (`/v2/<name>/manifests/<reference>`), [`blobs`] (`/v2/<name>/blobs/…`, uploads
//! and mounts), [`tags`] (`/v2/<name>/tags/list`) and [`referrers`] (`/v2/<name>/referrers/…`).
//!
//! What travels through them lives elsewhere: the documents in [`crate::manifest`], their
//! digests in [`crate::digest`].

pub mod blobs;
pub mod manifests;
pub mod referrers;
pub mod tags;
