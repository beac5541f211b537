//! Link options for the `ferry` binary.

fn main() {
    // Pack the binary's ~50,000 relative relocations (DT_RELR, glibc ≥ 2.36): the dynamic
    // loader then reads a few KiB instead of a 1.2 MB table at every start, which a warm push
    // (a few ms in all) notices. Needs glibc ≥ 2.36 where the binary runs (bookworm has 2.36;
    // the Action image carries the libraries it was built with).
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    // Without this, cargo reruns the script, and so rebuilds the binary, whenever any file of
    // the package changes — an edit to a test file meant a new release build of `ferry`.
    println!("cargo:rerun-if-changed=build.rs");
}
