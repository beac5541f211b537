#!/usr/bin/env bash
# Builds the GitHub Action's image: a distroless-style root filesystem assembled from files
# (the `ferry` binary built for size, statically linked and stripped —
# `scripts/build-release.sh --dist`; CA certificates) on `FROM scratch` (action/Dockerfile).
# A dynamically linked binary given with --binary gets exactly the shared libraries it links,
# at the paths the loader looks for them.
#
#   action/image.sh                       # build ferry-action:dev
#   action/image.sh --tag IMAGE[:TAG]     # build under another name (a release: see README)
#   action/image.sh --binary PATH         # package this binary instead of building one
#   action/image.sh --stage DIR           # only stage the root filesystem into DIR (no docker;
#                                         # action/Dockerfile.source uses this)
#
# Why glibc and not musl: the toolchain here has only the glibc target, and glibc ≥ 2.34 links
# statically with its host lookups built in. Prints the image's size and fails above the budget.
set -euo pipefail

root_dir=$(cd "$(dirname "$0")/.." && pwd)
tag=ferry-action:dev
binary=
stage_only=
max_bytes=25000000

die() {
  echo "image.sh: $*" >&2
  exit 1
}

while (($#)); do
  case $1 in
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --stage) stage_only=${2:?--stage needs a directory}; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

# shellcheck source=scripts/lib/rootfs.sh
. "$root_dir/scripts/lib/rootfs.sh"

if [[ -z $binary ]]; then
  # What a release ships: the size-tuned `dist` profile, statically linked.
  binary=$(bash "$root_dir/scripts/build-release.sh" --dist) || die "scripts/build-release.sh --dist failed"
fi
[[ -x $binary ]] || die "$binary is not an executable"

if [[ -n $stage_only ]]; then
  ferry_stage_rootfs "$binary" ferry "$stage_only"
  exit 0
fi

context=$(mktemp -d "${TMPDIR:-/tmp}/ferry-action-image.XXXXXX")
trap 'rm -rf "$context"' EXIT
ferry_stage_rootfs "$binary" ferry "$context/rootfs"
cp "$root_dir/action/Dockerfile" "$context/Dockerfile"

ferry_docker_build "$tag" "$context" "$max_bytes"
echo "$tag"
