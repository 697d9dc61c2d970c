#!/usr/bin/env python3
"""Differential check of the field-TTL commands against a Redis that has them (7.4 or later).

Debian's Redis 7.0 has no field TTLs. The test suite checks HEXPIRE and its family against
Redis's documentation, and against Redis 7.4 where `scripts/redis-7.4.sh` can fetch it
(`random_field_ttl_sequences_match_redis_7_4`); this script does the same by hand, with longer
runs and any Redis binary: random sequences of HSET, HDEL, HINCRBY, HEXPIRE, HPEXPIRE, HEXPIREAT,
HPEXPIREAT (with NX / XX / GT / LT, bad conditions, wrong field counts, times in the past, at
and past the 2^46 ms limit), HPERSIST, HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME, HGETALL, HLEN,
HEXISTS, OBJECT ENCODING and EXISTS, on a hash, a string and a missing key, go to both servers
and every reply must match. HGETALL is compared as a set of pairs (field order is unspecified),
HTTL and HPTTL as "a remaining time" or their negative codes, and an expiry set relative to the
server's clock (HEXPIRE, HPEXPIRE) to within the time between the two calls.

    scripts/diff-field-ttl.py [--shardis target/release/shardis-server] \\
        [--redis scripts/redis-7.4.sh] [--seed 1] [--commands 20000] [--listpack-entries N]

`--listpack-entries 1` sets `hash-max-listpack-entries` on both so that the hashes are tables.
Prints the first differences and their count; exits 1 if there is any.
"""

import argparse
import os
import random
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# An absolute expiry far ahead (2096), so that nothing set from it expires during a run.
FAR_MS = 4_000_000_000_000
FIELDS = [f"f{i}" for i in range(6)]


class Conn:
    """A bare RESP2 client: replies as ints, bytes, None, lists, ("ok", text) or ("err", text)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self.reply()

    def fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill(len(self.buf) + 1)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return ("ok", rest)
        if kind == b"-":
            return ("err", rest)
        if kind == b":":
            return int(rest)
        if kind in (b"$", b"*") and int(rest) < 0:
            return None
        if kind == b"$":
            n = int(rest)
            self.fill(n + 2)
            value, self.buf = self.buf[:n], self.buf[n + 2 :]
            return value
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise ValueError(f"unexpected reply line {line!r}")


def start(argv):
    """Starts a server on a free port; returns the process and a connection to it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen(argv + ["--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            conn = Conn(port)
            conn.cmd("PING")
            return proc, conn
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"{argv[0]} exited with status {proc.returncode}")
            time.sleep(0.05)
    sys.exit(f"{argv[0]} did not start")


class Commands:
    """Random commands over keys h (a hash), s (a string) and nokey."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def fields(self):
        r = self.rng
        n = r.choice([1, 1, 2, 3, 6])
        names = [r.choice(FIELDS) for _ in range(n)]
        count = r.choices([n, n + 1, 0, -1, "x"], weights=[93, 3, 2, 1, 1])[0]
        return ["FIELDS", count] + names

    def condition(self):
        return self.rng.choice([[], [], [], ["NX"], ["XX"], ["GT"], ["LT"], ["nx"], ["NX", "XX"], ["BOGUS"]])

    def next(self):
        r = self.rng
        key = r.choice(["h", "h", "h", "s", "nokey"])
        roll = r.random()
        if roll < 0.20:
            pairs = [[f, f"v{r.randrange(9)}"] for f in r.sample(FIELDS, r.randrange(1, 4))]
            return ["HSET", key] + sum(pairs, [])
        if roll < 0.25:
            return ["HDEL", key, r.choice(FIELDS)]
        if roll < 0.40:
            at = r.choice([FAR_MS + r.randrange(1000) * 1000, FAR_MS + r.randrange(3) * 1000, 0, 1000, -5,
                           2**46, 2**46 - 1, 2**63])
            return ["HPEXPIREAT", key, at] + self.condition() + self.fields()
        if roll < 0.48:
            at = r.choice([FAR_MS // 1000 + r.randrange(5), 0, 1, 2**46 // 1000, 2**46])
            return ["HEXPIREAT", key, at] + self.condition() + self.fields()
        if roll < 0.54:
            ms = r.choice([0, 10**12, 10**12 + 3_600_000, -1, 2**46])
            return ["HPEXPIRE", key, ms] + self.condition() + self.fields()
        if roll < 0.58:
            return ["HEXPIRE", key, r.choice([0, 10**9, 10**9 + 3600, -1])] + self.condition() + self.fields()
        if roll < 0.66:
            return ["HPERSIST", key] + self.fields()
        if roll < 0.74:
            return ["HPEXPIRETIME", key] + self.fields()
        if roll < 0.78:
            return ["HEXPIRETIME", key] + self.fields()
        if roll < 0.82:
            return [r.choice(["HTTL", "HPTTL"]), key] + self.fields()
        if roll < 0.86:
            return ["HGETALL", key]
        if roll < 0.89:
            return ["HLEN", key]
        if roll < 0.92:
            return ["HEXISTS", key, r.choice(FIELDS)]
        if roll < 0.95:
            return ["HINCRBY", key, r.choice(FIELDS), 1]
        if roll < 0.97:
            return ["OBJECT", "ENCODING", key]
        return ["EXISTS", key]


def comparable(command, mine, theirs):
    """The two replies with what may rightly differ between two servers taken out."""
    name = command[0]
    if not (isinstance(mine, list) and isinstance(theirs, list)):
        return mine, theirs
    if name == "HGETALL":
        return sorted(zip(mine[::2], mine[1::2])), sorted(zip(theirs[::2], theirs[1::2]))
    if name in ("HTTL", "HPTTL"):
        remaining = lambda replies: [x if not isinstance(x, int) or x < 0 else "remaining" for x in replies]
        return remaining(mine), remaining(theirs)
    if name in ("HPEXPIRETIME", "HEXPIRETIME") and len(mine) == len(theirs):
        slack = 100 if name == "HPEXPIRETIME" else 1
        close = lambda x, y: isinstance(x, int) and isinstance(y, int) and abs(x - y) <= slack
        return [y if close(x, y) else x for x, y in zip(mine, theirs)], theirs
    return mine, theirs


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shardis", default=os.path.join(ROOT, "target", "release", "shardis-server"))
    p.add_argument("--redis", default=os.path.join(ROOT, "scripts", "redis-7.4.sh"))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--commands", type=int, default=20000)
    p.add_argument("--listpack-entries", type=int)
    args = p.parse_args()

    shardis, mine = start([args.shardis, "--shards", "1"])
    redis, theirs = start([args.redis, "--save", "", "--appendonly", "no"])
    try:
        version = theirs.cmd("INFO", "server").split(b"redis_version:")[1].split(b"\r\n")[0].decode()
        for conn in (mine, theirs):
            conn.cmd("SET", "s", "x")
            if args.listpack_entries is not None:
                conn.cmd("CONFIG", "SET", "hash-max-listpack-entries", args.listpack_entries)
        commands = Commands(args.seed)
        diffs = 0
        for i in range(args.commands):
            if i % 500 == 0:
                for conn in (mine, theirs):
                    conn.cmd("DEL", "h")
            command = commands.next()
            a, b = comparable(command, mine.cmd(*command), theirs.cmd(*command))
            if a != b:
                diffs += 1
                if diffs <= 20:
                    print(" ".join(map(str, command)), f"\n  shardis: {a}\n  redis:   {b}")
                for conn in (mine, theirs):
                    conn.cmd("DEL", "h")
        print(f"{args.commands} commands (seed {args.seed}) against Redis {version}: {diffs} differences")
        return 1 if diffs else 0
    finally:
        for proc in (shardis, redis):
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
