// Drives a server through ioredis the way applications do, printing one JSON line per step.
// tests/clients.rs runs this against Shardis and against Redis 7.0 and compares the lines.
//
// usage: node ioredis.js PORT
"use strict";
const Redis = require("ioredis");
const { show, errorOf } = require("./lib");

const port = Number(process.argv[2]);

async function drain(stream) {
  const all = [];
  for await (const batch of stream) all.push(...batch);
  return all;
}

async function main() {
  const r = new Redis({ port });
  // Commands sent in the same tick go out as one pipeline.
  const auto = new Redis({ port, enableAutoPipelining: true });
  await r.flushall();

  for (let n = 0; n < 20; n++) {
    await r.hset(`user:${n}`, { name: `user${n}`, age: 18 + n, city: "Oslo" });
  }
  show("hgetall", await r.hgetall("user:3"));
  show("hmget", await r.hmget("user:4", "name", "nope", "age"));
  show("hincrbyfloat", [
    await r.hincrbyfloat("user:5", "score", "1999.98"),
    await r.hincrbyfloat("user:5", "score", "-99.99"),
  ]);
  const fields = await drain(r.hscanStream("user:9", { count: 1 }));
  show("hscanStream", fields.length);
  show("wrongtype", await errorOf(r.lpush("user:1", "x")));

  // Auto-pipelined counters: one write for many commands.
  const counts = await Promise.all(
    Array.from({ length: 200 }, (_, n) => auto.incr(`hits:${n % 7}`)),
  );
  show("auto pipeline", counts.slice(-7));
  const windows = await Promise.all(
    Array.from({ length: 7 }, (_, n) => auto.expire(`hits:${n}`, 60, "NX")),
  );
  show("auto pipeline expire", windows);

  const piped = await r
    .pipeline()
    .set("a", "1")
    .incr("a")
    .lpush("a", "x")
    .get("a")
    .exec();
  show("pipeline", piped.map(([err, v]) => (err ? "error: " + err.message : v)));

  show(
    "multi",
    await r.multi().incr("window").expire("window", 60, "NX").mset("m1", "1", "m2", "2").mget("m1", "m2", "none").exec(),
  );
  show("execabort", await errorOf(r.multi().set("k", "v").call("NOSUCH").exec()));
  show("after execabort", await r.exists("k"));

  // WATCH on one connection while another writes.
  const watcher = new Redis({ port });
  await watcher.watch("raced");
  await r.set("raced", "by another client");
  show("watch race", await watcher.multi().set("raced", "mine").exec());
  show("raced", await r.get("raced"));
  watcher.disconnect();

  // defineCommand runs EVALSHA and falls back to EVAL on NOSCRIPT.
  r.defineCommand("limit", {
    numberOfKeys: 1,
    lua: "local c = redis.call('INCR', KEYS[1]) if c == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return c",
  });
  show("script", [await r.limit("rl", 60), await r.limit("rl", 60)]);
  await r.script("FLUSH");
  show("script after flush", [await r.limit("rl", 60), await r.ttl("rl")]);
  show("eval", await r.eval("return {KEYS[1], ARGV[1], 3.7, {false, 'x'}}", 1, "key", "arg"));
  show("eval error", await errorOf(r.eval("return redis.call('GET')", 0)));
  show("eval pcall", await r.eval("local e = redis.pcall('INCR', KEYS[1]) return e['err']", 1, "user:1"));

  show("lists", [
    await r.rpush("q", "a", "b", "c", "d"),
    await r.lpop("q", 2),
    await r.lmove("q", "q2", "RIGHT", "LEFT"),
    await r.lrange("q2", 0, -1),
  ]);
  show("strings", [
    await r.set("s", "hello", "EX", 100, "GET"),
    await r.getrange("s", 1, 3),
    await r.getdel("s"),
    await r.exists("s"),
  ]);
  show("scanStream", (await drain(r.scanStream({ match: "user:*", count: 5 }))).sort());
  show("keys", (await r.keys("hits:*")).sort());
  show("dbsize", await r.dbsize());
  show("unknown command", await errorOf(r.call("NOSUCH", "x")));

  r.disconnect();
  auto.disconnect();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
