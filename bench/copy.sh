#!/usr/bin/env bash
# Benchmark: `ferry copy` vs `skopeo copy --all` of a multi-arch image between two local
# docker-registry instances (loopback, plain HTTP). A benchmark, not a test: targets are printed
# as information and never fail the script; only a failed copy or a digest mismatch does.
#
# For ROUNDS rounds (tool order alternates per round), each tool copies the seeded image
#   cold: to a destination repository that does not exist yet (fresh name per round and tool),
#   warm: to that same destination again (nothing to transfer).
# Each run is timed by bench/timer.py (wall, CPU = user + sys, peak RSS) and the requests that
# reached both registries during the run are counted from their access logs; see bench/lib.sh.
# Before round 1 each tool does one unmeasured copy (PRIME=0 skips it) so the binaries, the page
# cache and the destination's blob store are warm for everybody (the first measured cold copy
# would otherwise pay for it alone). The destination registry stores blobs once per registry
# (linked per repository), so after priming a "cold" copy still uploads and the registry still
# hashes every byte, but it no longer writes a new blob file into its store. skopeo gets a fresh blob-info cache per round so that its cold copies
# upload instead of mounting from its earlier destinations.
#
# Knobs (env): ROUNDS=3 LAYERS=5 LAYER_MIB=20 PLATFORMS=linux/amd64,linux/arm64,linux/arm/v7
#              SEED=1 (image contents) PRIME=1 KEEP=1 (keep the work dir with logs and per-run outputs)
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-3}
LAYERS=${LAYERS:-5}
LAYER_MIB=${LAYER_MIB:-20}
PLATFORMS=${PLATFORMS:-linux/amd64,linux/arm64,linux/arm/v7}
SEED=${SEED:-1}
PRIME=${PRIME:-1}
TAG=v1

bench_init copy
bench_build
bench_start_registry src
bench_start_registry dst
SRC=${REG_HOST[src]}
DST=${REG_HOST[dst]}
nplat=$(tr ',' '\n' <<<"$PLATFORMS" | grep -c .)

bench_log "source $SRC, destination $DST, work dir $BENCH_WORK"
bench_log "seeding $SRC/bench/source:$TAG ($nplat platforms × $LAYERS layers × $LAYER_MIB MiB, random)…"
SRC_DIGEST=$("$BIN/ferry-testkit" seed --registry "$SRC" --repository bench/source --tag "$TAG" \
  --platforms "$PLATFORMS" --layers "$LAYERS" --layer-mib "$LAYER_MIB" --seed "$SEED" \
  2>"$BENCH_WORK/seed.err") || { cat "$BENCH_WORK/seed.err" >&2; bench_die "seeding failed"; }
SRC_REF=$SRC/bench/source:$TAG
bench_log "source index $SRC_DIGEST"

# One copy with each tool; $1 = ferry|skopeo, $2 = destination repository.
copy_cmd() {
  case $1 in
    ferry) echo "$BIN/ferry copy --json $SRC_REF $DST/$2:$TAG" ;;
    skopeo) echo "skopeo copy --all --src-tls-verify=false --dest-tls-verify=false docker://$SRC_REF docker://$DST/$2:$TAG" ;;
  esac
}

declare -A WALL=() CPU=() RSS=() REQ=()
FERRY_COLD_JSON=

run() { # $1 tool, $2 cold|warm, $3 round, $4 destination repository
  local tool=$1 kind=$2 round=$3 repo=$4 cmd
  cmd=$(copy_cmd "$tool" "$repo")
  # shellcheck disable=SC2086 # the command is built from space-free parts
  bench_measure "r$round $tool $kind" -- $cmd
  WALL[$tool.$kind]+="$M_WALL "
  CPU[$tool.$kind]+="$M_CPU "
  RSS[$tool.$kind]+="$M_RSS_KB "
  REQ[$tool.$kind]+="$M_REQ "
  printf '%s: round %s  %-6s %-4s  wall %6.3f s  cpu %5.2f s  rss %6.1f MiB  requests %4d (%s)\n' \
    "$BENCH_NAME" "$round" "$tool" "$kind" "$M_WALL" "$M_CPU" \
    "$(awk -v k="$M_RSS_KB" 'BEGIN { print k / 1024 }')" "$M_REQ" "$M_REQ_BY" >&2
  if [[ $tool == ferry && $kind == cold && -z $FERRY_COLD_JSON ]]; then
    FERRY_COLD_JSON=$M_OUT
  fi
}

if [[ $PRIME == 1 ]]; then
  bench_log "priming (unmeasured): one copy with each tool"
  bench_new_skopeo_cache prime
  for tool in ferry skopeo; do
    # shellcheck disable=SC2046
    bench_measure "prime $tool" -- $(copy_cmd "$tool" "bench/prime-$tool")
  done
fi

for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then order=(ferry skopeo); else order=(skopeo ferry); fi
  bench_new_skopeo_cache "r$r"
  for tool in "${order[@]}"; do run "$tool" cold "$r" "bench/$tool-r$r"; done
  for tool in "${order[@]}"; do run "$tool" warm "$r" "bench/$tool-r$r"; done
done

# Destination digests: every cold destination of both tools must hold the source's index, byte
# for byte (the index names its children by digest, so equal index digests mean equal trees).
mismatch=0
for ((r = 1; r <= ROUNDS; r++)); do
  for tool in ferry skopeo; do
    got=sha256:$(skopeo inspect --raw --tls-verify=false "docker://$DST/bench/$tool-r$r:$TAG" \
      | sha256sum | cut -d' ' -f1)
    if [[ $got != "$SRC_DIGEST" ]]; then
      echo "$BENCH_NAME: DIGEST MISMATCH: $DST/bench/$tool-r$r:$TAG is $got, source is $SRC_DIGEST" >&2
      mismatch=1
    fi
  done
done

med() { bench_median ${1}; } # word-splits the space-separated samples

echo
echo "ferry copy vs skopeo copy --all: $nplat platforms × $LAYERS layers × $LAYER_MIB MiB," \
  "loopback docker-registry, medians of $ROUNDS rounds"
printf '%-12s %8s %8s %13s %9s\n' "" "wall s" "CPU s" "peak RSS MiB" "requests"
for row in ferry.cold skopeo.cold ferry.warm skopeo.warm; do
  printf '%-12s %8.3f %8.2f %13.1f %9s\n' "${row/./ }" \
    "$(med "${WALL[$row]}")" "$(med "${CPU[$row]}")" \
    "$(awk -v k="$(med "${RSS[$row]}")" 'BEGIN { print k / 1024 }')" "$(med "${REQ[$row]}")"
done

cold_wall=$(bench_ratio "$(med "${WALL[ferry.cold]}")" "$(med "${WALL[skopeo.cold]}")")
cold_cpu=$(bench_ratio "$(med "${CPU[ferry.cold]}")" "$(med "${CPU[skopeo.cold]}")")
warm_wall=$(bench_ratio "$(med "${WALL[ferry.warm]}")" "$(med "${WALL[skopeo.warm]}")")
warm_req=$(bench_ratio "$(med "${REQ[ferry.warm]}")" "$(med "${REQ[skopeo.warm]}")")
per_tag=$(med "${REQ[ferry.warm]}") # one tag per copy
echo
echo "ratios ferry/skopeo (targets are information only):"
printf '  cold wall      %5s×   target ≤ 1.0× (aim 0.8×)  %s\n' "$cold_wall" "$(bench_check "$cold_wall" 1.0)"
printf '  cold CPU       %5s×   target ≤ 0.5×             %s\n' "$cold_cpu" "$(bench_check "$cold_cpu" 0.5)"
printf '  warm wall      %5s×\n' "$warm_wall"
printf '  warm requests  %5s×\n' "$warm_req"
printf 'ferry warm requests per tag: %s   target ≤ 2  %s\n' "$per_tag" "$(bench_check "$per_tag" 2)"

if [[ -n $FERRY_COLD_JSON ]] && command -v jq >/dev/null; then
  jq -r '.totals | "ferry cold round 1 (--json totals): \(.requests.get) GET, \(.requests.head) HEAD, \(.requests.post) POST, \(.requests.put) PUT, \(.requests.patch) PATCH, \(.requests.delete) DELETE; \(.blobs_uploaded) blobs uploaded, \(.blobs_mounted) mounted, \(.blobs_skipped) skipped, \(.manifests_pushed) manifests; \(.elapsed_ms) ms"' \
    "$FERRY_COLD_JSON" || true
fi

echo
if ((mismatch)); then
  bench_die "destination digests differ (see above)"
fi
echo "digests match ($SRC_DIGEST in all $((2 * ROUNDS)) destinations)"
