//! Native rate limiting: `CL.THROTTLE`, the command of the redis-cell module.
//!
//! `CL.THROTTLE key max_burst count_per_period period [quantity]` applies `quantity` actions
//! (default 1) to the limit stored at `key` with the generic cell rate algorithm (GCRA): actions
//! are allowed at `count_per_period / period` (seconds) on average, with bursts of up to
//! `max_burst + 1`. The key holds one integer, the *theoretical arrival time* (TAT) in
//! nanoseconds since the epoch, and expires when the limit has fully recovered, so an idle
//! limiter costs nothing. It answers redis-cell's array: limited (0 or 1), the limit, the
//! remaining actions, seconds until a retry may succeed (-1 when allowed) and seconds until the
//! limit is fully reset. One command, one round trip, run on the key's shard: the fastest way
//! to rate-limit with Shardis.

use shardis_store::{StrValue, Value};

use crate::{Args, CmdError, Ctx};

const NANOS_PER_MS: i128 = 1_000_000;
const NANOS_PER_SEC: i128 = 1_000_000_000;

/// The parameters of one limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Quota {
    max_burst: i64,
    count: i64,
    period: i64,
}

/// What one `CL.THROTTLE` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Outcome {
    limited: bool,
    limit: i64,
    remaining: i64,
    /// Nanoseconds until a retry may succeed; `None` when allowed or never possible.
    retry_after: Option<i128>,
    reset_after: i128,
    /// The TAT to store, when the actions were allowed.
    new_tat: Option<i128>,
}

/// GCRA at `now` (ns) with the stored `tat` (ns), for `quantity` actions.
fn gcra(quota: Quota, tat: Option<i128>, now: i128, quantity: i64) -> Outcome {
    let emission = i128::from(quota.period) * NANOS_PER_SEC / i128::from(quota.count);
    let tolerance = emission * (i128::from(quota.max_burst) + 1);
    let increment = emission * i128::from(quantity);
    let tat = tat.unwrap_or(now);
    let new_tat = tat.max(now) + increment;
    let diff = now - (new_tat - tolerance);
    let (limited, ttl, retry_after, stored) = if diff < 0 {
        // A request bigger than the whole burst can never succeed: no retry time.
        let retry = (increment <= tolerance).then_some(-diff);
        (true, tat - now, retry, None)
    } else {
        (false, new_tat - now, None, Some(new_tat))
    };
    let next = tolerance - ttl;
    let remaining = if next > -emission {
        (next / emission) as i64
    } else {
        0
    };
    Outcome {
        limited,
        limit: quota.max_burst.saturating_add(1),
        remaining,
        retry_after,
        reset_after: ttl,
        new_tat: stored,
    }
}

/// `CL.THROTTLE key max_burst count_per_period period [quantity]`
pub fn throttle(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    if args.len() > 6 {
        return Err(CmdError::WrongArity("cl.throttle".to_owned()));
    }
    let mut cursor = args.cursor(2);
    let quota = Quota {
        max_burst: cursor.next_i64()?,
        count: cursor.next_i64()?,
        period: cursor.next_i64()?,
    };
    let quantity = if cursor.is_done() {
        1
    } else {
        cursor.next_i64()?
    };
    // Bounds that keep the nanosecond arithmetic far from overflow.
    const MAX: i64 = 1 << 40;
    if !(0..MAX).contains(&quota.max_burst)
        || !(1..MAX).contains(&quota.count)
        || !(1..MAX).contains(&quota.period)
        || !(0..MAX).contains(&quantity)
    {
        return Err(CmdError::OutOfRange);
    }
    let now = ctx.now_ms;
    let key = args.get(1);
    let tat = match ctx.db().get(key, now).map(|e| &e.value) {
        None => None,
        Some(Value::Str(StrValue::Int(n))) => Some(i128::from(*n)),
        Some(Value::Str(StrValue::Raw(_))) => return Err(CmdError::NotInteger),
        Some(_) => return Err(CmdError::WrongType),
    };
    let outcome = gcra(quota, tat, i128::from(now) * NANOS_PER_MS, quantity);
    if let Some(new_tat) = outcome.new_tat {
        // Expire once fully recovered, rounding up to the next millisecond.
        let expire_at = (new_tat + NANOS_PER_MS - 1) / NANOS_PER_MS;
        let stored = i64::try_from(new_tat).map_err(|_| CmdError::OutOfRange)?;
        let expire_at = u64::try_from(expire_at).map_err(|_| CmdError::OutOfRange)?;
        ctx.db()
            .set(key, Value::Str(StrValue::Int(stored)), Some(expire_at));
    }
    let secs = |ns: i128| (ns / NANOS_PER_SEC) as i64;
    ctx.reply.array(5);
    ctx.reply.integer(i64::from(outcome.limited));
    ctx.reply.integer(outcome.limit);
    ctx.reply.integer(outcome.remaining);
    ctx.reply.integer(outcome.retry_after.map_or(-1, secs));
    ctx.reply.integer(secs(outcome.reset_after));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i128 = NANOS_PER_SEC;
    const MS: i128 = NANOS_PER_MS;

    /// redis-cell's own walk-through: 5 per second with bursts of 5, on a fake clock.
    #[test]
    fn follows_redis_cells_reference_cases() {
        let quota = Quota {
            max_burst: 4,
            count: 1,
            period: 1,
        };
        let start = 1_700_000_000 * SEC;
        let mut tat = None;
        // (offset ms, quantity, limited, remaining, reset_after ns, retry_after ns)
        type Case = (i128, i64, bool, i64, i128, Option<i128>);
        let cases: &[Case] = &[
            (0, 6, true, 5, 0, None),
            (0, 1, false, 4, SEC, None),
            (0, 1, false, 3, 2 * SEC, None),
            (0, 1, false, 2, 3 * SEC, None),
            (0, 1, false, 1, 4 * SEC, None),
            (0, 1, false, 0, 5 * SEC, None),
            (0, 1, true, 0, 5 * SEC, Some(SEC)),
            (3000, 1, false, 2, 3000 * MS, None),
            (3100, 1, false, 1, 3900 * MS, None),
            (4000, 1, false, 1, 4000 * MS, None),
            (8000, 1, false, 4, 1000 * MS, None),
            (9500, 1, false, 4, 1000 * MS, None),
            (9500, 0, false, 4, SEC, None),
            (9500, 2, false, 2, 3 * SEC, None),
            (9500, 5, true, 2, 3 * SEC, Some(3 * SEC)),
        ];
        for (i, &(offset, quantity, limited, remaining, reset, retry)) in cases.iter().enumerate() {
            let out = gcra(quota, tat, start + offset * MS, quantity);
            assert_eq!(out.limited, limited, "case {i}");
            assert_eq!(out.limit, 5, "case {i}");
            assert_eq!(out.remaining, remaining, "case {i}");
            assert_eq!(out.reset_after, reset, "case {i}");
            assert_eq!(out.retry_after, retry, "case {i}");
            if let Some(t) = out.new_tat {
                tat = Some(t);
            }
        }
    }

    #[test]
    fn readme_example_replies() {
        // CL.THROTTLE user123 15 30 60 on a new key.
        let quota = Quota {
            max_burst: 15,
            count: 30,
            period: 60,
        };
        let out = gcra(quota, None, 0, 1);
        assert!(!out.limited);
        assert_eq!((out.limit, out.remaining), (16, 15));
        assert_eq!(out.reset_after, 2 * SEC);
    }
}
