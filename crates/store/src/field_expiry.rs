//! The index behind active expiry of hash fields: which hashes have field TTLs, ordered by the
//! earliest field expiry of each.
//!
//! Active expiry must find the hashes with due fields without visiting every key, and must stay
//! bounded however many fields fall due at once. So each database lists every hash that has
//! field TTLs in a second [`ExpiryIndex`](crate::expiry_index::ExpiryIndex), by `(earliest field
//! expiry, hash of the key)`: the due hashes are always at its front, and each
//! [`Hash`](crate::hash::Hash) finds its own due fields through its own TTL index. Like the key
//! expiry index it stores the key's 32-bit hash, not the key (4 bytes instead of a copy of the
//! key, which costs a whole allocation); the database resolves it to the hash whose earliest
//! field expiry matches. Entries are exact, not lazily cleaned: the invariant is that outside a
//! command every hash with field TTLs has exactly the entry `(hash.next_expiry(), hash of its
//! key)`. `Db::put` and `Db::take` keep it for whole values; a command that changes a hash in
//! place reports the change with `Db::note_field_expiry` (the earliest expiry before and after
//! it).

use crate::value::Value;

/// The earliest field expiry of `value` if it is a hash with field TTLs.
pub fn next_field_expiry(value: &Value) -> Option<u64> {
    match value {
        Value::Hash(h) => h.next_expiry(),
        _ => None,
    }
}
