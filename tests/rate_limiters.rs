//! The rate-limiter and counter scripts that client libraries ship, run against Debian's
//! redis-server 7.0 and Shardis with the same inputs, every reply compared, at 1 shard and
//! several. Times come from `ARGV` so the runs are deterministic; one limiter reads
//! `redis.call('TIME')` with a window long enough that the clock cannot change its answers.
//! (A sliding log on a sorted set is the other common limiter; Shardis has no sorted sets.)
//!
//! Scripts are invoked the way libraries do it: `EVALSHA` first, and on `NOSCRIPT` either
//! `SCRIPT LOAD` and `EVALSHA` again (redis-py's `Script`) or `EVAL` (ioredis, go-redis).

use crate::differential::with_both;
use crate::harness::Raw;

/// Fixed window: one counter per window, created with its expiry.
const FIXED_WINDOW: &str = "\
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
local ttl = redis.call('TTL', KEYS[1])
if count > tonumber(ARGV[1]) then
  return {0, count, ttl > 0 and 1 or 0}
end
return {1, count, ttl > 0 and 1 or 0}";

/// Sliding window log on a list: newest timestamp first, those older than the window popped
/// from the tail.
const SLIDING_LOG: &str = "\
local key, now = KEYS[1], tonumber(ARGV[1])
local window, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
while true do
  local oldest = redis.call('LINDEX', key, -1)
  if not oldest or tonumber(oldest) > now - window then break end
  redis.call('RPOP', key)
end
local used = redis.call('LLEN', key)
if used >= limit then
  local oldest = tonumber(redis.call('LINDEX', key, -1))
  return {0, used, oldest + window - now}
end
redis.call('LPUSH', key, now)
redis.call('PEXPIRE', key, window)
return {1, used + 1, 0}";

/// Sliding window with a capped list: push, trim to the limit, count what is inside the window.
const CAPPED_LIST: &str = "\
local key, now = KEYS[1], tonumber(ARGV[1])
local window, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local recent = redis.call('LRANGE', key, 0, limit - 1)
local inside = 0
for _, at in ipairs(recent) do
  if tonumber(at) > now - window then inside = inside + 1 end
end
if inside >= limit then
  return {0, inside, redis.call('LLEN', key)}
end
redis.call('LPUSH', key, now)
redis.call('LTRIM', key, 0, limit - 1)
redis.call('PEXPIRE', key, window)
return {1, inside + 1, redis.call('LLEN', key)}";

/// Token bucket on a hash: refill by elapsed time, take `cost` tokens if there are enough.
const TOKEN_BUCKET: &str = "\
local key = KEYS[1]
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local now, cost = tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', key, 'tokens', 'updated')
local tokens = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
local elapsed = math.max(0, now - updated)
tokens = math.min(capacity, tokens + elapsed * rate / 1000)
local allowed = tokens >= cost
if allowed then tokens = tokens - cost end
redis.call('HSET', key, 'tokens', tostring(tokens), 'updated', now)
redis.call('PEXPIRE', key, math.ceil(capacity / rate * 1000) + 1000)
local wait = 0
if not allowed then wait = math.ceil((cost - tokens) / rate * 1000) end
return {allowed and 1 or 0, math.floor(tokens), wait, tostring(tokens)}";

/// A counter with a cap and a JSON summary, as quota scripts keep them.
const QUOTA: &str = "\
local used = redis.call('HINCRBY', KEYS[1], 'used', ARGV[1])
if used > tonumber(ARGV[2]) then
  redis.call('HINCRBY', KEYS[1], 'used', -ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'refused', 1)
end
local fields = redis.call('HMGET', KEYS[1], 'used', 'refused')
return cjson.encode({used = tonumber(fields[1]), refused = tonumber(fields[2]) or 0})";

/// Sliding log on a list whose clock is `redis.call('TIME')`, in microseconds: with a window of
/// a minute, a burst of calls gets the same answers whatever the time.
const SLIDING_LOG_TIME: &str = "\
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local window, limit = 60 * 1000000, tonumber(ARGV[1])
while true do
  local oldest = redis.call('LINDEX', KEYS[1], -1)
  if not oldest or tonumber(oldest) > now - window then break end
  redis.call('RPOP', KEYS[1])
end
local used = redis.call('LLEN', KEYS[1])
if used >= limit then return {0, used} end
redis.call('LPUSH', KEYS[1], string.format('%.0f', now))
redis.call('EXPIRE', KEYS[1], 60)
return {1, used + 1}";

/// How a client library falls back when the server does not know a script.
#[derive(Clone, Copy, Debug)]
enum Fallback {
    /// `SCRIPT LOAD`, then `EVALSHA` again.
    ScriptLoad,
    /// `EVAL` with the whole script.
    Eval,
}

/// Runs `script` as a library would and returns the reply the application sees.
fn call(raw: &mut Raw, fallback: Fallback, script: &str, keys: &[&str], argv: &[&str]) -> String {
    let sha = sha1_smol::Sha1::from(script).digest().to_string();
    let numkeys = keys.len().to_string();
    let with = |first: &[&str]| -> Vec<String> {
        first
            .iter()
            .chain([&numkeys.as_str()])
            .chain(keys)
            .chain(argv)
            .map(|w| w.to_string())
            .collect()
    };
    let send = |raw: &mut Raw, words: Vec<String>| {
        raw.cmd(&words.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let reply = send(raw, with(&["EVALSHA", &sha]));
    if !reply.starts_with("-NOSCRIPT") {
        return reply;
    }
    match fallback {
        Fallback::ScriptLoad => {
            assert_eq!(
                raw.cmd(&["SCRIPT", "LOAD", script]),
                format!("$40\r\n{sha}\r\n")
            );
            send(raw, with(&["EVALSHA", &sha]))
        }
        Fallback::Eval => send(raw, with(&["EVAL", script])),
    }
}

/// One call: the script, its keys and its arguments.
struct Call {
    script: &'static str,
    keys: Vec<String>,
    argv: Vec<String>,
}

fn calls(script: &'static str, keys: &[&str], argvs: &[Vec<String>]) -> Vec<Call> {
    argvs
        .iter()
        .map(|argv| Call {
            script,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            argv: argv.clone(),
        })
        .collect()
}

fn args(words: &[&dyn ToString]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Makes the same calls on both servers with each fallback, comparing every reply; flushes the
/// scripts half way so the fallback runs again.
fn compare_calls(calls: &[Call]) {
    with_both(|r, s, shards| {
        for fallback in [Fallback::ScriptLoad, Fallback::Eval] {
            for raw in [&mut *r, &mut *s] {
                assert_eq!(raw.cmd(&["FLUSHALL"]), "+OK\r\n");
                assert_eq!(raw.cmd(&["SCRIPT", "FLUSH"]), "+OK\r\n");
            }
            for (n, c) in calls.iter().enumerate() {
                if n == calls.len() / 2 {
                    assert_eq!(r.cmd(&["SCRIPT", "FLUSH"]), s.cmd(&["SCRIPT", "FLUSH"]));
                }
                let keys: Vec<&str> = c.keys.iter().map(String::as_str).collect();
                let argv: Vec<&str> = c.argv.iter().map(String::as_str).collect();
                let want = call(r, fallback, c.script, &keys, &argv);
                let got = call(s, fallback, c.script, &keys, &argv);
                assert_eq!(
                    got, want,
                    "{shards} shards, {fallback:?}: call #{n} {keys:?} {argv:?}"
                );
            }
        }
    });
}

#[test]
fn fixed_window_matches_redis() {
    let mut all = Vec::new();
    for user in ["fw:{alice}", "fw:{bob}", "fw:carol", "fw:dave"] {
        all.extend(calls(FIXED_WINDOW, &[user], &vec![args(&[&3, &60]); 5]));
    }
    compare_calls(&all);
}

#[test]
fn sliding_window_on_a_list_matches_redis() {
    let times = [
        1000, 1100, 1200, 1300, 1350, 2000, 2099, 2100, 2101, 2250, 5000, 5001,
    ];
    let mut all = Vec::new();
    for user in ["sl:{alice}", "sl:bob", "sl:carol"] {
        all.extend(calls(
            SLIDING_LOG,
            &[user],
            &times.map(|t| args(&[&t, &1000, &3])),
        ));
        all.extend(calls(
            CAPPED_LIST,
            &[&format!("cap:{user}")],
            &times.map(|t| args(&[&t, &1000, &3])),
        ));
    }
    compare_calls(&all);
}

#[test]
fn token_bucket_on_a_hash_matches_redis() {
    let steps: [(u64, u32); 12] = [
        (1000, 1),
        (1000, 1),
        (1000, 1),
        (1000, 1),
        (1100, 1),
        (1250, 2),
        (1333, 1),
        (2000, 5),
        (2500, 1),
        (4000, 1),
        (9000, 3),
        (9001, 10),
    ];
    let mut all = Vec::new();
    for user in ["tb:{alice}", "tb:bob", "tb:carol", "tb:{alice}:burst"] {
        all.extend(calls(
            TOKEN_BUCKET,
            &[user],
            &steps.map(|(now, cost)| args(&[&5, &2.5, &now, &cost])),
        ));
    }
    for user in ["quota:{alice}", "quota:bob"] {
        all.extend(calls(
            QUOTA,
            &[user],
            &[3, 4, 2, 1, 5].map(|n| args(&[&n, &8])),
        ));
    }
    compare_calls(&all);
}

#[test]
fn limiter_on_the_server_clock_matches_redis() {
    let mut all = Vec::new();
    for user in ["clock:{alice}", "clock:bob"] {
        all.extend(calls(SLIDING_LOG_TIME, &[user], &vec![args(&[&3]); 5]));
    }
    compare_calls(&all);
}

/// `redis.call('TIME')` answers the clock as `TIME` does. The other keyless commands Redis 7.0
/// allows in scripts stay refused: `DBSIZE`, `RANDOMKEY`, `KEYS`, `SCAN` and `FLUSHDB` would
/// see only the running shard's keys, and `SELECT` would reach databases whose keys were not
/// gathered to it.
#[test]
fn time_from_scripts() {
    with_both(|r, s, shards| {
        let seconds = |reply: &str| -> u64 {
            let lines: Vec<&str> = reply.split("\r\n").collect();
            assert_eq!(lines[0], "*2", "{reply}");
            let micros: u64 = lines[4].parse().unwrap();
            assert!(micros < 1_000_000, "{reply}");
            lines[2].parse().unwrap()
        };
        let script = "return redis.call('TIME')";
        let (want, got) = (r.cmd(&["EVAL", script, "0"]), s.cmd(&["EVAL", script, "0"]));
        assert!(seconds(&got).abs_diff(seconds(&want)) <= 2, "{want} {got}");
        let plain = s.cmd(&["TIME"]);
        assert!(
            seconds(&got).abs_diff(seconds(&plain)) <= 2,
            "{got} {plain}"
        );
        for script in [
            "return redis.call('TIME', 'x')",
            "return redis.pcall('time', 'x')",
            "return type(redis.call('time')[1])",
            "return #redis.call('time')",
        ] {
            assert_eq!(
                s.cmd(&["EVAL", script, "0"]),
                r.cmd(&["EVAL", script, "0"]),
                "{shards} shards: {script}"
            );
        }
        // Whole-keyspace commands would see one shard only: refused rather than wrong.
        for command in ["DBSIZE", "RANDOMKEY", "FLUSHDB"] {
            let reply = s.cmd(&["EVAL", &format!("return redis.call('{command}')"), "0"]);
            assert!(
                reply.starts_with("-ERR This Redis command is not allowed from script script: "),
                "{command}: {reply}"
            );
        }
    });
}
