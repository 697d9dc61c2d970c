//! Key expiry: `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT` (with `NX | XX | GT | LT`), `TTL`,
//! `PTTL`, `EXPIRETIME`, `PEXPIRETIME` and `PERSIST`, plus the expire-time arithmetic that `SET`,
//! `GETEX` and `INCREX` share.
//!
//! Times are milliseconds since the Unix epoch throughout; a key is alive up to and including
//! the millisecond it expires at. Setting an expiry that is already due (`EXPIRE k 0`,
//! `EXPIREAT k 1`) deletes the key at once, as Redis 7 does.

use shardis_resp::parse_i64;

use crate::{Args, CmdError, Ctx};

/// Milliseconds in a second, the unit of `EX`, `EXAT`, `EXPIRE` and `EXPIREAT`.
pub const SECONDS: i64 = 1000;
/// The unit of `PX`, `PXAT`, `PEXPIRE` and `PEXPIREAT`.
pub const MILLISECONDS: i64 = 1;

/// Turns an `EX`/`PX`/`EXAT`/`PXAT` argument into an absolute time in milliseconds, with
/// Redis's checks: the number must be a positive integer and the result must not overflow.
pub fn expire_at_ms(
    arg: &[u8],
    unit: i64,
    absolute: bool,
    now_ms: u64,
    command: &'static str,
) -> Result<u64, CmdError> {
    let value = parse_i64(arg).ok_or(CmdError::NotInteger)?;
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

/// `EXPIRE key seconds [NX | XX | GT | LT]`.
pub fn expire(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, args, SECONDS, false, "expire")
}

/// `PEXPIRE key milliseconds [NX | XX | GT | LT]`.
pub fn pexpire(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, args, MILLISECONDS, false, "pexpire")
}

/// `EXPIREAT key unix-time-seconds [NX | XX | GT | LT]`.
pub fn expireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, args, SECONDS, true, "expireat")
}

/// `PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]`.
pub fn pexpireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, args, MILLISECONDS, true, "pexpireat")
}

/// The `NX | XX | GT | LT` options of the `EXPIRE` and `HEXPIRE` families: whether a new
/// expiry replaces the current one. No option: always.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpireIf {
    /// Only where there is no expiry yet.
    pub nx: bool,
    /// Only where there is one.
    pub xx: bool,
    /// Only a later time; no expiry counts as never expiring, so GT never applies to it.
    pub gt: bool,
    /// Only an earlier time; no expiry counts as never expiring, so LT always applies to it.
    pub lt: bool,
}

impl ExpireIf {
    /// True if an expiry at `when` may replace `current` (both in ms since the epoch).
    pub fn allows(self, current: Option<i64>, when: i64) -> bool {
        !(self.nx && current.is_some()
            || self.xx && current.is_none()
            || self.gt && current.is_none_or(|c| when <= c)
            || self.lt && current.is_some_and(|c| when >= c))
    }
}

/// The four `EXPIRE` commands: 1 if the expiry was set (or the key deleted because the time is
/// already due), 0 if the key does not exist or the condition did not hold. A key without an
/// expiry counts as expiring never: `GT` never applies to it, `LT` always does.
fn expire_generic(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    unit: i64,
    absolute: bool,
    command: &'static str,
) -> Result<(), CmdError> {
    // Redis checks the options before the time.
    let mut condition = ExpireIf::default();
    for option in args.iter().skip(3) {
        let flag = match option.to_ascii_lowercase().as_slice() {
            b"nx" => &mut condition.nx,
            b"xx" => &mut condition.xx,
            b"gt" => &mut condition.gt,
            b"lt" => &mut condition.lt,
            _ => {
                return Err(CmdError::UnsupportedOption(
                    String::from_utf8_lossy(option).into_owned(),
                ))
            }
        };
        *flag = true;
    }
    if condition.nx && (condition.xx || condition.gt || condition.lt) {
        return Err(CmdError::ExpireNxConflict);
    }
    if condition.gt && condition.lt {
        return Err(CmdError::ExpireGtLtConflict);
    }
    // Negative times are allowed (they delete the key); only overflow is an error.
    let invalid = CmdError::InvalidExpireTime(command);
    let when = parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
    let base = if absolute { 0 } else { ctx.now_ms as i64 };
    let when = when
        .checked_mul(unit)
        .and_then(|ms| ms.checked_add(base))
        .ok_or(invalid)?;

    let (key, now) = (args.get(1), ctx.now_ms);
    let db = ctx.db();
    let Some(entry) = db.get_mut(key, now) else {
        ctx.reply.integer(0);
        return Ok(());
    };
    let current = entry.expire_at().map(|at| at as i64);
    let applies = condition.allows(current, when);
    if applies {
        if when <= now as i64 {
            db.take(key);
        } else {
            db.set_expire_at(key, Some(when as u64));
        }
    }
    ctx.reply.integer(i64::from(applies));
    Ok(())
}

/// `TTL key`: seconds left (rounded), -1 without an expiry, -2 without the key.
pub fn ttl(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    reply_expiry(ctx, args, |at, now| {
        (at.saturating_sub(now) as i64 + 500) / 1000
    })
}

/// `PTTL key`: milliseconds left, -1 without an expiry, -2 without the key.
pub fn pttl(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    reply_expiry(ctx, args, |at, now| at.saturating_sub(now) as i64)
}

/// `EXPIRETIME key`: the expiry as a Unix time in seconds, -1 without one, -2 without the key.
pub fn expiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    reply_expiry(ctx, args, |at, _| at as i64 / 1000)
}

/// `PEXPIRETIME key`: the expiry as a Unix time in milliseconds.
pub fn pexpiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    reply_expiry(ctx, args, |at, _| at as i64)
}

/// Answers `shown(expire_at, now)` for a key with an expiry, -1 or -2 otherwise.
fn reply_expiry(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    shown: impl Fn(u64, u64) -> i64,
) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let answer = match ctx.db().get_mut(args.get(1), now) {
        None => -2,
        Some(entry) => entry.expire_at().map_or(-1, |at| shown(at, now)),
    };
    ctx.reply.integer(answer);
    Ok(())
}

/// `PERSIST key`: 1 if an expiry was removed.
pub fn persist(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let (key, now) = (args.get(1), ctx.now_ms);
    let db = ctx.db();
    let had = db
        .get_mut(key, now)
        .is_some_and(|entry| entry.expire_at().is_some());
    if had {
        db.set_expire_at(key, None);
    }
    ctx.reply.integer(i64::from(had));
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testing::Harness;

    #[test]
    fn expire_options_and_replies() {
        let mut h = Harness::new();
        h.run("SET k v");
        assert_eq!(
            h.run("EXPIRE k 100 GT"),
            ":0\r\n",
            "no TTL counts as infinite"
        );
        assert_eq!(h.run("EXPIRE k 100 XX"), ":0\r\n");
        assert_eq!(h.run("EXPIRE k 100 LT"), ":1\r\n");
        assert_eq!(h.run("TTL k"), ":100\r\n");
        assert_eq!(h.run("PEXPIRE k 50000 GT"), ":0\r\n");
        assert_eq!(h.run("PEXPIRE k 50000 LT"), ":1\r\n");
        assert_eq!(h.run("PTTL k"), ":50000\r\n");
        assert_eq!(h.run("EXPIRE k 10 NX"), ":0\r\n");
        assert_eq!(h.run("PEXPIRETIME k"), ":1050000\r\n");
        assert_eq!(h.run("EXPIRETIME k"), ":1050\r\n");
        assert_eq!(h.run("PERSIST k"), ":1\r\n");
        assert_eq!(h.run("PERSIST k"), ":0\r\n");
        assert_eq!(h.run("TTL k"), ":-1\r\n");
        assert_eq!(h.run("TTL nokey"), ":-2\r\n");
        assert_eq!(h.run("EXPIRE nokey 10"), ":0\r\n");
        assert_eq!(
            h.run("EXPIRE k 10 NX XX"),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
        );
        assert_eq!(
            h.run("EXPIRE k 10 GT LT"),
            "-ERR GT and LT options at the same time are not compatible\r\n"
        );
        assert_eq!(
            h.run("EXPIRE k x bogus"),
            "-ERR Unsupported option bogus\r\n"
        );
        assert_eq!(
            h.run("EXPIRE k 9223372036854775807"),
            "-ERR invalid expire time in 'expire' command\r\n"
        );
        assert_eq!(
            h.run("PEXPIRE k 9223372036854775807"),
            "-ERR invalid expire time in 'pexpire' command\r\n"
        );
        assert_eq!(
            h.run("EXPIRE k abc"),
            "-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn due_times_delete_the_key() {
        let mut h = Harness::new();
        for cmd in [
            "EXPIRE k 0",
            "EXPIRE k -5",
            "PEXPIREAT k 1",
            "EXPIREAT k 1000",
        ] {
            h.run("SET k v");
            assert_eq!(h.run(cmd), ":1\r\n", "{cmd}");
            assert_eq!(h.run("EXISTS k"), ":0\r\n", "{cmd}");
            assert_eq!(h.store.dbs[0].len(), 0, "{cmd} reclaims at once");
        }
        h.run("SET k v");
        assert_eq!(h.run("PEXPIRE k -5 XX"), ":0\r\n");
        assert_eq!(h.run("EXISTS k"), ":1\r\n");
    }

    #[test]
    fn ttl_is_exact_to_the_millisecond_and_rounds_seconds() {
        let mut h = Harness::new();
        h.run("SET k v PX 1499");
        assert_eq!(h.run("TTL k"), ":1\r\n");
        h.run("SET k v PX 1500");
        assert_eq!(h.run("TTL k"), ":2\r\n");
        h.now += 1500;
        assert_eq!(
            h.run("PTTL k"),
            ":0\r\n",
            "alive during its last millisecond"
        );
        h.now += 1;
        assert_eq!(h.run("PTTL k"), ":-2\r\n");
    }
}
