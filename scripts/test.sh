#!/usr/bin/env bash
# Runs every test of the workspace: unit tests of each crate and the end-to-end suites (which
# start shardis-server, and Debian's redis-server for the differential tests, on free ports).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo nextest run --workspace --no-fail-fast "$@"
