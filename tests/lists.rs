//! List commands through the real server, at 1 and 4 shards.

use crate::harness::{expect, Server, TOPOLOGIES};

#[test]
fn list_commands() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        expect(
            &mut raw,
            &[
                ("RPUSHX l a", ":0\r\n"),
                ("RPUSH l a b c", ":3\r\n"),
                ("LPUSH l z", ":4\r\n"),
                ("LPUSHX l y", ":5\r\n"),
                ("LLEN l", ":5\r\n"),
                (
                    "LRANGE l 0 -1",
                    "*5\r\n$1\r\ny\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
                ),
                ("LINDEX l -1", "$1\r\nc\r\n"),
                ("LSET l 1 Z", "+OK\r\n"),
                ("LSET l 10 Z", "-ERR index out of range\r\n"),
                ("LINSERT l AFTER Z a", ":6\r\n"),
                ("LPOS l a", ":2\r\n"),
                ("LPOS l a RANK -1", ":3\r\n"),
                ("LPOS l a COUNT 0", "*2\r\n:2\r\n:3\r\n"),
                ("LREM l 0 a", ":2\r\n"),
                ("LPOP l 2", "*2\r\n$1\r\ny\r\n$1\r\nZ\r\n"),
                ("RPOP l", "$1\r\nc\r\n"),
                ("LTRIM l 0 0", "+OK\r\n"),
                ("LRANGE l 0 -1", "*1\r\n$1\r\nb\r\n"),
                ("RPOP l", "$1\r\nb\r\n"),
                ("EXISTS l", ":0\r\n"),
                ("LPOP l", "$-1\r\n"),
                ("LPOP l 3", "*-1\r\n"),
                ("SET s v", "+OK\r\n"),
                (
                    "LPUSH s a",
                    "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                ),
            ],
            shards,
        );
        // RESP3 nulls.
        assert!(raw.run("HELLO 3").starts_with('%'));
        assert_eq!(raw.run("LPOP nokey 3"), "_\r\n");
        assert_eq!(raw.run("LINDEX nokey 0"), "_\r\n");
        assert_eq!(raw.run("LPOS nokey a"), "_\r\n");
    }
}

#[test]
fn lmove_within_one_shard() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        expect(
            &mut raw,
            &[
                ("RPUSH {q}src a b c", ":3\r\n"),
                ("LMOVE {q}src {q}dst LEFT RIGHT", "$1\r\na\r\n"),
                ("RPOPLPUSH {q}src {q}dst", "$1\r\nc\r\n"),
                ("LMOVE {q}src {q}src RIGHT LEFT", "$1\r\nb\r\n"),
                ("LRANGE {q}dst 0 -1", "*2\r\n$1\r\nc\r\n$1\r\na\r\n"),
                ("LMOVE {q}src {q}dst LEFT LEFT", "$1\r\nb\r\n"),
                ("EXISTS {q}src", ":0\r\n"),
                ("LMOVE {q}src {q}dst LEFT LEFT", "$-1\r\n"),
                ("LMOVE {q}dst {q}dst UP LEFT", "-ERR syntax error\r\n"),
            ],
            shards,
        );
    }
}

#[test]
fn lmove_across_shards() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        for i in 0..20 {
            let (a, b) = (format!("from{i}"), format!("to{i}"));
            raw.run(&format!("RPUSH {a} x y"));
            assert_eq!(raw.run(&format!("LMOVE {a} {b} LEFT RIGHT")), "$1\r\nx\r\n");
            assert_eq!(raw.run(&format!("RPOPLPUSH {a} {b}")), "$1\r\ny\r\n");
            assert_eq!(raw.run(&format!("LLEN {b}")), ":2\r\n", "{shards} shards");
            assert_eq!(raw.run(&format!("EXISTS {a}")), ":0\r\n");
        }
    }
}

#[test]
fn list_encodings_follow_redis() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        let big = "x".repeat(5000);
        expect(
            &mut raw,
            &[
                ("RPUSH l a b", ":2\r\n"),
                ("OBJECT ENCODING l", "$8\r\nlistpack\r\n"),
                (&format!("RPUSH l {big}"), ":3\r\n"),
                ("OBJECT ENCODING l", "$8\r\nlistpack\r\n"),
                (&format!("RPUSH l {big}"), ":4\r\n"),
                ("OBJECT ENCODING l", "$9\r\nquicklist\r\n"),
                ("RPOP l", &format!("$5000\r\n{big}\r\n")),
                ("OBJECT ENCODING l", "$9\r\nquicklist\r\n"),
                ("RPOP l", &format!("$5000\r\n{big}\r\n")),
                ("OBJECT ENCODING l", "$8\r\nlistpack\r\n"),
            ],
            shards,
        );
    }
}
