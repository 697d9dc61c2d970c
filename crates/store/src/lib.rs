//! One shard's keyspace: the values, their expiry, and what they cost in memory.
//!
//! Everything here is synchronous and single-owner: a shard's reactor owns its [`Store`] and
//! passes `&mut` to each command, so there is no lock on the data path. (The one thing shared
//! between shards is the append-only table of shared field names, `field_names`: read without
//! a lock, written under a mutex once per admitted name and shard.) There is no clock either: the
//! caller passes the time (milliseconds since the Unix epoch) into every call that can expire
//! something, which keeps expiry exact, testable with a fake clock, and the same for every
//! command of a pipelined batch.

mod arena;
pub mod db;
pub mod expiry_index;
pub mod field_expiry;
mod field_names;
pub mod hash;
pub mod index;
pub mod ldouble;
pub mod list;
mod thin;
pub mod value;

pub use db::{Db, Entry, Store};
pub use thin::ThinBytes;
pub use value::{StrValue, Value};
