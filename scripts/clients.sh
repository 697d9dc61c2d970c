#!/usr/bin/env bash
# Fetches the client libraries that tests/clients.rs drives, once, into target/clients:
# redis-py (PyPI), ioredis and node-redis (npm), at fixed versions. Prints nothing on success;
# the test finds them at target/clients/python and target/clients/node/node_modules.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/target/clients"
mkdir -p "$dir"
# The tests run in parallel processes: one fetches, the others wait for it.
exec 9>"$dir/.lock"
flock 9
if [[ ! -f $dir/python/.done ]]; then
    rm -rf "$dir/python"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --target "$dir/python" redis==8.1.0 >&2
    touch "$dir/python/.done"
fi
if [[ ! -f $dir/node/.done ]]; then
    rm -rf "$dir/node"
    mkdir -p "$dir/node"
    npm install --silent --no-audit --no-fund --prefix "$dir/node" ioredis@6.0.0 redis@6.3.1 >&2
    touch "$dir/node/.done"
fi
