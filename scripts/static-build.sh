# How the `ferry` binaries people run are built: glibc linked in, as a static PIE. Sourced by
# action/image.sh (the Action's image) and bench/lib.sh (the benchmarks), so both measure and
# ship the same thing.
#
#   . scripts/static-build.sh
#   cargo build --release --target "$FERRY_TARGET" -p ferry-action   # → target/$FERRY_TARGET/release/ferry
#
# Why static: a warm push is a few milliseconds, and loading and relocating libc, libm and
# libgcc_s was ~0.6 ms of it (measured with `perf stat`). A static PIE keeps address-space
# randomisation. glibc ≥ 2.34 has its "files" and "dns" host lookups built in, so name
# resolution needs no NSS modules at run time (the Action's image holds none).
#
# Why the explicit --target: with it, RUSTFLAGS apply to the target's crates only, not to the
# build scripts and proc-macros cargo builds for the host, which cannot be linked statically.
# The output goes to target/<triple>/, apart from the dynamic builds of `cargo build` and
# `cargo test`, so neither rebuilds the other.

FERRY_TARGET=$(${RUSTC:-rustc} -vV | sed -n 's/^host: //p')
if [[ -z $FERRY_TARGET ]]; then
  echo "static-build.sh: cannot tell the host's target triple (rustc -vV)" >&2
  return 1
fi
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static"
