//! List commands: `LPUSH`, `RPUSH`, `LPUSHX`, `RPUSHX`, `LPOP`, `RPOP` (with a count), `LLEN`,
//! `LRANGE`, `LINDEX`, `LSET`, `LTRIM`, `LREM`, `LINSERT`, `LPOS`, `LMOVE` and `RPOPLPUSH`.
//!
//! As in Redis, a list exists only while it has elements: a command that empties it deletes the
//! key. Indexes are Redis's: negative ones count from the tail, ranges are inclusive and clamped.

use shardis_resp::parse_i64;
use shardis_store::list::{End, List};
use shardis_store::{Db, Entry, Value};

use crate::{Args, CmdError, Ctx};

/// The list held by `entry`, or WRONGTYPE.
fn as_list(entry: &mut Entry) -> Result<&mut List, CmdError> {
    match &mut entry.value {
        Value::List(list) => Ok(list),
        _ => Err(CmdError::WrongType),
    }
}

/// The live list at `key`, if any; WRONGTYPE for another type.
fn list_mut<'d>(db: &'d mut Db, key: &[u8], now: u64) -> Result<Option<&'d mut List>, CmdError> {
    db.get_mut(key, now).map(as_list).transpose()
}

/// Deletes `key` if its list is now empty.
fn drop_if_empty(db: &mut Db, key: &[u8], now: u64) {
    if list_mut(db, key, now)
        .ok()
        .flatten()
        .is_some_and(|l| l.is_empty())
    {
        db.take(key);
    }
}

/// An integer argument (`value is not an integer or out of range` otherwise).
fn integer(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// `LEFT` or `RIGHT` (`LMOVE`).
fn end_of(arg: &[u8]) -> Result<End, CmdError> {
    if arg.eq_ignore_ascii_case(b"left") {
        Ok(End::Head)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Ok(End::Tail)
    } else {
        Err(CmdError::Syntax)
    }
}

/// `LPUSH key element [element ...]`: the new length.
pub fn lpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    push(ctx, args, End::Head, false)
}

/// `RPUSH key element [element ...]`: the new length.
pub fn rpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    push(ctx, args, End::Tail, false)
}

/// `LPUSHX key element [element ...]`: pushes only onto an existing list; the length, or 0.
pub fn lpushx(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    push(ctx, args, End::Head, true)
}

/// `RPUSHX key element [element ...]`.
pub fn rpushx(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    push(ctx, args, End::Tail, true)
}

fn push(ctx: &mut Ctx<'_>, args: Args<'_>, end: End, existing_only: bool) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let elements = args.iter().skip(2);
    let db = ctx.db();
    let len = match list_mut(db, key, now)? {
        Some(list) => {
            list.push(end, elements);
            list.len()
        }
        None if existing_only => 0,
        None => {
            let mut list = List::new();
            list.push(end, elements);
            let len = list.len();
            db.set(key, Value::List(Box::new(list)), None);
            len
        }
    };
    ctx.reply.integer(len as i64);
    Ok(())
}

/// `LPOP key [count]`: the first element, or with a count an array of up to `count`.
pub fn lpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    pop(ctx, args, End::Head)
}

/// `RPOP key [count]`: the last element, or with a count an array of up to `count`.
pub fn rpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    pop(ctx, args, End::Tail)
}

fn pop(ctx: &mut Ctx<'_>, args: Args<'_>, end: End) -> Result<(), CmdError> {
    if args.len() > 3 {
        return Err(CmdError::WrongArity(
            String::from_utf8_lossy(args.get(0)).to_ascii_lowercase(),
        ));
    }
    let count = match args.len() {
        3 => Some(
            parse_i64(args.get(2))
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(CmdError::NotPositive)?,
        ),
        _ => None,
    };
    let (key, now) = (args.get(1), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    let Some(list) = list_mut(db, key, now)? else {
        match count {
            Some(_) => reply.null_array(),
            None => reply.null(),
        }
        return Ok(());
    };
    match count {
        None => match list.pop(end) {
            Some(e) => reply.bulk(&e),
            None => reply.null(),
        },
        Some(count) => {
            let n = count.min(list.len());
            reply.array(n);
            for _ in 0..n {
                if let Some(e) = list.pop(end) {
                    reply.bulk(&e);
                }
            }
        }
    }
    drop_if_empty(db, key, now);
    Ok(())
}

/// `LLEN key`: the length, 0 for a missing key.
pub fn llen(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let len = list_mut(ctx.db(), args.get(1), now)?.map_or(0, |l| l.len());
    ctx.reply.integer(len as i64);
    Ok(())
}

/// Redis's inclusive range over `len` elements: negative indexes count from the end, then the
/// range is clamped; `None` when it is empty.
fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    }
    .max(0);
    let end = if end < 0 {
        len.saturating_add(end)
    } else {
        end
    };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

/// A single index: negative ones count from the end; `None` when out of range.
fn position(index: i64, len: usize) -> Option<usize> {
    let index = if index < 0 {
        (len as i64).saturating_add(index)
    } else {
        index
    };
    usize::try_from(index).ok().filter(|&i| i < len)
}

/// `LRANGE key start stop`.
pub fn lrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (start, end) = (integer(args.get(2))?, integer(args.get(3))?);
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(list) = list_mut(db, args.get(1), now)? else {
        reply.array(0);
        return Ok(());
    };
    match clamp_range(start, end, list.len()) {
        None => reply.array(0),
        Some((start, end)) => {
            reply.array(end - start + 1);
            list.range(start, end).for_each(|e| reply.bulk(e));
        }
    }
    Ok(())
}

/// `LINDEX key index`: the element, or nil.
pub fn lindex(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(list) = list_mut(db, args.get(1), now)? else {
        reply.null();
        return Ok(());
    };
    let index = integer(args.get(2))?;
    match position(index, list.len()).and_then(|i| list.get(i)) {
        Some(e) => reply.bulk(e),
        None => reply.null(),
    }
    Ok(())
}

/// `LSET key index element`.
pub fn lset(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let list = list_mut(ctx.db(), args.get(1), now)?.ok_or(CmdError::NoSuchKey)?;
    let index = integer(args.get(2))?;
    let replaced = position(index, list.len()).is_some_and(|i| list.set(i, args.get(3)));
    if !replaced {
        return Err(CmdError::IndexOutOfRange);
    }
    ctx.reply.ok();
    Ok(())
}

/// `LTRIM key start stop`: keeps only that range; an empty range deletes the key.
pub fn ltrim(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (start, end) = (integer(args.get(2))?, integer(args.get(3))?);
    let (key, now) = (args.get(1), ctx.now_ms);
    let db = ctx.db();
    if let Some(list) = list_mut(db, key, now)? {
        match clamp_range(start, end, list.len()) {
            Some((start, end)) => list.trim(start, end),
            None => list.trim(1, 0),
        }
        drop_if_empty(db, key, now);
    }
    ctx.reply.ok();
    Ok(())
}

/// `LREM key count element`: removes `count` occurrences from the head (negative: from the
/// tail; 0: all); how many were removed.
pub fn lrem(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let count = integer(args.get(2))?;
    let (key, now) = (args.get(1), ctx.now_ms);
    let db = ctx.db();
    let removed = match list_mut(db, key, now)? {
        None => 0,
        Some(list) => {
            let limit =
                (count != 0).then(|| usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX));
            let from = if count < 0 { End::Tail } else { End::Head };
            list.remove_matching(args.get(3), limit, from)
        }
    };
    drop_if_empty(db, key, now);
    ctx.reply.integer(removed as i64);
    Ok(())
}

/// `LINSERT key BEFORE | AFTER pivot element`: the new length, -1 without the pivot, 0 without
/// the key.
pub fn linsert(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let after = match args.get(2).to_ascii_lowercase().as_slice() {
        b"after" => true,
        b"before" => false,
        _ => return Err(CmdError::Syntax),
    };
    let now = ctx.now_ms;
    let len = match list_mut(ctx.db(), args.get(1), now)? {
        None => 0,
        Some(list) => {
            if list.insert_at_pivot(args.get(3), args.get(4), after) {
                list.len() as i64
            } else {
                -1
            }
        }
    };
    ctx.reply.integer(len);
    Ok(())
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`: the index of a match, or
/// with `COUNT` an array of them.
pub fn lpos(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let mut rank: i64 = 1;
    let mut count: Option<usize> = None;
    let mut maxlen: usize = 0;
    let mut i = 3;
    while i < args.len() {
        let option = args.get(i).to_ascii_lowercase();
        let Some(value) = (i + 1 < args.len()).then(|| args.get(i + 1)) else {
            return Err(CmdError::Syntax);
        };
        let non_negative = |name| {
            parse_i64(value)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(CmdError::CantBeNegative(name))
        };
        match option.as_slice() {
            b"rank" => {
                rank = integer(value)?;
                if rank == 0 {
                    return Err(CmdError::RankZero);
                }
                if rank == i64::MIN {
                    return Err(CmdError::Other(
                        "ERR value is out of range, value must between -9223372036854775807 \
                         and 9223372036854775807"
                            .to_owned(),
                    ));
                }
            }
            b"count" => count = Some(non_negative("COUNT")?),
            b"maxlen" => maxlen = non_negative("MAXLEN")?,
            _ => return Err(CmdError::Syntax),
        }
        i += 2;
    }
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(list) = list_mut(db, args.get(1), now)? else {
        match count {
            Some(_) => reply.array(0),
            None => reply.null(),
        }
        return Ok(());
    };
    let (element, len) = (args.get(2), list.len());
    let scanned = if maxlen == 0 { len } else { maxlen.min(len) };
    // RANK n skips the first n-1 matches, counted from the head (or from the tail if negative).
    let skip = rank.unsigned_abs() - 1;
    let wanted = match count {
        None => 1,
        Some(0) => usize::MAX,
        Some(n) => n,
    };
    let mut seen = 0u64;
    let mut found = Vec::new();
    for k in 0..scanned {
        let i = if rank > 0 { k } else { len - 1 - k };
        if list.get(i) == Some(element) {
            seen += 1;
            if seen > skip {
                found.push(i);
                if found.len() >= wanted {
                    break;
                }
            }
        }
    }
    match (count, found.first()) {
        (None, Some(&i)) => reply.integer(i as i64),
        (None, None) => reply.null(),
        (Some(_), _) => {
            reply.array(found.len());
            found.iter().for_each(|&i| reply.integer(i as i64));
        }
    }
    Ok(())
}

/// `LMOVE source destination LEFT | RIGHT LEFT | RIGHT`: pops from one end of `source` and
/// pushes onto one end of `destination` (which may be the same list); the element, or nil.
pub fn lmove(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (from, to) = (end_of(args.get(3))?, end_of(args.get(4))?);
    lmove_generic(ctx, args.get(1), args.get(2), from, to)
}

/// `RPOPLPUSH source destination`: `LMOVE source destination RIGHT LEFT`.
pub fn rpoplpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    lmove_generic(ctx, args.get(1), args.get(2), End::Tail, End::Head)
}

fn lmove_generic(
    ctx: &mut Ctx<'_>,
    source: &[u8],
    destination: &[u8],
    from: End,
    to: End,
) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    if list_mut(db, source, now)?.is_none() {
        reply.null();
        return Ok(());
    }
    // Both types are checked before anything moves.
    let target_exists = list_mut(db, destination, now)?.is_some();
    let Some(element) = list_mut(db, source, now)?.and_then(|l| l.pop(from)) else {
        reply.null();
        return Ok(());
    };
    if target_exists {
        if let Some(target) = list_mut(db, destination, now)? {
            target.push(to, std::iter::once(&*element));
        }
    } else {
        let mut list = List::new();
        list.push(to, std::iter::once(&*element));
        db.set(destination, Value::List(Box::new(list)), None);
    }
    drop_if_empty(db, source, now);
    reply.bulk(&element);
    Ok(())
}

#[cfg(test)]
mod tests {
    use shardis_resp::Protocol;

    use crate::testing::Harness;

    #[test]
    fn push_pop_and_counts() {
        let mut h = Harness::new();
        assert_eq!(h.run("LPUSHX l a"), ":0\r\n");
        assert_eq!(h.run("RPUSH l a b c"), ":3\r\n");
        assert_eq!(h.run("LPUSH l z y"), ":5\r\n");
        assert_eq!(h.run("RPUSHX l d"), ":6\r\n");
        assert_eq!(h.run("LPOP l"), "$1\r\ny\r\n");
        assert_eq!(h.run("RPOP l 2"), "*2\r\n$1\r\nd\r\n$1\r\nc\r\n");
        assert_eq!(h.run("LPOP l 0"), "*0\r\n");
        assert_eq!(
            h.run("LPOP l -1"),
            "-ERR value is out of range, must be positive\r\n"
        );
        assert_eq!(
            h.run("LPOP l 1 2"),
            "-ERR wrong number of arguments for 'lpop' command\r\n"
        );
        assert_eq!(h.run("LPOP nokey 2"), "*-1\r\n");
        assert_eq!(h.run("LPOP nokey"), "$-1\r\n");
        assert_eq!(
            h.run("LPOP l 10"),
            "*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n"
        );
        assert_eq!(h.run("EXISTS l"), ":0\r\n", "an emptied list is deleted");
        h.proto = Protocol::Resp3;
        assert_eq!(h.run("LPOP nokey 2"), "_\r\n");
        h.run("SET s v");
        assert!(h.run("LPUSH s a").starts_with("-WRONGTYPE"));
    }

    #[test]
    fn ranges_and_indexes() {
        let mut h = Harness::new();
        h.run("RPUSH l a b c d e");
        assert_eq!(h.run("LRANGE l 1 2"), "*2\r\n$1\r\nb\r\n$1\r\nc\r\n");
        assert_eq!(h.run("LRANGE l -2 100"), "*2\r\n$1\r\nd\r\n$1\r\ne\r\n");
        assert_eq!(h.run("LRANGE l 3 1"), "*0\r\n");
        assert_eq!(h.run("LRANGE nokey 0 -1"), "*0\r\n");
        assert_eq!(h.run("LINDEX l -1"), "$1\r\ne\r\n");
        assert_eq!(h.run("LINDEX l 5"), "$-1\r\n");
        assert_eq!(h.run("LSET l -1 E"), "+OK\r\n");
        assert_eq!(h.run("LSET l 5 x"), "-ERR index out of range\r\n");
        assert_eq!(h.run("LSET nokey 0 x"), "-ERR no such key\r\n");
        assert_eq!(h.run("LTRIM l 1 -2"), "+OK\r\n");
        assert_eq!(
            h.run("LRANGE l 0 -1"),
            "*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n"
        );
        assert_eq!(h.run("LTRIM l 5 10"), "+OK\r\n");
        assert_eq!(h.run("EXISTS l"), ":0\r\n");
        assert_eq!(
            h.run("LRANGE l a 1"),
            "-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn lrem_linsert_lpos() {
        let mut h = Harness::new();
        h.run("RPUSH l a b a c a");
        assert_eq!(h.run("LREM l -2 a"), ":2\r\n");
        assert_eq!(
            h.run("LRANGE l 0 -1"),
            "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
        );
        assert_eq!(h.run("LINSERT l BEFORE b x"), ":4\r\n");
        assert_eq!(h.run("LINSERT l AFTER c y"), ":5\r\n");
        assert_eq!(h.run("LINSERT l AFTER nope y"), ":-1\r\n");
        assert_eq!(h.run("LINSERT nokey AFTER a y"), ":0\r\n");
        assert_eq!(h.run("LINSERT l MIDDLE a y"), "-ERR syntax error\r\n");
        h.run("DEL l");
        h.run("RPUSH l a b c a b c");
        assert_eq!(h.run("LPOS l b"), ":1\r\n");
        assert_eq!(h.run("LPOS l b RANK 2"), ":4\r\n");
        assert_eq!(h.run("LPOS l b RANK -1"), ":4\r\n");
        assert_eq!(h.run("LPOS l a COUNT 0"), "*2\r\n:0\r\n:3\r\n");
        assert_eq!(h.run("LPOS l a RANK -1 COUNT 0"), "*2\r\n:3\r\n:0\r\n");
        assert_eq!(h.run("LPOS l c MAXLEN 2"), "$-1\r\n");
        assert_eq!(h.run("LPOS l c COUNT 1 MAXLEN 3"), "*1\r\n:2\r\n");
        assert_eq!(h.run("LPOS nokey a COUNT 1"), "*0\r\n");
        assert!(h
            .run("LPOS l a RANK 0")
            .starts_with("-ERR RANK can't be zero"));
        assert_eq!(
            h.run("LPOS l a COUNT -1"),
            "-ERR COUNT can't be negative\r\n"
        );
        assert_eq!(
            h.run("LPOS l a MAXLEN x"),
            "-ERR MAXLEN can't be negative\r\n"
        );
        assert_eq!(h.run("LPOS l a BOGUS 1"), "-ERR syntax error\r\n");
    }

    #[test]
    fn lmove_and_rpoplpush() {
        let mut h = Harness::new();
        h.run("RPUSH src a b c");
        assert_eq!(h.run("LMOVE src dst LEFT RIGHT"), "$1\r\na\r\n");
        assert_eq!(h.run("RPOPLPUSH src dst"), "$1\r\nc\r\n");
        assert_eq!(h.run("LRANGE dst 0 -1"), "*2\r\n$1\r\nc\r\n$1\r\na\r\n");
        assert_eq!(h.run("LMOVE src src LEFT RIGHT"), "$1\r\nb\r\n");
        assert_eq!(h.run("LMOVE src dst LEFT LEFT"), "$1\r\nb\r\n");
        assert_eq!(h.run("EXISTS src"), ":0\r\n");
        assert_eq!(h.run("LMOVE src dst LEFT LEFT"), "$-1\r\n");
        assert_eq!(h.run("LMOVE dst dst UP LEFT"), "-ERR syntax error\r\n");
        h.run("SET s v");
        assert!(h.run("LMOVE dst s LEFT LEFT").starts_with("-WRONGTYPE"));
        assert_eq!(h.run("LLEN dst"), ":3\r\n", "nothing moved");
    }

    #[test]
    fn encoding_follows_redis() {
        let mut h = Harness::new();
        h.run("RPUSH l a");
        assert_eq!(h.run("OBJECT ENCODING l"), "$8\r\nlistpack\r\n");
        let big = "x".repeat(9000);
        h.run(&format!("RPUSH l {big}"));
        assert_eq!(h.run("OBJECT ENCODING l"), "$9\r\nquicklist\r\n");
        h.run("RPOP l");
        assert_eq!(h.run("OBJECT ENCODING l"), "$8\r\nlistpack\r\n");
    }
}
