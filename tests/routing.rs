//! Keys spread over shards, hash tags, multi-shard commands and long pipelines.

use std::io::Write;

use crate::harness::{encode, Server, TOPOLOGIES};

/// Keys per shard, from `INFO shards`.
fn keys_per_shard(con: &mut redis::Connection) -> Vec<u64> {
    let info: String = redis::cmd("INFO").arg("shards").query(con).unwrap();
    info.lines()
        .filter(|l| l.starts_with("shard"))
        .map(|l| {
            l.split([':', ','])
                .find_map(|f| f.strip_prefix("keys="))
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
fn keys_spread_over_every_shard_and_read_back() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut con = server.client();
        for i in 0..1000 {
            let _: () = redis::cmd("SET")
                .arg(format!("key:{i}"))
                .arg(i)
                .query(&mut con)
                .unwrap();
        }
        for i in 0..1000 {
            let v: i64 = redis::cmd("GET")
                .arg(format!("key:{i}"))
                .query(&mut con)
                .unwrap();
            assert_eq!(v, i);
        }
        let per_shard = keys_per_shard(&mut con);
        assert_eq!(per_shard.len(), shards);
        assert_eq!(per_shard.iter().sum::<u64>(), 1000);
        assert!(
            per_shard.iter().all(|&n| n > 150),
            "{shards} shards: {per_shard:?}"
        );
        let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert_eq!(size, 1000);
    }
}

#[test]
fn hash_tags_keep_keys_on_one_shard() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut con = server.client();
        for i in 0..200 {
            let _: () = redis::cmd("SET")
                .arg(format!("{{user:42}}:field{i}"))
                .arg(i)
                .query(&mut con)
                .unwrap();
        }
        let per_shard = keys_per_shard(&mut con);
        assert_eq!(
            per_shard.iter().filter(|&&n| n > 0).count(),
            1,
            "{per_shard:?}"
        );
        assert_eq!(per_shard.iter().sum::<u64>(), 200);
    }
}

#[test]
fn multi_key_commands_span_shards() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut con = server.client();
        let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
        for k in &keys {
            let _: () = redis::cmd("SET").arg(k).arg("v").query(&mut con).unwrap();
        }
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&keys)
            .arg("k1")
            .arg("nokey")
            .query(&mut con)
            .unwrap();
        assert_eq!(exists, 51);
        let deleted: i64 = redis::cmd("DEL")
            .arg(&keys[..20])
            .arg("k0")
            .arg("nokey")
            .query(&mut con)
            .unwrap();
        assert_eq!(deleted, 20);
        let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert_eq!(size, 30);
        let _: () = redis::cmd("SELECT").arg(3).query(&mut con).unwrap();
        let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert_eq!(size, 0, "databases are separate");
        let _: () = redis::cmd("SET")
            .arg("k0")
            .arg("db3")
            .query(&mut con)
            .unwrap();
        let _: () = redis::cmd("FLUSHDB").query(&mut con).unwrap();
        let _: () = redis::cmd("SELECT").arg(0).query(&mut con).unwrap();
        let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert_eq!(size, 30, "FLUSHDB only empties the selected database");
        let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
        let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert_eq!(size, 0);
    }
}

#[test]
fn a_pipeline_of_100000_commands_in_one_write_answers_in_order() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        let mut batch = Vec::new();
        for i in 0..50_000 {
            batch.extend(encode(&["SET", &format!("p:{i}"), &i.to_string()]));
            batch.extend(encode(&["GET", &format!("p:{}", i / 2)]));
        }
        // Write from another thread while this one reads, so neither side's buffers fill up.
        let mut writer = raw.stream.try_clone().unwrap();
        let sender = std::thread::spawn(move || writer.write_all(&batch).unwrap());
        for i in 0..50_000 {
            assert_eq!(raw.reply(), "+OK\r\n", "SET #{i}");
            let v = (i / 2).to_string();
            assert_eq!(raw.reply(), format!("${}\r\n{v}\r\n", v.len()), "GET #{i}");
        }
        sender.join().unwrap();
    }
}

#[test]
fn interleaved_local_and_remote_commands_keep_request_order() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        // Many keys (so every shard is involved) mixed with connection commands and barriers.
        let mut batch = Vec::new();
        let mut expected = Vec::new();
        for i in 0..300 {
            batch.extend(encode(&["SET", &format!("o:{i}"), &format!("v{i}")]));
            expected.push("+OK\r\n".to_owned());
            batch.extend(encode(&["ECHO", &format!("e{i}")]));
            expected.push(format!("${}\r\ne{i}\r\n", format!("e{i}").len()));
            batch.extend(encode(&["GET", &format!("o:{i}")]));
            expected.push(format!("${}\r\nv{i}\r\n", format!("v{i}").len()));
            if i % 50 == 0 {
                batch.extend(encode(&["DBSIZE"]));
                expected.push(format!(":{}\r\n", i + 1));
            }
        }
        raw.send(&batch);
        for (n, want) in expected.iter().enumerate() {
            assert_eq!(&raw.reply(), want, "reply #{n} with {shards} shards");
        }
    }
}
