//! Docker config files (`config.json`, the legacy `.dockercfg`) as read from a Kubernetes
//! Secret: credential helpers refused, so nothing is ever run.
#![no_main]

use ferry_registry::auth::docker_config::normalize_registry;
use ferry_registry::auth::{DockerConfig, HelperPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = DockerConfig::from_slice(data, "fuzz", HelperPolicy::Refuse);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = normalize_registry(text);
    }
});
