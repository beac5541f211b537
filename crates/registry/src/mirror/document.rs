//! `EcrImageMirror` documents as written in YAML files (or `kubectl get -o yaml`), and reading
//! them out of a multi-document text.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::spec::EcrImageMirrorSpec;
use super::validate::SpecError;

/// The `apiVersion` of this version of the spec.
pub const API_VERSION: &str = "ferry.dev/v1alpha1";
/// The `kind` of a mirror.
pub const KIND: &str = "EcrImageMirror";

/// A whole `EcrImageMirror` document. Fields beyond these (a `status`, server-set metadata in
/// the output of `kubectl get -o yaml`) are ignored; the spec itself refuses unknown fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EcrImageMirrorDocument {
    /// [`API_VERSION`].
    pub api_version: String,
    /// [`KIND`].
    pub kind: String,
    /// The mirror's name.
    pub metadata: ObjectMeta,
    /// What to mirror.
    pub spec: EcrImageMirrorSpec,
}

/// The part of Kubernetes' object metadata a mirror file uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// The mirror's name.
    pub name: String,
    /// Its namespace, where its Secrets are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Kubernetes labels, carried along.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Kubernetes annotations, carried along.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Only the fields that say what a document is, to skip other kinds before reading them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

/// The `EcrImageMirror` documents of a multi-document YAML `text`, each checked with
/// [`EcrImageMirrorSpec::validate`]. Documents of other kinds (another `apiVersion` or `kind`)
/// and empty ones are skipped. Errors name `origin`, the document's position (from 1) and the
/// field.
pub fn parse_documents(text: &str, origin: &str) -> Result<Vec<EcrImageMirrorDocument>, SpecError> {
    let error = |index: usize, reason: String| SpecError::Document {
        origin: origin.to_string(),
        index,
        reason,
    };
    // Two passes over the text: the first reads each document's kind; the second reads ours
    // straight from the text, so that errors carry the field's path and the line in the file
    // (reading from an already parsed value loses both).
    let kinds = serde_norway::Deserializer::from_str(text)
        .enumerate()
        .map(|(i, document)| {
            let value = serde_norway::Value::deserialize(document)
                .map_err(|e| error(i + 1, format!("not YAML: {e}")))?;
            if value.is_null() {
                return Ok(false);
            }
            let meta: TypeMeta = serde_norway::from_value(value)
                .map_err(|e| error(i + 1, format!("not a Kubernetes-style object: {e}")))?;
            Ok(meta.api_version.as_deref() == Some(API_VERSION)
                && meta.kind.as_deref() == Some(KIND))
        })
        .collect::<Result<Vec<bool>, SpecError>>()?;
    let mut documents = Vec::new();
    let texts = serde_norway::Deserializer::from_str(text);
    for ((i, document), ours) in texts.enumerate().zip(kinds) {
        if !ours {
            continue;
        }
        let index = i + 1;
        let mirror = EcrImageMirrorDocument::deserialize(document)
            .map_err(|e| error(index, e.to_string()))?;
        if mirror.metadata.name.is_empty() {
            return Err(error(index, "metadata.name: is empty".into()));
        }
        mirror
            .spec
            .validate()
            .map_err(|e| error(index, e.to_string()))?;
        documents.push(mirror);
    }
    Ok(documents)
}
