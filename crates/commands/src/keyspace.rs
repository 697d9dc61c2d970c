//! Keyspace commands: `DEL`, `EXISTS`, `TYPE`, and the whole-database `DBSIZE` and `FLUSH*`.
//!
//! `DEL` and `EXISTS` may name keys on several shards; the router gives each shard only the keys
//! it owns and adds up the counts, so the functions here see just their own keys.

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

/// `EXISTS key [key ...]`: how many of the keys exist, a key named twice counting twice.
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

/// `DBSIZE`: this shard's part of the key count of the selected database.
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
