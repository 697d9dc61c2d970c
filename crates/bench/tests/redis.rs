//! End-to-end tests: run the built `shardis-bench` binary against a real
//! `redis-server` started on a free local port. Skipped (with a message) when
//! redis-server is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_shardis-bench");
const REDIS: &str = "/usr/bin/redis-server";

/// A redis-server child process, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts redis-server on a free port, or returns `None` (after saying so)
/// if it is not installed.
fn start_redis(test: &str) -> Option<Redis> {
    if !Path::new(REDIS).exists() {
        eprintln!("SKIPPED {test}: {REDIS} not installed (apt-get install -y redis-server)");
        return None;
    }
    // Ask the kernel for a free port, then release it for redis. Another
    // process could grab it in between; the readiness loop would then fail
    // loudly rather than test the wrong server.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(REDIS)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let redis = Redis { child, port };
    wait_ready(port);
    Some(redis)
}

/// Retries PING until redis answers, for at most 10 seconds.
fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut buf = [0u8; 7];
            if s.write_all(b"PING\r\n").is_ok()
                && s.read_exact(&mut buf).is_ok()
                && &buf == b"+PONG\r\n"
            {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on port {port} never became ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn out_dir(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bench(port: u16, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--port", &port.to_string()])
        .args(args)
        .output()
        .expect("run shardis-bench")
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs shardis-bench with `args` and `--json-out` into a directory named after `name`, checks
/// that it succeeded, and returns its output and the parsed JSON report.
fn bench_json(port: u16, name: &str, args: &[&str]) -> (Output, Json) {
    let json_path = out_dir(name).join("run.json");
    let out = bench(
        port,
        &[args, &["--json-out", json_path.to_str().unwrap()]].concat(),
    );
    assert!(out.status.success(), "{}", show(&out));
    let doc = parse_json(&std::fs::read_to_string(&json_path).unwrap());
    (out, doc)
}

// A minimal JSON reader, enough to check --json-out without serde.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(m) => m
                .get(key)
                .unwrap_or_else(|| panic!("no key {key:?} in {self:?}")),
            _ => panic!("not an object: {self:?}"),
        }
    }
    fn num(&self) -> f64 {
        match self {
            Json::Num(n) => *n,
            _ => panic!("not a number: {self:?}"),
        }
    }
    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => panic!("not an array: {self:?}"),
        }
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => panic!("not a string: {self:?}"),
        }
    }
}

fn parse_json(text: &str) -> Json {
    let b = text.as_bytes();
    let mut pos = 0;
    let v = value(b, &mut pos);
    ws(b, &mut pos);
    assert_eq!(pos, b.len(), "trailing data in JSON");
    v
}

fn ws(b: &[u8], pos: &mut usize) {
    while *pos < b.len() && b[*pos].is_ascii_whitespace() {
        *pos += 1;
    }
}

fn expect(b: &[u8], pos: &mut usize, c: u8) {
    ws(b, pos);
    assert_eq!(b[*pos] as char, c as char, "at byte {pos}");
    *pos += 1;
}

fn value(b: &[u8], pos: &mut usize) -> Json {
    ws(b, pos);
    match b[*pos] {
        b'{' => {
            *pos += 1;
            let mut m = BTreeMap::new();
            ws(b, pos);
            if b[*pos] == b'}' {
                *pos += 1;
                return Json::Obj(m);
            }
            loop {
                ws(b, pos);
                let Json::Str(k) = value(b, pos) else {
                    panic!("key not a string")
                };
                expect(b, pos, b':');
                m.insert(k, value(b, pos));
                ws(b, pos);
                *pos += 1;
                if b[*pos - 1] == b'}' {
                    return Json::Obj(m);
                }
                assert_eq!(b[*pos - 1], b',');
            }
        }
        b'[' => {
            *pos += 1;
            let mut a = Vec::new();
            ws(b, pos);
            if b[*pos] == b']' {
                *pos += 1;
                return Json::Arr(a);
            }
            loop {
                a.push(value(b, pos));
                ws(b, pos);
                *pos += 1;
                if b[*pos - 1] == b']' {
                    return Json::Arr(a);
                }
                assert_eq!(b[*pos - 1], b',');
            }
        }
        b'"' => {
            *pos += 1;
            let mut s = String::new();
            loop {
                let c = b[*pos];
                *pos += 1;
                match c {
                    b'"' => return Json::Str(s),
                    b'\\' => {
                        let e = b[*pos];
                        *pos += 1;
                        match e {
                            b'n' => s.push('\n'),
                            b't' => s.push('\t'),
                            b'r' => s.push('\r'),
                            b'u' => {
                                let hex = std::str::from_utf8(&b[*pos..*pos + 4]).unwrap();
                                s.push(
                                    char::from_u32(u32::from_str_radix(hex, 16).unwrap()).unwrap(),
                                );
                                *pos += 4;
                            }
                            other => s.push(other as char),
                        }
                    }
                    _ => {
                        // Copy a whole UTF-8 sequence.
                        let start = *pos - 1;
                        let mut end = *pos;
                        while end < b.len() && (b[end] & 0xC0) == 0x80 {
                            end += 1;
                        }
                        s.push_str(std::str::from_utf8(&b[start..end]).unwrap());
                        *pos = end;
                    }
                }
            }
        }
        b't' if b[*pos..].starts_with(b"true") => {
            *pos += 4;
            Json::Bool(true)
        }
        b'f' if b[*pos..].starts_with(b"false") => {
            *pos += 5;
            Json::Bool(false)
        }
        b'n' if b[*pos..].starts_with(b"null") => {
            *pos += 4;
            Json::Null
        }
        _ => {
            let start = *pos;
            while *pos < b.len()
                && matches!(b[*pos], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                *pos += 1;
            }
            Json::Num(
                std::str::from_utf8(&b[start..*pos])
                    .unwrap()
                    .parse()
                    .unwrap(),
            )
        }
    }
}

fn command<'a>(doc: &'a Json, name: &str) -> &'a Json {
    doc.get("commands")
        .arr()
        .iter()
        .find(|c| c.get("name").str() == name)
        .unwrap_or_else(|| panic!("no command {name}"))
}

#[test]
fn json_parser_self_check() {
    let v = parse_json(r#"{"a": [1, 2.5, -3e2], "b": {"c": null, "d": true}, "e": "x\"\u0041é"}"#);
    assert_eq!(v.get("a").arr()[2].num(), -300.0);
    assert_eq!(v.get("b").get("d"), &Json::Bool(true));
    assert_eq!(v.get("e").str(), "x\"Aé");
}

#[test]
fn two_thousand_requests_against_redis() {
    let Some(redis) = start_redis("two_thousand_requests_against_redis") else {
        return;
    };
    // 2 threads × 5 clients × 200 requests = 2000; 1:1 is exact per thread.
    let (out, doc) = bench_json(
        redis.port,
        "json",
        &[
            "--threads",
            "2",
            "--clients",
            "5",
            "--requests",
            "200",
            "--ratio",
            "1:1",
            "--key-maximum",
            "1000",
            "--seed",
            "42",
        ],
    );
    let totals = doc.get("totals");
    assert_eq!(totals.get("ops").num(), 2000.0, "{}", show(&out));
    assert_eq!(totals.get("errors").num(), 0.0);
    let set = command(&doc, "SET");
    let get = command(&doc, "GET");
    assert_eq!(set.get("ops").num(), 1000.0);
    assert_eq!(get.get("ops").num(), 1000.0);
    assert_eq!(set.get("errors").num(), 0.0);
    assert_eq!(get.get("errors").num(), 0.0);
    assert_eq!(get.get("hits").num() + get.get("misses").num(), 1000.0);
    // Keys 0..=1000 with 1000 SETs interleaved: some GETs must hit.
    assert!(get.get("hits").num() > 0.0);
    assert_eq!(set.get("hits"), &Json::Null);
    assert_eq!(doc.get("unanswered").num(), 0.0);
    assert!(doc.get("failures").arr().is_empty());
    assert_eq!(doc.get("configuration").get("seed").num(), 42.0);
    let lat = totals.get("latency_ms");
    assert!(lat.get("max").num() >= lat.get("p50").num());
    assert!(totals.get("ops_per_sec").num() > 0.0);
    // The human-readable table is on stdout.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Totals"), "{stdout}");
}

#[test]
fn resp3_templates_histograms_and_plot() {
    let Some(redis) = start_redis("resp3_templates_histograms_and_plot") else {
        return;
    };
    let dir = out_dir("resp3");
    let prefix = dir.join("lat");
    let plot = dir.join("chart.svg");
    let json_path = dir.join("run.json");
    let out = bench(
        redis.port,
        &[
            "--protocol",
            "3",
            "--clients",
            "4",
            "--pipeline",
            "8",
            "--requests",
            "100",
            "--key-pattern",
            "S",
            "--key-maximum",
            "99",
            "--command",
            "HSET __key__ f __data__",
            "--command",
            "3:HGETALL __key__",
            "--hdr-file-prefix",
            prefix.to_str().unwrap(),
            "--plot",
            plot.to_str().unwrap(),
            "--json-out",
            json_path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let doc = parse_json(&std::fs::read_to_string(&json_path).unwrap());
    assert_eq!(doc.get("totals").get("ops").num(), 400.0);
    assert_eq!(
        command(&doc, "HSET __key__ f __data__").get("ops").num(),
        100.0
    );
    assert_eq!(command(&doc, "HGETALL __key__").get("ops").num(), 300.0);
    assert_eq!(doc.get("totals").get("errors").num(), 0.0);
    for name in ["HSET", "HGETALL", "TOTALS"] {
        let text = std::fs::read_to_string(format!("{}_{name}.hgrm", prefix.display())).unwrap();
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
        assert!(text.contains("#[Max     ="));
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("HGETALL"));
}

#[test]
fn error_replies_are_counted() {
    let Some(redis) = start_redis("error_replies_are_counted") else {
        return;
    };
    let (out, doc) = bench_json(
        redis.port,
        "errors",
        &[
            "--clients",
            "2",
            "--requests",
            "25",
            "--command",
            "NOSUCHCOMMAND __key__",
        ],
    );
    assert_eq!(doc.get("totals").get("errors").num(), 50.0);
    let samples = doc.get("error_samples").arr();
    assert!(!samples.is_empty() && samples.len() <= 5);
    assert!(samples[0].get("message").str().contains("unknown command"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("50 error replies"));
}

#[test]
fn open_loop_rate_is_respected() {
    let Some(redis) = start_redis("open_loop_rate_is_respected") else {
        return;
    };
    // 400 requests at 1000/s should take about 0.4 s.
    let (_, doc) = bench_json(
        redis.port,
        "rate",
        &["--clients", "4", "--requests", "100", "--rate", "1000"],
    );
    assert_eq!(doc.get("totals").get("ops").num(), 400.0);
    let secs = doc.get("duration_secs").num();
    assert!((0.35..2.0).contains(&secs), "took {secs} s");
}

#[test]
fn server_closing_connections_fails_the_run() {
    let Some(redis) = start_redis("server_closing_connections_fails_the_run") else {
        return;
    };
    // QUIT makes the server close the connection after its reply.
    let out = bench(
        redis.port,
        &["--clients", "2", "--requests", "10", "--command", "QUIT"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connection"), "{stderr}");
}

#[test]
fn refused_connection_fails_the_run() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = bench(port, &["--clients", "1", "--requests", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
}

#[test]
fn bad_arguments_exit_with_status_2() {
    for args in [
        &["--threads", "0"][..],
        &["--ratio", "x"],
        &["--key-minimum", "9", "--key-maximum", "1"],
        &["--requests", "1", "--test-time", "1"],
        &["--protocol", "5"],
        &["--command", "\"unterminated"],
    ] {
        let out = bench(1, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        assert!(!out.stderr.is_empty());
    }
}

/// Runs `redis-cli` against the test server; its output, one reply per line.
fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn multi_command_templates_share_the_key_and_count_once() {
    let Some(redis) = start_redis("multi_command_templates_share_the_key_and_count_once") else {
        return;
    };
    // 2 clients × 50 requests over 10 sequential keys: each key is drawn 10
    // times, and each request both increments it and sets its TTL.
    let (out, doc) = bench_json(
        redis.port,
        "multi",
        &[
            "--clients",
            "2",
            "--requests",
            "50",
            "--pipeline",
            "4",
            "--key-pattern",
            "S",
            "--key-maximum",
            "9",
            "--key-prefix",
            "rl:",
            "--command",
            "INCR __key__ ; EXPIRE __key__ 60 NX",
        ],
    );
    assert_eq!(doc.get("totals").get("ops").num(), 100.0, "{}", show(&out));
    assert_eq!(doc.get("totals").get("errors").num(), 0.0);
    assert_eq!(doc.get("unanswered").num(), 0.0);
    let keys: Vec<String> = (0..10).map(|i| format!("rl:{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let counts = redis_cli(redis.port, &[&["MGET"], &keys[..]].concat());
    assert_eq!(counts.lines().collect::<Vec<_>>(), ["10"; 10]);
    for key in keys {
        let ttl: i64 = redis_cli(redis.port, &["TTL", key]).trim().parse().unwrap();
        assert!((1..=60).contains(&ttl), "{key} has TTL {ttl}");
    }

    // Numbered keys are separate draws: 2 × 20 MSETs of two sequential keys
    // write all of mk:0..=79.
    let out = bench(
        redis.port,
        &[
            "--clients",
            "2",
            "--requests",
            "20",
            "--key-pattern",
            "S",
            "--key-maximum",
            "79",
            "--key-prefix",
            "mk:",
            "--command",
            "MSET __key1__ __data__ __key2__ __data__",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let exists: Vec<String> = (0..80).map(|i| format!("mk:{i}")).collect();
    let exists: Vec<&str> = exists.iter().map(String::as_str).collect();
    assert_eq!(
        redis_cli(redis.port, &[&["EXISTS"], &exists[..]].concat()).trim(),
        "80"
    );

    // One error reply makes the whole request an error, counted once.
    let (_, doc) = bench_json(
        redis.port,
        "multi-errors",
        &[
            "--clients",
            "1",
            "--requests",
            "30",
            "--command",
            "PING ; NOSUCHCOMMAND __key__ ; PING",
        ],
    );
    assert_eq!(doc.get("totals").get("ops").num(), 30.0);
    assert_eq!(doc.get("totals").get("errors").num(), 30.0);
    let samples = doc.get("error_samples").arr();
    assert!(samples[0].get("message").str().contains("unknown command"));
}
