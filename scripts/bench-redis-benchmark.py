#!/usr/bin/env python3
"""Side-by-side redis-benchmark runs: shardis-server against Debian's redis-server.

Both servers run pinned to the same CPU (--server-cpus, default 0) and redis-benchmark to
another (--client-cpus, default 1). Runs alternate (Shardis, Redis, Shardis, Redis, ...) for
--rounds rounds and the medians are reported, with each server's CPU seconds per million
operations read from /proc/PID/stat (the fair figure on a machine where the load generator
shares the cores). With --syscalls, one extra run per server under `strace -c -f` counts system
calls per request.

Usage: scripts/bench-redis-benchmark.py [--rounds 3] [--requests 200000] [--shards 1]
Prints a markdown table for BENCHMARKS.md.
"""

import argparse
import subprocess
import sys
import time

from benchlib import Server, add_run_args, build_release, ensure_tools, median, redis_benchmark


def syscalls_per_request(kind, args, test, pipeline):
    with Server(kind, args.server_cpus, args.shards) as server:
        trace = subprocess.Popen(["strace", "-c", "-f", "-p", str(server.pid), "-o", "/tmp/strace.out"],
                                 stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        redis_benchmark(server.port, test, pipeline, args)
        trace.terminate()
        trace.wait()
    total = 0
    with open("/tmp/strace.out") as f:
        for line in f:
            if line.strip().endswith("total"):
                total = int(line.split()[3])
    return total / args.requests


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_args(p)
    p.add_argument("--tests", default="ping,set,get")
    p.add_argument("--pipelines", default="1,16")
    p.add_argument("--syscalls", action="store_true")
    args = p.parse_args()
    ensure_tools(["redis-server", "redis-benchmark", "taskset"] + (["strace"] if args.syscalls else []))
    build_release(["shardis-server"])

    rows = []
    for test in args.tests.split(","):
        for pipeline in [int(x) for x in args.pipelines.split(",")]:
            results = {"shardis": [], "redis": []}
            cpu = {"shardis": [], "redis": []}
            for r in range(args.rounds):
                # Who runs first alternates: the first run of a round measures better.
                for kind in (("shardis", "redis"), ("redis", "shardis"))[r % 2]:
                    with Server(kind, args.server_cpus, args.shards) as server:
                        before = server.cpu()
                        results[kind].append(redis_benchmark(server.port, test, pipeline, args))
                        cpu[kind].append((server.cpu() - before) / args.requests * 1e6)
            row = {
                "test": test.upper(), "pipeline": pipeline,
                "shardis": median(results["shardis"]),
                "redis": median(results["redis"]),
                "shardis_cpu": median(cpu["shardis"]),
                "redis_cpu": median(cpu["redis"]),
            }
            if args.syscalls:
                row["shardis_sys"] = syscalls_per_request("shardis", args, test, pipeline)
                row["redis_sys"] = syscalls_per_request("redis", args, test, pipeline)
            rows.append(row)
            print(f"{row['test']} P{pipeline}: shardis {row['shardis']:.0f}/s, redis {row['redis']:.0f}/s",
                  file=sys.stderr)

    header = "| test | pipeline | Shardis ops/s | Redis 7.0 ops/s | ratio | Shardis CPU s / 1M ops | Redis CPU s / 1M ops | CPU ratio |"
    if args.syscalls:
        header += " Shardis syscalls/req | Redis syscalls/req |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in rows:
        line = (f"| {r['test']} | {r['pipeline']} | {r['shardis']:,.0f} | {r['redis']:,.0f} | "
                f"{r['shardis'] / r['redis']:.2f} | {r['shardis_cpu']:.2f} | {r['redis_cpu']:.2f} | "
                f"{r['redis_cpu'] / r['shardis_cpu']:.2f} |")
        if args.syscalls:
            line += f" {r['shardis_sys']:.2f} | {r['redis_sys']:.2f} |"
        print(line)


if __name__ == "__main__":
    main()
