//! The command table and the shard-side half of every command.
//!
//! Each command is one row in [`table::COMMANDS`]: its name, arity (Redis's convention: a
//! negative arity means "at least"), flags, key positions and [`table::Route`]. The server
//! reads the row to check arity, to find the shard that owns the keys, and to answer `COMMAND`;
//! nothing about a command is written twice.
//!
//! The shard-side operations live in one file per family ([`string`], [`counter`], [`hash`],
//! [`keyspace`], [`expire`], [`list`], ...). They
//! are plain synchronous functions over a [`Ctx`]: the shard's [`Store`], the selected
//! database, the time, and a [`Reply`] writer. They return `Result<(), CmdError>`: on success
//! they have written their reply; on error [`execute`] discards anything partly written and
//! writes the one exact Redis error text that [`CmdError`] maps to.

pub mod args;
mod cjson;
pub mod counter;
pub mod error;
pub mod expire;
pub mod hash;
pub mod keyspace;
pub mod list;
mod lua_heap;
pub mod pattern;
pub mod scripting;
pub mod server;
pub mod slots;
pub mod string;
pub mod table;
#[cfg(test)]
mod testing;
pub mod throttle;

pub use args::{Args, Cursor};
pub use error::CmdError;
pub use table::{lookup, Command, ConnCommand, Merge, Route, TxCommand};

use shardis_resp::Reply;
use shardis_store::hash::HashLimits;
use shardis_store::{Db, Store};

/// Settings a shard-side command may read; a copy lives in every shard and changes only
/// through `CONFIG SET`, which updates every copy.
#[derive(Clone, Debug)]
pub struct Settings {
    /// When a compact hash becomes a hash table (`hash-max-listpack-entries` / `-value`).
    pub hash_limits: HashLimits,
    /// How long a script runs before the shard answers other clients `BUSY` and `SCRIPT
    /// KILL` can stop it (`busy-reply-threshold`).
    pub busy_reply_threshold: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            hash_limits: HashLimits::default(),
            busy_reply_threshold: std::time::Duration::from_millis(5000),
        }
    }
}

/// Everything a shard-side command works with.
pub struct Ctx<'a> {
    /// The shard's keyspace.
    pub store: &'a mut Store,
    /// Index of the selected database (always valid: `SELECT` checks it).
    pub db: usize,
    /// The time of the batch, in milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// Where the reply goes.
    pub reply: Reply<'a>,
    /// Settings that shape how commands store data.
    pub settings: &'a Settings,
    /// The index of the shard running the command.
    pub shard: usize,
    /// How many shards there are.
    pub shards: usize,
}

impl<'a> Ctx<'a> {
    /// The selected database.
    pub fn db(&mut self) -> &mut Db {
        let index = self.db.min(self.store.dbs.len().saturating_sub(1));
        &mut self.store.dbs[index]
    }

    /// The selected database and the reply writer at once, for commands that write their reply
    /// while they still hold entries of the keyspace.
    pub fn db_and_reply(&mut self) -> (&mut Db, &mut Reply<'a>) {
        let index = self.db.min(self.store.dbs.len().saturating_sub(1));
        (&mut self.store.dbs[index], &mut self.reply)
    }
}

/// The signature of every shard-side operation.
pub type Handler = fn(&mut Ctx<'_>, Args<'_>) -> Result<(), CmdError>;

/// Runs `handler` and writes its reply or its error; an error leaves no partial reply behind.
pub fn execute(handler: Handler, ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mark = ctx.reply.len();
    if let Err(err) = handler(ctx, args) {
        ctx.reply.truncate(mark);
        ctx.reply.error(&err.to_string());
    }
}
