#!/usr/bin/env bash
# Benchmark: pushing one local Docker Engine image to a local registry with
#   ferry push IMG --registry HOST --repository R --tag v1
#   docker push HOST/R:v1                            (after `docker tag`)
#   skopeo copy docker-daemon:IMG docker://HOST/R:v1
# A benchmark, not a test: targets are printed as information and never fail the script; only a
# failed push or a config mismatch does.
#
# The image: FROM scratch, LAYERS × LAYER_MIB MiB of random data (seeded), one COPY per layer,
# every file with its own fixed mtime (fuse-overlayfs diffs by size + mtime), and a unique label so
# no build cache is shared with anything else. Registries are `ferry-testkit registry` processes
# (loopback, plain HTTP; the engine treats 127.0.0.0/8 as insecure).
#
# Three scenarios, each measured ROUNDS times per tool (the order of the tools rotates per round):
#   first:    the tool's first push of the image to a registry: per round and tool a fresh
#             registry (new port, empty storage), so nothing can be mounted or skipped — ferry
#             with a fresh, empty FERRY_CACHE_DIR, skopeo with a fresh, empty blob-info cache
#             (see bench/lib.sh), docker with nothing to mount: the engine remembers which
#             repositories of a registry hold a layer by the registry's host:port, and every
#             fresh registry has a port none had before. Every byte is exported (ferry, skopeo)
#             or read from the layer store (docker), compressed and uploaded.
#   new-repo: a push to a repository that does not exist yet, on the one shared registry the
#             tool has pushed this image to before (fresh repository name per round and tool).
#             Each tool keeps its own state across the rounds as it would on a developer's
#             machine: docker its engine's metadata, ferry its cache dir, skopeo its blob-info
#             cache — so each may cross-repo mount (POST …?mount=…&from=…) what it pushed
#             before, and that is what it is measured doing. Before round 1 each tool makes one
#             unmeasured push to the shared registry (PRIME), from fresh state, so round 1 is
#             like the others and binaries and page cache are warm.
#   warm:     the new-repo push again (same repository and tag, same state): nothing to do.
#
# Measured per run (bench/lib.sh): wall, CPU (user + sys) and peak RSS of the client process,
# requests that reached the registries. `docker push` hands the work to the daemon, so its client
# CPU/RSS say little: the daemon's CPU (dockerd's utime + stime deltas from /proc/<pid>/stat) is
# measured for every run — ferry and skopeo make the daemon work too, exporting the image — and so
# is the registry process's. The per-run lines (stderr) also show the whole machine's busy CPU
# (/proc/stat), which includes the short-lived fuse-overlayfs mount helpers the engine starts to
# read layers (reparented away from dockerd, so not in its numbers) — and anything else running.
#
# Knobs (env): ROUNDS=3 LAYERS=5 LAYER_MIB=20 SEED=1 PRIME=1
#              KEEP=1 (keep the work dir with the registries' storage and logs, per-run outputs)
#              DOCKERD_PID (default: the local dockerd's pid, if any)
#              CARGO_TARGET_DIR (where the release build goes and the binaries are taken from)
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-3}
LAYERS=${LAYERS:-5}
LAYER_MIB=${LAYER_MIB:-20}
SEED=${SEED:-1}
PRIME=${PRIME:-1}
TAG=v1
TOOLS=(ferry docker skopeo)
SCENARIOS=(first new-repo warm)

bench_init push
for tool in docker openssl; do
  command -v "$tool" >/dev/null || bench_die "needs $tool on PATH"
done
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || bench_die "no Docker Engine (docker version failed)"
bench_build

# Processes whose CPU every run also measures: the daemon, and the registry pushed to (which
# hashes and writes every byte it receives).
dockerd_pid=${DOCKERD_PID:-$(pgrep -xo dockerd || true)}
if [[ -n $dockerd_pid ]]; then
  BENCH_WATCH[dockerd]=$dockerd_pid
else
  bench_log "warning: no local dockerd process found: the daemon's CPU is not measured"
fi

declare -A USED_HOSTS=()
# Starts registry NAME on a host:port no registry of this run had (the engine keys what it
# remembers by host:port) and watches its CPU.
start_registry() { # $1 name
  local name=$1 try
  for try in 1 2 3 4 5; do
    bench_start_registry "$name"
    [[ -z ${USED_HOSTS[${REG_HOST[$name]}]:-} ]] && break
    bench_stop_registry "$name"
    ((try < 5)) || bench_die "no fresh port for registry $name"
  done
  USED_HOSTS[${REG_HOST[$name]}]=1
}
watch_registry() { # $1 name
  local pid
  pid=$(pgrep -P "${REG_PID[$1]}" -o || true)
  if [[ -n $pid ]]; then
    BENCH_WATCH[registry]=$pid
  else
    unset 'BENCH_WATCH[registry]'
    bench_log "warning: cannot find registry $1's docker-registry process: its CPU is not measured"
  fi
}

start_registry shared
SHARED=${REG_HOST[shared]}

# ---- the image ---------------------------------------------------------------------------------
bench_log "shared registry $SHARED, work dir $BENCH_WORK"
bench_docker_image "$LAYERS" "$LAYER_MIB" "$SEED" # sets IMG, IMAGE_ID

# ---- runs --------------------------------------------------------------------------------------
push_cmd() { # $1 tool, $2 host, $3 repository (ferry's cache dir: FERRY_CACHE_DIR, set by run)
  case $1 in
    ferry) echo "$BIN/ferry push $IMG --registry $2 --repository $3 --tag $TAG --json" ;;
    docker) echo "docker push $2/$3:$TAG" ;;
    skopeo) echo "skopeo copy --dest-tls-verify=false docker-daemon:$IMG docker://$2/$3:$TAG" ;;
  esac
}

# What registry NAME saw in access-log lines FROM+1..TO: "PATCH n, mount n, …" (blob data and
# cross-repo mounts, the two ways a layer gets into a repository).
req_kinds() { # $1 name, $2 from, $3 to
  sed -n "$(($2 + 1)),$3p" "${REG_DIR[$1]}/registry.log" \
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
log_lines() { wc -l <"${REG_DIR[$1]}/registry.log"; }

# Every destination must hold the engine's exact config (its digest is the image ID).
config_digest() { # $1 host, $2 repository
  local raw
  raw=$(skopeo inspect --raw --tls-verify=false "docker://$1/$2:$TAG")
  if command -v jq >/dev/null; then
    jq -r '.config.digest' <<<"$raw"
  else
    python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["digest"])' <<<"$raw"
  fi
}
MISMATCH=0
CHECKED=0
check_config() { # $1 host, $2 repository
  local got
  got=$(config_digest "$1" "$2")
  CHECKED=$((CHECKED + 1))
  if [[ $got != "$IMAGE_ID" ]]; then
    echo "$BENCH_NAME: CONFIG MISMATCH: $1/$2:$TAG has config $got, the engine's image is $IMAGE_ID" >&2
    MISMATCH=1
  fi
}

declare -A WALL=() CPU=() DCPU=() RCPU=() RSS=() REQ=() KINDS=()
FERRY_FIRST_JSON=

# One measured push. $1 tool, $2 scenario (first|new-repo|warm|prime), $3 round label,
# $4 registry name, $5 repository, $6 ferry cache dir, $7 skopeo blob-info cache dir.
run() {
  local tool=$1 scenario=$2 round=$3 reg=$4 repo=$5 host=${REG_HOST[$4]} cmd from to kinds
  local -x FERRY_CACHE_DIR=$6 # only ferry reads it; exported for the measured command
  BENCH_SKOPEO_CACHE=$7
  mkdir -p "$FERRY_CACHE_DIR" "$BENCH_SKOPEO_CACHE/containers/cache"
  cmd=$(push_cmd "$tool" "$host" "$repo")
  [[ $tool == docker && $scenario != warm ]] && docker tag "$IMG" "$host/$repo:$TAG"
  watch_registry "$reg"
  from=$(log_lines "$reg")
  # shellcheck disable=SC2086 # the command is built from space-free parts
  bench_measure "$round $tool $scenario" -- $cmd
  to=$(log_lines "$reg")
  kinds=$(req_kinds "$reg" "$from" "$to")
  if [[ $round == prime ]]; then
    bench_log "prime $tool: wall $M_WALL s, requests $M_REQ ($kinds)"
    return
  fi
  [[ $scenario != warm ]] && check_config "$host" "$repo"
  WALL[$tool.$scenario]+="$M_WALL "
  CPU[$tool.$scenario]+="$M_CPU "
  DCPU[$tool.$scenario]+="${M_WATCH[dockerd]:-n/a} "
  RCPU[$tool.$scenario]+="${M_WATCH[registry]:-n/a} "
  RSS[$tool.$scenario]+="$M_RSS_KB "
  REQ[$tool.$scenario]+="$M_REQ "
  KINDS[$tool.$scenario.$round]=$kinds
  printf '%s: %-3s %-6s %-8s  wall %7.4f s  cpu %5.2f s  dockerd %5s s  registry %5s s  machine %5s s  rss %6.1f MiB  requests %3d (%s)\n' \
    "$BENCH_NAME" "$round" "$tool" "$scenario" "$M_WALL" "$M_CPU" "${M_WATCH[dockerd]:-n/a}" \
    "${M_WATCH[registry]:-n/a}" "$M_HOST_CPU" \
    "$(awk -v k="$M_RSS_KB" 'BEGIN { print k / 1024 }')" "$M_REQ" "$kinds" >&2
  if [[ $tool == ferry && $scenario == first && -z $FERRY_FIRST_JSON ]]; then
    FERRY_FIRST_JSON=$BENCH_WORK/ferry-first.json
    cp "$M_OUT" "$FERRY_FIRST_JSON"
  fi
}

# The state each tool keeps across the new-repo and warm rounds, fresh before its prime push.
FERRY_KEPT=$BENCH_WORK/ferry-cache-kept
SKOPEO_KEPT=$BENCH_WORK/skopeo-cache-kept
if [[ $PRIME == 1 ]]; then
  bench_log "priming (unmeasured): one push per tool to $SHARED"
  for tool in "${TOOLS[@]}"; do
    run "$tool" prime prime shared "$tool-prime" "$FERRY_KEPT" "$SKOPEO_KEPT"
  done
fi

for ((r = 1; r <= ROUNDS; r++)); do
  order=()
  for ((i = 0; i < ${#TOOLS[@]}; i++)); do order+=("${TOOLS[(i + r - 1) % ${#TOOLS[@]}]}"); done
  for tool in "${order[@]}"; do
    fresh=$BENCH_WORK/first-r$r-$tool
    start_registry "first-r$r-$tool"
    run "$tool" first "r$r" "first-r$r-$tool" "$tool-r$r" "$fresh/ferry-cache" "$fresh/skopeo-cache"
    bench_stop_registry "first-r$r-$tool"
  done
  for tool in "${order[@]}"; do
    run "$tool" new-repo "r$r" shared "$tool-r$r" "$FERRY_KEPT" "$SKOPEO_KEPT"
  done
  for tool in "${order[@]}"; do
    run "$tool" warm "r$r" shared "$tool-r$r" "$FERRY_KEPT" "$SKOPEO_KEPT"
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
printf '%-16s %8s %9s %11s %12s %13s %9s\n' "" "wall s" "CPU s" "dockerd s" "registry s" "peak RSS MiB" "requests"
for scenario in "${SCENARIOS[@]}"; do
  for tool in "${TOOLS[@]}"; do
    row=$tool.$scenario
    printf '%-16s %8.4f %9.2f %11s %12s %13s %9s\n' "$tool $scenario" \
      "$(med "${WALL[$row]}")" "$(med "${CPU[$row]}")" "$(num "$(med_or_na "${DCPU[$row]}")")" \
      "$(num "$(med_or_na "${RCPU[$row]}")")" "$(mib "$(med "${RSS[$row]}")")" "$(med "${REQ[$row]}")"
  done
done
echo "first: a fresh registry per push, fresh tool state (every byte exported or read, compressed" \
  "and uploaded); new-repo: a new repository on a registry the tool pushed the image to before," \
  "each tool keeping its own state (mounts allowed); warm: the same push again."
echo "CPU s / peak RSS: the client process (user + sys; for docker push the CLI, which only drives" \
  "the daemon); dockerd s: the daemon's user + sys during the run (/proc/<pid>/stat; ferry and" \
  "skopeo make it export the image); registry s: the docker-registry process's."
echo "machine load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) on $(nproc) CPUs at the end" \
  "(other processes on the machine share the CPUs with every run)."
echo "requests by kind (round: first | new-repo | warm):"
for tool in "${TOOLS[@]}"; do
  for ((r = 1; r <= ROUNDS; r++)); do
    printf '  %-6s r%d: %s | %s | %s\n' "$tool" "$r" "${KINDS[$tool.first.r$r]}" \
      "${KINDS[$tool.new-repo.r$r]}" "${KINDS[$tool.warm.r$r]}"
  done
done

echo
echo "wall-time ratios (targets are information only):"
for scenario in "${SCENARIOS[@]}"; do
  target=0.8
  [[ $scenario == warm ]] && target=0.2
  f=$(med "${WALL[ferry.$scenario]}")
  vs_docker=$(bench_ratio "$f" "$(med "${WALL[docker.$scenario]}")")
  vs_skopeo=$(bench_ratio "$f" "$(med "${WALL[skopeo.$scenario]}")")
  printf '  %-8s  ferry/docker %5s×   ferry/skopeo %5s×   target ≤ %s× both  %s / %s\n' \
    "$scenario" "$vs_docker" "$vs_skopeo" "$target" \
    "$(bench_check "$vs_docker" "$target")" "$(bench_check "$vs_skopeo" "$target")"
done

if [[ -n $FERRY_FIRST_JSON ]] && command -v jq >/dev/null; then
  jq -r '"ferry first push (--json): \(.layers_uploaded) layers uploaded, \(.layers_skipped) skipped, \(.bytes_uploaded) bytes, size \(.size), \(.elapsed) ms; manifest \(.digest)"' \
    "$FERRY_FIRST_JSON" || true
fi

echo
if ((MISMATCH)); then
  bench_die "pushed configs differ from the engine's image (see above)"
fi
echo "configs match ($IMAGE_ID in all $CHECKED destinations of the first and new-repo pushes)"
