//! `EcrImageMirror`: a document saying which images of a source repository to keep copied into
//! ECR, and [`sync`], one pass of it — the whole mirror logic, shared by `ferry mirror -f` and
//! the operator's reconciler. Read [`sync`] top-down for the data path. The rest needs no
//! network: the [`spec`] and its checks ([`validate`]), the [`status`] a sync reports, the
//! [`policy`] that chooses tags from a source's tag list (Flux `ImagePolicy` semantics,
//! docs/design/tag-policy.md), where a mirror writes ([`target`]), whose credentials it uses
//! ([`credentials`]), and [`parse_documents`] for YAML files.
//!
//! ```yaml
//! apiVersion: ferry.dev/v1alpha1
//! kind: EcrImageMirror
//! metadata: {name: nginx}
//! spec:
//!   source:
//!     image: docker.io/library/nginx
//!     tagPolicy: {semver: {range: ">=1.26.0 <2.0.0"}, keep: 3}
//!   destination: {repository: mirror/nginx}
//! ```

pub mod credentials;
pub mod document;
pub mod policy;
pub mod spec;
pub mod status;
pub mod sync;
pub mod target;
pub mod time;
pub mod validate;

#[cfg(test)]
mod tests;

pub use credentials::{WithoutSecret, tenant_client};
pub use document::{API_VERSION, EcrImageMirrorDocument, KIND, ObjectMeta, parse_documents};
pub use policy::{PolicyError, TagPolicy};
pub use spec::{
    DestinationSpec, EcrImageMirrorSpec, EncryptionType, ManifestListSpec, OrderPolicy,
    RepositorySettingsSpec, SecretRef, SemverPolicy, SortOrder, SourceSpec, TagPolicySpec,
};
pub use status::{EcrImageMirrorStatus, TagState, TagStatus};
pub use sync::{SyncEngine, SyncOutcome, sync};
pub use target::Destination;
pub use validate::{DEFAULT_INTERVAL, MIN_INTERVAL, SpecError};
