//! A database: the keys one shard owns in one of the numbered databases (`SELECT n`).

use std::collections::HashMap;

use ahash::RandomState;

use crate::field_expiry::{next_field_expiry, FieldExpiries};
use crate::value::Value;

/// A key's value and its expiry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// When the key expires, in milliseconds since the Unix epoch; `None` for never.
    pub expire_at: Option<u64>,
}

impl Entry {
    /// A 64-bit digest of the value and its expiry, for `WATCH`: two digests differ whenever
    /// the entry was changed in between (up to hash collisions, and except a change that
    /// restores exactly the old content).
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = ahash::RandomState::with_seeds(1, 2, 3, 4).build_hasher();
        h.write_u64(self.expire_at.unwrap_or(u64::MAX));
        match &self.value {
            Value::Str(s) => {
                h.write_u8(0);
                h.write(s.as_bytes(&mut crate::value::itoa_buf::Buffer::new()));
            }
            Value::Hash(hash) => {
                h.write_u8(1);
                for (field, value, ttl) in hash.iter_with_ttl() {
                    h.write_usize(field.len());
                    h.write(field);
                    h.write_usize(value.len());
                    h.write(value);
                    h.write_u64(ttl.unwrap_or(u64::MAX));
                }
            }
            Value::List(list) => {
                h.write_u8(2);
                for item in list.items() {
                    h.write_usize(item.len());
                    h.write(item);
                }
            }
        }
        h.finish()
    }

    /// True once the expiry time has passed. Like Redis, a key is still alive during the very
    /// millisecond it expires at.
    #[inline]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at.is_some_and(|at| at < now_ms)
    }
}

/// One database of one shard.
#[derive(Debug, Default)]
pub struct Db {
    entries: HashMap<Box<[u8]>, Entry, RandomState>,
    /// How many entries have an expiry (INFO's `expires=`).
    volatile: usize,
    /// Hashes with field TTLs, for active field expiry.
    field_expiries: FieldExpiries,
}

impl Db {
    /// An empty database.
    pub fn new() -> Db {
        Db::default()
    }

    /// Keys stored, including expired ones not yet reclaimed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys that have an expiry.
    pub fn volatile_len(&self) -> usize {
        self.volatile
    }

    /// The live entry of `key`, deleting it first if it has expired.
    pub fn get_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        self.expire_if_needed(key, now_ms);
        self.entries.get_mut(key)
    }

    /// The live entry of `key`, without reclaiming an expired one.
    pub fn get(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.entries.get(key).filter(|e| !e.is_expired(now_ms))
    }

    /// Stores `value` under `key` with the given expiry, replacing any previous entry.
    pub fn set(&mut self, key: &[u8], value: Value, expire_at: Option<u64>) {
        self.put(key, Entry { value, expire_at });
    }

    /// Stores a whole entry (value and expiry) under `key`, replacing any previous one. Every
    /// way of adding a key goes through here, so the expiry bookkeeping lives in one place.
    pub fn put(&mut self, key: &[u8], entry: Entry) {
        if entry.expire_at.is_some() {
            self.volatile += 1;
        }
        // `get_mut` first so that overwriting an existing key does not allocate a new key.
        let new_fields_due = next_field_expiry(&entry.value);
        if let Some(old) = self.entries.get_mut(key) {
            if old.expire_at.is_some() {
                self.volatile -= 1;
            }
            let old_fields_due = next_field_expiry(&old.value);
            self.field_expiries
                .note(key, old_fields_due, new_fields_due);
            *old = entry;
        } else {
            self.field_expiries.note(key, None, new_fields_due);
            self.entries.insert(key.into(), entry);
        }
    }

    /// Removes `key` and hands its entry over, expired or not (for moving keys between shards
    /// and databases). Every way of removing a key goes through here.
    pub fn take(&mut self, key: &[u8]) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        if entry.expire_at.is_some() {
            self.volatile -= 1;
        }
        self.field_expiries
            .note(key, next_field_expiry(&entry.value), None);
        Some(entry)
    }

    /// Deletes `key`; true if a live key was deleted.
    pub fn remove(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.take(key)
            .is_some_and(|entry| !entry.is_expired(now_ms))
    }

    /// Deletes every key.
    pub fn clear(&mut self) {
        self.entries = HashMap::default();
        self.volatile = 0;
        self.field_expiries.clear();
    }

    /// Iterates over live keys.
    pub fn keys(&self, now_ms: u64) -> impl Iterator<Item = &[u8]> {
        self.entries
            .iter()
            .filter(move |(_, e)| !e.is_expired(now_ms))
            .map(|(k, _)| &**k)
    }

    /// Approximate bytes used by keys and values.
    pub fn memory_usage(&self) -> usize {
        self.entries
            .iter()
            .map(|(k, e)| k.len() + std::mem::size_of::<Entry>() + e.value.memory_usage())
            .sum()
    }

    /// Active expiry of whole keys: deletes at most `budget` expired keys, returns how many.
    pub fn expire_keys(&mut self, _now_ms: u64, _budget: usize) -> usize {
        0
    }

    /// Active expiry of hash fields: deletes at most `budget` expired fields (and hashes left
    /// empty), returns how many. Visits only hashes with due fields, earliest first, and takes
    /// from a big hash only what the budget allows, so that a million fields expiring at once
    /// are reclaimed over many short calls.
    pub fn expire_fields(&mut self, now_ms: u64, budget: usize) -> usize {
        let mut done = 0;
        while done < budget {
            let Some(key) = self.field_expiries.pop_due(now_ms) else {
                break;
            };
            let Some(Entry {
                value: Value::Hash(hash),
                ..
            }) = self.entries.get_mut(&key)
            else {
                continue;
            };
            let purged = hash.purge_expired(now_ms, budget - done);
            done += purged;
            if hash.is_empty() {
                // Its index entry is already gone: `take` finds no field TTLs left to unindex.
                self.take(&key);
            } else if let Some(next) = hash.next_expiry() {
                self.field_expiries.requeue(key, next);
                if purged == 0 {
                    // Cannot happen while the index is exact; never spin if it were not.
                    break;
                }
            }
        }
        done
    }

    /// Records that a command changed the hash at `key` in place, moving its earliest field
    /// expiry from `before` to `after` (`None`: no field TTLs). Every in-place change to a
    /// hash's field TTLs (setting, clearing, deleting or expiring a field that has one) must be
    /// reported, so that active expiry finds the hash; whole values added or removed through
    /// [`Db::put`] and [`Db::take`] are tracked by those.
    pub fn note_field_expiry(&mut self, key: &[u8], before: Option<u64>, after: Option<u64>) {
        self.field_expiries.note(key, before, after);
    }

    /// Number of hashes that have field TTLs.
    pub fn field_expiry_len(&self) -> usize {
        self.field_expiries.len()
    }

    fn expire_if_needed(&mut self, key: &[u8], now_ms: u64) {
        if self.entries.get(key).is_some_and(|e| e.is_expired(now_ms)) {
            self.remove(key, now_ms);
        }
    }
}

/// All the databases of one shard.
#[derive(Debug)]
pub struct Store {
    /// The numbered databases (`SELECT n`).
    pub dbs: Vec<Db>,
}

impl Store {
    /// A store with `databases` empty databases.
    pub fn new(databases: usize) -> Store {
        Store {
            dbs: (0..databases).map(|_| Db::new()).collect(),
        }
    }

    /// Keys in all databases.
    pub fn total_keys(&self) -> usize {
        self.dbs.iter().map(Db::len).sum()
    }

    /// Reclaims expired keys and hash fields without client access, doing at most `budget`
    /// deletions so that the shard never stalls; returns how many it did. The shard calls this
    /// from its maintenance tick, again at once while it keeps using the whole budget.
    pub fn active_expire(&mut self, now_ms: u64, budget: usize) -> usize {
        let mut done = 0;
        for db in &mut self.dbs {
            done += db.expire_keys(now_ms, budget - done);
            done += db.expire_fields(now_ms, budget - done);
            if done >= budget {
                break;
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::StrValue;

    fn s(v: &str) -> Value {
        Value::Str(StrValue::from_bytes(v.as_bytes()))
    }

    #[test]
    fn expiry_is_exact_to_the_millisecond() {
        let mut db = Db::new();
        db.set(b"k", s("v"), Some(1000));
        assert_eq!(db.volatile_len(), 1);
        assert!(db.get(b"k", 1000).is_some());
        assert!(db.get_mut(b"k", 1000).is_some());
        assert!(db.get(b"k", 1001).is_none());
        assert!(db.get_mut(b"k", 1001).is_none());
        assert_eq!(db.len(), 0);
        assert_eq!(db.volatile_len(), 0);
    }

    #[test]
    fn overwrite_and_remove() {
        let mut db = Db::new();
        db.set(b"k", s("1"), Some(5));
        db.set(b"k", s("2"), None);
        assert_eq!(db.volatile_len(), 0);
        assert!(matches!(
            db.get(b"k", 10).map(|e| &e.value),
            Some(Value::Str(StrValue::Int(2)))
        ));
        assert!(db.remove(b"k", 10));
        assert!(!db.remove(b"k", 10));
    }

    fn hash_with_ttls(ttls: &[u64]) -> Value {
        let mut h = crate::hash::Hash::new();
        for (i, &at) in ttls.iter().enumerate() {
            let field = format!("f{i}");
            h.set(field.as_bytes(), b"v", false, &Default::default());
            h.set_expire_at(field.as_bytes(), Some(at));
        }
        Value::Hash(h)
    }

    #[test]
    fn put_and_take_keep_the_field_expiry_index() {
        let mut db = Db::new();
        db.set(b"h", hash_with_ttls(&[50, 10]), None);
        db.set(b"plain", hash_with_ttls(&[]), None);
        assert_eq!(db.field_expiry_len(), 1);
        // Replaced by a value without field TTLs, then by one with them again.
        db.set(b"h", s("x"), None);
        assert_eq!(db.field_expiry_len(), 0);
        db.set(b"h", hash_with_ttls(&[20]), None);
        let moved = db.take(b"h").unwrap();
        assert_eq!(db.field_expiry_len(), 0);
        db.put(b"h2", moved);
        assert_eq!(db.field_expiry_len(), 1);
        assert_eq!(db.expire_fields(19, 100), 0);
        // The hash emptied by expiry goes away with its index entry.
        assert_eq!(db.expire_fields(20, 100), 1);
        assert!(db.get(b"h2", 0).is_none());
        assert_eq!(db.field_expiry_len(), 0);
        db.set(b"h", hash_with_ttls(&[5, 6, 7]), None);
        assert_eq!(db.expire_fields(6, 1), 1);
        assert_eq!(db.expire_fields(6, 5), 1);
        assert_eq!(db.field_expiry_len(), 1);
        db.clear();
        assert_eq!(db.field_expiry_len(), 0);
    }
}
