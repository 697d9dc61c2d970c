//! The wire protocol: RESP2 and RESP3 replies, inline commands, malformed input, limits,
//! clients that vanish, and many clients at once.

use std::io::Write;
use std::net::TcpStream;

use crate::harness::{encode, Raw, Server, TOPOLOGIES};

#[test]
fn inline_commands_and_quoting() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        raw.send(b"PING\r\nSET greeting \"hello world\\n\"\r\nGET greeting\nECHO 'it''s'\r\n");
        assert_eq!(raw.reply(), "+PONG\r\n");
        assert_eq!(raw.reply(), "+OK\r\n");
        assert_eq!(raw.reply(), "$12\r\nhello world\n\r\n");
        // 'it''s' is one quoted string closed and immediately reopened: unbalanced in Redis.
        assert_eq!(
            raw.reply(),
            "-ERR Protocol error: unbalanced quotes in request\r\n"
        );
        assert!(raw.is_closed());
    }
}

#[test]
fn frames_split_at_every_byte_are_reassembled() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        let mut bytes = encode(&["SET", "split", "a\r\nb"]);
        bytes.extend(encode(&["GET", "split"]));
        bytes.extend(b"PING\r\n");
        for b in &bytes {
            raw.send(std::slice::from_ref(b));
        }
        assert_eq!(raw.reply(), "+OK\r\n");
        assert_eq!(raw.reply(), "$4\r\na\r\nb\r\n");
        assert_eq!(raw.reply(), "+PONG\r\n");
    }
}

#[test]
fn malformed_frames_get_redis_errors_and_close_only_that_connection() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"*x\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n+PING\r\n",
            "-ERR Protocol error: expected '$', got '+'\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$600000000\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*4294967296\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"SET a \"b\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut bystander = server.raw();
        assert_eq!(bystander.cmd(&["SET", "safe", "1"]), "+OK\r\n");
        for (input, want) in cases {
            let mut raw = server.raw();
            // A good command first: its reply still comes, before the error.
            let mut bytes = encode(&["PING"]);
            bytes.extend_from_slice(input);
            raw.send(&bytes);
            assert_eq!(raw.reply(), "+PONG\r\n");
            assert_eq!(&raw.reply(), want, "{}", String::from_utf8_lossy(input));
            assert!(raw.is_closed());
        }
        let mut huge = vec![b'a'; 70 * 1024];
        let mut raw = server.raw();
        raw.send(&huge);
        assert_eq!(
            raw.reply(),
            "-ERR Protocol error: too big inline request\r\n"
        );
        huge.clear();
        assert_eq!(bystander.cmd(&["GET", "safe"]), "$1\r\n1\r\n");
    }
}

#[test]
fn resp3_after_hello_3_and_back() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        let hello = raw.cmd(&["HELLO", "3"]);
        assert!(hello.starts_with("%7\r\n$6\r\nserver\r\n"), "{hello}");
        assert!(hello.contains("$5\r\nproto\r\n:3\r\n"), "{hello}");
        assert_eq!(raw.cmd(&["GET", "missing"]), "_\r\n");
        assert_eq!(
            raw.cmd(&["CONFIG", "GET", "databases"]),
            "%1\r\n$9\r\ndatabases\r\n$2\r\n16\r\n"
        );
        // Remote shards encode for the connection's protocol too.
        for i in 0..20 {
            assert_eq!(raw.cmd(&["GET", &format!("nothing:{i}")]), "_\r\n");
        }
        assert!(raw.cmd(&["HELLO", "2"]).starts_with("*14\r\n"));
        assert_eq!(raw.cmd(&["GET", "missing"]), "$-1\r\n");
        assert_eq!(
            raw.cmd(&["HELLO", "4"]),
            "-NOPROTO unsupported protocol version\r\n"
        );
        assert_eq!(
            raw.cmd(&["HELLO", "x"]),
            "-ERR Protocol version is not an integer or out of range\r\n"
        );
    }
}

#[test]
fn resp3_through_the_redis_crate() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let client =
            redis::Client::open(format!("redis://127.0.0.1:{}/?protocol=resp3", server.port))
                .unwrap();
        let mut con = client.get_connection().unwrap();
        let _: () = redis::cmd("SET")
            .arg("r3")
            .arg("v")
            .query(&mut con)
            .unwrap();
        let v: String = redis::cmd("GET").arg("r3").query(&mut con).unwrap();
        assert_eq!(v, "v");
        let missing: Option<String> = redis::cmd("GET").arg("none").query(&mut con).unwrap();
        assert_eq!(missing, None);
    }
}

#[test]
fn binary_and_large_values_round_trip() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut con = server.client();
        let binary: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let _: () = redis::cmd("SET")
            .arg(&binary[..10])
            .arg(&binary)
            .query(&mut con)
            .unwrap();
        let back: Vec<u8> = redis::cmd("GET")
            .arg(&binary[..10])
            .query(&mut con)
            .unwrap();
        assert_eq!(back, binary);
        let big = vec![b'x'; 20 * 1024 * 1024];
        let _: () = redis::cmd("SET")
            .arg("big")
            .arg(&big)
            .query(&mut con)
            .unwrap();
        let back: Vec<u8> = redis::cmd("GET").arg("big").query(&mut con).unwrap();
        assert_eq!(back.len(), big.len());
        let _: () = redis::cmd("SET")
            .arg("empty")
            .arg("")
            .query(&mut con)
            .unwrap();
        let back: Vec<u8> = redis::cmd("GET").arg("empty").query(&mut con).unwrap();
        assert!(back.is_empty());
    }
}

#[test]
fn a_client_that_disconnects_mid_pipeline_disturbs_nobody() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        {
            let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            let mut bytes = Vec::new();
            for i in 0..2000 {
                bytes.extend(encode(&["SET", &format!("gone:{i}"), "x"]));
            }
            // Half a frame at the end, then vanish without reading a single reply.
            bytes.extend(b"*3\r\n$3\r\nSET\r\n$4\r\ngone");
            stream.write_all(&bytes).unwrap();
        }
        let mut raw = server.raw();
        // Wait (bounded) until the server has noticed the vanished client.
        for _ in 0..1000 {
            if raw
                .cmd(&["INFO", "clients"])
                .contains("connected_clients:1\r\n")
            {
                break;
            }
        }
        assert!(raw
            .cmd(&["INFO", "clients"])
            .contains("connected_clients:1\r\n"));
        // Like Redis, what it had read ran and the rest was dropped with the connection; what
        // ran is an in-order prefix of the pipeline.
        let count: usize = raw
            .cmd(&["DBSIZE"])
            .trim_start_matches(':')
            .trim()
            .parse()
            .unwrap();
        assert!(count <= 2000);
        for i in 0..2000 {
            let want = if i < count { ":1\r\n" } else { ":0\r\n" };
            assert_eq!(
                raw.cmd(&["EXISTS", &format!("gone:{i}")]),
                want,
                "key {i} of {count}"
            );
        }
        assert_eq!(raw.cmd(&["PING"]), "+PONG\r\n");
    }
}

#[test]
fn a_thousand_concurrent_connections() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut conns: Vec<Raw> = (0..1000).map(|_| server.raw()).collect();
        for (i, c) in conns.iter_mut().enumerate() {
            c.send(&encode(&["SET", &format!("c:{i}"), &i.to_string()]));
        }
        for c in conns.iter_mut() {
            assert_eq!(c.reply(), "+OK\r\n");
        }
        for (i, c) in conns.iter_mut().enumerate() {
            let v = i.to_string();
            assert_eq!(
                c.cmd(&["GET", &format!("c:{i}")]),
                format!("${}\r\n{v}\r\n", v.len())
            );
        }
        let info = conns[0].cmd(&["INFO", "clients"]);
        assert!(info.contains("connected_clients:1000\r\n"), "{info}");
    }
}

#[test]
fn query_buffer_limits_protect_memory() {
    for shards in TOPOLOGIES {
        let server = Server::start(
            shards,
            &[
                "--proto-max-bulk-len",
                "1mb",
                "--client-query-buffer-limit",
                "2mb",
            ],
        );
        let mut raw = server.raw();
        raw.send(b"*2\r\n$3\r\nGET\r\n$2000000\r\n");
        assert_eq!(raw.reply(), "-ERR Protocol error: invalid bulk length\r\n");
        // Many arguments each within the bulk limit, together over the query buffer limit.
        let mut raw = server.raw();
        let mut bytes = b"*5\r\n$3\r\nSET\r\n$1\r\nk".to_vec();
        for _ in 0..3 {
            bytes.extend(b"\r\n$1000000\r\n");
            bytes.extend(vec![b'a'; 1_000_000]);
        }
        let _ = raw.stream.write_all(&bytes);
        assert!(raw.try_reply().is_none(), "the client is disconnected");
        assert_eq!(server.raw().cmd(&["PING"]), "+PONG\r\n");
    }
}
