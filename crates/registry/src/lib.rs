//! `ferry-registry`: the OCI distribution client and copy engine behind `ferry` and
//! `ferry-operator`.
//!
//! Read a copy top-down in [`copy`]; every protocol concept has a module named after it.

pub mod auth;
pub mod digest;
pub mod manifest;
pub mod media_type;
pub mod reference;
pub mod retry;
