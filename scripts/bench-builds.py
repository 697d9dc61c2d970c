#!/usr/bin/env python3
"""Before/after: two or more shardis-server builds (and redis-server) under the same load.

For an optimisation's before/after figure: build each version (for example in a `git worktree`
at the commit before the change) and name the binaries with --build NAME=PATH. Every server
runs pinned to --server-cpus and the load generator to --client-cpus; runs alternate between the
builds (and redis-server unless --no-redis) for --rounds rounds, and the medians are reported
with each server's CPU seconds per million operations from /proc/PID/stat (the steadier figure
on a shared machine). Each round starts with the next build in turn (give a multiple of their
number as --rounds): the first run of a round measured faster than the later ones, by 12-18% on
2026-11-22 (one binary run second and third in each round: 4.40 and 4.60 CPU s per million,
against 3.90 for the build run first).

The load is redis-benchmark (`--tests set:1,get:16`: test and pipeline depth), or with
--command a shardis-bench template (`--tests 1,16`: pipeline depths), for example the spread
MSET of issue 4:

  scripts/bench-builds.py --build before=/tmp/old/shardis-server --build after=target/release/shardis-server \\
      --shards 2 --no-redis --command "MSET __key1__ __data__ ... __key10__ __data__" --tests 1,16

Prints a markdown table for BENCHMARKS.md.
"""

import argparse
import shlex
import subprocess
import sys

from benchlib import (Server, add_run_args, binary, build_release, ensure_tools, median,
                      redis_benchmark)


def shardis_bench(port, pipeline, args):
    per_client = max(1, args.requests // args.clients)
    cmd = [binary("shardis-bench"), "--port", str(port), "--cpus", args.client_cpus,
           "--clients", str(args.clients), "--pipeline", pipeline, "-n", str(per_client),
           "--command", args.command, "--key-prefix", args.key_prefix,
           "--key-maximum", "100000", "--seed", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    out = done.stdout + done.stderr
    for line in out.splitlines():
        cells = line.split()
        if cells and cells[0] == "Totals":
            return float(cells[2]), int(cells[1])
    sys.exit(f"no result from shardis-bench: {out}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", action="append", required=True, metavar="NAME=PATH",
                   help="a shardis-server binary to measure (repeat)")
    p.add_argument("--no-redis", action="store_true", help="leave redis-server out")
    p.add_argument("--redis", action="append", default=[], metavar="NAME=PATH",
                   help="another Redis to measure beside Debian's, such as scripts/redis-7.4.sh (repeat)")
    p.add_argument("--tests", default="set:1,get:1")
    p.add_argument("--command", help="a shardis-bench template instead of redis-benchmark")
    p.add_argument("--key-prefix", default="k:")
    p.add_argument("--setup", action="append", default=[], metavar="ARGS",
                   help="a command sent (redis-cli, words split as a shell does) to each server before its "
                        "run, such as SCRIPT LOAD for an EVALSHA template; repeatable")
    add_run_args(p)
    args = p.parse_args()
    builds = {name: ("shardis", path) for name, path in (b.split("=", 1) for b in args.build)}
    if not args.no_redis:
        builds["redis"] = ("redis", None)
    builds.update({name: ("redis", path) for name, path in (b.split("=", 1) for b in args.redis)})
    ensure_tools(["taskset"] + ([] if args.command else ["redis-benchmark"])
                 + ([] if args.no_redis else ["redis-server"]))
    if args.command:
        build_release(["shardis-bench"])

    print(f"| test | {' | '.join(f'{n} ops/s | {n} CPU s / 1M ops' for n in builds)} |")
    print(f"|---|{'---|---|' * len(builds)}")
    for spec in args.tests.split(","):
        ops = {name: [] for name in builds}
        cpu = {name: [] for name in builds}
        order = list(builds.items())
        for r in range(args.rounds):
            # Each round starts with the next build: the position in a round biases the figure.
            for name, (kind, path) in order[r % len(order):] + order[:r % len(order)]:
                with Server(kind, args.server_cpus, args.shards, path=path) as server:
                    for setup in args.setup:
                        subprocess.run(["redis-cli", "-p", str(server.port)] + shlex.split(setup),
                                       check=True, capture_output=True)
                    before = server.cpu()
                    if args.command:
                        rate, done = shardis_bench(server.port, spec, args)
                    else:
                        test, pipeline = spec.split(":")
                        rate = redis_benchmark(server.port, test, pipeline, args)
                        done = args.requests
                    ops[name].append(rate)
                    cpu[name].append((server.cpu() - before) / done * 1e6)
        cells = " | ".join(f"{median(ops[n]):,.0f} | {median(cpu[n]):.2f}" for n in builds)
        print(f"| {spec} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
