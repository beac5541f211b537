//! `ferry-operator`: the Kubernetes shell around `ferry_registry::mirror`. The mirror logic
//! (spec checks, tag choice, copying, ECR repositories) is the shared crate's; this crate
//! watches `EcrImageMirror` objects, reads their Secrets, and reports status, events and
//! metrics.

pub mod cli;
pub mod conditions;
pub mod context;
pub mod controller;
pub mod crd;
pub mod credentials;
pub mod engine;
pub mod error;
pub mod leader;
pub mod metrics;
pub mod run;
pub mod server;
pub mod shutdown;
pub mod telemetry;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
