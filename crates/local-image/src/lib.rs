//! `ferry-local-image`: images on this machine, and pushing them to a registry.
//!
//! Only the `ferry` CLI/Action links this crate; the operator mirrors registry to registry and
//! needs none of it. Each concept has its module:
//! - [`source`]: what a user names for a push (`repo:tag`, an image ID, `oci:DIR`,
//!   `docker-archive:FILE`);
//! - [`docker`]: a minimal Docker Engine API client (inspect, export);
//! - [`docker_archive`]: a streaming reader over `docker save` / OCI-export tars;
//! - [`push`]: the pipeline that turns one of those into a manifest and blobs at a registry,
//!   through the shared crate's client ([`ferry_registry::Client`]);
//! - [`error`]: the push's error, which wraps the registry's.

pub mod docker;
pub mod docker_archive;
pub mod error;
pub mod push;
pub mod source;

pub use error::{Error, Result};
pub use push::{Compression, PushCache, PushOptions, PushReport, push};
pub use source::ImageSource;
