//! String and counter commands through the real server, at 1 and 4 shards.

use crate::harness::{expect, Server, TOPOLOGIES};

#[test]
fn string_commands() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        expect(
            &mut raw,
            &[
                ("SET k v", "+OK\r\n"),
                ("GET k", "$1\r\nv\r\n"),
                ("SETNX k w", ":0\r\n"),
                ("SETNX k2 w", ":1\r\n"),
                ("SETEX k 100 x", "+OK\r\n"),
                ("TTL k", ":100\r\n"),
                ("GETSET k y", "$1\r\nx\r\n"),
                ("TTL k", ":-1\r\n"),
                ("GETEX k PX 50000", "$1\r\ny\r\n"),
                ("TTL k", ":50\r\n"),
                ("GETEX k PERSIST", "$1\r\ny\r\n"),
                ("TTL k", ":-1\r\n"),
                ("GETDEL k", "$1\r\ny\r\n"),
                ("GET k", "$-1\r\n"),
                ("APPEND s Hello", ":5\r\n"),
                ("APPEND s _World", ":11\r\n"),
                ("STRLEN s", ":11\r\n"),
                ("GETRANGE s -5 -1", "$5\r\nWorld\r\n"),
                ("SETRANGE s 6 Redis", ":11\r\n"),
                ("GET s", "$11\r\nHello_Redis\r\n"),
                ("OBJECT ENCODING s", "$3\r\nraw\r\n"),
                ("SET n 12", "+OK\r\n"),
                ("OBJECT ENCODING n", "$3\r\nint\r\n"),
                ("SET e short", "+OK\r\n"),
                ("OBJECT ENCODING e", "$6\r\nembstr\r\n"),
                ("LPUSH l a", ":1\r\n"),
                (
                    "GET l",
                    "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                ),
                (
                    "SET k v EX 0",
                    "-ERR invalid expire time in 'set' command\r\n",
                ),
                ("SET k v NX XX", "-ERR syntax error\r\n"),
            ],
            shards,
        );
    }
}

#[test]
fn mget_and_mset_span_shards() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut con = server.client();
        let keys: Vec<String> = (0..40).map(|i| format!("key:{i}")).collect();
        let mut mset = redis::cmd("MSET");
        for (i, k) in keys.iter().enumerate() {
            mset.arg(k).arg(i);
        }
        let _: () = mset.query(&mut con).unwrap();
        let mut mget = redis::cmd("MGET");
        mget.arg(&keys).arg("missing");
        let got: Vec<Option<i64>> = mget.query(&mut con).unwrap();
        let want: Vec<Option<i64>> = (0..40).map(Some).chain([None]).collect();
        assert_eq!(got, want, "{shards} shards");
        let mut raw = server.raw();
        assert_eq!(
            raw.run("MSET key:1 a key:2"),
            "-ERR wrong number of arguments for 'mset' command\r\n"
        );
        assert_eq!(raw.run("GET key:1"), "$1\r\n1\r\n", "nothing was written");
        assert_eq!(raw.run("MSETNX {t}a 1 {t}b 2"), ":1\r\n");
        assert_eq!(raw.run("MSETNX {t}b 3 {t}c 4"), ":0\r\n");
        assert_eq!(
            raw.run("MGET {t}a {t}b {t}c"),
            "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"
        );
    }
}

#[test]
fn msetnx_across_shards() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        assert_eq!(
            raw.run("MSETNX a 1 b 2 c 3 d 4"),
            ":1\r\n",
            "{shards} shards"
        );
        assert_eq!(raw.run("MSETNX e 5 d 6"), ":0\r\n");
        assert_eq!(raw.run("EXISTS e"), ":0\r\n");
    }
}

#[test]
fn counters() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        expect(
            &mut raw,
            &[
                ("INCR c", ":1\r\n"),
                ("INCRBY c 41", ":42\r\n"),
                ("DECR c", ":41\r\n"),
                ("DECRBY c 50", ":-9\r\n"),
                ("SET c 9223372036854775807 EX 100", "+OK\r\n"),
                ("INCR c", "-ERR increment or decrement would overflow\r\n"),
                ("DECR c", ":9223372036854775806\r\n"),
                ("TTL c", ":100\r\n"),
                ("SET c 1.5", "+OK\r\n"),
                ("INCR c", "-ERR value is not an integer or out of range\r\n"),
                ("INCRBYFLOAT c 0.1", "$3\r\n1.6\r\n"),
                // Long double arithmetic, exactly as Redis prints it.
                ("INCRBYFLOAT c 5.0e3", "$22\r\n5001.60000000000000009\r\n"),
                ("INCRBYFLOAT c abc", "-ERR value is not a valid float\r\n"),
            ],
            shards,
        );
        assert!(raw.run("HELLO 3").starts_with('%'));
        // RESP3 does not change INCRBYFLOAT (a bulk string) but makes INCREX BYFLOAT doubles.
        assert_eq!(
            raw.run("INCRBYFLOAT c 1"),
            "$22\r\n5002.60000000000000009\r\n"
        );
        assert_eq!(raw.run("INCREX c BYFLOAT 0.4"), "*2\r\n,5003\r\n,0.4\r\n");
    }
}

/// Every example of the Redis 8.8 `INCREX` page, with the replies it documents.
#[test]
fn increx_follows_its_documentation() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        expect(
            &mut raw,
            &[
                ("DEL mykey", ":0\r\n"),
                ("INCREX mykey", "*2\r\n:1\r\n:1\r\n"),
                ("INCREX mykey", "*2\r\n:2\r\n:1\r\n"),
                ("SET mykey 100", "+OK\r\n"),
                ("INCREX mykey BYINT 5", "*2\r\n:105\r\n:5\r\n"),
                ("INCREX mykey BYINT -10", "*2\r\n:95\r\n:-10\r\n"),
                ("SET mykey 1.5", "+OK\r\n"),
                (
                    "INCREX mykey BYFLOAT 0.25",
                    "*2\r\n$4\r\n1.75\r\n$4\r\n0.25\r\n",
                ),
                ("DEL mykey", ":1\r\n"),
                ("INCREX mykey BYINT 1 EX 100", "*2\r\n:1\r\n:1\r\n"),
                ("TTL mykey", ":100\r\n"),
                ("SET mykey 10", "+OK\r\n"),
                ("INCREX mykey BYINT 1 EX 100 ENX", "*2\r\n:11\r\n:1\r\n"),
                ("TTL mykey", ":100\r\n"),
                ("SET mykey 10 EX 500", "+OK\r\n"),
                ("INCREX mykey BYINT 1 EX 10 ENX", "*2\r\n:11\r\n:1\r\n"),
                ("TTL mykey", ":500\r\n"),
                ("SET mykey 5 EX 1000", "+OK\r\n"),
                ("TTL mykey", ":1000\r\n"),
                ("INCREX mykey BYINT 1 PERSIST", "*2\r\n:6\r\n:1\r\n"),
                ("TTL mykey", ":-1\r\n"),
                ("SET mykey 99", "+OK\r\n"),
                ("INCREX mykey BYINT 5 UBOUND 100", "*2\r\n:99\r\n:0\r\n"),
                ("SET mykey 99", "+OK\r\n"),
                (
                    "INCREX mykey BYINT 5 UBOUND 100 SATURATE",
                    "*2\r\n:100\r\n:1\r\n",
                ),
                // The rate-limiter pattern: capped at 3 per window, the window set once.
                ("INCREX rl BYINT 1 UBOUND 3 EX 60 ENX", "*2\r\n:1\r\n:1\r\n"),
                ("INCREX rl BYINT 1 UBOUND 3 EX 60 ENX", "*2\r\n:2\r\n:1\r\n"),
                ("INCREX rl BYINT 1 UBOUND 3 EX 60 ENX", "*2\r\n:3\r\n:1\r\n"),
                ("INCREX rl BYINT 1 UBOUND 3 EX 60 ENX", "*2\r\n:3\r\n:0\r\n"),
                ("TTL rl", ":60\r\n"),
                // Out of the type's range without bounds: skipped, or saturated.
                ("SET big 9223372036854775806", "+OK\r\n"),
                ("INCREX big BYINT 5", "*2\r\n:9223372036854775806\r\n:0\r\n"),
                (
                    "INCREX big BYINT 5 SATURATE",
                    "*2\r\n:9223372036854775807\r\n:1\r\n",
                ),
                ("INCREX mykey BYINT 1 BYFLOAT 1", "-ERR syntax error\r\n"),
                ("INCREX mykey ENX", "-ERR syntax error\r\n"),
                ("INCREX mykey EX 10 PERSIST", "-ERR syntax error\r\n"),
                (
                    "INCREX mykey LBOUND 5 UBOUND 1",
                    "-ERR LBOUND must be less than or equal to UBOUND\r\n",
                ),
                ("LPUSH list x", ":1\r\n"),
                (
                    "INCREX list",
                    "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                ),
            ],
            shards,
        );
    }
}
