#!/usr/bin/env bash
# Benchmark: `ferry mirror -f` (an EcrImageMirror with a tag policy, a state file) cold and warm,
# side by side with `skopeo sync` of the same tags, between two local docker-registry instances.
# A benchmark, not a test: it prints the requests each run cost (from the registries' access
# logs), how many were manifest GETs at the source, requests per tag, wall time and peak RSS.
#
# The source holds TAGS versions (1.0.0 … 1.<TAGS-1>.0, single-platform, small) plus `latest`;
# the mirror keeps the newest KEEP by semver plus `latest`. skopeo sync gets the same tags listed
# explicitly (it has no tag policy) and is run the same way twice.
#
# Knobs (env): TAGS=20 KEEP=10 REFERRERS=false KEEP_WORK=… (KEEP=1 of lib.sh keeps the work dir)
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TAGS=${TAGS:-20}
KEEP_TAGS=${KEEP_TAGS:-10}
REFERRERS=${REFERRERS:-false}

bench_init mirror
bench_build
bench_start_registry src
bench_start_registry dst
SRC=${REG_HOST[src]}
DST=${REG_HOST[dst]}

bench_log "seeding $SRC/bench/app with $TAGS versions and latest…"
for i in $(seq 0 $((TAGS - 1))) latest; do
  tag=$([[ $i == latest ]] && echo latest || echo "1.$i.0")
  seed=$([[ $i == latest ]] && echo 999 || echo $((i + 1)))
  "$BIN/ferry-testkit" seed --registry "$SRC" --repository bench/app --tag "$tag" --single \
    --layers 1 --layer-bytes 65536 --seed "$seed" >/dev/null 2>"$BENCH_WORK/seed.err" \
    || { cat "$BENCH_WORK/seed.err" >&2; bench_die "seeding failed"; }
done
chosen=$((KEEP_TAGS + 1))

cat >"$BENCH_WORK/mirror.yaml" <<EOF
apiVersion: ferry.dev/v1alpha1
kind: EcrImageMirror
metadata: {name: app}
spec:
  source:
    image: $SRC/bench/app
    tags: [latest]
    tagPolicy: {semver: {range: ">=1.0.0"}, keep: $KEEP_TAGS}
    referrers: $REFERRERS
  destination: {registry: "$DST", repository: ferry/app}
EOF
{
  echo "$SRC:"
  echo "  images:"
  echo "    bench/app:"
  echo "      - latest"
  for i in $(seq $((TAGS - KEEP_TAGS)) $((TAGS - 1))); do echo "      - 1.$i.0"; done
  echo "  tls-verify: false"
} >"$BENCH_WORK/skopeo-sync.yaml"

manifest_gets() { # access-log lines of manifest GETs at the source so far
  grep -cE '"GET /v2/[^ ]+/manifests/' "${REG_DIR[src]}/registry.log" || true
}

declare -A ROW=()
run() { # $1 tool, $2 cold|warm
  local gets0 gets1
  gets0=$(manifest_gets)
  case $1 in
    ferry)
      bench_measure "ferry $2" -- "$BIN/ferry" mirror -f "$BENCH_WORK/mirror.yaml" \
        --state "$BENCH_WORK/state.json"
      ;;
    skopeo)
      bench_measure "skopeo $2" -- skopeo sync --src yaml --dest docker --dest-tls-verify=false \
        "$BENCH_WORK/skopeo-sync.yaml" "$DST/skopeo"
      ;;
  esac
  gets1=$(manifest_gets)
  local per_tag
  per_tag=$(awk -v r="$M_REQ" -v t="$chosen" 'BEGIN { printf "%.1f", r / t }')
  ROW[$1 $2]=$(printf '%-14s %8s %9s %14s %10s %9s %10s' "$1 $2" "$M_WALL" "$M_REQ" \
    "${M_REQ_BY// /,}" "$((gets1 - gets0))" "$per_tag" "$(awk -v k="$M_RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')")
}

for phase in cold warm; do
  run ferry "$phase"
  run skopeo "$phase"
done

echo
echo "mirror of $chosen tags ($KEEP_TAGS by semver + latest, of $((TAGS + 1)) listed), referrers=$REFERRERS"
printf '%-14s %8s %9s %14s %10s %9s %10s\n' run "wall s" requests "by registry" "src GETs" "req/tag" "RSS MiB"
for key in "ferry cold" "skopeo cold" "ferry warm" "skopeo warm"; do echo "${ROW[$key]}"; done
