//! Client libraries other than the `redis` crate, driven as applications drive them: redis-py
//! (RESP2 and RESP3: pipelines, transactions with WATCH, `register_script`, scan iterators,
//! the field-TTL methods), ioredis (auto-pipelining, `defineCommand`, scan streams) and
//! node-redis (RESP2 and RESP3: `defineScript`, scan iterators, the field-TTL methods). Each
//! library runs a script from `tests/clients/` that prints one line per step; the lines from
//! Shardis must be the ones Redis gives, Debian's 7.0 for what it has and 7.4 for field TTLs.
//! The Redis 8 hash commands, which neither has, are checked inside the script against their
//! documentation. `scripts/clients.sh` fetches the libraries once, into `target/clients`.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{RealRedis, Server, TOPOLOGIES};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fetches the client libraries and starts Debian's redis-server to compare with; None, saying
/// so, where either cannot be had (no network, no redis-server).
fn libraries_and_redis() -> Option<RealRedis> {
    let fetched = Command::new(root().join("scripts/clients.sh"))
        .status()
        .is_ok_and(|s| s.success());
    if !fetched {
        eprintln!("SKIPPED: the client libraries could not be fetched (scripts/clients.sh)");
        return None;
    }
    RealRedis::start()
}

/// Runs one of the client scripts against `port` and returns what it printed; fails the test,
/// with the script's own error, when it exits with an error.
fn run(program: &str, script: &str, port: u16, args: &[&str]) -> String {
    let clients = root().join("target/clients");
    let out = Command::new(program)
        .arg(root().join("tests/clients").join(script))
        .arg(port.to_string())
        .args(args)
        .env("PYTHONPATH", clients.join("python"))
        .env("NODE_PATH", clients.join("node/node_modules"))
        .output()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Asserts that Shardis printed what Redis printed, step by step (each line names its step).
fn assert_same(redis: &str, shardis: &str, context: &str) {
    for (want, got) in redis.lines().zip(shardis.lines()) {
        assert_eq!(got, want, "{context}");
    }
    assert_eq!(shardis.lines().count(), redis.lines().count(), "{context}");
}

#[test]
fn redis_py_gets_the_answers_redis_gives() {
    let Some(redis) = libraries_and_redis() else {
        return;
    };
    let redis_7_4 = RealRedis::start_7_4();
    let python = |port, args: &[&str]| run("python3", "redis_py.py", port, args);
    for protocol in ["2", "3"] {
        let want = python(redis.port, &[protocol, "common"]);
        let want_fields = redis_7_4
            .as_ref()
            .map(|r| python(r.port, &[protocol, "fields"]));
        for shards in TOPOLOGIES {
            let server = Server::start(shards, &[]);
            let context = format!("RESP{protocol}, {shards} shards");
            assert_same(&want, &python(server.port, &[protocol, "common"]), &context);
            if let Some(want) = &want_fields {
                let got = python(server.port, &[protocol, "fields"]);
                assert_same(want, &got, &context);
            }
            python(server.port, &[protocol, "redis8"]);
        }
    }
}

#[test]
fn ioredis_gets_the_answers_redis_gives() {
    let Some(redis) = libraries_and_redis() else {
        return;
    };
    let want = run("node", "ioredis.js", redis.port, &[]);
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let got = run("node", "ioredis.js", server.port, &[]);
        assert_same(&want, &got, &format!("{shards} shards"));
    }
}

#[test]
fn node_redis_gets_the_answers_redis_gives() {
    let Some(redis) = libraries_and_redis() else {
        return;
    };
    let node = |port, args: &[&str]| run("node", "node_redis.js", port, args);
    for resp in ["2", "3"] {
        let want = node(redis.port, &[resp, "common"]);
        for shards in TOPOLOGIES {
            let server = Server::start(shards, &[]);
            let context = format!("RESP{resp}, {shards} shards");
            assert_same(&want, &node(server.port, &[resp, "common"]), &context);
            node(server.port, &[resp, "redis8"]);
        }
    }
}
