//! Keyspace and expiry commands through the real server, at 1 and 4 shards: key TTLs, active
//! expiry without client access, SCAN over all shards under concurrent writes, RANDOMKEY,
//! renames and copies, SWAPDB, OBJECT and MEMORY USAGE.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::harness::{encode, expect, Raw, Server, TOPOLOGIES};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Sends `commands` as pipelined batches and checks every reply.
fn pipeline(raw: &mut Raw, commands: impl Iterator<Item = Vec<String>>, reply: &str) {
    let commands: Vec<Vec<String>> = commands.collect();
    for batch in commands.chunks(1000) {
        let mut bytes = Vec::new();
        for cmd in batch {
            let words: Vec<&str> = cmd.iter().map(String::as_str).collect();
            bytes.extend(encode(&words));
        }
        raw.send(&bytes);
        for _ in batch {
            assert_eq!(raw.reply(), reply);
        }
    }
}

#[test]
fn ttls_are_exact_and_expired_keys_are_never_returned() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        let at = now_ms() + 1_000_000;
        expect(
            &mut raw,
            &[
                ("SET k v", "+OK\r\n"),
                (&format!("PEXPIREAT k {at}"), ":1\r\n"),
                ("PEXPIRETIME k", &format!(":{at}\r\n")),
                ("EXPIRETIME k", &format!(":{}\r\n", at / 1000)),
                (&format!("PEXPIREAT k {} GT", at - 1), ":0\r\n"),
                (&format!("PEXPIREAT k {} LT", at - 1), ":1\r\n"),
                ("EXPIRE k 100 NX", ":0\r\n"),
                ("PERSIST k", ":1\r\n"),
                ("TTL k", ":-1\r\n"),
                ("EXPIRE k 100 GT", ":0\r\n"),
                ("EXPIRE k 100 XX", ":0\r\n"),
                ("EXPIRE k 100", ":1\r\n"),
                ("TTL k", ":100\r\n"),
                ("EXPIRE k -1", ":1\r\n"),
                ("EXISTS k", ":0\r\n"),
                ("TTL k", ":-2\r\n"),
                ("EXPIRE k 100", ":0\r\n"),
                ("DBSIZE", ":0\r\n"),
            ],
            shards,
        );
        // A key expiring 50 ms from now: readable until then, gone one millisecond after.
        let at = now_ms() + 50;
        for i in 0..20 {
            raw.run(&format!("SET short:{i} v PXAT {at}"));
        }
        raw.run("RPUSH shortlist a");
        raw.run(&format!("PEXPIREAT shortlist {at}"));
        std::thread::sleep(Duration::from_millis(
            (at + 2).saturating_sub(now_ms()).max(1),
        ));
        for i in 0..20 {
            assert_eq!(raw.run(&format!("GET short:{i}")), "$-1\r\n");
        }
        assert_eq!(raw.run("LRANGE shortlist 0 -1"), "*0\r\n");
        assert_eq!(raw.run("KEYS short*"), "*0\r\n");
        assert_eq!(raw.run("EXISTS short:1 short:2 shortlist"), ":0\r\n");
    }
}

#[test]
fn active_expiry_reclaims_keys_nobody_reads() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        // 100,000 keys that all expire in the same millisecond, once they are all written.
        let at = now_ms() + 1000;
        pipeline(
            &mut raw,
            (0..100_000).map(|i| {
                vec![
                    "SET".to_owned(),
                    format!("volatile:{i}"),
                    "v".to_owned(),
                    "PXAT".to_owned(),
                    at.to_string(),
                ]
            }),
            "+OK\r\n",
        );
        raw.run("SET keeper v");
        if now_ms() < at {
            assert_eq!(raw.run("DBSIZE"), ":100001\r\n", "{shards} shards");
            std::thread::sleep(Duration::from_millis(at - now_ms()));
        }
        // From now on no client touches them; DBSIZE counts them until they are reclaimed.
        let start = Instant::now();
        let mut slowest_ping = Duration::ZERO;
        loop {
            let sent = Instant::now();
            assert_eq!(raw.run("PING"), "+PONG\r\n");
            slowest_ping = slowest_ping.max(sent.elapsed());
            let size = raw.run("DBSIZE");
            if size == ":1\r\n" {
                break;
            }
            // Active expiry takes at most a quarter of the shard, and this is a debug build.
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{shards} shards: still {size} keys"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        // The slices are bounded (see `Db::expire_keys`'s unit tests); here, clients are served
        // throughout. The bound is loose because the suite runs in parallel on few cores.
        assert!(
            slowest_ping < Duration::from_secs(1),
            "{shards} shards: a PING took {slowest_ping:?} while keys were reclaimed"
        );
        assert_eq!(raw.run("GET keeper"), "$1\r\nv\r\n");
        let info = raw.run("INFO keyspace");
        assert!(info.contains("db0:keys=1,expires=0,"), "{info}");
    }
}

/// One full SCAN with `COUNT 20`: every key it returned.
fn scan_all(con: &mut redis::Connection, extra: &[&str]) -> Vec<String> {
    let mut cursor: u64 = 0;
    let mut seen = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(20)
            .arg(extra)
            .query(con)
            .unwrap();
        seen.extend(keys);
        if next == 0 {
            return seen;
        }
        cursor = next;
    }
}

#[test]
fn scan_walks_every_shard_and_survives_concurrent_writes() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        pipeline(
            &mut raw,
            (0..3000).map(|i| vec!["SET".into(), format!("kept:{i}"), "v".into()]),
            "+OK\r\n",
        );
        raw.run("RPUSH alist a");
        // Another client adds (and later deletes) thousands of keys while the scan runs, so
        // that the tables grow and shrink between its steps.
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            let port = server.port;
            std::thread::spawn(move || {
                let mut w = Raw::connect(port);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut bytes = Vec::new();
                    for j in i..i + 100 {
                        bytes.extend(encode(&["SET", &format!("churn:{j}"), "v"]));
                        if j % 3 == 0 {
                            bytes.extend(encode(&["DEL", &format!("churn:{}", j / 3)]));
                        }
                    }
                    w.send(&bytes);
                    for j in i..i + 100 {
                        w.reply();
                        if j % 3 == 0 {
                            w.reply();
                        }
                    }
                    i += 100;
                }
                i
            })
        };
        let mut con = server.client();
        let seen = scan_all(&mut con, &[]);
        stop.store(true, Ordering::Relaxed);
        let written = writer.join().unwrap();
        assert!(written > 0);
        let seen: HashSet<String> = seen.into_iter().collect();
        for i in 0..3000 {
            assert!(
                seen.contains(&format!("kept:{i}")),
                "{shards} shards: kept:{i}"
            );
        }
        assert!(seen.contains("alist"));
        assert!(seen
            .iter()
            .all(|k| k.starts_with("kept:") || k.starts_with("churn:") || k == "alist"));
        // Filters.
        let lists = scan_all(&mut con, &["TYPE", "list"]);
        assert_eq!(lists, vec!["alist".to_owned()], "{shards} shards");
        let matched: HashSet<String> = scan_all(&mut con, &["MATCH", "kept:1??"])
            .into_iter()
            .collect();
        assert_eq!(matched.len(), 100, "{shards} shards");
    }
}

#[test]
fn keys_exists_del_touch_type_over_shards() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        pipeline(
            &mut raw,
            (0..100).map(|i| vec!["SET".into(), format!("user:{i}"), i.to_string()]),
            "+OK\r\n",
        );
        let mut con = server.client();
        let mut keys: Vec<String> = redis::cmd("KEYS").arg("user:1*").query(&mut con).unwrap();
        keys.sort();
        let mut want: Vec<String> = (0..100)
            .map(|i| format!("user:{i}"))
            .filter(|k| k.starts_with("user:1"))
            .collect();
        want.sort();
        assert_eq!(keys, want, "{shards} shards");
        expect(
            &mut raw,
            &[
                ("EXISTS user:1 user:2 user:3 nokey user:1", ":4\r\n"),
                ("TOUCH user:1 user:2 nokey", ":2\r\n"),
                ("TYPE user:1", "+string\r\n"),
                ("DEL user:1 user:2 user:3 nokey", ":3\r\n"),
                ("UNLINK user:4 user:5", ":2\r\n"),
                ("DBSIZE", ":95\r\n"),
            ],
            shards,
        );
    }
}

#[test]
fn randomkey_draws_live_keys_from_every_shard() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        assert_eq!(raw.run("RANDOMKEY"), "$-1\r\n");
        pipeline(
            &mut raw,
            (0..400).map(|i| vec!["SET".into(), format!("r:{i}"), "v".into()]),
            "+OK\r\n",
        );
        let at = now_ms() + 30;
        pipeline(
            &mut raw,
            (0..400).map(|i| {
                vec![
                    "SET".into(),
                    format!("dead:{i}"),
                    "v".into(),
                    "PXAT".into(),
                    at.to_string(),
                ]
            }),
            "+OK\r\n",
        );
        std::thread::sleep(Duration::from_millis((at + 2).saturating_sub(now_ms())));
        let mut con = server.client();
        let mut distinct = HashSet::new();
        for _ in 0..400 {
            let key: String = redis::cmd("RANDOMKEY").query(&mut con).unwrap();
            assert!(key.starts_with("r:"), "{shards} shards: {key}");
            distinct.insert(key);
        }
        // Stuck on one shard, 400 draws would find at most ~100 keys at 4 shards.
        assert!(distinct.len() > 150, "{shards} shards: {}", distinct.len());
    }
}

#[test]
fn rename_copy_move_on_one_shard() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        expect(
            &mut raw,
            &[
                ("SET {t}a 1 EX 100", "+OK\r\n"),
                ("RENAME {t}a {t}b", "+OK\r\n"),
                ("TTL {t}b", ":100\r\n"),
                ("RENAME {t}a {t}b", "-ERR no such key\r\n"),
                ("SET {t}c 3", "+OK\r\n"),
                ("RENAMENX {t}b {t}c", ":0\r\n"),
                ("RENAMENX {t}b {t}d", ":1\r\n"),
                ("COPY {t}d {t}c", ":0\r\n"),
                ("COPY {t}d {t}c REPLACE", ":1\r\n"),
                ("GET {t}c", "$1\r\n1\r\n"),
                ("COPY {t}d {t}d DB 1", ":1\r\n"),
                ("MOVE {t}c 1", ":1\r\n"),
                ("MOVE {t}d 1", ":0\r\n"),
                ("SELECT 1", "+OK\r\n"),
                ("MGET {t}c {t}d", "*2\r\n$1\r\n1\r\n$1\r\n1\r\n"),
                ("TTL {t}d", ":100\r\n"),
                ("SELECT 0", "+OK\r\n"),
                ("EXISTS {t}c", ":0\r\n"),
            ],
            shards,
        );
    }
}

#[test]
fn rename_and_copy_across_shards() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        // Names chosen from many so that some pairs certainly live on different shards.
        for i in 0..20 {
            let (a, b) = (format!("src{i}"), format!("dst{i}"));
            raw.run(&format!("SET {a} {i} EX 100"));
            assert_eq!(
                raw.run(&format!("RENAME {a} {b}")),
                "+OK\r\n",
                "{shards}: {a}"
            );
            assert_eq!(raw.run(&format!("TTL {b}")), ":100\r\n");
            assert_eq!(raw.run(&format!("COPY {b} {a}")), ":1\r\n");
            assert_eq!(raw.run(&format!("RENAMENX {a} {b}")), ":0\r\n");
            assert_eq!(
                raw.run(&format!("GET {a}")),
                format!("${}\r\n{i}\r\n", i.to_string().len())
            );
        }
    }
}

#[test]
fn copy_to_another_database_across_shards() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        for i in 0..20 {
            let (a, b) = (format!("src{i}"), format!("dst{i}"));
            raw.run(&format!("SET {a} {i}"));
            assert_eq!(
                raw.run(&format!("COPY {a} {b} DB 1")),
                ":1\r\n",
                "{shards}: {a}"
            );
            raw.run("SELECT 1");
            assert_eq!(raw.run(&format!("EXISTS {b}")), ":1\r\n", "{shards}: {b}");
            raw.run(&format!("SET {a} other"));
            raw.run("SELECT 0");
            assert_eq!(
                raw.run(&format!("COPY {a} {a} DB 1")),
                ":0\r\n",
                "{shards}: {a}"
            );
        }
    }
}

#[test]
fn swapdb_and_dbsize_over_shards() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        pipeline(
            &mut raw,
            (0..50).map(|i| vec!["SET".into(), format!("s:{i}"), "v".into()]),
            "+OK\r\n",
        );
        expect(
            &mut raw,
            &[
                ("DBSIZE", ":50\r\n"),
                ("SWAPDB 0 1", "+OK\r\n"),
                ("DBSIZE", ":0\r\n"),
                ("SELECT 1", "+OK\r\n"),
                ("DBSIZE", ":50\r\n"),
                ("GET s:7", "$1\r\nv\r\n"),
                ("SWAPDB 1 x", "-ERR invalid second DB index\r\n"),
                ("SWAPDB 1 99", "-ERR DB index is out of range\r\n"),
            ],
            shards,
        );
    }
}

#[test]
fn object_and_memory_usage() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        let long = "x".repeat(100);
        expect(
            &mut raw,
            &[
                ("SET i 42", "+OK\r\n"),
                ("SET big 4200000", "+OK\r\n"),
                ("SET s hello", "+OK\r\n"),
                (&format!("SET r {long}"), "+OK\r\n"),
                ("RPUSH l a b", ":2\r\n"),
                ("OBJECT ENCODING i", "$3\r\nint\r\n"),
                ("OBJECT ENCODING s", "$6\r\nembstr\r\n"),
                ("OBJECT ENCODING r", "$3\r\nraw\r\n"),
                ("OBJECT ENCODING l", "$8\r\nlistpack\r\n"),
                ("OBJECT ENCODING nokey", "$-1\r\n"),
                ("OBJECT REFCOUNT i", ":2147483647\r\n"),
                ("OBJECT REFCOUNT big", ":1\r\n"),
                ("OBJECT IDLETIME i", ":0\r\n"),
                (
                    "OBJECT FREQ i",
                    "-ERR An LFU maxmemory policy is not selected, access frequency not \
                     tracked. Please note that when switching between policies at runtime \
                     LRU and LFU data will take some time to adjust.\r\n",
                ),
                ("MEMORY USAGE nokey", "$-1\r\n"),
            ],
            shards,
        );
        let mut con = server.client();
        let small: i64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg("s")
            .query(&mut con)
            .unwrap();
        let large: i64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg("r")
            .query(&mut con)
            .unwrap();
        assert!(small > 5 && large >= small + 95, "{small} {large}");
    }
}
