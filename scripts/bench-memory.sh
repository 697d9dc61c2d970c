#!/usr/bin/env bash
# Memory benchmark for hashes: the same datasets loaded into shardis-server (--shards 1) and into
# Debian's redis-server, each into a freshly started server, reporting used_memory (INFO memory)
# and the resident set size (VmRSS of /proc/PID/status) of both, and Shardis / Redis ratios, and
# how long each load took (wall time of redis-cli --pipe, which waits for every reply).
#
#   1. 1,000,000 hashes user:N {name userN, email userN@example.com, age 18-80,
#      city (one of ten European capitals), verified 0/1}
#   2. one hash bighash with 1,000,000 fields field:N -> value:N
#   3. dataset 1 with a 1-day TTL on every field (HSETEX ... EX 86400)
#   4. dataset 2 with a 1-day TTL on every field
#
# Debian's Redis 7.0 has no field TTLs, so with it datasets 3 and 4 are Shardis only.
# REDIS_SERVER=path compares with another build: 7.4 gets them as HSET + HEXPIRE, 8.0+ as HSETEX.
#
# Run by hand on a quiet machine, holding the build lock so that no build runs meanwhile:
#   flock /tmp/shardis-build.lock scripts/bench-memory.sh
# N=100000 scales the datasets down for a quick try; SHARDIS=path uses that binary instead of
# building a release one; DATASETS="3 4" measures only those. Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
# Installs Debian's redis-server and redis-tools if they are missing.
python3 scripts/benchlib.py ensure-redis
command -v "$REDIS_SERVER" >/dev/null || { echo "$REDIS_SERVER is missing" >&2; exit 1; }

if [[ -z ${SHARDIS:-} ]]; then
    cargo build --release --quiet --bin shardis-server
    SHARDIS=target/release/shardis-server
fi

work=$(mktemp -d)
pid=""
cleanup() {
    if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Writes a dataset as RESP commands (what redis-cli --pipe sends) to stdout.
#   $1: users | big    $2: "" (plain HSET), hsetex (HSETEX ... EX 86400) or hexpire (HSET, then
#   HEXPIRE ... 86400 on the same fields)
generate() {
    awk -v n="$N" -v kind="$1" -v ttl="$2" '
        function cmd(argc, args,    i, s) {
            s = "*" argc "\r\n"
            for (i = 1; i <= argc; i++) s = s "$" length(args[i]) "\r\n" args[i] "\r\n"
            printf "%s", s
        }
        BEGIN {
            srand(1)
            split("Amsterdam Athens Berlin Brussels Dublin Lisbon Madrid Paris Rome Vienna", city, " ")
            if (kind == "users") {
                for (u = 1; u <= n; u++) {
                    delete a
                    a[1] = (ttl == "hsetex" ? "HSETEX" : "HSET"); a[2] = "user:" u; c = 2
                    if (ttl == "hsetex") { a[3] = "EX"; a[4] = "86400"; a[5] = "FIELDS"; a[6] = "5"; c = 6 }
                    a[++c] = "name";     a[++c] = "user" u
                    a[++c] = "email";    a[++c] = "user" u "@example.com"
                    a[++c] = "age";      a[++c] = 18 + int(rand() * 63)
                    a[++c] = "city";     a[++c] = city[1 + int(rand() * 10)]
                    a[++c] = "verified"; a[++c] = int(rand() * 2)
                    cmd(c, a)
                    if (ttl == "hexpire") {
                        split("HEXPIRE user:" u " 86400 FIELDS 5 name email age city verified", a, " ")
                        cmd(10, a)
                    }
                }
            } else {
                batch = 1000
                for (f = 1; f <= n; f += batch) {
                    delete a
                    last = (f + batch - 1 < n) ? f + batch - 1 : n
                    a[1] = (ttl == "hsetex" ? "HSETEX" : "HSET"); a[2] = "bighash"; c = 2
                    if (ttl == "hsetex") { a[3] = "EX"; a[4] = "86400"; a[5] = "FIELDS"; a[6] = last - f + 1; c = 6 }
                    for (i = f; i <= last; i++) { a[++c] = "field:" i; a[++c] = "value:" i }
                    cmd(c, a)
                    if (ttl == "hexpire") {
                        delete a
                        a[1] = "HEXPIRE"; a[2] = "bighash"; a[3] = "86400"; a[4] = "FIELDS"; a[5] = last - f + 1; c = 5
                        for (i = f; i <= last; i++) a[++c] = "field:" i
                        cmd(c, a)
                    }
                }
            }
        }'
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a fresh server ($1: shardis | redis) on a free port; sets $pid and $port.
start() {
    port=$(free_port)
    if [[ $1 == shardis ]]; then
        "$SHARDIS" --port "$port" --shards 1 >"$work/server.log" 2>&1 &
    else
        "$REDIS_SERVER" --port "$port" --save '' --appendonly no >"$work/server.log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 200); do
        redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && return
        sleep 0.05
    done
    echo "$1 did not start:" >&2; cat "$work/server.log" >&2; exit 1
}

stop() {
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

# Loads dataset file $1 and prints "used_memory rss_bytes load_seconds".
load_and_measure() {
    local start end
    start=$(date +%s.%N)
    redis-cli -p "$port" --pipe <"$1" >"$work/pipe.log" 2>&1 || { cat "$work/pipe.log" >&2; exit 1; }
    end=$(date +%s.%N)
    grep -q "errors: 0," "$work/pipe.log" || { echo "load errors:" >&2; cat "$work/pipe.log" >&2; exit 1; }
    local used rss
    used=$(redis-cli -p "$port" INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')
    rss=$(awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$pid/status")
    echo "$used $rss $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')"
}

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# Field TTLs came with Redis 7.4 (HEXPIRE) and HSETEX with 8.0: datasets 3 and 4 go to Redis in
# the form its version takes, or not at all before 7.4. Shardis always loads them with HSETEX.
redis_version=$("$REDIS_SERVER" --version | sed -n 's/.* v=\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
read -r redis_major redis_minor <<<"$redis_version"
if (( redis_major >= 8 )); then redis_ttl=hsetex
elif (( redis_major == 7 && redis_minor >= 4 )); then redis_ttl=hexpire
else redis_ttl=""
fi

generate users "" >"$work/1.resp"
generate big "" >"$work/2.resp"
generate users hsetex >"$work/3.resp"
generate big hsetex >"$work/4.resp"
cp "$work/1.resp" "$work/1.redis.resp"
cp "$work/2.resp" "$work/2.redis.resp"
if [[ -n $redis_ttl ]]; then
    generate users "$redis_ttl" >"$work/3.redis.resp"
    generate big "$redis_ttl" >"$work/4.redis.resp"
fi
names=(
    ""
    "$N hashes user:N, 5 fields"
    "1 hash, $N fields"
    "$N hashes user:N, 5 fields, field TTLs"
    "1 hash, $N fields, field TTLs"
)

echo "| dataset | Shardis used_memory | Redis used_memory | ratio | Shardis RSS | Redis RSS | ratio | Shardis load s | Redis load s |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for d in ${DATASETS:-1 2 3 4}; do
    start shardis
    read -r s_used s_rss s_secs < <(load_and_measure "$work/$d.resp")
    stop
    if [[ -f $work/$d.redis.resp ]]; then
        start redis
        read -r r_used r_rss r_secs < <(load_and_measure "$work/$d.redis.resp")
        stop
        echo "| ${names[$d]} | $(mb "$s_used") | $(mb "$r_used") | $(ratio "$s_used" "$r_used") | $(mb "$s_rss") | $(mb "$r_rss") | $(ratio "$s_rss" "$r_rss") | $s_secs | $r_secs |"
    else
        na="n/a (no field TTLs before Redis 7.4)"
        echo "| ${names[$d]} | $(mb "$s_used") | $na | | $(mb "$s_rss") | n/a | | $s_secs | n/a |"
    fi
done
echo
echo "$("$REDIS_SERVER" --version | cut -d' ' -f1-3)${redis_ttl:+ (field TTLs loaded with $redis_ttl)}; $SHARDIS --shards 1"
