# Shared helpers for the bench/*.sh benchmarks. Source it from a script that runs under
# `set -euo pipefail`:
#
#   . "$(dirname "$0")/lib.sh"
#   bench_init copy          # work dir, cleanup trap, LC_ALL=C
#   bench_build              # release ferry + ferry-testkit, static (in $CARGO_TARGET_DIR if set); sets $BIN
#   bench_start_registry src # sets REG_HOST[src], REG_DIR[src]; bench_stop_registry src stops it
#   bench_measure LABEL -- CMD...   # one measured run; sets M_WALL M_CPU M_RSS_KB M_REQ ...
#
# Every measured run goes through bench_measure, so all tools are timed the same way:
#   - wall: bench/timer.py's clock from just before it spawns the command until wait4 reaps it
#     (µs resolution; no shell or interpreter start-up inside the measurement), CPU: user + sys,
#     peak RSS (KB) — both from the command's rusage;
#   - before the clock starts, the daemon and the registry are left to go idle (bench_quiesce),
#     so no run pays for work the one before it left behind;
#   - requests: access-log lines that reached every registry started with bench_start_registry
#     during the run (line counts before/after, after the logs stop growing);
#   - skopeo's blob-info cache is a fresh, private directory (BENCH_SKOPEO_CACHE) so that a "cold"
#     skopeo copy cannot cross-repo-mount layers it pushed to another repository in an earlier
#     round. As root that cache lives at /var/lib/containers/cache, so the run happens in a
#     private mount namespace with a bind mount over it; otherwise XDG_DATA_HOME does it.
#
#   - other processes' CPU during the run (the command's own CPU misses work it hands to a daemon,
#     e.g. `docker push`): M_WATCH[name], user+sys (+ reaped children) of each process in
#     BENCH_WATCH[name]=pid, from /proc/<pid>/stat deltas; M_HOST_CPU, every CPU's busy time from
#     /proc/stat (all processes on the machine, so it also counts unrelated load).
#
# Knob: KEEP=1 keeps the work dir (registries' storage, config, access logs, per-run outputs).

export LC_ALL=C

BENCH_NAME=bench
BENCH_WORK=
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=
declare -A REG_HOST=() REG_DIR=() REG_PID=() REG_OUT=()
BENCH_REGS=()
BENCH_ISOLATE=none # how skopeo's blob-info cache is isolated: bind | xdg | none
BENCH_SKOPEO_CACHE=
BENCH_RUN_SEQ=0
BENCH_CLEANUP_HOOKS=() # commands (strings, eval'd) run first by bench_cleanup
declare -A BENCH_WATCH=() M_WATCH=() # name → pid to watch; name → its CPU s in the last run

bench_log() { echo "$BENCH_NAME: $*" >&2; }
bench_die() { echo "$BENCH_NAME: error: $*" >&2; exit 1; }

bench_init() { # $1: name used in messages and the work dir prefix
  BENCH_NAME=$1
  for tool in docker-registry skopeo cargo; do
    command -v "$tool" >/dev/null || bench_die "needs $tool on PATH"
  done
  command -v python3 >/dev/null || bench_die "needs python3 (bench/timer.py times every run)"
  BENCH_WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-$BENCH_NAME.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  bench_detect_isolation
}

bench_cleanup() {
  local rc=$? name pid hook
  set +e
  for hook in "${BENCH_CLEANUP_HOOKS[@]}"; do
    eval "$hook"
  done
  for name in "${BENCH_REGS[@]}"; do
    pid=${REG_PID[$name]:-}
    [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null
  done
  for name in "${BENCH_REGS[@]}"; do
    pid=${REG_PID[$name]:-}
    [[ -n $pid ]] && wait "$pid" 2>/dev/null
  done
  if [[ -n $BENCH_WORK && -d $BENCH_WORK ]]; then
    if [[ ${KEEP:-0} == 1 ]]; then
      bench_log "kept work dir $BENCH_WORK"
    else
      rm -rf "$BENCH_WORK"
    fi
  fi
  exit "$rc"
}

bench_build() {
  bench_log "building release binaries (static, as released: scripts/build-release.sh)…"
  local ferry
  ferry=$(bash "$BENCH_ROOT/scripts/build-release.sh") || bench_die "cargo build failed"
  BIN=$(dirname "$ferry")
  [[ -x $BIN/ferry && -x $BIN/ferry-testkit ]] || bench_die "no ferry / ferry-testkit in $BIN"
}

# Starts `ferry-testkit registry --dir WORK/NAME [ARGS...]` in the background and waits for
# `host=`; its other output lines (`ca=`, `certdir=`, `direct=`) are in REG_OUT[name].
bench_start_registry() { # $1: name, then extra `ferry-testkit registry` arguments
  local name=$1 dir=$BENCH_WORK/$1 host= _
  shift
  mkdir -p "$dir"
  "$BIN/ferry-testkit" registry --dir "$dir" "$@" >"$dir.out" 2>"$dir.err" &
  REG_PID[$name]=$!
  BENCH_REGS+=("$name")
  for _ in $(seq 300); do
    # The file may not exist yet: the registry's shell has not opened it.
    host=$(sed -n 's/^host=//p' "$dir.out" 2>/dev/null || true)
    [[ -n $host ]] && break
    kill -0 "${REG_PID[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $host ]]; then
    cat "$dir.err" >&2
    bench_die "registry $name did not start"
  fi
  REG_HOST[$name]=$host
  REG_DIR[$name]=$dir
  REG_OUT[$name]=$dir.out
}

# The value of `KEY=` in registry NAME's start-up output.
bench_reg_info() { # $1: name, $2: key
  sed -n "s/^$2=//p" "${REG_OUT[$1]}" | head -n 1
}

# Stops registry NAME (started with bench_start_registry) and no longer counts its requests; its
# storage and log stay in the work dir.
bench_stop_registry() { # $1: name
  local name=$1 pid=${REG_PID[$1]:-} kept=() n
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  unset 'REG_PID[$name]'
  for n in "${BENCH_REGS[@]}"; do [[ $n != "$name" ]] && kept+=("$n"); done
  BENCH_REGS=("${kept[@]}")
}

# Access-log lines (one per request) in a registry's log so far. The log also holds the
# registry's app log ("response completed" lines etc.), which this pattern skips.
bench_reg_requests() { # $1: name
  grep -cE '^[^ ]+ - [^ ]+ \[[^]]+\] "[A-Z]+ [^ ]+ HTTP/[0-9.]+" [0-9]{3} ' \
    "${REG_DIR[$1]}/registry.log" || true
}

# Space-separated access-log line counts of all registries, in BENCH_REGS order.
bench_req_snapshot() {
  local name out=()
  for name in "${BENCH_REGS[@]}"; do out+=("$(bench_reg_requests "$name")"); done
  echo "${out[*]}"
}

# The registry writes an access-log line when its handler returns, which can be just after the
# client saw the response and exited: wait until the counts stop changing.
bench_req_settled() {
  local a b
  a=$(bench_req_snapshot)
  while :; do
    sleep 0.1
    b=$(bench_req_snapshot)
    [[ $a == "$b" ]] && break
    a=$b
  done
  echo "$b"
}

# Requests between two snapshots of bench_req_snapshot/bench_req_settled ($1 before, $2 after),
# all registries together.
bench_req_total() { # $1 before, $2 after
  local sum='{ s = 0; for (i = 1; i <= NF; i++) s += $i; print s }'
  echo $(($(awk "$sum" <<<"$2") - $(awk "$sum" <<<"$1")))
}

# Runs CMD (a string, eval'd) when the script exits, before registries stop and the work dir goes.
bench_on_cleanup() { BENCH_CLEANUP_HOOKS+=("$1"); }

# CPU clock ticks used so far by process PID and the children it reaped (utime stime cutime
# cstime of /proc/PID/stat); empty when the process is gone.
bench_proc_ticks() { # $1: pid
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  awk '{ print $12 + $13 + $14 + $15 }' <<<"${stat##*) }"
}

# Busy clock ticks of all CPUs so far (user nice system irq softirq steal of /proc/stat).
bench_host_ticks() {
  awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

BENCH_CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# (after - before) ticks in seconds with 2 decimals, "n/a" when either is empty.
bench_ticks_s() { # $1 before, $2 after
  awk -v a="$1" -v b="$2" -v t="$BENCH_CLK_TCK" \
    'BEGIN { if (a == "" || b == "") print "n/a"; else printf "%.2f", (b - a) / t }'
}

# Waits (up to 5 s) until every watched process (BENCH_WATCH: the daemon, the registry) has used
# no CPU for 0.3 s: work a run left behind — the Engine deleting an export's temp files, a Go
# garbage collection — then takes nothing from the next run, whichever tool it is.
bench_quiesce() {
  local w now prev= quiet=0 _
  for _ in $(seq 50); do
    now=
    for w in "${!BENCH_WATCH[@]}"; do now+="$(bench_proc_ticks "${BENCH_WATCH[$w]}") "; done
    if [[ $now == "$prev" ]]; then
      quiet=$((quiet + 1))
      ((quiet >= 3)) && return 0
    else
      quiet=0
    fi
    prev=$now
    sleep 0.1
  done
}

bench_detect_isolation() {
  local probe=$BENCH_WORK/isolation-probe
  mkdir -p "$probe"
  if [[ $(id -u) == 0 ]]; then
    mkdir -p /var/lib/containers/cache 2>/dev/null || true
    if command -v unshare >/dev/null \
      && unshare -m --propagation private \
        sh -c "mount --bind '$probe' /var/lib/containers/cache" 2>/dev/null; then
      BENCH_ISOLATE=bind
    else
      BENCH_ISOLATE=none
      bench_log "warning: cannot isolate skopeo's blob-info cache (no mount namespace);" \
        "skopeo's later cold rounds may cross-repo-mount instead of uploading"
    fi
  else
    BENCH_ISOLATE=xdg
  fi
}

# A fresh, empty blob-info cache for the skopeo runs that follow.
bench_new_skopeo_cache() { # $1: name
  BENCH_SKOPEO_CACHE=$BENCH_WORK/skopeo-cache-$1
  mkdir -p "$BENCH_SKOPEO_CACHE/containers/cache"
}

# Runs inside the (optional) mount namespace: bind the cache, time the command.
# shellcheck disable=SC2016
BENCH_INNER='
set -u
if [[ -n ${BENCH_BIND:-} ]]; then
  mount --bind "$BENCH_BIND" /var/lib/containers/cache || exit 125
fi
timer=$1 out=$2 err=$3 tf=$4; shift 4
exec python3 "$timer" "$tf" "$@" >"$out" 2>"$err"
'

# One measured run. Aborts the script, showing the tool's stderr, if the command fails.
# Sets M_WALL (s), M_CPU (s), M_RSS_KB, M_REQ (all registries), M_REQ_BY ("name=N ..."),
# M_HOST_CPU (s, whole machine), M_WATCH[name] (s, each process of BENCH_WATCH; "n/a" if it is gone),
# M_OUT / M_ERR (files with the command's stdout / stderr).
bench_measure() { # LABEL -- CMD...
  local label=$1
  shift
  [[ $1 == -- ]] && shift
  BENCH_RUN_SEQ=$((BENCH_RUN_SEQ + 1))
  local base=$BENCH_WORK/runs/$(printf %02d "$BENCH_RUN_SEQ")-${label// /-}
  mkdir -p "$BENCH_WORK/runs"
  M_OUT=$base.out M_ERR=$base.err
  local tf=$base.time rc=0 before after
  local cache=${BENCH_SKOPEO_CACHE:-$BENCH_WORK/skopeo-cache-default}
  mkdir -p "$cache/containers/cache"

  before=$(bench_req_settled)
  bench_quiesce
  local host0 host1 w
  local -A watch0=()
  for w in "${!BENCH_WATCH[@]}"; do watch0[$w]=$(bench_proc_ticks "${BENCH_WATCH[$w]}"); done
  host0=$(bench_host_ticks)
  case $BENCH_ISOLATE in
    bind)
      BENCH_BIND=$cache/containers/cache XDG_DATA_HOME=$cache \
        unshare -m --propagation private \
        bash -c "$BENCH_INNER" inner "$BENCH_ROOT/bench/timer.py" "$M_OUT" "$M_ERR" "$tf" "$@" \
        || rc=$?
      ;;
    *)
      XDG_DATA_HOME=$cache \
        bash -c "$BENCH_INNER" inner "$BENCH_ROOT/bench/timer.py" "$M_OUT" "$M_ERR" "$tf" "$@" \
        || rc=$?
      ;;
  esac
  host1=$(bench_host_ticks)
  M_WATCH=()
  for w in "${!BENCH_WATCH[@]}"; do
    M_WATCH[$w]=$(bench_ticks_s "${watch0[$w]}" "$(bench_proc_ticks "${BENCH_WATCH[$w]}")")
  done
  M_HOST_CPU=$(bench_ticks_s "$host0" "$host1")
  if ((rc != 0)); then
    echo "$BENCH_NAME: error: $label failed (exit $rc): $*" >&2
    echo "---- stderr ----" >&2
    cat "$M_ERR" >&2 2>/dev/null || true
    [[ -s $tf ]] && { echo "---- time ----" >&2; cat "$tf" >&2; }
    exit 1
  fi
  after=$(bench_req_settled)

  local t
  t=$(tail -n 1 "$tf")
  read -r M_WALL M_USER M_SYS M_RSS_KB <<<"$t"
  M_CPU=$(awk -v u="$M_USER" -v s="$M_SYS" 'BEGIN { printf "%.2f", u + s }')
  M_WALL=$(awk -v w="$M_WALL" 'BEGIN { printf "%.4f", w }')
  local -a b=($before) a=($after)
  local i
  M_REQ=0 M_REQ_BY=
  for i in "${!BENCH_REGS[@]}"; do
    M_REQ=$((M_REQ + a[i] - b[i]))
    M_REQ_BY+="${BENCH_REGS[i]}=$((a[i] - b[i])) "
  done
  M_REQ_BY=${M_REQ_BY% }
}

# Median of the numbers given as arguments (mean of the middle two for an even count).
bench_median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# a / b with 2 decimals, "n/a" when b is 0.
bench_ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}

# "ok" / "missed" for value <= limit (information only).
bench_check() {
  awk -v v="$1" -v l="$2" 'BEGIN { if (v == "n/a") print "n/a"; else print (v + 0 <= l + 0 ? "ok" : "MISSED") }'
}

# Builds a Docker Engine image for the push benchmarks and removes it when the script exits:
# FROM scratch, LAYERS × LAYER_MIB MiB of random data (seeded), one COPY per layer, every file
# with its own fixed mtime (fuse-overlayfs diffs by size + mtime), and a unique label so no build
# cache is shared with anything else. Sets IMG (name:tag) and IMAGE_ID.
bench_docker_image() { # $1 layers, $2 MiB per layer, $3 seed
  local layers=$1 mib=$2 seed=$3 unique=$$-$RANDOM$RANDOM ctx=$BENCH_WORK/image i n
  IMG=ferry-bench-$BENCH_NAME:$unique
  IMAGE_ID=
  # shellcheck disable=SC2016 # expanded at exit (removes every tag of the image too)
  bench_on_cleanup 'if [[ -n $IMAGE_ID ]]; then
    docker rmi -f "$IMAGE_ID" >/dev/null 2>&1 || bench_log "warning: docker rmi $IMAGE_ID failed"
  else
    docker rmi -f "$IMG" >/dev/null 2>&1 || true # interrupted during the build
  fi'
  mkdir -p "$ctx"
  bench_log "building $IMG ($layers layers × $mib MiB, random, seed $seed)…"
  {
    echo "FROM scratch"
    echo "LABEL ferry.bench=$BENCH_NAME-$unique"
  } >"$ctx/Dockerfile"
  for ((i = 1; i <= layers; i++)); do
    # A seeded AES-CTR keystream: random-looking (incompressible), the same for the same seed.
    { openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$((seed * 1000 + i))")" \
      -iv 00000000000000000000000000000000 </dev/zero 2>/dev/null || true; } \
      | head -c "$((mib * 1048576))" >"$ctx/layer$i.bin"
    touch -d "@$((1577836800 + i * 3600))" "$ctx/layer$i.bin"
    echo "COPY layer$i.bin /data/layer$i.bin" >>"$ctx/Dockerfile"
  done
  touch -d @1577836800 "$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$IMG" "$ctx" >"$BENCH_WORK/build.out" 2>"$BENCH_WORK/build.err" \
    || { cat "$BENCH_WORK/build.err" >&2; bench_die "docker build failed"; }
  IMAGE_ID=$(docker image inspect -f '{{.Id}}' "$IMG")
  rm -rf "$ctx"
  n=$(docker image inspect -f '{{len .RootFS.Layers}}' "$IMG")
  bench_log "image $IMAGE_ID ($n layers)"
}
