//! Keyspace commands: `DEL`, `UNLINK`, `EXISTS`, `TOUCH`, `TYPE`, `KEYS`, `SCAN`, `RANDOMKEY`,
//! `RENAME`, `RENAMENX`, `COPY`, `MOVE`, `SWAPDB`, `OBJECT`, `MEMORY USAGE`, and the
//! whole-database `DBSIZE` and `FLUSH*`. Expiry commands are in [`crate::expire`].
//!
//! Commands that may name keys on several shards (`DEL`, `EXISTS`, `TOUCH`) get from the router
//! only the keys their shard owns, and the router adds up the counts; `KEYS`, `RANDOMKEY`,
//! `DBSIZE` and `SWAPDB` run on every shard. Multi-key commands (`RENAME`, `COPY`) are written
//! as if all their keys were local, which the router guarantees. A key's slot is the same in
//! every database, so `MOVE`, `COPY ... DB` and `SWAPDB` never leave the shard.
//!
//! `SCAN` cursors carry the shard in their high bits ([`CURSOR_SHARD_SHIFT`]) and, below, a
//! position in that shard's hash order (see `shardis_store::index`), so one scan walks shard 0,
//! then shard 1, and so on, and a key present for the whole scan is returned exactly once.

use shardis_resp::parse_i64;
use shardis_store::{Db, Entry, StrValue, Value};

use crate::pattern::glob_match;
use crate::table::CURSOR_SHARD_SHIFT;
use crate::{Args, CmdError, Ctx};

/// `DEL key [key ...]` (and `UNLINK`): the number of keys deleted.
pub fn del(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let db = ctx.db();
    let deleted = args
        .iter()
        .skip(1)
        .filter(|key| db.remove(key, now))
        .count();
    ctx.reply.integer(deleted as i64);
    Ok(())
}

/// `EXISTS key [key ...]` (and `TOUCH`): how many of the keys exist, a key named twice counting
/// twice. `TOUCH` would update the keys' access time, which Shardis does not track.
pub fn exists(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let db = ctx.db();
    let found = args
        .iter()
        .skip(1)
        .filter(|key| db.get(key, now).is_some())
        .count();
    ctx.reply.integer(found as i64);
    Ok(())
}

/// `TYPE key`: `string`, `hash`, ... or `none`.
pub fn type_(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let name = ctx
        .db()
        .get_mut(args.get(1), now)
        .map_or("none", |e| e.value.type_name());
    ctx.reply.simple(name.as_bytes());
    Ok(())
}

/// `DBSIZE`: this shard's part of the key count of the selected database (expired keys not
/// yet reclaimed included, as in Redis).
pub fn dbsize(ctx: &mut Ctx<'_>, _args: Args<'_>) -> Result<(), CmdError> {
    let len = ctx.db().len();
    ctx.reply.integer(len as i64);
    Ok(())
}

/// `FLUSHDB [ASYNC | SYNC]`.
pub fn flushdb(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    flush_mode(args)?;
    ctx.db().clear();
    ctx.reply.ok();
    Ok(())
}

/// `FLUSHALL [ASYNC | SYNC]`.
pub fn flushall(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    flush_mode(args)?;
    ctx.store.dbs.iter_mut().for_each(|db| db.clear());
    ctx.reply.ok();
    Ok(())
}

/// Checks the optional `ASYNC` / `SYNC` argument; both free memory at once here.
fn flush_mode(args: Args<'_>) -> Result<(), CmdError> {
    let mut cursor = args.cursor(1);
    if cursor.is_done() || ((cursor.eat("async") || cursor.eat("sync")) && cursor.is_done()) {
        Ok(())
    } else {
        Err(CmdError::Syntax)
    }
}

/// `KEYS pattern`: this shard's live keys that match.
pub fn keys(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (pattern, now) = (args.get(1), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    let all = pattern == b"*";
    let found: Vec<&[u8]> = db
        .keys(now)
        .filter(|key| all || glob_match(pattern, key, false))
        .collect();
    reply.array(found.len());
    found.iter().for_each(|key| reply.bulk(key));
    Ok(())
}

/// A `SCAN` cursor as Redis reads it (`strtoul`): an optional sign, then decimal digits that fit
/// 64 bits; a minus sign wraps around.
fn parse_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    let (negative, digits) = match arg.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(CmdError::InvalidCursor);
    }
    let value = digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    let value = value.ok_or(CmdError::InvalidCursor)?;
    Ok(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`: about `count` keys of this shard,
/// and the cursor that continues the walk, here or on the next shard; 0 when all shards are done.
pub fn scan(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let cursor = parse_cursor(args.get(1))?;
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let option = args.get(i).to_ascii_lowercase();
        if i + 1 >= args.len() {
            return Err(CmdError::Syntax);
        }
        let value = args.get(i + 1);
        match option.as_slice() {
            b"count" => {
                let n = parse_i64(value).ok_or(CmdError::NotInteger)?;
                count = usize::try_from(n)
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or(CmdError::Syntax)?;
            }
            b"match" => pattern = Some(value).filter(|p| *p != b"*"),
            b"type" => type_name = Some(value),
            _ => return Err(CmdError::Syntax),
        }
        i += 2;
    }
    let position = cursor & ((1 << CURSOR_SHARD_SHIFT) - 1);
    let (shard, shards, now) = (ctx.shard as u64, ctx.shards as u64, ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    let mut found: Vec<&[u8]> = Vec::new();
    let next = db.scan(position, count, |key, entry| {
        let wanted = !entry.is_expired(now)
            && pattern.is_none_or(|p| glob_match(p, key, false))
            && type_name.is_none_or(|t| t.eq_ignore_ascii_case(entry.value.type_name().as_bytes()));
        if wanted {
            found.push(key);
        }
    });
    let next = if next != 0 {
        shard << CURSOR_SHARD_SHIFT | next
    } else if shard + 1 < shards {
        (shard + 1) << CURSOR_SHARD_SHIFT
    } else {
        0
    };
    reply.array(2);
    reply.bulk(next.to_string().as_bytes());
    reply.array(found.len());
    found.iter().for_each(|key| reply.bulk(key));
    Ok(())
}

/// `RANDOMKEY`: a random live key of this shard, or nil; the router picks among the shards.
pub fn randomkey(ctx: &mut Ctx<'_>, _args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    match db.random_key(now) {
        Some(key) => reply.bulk(key),
        None => reply.null(),
    }
    Ok(())
}

/// `RENAME key newkey`.
pub fn rename(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    if rename_generic(ctx, args, false)? {
        ctx.reply.ok();
    }
    Ok(())
}

/// `RENAMENX key newkey`: 1 if renamed, 0 if `newkey` exists.
pub fn renamenx(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let renamed = rename_generic(ctx, args, true)?;
    ctx.reply.integer(i64::from(renamed));
    Ok(())
}

/// Moves the entry (value and TTL) of `key` to `newkey`; false if `nx` and `newkey` exists.
/// Renaming a key to itself changes nothing (and `RENAMENX` answers 0, as in Redis).
fn rename_generic(ctx: &mut Ctx<'_>, args: Args<'_>, nx: bool) -> Result<bool, CmdError> {
    let (key, newkey, now) = (args.get(1), args.get(2), ctx.now_ms);
    let db = ctx.db();
    if db.get_mut(key, now).is_none() {
        return Err(CmdError::NoSuchKey);
    }
    if key == newkey {
        return Ok(!nx);
    }
    if nx && db.get_mut(newkey, now).is_some() {
        return Ok(false);
    }
    if let Some(entry) = db.take(key) {
        db.put(newkey, entry);
    }
    Ok(true)
}

/// A database number argument (`SELECT n`, `MOVE key n`, `COPY ... DB n`), checked against the
/// number of `databases`.
pub fn db_index(arg: &[u8], databases: usize) -> Result<usize, CmdError> {
    let n = parse_i64(arg).ok_or(CmdError::NotInteger)?;
    // Redis reads the index as a C int, and says so past its range.
    if i32::try_from(n).is_err() {
        return Err(CmdError::OutOfRangeBetween(
            i32::MIN.into(),
            i32::MAX.into(),
        ));
    }
    usize::try_from(n)
        .ok()
        .filter(|&n| n < databases)
        .ok_or(CmdError::DbIndexOutOfRange)
}

/// Two distinct databases of the store, mutably.
fn two_dbs(dbs: &mut [Db], a: usize, b: usize) -> Option<(&mut Db, &mut Db)> {
    if a < b {
        let (low, high) = dbs.split_at_mut(b);
        Some((low.get_mut(a)?, high.first_mut()?))
    } else if b < a {
        let (low, high) = dbs.split_at_mut(a);
        let (first, second) = (high.first_mut()?, low.get_mut(b)?);
        Some((first, second))
    } else {
        None
    }
}

/// `COPY source destination [DB destination-db] [REPLACE]`: 1 if copied.
pub fn copy(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, newkey, now) = (args.get(1), args.get(2), ctx.now_ms);
    let src = ctx.db.min(ctx.store.dbs.len().saturating_sub(1));
    let mut dst = src;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        let option = args.get(i).to_ascii_lowercase();
        match option.as_slice() {
            b"replace" => replace = true,
            b"db" if i + 1 < args.len() => {
                i += 1;
                dst = db_index(args.get(i), ctx.store.dbs.len())?;
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 1;
    }
    if src == dst && key == newkey {
        return Err(CmdError::SameObject);
    }
    let Some(entry) = ctx
        .store
        .dbs
        .get(src)
        .and_then(|db| db.get(key, now))
        .cloned()
    else {
        ctx.reply.integer(0);
        return Ok(());
    };
    let Some(target) = ctx.store.dbs.get_mut(dst) else {
        return Err(CmdError::DbIndexOutOfRange);
    };
    if target.get_mut(newkey, now).is_some() && !replace {
        ctx.reply.integer(0);
        return Ok(());
    }
    target.put(newkey, entry);
    ctx.reply.integer(1);
    Ok(())
}

/// `MOVE key db`: 1 if the key moved to database `db` (where it must not exist yet).
pub fn move_(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let dst = db_index(args.get(2), ctx.store.dbs.len())?;
    let src = ctx.db.min(ctx.store.dbs.len().saturating_sub(1));
    let Some((from, to)) = two_dbs(&mut ctx.store.dbs, src, dst) else {
        return Err(CmdError::SameObject);
    };
    let moved = from.get_mut(key, now).is_some() && to.get_mut(key, now).is_none();
    if moved {
        if let Some(entry) = from.take(key) {
            to.put(key, entry);
        }
    }
    ctx.reply.integer(i64::from(moved));
    Ok(())
}

/// `SWAPDB index1 index2`: this shard's half; the router runs it on every shard.
pub fn swapdb(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let index = |i: usize, which| {
        parse_i64(args.get(i))
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or(CmdError::InvalidDbIndex(which))
    };
    let (a, b) = (index(1, "first")?, index(2, "second")?);
    let dbs = ctx.store.dbs.len();
    let valid = |n: i64| usize::try_from(n).ok().filter(|&n| n < dbs);
    let (Some(a), Some(b)) = (valid(a), valid(b)) else {
        return Err(CmdError::DbIndexOutOfRange);
    };
    ctx.store.dbs.swap(a, b);
    ctx.reply.ok();
    Ok(())
}

/// Redis's `OBJ_SHARED_INTEGERS`: values in `0..10000` are shared objects in Redis, and
/// `OBJECT REFCOUNT` shows them as referenced `i32::MAX` times.
const SHARED_INTEGERS: i64 = 10_000;

/// `OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ key`, `OBJECT HELP`.
pub fn object(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let sub = args.get(1).to_ascii_lowercase();
    let arity = match sub.as_slice() {
        b"help" => 2,
        b"encoding" | b"refcount" | b"idletime" | b"freq" => 3,
        _ => return Err(unknown_subcommand(args, "OBJECT")),
    };
    if args.len() != arity {
        return Err(CmdError::WrongArity(format!(
            "object|{}",
            String::from_utf8_lossy(&sub)
        )));
    }
    if arity == 2 {
        reply_help(ctx, OBJECT_HELP);
        return Ok(());
    }
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(entry) = db.get_mut(args.get(2), now) else {
        reply.null();
        return Ok(());
    };
    match sub.as_slice() {
        b"encoding" => reply.bulk(entry.value.encoding().as_bytes()),
        b"refcount" => reply.integer(match entry.value {
            Value::Str(StrValue::Int(n)) if (0..SHARED_INTEGERS).contains(&n) => {
                i64::from(i32::MAX)
            }
            _ => 1,
        }),
        // Access times are not tracked (that would cost memory on every key).
        b"idletime" => reply.integer(0),
        _ => return Err(CmdError::NoLfuPolicy),
    }
    Ok(())
}

/// `MEMORY USAGE key [SAMPLES count]`, `MEMORY HELP`: the bytes the key and its value take.
pub fn memory(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let sub = args.get(1).to_ascii_lowercase();
    match sub.as_slice() {
        b"help" if args.len() == 2 => {
            reply_help(ctx, MEMORY_HELP);
            return Ok(());
        }
        b"usage" if args.len() >= 3 => {}
        b"usage" | b"help" => {
            return Err(CmdError::WrongArity(format!(
                "memory|{}",
                String::from_utf8_lossy(&sub)
            )))
        }
        _ => return Err(unknown_subcommand(args, "MEMORY")),
    }
    // SAMPLES only bounds Redis's estimate of nested values; the sizes here are exact.
    let mut i = 3;
    while i < args.len() {
        if !args.get(i).eq_ignore_ascii_case(b"samples") || i + 1 >= args.len() {
            return Err(CmdError::Syntax);
        }
        let samples = parse_i64(args.get(i + 1)).ok_or(CmdError::NotInteger)?;
        if samples < 0 {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let (key, now) = (args.get(2), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    match db.get(key, now) {
        Some(entry) => reply.integer(usage(key, entry) as i64),
        None => reply.null(),
    }
    Ok(())
}

/// What `MEMORY USAGE` counts for a key: the key and its slot in the keyspace, then the value.
fn usage(key: &[u8], entry: &Entry) -> usize {
    Db::key_overhead(key, &entry.value) + entry.value.memory_usage()
}

fn unknown_subcommand(args: Args<'_>, command: &'static str) -> CmdError {
    let sub = args.get(1);
    CmdError::UnknownSubcommand {
        sub: String::from_utf8_lossy(&sub[..sub.len().min(128)]).into_owned(),
        command,
    }
}

fn reply_help(ctx: &mut Ctx<'_>, lines: &[&str]) {
    ctx.reply.array(lines.len());
    lines.iter().for_each(|l| ctx.reply.simple(l.as_bytes()));
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the internal representation of the value at <key>.",
    "FREQ <key>",
    "    Return the access frequency of <key> (needs an LFU maxmemory policy).",
    "IDLETIME <key>",
    "    Return the seconds since <key> was last accessed (not tracked: always 0).",
    "REFCOUNT <key>",
    "    Return how many references the value at <key> has.",
    "HELP",
    "    Print this help.",
];

const MEMORY_HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "USAGE <key> [SAMPLES <count>]",
    "    Return the bytes used by <key> and its value.",
    "HELP",
    "    Print this help.",
];

#[cfg(test)]
mod tests {
    use crate::testing::Harness;

    #[test]
    fn del_exists_type() {
        let mut h = Harness::new();
        h.run("SET a 1");
        h.run("RPUSH l x");
        assert_eq!(h.run("EXISTS a a l nokey"), ":3\r\n");
        assert_eq!(h.run("TOUCH a nokey"), ":1\r\n");
        assert_eq!(h.run("TYPE l"), "+list\r\n");
        assert_eq!(h.run("TYPE nokey"), "+none\r\n");
        assert_eq!(h.run("DEL a l nokey"), ":2\r\n");
        assert_eq!(h.run("UNLINK a"), ":0\r\n");
    }

    #[test]
    fn keys_and_scan() {
        let mut h = Harness::new();
        for i in 0..30 {
            h.run(&format!("SET key:{i} v"));
        }
        h.run("RPUSH list x");
        h.run("SET gone v PX 10");
        h.now += 20;
        let keys = h.run("KEYS key:1*");
        assert!(keys.starts_with("*11\r\n"), "{keys}");
        assert!(h.run("KEYS *").starts_with("*31\r\n"));
        let mut cursor = "0".to_owned();
        let mut seen = Vec::new();
        loop {
            let reply = h.run(&format!("SCAN {cursor} COUNT 7 MATCH key:*"));
            let lines: Vec<&str> = reply.split("\r\n").collect();
            cursor = lines[2].to_owned();
            seen.extend(
                lines
                    .iter()
                    .filter(|l| l.starts_with("key:"))
                    .map(|s| s.to_string()),
            );
            if cursor == "0" {
                break;
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 30);
        assert_eq!(
            h.run("SCAN 0 TYPE list COUNT 100"),
            "*2\r\n$1\r\n0\r\n*1\r\n$4\r\nlist\r\n"
        );
        assert_eq!(h.run("SCAN 0 COUNT 0"), "-ERR syntax error\r\n");
        assert_eq!(h.run("SCAN 0 COUNT"), "-ERR syntax error\r\n");
        assert_eq!(h.run("SCAN 0 BOGUS x"), "-ERR syntax error\r\n");
        assert_eq!(
            h.run("SCAN 0 COUNT x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(h.run("SCAN x"), "-ERR invalid cursor\r\n");
        assert_eq!(
            h.run("SCAN 18446744073709551616"),
            "-ERR invalid cursor\r\n"
        );
        assert_eq!(h.run("SCAN -1"), "*2\r\n$1\r\n0\r\n*0\r\n");
    }

    #[test]
    fn rename_copy_move_swapdb() {
        let mut h = Harness::new();
        assert_eq!(h.run("RENAME nokey x"), "-ERR no such key\r\n");
        h.run("SET a 1 EX 100");
        assert_eq!(h.run("RENAME a a"), "+OK\r\n");
        assert_eq!(h.run("RENAMENX a a"), ":0\r\n");
        assert_eq!(h.run("RENAME a b"), "+OK\r\n");
        assert_eq!(h.run("TTL b"), ":100\r\n");
        h.run("SET c 3");
        assert_eq!(h.run("RENAMENX b c"), ":0\r\n");
        assert_eq!(h.run("RENAMENX b d"), ":1\r\n");
        assert_eq!(
            h.run("COPY d d"),
            "-ERR source and destination objects are the same\r\n"
        );
        assert_eq!(h.run("COPY d c"), ":0\r\n");
        assert_eq!(h.run("COPY d c REPLACE"), ":1\r\n");
        assert_eq!(h.run("TTL c"), ":100\r\n");
        assert_eq!(h.run("COPY d d DB 1"), ":1\r\n");
        assert_eq!(h.run("COPY d x DB 16"), "-ERR DB index is out of range\r\n");
        assert_eq!(
            h.run("COPY d x DB y"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(h.run("COPY d x BOGUS"), "-ERR syntax error\r\n");
        assert_eq!(
            h.run("MOVE d 0"),
            "-ERR source and destination objects are the same\r\n"
        );
        assert_eq!(h.run("MOVE d 1"), ":0\r\n", "exists in db 1 already");
        assert_eq!(h.run("MOVE c 1"), ":1\r\n");
        assert_eq!(h.run("EXISTS c"), ":0\r\n");
        assert_eq!(h.run("MOVE c -1"), "-ERR DB index is out of range\r\n");
        assert_eq!(h.run("SWAPDB 0 1"), "+OK\r\n");
        assert_eq!(h.run("EXISTS c"), ":1\r\n");
        assert_eq!(h.run("SWAPDB 0 x"), "-ERR invalid second DB index\r\n");
        assert_eq!(h.run("SWAPDB 0 16"), "-ERR DB index is out of range\r\n");
    }

    #[test]
    fn object_and_memory() {
        let mut h = Harness::new();
        h.run("SET small 5");
        h.run("SET big 123456");
        h.run(&format!("SET long {}", "x".repeat(45)));
        assert_eq!(h.run("OBJECT REFCOUNT small"), ":2147483647\r\n");
        assert_eq!(h.run("OBJECT REFCOUNT big"), ":1\r\n");
        assert_eq!(h.run("OBJECT ENCODING big"), "$3\r\nint\r\n");
        assert_eq!(h.run("OBJECT ENCODING long"), "$3\r\nraw\r\n");
        assert_eq!(h.run("OBJECT ENCODING nokey"), "$-1\r\n");
        assert_eq!(h.run("OBJECT IDLETIME big"), ":0\r\n");
        assert!(h
            .run("OBJECT FREQ big")
            .starts_with("-ERR An LFU maxmemory policy"));
        assert_eq!(h.run("OBJECT FREQ nokey"), "$-1\r\n");
        assert_eq!(
            h.run("OBJECT NOSUCH k"),
            "-ERR unknown subcommand 'NOSUCH'. Try OBJECT HELP.\r\n"
        );
        assert_eq!(
            h.run("OBJECT ENCODING"),
            "-ERR wrong number of arguments for 'object|encoding' command\r\n"
        );
        assert!(h.run("OBJECT HELP").starts_with("*11\r\n"));
        let small: i64 = h.run("MEMORY USAGE small")[1..].trim().parse().unwrap();
        let long: i64 = h.run("MEMORY USAGE long SAMPLES 0")[1..]
            .trim()
            .parse()
            .unwrap();
        assert!(small > 0 && long > small + 40, "{small} {long}");
        assert_eq!(h.run("MEMORY USAGE nokey"), "$-1\r\n");
        assert_eq!(h.run("MEMORY USAGE small SAMPLES"), "-ERR syntax error\r\n");
        assert_eq!(
            h.run("MEMORY USAGE small SAMPLES -1"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            h.run("MEMORY NOSUCH"),
            "-ERR unknown subcommand 'NOSUCH'. Try MEMORY HELP.\r\n"
        );
    }

    #[test]
    fn randomkey_on_one_shard() {
        let mut h = Harness::new();
        assert_eq!(h.run("RANDOMKEY"), "$-1\r\n");
        h.run("SET only v");
        assert_eq!(h.run("RANDOMKEY"), "$4\r\nonly\r\n");
    }
}
