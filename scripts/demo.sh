#!/usr/bin/env bash
# The main job on an embedded default: start two local registries, build a sample multi-arch
# image in the first, and `ferry copy` it to the second — cold, then warm.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in docker-registry; do
  command -v "$tool" >/dev/null || { echo "demo: needs $tool (apt-get install docker-registry)" >&2; exit 1; }
done

echo "demo: building ferry and the test rig (release)…"
cargo build --release --quiet -p ferry-action -p ferry-testkit
bin=target/release

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start_registry() { # $1: name; runs in this shell so the trap knows the pid
  "$bin/ferry-testkit" registry >"$work/$1.out" 2>"$work/$1.err" &
  pids+=($!)
}

wait_registry() { # $1: name; prints the host once it answers
  for _ in $(seq 100); do
    host=$(sed -n 's/^host=//p' "$work/$1.out")
    [ -n "$host" ] && { echo "$host"; return; }
    sleep 0.1
  done
  echo "demo: registry $1 did not start:" >&2; cat "$work/$1.err" >&2; exit 1
}

start_registry source
start_registry destination
src=$(wait_registry source)
dst=$(wait_registry destination)
echo "demo: source registry at $src, destination registry at $dst"

echo "demo: seeding $src/demo/app:1.0 (linux/amd64, linux/arm64, linux/arm/v7; 3 layers of 4 MiB)…"
"$bin/ferry-testkit" seed --registry "$src" --repository demo/app --tag 1.0 \
  --platforms linux/amd64,linux/arm64,linux/arm/v7 --layers 3 --layer-mib 4 --shared-layers 1 >/dev/null

echo; echo "\$ ferry copy $src/demo/app:1.0 $dst/mirror/app:1.0 --tag stable"
"$bin/ferry" copy "$src/demo/app:1.0" "$dst/mirror/app:1.0" --tag stable
echo; echo "\$ ferry copy $src/demo/app:1.0 $dst/mirror/app:1.0 --tag stable   # again: nothing to do"
"$bin/ferry" copy "$src/demo/app:1.0" "$dst/mirror/app:1.0" --tag stable
