#!/usr/bin/env python3
"""Runs one command and writes "WALL_S USER_S SYS_S MAXRSS_KB" to a file.

bench/lib.sh times every tool through this, so all are timed the same way. The clock starts just
before the command is spawned and stops when wait4 reaps it: the interpreter's own start-up and
the shell around it are outside the measurement (they were ~1 ms per run with bash
$EPOCHREALTIME around /usr/bin/time, which matters when a tool's run is a few ms). CPU time and
peak RSS come from the command's rusage (wait4), as GNU time reports them.

usage: timer.py OUTFILE CMD [ARG...]   (stdin/stdout/stderr are the command's)
"""
import os
import sys
import time


def main() -> int:
    if len(sys.argv) < 3:
        print("usage: timer.py OUTFILE CMD [ARG...]", file=sys.stderr)
        return 2
    out, argv = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ)
    except OSError as e:
        print(f"timer.py: cannot run {argv[0]}: {e}", file=sys.stderr)
        return 127
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    with open(out, "w") as f:
        f.write(f"{wall:.6f} {usage.ru_utime:.6f} {usage.ru_stime:.6f} {usage.ru_maxrss}\n")
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as a shell reports


if __name__ == "__main__":
    sys.exit(main())
