#!/usr/bin/env bash
# What ferry is for, end to end, with no AWS account: a multi-arch release into Amazon ECR —
# the "seed" workflow — against a local stand-in for ECR (moto answering the ECR API, a real
# registry answering as `123456789012.dkr.ecr.us-east-1.amazonaws.com`).
#
#   1. two small images, linux/amd64 and linux/arm64, built `FROM scratch` in the Docker Engine
#      (without an Engine: written as OCI image layouts instead, and pushed from there);
#   2. `ferry push` each to demo/app (the repository is created) as 1.0-amd64 and 1.0-arm64;
#   3. `ferry manifest create` the multi-arch list demo/app:1.0 over them, `ferry manifest
#      inspect` it;
#   4. `ferry copy` the list to a second, plain local registry — and again: nothing to do.
#
# Needs: Rust, docker-registry (apt), moto (PyPI `moto[server]`); a Docker Engine if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
# moto from the venv `bash scripts/test.sh` makes where pip may not install system-wide.
. scripts/lib/prerequisites.sh
ferry_use_venv

command -v docker-registry >/dev/null ||
  { echo "demo: needs docker-registry (apt-get install docker-registry)" >&2; exit 1; }
"${FERRY_TESTKIT_PYTHON:-python3}" -c 'import moto.server' 2>/dev/null ||
  { echo "demo: needs moto: python3 -m pip install 'moto[server]>=5,<6' (or run bash scripts/test.sh, which installs it)" >&2; exit 1; }

echo "demo: building ferry and the test rig (scripts/build-release.sh; the first build takes minutes)…"
ferry=$(bash scripts/build-release.sh)
bin=$(dirname "$ferry")

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")
pids=()
images=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  ((${#images[@]})) && docker rmi "${images[@]}" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# Prints a command as typed (with `ferry` for the binary's path), then runs it.
run() {
  echo
  echo "\$ ferry ${*:2}"
  "$@"
}

# Waits until FILE has a line starting with PREFIX, while process PID lives; $4 names it.
wait_for_line() { # FILE PREFIX PID NAME
  local _
  for _ in $(seq 1200); do
    grep -q "^$2" "$1" && return 0
    kill -0 "$3" 2>/dev/null || break
    sleep 0.1
  done
  echo "demo: $4 did not start:" >&2
  cat "${1%.out}.err" >&2
  exit 1
}

echo "demo: starting the ECR stand-in (ferry-testkit ecr)…"
"$bin/ferry-testkit" ecr >"$work/ecr.out" 2>"$work/ecr.err" &
pids+=($!)
wait_for_line "$work/ecr.out" READY=1 "${pids[-1]}" "the ECR stand-in"
# The stand-in prints the environment a `ferry` process needs: credentials, region, the ECR
# API's endpoint (AWS_ENDPOINT_URL_ECR) and where the registry calls go (FERRY_ECR_REGISTRY_URL).
while IFS='=' read -r key value; do
  [[ $key == READY ]] || export "$key=$value"
done <"$work/ecr.out"
ecr_host=$(sed -n 's/^ECR host: //p' "$work/ecr.err")
echo "demo: ECR registry $ecr_host: API (moto) at $AWS_ENDPOINT_URL_ECR, registry at $FERRY_ECR_REGISTRY_URL"

"$bin/ferry-testkit" registry >"$work/mirror.out" 2>"$work/mirror.err" &
pids+=($!)
wait_for_line "$work/mirror.out" host= "${pids[-1]}" "the second registry"
mirror=$(sed -n 's/^host=//p' "$work/mirror.out")
echo "demo: a second, plain registry at $mirror"

export FERRY_CACHE_DIR=$work/cache
if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  for arch in amd64 arm64; do
    image=ferry-demo/app:1.0-$arch
    ctx=$work/context-$arch
    mkdir -p "$ctx"
    echo "hello from linux/$arch" >"$ctx/hello.txt"
    printf 'FROM scratch\nCOPY hello.txt /\n' >"$ctx/Dockerfile"
    echo
    echo "demo: docker build --platform linux/$arch -t $image (FROM scratch, one file)"
    # The classic builder: what Engine 20.10 and later all have, with no base image to pull.
    # Its deprecation notice on stderr is noise here; it is shown if the build fails.
    if ! DOCKER_BUILDKIT=0 docker build --quiet --platform "linux/$arch" -t "$image" "$ctx" \
      >/dev/null 2>"$work/build.err"; then
      cat "$work/build.err" >&2
      exit 1
    fi
    images+=("$image")
    run "$ferry" push "$image" --repository demo/app --tag "1.0-$arch"
  done
else
  echo
  echo "demo: no Docker Engine answers (docker version): pushing from OCI image layouts instead"
  seed=1
  for arch in amd64 arm64; do
    "$bin/ferry-testkit" seed --oci-layout "$work/layout" --tag "1.0-$arch" --single \
      --platforms "linux/$arch" --layers 1 --layer-bytes 4096 --seed "$seed" >/dev/null 2>&1
    seed=$((seed + 1))
    run "$ferry" push "oci:$work/layout:1.0-$arch" --repository demo/app --tag "1.0-$arch"
  done
fi

run "$ferry" manifest create demo/app:1.0 1.0-amd64 1.0-arm64
run "$ferry" manifest inspect demo/app:1.0
run "$ferry" copy "$ecr_host/demo/app:1.0" "$mirror/demo/app:1.0"
echo
echo "demo: again — everything is there already:"
run "$ferry" copy "$ecr_host/demo/app:1.0" "$mirror/demo/app:1.0"
