#!/usr/bin/env bash
# Benchmark: ferry-operator keeping MIRRORS EcrImageMirrors × TAGS tags current, served by
# testkit's Kubernetes API stand-in and two local docker-registry instances; side by side with
# `ferry mirror -f` of the same documents (the same sync run once from a file, with a state file).
# A benchmark, not a test: it prints wall time, registry requests (from the registries' access
# logs), requests per tag, manifest GETs and peak RSS.
#
#   1. seed:   TAGS small single-platform tags in $SRC/bench/app; MIRRORS mirrors of them,
#              each to its own destination repository, applied with `kubectl apply
#              --server-side`.
#   2. peer:   `ferry mirror -f mirrors.yaml --state …` cold (copies everything), then warm (a
#              full resync with every tag current).
#   3. operator start: every mirror's first reconcile, with the destination already current and
#              no status yet; until all are Ready.
#   4. operator resync: `kubectl annotate eim --all ferry.dev/sync-requested-at=…` asks every
#              mirror for a sync at once; until every status answers it. This is the figure the
#              targets are about: ≤ 2 requests per tag with referrers off (≤ 3 with them), no
#              manifest GET, operator peak RSS ≤ 50 MB over the whole run.
#
# Knobs (env): MIRRORS=1000 TAGS=3 REFERRERS=false CONCURRENCY=4 (KEEP=1 of lib.sh keeps the
# work dir: logs, the operator's log, the documents)
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MIRRORS=${MIRRORS:-1000}
TAGS=${TAGS:-3}
REFERRERS=${REFERRERS:-false}
CONCURRENCY=${CONCURRENCY:-4}

bench_init operator
command -v kubectl >/dev/null || bench_die "needs kubectl on PATH"
bench_build
[[ -x $BIN/ferry-operator ]] || bench_die "no ferry-operator in $BIN"
bench_start_registry src
bench_start_registry dst
SRC=${REG_HOST[src]}
DST=${REG_HOST[dst]}
TOTAL_TAGS=$((MIRRORS * TAGS))

bench_log "seeding $SRC/bench/app with $TAGS tags…"
tags=()
for i in $(seq 1 "$TAGS"); do
  tags+=("1.$i")
  "$BIN/ferry-testkit" seed --registry "$SRC" --repository bench/app --tag "1.$i" --single \
    --layers 2 --layer-bytes 16384 --seed "$i" >/dev/null 2>"$BENCH_WORK/seed.err" \
    || { cat "$BENCH_WORK/seed.err" >&2; bench_die "seeding failed"; }
done
tag_list=$(printf '"%s", ' "${tags[@]}")
tag_list=${tag_list%, }

bench_log "starting the Kubernetes API stand-in…"
KUBECONFIG=$BENCH_WORK/kubeconfig
export KUBECONFIG
"$BIN/ferry-testkit" kube-api --kubeconfig "$KUBECONFIG" >"$BENCH_WORK/kube-api.out" \
  2>"$BENCH_WORK/kube-api.err" &
API_PID=$!
bench_on_cleanup "kill -TERM $API_PID 2>/dev/null; wait $API_PID 2>/dev/null"
for _ in $(seq 100); do
  grep -q '^READY=1' "$BENCH_WORK/kube-api.out" 2>/dev/null && break
  sleep 0.1
done
grep -q '^READY=1' "$BENCH_WORK/kube-api.out" || bench_die "the API stand-in did not start"
"$BIN/ferry-operator" crd | kubectl apply --server-side -f - >/dev/null

bench_log "applying $MIRRORS mirrors…"
for i in $(seq 1 "$MIRRORS"); do
  cat <<EOF
---
apiVersion: ferry.dev/v1alpha1
kind: EcrImageMirror
metadata: {name: app-$i, namespace: default}
spec:
  source: {image: "$SRC/bench/app", tags: [$tag_list], referrers: $REFERRERS}
  destination: {registry: "$DST", repository: "mirror/app-$i"}
  interval: 24h
EOF
done >"$BENCH_WORK/mirrors.yaml"
started=$(date +%s.%N)
kubectl apply --server-side -f "$BENCH_WORK/mirrors.yaml" >/dev/null
bench_log "applied in $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s"

manifest_gets() { # manifest GETs at both registries so far
  cat "${REG_DIR[src]}/registry.log" "${REG_DIR[dst]}/registry.log" |
    grep -cE '"GET /v2/[^ ]+/manifests/' || true
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
per_tag() { awk -v r="$1" -v t="$TOTAL_TAGS" 'BEGIN { printf "%.2f", r / t }'; }
declare -A ROW=()
row() { # key, wall s, requests, manifest GETs, peak RSS KiB
  ROW[$1]=$(printf '%-22s %9s %9s %8s %13s %13s' "$1" "$2" "$3" "$(per_tag "$3")" "$4" "$(mib "$5")")
}

# --- peer: ferry mirror -f, cold then warm ---------------------------------------------------
for phase in cold warm; do
  gets0=$(manifest_gets)
  bench_measure "ferry mirror -f $phase" -- "$BIN/ferry" mirror -f "$BENCH_WORK/mirrors.yaml" \
    --state "$BENCH_WORK/state.json"
  row "ferry mirror -f $phase" "$M_WALL" "$M_REQ" "$(($(manifest_gets) - gets0))" "$M_RSS_KB"
done

# --- the operator ----------------------------------------------------------------------------
# Counts the mirrors whose status has `field` == `value` (jsonpath over one list).
count_status() { # field value
  kubectl get eim -o jsonpath="{range .items[*]}{.status.$1}{\"\\n\"}{end}" | grep -cxF "$2" || true
}
# Waits until count_status reaches MIRRORS; prints the seconds since $3 (date +%s.%N).
wait_all() { # field value start
  local n
  while :; do
    n=$(count_status "$1" "$2")
    ((n >= MIRRORS)) && break
    kill -0 "$OP_PID" 2>/dev/null || bench_die "the operator exited (log: $BENCH_WORK/operator.log)"
    sleep 0.25
  done
  awk -v s="$3" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - s }'
}
peak_rss_kb() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$OP_PID/status"; }

before=$(bench_req_settled)
gets0=$(manifest_gets)
started=$(date +%s.%N)
"$BIN/ferry-operator" run --no-leader-election --metrics-address 127.0.0.1:0 \
  --concurrency "$CONCURRENCY" >"$BENCH_WORK/operator.log" 2>&1 &
OP_PID=$!
bench_on_cleanup "kill -TERM $OP_PID 2>/dev/null; wait $OP_PID 2>/dev/null"
bench_log "first reconcile of $MIRRORS mirrors (destinations already current)…"
wall=$(wait_all tagSummary "$TAGS/$TAGS synced" "$started")
after=$(bench_req_settled)
reqs=$(bench_req_total "$before" "$after")
row "operator first pass" "$wall" "$reqs" "$(($(manifest_gets) - gets0))" "$(peak_rss_kb)"

mark=$(date +%s%N)
before=$(bench_req_settled)
gets0=$(manifest_gets)
bench_log "asking all $MIRRORS mirrors for a sync (kubectl annotate)…"
started=$(date +%s.%N)
kubectl annotate eim --all "ferry.dev/sync-requested-at=$mark" --overwrite >/dev/null
annotated=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
wall=$(wait_all lastHandledSyncRequest "$mark" "$started")
after=$(bench_req_settled)
reqs=$(bench_req_total "$before" "$after")
resync_gets=$(($(manifest_gets) - gets0))
row "operator resync" "$wall" "$reqs" "$resync_gets" "$(peak_rss_kb)"
resync_per_tag=$(per_tag "$reqs")
rss_now=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$OP_PID/status")
op_peak=$(peak_rss_kb)

echo
echo "$MIRRORS mirrors × $TAGS tags ($TOTAL_TAGS tags), referrers=$REFERRERS, operator --concurrency $CONCURRENCY; loopback registries"
printf '%-22s %9s %9s %8s %13s %13s\n' run "wall s" requests "req/tag" "manifest GETs" "peak RSS MiB"
for key in "ferry mirror -f cold" "ferry mirror -f warm" "operator first pass" "operator resync"; do
  echo "${ROW[$key]}"
done
echo "(operator rows: from the start / from \`kubectl annotate --all\`, which itself took $annotated s,"
echo " until every status says so; operator RSS is its peak so far, now $(mib "$rss_now") MiB)"
echo
limit=$([[ $REFERRERS == true ]] && echo 3 || echo 2)
echo "targets (information only):"
echo "  resync requests per tag   $resync_per_tag   target ≤ $limit   $(bench_check "$resync_per_tag" "$limit")"
echo "  resync manifest GETs      $resync_gets      target 0     $(bench_check "$resync_gets" 0)"
echo "  operator peak RSS MiB     $(mib "$op_peak")   target ≤ 50  $(bench_check "$(mib "$op_peak")" 50)"
