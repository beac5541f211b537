#!/usr/bin/env bash
# Builds ferry-operator's image: `FROM scratch` (operator/Dockerfile) with the statically linked,
# stripped `ferry-operator` and CA certificates, staged as the Action's image is
# (scripts/lib/rootfs.sh).
#
#   operator/image.sh                       # build ferry-operator:dev from the size-tuned
#                                           # `dist` build (scripts/build-release.sh --dist)
#   operator/image.sh --tag IMAGE[:TAG]     # build under another name (a release)
#   operator/image.sh --binary PATH         # package this ferry-operator binary instead (the
#                                           # tests pack the shared release build this way)
#
# Prints the image's name; fails above the 25 MB budget.
set -euo pipefail

root_dir=$(cd "$(dirname "$0")/.." && pwd)
tag=ferry-operator:dev
binary=
max_bytes=25000000

die() {
  echo "operator/image.sh: $*" >&2
  exit 1
}

while (($#)); do
  case $1 in
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

# shellcheck source=scripts/lib/rootfs.sh
. "$root_dir/scripts/lib/rootfs.sh"

if [[ -z $binary ]]; then
  # build-release.sh prints ferry's path; its --dist build makes ferry-operator beside it.
  ferry=$(bash "$root_dir/scripts/build-release.sh" --dist) || die "scripts/build-release.sh --dist failed"
  binary=$(dirname "$ferry")/ferry-operator
fi
[[ -x $binary ]] || die "$binary is not an executable"

context=$(mktemp -d "${TMPDIR:-/tmp}/ferry-operator-image.XXXXXX")
trap 'rm -rf "$context"' EXIT
ferry_stage_rootfs "$binary" ferry-operator "$context/rootfs"
cp "$root_dir/operator/Dockerfile" "$context/Dockerfile"

ferry_docker_build "$tag" "$context" "$max_bytes"
echo "$tag"
