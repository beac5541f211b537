//! Test rig for ecr-ferry: real `docker-registry` processes (plain or TLS with a test CA), a
//! distribution token issuer, a fault-injecting reverse proxy, a WAN-emulating TCP proxy,
//! reproducible image builders, skopeo helpers, a local stand-in for Amazon ECR (moto for the
//! API, a registry for the data plane) and an in-process Kubernetes API stand-in.
//!
//! Deliberately independent of `ferry-registry`: this is the yardstick ferry is measured
//! against, so it speaks the distribution protocol with its own small code.

pub mod cli;
pub mod ecr;
pub mod engine_export;
pub mod image;
pub mod kube;
mod layout;
pub mod local_image;
pub mod moto;
pub mod proxy;
pub mod push;
pub mod registry;
pub mod save_archive;
mod server;
pub mod skopeo;
pub mod tls;
pub mod token;
mod util;
pub mod wan;
pub mod wan_registry;

pub use ecr::EcrStandIn;
pub use engine_export::{ContainerdEngine, write_containerd_export};
pub use image::{
    Artifact, Blob, BuiltImage, ImageFormat, ImageSpec, SingleImage, build, build_artifact,
    build_single,
};
pub use kube::{KubeApi, KubeApiOptions, KubeRequest};
pub use local_image::LocalImage;
pub use moto::MotoServer;
pub use proxy::{Fault, FaultAction, FaultProxy, Recorded};
pub use registry::{RegistryAuth, RegistryOptions, TestRegistry, TlsOptions};
pub use skopeo::sha256_digest;
pub use token::{TokenConfig, TokenIssuer, TokenRequest};
pub use util::gunzipped_sha256_digest;
pub use wan::{WanConfig, WanProxy, WanStats};
pub use wan_registry::WanRegistry;
