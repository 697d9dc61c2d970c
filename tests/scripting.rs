//! Lua scripting and `CL.THROTTLE`: conversions, errors and the sandbox compared with Debian's
//! redis-server 7.0 byte for byte, rate-limiter scripts, scripts whose keys live on several
//! shards, and the script cache.

use crate::differential::with_both;
use crate::harness::{encode, Raw, RealRedis, Server, TOPOLOGIES};

fn compare(redis: &mut Raw, shardis: &mut Raw, commands: &[&[&str]], shards: usize) {
    for (n, args) in commands.iter().enumerate() {
        let want = redis.cmd(args);
        let got = shardis.cmd(args);
        assert_eq!(got, want, "{shards} shards: command #{n} {args:?}");
    }
}

#[test]
fn conversions_match_redis() {
    with_both(|r, s, shards| {
        compare(
            r,
            s,
            &[
                &["EVAL", "return 1", "0"],
                &["EVAL", "local x = 1\ncoroutine.yield(1)", "0"],
                &[
                    "EVAL",
                    "local co = coroutine.create(function() coroutine.yield(5) return 7 end) \
                     local _, a = coroutine.resume(co) local _, b = coroutine.resume(co) \
                     return {a, b}",
                    "0",
                ],
                &["EVAL", "return 3.99", "0"],
                &["EVAL", "return -3.99", "0"],
                &["EVAL", "return 1/0", "0"],
                &["EVAL", "return -1/0", "0"],
                &["EVAL", "return 0/0", "0"],
                &["EVAL", "return {2^63, -2^63, 2^62}", "0"],
                &["EVAL", "return 0.5", "0"],
                &["EVAL", "return 'abc'", "0"],
                &["EVAL", "return true", "0"],
                &["EVAL", "return false", "0"],
                &["EVAL", "return nil", "0"],
                &["EVAL", "return {1,2,3.7,'x',nil,5}", "0"],
                &["EVAL", "return {true,false,{ok='a'},{err='b'}}", "0"],
                &["EVAL", "return {1, {2, {3}}, 'x'}", "0"],
                &["EVAL", "local t = {} t[1]='a' t[3]='c' return t", "0"],
                &["EVAL", "return {ok='FINE'}", "0"],
                &["EVAL", "return {err='MY error'}", "0"],
                &["EVAL", "return {err=5, ok=false, 1, 'two'}", "0"],
                &["EVAL", "return {ok={}, 'x'}", "0"],
                &["EVAL", "return {{}, {{}}, {nil, 1}}", "0"],
                &["EVAL", "return redis.status_reply('FINE')", "0"],
                &["EVAL", "return redis.error_reply('My Error')", "0"],
                &["EVAL", "return tostring(1e20)", "0"],
                &["EVAL", "return redis.sha1hex('')", "0"],
                &["EVAL", "return redis.sha1hex('hello world')", "0"],
                &[
                    "EVAL",
                    "return KEYS[1]..ARGV[1]..#KEYS..#ARGV",
                    "1",
                    "k",
                    "a",
                ],
                &["EVAL", "return redis.call('set', KEYS[1], 3.25)", "1", "k"],
                &["EVAL", "return redis.call('get', KEYS[1])", "1", "k"],
                &[
                    "EVAL",
                    "return redis.call('set', KEYS[1], 10, 'GET')",
                    "1",
                    "k",
                ],
                &[
                    "EVAL",
                    "return redis.call('get', KEYS[1]) == false",
                    "1",
                    "nokey",
                ],
                &[
                    "EVAL",
                    "return redis.call('hset', KEYS[1], 'a', '1', 'b', 2)",
                    "1",
                    "h",
                ],
                &["EVAL", "return redis.call('hgetall', KEYS[1])", "1", "h"],
                &[
                    "EVAL",
                    "return redis.call('hincrby', KEYS[1], 'a', 5)",
                    "1",
                    "h",
                ],
                &["EVAL", "return redis.call('type', KEYS[1])", "1", "h"],
                &["EVAL", "return redis.call('ping')", "0"],
                &["EVAL", "return redis.call('echo', 'x')", "0"],
                &["EVAL", "return redis.pcall('hget', KEYS[1], 'x')", "1", "k"],
                &[
                    "EVAL",
                    "return type(redis.pcall('hget', KEYS[1], 'x'))",
                    "1",
                    "k",
                ],
                &[
                    "EVAL",
                    "local ok, e = pcall(redis.call, 'nosuch') return e",
                    "0",
                ],
                &["EVAL", "return {pcall(error, 'x')}", "0"],
                &["EVAL", "return type(loadstring)", "0"],
                &["EVAL", "return type(unpack)", "0"],
                &["EVAL", "return type(string.format)", "0"],
                &[
                    "EVAL",
                    "return redis.log(redis.LOG_WARNING, 'from a test')",
                    "0",
                ],
            ],
            shards,
        );
    });
}

#[test]
fn resp3_clients_get_resp3_nulls() {
    with_both(|r, s, shards| {
        for raw in [&mut *r, &mut *s] {
            raw.cmd(&["HELLO", "3"]);
        }
        compare(
            r,
            s,
            &[
                &["EVAL", "return nil", "0"],
                &["EVAL", "return {1, false, 'x'}", "0"],
                &["EVAL", "return true", "0"],
                &[
                    "EVAL",
                    "return redis.call('hgetall', KEYS[1])",
                    "1",
                    "nokey",
                ],
            ],
            shards,
        );
    });
}

#[test]
fn errors_match_redis() {
    with_both(|r, s, shards| {
        compare(
            r,
            s,
            &[
                &["SET", "s", "v"],
                &["EVAL", "return redis.call('nosuch')", "0"],
                &["EVAL", "redis.call('nosuch') return 1", "0"],
                &["EVAL", "return redis.call('get')", "0"],
                &["EVAL", "return redis.call('hget', KEYS[1], 'x')", "1", "s"],
                &["EVAL", "return redis.call()", "0"],
                &["EVAL", "return redis.call({})", "0"],
                &["EVAL", "return redis.call('get', {})", "0"],
                &["EVAL", "return redis.call('eval', 'return 1', '0')", "0"],
                &["EVAL", "return redis.call('config', 'get', 'x')", "0"],
                &["EVAL", "\n\nerror('deep')", "0"],
                &["EVAL", "error({err='MYERR custom'})", "0"],
                &["EVAL", "return 'abc", "0"],
                &["EVAL", "return 1", "-1"],
                &["EVAL", "return 1", "2", "a"],
                &["EVAL", "return 1", "x"],
                &["EVAL"],
                &["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"],
                &["EVALSHA", "abc", "0"],
                &[
                    "EVAL_RO",
                    "return redis.call('set', KEYS[1], 'b')",
                    "1",
                    "a",
                ],
                &["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "s"],
                &["SCRIPT", "FLUSH", "x"],
                &["SCRIPT", "NOPE"],
                &["SCRIPT", "LOAD", "return '"],
                &["SCRIPT", "LOAD"],
            ],
            shards,
        );
    });
}

#[test]
fn sandbox_matches_redis() {
    with_both(|r, s, shards| {
        compare(
            r,
            s,
            &[
                &["EVAL", "x = 1", "0"],
                &["EVAL", "redis = 1", "0"],
                &["EVAL", "redis.call = 1", "0"],
                &["EVAL", "return os", "0"],
                &["EVAL", "return io", "0"],
                &["EVAL", "return type(print)", "0"],
                &["EVAL", "return type(dofile)", "0"],
                &["EVAL", "return type(loadfile)", "0"],
                &["EVAL", "return type(require)", "0"],
                &["EVAL", "return type(setfenv)", "0"],
                &["EVAL", "return type(getfenv)", "0"],
                &["EVAL", "return type(module)", "0"],
                &["EVAL", "return type(debug)", "0"],
                &["EVAL", "return type(newproxy)", "0"],
                &["EVAL", "return nosuchglobal", "0"],
                &["EVAL", "_G.x = 1", "0"],
                &["EVAL", "rawset(_G, 'x', 1)", "0"],
                &["EVAL", "rawset(redis, 'x', 1)", "0"],
                &["EVAL", "setmetatable(_G, nil)", "0"],
                &["EVAL", "return getmetatable(_G)", "0"],
                &["EVAL", "return rawget(_G, 'redis') ~= nil", "0"],
                &["EVAL", "return type(_G)", "0"],
                &[
                    "EVAL",
                    "local t = {} rawset(t, 1, 'ok') return setmetatable(t, nil)",
                    "0",
                ],
                &[
                    "EVAL",
                    "local ok, e = pcall(loadstring('y = 1')) return e",
                    "0",
                ],
                &["EVAL", "return loadstring('return ARGV[1]')()", "0", "a"],
            ],
            shards,
        );
    });
}

/// The usual rate limiters written as scripts give Redis's answers. The time is an argument so
/// both servers see the same clock.
#[test]
fn rate_limiter_scripts_match_redis() {
    const FIXED_WINDOW: &str = "\
        local n = redis.call('GET', KEYS[1]) \
        if not n then redis.call('SET', KEYS[1], 1, 'PX', ARGV[2]) return {1, 1} end \
        if tonumber(n) >= tonumber(ARGV[1]) then return {0, tonumber(n)} end \
        redis.call('SET', KEYS[1], n + 1, 'KEEPTTL') \
        return {1, n + 1}";
    const TOKEN_BUCKET: &str = "\
        local capacity, rate, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]) \
        local state = redis.call('HMGET', KEYS[1], 'tokens', 'at') \
        local tokens = tonumber(state[1]) or capacity \
        local at = tonumber(state[2]) or now \
        tokens = math.min(capacity, tokens + (now - at) * rate / 1000) \
        local allowed = 0 \
        if tokens >= 1 then tokens = tokens - 1 allowed = 1 end \
        redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now) \
        return {allowed, math.floor(tokens), tostring(tokens)}";
    with_both(|r, s, shards| {
        let mut commands: Vec<Vec<String>> = Vec::new();
        for _ in 0..7 {
            commands.push(
                ["EVAL", FIXED_WINDOW, "1", "fw:{user1}", "5", "60000"]
                    .map(String::from)
                    .to_vec(),
            );
        }
        for now in [1000, 1000, 1000, 1200, 1250, 3000, 3001, 3002, 3003, 9000] {
            let now = now.to_string();
            commands.push(
                ["EVAL", TOKEN_BUCKET, "1", "tb:{user1}", "3", "2", &now]
                    .map(String::from)
                    .to_vec(),
            );
        }
        let commands: Vec<Vec<&str>> = commands
            .iter()
            .map(|c| c.iter().map(String::as_str).collect())
            .collect();
        let commands: Vec<&[&str]> = commands.iter().map(Vec::as_slice).collect();
        compare(r, s, &commands, shards);
    });
}

#[test]
fn keys_on_several_shards_run_on_one() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        let swap = "local a = redis.call('GET', KEYS[1]) \
                    redis.call('SET', KEYS[1], redis.call('GET', KEYS[2])) \
                    redis.call('SET', KEYS[2], a) \
                    return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}";
        // foo, bar and baz live on different shards when there are 4.
        assert_eq!(raw.cmd(&["SET", "foo", "1"]), "+OK\r\n");
        assert_eq!(raw.cmd(&["SET", "bar", "2"]), "+OK\r\n");
        assert_eq!(
            raw.cmd(&["EVAL", swap, "2", "foo", "bar"]),
            "*2\r\n$1\r\n2\r\n$1\r\n1\r\n"
        );
        assert_eq!(raw.cmd(&["GET", "foo"]), "$1\r\n2\r\n");
        assert_eq!(raw.cmd(&["GET", "bar"]), "$1\r\n1\r\n");
        // A key the script did not declare is refused when another shard owns it.
        let sneaky = raw.cmd(&["EVAL", "return redis.call('GET', 'baz')", "1", "foo"]);
        let undeclared = raw.cmd(&["EVAL", "return redis.call('GET', 'foo')", "2", "bar", "baz"]);
        if shards == 1 {
            assert_eq!(sneaky, "$-1\r\n");
            assert_eq!(undeclared, "$1\r\n2\r\n");
        } else {
            for reply in [sneaky, undeclared] {
                assert!(
                    reply.starts_with(
                        "-ERR Script attempted to access a key that was not declared in KEYS \
                         and lives on another shard script: "
                    ),
                    "{reply}"
                );
            }
        }
        // Keys sharing a hash tag, or a shard, may be used without declaring them.
        assert_eq!(
            raw.cmd(&[
                "EVAL",
                "return redis.call('SET', '{foo}2', 'x')",
                "1",
                "foo"
            ]),
            "+OK\r\n"
        );
    }
}

#[test]
fn script_cache_and_evalsha() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        let sha = "a0c38691e7a5be5d3e4b7a3fc3abd2a18c2a5d0a";
        let loaded = "4a2267357833227dd98abdedb8cf24b15a986445";
        assert_eq!(
            raw.cmd(&["SCRIPT", "LOAD", "return KEYS[1]"]),
            format!("$40\r\n{loaded}\r\n")
        );
        // Loaded scripts are on every shard, whichever shard the keys route to.
        for key in ["foo", "bar", "baz", "qux"] {
            assert_eq!(
                raw.cmd(&["EVALSHA", loaded, "1", key]),
                format!("$3\r\n{key}\r\n")
            );
            assert_eq!(
                raw.cmd(&["EVALSHA", &loaded.to_uppercase(), "1", key]),
                format!("$3\r\n{key}\r\n")
            );
        }
        assert_eq!(
            raw.cmd(&["SCRIPT", "EXISTS", loaded, sha]),
            "*2\r\n:1\r\n:0\r\n"
        );
        assert_eq!(raw.cmd(&["SCRIPT", "FLUSH", "ASYNC"]), "+OK\r\n");
        assert_eq!(
            raw.cmd(&["EVALSHA", loaded, "1", "foo"]),
            "-NOSCRIPT No matching script. Please use EVAL.\r\n"
        );
        assert_eq!(raw.cmd(&["SCRIPT", "EXISTS", loaded]), "*1\r\n:0\r\n");
    }
}

#[test]
fn throttle_limits_bursts() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        // 1 action per 100 s with a burst of 3 (limit 4): four pass, the fifth waits.
        for remaining in (0..4).rev() {
            let reply = raw.cmd(&["CL.THROTTLE", "user:1", "3", "1", "100"]);
            let want = format!("*5\r\n:0\r\n:4\r\n:{remaining}\r\n:-1\r\n:");
            assert!(reply.starts_with(&want), "{reply}");
        }
        let reply = raw.cmd(&["CL.THROTTLE", "user:1", "3", "1", "100"]);
        // Whole seconds, truncated: 100 s to retry and 400 s to reset, less the time the
        // calls took (under a second).
        let timely =
            ["99\r\n:399", "100\r\n:400"].map(|t| format!("*5\r\n:1\r\n:4\r\n:0\r\n:{t}\r\n"));
        assert!(timely.contains(&reply), "{reply}");
        // A quantity above the burst can never pass: no retry time.
        let reply = raw.cmd(&["CL.THROTTLE", "user:2", "3", "1", "100", "5"]);
        assert_eq!(reply, "*5\r\n:1\r\n:4\r\n:4\r\n:-1\r\n:0\r\n");
        assert_eq!(
            raw.cmd(&["CL.THROTTLE", "user:3", "x", "1", "100"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            raw.cmd(&["CL.THROTTLE", "user:3", "1", "0", "100"]),
            "-ERR value is out of range\r\n"
        );
        raw.cmd(&["HSET", "h", "a", "1"]);
        assert!(raw
            .cmd(&["CL.THROTTLE", "h", "1", "1", "1"])
            .starts_with("-WRONGTYPE"));
    }
}

/// Sends `SCRIPT KILL` until a script is there to kill: `NOTBUSY` while the script has not
/// started; once it runs, the command waits for the busy threshold and answers.
fn kill_when_busy(raw: &mut Raw) -> String {
    for _ in 0..1000 {
        let reply = raw.cmd(&["SCRIPT", "KILL"]);
        if !reply.starts_with("-NOTBUSY") {
            return reply;
        }
        std::thread::yield_now();
    }
    panic!("the script never became busy");
}

/// Sends `PING` until the server answers `BUSY` (the script has passed its threshold).
fn ping_until_busy(raw: &mut Raw) -> String {
    for _ in 0..1000 {
        let reply = raw.cmd(&["PING"]);
        if reply.starts_with("-BUSY") {
            return reply;
        }
        std::thread::yield_now();
    }
    panic!("the shard never answered BUSY");
}

/// The life of a script past `busy-reply-threshold`, as seen by its own client (`a`), a client
/// of the same shard and a client elsewhere; the transcript of everything they are answered.
/// `shards` tells which new connection lands on `a`'s shard (the acceptor deals them round
/// robin).
fn busy_script_transcript(port: u16, shards: usize) -> Vec<String> {
    let mut a = Raw::connect(port);
    let mut others: Vec<Raw> = (0..shards).map(|_| Raw::connect(port)).collect();
    let elsewhere = others.remove(0);
    let mut same = others.pop().unwrap_or(elsewhere);
    let mut elsewhere = Raw::connect(port);
    let mut transcript = vec![a.cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"])];

    // A read-only script is killed by a client anywhere.
    let forever = "local n = 0 while true do n = n + 1 end";
    a.send(&encode(&["EVAL", forever, "0"]));
    transcript.push(ping_until_busy(&mut same));
    transcript.push(same.cmd(&["GET", "k"]));
    transcript.push(same.cmd(&["SET", "k", "v"]));
    transcript.push(kill_when_busy(&mut elsewhere));
    transcript.push(a.reply());
    transcript.push(same.cmd(&["SCRIPT", "KILL"]));
    transcript.push(same.cmd(&["PING"]));
    transcript.push(a.cmd(&["GET", "k"]));

    // A script that has written cannot be killed; it stops with the server. Its key must live
    // on `a`'s shard: a script without keys runs there and may use only such keys.
    let local = (0..)
        .map(|n| format!("k{n}"))
        .find(|key| {
            let probe = format!("return redis.call('exists', '{key}')");
            a.cmd(&["EVAL", &probe, "0"]) == ":0\r\n"
        })
        .unwrap();
    let writer = "redis.call('set', KEYS[1], 'v') while true do end";
    a.send(&encode(&["EVAL", writer, "1", &local]));
    transcript.push(ping_until_busy(&mut same));
    transcript.push(same.cmd(&["SCRIPT", "KILL"]));
    transcript.push(same.cmd(&["SCRIPT", "KILL", "x"]));
    same.send(&encode(&["SHUTDOWN", "NOSAVE"]));
    transcript.push(format!("closed: {}", same.try_reply().is_none()));
    transcript
}

#[test]
fn long_scripts_answer_busy_and_can_be_killed() {
    let Some(redis) = RealRedis::start() else {
        return;
    };
    let want = busy_script_transcript(redis.port, 1);
    assert!(want[1].starts_with("-BUSY"), "{want:?}");
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let got = busy_script_transcript(server.port, shards);
        assert_eq!(got, want, "{shards} shards");
        assert_eq!(server.wait_exit(), Some(0));
    }
}

/// A script whose key lives on another shard than its client's runs there; it is killed the
/// same way, and the client's own shard goes on serving.
#[test]
fn long_scripts_on_another_shard_can_be_killed() {
    let server = Server::start(4, &["--busy-reply-threshold", "100"]);
    let mut a = server.raw();
    let mut b = server.raw();
    let forever = "while true do end";
    for key in ["a", "b", "c", "d"] {
        a.send(&encode(&["EVAL", forever, "1", key]));
        assert_eq!(kill_when_busy(&mut b), "+OK\r\n", "key {key}");
        let reply = a.reply();
        assert!(
            reply.starts_with("-ERR Script killed by user with SCRIPT KILL..."),
            "{reply}"
        );
        assert_eq!(a.cmd(&["SET", key, "1"]), "+OK\r\n");
        assert_eq!(b.cmd(&["GET", key]), "$1\r\n1\r\n");
    }
}

/// With `lua-allow-undeclared-keys`, a script may use any key: each command runs on the shard
/// that owns its keys, under a step that holds every shard.
#[test]
fn scripts_reach_undeclared_keys_when_allowed() {
    let sum = "for i = 1, 20 do redis.call('set', 'key' .. i, i) end \
               local n = 0 for i = 1, 20 do n = n + redis.call('get', 'key' .. i) end return n";
    let several = "return redis.call('mget', 'key1', 'key2', 'key3', 'key4', 'key5')";
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        if shards > 1 {
            let reply = raw.cmd(&["EVAL", sum, "0"]);
            assert!(
                reply.starts_with("-ERR Script attempted to access a key that was not declared"),
                "{reply}"
            );
        }
        assert_eq!(
            raw.cmd(&["CONFIG", "SET", "lua-allow-undeclared-keys", "yes"]),
            "+OK\r\n"
        );
        assert_eq!(raw.cmd(&["EVAL", sum, "0"]), ":210\r\n", "{shards} shards");
        // Each key was written on its own shard.
        for i in 1..=20 {
            let i = i.to_string();
            assert_eq!(
                raw.cmd(&["GET", &format!("key{i}")]),
                format!("${}\r\n{i}\r\n", i.len())
            );
        }
        // Errors from another shard come back as from a local command.
        raw.cmd(&["HSET", "h", "f", "v"]);
        assert_eq!(
            raw.cmd(&["EVAL", "return redis.pcall('incr', 'h')", "0"]),
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        );
        let reply = raw.cmd(&["EVAL", several, "0"]);
        if shards > 1 {
            assert!(
                reply.starts_with(
                    "-ERR Script attempted to access keys of several shards in one command"
                ),
                "{reply}"
            );
        } else {
            assert_eq!(
                reply,
                "*5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n"
            );
        }
    }
}

/// Scripts that move amounts between undeclared keys on several shards are atomic: a
/// concurrent cross-shard `MGET` always sees the same total.
#[test]
fn reaching_scripts_are_atomic() {
    let accounts: Vec<String> = (0..8).map(|i| format!("acct{i}")).collect();
    let transfer = "local from, to = 'acct' .. ARGV[1], 'acct' .. ARGV[2] \
                    redis.call('decrby', from, 1) redis.call('incrby', to, 1) return 1";
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &["--lua-allow-undeclared-keys", "yes"]);
        let mut raw = server.raw();
        for account in &accounts {
            raw.cmd(&["SET", account, "100"]);
        }
        let port = server.port;
        let writer = std::thread::spawn(move || {
            let mut raw = Raw::connect(port);
            for n in 0..300 {
                let (from, to) = ((n * 3) % 8, (n * 5 + 1) % 8);
                let reply = raw.cmd(&["EVAL", transfer, "0", &from.to_string(), &to.to_string()]);
                assert_eq!(reply, ":1\r\n");
            }
        });
        let mut mget = vec!["MGET"];
        mget.extend(accounts.iter().map(String::as_str));
        while !writer.is_finished() {
            let reply = raw.cmd(&mget);
            let total: i64 = reply
                .lines()
                .filter_map(|line| line.parse::<i64>().ok())
                .sum();
            assert_eq!(total, 800, "{shards} shards: {reply:?}");
        }
        writer.join().unwrap();
    }
}

/// Thousands of cached scripts (Redis keeps every script it was sent until SCRIPT FLUSH).
#[test]
fn thousands_of_scripts_stay_cached() {
    const SCRIPTS: usize = 9000;
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        let mut batch = Vec::new();
        for n in 0..SCRIPTS {
            batch.extend_from_slice(&encode(&["SCRIPT", "LOAD", &format!("return {n}")]));
        }
        raw.send(&batch);
        let shas: Vec<String> = (0..SCRIPTS).map(|_| raw.reply()).collect();
        for n in [0, SCRIPTS / 2, SCRIPTS - 1] {
            let sha = shas[n].lines().nth(1).unwrap();
            assert_eq!(raw.cmd(&["EVALSHA", sha, "0"]), format!(":{n}\r\n"));
        }
        assert_eq!(
            raw.cmd(&["EVAL", "return redis.call('ping')", "0"]),
            "+PONG\r\n"
        );
    }
}
