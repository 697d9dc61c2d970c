//! Counters: `INCR`, `DECR`, `INCRBY`, `DECRBY`, `INCRBYFLOAT` and `INCREX` (Redis 8.8: an
//! increment with bounds and an expiry in one atomic step).
//!
//! An integer counter is stored as an integer, so `INCR` on it rewrites eight bytes in place:
//! no allocation, no parsing. Float increments are computed in x87 80-bit arithmetic
//! ([`LongDouble`]), as Redis's `long double` does, and their results are stored as strings
//! (which is why `OBJECT ENCODING` of a float counter is `embstr`, as in Redis).
//!
//! # How `INCREX` reads its documentation
//!
//! Where the Redis 8.8 page leaves room, this module takes the reading below:
//!
//! * The bounds default to the type's limits (`i64` in integer mode, `±LDBL_MAX` with
//!   `BYFLOAT`). A result outside them, an `i64` overflow included, is *skipped*: the reply is
//!   `[current value, 0]` and neither the value nor the TTL changes (a missing key is not
//!   created). With `SATURATE` the value becomes the bound it crossed and the reply's second
//!   element is the distance actually moved, which is an error (`increment or decrement would
//!   overflow`, `increment would produce NaN or Infinity`) when it does not fit the type.
//! * A value that already lies outside the bounds follows the same rule: the result of the
//!   increment is what is checked, so `SATURATE` may move it back to the bound.
//! * Options may come in any order and repeat (the last wins), like `SET`'s; conflicting ones
//!   (`BYINT` with `BYFLOAT`, two different expiry forms, `PERSIST` with a time, `ENX` without
//!   a time) are a syntax error. `LBOUND` greater than `UBOUND` is an error.
//! * An infinite `BYFLOAT` increment is rejected as `INCRBYFLOAT` rejects it. An `EXAT`/`PXAT`
//!   time already past deletes the key after the increment (the reply still reports it).

use std::cmp::Ordering;

use shardis_resp::parse_i64;
use shardis_store::ldouble::LongDouble;
use shardis_store::{Db, Entry, StrValue, ThinBytes, Value};

use crate::expire::{expire_at_ms, MILLISECONDS, SECONDS};
use crate::string::as_string;
use crate::{Args, CmdError, Ctx};

/// `INCR key`.
pub fn incr(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    incr_by(ctx, args.get(1), 1)
}

/// `DECR key`.
pub fn decr(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    incr_by(ctx, args.get(1), -1)
}

/// `INCRBY key increment`.
pub fn incrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let by = parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
    incr_by(ctx, args.get(1), by)
}

/// `DECRBY key decrement`.
pub fn decrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let by = parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
    let by = by.checked_neg().ok_or(CmdError::DecrementOverflow)?;
    incr_by(ctx, args.get(1), by)
}

/// Adds `by` to the integer at `key` (0 if missing), keeping its TTL; replies the new value.
fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], by: i64) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let new = match db.get_mut(key, now) {
        Some(entry) => {
            let Value::Str(value) = &mut entry.value else {
                return Err(CmdError::WrongType);
            };
            let new = value
                .as_i64()
                .ok_or(CmdError::NotInteger)?
                .checked_add(by)
                .ok_or(CmdError::Overflow)?;
            *value = StrValue::Int(new);
            new
        }
        None => {
            db.set(key, Value::Str(StrValue::Int(by)), None);
            by
        }
    };
    reply.integer(new);
    Ok(())
}

/// The value of a string as a long double (`INCRBYFLOAT`'s reading of it).
fn as_long_double(value: &StrValue) -> Result<LongDouble, CmdError> {
    match value {
        StrValue::Int(n) => Ok(LongDouble::from_i64(*n)),
        StrValue::Raw(b) => LongDouble::parse(b).ok_or(CmdError::NotFloat),
        StrValue::Growable(b) => LongDouble::parse(b).ok_or(CmdError::NotFloat),
    }
}

/// The text of a long double as Redis prints it (`%.17Lf` without trailing zeros).
fn long_double_text(value: LongDouble) -> Result<String, CmdError> {
    value
        .to_redis_string()
        .ok_or(CmdError::IncrementNanOrInfinity)
}

/// Stores a float result as Redis does: a string, even when it reads as an integer.
fn float_value(text: &str) -> Value {
    Value::Str(StrValue::Raw(ThinBytes::new(text.as_bytes())))
}

/// `INCRBYFLOAT key increment`: the new value, as a bulk string in both protocols.
pub fn incrbyfloat(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    let current = match db.get(key, now) {
        Some(entry) => as_long_double(as_string(entry)?)?,
        None => LongDouble::from_i64(0),
    };
    let by = LongDouble::parse(args.get(2)).ok_or(CmdError::NotFloat)?;
    let sum = current.add(by);
    if !sum.is_finite() {
        return Err(CmdError::IncrementNanOrInfinity);
    }
    let text = long_double_text(sum)?;
    store_keeping_ttl(db, key, now, float_value(&text));
    reply.bulk(text.as_bytes());
    Ok(())
}

/// Replaces the value of `key` (creating it without a TTL if missing), keeping any TTL.
fn store_keeping_ttl(db: &mut Db, key: &[u8], now: u64, value: Value) {
    let expire_at = db.get(key, now).and_then(Entry::expire_at);
    db.put(key, Entry::new(value, expire_at));
}

/// What `INCREX` counts in, with its increment and bounds.
enum Mode {
    Int {
        by: i64,
        low: i64,
        high: i64,
    },
    Float {
        by: LongDouble,
        low: LongDouble,
        high: LongDouble,
    },
}

/// What `INCREX` does with the expiry.
#[derive(Clone, Copy, PartialEq)]
enum IncrExpiry<'a> {
    /// Keep whatever the key has.
    Keep,
    /// `PERSIST`.
    Persist,
    /// `EX`/`PX`/`EXAT`/`PXAT`: the argument, its unit and whether it is absolute.
    At {
        arg: &'a [u8],
        unit: i64,
        absolute: bool,
    },
}

/// The options of `INCREX`, numbers still unparsed where their type depends on the mode.
struct IncrExOptions<'a> {
    by_int: Option<&'a [u8]>,
    by_float: Option<&'a [u8]>,
    low: Option<&'a [u8]>,
    high: Option<&'a [u8]>,
    saturate: bool,
    expiry: IncrExpiry<'a>,
    enx: bool,
}

fn parse_increx(args: Args<'_>) -> Result<IncrExOptions<'_>, CmdError> {
    let mut o = IncrExOptions {
        by_int: None,
        by_float: None,
        low: None,
        high: None,
        saturate: false,
        expiry: IncrExpiry::Keep,
        enx: false,
    };
    let mut i = 2;
    while i < args.len() {
        let option = args.get(i).to_ascii_lowercase();
        let value = (i + 1 < args.len()).then(|| args.get(i + 1));
        let time = match option.as_slice() {
            b"ex" => Some((SECONDS, false)),
            b"px" => Some((MILLISECONDS, false)),
            b"exat" => Some((SECONDS, true)),
            b"pxat" => Some((MILLISECONDS, true)),
            _ => None,
        };
        let slot = match option.as_slice() {
            b"byint" if o.by_float.is_none() => Some(&mut o.by_int),
            b"byfloat" if o.by_int.is_none() => Some(&mut o.by_float),
            b"lbound" => Some(&mut o.low),
            b"ubound" => Some(&mut o.high),
            _ => None,
        };
        match (option.as_slice(), slot, time, value) {
            (_, Some(slot), _, Some(value)) => {
                *slot = Some(value);
                i += 1;
            }
            (b"saturate", ..) => o.saturate = true,
            (b"enx", ..) => o.enx = true,
            (b"persist", ..) if matches!(o.expiry, IncrExpiry::Keep | IncrExpiry::Persist) => {
                o.expiry = IncrExpiry::Persist;
            }
            (_, None, Some((unit, absolute)), Some(arg))
                if match o.expiry {
                    IncrExpiry::Keep => true,
                    IncrExpiry::At {
                        unit: u,
                        absolute: a,
                        ..
                    } => u == unit && a == absolute,
                    IncrExpiry::Persist => false,
                } =>
            {
                o.expiry = IncrExpiry::At {
                    arg,
                    unit,
                    absolute,
                };
                i += 1;
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 1;
    }
    if o.enx && !matches!(o.expiry, IncrExpiry::At { .. }) {
        return Err(CmdError::Syntax);
    }
    Ok(o)
}

impl Mode {
    fn from_options(o: &IncrExOptions<'_>) -> Result<Mode, CmdError> {
        let mode = match o.by_float {
            None => {
                let int = |arg: Option<&[u8]>, default| {
                    arg.map_or(Ok(default), |a| parse_i64(a).ok_or(CmdError::NotInteger))
                };
                Mode::Int {
                    by: int(o.by_int, 1)?,
                    low: int(o.low, i64::MIN)?,
                    high: int(o.high, i64::MAX)?,
                }
            }
            Some(by) => {
                let float = |arg: Option<&[u8]>, default| {
                    arg.map_or(Ok(default), |a| {
                        LongDouble::parse(a).ok_or(CmdError::NotFloat)
                    })
                };
                let by = LongDouble::parse(by).ok_or(CmdError::NotFloat)?;
                if !by.is_finite() {
                    return Err(CmdError::IncrementNanOrInfinity);
                }
                Mode::Float {
                    by,
                    low: float(o.low, -LongDouble::MAX)?,
                    high: float(o.high, LongDouble::MAX)?,
                }
            }
        };
        let ordered = match &mode {
            Mode::Int { low, high, .. } => low <= high,
            Mode::Float { low, high, .. } => {
                low.compare(*high).is_some_and(|c| c != Ordering::Greater)
            }
        };
        if ordered {
            Ok(mode)
        } else {
            Err(CmdError::BoundsConflict)
        }
    }
}

/// The outcome of an `INCREX`: the value to reply (and store, if it moved) and the increment
/// applied (0 when the result was out of bounds without `SATURATE`). Float results are kept as
/// the text Redis prints, which is also what is stored.
enum Counted {
    Int { value: i64, applied: i64 },
    Float { value: String, applied: String },
}

/// `INCREX key [BYINT n | BYFLOAT f] [LBOUND l] [UBOUND u] [SATURATE]
/// [EX s | PX ms | EXAT t | PXAT t | PERSIST] [ENX]`: `[new value, applied increment]`.
pub fn increx(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let options = parse_increx(args)?;
    let mode = Mode::from_options(&options)?;
    let (key, now) = (args.get(1), ctx.now_ms);
    let expire_at = match options.expiry {
        IncrExpiry::At {
            arg,
            unit,
            absolute,
        } => Some(expire_at_ms(arg, unit, absolute, now, "increx")?),
        IncrExpiry::Keep | IncrExpiry::Persist => None,
    };
    let (db, reply) = ctx.db_and_reply();
    let (current, ttl) = match db.get(key, now) {
        Some(entry) => (Some(as_string(entry)?), entry.expire_at()),
        None => (None, None),
    };
    let (counted, moved) = match mode {
        Mode::Int { by, low, high } => {
            let current = current.map_or(Ok(0), |v| v.as_i64().ok_or(CmdError::NotInteger))?;
            let (value, applied, moved) = match current.checked_add(by) {
                Some(new) if (low..=high).contains(&new) => (new, by, true),
                _ if !options.saturate => (current, 0, false),
                result => {
                    // The bound the result crossed (an overflow crosses the one `by` points at).
                    let bound = match result {
                        Some(new) if new < low => low,
                        None if by < 0 => low,
                        _ => high,
                    };
                    let applied = bound.checked_sub(current).ok_or(CmdError::Overflow)?;
                    (bound, applied, true)
                }
            };
            (Counted::Int { value, applied }, moved)
        }
        Mode::Float { by, low, high } => {
            let current = current.map_or(Ok(LongDouble::from_i64(0)), as_long_double)?;
            let new = current.add(by);
            // An overflow to infinity lies beyond the default bounds too.
            let fits_low = new.compare(low) != Some(Ordering::Less);
            let fits_high = new.compare(high) != Some(Ordering::Greater);
            let (value, applied, moved) = if new.is_finite() && fits_low && fits_high {
                (new, by, true)
            } else if !options.saturate {
                (current, LongDouble::from_i64(0), false)
            } else {
                let bound = if fits_low { high } else { low };
                let applied = bound + -current;
                if !applied.is_finite() {
                    return Err(CmdError::IncrementNanOrInfinity);
                }
                (bound, applied, true)
            };
            let counted = Counted::Float {
                value: long_double_text(value)?,
                applied: long_double_text(applied)?,
            };
            (counted, moved)
        }
    };
    if moved {
        let value = match &counted {
            Counted::Int { value, .. } => Value::Str(StrValue::Int(*value)),
            Counted::Float { value, .. } => float_value(value),
        };
        let expire_at = match (options.expiry, expire_at) {
            (_, Some(_)) if options.enx && ttl.is_some() => ttl,
            (_, Some(at)) => Some(at),
            (IncrExpiry::Persist, None) => None,
            _ => ttl,
        };
        match expire_at {
            Some(at) if at <= now => {
                db.take(key);
            }
            _ => db.put(key, Entry::new(value, expire_at)),
        }
    }
    reply.array(2);
    match counted {
        Counted::Int { value, applied } => {
            reply.integer(value);
            reply.integer(applied);
        }
        Counted::Float { value, applied } => {
            reply.double_text(value.as_bytes());
            reply.double_text(applied.as_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use shardis_resp::Protocol;

    use crate::testing::Harness;

    #[test]
    fn incr_decr_and_errors() {
        let mut h = Harness::new();
        assert_eq!(h.run("INCR n"), ":1\r\n");
        assert_eq!(h.run("INCRBY n 10"), ":11\r\n");
        assert_eq!(h.run("DECR n"), ":10\r\n");
        assert_eq!(h.run("DECRBY n 20"), ":-10\r\n");
        assert_eq!(
            h.run("DECRBY n -9223372036854775808"),
            "-ERR decrement would overflow\r\n"
        );
        h.run("SET n 9223372036854775807");
        assert_eq!(
            h.run("INCR n"),
            "-ERR increment or decrement would overflow\r\n"
        );
        h.run("SET n abc");
        assert_eq!(
            h.run("INCR n"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            h.run("INCRBY n x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        h.run("RPUSH l a");
        assert!(h.run("INCR l").starts_with("-WRONGTYPE"));
        h.run("SET t 5 EX 100");
        assert_eq!(h.run("INCR t"), ":6\r\n");
        assert_eq!(h.run("TTL t"), ":100\r\n", "INCR keeps the TTL");
        assert_eq!(h.run("OBJECT ENCODING t"), "$3\r\nint\r\n");
    }

    #[test]
    fn incrbyfloat_like_redis() {
        let mut h = Harness::new();
        assert_eq!(h.run("INCRBYFLOAT f 10.5"), "$4\r\n10.5\r\n");
        assert_eq!(h.run("INCRBYFLOAT f 0.1"), "$4\r\n10.6\r\n");
        assert_eq!(h.run("INCRBYFLOAT f -5.6"), "$1\r\n5\r\n");
        assert_eq!(h.run("OBJECT ENCODING f"), "$6\r\nembstr\r\n");
        assert_eq!(h.run("INCR f"), ":6\r\n");
        h.proto = Protocol::Resp3;
        assert_eq!(h.run("INCRBYFLOAT f 1e3"), "$4\r\n1006\r\n");
        assert_eq!(
            h.run("INCRBYFLOAT f inf"),
            "-ERR increment would produce NaN or Infinity\r\n"
        );
        assert_eq!(
            h.run("INCRBYFLOAT f x"),
            "-ERR value is not a valid float\r\n"
        );
        h.run("SET s abc");
        assert_eq!(
            h.run("INCRBYFLOAT s 1"),
            "-ERR value is not a valid float\r\n"
        );
    }

    #[test]
    fn increx_documented_examples() {
        let mut h = Harness::new();
        assert_eq!(h.run("INCREX mykey"), "*2\r\n:1\r\n:1\r\n");
        assert_eq!(h.run("INCREX mykey"), "*2\r\n:2\r\n:1\r\n");
        h.run("SET mykey 100");
        assert_eq!(h.run("INCREX mykey BYINT 5"), "*2\r\n:105\r\n:5\r\n");
        assert_eq!(h.run("INCREX mykey BYINT -10"), "*2\r\n:95\r\n:-10\r\n");
        h.run("SET mykey 1.5");
        assert_eq!(
            h.run("INCREX mykey BYFLOAT 0.25"),
            "*2\r\n$4\r\n1.75\r\n$4\r\n0.25\r\n"
        );
        h.run("DEL mykey");
        assert_eq!(h.run("INCREX mykey BYINT 1 EX 100"), "*2\r\n:1\r\n:1\r\n");
        assert_eq!(h.run("TTL mykey"), ":100\r\n");
        h.run("SET mykey 10");
        h.run("INCREX mykey BYINT 1 EX 100 ENX");
        assert_eq!(h.run("TTL mykey"), ":100\r\n");
        h.run("SET mykey 10 EX 500");
        assert_eq!(
            h.run("INCREX mykey BYINT 1 EX 10 ENX"),
            "*2\r\n:11\r\n:1\r\n"
        );
        assert_eq!(h.run("TTL mykey"), ":500\r\n");
        h.run("SET mykey 5 EX 1000");
        h.run("INCREX mykey BYINT 1 PERSIST");
        assert_eq!(h.run("TTL mykey"), ":-1\r\n");
        h.run("SET mykey 99");
        assert_eq!(
            h.run("INCREX mykey BYINT 5 UBOUND 100"),
            "*2\r\n:99\r\n:0\r\n"
        );
        assert_eq!(
            h.run("INCREX mykey BYINT 5 UBOUND 100 SATURATE"),
            "*2\r\n:100\r\n:1\r\n"
        );
    }

    #[test]
    fn increx_bounds_ttl_and_limits() {
        let mut h = Harness::new();
        // A skipped increment creates nothing and leaves the TTL alone.
        assert_eq!(h.run("INCREX k LBOUND 5 EX 10"), "*2\r\n:0\r\n:0\r\n");
        assert_eq!(h.run("EXISTS k"), ":0\r\n");
        assert_eq!(h.run("INCREX k LBOUND 5 SATURATE"), "*2\r\n:5\r\n:5\r\n");
        h.run("SET k 9223372036854775800 EX 50");
        assert_eq!(
            h.run("INCREX k BYINT 100 EX 10"),
            "*2\r\n:9223372036854775800\r\n:0\r\n"
        );
        assert_eq!(h.run("TTL k"), ":50\r\n");
        assert_eq!(
            h.run("INCREX k BYINT 100 SATURATE EX 10"),
            "*2\r\n:9223372036854775807\r\n:7\r\n"
        );
        assert_eq!(
            h.run("TTL k"),
            ":10\r\n",
            "a saturated result still sets the expiry"
        );
        h.run("SET k -9223372036854775800");
        assert_eq!(
            h.run("INCREX k BYINT 1 LBOUND 9223372036854775000 SATURATE"),
            "-ERR increment or decrement would overflow\r\n"
        );
        h.run("SET k 150");
        assert_eq!(
            h.run("INCREX k BYINT -1 UBOUND 100 SATURATE"),
            "*2\r\n:100\r\n:-50\r\n"
        );
        h.run("SET k 5");
        assert_eq!(
            h.run("INCREX k BYINT -10 LBOUND 0 SATURATE"),
            "*2\r\n:0\r\n:-5\r\n"
        );
        // Float mode.
        h.run("SET f 1");
        assert_eq!(
            h.run("INCREX f BYFLOAT 0.5 UBOUND 1.2"),
            "*2\r\n$1\r\n1\r\n$1\r\n0\r\n"
        );
        h.proto = Protocol::Resp3;
        assert_eq!(
            h.run("INCREX f BYFLOAT 0.5 UBOUND 1.2 SATURATE"),
            "*2\r\n,1.2\r\n,0.2\r\n"
        );
        assert_eq!(h.run("GET f"), "$3\r\n1.2\r\n");
        assert_eq!(
            h.run("INCREX f BYFLOAT inf"),
            "-ERR increment would produce NaN or Infinity\r\n"
        );
        h.proto = Protocol::Resp2;
        // Errors.
        assert_eq!(h.run("INCREX f BYINT 1 BYFLOAT 1"), "-ERR syntax error\r\n");
        assert_eq!(h.run("INCREX f EX 10 PX 10"), "-ERR syntax error\r\n");
        assert_eq!(h.run("INCREX f PERSIST EX 10"), "-ERR syntax error\r\n");
        assert_eq!(h.run("INCREX f ENX"), "-ERR syntax error\r\n");
        assert_eq!(h.run("INCREX f PERSIST ENX"), "-ERR syntax error\r\n");
        assert_eq!(h.run("INCREX f BYINT"), "-ERR syntax error\r\n");
        assert_eq!(
            h.run("INCREX k UBOUND 1.5"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            h.run("INCREX k LBOUND 10 UBOUND 5"),
            "-ERR LBOUND must be less than or equal to UBOUND\r\n"
        );
        assert_eq!(
            h.run("INCREX f BYINT 1"),
            "-ERR value is not an integer or out of range\r\n",
            "BYINT needs an integer value"
        );
        assert_eq!(
            h.run("INCREX k EX 0"),
            "-ERR invalid expire time in 'increx' command\r\n"
        );
        assert_eq!(h.run("INCREX k PXAT 1"), "*2\r\n:1\r\n:1\r\n");
        assert_eq!(h.run("EXISTS k"), ":0\r\n", "a past time deletes the key");
    }
}
