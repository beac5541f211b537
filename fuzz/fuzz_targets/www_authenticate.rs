//! `WWW-Authenticate` header values as a registry (or anything in between) sends them.
#![no_main]

use ferry_registry::auth::challenge::parse_www_authenticate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A header value reaches the parser as text (http's to_str); lossy keeps odd bytes in play.
    let header = String::from_utf8_lossy(data);
    let _ = parse_www_authenticate(&header);
});
