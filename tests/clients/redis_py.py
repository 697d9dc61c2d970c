"""Drives a server through redis-py the way applications do, printing one JSON line per step.

tests/clients.rs runs this against Shardis and against Redis and compares the lines.

usage: redis_py.py PORT PROTOCOL PART
  PART common  commands Redis 7.0 has
       fields  the field-TTL commands of Redis 7.4 (HEXPIRE ...)
       redis8  HSETEX, HGETEX, HGETDEL (Redis 8.0), checked here against their documentation
"""

import json
import sys
import time

import redis
from redis.commands.core import HashDataPersistOptions

port, protocol, part = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
r = redis.Redis(port=port, protocol=protocol, decode_responses=True)


def show(label, value):
    """One step's result; sets and tuples become sorted lists so that every server prints alike."""
    def plain(v):
        if isinstance(v, (set, frozenset)):
            return sorted(plain(x) for x in v)
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in sorted(v.items())}
        return v
    print(json.dumps([label, plain(value)]), flush=True)


def error_of(call):
    try:
        call()
    except redis.ResponseError as e:
        return "error: " + str(e)
    return "no error"


def common():
    # Profiles and carts: hashes written with mappings, read whole and in part.
    for n in range(20):
        r.hset(f"user:{n}", mapping={"name": f"user{n}", "age": 18 + n, "city": "Oslo"})
    show("hgetall", r.hgetall("user:3"))
    show("hmget", r.hmget("user:4", ["name", "nope", "age"]))
    show("hincrby", r.hincrby("user:5", "age", 7))
    show("hincrbyfloat", r.hincrbyfloat("user:5", "score", "-99.99"))
    show("hincrbyfloat again", r.hincrbyfloat("user:5", "score", "2099.97"))
    show("hsetnx", [r.hsetnx("user:6", "name", "x"), r.hsetnx("user:6", "email", "e")])
    show("hkeys hvals hlen", [sorted(r.hkeys("user:6")), sorted(r.hvals("user:6")), r.hlen("user:6")])
    show("hdel hexists", [r.hdel("user:7", "age", "city", "nope"), r.hexists("user:7", "age")])
    show("hstrlen", r.hstrlen("user:8", "name"))
    show("hscan_iter", sorted(r.hscan_iter("user:9")))
    show("hscan_iter match", sorted(r.hscan_iter("user:9", match="a*")))
    show("hrandfield", sorted(r.hrandfield("user:9", 10)))
    show("wrongtype", error_of(lambda: r.lpush("user:1", "x")))
    show("not an integer", error_of(lambda: r.hincrby("user:1", "name", 1)))

    # Counters and the fixed-window limiter, pipelined and as a transaction.
    pipe = r.pipeline(transaction=False)
    for n in range(100):
        pipe.incr(f"hits:{n % 10}")
        pipe.expire(f"hits:{n % 10}", 60, nx=True)
    show("pipeline", pipe.execute()[-4:])
    show("ttl", [r.ttl("hits:3"), r.ttl("nokey")])
    with r.pipeline(transaction=True) as tx:
        tx.incr("window")
        tx.expire("window", 60, nx=True)
        tx.mset({"a": "1", "b": "2", "c": "3"})
        tx.mget("a", "b", "nokey", "c")
        tx.incrbyfloat("f", "10.5")
        show("multi exec", tx.execute())
    with r.pipeline(transaction=True) as tx:
        tx.set("x", "1")
        tx.lpush("x", "y")
        tx.get("x")
        show("runtime error in exec", [str(v) for v in tx.execute(raise_on_error=False)])

    # WATCH retried until it goes through, as redis-py's transaction() helper does.
    def add_one(pipe):
        value = int(pipe.get("watched") or 0)
        pipe.multi()
        pipe.set("watched", value + 1)
    for _ in range(5):
        r.transaction(add_one, "watched")
    show("watch", r.get("watched"))
    with r.pipeline() as pipe:
        pipe.watch("raced")
        r.set("raced", "by another client")
        pipe.multi()
        pipe.set("raced", "mine")
        show("watch race", _watch_error(pipe))
    show("raced", r.get("raced"))

    # Scripts: register_script runs EVALSHA and falls back to EVAL after SCRIPT FLUSH.
    limiter = r.register_script(
        "local c = redis.call('INCR', KEYS[1]) "
        "if c == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return c")
    show("script", [limiter(keys=["rl:1"], args=[60]) for _ in range(3)])
    r.script_flush()
    show("script after flush", limiter(keys=["rl:1"], args=[60]))
    show("script exists", r.script_exists(limiter.sha))
    show("eval conversions", r.eval("return {1, 2.9, 'x', {3, false}, true, false, 'after'}", 0))
    show("eval error", error_of(lambda: r.eval("return redis.call('nosuch')", 0)))
    show("eval status", r.eval("return redis.status_reply('FINE')", 0))

    # Strings with options, lists as queues, the keyspace.
    show("set get", [r.set("s", "v", ex=100), r.set("s", "w", get=True), r.set("s", "z", nx=True)])
    show("getex", [r.getex("s", px=50000), r.pttl("s") > 49000, r.getex("s", persist=True), r.ttl("s")])
    show("strings", [r.append("s", "++"), r.strlen("s"), r.getrange("s", 0, 1), r.setrange("s", 5, "!")])
    show("counters", [r.incrby("n", 10), r.decr("n"), r.decrby("n", 3), error_of(lambda: r.incr("s"))])
    show("msetnx", [r.msetnx({"m1": "1", "m2": "2"}), r.msetnx({"m2": "x", "m3": "3"}), r.exists("m1", "m2", "m3")])
    show("lists", [r.rpush("q", *range(10)), r.lpop("q"), r.rpop("q", 2), r.llen("q"), r.lrange("q", 0, -1)])
    show("lists more", [r.lpos("q", 5), r.lindex("q", -1), r.lset("q", 0, "first"), r.lrem("q", 0, "3"),
                        r.linsert("q", "BEFORE", "4", "three"), r.ltrim("q", 0, 4), r.lrange("q", 0, -1)])
    show("lmove", [r.lmove("q", "q2", "LEFT", "RIGHT"), r.rpoplpush("q", "q2"), r.lrange("q2", 0, -1)])
    show("rename copy", [r.rename("q2", "q3"), r.copy("q3", "q4"), r.lrange("q4", 0, -1), r.renamenx("q3", "q4")])
    show("types", [r.type("user:1"), r.type("q4"), r.type("n"), r.type("nokey")])
    # (Not a list's: Redis 7.0 says quicklist where 7.2 and later, and Shardis, say listpack.)
    show("encodings", [r.object("encoding", k) for k in ("user:1", "n", "s")])
    show("expire options", [r.expire("n", 100), r.expire("n", 50, gt=True), r.expire("n", 50, lt=True), r.ttl("n"),
                            r.persist("n"), r.ttl("n")])
    show("scan_iter", sorted(r.scan_iter(match="user:1*", count=7)))
    show("scan_iter type", sorted(r.scan_iter(_type="list")))
    show("keys", sorted(r.keys("hits:*")))
    show("delete", [r.delete("a", "b", "nokey"), r.unlink("c"), r.touch("m1", "m2", "nokey")])
    show("dbsize", r.dbsize())
    show("select", [r.execute_command("SELECT", 1), r.dbsize(), r.execute_command("SELECT", 0)])
    show("echo ping", [r.echo("hello"), r.ping()])
    show("client name", [r.client_setname("app"), r.client_getname()])
    show("config", r.config_get("hash-max-listpack-*"))
    show("unknown command", error_of(lambda: r.execute_command("NOSUCHCOMMAND", "x")))
    show("arity", error_of(lambda: r.execute_command("GET")))
    show("flushdb", [r.flushdb(), r.dbsize()])


def _watch_error(pipe):
    try:
        pipe.execute()
    except redis.WatchError:
        return "WatchError"
    return "executed"


def fields():
    r.hset("cart", mapping={f"item:{n}": n for n in range(6)})
    show("hexpire", r.hexpire("cart", 100, "item:0", "item:1", "nope"))
    show("hexpire nx xx", [r.hexpire("cart", 200, "item:0", nx=True), r.hexpire("cart", 200, "item:2", xx=True)])
    show("hexpire gt lt", [r.hexpire("cart", 50, "item:0", gt=True), r.hexpire("cart", 50, "item:0", lt=True)])
    show("httl", r.httl("cart", "item:0", "item:1", "item:2", "nope"))
    show("hpexpire", r.hpexpire("cart", 100000, "item:3"))
    show("hpttl", [t > 99000 for t in r.hpttl("cart", "item:3")])
    at = int(time.time()) + 1000
    show("hexpireat", r.hexpireat("cart", at, "item:4"))
    show("hexpiretime", [r.hexpiretime("cart", "item:4")[0] == at, r.hpexpiretime("cart", "item:4")[0] == at * 1000])
    show("hpersist", r.hpersist("cart", "item:0", "item:5", "nope"))
    show("hexpire now", [r.hexpire("cart", 0, "item:1"), r.hexists("cart", "item:1"), r.hlen("cart")])
    show("hset clears ttl", [r.hset("cart", "item:3", "x"), r.httl("cart", "item:3")])
    show("hincrby keeps ttl", [r.hincrby("cart", "item:4", 1), r.httl("cart", "item:4")[0] > 900])
    show("no such key", [r.httl("nokey", "a"), r.hpersist("nokey", "a")])
    show("hpexpire past", [r.hpexpire("cart", 1, "item:2"), time.sleep(0.05), r.hget("cart", "item:2"),
                           r.hlen("cart")])


def redis8():
    """HSETEX, HGETEX and HGETDEL, as redis.io documents them."""
    checks = []

    def check(label, got, want):
        show(label, got)
        if got != want:
            checks.append(f"{label}: got {got!r}, want {want!r}")
    check("hsetex", r.hsetex("s8", mapping={"a": "1", "b": "2"}, ex=100), 1)
    check("hsetex fnx", r.hsetex("s8", "a", "x", data_persist_option=HashDataPersistOptions.FNX), 0)
    check("hsetex fxx", r.hsetex("s8", "a", "y", data_persist_option=HashDataPersistOptions.FXX, keepttl=True), 1)
    check("httl after keepttl", [0 < t <= 100 for t in r.httl("s8", "a", "b")], [True, True])
    check("hgetex px", r.hgetex("s8", "a", "nope", px=5000), ["y", None])
    check("hpttl", [0 < t <= 5000 for t in r.hpttl("s8", "a")], [True])
    check("hgetex persist", [r.hgetex("s8", "a", persist=True), r.httl("s8", "a")], [["y"], [-1]])
    check("hgetdel", r.hgetdel("s8", "a", "nope"), ["y", None])
    check("hgetdel last", [r.hgetdel("s8", "b"), r.exists("s8")], [["2"], 0])
    if checks:
        sys.exit("\n".join(checks))


r.flushall()
{"common": common, "fields": fields, "redis8": redis8}[part]()
