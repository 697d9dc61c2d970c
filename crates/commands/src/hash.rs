//! Hash commands: `HSET` and friends, and the per-field TTL commands of Redis 7.4 and 8.0
//! (`HEXPIRE` family, `HTTL` family, `HPERSIST`, `HGETEX`, `HSETEX`, `HGETDEL`).
//!
//! # Expiry
//!
//! A field is gone from the millisecond it expires at: Redis deletes a field at once when it is
//! given an expiry that is not in the future, and we apply the same rule to fields that were
//! set to expire later. Every command first purges the due fields of the hash it touches
//! ([`hash_mut`]), deleting the key if that empties it, so an expired field is never seen by any
//! command, and the rest of each handler deals with live fields only. A hash whose earliest
//! field expiry lies ahead costs one O(1) (table) or O(1)-if-never-used (compact) check.
//!
//! Fields that nobody reads are reclaimed by the shard's active expiry (`Db::expire_fields`),
//! which finds the hashes with due fields through a per-database index. Every handler that
//! changes a hash does so inside [`on_hash`] (or [`with_hash`], which may create it), which
//! looks the key up once and afterwards reports the hash's new earliest field expiry to that
//! index and deletes the key if the hash is now empty.
//!
//! # Atomicity
//!
//! Handlers check everything that can fail (arguments, types, stored values) before changing
//! anything; a new hash is created only once the command is certain to succeed, so an error
//! never leaves a key behind. The purge of already-expired fields at the start is not a visible
//! change: those fields were invisible already.

use std::cell::Cell;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};

use shardis_resp::{parse_i64, Reply};
use shardis_store::hash::{FieldTtl, Hash};
use shardis_store::ldouble::LongDouble;
use shardis_store::value::itoa_buf;
use shardis_store::{Db, Entry, Value};

use crate::expire::ExpireIf;
use crate::pattern::glob_match;
use crate::{Args, CmdError, Ctx};

// ---------------------------------------------------------------------------
// Shared plumbing
// ---------------------------------------------------------------------------

/// Redis's `HFE_MAX_ABS_TIME_MSEC`: the latest field expiry a command may set (2^46 - 1 ms,
/// two bits of Redis's 48-bit expiry field being kept for future use).
const MAX_FIELD_EXPIRE_MS: u64 = 0xFFFF_FFFF_FFFF >> 2;

/// Results of setting one field's TTL (Redis's `SetExRes`), as `HEXPIRE` replies them.
const NO_SUCH_FIELD: i64 = -2;
const CONDITION_NOT_MET: i64 = 0;
const TTL_SET: i64 = 1;
const FIELD_DELETED: i64 = 2;
/// `HTTL` / `HPERSIST` answer for a field without a TTL.
const NO_TTL: i64 = -1;

/// Most bytes one `HRANDFIELD` reply may take. Redis would try to send any count (up to 2^63
/// fields); a shard that tried would run out of memory, so past this it answers an error.
const MAX_RANDOM_REPLY_BYTES: usize = 512 * 1024 * 1024;

/// The live hash at `key` (due fields purged first, and the key if that empties it), `None` if
/// there is no key, or WRONGTYPE. One key lookup.
fn hash_mut<'d>(db: &'d mut Db, key: &[u8], now: u64) -> Result<Option<&'d mut Hash>, CmdError> {
    match db.get_mut_live(key, now) {
        None => Ok(None),
        Some(Entry {
            value: Value::Hash(hash),
            ..
        }) => Ok(Some(hash)),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Runs `change` on the live hash at `key` (due fields purged first), or on `None` if there is
/// none, with one key lookup; then tells the field-expiry index how the hash's earliest field
/// expiry moved and deletes a hash left empty. A type error comes before `change` runs, so
/// commands that check the key's type before their arguments (as Redis does) parse them in
/// `change`.
fn on_hash<R>(
    db: &mut Db,
    key: &[u8],
    now: u64,
    change: impl FnOnce(Option<&mut Hash>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let Some(hash) = hash_mut(db, key, now)? else {
        return change(None);
    };
    let before = hash.next_expiry();
    let result = change(Some(&mut *hash));
    let (after, empty) = (hash.next_expiry(), hash.is_empty());
    db.note_field_expiry(key, before, after);
    if empty {
        db.take(key);
    }
    result
}

/// [`on_hash`] for the commands that may create a hash: with no hash at `key`, `change` runs
/// on a new empty one, stored only if `change` succeeds and leaves fields in it (so `change`
/// must fail, if it fails, before it changes anything).
fn with_hash<R>(
    db: &mut Db,
    key: &[u8],
    now: u64,
    change: impl FnOnce(&mut Hash) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let mut created = None;
    let result = on_hash(db, key, now, |hash| match hash {
        Some(hash) => change(hash),
        None => {
            let mut hash = Hash::new();
            hash.set_stored_key(key);
            let result = change(&mut hash)?;
            created = Some(hash);
            Ok(result)
        }
    })?;
    if let Some(hash) = created.filter(|hash| !hash.is_empty()) {
        db.set(key, Value::Hash(hash), None);
    }
    Ok(result)
}

/// Reads `FIELDS numfields field ...` at `pos`, where the fields must be all the remaining
/// arguments; returns the position of the first field. `not_positive` is the command's own
/// wording for a bad `numfields`.
fn fields_at(args: &Args<'_>, pos: usize, not_positive: CmdError) -> Result<usize, CmdError> {
    if !args.get(pos).eq_ignore_ascii_case(b"fields") {
        return Err(CmdError::FieldsMissing);
    }
    let count = parse_i64(args.get(pos + 1))
        .filter(|&n| n >= 1)
        .ok_or(not_positive)?;
    let first = pos + 2;
    if usize::try_from(count).ok() != Some(args.len().saturating_sub(first)) {
        return Err(CmdError::NumFieldsMismatch);
    }
    Ok(first)
}

/// Which of `words` (lower case) `arg` is, ignoring case.
fn keyword(arg: &[u8], words: &[&'static str]) -> Option<&'static str> {
    words
        .iter()
        .copied()
        .find(|w| arg.eq_ignore_ascii_case(w.as_bytes()))
}

/// The unit (ms) and base time of an `EX` / `PX` / `EXAT` / `PXAT` option.
fn expiry_unit_and_base(option: &str, now: u64) -> (u64, u64) {
    let unit_ms = if option.starts_with('e') { 1000 } else { 1 };
    let base = if option.ends_with("at") { 0 } else { now };
    (unit_ms, base)
}

/// Redis's `parseExpireTime` for field TTLs: `arg` counts `unit_ms` milliseconds from `base`
/// (the current time, or 0 for the `...AT` forms); returns the absolute time in milliseconds.
fn field_expire_time(
    arg: &[u8],
    unit_ms: u64,
    base: u64,
    command: &'static str,
) -> Result<u64, CmdError> {
    let value = parse_i64(arg).ok_or(CmdError::NotInteger)?;
    let value = u64::try_from(value).map_err(|_| CmdError::NegativeExpireTime)?;
    let too_late = CmdError::InvalidExpireTime(command);
    if value > MAX_FIELD_EXPIRE_MS / unit_ms {
        return Err(too_late);
    }
    let ms = value * unit_ms;
    if ms > MAX_FIELD_EXPIRE_MS.saturating_sub(base) {
        return Err(too_late);
    }
    Ok(ms + base)
}

/// Gives `field` the expiry `at` if `condition` allows, deleting it at once when `at` is not in
/// the future; returns Redis's result code (-2, 0, 1 or 2).
fn expire_field(hash: &mut Hash, field: &[u8], at: u64, condition: ExpireIf, now: u64) -> i64 {
    let Some(previous) = hash.expire_at(field) else {
        return NO_SUCH_FIELD;
    };
    let ms = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
    if !condition.allows(previous.map(ms), ms(at)) {
        return CONDITION_NOT_MET;
    }
    if at <= now {
        hash.remove(field);
        return FIELD_DELETED;
    }
    hash.set_expire_at(field, Some(at));
    TTL_SET
}

// ---------------------------------------------------------------------------
// Setting fields
// ---------------------------------------------------------------------------

/// `HSET key field value [field value ...]`: the number of fields added. Overwriting a field
/// clears its TTL.
pub fn hset(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let added = set_pairs(ctx, args, "hset")?;
    ctx.reply.integer(added as i64);
    Ok(())
}

/// `HMSET key field value [field value ...]`: `HSET` answering `+OK`.
pub fn hmset(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    set_pairs(ctx, args, "hmset")?;
    ctx.reply.ok();
    Ok(())
}

/// Sets every field/value pair of `HSET`/`HMSET`; returns how many fields are new.
fn set_pairs(ctx: &mut Ctx<'_>, args: Args<'_>, command: &str) -> Result<usize, CmdError> {
    if args.len() % 2 != 0 {
        return Err(CmdError::WrongArity(command.to_owned()));
    }
    let (key, now, limits) = (args.get(1), ctx.now_ms, ctx.settings.hash_limits);
    with_hash(ctx.db(), key, now, |hash| {
        hash.prepare_bulk_set((args.len() - 2) / 2, &limits);
        let mut added = 0;
        let mut pairs = args.cursor(2);
        while let (Ok(field), Ok(value)) = (pairs.next_bytes(), pairs.next_bytes()) {
            added += usize::from(hash.set(field, value, FieldTtl::Clear, &limits));
        }
        Ok(added)
    })
}

/// `HSETNX key field value`: 1 if the field was set, 0 if it already existed.
pub fn hsetnx(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, field, now, limits) = (
        args.get(1),
        args.get(2),
        ctx.now_ms,
        ctx.settings.hash_limits,
    );
    let set = with_hash(ctx.db(), key, now, |hash| {
        Ok(!hash.contains(field) && hash.set(field, args.get(3), FieldTtl::Clear, &limits))
    })?;
    ctx.reply.integer(i64::from(set));
    Ok(())
}

/// `HINCRBY key field increment`: the new value. The field keeps its TTL.
pub fn hincrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, field, now, limits) = (
        args.get(1),
        args.get(2),
        ctx.now_ms,
        ctx.settings.hash_limits,
    );
    let increment = parse_i64(args.get(3)).ok_or(CmdError::NotInteger)?;
    let value = with_hash(ctx.db(), key, now, |hash| {
        let current = match hash.get(field) {
            Some(bytes) => parse_i64(bytes).ok_or(CmdError::HashValueNotInteger)?,
            None => 0,
        };
        let value = current.checked_add(increment).ok_or(CmdError::Overflow)?;
        hash.set(
            field,
            itoa_buf::Buffer::new().format(value),
            FieldTtl::Keep,
            &limits,
        );
        Ok(value)
    })?;
    ctx.reply.integer(value);
    Ok(())
}

/// `HINCRBYFLOAT key field increment`: the new value, computed in x87 long double exactly as
/// Redis does. The field keeps its TTL.
pub fn hincrbyfloat(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, field, now, limits) = (
        args.get(1),
        args.get(2),
        ctx.now_ms,
        ctx.settings.hash_limits,
    );
    let increment = LongDouble::parse(args.get(3)).ok_or(CmdError::NotFloat)?;
    if !increment.is_finite() {
        return Err(CmdError::NanOrInfinity);
    }
    let text = with_hash(ctx.db(), key, now, |hash| {
        let current = match hash.get(field) {
            Some(bytes) => LongDouble::parse(bytes).ok_or(CmdError::HashValueNotFloat)?,
            None => LongDouble::from_i64(0),
        };
        let sum = current.add(increment);
        if !sum.is_finite() {
            return Err(CmdError::IncrementNanOrInfinity);
        }
        let text = sum
            .to_redis_string()
            .ok_or(CmdError::IncrementNanOrInfinity)?;
        hash.set(field, text.as_bytes(), FieldTtl::Keep, &limits);
        Ok(text)
    })?;
    ctx.reply.bulk(text.as_bytes());
    Ok(())
}

/// `HSETEX key [FNX | FXX] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL] FIELDS n field value ...`:
/// sets the fields (only if none exists with `FNX`, only if all exist with `FXX`) and their
/// TTL; 1 if they were set, 0 if the condition stopped it. A time not in the future deletes the
/// fields it would apply to.
pub fn hsetex(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now, limits) = (args.get(1), ctx.now_ms, ctx.settings.hash_limits);
    // Options come first and are checked before the key, as Redis does; FIELDS ends them.
    let mut expiry = FieldTtl::Clear;
    let mut only_if: Option<bool> = None; // Some(true): FXX, Some(false): FNX
    let mut first = None;
    let mut i = 2;
    while i < args.len() {
        let arg = args.get(i);
        let words = [
            "fields", "ex", "px", "exat", "pxat", "keepttl", "fnx", "fxx",
        ];
        match keyword(arg, &words) {
            Some("fields") => {
                if i + 3 >= args.len() {
                    return Err(CmdError::WrongArity("hsetex".to_owned()));
                }
                let count = parse_i64(args.get(i + 1))
                    .filter(|n| (1..=i64::from(i32::MAX)).contains(n))
                    .ok_or(CmdError::InvalidNumberOfFields)?;
                let remaining = args.len() - i - 2;
                if remaining % 2 != 0 || usize::try_from(count).ok() != Some(remaining / 2) {
                    return Err(CmdError::WrongArity("hsetex".to_owned()));
                }
                first = Some(i + 2);
                break;
            }
            Some("keepttl") if expiry == FieldTtl::Clear => expiry = FieldTtl::Keep,
            Some(option @ ("ex" | "px" | "exat" | "pxat")) if expiry == FieldTtl::Clear => {
                if i + 1 >= args.len() {
                    return Err(CmdError::MissingExpireTime);
                }
                i += 1;
                let (unit_ms, base) = expiry_unit_and_base(option, now);
                expiry = FieldTtl::At(field_expire_time(args.get(i), unit_ms, base, "hsetex")?);
            }
            Some("ex" | "px" | "exat" | "pxat" | "keepttl") => {
                return Err(CmdError::ConflictingExpiry)
            }
            Some(condition @ ("fnx" | "fxx")) => {
                if only_if.is_some() {
                    return Err(CmdError::ConflictingFieldCondition);
                }
                only_if = Some(condition == "fxx");
            }
            _ => {
                return Err(CmdError::UnknownArgument(
                    String::from_utf8_lossy(arg).into_owned(),
                ))
            }
        }
        i += 1;
    }
    // The arity (6 or more) leaves no way to run out of options without meeting FIELDS.
    let first = first.ok_or(CmdError::Syntax)?;
    let fields = || args.iter().skip(first).step_by(2);
    let set = with_hash(ctx.db(), key, now, |hash| {
        let allowed = match only_if {
            None => true,
            Some(true) => fields().all(|f| hash.contains(f)),
            Some(false) => !fields().any(|f| hash.contains(f)),
        };
        if !allowed {
            return Ok(false);
        }
        hash.prepare_bulk_set((args.len() - first) / 2, &limits);
        if let FieldTtl::At(_) = expiry {
            hash.enable_field_expiry();
        }
        let mut pairs = args.cursor(first);
        while let (Ok(field), Ok(value)) = (pairs.next_bytes(), pairs.next_bytes()) {
            match expiry {
                // A time already past deletes the field, as a field TTL command would.
                FieldTtl::At(at) if at <= now => {
                    hash.remove(field);
                }
                _ => {
                    hash.set(field, value, expiry, &limits);
                }
            }
        }
        Ok(true)
    })?;
    ctx.reply.integer(i64::from(set));
    Ok(())
}

// ---------------------------------------------------------------------------
// Reading fields
// ---------------------------------------------------------------------------

/// `HGET key field`: the value, or nil.
pub fn hget(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, field, now) = (args.get(1), args.get(2), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    match hash_mut(db, key, now)?.and_then(|h| h.get(field)) {
        Some(value) => reply.bulk(value),
        None => reply.null(),
    }
    Ok(())
}

/// `HMGET key field [field ...]`: the values, nil for missing fields (all nil for no key).
pub fn hmget(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    let hash = hash_mut(db, key, now)?;
    reply.array(args.len() - 2);
    for field in args.iter().skip(2) {
        match hash.as_ref().and_then(|h| h.get(field)) {
            Some(value) => reply.bulk(value),
            None => reply.null(),
        }
    }
    Ok(())
}

/// `HGETALL key`: every field and value (a map in RESP3).
pub fn hgetall(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    let Some(hash) = hash_mut(db, key, now)? else {
        reply.map(0);
        return Ok(());
    };
    reply.map(hash.len());
    for (field, value) in hash.iter() {
        reply.bulk(field);
        reply.bulk(value);
    }
    Ok(())
}

/// `HKEYS key`: every field.
pub fn hkeys(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    list_half(ctx, args, |field, _| field)
}

/// `HVALS key`: every value.
pub fn hvals(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    list_half(ctx, args, |_, value| value)
}

/// `HKEYS` / `HVALS`: an array of one half of each pair.
fn list_half(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    pick: for<'h> fn(&'h [u8], &'h [u8]) -> &'h [u8],
) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    let Some(hash) = hash_mut(db, key, now)? else {
        reply.array(0);
        return Ok(());
    };
    reply.array(hash.len());
    for (field, value) in hash.iter() {
        reply.bulk(pick(field, value));
    }
    Ok(())
}

/// `HLEN key`: the number of fields.
pub fn hlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let len = hash_mut(ctx.db(), key, now)?.map_or(0, |h| h.len());
    ctx.reply.integer(len as i64);
    Ok(())
}

/// `HEXISTS key field`: 1 if the field exists, else 0.
pub fn hexists(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, field, now) = (args.get(1), args.get(2), ctx.now_ms);
    let found = hash_mut(ctx.db(), key, now)?.is_some_and(|h| h.contains(field));
    ctx.reply.integer(i64::from(found));
    Ok(())
}

/// `HSTRLEN key field`: the length of the value, 0 if there is none.
pub fn hstrlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, field, now) = (args.get(1), args.get(2), ctx.now_ms);
    let len = hash_mut(ctx.db(), key, now)?
        .and_then(|h| h.get(field))
        .map_or(0, <[u8]>::len);
    ctx.reply.integer(len as i64);
    Ok(())
}

/// `HDEL key field [field ...]`: the number of fields deleted.
pub fn hdel(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let deleted = on_hash(ctx.db(), key, now, |hash| {
        Ok(hash.map_or(0, |hash| {
            args.iter().skip(2).filter(|f| hash.remove(f)).count()
        }))
    })?;
    ctx.reply.integer(deleted as i64);
    Ok(())
}

/// `HGETDEL key FIELDS numfields field [field ...]`: the values (nil for missing fields), and
/// the fields are deleted.
pub fn hgetdel(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    // The type is checked before the arguments, as Redis does.
    on_hash(db, key, now, |hash| {
        let first = fields_at(&args, 2, CmdError::NumFieldsNotPositive)?;
        reply.array(args.len() - first);
        let Some(hash) = hash else {
            (first..args.len()).for_each(|_| reply.null());
            return Ok(());
        };
        for field in args.iter().skip(first) {
            match hash.get(field) {
                Some(value) => {
                    reply.bulk(value);
                    hash.remove(field);
                }
                None => reply.null(),
            }
        }
        Ok(())
    })
}

/// `HGETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST] FIELDS numfields field ...`: the
/// values (nil for missing fields), and sets or (with `PERSIST`) clears the TTL of the fields
/// that exist. A time not in the future deletes them after reading.
pub fn hgetex(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    // The type is checked before the arguments, as Redis does.
    on_hash(db, key, now, |hash| {
        // None: leave TTLs alone; Some(None): PERSIST; Some(Some(at)): expire at `at`.
        let (change, fields_pos) =
            match keyword(args.get(2), &["ex", "px", "exat", "pxat", "persist"]) {
                Some("persist") => (Some(None), 3),
                Some(option) => {
                    let (unit_ms, base) = expiry_unit_and_base(option, now);
                    let at = field_expire_time(args.get(3), unit_ms, base, "hgetex")?;
                    (Some(Some(at)), 4)
                }
                None => (None, 2),
            };
        let first = fields_at(&args, fields_pos, CmdError::NumFieldsNotPositive)?;
        reply.array(args.len() - first);
        let Some(hash) = hash else {
            (first..args.len()).for_each(|_| reply.null());
            return Ok(());
        };
        if change.is_some() {
            hash.enable_field_expiry();
        }
        for field in args.iter().skip(first) {
            let Some(value) = hash.get(field) else {
                reply.null();
                continue;
            };
            reply.bulk(value);
            match change {
                None => {}
                Some(None) => {
                    hash.set_expire_at(field, None);
                }
                Some(Some(at)) => {
                    expire_field(hash, field, at, ExpireIf::default(), now);
                }
            }
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Field TTLs
// ---------------------------------------------------------------------------

/// `HEXPIRE key seconds [NX | XX | GT | LT] FIELDS numfields field ...`.
pub fn hexpire(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    expire_fields(ctx, args, 1000, now, "hexpire")
}

/// `HPEXPIRE key milliseconds [NX | XX | GT | LT] FIELDS numfields field ...`.
pub fn hpexpire(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    expire_fields(ctx, args, 1, now, "hpexpire")
}

/// `HEXPIREAT key unix-time-seconds [NX | XX | GT | LT] FIELDS numfields field ...`.
pub fn hexpireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    expire_fields(ctx, args, 1000, 0, "hexpireat")
}

/// `HPEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT] FIELDS numfields field ...`.
pub fn hpexpireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    expire_fields(ctx, args, 1, 0, "hpexpireat")
}

/// The `HEXPIRE` family: per field -2 (no such field), 0 (condition not met), 1 (set) or 2
/// (deleted, the time not being in the future).
fn expire_fields(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    unit_ms: u64,
    base: u64,
    command: &'static str,
) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    // The type is checked before the arguments, as Redis does.
    on_hash(db, key, now, |hash| {
        let at = field_expire_time(args.get(2), unit_ms, base, command)?;
        // The field commands take at most one of the options.
        let mut condition = ExpireIf::default();
        match keyword(args.get(3), &["nx", "xx", "gt", "lt"]) {
            Some("nx") => condition.nx = true,
            Some("xx") => condition.xx = true,
            Some("gt") => condition.gt = true,
            Some("lt") => condition.lt = true,
            _ => {}
        }
        let fields_pos = if condition == ExpireIf::default() {
            3
        } else {
            4
        };
        let first = fields_at(&args, fields_pos, CmdError::NumFieldsNotGreaterThanZero)?;
        reply.array(args.len() - first);
        let Some(hash) = hash else {
            (first..args.len()).for_each(|_| reply.integer(NO_SUCH_FIELD));
            return Ok(());
        };
        hash.enable_field_expiry();
        for field in args.iter().skip(first) {
            reply.integer(expire_field(hash, field, at, condition, now));
        }
        Ok(())
    })
}

/// `HTTL key FIELDS numfields field ...`: seconds left, rounded up.
pub fn httl(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    field_ttls(ctx, args, |at| (at - now).div_ceil(1000))
}

/// `HPTTL key FIELDS numfields field ...`: milliseconds left.
pub fn hpttl(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    field_ttls(ctx, args, |at| at - now)
}

/// `HEXPIRETIME key FIELDS numfields field ...`: the expiry as a Unix time in seconds, rounded
/// up as Redis does.
pub fn hexpiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    field_ttls(ctx, args, |at| at.div_ceil(1000))
}

/// `HPEXPIRETIME key FIELDS numfields field ...`: the expiry as a Unix time in milliseconds.
pub fn hpexpiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    field_ttls(ctx, args, |at| at)
}

/// The `HTTL` family: per field -2 (no such field), -1 (no TTL) or `show(expiry)`. Live fields
/// expire after `now`, so `show` never sees a past time.
fn field_ttls(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    show: impl Fn(u64) -> u64,
) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    let hash = hash_mut(db, key, now)?;
    let first = fields_at(&args, 2, CmdError::NumFieldsNotPositive)?;
    reply.array(args.len() - first);
    for field in args.iter().skip(first) {
        reply.integer(match hash.as_ref().and_then(|h| h.expire_at(field)) {
            None => NO_SUCH_FIELD,
            Some(None) => NO_TTL,
            Some(Some(at)) => i64::try_from(show(at)).unwrap_or(i64::MAX),
        });
    }
    Ok(())
}

/// `HPERSIST key FIELDS numfields field ...`: per field -2 (no such field), -1 (no TTL) or 1
/// (TTL removed).
pub fn hpersist(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let (db, reply) = ctx.db_and_reply();
    // The type is checked before the arguments, as Redis does.
    on_hash(db, key, now, |hash| {
        let first = fields_at(&args, 2, CmdError::NumFieldsNotPositive)?;
        reply.array(args.len() - first);
        let Some(hash) = hash else {
            (first..args.len()).for_each(|_| reply.integer(NO_SUCH_FIELD));
            return Ok(());
        };
        for field in args.iter().skip(first) {
            reply.integer(match hash.expire_at(field) {
                None => NO_SUCH_FIELD,
                Some(None) => NO_TTL,
                Some(Some(_)) => {
                    hash.set_expire_at(field, None);
                    TTL_SET
                }
            });
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// HRANDFIELD and HSCAN
// ---------------------------------------------------------------------------

thread_local! {
    /// HRANDFIELD's random source, one per shard thread: xorshift64* seeded from the
    /// process's random hashing keys, so that runs (and threads) differ.
    static RANDOM: Cell<u64> = Cell::new({
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x9e37_79b9_7f4a_7c15);
        hasher.finish() | 1
    });
}

/// A random number in `0..n` (0 for `n = 0`); the tiny modulo bias does not matter here.
fn random_below(n: usize) -> usize {
    RANDOM.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1) as u64) as usize
    })
}

/// `HRANDFIELD key [count [WITHVALUES]]`: one random field (or nil); with a count, that many
/// distinct fields (at most the whole hash), or with a negative count that many picks with
/// repetition. With `WITHVALUES` each field comes with its value (a pair per field in RESP3).
pub fn hrandfield(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let count = if args.len() >= 3 {
        let count = parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
        if count == i64::MIN {
            return Err(CmdError::OutOfRangeBetween(-i64::MAX, i64::MAX));
        }
        Some(count)
    } else {
        None
    };
    if args.len() > 4 || (args.len() == 4 && !args.get(3).eq_ignore_ascii_case(b"withvalues")) {
        return Err(CmdError::Syntax);
    }
    let with_values = args.len() == 4;
    if with_values && count.is_some_and(|c| c.unsigned_abs() > (i64::MAX / 2) as u64) {
        return Err(CmdError::OutOfRange);
    }
    let (db, reply) = ctx.db_and_reply();
    let hash = hash_mut(db, key, now)?;
    let Some(count) = count else {
        match hash.and_then(|h| random_pick(h.positions(), |p| h.at_position(p))) {
            Some((_, (field, _))) => reply.bulk(field),
            None => reply.null(),
        }
        return Ok(());
    };
    let Some(hash) = hash.filter(|_| count != 0) else {
        reply.array(0);
        return Ok(());
    };
    let hash: &Hash = hash;
    // Compact hashes find a position by walking; list their fields once for the picks.
    let pairs: Vec<Pair<'_>> = if hash.encoding() == "hashtable" {
        Vec::new()
    } else {
        hash.iter().collect()
    };
    let at = |p: usize| match pairs.get(p) {
        Some(&pair) => Some(pair),
        None => hash.at_position(p),
    };
    let (len, positions) = (hash.len(), hash.positions());
    let write = |reply: &mut Reply<'_>, (field, value): (&[u8], &[u8])| {
        if with_values && reply.is_resp3() {
            reply.array(2);
        }
        reply.bulk(field);
        if with_values {
            reply.bulk(value);
        }
    };
    let header = |reply: &mut Reply<'_>, n: usize| {
        reply.array(if with_values && !reply.is_resp3() {
            2 * n
        } else {
            n
        });
    };
    let picks = count.unsigned_abs();
    if count < 0 {
        // With repetition: `picks` independent draws, in random order.
        let start = reply.len();
        header(reply, usize::try_from(picks).unwrap_or(usize::MAX));
        for _ in 0..picks {
            if let Some((_, pair)) = random_pick(positions, at) {
                write(reply, pair);
            }
            if reply.len() - start > MAX_RANDOM_REPLY_BYTES {
                return Err(CmdError::ReplyTooLarge("hrandfield"));
            }
        }
    } else if picks >= len as u64 {
        header(reply, len);
        hash.iter().for_each(|p| write(reply, p));
    } else {
        let picks = picks as usize;
        header(reply, picks);
        if picks * 3 > len {
            // Close to the whole hash: shuffle the first `picks` of all the fields (a compact
            // hash's, listed above already).
            let mut all = if pairs.is_empty() {
                hash.iter().collect()
            } else {
                pairs
            };
            let n = all.len();
            for i in 0..picks.min(n) {
                all.swap(i, i + random_below(n - i));
            }
            all.iter().take(picks).for_each(|&p| write(reply, p));
        } else {
            // Few of many: draw until `picks` distinct positions came up.
            let mut chosen = HashSet::with_capacity(picks);
            while chosen.len() < picks {
                let Some((p, pair)) = random_pick(positions, at) else {
                    break;
                };
                if chosen.insert(p) {
                    write(reply, pair);
                }
            }
        }
    }
    Ok(())
}

/// A field and its value.
type Pair<'h> = (&'h [u8], &'h [u8]);

/// A field picked uniformly at random from a hash's `positions` (see [`Hash::positions`]),
/// with its position: positions are drawn until one holds a field, which picks each field
/// with the same chance. A table's index is at least an eighth full once a command has purged
/// its due fields, so this takes a few draws, and all of 1,024 miss with a chance below
/// 10^-59; the first field after the last draw is taken then, so that it always ends. `None`
/// for an empty hash.
fn random_pick<'h>(
    positions: usize,
    at: impl Fn(usize) -> Option<Pair<'h>>,
) -> Option<(usize, Pair<'h>)> {
    let mut p = 0;
    for _ in 0..1024 {
        p = random_below(positions);
        if let Some(pair) = at(p) {
            return Some((p, pair));
        }
    }
    (p..positions).chain(0..p).find_map(|q| Some((q, at(q)?)))
}

/// Redis's `parseScanCursorOrReply`: a decimal unsigned 64-bit integer (as `strtoull` reads
/// it once the strict integer parse has failed: leading blanks and a sign allowed).
fn parse_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    if let Some(n) = parse_i64(arg) {
        return u64::try_from(n).map_err(|_| CmdError::InvalidCursor);
    }
    let text = arg.trim_ascii_start();
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(CmdError::InvalidCursor);
    }
    let value = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .ok_or(CmdError::InvalidCursor)?;
    Ok(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]`: the next cursor (0 when done)
/// and a batch of fields with their values (fields only with `NOVALUES`).
pub fn hscan(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let cursor = parse_cursor(args.get(2))?;
    let proto = ctx.reply.protocol();
    let (db, reply) = ctx.db_and_reply();
    let Some(hash) = hash_mut(db, key, now)? else {
        reply.array(2);
        reply.bulk(b"0");
        reply.array(0);
        return Ok(());
    };
    let (mut count, mut pattern, mut no_values) = (10usize, None, false);
    let mut options = args.cursor(3);
    while !options.is_done() {
        let pair = options.remaining() >= 2;
        if pair && options.eat("count") {
            let n = options.next_i64()?;
            count = usize::try_from(n)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or(CmdError::Syntax)?;
        } else if pair && options.eat("match") {
            pattern = Some(options.next_bytes()?).filter(|p| *p != b"*");
        } else if options.eat("novalues") {
            no_values = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    // The batch's length is known only at the end: write it aside, then after its header.
    let mut batch = Vec::new();
    let mut items = 0;
    let next = {
        let mut out = Reply::new(&mut batch, proto);
        hash.scan_with_ttl(cursor, count, |field, value, ttl| {
            let alive = ttl.is_none_or(|at| at > now);
            if alive && pattern.is_none_or(|p| glob_match(p, field, false)) {
                out.bulk(field);
                items += 1;
                if !no_values {
                    out.bulk(value);
                    items += 1;
                }
            }
        })
    };
    reply.array(2);
    reply.bulk(itoa_buf::Buffer::new().format(next as i64));
    reply.array(items);
    reply.raw(&batch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardis_resp::Protocol;
    use shardis_store::hash::HashLimits;
    use shardis_store::StrValue;

    /// One shard's store, driven command by command with a fake clock.
    use crate::testing::Harness as Shard;

    impl Shard {
        fn db(&mut self) -> &mut Db {
            &mut self.store.dbs[0]
        }

        fn encoding(&mut self, key: &str) -> &'static str {
            match self.db().get(key.as_bytes(), 0) {
                Some(e) => e.value.encoding(),
                None => "none",
            }
        }

        /// The invariant behind active expiry: exactly the hashes with field TTLs are indexed.
        fn check_index(&mut self) {
            let db = self.db();
            let keys: Vec<Vec<u8>> = db.keys(0).map(<[u8]>::to_vec).collect();
            let with_ttls = keys
                .iter()
                .filter(|k| match db.get(k, 0).map(|e| &e.value) {
                    Some(Value::Hash(h)) => h.next_expiry().is_some(),
                    _ => false,
                })
                .count();
            assert_eq!(db.field_expiry_len(), with_ttls);
        }
    }

    fn ints(values: &[i64]) -> String {
        let mut s = format!("*{}\r\n", values.len());
        for v in values {
            s.push_str(&format!(":{v}\r\n"));
        }
        s
    }

    const T: u64 = 1_700_000_000_000;

    #[test]
    fn set_get_and_delete_fields() {
        let mut s = Shard::new();
        assert_eq!(s.at(T, "HSET h a 1 b 2"), ":2\r\n");
        assert_eq!(s.at(T, "HSET h a 3 c 4"), ":1\r\n");
        assert_eq!(s.at(T, "HMSET h d 5"), "+OK\r\n");
        assert_eq!(
            s.at(T, "HSET h a"),
            "-ERR wrong number of arguments for 'hset' command\r\n"
        );
        assert_eq!(
            s.at(T, "HMSET h a 1 b"),
            "-ERR wrong number of arguments for 'hmset' command\r\n"
        );
        assert_eq!(s.at(T, "HSETNX h a 9"), ":0\r\n");
        assert_eq!(s.at(T, "HSETNX h e 9"), ":1\r\n");
        assert_eq!(s.at(T, "HGET h a"), "$1\r\n3\r\n");
        assert_eq!(s.at(T, "HGET h zz"), "$-1\r\n");
        assert_eq!(
            s.at(T, "HMGET h a zz c"),
            "*3\r\n$1\r\n3\r\n$-1\r\n$1\r\n4\r\n"
        );
        assert_eq!(s.at(T, "HMGET nokey a b"), "*2\r\n$-1\r\n$-1\r\n");
        assert_eq!(s.at(T, "HLEN h"), ":5\r\n");
        assert_eq!(s.at(T, "HSTRLEN h e"), ":1\r\n");
        assert_eq!(s.at(T, "HSTRLEN h zz"), ":0\r\n");
        assert_eq!(s.at(T, "HEXISTS h e"), ":1\r\n");
        assert_eq!(s.at(T, "HDEL h a zz c"), ":2\r\n");
        assert_eq!(
            s.at(T, "HKEYS h"),
            "*3\r\n$1\r\nb\r\n$1\r\nd\r\n$1\r\ne\r\n"
        );
        assert_eq!(
            s.at(T, "HVALS h"),
            "*3\r\n$1\r\n2\r\n$1\r\n5\r\n$1\r\n9\r\n"
        );
        assert_eq!(s.at(T, "HDEL h b d e"), ":3\r\n");
        assert!(s.db().is_empty(), "a hash without fields is no key");
        assert_eq!(s.at(T, "HGETALL h"), "*0\r\n");
        s.proto = Protocol::Resp3;
        assert_eq!(s.at(T, "HGETALL h"), "%0\r\n");
        s.at(T, "HSET h f v");
        assert_eq!(s.at(T, "HGETALL h"), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    }

    #[test]
    fn every_command_refuses_other_types() {
        let mut s = Shard::new();
        s.db()
            .set(b"str", Value::Str(StrValue::from_bytes(b"x")), None);
        for cmd in [
            "HSET str a 1",
            "HSETNX str a 1",
            "HMSET str a 1",
            "HGET str a",
            "HMGET str a",
            "HGETALL str",
            "HKEYS str",
            "HVALS str",
            "HLEN str",
            "HEXISTS str a",
            "HDEL str a",
            "HSTRLEN str a",
            "HINCRBY str a 1",
            "HINCRBYFLOAT str a 1",
            "HRANDFIELD str",
            "HRANDFIELD str 2",
            "HSCAN str 0",
            "HEXPIRE str 10 FIELDS 1 a",
            "HPEXPIREAT str 10 FIELDS 1 a",
            "HTTL str FIELDS 1 a",
            "HPERSIST str FIELDS 1 a",
            "HGETEX str FIELDS 1 a",
            "HSETEX str FIELDS 1 a b",
            "HGETDEL str FIELDS 1 a",
            // The type is checked before the rest of the arguments...
            "HEXPIRE str 10 FIELDS 5 a",
            "HTTL str NOFIELDS 1 a",
            "HGETDEL str FIELDS 0 a",
            "HGETEX str EX -1 FIELDS 1 a",
        ] {
            assert_eq!(
                s.at(T, cmd),
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                "{cmd}"
            );
        }
        // ... except by HSETEX and the increments, which read their arguments first.
        assert_eq!(
            s.at(T, "HSETEX str BOGUS FIELDS 1 a b"),
            "-ERR unknown argument: BOGUS\r\n"
        );
        assert_eq!(
            s.at(T, "HINCRBY str a x"),
            "-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn increments() {
        let mut s = Shard::new();
        assert_eq!(s.at(T, "HINCRBY h n 5"), ":5\r\n");
        assert_eq!(s.at(T, "HINCRBY h n -7"), ":-2\r\n");
        s.at(T, "HSET h big 9223372036854775807 text abc float 1.5");
        assert_eq!(
            s.at(T, "HINCRBY h big 1"),
            "-ERR increment or decrement would overflow\r\n"
        );
        assert_eq!(
            s.at(T, "HINCRBY h text 1"),
            "-ERR hash value is not an integer\r\n"
        );
        assert_eq!(
            s.at(T, "HINCRBY h float 1"),
            "-ERR hash value is not an integer\r\n"
        );
        assert_eq!(
            s.at(T, "HINCRBYFLOAT h g 1999.98"),
            "$22\r\n1999.97999999999999998\r\n"
        );
        s.at(T, "HSET h f 1999.98");
        assert_eq!(
            s.at(T, "HINCRBYFLOAT h f -99.99"),
            "$22\r\n1899.98999999999999999\r\n"
        );
        assert_eq!(s.at(T, "HINCRBYFLOAT h n 0.5"), "$4\r\n-1.5\r\n");
        assert_eq!(
            s.at(T, "HINCRBYFLOAT h text 1"),
            "-ERR hash value is not a float\r\n"
        );
        assert_eq!(
            s.at(T, "HINCRBYFLOAT h n inf"),
            "-ERR value is NaN or Infinity\r\n"
        );
        assert_eq!(
            s.at(T, "HINCRBYFLOAT h n nan"),
            "-ERR value is not a valid float\r\n"
        );
        s.at(T, "HSET h inf inf");
        assert_eq!(
            s.at(T, "HINCRBYFLOAT h inf 1"),
            "-ERR increment would produce NaN or Infinity\r\n"
        );
        // Errors create nothing.
        assert_eq!(
            s.at(T, "HINCRBY fresh n x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            s.at(T, "HINCRBYFLOAT fresh n x"),
            "-ERR value is not a valid float\r\n"
        );
        assert_eq!(s.db().len(), 1);
    }

    #[test]
    fn field_expiry_is_exact_and_empties_the_key() {
        let mut s = Shard::new();
        s.at(T, "HSET h a 1 b 2");
        let at = T + 1000;
        assert_eq!(
            s.at(T, &format!("HPEXPIREAT h {at} FIELDS 2 a zz")),
            ints(&[1, -2])
        );
        assert_eq!(s.encoding("h"), "listpackex");
        assert_eq!(s.at(T, "HPTTL h FIELDS 3 a b zz"), ints(&[1000, -1, -2]));
        assert_eq!(s.at(T + 1, "HTTL h FIELDS 1 a"), ints(&[1]));
        assert_eq!(s.at(T, "HPEXPIRETIME h FIELDS 1 a"), ints(&[at as i64]));
        assert_eq!(
            s.at(T, "HEXPIRETIME h FIELDS 1 a"),
            ints(&[at.div_ceil(1000) as i64])
        );
        s.check_index();
        // Alive during the millisecond before, gone from the one it expires at.
        assert_eq!(s.at(at - 1, "HGET h a"), "$1\r\n1\r\n");
        assert_eq!(s.at(at, "HGET h a"), "$-1\r\n");
        assert_eq!(s.at(at, "HLEN h"), ":1\r\n");
        s.check_index();
        assert_eq!(
            s.at(at, &format!("HPEXPIREAT h {at} FIELDS 1 b")),
            ints(&[2])
        );
        assert!(s.db().is_empty());
        assert_eq!(s.at(at, "HTTL h FIELDS 1 b"), ints(&[-2]));
        assert_eq!(s.at(at, "HPERSIST h FIELDS 1 b"), ints(&[-2]));
        assert_eq!(s.at(at, "HEXPIRE h 10 FIELDS 2 b c"), ints(&[-2, -2]));
        s.check_index();
    }

    #[test]
    fn expire_conditions() {
        let mut s = Shard::new();
        s.at(T, "HSET h plain 1 timed 2");
        s.at(T, "HEXPIRE h 100 FIELDS 1 timed");
        let cases = [
            ("NX", [1, 0]),
            ("XX", [0, 1]),
            ("GT", [0, 1]),
            ("LT", [1, 0]),
        ];
        for (cond, want) in cases {
            let mut s2 = Shard::new();
            s2.at(T, "HSET h plain 1 timed 2");
            s2.at(T, "HEXPIRE h 100 FIELDS 1 timed");
            // 200 s is later than the TTL; "no TTL" counts as never expiring.
            assert_eq!(
                s2.at(T, &format!("HEXPIRE h 200 {cond} FIELDS 2 plain timed")),
                ints(&want),
                "{cond}"
            );
            s2.check_index();
        }
        assert_eq!(s.at(T, "HEXPIRE h 50 LT FIELDS 1 timed"), ints(&[1]));
        assert_eq!(s.at(T, "HEXPIRE h 50 gt FIELDS 1 timed"), ints(&[0]));
        assert_eq!(s.at(T, "HPTTL h FIELDS 1 timed"), ints(&[50_000]));
        // A time that is not in the future deletes, but only if the condition holds.
        assert_eq!(
            s.at(T, "HEXPIRE h 0 NX FIELDS 2 timed plain"),
            ints(&[0, 2])
        );
        assert_eq!(
            s.at(T, "HEXPIREAT h 1 FIELDS 2 timed timed"),
            ints(&[2, -2])
        );
        assert!(s.db().is_empty());
        s.check_index();
    }

    #[test]
    fn set_clears_ttl_and_increments_keep_it() {
        let mut s = Shard::new();
        s.at(T, "HSET h a 1 b 2 c 3");
        s.at(T, "HEXPIRE h 100 FIELDS 3 a b c");
        s.at(T, "HSET h a 5");
        s.at(T, "HMSET h c 5");
        s.at(T, "HINCRBY h b 1");
        assert_eq!(s.at(T, "HTTL h FIELDS 3 a b c"), ints(&[-1, 100, -1]));
        s.at(T, "HINCRBYFLOAT h b 1.5");
        assert_eq!(s.at(T, "HTTL h FIELDS 1 b"), ints(&[100]));
        assert_eq!(s.at(T, "HSETNX h b 1"), ":0\r\n");
        assert_eq!(s.at(T, "HTTL h FIELDS 1 b"), ints(&[100]));
        // An expired field counts as missing for HSETNX and the increments.
        assert_eq!(s.at(T + 100_000, "HSETNX h b x"), ":1\r\n");
        assert_eq!(s.at(T + 100_000, "HTTL h FIELDS 1 b"), ints(&[-1]));
        s.at(T, "HPEXPIRE h 10 FIELDS 1 b");
        assert_eq!(s.at(T + 10, "HINCRBY h b 7"), ":7\r\n");
        s.check_index();
    }

    #[test]
    fn persist() {
        let mut s = Shard::new();
        s.at(T, "HSET h a 1 b 2");
        // A plain listpack answers without converting.
        assert_eq!(s.at(T, "HPERSIST h FIELDS 2 a zz"), ints(&[-1, -2]));
        assert_eq!(s.encoding("h"), "listpack");
        s.at(T, "HPEXPIRE h 500 FIELDS 1 a");
        assert_eq!(s.at(T, "HPERSIST h FIELDS 3 a a b"), ints(&[1, -1, -1]));
        assert_eq!(s.at(T + 10_000, "HGET h a"), "$1\r\n1\r\n");
        s.check_index();
        assert_eq!(s.db().field_expiry_len(), 0);
    }

    #[test]
    fn numfields_and_expire_time_errors() {
        let mut s = Shard::new();
        s.at(T, "HSET h a 1");
        let missing = "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n";
        let positive = "-ERR Number of fields must be a positive integer\r\n";
        let greater = "-ERR Parameter `numFields` should be greater than 0\r\n";
        let mismatch = "-ERR The `numfields` parameter must match the number of arguments\r\n";
        assert_eq!(s.at(T, "HEXPIRE h 10 NX 1 a b"), missing);
        assert_eq!(s.at(T, "HEXPIRE h 10 XX FIELDS 0 a"), greater);
        assert_eq!(s.at(T, "HEXPIRE h 10 FIELDS 2 a"), mismatch);
        assert_eq!(s.at(T, "HEXPIRE h 10 FIELDS 1 a b"), mismatch);
        assert_eq!(s.at(T, "HEXPIRE h 10 BOGUS FIELDS 1 a"), missing);
        assert_eq!(
            s.at(T, "HEXPIRE h -1 FIELDS 1 a"),
            "-ERR invalid expire time, must be >= 0\r\n"
        );
        assert_eq!(
            s.at(T, "HEXPIRE h x FIELDS 1 a"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            s.at(T, "HEXPIRE h 70368744177 FIELDS 1 a"),
            "-ERR invalid expire time in 'hexpire' command\r\n"
        );
        assert_eq!(
            s.at(T, "HPEXPIREAT h 70368744177664 FIELDS 1 a"),
            "-ERR invalid expire time in 'hpexpireat' command\r\n"
        );
        assert_eq!(
            s.at(T, "HPEXPIREAT h 70368744177663 FIELDS 1 a"),
            ints(&[1])
        );
        assert_eq!(s.at(T, "HTTL h FIELDS -1 a"), positive);
        assert_eq!(s.at(T, "HTTL h FIELDS x a"), positive);
        assert_eq!(s.at(T, "HTTL h FIELD 1 a"), missing);
        assert_eq!(s.at(T, "HPERSIST h FIELDS 2 a"), mismatch);
        assert_eq!(s.at(T, "HGETDEL h FIELDS 0 a"), positive);
        assert_eq!(s.at(T, "HGETEX h EX 10 1 a"), missing);
        assert_eq!(s.at(T, "HGETEX h PERSIST FIELDS 2 a"), mismatch);
        assert_eq!(
            s.at(T, "HGETEX h EX -5 FIELDS 1 a"),
            "-ERR invalid expire time, must be >= 0\r\n"
        );
        // None of that changed anything.
        assert_eq!(
            s.at(T, "HPTTL h FIELDS 1 a"),
            ints(&[70368744177663 - T as i64])
        );
        // Missing keys still check every argument.
        assert_eq!(s.at(T, "HTTL nokey FIELDS 2 a"), mismatch);
        assert_eq!(s.at(T, "HTTL nokey FIELDS 2 a b"), ints(&[-2, -2]));
    }

    #[test]
    fn hsetex_options() {
        let mut s = Shard::new();
        assert_eq!(s.at(T, "HSETEX h FXX FIELDS 1 a 1"), ":0\r\n");
        assert!(s.db().is_empty());
        assert_eq!(s.at(T, "HSETEX h FNX EX 100 FIELDS 2 a 1 b 2"), ":1\r\n");
        assert_eq!(s.encoding("h"), "listpackex");
        assert_eq!(s.at(T, "HTTL h FIELDS 2 a b"), ints(&[100, 100]));
        assert_eq!(s.at(T, "HSETEX h FNX FIELDS 2 a 1 c 3"), ":0\r\n");
        assert_eq!(s.at(T, "HSETEX h FXX FIELDS 2 a 1 c 3"), ":0\r\n");
        assert_eq!(s.at(T, "HSETEX h FXX KEEPTTL FIELDS 1 a x"), ":1\r\n");
        assert_eq!(s.at(T, "HSETEX h FIELDS 1 b y"), ":1\r\n");
        assert_eq!(s.at(T, "HTTL h FIELDS 2 a b"), ints(&[100, -1]));
        assert_eq!(s.at(T, "HMGET h a b"), "*2\r\n$1\r\nx\r\n$1\r\ny\r\n");
        let at = T + 5;
        assert_eq!(
            s.at(T, &format!("HSETEX h PXAT {at} FIELDS 1 b z")),
            ":1\r\n"
        );
        assert_eq!(s.at(at, "HGET h b"), "$-1\r\n");
        // A time not in the future: the fields are written and deleted at once.
        assert_eq!(s.at(T, "HSETEX h PX 0 FIELDS 1 a q"), ":1\r\n");
        assert!(s.db().is_empty());
        assert_eq!(s.at(T, "HSETEX h2 EXAT 1 FIELDS 1 a q"), ":1\r\n");
        assert!(s.db().is_empty());
        for (cmd, err) in [
            (
                "HSETEX h EX 10 PX 10 FIELDS 1 a b",
                "Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified",
            ),
            (
                "HSETEX h KEEPTTL KEEPTTL FIELDS 1 a b",
                "Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified",
            ),
            (
                "HSETEX h FNX FXX FIELDS 1 a b",
                "Only one of FXX or FNX arguments can be specified",
            ),
            (
                "HSETEX h FIELDS 2 a b",
                "wrong number of arguments for 'hsetex' command",
            ),
            (
                "HSETEX h FIELDS 1 a b c",
                "wrong number of arguments for 'hsetex' command",
            ),
            ("HSETEX h FIELDS 0 a b", "invalid number of fields"),
            ("HSETEX h FIELDS 2147483648 a b", "invalid number of fields"),
            (
                "HSETEX h EX -1 FIELDS 1 a b",
                "invalid expire time, must be >= 0",
            ),
            (
                "HSETEX h EX 70368744177664 FIELDS 1 a b",
                "invalid expire time in 'hsetex' command",
            ),
            ("HSETEX h a b c d", "unknown argument: a"),
        ] {
            assert_eq!(s.at(T, cmd), format!("-ERR {err}\r\n"), "{cmd}");
        }
        assert!(s.db().is_empty());
        s.check_index();
    }

    #[test]
    fn hgetex_and_hgetdel() {
        let mut s = Shard::new();
        s.at(T, "HSET h a 1 b 2 c 3");
        assert_eq!(s.at(T, "HGETEX h FIELDS 1 a"), "*1\r\n$1\r\n1\r\n");
        assert_eq!(s.encoding("h"), "listpack");
        assert_eq!(
            s.at(T, "HGETEX h PX 300 FIELDS 2 a zz"),
            "*2\r\n$1\r\n1\r\n$-1\r\n"
        );
        assert_eq!(s.at(T, "HPTTL h FIELDS 2 a b"), ints(&[300, -1]));
        assert_eq!(s.at(T, "HGETEX h PERSIST FIELDS 1 a"), "*1\r\n$1\r\n1\r\n");
        assert_eq!(s.at(T, "HPTTL h FIELDS 1 a"), ints(&[-1]));
        // EX 0: read, then deleted.
        assert_eq!(
            s.at(T, "HGETEX h EX 0 FIELDS 2 a a"),
            "*2\r\n$1\r\n1\r\n$-1\r\n"
        );
        assert_eq!(
            s.at(T, "HGETDEL h FIELDS 3 b b zz"),
            "*3\r\n$1\r\n2\r\n$-1\r\n$-1\r\n"
        );
        assert_eq!(s.at(T, "HGETDEL h FIELDS 1 c"), "*1\r\n$1\r\n3\r\n");
        assert!(s.db().is_empty());
        assert_eq!(s.at(T, "HGETDEL h FIELDS 1 c"), "*1\r\n$-1\r\n");
        assert_eq!(s.at(T, "HGETEX h EX 10 FIELDS 1 c"), "*1\r\n$-1\r\n");
        assert!(s.db().is_empty());
        s.check_index();
    }

    #[test]
    fn encodings_follow_the_limits() {
        let mut s = Shard::new();
        s.settings.hash_limits = HashLimits {
            max_listpack_entries: 4,
            max_listpack_value: 8,
        };
        s.at(T, "HSET small a 1 b 2");
        assert_eq!(s.encoding("small"), "listpack");
        s.at(T, "HSET long a 123456789");
        assert_eq!(s.encoding("long"), "hashtable");
        s.at(T, "HSET many a 1 b 2 c 3 d 4");
        assert_eq!(s.encoding("many"), "listpack");
        s.at(T, "HSET many e 5");
        assert_eq!(s.encoding("many"), "hashtable");
        // Like Redis, five pairs in one command convert even if they name one field.
        s.at(T, "HSET dup a 1 a 2 a 3 a 4 a 5");
        assert_eq!(s.encoding("dup"), "hashtable");
        // Field TTLs keep small hashes compact.
        s.at(T, "HSETEX ttl EX 100 FIELDS 2 a 1 b 2");
        assert_eq!(s.encoding("ttl"), "listpackex");
        // The HEXPIRE family marks a compact hash even when no field matched.
        s.at(T, "HEXPIRE small 100 FIELDS 1 nosuch");
        assert_eq!(s.encoding("small"), "listpackex");
        s.at(T, "HEXPIRE many 100 FIELDS 1 a");
        assert_eq!(s.at(T, "HTTL many FIELDS 1 a"), ints(&[100]));
        s.check_index();
    }

    #[test]
    fn random_fields() {
        let mut s = Shard::new();
        assert_eq!(s.at(T, "HRANDFIELD h"), "$-1\r\n");
        assert_eq!(s.at(T, "HRANDFIELD h 3"), "*0\r\n");
        s.at(T, "HSET h a 1 b 2 c 3");
        assert!(["$1\r\na\r\n", "$1\r\nb\r\n", "$1\r\nc\r\n"]
            .contains(&s.at(T, "HRANDFIELD h").as_str()));
        assert_eq!(s.at(T, "HRANDFIELD h 0"), "*0\r\n");
        assert_eq!(s.at(T, "HRANDFIELD h 5").matches("\r\n$1\r\n").count(), 3);
        let two = s.at(T, "HRANDFIELD h 2 WITHVALUES");
        assert!(two.starts_with("*4\r\n"), "{two}");
        let picks = s.at(T, "HRANDFIELD h -10");
        assert!(picks.starts_with("*10\r\n"), "{picks}");
        s.proto = Protocol::Resp3;
        let pairs = s.at(T, "HRANDFIELD h -3 WITHVALUES");
        assert!(pairs.starts_with("*3\r\n*2\r\n$1\r\n"), "{pairs}");
        assert_eq!(
            s.at(T, "HRANDFIELD h -9223372036854775808"),
            "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"
        );
        assert_eq!(
            s.at(T, "HRANDFIELD h -4611686018427387904 WITHVALUES"),
            "-ERR value is out of range\r\n"
        );
        assert_eq!(s.at(T, "HRANDFIELD h 1 WITHVALUE"), "-ERR syntax error\r\n");
        // Distinct picks from a big table, both ways of sampling.
        let mut fields = String::from("HSET big");
        for i in 0..1000 {
            fields.push_str(&format!(" f{i} v{i}"));
        }
        s.at(T, &fields);
        for n in [10, 900] {
            let reply = s.at(T, &format!("HRANDFIELD big {n}"));
            let mut got: Vec<&str> = reply.split("\r\n").filter(|l| l.starts_with('f')).collect();
            got.sort();
            got.dedup();
            assert_eq!(got.len(), n);
        }
    }

    #[test]
    fn scan_matches_and_skips_values() {
        let mut s = Shard::new();
        assert_eq!(s.at(T, "HSCAN nokey 0 COUNT 0"), "*2\r\n$1\r\n0\r\n*0\r\n");
        s.at(T, "HSET h ab 1 ac 2 b 3");
        assert_eq!(
            s.at(T, "HSCAN h 0 MATCH a* NOVALUES"),
            "*2\r\n$1\r\n0\r\n*2\r\n$2\r\nab\r\n$2\r\nac\r\n"
        );
        assert_eq!(
            s.at(T, "HSCAN h 0 MATCH b"),
            "*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\n3\r\n"
        );
        assert_eq!(s.at(T, "HSCAN h -1"), "-ERR invalid cursor\r\n");
        assert_eq!(s.at(T, "HSCAN h x"), "-ERR invalid cursor\r\n");
        assert_eq!(s.at(T, "HSCAN h 0 COUNT 0"), "-ERR syntax error\r\n");
        assert_eq!(s.at(T, "HSCAN h 0 COUNT"), "-ERR syntax error\r\n");
        assert_eq!(
            s.at(T, "HSCAN h 0 COUNT x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        let mut big = String::from("HSET big");
        for i in 0..2000 {
            big.push_str(&format!(" f{i} v"));
        }
        s.at(T, &big);
        s.at(T, "HPEXPIRE big 10 FIELDS 3 f1 f2 f3");
        let mut seen = std::collections::BTreeSet::new();
        let mut cursor = "0".to_owned();
        loop {
            let reply = s.at(T + 10, &format!("HSCAN big {cursor} COUNT 100 NOVALUES"));
            let lines: Vec<&str> = reply.split("\r\n").collect();
            cursor = lines[2].to_owned();
            seen.extend(
                lines
                    .iter()
                    .filter(|l| l.starts_with('f'))
                    .map(|l| l.to_string()),
            );
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), 1997);
        assert!(!seen.contains("f1"));
    }

    #[test]
    fn active_expiry_is_bounded_and_removes_the_key() {
        let mut s = Shard::new();
        let mut cmd = String::from("HSET big");
        for i in 0..20_000 {
            cmd.push_str(&format!(" f{i} v"));
        }
        s.at(T, &cmd);
        s.at(T, "HSET small a 1 b 2");
        s.at(T, "HSET keep a 1");
        cmd = String::from("HPEXPIRE big 100 FIELDS 20000");
        for i in 0..20_000 {
            cmd.push_str(&format!(" f{i}"));
        }
        s.at(T, &cmd);
        s.at(T, "HPEXPIRE small 50 FIELDS 2 a b");
        s.at(T, "HPEXPIRE keep 100000 FIELDS 1 a");
        assert_eq!(s.db().field_expiry_len(), 3);
        assert_eq!(s.store.active_expire(T + 49, 1000), 0);
        assert_eq!(s.store.active_expire(T + 50, 1000), 2);
        assert_eq!(s.db().len(), 2);
        let mut rounds = 0;
        loop {
            let done = s.store.active_expire(T + 100, 1000);
            assert!(done <= 1000);
            if done == 0 {
                break;
            }
            rounds += 1;
        }
        assert_eq!(rounds, 20);
        assert_eq!(s.db().len(), 1);
        assert_eq!(s.at(T + 100, "HPTTL keep FIELDS 1 a"), ints(&[99_900]));
        s.check_index();
    }

    /// xorshift for the randomized test.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn random_commands_keep_the_expiry_index_exact() {
        let mut s = Shard::new();
        s.settings.hash_limits = HashLimits {
            max_listpack_entries: 6,
            max_listpack_value: 64,
        };
        let mut rng = 0x1234_5678_9abc_def1u64;
        let mut now = T;
        for step in 0..20_000 {
            let key = format!("k{}", next(&mut rng) % 4);
            let f = |r: &mut u64| format!("f{}", next(r) % 10);
            let (f1, f2) = (f(&mut rng), f(&mut rng));
            let ms = next(&mut rng) % 50;
            let cmd = match next(&mut rng) % 12 {
                0 => format!("HSET {key} {f1} v {f2} w"),
                1 => format!("HDEL {key} {f1}"),
                2 => format!("HPEXPIRE {key} {ms} FIELDS 2 {f1} {f2}"),
                3 => format!("HPEXPIRE {key} {ms} GT FIELDS 1 {f1}"),
                4 => format!("HPERSIST {key} FIELDS 1 {f1}"),
                5 => format!("HSETEX {key} PX {ms} FIELDS 1 {f1} x"),
                6 => format!("HGETEX {key} PX {ms} FIELDS 1 {f1}"),
                7 => format!("HGETDEL {key} FIELDS 1 {f1}"),
                8 => format!("HINCRBY {key} {f1} 1"),
                9 => format!("HGETALL {key}"),
                10 => format!("HSETEX {key} KEEPTTL FIELDS 1 {f1} y"),
                _ => {
                    now += next(&mut rng) % 20;
                    s.store.active_expire(now, (next(&mut rng) % 3) as usize);
                    continue;
                }
            };
            let reply = s.at(now, &cmd);
            assert!(
                !reply.starts_with("-ERR") || reply.contains("not an integer"),
                "{cmd}: {reply}"
            );
            s.check_index();
            if step % 500 == 0 {
                // Whatever active expiry has not reached yet is still invisible.
                for k in 0..4 {
                    let all = s.at(now, &format!("HGETALL k{k}"));
                    let len = s.at(now, &format!("HLEN k{k}"));
                    assert_eq!(
                        all.split("\r\n")
                            .next()
                            .map(|h| h[1..].parse::<usize>().unwrap() / 2),
                        len[1..len.len() - 2].parse().ok()
                    );
                }
            }
        }
        s.store.active_expire(u64::MAX - 1, usize::MAX);
        s.check_index();
    }
}
