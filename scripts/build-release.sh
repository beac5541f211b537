#!/usr/bin/env bash
# Builds the `ferry` binary as people run it — glibc linked in, a static PIE — and prints its
# path on stdout. Cargo's progress goes to stderr. Nothing is left set in the caller's shell.
#
#   bash scripts/build-release.sh          # release profile: ferry, ferry-operator and
#                                          # ferry-testkit (one build shared by the demo, the
#                                          # benchmarks and the image tests); prints
#                                          # …/<triple>/release/ferry (ferry-operator beside it)
#   bash scripts/build-release.sh --dist   # what a release ships: ferry and ferry-operator,
#                                          # profile `dist` (fat LTO, one codegen unit,
#                                          # stripped; several minutes more); prints
#                                          # …/<triple>/dist/ferry (ferry-operator beside it)
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
#
# Why ferry-testkit and ferry-operator in the default build: cargo unifies dependency features
# over the packages it builds at once, so `-p ferry-action` alone and `-p ferry-action -p
# ferry-testkit` are two different builds of ferry. Every caller asks for the same set, so
# there is one build, and both images are packed from it.
set -euo pipefail

root_dir=$(cd "$(dirname "$0")/.." && pwd)
profile=release
packages=(-p ferry-action -p ferry-testkit -p ferry-operator)

while (($#)); do
  case $1 in
    --dist) profile=dist; packages=(-p ferry-action -p ferry-operator); shift ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build-release.sh: unknown argument $1 (see --help)" >&2; exit 1 ;;
  esac
done

# Run from `cargo test`, a caller has these package variables; ring's build script tracks
# CARGO_MANIFEST_DIR, so passing them on would rebuild the AWS SDK each time this script runs
# from a test after a shell, or the other way round.
while IFS= read -r name; do
  unset "$name"
done < <(compgen -e | grep -E '^CARGO_(MANIFEST_|PKG_|BIN_EXE_|CRATE_NAME$|BIN_NAME$|PRIMARY_PACKAGE$|TARGET_TMPDIR$|RUSTC_CURRENT_DIR$)')

cargo=${CARGO:-cargo}
triple=$(${RUSTC:-rustc} -vV | sed -n 's/^host: //p')
if [[ -z $triple ]]; then
  echo "build-release.sh: cannot tell the host's target triple (rustc -vV)" >&2
  exit 1
fi
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static"

echo "build-release.sh: RUSTFLAGS='$RUSTFLAGS' cargo build --profile $profile --target $triple ${packages[*]}" >&2
"$cargo" build --manifest-path "$root_dir/Cargo.toml" --locked --profile "$profile" \
  --target "$triple" "${packages[@]}" >&2

target_dir=$("$cargo" metadata --no-deps --format-version 1 --manifest-path "$root_dir/Cargo.toml" |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
binary=$target_dir/$triple/$profile/ferry
if [[ ! -x $binary ]]; then
  echo "build-release.sh: cargo finished but $binary is missing" >&2
  exit 1
fi
echo "$binary"
