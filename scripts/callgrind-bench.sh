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
# is included: compare runs of the same size, or subtract a smaller run (instructions per
# request = the difference / (10 x the difference in REQUESTS_PER_CLIENT)). A BINARY named
# redis-server* is started as Redis (no persistence), for the same figure of Redis.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$1 out=$2 pipeline=$3 command=$4 requests=${5:-40000}
bench=${BENCH:-target/release/shardis-bench}
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [[ $(basename "$bin") == redis-server* ]]; then
    args=(--port "$port" --save "" --appendonly no)
else
    args=(--port "$port" --shards 1)
fi
valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "${args[@]}" >"$log" 2>&1 &
vg=$!
for _ in $(seq 1 200); do
    redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && break
    sleep 0.3
done
redis-cli -p "$port" PING 2>/dev/null | grep -q PONG || { echo "server did not start" >&2; cat "$log" >&2; kill $vg; exit 1; }
"$bench" -p "$port" --clients 10 --pipeline "$pipeline" -n "$requests" --command "$command" \
    --key-prefix k: --key-maximum 100000 --seed 1 | tail -1
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
wait $vg || true
grep "refs" "$log"
