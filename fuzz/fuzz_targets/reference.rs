//! `Reference::parse` (image references on the command line and in mirror documents), and
//! the accessors and rewrites a copy applies to a parsed one.
#![no_main]

use ferry_registry::Reference;
use ferry_registry::digest::Digest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Digest::parse(text);
    let _ = ferry_registry::reference::named_registry(text);
    let Ok(reference) = Reference::parse(text) else {
        return;
    };
    let _ = (reference.registry(), reference.api_host(), reference.host());
    let _ = (reference.repository(), reference.name(), reference.tag());
    let _ = (
        reference.digest(),
        reference.target(),
        reference.is_loopback(),
    );
    let _ = reference.repository_url_path();
    let _ = reference.with_tag("latest");
    let _ = reference.with_repository("library/x");
    // What it prints must parse again to the same reference.
    let shown = reference.to_string();
    let again = Reference::parse(&shown)
        .unwrap_or_else(|e| panic!("{text:?} parsed, its display {shown:?} did not: {e}"));
    assert_eq!(again.to_string(), shown, "from {text:?}");
});
