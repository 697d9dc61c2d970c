//! Hash commands end to end: reply shapes in RESP2 and RESP3, field TTLs against their
//! documented behaviour (Redis 7.4 / 8.0, which Debian's 7.0 lacks), active field expiry without
//! client access, and randomized sequences of the 7.0 hash commands compared with redis-server.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::harness::{encode, Raw, RealRedis, Server, TOPOLOGIES};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// An array of integer replies, as RESP.
fn ints(values: &[i64]) -> String {
    let mut s = format!("*{}\r\n", values.len());
    for v in values {
        s.push_str(&format!(":{v}\r\n"));
    }
    s
}

#[test]
fn hash_commands_through_the_redis_crate() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut con = server.client();
        // Keys spread over every shard.
        for k in 0..20 {
            let key = format!("user:{k}");
            let added: i64 = redis::cmd("HSET")
                .arg(&key)
                .arg(&["name", "ann", "age", "40"])
                .query(&mut con)
                .unwrap();
            assert_eq!(added, 2);
            let age: i64 = redis::cmd("HINCRBY")
                .arg(&key)
                .arg("age")
                .arg(k)
                .query(&mut con)
                .unwrap();
            assert_eq!(age, 40 + k);
        }
        for k in 0..20 {
            let all: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
                .arg(format!("user:{k}"))
                .query(&mut con)
                .unwrap();
            assert_eq!(all.len(), 2);
            assert_eq!(all["age"], (40 + k).to_string());
        }
        let deleted: i64 = redis::cmd("HDEL")
            .arg("user:3")
            .arg(&["name", "age", "nosuch"])
            .query(&mut con)
            .unwrap();
        assert_eq!(deleted, 2);
        let exists: i64 = redis::cmd("EXISTS").arg("user:3").query(&mut con).unwrap();
        assert_eq!(exists, 0, "the emptied hash is gone ({shards} shards)");
        let float: String = redis::cmd("HINCRBYFLOAT")
            .arg("f")
            .arg("x")
            .arg("1999.98")
            .query(&mut con)
            .unwrap();
        assert_eq!(float, "1999.97999999999999998");
    }
}

/// Field names that many hashes use are stored once per process (a Shardis encoding, see
/// `crates/store/src/field_names.rs`): the hashes must answer exactly as before, on every
/// shard, also after moving between shards, and take less memory.
#[test]
fn common_field_names_are_shared_and_answer_the_same() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut con = server.client();
        let profile = |k: usize| {
            vec![
                ("name".to_string(), format!("user{k:04}")),
                ("email".to_string(), format!("user{k:04}@example.com")),
                ("age".to_string(), (18 + k % 60).to_string()),
                ("city".to_string(), "Lisbon".to_string()),
                ("verified".to_string(), (k % 2).to_string()),
            ]
        };
        for k in 0..400 {
            let added: i64 = redis::cmd("HSET")
                .arg(format!("user:{k}"))
                .arg(profile(k))
                .query(&mut con)
                .unwrap();
            assert_eq!(added, 5);
        }
        for k in 0..400 {
            let mut all: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(format!("user:{k}"))
                .query(&mut con)
                .unwrap();
            all.sort();
            let mut want = profile(k);
            want.sort();
            assert_eq!(all, want, "user:{k}, {shards} shards");
        }
        let usage = |con: &mut redis::Connection, key: &str| -> i64 {
            redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .query(con)
                .unwrap()
        };
        let (first, last) = (usage(&mut con, "user:0"), usage(&mut con, "user:399"));
        // 24 bytes of names fewer, in allocator size classes.
        assert!(
            last + 16 <= first,
            "user:0 {first} bytes, user:399 {last} ({shards} shards)"
        );

        // Every change on a hash whose names are shared, then a move to other shards.
        let key = "user:399";
        let cmd = |con: &mut redis::Connection, args: &[&str]| -> redis::Value {
            redis::cmd(args[0]).arg(&args[1..]).query(con).unwrap()
        };
        cmd(&mut con, &["HDEL", key, "email"]);
        cmd(
            &mut con,
            &["HSET", key, "email", "new@example.com", "extra", "1"],
        );
        cmd(&mut con, &["HINCRBY", key, "age", "2"]);
        cmd(&mut con, &["HEXPIRE", key, "1000", "FIELDS", "1", "city"]);
        let ttl: Vec<i64> = redis::cmd("HTTL")
            .arg(key)
            .arg(&["FIELDS", "2", "city", "name"])
            .query(&mut con)
            .unwrap();
        assert!(ttl[0] > 990 && ttl[0] <= 1000 && ttl[1] == -1, "{ttl:?}");
        let gone: Vec<String> = redis::cmd("HGETDEL")
            .arg(key)
            .arg(&["FIELDS", "1", "verified"])
            .query(&mut con)
            .unwrap();
        assert_eq!(gone, ["1"]);
        for target in ["moved:a", "moved:b", "moved:c", "moved:d"] {
            cmd(&mut con, &["COPY", key, target]);
            let mut all: Vec<(String, String)> =
                redis::cmd("HGETALL").arg(target).query(&mut con).unwrap();
            all.sort();
            let want: Vec<(String, String)> = [
                ("age", "59"),
                ("city", "Lisbon"),
                ("email", "new@example.com"),
                ("extra", "1"),
                ("name", "user0399"),
            ]
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect();
            assert_eq!(all, want, "{target}, {shards} shards");
        }
        cmd(&mut con, &["RENAME", "moved:a", "moved:z"]);
        let name: String = redis::cmd("HGET")
            .arg("moved:z")
            .arg("name")
            .query(&mut con)
            .unwrap();
        assert_eq!(name, "user0399");
    }
}

#[test]
fn resp3_reply_shapes() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        assert!(raw.cmd(&["HELLO", "3"]).starts_with('%'));
        assert_eq!(raw.cmd(&["HGETALL", "nokey"]), "%0\r\n");
        assert_eq!(raw.cmd(&["HGET", "nokey", "f"]), "_\r\n");
        assert_eq!(raw.cmd(&["HRANDFIELD", "nokey"]), "_\r\n");
        raw.cmd(&["HSET", "h", "f", "v"]);
        assert_eq!(raw.cmd(&["HGETALL", "h"]), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
        assert_eq!(raw.cmd(&["HKEYS", "h"]), "*1\r\n$1\r\nf\r\n");
        assert_eq!(
            raw.cmd(&["HRANDFIELD", "h", "-2", "WITHVALUES"]),
            "*2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
        assert_eq!(
            raw.cmd(&["HSCAN", "h", "0"]),
            "*2\r\n$1\r\n0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
        assert_eq!(raw.cmd(&["HMGET", "h", "f", "g"]), "*2\r\n$1\r\nv\r\n_\r\n");
        assert_eq!(raw.cmd(&["HELLO", "2"]).chars().next(), Some('*'));
        assert_eq!(raw.cmd(&["HGETALL", "h"]), "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
        assert_eq!(
            raw.cmd(&["HRANDFIELD", "h", "-1", "WITHVALUES"]),
            "*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
    }
}

/// The field-TTL commands answer as Redis 8 documents them.
#[test]
fn field_ttls_as_documented() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        let far = now_ms() + 3_600_000;
        assert_eq!(
            raw.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]),
            ":3\r\n"
        );
        assert_eq!(
            raw.cmd(&[
                "HPEXPIREAT",
                "h",
                &far.to_string(),
                "FIELDS",
                "2",
                "a",
                "nosuch"
            ]),
            ints(&[1, -2])
        );
        assert_eq!(
            raw.cmd(&["HEXPIRE", "h", "100", "NX", "FIELDS", "2", "a", "b"]),
            ints(&[0, 1])
        );
        assert_eq!(
            raw.cmd(&["HEXPIRE", "h", "200", "GT", "FIELDS", "2", "b", "c"]),
            ints(&[1, 0])
        );
        assert_eq!(
            raw.cmd(&["HEXPIRE", "h", "50", "LT", "FIELDS", "2", "b", "c"]),
            ints(&[1, 1])
        );
        assert_eq!(
            raw.cmd(&["HTTL", "h", "FIELDS", "3", "b", "c", "x"]),
            ints(&[50, 50, -2])
        );
        assert_eq!(
            raw.cmd(&["HPEXPIRETIME", "h", "FIELDS", "1", "a"]),
            ints(&[far as i64])
        );
        assert_eq!(
            raw.cmd(&["HPERSIST", "h", "FIELDS", "2", "a", "a"]),
            ints(&[1, -1])
        );
        assert_eq!(raw.cmd(&["HTTL", "h", "FIELDS", "1", "a"]), ints(&[-1]));
        // A time that is not in the future deletes the field at once: code 2.
        assert_eq!(
            raw.cmd(&["HEXPIRE", "h", "0", "FIELDS", "1", "c"]),
            ints(&[2])
        );
        assert_eq!(
            raw.cmd(&["HPEXPIREAT", "h", "1", "FIELDS", "1", "b"]),
            ints(&[2])
        );
        assert_eq!(raw.cmd(&["HGETALL", "h"]), "*2\r\n$1\r\na\r\n$1\r\n1\r\n");
        assert_eq!(
            raw.cmd(&["HEXPIREAT", "h", "1", "FIELDS", "1", "a"]),
            ints(&[2])
        );
        assert_eq!(
            raw.cmd(&["EXISTS", "h"]),
            ":0\r\n",
            "the last field took the key"
        );
        assert_eq!(raw.cmd(&["HTTL", "h", "FIELDS", "1", "a"]), ints(&[-2]));
        // HSET clears a field's TTL, HINCRBY keeps it.
        raw.cmd(&[
            "HSETEX", "t", "EX", "100", "FIELDS", "2", "n", "1", "s", "x",
        ]);
        raw.cmd(&["HINCRBY", "t", "n", "5"]);
        raw.cmd(&["HSET", "t", "s", "y"]);
        assert_eq!(
            raw.cmd(&["HTTL", "t", "FIELDS", "2", "n", "s"]),
            ints(&[100, -1])
        );
        // HSETEX conditions and HGETEX / HGETDEL.
        assert_eq!(
            raw.cmd(&["HSETEX", "t", "FNX", "FIELDS", "1", "n", "0"]),
            ":0\r\n"
        );
        assert_eq!(
            raw.cmd(&["HSETEX", "t", "FXX", "KEEPTTL", "FIELDS", "1", "n", "0"]),
            ":1\r\n"
        );
        assert_eq!(raw.cmd(&["HTTL", "t", "FIELDS", "1", "n"]), ints(&[100]));
        assert_eq!(
            raw.cmd(&["HGETEX", "t", "PERSIST", "FIELDS", "2", "n", "zz"]),
            "*2\r\n$1\r\n0\r\n$-1\r\n"
        );
        assert_eq!(raw.cmd(&["HTTL", "t", "FIELDS", "1", "n"]), ints(&[-1]));
        assert_eq!(
            raw.cmd(&["HGETDEL", "t", "FIELDS", "2", "n", "s"]),
            "*2\r\n$1\r\n0\r\n$1\r\ny\r\n"
        );
        assert_eq!(raw.cmd(&["EXISTS", "t"]), ":0\r\n");
        // A short TTL runs out for real.
        raw.cmd(&["HSET", "soon", "a", "1", "b", "2"]);
        assert_eq!(
            raw.cmd(&["HPEXPIRE", "soon", "30", "FIELDS", "1", "a"]),
            ints(&[1])
        );
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(raw.cmd(&["HGET", "soon", "a"]), "$-1\r\n");
        assert_eq!(raw.cmd(&["HLEN", "soon"]), ":1\r\n");
        assert_eq!(raw.cmd(&["HEXISTS", "soon", "a"]), ":0\r\n");
        // Errors name the problem and change nothing.
        assert_eq!(
            raw.cmd(&["HEXPIRE", "soon", "10", "FIELDS", "2", "b"]),
            "-ERR The `numfields` parameter must match the number of arguments\r\n"
        );
        assert_eq!(
            raw.cmd(&["HEXPIRE", "soon", "10", "FIELDS", "0", "b"]),
            "-ERR Parameter `numFields` should be greater than 0\r\n"
        );
        assert_eq!(
            raw.cmd(&["HTTL", "soon", "FIELDS", "0", "b"]),
            "-ERR Number of fields must be a positive integer\r\n"
        );
        assert_eq!(
            raw.cmd(&["HPEXPIRE", "soon", "10", "NX", "b", "c"]),
            "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n"
        );
        assert_eq!(
            raw.cmd(&["HSETEX", "soon", "EX", "1", "PX", "1", "FIELDS", "1", "b", "v"]),
            "-ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified\r\n"
        );
        assert_eq!(raw.cmd(&["HTTL", "soon", "FIELDS", "1", "b"]), ints(&[-1]));
        assert_eq!(
            raw.cmd(&["HEXPIRE", "soon", "10", "FIELDS", "1"]),
            "-ERR wrong number of arguments for 'hexpire' command\r\n"
        );
    }
}

#[test]
fn hash_limits_are_configurable() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &["--hash-max-listpack-entries", "4"]);
        let mut raw = server.raw();
        assert_eq!(
            raw.cmd(&["CONFIG", "GET", "hash-max-listpack-entries"]),
            "*2\r\n$25\r\nhash-max-listpack-entries\r\n$1\r\n4\r\n"
        );
        assert_eq!(
            raw.cmd(&["CONFIG", "SET", "hash-max-ziplist-value", "8"]),
            "+OK\r\n"
        );
        assert_eq!(
            raw.cmd(&["CONFIG", "GET", "hash-max-listpack-value"]),
            "*2\r\n$23\r\nhash-max-listpack-value\r\n$1\r\n8\r\n"
        );
        // Past both limits the hashes keep working (their encoding is a unit-test matter).
        let mut cmd = vec!["HSET".to_owned(), "h".to_owned()];
        for i in 0..10 {
            cmd.push(format!("f{i}"));
            cmd.push("a-value-longer-than-eight-bytes".to_owned());
        }
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert_eq!(raw.cmd(&args), ":10\r\n");
        assert_eq!(raw.cmd(&["HLEN", "h"]), ":10\r\n");
    }
}

/// HRANDFIELD on a big hash (a table) whose deletions left gaps in its index: single picks,
/// distinct picks (few of many, and most of the hash), the whole hash, and picks with
/// repetition that reach every field about equally often, each with its own value.
#[test]
fn hrandfield_picks_every_field_of_a_big_hash_alike() {
    use std::collections::{HashMap, HashSet};
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut con = server.client();
        let mut hset = redis::cmd("HSET");
        hset.arg("big");
        for i in 0..1000 {
            hset.arg(format!("f{i}")).arg(format!("v{i}"));
        }
        let added: i64 = hset.query(&mut con).unwrap();
        assert_eq!(added, 1000);
        let mut hdel = redis::cmd("HDEL");
        hdel.arg("big");
        for i in (0..1000).filter(|i| i % 5 != 0) {
            hdel.arg(format!("f{i}"));
        }
        let deleted: i64 = hdel.query(&mut con).unwrap();
        assert_eq!(deleted, 800);
        let encoding: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg("big")
            .query(&mut con)
            .unwrap();
        assert_eq!(encoding, "hashtable");
        let fields: HashSet<String> = (0..1000).step_by(5).map(|i| format!("f{i}")).collect();

        let one: String = redis::cmd("HRANDFIELD").arg("big").query(&mut con).unwrap();
        assert!(fields.contains(&one), "{one}");
        for (count, want) in [(30, 30), (150, 150), (500, 200)] {
            let picked: Vec<String> = redis::cmd("HRANDFIELD")
                .arg("big")
                .arg(count)
                .query(&mut con)
                .unwrap();
            let distinct: HashSet<String> = picked.iter().cloned().collect();
            assert_eq!(
                (picked.len(), distinct.len()),
                (want, want),
                "count {count}"
            );
            assert!(distinct.is_subset(&fields), "count {count}");
        }

        let picks: Vec<String> = redis::cmd("HRANDFIELD")
            .arg("big")
            .arg(-40_000)
            .arg("WITHVALUES")
            .query(&mut con)
            .unwrap();
        assert_eq!(picks.len(), 80_000);
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for pair in picks.chunks(2) {
            assert!(fields.contains(&pair[0]), "{}", pair[0]);
            assert_eq!(pair[1], pair[0].replace('f', "v"));
            *seen.entry(&pair[0]).or_default() += 1;
        }
        // 200 picks a field on average, a standard deviation of 14: 7 of them either way.
        assert_eq!(seen.len(), 200, "every field picked ({shards} shards)");
        let (least, most) = (seen.values().min(), seen.values().max());
        assert!(
            seen.values().all(|&n| (100..=300).contains(&n)),
            "{least:?}..{most:?} picks a field ({shards} shards)"
        );
    }
}

/// The `db0:keys=N` count of `INFO keyspace` (0 when db0 is empty).
fn keys_in_db0(raw: &mut Raw) -> usize {
    let info = raw.cmd(&["INFO", "keyspace"]);
    info.lines()
        .find_map(|l| l.strip_prefix("db0:keys="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A 100,000-field hash whose fields all expire at once is reclaimed by active expiry, with no
/// client touching it, in bounded slices: a keyed command on the same shard is answered
/// promptly throughout.
#[test]
fn a_huge_hash_expires_without_access_and_without_stalls() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        const FIELDS: usize = 100_000;
        // Load in pipelined batches.
        let mut batch = Vec::new();
        for chunk in 0..FIELDS / 1000 {
            let mut cmd = vec!["HSET".to_owned(), "{big}hash".to_owned()];
            for i in chunk * 1000..(chunk + 1) * 1000 {
                cmd.push(format!("field:{i}"));
                cmd.push(format!("value:{i}"));
            }
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            batch.extend(encode(&args));
        }
        raw.send(&batch);
        for _ in 0..FIELDS / 1000 {
            assert_eq!(raw.reply(), ":1000\r\n");
        }
        assert_eq!(keys_in_db0(&mut raw), 1);
        let at = now_ms() + 500;
        let mut cmd = vec![
            "HPEXPIREAT".to_owned(),
            "{big}hash".to_owned(),
            at.to_string(),
            "FIELDS".to_owned(),
            FIELDS.to_string(),
        ];
        cmd.extend((0..FIELDS).map(|i| format!("field:{i}")));
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let reply = raw.cmd(&args);
        // Every field got its TTL (code 1, not 2: the time was still ahead).
        assert_eq!(reply.matches(":1\r\n").count(), FIELDS);
        // Probe the hash's shard (same hash tag) and the connection's own shard until the hash
        // is gone, never reading the hash itself.
        let mut probe = server.raw();
        let start = Instant::now();
        let mut worst = Duration::ZERO;
        loop {
            let t = Instant::now();
            assert_eq!(probe.cmd(&["EXISTS", "{big}probe"]), ":0\r\n");
            assert_eq!(probe.cmd(&["PING"]), "+PONG\r\n");
            worst = worst.max(t.elapsed());
            if now_ms() > at + 50 && keys_in_db0(&mut raw) == 0 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "not reclaimed");
            std::thread::sleep(Duration::from_millis(2));
        }
        eprintln!("{shards} shards: slowest probe {worst:?}");
        // Generous for a debug build on a busy machine; an unbounded purge of 100k fields
        // stalls far longer.
        assert!(
            worst < Duration::from_millis(100),
            "{shards} shards: a probe took {worst:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Differential: the Redis 7.0 hash commands, randomized, against redis-server
// ---------------------------------------------------------------------------

/// The bulk strings of a flat RESP2 array reply (nil elements as `None`), or `None` if the
/// reply is not such an array.
fn bulk_array(reply: &str) -> Option<Vec<Option<String>>> {
    let mut lines = reply.strip_prefix('*')?.split("\r\n");
    let n: usize = lines.next()?.parse().ok()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let header = lines.next()?;
        if header == "$-1" {
            out.push(None);
        } else {
            header.strip_prefix('$')?;
            out.push(Some(lines.next()?.to_owned()));
        }
    }
    Some(out)
}

/// A reply with field order taken out where the order is unspecified (`HGETALL`, `HKEYS`,
/// `HVALS`: arrays sorted, `HGETALL` pairs sorted by field); other replies as they are.
fn unordered(command: &str, reply: &str) -> String {
    let any_order = ["HGETALL", "HKEYS", "HVALS"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(command));
    let Some(items) = bulk_array(reply).filter(|_| any_order) else {
        return reply.to_owned();
    };
    let mut items: Vec<String> = items.into_iter().map(|i| i.unwrap_or_default()).collect();
    if command.eq_ignore_ascii_case("HGETALL") {
        let mut pairs: Vec<String> = items.chunks(2).map(|p| p.join("\u{0}")).collect();
        pairs.sort();
        pairs.join("\n")
    } else {
        items.sort();
        items.join("\n")
    }
}

/// A random value: short or long (past the 64-byte listpack limit), text, integers, floats.
fn random_value(rng: &mut StdRng) -> String {
    match rng.random_range(0..8) {
        0 => rng.random_range(-100i64..100).to_string(),
        1 => format!("{}.{}", rng.random_range(-50..50), rng.random_range(0..100)),
        2 => "9223372036854775806".to_owned(),
        3 => String::new(),
        4 => "x".repeat(rng.random_range(60..70)),
        5 => "1e3".to_owned(),
        _ => format!("v{}", rng.random_range(0..1000)),
    }
}

/// A random 7.0 hash command over a few keys, one of them a string.
fn random_hash_command(rng: &mut StdRng) -> Vec<String> {
    let keys = ["h1", "h2", "{t}h", "big", "str"];
    let key = keys[rng.random_range(0..keys.len())].to_owned();
    let field = |rng: &mut StdRng| match rng.random_range(0..10) {
        0 => "f".repeat(65),
        1 => String::new(),
        _ => format!("f{}", rng.random_range(0..12)),
    };
    let s = |v: &str| v.to_owned();
    match rng.random_range(0..22) {
        0..=3 => {
            let mut cmd = vec![
                s(if rng.random_bool(0.8) {
                    "HSET"
                } else {
                    "HMSET"
                }),
                key,
            ];
            for _ in 0..rng.random_range(1..4) {
                cmd.push(field(rng));
                cmd.push(random_value(rng));
            }
            if rng.random_range(0..20) == 0 {
                cmd.pop(); // wrong number of arguments
            }
            cmd
        }
        4 => {
            // Past 512 fields: conversion to a hash table.
            let mut cmd = vec![s("HSET"), key];
            let base = rng.random_range(0..3) * 300;
            for i in base..base + rng.random_range(200..600) {
                cmd.push(format!("n{i}"));
                cmd.push(i.to_string());
            }
            cmd
        }
        5 => vec![s("HSETNX"), key, field(rng), random_value(rng)],
        6 | 7 => vec![s("HGET"), key, field(rng)],
        8 => {
            let mut cmd = vec![s("HMGET"), key];
            cmd.extend((0..rng.random_range(1..5)).map(|_| field(rng)));
            cmd
        }
        9 => vec![s("HGETALL"), key],
        10 => vec![s("HKEYS"), key],
        11 => vec![s("HVALS"), key],
        12 => vec![s("HLEN"), key],
        13 => vec![s("HEXISTS"), key, field(rng)],
        14 | 15 => {
            let mut cmd = vec![s("HDEL"), key];
            cmd.extend((0..rng.random_range(1..4)).map(|_| field(rng)));
            if rng.random_range(0..10) == 0 {
                cmd.extend((0..600).map(|i| format!("n{i}")));
            }
            cmd
        }
        16 => vec![s("HSTRLEN"), key, field(rng)],
        17 | 18 => {
            let by = match rng.random_range(0..6) {
                0 => s("9223372036854775807"),
                1 => s("x"),
                _ => rng.random_range(-1000i64..1000).to_string(),
            };
            vec![s("HINCRBY"), key, field(rng), by]
        }
        19 | 20 => {
            let by = match rng.random_range(0..6) {
                0 => s("1e308"),
                1 => s("abc"),
                2 => s("-99.99"),
                _ => format!(
                    "{}.{}",
                    rng.random_range(-100..100),
                    rng.random_range(0..1000)
                ),
            };
            vec![s("HINCRBYFLOAT"), key, field(rng), by]
        }
        _ => vec![s("EXISTS"), key],
    }
}

/// Sends `seeds` random sequences of `len` commands from `generate` to `redis` and to Shardis
/// at every topology and asserts equal replies after `normalize`. Before each sequence both
/// are flushed, hold the string `str`, and run `setup(seed)` (each command answering `+OK`).
fn compare_random_sequences(
    redis: RealRedis,
    seeds: u64,
    len: usize,
    setup: fn(u64) -> Vec<Vec<&'static str>>,
    generate: fn(&mut StdRng) -> Vec<String>,
    normalize: fn(&[&str], &str) -> String,
) {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut r = Raw::connect(redis.port);
        let mut s = server.raw();
        for seed in 0..seeds {
            for c in [&mut r, &mut s] {
                assert_eq!(c.cmd(&["FLUSHALL"]), "+OK\r\n");
                assert_eq!(c.cmd(&["SET", "str", "text"]), "+OK\r\n");
                for cmd in setup(seed) {
                    assert_eq!(c.cmd(&cmd), "+OK\r\n");
                }
            }
            let mut rng = StdRng::seed_from_u64(seed);
            for n in 0..len {
                let cmd = generate(&mut rng);
                let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
                let (want, got) = (r.cmd(&args), s.cmd(&args));
                let shown: Vec<&str> = args.iter().take(8).copied().collect();
                assert_eq!(
                    normalize(&args, &got),
                    normalize(&args, &want),
                    "seed {seed}, command #{n} {shown:?}, {shards} shards"
                );
            }
        }
    }
}

#[test]
fn random_hash_sequences_match_redis() {
    let Some(redis) = RealRedis::start() else {
        return;
    };
    compare_random_sequences(
        redis,
        12,
        400,
        |_| Vec::new(),
        random_hash_command,
        |args, reply| unordered(args[0], reply),
    );
}

// ---------------------------------------------------------------------------
// Differential: the field-TTL commands, randomized, against Redis 7.4
// ---------------------------------------------------------------------------

/// An absolute expiry far ahead (2096): nothing set from it expires during a test, and an expiry
/// at or past it was set absolutely, not from a server's clock.
const FAR_MS: i64 = 4_000_000_000_000;

/// The integers of a flat RESP2 array of integers, or `None` if the reply is not one.
fn int_array(reply: &str) -> Option<Vec<i64>> {
    let mut lines = reply.strip_prefix('*')?.split("\r\n");
    let n: usize = lines.next()?.parse().ok()?;
    (0..n)
        .map(|_| lines.next()?.strip_prefix(':')?.parse().ok())
        .collect()
}

/// A reply with what may rightly differ between two servers taken out: field order (HGETALL),
/// and times that count from the server's own clock (a remaining TTL; an expiry set relative
/// to now, which comes out below [`FAR_MS`]) replaced by a word.
fn clock_free(args: &[&str], reply: &str) -> String {
    let command = args[0].to_ascii_uppercase();
    let absolute_from = match command.as_str() {
        "HTTL" | "HPTTL" => i64::MAX,
        "HEXPIRETIME" => FAR_MS / 1000,
        "HPEXPIRETIME" => FAR_MS,
        _ => return unordered(args[0], reply),
    };
    match int_array(reply) {
        Some(values) => values
            .iter()
            .map(|&v| match v {
                v if v < 0 || v >= absolute_from => v.to_string(),
                _ => "from the clock".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        None => reply.to_owned(),
    }
}

/// A random command of the field-TTL family (every condition, bad ones, wrong field counts,
/// times in the past and around the 2^46 ms limit) or of the plain hash commands around it, on
/// a hash, a string or a missing key.
fn random_field_ttl_command(rng: &mut StdRng) -> Vec<String> {
    let pick = |rng: &mut StdRng, from: &[&str]| from[rng.random_range(0..from.len())].to_owned();
    let key = pick(rng, &["h", "h", "h", "str", "nokey"]);
    let field = |rng: &mut StdRng| format!("f{}", rng.random_range(0..6));
    let fields = |rng: &mut StdRng| {
        let n = [1, 1, 2, 3, 6][rng.random_range(0..5)];
        let count = match rng.random_range(0..100) {
            0..=2 => (n + 1).to_string(),
            3 | 4 => "0".to_owned(),
            5 => "-1".to_owned(),
            6 => "x".to_owned(),
            _ => n.to_string(),
        };
        let mut out = vec!["FIELDS".to_owned(), count];
        out.extend((0..n).map(|_| field(rng)));
        out
    };
    let condition = |rng: &mut StdRng| -> Vec<String> {
        let options: [&[&str]; 10] = [
            &[],
            &[],
            &[],
            &["NX"],
            &["XX"],
            &["GT"],
            &["LT"],
            &["nx"],
            &["NX", "XX"],
            &["BOGUS"],
        ];
        let chosen = options[rng.random_range(0..options.len())];
        chosen.iter().map(|c| (*c).to_owned()).collect()
    };
    let timed = |name: &str, rng: &mut StdRng, times: &[String]| {
        let mut cmd = vec![name.to_owned(), key.clone()];
        cmd.push(times[rng.random_range(0..times.len())].clone());
        cmd.extend(condition(rng));
        cmd.extend(fields(rng));
        cmd
    };
    let limit = 1i64 << 46;
    match rng.random_range(0..100) {
        0..=19 => {
            let mut cmd = vec!["HSET".to_owned(), key.clone()];
            for _ in 0..rng.random_range(1..4) {
                cmd.push(field(rng));
                cmd.push(format!("v{}", rng.random_range(0..9)));
            }
            cmd
        }
        20..=24 => vec!["HDEL".to_owned(), key, field(rng)],
        25..=39 => {
            let times = [
                (FAR_MS + rng.random_range(0..1000) * 1000).to_string(),
                (FAR_MS + rng.random_range(0..3) * 1000).to_string(),
                "0".to_owned(),
                "1000".to_owned(),
                "-5".to_owned(),
                limit.to_string(),
                (limit - 1).to_string(),
                "9223372036854775808".to_owned(),
            ];
            timed("HPEXPIREAT", rng, &times)
        }
        40..=47 => {
            let times = [
                (FAR_MS / 1000 + rng.random_range(0..5)).to_string(),
                "0".to_owned(),
                "1".to_owned(),
                (limit / 1000).to_string(),
                limit.to_string(),
            ];
            timed("HEXPIREAT", rng, &times)
        }
        // Relative times an hour apart, so that GT and LT between them cannot depend on when
        // each server read its clock.
        48..=53 => {
            let times = [
                "0",
                "1000000000000",
                "1000003600000",
                "-1",
                "70368744177664",
            ];
            timed("HPEXPIRE", rng, &times.map(str::to_owned))
        }
        54..=57 => {
            let times = ["0", "1000000000", "1000003600", "-1"];
            timed("HEXPIRE", rng, &times.map(str::to_owned))
        }
        58..=65 => [vec!["HPERSIST".to_owned(), key], fields(rng)].concat(),
        66..=73 => [vec!["HPEXPIRETIME".to_owned(), key], fields(rng)].concat(),
        74..=77 => [vec!["HEXPIRETIME".to_owned(), key], fields(rng)].concat(),
        78..=81 => [vec![pick(rng, &["HTTL", "HPTTL"]), key], fields(rng)].concat(),
        82..=85 => vec!["HGETALL".to_owned(), key],
        86..=88 => vec!["HLEN".to_owned(), key],
        89..=91 => vec!["HEXISTS".to_owned(), key, field(rng)],
        92..=94 => vec!["HINCRBY".to_owned(), key, field(rng), "1".to_owned()],
        95 | 96 => vec!["OBJECT".to_owned(), "ENCODING".to_owned(), key],
        _ => vec!["EXISTS".to_owned(), key],
    }
}

/// Redis 7.0 has no field TTLs, so `field_ttls_as_documented` checks them against Redis's
/// documentation; where Redis 7.4 can be fetched (`scripts/redis-7.4.sh`), random sequences are
/// also compared with it, reply by reply, half of them with every hash of two fields or more a
/// table (`hash-max-listpack-entries 1`).
#[test]
fn random_field_ttl_sequences_match_redis_7_4() {
    let Some(redis) = RealRedis::start_7_4() else {
        return;
    };
    let entries = |seed: u64| {
        let entries = if seed % 2 == 0 { "128" } else { "1" };
        vec![vec!["CONFIG", "SET", "hash-max-listpack-entries", entries]]
    };
    compare_random_sequences(redis, 8, 500, entries, random_field_ttl_command, clock_free);
}
