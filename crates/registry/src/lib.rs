//! `ferry-registry`: the OCI distribution client and copy engine behind `ferry` and
//! `ferry-operator`.
//!
//! Read a copy top-down in [`copy`]; every protocol concept has a module named after it:
//! - [`reference`] (`host/repo:tag@digest`), [`digest`], [`media_type`];
//! - [`manifest`]: the documents (image manifests, indexes, platforms), kept as raw bytes;
//! - [`endpoints`]: the HTTP API, one file per endpoint family (`manifests`, `blobs`, `tags`,
//!   `referrers`), as methods on [`Repository`];
//! - [`auth`] (challenges, tokens, docker config), [`client`] (transport, retries), [`gate`]
//!   (limits per host and action, shared by every copy), [`error`];
//! - the features built on them: [`copy`] (one image, every platform, referrers, tags),
//!   [`multi_arch`] (assembling and inspecting multi-arch lists from images already pushed),
//!   [`images`] (what a repository holds), and [`ecr`] (the ECR API: repositories, tokens), with
//!   [`publish`] joining "ensure the repository → respect immutable tags → copy" in one call.
//!
//! Images on the local machine (the Docker Engine, `docker save` archives, the push pipeline)
//! are the `ferry-local-image` crate's: this one has no notion of them.
//!
//! # Many tenants in one process
//!
//! Build one [`Client`] and derive one per tenant with [`Client::with_credentials`]: derived
//! clients share the connection pool and TLS settings, and each has its own authorizer and token
//! cache, so a token fetched with one tenant's credentials never serves another's request. A
//! tenant's pull Secret becomes credentials with [`auth::DockerConfig::from_slice`] (the
//! `.dockerconfigjson` form or the legacy `.dockercfg` one) and [`auth::HelperPolicy::Refuse`],
//! which refuses a config naming `credsStore` or `credHelpers`: a tenant's config never runs a
//! program. A CA held in memory is trusted with [`ClientBuilder::ca_pem`]. Error messages name
//! the input at fault but never a command-line flag or environment variable: those belong to
//! the caller (the `ferry` CLI adds its own hints).

pub mod auth;
pub mod client;
pub mod copy;
pub mod digest;
pub mod ecr;
pub mod endpoints;
pub mod error;
pub mod gate;
pub mod images;
pub mod manifest;
pub mod media_type;
pub mod mirror;
pub mod multi_arch;
pub mod publish;
pub mod reference;
pub mod retry;
pub mod secrets;
mod transport;

pub use client::{Client, ClientBuilder, Repository};
pub use copy::{Budget, Copier, CopyOptions, CopyReport, copy};
pub use digest::Digest;
pub use error::{Error, ErrorCode, Result};
pub use manifest::{Manifest, Platform};
pub use reference::Reference;
