#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer and stable sanitizer-coverage instrumentation, then
# runs each for FUZZ_SECONDS (default 10) starting from its seeds. Fails on the first crash,
# panic, leak or timeout; the input is left in fuzz/artifacts/<target>/.
#
#   FUZZ_SECONDS=600 bash fuzz/run.sh            # every target, 10 minutes each
#   FUZZ_SECONDS=60 bash fuzz/run.sh manifest    # only the named targets
#   FUZZ_JOBS=2 ...                              # targets run side by side (default 1)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
seconds="${FUZZ_SECONDS:-10}"
jobs="${FUZZ_JOBS:-1}"
host="$(rustc -vV | sed -n 's/^host: //p')"

# What `cargo fuzz build` passes on nightly, minus -Zsanitizer: these are stable options.
export RUSTFLAGS="${RUSTFLAGS:-} -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# Its own target dir: these flags would otherwise rebuild the workspace's target/ each time.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"

all=(reference manifest www_authenticate docker_config docker_archive tag_policy)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi

bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
# --target: the instrumentation must not reach build scripts and proc macros.
cargo build --release --locked --target "$host" "${bins[@]}"

run_one() {
    local t="$1" rc=0
    mkdir -p "corpus/$t" "artifacts/$t"
    # New inputs go to corpus/<t> (git-ignored); seeds/<t> is read only.
    "$CARGO_TARGET_DIR/$host/release/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
        "corpus/$t" "seeds/$t" > "artifacts/$t.log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "FAIL $t (exit $rc), see fuzz/artifacts/$t.log:" >&2
        tail -n 40 "artifacts/$t.log" >&2
        return 1
    fi
    echo "ok   $t: $(grep -E '^stat::number_of_executed_units' "artifacts/$t.log" | awk '{print $2}') runs, $(ls "corpus/$t" | wc -l) corpus files, $(grep -oE 'cov: [0-9]+ ft: [0-9]+' "artifacts/$t.log" | tail -n 1)"
}

failed=0
running=0
pids=()
for t in "${targets[@]}"; do
    run_one "$t" &
    pids+=($!)
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
exit "$failed"
