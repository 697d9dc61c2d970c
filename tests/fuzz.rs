//! Random arguments to every command the server lists in `COMMAND`: numbers at and past the
//! edges of their types, option keywords in and out of place, keys of every type, empty and odd
//! strings. Every command must be answered on a connection that stays open, the server must
//! keep answering, and keys no command was given must keep their values; and where Debian's
//! redis-server has the command, the reply must be Redis's, byte for byte.
//!
//! Seeded, so that a failure repeats. `SHARDIS_FUZZ_TRIES` (tries per command, 40 by default)
//! and `SHARDIS_FUZZ_SEED` run it longer or elsewhere.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::harness::{encode, expect, Raw, RealRedis, Server, TOPOLOGIES};

/// Commands not sent: they stop the server, close or re-authenticate the connection, change
/// the limits later commands run under, or drop keys wholesale (the keys this test guards).
#[rustfmt::skip]
const LEFT_OUT: &[&str] = &[
    "shutdown", "quit", "client", "config", "flushall", "flushdb", "swapdb", "debug", "monitor",
    "subscribe", "psubscribe", "sync", "psync", "replicaof", "slaveof",
];

/// Commands whose replies differ between any two servers (times, versions, random picks, scan
/// order, memory figures) or between Redis 7.0 and 8 on purpose (`OBJECT ENCODING` of a small
/// list): fuzzed, not compared. And `SCRIPT`: queued in a transaction, an unknown subcommand
/// fails when `EXEC` runs it, where Redis refuses it while queuing (it knows every container's
/// subcommands and their arities; Shardis's handlers do).
#[rustfmt::skip]
const NOT_COMPARED: &[&str] = &[
    "info", "time", "randomkey", "hrandfield", "command", "hello", "object", "memory", "scan",
    "hscan", "keys", "ttl", "pttl", "expiretime", "pexpiretime", "hpttl", "hexpiretime",
    "hpexpiretime", "script",
];

/// Keys of each type, made again before every try, so that each command meets strings,
/// integers, hashes, lists and missing keys. (Field TTLs come last: Redis 7.0 has none.) The
/// watches of an earlier try go first: Shardis's `WATCH` compares content, and the keys made
/// again have the content they were watched with, where Redis counts any write (the one
/// difference `route/transaction.rs` documents).
const SETUP: &[&str] = &[
    "UNWATCH",
    "DEL str int hash ttlhash list missing {t}a {t}b",
    "SET str hello",
    "SET int 10",
    "HSET hash f1 v1 f2 2",
    "HSET ttlhash f1 v1 f2 v2",
    "RPUSH list a b c",
    "HEXPIRE ttlhash 1000 FIELDS 1 f1",
];

const KEYS: &[&str] = &[
    "str", "int", "hash", "ttlhash", "list", "missing", "{t}a", "{t}b",
];

/// Words a command may meet as its arguments.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    // numbers, at the edges of i64, u64, i32 and f64 and past them
    "0", "1", "-1", "2", "3", "10", "-100", "9223372036854775807", "-9223372036854775808",
    "9223372036854775808", "18446744073709551616", "4294967296", "2147483648", "-2147483649",
    "1.5", "-0.0", "1e308", "1e400", "inf", "-inf", "nan", "0x10", " 1", "1 ", "+1", "01",
    // options, of every family
    "EX", "PX", "EXAT", "PXAT", "NX", "XX", "GT", "LT", "KEEPTTL", "GET", "FIELDS", "FNX",
    "FXX", "PERSIST", "COUNT", "MATCH", "TYPE", "WITHVALUES", "NOVALUES", "BYINT", "BYFLOAT",
    "LBOUND", "UBOUND", "SATURATE", "ENX", "LEFT", "RIGHT", "BEFORE", "AFTER", "RANK", "MAXLEN",
    "LOAD", "FLUSH", "EXISTS", "ENCODING", "FREQ", "IDLETIME", "REFCOUNT", "USAGE", "SAMPLES",
    "DB", "REPLACE", "ASYNC", "SYNC", "INFO", "DOCS", "LIST", "ID", "SETNAME", "AUTH", "KILL",
    // strings, and scripts
    "", "f1", "f2", "a", "v", "*", "[", "\\", "{t}", "\u{e9}", "return 1",
    "return redis.call('get', KEYS[1])", "return {1, 2, {3}, false, 'x'}",
];

/// A number from the environment (`SHARDIS_FUZZ_TRIES`, `SHARDIS_FUZZ_SEED`), or `default`.
fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The names of every command a server lists in `COMMAND` (each entry starts with its name).
fn command_names(port: u16) -> HashSet<String> {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("COMMAND")
        .query::<Vec<redis::Value>>(&mut con)
        .unwrap()
        .into_iter()
        .filter_map(|entry| match entry {
            redis::Value::Array(fields) => fields.into_iter().next(),
            _ => None,
        })
        .filter_map(|name| redis::from_redis_value::<String>(name).ok())
        .collect()
}

/// The commands to try, in a fixed order: those of `ours` that are not left out, and, when
/// `compared_with` is given, that it has too and whose replies compare.
fn commands_to_try(ours: u16, compared_with: Option<u16>) -> Vec<String> {
    let theirs = compared_with.map(command_names);
    let mut names: Vec<String> = command_names(ours)
        .into_iter()
        .filter(|name| !LEFT_OUT.contains(&name.as_str()))
        .filter(|name| {
            theirs.as_ref().is_none_or(|theirs| {
                theirs.contains(name) && !NOT_COMPARED.contains(&name.as_str())
            })
        })
        .collect();
    assert!(!names.is_empty(), "no command to try");
    names.sort();
    names
}

/// Sends `setup` (the encoded lines of `SETUP` to use) and reads its replies.
fn set_up(raw: &mut Raw, setup: &(Vec<u8>, usize)) {
    raw.send(&setup.0);
    for _ in 0..setup.1 {
        raw.reply();
    }
}

/// `lines` (words separated by single spaces) as one write, and how many replies it gets.
fn encoded(lines: &[&str]) -> (Vec<u8>, usize) {
    let bytes = lines
        .iter()
        .flat_map(|line| encode(&line.split(' ').collect::<Vec<_>>()))
        .collect();
    (bytes, lines.len())
}

/// `name` with up to seven random arguments.
fn random_command(rng: &mut StdRng, name: &str) -> Vec<String> {
    let argc = rng.random_range(0..8);
    let mut args = vec![name.to_owned()];
    args.extend((0..argc).map(|_| {
        let pool = if rng.random_bool(0.35) { KEYS } else { WORDS };
        pool.choose(rng).copied().unwrap_or_default().to_owned()
    }));
    args
}

/// Runs random forms of every command in `names` on each of `raws` (each try after `setup`),
/// some inside `MULTI` ... `EXEC`, some pipelined with others, and hands each try's commands
/// and replies to `check`.
fn fuzz(
    raws: &mut [Raw],
    names: &[String],
    setup: &(Vec<u8>, usize),
    mut check: impl FnMut(&[String], &[Option<String>]),
) {
    let mut rng = StdRng::seed_from_u64(setting("SHARDIS_FUZZ_SEED", 7));
    for name in names {
        for _ in 0..setting("SHARDIS_FUZZ_TRIES", 40) {
            raws.iter_mut().for_each(|raw| set_up(raw, setup));
            // A quarter of the tries are queued in a transaction (queuing checks the command's
            // name and arity, EXEC runs it or refuses them all), a quarter are pipelined with
            // two random other commands in one write (batches, groups and steps across shards).
            let mut commands = vec![random_command(&mut rng, name)];
            if rng.random_bool(0.25) {
                commands.insert(0, vec!["MULTI".to_owned()]);
                commands.push(vec!["EXEC".to_owned()]);
            } else if rng.random_bool(1.0 / 3.0) {
                for _ in 0..2 {
                    let other = names.choose(&mut rng).map_or("PING", String::as_str);
                    commands.push(random_command(&mut rng, other));
                }
            }
            let frame: Vec<u8> = commands
                .iter()
                .flat_map(|c| encode(&c.iter().map(String::as_str).collect::<Vec<_>>()))
                .collect();
            let replies: Vec<Option<String>> = raws
                .iter_mut()
                .map(|raw| {
                    raw.send(&frame);
                    (0..commands.len())
                        .map(|_| raw.try_reply())
                        .collect::<Option<Vec<String>>>()
                        .map(|replies| replies.concat())
                })
                .collect();
            let args = commands.join(&";".to_owned());
            check(&args, &replies);
        }
        // Leave no transaction or watch behind for the next command's tries.
        for raw in raws.iter_mut() {
            raw.run("DISCARD");
            raw.run("UNWATCH");
        }
    }
}

#[test]
fn random_arguments_to_every_command_are_answered() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let names = commands_to_try(server.port, None);
        // Keys no command names: they must come through untouched.
        let guarded = [
            ("SET guarded:str kept", "+OK\r\n"),
            ("HSET guarded:hash f v", ":1\r\n"),
            ("RPUSH guarded:list x", ":1\r\n"),
        ];
        expect(&mut server.raw(), &guarded, shards);
        fuzz(
            &mut [server.raw()],
            &names,
            &encoded(SETUP),
            |args, replies| {
                assert!(
                    replies.iter().all(Option::is_some),
                    "{shards} shards: no reply to {args:?} (the connection closed)"
                );
            },
        );
        let after = [
            ("PING", "+PONG\r\n"),
            ("GET guarded:str", "$4\r\nkept\r\n"),
            ("HGET guarded:hash f", "$1\r\nv\r\n"),
            ("LRANGE guarded:list 0 -1", "*1\r\n$1\r\nx\r\n"),
        ];
        expect(&mut server.raw(), &after, shards);
    }
}

#[test]
fn random_arguments_get_the_replies_redis_gives() {
    let Some(redis) = RealRedis::start() else {
        return;
    };
    let setup = encoded(&SETUP[..SETUP.len() - 1]);
    compare_with(&redis, &setup, |_| true);
}

/// The field-TTL commands (`HEXPIRE` ...), which Redis 7.0 lacks, against Redis 7.4.
#[test]
fn random_arguments_to_field_ttl_commands_get_the_replies_redis_7_4_gives() {
    let Some(redis_7_0) = RealRedis::start() else {
        return;
    };
    let Some(redis_7_4) = RealRedis::start_7_4() else {
        return;
    };
    let old = command_names(redis_7_0.port);
    compare_with(&redis_7_4, &encoded(SETUP), |name| !old.contains(name));
}

/// Fuzzes the commands that `redis` has too and `only` lets through, on Shardis and on `redis`
/// alike, at each topology, and asserts that every reply is the same.
fn compare_with(redis: &RealRedis, setup: &(Vec<u8>, usize), only: impl Fn(&String) -> bool) {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut names = commands_to_try(server.port, Some(redis.port));
        names.retain(|name| only(name));
        let mut theirs = Raw::connect(redis.port);
        theirs.cmd(&["FLUSHALL"]);
        let mut mismatches = Vec::new();
        fuzz(
            &mut [server.raw(), theirs],
            &names,
            setup,
            |args, replies| {
                if replies[0] != replies[1] {
                    mismatches.push(format!(
                        "{args:?}\n  Shardis: {:?}\n  Redis:   {:?}",
                        replies[0], replies[1]
                    ));
                }
            },
        );
        assert!(
            mismatches.is_empty(),
            "{shards} shards, {} replies differ:\n{}",
            mismatches.len(),
            mismatches.join("\n")
        );
    }
}
