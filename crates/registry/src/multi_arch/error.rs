//! What can be wrong with a list to create, each naming the input at fault.

use crate::manifest::Platform;

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// Every missing source at once: fixing them one run at a time would be a slow loop.
    #[error(
        "{} of {total} source(s) not found in {registry}: {}; nothing was pushed (push each \
         image first)",
        missing.len(),
        missing.iter().map(|m| format!("{} ({})", m.source, m.reason)).collect::<Vec<_>>().join(", ")
    )]
    MissingSources {
        registry: String,
        /// The list's own repository, where most sources are looked for.
        repository: String,
        total: usize,
        missing: Vec<MissingSource>,
    },

    #[error(
        "platform {platform} is given by more than one source: {}; a list should hold one image \
         per platform (allow duplicate platforms to keep them, or override the platform of the \
         wrong source)",
        sources.join(", ")
    )]
    DuplicatePlatform {
        platform: String,
        sources: Vec<String>,
    },

    #[error(
        "source {source_ref} names {repository} in registry {registry}, but the list goes to \
         {target_registry}: a list can only reference images in its own registry (copy the image \
         there first)"
    )]
    OtherRegistry {
        source_ref: String,
        repository: String,
        registry: String,
        target_registry: String,
    },

    #[error("source {source_ref} has no platform: {reason}; give it one with a platform override")]
    NoPlatform { source_ref: String, reason: String },

    #[error(
        "platform override for {source_ref}: {source_ref} is a manifest list; its children already \
         name their platforms (override a child by its digest instead)"
    )]
    OverrideOnList { source_ref: String },

    #[error("platform override for {source_ref}: {source_ref} is not one of the sources")]
    OverrideUnknownSource { source_ref: String },

    #[error(
        "Docker list format: {} is an OCI manifest ({media_type}), which a Docker manifest list \
         cannot hold; make an OCI index instead",
        source_ref
    )]
    NotDockerChild {
        source_ref: String,
        media_type: String,
    },

    #[error(
        "Docker list format: a Docker manifest list has no annotations; drop them or make an OCI \
         index"
    )]
    DockerAnnotations,

    #[error(
        "the list would be empty: every source was an attestation, and attestations are dropped"
    )]
    Empty,

    #[error("a manifest list needs at least one source")]
    NoSources,
}

#[derive(Debug, Clone)]
pub struct MissingSource {
    /// The source as the user typed it.
    pub source: String,
    pub reason: String,
}

/// `platform` as a table shows it, `os.version` included when set (Windows images differ by it).
pub fn platform_label(platform: &Platform) -> String {
    match &platform.os_version {
        Some(version) => format!("{platform} ({version})"),
        None => platform.to_string(),
    }
}
