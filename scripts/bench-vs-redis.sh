#!/usr/bin/env bash
# Side-by-side shardis-bench workloads against shardis-server and Debian's redis-server (installed
# if missing), pinned alike, alternating, medians; see scripts/bench-vs-redis.py for the options.
# No build may run while it measures: either run it whole under the build lock,
#   flock /tmp/shardis-build.lock scripts/bench-vs-redis.sh --write
# or let it take the lock itself around each table row, so builds can run in between:
#   scripts/bench-vs-redis.sh --lock /tmp/shardis-build.lock --write
# With a shared target directory, set CARGO_TARGET_DIR as for any cargo command.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/bench-vs-redis.py "$@"
