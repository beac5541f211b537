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

# Copies the binary, its libraries and the CA bundle into $2, laid out as the image's /.
stage_rootfs() {
  local bin=$1 rootfs=$2 line lib
  mkdir -p "$rootfs"
  install -D -m 0755 "$bin" "$rootfs/ferry"
  strip --strip-all "$rootfs/ferry"

  # `ldd` names each library by the path the loader resolved (`libc.so.6 => /lib/…/libc.so.6`)
  # and the loader itself by the absolute path baked into the binary (`/lib64/ld-linux-…`);
  # both must exist at exactly those paths in the image. Symlinks are resolved so the image
  # holds regular files. For a static binary it prints "statically linked": nothing to copy.
  local libs
  libs=$(ldd "$bin" 2>&1) || die "ldd $bin failed: $libs"
  if grep -q 'not found' <<<"$libs"; then
    die "ldd $bin: a library is missing: $libs"
  fi
  while read -r line; do
    lib=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) { print $i; exit } }' <<<"$line")
    [[ -n $lib ]] || continue
    install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
  done <<<"$libs"

  local ca=/etc/ssl/certs/ca-certificates.crt
  [[ -f $ca ]] || die "$ca is missing (apt-get install ca-certificates)"
  install -D -m 0644 "$ca" "$rootfs$ca"

  # glibc's default host lookup order without this file puts DNS before /etc/hosts, which
  # docker writes into every container.
  printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  # Inline policies given as inputs are staged in files; the Action runs as root, and the
  # sticky bit keeps the usual /tmp semantics for anyone else.
  install -d -m 1777 "$rootfs/tmp"
}

if [[ -z $binary ]]; then
  # What a release ships: the size-tuned `dist` profile, statically linked.
  binary=$(bash "$root_dir/scripts/build-release.sh" --dist) || die "scripts/build-release.sh --dist failed"
fi
[[ -x $binary ]] || die "$binary is not an executable"

if [[ -n $stage_only ]]; then
  stage_rootfs "$binary" "$stage_only"
  exit 0
fi

context=$(mktemp -d "${TMPDIR:-/tmp}/ferry-action-image.XXXXXX")
trap 'rm -rf "$context"' EXIT
stage_rootfs "$binary" "$context/rootfs"
cp "$root_dir/action/Dockerfile" "$context/Dockerfile"

echo "image.sh: docker build -t $tag" >&2
previous=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
docker build --quiet -t "$tag" "$context" >&2
# The image this tag named before would linger untagged after every rebuild (each test run
# makes one); it is ours, so it goes, unless a container still uses it.
if [[ -n $previous && $previous != "$(docker image inspect --format '{{.Id}}' "$tag")" ]]; then
  docker rmi "$previous" >/dev/null 2>&1 || true
fi
size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "image.sh: $tag is $size bytes ($((size / 1000000)) MB; budget $((max_bytes / 1000000)) MB)" >&2
((size <= max_bytes)) || die "$tag is $size bytes, over the $max_bytes-byte budget"
echo "$tag"
