#!/usr/bin/env python3
"""Latency of other commands while a million items expire at the same millisecond.

Issue 3 asks for the p99 latency of other commands on a shard while a hash of a million fields
expires at once, compared with Redis. Redis 7.0 has no field TTLs, so its nearest equivalent is a
million keys expiring at once:

* Shardis (`--shards 1`): one hash `big` of 1,000,000 fields, all given the same expiry time with
  `HSETEX big PXAT t FIELDS ...`;
* Redis 7.0: 1,000,000 string keys, all set with `SET k:N x PXAT t`.

Both servers also hold 10,000 small string keys. While the items expire, shardis-bench sends GET
(of those keys) and PING in an open loop at a fixed --rate, so latency counts from each request's
scheduled time and a server stall is charged to every request it delayed. The measuring window
starts --lead seconds before the expiry time and lasts --window seconds. The same run with the
expiry an hour away (same data, same TTL bookkeeping, nothing expiring) is the baseline.

A second connection polls DBSIZE every 50 ms during the window: the time from the expiry moment
until the key count is back to the 10,000 small keys is how long active expiry took to reclaim
everything (for Shardis, the hash key goes when its last field does). The server's CPU seconds
over the window are read from /proc/PID/stat.

Runs alternate Shardis and Redis for --rounds rounds on fresh servers pinned to --server-cpus,
shardis-bench on --client-cpus; medians are reported.

Usage: scripts/bench-mass-expiry.py [--rounds 3] [--lock /tmp/shardis-build.lock] [--write]
Prints markdown; with --write also replaces the generated part of BENCHMARKS.md.
"""

import argparse
import datetime
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import (BuildLock, Server, binary, build_release, ensure_tools, fmt, machine, median,
                      write_section)

ITEMS = 1_000_000
SMALL_KEYS = 10_000
FIELDS_PER_COMMAND = 1000
PERCENTILES = ("p50", "p99", "p99.9", "max")


def bulk(a):
    a = a if isinstance(a, bytes) else str(a).encode()
    return b"$%d\r\n%s\r\n" % (len(a), a)


def resp(*args):
    return b"*%d\r\n" % len(args) + b"".join(bulk(a) for a in args)


def small_keys():
    return b"".join(resp("SET", f"s:{i}", "x" * 32) for i in range(SMALL_KEYS))


class Expiring:
    """The commands that create the expiring items of one server, built once with the expiry
    time left open: `commands(t)` fills it in cheaply just before loading."""

    def __init__(self, kind):
        if kind == "shardis":
            # HSETEX big PXAT <t> FIELDS 1000 f v ...: the time sits in the middle.
            self.parts = []
            for start in range(0, ITEMS, FIELDS_PER_COMMAND):
                pairs = []
                for f in range(start, start + FIELDS_PER_COMMAND):
                    pairs += [f"f{f}", "v"]
                head = b"*%d\r\n" % (6 + len(pairs)) + bulk("HSETEX") + bulk("big") + bulk("PXAT")
                tail = bulk("FIELDS") + bulk(FIELDS_PER_COMMAND) + b"".join(bulk(p) for p in pairs)
                self.parts.append((head, tail))
        else:
            # SET k:N x PXAT <t>: the time comes last, so the commands join around it.
            self.parts = [(resp("SET", f"k:{i}", "x", "PXAT", "T")[:-len(bulk("T"))], b"")
                          for i in range(ITEMS)]

    def commands(self, at_ms):
        t = bulk(at_ms)
        return b"".join(head + t + tail for head, tail in self.parts)


def load(server, data):
    out = subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], input=data,
                         capture_output=True, check=False)
    if out.returncode != 0 or b"errors: 0," not in out.stdout:
        sys.exit(f"loading the data set into {server.kind} failed: {out.stdout[-300:]!r}")


class KeyCountPoller(threading.Thread):
    """Polls DBSIZE on its own connection until stopped; remembers when the count first fell
    to `target`."""

    def __init__(self, port, target):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.target = target
        self.reached = None
        self.halt = threading.Event()

    def run(self):
        with self.sock:
            while not self.halt.wait(0.05):
                self.sock.sendall(b"DBSIZE\r\n")
                reply = b""
                while not reply.endswith(b"\r\n"):
                    reply += self.sock.recv(64)
                if int(reply[1:-2]) <= self.target and self.reached is None:
                    self.reached = time.time()

    def stop(self):
        self.halt.set()
        self.join()


def run_window(server, args):
    """One shardis-bench open-loop run of --window seconds: its latency percentiles (ms)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = ["taskset", "-c", args.client_cpus, binary("shardis-bench"),
               "--port", str(server.port), "--threads", "1", "--cpus", args.client_cpus,
               "--clients", str(args.clients), "--rate", str(args.rate),
               "--test-time", str(args.window), "--key-minimum", "0",
               "--key-maximum", str(SMALL_KEYS - 1), "--key-prefix", "s:", "--seed", "1",
               "--command", "GET __key__", "--command", "PING", "--json-out", out.name]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        try:
            doc = json.load(out)
        except ValueError:
            doc = None
    if doc is None or proc.returncode != 0:
        sys.exit(f"shardis-bench failed: {proc.stderr.strip()[-300:]}")
    if doc["totals"]["errors"]:
        sys.exit(f"shardis-bench got error replies: {doc.get('error_samples')}")
    return {p: doc["totals"]["latency_ms"][p] for p in PERCENTILES}


def measure(kind, expiring, expire, args):
    """One fresh server: loads the data, waits for the window, measures. With `expire` the items
    expire --lead seconds into the window; otherwise an hour later."""
    with Server(kind, args.server_cpus) as server:
        load(server, small_keys())
        now_ms = int(time.time() * 1000)
        at_ms = now_ms + (args.load_margin * 1000 if expire else 3_600_000)
        load(server, expiring.commands(at_ms))
        if expire:
            start = at_ms / 1000 - args.lead
            if time.time() > start:
                sys.exit(f"loading {kind} took longer than --load-margin {args.load_margin} s")
            time.sleep(start - time.time())
        poller = KeyCountPoller(server.port, SMALL_KEYS)
        poller.start()
        before = server.cpu()
        result = run_window(server, args)
        result["cpu"] = server.cpu() - before
        poller.stop()
        if expire:
            result["reclaim"] = (poller.reached - at_ms / 1000 if poller.reached is not None
                                 else float("nan"))
        return result


def summarize(results):
    keys = results[0].keys()
    return {k: median([r[k] for r in results]) for k in keys}


def percentiles(summary):
    return " / ".join(f"{summary[p]:.3f}" for p in PERCENTILES)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rate", type=int, default=20_000, help="GET+PING requests per second")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--window", type=int, default=5, help="seconds measured")
    p.add_argument("--lead", type=float, default=1.0,
                   help="seconds of the window before the expiry time")
    p.add_argument("--load-margin", type=int, default=8,
                   help="seconds from setting the expiry time to the expiry (loading happens "
                   "in between)")
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--client-cpus", default="1")
    p.add_argument("--lock", metavar="FILE",
                   help="flock FILE around the build and each round (e.g. "
                   "/tmp/shardis-build.lock) instead of running the whole script under flock")
    p.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    args = p.parse_args()

    ensure_tools(["redis-server", "redis-cli", "taskset"])
    build_release(["shardis-server", "shardis-bench"], BuildLock(args.lock))
    expiring = {kind: Expiring(kind) for kind in ("shardis", "redis")}

    results = {(kind, expire): [] for kind in expiring for expire in (True, False)}
    for r in range(args.rounds):
        with BuildLock(args.lock):
            for expire in (True, False):
                # Who runs first alternates: the first run of a round measures better.
                for kind in (("shardis", "redis"), ("redis", "shardis"))[r % 2]:
                    results[(kind, expire)].append(measure(kind, expiring[kind], expire, args))
        print(f"round {r + 1} of {args.rounds} done", file=sys.stderr)

    what = {"shardis": ("Shardis", f"1 hash, {ITEMS:,} fields (HSETEX ... PXAT)"),
            "redis": ("Redis 7.0", f"{ITEMS:,} keys (SET ... PXAT)")}
    header = ("| server | expiring at the same millisecond | reclaimed in s | "
              "p50 / p99 / p99.9 / max ms, expiring | p50 / p99 / p99.9 / max ms, baseline | "
              "server CPU s, expiring | server CPU s, baseline |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for kind in ("shardis", "redis"):
        during = summarize(results[(kind, True)])
        baseline = summarize(results[(kind, False)])
        name, items = what[kind]
        lines.append(f"| {name} | {items} | {fmt(during['reclaim'], '.2f')} | "
                     f"{percentiles(during)} | {percentiles(baseline)} | "
                     f"{during['cpu']:.2f} | {baseline['cpu']:.2f} |")

    command = "scripts/bench-mass-expiry.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "```sh",
        command.strip(),
        "```",
        "",
        f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
        f"{machine()}. Servers on CPU {args.server_cpus} (`taskset`, Shardis with `--shards "
        f"1`), shardis-bench on CPU {args.client_cpus}: GET and PING 1:1 at {args.rate:,} "
        f"requests/s (open loop, {args.clients} connections) for {args.window} s, from "
        f"{args.lead:g} s before the expiry time; baseline: the same with the expiry an hour "
        f"away. {args.rounds} round(s) alternating Shardis and Redis, medians.",
        "",
    ] + lines + [""])
    print(text)
    if args.write:
        write_section("bench-mass-expiry", text)


if __name__ == "__main__":
    main()
