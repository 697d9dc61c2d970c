#!/usr/bin/env bash
# User-space instructions of a whole shardis-server (--shards 1) under a shardis-bench load,
# counted by `valgrind --tool=callgrind`: the figure that stays steady on a shared machine,
# for before/after comparisons of the same workload.
#
#   scripts/callgrind-bench.sh BINARY OUT PIPELINE "COMMAND TEMPLATE" [REQUESTS_PER_CLIENT]
#
# for example
#   scripts/callgrind-bench.sh target/release/shardis-server /tmp/mset.cg 16 \
#       "MSET __key1__ __data__ __key2__ __data__"
#
# Runs shardis-bench with 10 connections (keys k:0..99999, seed 1), shuts the server down and
# prints the total instruction count; `callgrind_annotate OUT` shows where they went. Startup
# is included: compare runs of the same size, or subtract a run of half the size.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$1 out=$2 pipeline=$3 command=$4 requests=${5:-40000}
bench=${BENCH:-target/release/shardis-bench}
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --port 0 --shards 1 >"$log" 2>&1 &
vg=$!
port=""
for _ in $(seq 1 200); do
    port=$(grep -o 'connections on 127.0.0.1:[0-9]*' "$log" | cut -d: -f2 || true)
    [[ -n $port ]] && break
    sleep 0.3
done
[[ -n $port ]] || { echo "server did not start" >&2; cat "$log" >&2; kill $vg; exit 1; }
"$bench" -p "$port" --clients 10 --pipeline "$pipeline" -n "$requests" --command "$command" \
    --key-prefix k: --key-maximum 100000 --seed 1 | tail -1
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
wait $vg || true
grep "refs" "$log"
