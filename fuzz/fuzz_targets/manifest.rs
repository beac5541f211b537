//! `Manifest::from_raw` on a registry's response body, with each content type it may come
//! with, then what the copy reads off a manifest or index (and platform filtering).
#![no_main]

use bytes::Bytes;
use ferry_registry::manifest::{self, Manifest, Platform};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 6] = [
    None,
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json"),
    Some("application/json; charset=utf-8"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    if selector >= 0xF0 {
        // A platform string as given on the command line.
        if let Ok(text) = std::str::from_utf8(body) {
            let _ = Platform::parse(text);
        }
        return;
    }
    let Ok(parsed) = Manifest::from_raw(Bytes::copy_from_slice(body), content_type) else {
        return;
    };
    let _ = (parsed.digest(), parsed.media_type(), parsed.size());
    let _ = (parsed.config(), parsed.layers(), parsed.blobs());
    let _ = (parsed.subject(), parsed.artifact_type());
    for child in parsed.children() {
        let _ = manifest::descriptor_digest(child);
        let _ = Platform::of(child);
    }
    if parsed.is_index() {
        let amd64 = Platform::parse("linux/amd64").expect("a valid platform");
        let arm = Platform::parse("linux/arm/v7").expect("a valid platform");
        let _ = manifest::filter_index(&parsed, &[amd64, arm]);
    }
});
