//! Integration tests of the rig against the real docker-registry, skopeo and moto.

mod cli;
mod ecr;
mod images;
mod kube_api;
mod proxy;
mod registries;
mod token;
mod wan;

use ferry_testkit::{ImageFormat, ImageSpec};

/// Two platforms, small layers, one shared: enough to exercise every code path quickly.
fn small_spec(seed: u64) -> ImageSpec {
    ImageSpec {
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        layers: 2,
        layer_size: 16 * 1024,
        shared_layers: 1,
        format: ImageFormat::Oci,
        seed,
    }
}
