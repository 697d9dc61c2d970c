//! Server commands that a shard can answer by itself. The server answers clients' `TIME`
//! itself (it needs no shard); scripts reach the same reply through the shard-side handler.

use std::time::{SystemTime, UNIX_EPOCH};

use shardis_resp::Reply;

use crate::{Args, CmdError, Ctx};

/// `TIME`: the system clock as two bulk strings, the seconds since the Unix epoch and the
/// microseconds within the second.
pub fn time_reply(reply: &mut Reply<'_>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    reply.array(2);
    reply.bulk(now.as_secs().to_string().as_bytes());
    reply.bulk(now.subsec_micros().to_string().as_bytes());
}

/// `TIME` from a script: the clock when it is called, not the batch's time, as Redis 7.0
/// answers it.
pub fn time(ctx: &mut Ctx<'_>, _args: Args<'_>) -> Result<(), CmdError> {
    time_reply(&mut ctx.reply);
    Ok(())
}
