//! String commands.

use shardis_store::value::itoa_buf;
use shardis_store::{StrValue, Value};

use crate::{Args, CmdError, Ctx};

/// `GET key`: the value, or nil.
pub fn get(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    match ctx
        .store
        .dbs
        .get(ctx.db)
        .and_then(|db| db.get(args.get(1), now))
    {
        None => ctx.reply.null(),
        Some(entry) => match &entry.value {
            Value::Str(StrValue::Int(n)) => ctx.reply.bulk_integer(*n),
            Value::Str(StrValue::Raw(bytes)) => ctx.reply.bulk(bytes),
            _ => return Err(CmdError::WrongType),
        },
    }
    Ok(())
}

/// When a `SET` should write.
#[derive(PartialEq)]
enum Condition {
    Always,
    /// `NX`: only if the key does not exist.
    Missing,
    /// `XX`: only if it does.
    Present,
}

/// What a `SET` does with the key's expiry.
#[derive(PartialEq)]
enum Expiry {
    /// Remove any expiry (the default).
    Clear,
    /// `KEEPTTL`.
    Keep,
    /// `EX`/`PX`/`EXAT`/`PXAT`: the argument (None if not an integer), its unit in
    /// milliseconds, and `absolute` for the `AT` forms.
    Set {
        value: Option<i64>,
        unit: i64,
        absolute: bool,
    },
}

/// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]`.
pub fn set(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, value) = (args.get(1), args.get(2));
    let mut condition = Condition::Always;
    let mut expiry = Expiry::Clear;
    let mut get = false;
    let mut cursor = args.cursor(3);
    // Options may come in any order and repeat; conflicting ones are a syntax error (Redis's
    // parseExtendedStringArgumentsOrReply).
    while !cursor.is_done() {
        let has_expiry = expiry != Expiry::Clear;
        if cursor.eat("nx") && condition != Condition::Present {
            condition = Condition::Missing;
        } else if cursor.eat("xx") && condition != Condition::Missing {
            condition = Condition::Present;
        } else if cursor.eat("get") {
            get = true;
        } else if cursor.eat("keepttl") && (!has_expiry || expiry == Expiry::Keep) {
            expiry = Expiry::Keep;
        } else {
            let (unit, absolute) = if cursor.eat("ex") {
                (1000, false)
            } else if cursor.eat("px") {
                (1, false)
            } else if cursor.eat("exat") {
                (1000, true)
            } else if cursor.eat("pxat") {
                (1, true)
            } else {
                return Err(CmdError::Syntax);
            };
            // The same unit may repeat (the last one wins); another unit is a conflict.
            if matches!(expiry, Expiry::Set { unit: u, absolute: a, .. } if u != unit || a != absolute)
                || expiry == Expiry::Keep
                || cursor.is_done()
            {
                return Err(CmdError::Syntax);
            }
            // The number is checked after all options, like Redis, so a syntax error wins.
            let value = shardis_resp::parse_i64(cursor.next_bytes()?);
            expiry = Expiry::Set {
                value,
                unit,
                absolute,
            };
        }
    }
    let expire_at = match expiry {
        Expiry::Set {
            value,
            unit,
            absolute,
        } => {
            let value = value.ok_or(CmdError::NotInteger)?;
            Some(expire_time(value, unit, absolute, ctx.now_ms, "set")?)
        }
        _ => None,
    };
    let now = ctx.now_ms;
    let db = ctx.db();
    let existing = db.get_mut(key, now);
    if get {
        if let Some(entry) = &existing {
            if !matches!(entry.value, Value::Str(_)) {
                return Err(CmdError::WrongType);
            }
        }
    }
    let old_ttl = existing.as_ref().and_then(|e| e.expire_at);
    let found = existing.is_some();
    if get {
        reply_value(ctx, key);
    }
    if (condition == Condition::Missing && found) || (condition == Condition::Present && !found) {
        if !get {
            ctx.reply.null();
        }
        return Ok(());
    }
    let expire_at = match expiry {
        Expiry::Keep => old_ttl,
        _ => expire_at,
    };
    let db = ctx.db();
    match expire_at {
        // An absolute time already past: the key is written and expires at once.
        Some(at) if at <= now => {
            db.remove(key, now);
        }
        _ => db.set(key, Value::Str(StrValue::from_bytes(value)), expire_at),
    }
    if !get {
        ctx.reply.ok();
    }
    Ok(())
}

/// Writes the string value of `key` (or nil) as `GET` would.
fn reply_value(ctx: &mut Ctx<'_>, key: &[u8]) {
    let now = ctx.now_ms;
    let mut scratch = itoa_buf::Buffer::new();
    match ctx.store.dbs.get(ctx.db).and_then(|db| db.get(key, now)) {
        Some(entry) => match &entry.value {
            Value::Str(s) => ctx.reply.bulk(s.as_bytes(&mut scratch)),
            // SET ... GET checked the type before calling this.
            _ => ctx.reply.null(),
        },
        None => ctx.reply.null(),
    }
}

/// Turns an `EX`/`PX`/`EXAT`/`PXAT` argument into an absolute time in milliseconds, with
/// Redis's checks: the value must be positive and must not overflow.
pub fn expire_time(
    value: i64,
    unit: i64,
    absolute: bool,
    now_ms: u64,
    command: &'static str,
) -> Result<u64, CmdError> {
    let invalid = CmdError::InvalidExpireTime(command);
    if value <= 0 {
        return Err(invalid);
    }
    let ms = value.checked_mul(unit).ok_or(invalid.clone())?;
    let at = if absolute {
        ms
    } else {
        ms.checked_add(now_ms as i64).ok_or(invalid)?
    };
    Ok(at as u64)
}
