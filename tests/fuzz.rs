//! Random arguments to every command the server lists in `COMMAND`: numbers at and past the
//! edges of their types, option keywords in and out of place, keys of every type, empty and odd
//! strings. Each command must get an answer (a reply or an error) on a connection that stays
//! open, the server must keep answering, and keys no command was given must keep their values.
//! Seeded, so a failure repeats.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::harness::{encode, expect, Server, TOPOLOGIES};

/// Commands not sent: they stop the server, close or re-authenticate the connection, change
/// the limits later commands run under, or drop keys wholesale (the keys this test guards).
const LEFT_OUT: &[&str] = &[
    "shutdown",
    "quit",
    "client",
    "config",
    "flushall",
    "flushdb",
    "swapdb",
    "debug",
    "monitor",
    "subscribe",
    "psubscribe",
    "sync",
    "psync",
    "replicaof",
    "slaveof",
];

/// Keys of each type, recreated before each command is tried, so that every command meets
/// strings, integers, hashes (with and without field TTLs), lists and missing keys.
const SETUP: &[&str] = &[
    "DEL str int hash ttlhash list missing {t}a {t}b",
    "SET str hello",
    "SET int 10",
    "HSET hash f1 v1 f2 2",
    "HSET ttlhash f1 v1 f2 v2",
    "HEXPIRE ttlhash 1000 FIELDS 1 f1",
    "RPUSH list a b c",
];

const KEYS: &[&str] = &[
    "str", "int", "hash", "ttlhash", "list", "missing", "{t}a", "{t}b",
];

/// Words a command may meet as its arguments.
const WORDS: &[&str] = &[
    // numbers, at the edges of i64, u64, i32, f64 and past them
    "0",
    "1",
    "-1",
    "2",
    "3",
    "10",
    "-100",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551616",
    "4294967296",
    "2147483648",
    "1.5",
    "-0.0",
    "1e308",
    "1e400",
    "inf",
    "-inf",
    "nan",
    "0x10",
    " 1",
    "1 ",
    "+1",
    "01",
    // options, of every family
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "NX",
    "XX",
    "GT",
    "LT",
    "KEEPTTL",
    "GET",
    "FIELDS",
    "FNX",
    "FXX",
    "PERSIST",
    "COUNT",
    "MATCH",
    "TYPE",
    "WITHVALUES",
    "NOVALUES",
    "BYINT",
    "BYFLOAT",
    "LBOUND",
    "UBOUND",
    "SATURATE",
    "ENX",
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "RANK",
    "MAXLEN",
    "LOAD",
    "FLUSH",
    "EXISTS",
    "ENCODING",
    "FREQ",
    "IDLETIME",
    "REFCOUNT",
    "USAGE",
    "SAMPLES",
    "DB",
    "REPLACE",
    "ASYNC",
    "SYNC",
    "INFO",
    "DOCS",
    "LIST",
    "ID",
    "SETNAME",
    "AUTH",
    "KILL",
    // strings
    "",
    "f1",
    "f2",
    "a",
    "v",
    "*",
    "[",
    "\\",
    "{t}",
    "\u{e9}",
    "return 1",
    "return redis.call('get', KEYS[1])",
    "return {1, 2, {3}, false, 'x'}",
];

fn argument(rng: &mut StdRng) -> String {
    if rng.random_bool(0.35) {
        KEYS.choose(rng).copied().unwrap_or("k").to_owned()
    } else {
        WORDS.choose(rng).copied().unwrap_or("").to_owned()
    }
}

/// The names of every command in the server's table, from `COMMAND LIST`-like `COMMAND`
/// output: each entry starts with its name as a bulk string.
fn command_names(server: &Server) -> Vec<String> {
    let mut con = server.client();
    let names: Vec<String> = redis::cmd("COMMAND")
        .query::<Vec<redis::Value>>(&mut con)
        .unwrap()
        .into_iter()
        .filter_map(|entry| match entry {
            redis::Value::Array(fields) => fields.into_iter().next(),
            _ => None,
        })
        .filter_map(|name| redis::from_redis_value::<String>(name).ok())
        .collect();
    assert!(names.len() > 100, "COMMAND listed {} commands", names.len());
    names
}

#[test]
fn random_arguments_to_every_command_are_answered() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut names = command_names(&server);
        names.sort();
        names.retain(|name| !LEFT_OUT.contains(&name.as_str()));
        // Keys no command names: they must come through untouched.
        let mut guard = server.raw();
        expect(
            &mut guard,
            &[
                ("SET guarded:str kept", "+OK\r\n"),
                ("HSET guarded:hash f v", ":1\r\n"),
                ("RPUSH guarded:list x", ":1\r\n"),
            ],
            shards,
        );
        let setup: Vec<u8> = SETUP
            .iter()
            .flat_map(|line| encode(&line.split(' ').collect::<Vec<_>>()))
            .collect();
        let mut raw = server.raw();
        let mut rng = StdRng::seed_from_u64(7);
        for name in &names {
            for _ in 0..40 {
                guard.send(&setup);
                for _ in SETUP {
                    guard.reply();
                }
                let argc = rng.random_range(0..8);
                let mut args = vec![name.clone()];
                args.extend((0..argc).map(|_| argument(&mut rng)));
                let words: Vec<&str> = args.iter().map(String::as_str).collect();
                raw.send(&encode(&words));
                let reply = raw.try_reply();
                assert!(
                    reply.is_some(),
                    "{shards} shards: no reply to {args:?} (the connection closed)"
                );
            }
            // Leave no transaction or watch behind for the next command's tries.
            raw.run("DISCARD");
            raw.run("UNWATCH");
        }
        let mut fresh = server.raw();
        expect(
            &mut fresh,
            &[
                ("PING", "+PONG\r\n"),
                ("GET guarded:str", "$4\r\nkept\r\n"),
                ("HGET guarded:hash f", "$1\r\nv\r\n"),
                ("LRANGE guarded:list 0 -1", "*1\r\n$1\r\nx\r\n"),
            ],
            shards,
        );
    }
}
