//! Differential tests: the same commands go to Debian's redis-server and to Shardis, and the
//! replies must be byte-identical. Skipped (with a message) where redis-server is not installed;
//! CI installs it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::harness::{encode, Raw, RealRedis, Server, TOPOLOGIES};

/// How a reply is compared: the command and the reply as sent, to what must be equal.
pub(crate) type Normalize = fn(&[String], String) -> String;

/// Sends every command to both servers and asserts equal replies after `normalize`.
pub(crate) fn compare(
    redis: &mut Raw,
    shardis: &mut Raw,
    script: &[Vec<String>],
    context: &str,
    normalize: Normalize,
) {
    for (n, cmd) in script.iter().enumerate() {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let want = normalize(cmd, redis.cmd(&args));
        let got = normalize(cmd, shardis.cmd(&args));
        assert_eq!(got, want, "{context}: command #{n} {args:?}");
    }
}

/// Sends the whole script to each server as one pipeline (one write) and asserts equal
/// replies, in order, after `normalize`.
pub(crate) fn compare_pipelined(
    redis: &mut Raw,
    shardis: &mut Raw,
    script: &[Vec<String>],
    context: &str,
    normalize: Normalize,
) {
    let mut bytes = Vec::new();
    for cmd in script {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        bytes.extend(encode(&args));
    }
    redis.send(&bytes);
    shardis.send(&bytes);
    for (n, cmd) in script.iter().enumerate() {
        let want = normalize(cmd, redis.reply());
        let got = normalize(cmd, shardis.reply());
        assert_eq!(got, want, "{context}: pipelined command #{n} {cmd:?}");
    }
}

/// Replies compared byte for byte.
fn exact(_: &[String], reply: String) -> String {
    reply
}

/// Compares `seeds` scripts of `len` commands from `generate` on both servers, with a
/// `FLUSHALL` between scripts.
pub(crate) fn random_scripts(
    seeds: u64,
    len: usize,
    generate: fn(&mut StdRng) -> Vec<String>,
    normalize: Normalize,
) {
    with_both(|r, s, shards| {
        for seed in 0..seeds {
            let mut rng = StdRng::seed_from_u64(seed);
            let script: Vec<Vec<String>> = (0..len).map(|_| generate(&mut rng)).collect();
            let context = format!("seed {seed}, {shards} shards");
            compare(r, s, &script, &context, normalize);
            assert_eq!(r.cmd(&["FLUSHALL"]), s.cmd(&["FLUSHALL"]));
        }
    });
}

pub(crate) fn script(lines: &[&str]) -> Vec<Vec<String>> {
    lines
        .iter()
        .map(|l| l.split(' ').map(|w| w.replace('_', " ")).collect())
        .collect()
}

/// Runs `test` against a fresh Redis and against Shardis at every topology.
pub(crate) fn with_both(test: impl Fn(&mut Raw, &mut Raw, usize)) {
    let Some(redis) = RealRedis::start() else {
        return;
    };
    for shards in TOPOLOGIES {
        let shardis = Server::start(shards, &[]);
        let mut r = Raw::connect(redis.port);
        assert_eq!(r.cmd(&["FLUSHALL"]), "+OK\r\n");
        let mut s = shardis.raw();
        test(&mut r, &mut s, shards);
    }
}

#[test]
fn edge_cases_match_redis() {
    let lines = [
        "PING",
        "PING hello",
        "PING a b",
        "ECHO x",
        "ECHO",
        "ECHO a b",
        "SET k v",
        "GET k",
        "SET k w NX",
        "GET k",
        "SET k w XX",
        "GET k",
        "SET nokey v XX",
        "GET nokey",
        "SET k v2 GET",
        "SET k v3 NX GET",
        "SET fresh v NX GET",
        "GET fresh",
        "SET k v EX 0",
        "SET k v EX -1",
        "SET k v EX abc",
        "SET k v PX 100 EX 10",
        "SET k v KEEPTTL EX 1",
        "SET k v EX 10 KEEPTTL",
        "SET k v NX XX",
        "SET k v BOGUS",
        "SET k v EX",
        "SET k v EX 10 EX 20",
        "SET k v PXAT 1",
        "GET k",
        "SET k v EXAT 1",
        "EXISTS k",
        "SET k v EX 9223372036854775807",
        "SET k v PX 9223372036854775807",
        "SET k v ex 100 nx",
        "SET k v Px 100000 xx get",
        "SET n 123",
        "GET n",
        "SET n 0123",
        "GET n",
        "SET n -0",
        "GET n",
        "SET n 9223372036854775808",
        "GET n",
        "SET sp a_b",
        "GET sp",
        "SET empty ",
        "GET empty",
        "GET nokey",
        "DEL k n nokey",
        "DEL k",
        "EXISTS sp sp nokey",
        "TYPE sp",
        "TYPE nokey",
        "DBSIZE",
        "SELECT 1",
        "DBSIZE",
        "SET k one",
        "SELECT 16",
        "SELECT -1",
        "SELECT x",
        "SELECT 0",
        "GET k",
        "FLUSHDB bogus",
        "FLUSHDB ASYNC",
        "DBSIZE",
        "SELECT 1",
        "GET k",
        "FLUSHALL SYNC",
        "GET k",
        "SELECT 0",
        "NOSUCHCMD a b",
        "nosuchcmd",
        "GET a b",
        "SET k",
        "DEL",
        "EXISTS",
        "TYPE",
        "DBSIZE x",
        "CLIENT SETNAME a_b",
        "CLIENT SETNAME ok",
        "CLIENT GETNAME",
        "CLIENT NOSUCH",
        "CLIENT SETNAME",
        "AUTH x",
        "AUTH a b c",
        "SELECT",
        "CONFIG SET nosuch 1",
        "CONFIG GET databases",
        "CONFIG NOSUCH",
        "COMMAND NOSUCH",
        "SHUTDOWN ABORT",
        "SHUTDOWN BOGUS",
        "TIME x",
        "HELLO 4",
        "HELLO x",
        "HELLO 3 BOGUS",
    ];
    with_both(|r, s, shards| compare(r, s, &script(&lines), &format!("{shards} shards"), exact));
}

/// A word drawn from `from`.
pub(crate) fn pick(rng: &mut StdRng, from: &[&str]) -> String {
    from[rng.random_range(0..from.len())].to_owned()
}

/// `cmd` followed by up to `most` options drawn from `options` (each one or more words).
pub(crate) fn with_options(
    rng: &mut StdRng,
    mut cmd: Vec<String>,
    options: &[&str],
    most: usize,
) -> Vec<String> {
    for _ in 0..rng.random_range(0..=most) {
        cmd.extend(pick(rng, options).split(' ').map(str::to_owned));
    }
    cmd
}

/// A random command over a few keys (two of them sharing a hash tag).
fn random_command(rng: &mut StdRng) -> Vec<String> {
    let keys = ["a", "b", "c", "{t}x", "{t}y", "user:1", "user:2"];
    let key_from = |rng: &mut StdRng| pick(rng, &keys);
    let value = |rng: &mut StdRng| match rng.random_range(0..4) {
        0 => rng.random_range(-1000i64..1000).to_string(),
        1 => format!("v{}", rng.random_range(0..100)),
        2 => String::new(),
        _ => "9223372036854775807".to_owned(),
    };
    match rng.random_range(0..10) {
        0..=3 => {
            let cmd = vec!["SET".to_owned(), key_from(rng), value(rng)];
            // No expiry in the past here: Redis 7.0 keeps such a key (counted by DBSIZE) until
            // its background expiry runs, which no test can time.
            let options = [
                "NX",
                "XX",
                "GET",
                "KEEPTTL",
                "EX 100",
                "PX 100000",
                "PXAT 99999999999999",
                "EX 0",
                "BAD",
            ];
            with_options(rng, cmd, &options, 2)
        }
        4 | 5 => vec!["GET".to_owned(), key_from(rng)],
        6 => {
            let mut cmd = vec!["DEL".to_owned()];
            for _ in 0..rng.random_range(1..4) {
                cmd.push(key_from(rng));
            }
            cmd
        }
        7 => {
            let mut cmd = vec!["EXISTS".to_owned()];
            for _ in 0..rng.random_range(1..5) {
                cmd.push(key_from(rng));
            }
            cmd
        }
        8 => vec!["TYPE".to_owned(), key_from(rng)],
        _ => vec!["DBSIZE".to_owned()],
    }
}

#[test]
fn random_sequences_match_redis() {
    random_scripts(20, 300, random_command, exact);
}
