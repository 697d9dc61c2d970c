//! String commands: `GET`, `SET`, `SETNX`, `SETEX`, `PSETEX`, `GETSET`, `GETDEL`, `GETEX`,
//! `MGET`, `MSET`, `MSETNX`, `APPEND`, `STRLEN`, `GETRANGE` (and its old name `SUBSTR`) and
//! `SETRANGE`. The counters (`INCR` and friends) are in [`crate::counter`].
//!
//! Values are stored the way Redis encodes them, so that `OBJECT ENCODING` answers the same:
//! `SET` and friends store canonical integers as integers (`int`) and other strings in an
//! exact-size allocation (`embstr` up to 44 bytes, `raw` beyond); `APPEND` and `SETRANGE` turn
//! the value into a growable buffer (`raw`) so that a run of appends stays linear.

use shardis_resp::Reply;
use shardis_store::value::itoa_buf;
use shardis_store::{Entry, StrValue, Value};

use crate::expire::{expire_at_ms, MILLISECONDS, SECONDS};
use crate::{Args, CmdError, Ctx};

/// Longest string `APPEND` and `SETRANGE` may build: Redis's default `proto-max-bulk-len`.
pub const MAX_STRING_LEN: usize = 512 * 1024 * 1024;

/// The string held by `entry`, or WRONGTYPE.
pub fn as_string(entry: &Entry) -> Result<&StrValue, CmdError> {
    match &entry.value {
        Value::Str(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

/// Writes a string value as a bulk reply; an integer is formatted on the stack.
pub fn reply_string(reply: &mut Reply<'_>, value: &StrValue) {
    match value {
        StrValue::Int(n) => reply.bulk_integer(*n),
        StrValue::Raw(bytes) => reply.bulk(bytes),
        StrValue::Growable(bytes) => reply.bulk(bytes),
    }
}

/// Writes the string value of `key` or nil; WRONGTYPE for another type. Does not reclaim an
/// expired key, so it needs only shared access.
fn reply_get(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let entry = ctx.store.dbs.get(ctx.db).and_then(|db| db.get(key, now));
    match entry {
        None => ctx.reply.null(),
        Some(entry) => reply_string(&mut ctx.reply, as_string(entry)?),
    }
    Ok(())
}

/// `GET key`: the value, or nil.
pub fn get(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    reply_get(ctx, args.get(1))
}

/// When a `SET` writes.
#[derive(Clone, Copy, PartialEq)]
enum Condition {
    Always,
    /// `NX`: only if the key does not exist.
    Missing,
    /// `XX`: only if it does.
    Present,
}

/// What a `SET` or `GETEX` does with the key's expiry.
#[derive(Clone, Copy, PartialEq)]
enum Expiry<'a> {
    /// No option: `SET` removes the expiry, `GETEX` leaves it.
    Default,
    /// `KEEPTTL` (`SET`).
    Keep,
    /// `PERSIST` (`GETEX`).
    Persist,
    /// `EX`/`PX`/`EXAT`/`PXAT`: the argument (checked later, as Redis does), its unit and
    /// whether it is absolute.
    At {
        arg: &'a [u8],
        unit: i64,
        absolute: bool,
    },
}

/// The options of `SET` (`for_set`) or `GETEX`.
struct StringOptions<'a> {
    condition: Condition,
    get: bool,
    expiry: Expiry<'a>,
}

/// Parses `SET`'s and `GETEX`'s options from argument `from` on, as Redis's
/// `parseExtendedStringArgumentsOrReply`: any order, repeats allowed, conflicts and options of
/// the other command are a syntax error.
fn parse_options<'a>(
    args: Args<'a>,
    from: usize,
    for_set: bool,
) -> Result<StringOptions<'a>, CmdError> {
    let mut options = StringOptions {
        condition: Condition::Always,
        get: false,
        expiry: Expiry::Default,
    };
    let mut i = from;
    while i < args.len() {
        let option = args.get(i).to_ascii_lowercase();
        let has_next = i + 1 < args.len();
        let time = match option.as_slice() {
            b"ex" => Some((SECONDS, false)),
            b"px" => Some((MILLISECONDS, false)),
            b"exat" => Some((SECONDS, true)),
            b"pxat" => Some((MILLISECONDS, true)),
            _ => None,
        };
        let expiry = options.expiry;
        match (option.as_slice(), time) {
            (b"nx", _) if for_set && options.condition != Condition::Present => {
                options.condition = Condition::Missing;
            }
            (b"xx", _) if for_set && options.condition != Condition::Missing => {
                options.condition = Condition::Present;
            }
            (b"get", _) if for_set => options.get = true,
            (b"keepttl", _) if for_set && matches!(expiry, Expiry::Default | Expiry::Keep) => {
                options.expiry = Expiry::Keep;
            }
            (b"persist", _) if !for_set && matches!(expiry, Expiry::Default | Expiry::Persist) => {
                options.expiry = Expiry::Persist;
            }
            // The same unit may repeat (the last one wins); another one is a conflict.
            (_, Some((unit, absolute)))
                if has_next
                    && match expiry {
                        Expiry::Default => true,
                        Expiry::At {
                            unit: u,
                            absolute: a,
                            ..
                        } => u == unit && a == absolute,
                        Expiry::Keep | Expiry::Persist => false,
                    } =>
            {
                i += 1;
                options.expiry = Expiry::At {
                    arg: args.get(i),
                    unit,
                    absolute,
                };
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 1;
    }
    Ok(options)
}

/// The absolute expiry an `EX`/`PX`/`EXAT`/`PXAT` option asks for, if any.
fn option_expire_at(
    expiry: Expiry<'_>,
    now_ms: u64,
    command: &'static str,
) -> Result<Option<u64>, CmdError> {
    match expiry {
        Expiry::At {
            arg,
            unit,
            absolute,
        } => expire_at_ms(arg, unit, absolute, now_ms, command).map(Some),
        Expiry::Default | Expiry::Keep | Expiry::Persist => Ok(None),
    }
}

/// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]`.
pub fn set(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let options = parse_options(args, 3, true)?;
    set_generic(ctx, args.get(1), args.get(2), options, "set")
}

/// What the various `SET` commands share (Redis's `setGenericCommand`). Without `GET` it
/// answers `+OK`, or nil when `NX`/`XX` prevented the write.
fn set_generic(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    value: &[u8],
    options: StringOptions<'_>,
    command: &'static str,
) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let expire_at = option_expire_at(options.expiry, now, command)?;
    let plain = options.condition == Condition::Always && !options.get;
    if plain && options.expiry != Expiry::Keep && expire_at.is_none_or(|at| at >= now) {
        // The common SET: nothing to read first, one lookup in all.
        ctx.db()
            .set(key, Value::Str(StrValue::from_bytes(value)), expire_at);
        ctx.reply.ok();
        return Ok(());
    }
    let existing = ctx.db().get_mut(key, now);
    let found = existing.is_some();
    let old_ttl = existing.as_ref().and_then(|e| e.expire_at());
    let is_string = existing.is_none_or(|e| matches!(e.value, Value::Str(_)));
    if options.get {
        // Checked before anything changes: SET ... GET on another type writes nothing.
        if !is_string {
            return Err(CmdError::WrongType);
        }
        reply_get(ctx, key)?;
    }
    let blocked = match options.condition {
        Condition::Always => false,
        Condition::Missing => found,
        Condition::Present => !found,
    };
    if blocked {
        if !options.get {
            ctx.reply.null();
        }
        return Ok(());
    }
    let expire_at = if options.expiry == Expiry::Keep {
        old_ttl
    } else {
        expire_at
    };
    let db = ctx.db();
    match expire_at {
        // An absolute time already past: the key would be born expired.
        Some(at) if at < now => {
            db.take(key);
        }
        _ => db.set(key, Value::Str(StrValue::from_bytes(value)), expire_at),
    }
    if !options.get {
        ctx.reply.ok();
    }
    Ok(())
}

/// `SETNX key value`: 1 if the key was set, 0 if it existed.
pub fn setnx(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let db = ctx.db();
    let set = db.get_mut(key, now).is_none();
    if set {
        db.set(key, Value::Str(StrValue::from_bytes(args.get(2))), None);
    }
    ctx.reply.integer(i64::from(set));
    Ok(())
}

/// `SETEX key seconds value`.
pub fn setex(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    set_with_ttl(ctx, args, SECONDS, "setex")
}

/// `PSETEX key milliseconds value`.
pub fn psetex(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    set_with_ttl(ctx, args, MILLISECONDS, "psetex")
}

fn set_with_ttl(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    unit: i64,
    command: &'static str,
) -> Result<(), CmdError> {
    let options = StringOptions {
        condition: Condition::Always,
        get: false,
        expiry: Expiry::At {
            arg: args.get(2),
            unit,
            absolute: false,
        },
    };
    set_generic(ctx, args.get(1), args.get(3), options, command)
}

/// `GETSET key value`: the old value (or nil); the new one loses any expiry.
pub fn getset(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let options = StringOptions {
        condition: Condition::Always,
        get: true,
        expiry: Expiry::Default,
    };
    set_generic(ctx, args.get(1), args.get(2), options, "getset")
}

/// `GETDEL key`: the value (or nil), and the key is deleted.
pub fn getdel(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    match db.get_mut(key, now) {
        None => reply.null(),
        Some(entry) => {
            reply_string(reply, as_string(entry)?);
            db.take(key);
        }
    }
    Ok(())
}

/// `GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]`: the value, changing its expiry.
pub fn getex(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let options = parse_options(args, 2, false)?;
    let (key, now) = (args.get(1), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    let Some(entry) = db.get_mut(key, now) else {
        reply.null();
        return Ok(());
    };
    as_string(entry)?;
    let expire_at = option_expire_at(options.expiry, now, "getex")?;
    reply_string(reply, as_string(entry)?);
    match (options.expiry, expire_at) {
        // Only an absolute time can already be due (relative ones are positive).
        (_, Some(at)) if at <= now => {
            db.take(key);
        }
        (_, Some(at)) => {
            db.set_expire_at(key, Some(at));
        }
        (Expiry::Persist, None) => {
            db.set_expire_at(key, None);
        }
        _ => {}
    }
    Ok(())
}

/// `MGET key [key ...]`: each value, nil for a missing key or one of another type.
pub fn mget(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let Some(db) = ctx.store.dbs.get(ctx.db) else {
        return Ok(());
    };
    ctx.reply.array(args.len() - 1);
    for key in args.iter().skip(1) {
        match db.get(key, now).map(|e| &e.value) {
            Some(Value::Str(s)) => reply_string(&mut ctx.reply, s),
            _ => ctx.reply.null(),
        }
    }
    Ok(())
}

/// Checks that `args` after the name are key/value pairs (`MSET`, `MSETNX`).
fn check_pairs(args: Args<'_>) -> Result<(), CmdError> {
    if args.len() % 2 == 0 {
        let name = String::from_utf8_lossy(args.get(0)).to_ascii_lowercase();
        return Err(CmdError::WrongArity(name));
    }
    Ok(())
}

/// Sets every pair of `args`, removing any expiry.
fn set_pairs(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let db = ctx.db();
    let mut i = 1;
    while i + 1 < args.len() {
        db.set(
            args.get(i),
            Value::Str(StrValue::from_bytes(args.get(i + 1))),
            None,
        );
        i += 2;
    }
}

/// `MSET key value [key value ...]`.
pub fn mset(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    check_pairs(args)?;
    set_pairs(ctx, args);
    ctx.reply.ok();
    Ok(())
}

/// `MSETNX key value [key value ...]`: sets them all (1) unless any key exists (0).
pub fn msetnx(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    check_pairs(args)?;
    let now = ctx.now_ms;
    let db = ctx.db();
    let any = (1..args.len())
        .step_by(2)
        .any(|i| db.get_mut(args.get(i), now).is_some());
    if !any {
        set_pairs(ctx, args);
    }
    ctx.reply.integer(i64::from(!any));
    Ok(())
}

/// Fails unless `offset + len` bytes stay within [`MAX_STRING_LEN`].
fn check_length(offset: usize, len: usize) -> Result<(), CmdError> {
    match offset.checked_add(len) {
        Some(total) if total <= MAX_STRING_LEN => Ok(()),
        _ => Err(CmdError::StringTooLong),
    }
}

/// `APPEND key value`: the new length. A missing key is created as by `SET`.
pub fn append(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, value, now) = (args.get(1), args.get(2), ctx.now_ms);
    let db = ctx.db();
    let len = match db.get_mut(key, now) {
        None => {
            db.set(key, Value::Str(StrValue::from_bytes(value)), None);
            value.len()
        }
        Some(entry) => {
            let old_len = as_string(entry)?.len();
            check_length(old_len, value.len())?;
            match &mut entry.value {
                Value::Str(s) => s.modify(|bytes| {
                    bytes.extend_from_slice(value);
                    bytes.len()
                }),
                _ => old_len,
            }
        }
    };
    ctx.reply.integer(len as i64);
    Ok(())
}

/// `STRLEN key`: the length of the value, 0 for a missing key.
pub fn strlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let len = match ctx
        .store
        .dbs
        .get(ctx.db)
        .and_then(|db| db.get(args.get(1), now))
    {
        None => 0,
        Some(entry) => as_string(entry)?.len(),
    };
    ctx.reply.integer(len as i64);
    Ok(())
}

/// `GETRANGE key start end` (and `SUBSTR`): the bytes from `start` to `end` inclusive, negative
/// offsets counting from the end, clamped to the string.
pub fn getrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let parse = |i| shardis_resp::parse_i64(args.get(i)).ok_or(CmdError::NotInteger);
    let (mut start, mut end) = (parse(2)?, parse(3)?);
    let now = ctx.now_ms;
    let Some(entry) = ctx
        .store
        .dbs
        .get(ctx.db)
        .and_then(|db| db.get(args.get(1), now))
    else {
        ctx.reply.bulk(b"");
        return Ok(());
    };
    let mut scratch = itoa_buf::Buffer::new();
    let bytes = as_string(entry)?.as_bytes(&mut scratch);
    let len = bytes.len() as i64;
    // Redis's arithmetic, clamps included.
    if start < 0 && end < 0 && start > end {
        ctx.reply.bulk(b"");
        return Ok(());
    }
    if start < 0 {
        start = len.saturating_add(start).max(0);
    }
    if end < 0 {
        end = len.saturating_add(end).max(0);
    }
    end = end.min(len - 1);
    let range = if start > end || len == 0 {
        None
    } else {
        bytes.get(start as usize..=end as usize)
    };
    ctx.reply.bulk(range.unwrap_or_default());
    Ok(())
}

/// `SETRANGE key offset value`: overwrites from `offset` on, padding with zero bytes; the new
/// length.
pub fn setrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, value, now) = (args.get(1), args.get(3), ctx.now_ms);
    let offset = shardis_resp::parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
    let offset = usize::try_from(offset).map_err(|_| CmdError::OffsetOutOfRange)?;
    let db = ctx.db();
    let len = match db.get_mut(key, now) {
        // Setting nothing on a missing key creates nothing.
        None if value.is_empty() => 0,
        None => {
            check_length(offset, value.len())?;
            let mut bytes = vec![0; offset];
            bytes.extend_from_slice(value);
            let len = bytes.len();
            db.set(key, Value::Str(StrValue::Growable(Box::new(bytes))), None);
            len
        }
        Some(entry) => {
            let old_len = as_string(entry)?.len();
            if value.is_empty() {
                old_len
            } else {
                check_length(offset, value.len())?;
                match &mut entry.value {
                    Value::Str(s) => s.modify(|bytes| {
                        let end = offset + value.len();
                        if bytes.len() < end {
                            bytes.resize(end, 0);
                        }
                        if let Some(dst) = bytes.get_mut(offset..end) {
                            dst.copy_from_slice(value);
                        }
                        bytes.len()
                    }),
                    _ => old_len,
                }
            }
        }
    };
    ctx.reply.integer(len as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testing::Harness;

    #[test]
    fn set_options_and_replies() {
        let mut h = Harness::new();
        assert_eq!(h.run("SET k v"), "+OK\r\n");
        assert_eq!(h.run("SET k w NX"), "$-1\r\n");
        assert_eq!(h.run("SET k w XX GET"), "$1\r\nv\r\n");
        assert_eq!(h.run("SET nokey w XX GET"), "$-1\r\n");
        assert_eq!(h.run("SET k v EX 10 PX 10"), "-ERR syntax error\r\n");
        assert_eq!(h.run("SET k v PERSIST"), "-ERR syntax error\r\n");
        assert_eq!(h.run("SET k v EX 10 EX 20"), "+OK\r\n");
        assert_eq!(h.run("TTL k"), ":20\r\n");
        assert_eq!(h.run("SET k x KEEPTTL"), "+OK\r\n");
        assert_eq!(h.run("TTL k"), ":20\r\n");
        assert_eq!(h.run("SET k x"), "+OK\r\n");
        assert_eq!(h.run("TTL k"), ":-1\r\n");
        assert_eq!(
            h.run("SET k v EX 0"),
            "-ERR invalid expire time in 'set' command\r\n"
        );
        h.run("RPUSH l a");
        assert_eq!(
            h.run("SET l v GET"),
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        );
        assert_eq!(h.run("SET l v"), "+OK\r\n", "SET overwrites any type");
    }

    #[test]
    fn setnx_setex_getset_getdel() {
        let mut h = Harness::new();
        assert_eq!(h.run("SETNX k 1"), ":1\r\n");
        assert_eq!(h.run("SETNX k 2"), ":0\r\n");
        assert_eq!(h.run("SETEX k 10 v"), "+OK\r\n");
        assert_eq!(h.run("TTL k"), ":10\r\n");
        assert_eq!(
            h.run("SETEX k 0 v"),
            "-ERR invalid expire time in 'setex' command\r\n"
        );
        assert_eq!(h.run("PSETEX k 1500 v"), "+OK\r\n");
        assert_eq!(h.run("PTTL k"), ":1500\r\n");
        assert_eq!(h.run("GETSET k w"), "$1\r\nv\r\n");
        assert_eq!(h.run("TTL k"), ":-1\r\n");
        assert_eq!(h.run("GETSET new w"), "$-1\r\n");
        assert_eq!(h.run("GETDEL k"), "$1\r\nw\r\n");
        assert_eq!(h.run("GETDEL k"), "$-1\r\n");
        assert_eq!(h.run("EXISTS k"), ":0\r\n");
    }

    #[test]
    fn getex_changes_only_the_expiry() {
        let mut h = Harness::new();
        h.run("SET k v");
        assert_eq!(h.run("GETEX k"), "$1\r\nv\r\n");
        assert_eq!(h.run("GETEX k EX 100"), "$1\r\nv\r\n");
        assert_eq!(h.run("TTL k"), ":100\r\n");
        assert_eq!(h.run("GETEX k PERSIST"), "$1\r\nv\r\n");
        assert_eq!(h.run("TTL k"), ":-1\r\n");
        assert_eq!(h.run("GETEX k PERSIST EX 1"), "-ERR syntax error\r\n");
        assert_eq!(h.run("GETEX k KEEPTTL"), "-ERR syntax error\r\n");
        assert_eq!(
            h.run("GETEX k PX 0"),
            "-ERR invalid expire time in 'getex' command\r\n"
        );
        assert_eq!(
            h.run("GETEX nokey PX 0"),
            "$-1\r\n",
            "no key: nothing to check"
        );
        assert_eq!(h.run("GETEX k EXAT 1"), "$1\r\nv\r\n");
        assert_eq!(h.run("EXISTS k"), ":0\r\n");
    }

    #[test]
    fn mget_mset_msetnx() {
        let mut h = Harness::new();
        assert_eq!(h.run("MSET a 1 b 2"), "+OK\r\n");
        assert_eq!(
            h.run("MSET a 1 b"),
            "-ERR wrong number of arguments for 'mset' command\r\n"
        );
        h.run("RPUSH l x");
        assert_eq!(
            h.run("MGET a b l nokey"),
            "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n$-1\r\n"
        );
        assert_eq!(h.run("MSETNX c 3 a 9"), ":0\r\n");
        assert_eq!(h.run("EXISTS c"), ":0\r\n");
        assert_eq!(h.run("MSETNX c 3 d 4 c 5"), ":1\r\n");
        assert_eq!(h.run("GET c"), "$1\r\n5\r\n");
    }

    #[test]
    fn append_strlen_ranges() {
        let mut h = Harness::new();
        assert_eq!(h.run("APPEND k 12"), ":2\r\n");
        assert_eq!(h.run("OBJECT ENCODING k"), "$3\r\nint\r\n");
        assert_eq!(h.run("APPEND k 3"), ":3\r\n");
        assert_eq!(h.run("OBJECT ENCODING k"), "$3\r\nraw\r\n");
        assert_eq!(h.run("GET k"), "$3\r\n123\r\n");
        assert_eq!(h.run("INCR k"), ":124\r\n");
        assert_eq!(h.run("STRLEN k"), ":3\r\n");
        assert_eq!(h.run("STRLEN nokey"), ":0\r\n");
        h.run("SET s Hello_World");
        assert_eq!(h.run("GETRANGE s 0 4"), "$5\r\nHello\r\n");
        assert_eq!(h.run("GETRANGE s -5 -1"), "$5\r\nWorld\r\n");
        assert_eq!(h.run("GETRANGE s -1 -5"), "$0\r\n\r\n");
        assert_eq!(h.run("GETRANGE s 5 100"), "$6\r\n_World\r\n");
        assert_eq!(h.run("GETRANGE s 0 -100"), "$1\r\nH\r\n");
        assert_eq!(h.run("GETRANGE s 20 30"), "$0\r\n\r\n");
        assert_eq!(h.run("SUBSTR nokey 0 1"), "$0\r\n\r\n");
        assert_eq!(h.run("SETRANGE s 6 Redis"), ":11\r\n");
        assert_eq!(h.run("GET s"), "$11\r\nHello_Redis\r\n");
        assert_eq!(h.run("SETRANGE n 2 x"), ":3\r\n");
        assert_eq!(h.run("GET n"), "$3\r\n\0\0x\r\n");
        assert_eq!(h.run("SETRANGE e 5 "), ":0\r\n");
        assert_eq!(h.run("EXISTS e"), ":0\r\n");
        assert_eq!(h.run("SETRANGE s -1 x"), "-ERR offset is out of range\r\n");
        assert_eq!(
            h.run("SETRANGE s 536870911 xy"),
            "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
        );
    }
}
