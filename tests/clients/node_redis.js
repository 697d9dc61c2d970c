// Drives a server through node-redis (the `redis` package) the way applications do, printing
// one JSON line per step. tests/clients.rs runs this against Shardis and against Redis and
// compares the lines.
//
// usage: node node_redis.js PORT RESP PART
//   RESP  2 or 3
//   PART  common  commands Redis 7.0 has
//         redis8  field TTLs and HSETEX, HGETEX, HGETDEL, checked here against redis.io
"use strict";
const { createClient, defineScript } = require("redis");
const { plain, show, errorOf } = require("./lib");

const [port, resp, part] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];

const limiter = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT:
    "local c = redis.call('INCR', KEYS[1]) " +
    "if c == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return c",
  parseCommand(parser, key, window) {
    parser.pushKey(key);
    parser.push(String(window));
  },
  transformReply: (reply) => reply,
});

async function common(r) {
  for (let n = 0; n < 20; n++) {
    await r.hSet(`user:${n}`, { name: `user${n}`, age: 18 + n, city: "Oslo" });
  }
  show("hGetAll", await r.hGetAll("user:3"));
  show("hmGet", await r.hmGet("user:4", ["name", "nope", "age"]));
  show("hIncrByFloat", [
    await r.hIncrByFloat("user:5", "score", 1999.98),
    await r.hIncrByFloat("user:5", "score", -99.99),
  ]);
  show("hRandField", (await r.hRandFieldCount("user:6", 5)).sort());
  const fields = [];
  for await (const batch of r.hScanIterator("user:9", { COUNT: 1 })) fields.push(...batch);
  show("hScanIterator", fields.map((f) => f.field).sort());
  show("wrongtype", await errorOf(r.lPush("user:1", "x")));

  show(
    "multi",
    await r
      .multi()
      .incr("window")
      .expire("window", 60, "NX")
      .mSet({ m1: "1", m2: "2" })
      .mGet(["m1", "m2", "none"])
      .exec(),
  );
  show("execabort", await errorOf(r.multi().set("k", "v").addCommand(["NOSUCH"]).exec()));
  show("after execabort", await r.exists("k"));

  // WATCH on an isolated connection while another writes.
  const watcher = r.duplicate();
  await watcher.connect();
  await watcher.watch("raced");
  await r.set("raced", "by another client");
  show("watch race", await errorOf(watcher.multi().set("raced", "mine").exec()));
  show("raced", await r.get("raced"));
  await watcher.quit();

  show("script", [await r.limit("rl", 60), await r.limit("rl", 60)]);
  await r.scriptFlush();
  show("script after flush", [await r.limit("rl", 60), await r.ttl("rl")]);
  show("eval", await r.eval("return {KEYS[1], ARGV[1], 3.7, {false, 'x'}}", { keys: ["key"], arguments: ["arg"] }));
  show("eval error", await errorOf(r.eval("return redis.call('GET')")));

  // Many commands in one write, without a transaction.
  const counts = await Promise.all(Array.from({ length: 200 }, (_, n) => r.incr(`hits:${n % 7}`)));
  show("pipelined", counts.slice(-7));
  show("set options", [
    await r.set("s", "hello", { expiration: { type: "EX", value: 100 }, GET: true }),
    await r.set("s", "again", { condition: "NX" }),
    await r.getEx("s", { type: "PERSIST" }),
    await r.ttl("s"),
  ]);
  show("lists", [
    await r.rPush("q", ["a", "b", "c", "d"]),
    await r.lPopCount("q", 2),
    await r.lMove("q", "q2", "RIGHT", "LEFT"),
    await r.lRange("q2", 0, -1),
    await r.lPos("q", "c"),
  ]);
  const keys = [];
  for await (const batch of r.scanIterator({ MATCH: "user:*", COUNT: 5 })) keys.push(...batch);
  show("scanIterator", keys.sort());
  show("types", [await r.type("user:1"), await r.type("q"), await r.type("s"), await r.type("none")]);
  show("dbSize", await r.dbSize());
  show("unknown command", await errorOf(r.sendCommand(["NOSUCH", "x"])));
}

async function redis8(r) {
  const failures = [];
  const check = (label, got, want) => {
    show(label, got);
    if (JSON.stringify(plain(got)) !== JSON.stringify(want)) {
      failures.push(`${label}: got ${JSON.stringify(plain(got))}, want ${JSON.stringify(want)}`);
    }
  };
  await r.hSet("cart", { a: "1", b: "2", c: "3" });
  check("hExpire", await r.hExpire("cart", ["a", "nope"], 100), [1, -2]);
  check("hExpire NX", await r.hExpire("cart", "a", 200, "NX"), [0]);
  check("hTTL", await r.hTTL("cart", ["a", "b", "nope"]), [100, -1, -2]);
  check("hPersist", await r.hPersist("cart", ["a", "b"]), [1, -1]);
  check("hExpire now", [await r.hExpire("cart", "c", 0), await r.hLen("cart")], [[2], 2]);
  check("hSetEx", await r.hSetEx("s8", { a: "1", b: "2" }, { expiration: { type: "EX", value: 100 } }), 1);
  check("hSetEx FNX", await r.hSetEx("s8", { a: "x" }, { mode: "FNX" }), 0);
  check("hSetEx FXX KEEPTTL", await r.hSetEx("s8", { a: "y" }, { mode: "FXX", expiration: "KEEPTTL" }), 1);
  check("hGetEx PX", await r.hGetEx("s8", ["a", "nope"], { expiration: { type: "PX", value: 5000 } }), ["y", null]);
  const pttl = await r.hpTTL("s8", "a");
  check("hpTTL", pttl.map((t) => t > 0 && t <= 5000), [true]);
  check("hGetEx PERSIST", [await r.hGetEx("s8", "a", { expiration: "PERSIST" }), await r.hTTL("s8", "a")], [["y"], [-1]]);
  check("hGetDel", [await r.hGetDel("s8", ["a", "b", "nope"]), await r.exists("s8")], [["y", "2", null], 0]);
  if (failures.length) throw new Error(failures.join("\n"));
}

async function main() {
  const r = createClient({ socket: { port }, RESP: resp, scripts: { limit: limiter } });
  r.on("error", (e) => console.error("client error:", e.message));
  await r.connect();
  await r.flushAll();
  await { common, redis8 }[part](r);
  await r.quit();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
