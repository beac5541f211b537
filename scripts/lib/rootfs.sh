# Stages a distroless-style root filesystem for one of our `FROM scratch` images (the Action's,
# action/image.sh; the operator's, operator/image.sh): the binary, exactly the shared libraries
# it links (none for the static release build), the CA bundle, /etc/nsswitch.conf and /tmp.
# Source it; it defines ferry_stage_rootfs and expects a `die` function.

# ferry_stage_rootfs BINARY NAME ROOTFS: BINARY installed (stripped) as ROOTFS/NAME.
ferry_stage_rootfs() {
  local bin=$1 name=$2 rootfs=$3 line lib
  mkdir -p "$rootfs"
  install -D -m 0755 "$bin" "$rootfs/$name"
  strip --strip-all "$rootfs/$name"

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
  # docker and Kubernetes write into every container.
  printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  # The sticky bit keeps the usual /tmp semantics for whichever user the image runs as.
  install -d -m 1777 "$rootfs/tmp"
}

# ferry_docker_build TAG CONTEXT MAX_BYTES: builds, drops the image TAG named before (ours, and
# left untagged by every rebuild) unless a container uses it, prints the size, fails above
# MAX_BYTES.
ferry_docker_build() {
  local tag=$1 context=$2 max_bytes=$3 previous size
  echo "image: docker build -t $tag" >&2
  previous=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  docker build --quiet -t "$tag" "$context" >&2
  if [[ -n $previous && $previous != "$(docker image inspect --format '{{.Id}}' "$tag")" ]]; then
    docker rmi "$previous" >/dev/null 2>&1 || true
  fi
  size=$(docker image inspect --format '{{.Size}}' "$tag")
  echo "image: $tag is $size bytes ($((size / 1000000)) MB; budget $((max_bytes / 1000000)) MB)" >&2
  ((size <= max_bytes)) || die "$tag is $size bytes, over the $max_bytes-byte budget"
}
