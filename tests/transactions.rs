//! MULTI / EXEC / DISCARD / WATCH, including atomicity across shards.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::harness::{encode, Raw, RealRedis, Server, TOPOLOGIES};

#[test]
fn queue_exec_and_errors() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        assert_eq!(raw.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(raw.cmd(&["SET", "a", "1"]), "+QUEUED\r\n");
        assert_eq!(raw.cmd(&["SET", "b", "2"]), "+QUEUED\r\n");
        assert_eq!(raw.cmd(&["GET", "a"]), "+QUEUED\r\n");
        assert_eq!(raw.cmd(&["HSET", "a", "f", "v"]), "+QUEUED\r\n");
        assert_eq!(raw.cmd(&["DEL", "a", "b", "c"]), "+QUEUED\r\n");
        assert_eq!(raw.cmd(&["DBSIZE"]), "+QUEUED\r\n");
        // A runtime error (WRONGTYPE) does not undo the others.
        assert_eq!(
            raw.cmd(&["EXEC"]),
            "*6\r\n+OK\r\n+OK\r\n$1\r\n1\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:2\r\n:0\r\n"
        );
        assert_eq!(raw.cmd(&["EXEC"]), "-ERR EXEC without MULTI\r\n");
        assert_eq!(raw.cmd(&["DISCARD"]), "-ERR DISCARD without MULTI\r\n");

        assert_eq!(raw.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(
            raw.cmd(&["MULTI"]),
            "-ERR MULTI calls can not be nested\r\n"
        );
        assert_eq!(
            raw.cmd(&["WATCH", "x"]),
            "-ERR WATCH inside MULTI is not allowed\r\n"
        );
        assert_eq!(raw.cmd(&["SET", "a", "1"]), "+QUEUED\r\n");
        assert_eq!(
            raw.cmd(&["NOSUCHCOMMAND"]),
            "-ERR unknown command 'NOSUCHCOMMAND', with args beginning with: \r\n"
        );
        assert_eq!(
            raw.cmd(&["GET"]),
            "-ERR wrong number of arguments for 'get' command\r\n"
        );
        assert_eq!(
            raw.cmd(&["EXEC"]),
            "-EXECABORT Transaction discarded because of previous errors.\r\n"
        );
        assert_eq!(
            raw.cmd(&["EXISTS", "a"]),
            ":0\r\n",
            "an aborted transaction changes nothing"
        );

        assert_eq!(raw.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(raw.cmd(&["SET", "a", "1"]), "+QUEUED\r\n");
        assert_eq!(raw.cmd(&["DISCARD"]), "+OK\r\n");
        assert_eq!(raw.cmd(&["EXISTS", "a"]), ":0\r\n");
        assert_eq!(raw.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(raw.cmd(&["EXEC"]), "*0\r\n");
    }
}

#[test]
fn watch_fails_exec_after_a_write_a_delete_an_expiry_or_a_flush() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut a = server.raw();
        let mut b = server.raw();
        let exec_after = |a: &mut Raw, b: &mut Raw, interfere: &[&str]| {
            assert_eq!(a.cmd(&["WATCH", "w1", "w2"]), "+OK\r\n");
            if !interfere.is_empty() {
                b.cmd(interfere);
            }
            assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
            assert_eq!(a.cmd(&["SET", "done", "1"]), "+QUEUED\r\n");
            a.cmd(&["EXEC"])
        };
        b.cmd(&["SET", "w1", "x"]);
        assert_eq!(
            exec_after(&mut a, &mut b, &[]),
            "*1\r\n+OK\r\n",
            "untouched"
        );
        assert_eq!(
            exec_after(&mut a, &mut b, &["SET", "w1", "y"]),
            "*-1\r\n",
            "written"
        );
        assert_eq!(
            exec_after(&mut a, &mut b, &["SET", "w2", "new"]),
            "*-1\r\n",
            "created"
        );
        assert_eq!(
            exec_after(&mut a, &mut b, &["DEL", "w1"]),
            "*-1\r\n",
            "deleted"
        );
        b.cmd(&["SET", "w1", "x"]);
        assert_eq!(
            exec_after(&mut a, &mut b, &["FLUSHALL"]),
            "*-1\r\n",
            "flushed"
        );
        assert_eq!(
            exec_after(&mut a, &mut b, &["DEL", "nothing"]),
            "*1\r\n+OK\r\n"
        );
        // Expiry: the watched key expires between WATCH and EXEC.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        b.cmd(&["SET", "w1", "x", "PXAT", &(now + 100).to_string()]);
        assert_eq!(a.cmd(&["WATCH", "w1"]), "+OK\r\n");
        std::thread::sleep(std::time::Duration::from_millis(150));
        assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(a.cmd(&["SET", "done", "1"]), "+QUEUED\r\n");
        assert_eq!(a.cmd(&["EXEC"]), "*-1\r\n", "expired");
        // UNWATCH forgets.
        assert_eq!(a.cmd(&["WATCH", "w1"]), "+OK\r\n");
        b.cmd(&["SET", "w1", "z"]);
        assert_eq!(a.cmd(&["UNWATCH"]), "+OK\r\n");
        assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(a.cmd(&["EXEC"]), "*0\r\n");
    }
}

/// Writers set ten keys spread over every shard to the same value in one transaction; readers
/// read all ten in one transaction. A reader that ever sees two different values has seen half
/// of a transaction.
#[test]
fn transactions_across_shards_are_never_seen_half_done() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let keys: Vec<String> = (0..10).map(|i| format!("torn:{i}")).collect();
        let port = server.port;
        let writer_keys = keys.clone();
        let writer = std::thread::spawn(move || {
            let mut w = Raw::connect(port);
            for round in 0..400 {
                let mut batch = encode(&["MULTI"]);
                for k in &writer_keys {
                    batch.extend(encode(&["SET", k, &round.to_string()]));
                }
                batch.extend(encode(&["EXEC"]));
                w.send(&batch);
                for _ in 0..writer_keys.len() + 1 {
                    w.reply();
                }
                assert!(w.reply().starts_with("*10\r\n"));
            }
        });
        let mut readers = Vec::new();
        for _ in 0..2 {
            let keys = keys.clone();
            readers.push(std::thread::spawn(move || {
                let mut r = Raw::connect(port);
                for _ in 0..400 {
                    let mut batch = encode(&["MULTI"]);
                    for k in &keys {
                        batch.extend(encode(&["GET", k]));
                    }
                    batch.extend(encode(&["EXEC"]));
                    r.send(&batch);
                    for _ in 0..keys.len() + 1 {
                        r.reply();
                    }
                    let exec = r.reply();
                    let values = bulk_values(&exec);
                    assert_eq!(values.len(), 10, "{exec}");
                    assert!(
                        values.iter().all(|v| *v == values[0]),
                        "torn read with {shards} shards: {values:?}"
                    );
                }
            }));
        }
        writer.join().unwrap();
        for r in readers {
            r.join().unwrap();
        }
    }
}

#[test]
fn transaction_replies_match_redis() {
    let Some(redis) = RealRedis::start() else {
        return;
    };
    let script: &[&[&str]] = &[
        &["MULTI"],
        &["SET", "k", "1"],
        &["GET", "k"],
        &["HSET", "k", "f", "v"],
        &["EXEC"],
        &["MULTI"],
        &["MULTI"],
        &["WATCH", "k"],
        &["GET", "k"],
        &["EXEC"],
        &["MULTI"],
        &["GET"],
        &["SET", "k", "2"],
        &["EXEC"],
        &["GET", "k"],
        &["EXEC"],
        &["DISCARD"],
        &["WATCH", "k"],
        &["UNWATCH"],
        &["MULTI"],
        &["UNWATCH"],
        &["EXEC"],
        &["MULTI"],
        &["PING"],
        &["ECHO", "x"],
        &["SELECT", "2"],
        &["SET", "k", "db2"],
        &["EXEC"],
        &["GET", "k"],
        &["SELECT", "0"],
        &["GET", "k"],
        // An EXEC refused for its arguments discards the transaction and the watches.
        &["WATCH", "k"],
        &["MULTI"],
        &["SET", "k", "3"],
        &["EXEC", "extra"],
        &["GET", "k"],
        &["EXEC"],
        &["EXEC", "extra"],
        // A queued MSET whose last key has no value fails alone, wherever its keys live.
        &["MULTI"],
        &["MSET", "m:1", "1", "m:2", "2", "m:3", "3", "m:4"],
        &["SET", "m:5", "5"],
        &["EXEC"],
        &["MGET", "m:1", "m:2", "m:3", "m:4", "m:5"],
    ];
    for shards in TOPOLOGIES {
        let shardis = Server::start(shards, &[]);
        let mut r = Raw::connect(redis.port);
        r.cmd(&["FLUSHALL"]);
        let mut s = shardis.raw();
        for (n, cmd) in script.iter().enumerate() {
            assert_eq!(
                s.cmd(cmd),
                r.cmd(cmd),
                "command #{n} {cmd:?} with {shards} shards"
            );
        }
    }
}

/// The elements of an array reply of bulk strings, with `nil` for a null.
fn bulk_values(reply: &str) -> Vec<String> {
    let mut lines = reply.split("\r\n").skip(1);
    let mut values = Vec::new();
    while let Some(line) = lines.next() {
        if line == "$-1" {
            values.push("nil".to_owned());
        } else if line.starts_with('$') {
            values.push(lines.next().unwrap_or_default().to_owned());
        }
    }
    values
}

/// The same check for plain multi-key commands: `MSET` writes ten keys spread over every shard,
/// `MGET` reads them; a reader must never see two different values. Three writers and three
/// readers, each sending one command per write, so that every command ends its batch and may
/// take the quick one-round-trip step, then four, so that pipelined runs share a step and
/// connections of the same home shard join each other's steps (six connections over four
/// shards share homes).
#[test]
fn mset_and_mget_across_shards_are_never_seen_half_done() {
    for (shards, pipeline) in TOPOLOGIES.into_iter().flat_map(|s| [(s, 1), (s, 4)]) {
        let server = Server::start(shards, &[]);
        let keys: Vec<String> = (0..10).map(|i| format!("split:{i}")).collect();
        let port = server.port;
        let writers: Vec<_> = (0..3)
            .map(|writer| {
                let keys = keys.clone();
                std::thread::spawn(move || {
                    let mut w = Raw::connect(port);
                    for round in 0..150 {
                        let mut bytes = Vec::new();
                        for j in 0..pipeline {
                            let value = format!("{writer}:{round}:{j}");
                            let mut args = vec!["MSET"];
                            for k in &keys {
                                args.push(k);
                                args.push(&value);
                            }
                            bytes.extend(encode(&args));
                        }
                        w.send(&bytes);
                        for _ in 0..pipeline {
                            assert_eq!(w.reply(), "+OK\r\n");
                        }
                    }
                })
            })
            .collect();
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let keys = keys.clone();
                std::thread::spawn(move || {
                    let mut r = Raw::connect(port);
                    let mut args = vec!["MGET"];
                    args.extend(keys.iter().map(String::as_str));
                    let bytes = encode(&args).repeat(pipeline);
                    for _ in 0..150 {
                        r.send(&bytes);
                        for _ in 0..pipeline {
                            let values = bulk_values(&r.reply());
                            assert_eq!(values.len(), 10);
                            assert!(
                                values.iter().all(|v| *v == values[0]),
                                "torn MGET with {shards} shards, pipeline {pipeline}: {values:?}"
                            );
                        }
                    }
                })
            })
            .collect();
        for t in writers.into_iter().chain(readers) {
            t.join().unwrap();
        }
    }
}

/// Connections of the same home shard join each other's steps; a joiner's spread commands are
/// answered when its batch ends. Pipelines that mix spread commands with single-key ones, each
/// connection on keys of its own, must still get every reply right and in request order.
#[test]
fn pipelines_mixing_joined_spread_commands_and_single_keys_answer_in_order() {
    for shards in TOPOLOGIES.into_iter().chain([2]) {
        let server = Server::start(shards, &[]);
        let port = server.port;
        let clients: Vec<_> = (0..8)
            .map(|c| {
                std::thread::spawn(move || {
                    let mut con = Raw::connect(port);
                    let [a, b, d, n] = ["a", "b", "d", "n"].map(|k| format!("mix{c}:{k}"));
                    for round in 0..100 {
                        let (now, next) = (round.to_string(), (round + 1).to_string());
                        let script: [(Vec<&str>, String); 8] = [
                            (vec!["MSET", &a, &now, &b, &now, &d, &now], "+OK\r\n".into()),
                            (vec!["GET", &a], format!("${}\r\n{now}\r\n", now.len())),
                            (
                                vec!["MGET", &a, &b, &d],
                                format!(
                                    "*3\r\n{}",
                                    format!("${}\r\n{now}\r\n", now.len()).repeat(3)
                                ),
                            ),
                            (vec!["INCR", &n], format!(":{}\r\n", round + 1)),
                            (vec!["MSET", &a, &next, &b, &next], "+OK\r\n".into()),
                            (
                                vec!["MGET", &b, &d],
                                format!(
                                    "*2\r\n${}\r\n{next}\r\n${}\r\n{now}\r\n",
                                    next.len(),
                                    now.len()
                                ),
                            ),
                            (
                                vec!["DEL", "mix:none:1", "mix:none:2", "mix:none:3"],
                                ":0\r\n".into(),
                            ),
                            (vec!["EXISTS", &a, &b, &d, &n], ":4\r\n".into()),
                        ];
                        let bytes: Vec<u8> =
                            script.iter().flat_map(|(args, _)| encode(args)).collect();
                        con.send(&bytes);
                        for (args, expected) in &script {
                            assert_eq!(&con.reply(), expected, "{args:?} at {shards} shards");
                        }
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
    }
}

/// Under a steady stream of steps no connection is starved. With three shards and many
/// connections of spread MGETs, a connection whose step waited for its own shard (or whose
/// inline command waited for a step to end) was woken each time the shard came free, found it
/// taken again by the next queued request, and waited until the load stopped. Here every
/// connection makes a fixed number of requests; when the first one is done, every other must
/// have made real progress too (a starved one is stuck at the request it started with).
#[test]
fn no_connection_is_starved_by_other_connections_steps() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    const CONNECTIONS: usize = 30;
    const REQUESTS: usize = 300;
    let server = Server::start_on_one_cpu(3);
    let port = server.port;
    let first_done = Arc::new(AtomicBool::new(false));
    let progress: Arc<Vec<AtomicUsize>> =
        Arc::new((0..CONNECTIONS).map(|_| AtomicUsize::new(0)).collect());
    let snapshot = Arc::new(std::sync::Mutex::new(None::<Vec<usize>>));
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let (first_done, progress, snapshot) =
                (first_done.clone(), progress.clone(), snapshot.clone());
            std::thread::spawn(move || {
                let mut con = Raw::connect(port);
                for i in 0..REQUESTS {
                    let (a, b) = (
                        format!("s:{}", (c * 7 + i) % 50),
                        format!("s:{}", (c + i * 3) % 50),
                    );
                    assert!(con.cmd(&["MGET", &a, &b]).starts_with("*2\r\n"));
                    progress[c].store(i + 1, Ordering::SeqCst);
                }
                if !first_done.swap(true, Ordering::SeqCst) {
                    let seen = progress.iter().map(|p| p.load(Ordering::SeqCst)).collect();
                    *snapshot.lock().unwrap() = Some(seen);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let seen = snapshot.lock().unwrap().take().unwrap();
    let slowest = seen.iter().copied().min().unwrap();
    assert!(
        slowest >= REQUESTS / 10,
        "when the first connection was done, one had made only {slowest} of {REQUESTS} requests: {seen:?}"
    );
}

/// Two connections of one home shard whose spread commands need disjoint sets of shards hold a
/// step each at the same time. Each must end its own step: ending the other's would free its
/// shards under it and leave its own held for good, and every later command on them would hang.
#[test]
fn steps_of_one_home_on_disjoint_shards_end_their_own() {
    use shardis_commands::slots::SlotMap;
    let shards = 4;
    let map = SlotMap::even(shards);
    let key_on = |shard: usize, n: usize| -> Vec<String> {
        (0..)
            .map(|i| format!("disjoint:{i}"))
            .filter(|k| map.shard_of(k.as_bytes()) == shard)
            .take(n)
            .collect()
    };
    for round in 0..5 {
        let server = Server::start(shards, &[]);
        // Connections go to the shards in turn: the first and the fifth share home 0.
        let mut conns: Vec<Raw> = (0..5).map(|_| server.raw()).collect();
        let second_home = conns.pop().unwrap();
        let first_home = conns.swap_remove(0);
        let run = |mut raw: Raw, keys: Vec<String>| {
            std::thread::spawn(move || {
                let mut args = vec!["MGET"];
                args.extend(keys.iter().map(String::as_str));
                let bytes = encode(&args).repeat(50);
                for _ in 0..40 {
                    raw.send(&bytes);
                    for _ in 0..50 {
                        assert!(raw.reply().starts_with("*4\r\n"));
                    }
                }
            })
        };
        let far: Vec<String> = [key_on(1, 2), key_on(2, 2)].concat();
        let near: Vec<String> = [key_on(0, 2), key_on(3, 2)].concat();
        let threads = [run(first_home, far.clone()), run(second_home, near.clone())];
        for t in threads {
            t.join().unwrap();
        }
        // Every shard is free again: a write to each answers (within the read timeout).
        let mut check = server.raw();
        for key in far.iter().chain(&near) {
            assert_eq!(check.cmd(&["SET", key, "x"]), "+OK\r\n", "round {round}");
        }
    }
}
