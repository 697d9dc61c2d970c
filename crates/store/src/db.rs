//! A database: the keys one shard owns in one of the numbered databases (`SELECT n`).
//!
//! # Layout
//!
//! The keys and their entries live densely packed in one `Vec` of [`Item`]s, found through an
//! [`OrderedIndex`] of 8-byte `(hash, position)` slots kept sorted by hash. Per key that is 32
//! bytes in the dense array, 10-15 bytes of index and the key's bytes: less than a `HashMap` of
//! the same entries, whose buckets carry the whole entry at a load of 44-87%. Deleting moves
//! the last item into the hole (`swap_remove`) and repoints its one slot.
//!
//! A hash holds its own key ([`crate::hash::Hash::stored_key`]): a small hash keeps it at the
//! front of its one buffer, so its key costs no allocation of its own. An allocation of a few
//! bytes costs a whole allocator block (32 bytes with glibc), more than the key itself: for a
//! million small hashes that is a sixth of the memory. Other values keep their key in a thin
//! [`ThinBytes`] of their item. Either way [`Item::key`] finds it. This is why a stored value is
//! replaced only through [`Db::put`]: a hash put in place of a string through `&mut Entry`
//! would not know its key (debug builds check this on every lookup).

//! The layout gives the keyspace commands what they need without extra memory per key:
//! `SCAN` walks the index in hash order with a hash as its cursor, which survives the table
//! growing or shrinking between calls (see [`crate::index`]); `RANDOMKEY` picks a uniformly
//! random position of the dense array.
//!
//! # Expiry
//!
//! A key is alive until the millisecond after its `expire_at`. Lazy expiry: the `get` family
//! never returns an expired entry, and `get_mut` deletes it. Active expiry ([`Db::expire_keys`])
//! must find expired keys without client access and without walking a million live ones, so
//! keys with a TTL are also listed in an [`ExpiryIndex`] ordered by `(expire_at, hash)`, which
//! stores hashes, not keys. It is exact, earliest first, and each reclaim is O(log n), so a
//! million keys expiring in the same millisecond are reclaimed a bounded slice at a time. Every
//! change of a key's expiry goes through [`Db::put`], [`Db::take`] or [`Db::set_expire_at`],
//! which keep the index in step.

use ahash::RandomState;

use crate::expiry_index::ExpiryIndex;
use crate::field_expiry::next_field_expiry;
use crate::index::{OrderedIndex, MAX_ENTRIES};
use crate::thin::ThinBytes;
use crate::value::Value;

/// A key's value and its expiry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The value. Replace a stored value through [`Db::put`], not through this field: a stored
    /// hash holds its own key (see [`Db`]'s layout).
    pub value: Value,
    /// When the key expires, in milliseconds since the Unix epoch, [`NO_EXPIRY`] for never: 8
    /// bytes where an `Option<u64>` takes 16. Changed only through [`Db::set_expire_at`] or
    /// [`Db::put`], which keep the expiry index in step.
    expire_at: u64,
}

/// `expire_at` of a key that never expires. No expiry can be this late: commands compute
/// expiry times as `i64` milliseconds.
const NO_EXPIRY: u64 = u64::MAX;

/// The stored form of an expiry (`None`: never).
fn stored_expiry(at: Option<u64>) -> u64 {
    at.map_or(NO_EXPIRY, |at| at.min(NO_EXPIRY - 1))
}

impl Entry {
    /// An entry expiring at `expire_at` (milliseconds since the Unix epoch), `None` for never.
    pub fn new(value: Value, expire_at: Option<u64>) -> Entry {
        Entry {
            value,
            expire_at: stored_expiry(expire_at),
        }
    }

    /// When the key expires, in milliseconds since the Unix epoch; `None` for never.
    #[inline]
    pub fn expire_at(&self) -> Option<u64> {
        (self.expire_at != NO_EXPIRY).then_some(self.expire_at)
    }

    /// A 64-bit digest of the value and its expiry, for `WATCH`: two digests differ whenever
    /// the entry was changed in between (up to hash collisions, and except a change that
    /// restores exactly the old content).
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = ahash::RandomState::with_seeds(1, 2, 3, 4).build_hasher();
        h.write_u64(self.expire_at);
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
                for item in list.iter() {
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
        // NO_EXPIRY is never below a clock reading.
        self.expire_at < now_ms
    }
}

/// A key with its entry, as stored in the dense array.
#[derive(Debug, Clone)]
struct Item {
    /// The key, or nothing when the value is a hash: a hash holds its key itself.
    key: Option<ThinBytes>,
    entry: Entry,
}

impl Item {
    /// Wraps `entry` for storage under `key`, handing a hash its key.
    fn new(key: &[u8], mut entry: Entry) -> Item {
        let key = match &mut entry.value {
            Value::Hash(hash) => {
                hash.set_stored_key(key);
                None
            }
            _ => Some(ThinBytes::new(key)),
        };
        Item { key, entry }
    }

    /// Puts `entry` in this item's place and returns the old entry. The stored key is kept
    /// when the new value is not a hash: overwriting a key (SET, MSET, INCR's result) then
    /// allocates nothing for the key.
    fn replace(&mut self, key: &[u8], entry: Entry) -> Entry {
        let item = match self.key.take() {
            Some(stored) if !matches!(entry.value, Value::Hash(_)) => Item {
                key: Some(stored),
                entry,
            },
            _ => Item::new(key, entry),
        };
        std::mem::replace(self, item).entry
    }

    #[inline]
    fn key(&self) -> &[u8] {
        match (&self.key, &self.entry.value) {
            (Some(key), _) => key,
            (None, Value::Hash(hash)) => hash.stored_key(),
            // Only a value replaced behind `Db::put`'s back gets here (see `Entry::value`).
            (None, _) => &[],
        }
    }
}

/// One database of one shard.
#[derive(Debug)]
pub struct Db {
    /// The hash of keys. Fixed for the life of the database, because `SCAN` cursors are hashes.
    hasher: RandomState,
    /// Hash → position in `items`.
    index: OrderedIndex,
    /// Every key, expired or not, densely packed.
    items: Vec<Item>,
    /// The keys with an expiry, earliest first.
    expires: ExpiryIndex,
    /// Hashes with field TTLs, for active field expiry.
    field_expiries: ExpiryIndex,
    /// State of the generator behind `RANDOMKEY` (xorshift64*).
    rng: u64,
}

impl Default for Db {
    fn default() -> Db {
        let hasher = RandomState::new();
        let rng = hasher.hash_one(0x5eed_u64) | 1;
        Db {
            hasher,
            index: OrderedIndex::new(),
            items: Vec::new(),
            expires: ExpiryIndex::default(),
            field_expiries: ExpiryIndex::default(),
            rng,
        }
    }
}

/// How often `RANDOMKEY` may draw an expired key (and reclaim it) before it looks for a live one
/// by walking the keys.
const RANDOM_DRAWS: usize = 64;

impl Db {
    /// An empty database.
    pub fn new() -> Db {
        Db::default()
    }

    /// Keys stored, including expired ones not yet reclaimed.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Keys that have an expiry.
    pub fn volatile_len(&self) -> usize {
        self.expires.len()
    }

    fn hash(&self, key: &[u8]) -> u32 {
        (self.hasher.hash_one(key) >> 32) as u32
    }

    /// The index slot and dense position of `key`, whose hash is `h`.
    fn find(&self, key: &[u8], h: u32) -> Option<(usize, usize)> {
        let items = &self.items;
        self.index.find(h, |i| {
            items.get(i).is_some_and(|item| {
                // Catches, in tests, a value replaced behind `put`'s back (see `Entry::value`).
                debug_assert_eq!(self.hash(item.key()), h, "a key was lost");
                item.key() == key
            })
        })
    }

    /// The index slot, dense position and hash of `key` if it is live, deleting it first if it
    /// has expired.
    fn find_live(&mut self, key: &[u8], now_ms: u64) -> Option<(usize, usize, u32)> {
        let h = self.hash(key);
        let (slot, i) = self.find(key, h)?;
        if self.items.get(i)?.entry.is_expired(now_ms) {
            self.remove_found(slot, i, h);
            return None;
        }
        Some((slot, i, h))
    }

    /// The live entry of `key`, deleting it first if it has expired.
    pub fn get_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let (_, i, _) = self.find_live(key, now_ms)?;
        self.items.get_mut(i).map(|item| &mut item.entry)
    }

    /// [`Db::get_mut`] that also deletes a hash's due fields first (lazy field expiry, as
    /// `get_mut` does for the key's own expiry) and the key with them if that leaves the hash
    /// empty: what every hash command reads through. One lookup.
    pub fn get_mut_live(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let (slot, i, h) = self.find_live(key, now_ms)?;
        let due = match &self.items.get(i)?.entry.value {
            Value::Hash(hash) => hash.next_expiry().filter(|&at| at <= now_ms),
            _ => None,
        };
        if let Some(before) = due {
            if self
                .purge_fields_found(slot, i, h, before, now_ms, usize::MAX)
                .1
            {
                return None;
            }
        }
        self.items.get_mut(i).map(|item| &mut item.entry)
    }

    /// The live entry of `key`, without reclaiming an expired one.
    pub fn get(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        let (_, i) = self.find(key, self.hash(key))?;
        self.items
            .get(i)
            .map(|item| &item.entry)
            .filter(|e| !e.is_expired(now_ms))
    }

    /// Stores `value` under `key` with the given expiry, replacing any previous entry.
    pub fn set(&mut self, key: &[u8], value: Value, expire_at: Option<u64>) {
        self.put(key, Entry::new(value, expire_at));
    }

    /// Stores a whole entry (value and expiry) under `key`, replacing any previous one. Every
    /// way of adding a key goes through here, so the expiry bookkeeping lives in one place.
    /// A database already holding `u32::MAX - 1` keys ignores new ones (that is far more
    /// memory than any shard has).
    pub fn put(&mut self, key: &[u8], entry: Entry) {
        let h = self.hash(key);
        let new_fields_due = next_field_expiry(&entry.value);
        if let Some((_, i)) = self.find(key, h) {
            let Some(item) = self.items.get_mut(i) else {
                return;
            };
            let new = entry.expire_at();
            let old = item.replace(key, entry);
            self.note_fields(h, next_field_expiry(&old.value), new_fields_due);
            if old.expire_at() != new {
                self.unlist_expiry(old.expire_at(), h);
                self.list_expiry(new, h);
            }
            return;
        }
        if self.items.len() >= MAX_ENTRIES {
            return;
        }
        self.note_fields(h, None, new_fields_due);
        self.list_expiry(entry.expire_at(), h);
        self.index.insert(h, self.items.len());
        self.items.push(Item::new(key, entry));
    }

    /// Removes `key` and hands its entry over, expired or not (for moving keys between shards
    /// and databases). Every way of removing a key goes through here or, where the key's
    /// position is already known (lazy and active expiry, `RANDOMKEY`), through its core
    /// `remove_found`: per-key bookkeeping on removal belongs there.
    pub fn take(&mut self, key: &[u8]) -> Option<Entry> {
        let h = self.hash(key);
        let (slot, i) = self.find(key, h)?;
        self.remove_found(slot, i, h)
    }

    /// Deletes `key`; true if a live key was deleted.
    pub fn remove(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.take(key)
            .is_some_and(|entry| !entry.is_expired(now_ms))
    }

    /// Sets (`Some`) or clears (`None`) the expiry of `key`; false if there is no such key
    /// (expired or not: callers check liveness first).
    pub fn set_expire_at(&mut self, key: &[u8], at: Option<u64>) -> bool {
        let h = self.hash(key);
        let Some((_, i)) = self.find(key, h) else {
            return false;
        };
        let Some(item) = self.items.get_mut(i) else {
            return false;
        };
        let old = item.entry.expire_at();
        item.entry.expire_at = stored_expiry(at);
        if old != at {
            self.unlist_expiry(old, h);
            self.list_expiry(at, h);
        }
        true
    }

    /// Deletes every key.
    pub fn clear(&mut self) {
        self.index.clear();
        self.items = Vec::new();
        self.expires.clear();
        self.field_expiries.clear();
    }

    /// Iterates over live keys.
    pub fn keys(&self, now_ms: u64) -> impl Iterator<Item = &[u8]> {
        self.items
            .iter()
            .filter(move |item| !item.entry.is_expired(now_ms))
            .map(Item::key)
    }

    /// One step of a `SCAN`: calls `f(key, entry)` for about `count` keys (expired ones
    /// included: the caller filters) starting at `cursor` (0 starts a scan), and returns the
    /// cursor for the next step, 0 when the walk is complete. A key present for the whole walk
    /// is visited exactly once, however the database grows or shrinks in between.
    pub fn scan<'s>(
        &'s self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&'s [u8], &'s Entry),
    ) -> u64 {
        let items = &self.items;
        self.index
            .scan(cursor, count.max(1), |i| {
                if let Some(item) = items.get(i) {
                    f(item.key(), &item.entry);
                }
            })
            .unwrap_or(0)
    }

    /// A random live key (`RANDOMKEY`), reclaiming expired keys it draws on the way, as Redis
    /// does. If it keeps drawing expired keys it walks the keys from a random point instead, so
    /// the work stays bounded when most keys have expired but are not reclaimed yet.
    pub fn random_key(&mut self, now_ms: u64) -> Option<&[u8]> {
        let mut found = None;
        for _ in 0..RANDOM_DRAWS {
            if self.items.is_empty() {
                return None;
            }
            let i = (self.next_random() % self.items.len() as u64) as usize;
            let expired = self.items.get(i)?.entry.is_expired(now_ms);
            if !expired {
                found = Some(i);
                break;
            }
            self.remove_position(i);
        }
        let len = self.items.len();
        let i = match found {
            Some(i) => i,
            None => {
                let start = (self.next_random() % len.max(1) as u64) as usize;
                (0..len).map(|k| (start + k) % len).find(|&i| {
                    self.items
                        .get(i)
                        .is_some_and(|it| !it.entry.is_expired(now_ms))
                })?
            }
        };
        self.items.get(i).map(Item::key)
    }

    /// Approximate bytes used by keys and values.
    pub fn memory_usage(&self) -> usize {
        self.index.heap_bytes()
            + self.expires.heap_bytes()
            + self.field_expiries.heap_bytes()
            + self.items.capacity() * std::mem::size_of::<Item>()
            + self
                .items
                .iter()
                .map(|item| {
                    item.key.as_ref().map_or(0, ThinBytes::heap_len)
                        + item.entry.value.memory_usage()
                })
                .sum::<usize>()
    }

    /// Bytes the keyspace spends on `key` holding `value`: the key's allocation (none for a
    /// hash, which holds its key itself and counts it in its own figure), the rest of its place
    /// in the dense array and its index slot (for `MEMORY USAGE`, which adds the value's own).
    pub fn key_overhead(key: &[u8], value: &Value) -> usize {
        let own_key = match value {
            Value::Hash(_) => 0,
            _ => key.len(),
        };
        own_key + std::mem::size_of::<Item>() - std::mem::size_of::<Value>()
            + 2 * std::mem::size_of::<u64>()
    }

    /// Active expiry of whole keys: deletes at most `budget` expired keys, earliest first, and
    /// returns how many.
    pub fn expire_keys(&mut self, now_ms: u64, budget: usize) -> usize {
        let mut deleted = 0;
        // Each round deletes a key or drops a record no key matches; both count as work.
        for _ in 0..budget {
            let Some((at, h)) = self.expires.first() else {
                break;
            };
            if at >= now_ms {
                break;
            }
            let items = &self.items;
            let found = self.index.find(h, |i| {
                items.get(i).is_some_and(|item| item.entry.expire_at == at)
            });
            match found {
                Some((slot, i)) => {
                    self.remove_found(slot, i, h);
                    deleted += 1;
                }
                None => self.expires.forget(at, h),
            }
        }
        deleted
    }

    /// Active expiry of hash fields: deletes at most `budget` expired fields (and hashes left
    /// empty), returns how many. Visits only hashes with due fields, earliest first, and takes
    /// from a big hash only what the budget allows, so that a million fields expiring at once
    /// are reclaimed over many short calls.
    pub fn expire_fields(&mut self, now_ms: u64, budget: usize) -> usize {
        let mut done = 0;
        while done < budget {
            let Some((at, h)) = self.field_expiries.first() else {
                break;
            };
            if at > now_ms {
                break;
            }
            // Expired or not: the field index follows the value.
            let items = &self.items;
            let found = self.index.find(h, |i| {
                items.get(i).is_some_and(|item| {
                    next_field_expiry(&item.entry.value).is_some_and(|next| next == at)
                })
            });
            let Some((slot, i)) = found else {
                // Cannot happen while the index is exact; never spin if it were not.
                self.field_expiries.forget(at, h);
                continue;
            };
            let (purged, gone) = self.purge_fields_found(slot, i, h, at, now_ms, budget - done);
            done += purged;
            if !gone && purged == 0 {
                // Cannot happen while the index is exact; never spin if it were not.
                break;
            }
        }
        done
    }

    /// Deletes at most `budget` due fields of the hash found at `slot` / `i` (key hash `h`),
    /// whose earliest field expiry was `before`, moves its listing in the field expiry index,
    /// and deletes the key if that empties it. Returns how many fields went and whether the key
    /// did; nothing for a value that is not a hash.
    fn purge_fields_found(
        &mut self,
        slot: usize,
        i: usize,
        h: u32,
        before: u64,
        now_ms: u64,
        budget: usize,
    ) -> (usize, bool) {
        let Some(Entry {
            value: Value::Hash(hash),
            ..
        }) = self.items.get_mut(i).map(|item| &mut item.entry)
        else {
            return (0, false);
        };
        let purged = hash.purge_expired(now_ms, budget);
        let (empty, next) = (hash.is_empty(), hash.next_expiry());
        self.note_fields(h, Some(before), next);
        if empty {
            self.remove_found(slot, i, h);
        }
        (purged, empty)
    }

    /// Records that a command changed the hash at `key` in place, moving its earliest field
    /// expiry from `before` to `after` (`None`: no field TTLs). Every in-place change to a
    /// hash's field TTLs (setting, clearing, deleting or expiring a field that has one) must be
    /// reported, so that active expiry finds the hash; whole values added or removed through
    /// [`Db::put`] and [`Db::take`] are tracked by those.
    pub fn note_field_expiry(&mut self, key: &[u8], before: Option<u64>, after: Option<u64>) {
        // Most changes leave it where it was: no need to hash the key.
        if before != after {
            self.note_fields(self.hash(key), before, after);
        }
    }

    /// Moves the hash whose key hashes to `h` in the field expiry index from `before` to
    /// `after` (either may be `None`: no field TTLs).
    fn note_fields(&mut self, h: u32, before: Option<u64>, after: Option<u64>) {
        if before != after {
            if let Some(at) = before {
                self.field_expiries.remove(at, h);
            }
            if let Some(at) = after {
                self.field_expiries.add(at, h);
            }
        }
    }

    /// Number of hashes that have field TTLs.
    pub fn field_expiry_len(&self) -> usize {
        self.field_expiries.len()
    }

    /// Removes the item at dense position `i` and index slot `slot` (hash `h`).
    fn remove_found(&mut self, slot: usize, i: usize, h: u32) -> Option<Entry> {
        if i >= self.items.len() {
            return None;
        }
        self.index.remove(slot);
        let item = self.items.swap_remove(i);
        // The last item moved into `i`: repoint its slot.
        let moved_from = self.items.len();
        if let Some(moved) = self.items.get(i) {
            let moved_h = self.hash(moved.key());
            if let Some((s, _)) = self.index.find(moved_h, |x| x == moved_from) {
                self.index.set_position(s, i);
            }
        }
        if self.items.capacity() > 64 && self.items.len() < self.items.capacity() / 4 {
            self.items.shrink_to(self.items.len() * 2);
        }
        self.unlist_expiry(item.entry.expire_at(), h);
        self.note_fields(h, next_field_expiry(&item.entry.value), None);
        Some(item.entry)
    }

    /// Removes the item at dense position `i`.
    fn remove_position(&mut self, i: usize) {
        let Some(item) = self.items.get(i) else {
            return;
        };
        let h = self.hash(item.key());
        if let Some((slot, _)) = self.index.find(h, |x| x == i) {
            self.remove_found(slot, i, h);
        }
    }

    fn list_expiry(&mut self, at: Option<u64>, h: u32) {
        if let Some(at) = at {
            self.expires.add(at, h);
        }
    }

    fn unlist_expiry(&mut self, at: Option<u64>, h: u32) {
        if let Some(at) = at {
            self.expires.remove(at, h);
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: plenty for picking keys, and no shared state.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
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
    use crate::hash::FieldTtl;
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

    #[test]
    fn overwriting_across_types_keeps_the_key() {
        let mut db = Db::new();
        let kinds = [
            s("1"),
            hash_with_ttls(&[]),
            s("text"),
            s("2"),
            hash_with_ttls(&[]),
        ];
        for value in kinds.into_iter().cycle().take(12) {
            let kind = value.type_name();
            db.set(b"key", value, None);
            let found = db.get(b"key", 0).map(|e| e.value.type_name());
            assert_eq!(found, Some(kind));
            assert_eq!(db.keys(0).collect::<Vec<_>>(), vec![&b"key"[..]]);
        }
        assert_eq!(db.len(), 1);
    }

    #[test]
    fn many_keys_with_deletes_stay_findable() {
        let mut db = Db::new();
        for i in 0..20_000 {
            db.set(format!("key:{i}").as_bytes(), s(&i.to_string()), None);
        }
        for i in (0..20_000).step_by(3) {
            assert!(db.remove(format!("key:{i}").as_bytes(), 0));
        }
        for i in 0..20_000 {
            let found = db.get(format!("key:{i}").as_bytes(), 0).is_some();
            assert_eq!(found, i % 3 != 0, "key:{i}");
        }
        assert_eq!(db.keys(0).count(), db.len());
    }

    #[test]
    fn active_expiry_is_bounded_and_earliest_first() {
        let mut db = Db::new();
        for i in 0..10_000u64 {
            db.set(format!("k{i}").as_bytes(), s("v"), Some(100 + i % 7));
        }
        db.set(b"late", s("v"), Some(1_000_000));
        db.set(b"forever", s("v"), None);
        assert_eq!(db.volatile_len(), 10_001);
        assert_eq!(db.expire_keys(50, 1000), 0, "nothing has expired yet");
        assert_eq!(db.expire_keys(1000, 1000), 1000);
        assert_eq!(db.len(), 9002);
        let mut total = 1000;
        loop {
            let n = db.expire_keys(1000, 1000);
            total += n;
            if n == 0 {
                break;
            }
        }
        assert_eq!(total, 10_000);
        assert_eq!(db.len(), 2);
        assert_eq!(db.volatile_len(), 1);
        assert!(db.get(b"late", 1000).is_some());
    }

    #[test]
    fn set_expire_at_moves_the_key_in_the_expiry_index() {
        let mut db = Db::new();
        db.set(b"k", s("v"), Some(10));
        assert!(db.set_expire_at(b"k", Some(1000)));
        assert_eq!(db.expire_keys(500, 10), 0);
        assert!(db.set_expire_at(b"k", None));
        assert_eq!(db.volatile_len(), 0);
        assert_eq!(db.expire_keys(5000, 10), 0);
        assert!(db.set_expire_at(b"k", Some(20)));
        assert_eq!(db.expire_keys(5000, 10), 1);
        assert!(!db.set_expire_at(b"k", None));
    }

    #[test]
    fn scan_survives_growth_and_returns_every_kept_key() {
        let mut db = Db::new();
        for i in 0..500 {
            db.set(format!("kept{i}").as_bytes(), s("v"), None);
        }
        let mut seen = std::collections::HashMap::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = db.scan(cursor, 7, |k, _| *seen.entry(k.to_vec()).or_insert(0) += 1);
            // Growth by whole table sizes, then deletions, between steps.
            let adding = if round == 3 { 5000 } else { 4 };
            for j in 0..adding {
                db.set(format!("new{round}-{j}").as_bytes(), s("v"), None);
            }
            if round == 6 {
                for j in 0..5000 {
                    db.remove(format!("new3-{j}").as_bytes(), 0);
                }
            }
            round += 1;
            if cursor == 0 {
                break;
            }
        }
        for i in 0..500 {
            assert_eq!(seen.get(format!("kept{i}").as_bytes()), Some(&1), "kept{i}");
        }
    }

    #[test]
    fn random_key_skips_and_reclaims_expired_keys() {
        let mut db = Db::new();
        assert!(db.random_key(0).is_none());
        for i in 0..1000 {
            db.set(format!("dead{i}").as_bytes(), s("v"), Some(5));
        }
        db.set(b"alive", s("v"), None);
        assert_eq!(db.random_key(10), Some(&b"alive"[..]));
        assert!(db.len() < 1001);
        let mut db = Db::new();
        for i in 0..100 {
            db.set(format!("k{i}").as_bytes(), s("v"), None);
        }
        let distinct: std::collections::HashSet<Vec<u8>> = (0..200)
            .filter_map(|_| db.random_key(0).map(<[u8]>::to_vec))
            .collect();
        assert!(distinct.len() > 50, "{}", distinct.len());
    }

    fn hash_with_ttls(ttls: &[u64]) -> Value {
        let mut h = crate::hash::Hash::new();
        for (i, &at) in ttls.iter().enumerate() {
            let field = format!("f{i}");
            h.set(field.as_bytes(), b"v", FieldTtl::Clear, &Default::default());
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

    #[test]
    fn a_live_lookup_purges_due_fields_first() {
        let mut db = Db::new();
        db.set(b"h", hash_with_ttls(&[10, 30]), None);
        db.set(b"k", s("x"), Some(5));
        let fields = |db: &mut Db, now| match db.get_mut_live(b"h", now) {
            Some(Entry {
                value: Value::Hash(h),
                ..
            }) => Some(h.len()),
            _ => None,
        };
        assert_eq!(fields(&mut db, 9), Some(2));
        // One field due: gone, and the hash listed under its next field expiry.
        assert_eq!(fields(&mut db, 10), Some(1));
        assert_eq!(db.expire_fields(29, 100), 0);
        assert_eq!(db.field_expiry_len(), 1);
        // The last one due: the key goes, with its listing.
        assert_eq!(fields(&mut db, 30), None);
        assert!(db.get(b"h", 0).is_none());
        assert_eq!(db.field_expiry_len(), 0);
        // The key's own expiry too, as `get_mut`.
        assert!(db.get_mut_live(b"k", 5).is_some());
        assert!(db.get_mut_live(b"k", 6).is_none());
        assert_eq!(db.len(), 0);
    }

    #[test]
    fn a_hash_holds_its_key_through_moves_and_type_changes() {
        assert_eq!(std::mem::size_of::<Item>(), 32);
        let mut db = Db::new();
        for i in 0..1000 {
            db.set(format!("h{i}").as_bytes(), hash_with_ttls(&[]), None);
            db.set(format!("s{i}").as_bytes(), s("v"), Some(10_000));
        }
        // Moved to another key, replaced by a string and by a hash again.
        let moved = db.take(b"h1").unwrap();
        db.put(b"moved", moved);
        db.set(b"h2", s("now a string"), None);
        db.set(b"s3", hash_with_ttls(&[]), Some(20_000));
        let mut keys: Vec<Vec<u8>> = db.keys(0).map(<[u8]>::to_vec).collect();
        keys.sort();
        let mut want: Vec<Vec<u8>> = (0..1000)
            .flat_map(|i| [format!("h{i}"), format!("s{i}")])
            .filter(|k| k != "h1")
            .chain(["moved".to_string()])
            .map(String::into_bytes)
            .collect();
        want.sort();
        assert_eq!(keys, want);
        assert!(matches!(
            db.get(b"moved", 0).map(|e| &e.value),
            Some(Value::Hash(_))
        ));
        assert!(matches!(
            db.get(b"h2", 0).map(|e| &e.value),
            Some(Value::Str(_))
        ));
        assert_eq!(db.get(b"s3", 0).and_then(Entry::expire_at), Some(20_000));
        assert!(db.get(b"h1", 0).is_none());
        // Deleting half of them moves others around the dense array.
        for i in (0..1000).step_by(2) {
            assert!(db.remove(format!("h{i}").as_bytes(), 0) || i == 2);
        }
        for i in (1..1000).step_by(2).filter(|&i| i != 1) {
            assert!(db.get(format!("h{i}").as_bytes(), 0).is_some(), "h{i}");
        }
        assert_eq!(db.expire_keys(15_000, 10_000), 999);
        assert!(db.get(b"s3", 15_000).is_some());
    }
}
