#!/usr/bin/env python3
"""Side-by-side shardis-bench runs: shardis-server against Debian's redis-server.

Every workload runs against each server in turn (Shardis, Redis, Shardis, Redis, ...) for
--rounds rounds, each run on a freshly started server holding the same data set, and the medians
are reported: throughput, p50/p99 latency, and the server's CPU seconds per million operations
(user + system from /proc/PID/stat, counted over the measured run only, not the loading). Both
servers are pinned to --server-cpus and shardis-bench to --client-cpus, so the comparison is
per core; CPU per operation is the steadier figure when the load generator shares the machine.

The scaling table runs Shardis alone at each of --scaling-shards with the same pinning: with one
server CPU, extra shards add no parallelism, so CPU per operation shows what cross-shard routing
costs as the shard count grows.

A workload that a server answers with errors (a command it does not implement yet) is reported
as such in its cell instead of stopping the run.

Usage: scripts/bench-vs-redis.sh [--rounds 3] [--test-time 3] [--write]
Prints markdown; with --write also replaces the generated part of BENCHMARKS.md.
"""

import argparse
import datetime
import functools
import json
import os
import platform
import re
import subprocess
import sys
import tempfile

from benchlib import (ROOT, SHARDIS_BENCH, Server, build_release, ensure_tools, fmt, median,
                      ratio)

MARK_START = "<!-- bench-vs-redis:start -->"
MARK_END = "<!-- bench-vs-redis:end -->"

# Key counts of the data sets loaded before each run (see `dataset_commands`).
STRING_KEYS = 100_000
HASHES_5 = 10_000
HASHES_100 = 1_000


class Workload:
    """One shardis-bench command mix, the keys it draws from, and the data it expects."""

    def __init__(self, wid, title, bench_args, keys, dataset=None):
        self.id = wid
        self.title = title
        self.bench_args = bench_args
        self.keys = keys
        self.dataset = dataset


WORKLOADS = [
    Workload("set-get", "SET/GET 1:10", ["--ratio", "1:10", "--key-prefix", "s:"],
             STRING_KEYS, "strings"),
    Workload("hset-hget", "HSET/HGET 1:10",
             ["--command", "HSET __key__ f __data__", "--command", "10:HGET __key__ f",
              "--key-prefix", "h:"], STRING_KEYS, "hashes"),
    Workload("hincrby", "HINCRBY", ["--command", "HINCRBY __key__ n 1", "--key-prefix", "hi:"],
             STRING_KEYS),
    Workload("incr", "INCR", ["--command", "INCR __key__", "--key-prefix", "c:"], STRING_KEYS),
    Workload("hgetall-5", "HGETALL, 5 fields",
             ["--command", "HGETALL __key__", "--key-prefix", "u5:"], HASHES_5, "hashes5"),
    Workload("hgetall-100", "HGETALL, 100 fields",
             ["--command", "HGETALL __key__", "--key-prefix", "u100:"], HASHES_100, "hashes100"),
]


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


@functools.cache
def dataset_commands(name, data_size):
    """The RESP commands that load a data set (what redis-cli --pipe sends), built once."""
    value = b"x" * data_size
    if name == "strings":
        return b"".join(resp("SET", f"s:{i}", value) for i in range(STRING_KEYS))
    if name == "hashes":
        return b"".join(resp("HSET", f"h:{i}", "f", value) for i in range(STRING_KEYS))
    fields = 5 if name == "hashes5" else 100
    prefix, count = ("u5:", HASHES_5) if fields == 5 else ("u100:", HASHES_100)
    pairs = []
    for f in range(fields):
        pairs += [f"field{f}", b"value-%d" % f]
    return b"".join(resp("HSET", f"{prefix}{i}", *pairs) for i in range(count))


def load(server, data):
    out = subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], input=data,
                         capture_output=True, check=False)
    if out.returncode != 0 or b"errors: 0," not in out.stdout:
        sys.exit(f"loading the data set into {server.kind} failed: {out.stdout[-300:]!r}")


def run_bench(server, workload, pipeline, args):
    """One shardis-bench run; returns a result dict, with "error" set when it did not work."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = ["taskset", "-c", args.client_cpus, SHARDIS_BENCH, "--port", str(server.port),
               "--threads", str(args.threads), "--cpus", args.client_cpus,
               "--clients", str(args.clients // args.threads), "--pipeline", str(pipeline),
               "--test-time", str(args.test_time), "--data-size", str(args.data_size),
               "--key-minimum", "0", "--key-maximum", str(workload.keys - 1),
               "--seed", "1", "--json-out", out.name] + workload.bench_args
        before = server.cpu()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        cpu = server.cpu() - before
        try:
            doc = json.load(out)
        except ValueError:
            doc = None
    if doc is None or proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()
        return {"error": f"shardis-bench failed: {lines[-1]}"}
    totals = doc["totals"]
    if totals["errors"]:
        samples = doc.get("error_samples") or [{"message": "?"}]
        return {"error": f"{totals['errors']:,} error replies, the first: {samples[0]['message']}"}
    ops = totals["ops"]
    return {
        "ops_s": totals["ops_per_sec"],
        "p50": totals["latency_ms"]["p50"],
        "p99": totals["latency_ms"]["p99"],
        "cpu": cpu / ops * 1e6 if ops else float("nan"),
    }


def measure(kind, shards, workload, pipeline, args):
    with Server(kind, args.server_cpus, shards) as server:
        if workload.dataset:
            load(server, dataset_commands(workload.dataset, args.data_size))
        return run_bench(server, workload, pipeline, args)


def summarize(results):
    """Medians over the rounds, or the first error if any round failed."""
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        return {"error": errors[0]}
    return {k: median([r[k] for r in results]) for k in ("ops_s", "p50", "p99", "cpu")}


def cell(summary, key, spec):
    """A figure, or "error" for a workload that failed (explained under the table)."""
    return "error" if "error" in summary else fmt(summary[key], spec)


def latency(summary):
    return "error" if "error" in summary else f"{summary['p50']:.3f} / {summary['p99']:.3f}"


def error_notes(errors):
    """Lines under a table naming each failed workload and why."""
    if not errors:
        return []
    return [""] + [f"* error, {where}: `{why}`" for where, why in errors]


def side_by_side(args, workloads, pipelines):
    header = ("| workload | pipeline | Shardis ops/s | Redis 7.0 ops/s | ratio | "
              "Shardis p50 / p99 ms | Redis p50 / p99 ms | Shardis CPU s / 1M ops | "
              "Redis CPU s / 1M ops | CPU ratio |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    errors = []
    for w in workloads:
        for pipeline in pipelines:
            results = {"shardis": [], "redis": []}
            for _ in range(args.rounds):
                for kind in ("shardis", "redis"):
                    results[kind].append(measure(kind, 1, w, pipeline, args))
            s, r = summarize(results["shardis"]), summarize(results["redis"])
            errors += [(f"{w.title}, pipeline {pipeline}, {name}", x["error"])
                       for name, x in (("Shardis", s), ("Redis", r)) if "error" in x]
            both = "error" not in s and "error" not in r
            lines.append(
                f"| {w.title} | {pipeline} | {cell(s, 'ops_s', ',.0f')} | {cell(r, 'ops_s', ',.0f')} | "
                f"{fmt(ratio(s['ops_s'], r['ops_s']), '.2f') if both else 'n/a'} | "
                f"{latency(s)} | {latency(r)} | {cell(s, 'cpu', '.2f')} | {cell(r, 'cpu', '.2f')} | "
                f"{fmt(ratio(r['cpu'], s['cpu']), '.2f') if both else 'n/a'} |")
            print(lines[-1], file=sys.stderr)
    return lines + error_notes(errors)


def scaling(args, workloads, pipelines, shard_counts):
    header = "| workload | pipeline | " + " | ".join(
        f"{n} shard{'s' if n > 1 else ''}: ops/s | CPU s / 1M ops" for n in shard_counts) + " |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    errors = []
    for w in workloads:
        for pipeline in pipelines:
            results = {n: [] for n in shard_counts}
            for _ in range(args.rounds):
                for n in shard_counts:
                    results[n].append(measure("shardis", n, w, pipeline, args))
            cells = []
            for n in shard_counts:
                s = summarize(results[n])
                cells += [cell(s, "ops_s", ",.0f"), cell(s, "cpu", ".2f")]
                if "error" in s:
                    errors.append((f"{w.title}, pipeline {pipeline}, {n} shards", s["error"]))
            lines.append(f"| {w.title} | {pipeline} | " + " | ".join(cells) + " |")
            print(lines[-1], file=sys.stderr)
    return lines + error_notes(errors)


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    found = re.search(r"v=(\S+)", version)
    return (f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, "
            f"redis-server {found.group(1) if found else '?'}")


def write_section(text):
    path = os.path.join(ROOT, "BENCHMARKS.md")
    with open(path) as f:
        doc = f.read()
    start, end = doc.find(MARK_START), doc.find(MARK_END)
    if start < 0 or end < start:
        sys.exit(f"BENCHMARKS.md has no {MARK_START} ... {MARK_END} section to replace")
    doc = doc[:start + len(MARK_START)] + "\n" + text + doc[end:]
    with open(path, "w") as f:
        f.write(doc)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--test-time", type=int, default=3, help="seconds per run")
    p.add_argument("--clients", type=int, default=50, help="connections in total")
    p.add_argument("--threads", type=int, default=1, help="shardis-bench threads")
    p.add_argument("--data-size", type=int, default=32)
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--client-cpus", default="1")
    p.add_argument("--workloads", default=",".join(w.id for w in WORKLOADS))
    p.add_argument("--pipelines", default="1,16")
    p.add_argument("--scaling-shards", default="1,2,4", help="empty for no scaling table")
    p.add_argument("--scaling-workloads", default="set-get,hset-hget")
    p.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    args = p.parse_args()
    by_id = {w.id: w for w in WORKLOADS}
    try:
        workloads = [by_id[i] for i in args.workloads.split(",") if i]
        scaling_workloads = [by_id[i] for i in args.scaling_workloads.split(",") if i]
    except KeyError as e:
        sys.exit(f"unknown workload {e}; known: {', '.join(by_id)}")
    pipelines = [int(x) for x in args.pipelines.split(",")]
    shard_counts = [int(x) for x in args.scaling_shards.split(",") if x]

    ensure_tools(["redis-server", "redis-cli", "taskset"])
    build_release(["shardis-server", "shardis-bench"])

    command = "scripts/bench-vs-redis.sh " + " ".join(sys.argv[1:])
    out = [
        "```sh",
        command.strip(),
        "```",
        "",
        f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
        f"{machine()}. Servers on CPU {args.server_cpus} (`taskset`), shardis-bench on CPU "
        f"{args.client_cpus} ({args.threads} thread, {args.clients} connections), "
        f"{args.test_time} s per run, {args.rounds} round(s) alternating Shardis and Redis, "
        "medians. Each run starts a fresh server and loads its data set first (not measured).",
        "",
    ]
    if workloads:
        out += side_by_side(args, workloads, pipelines) + [""]
    if shard_counts and scaling_workloads:
        out += [f"Shardis at --shards {', '.join(map(str, shard_counts))}, all shards on CPU "
                f"{args.server_cpus} (same pinning as above):", ""]
        out += scaling(args, scaling_workloads, pipelines, shard_counts) + [""]
    text = "\n".join(out)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
