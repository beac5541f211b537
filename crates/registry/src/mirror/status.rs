//! The status of an `EcrImageMirror`: what the last sync did with each tag and manifest list.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the last syncs found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EcrImageMirrorStatus {
    /// The destination repository's URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_uri: Option<String>,
    /// When the last sync finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<String>,
    /// One entry per tag copied or chosen.
    #[serde(default)]
    pub tags: Vec<TagStatus>,
    /// One entry per manifest list of the spec.
    #[serde(default)]
    pub manifest_lists: Vec<TagStatus>,
    /// The `metadata.generation` of the spec the last sync worked from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the repository and its settings were last compared with the spec (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_checked_at: Option<String>,
    /// A fingerprint of the destination spec of that comparison: a changed destination is
    /// compared again at the next sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_settings: Option<String>,
}

/// What happened to one tag (or manifest list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagStatus {
    /// The tag.
    pub tag: String,
    /// The digest the tag had at the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_digest: Option<String>,
    /// The digest pushed to the destination (differs from the source's when platforms were
    /// filtered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The platforms copied (`linux/amd64`), empty for a single-platform image.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Where the tag stands.
    pub state: TagState,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the tag was last copied (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<String>,
    /// For a manifest list: the tags it was built from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

impl TagStatus {
    /// A tag nothing has happened to yet.
    pub fn new(tag: &str) -> TagStatus {
        TagStatus {
            tag: tag.to_string(),
            source_digest: None,
            digest: None,
            platforms: Vec::new(),
            state: TagState::Pending,
            message: None,
            synced_at: None,
            sources: Vec::new(),
        }
    }
}

/// Where a tag stands after a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TagState {
    /// The destination has the tag at the source's content.
    Synced,
    /// The last attempt failed; `message` says why and the next sync retries.
    Failed,
    /// Chosen but not copied yet.
    Pending,
    /// Deliberately not copied (for instance a missing source tag of a manifest list);
    /// `message` says why.
    Skipped,
}

impl TagState {
    /// Every state, in the order tables and metrics list them.
    pub const ALL: [TagState; 4] = [
        TagState::Synced,
        TagState::Failed,
        TagState::Pending,
        TagState::Skipped,
    ];

    /// The lower-case name progress lines and metric labels use.
    pub fn as_str(self) -> &'static str {
        match self {
            TagState::Synced => "synced",
            TagState::Failed => "failed",
            TagState::Pending => "pending",
            TagState::Skipped => "skipped",
        }
    }
}

impl EcrImageMirrorStatus {
    /// The last status recorded for `tag`.
    pub fn tag(&self, tag: &str) -> Option<&TagStatus> {
        self.tags.iter().find(|t| t.tag == tag)
    }

    /// The last status recorded for the manifest list tagged `tag`.
    pub fn manifest_list(&self, tag: &str) -> Option<&TagStatus> {
        self.manifest_lists.iter().find(|t| t.tag == tag)
    }

    /// Records `status`, replacing the entry for the same tag.
    pub fn set_tag(&mut self, status: TagStatus) {
        upsert(&mut self.tags, status);
    }

    /// Records `status` for a manifest list, replacing the entry for the same tag.
    pub fn set_manifest_list(&mut self, status: TagStatus) {
        upsert(&mut self.manifest_lists, status);
    }
}

fn upsert(entries: &mut Vec<TagStatus>, status: TagStatus) {
    match entries.iter_mut().find(|t| t.tag == status.tag) {
        Some(entry) => *entry = status,
        None => entries.push(status),
    }
}
