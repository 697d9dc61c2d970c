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
costs as the shard count grows. The multi-key table does the same for MSET/MGET of 10 keys, once
with keys spread over the shards and once with the same keys under one {hash tag} (all on one
shard), and divides the two: the cost of a command that spans shards against one that does not.

Some workloads send several commands per request (a shardis-bench template with `;`, such as
MULTI / INCR / EXPIRE / EXEC): each request counts as one operation. A workload marked Shardis-only
(a command Redis does not have) is run against Shardis alone.

A workload that a server answers with errors (a command it does not implement yet) is reported
as such in its cell instead of stopping the run.

Usage: scripts/bench-vs-redis.sh [--rounds 3] [--test-time 3] [--lock FILE] [--write]
Prints markdown; with --write also replaces the generated part of BENCHMARKS.md. With --lock the
script takes that lock file (flock) around the build and around each table row, instead of being
run whole under flock, so that builds can run between rows.
"""

import argparse
import datetime
import functools
import hashlib
import json
import subprocess
import sys
import tempfile

from benchlib import (BuildLock, Server, binary, build_release, ensure_tools, fmt, machine, median,
                      ratio, write_section)

# Key counts of the data sets loaded before each run (see `dataset_commands`).
STRING_KEYS = 100_000
HASHES_5 = 10_000
HASHES_100 = 1_000

# The fixed-window rate limiter of issue 6 as a script, loaded (SCRIPT LOAD) before its runs.
LIMITER_SCRIPT = ("local c = redis.call('INCR', KEYS[1]) "
                  "if c == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return c")
LIMITER_SHA = hashlib.sha1(LIMITER_SCRIPT.encode()).hexdigest()

# Ten independently drawn keys per request (shardis-bench's numbered key placeholders).
MSET_10 = "MSET " + " ".join(f"__key{i}__ __data__" for i in range(1, 11))
MGET_10 = "MGET " + " ".join(f"__key{i}__" for i in range(1, 11))


class Workload:
    """One shardis-bench command mix, the keys it draws from, and the data it expects."""

    def __init__(self, wid, title, bench_args, keys, dataset=None, shardis_only=False):
        self.id = wid
        self.title = title
        self.bench_args = bench_args
        self.keys = keys
        self.dataset = dataset
        self.shardis_only = shardis_only


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
    Workload("hmget-5", "HMGET, 5 of 5 fields",
             ["--command", "HMGET __key__ field0 field1 field2 field3 field4",
              "--key-prefix", "u5:"], HASHES_5, "hashes5"),
    Workload("incr-expire", "INCR + EXPIRE NX, pipelined",
             ["--command", "INCR __key__ ; EXPIRE __key__ 60 NX", "--key-prefix", "rl:"],
             STRING_KEYS),
    Workload("evalsha-limiter", "EVALSHA limiter (INCR, EXPIRE)",
             ["--command", f"EVALSHA {LIMITER_SHA} 1 __key__ 60", "--key-prefix", "ev:"],
             STRING_KEYS, "limiter-script"),
    Workload("multi-limiter", "MULTI / INCR / EXPIRE NX / EXEC",
             ["--command", "MULTI ; INCR __key__ ; EXPIRE __key__ 60 NX ; EXEC",
              "--key-prefix", "tx:"], STRING_KEYS),
    Workload("cl-throttle", "CL.THROTTLE 15 30 60",
             ["--command", "CL.THROTTLE __key__ 15 30 60", "--key-prefix", "th:"], STRING_KEYS,
             shardis_only=True),
    Workload("mset-10", "MSET, 10 keys", ["--command", MSET_10, "--key-prefix", "m:"],
             STRING_KEYS),
    Workload("mget-10", "MGET, 10 keys", ["--command", MGET_10, "--key-prefix", "s:"],
             STRING_KEYS, "strings"),
    Workload("mset-10-tag", "MSET, 10 keys, one {hash tag}",
             ["--command", MSET_10, "--key-prefix", "{m}:"], STRING_KEYS),
    Workload("mget-10-tag", "MGET, 10 keys, one {hash tag}",
             ["--command", MGET_10, "--key-prefix", "{s}:"], STRING_KEYS, "strings-tagged"),
]

# The side-by-side default: on one shard a {hash tag} changes nothing, so the tagged variants
# only serve the multi-key table.
SIDE_BY_SIDE = [w.id for w in WORKLOADS if not w.id.endswith("-tag")]
# Pairs of the multi-key table: keys spread over the shards, and the same under one hash tag.
MULTIKEY_PAIRS = [("mset-10", "mset-10-tag"), ("mget-10", "mget-10-tag")]


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
    if name in ("strings", "strings-tagged"):
        prefix = "s:" if name == "strings" else "{s}:"
        return b"".join(resp("SET", f"{prefix}{i}", value) for i in range(STRING_KEYS))
    if name == "limiter-script":
        return resp("SCRIPT", "LOAD", LIMITER_SCRIPT)
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
        cmd = ["taskset", "-c", args.client_cpus, binary("shardis-bench"), "--port", str(server.port),
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
        kinds = ("shardis",) if w.shardis_only else ("shardis", "redis")
        for pipeline in pipelines:
            results = {kind: [] for kind in kinds}
            with BuildLock(args.lock):
                for r in range(args.rounds):
                    # Who runs first alternates: the first run of a round measures better.
                    for kind in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:
                        results[kind].append(measure(kind, 1, w, pipeline, args))
            s = summarize(results["shardis"])
            if "error" in s:
                errors.append((f"{w.title}, pipeline {pipeline}, Shardis", s["error"]))
            if w.shardis_only:
                lines.append(
                    f"| {w.title} | {pipeline} | {cell(s, 'ops_s', ',.0f')} | — | — | "
                    f"{latency(s)} | — | {cell(s, 'cpu', '.2f')} | — | — |")
                print(lines[-1], file=sys.stderr)
                continue
            r = summarize(results["redis"])
            if "error" in r:
                errors.append((f"{w.title}, pipeline {pipeline}, Redis", r["error"]))
            both = "error" not in s and "error" not in r
            lines.append(
                f"| {w.title} | {pipeline} | {cell(s, 'ops_s', ',.0f')} | {cell(r, 'ops_s', ',.0f')} | "
                f"{fmt(ratio(s['ops_s'], r['ops_s']), '.2f') if both else 'n/a'} | "
                f"{latency(s)} | {latency(r)} | {cell(s, 'cpu', '.2f')} | {cell(r, 'cpu', '.2f')} | "
                f"{fmt(ratio(r['cpu'], s['cpu']), '.2f') if both else 'n/a'} |")
            print(lines[-1], file=sys.stderr)
    notes = []
    if any(w.shardis_only for w in workloads):
        notes = ["", "— : Redis 7.0 has no such command (Shardis only)."]
    return lines + notes + error_notes(errors)


def scaling(args, workloads, pipelines, shard_counts):
    """The table of Shardis alone at each shard count, and the summaries behind it, keyed by
    (workload id, pipeline, shards)."""
    header = "| workload | pipeline | " + " | ".join(
        f"{n} shard{'s' if n > 1 else ''}: ops/s | CPU s / 1M ops" for n in shard_counts) + " |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    errors = []
    summaries = {}
    for w in workloads:
        for pipeline in pipelines:
            results = {n: [] for n in shard_counts}
            with BuildLock(args.lock):
                for r in range(args.rounds):
                    k = r % len(shard_counts)
                    for n in shard_counts[k:] + shard_counts[:k]:
                        results[n].append(measure("shardis", n, w, pipeline, args))
            cells = []
            for n in shard_counts:
                s = summaries[(w.id, pipeline, n)] = summarize(results[n])
                cells += [cell(s, "ops_s", ",.0f"), cell(s, "cpu", ".2f")]
                if "error" in s:
                    errors.append((f"{w.title}, pipeline {pipeline}, {n} shards", s["error"]))
            lines.append(f"| {w.title} | {pipeline} | " + " | ".join(cells) + " |")
            print(lines[-1], file=sys.stderr)
    return lines + error_notes(errors), summaries


def cross_shard_cost(summaries, by_id, pipelines, shard_counts):
    """CPU per operation with keys spread over the shards divided by the same with the keys under
    one hash tag, from the multi-key table's summaries."""
    header = "| command | pipeline | " + " | ".join(
        f"{n} shard{'s' if n > 1 else ''}" for n in shard_counts) + " |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for spread, tagged in MULTIKEY_PAIRS:
        for pipeline in pipelines:
            cells = []
            for n in shard_counts:
                s, t = summaries.get((spread, pipeline, n)), summaries.get((tagged, pipeline, n))
                ok = s and t and "error" not in s and "error" not in t
                cells.append(fmt(ratio(s["cpu"], t["cpu"]), ".2f") if ok else "n/a")
            lines.append(f"| {by_id[spread].title} | {pipeline} | " + " | ".join(cells) + " |")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--test-time", type=int, default=3, help="seconds per run")
    p.add_argument("--clients", type=int, default=50, help="connections in total")
    p.add_argument("--threads", type=int, default=1, help="shardis-bench threads")
    p.add_argument("--data-size", type=int, default=32)
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--client-cpus", default="1")
    p.add_argument("--workloads", default=",".join(SIDE_BY_SIDE))
    p.add_argument("--pipelines", default="1,16")
    p.add_argument("--scaling-shards", default="1,2,4", help="empty for no scaling table")
    p.add_argument("--scaling-workloads", default="set-get,hset-hget")
    p.add_argument("--multikey-shards", default="1,2,4", help="empty for no multi-key table")
    p.add_argument("--lock", metavar="FILE",
                   help="flock FILE around the build and each table row (e.g. "
                   "/tmp/shardis-build.lock) instead of running the whole script under flock")
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
    multikey_counts = [int(x) for x in args.multikey_shards.split(",") if x]

    ensure_tools(["redis-server", "redis-cli", "taskset"])
    build_release(["shardis-server", "shardis-bench"], BuildLock(args.lock))

    command = "scripts/bench-vs-redis.sh " + " ".join(sys.argv[1:])
    out = [
        "```sh",
        command.strip(),
        "```",
        "",
        f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
        f"{machine()}. Servers on CPU {args.server_cpus} (`taskset`), shardis-bench on CPU "
        f"{args.client_cpus} ({args.threads} thread, {args.clients} connections), "
        f"{args.test_time} s per run, {args.rounds} round(s) alternating Shardis and Redis "
        "(each first in every other round), "
        "medians. Each run starts a fresh server and loads its data set first (not measured). "
        "A request of several commands (`;` in the template) counts as one operation.",
        "",
    ]
    if workloads:
        out += side_by_side(args, workloads, pipelines) + [""]
    if shard_counts and scaling_workloads:
        out += [f"Shardis at --shards {', '.join(map(str, shard_counts))}, all shards on CPU "
                f"{args.server_cpus} (same pinning as above):", ""]
        out += scaling(args, scaling_workloads, pipelines, shard_counts)[0] + [""]
    if multikey_counts:
        multikey = [by_id[i] for pair in MULTIKEY_PAIRS for i in pair]
        lines, summaries = scaling(args, multikey, pipelines, multikey_counts)
        out += [f"Multi-key commands, Shardis at --shards {', '.join(map(str, multikey_counts))} "
                "(same pinning): 10 keys drawn independently, so spread over the shards, and the "
                "same keys under one {hash tag}, so all on one shard:", ""]
        out += lines + [""]
        out += ["Cross-shard cost: CPU per operation with the keys spread, divided by the same "
                "with one hash tag, at each shard count (the target is at most 2):", ""]
        out += cross_shard_cost(summaries, by_id, pipelines, multikey_counts) + [""]
    text = "\n".join(out)
    print(text)
    if args.write:
        write_section("bench-vs-redis", text)


if __name__ == "__main__":
    main()
