//! Registry authentication: credentials, `WWW-Authenticate` challenges and docker's config.json.

pub mod challenge;
pub mod credentials;
pub mod docker_config;
