#!/usr/bin/env bash
# Benchmark: pushing one local Docker Engine image to a local registry with
#   ferry push IMG --registry HOST --repository ferry-rN --tag v1
#   docker push HOST/docker-rN:v1                     (after `docker tag`)
#   skopeo copy docker-daemon:IMG docker://HOST/skopeo-rN:v1
# A benchmark, not a test: targets are printed as information and never fail the script; only a
# failed push or a config mismatch does.
#
# The image: FROM scratch, LAYERS × LAYER_MIB MiB of random data (seeded), one COPY per layer,
# every file with its own fixed mtime (fuse-overlayfs diffs by size + mtime), and a unique label so
# no build cache is shared with anything else. One `ferry-testkit registry` (loopback, plain HTTP;
# the engine treats 127.0.0.0/8 as insecure) receives every push.
#
# For ROUNDS rounds (the order of the tools rotates per round), each tool pushes
#   cold: to a repository that does not exist yet (fresh name per round and tool) —
#         ferry with a fresh, empty FERRY_CACHE_DIR; skopeo with a fresh, empty blob-info cache
#         (see bench/lib.sh); docker as it is: the engine remembers which layers it pushed to
#         this registry and, from its second push on, cross-repo mounts them (POST …?mount=…&from=…)
#         instead of uploading. That is docker's own behaviour and is reported as is; its first
#         push (round 1 unless PRIME_DOCKER=1) is the only docker push that uploads.
#   warm: the same push again (ferry: the same cache dir; docker: the same tag; skopeo: the same
#         destination and blob-info cache).
# Before round 1, ferry and skopeo each do one unmeasured push (PRIME=0 skips it), so binaries,
# the page cache and the registry's blob store are warm for them as for the later rounds.
#
# Measured per run (bench/lib.sh): wall, CPU (user + sys) and peak RSS of the client process,
# requests that reached the registry. `docker push` hands the work to the daemon, so its client
# CPU/RSS say little: the daemon's CPU (dockerd's utime + stime deltas from /proc/<pid>/stat) is
# measured for every run — ferry and skopeo make the daemon work too, exporting the image — and so
# is the registry process's. The per-run lines (stderr) also show the whole machine's busy CPU
# (/proc/stat), which includes the short-lived fuse-overlayfs mount helpers the engine starts to
# read layers (reparented away from dockerd, so not in its numbers) — and anything else running.
#
# Knobs (env): ROUNDS=3 LAYERS=5 LAYER_MIB=20 SEED=1 PRIME=1 PRIME_DOCKER=0
#              KEEP=1 (keep the work dir with the registry's storage and log, per-run outputs)
#              DOCKERD_PID (default: the local dockerd's pid, if any)
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-3}
LAYERS=${LAYERS:-5}
LAYER_MIB=${LAYER_MIB:-20}
SEED=${SEED:-1}
PRIME=${PRIME:-1}
PRIME_DOCKER=${PRIME_DOCKER:-0}
TAG=v1
TOOLS=(ferry docker skopeo)

bench_init push
for tool in docker openssl; do
  command -v "$tool" >/dev/null || bench_die "needs $tool on PATH"
done
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || bench_die "no Docker Engine (docker version failed)"
bench_build
bench_start_registry reg
HOST=${REG_HOST[reg]}
REG_LOG=${REG_DIR[reg]}/registry.log

# Processes whose CPU every run also measures: the daemon, and the registry (which hashes and
# writes every byte it receives).
dockerd_pid=${DOCKERD_PID:-$(pgrep -xo dockerd || true)}
if [[ -n $dockerd_pid ]]; then
  BENCH_WATCH[dockerd]=$dockerd_pid
else
  bench_log "warning: no local dockerd process found: the daemon's CPU is not measured"
fi
registry_pid=$(pgrep -P "${REG_PID[reg]}" -o || true)
if [[ -n $registry_pid ]]; then
  BENCH_WATCH[registry]=$registry_pid
else
  bench_log "warning: cannot find the docker-registry process: its CPU is not measured"
fi

# ---- the image ---------------------------------------------------------------------------------
UNIQUE=$$-$RANDOM$RANDOM
IMG=ferry-bench-push:$UNIQUE
IMAGE_ID=
# shellcheck disable=SC2016 # expanded at exit (removes every tag of the image too)
bench_on_cleanup 'if [[ -n $IMAGE_ID ]]; then
  docker rmi -f "$IMAGE_ID" >/dev/null 2>&1 || bench_log "warning: docker rmi $IMAGE_ID failed"
else
  docker rmi -f "$IMG" >/dev/null 2>&1 || true # interrupted during the build
fi'

ctx=$BENCH_WORK/image
mkdir -p "$ctx"
bench_log "registry $HOST, work dir $BENCH_WORK"
bench_log "building $IMG ($LAYERS layers × $LAYER_MIB MiB, random, seed $SEED)…"
{
  echo "FROM scratch"
  echo "LABEL ferry.bench=push-$UNIQUE"
} >"$ctx/Dockerfile"
for ((i = 1; i <= LAYERS; i++)); do
  # A seeded AES-CTR keystream: random-looking (incompressible), the same for the same SEED.
  { openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$((SEED * 1000 + i))")" \
    -iv 00000000000000000000000000000000 </dev/zero 2>/dev/null || true; } \
    | head -c "$((LAYER_MIB * 1048576))" >"$ctx/layer$i.bin"
  touch -d "@$((1577836800 + i * 3600))" "$ctx/layer$i.bin"
  echo "COPY layer$i.bin /data/layer$i.bin" >>"$ctx/Dockerfile"
done
touch -d @1577836800 "$ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$IMG" "$ctx" >"$BENCH_WORK/build.out" 2>"$BENCH_WORK/build.err" \
  || { cat "$BENCH_WORK/build.err" >&2; bench_die "docker build failed"; }
IMAGE_ID=$(docker image inspect -f '{{.Id}}' "$IMG")
rm -rf "$ctx"
nlayers=$(docker image inspect -f '{{len .RootFS.Layers}}' "$IMG")
bench_log "image $IMAGE_ID ($nlayers layers)"

# ---- runs --------------------------------------------------------------------------------------
push_cmd() { # $1 tool, $2 repository (ferry's cache dir: FERRY_CACHE_DIR, set by run)
  case $1 in
    ferry) echo "$BIN/ferry push $IMG --registry $HOST --repository $2 --tag $TAG --json" ;;
    docker) echo "docker push $HOST/$2:$TAG" ;;
    skopeo) echo "skopeo copy --dest-tls-verify=false docker-daemon:$IMG docker://$HOST/$2:$TAG" ;;
  esac
}

reg_log_lines() { wc -l <"$REG_LOG"; }

# What the registry saw in access-log lines FROM+1..TO: "PATCH n, mount n, …" (blob data and
# cross-repo mounts, the two ways a layer gets into a repository).
req_kinds() { # $1 from, $2 to
  sed -n "$(($1 + 1)),$2p" "$REG_LOG" \
    | grep -E '^[^ ]+ - [^ ]+ \[[^]]+\] "[A-Z]+ [^ ]+ HTTP/[0-9.]+" [0-9]{3} ' \
    | awk '{
        m = substr($6, 2); u = $7
        if (m == "POST" && u ~ /[?&]mount=/) mounts++
        else n[m]++
      } END {
        s = ""
        split("HEAD GET POST PATCH PUT DELETE", order, " ")
        for (i = 1; i <= 6; i++) if (n[order[i]]) s = s order[i] " " n[order[i]] ", "
        if (mounts) s = s "mount " mounts ", "
        sub(/, $/, "", s); print (s == "" ? "-" : s)
      }'
}

declare -A WALL=() CPU=() DCPU=() RCPU=() RSS=() REQ=() KINDS=()
FERRY_COLD_JSON=
DOCKER_FIRST=

run() { # $1 tool, $2 cold|warm, $3 round label, $4 repository, $5 ferry cache dir
  local tool=$1 kind=$2 round=$3 repo=$4 cache=$5 cmd from to kinds
  local -x FERRY_CACHE_DIR=$cache # only ferry reads it; exported for the measured command
  cmd=$(push_cmd "$tool" "$repo")
  [[ $tool == docker && $kind == cold ]] && docker tag "$IMG" "$HOST/$repo:$TAG"
  from=$(reg_log_lines)
  # shellcheck disable=SC2086 # the command is built from space-free parts
  bench_measure "$round $tool $kind" -- $cmd
  to=$(reg_log_lines)
  kinds=$(req_kinds "$from" "$to")
  if [[ $round == prime ]]; then
    bench_log "prime $tool: wall $M_WALL s, requests $M_REQ ($kinds)"
    return
  fi
  WALL[$tool.$kind]+="$M_WALL "
  CPU[$tool.$kind]+="$M_CPU "
  DCPU[$tool.$kind]+="${M_WATCH[dockerd]:-n/a} "
  RCPU[$tool.$kind]+="${M_WATCH[registry]:-n/a} "
  RSS[$tool.$kind]+="$M_RSS_KB "
  REQ[$tool.$kind]+="$M_REQ "
  KINDS[$tool.$kind.$round]=$kinds
  printf '%s: %-3s %-6s %-4s  wall %6.3f s  cpu %5.2f s  dockerd %5s s  registry %5s s  machine %5s s  rss %6.1f MiB  requests %3d (%s)\n' \
    "$BENCH_NAME" "$round" "$tool" "$kind" "$M_WALL" "$M_CPU" "${M_WATCH[dockerd]:-n/a}" \
    "${M_WATCH[registry]:-n/a}" "$M_HOST_CPU" \
    "$(awk -v k="$M_RSS_KB" 'BEGIN { print k / 1024 }')" "$M_REQ" "$kinds" >&2
  if [[ $tool == ferry && $kind == cold && -z $FERRY_COLD_JSON ]]; then
    FERRY_COLD_JSON=$BENCH_WORK/ferry-cold.json
    cp "$M_OUT" "$FERRY_COLD_JSON"
  fi
  # docker's first push of this image to this registry, if it uploaded (no mounts).
  if [[ $tool == docker && $kind == cold && -z $DOCKER_FIRST && $kinds == *PATCH* && $kinds != *mount* ]]; then
    DOCKER_FIRST="$round $M_WALL $M_CPU ${M_WATCH[dockerd]:-n/a} ${M_WATCH[registry]:-n/a} $M_RSS_KB $M_REQ"
  fi
}

if [[ $PRIME == 1 ]]; then
  prime_tools=(ferry skopeo)
  [[ $PRIME_DOCKER == 1 ]] && prime_tools+=(docker)
  bench_log "priming (unmeasured): one push with ${prime_tools[*]}"
  bench_new_skopeo_cache prime
  for tool in "${prime_tools[@]}"; do
    [[ $tool == docker ]] && docker tag "$IMG" "$HOST/docker-prime:$TAG"
    run "$tool" cold prime "$tool-prime" "$BENCH_WORK/ferry-cache-prime"
  done
fi

for ((r = 1; r <= ROUNDS; r++)); do
  order=()
  for ((i = 0; i < ${#TOOLS[@]}; i++)); do order+=("${TOOLS[(i + r - 1) % ${#TOOLS[@]}]}"); done
  bench_new_skopeo_cache "r$r"
  fcache=$BENCH_WORK/ferry-cache-r$r
  mkdir -p "$fcache"
  for tool in "${order[@]}"; do run "$tool" cold "r$r" "$tool-r$r" "$fcache"; done
  for tool in "${order[@]}"; do run "$tool" warm "r$r" "$tool-r$r" "$fcache"; done
done

# ---- the same image everywhere: every destination's config is the engine's image config --------
config_digest() { # $1 repository
  local raw
  raw=$(skopeo inspect --raw --tls-verify=false "docker://$HOST/$1:$TAG")
  if command -v jq >/dev/null; then
    jq -r '.config.digest' <<<"$raw"
  else
    python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["digest"])' <<<"$raw"
  fi
}
mismatch=0
for ((r = 1; r <= ROUNDS; r++)); do
  for tool in "${TOOLS[@]}"; do
    got=$(config_digest "$tool-r$r")
    if [[ $got != "$IMAGE_ID" ]]; then
      echo "$BENCH_NAME: CONFIG MISMATCH: $HOST/$tool-r$r:$TAG has config $got, the engine's image is $IMAGE_ID" >&2
      mismatch=1
    fi
  done
done

# ---- report ------------------------------------------------------------------------------------
med() { bench_median ${1}; } # word-splits the space-separated samples
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
num() { [[ $1 == n/a || $1 == nan ]] && echo n/a || printf '%.2f' "$1"; }
med_or_na() { # samples that may hold n/a
  local s
  s=$(tr ' ' '\n' <<<"$1" | grep -v '^n/a$' | tr '\n' ' ')
  [[ -z ${s// /} ]] && echo n/a || med "$s"
}

echo
echo "push of one local image ($LAYERS layers × $LAYER_MIB MiB random, Docker Engine" \
  "$(docker version --format '{{.Server.Version}}' 2>/dev/null), $(docker info --format '{{.Driver}}' 2>/dev/null))" \
  "to a loopback docker-registry, medians of $ROUNDS rounds"
printf '%-12s %8s %9s %11s %12s %13s %9s\n' "" "wall s" "CPU s" "dockerd s" "registry s" "peak RSS MiB" "requests"
for row in ferry.cold docker.cold skopeo.cold ferry.warm docker.warm skopeo.warm; do
  printf '%-12s %8.3f %9.2f %11s %12s %13s %9s\n' "${row/./ }" \
    "$(med "${WALL[$row]}")" "$(med "${CPU[$row]}")" "$(num "$(med_or_na "${DCPU[$row]}")")" \
    "$(num "$(med_or_na "${RCPU[$row]}")")" "$(mib "$(med "${RSS[$row]}")")" "$(med "${REQ[$row]}")"
done
if [[ -n $DOCKER_FIRST ]]; then
  read -r d_round d_wall d_cpu d_dcpu d_rcpu d_rss d_req <<<"$DOCKER_FIRST"
  printf '%-12s %8.3f %9.2f %11s %12s %13s %9s\n' "docker 1st" "$d_wall" "$d_cpu" "$(num "$d_dcpu")" \
    "$(num "$d_rcpu")" "$(mib "$d_rss")" "$d_req"
fi
echo "CPU s / peak RSS: the client process (user + sys; for docker push the CLI, which only drives" \
  "the daemon); dockerd s: the daemon's user + sys during the run (/proc/<pid>/stat; ferry and" \
  "skopeo make it export the image); registry s: the docker-registry process's."
echo "machine load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) on $(nproc) CPUs at the end" \
  "(other processes on the machine share the CPUs with every run)."
echo "requests by kind (round: cold | warm):"
for tool in "${TOOLS[@]}"; do
  for ((r = 1; r <= ROUNDS; r++)); do
    printf '  %-6s r%d: %s | %s\n' "$tool" "$r" "${KINDS[$tool.cold.r$r]}" "${KINDS[$tool.warm.r$r]}"
  done
done
if [[ -n $DOCKER_FIRST ]]; then
  echo "docker 1st: docker's cold push in $d_round, its first push of the image to this registry" \
    "(uploads every layer); its later cold pushes cross-repo mount the layers it pushed before."
else
  echo "docker cold: no docker cold push uploaded layers without mounting (all mounted from earlier pushes)."
fi

fc=$(med "${WALL[ferry.cold]}") fw=$(med "${WALL[ferry.warm]}")
cold_docker=$(bench_ratio "$fc" "$(med "${WALL[docker.cold]}")")
cold_skopeo=$(bench_ratio "$fc" "$(med "${WALL[skopeo.cold]}")")
warm_docker=$(bench_ratio "$fw" "$(med "${WALL[docker.warm]}")")
warm_skopeo=$(bench_ratio "$fw" "$(med "${WALL[skopeo.warm]}")")
echo
echo "wall-time ratios (targets are information only):"
printf '  cold  ferry/docker %5s×   ferry/skopeo %5s×   target ≤ 0.8× both  %s / %s\n' \
  "$cold_docker" "$cold_skopeo" "$(bench_check "$cold_docker" 0.8)" "$(bench_check "$cold_skopeo" 0.8)"
printf '  warm  ferry/docker %5s×   ferry/skopeo %5s×   target ≤ 0.2× both  %s / %s\n' \
  "$warm_docker" "$warm_skopeo" "$(bench_check "$warm_docker" 0.2)" "$(bench_check "$warm_skopeo" 0.2)"
if [[ -n $DOCKER_FIRST ]]; then
  first=$(bench_ratio "$fc" "$d_wall")
  printf '  cold  ferry/docker 1st %5s×   (docker uploading, not mounting)  %s\n' "$first" "$(bench_check "$first" 0.8)"
fi

if [[ -n $FERRY_COLD_JSON ]] && command -v jq >/dev/null; then
  jq -r '"ferry cold r1 (--json): \(.layers_uploaded) layers uploaded, \(.layers_skipped) skipped, \(.bytes_uploaded) bytes, size \(.size), \(.elapsed) ms; manifest \(.digest)"' \
    "$FERRY_COLD_JSON" || true
fi

echo
if ((mismatch)); then
  bench_die "pushed configs differ from the engine's image (see above)"
fi
echo "configs match ($IMAGE_ID in all $((${#TOOLS[@]} * ROUNDS)) destinations: ferry, docker, skopeo × $ROUNDS rounds)"
