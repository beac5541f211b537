#!/usr/bin/env bash
# THE test command: installs what the tests need and is missing (scripts/lib/prerequisites.sh:
# apt docker-registry skopeo, PyPI moto[server]; a Docker Engine must run), builds the static
# release binary the Action image test packs (once, with its progress shown here), then runs
# every test of the workspace. Extra arguments go to `cargo test`.
#
#   bash scripts/test.sh
#   bash scripts/test.sh -- --test-threads 1
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/prerequisites.sh
ferry_prerequisites test.sh

echo "test.sh: building the release binary (scripts/build-release.sh)" >&2
bash scripts/build-release.sh >/dev/null

echo "test.sh: cargo test --workspace $*" >&2
exec cargo test --workspace "$@"
