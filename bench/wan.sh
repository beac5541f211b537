#!/usr/bin/env bash
# Benchmark over an emulated WAN: TLS registries reached through a TCP pass-through that adds
# LATENCY_MS each way (so a round trip of 2 × LATENCY_MS, TLS handshakes included) and caps each
# TCP connection at RATE_MIB MiB/s each way — what one connection across the internet gets.
# The registries' public address is the proxy, so upload `Location`s go through it as well.
#
#   copy:  ferry copy      vs skopeo copy --all   (PLATFORMS × LAYERS × LAYER_MIB MiB, random)
#   push:  ferry push      vs docker push         (LAYERS × LAYER_MIB MiB from the Docker Engine;
#          the Engine reaches the registry through the same proxy, trusting the test CA from
#          /etc/docker/certs.d/<host:port>/ca.crt, which this script writes and removes)
#
# Each ROUNDS times per tool (the order alternates per round):
#   cold: copy — to a repository that does not exist yet on the destination (every byte moves);
#         push — to a fresh registry (new port, empty storage: nothing to mount), ferry with an
#         empty cache dir;
#   warm: the same again (nothing to move).
#
#   big:   one image with a single BIG_MIB MiB layer, copied cold from a WAN source to (a) a WAN
#          destination and (b) a near one (a plain loopback registry: mirroring from far away into
#          a near ECR): ferry with parallel `Range` fetching (--range-parts RANGE_PARTS), ferry with
#          one GET per blob (--range-parts 0), and skopeo copy. Not part of the default PARTS.
# Measured per run (bench/lib.sh): wall, peak RSS of the client process (for `docker push` the CLI,
# which only drives the daemon), requests that reached the registries (access logs), and TCP
# connections the proxies accepted (their connection logs). A benchmark, not a test: targets are
# printed as information; only a failed run or a digest mismatch fails the script.
#
# Knobs (env): ROUNDS=3 LAYERS=5 LAYER_MIB=20 PLATFORMS=linux/amd64,linux/arm64,linux/arm/v7
#              LATENCY_MS=15 RATE_MIB=25 SEED=1 PRIME=1 PARTS="copy push" KEEP=1
#              BIG_MIB=512 RANGE_PARTS=4 (PARTS=big)
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-3}
LAYERS=${LAYERS:-5}
LAYER_MIB=${LAYER_MIB:-20}
PLATFORMS=${PLATFORMS:-linux/amd64,linux/arm64,linux/arm/v7}
LATENCY_MS=${LATENCY_MS:-15}
RATE_MIB=${RATE_MIB:-25}
SEED=${SEED:-1}
PRIME=${PRIME:-1}
PARTS=${PARTS:-copy push}
BIG_MIB=${BIG_MIB:-512}
RANGE_PARTS=${RANGE_PARTS:-4}
TAG=v1

bench_init wan
bench_build
WAN_ARGS=(--tls --wan-latency-ms "$LATENCY_MS" --wan-rate-mib "$RATE_MIB")

# A TLS registry behind its own WAN proxy, with a connection log; the Engine trusts its CA.
start_wan_registry() { # $1 name
  local name=$1 host certs
  bench_start_registry "$name" "${WAN_ARGS[@]}" --connection-log "$BENCH_WORK/$name.connections"
  host=${REG_HOST[$name]}
  if [[ $PARTS == *push* ]]; then
    certs=/etc/docker/certs.d/$host
    mkdir -p "$certs"
    cp "$(bench_reg_info "$name" ca)" "$certs/ca.crt"
    bench_on_cleanup "rm -rf '$certs'"
  fi
}

# TCP connections all proxies of this run accepted so far.
connections() {
  cat "$BENCH_WORK"/*.connections 2>/dev/null | wc -l
}

declare -A WALL=() RSS=() REQ=() CONN=()
# One measured run; $1 part.tool.kind, $2 round, then the command.
run() {
  local key=$1 round=$2 c0 c1
  shift 2
  c0=$(connections)
  bench_measure "r$round $key" -- "$@"
  c1=$(connections)
  WALL[$key]+="$M_WALL "
  RSS[$key]+="$M_RSS_KB "
  REQ[$key]+="$M_REQ "
  CONN[$key]+="$((c1 - c0)) "
  printf '%s: round %s  %-18s wall %7.3f s  rss %6.1f MiB  requests %4d  connections %3d\n' \
    "$BENCH_NAME" "$round" "$key" "$M_WALL" "$(awk -v k="$M_RSS_KB" 'BEGIN { print k / 1024 }')" \
    "$M_REQ" "$((c1 - c0))" >&2
}

MISMATCH=0
CHECKED=0
# The digest of what REF (docker://…) holds, as skopeo reads it through the proxy.
digest_of() { # $1 host:port/repo:tag, $2 cert dir
  echo "sha256:$(skopeo inspect --raw --cert-dir "$2" "docker://$1" | sha256sum | cut -d' ' -f1)"
}
check_digest() { # $1 reference, $2 cert dir, $3 expected
  local got
  got=$(digest_of "$1" "$2")
  CHECKED=$((CHECKED + 1))
  if [[ $got != "$3" ]]; then
    echo "$BENCH_NAME: DIGEST MISMATCH: $1 is $got, expected $3" >&2
    MISMATCH=1
  fi
}

# ---- copy --------------------------------------------------------------------------------------
if [[ $PARTS == *copy* ]]; then
  start_wan_registry src
  start_wan_registry dst
  SRC=${REG_HOST[src]} DST=${REG_HOST[dst]}
  SRC_CERTS=$(bench_reg_info src certdir) DST_CERTS=$(bench_reg_info dst certdir)
  # One CA file and one cert dir for both registries, for tools that take only one.
  cat "$(bench_reg_info src ca)" "$(bench_reg_info dst ca)" >"$BENCH_WORK/cas.pem"
  mkdir -p "$BENCH_WORK/certs"
  cp "$BENCH_WORK/cas.pem" "$BENCH_WORK/certs/ca.crt"
  nplat=$(tr ',' '\n' <<<"$PLATFORMS" | grep -c .)
  bench_log "copy: source $SRC, destination $DST (TLS, ${LATENCY_MS} ms each way, $RATE_MIB MiB/s per connection)"
  bench_log "seeding $SRC/bench/source:$TAG ($nplat platforms × $LAYERS layers × $LAYER_MIB MiB) directly…"
  SRC_DIGEST=$("$BIN/ferry-testkit" seed --registry "https://$(bench_reg_info src direct)" \
    --ca-cert "$(bench_reg_info src ca)" --repository bench/source --tag "$TAG" \
    --platforms "$PLATFORMS" --layers "$LAYERS" --layer-mib "$LAYER_MIB" --seed "$SEED" \
    2>"$BENCH_WORK/seed.err") || { cat "$BENCH_WORK/seed.err" >&2; bench_die "seeding failed"; }
  SRC_REF=$SRC/bench/source:$TAG

  copy_cmd() { # $1 tool, $2 destination repository
    case $1 in
      ferry) echo "$BIN/ferry copy --json --ca-file $BENCH_WORK/cas.pem $SRC_REF $DST/$2:$TAG" ;;
      skopeo) echo "skopeo copy --all --src-cert-dir $SRC_CERTS --dest-cert-dir $DST_CERTS docker://$SRC_REF docker://$DST/$2:$TAG" ;;
    esac
  }
  if [[ $PRIME == 1 ]]; then
    bench_log "priming (unmeasured): one copy with each tool"
    bench_new_skopeo_cache prime
    for tool in ferry skopeo; do
      # shellcheck disable=SC2046
      bench_measure "prime copy $tool" -- $(copy_cmd "$tool" "bench/prime-$tool")
    done
  fi
  for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order=(ferry skopeo); else order=(skopeo ferry); fi
    bench_new_skopeo_cache "r$r"
    # shellcheck disable=SC2046
    for tool in "${order[@]}"; do run "copy.$tool.cold" "$r" $(copy_cmd "$tool" "bench/$tool-r$r"); done
    # shellcheck disable=SC2046
    for tool in "${order[@]}"; do run "copy.$tool.warm" "$r" $(copy_cmd "$tool" "bench/$tool-r$r"); done
    for tool in ferry skopeo; do
      check_digest "$DST/bench/$tool-r$r:$TAG" "$BENCH_WORK/certs" "$SRC_DIGEST"
    done
  done
  bench_stop_registry src
  bench_stop_registry dst
fi

# ---- push --------------------------------------------------------------------------------------
if [[ $PARTS == *push* ]]; then
  command -v docker >/dev/null || bench_die "needs docker on PATH"
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || bench_die "no Docker Engine"
  bench_docker_image "$LAYERS" "$LAYER_MIB" "$SEED" # sets IMG, IMAGE_ID
  config_of() { # $1 reference, $2 cert dir
    skopeo inspect --raw --cert-dir "$2" "docker://$1" \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["digest"])'
  }
  push_cmd() { # $1 tool, $2 host, $3 repository, $4 CA file
    case $1 in
      ferry) echo "$BIN/ferry push $IMG --registry $2 --repository $3 --tag $TAG --ca-file $4 --json" ;;
      docker) echo "docker push $2/$3:$TAG" ;;
    esac
  }
  for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order=(ferry docker); else order=(docker ferry); fi
    for tool in "${order[@]}"; do
      reg=push-r$r-$tool
      start_wan_registry "$reg"
      host=${REG_HOST[$reg]} ca=$(bench_reg_info "$reg" ca)
      export FERRY_CACHE_DIR=$BENCH_WORK/ferry-cache-r$r
      [[ $tool == docker ]] && docker tag "$IMG" "$host/app:$TAG"
      # shellcheck disable=SC2046
      run "push.$tool.cold" "$r" $(push_cmd "$tool" "$host" app "$ca")
      # shellcheck disable=SC2046
      run "push.$tool.warm" "$r" $(push_cmd "$tool" "$host" app "$ca")
      CHECKED=$((CHECKED + 1))
      got=$(config_of "$host/app:$TAG" "$(bench_reg_info "$reg" certdir)")
      if [[ $got != "$IMAGE_ID" ]]; then
        echo "$BENCH_NAME: CONFIG MISMATCH: $host/app:$TAG has config $got, image is $IMAGE_ID" >&2
        MISMATCH=1
      fi
      [[ $tool == docker ]] && docker rmi "$host/app:$TAG" >/dev/null
      bench_stop_registry "$reg"
    done
  done
fi

# ---- big: one large layer, ranged fetching on and off ---------------------------------------
if [[ $PARTS == *big* ]]; then
  start_wan_registry bigsrc
  start_wan_registry bigdst
  bench_start_registry near
  BSRC=${REG_HOST[bigsrc]} BDST=${REG_HOST[bigdst]} NEAR=${REG_HOST[near]}
  cat "$(bench_reg_info bigsrc ca)" "$(bench_reg_info bigdst ca)" >"$BENCH_WORK/big-cas.pem"
  bench_log "big: source $BSRC (WAN), destinations $BDST (WAN) and $NEAR (loopback, plain HTTP)"
  bench_log "seeding $BSRC/bench/big:$TAG (one layer of $BIG_MIB MiB) directly…"
  BIG_DIGEST=$("$BIN/ferry-testkit" seed --registry "https://$(bench_reg_info bigsrc direct)" \
    --ca-cert "$(bench_reg_info bigsrc ca)" --repository bench/big --tag "$TAG" --single \
    --layers 1 --layer-mib "$BIG_MIB" --seed "$SEED" 2>"$BENCH_WORK/seed-big.err") \
    || { cat "$BENCH_WORK/seed-big.err" >&2; bench_die "seeding failed"; }
  BIG_REF=$BSRC/bench/big:$TAG
  big_cmd() { # $1 tool, $2 destination host, $3 repository
    local skopeo_dst="--dest-cert-dir $(bench_reg_info bigdst certdir)"
    [[ $2 == "$NEAR" ]] && skopeo_dst=--dest-tls-verify=false
    case $1 in
      ferry-ranged) echo "$BIN/ferry copy --json --range-parts $RANGE_PARTS --ca-file $BENCH_WORK/big-cas.pem $BIG_REF $2/$3:$TAG" ;;
      ferry-one) echo "$BIN/ferry copy --json --range-parts 0 --ca-file $BENCH_WORK/big-cas.pem $BIG_REF $2/$3:$TAG" ;;
      skopeo) echo "skopeo copy --src-cert-dir $(bench_reg_info bigsrc certdir) $skopeo_dst docker://$BIG_REF docker://$2/$3:$TAG" ;;
    esac
  }
  big_tools=(ferry-ranged ferry-one skopeo)
  for ((r = 1; r <= ROUNDS; r++)); do
    bench_new_skopeo_cache "big-r$r"
    for dest in wan near; do
      host=$BDST
      [[ $dest == near ]] && host=$NEAR
      # Rotate the order per round so no tool always runs first.
      for ((i = 0; i < 3; i++)); do
        tool=${big_tools[$(((i + r) % 3))]}
        # shellcheck disable=SC2046
        run "big.$dest.$tool" "$r" $(big_cmd "$tool" "$host" "bench/$tool-r$r")
      done
    done
    for tool in "${big_tools[@]}"; do
      check_digest "$BDST/bench/$tool-r$r:$TAG" "$(bench_reg_info bigdst certdir)" "$BIG_DIGEST"
      CHECKED=$((CHECKED + 1))
      got=$(echo "sha256:$(skopeo inspect --raw --tls-verify=false "docker://$NEAR/bench/$tool-r$r:$TAG" | sha256sum | cut -d' ' -f1)")
      [[ $got == "$BIG_DIGEST" ]] || { echo "$BENCH_NAME: DIGEST MISMATCH at $NEAR: $got" >&2; MISMATCH=1; }
    done
  done
  bench_stop_registry bigsrc
  bench_stop_registry bigdst
  bench_stop_registry near
fi

# ---- report ------------------------------------------------------------------------------------
med() { bench_median ${1}; } # word-splits the space-separated samples
echo
echo "over an emulated WAN: TLS, ${LATENCY_MS} ms each way ($((2 * LATENCY_MS)) ms round trip)," \
  "$RATE_MIB MiB/s per TCP connection; medians of $ROUNDS rounds"
printf '%-22s %8s %12s %9s %13s\n' "" "wall s" "connections" "requests" "peak RSS MiB"
for key in copy.ferry.cold copy.skopeo.cold copy.ferry.warm copy.skopeo.warm \
  push.ferry.cold push.docker.cold push.ferry.warm push.docker.warm \
  big.wan.ferry-ranged big.wan.ferry-one big.wan.skopeo \
  big.near.ferry-ranged big.near.ferry-one big.near.skopeo; do
  [[ -n ${WALL[$key]:-} ]] || continue
  printf '%-22s %8.3f %12s %9s %13.1f\n' "${key//./ }" "$(med "${WALL[$key]}")" \
    "$(med "${CONN[$key]}")" "$(med "${REQ[$key]}")" \
    "$(awk -v k="$(med "${RSS[$key]}")" 'BEGIN { print k / 1024 }')"
done
[[ $PARTS == *copy* ]] && echo "copy: $nplat platforms × $LAYERS layers × $LAYER_MIB MiB, one tag"
[[ $PARTS == *push* ]] && echo "push: $LAYERS layers × $LAYER_MIB MiB, one tag; docker's RSS is its CLI's"
[[ $PARTS == *big* ]] && echo "big: one layer of $BIG_MIB MiB, cold, from the WAN source to a WAN (wan) or loopback (near)" \
  "destination; ferry-ranged = --range-parts $RANGE_PARTS, ferry-one = --range-parts 0"
echo
echo "ratios (targets are information only):"
ratio_line() { # $1 label, $2 ferry key, $3 peer key, $4 target
  [[ -n ${WALL[$2]:-} && -n ${WALL[$3]:-} ]] || return 0
  local r
  r=$(bench_ratio "$(med "${WALL[$2]}")" "$(med "${WALL[$3]}")")
  printf '  %-28s %5s×   target ≤ %s×  %s\n' "$1" "$r" "$4" "$(bench_check "$r" "$4")"
}
ratio_line "copy cold  ferry/skopeo" copy.ferry.cold copy.skopeo.cold 0.5
ratio_line "copy warm  ferry/skopeo" copy.ferry.warm copy.skopeo.warm 1.0
ratio_line "push cold  ferry/docker" push.ferry.cold push.docker.cold 0.5
ratio_line "push warm  ferry/docker" push.ferry.warm push.docker.warm 1.0
# Ranged fetching is kept only if it is clearly faster near and no slower over the WAN.
ratio_line "big near  ranged/one GET" big.near.ferry-ranged big.near.ferry-one 0.7
ratio_line "big wan   ranged/one GET" big.wan.ferry-ranged big.wan.ferry-one 1.05
ratio_line "big near  ranged/skopeo" big.near.ferry-ranged big.near.skopeo 0.7
ratio_line "big wan   ranged/skopeo" big.wan.ferry-ranged big.wan.skopeo 1.05
for key in copy.ferry.warm push.ferry.warm; do
  [[ -n ${REQ[$key]:-} ]] || continue
  per_tag=$(med "${REQ[$key]}")
  printf '  %-28s %5s    target ≤ 2    %s\n' "${key%%.*} warm requests per tag" "$per_tag" \
    "$(bench_check "$per_tag" 2)"
done

echo
if ((MISMATCH)); then
  bench_die "destination digests differ (see above)"
fi
echo "digests match in all $CHECKED destinations"
