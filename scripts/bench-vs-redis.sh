#!/usr/bin/env bash
# Side-by-side shardis-bench workloads against shardis-server and Debian's redis-server (installed
# if missing), pinned alike, alternating, medians; see scripts/bench-vs-redis.py for the options.
# Run it holding the build lock so that no build runs meanwhile:
#   flock /tmp/shardis-build.lock scripts/bench-vs-redis.sh --write
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/bench-vs-redis.py "$@"
