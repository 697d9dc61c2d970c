//! The command table: one declarative row per command.

use std::sync::LazyLock;

use crate::{counter, expire, hash, keyspace, list, scripting, string, throttle, Args, Handler};

/// Command flags, as `COMMAND INFO` names them.
pub mod flag {
    /// May modify the keyspace.
    pub const WRITE: u32 = 1 << 0;
    /// Only reads.
    pub const READONLY: u32 = 1 << 1;
    /// May grow memory use.
    pub const DENYOOM: u32 = 1 << 2;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 3;
    /// O(1) or O(log n) in practice.
    pub const FAST: u32 = 1 << 4;
    /// Allowed before `AUTH`.
    pub const NO_AUTH: u32 = 1 << 5;
    /// Allowed while loading.
    pub const LOADING: u32 = 1 << 6;
    /// Allowed on a stale replica.
    pub const STALE: u32 = 1 << 7;
    /// Not allowed in scripts.
    pub const NOSCRIPT: u32 = 1 << 8;
    /// Non-deterministic output.
    pub const RANDOM: u32 = 1 << 9;
    /// The keys are not at fixed positions: argument 2 counts them and they follow it (the
    /// `EVAL` family's `script numkeys key... arg...`).
    pub const MOVABLEKEYS: u32 = 1 << 10;

    /// Every flag with its Redis name, in the order Redis lists them.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (NOSCRIPT, "noscript"),
        (RANDOM, "random"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MOVABLEKEYS, "movablekeys"),
    ];
}

/// How a multi-shard command's per-shard replies combine into one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// Add up integer replies (`DEL`, `EXISTS`, `DBSIZE`).
    SumIntegers,
    /// Every part answers `+OK`; so does the whole (`FLUSHDB`).
    AllOk,
    /// Each part answers an array with one element per key it was given; the whole is one
    /// array in the original key order (`MGET`).
    ByKey,
    /// Each part answers an array; the whole is their concatenation (`KEYS`).
    Concat,
    /// Every shard answers alike (`SCRIPT LOAD`'s sha, `SCRIPT FLUSH`'s `+OK`) and the first
    /// answer stands, except that arrays of integers keep each element's minimum (`SCRIPT
    /// EXISTS` answers 1 only for a script that every shard has, so `EVALSHA` finds it from any
    /// connection).
    Same,
    /// Each part answers a value or nil; the whole is one of the values, chosen at random, or
    /// nil if all are (`RANDOMKEY`).
    AnyNonNull,
}

/// `SCAN`-style cursors carry the shard they continue on in these high bits; the low bits are
/// that shard's own cursor.
pub const CURSOR_SHARD_SHIFT: u32 = 48;

/// Commands that run on the connection's home shard because they act on the connection or the
/// server rather than on keys. The server implements them.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnCommand {
    Ping,
    Echo,
    Hello,
    Auth,
    Select,
    Quit,
    Reset,
    Client,
    Info,
    Config,
    Command,
    Time,
    Shutdown,
}

/// The transaction commands; the server's router runs them, since `EXEC` routes the commands
/// it queued.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxCommand {
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
}

/// Where a command runs.
#[derive(Clone, Copy)]
pub enum Route {
    /// On the shard that owns its key(s); every key must live on one shard.
    Keyed(Handler),
    /// Its keys may live on several shards: each shard runs the same command with the keys it
    /// owns (in their original order), and the replies are merged.
    Split(Handler, Merge),
    /// On every shard, with the replies merged (`DBSIZE`, `FLUSHDB`).
    Broadcast(Handler, Merge),
    /// On the shard named by the cursor in argument 1 (see [`CURSOR_SHARD_SHIFT`]); the handler
    /// answers with the next cursor, moving on to the next shard when its own walk is done.
    Cursor(Handler),
    /// On the connection's home shard, by the server.
    Connection(ConnCommand),
    /// A transaction command, run by the server's router.
    Transaction(TxCommand),
}

/// One row of the table.
pub struct Command {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis's arity: `n` means exactly `n` arguments (name included), `-n` at least `n`.
    pub arity: i32,
    /// A set of [`flag`] bits.
    pub flags: u32,
    /// Position of the first key (0 for none).
    pub first_key: i32,
    /// Position of the last key (negative counts from the end: -1 is the last argument).
    pub last_key: i32,
    /// Distance between keys (2 for `MSET k v k v`).
    pub step: i32,
    /// Where it runs.
    pub route: Route,
    /// Redis's documentation group (`string`, `keyspace`, `connection`, `server`, ...).
    pub group: &'static str,
    /// One line for `COMMAND DOCS`.
    pub summary: &'static str,
    /// The Redis version that introduced it.
    pub since: &'static str,
}

impl Command {
    /// True if `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// True if the command has `flag`.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// The positions of the key arguments in `args`. For [`flag::MOVABLEKEYS`] commands they
    /// follow the count in argument 2; an invalid count yields no keys (the handler answers it).
    pub fn key_positions(&self, args: Args<'_>) -> impl Iterator<Item = usize> {
        let argc = args.len();
        let (first, end, step) = if self.has(MOVABLEKEYS) {
            let count = shardis_resp::parse_i64(args.get(2))
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= argc.saturating_sub(3))
                .unwrap_or(0);
            (3, 3 + count, 1)
        } else if self.first_key <= 0 {
            (0, 0, 1)
        } else {
            let last = if self.last_key < 0 {
                (argc as i64 + i64::from(self.last_key)).max(0) as usize
            } else {
                (self.last_key as usize).min(argc.saturating_sub(1))
            };
            (self.first_key as usize, last + 1, self.step.max(1) as usize)
        };
        (first..end).step_by(step)
    }
}

// One argument per column of the table.
#[allow(clippy::too_many_arguments)]
const fn row(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    route: Route,
    group: &'static str,
    since: &'static str,
    summary: &'static str,
) -> Command {
    Command {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        route,
        group,
        summary,
        since,
    }
}

use flag::*;
use ConnCommand as C;
use Route::{Broadcast, Connection, Cursor, Keyed, Split, Transaction};
use TxCommand as T;

const NO_KEYS: (i32, i32, i32) = (0, 0, 0);
const KEY1: (i32, i32, i32) = (1, 1, 1);
const KEY2: (i32, i32, i32) = (2, 2, 1);
const TWO_KEYS: (i32, i32, i32) = (1, 2, 1);
const ALL_KEYS: (i32, i32, i32) = (1, -1, 1);
const PAIRS: (i32, i32, i32) = (1, -1, 2);

/// Every command Shardis knows.
#[rustfmt::skip]
pub static COMMANDS: &[Command] = &[
    // connection
    row("ping", -1, FAST | STALE, NO_KEYS, Connection(C::Ping), "connection", "1.0.0",
        "Returns the server's liveliness response."),
    row("echo", 2, FAST | STALE, NO_KEYS, Connection(C::Echo), "connection", "1.0.0",
        "Returns the given string."),
    row("hello", -1, FAST | NO_AUTH | NOSCRIPT | LOADING | STALE, NO_KEYS, Connection(C::Hello),
        "connection", "6.0.0", "Handshakes with the Redis server."),
    row("auth", -2, FAST | NO_AUTH | NOSCRIPT | LOADING | STALE, NO_KEYS, Connection(C::Auth),
        "connection", "1.0.0", "Authenticates the connection."),
    row("select", 2, FAST | LOADING | STALE, NO_KEYS, Connection(C::Select), "connection",
        "1.0.0", "Changes the selected database."),
    row("quit", -1, FAST | NO_AUTH | NOSCRIPT | LOADING | STALE, NO_KEYS, Connection(C::Quit),
        "connection", "1.0.0", "Closes the connection."),
    row("reset", 1, FAST | NO_AUTH | NOSCRIPT | LOADING | STALE, NO_KEYS, Connection(C::Reset),
        "connection", "6.2.0", "Resets the connection."),
    row("client", -2, NOSCRIPT | LOADING | STALE, NO_KEYS, Connection(C::Client), "connection",
        "2.4.0", "A container for client connection commands."),
    // server
    row("info", -1, LOADING | STALE, NO_KEYS, Connection(C::Info), "server", "1.0.0",
        "Returns information and statistics about the server."),
    row("config", -2, ADMIN | NOSCRIPT | LOADING | STALE, NO_KEYS, Connection(C::Config),
        "server", "2.0.0", "A container for server configuration commands."),
    row("command", -1, LOADING | STALE, NO_KEYS, Connection(C::Command), "server", "2.8.13",
        "Returns detailed information about all commands."),
    row("time", 1, FAST | LOADING | STALE | RANDOM, NO_KEYS, Connection(C::Time), "server",
        "2.6.0", "Returns the server time."),
    row("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE, NO_KEYS, Connection(C::Shutdown),
        "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server."),
    // transactions (run by the server's router: crates/server/src/transaction.rs)
    row("multi", 1, NOSCRIPT | LOADING | STALE | FAST, NO_KEYS, Transaction(T::Multi), "transactions",
        "1.2.0", "Starts a transaction."),
    row("exec", 1, NOSCRIPT | LOADING | STALE, NO_KEYS, Transaction(T::Exec), "transactions",
        "1.2.0", "Executes all commands in a transaction."),
    row("discard", 1, NOSCRIPT | LOADING | STALE | FAST, NO_KEYS, Transaction(T::Discard),
        "transactions", "2.0.0", "Discards a transaction."),
    row("watch", -2, NOSCRIPT | LOADING | STALE | FAST, ALL_KEYS, Transaction(T::Watch),
        "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction."),
    row("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST, NO_KEYS, Transaction(T::Unwatch),
        "transactions", "2.2.0", "Forgets about watched keys of a transaction."),
    row("dbsize", 1, READONLY | FAST, NO_KEYS, Broadcast(keyspace::dbsize, Merge::SumIntegers),
        "server", "1.0.0", "Returns the number of keys in the database."),
    row("flushdb", -1, WRITE, NO_KEYS, Broadcast(keyspace::flushdb, Merge::AllOk), "server",
        "1.0.0", "Removes all keys from the current database."),
    row("flushall", -1, WRITE, NO_KEYS, Broadcast(keyspace::flushall, Merge::AllOk), "server",
        "1.0.0", "Removes all keys from all databases."),
    row("swapdb", 3, WRITE | FAST, NO_KEYS, Broadcast(keyspace::swapdb, Merge::AllOk), "server",
        "4.0.0", "Swaps two Redis databases."),
    // keyspace
    row("del", -2, WRITE, ALL_KEYS, Split(keyspace::del, Merge::SumIntegers), "keyspace",
        "1.0.0", "Deletes one or more keys."),
    row("unlink", -2, WRITE | FAST, ALL_KEYS, Split(keyspace::del, Merge::SumIntegers),
        "keyspace", "4.0.0", "Asynchronously deletes one or more keys."),
    row("exists", -2, READONLY | FAST, ALL_KEYS, Split(keyspace::exists, Merge::SumIntegers),
        "keyspace", "1.0.0", "Determines whether one or more keys exist."),
    row("touch", -2, READONLY | FAST, ALL_KEYS, Split(keyspace::exists, Merge::SumIntegers),
        "keyspace", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed."),
    row("type", 2, READONLY | FAST, KEY1, Keyed(keyspace::type_), "keyspace", "1.0.0",
        "Determines the type of value stored at a key."),
    row("keys", 2, READONLY, NO_KEYS, Broadcast(keyspace::keys, Merge::Concat), "keyspace",
        "1.0.0", "Returns all key names that match a pattern."),
    row("scan", -2, READONLY, NO_KEYS, Cursor(keyspace::scan), "keyspace", "2.8.0",
        "Iterates over the key names in the database."),
    row("randomkey", 1, READONLY | RANDOM, NO_KEYS,
        Broadcast(keyspace::randomkey, Merge::AnyNonNull), "keyspace", "1.0.0",
        "Returns a random key name from the database."),
    row("rename", 3, WRITE, TWO_KEYS, Keyed(keyspace::rename), "keyspace", "1.0.0",
        "Renames a key and overwrites the destination."),
    row("renamenx", 3, WRITE | FAST, TWO_KEYS, Keyed(keyspace::renamenx), "keyspace", "1.0.0",
        "Renames a key only when the target key name doesn't exist."),
    row("copy", -3, WRITE | DENYOOM, TWO_KEYS, Keyed(keyspace::copy), "keyspace", "6.2.0",
        "Copies the value of a key to a new key."),
    row("move", 3, WRITE | FAST, KEY1, Keyed(keyspace::move_), "keyspace", "1.0.0",
        "Moves a key to another database."),
    row("object", -2, 0, KEY2, Keyed(keyspace::object), "keyspace", "2.2.3",
        "A container for object introspection commands."),
    row("memory", -2, 0, KEY2, Keyed(keyspace::memory), "server", "4.0.0",
        "A container for memory diagnostics commands."),
    row("expire", -3, WRITE | FAST, KEY1, Keyed(expire::expire), "keyspace", "1.0.0",
        "Sets the expiration time of a key in seconds."),
    row("pexpire", -3, WRITE | FAST, KEY1, Keyed(expire::pexpire), "keyspace", "2.6.0",
        "Sets the expiration time of a key in milliseconds."),
    row("expireat", -3, WRITE | FAST, KEY1, Keyed(expire::expireat), "keyspace", "1.2.0",
        "Sets the expiration time of a key to a Unix timestamp."),
    row("pexpireat", -3, WRITE | FAST, KEY1, Keyed(expire::pexpireat), "keyspace", "2.6.0",
        "Sets the expiration time of a key to a Unix milliseconds timestamp."),
    row("ttl", 2, READONLY | FAST, KEY1, Keyed(expire::ttl), "keyspace", "1.0.0",
        "Returns the expiration time in seconds of a key."),
    row("pttl", 2, READONLY | FAST, KEY1, Keyed(expire::pttl), "keyspace", "2.6.0",
        "Returns the expiration time in milliseconds of a key."),
    row("expiretime", 2, READONLY | FAST, KEY1, Keyed(expire::expiretime), "keyspace", "7.0.0",
        "Returns the expiration time of a key as a Unix timestamp."),
    row("pexpiretime", 2, READONLY | FAST, KEY1, Keyed(expire::pexpiretime), "keyspace",
        "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp."),
    row("persist", 2, WRITE | FAST, KEY1, Keyed(expire::persist), "keyspace", "2.2.0",
        "Removes the expiration time of a key."),
    // string
    row("get", 2, READONLY | FAST, KEY1, Keyed(string::get), "string", "1.0.0",
        "Returns the string value of a key."),
    row("set", -3, WRITE | DENYOOM, KEY1, Keyed(string::set), "string", "1.0.0",
        "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist."),
    // scripting (scripting.rs)
    row("eval", -3, NOSCRIPT | MOVABLEKEYS, NO_KEYS, Keyed(scripting::eval), "scripting",
        "2.6.0", "Executes a server-side Lua script."),
    row("evalsha", -3, NOSCRIPT | MOVABLEKEYS, NO_KEYS, Keyed(scripting::evalsha), "scripting",
        "2.6.0", "Executes a server-side Lua script by SHA1 digest."),
    row("eval_ro", -3, NOSCRIPT | READONLY | MOVABLEKEYS, NO_KEYS, Keyed(scripting::eval_ro),
        "scripting", "7.0.0", "Executes a read-only server-side Lua script."),
    row("evalsha_ro", -3, NOSCRIPT | READONLY | MOVABLEKEYS, NO_KEYS,
        Keyed(scripting::evalsha_ro), "scripting", "7.0.0",
        "Executes a read-only server-side Lua script by SHA1 digest."),
    row("script", -2, NOSCRIPT, NO_KEYS, Broadcast(scripting::script, Merge::Same), "scripting",
        "2.6.0", "A container for Lua scripts management commands."),
    // rate limiting (throttle.rs)
    row("cl.throttle", -5, WRITE | DENYOOM | FAST, KEY1, Keyed(throttle::throttle),
        "ratelimit", "redis-cell 0.3.0",
        "Rate-limits an action with the generic cell rate algorithm (redis-cell's command)."),
    row("setnx", 3, WRITE | DENYOOM | FAST, KEY1, Keyed(string::setnx), "string", "1.0.0",
        "Set the string value of a key only when the key doesn't exist."),
    row("setex", 4, WRITE | DENYOOM, KEY1, Keyed(string::setex), "string", "2.0.0",
        "Sets the string value and expiration time of a key. Creates the key if it doesn't exist."),
    row("psetex", 4, WRITE | DENYOOM, KEY1, Keyed(string::psetex), "string", "2.6.0",
        "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist."),
    row("getset", 3, WRITE | DENYOOM | FAST, KEY1, Keyed(string::getset), "string", "1.0.0",
        "Returns the previous string value of a key after setting it to a new value."),
    row("getdel", 2, WRITE | FAST, KEY1, Keyed(string::getdel), "string", "6.2.0",
        "Returns the string value of a key after deleting the key."),
    row("getex", -2, WRITE | FAST, KEY1, Keyed(string::getex), "string", "6.2.0",
        "Returns the string value of a key after setting its expiration time."),
    row("mget", -2, READONLY | FAST, ALL_KEYS, Split(string::mget, Merge::ByKey), "string",
        "1.0.0", "Atomically returns the string values of one or more keys."),
    row("mset", -3, WRITE | DENYOOM, PAIRS, Split(string::mset, Merge::AllOk), "string",
        "1.0.1", "Atomically creates or modifies the string values of one or more keys."),
    row("msetnx", -3, WRITE | DENYOOM, PAIRS, Keyed(string::msetnx), "string", "1.0.1",
        "Atomically modifies the string values of one or more keys only when all keys don't exist."),
    row("append", 3, WRITE | DENYOOM | FAST, KEY1, Keyed(string::append), "string", "2.0.0",
        "Appends a string to the value of a key. Creates the key if it doesn't exist."),
    row("strlen", 2, READONLY | FAST, KEY1, Keyed(string::strlen), "string", "2.2.0",
        "Returns the length of a string value."),
    row("getrange", 4, READONLY, KEY1, Keyed(string::getrange), "string", "2.4.0",
        "Returns a substring of the string stored at a key."),
    row("substr", 4, READONLY, KEY1, Keyed(string::getrange), "string", "1.0.0",
        "Returns a substring from a string value."),
    row("setrange", 4, WRITE | DENYOOM, KEY1, Keyed(string::setrange), "string", "2.2.0",
        "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist."),
    // counters (counter.rs)
    row("incr", 2, WRITE | DENYOOM | FAST, KEY1, Keyed(counter::incr), "string", "1.0.0",
        "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."),
    row("decr", 2, WRITE | DENYOOM | FAST, KEY1, Keyed(counter::decr), "string", "1.0.0",
        "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."),
    row("incrby", 3, WRITE | DENYOOM | FAST, KEY1, Keyed(counter::incrby), "string", "1.0.0",
        "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist."),
    row("decrby", 3, WRITE | DENYOOM | FAST, KEY1, Keyed(counter::decrby), "string", "1.0.0",
        "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist."),
    row("incrbyfloat", 3, WRITE | DENYOOM | FAST, KEY1, Keyed(counter::incrbyfloat), "string",
        "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist."),
    row("increx", -2, WRITE | DENYOOM | FAST, KEY1, Keyed(counter::increx), "string", "8.8.0",
        "Increments the numeric value of a key by a number and sets its expiration time. Uses 0 as initial value if the key doesn't exist."),
    // list (list.rs)
    row("lpush", -3, WRITE | DENYOOM | FAST, KEY1, Keyed(list::lpush), "list", "1.0.0",
        "Prepends one or more elements to a list. Creates the key if it doesn't exist."),
    row("rpush", -3, WRITE | DENYOOM | FAST, KEY1, Keyed(list::rpush), "list", "1.0.0",
        "Appends one or more elements to a list. Creates the key if it doesn't exist."),
    row("lpushx", -3, WRITE | DENYOOM | FAST, KEY1, Keyed(list::lpushx), "list", "2.2.0",
        "Prepends one or more elements to a list only when the list exists."),
    row("rpushx", -3, WRITE | DENYOOM | FAST, KEY1, Keyed(list::rpushx), "list", "2.2.0",
        "Appends an element to a list only when the list exists."),
    row("lpop", -2, WRITE | FAST, KEY1, Keyed(list::lpop), "list", "1.0.0",
        "Returns the first elements in a list after removing it. Deletes the list if the last element was popped."),
    row("rpop", -2, WRITE | FAST, KEY1, Keyed(list::rpop), "list", "1.0.0",
        "Returns and removes the last elements of a list. Deletes the list if the last element was popped."),
    row("llen", 2, READONLY | FAST, KEY1, Keyed(list::llen), "list", "1.0.0",
        "Returns the length of a list."),
    row("lrange", 4, READONLY, KEY1, Keyed(list::lrange), "list", "1.0.0",
        "Returns a range of elements from a list."),
    row("lindex", 3, READONLY, KEY1, Keyed(list::lindex), "list", "1.0.0",
        "Returns an element from a list by its index."),
    row("lset", 4, WRITE | DENYOOM, KEY1, Keyed(list::lset), "list", "1.0.0",
        "Sets the value of an element in a list by its index."),
    row("ltrim", 4, WRITE, KEY1, Keyed(list::ltrim), "list", "1.0.0",
        "Removes elements from both ends a list. Deletes the list if all elements were trimmed."),
    row("lrem", 4, WRITE, KEY1, Keyed(list::lrem), "list", "1.0.0",
        "Removes elements from a list. Deletes the list if the last element was removed."),
    row("linsert", 5, WRITE | DENYOOM, KEY1, Keyed(list::linsert), "list", "2.2.0",
        "Inserts an element before or after another element in a list."),
    row("lpos", -3, READONLY, KEY1, Keyed(list::lpos), "list", "6.0.6",
        "Returns the index of matching elements in a list."),
    row("lmove", 5, WRITE | DENYOOM, TWO_KEYS, Keyed(list::lmove), "list", "6.2.0",
        "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved."),
    row("rpoplpush", 3, WRITE | DENYOOM, TWO_KEYS, Keyed(list::rpoplpush), "list", "1.2.0",
        "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped."),
    // hash (hash.rs)
    row("hset", -4, WRITE | DENYOOM | FAST, KEY1, Keyed(hash::hset), "hash", "2.0.0",
        "Creates or modifies the value of a field in a hash."),
    row("hsetnx", 4, WRITE | DENYOOM | FAST, KEY1, Keyed(hash::hsetnx), "hash", "2.0.0",
        "Sets the value of a field in a hash only when the field doesn't exist."),
    row("hmset", -4, WRITE | DENYOOM | FAST, KEY1, Keyed(hash::hmset), "hash", "2.0.0",
        "Sets the values of multiple fields."),
    row("hget", 3, READONLY | FAST, KEY1, Keyed(hash::hget), "hash", "2.0.0",
        "Returns the value of a field in a hash."),
    row("hmget", -3, READONLY | FAST, KEY1, Keyed(hash::hmget), "hash", "2.0.0",
        "Returns the values of all fields in a hash."),
    row("hgetall", 2, READONLY, KEY1, Keyed(hash::hgetall), "hash", "2.0.0",
        "Returns all fields and values in a hash."),
    row("hkeys", 2, READONLY, KEY1, Keyed(hash::hkeys), "hash", "2.0.0",
        "Returns all fields in a hash."),
    row("hvals", 2, READONLY, KEY1, Keyed(hash::hvals), "hash", "2.0.0",
        "Returns all values in a hash."),
    row("hlen", 2, READONLY | FAST, KEY1, Keyed(hash::hlen), "hash", "2.0.0",
        "Returns the number of fields in a hash."),
    row("hexists", 3, READONLY | FAST, KEY1, Keyed(hash::hexists), "hash", "2.0.0",
        "Determines whether a field exists in a hash."),
    row("hdel", -3, WRITE | FAST, KEY1, Keyed(hash::hdel), "hash", "2.0.0",
        "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain."),
    row("hstrlen", 3, READONLY | FAST, KEY1, Keyed(hash::hstrlen), "hash", "3.2.0",
        "Returns the length of the value of a field."),
    row("hincrby", 4, WRITE | DENYOOM | FAST, KEY1, Keyed(hash::hincrby), "hash", "2.0.0",
        "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist."),
    row("hincrbyfloat", 4, WRITE | DENYOOM | FAST, KEY1, Keyed(hash::hincrbyfloat), "hash",
        "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist."),
    row("hrandfield", -2, READONLY, KEY1, Keyed(hash::hrandfield), "hash", "6.2.0",
        "Returns one or more random fields from a hash."),
    row("hscan", -3, READONLY, KEY1, Keyed(hash::hscan), "hash", "2.8.0",
        "Iterates over fields and values of a hash."),
    row("hexpire", -6, WRITE | DENYOOM | FAST, KEY1, Keyed(hash::hexpire), "hash", "7.4.0",
        "Set expiry for hash field using relative time to expire (seconds)"),
    row("hpexpire", -6, WRITE | DENYOOM | FAST, KEY1, Keyed(hash::hpexpire), "hash", "7.4.0",
        "Set expiry for hash field using relative time to expire (milliseconds)"),
    row("hexpireat", -6, WRITE | DENYOOM | FAST, KEY1, Keyed(hash::hexpireat), "hash", "7.4.0",
        "Set expiry for hash field using an absolute Unix timestamp (seconds)"),
    row("hpexpireat", -6, WRITE | DENYOOM | FAST, KEY1, Keyed(hash::hpexpireat), "hash", "7.4.0",
        "Set expiry for hash field using an absolute Unix timestamp (milliseconds)"),
    row("httl", -5, READONLY | FAST, KEY1, Keyed(hash::httl), "hash", "7.4.0",
        "Returns the TTL in seconds of a hash field."),
    row("hpttl", -5, READONLY | FAST, KEY1, Keyed(hash::hpttl), "hash", "7.4.0",
        "Returns the TTL in milliseconds of a hash field."),
    row("hexpiretime", -5, READONLY | FAST, KEY1, Keyed(hash::hexpiretime), "hash", "7.4.0",
        "Returns the expiration time of a hash field as a Unix timestamp, in seconds."),
    row("hpexpiretime", -5, READONLY | FAST, KEY1, Keyed(hash::hpexpiretime), "hash", "7.4.0",
        "Returns the expiration time of a hash field as a Unix timestamp, in msec."),
    row("hpersist", -5, WRITE | FAST, KEY1, Keyed(hash::hpersist), "hash", "7.4.0",
        "Removes the expiration time for each specified field"),
    row("hgetex", -5, WRITE | FAST, KEY1, Keyed(hash::hgetex), "hash", "8.0.0",
        "Get the value of one or more fields of a given hash key, and optionally set their expiration."),
    row("hsetex", -6, WRITE | DENYOOM | FAST, KEY1, Keyed(hash::hsetex), "hash", "8.0.0",
        "Set the value of one or more fields of a given hash key, and optionally set their expiration."),
    row("hgetdel", -5, WRITE | FAST, KEY1, Keyed(hash::hgetdel), "hash", "8.0.0",
        "Returns the value of a field and deletes it from the hash."),
];

/// Finds a command by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    static BY_NAME: LazyLock<NameTable> = LazyLock::new(NameTable::build);
    BY_NAME.get(name)
}

/// [`COMMANDS`] by name: an open-addressing table of their indices, at most a quarter full.
/// Made by hand because a lookup runs for every command a client sends: ahash and a `HashMap`
/// probe took about 160 instructions for `GET`; lower-casing the name while taking its FNV-1a
/// hash in the same pass, and comparing it as plain bytes, take about half that.
struct NameTable {
    /// `COMMANDS` index + 1 of the command in each slot, 0 for an empty slot.
    slots: Box<[u16]>,
    /// The longest name: anything longer is no command, unhashed.
    longest: usize,
}

/// Room for the longest command name, lower-cased.
const MAX_NAME: usize = 32;

impl NameTable {
    fn build() -> NameTable {
        let size = (COMMANDS.len() * 4).next_power_of_two();
        let mut slots = vec![0u16; size].into_boxed_slice();
        for (i, command) in COMMANDS.iter().enumerate() {
            let mut lower = [0; MAX_NAME];
            let mut at = lower_hash(command.name.as_bytes(), &mut lower) & (size - 1);
            while slots[at] != 0 {
                at = (at + 1) & (size - 1);
            }
            slots[at] = (i + 1) as u16;
        }
        let longest = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
        NameTable { slots, longest }
    }

    fn get(&self, name: &[u8]) -> Option<&'static Command> {
        if name.len() > self.longest {
            return None;
        }
        let mut lower = [0; MAX_NAME];
        let mask = self.slots.len() - 1;
        let mut at = lower_hash(name, &mut lower) & mask;
        let lower = lower.get(..name.len())?;
        loop {
            let command = COMMANDS.get(usize::from(*self.slots.get(at)?).checked_sub(1)?)?;
            if command.name.as_bytes() == lower {
                return Some(command);
            }
            at = (at + 1) & mask;
        }
    }
}

/// Writes `name` lower-cased into `lower` (as much as fits) and returns the FNV-1a hash of
/// what it wrote.
fn lower_hash(name: &[u8], lower: &mut [u8; MAX_NAME]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (l, &c) in lower.iter_mut().zip(name) {
        *l = c.to_ascii_lowercase();
        h = (h ^ u64::from(*l)).wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ h >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_fits_the_lookup_buffer() {
        assert!(COMMANDS.iter().all(|c| c.name.len() <= MAX_NAME));
        assert!(COMMANDS.len() < usize::from(u16::MAX));
        for c in COMMANDS {
            assert_eq!(
                lookup(c.name.to_uppercase().as_bytes()).map(|f| f.name),
                Some(c.name)
            );
        }
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(lookup(b"GeT").map(|c| c.name), Some("get"));
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(&[b'a'; 100]).is_none());
    }

    #[test]
    fn names_are_unique_and_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for c in COMMANDS {
            assert!(seen.insert(c.name), "{} twice", c.name);
            assert_eq!(c.name, c.name.to_lowercase());
        }
    }

    #[test]
    fn key_positions_follow_first_last_step() {
        let positions = |line: &[&str]| {
            let buf: Vec<u8> = line.concat().into_bytes();
            let mut spans = Vec::new();
            let mut at = 0;
            for word in line {
                spans.push(shardis_resp::Span {
                    start: at,
                    end: at + word.len(),
                });
                at += word.len();
            }
            let cmd = lookup(line[0].as_bytes()).unwrap();
            cmd.key_positions(Args::new(&buf, &spans))
                .collect::<Vec<_>>()
        };
        assert_eq!(positions(&["del", "a", "b", "c"]), vec![1, 2, 3]);
        assert_eq!(positions(&["get", "a"]), vec![1]);
        assert!(positions(&["ping", "x"]).is_empty());
        assert_eq!(positions(&["eval", "s", "2", "a", "b", "c"]), vec![3, 4]);
        assert!(positions(&["eval", "s", "3", "a", "b"]).is_empty());
        assert!(positions(&["eval", "s", "-1", "a"]).is_empty());
    }
}
