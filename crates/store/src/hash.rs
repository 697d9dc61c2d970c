//! The value type behind Redis hashes (`HSET`, `HGET`, ...), including the
//! per-field expiry of Redis 7.4+ (`HEXPIRE`, `HPEXPIREAT`, `HPERSIST`, ...).
//!
//! Shardis runs one single-threaded shard per core, so [`Hash`](struct@Hash)
//! is a plain `&mut self` type: no locks, no I/O and no clock. Wherever time
//! matters it is passed in as milliseconds since the Unix epoch.
//!
//! # Two encodings
//!
//! Like Redis, a hash starts in a compact encoding and moves, one way only,
//! to a hash table once it grows past [`HashLimits`].
//!
//! **Compact** (Redis's "listpack"): the whole hash is one exact-size
//! buffer (a [`ThinBytes`]). Most hashes are small, and for them a single allocation with
//! no per-field pointers is far cheaper than any table; a linear scan over a
//! few hundred short entries is also about as fast as hashing. Layout:
//!
//! ```text
//! key     = varint(key_len) key               the key the hash is stored under
//! header  = varint(count << 1 | ex)          ex: "listpackex" (see below)
//! entry   = name [varint(expire_at_ms)] value  the expiry only when has_ttl
//! name    = varint(field_len << 2 | has_ttl) field   spelled out
//!         | varint(id << 2 | 2 | has_ttl)            a shared name
//! value   = 0nnnnnnn                          the integer n, 0..=127
//!         | 10llllll bytes                    length l < 64
//!         | 11llllll varint(len >> 6) bytes   longer: low 6 bits, then the rest
//! ```
//!
//! Varints are LEB128, so a field of up to 31 bytes costs one length byte, and a field without a
//! TTL pays nothing for the TTL feature: the flag lives in a bit of its length. A field name that
//! many hashes use is not spelled out at all but shared, named by its id in the process's table of
//! shared names (one byte for the first 32 names; see [`field_names`](crate::field_names) for which
//! names are shared). A value of up to 63 bytes also costs one length byte, and a value that is the
//! canonical decimal text of 0..=127 (ages, counts, flags) is that one byte alone; it reads back as
//! the same text, borrowed from a static table. An empty hash outside a database owns no allocation
//! at all.
//!
//! The key comes first because the database stores a hash's key in it (see
//! [`Hash::stored_key`]): for a million small hashes that saves a million
//! allocations of a few bytes, each of which costs a whole allocator block.
//!
//! **Table**: used when the hash has more than `max_listpack_entries` fields or when a field or
//! value is longer than `max_listpack_value` bytes. Each field is one entry holding field, optional
//! expiry and value together (`varint(field_len << 2 | ttl_form) field [expiry] value`) in
//! the table's [`Arena`](crate::arena) (entries back to back in shared blocks, no allocator header
//! or rounding per field). An expiry within 2^23 ms (2.3 hours) either way of the table's first
//! takes 3 bytes, the fields one command or one load gives a TTL; one within the 2^32 ms (49 days)
//! from a base of the table's takes 4, as its distance from the base; any other 48 bits. The base
//! is set 2^31 ms before the first expiry the table holds and moves only while no field has one,
//! so that a million fields given a day each pay 3 bytes apiece. (A hash whose fields always
//! have some expiry keeps its base: 25 days after the first, new expiries take 6 bytes.) Lookups
//! go through the keyspace's own index, an [`OrderedIndex`] of 8-byte slots `(hash32, position)`
//! whose positions are the entries' 4-byte arena slots themselves, so a field costs its entry
//! and one index slot; HRANDFIELD draws index slots, again on an empty one. The index is kept
//! **sorted by hash32**. Keeping the index sorted is what makes HSCAN work: the cursor is a
//! position in hash space, not in slot space, so the index may grow or shrink between calls and a
//! field present for the whole scan is still returned (Redis gets the same guarantee from its
//! reverse-binary cursor over power-of-two tables).
//!
//! # The TTL index
//!
//! Active expiry must find the earliest-expiring fields of a million-field hash without scanning
//! it. The table keeps an [`ExpiryIndex`] (sorted records `(expire_at, hash32)` of 4-10 bytes,
//! as the keyspace does) next to the fields. It stores the 4-byte field hash rather than the
//! field itself so that no field is stored twice; the rare fields that share a hash32 are told
//! apart by comparing their stored expiry. A sorted index (rather than a lazily cleaned heap) is exact, so
//! [`Hash::next_expiry`] never sees stale entries and no O(n) rebuild can land on a single command.
//! The compact encoding has no index: a linear scan of at most `max_listpack_entries` fields is
//! cheap.
//!
//! # listpack vs listpackex
//!
//! Redis 7.4+ converts a listpack hash to `OBJ_ENCODING_LISTPACK_EX`, which
//! `OBJECT ENCODING` reports as `"listpackex"`, the first time any
//! field-expiry command runs on it (`hashTypeSetExInit`), whether or not a
//! TTL ends up being set, and never converts it back. The compact header
//! carries that flag: [`Hash::set_expire_at`] with a time sets it, and the
//! command layer calls [`Hash::enable_field_expiry`] at the start of every
//! command that Redis routes through `hashTypeSetExInit` (HEXPIRE family,
//! HSETEX/HGETEX with an expiry). Unlike Redis we do not reorder a
//! listpackex by expiry; field order in a hash is unspecified anyway.

use std::ops::Range;

use ahash::RandomState;

use crate::arena::{Arena, Part, Slot};
use crate::expiry_index::ExpiryIndex;
use crate::field_names;
use crate::index::OrderedIndex;
use crate::thin::{read_varint, varint, ThinBytes};

/// When a compact hash must become a hash table (Redis's
/// `hash-max-listpack-entries` and `hash-max-listpack-value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashLimits {
    /// Most fields a compact hash may hold; one more converts it.
    pub max_listpack_entries: usize,
    /// Longest field or value, in bytes, a compact hash may hold; a longer
    /// one converts it.
    pub max_listpack_value: usize,
}

impl Default for HashLimits {
    /// Redis's defaults: 512 entries, 64 bytes.
    fn default() -> Self {
        HashLimits {
            max_listpack_entries: 512,
            max_listpack_value: 64,
        }
    }
}

/// Redis also converts a listpack that would pass 1 GiB (`lpSafeToAdd`);
/// linear scans over more than that would stall the shard whatever the
/// configured limits say.
const COMPACT_MAX_BYTES: usize = 1 << 30;

/// The index's limit (its positions are `u32`). Four billion fields would
/// need well over 100 GB.
const MAX_TABLE_FIELDS: usize = crate::index::MAX_ENTRIES;

/// A Redis hash value: field → value, each field with an optional absolute
/// expiry in milliseconds since the Unix epoch.
///
/// Expired fields are not hidden by this type (it has no clock): callers
/// check [`Hash::expire_at`] / [`Hash::get_with_ttl`] for lazy expiry and
/// call [`Hash::purge_expired`] for active expiry.
pub struct Hash {
    /// A compact hash's buffer, with the bits of an `Option<ThinBytes>` (null when the hash is
    /// empty and owns nothing), or a `Box<Table>` with the low bit set. One word instead of an
    /// enum's two keeps a [`Value`](crate::Value) at 16 bytes and an item of the keyspace at 32.
    /// Only [`Hash::repr`], [`Hash::repr_mut`], [`Hash::into_repr`] and the constructors look at
    /// the bits.
    ptr: *mut u8,
}

/// The low pointer bit that marks a table: `Box<Table>` is 8-aligned and a [`ThinBytes`]
/// 2-aligned, so the bit is 0 in both.
const TABLE_BIT: usize = 1;

// SAFETY: a `Hash` owns its buffer or table exclusively, like the `ThinBytes` or `Box` it holds.
unsafe impl Send for Hash {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for Hash {}

/// A hash's representation, borrowed or owned.
enum Repr<C, T> {
    Compact(C),
    Table(T),
}

impl Default for Hash {
    fn default() -> Self {
        Hash {
            ptr: std::ptr::null_mut(),
        }
    }
}

impl Drop for Hash {
    fn drop(&mut self) {
        drop(std::mem::take(self).into_repr());
    }
}

impl Clone for Hash {
    fn clone(&self) -> Hash {
        match self.repr() {
            Repr::Compact(c) => Hash::from_compact(c.clone()),
            Repr::Table(t) => Hash::from_table(Box::new(t.clone())),
        }
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.repr() {
            Repr::Compact(c) => c.fmt(f),
            Repr::Table(t) => t.fmt(f),
        }
    }
}

impl Hash {
    fn from_compact(c: Compact) -> Hash {
        Hash {
            ptr: c.buf.map_or(std::ptr::null_mut(), ThinBytes::into_raw),
        }
    }

    fn from_table(t: Box<Table>) -> Hash {
        Hash {
            ptr: Box::into_raw(t).cast::<u8>().map_addr(|a| a | TABLE_BIT),
        }
    }

    fn is_table(&self) -> bool {
        self.ptr.addr() & TABLE_BIT != 0
    }

    fn table_ptr(&self) -> *mut Table {
        self.ptr.map_addr(|a| a & !TABLE_BIT).cast::<Table>()
    }

    fn repr(&self) -> Repr<&Compact, &Table> {
        if self.is_table() {
            // SAFETY: a tagged pointer comes from `Box::into_raw` in `from_table`, and the box
            // is owned by `self` until `into_repr`.
            Repr::Table(unsafe { &*self.table_ptr() })
        } else {
            // SAFETY: untagged, `ptr` holds the bits of an `Option<ThinBytes>` (`from_compact`),
            // which has the layout of a pointer with null for `None`; `Compact` is a
            // transparent wrapper of one.
            Repr::Compact(unsafe { &*std::ptr::from_ref(&self.ptr).cast::<Compact>() })
        }
    }

    fn repr_mut(&mut self) -> Repr<&mut Compact, &mut Table> {
        if self.is_table() {
            // SAFETY: as in `repr`; `&mut self` makes the access exclusive.
            Repr::Table(unsafe { &mut *self.table_ptr() })
        } else {
            // SAFETY: as in `repr`; a `Compact` written through the reference stays a valid
            // `Option<ThinBytes>`, which is what an untagged `ptr` must hold.
            Repr::Compact(unsafe { &mut *std::ptr::from_mut(&mut self.ptr).cast::<Compact>() })
        }
    }

    fn into_repr(self) -> Repr<Compact, Box<Table>> {
        let this = std::mem::ManuallyDrop::new(self);
        if this.is_table() {
            // SAFETY: as in `repr`; `this` is not dropped, so the box has one owner.
            Repr::Table(unsafe { Box::from_raw(this.table_ptr()) })
        } else {
            // SAFETY: as in `repr`; `this` is not dropped, so the buffer has one owner.
            let buf = (!this.ptr.is_null()).then(|| unsafe { ThinBytes::from_raw(this.ptr) });
            Repr::Compact(Compact { buf })
        }
    }

    /// Makes the hash a table, dropping what it was.
    fn set_table(&mut self, table: Box<Table>) {
        *self = Hash::from_table(table);
    }
}

impl Hash {
    /// An empty hash in the compact encoding; it allocates nothing until the
    /// first field is set.
    pub fn new() -> Hash {
        Hash::default()
    }

    /// Number of stored fields, expired or not (callers purge expired
    /// fields first when they need the live count).
    pub fn len(&self) -> usize {
        match self.repr() {
            Repr::Compact(c) => c.header().count,
            Repr::Table(t) => t.index.len(),
        }
    }

    /// True when no field is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `field`, if present.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.get_with_ttl(field).map(|(value, _)| value)
    }

    /// The value of `field` and its expiry (if it has one), in one lookup;
    /// lets HGET-style commands apply lazy expiry without a second search.
    pub fn get_with_ttl(&self, field: &[u8]) -> Option<(&[u8], Option<u64>)> {
        match self.repr() {
            Repr::Compact(c) => c.find(field).map(|e| (e.value, e.ttl)),
            Repr::Table(t) => t.get(field).map(|e| (e.value, e.ttl)),
        }
    }

    /// True when `field` is stored.
    pub fn contains(&self, field: &[u8]) -> bool {
        self.get_with_ttl(field).is_some()
    }

    /// Inserts or overwrites `field`, its expiry as `ttl` says: dropped (HSET), kept (HINCRBY,
    /// HINCRBYFLOAT; a new field has none to keep) or set (HSETEX, value and expiry written in
    /// one step, so a compact hash is rebuilt once). A time in `FieldTtl::At` is the caller's
    /// to check: one already past should delete the field instead. Converts a compact hash to
    /// a table when `limits` require it. Returns true when the field is new.
    ///
    /// A table already holding `u32::MAX - 1` fields, or whose arena has
    /// run out of slots, ignores new fields (and returns false); that needs
    /// far more memory than any shard has.
    pub fn set(&mut self, field: &[u8], value: &[u8], ttl: FieldTtl, limits: &HashLimits) -> bool {
        if let Repr::Compact(c) = self.repr_mut() {
            if let Some(is_new) = c.try_set(field, value, ttl, limits) {
                return is_new;
            }
        }
        let mut table = self.take_table();
        let is_new = table.set(field, value, ttl);
        self.set_table(table);
        is_new
    }

    /// Gets ready for a command about to set `fields` fields: a compact hash
    /// converts to a table at once, sized for them, when `fields` alone is
    /// more than it may hold, repeated fields included. Redis does the same
    /// (`hashTypeTryConversion`), so `OBJECT ENCODING` answers alike, and a
    /// big `HSET` builds its table without growing it step by step.
    pub fn prepare_bulk_set(&mut self, fields: usize, limits: &HashLimits) {
        if let Repr::Compact(c) = self.repr() {
            if fields > limits.max_listpack_entries {
                let capacity = c.header().count.saturating_add(fields);
                let table = Table::from_compact(c, capacity.min(MAX_TABLE_FIELDS));
                self.set_table(Box::new(table));
            }
        }
    }

    /// Deletes `field`; returns false when it was not there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.repr_mut() {
            Repr::Compact(c) => c.remove(field),
            Repr::Table(t) => t.remove(field),
        }
    }

    /// The expiry of `field`: `None` when there is no such field,
    /// `Some(None)` when it has no TTL, `Some(Some(ms))` otherwise.
    pub fn expire_at(&self, field: &[u8]) -> Option<Option<u64>> {
        self.get_with_ttl(field).map(|(_, ttl)| ttl)
    }

    /// Sets (`Some(ms)`) or clears (`None`, HPERSIST) the expiry of `field`.
    /// Returns false when there is no such field. Setting a time on a
    /// compact hash makes it report `"listpackex"`, even when the field is
    /// missing, as Redis does. A time past 2^48 - 1 ms is stored as that
    /// (commands cannot set one: Redis's limit is 2^46 - 1).
    pub fn set_expire_at(&mut self, field: &[u8], at: Option<u64>) -> bool {
        let at = at.map(|at| at.min(TTL_MAX));
        match self.repr_mut() {
            Repr::Compact(c) => c.set_expire_at(field, at),
            Repr::Table(t) => t.set_expire_at(field, at),
        }
    }

    /// Marks a compact hash as field-expiry aware, so that `OBJECT ENCODING`
    /// says `"listpackex"` from now on. Redis does this at the start of every
    /// command that may set a field TTL (HEXPIRE family, HSETEX / HGETEX with
    /// an expiry), even when nothing ends up set; the command layer calls
    /// this there. No effect on a table.
    pub fn enable_field_expiry(&mut self) {
        if let Repr::Compact(c) = self.repr_mut() {
            c.enable_ex();
        }
    }

    /// The earliest field expiry in the hash, if any field has one.
    /// O(log n) for a table; a scan for a compact hash that has used field
    /// expiry ("listpackex"), O(1) for one that never has (only such a hash
    /// can hold a TTL), so commands on plain small hashes pay nothing.
    pub fn next_expiry(&self) -> Option<u64> {
        match self.repr() {
            Repr::Compact(c) if !c.header().ex => None,
            Repr::Compact(c) => c.iter().filter_map(|e| e.ttl).min(),
            Repr::Table(t) => t.next_expiry(),
        }
    }

    /// Deletes fields whose expiry is `<= now_ms`, at most `budget` of them,
    /// earliest first for a table. Returns how many were deleted; call again
    /// (or check [`Hash::next_expiry`]) to continue.
    pub fn purge_expired(&mut self, now_ms: u64, budget: usize) -> usize {
        match self.repr_mut() {
            Repr::Compact(c) => c.purge_expired(now_ms, budget),
            Repr::Table(t) => t.purge_expired(now_ms, budget),
        }
    }

    /// All `(field, value)` pairs, in no particular order (insertion order
    /// for a compact hash).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.iter_with_ttl().map(|(f, v, _)| (f, v))
    }

    /// All `(field, value, expiry)` triples, in the same order as
    /// [`Hash::iter`].
    pub fn iter_with_ttl(&self) -> impl Iterator<Item = (&[u8], &[u8], Option<u64>)> {
        match self.repr() {
            Repr::Compact(c) => AnyIter::Compact(c.iter()),
            Repr::Table(t) => AnyIter::Table(t.index.positions(), t),
        }
    }

    /// HSCAN: calls `f(field, value)` for about `count` fields starting at
    /// `cursor` (0 starts a scan) and returns the cursor for the next call,
    /// 0 when the scan is complete. A field present for the whole scan is
    /// reported at least once even if the hash is modified, grows, shrinks
    /// or converts between calls; a field may be reported more than once. A
    /// compact hash reports everything in one call and returns 0, as Redis
    /// does for listpacks; since a scan therefore never spans a compact
    /// hash, the one-way conversion cannot split one.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        self.scan_with_ttl(cursor, count, |field, value, _| f(field, value))
    }

    /// [`Hash::scan`], also passing each field's expiry so that HSCAN can
    /// skip fields that are expired but not yet purged.
    pub fn scan_with_ttl(
        &self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&[u8], &[u8], Option<u64>),
    ) -> u64 {
        match self.repr() {
            Repr::Compact(c) => {
                for e in c.iter() {
                    f(e.field, e.value, e.ttl);
                }
                0
            }
            Repr::Table(t) => t.scan(cursor, count, f),
        }
    }

    /// How many positions [`Hash::at_position`] takes: a compact hash's fields, a table's
    /// index slots (some of them empty). Drawing positions uniformly and drawing again on an
    /// empty one picks every field with the same chance (HRANDFIELD).
    pub fn positions(&self) -> usize {
        match self.repr() {
            Repr::Compact(c) => c.header().count,
            Repr::Table(t) => t.index.slot_count(),
        }
    }

    /// The `(field, value)` at position `p` (see [`Hash::positions`]), `None` for an empty
    /// slot of a table. O(1) for a table, O(p) for a compact hash.
    pub fn at_position(&self, p: usize) -> Option<(&[u8], &[u8])> {
        match self.repr() {
            Repr::Compact(c) => c.iter().nth(p).map(|e| (e.field, e.value)),
            Repr::Table(t) => {
                let e = t.entry_at(t.index.position_at(p)?)?;
                Some((e.field, e.value))
            }
        }
    }

    /// `OBJECT ENCODING`: `"listpack"`, `"listpackex"` (compact and
    /// field-expiry aware, see the module docs) or `"hashtable"`, as Redis 8
    /// answers.
    pub fn encoding(&self) -> &'static str {
        match self.repr() {
            Repr::Compact(c) if c.header().ex => "listpackex",
            Repr::Compact(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Bytes used by this value: the `Hash` itself plus every heap block,
    /// each rounded up to a jemalloc-like size class. For MEMORY USAGE and
    /// `used_memory` accounting.
    pub fn memory_usage(&self) -> usize {
        let inline = std::mem::size_of::<Hash>();
        match self.repr() {
            Repr::Compact(c) => {
                inline.saturating_add(c.buf.as_ref().map_or(0, |b| alloc_size(b.heap_len())))
            }
            Repr::Table(t) => inline.saturating_add(t.memory_usage()),
        }
    }

    /// The key this hash is stored under, empty for a hash outside a
    /// database. The database keeps a hash's key here rather than in an
    /// allocation of its own: in a compact hash it is the front of the one
    /// buffer, which saves a whole allocation per key.
    #[inline]
    pub fn stored_key(&self) -> &[u8] {
        match self.repr() {
            Repr::Compact(c) => c.key(),
            Repr::Table(t) => &t.key,
        }
    }

    /// Records the key this hash is stored under (see
    /// [`Hash::stored_key`]). The database calls this when it stores the
    /// hash; a compact hash rebuilds its buffer unless the key is unchanged.
    pub fn set_stored_key(&mut self, key: &[u8]) {
        match self.repr_mut() {
            Repr::Compact(c) => c.set_key(key),
            Repr::Table(t) if *t.key != *key => t.key = key.into(),
            Repr::Table(_) => {}
        }
    }

    /// Turns the representation into a table (converting a compact hash) and
    /// hands it over by value, leaving an empty compact hash behind.
    fn take_table(&mut self) -> Box<Table> {
        match std::mem::take(self).into_repr() {
            // Room for the field whose arrival triggers the conversion.
            Repr::Compact(c) => {
                Box::new(Table::from_compact(&c, c.header().count.saturating_add(1)))
            }
            Repr::Table(t) => t,
        }
    }
}

/// One of the two entry iterators, so that `iter_with_ttl` can return a
/// single concrete type.
enum AnyIter<'a, P> {
    Compact(CompactIter<'a>),
    /// A table's index positions, in hash order.
    Table(P, &'a Table),
}

impl<'a, P: Iterator<Item = usize>> Iterator for AnyIter<'a, P> {
    type Item = (&'a [u8], &'a [u8], Option<u64>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            AnyIter::Compact(it) => it.next().map(|e| (e.field, e.value, e.ttl)),
            AnyIter::Table(it, t) => it
                .find_map(|p| t.entry_at(p))
                .map(|e| (e.field, e.value, e.ttl)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            AnyIter::Compact(_) => (0, None),
            AnyIter::Table(it, _) => it.size_hint(),
        }
    }
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// What setting a field does to its expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldTtl {
    /// Drops it (`HSET`, and `HSETEX` without an expiry option).
    Clear,
    /// Keeps it (`HINCRBY`, `HSETEX ... KEEPTTL`).
    Keep,
    /// Sets it to this time, in ms (`HSETEX ... EX` and the like).
    At(u64),
}

impl FieldTtl {
    /// The expiry a field has after being set, given the one it had.
    fn of(self, old: Option<u64>) -> Option<u64> {
        match self {
            FieldTtl::Clear => None,
            FieldTtl::Keep => old,
            FieldTtl::At(at) => Some(at),
        }
    }
}

/// A length with a flag in its low bit: how a table entry marks "this field
/// has a TTL" without spending a byte on fields that have none, and how a
/// compact header marks "listpackex" (compact entries use [`field_tag`]).
fn tagged_len(len: usize, flag: bool) -> u64 {
    ((len as u64) << 1) | u64::from(flag)
}

/// Reads a tagged length written by [`tagged_len`].
fn read_tagged_len(buf: &[u8], pos: &mut usize) -> Option<(usize, bool)> {
    let tag = read_varint(buf, pos)?;
    Some((usize::try_from(tag >> 1).ok()?, tag & 1 == 1))
}

/// `len` bytes at `*pos`, advancing it.
fn take<'a>(buf: &'a [u8], pos: &mut usize, len: usize) -> Option<&'a [u8]> {
    let end = pos.checked_add(len)?;
    let bytes = buf.get(*pos..end)?;
    *pos = end;
    Some(bytes)
}

/// The block size an allocator hands out for `n` bytes, modelled on
/// jemalloc's size classes (16-byte steps up to 128, then four classes per
/// doubling). Used only for memory accounting.
fn alloc_size(n: usize) -> usize {
    match n {
        0 => 0,
        1..=8 => 8,
        9..=128 => n.saturating_add(15) & !15,
        _ => {
            // n - 1 >= 128, so `bits` >= 8 and the shift below is in range.
            let bits = usize::BITS - (n - 1).leading_zeros();
            let step = 1usize << (bits - 3);
            n.saturating_add(step - 1) & !(step - 1)
        }
    }
}

// ---------------------------------------------------------------------------
// Compact encoding
// ---------------------------------------------------------------------------

/// All fields in one exact-size buffer, behind the key the hash is stored
/// under; see the module docs for the layout.
#[derive(Clone, Debug, Default)]
#[repr(transparent)]
struct Compact {
    /// `None` for a hash with nothing to keep (no key, no field, no flag).
    buf: Option<ThinBytes>,
}

struct Header {
    count: usize,
    ex: bool,
    /// Where the entries start (after the stored key and the header).
    len: usize,
}

/// One parsed compact entry; `range` is its byte span in the buffer.
struct CompactEntry<'a> {
    range: Range<usize>,
    field: &'a [u8],
    /// The id of the field's name when it is shared, not spelled out.
    shared: Option<u16>,
    value: &'a [u8],
    ttl: Option<u64>,
}

struct CompactIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for CompactIter<'a> {
    type Item = CompactEntry<'a>;

    fn next(&mut self) -> Option<CompactEntry<'a>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let mut p = start;
        let parsed = (|| {
            let tag = read_varint(self.buf, &mut p)?;
            let named = usize::try_from(tag >> 2).ok()?;
            let (field, shared) = if tag & 2 == 0 {
                (take(self.buf, &mut p, named)?, None)
            } else {
                (field_names::name(named)?, Some(u16::try_from(named).ok()?))
            };
            let ttl = if tag & 1 == 1 {
                Some(read_varint(self.buf, &mut p)?)
            } else {
                None
            };
            let value = read_compact_value(self.buf, &mut p)?;
            Some((field, shared, value, ttl))
        })();
        match parsed {
            Some((field, shared, value, ttl)) => {
                self.pos = p;
                Some(CompactEntry {
                    range: start..p,
                    field,
                    shared,
                    value,
                    ttl,
                })
            }
            None => {
                // Corrupt tail (cannot happen with buffers we wrote): stop
                // rather than loop or panic.
                self.pos = self.buf.len();
                None
            }
        }
    }
}

/// Largest value stored as a one-byte integer in a compact entry.
const SMALL_INT_MAX: u8 = 127;

/// The decimal text of 0..=127, back to back, so that a value stored as a
/// one-byte integer can still be handed out as a borrowed `&[u8]`.
static SMALL_INT_TEXT: [u8; 274] = small_int_text_table();

const fn small_int_text_table() -> [u8; 274] {
    let mut out = [0u8; 274];
    let mut n = 0;
    let mut at = 0;
    while n <= SMALL_INT_MAX as usize {
        if n >= 100 {
            out[at] = b'0' + (n / 100) as u8;
            at += 1;
        }
        if n >= 10 {
            out[at] = b'0' + (n / 10 % 10) as u8;
            at += 1;
        }
        out[at] = b'0' + (n % 10) as u8;
        at += 1;
        n += 1;
    }
    out
}

/// The text of `n` (at most [`SMALL_INT_MAX`]) in [`SMALL_INT_TEXT`].
fn small_int_text(n: u8) -> &'static [u8] {
    let n = usize::from(n);
    let range = match n {
        0..=9 => n..n + 1,
        10..=99 => 10 + 2 * (n - 10)..12 + 2 * (n - 10),
        _ => 190 + 3 * (n - 100)..193 + 3 * (n - 100),
    };
    SMALL_INT_TEXT.get(range).unwrap_or_default()
}

/// `value` as a one-byte integer, when it is the canonical decimal text of
/// 0..=127 (no sign, no leading zero), so that it reads back identically.
fn as_small_int(value: &[u8]) -> Option<u8> {
    match value {
        [b'0'] => Some(0),
        [b'1'..=b'9', rest @ ..] if rest.len() <= 2 && rest.iter().all(u8::is_ascii_digit) => {
            let n = value
                .iter()
                .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
            u8::try_from(n).ok().filter(|&n| n <= SMALL_INT_MAX)
        }
        _ => None,
    }
}

/// Reads a value written by [`EntryBytes::new`] at `*pos`, advancing it.
fn read_compact_value<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let b = *buf.get(*pos)?;
    *pos += 1;
    let len = match b {
        0..=SMALL_INT_MAX => return Some(small_int_text(b)),
        0x80..=0xbf => usize::from(b & 0x3f),
        _ => {
            let high = usize::try_from(read_varint(buf, pos)?).ok()?;
            high.checked_mul(64)? | usize::from(b & 0x3f)
        }
    };
    take(buf, pos, len)
}

/// The key at the front of a compact buffer.
#[inline]
fn key_of(buf: &[u8]) -> &[u8] {
    let mut pos = 0;
    read_varint(buf, &mut pos)
        .and_then(|len| take(buf, &mut pos, usize::try_from(len).ok()?))
        .unwrap_or_default()
}

/// The tag of a compact entry: how it names its field (its length, the bytes following, or the
/// id of a shared name) and whether a TTL follows.
fn field_tag(field: &[u8], shared: Option<u16>, has_ttl: bool) -> u64 {
    let (named, shared_bit) = match shared {
        Some(id) => (u64::from(id), 2),
        None => (field.len() as u64, 0),
    };
    named << 2 | shared_bit | u64::from(has_ttl)
}

/// A compact entry as the pieces it is written from, so that it goes straight into the hash's
/// new buffer (or over the entry it replaces) without being assembled in an allocation of its
/// own: the tag, the spelled-out name (empty when the name is shared), the expiry with the
/// value's header, and the value's bytes (empty for a small integer).
struct EntryBytes<'a> {
    tag: ([u8; 10], usize),
    name: &'a [u8],
    /// At most a 10-byte expiry, a header byte and a 10-byte length.
    middle: ([u8; 21], usize),
    value: &'a [u8],
}

impl<'a> EntryBytes<'a> {
    /// The entry for `field`, named by the shared id `shared` if it has one. The value is a
    /// small integer (see [`as_small_int`]) as the one byte `0xxxxxxx`, any other value
    /// `10llllll` (length below 64) or `11llllll varint(length >> 6)` (the low six bits of
    /// the length, then the rest), followed by its bytes.
    fn new(field: &'a [u8], value: &'a [u8], ttl: Option<u64>, shared: Option<u16>) -> Self {
        let mut middle = ([0u8; 21], 0);
        let mut put = |bytes: &[u8]| {
            let at = middle.1;
            if let Some(dst) = middle.0.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
                middle.1 += bytes.len();
            }
        };
        if let Some(at) = ttl {
            let (bytes, n) = varint(at);
            put(&bytes[..n]);
        }
        let len = value.len();
        let value = match as_small_int(value) {
            Some(n) => {
                put(&[n]);
                &[][..]
            }
            None if len < 64 => {
                put(&[0x80 | len as u8]);
                value
            }
            None => {
                put(&[0xc0 | (len & 0x3f) as u8]);
                let (bytes, n) = varint((len >> 6) as u64);
                put(&bytes[..n]);
                value
            }
        };
        EntryBytes {
            tag: varint(field_tag(field, shared, ttl.is_some())),
            name: if shared.is_some() { &[] } else { field },
            middle,
            value,
        }
    }

    /// The pieces, in order.
    fn parts(&self) -> [&[u8]; 4] {
        [
            &self.tag.0[..self.tag.1],
            self.name,
            &self.middle.0[..self.middle.1],
            self.value,
        ]
    }

    /// Bytes the entry takes.
    fn len(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
    }
}

/// No replacement, for [`Compact::edit`].
const NOTHING: [&[u8]; 4] = [&[]; 4];

/// The header of a compact buffer (after its key).
#[inline]
fn header_of(buf: &[u8]) -> Header {
    let mut at = 0;
    let key_len = read_varint(buf, &mut at).and_then(|n| usize::try_from(n).ok());
    at = key_len.map_or(0, |n| at.saturating_add(n));
    let mut len = at;
    match read_tagged_len(buf, &mut len) {
        Some((count, ex)) => Header { count, ex, len },
        None => Header {
            count: 0,
            ex: false,
            len: at,
        },
    }
}

impl Compact {
    /// The key the hash is stored under (empty outside a database).
    #[inline]
    fn key(&self) -> &[u8] {
        key_of(self.bytes())
    }

    /// The whole buffer.
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.buf.as_deref().unwrap_or_default()
    }

    #[inline]
    fn header(&self) -> Header {
        header_of(self.bytes())
    }

    #[inline]
    fn iter(&self) -> CompactIter<'_> {
        let buf = self.bytes();
        CompactIter {
            buf,
            pos: header_of(buf).len,
        }
    }

    #[inline]
    fn find(&self, field: &[u8]) -> Option<CompactEntry<'_>> {
        self.iter().find(|e| e.field == field)
    }

    /// Replaces the buffer with one exact-size buffer: `key`, a header for
    /// `count` fields and the `ex` flag, then `entries` back to back. A hash
    /// with nothing to keep (no key, no field, no flag) owns no allocation.
    fn rebuild(&mut self, key: &[u8], count: usize, ex: bool, entries: &[&[u8]]) {
        if key.is_empty() && count == 0 && !ex {
            self.buf = None;
            return;
        }
        let (key_len, n) = varint(key.len() as u64);
        let (header, m) = varint(tagged_len(count, ex));
        self.buf = Some(ThinBytes::from_parts(
            &[&key_len[..n], key, &header[..m]],
            entries,
        ));
    }

    /// Stores the hash under `key` (see [`Hash::set_stored_key`]).
    fn set_key(&mut self, key: &[u8]) {
        if self.key() == key {
            return;
        }
        let header = self.header();
        let entries = self.buf.take();
        let rest = entries.as_deref().unwrap_or_default();
        let rest = rest.get(header.len..).unwrap_or_default();
        self.rebuild(key, header.count, header.ex, &[rest]);
    }

    /// Rewrites the buffer with a new header and `range` (old coordinates,
    /// after the header) replaced by `replacement`. Edits that keep every
    /// length the same happen in place; others build one exact-size buffer,
    /// which is what keeps a compact hash free of spare capacity.
    fn edit(&mut self, count: usize, ex: bool, range: Range<usize>, replacement: [&[u8]; 4]) {
        let old = self.header();
        if range.start < old.len || range.start > range.end || range.end > self.bytes().len() {
            return;
        }
        let len: usize = replacement.iter().map(|p| p.len()).sum();
        if count == old.count && ex == old.ex && len == range.len() {
            if let Some(mut dst) = self.buf.as_deref_mut().and_then(|b| b.get_mut(range)) {
                for part in replacement {
                    let (here, rest) = dst.split_at_mut(part.len());
                    here.copy_from_slice(part);
                    dst = rest;
                }
            }
            return;
        }
        let taken = self.buf.take();
        let buf = taken.as_deref().unwrap_or_default();
        let (Some(before), Some(after)) = (buf.get(old.len..range.start), buf.get(range.end..))
        else {
            self.buf = taken;
            return;
        };
        let [a, b, c, d] = replacement;
        self.rebuild(key_of(buf), count, ex, &[before, a, b, c, d, after]);
    }

    /// HSET on a compact hash; `None` when the limits say it must become a
    /// table first.
    fn try_set(
        &mut self,
        field: &[u8],
        value: &[u8],
        ttl: FieldTtl,
        limits: &HashLimits,
    ) -> Option<bool> {
        if field.len() > limits.max_listpack_value || value.len() > limits.max_listpack_value {
            return None;
        }
        let header = self.header();
        if let Some(e) = self.find(field) {
            let ttl = ttl.of(e.ttl);
            let range = e.range;
            let entry = EntryBytes::new(field, value, ttl, e.shared);
            if self.bytes().len() - range.len() + entry.len() > COMPACT_MAX_BYTES {
                return None;
            }
            self.edit(
                header.count,
                header.ex || ttl.is_some(),
                range,
                entry.parts(),
            );
            return Some(false);
        }
        if header.count >= limits.max_listpack_entries {
            return None;
        }
        // A new field of this compact hash, which counts towards sharing its name (see
        // `crate::field_names`; one bound for a table does not); an existing one keeps the
        // naming it has, without a lookup.
        let ttl = ttl.of(None);
        let entry = EntryBytes::new(field, value, ttl, field_names::id_of(field));
        if self.bytes().len().saturating_add(entry.len()) > COMPACT_MAX_BYTES {
            return None;
        }
        let end = self.bytes().len();
        self.edit(
            header.count + 1,
            header.ex || ttl.is_some(),
            end..end,
            entry.parts(),
        );
        Some(true)
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let header = self.header();
        let Some(range) = self.find(field).map(|e| e.range) else {
            return false;
        };
        self.edit(header.count.saturating_sub(1), header.ex, range, NOTHING);
        true
    }

    fn set_expire_at(&mut self, field: &[u8], at: Option<u64>) -> bool {
        let header = self.header();
        let ex = header.ex || at.is_some();
        let Some(e) = self.find(field) else {
            if ex != header.ex {
                self.enable_ex();
            }
            return false;
        };
        if e.ttl == at && ex == header.ex {
            return true;
        }
        // Made of the hash's own bytes, so assembled apart before the buffer changes.
        let entry = EntryBytes::new(e.field, e.value, at, e.shared)
            .parts()
            .concat();
        let range = e.range;
        self.edit(header.count, ex, range, [&entry, &[], &[], &[]]);
        true
    }

    fn enable_ex(&mut self) {
        let header = self.header();
        if !header.ex {
            let end = self.bytes().len();
            self.edit(header.count, true, end..end, NOTHING);
        }
    }

    fn purge_expired(&mut self, now_ms: u64, budget: usize) -> usize {
        let expired: Vec<Range<usize>> = self
            .iter()
            .filter(|e| e.ttl.is_some_and(|at| at <= now_ms))
            .take(budget)
            .map(|e| e.range)
            .collect();
        if expired.is_empty() {
            return 0;
        }
        let header = self.header();
        let count = header.count.saturating_sub(expired.len());
        let taken = self.buf.take();
        let buf = taken.as_deref().unwrap_or_default();
        let mut kept = Vec::with_capacity(expired.len() + 1);
        let mut kept_from = header.len;
        for r in &expired {
            kept.push(buf.get(kept_from..r.start).unwrap_or_default());
            kept_from = r.end;
        }
        kept.push(buf.get(kept_from..).unwrap_or_default());
        self.rebuild(key_of(buf), count, header.ex, &kept);
        expired.len()
    }
}

// ---------------------------------------------------------------------------
// Table encoding
// ---------------------------------------------------------------------------

/// A parsed table entry.
struct TableEntry<'a> {
    field: &'a [u8],
    value: &'a [u8],
    ttl: Option<u64>,
    /// Offset of the expiry bytes (or of the value, when there are none).
    ttl_pos: usize,
    /// Bytes of the expiry: 0, [`NEAR_TTL_BYTES`], [`NARROW_TTL_BYTES`] or [`TTL_BYTES`].
    ttl_len: usize,
    /// Offset of the value bytes.
    value_pos: usize,
}

/// The entry `e` of a table whose narrow and near expiries count from `ttl_base`.
fn parse_table_entry(e: &[u8], ttl_base: u64) -> Option<TableEntry<'_>> {
    let mut p = 0;
    let tag = read_varint(e, &mut p)?;
    let field = take(e, &mut p, usize::try_from(tag >> 2).ok()?)?;
    let ttl_pos = p;
    let ttl = match tag & 3 {
        0 => None,
        1 => Some(read_ttl(take(e, &mut p, TTL_BYTES)?.try_into().ok()?)),
        2 => {
            let distance = take(e, &mut p, NARROW_TTL_BYTES)?.try_into().ok()?;
            Some(ttl_base + u64::from(u32::from_le_bytes(distance)))
        }
        _ => {
            let [a, b, c]: [u8; NEAR_TTL_BYTES] =
                take(e, &mut p, NEAR_TTL_BYTES)?.try_into().ok()?;
            Some(ttl_base + NEAR_FROM_BASE + u64::from(u32::from_le_bytes([a, b, c, 0])))
        }
    };
    Some(TableEntry {
        field,
        value: e.get(p..)?,
        ttl,
        ttl_pos,
        ttl_len: p - ttl_pos,
        value_pos: p,
    })
}

/// Bytes of a field's expiry in a table entry: 48 bits, which hold any expiry a command may set
/// (`HFE_MAX_ABS_TIME_MSEC` is 2^46 - 1 ms); the store caps a later one at [`TTL_MAX`].
const TTL_BYTES: usize = 6;

/// The latest field expiry a table stores.
const TTL_MAX: u64 = (1 << (8 * TTL_BYTES)) - 1;

/// `at` as a table entry stores it.
fn ttl_bytes(at: u64) -> [u8; TTL_BYTES] {
    let [a, b, c, d, e, f, ..] = at.min(TTL_MAX).to_le_bytes();
    [a, b, c, d, e, f]
}

/// The expiry in the bytes `ttl_bytes` wrote.
fn read_ttl([a, b, c, d, e, f]: [u8; TTL_BYTES]) -> u64 {
    u64::from_le_bytes([a, b, c, d, e, f, 0, 0])
}

/// Bytes of a field's expiry in a table entry when it is within 2^32 ms of the table's base.
const NARROW_TTL_BYTES: usize = 4;

/// Bytes of a field's expiry in a table entry when it is within 2^23 ms (2.3 hours) either way
/// of the table's first expiry: the fields that one command, or one load, gives a TTL.
const NEAR_TTL_BYTES: usize = 3;

/// Where a near expiry counts from, as a distance from the table's base: 2^23 ms before the
/// first expiry, which the base is 2^31 ms before (see [`Table::ttl_base_for`]).
const NEAR_FROM_BASE: u64 = (1 << 31) - (1 << 23);

/// A table entry's expiry bytes for `ttl`, as its tag's low bits name them and as they are
/// stored: none (0); in 3 bytes (3) when it is near the first expiry; the distance from
/// `ttl_base` in 4 bytes (2) when that fits; else 48 bits (1).
fn ttl_field(ttl: Option<u64>, ttl_base: u64) -> (u64, [u8; TTL_BYTES], usize) {
    let Some(at) = ttl else {
        return (0, [0; TTL_BYTES], 0);
    };
    let near = at
        .checked_sub(ttl_base)
        .and_then(|d| d.checked_sub(NEAR_FROM_BASE))
        .filter(|&d| d < 1 << (8 * NEAR_TTL_BYTES));
    if let Some(d) = near {
        let [a, b, c, _] = (d as u32).to_le_bytes();
        return (3, [a, b, c, 0, 0, 0], NEAR_TTL_BYTES);
    }
    match at.checked_sub(ttl_base).map(u32::try_from) {
        Some(Ok(distance)) => {
            let [a, b, c, d] = distance.to_le_bytes();
            (2, [a, b, c, d, 0, 0], NARROW_TTL_BYTES)
        }
        _ => (1, ttl_bytes(at), TTL_BYTES),
    }
}

/// One arena entry per field: its tag (the field's length and how the expiry is held), field,
/// expiry and value, the value's length being implied. An expiry of the same width is re-armed
/// in place.
fn encode_table_entry(
    arena: &mut Arena,
    field: &[u8],
    value: &[u8],
    ttl: Option<u64>,
    ttl_base: u64,
) -> Option<Slot> {
    let (form, ttl, ttl_len) = ttl_field(ttl, ttl_base);
    let (tag, tag_len) = varint((field.len() as u64) << 2 | form);
    arena.alloc(&[
        tag.get(..tag_len).unwrap_or_default(),
        field,
        ttl.get(..ttl_len).unwrap_or_default(),
        value,
    ])
}

#[derive(Clone, Debug)]
struct Table {
    /// Per-table random seed (HashDoS); fixed for the table's life because
    /// scan cursors are hash values.
    state: RandomState,
    /// The fields' hashes, in hash order, with their entries' arena slots as positions (the
    /// keyspace's index).
    index: OrderedIndex,
    /// The entries themselves.
    arena: Arena,
    /// The fields with a TTL, earliest first.
    expiries: ExpiryIndex,
    /// What a narrow expiry counts from (see [`Table::ttl_base_for`]).
    ttl_base: u64,
    /// The key the hash is stored under (see [`Hash::stored_key`]).
    key: Box<[u8]>,
}

impl Table {
    fn with_capacity(n: usize) -> Table {
        Table {
            state: RandomState::new(),
            index: OrderedIndex::with_capacity(n),
            arena: Arena::default(),
            expiries: ExpiryIndex::default(),
            ttl_base: 0,
            key: Box::default(),
        }
    }

    /// A table holding the fields of `c`, with room for `capacity` fields.
    fn from_compact(c: &Compact, capacity: usize) -> Table {
        let mut t = Table::with_capacity(capacity);
        t.key = c.key().into();
        for e in c.iter() {
            let h = t.hash(e.field);
            t.insert_new(e.field, e.value, e.ttl, h);
        }
        t
    }

    fn hash(&self, field: &[u8]) -> u32 {
        (self.state.hash_one(field) >> 32) as u32
    }

    fn entry(&self, slot: Slot) -> Option<TableEntry<'_>> {
        self.arena
            .get(slot)
            .and_then(|e| parse_table_entry(e, self.ttl_base))
    }

    /// The entry whose slot the index holds as position `p`.
    fn entry_at(&self, p: usize) -> Option<TableEntry<'_>> {
        self.entry(Slot::from_position(p))
    }

    /// The base to encode the expiry `ttl` against. While no field has an expiry nothing counts
    /// from the base, so the first expiry sets it, 2^31 ms before itself: the fields that a
    /// command or a load gives expiries close to that one fit in three bytes, those within 24
    /// days of it in four.
    fn ttl_base_for(&mut self, ttl: Option<u64>) -> u64 {
        if let (Some(at), true) = (ttl, self.expiries.is_empty()) {
            self.ttl_base = at.saturating_sub(1 << 31);
        }
        self.ttl_base
    }

    /// The first field with hash `h` whose entry `accept` takes, as (index slot, entry).
    fn find_by(&self, h: u32, accept: impl Fn(TableEntry<'_>) -> bool) -> Option<(usize, Slot)> {
        let (pos, p) = self
            .index
            .find(h, |p| self.entry_at(p).is_some_and(&accept))?;
        Some((pos, Slot::from_position(p)))
    }

    /// The field's (index slot, entry).
    fn find(&self, field: &[u8], h: u32) -> Option<(usize, Slot)> {
        self.find_by(h, |e| e.field == field)
    }

    fn get(&self, field: &[u8]) -> Option<TableEntry<'_>> {
        let (_, slot) = self.find(field, self.hash(field))?;
        self.entry(slot)
    }

    fn set(&mut self, field: &[u8], value: &[u8], ttl: FieldTtl) -> bool {
        let h = self.hash(field);
        match self.find(field, h) {
            Some((pos, slot)) => {
                self.change(pos, slot, h, Some(value), ttl);
                false
            }
            None => self.insert_new(field, value, ttl.of(None), h),
        }
    }

    /// Changes the field whose entry is in `slot` (index slot `pos`, hash `h`): its value to
    /// `value` (kept if `None`), its expiry as `ttl` says. In place when the entry keeps its
    /// layout (a value of the same length, expiry bytes of the same width: HINCRBY, a TTL
    /// re-armed), rebuilt otherwise; the expiry index follows.
    fn change(&mut self, pos: usize, slot: Slot, h: u32, value: Option<&[u8]>, ttl: FieldTtl) {
        let Some(old) = self.entry(slot) else {
            return;
        };
        let (old_ttl, new_ttl) = (old.ttl, ttl.of(old.ttl));
        let (_, ttl_bytes, ttl_len) = ttl_field(new_ttl, self.ttl_base);
        let same_value_len = value.is_none_or(|v| v.len() == old.value.len());
        // The widths (0, 3, 4, 6) tell the forms apart, so the tag stays right.
        if same_value_len && ttl_len == old.ttl_len {
            let (ttl_pos, value_pos) = (old.ttl_pos, old.value_pos);
            if let Some(e) = self.arena.get_mut(slot) {
                if new_ttl != old_ttl {
                    if let (Some(dst), Some(src)) = (
                        e.get_mut(ttl_pos..ttl_pos + ttl_len),
                        ttl_bytes.get(..ttl_len),
                    ) {
                        dst.copy_from_slice(src);
                    }
                }
                if let (Some(v), Some(dst)) = (value, e.get_mut(value_pos..)) {
                    dst.copy_from_slice(v);
                }
            }
        } else if !self.rewrite_entry(pos, slot, value, new_ttl) {
            return;
        }
        self.move_expiry(h, old_ttl, new_ttl);
    }

    /// Moves the record of the field with hash `h` in the expiry index from `old` to `new`.
    fn move_expiry(&mut self, h: u32, old: Option<u64>, new: Option<u64>) {
        if old != new {
            if let Some(at) = old {
                self.expiries.remove(at, h);
            }
            if let Some(at) = new {
                self.expiries.add(at, h);
            }
        }
    }

    /// Rewrites the entry in `slot`, indexed in index slot `pos`, with `value` (its own if
    /// `None`) and `ttl` (a value of a new size, or a TTL added or dropped); the field, and a
    /// kept value, are copied within the arena, not out of it.
    /// False, with the entry unchanged, only if no room could be had (see [`Arena::alloc`]).
    fn rewrite_entry(
        &mut self,
        pos: usize,
        slot: Slot,
        value: Option<&[u8]>,
        ttl: Option<u64>,
    ) -> bool {
        let Some(e) = self.entry(slot) else {
            return false;
        };
        let field = e.ttl_pos - e.field.len()..e.ttl_pos;
        let kept = e.value_pos..e.value_pos + e.value.len();
        let ttl_base = self.ttl_base_for(ttl);
        let (form, ttl, ttl_len) = ttl_field(ttl, ttl_base);
        let (tag, tag_len) = varint((field.len() as u64) << 2 | form);
        let parts = [
            Part::New(tag.get(..tag_len).unwrap_or_default()),
            Part::Old(field),
            Part::New(ttl.get(..ttl_len).unwrap_or_default()),
            value.map_or(Part::Old(kept), Part::New),
        ];
        let Some(fresh) = self.arena.rebuild(slot, &parts) else {
            return false;
        };
        self.index.set_position(pos, fresh.position());
        true
    }

    fn insert_new(&mut self, field: &[u8], value: &[u8], ttl: Option<u64>, h: u32) -> bool {
        if self.index.len() >= MAX_TABLE_FIELDS {
            return false;
        }
        let ttl_base = self.ttl_base_for(ttl);
        let Some(slot) = encode_table_entry(&mut self.arena, field, value, ttl, ttl_base) else {
            return false;
        };
        self.index.insert(h, slot.position());
        self.move_expiry(h, None, ttl);
        true
    }

    fn maybe_shrink(&mut self) {
        self.index.shrink_if_sparse();
        if self.arena.needs_compaction() {
            let index = &mut self.index;
            self.arena.compact(|relocate| {
                index.remap_positions(|p| relocate(Slot::from_position(p)).position());
            });
        }
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let h = self.hash(field);
        match self.find(field, h) {
            Some((pos, slot)) => {
                self.remove_at(pos, slot, h);
                true
            }
            None => false,
        }
    }

    fn remove_at(&mut self, pos: usize, slot: Slot, h: u32) {
        self.unlink(pos, slot, h);
        self.maybe_shrink();
    }

    /// [`Table::remove_at`] without giving memory back, for purges that remove many fields in
    /// a row and shrink once at the end.
    fn unlink(&mut self, pos: usize, slot: Slot, h: u32) {
        let ttl = self.entry(slot).and_then(|e| e.ttl);
        self.move_expiry(h, ttl, None);
        self.index.remove_keeping_size(pos);
        self.arena.free(slot);
    }

    fn set_expire_at(&mut self, field: &[u8], at: Option<u64>) -> bool {
        let h = self.hash(field);
        let Some((pos, slot)) = self.find(field, h) else {
            return false;
        };
        let ttl = at.map_or(FieldTtl::Clear, FieldTtl::At);
        self.change(pos, slot, h, None, ttl);
        true
    }

    fn next_expiry(&self) -> Option<u64> {
        self.expiries.first().map(|(at, _)| at)
    }

    fn purge_expired(&mut self, now_ms: u64, budget: usize) -> usize {
        let mut removed = 0;
        while removed < budget {
            let Some((at, h)) = self.expiries.first() else {
                break;
            };
            if at > now_ms {
                break;
            }
            // Among fields sharing this hash32, the one(s) indexed under
            // this expiry are the ones to delete.
            match self.find_by(h, |e| e.ttl == Some(at)) {
                Some((pos, slot)) => {
                    self.unlink(pos, slot, h);
                    removed += 1;
                }
                None => {
                    // Index and fields disagree (a bug elsewhere): drop the
                    // stale key so active expiry cannot spin on it.
                    self.expiries.forget(at, h);
                }
            }
        }
        // Give memory back once the due fields are gone, not at every step of a mass expiry:
        // each shrink rebuilds the index, and a million fields expiring together would pay
        // for that many times over in one burst.
        // (An emptied hash is about to be dropped whole.)
        if removed > 0 && !self.index.is_empty() && self.next_expiry().is_none_or(|at| at > now_ms)
        {
            self.maybe_shrink();
        }
        removed
    }

    /// HSCAN over the sorted index. The cursor is a hash value: every field
    /// with a hash below it has been reported. A call reports the fields
    /// with hash >= cursor in hash order, stopping after about `count` but
    /// never between two equal hashes (the next cursor must exclude all of
    /// what was reported, or equal hashes could repeat forever).
    fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &[u8], Option<u64>)) -> u64 {
        // A cursor that continues is nonzero: it exceeds the hash of something reported.
        self.index
            .scan(cursor, count.max(1), |p| {
                if let Some(e) = self.entry_at(p) {
                    f(e.field, e.value, e.ttl);
                }
            })
            .unwrap_or(0)
    }

    fn memory_usage(&self) -> usize {
        alloc_size(std::mem::size_of::<Table>())
            .saturating_add(alloc_size(self.index.heap_bytes()))
            .saturating_add(self.arena.heap_bytes())
            .saturating_add(alloc_size(self.key.len()))
            .saturating_add(self.expiries.heap_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    const L: HashLimits = HashLimits {
        max_listpack_entries: 512,
        max_listpack_value: 64,
    };

    fn table_of(h: &Hash) -> &Table {
        match h.repr() {
            Repr::Table(t) => t,
            Repr::Compact(_) => panic!("expected a table"),
        }
    }

    /// Checks every structural invariant of a table.
    fn check_table(t: &Table) {
        let mut seen = std::collections::HashSet::new();
        let mut want: BTreeMap<(u64, u32), u32> = BTreeMap::new();
        let mut bytes = 0;
        for (h, p) in t.index.assert_valid() {
            assert!(seen.insert(p), "entry indexed twice");
            let slot = Slot::from_position(p);
            let e = t.entry(slot).expect("parse");
            assert_eq!(t.hash(e.field), h, "slot hash mismatch");
            bytes += t.arena.size(slot);
            if let Some(at) = e.ttl {
                *want.entry((at, h)).or_insert(0) += 1;
            }
        }
        assert_eq!(want, t.expiries.records(), "expiry index out of sync");
        assert_eq!(bytes, t.arena.live_bytes(), "arena's live bytes");
    }

    fn check(h: &Hash) {
        match h.repr() {
            Repr::Table(t) => check_table(t),
            Repr::Compact(c) => assert_eq!(c.iter().count(), c.header().count),
        }
    }

    fn big_table(n: usize) -> Hash {
        let mut h = Hash::new();
        for i in 0..n {
            h.set(
                format!("field:{i}").as_bytes(),
                format!("v{i}").as_bytes(),
                FieldTtl::Clear,
                &L,
            );
        }
        h
    }

    #[test]
    fn hash_is_small_and_new_is_free() {
        assert_eq!(std::mem::size_of::<Hash>(), 8);
        let h = Hash::new();
        assert!(h.is_empty());
        assert_eq!(h.len(), 0);
        assert_eq!(h.memory_usage(), 8);
        assert_eq!(h.encoding(), "listpack");
        assert_eq!(h.next_expiry(), None);
        assert_eq!(h.at_position(0), None);
    }

    fn basic_ops(h: &mut Hash, limits: &HashLimits) {
        assert!(h.set(b"a", b"1", FieldTtl::Clear, limits));
        assert!(h.set(b"b", b"2", FieldTtl::Clear, limits));
        assert!(!h.set(b"a", b"one", FieldTtl::Clear, limits));
        assert_eq!(h.get(b"a"), Some(&b"one"[..]));
        assert_eq!(h.get(b"b"), Some(&b"2"[..]));
        assert_eq!(h.get(b"c"), None);
        assert!(h.contains(b"b"));
        assert_eq!(h.len(), 2);
        assert!(h.remove(b"a"));
        assert!(!h.remove(b"a"));
        assert_eq!(h.get(b"a"), None);
        assert_eq!(h.len(), 1);
        assert!(h.set(b"a", b"again", FieldTtl::Clear, limits));
        assert_eq!(h.len(), 2);
        let mut all: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        all.sort();
        assert_eq!(
            all,
            vec![
                (b"a".to_vec(), b"again".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
        check(h);
    }

    #[test]
    fn set_get_overwrite_remove_compact() {
        let mut h = Hash::new();
        basic_ops(&mut h, &L);
        assert_eq!(h.encoding(), "listpack");
        // Removing everything frees the buffer.
        assert!(h.remove(b"a"));
        assert!(h.remove(b"b"));
        assert!(h.is_empty());
        assert_eq!(h.memory_usage(), 8);
    }

    #[test]
    fn set_get_overwrite_remove_table() {
        let tiny = HashLimits {
            max_listpack_entries: 0,
            max_listpack_value: 64,
        };
        let mut h = Hash::new();
        basic_ops(&mut h, &tiny);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = big_table(2000);
        assert_eq!(h.encoding(), "hashtable");
        for i in 0..2000 {
            assert_eq!(
                h.get(format!("field:{i}").as_bytes()),
                Some(format!("v{i}").as_bytes())
            );
        }
        for i in (0..2000).step_by(3) {
            assert!(h.remove(format!("field:{i}").as_bytes()));
        }
        check(&h);
        for i in 0..2000 {
            let got = h.get(format!("field:{i}").as_bytes());
            assert_eq!(got.is_some(), i % 3 != 0, "field {i}");
        }
        // Shrinks back as it empties (in place, several times).
        for i in 0..2000 {
            h.remove(format!("field:{i}").as_bytes());
            if i % 50 == 0 {
                check(&h);
                for j in (i + 1..2000).step_by(7) {
                    let f = format!("field:{j}");
                    assert_eq!(h.get(f.as_bytes()).is_some(), j % 3 != 0, "{f}");
                }
            }
        }
        assert!(h.is_empty());
        check(&h);
        assert!(table_of(&h).index.buckets() <= 16);
        assert_eq!(h.encoding(), "hashtable", "no conversion back");
    }

    #[test]
    fn converts_at_exactly_the_entry_limit() {
        let mut h = Hash::new();
        for i in 0..512 {
            h.set(format!("f{i}").as_bytes(), b"v", FieldTtl::Clear, &L);
        }
        assert_eq!(h.encoding(), "listpack");
        assert_eq!(h.len(), 512);
        // Overwriting at the limit does not convert.
        assert!(!h.set(b"f0", b"w", FieldTtl::Clear, &L));
        assert_eq!(h.encoding(), "listpack");
        assert!(h.set(b"f512", b"v", FieldTtl::Clear, &L));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 513);
        for i in 1..513 {
            assert_eq!(h.get(format!("f{i}").as_bytes()), Some(&b"v"[..]));
        }
        assert_eq!(h.get(b"f0"), Some(&b"w"[..]));
        check(&h);
    }

    #[test]
    fn converts_at_exactly_the_value_limit() {
        let v64 = [b'x'; 64];
        let v65 = [b'x'; 65];
        let mut h = Hash::new();
        h.set(&v64, &v64, FieldTtl::Clear, &L);
        assert_eq!(h.encoding(), "listpack");
        // Long value on overwrite.
        h.set(&v64, &v65, FieldTtl::Clear, &L);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(&v64), Some(&v65[..]));
        assert_eq!(h.len(), 1);
        // Long field.
        let mut h = Hash::new();
        h.set(b"a", b"b", FieldTtl::Clear, &L);
        h.set(&v65, b"short", FieldTtl::Clear, &L);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&b"b"[..]));
        assert_eq!(h.get(&v65), Some(&b"short"[..]));
        // Long value on a new field.
        let mut h = Hash::new();
        h.set(b"a", &v65, FieldTtl::Clear, &L);
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn conversion_keeps_ttls_and_listpackex_flag() {
        let mut h = Hash::new();
        h.set(b"a", b"1", FieldTtl::Clear, &L);
        h.set(b"b", b"2", FieldTtl::Clear, &L);
        assert_eq!(h.encoding(), "listpack");
        assert!(h.set_expire_at(b"a", Some(1000)));
        assert_eq!(h.encoding(), "listpackex");
        // HPERSIST does not turn it back.
        assert!(h.set_expire_at(b"a", None));
        assert_eq!(h.encoding(), "listpackex");
        assert!(h.set_expire_at(b"a", Some(1000)));
        h.set(b"c", &[0u8; 100], FieldTtl::Clear, &L);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.expire_at(b"a"), Some(Some(1000)));
        assert_eq!(h.expire_at(b"b"), Some(None));
        assert_eq!(h.next_expiry(), Some(1000));
        check(&h);
    }

    #[test]
    fn listpackex_follows_redis() {
        let mut h = Hash::new();
        h.set(b"a", b"1", FieldTtl::Clear, &L);
        // HPERSIST on a plain listpack does not convert.
        assert!(h.set_expire_at(b"a", None));
        assert_eq!(h.encoding(), "listpack");
        // HEXPIRE on a missing field still converts (hashTypeSetExInit).
        assert!(!h.set_expire_at(b"zz", Some(5)));
        assert_eq!(h.encoding(), "listpackex");
        assert_eq!(h.get(b"a"), Some(&b"1"[..]));
        let mut h = Hash::new();
        h.set(b"a", b"1", FieldTtl::Clear, &L);
        h.enable_field_expiry();
        assert_eq!(h.encoding(), "listpackex");
        assert_eq!(h.len(), 1);
        assert_eq!(h.get(b"a"), Some(&b"1"[..]));
    }

    fn ttl_semantics(h: &mut Hash, limits: &HashLimits) {
        h.set(b"f", b"1", FieldTtl::Clear, limits);
        assert_eq!(h.expire_at(b"f"), Some(None));
        assert_eq!(h.expire_at(b"nope"), None);
        assert!(!h.set_expire_at(b"nope", Some(1)));
        assert!(h.set_expire_at(b"f", Some(5000)));
        assert_eq!(h.expire_at(b"f"), Some(Some(5000)));
        assert_eq!(h.get_with_ttl(b"f"), Some((&b"1"[..], Some(5000))));
        // Re-arm in place.
        assert!(h.set_expire_at(b"f", Some(7000)));
        assert_eq!(h.expire_at(b"f"), Some(Some(7000)));
        assert_eq!(h.next_expiry(), Some(7000));
        // HINCRBY keeps the TTL, same and different value lengths.
        h.set(b"f", b"2", FieldTtl::Keep, limits);
        assert_eq!(h.expire_at(b"f"), Some(Some(7000)));
        h.set(b"f", b"200", FieldTtl::Keep, limits);
        assert_eq!(h.expire_at(b"f"), Some(Some(7000)));
        assert_eq!(h.get(b"f"), Some(&b"200"[..]));
        // HSET clears it.
        h.set(b"f", b"300", FieldTtl::Clear, limits);
        assert_eq!(h.expire_at(b"f"), Some(None));
        assert_eq!(h.next_expiry(), None);
        // HPERSIST.
        h.set_expire_at(b"f", Some(9));
        assert!(h.set_expire_at(b"f", None));
        assert_eq!(h.expire_at(b"f"), Some(None));
        assert_eq!(h.next_expiry(), None);
        assert_eq!(h.get(b"f"), Some(&b"300"[..]));
        check(h);
    }

    #[test]
    fn ttl_set_clear_keep_both_encodings() {
        let mut h = Hash::new();
        ttl_semantics(&mut h, &L);
        assert_eq!(h.encoding(), "listpackex");
        let mut h = big_table(600);
        ttl_semantics(&mut h, &L);
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn prepare_bulk_set_converts_only_past_the_entry_limit() {
        let mut h = Hash::new();
        h.set(b"a", b"1", FieldTtl::Clear, &L);
        h.prepare_bulk_set(512, &L);
        assert_eq!(h.encoding(), "listpack");
        h.set_expire_at(b"a", Some(7));
        h.prepare_bulk_set(513, &L);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get_with_ttl(b"a"), Some((&b"1"[..], Some(7))));
        assert_eq!(h.next_expiry(), Some(7));
        check(&h);
    }

    #[test]
    fn next_expiry_after_removals_and_overwrites() {
        for n in [10, 1000] {
            let mut h = big_table(n);
            h.set_expire_at(b"field:3", Some(300));
            h.set_expire_at(b"field:1", Some(100));
            h.set_expire_at(b"field:2", Some(200));
            assert_eq!(h.next_expiry(), Some(100));
            h.remove(b"field:1");
            assert_eq!(h.next_expiry(), Some(200));
            h.set(b"field:2", b"x", FieldTtl::Clear, &L);
            assert_eq!(h.next_expiry(), Some(300));
            h.set(b"field:3", b"x", FieldTtl::Keep, &L);
            assert_eq!(h.next_expiry(), Some(300));
            h.set_expire_at(b"field:3", Some(50));
            assert_eq!(h.next_expiry(), Some(50));
            h.set_expire_at(b"field:3", None);
            assert_eq!(h.next_expiry(), None);
            check(&h);
        }
    }

    #[test]
    fn purge_compact() {
        let mut h = Hash::new();
        for i in 0..10u64 {
            h.set(format!("f{i}").as_bytes(), b"v", FieldTtl::Clear, &L);
            h.set_expire_at(format!("f{i}").as_bytes(), Some(i * 10));
        }
        h.set(b"keep", b"v", FieldTtl::Clear, &L);
        assert_eq!(h.purge_expired(35, 2), 2);
        assert_eq!(h.len(), 9);
        assert_eq!(h.purge_expired(35, 100), 2);
        assert_eq!(h.len(), 7);
        assert_eq!(h.purge_expired(35, 100), 0);
        assert_eq!(h.next_expiry(), Some(40));
        assert_eq!(h.purge_expired(u64::MAX, 100), 6);
        assert_eq!(h.len(), 1);
        assert_eq!(h.get(b"keep"), Some(&b"v"[..]));
        assert_eq!(h.next_expiry(), None);
        check(&h);
    }

    #[test]
    fn purge_large_table_in_bounded_slices() {
        let n = 100_000;
        let mut h = Hash::new();
        for i in 0..n {
            let f = format!("field:{i}");
            h.set(f.as_bytes(), b"value", FieldTtl::Clear, &L);
            // Expiries in a scrambled order, all <= 1_000_000.
            h.set_expire_at(f.as_bytes(), Some((i as u64 * 7919) % 1_000_000));
        }
        h.set(b"persistent", b"v", FieldTtl::Clear, &L);
        check(&h);
        let mut last = 0;
        let mut calls = 0;
        loop {
            let next = h.next_expiry();
            if let Some(at) = next {
                assert!(at >= last, "purge must go earliest first");
                last = at;
            }
            let before = h.len();
            let got = h.purge_expired(1_000_000, 1000);
            assert!(got <= 1000);
            assert_eq!(h.len(), before - got);
            calls += 1;
            if got == 0 {
                break;
            }
        }
        assert_eq!(calls, n / 1000 + 1);
        assert_eq!(h.len(), 1);
        assert_eq!(h.next_expiry(), None);
        check(&h);
        // Partial purge only takes what is due.
        let mut h = big_table(5000);
        for i in 0..5000u64 {
            h.set_expire_at(format!("field:{i}").as_bytes(), Some(i));
        }
        assert_eq!(h.purge_expired(2499, usize::MAX), 2500);
        assert_eq!(h.next_expiry(), Some(2500));
        assert_eq!(h.get(b"field:2499"), None);
        assert!(h.get(b"field:2500").is_some());
        check(&h);
    }

    fn scan_all(h: &Hash, count: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = h.scan(cursor, count, |f, _| out.push(f.to_vec()));
            if cursor == 0 {
                return out;
            }
        }
    }

    #[test]
    fn scan_compact_returns_everything_at_once() {
        let mut h = Hash::new();
        for i in 0..100 {
            h.set(format!("f{i}").as_bytes(), b"v", FieldTtl::Clear, &L);
        }
        let mut n = 0;
        assert_eq!(h.scan(0, 10, |_, _| n += 1), 0);
        assert_eq!(n, 100);
        // A stale cursor is ignored, as Redis does for listpacks.
        let mut n = 0;
        assert_eq!(h.scan(12345, 10, |_, _| n += 1), 0);
        assert_eq!(n, 100);
    }

    #[test]
    fn scan_table_complete_without_changes() {
        let h = big_table(10_000);
        let mut got = scan_all(&h, 10);
        got.sort();
        let before = got.len();
        got.dedup();
        assert_eq!(got.len(), 10_000);
        assert!(before - got.len() < 100, "few duplicates");
        let mut n = 0;
        assert_eq!(h.scan(1 << 40, 10, |_, _| n += 1), 0);
        assert_eq!(n, 0);
    }

    #[test]
    fn scan_survives_growth_shrink_and_conversion() {
        // Starts compact: a scan there finishes in one call.
        let mut h = Hash::new();
        for i in 0..300 {
            h.set(format!("stable:{i}").as_bytes(), b"v", FieldTtl::Clear, &L);
        }
        let mut seen: Vec<Vec<u8>> = Vec::new();
        let mut cursor = h.scan(0, 10, |f, _| seen.push(f.to_vec()));
        assert_eq!(cursor, 0);
        assert_eq!(seen.len(), 300);
        // Convert and restart: the table scan must survive the index growing
        // and shrinking mid-scan.
        for i in 0..300 {
            h.set(format!("temp:{i}").as_bytes(), b"v", FieldTtl::Clear, &L);
        }
        assert_eq!(h.encoding(), "hashtable");
        seen.clear();
        let mut round = 0;
        loop {
            cursor = h.scan(cursor, 20, |f, _| seen.push(f.to_vec()));
            round += 1;
            if cursor == 0 {
                break;
            }
            // Between calls: grow a lot, then delete the churn again.
            if round % 2 == 1 {
                for j in 0..3000 {
                    h.set(
                        format!("churn:{round}:{j}").as_bytes(),
                        b"v",
                        FieldTtl::Clear,
                        &L,
                    );
                }
            } else {
                for j in 0..3000 {
                    h.remove(format!("churn:{}:{j}", round - 1).as_bytes());
                }
                for i in 0..300 {
                    h.remove(format!("temp:{i}").as_bytes());
                }
            }
            check(&h);
        }
        seen.sort();
        seen.dedup();
        for i in 0..300 {
            let f = format!("stable:{i}").into_bytes();
            assert!(seen.binary_search(&f).is_ok(), "missed {i}");
        }
    }

    #[test]
    fn binary_safe_fields() {
        let fields: [&[u8]; 5] = [b"", b"\x00", b"\xff", b"\x00\xff\x00", b"\xff\xff"];
        for limits in [
            L,
            HashLimits {
                max_listpack_entries: 0,
                max_listpack_value: 64,
            },
        ] {
            let mut h = Hash::new();
            for (i, f) in fields.iter().enumerate() {
                assert!(h.set(f, &[i as u8, 0, 0xff], FieldTtl::Clear, &limits));
            }
            assert!(h.set(b"empty-value", b"", FieldTtl::Clear, &limits));
            assert_eq!(h.len(), 6);
            for (i, f) in fields.iter().enumerate() {
                assert_eq!(h.get(f), Some(&[i as u8, 0, 0xff][..]));
            }
            assert_eq!(h.get(b"empty-value"), Some(&b""[..]));
            assert!(h.set_expire_at(b"", Some(u64::MAX)));
            assert_eq!(h.expire_at(b""), Some(Some(TTL_MAX)));
            assert!(h.remove(b""));
            assert_eq!(h.get(b""), None);
            assert_eq!(h.get(b"\x00"), Some(&[1u8, 0, 0xff][..]));
            check(&h);
        }
    }

    #[test]
    fn positions_hold_each_field_once_in_iteration_order() {
        for n in [5, 700] {
            let h = big_table(n);
            let all: Vec<_> = h.iter().collect();
            assert_eq!(all.len(), n);
            let at: Vec<_> = (0..h.positions())
                .filter_map(|p| h.at_position(p))
                .collect();
            assert_eq!(at, all);
            assert_eq!(h.at_position(h.positions()), None);
            let with_ttl: Vec<_> = h.iter_with_ttl().map(|(f, v, _)| (f, v)).collect();
            assert_eq!(with_ttl, all);
        }
    }

    #[test]
    fn deleting_most_fields_compacts_the_arena_and_keeps_the_rest() {
        let mut h = big_table(40_000);
        // Values of new sizes as well: their old room is left to compaction.
        for i in (0..40_000).step_by(7) {
            h.set(
                format!("field:{i}").as_bytes(),
                format!("longer-{i}").as_bytes(),
                FieldTtl::Keep,
                &L,
            );
        }
        let full = h.memory_usage();
        for i in (0..40_000).filter(|i| i % 5 != 0) {
            assert!(h.remove(format!("field:{i}").as_bytes()));
        }
        check(&h);
        assert!(
            h.memory_usage() < full / 2,
            "{full} -> {}",
            h.memory_usage()
        );
        let arena = &table_of(&h).arena;
        assert!(
            arena.heap_bytes() < 2 * arena.live_bytes() + 2 * 65_536,
            "{arena:?} takes {}",
            arena.heap_bytes()
        );
        for i in (0..40_000).step_by(5) {
            let want = if i % 7 == 0 {
                format!("longer-{i}")
            } else {
                format!("v{i}")
            };
            assert_eq!(
                h.get(format!("field:{i}").as_bytes()),
                Some(want.as_bytes())
            );
        }
        assert_eq!(h.len(), 8_000);
    }

    #[test]
    fn memory_usage_is_plausible() {
        let mut h = Hash::new();
        h.set(b"name", b"user123456", FieldTtl::Clear, &L);
        h.set(b"email", b"user123456@example.com", FieldTtl::Clear, &L);
        h.set(b"age", b"42", FieldTtl::Clear, &L);
        h.set(b"city", b"Berlin", FieldTtl::Clear, &L);
        h.set(b"verified", b"1", FieldTtl::Clear, &L);
        let m = h.memory_usage();
        // 8 inline + 78 bytes of buffer (with its length) rounded to 80.
        assert!((82..=104).contains(&m), "{m}");
        let mut big = big_table(100_000);
        let per_field = big.memory_usage() as f64 / 100_000.0;
        // Field ~11 bytes + value ~6: entry ~19 in the arena, with its header and tag, + an
        // index slot of 8 bytes at a load of 0.53 to 0.8 (10 to 15 bytes).
        assert!((25.0..40.0).contains(&per_field), "{per_field}");
        let before = big.memory_usage();
        for i in 0..100_000 {
            big.set_expire_at(format!("field:{i}").as_bytes(), Some(i));
        }
        let with_ttl = big.memory_usage();
        assert!(with_ttl > before + 100_000 * 30, "{before} {with_ttl}");
        for i in 0..99_000 {
            big.remove(format!("field:{i}").as_bytes());
        }
        assert!(big.memory_usage() < with_ttl / 20);
    }

    #[test]
    fn per_hash_estimate_for_user_records() {
        let mut total = 0usize;
        let n = 100_000;
        for i in 0..n {
            let mut h = Hash::new();
            h.set(b"name", format!("user{i}").as_bytes(), FieldTtl::Clear, &L);
            h.set(
                b"email",
                format!("user{i}@example.com").as_bytes(),
                FieldTtl::Clear,
                &L,
            );
            h.set(b"age", b"42", FieldTtl::Clear, &L);
            h.set(b"city", b"Berlin", FieldTtl::Clear, &L);
            h.set(b"verified", b"1", FieldTtl::Clear, &L);
            total += h.memory_usage();
        }
        let per = total as f64 / n as f64;
        println!("memory_usage per 5-field hash: {per:.1} bytes");
        assert!(per < 143.0);
    }

    /// xorshift64*, so the random test needs no extra dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn random_ops_match_a_model() {
        for (seed, limits, keys) in [
            (1u64, L, 40u64),
            (
                2,
                HashLimits {
                    max_listpack_entries: 16,
                    max_listpack_value: 8,
                },
                40,
            ),
            (3, L, 3000),
            (
                4,
                HashLimits {
                    max_listpack_entries: 0,
                    max_listpack_value: 0,
                },
                200,
            ),
        ] {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut h = Hash::new();
            let mut model: HashMap<Vec<u8>, (Vec<u8>, Option<u64>)> = HashMap::new();
            for step in 0..30_000 {
                let k = format!("k{}", rng.below(keys)).into_bytes();
                match rng.below(10) {
                    0..=3 => {
                        let v = vec![b'v'; rng.below(12) as usize];
                        let ttl = match rng.below(3) {
                            0 => FieldTtl::Clear,
                            1 => FieldTtl::Keep,
                            _ => FieldTtl::At(rng.below(1000)),
                        };
                        let new = h.set(&k, &v, ttl, &limits);
                        let old = model.get(&k).cloned();
                        assert_eq!(new, old.is_none());
                        model.insert(k, (v, ttl.of(old.and_then(|o| o.1))));
                    }
                    4 | 5 => assert_eq!(h.remove(&k), model.remove(&k).is_some()),
                    6 | 7 => {
                        let at = if rng.below(4) == 0 {
                            None
                        } else {
                            Some(rng.below(1000))
                        };
                        let ok = h.set_expire_at(&k, at);
                        assert_eq!(ok, model.contains_key(&k));
                        if let Some(e) = model.get_mut(&k) {
                            e.1 = at;
                        }
                    }
                    8 => {
                        let now = rng.below(1000);
                        let budget = rng.below(5) as usize;
                        let due = model
                            .values()
                            .filter(|e| e.1.is_some_and(|t| t <= now))
                            .count();
                        let got = h.purge_expired(now, budget);
                        assert_eq!(got, due.min(budget));
                        // Which ones went is up to the encoding; sync model.
                        model.retain(|f, _| h.contains(f));
                    }
                    _ => {
                        assert_eq!(h.get_with_ttl(&k), model.get(&k).map(|e| (&e.0[..], e.1)));
                    }
                }
                assert_eq!(h.len(), model.len());
                assert_eq!(h.next_expiry(), model.values().filter_map(|e| e.1).min());
                if step % 1000 == 0 {
                    check(&h);
                    let mut got: Vec<_> = h
                        .iter_with_ttl()
                        .map(|(f, v, t)| (f.to_vec(), v.to_vec(), t))
                        .collect();
                    got.sort();
                    let mut want: Vec<_> = model
                        .iter()
                        .map(|(f, e)| (f.clone(), e.0.clone(), e.1))
                        .collect();
                    want.sort();
                    assert_eq!(got, want);
                }
            }
            check(&h);
        }
    }

    #[test]
    fn allocation_sizes_round_up_like_the_allocator() {
        assert_eq!(alloc_size(0), 0);
        assert_eq!(alloc_size(77), 80);
        assert_eq!(alloc_size(129), 160);
        assert_eq!(alloc_size(257), 320);
    }

    #[test]
    fn compact_values_round_trip_including_small_integers() {
        let wide = HashLimits {
            max_listpack_entries: 512,
            max_listpack_value: 20_000,
        };
        let long = |n: usize| vec![b'x'; n];
        let mut values: Vec<Vec<u8>> = ["0", "1", "9", "10", "99", "100", "127"]
            .iter()
            .map(|v| v.as_bytes().to_vec())
            .collect();
        for n in 0..=127 {
            values.push(n.to_string().into_bytes());
        }
        // Not one-byte integers: too big, not canonical, signed, or not digits.
        for v in ["128", "255", "256", "00", "007", "-1", "+1", "1a", "", " 1"] {
            values.push(v.as_bytes().to_vec());
        }
        for n in [63, 64, 65, 127, 128, 4095, 4096, 8191, 8192, 16_384] {
            values.push(long(n));
        }
        let mut h = Hash::new();
        for (i, v) in values.iter().enumerate() {
            h.set(format!("f{i}").as_bytes(), v, FieldTtl::Clear, &wide);
        }
        assert_eq!(h.encoding(), "listpack");
        for (i, v) in values.iter().enumerate() {
            assert_eq!(h.get(format!("f{i}").as_bytes()), Some(&v[..]), "f{i}");
        }
        check(&h);
        // A one-byte integer overwritten by a string and back, in place or not.
        h.set(b"f3", b"abc", FieldTtl::Clear, &wide);
        h.set(b"f4", b"11", FieldTtl::Clear, &wide);
        assert_eq!(h.get(b"f3"), Some(&b"abc"[..]));
        assert_eq!(h.get(b"f4"), Some(&b"11"[..]));
        assert_eq!(
            EntryBytes::new(b"hash::tests::age", b"42", None, None).len(),
            18,
            "field length, field, one value byte"
        );
    }

    #[test]
    fn common_field_names_are_shared_and_read_back_the_same() {
        // Field names of this test only: other tests in the process share the name table.
        let names: [&[u8]; 3] = [b"shared::name", b"shared::email", b"shared::city"];
        let profile = |i: usize| {
            let mut h = Hash::new();
            h.set_stored_key(format!("user:{i}").as_bytes());
            for (n, name) in names.iter().enumerate() {
                h.set(name, format!("{n}-{i:03}").as_bytes(), FieldTtl::Clear, &L);
            }
            h
        };
        let first = profile(0);
        let mut hashes: Vec<Hash> = (1..200).map(profile).collect();
        let buffer = |h: &Hash| match h.repr() {
            Repr::Compact(c) => c.bytes().len(),
            Repr::Table(_) => panic!("expected a compact hash"),
        };
        // Each name's bytes are gone; its tag is one byte either way (two for an id past 31).
        let spelled: usize = names.iter().map(|n| n.len()).sum();
        let (before, after) = (buffer(&first), hashes.last().map_or(0, buffer));
        assert!(
            after + spelled <= before + names.len(),
            "{after} vs {before}"
        );
        for (i, h) in std::iter::once(&first).chain(&hashes).enumerate() {
            for (n, name) in names.iter().enumerate() {
                assert_eq!(h.get(name), Some(format!("{n}-{i:03}").as_bytes()), "{i}");
            }
            assert_eq!(h.iter().count(), 3);
            assert_eq!(h.stored_key(), format!("user:{i}").as_bytes());
        }
        // Every change works on a shared name as on a spelled-out one.
        let h = &mut hashes[150];
        assert!(h.set_expire_at(names[0], Some(500)));
        assert_eq!(h.expire_at(names[0]), Some(Some(500)));
        assert!(!h.set(names[0], b"kept ttl", FieldTtl::Keep, &L));
        assert_eq!(
            h.get_with_ttl(names[0]),
            Some((&b"kept ttl"[..], Some(500)))
        );
        assert_eq!(h.purge_expired(500, 10), 1);
        assert!(h.remove(names[1]));
        assert_eq!(h.get(names[1]), None);
        assert!(h.set(names[1], b"back", FieldTtl::Clear, &L));
        let copy = h.clone();
        assert_eq!(copy.get(names[1]), Some(&b"back"[..]));
        // Converting to a table spells the names out.
        h.prepare_bulk_set(10_000, &L);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(names[2]), Some(&b"2-151"[..]));
        assert!(first.get(b"shared::unknown").is_none());
        assert_eq!(h.get(names[1]), Some(&b"back"[..]));
    }

    #[test]
    fn a_table_keeps_48_bits_of_expiry() {
        let mut h = big_table(600);
        for (i, at) in [1, 1 << 46, TTL_MAX, u64::MAX].into_iter().enumerate() {
            let field = format!("field:{i}");
            assert!(h.set_expire_at(field.as_bytes(), Some(at)));
            assert_eq!(h.expire_at(field.as_bytes()), Some(Some(at.min(TTL_MAX))));
        }
        // Re-armed in place, then dropped and set again through a rebuilt entry.
        assert!(h.set_expire_at(b"field:3", Some(12_345)));
        assert!(h.set_expire_at(b"field:3", None));
        assert!(h.set_expire_at(b"field:3", Some((1 << 40) + 7)));
        assert_eq!(h.expire_at(b"field:3"), Some(Some((1 << 40) + 7)));
        assert_eq!(h.next_expiry(), Some(1));
        check(&h);
    }

    #[test]
    fn expiries_near_the_first_take_three_or_four_bytes() {
        let live = |h: &Hash| match h.repr() {
            Repr::Table(t) => (t.arena.live_bytes(), t.ttl_base),
            Repr::Compact(_) => unreachable!("a table"),
        };
        let mut h = big_table(600);
        let (plain, _) = live(&h);
        let day = 86_400_000;
        let hour = 3_600_000;
        let now = 1_800_000_000_000;
        let first = now + day;
        for i in 0..600 {
            h.set_expire_at(format!("field:{i}").as_bytes(), Some(first + i));
        }
        let (near, base) = live(&h);
        assert_eq!((near - plain, base), (600 * 3, first - (1 << 31)));
        // The edges of the near window (2^23 ms either way of the first expiry) and of the
        // narrow one (2^32 ms from the base).
        for (at, bytes) in [
            (first - (1 << 23), 3),
            (first - (1 << 23) - 1, 4),
            (first + (1 << 23) - 1, 3),
            (first + (1 << 23), 4),
            (first + 2 * hour, 3),
            (first - 3 * hour, 4),
            (base, 4),
            (base - 1, 6),
            (base + (1 << 32) - 1, 4),
            (base + (1 << 32), 6),
            (now + 365 * day, 6),
        ] {
            h.set_expire_at(b"field:7", Some(at));
            assert_eq!(h.expire_at(b"field:7"), Some(Some(at)), "{at}");
            assert_eq!(live(&h).0 - plain, 599 * 3 + bytes, "{at}");
        }
        h.set_expire_at(b"field:8", Some(now + 2));
        assert_eq!(h.expire_at(b"field:8"), Some(Some(now + 2)));
        assert_eq!(h.next_expiry(), Some(now + 2));
        h.set_expire_at(b"field:7", Some(first + 7));
        h.set_expire_at(b"field:8", Some(first + 8));
        assert_eq!(live(&h).0 - plain, 600 * 3);
        // HINCRBY-like overwrites keep the near expiry; with no expiry left the next one
        // chooses the base again.
        h.set(
            b"field:9",
            b"a longer value than before",
            FieldTtl::Keep,
            &L,
        );
        assert_eq!(h.expire_at(b"field:9"), Some(Some(first + 9)));
        for i in 0..600 {
            h.set_expire_at(format!("field:{i}").as_bytes(), None);
        }
        h.set_expire_at(b"field:1", Some(now + 1000 * day));
        assert_eq!(live(&h).1, now + 1000 * day - (1 << 31));
        assert_eq!(h.expire_at(b"field:1"), Some(Some(now + 1000 * day)));
        check(&h);
    }

    /// Setting a value and its expiry in one step leaves a hash as setting them one after the
    /// other does, compact or table, new field or old, with every kind of expiry change.
    #[test]
    fn set_with_an_expiry_matches_set_then_expire() {
        let ttls = [
            FieldTtl::Clear,
            FieldTtl::Keep,
            FieldTtl::At(1_800_000_000_000),
            FieldTtl::At(1_800_000_000_001),
            FieldTtl::At(1_900_000_000_000),
        ];
        for n in [3, 700] {
            for (i, &ttl) in ttls.iter().enumerate() {
                let mut one = big_table(n);
                let mut two = big_table(n);
                for h in [&mut one, &mut two] {
                    h.set_expire_at(b"field:1", Some(1_800_000_000_000));
                }
                for (field, value) in [
                    (&b"field:1"[..], &b"v"[..]),
                    (b"field:1", b"a longer value"),
                    (b"field:2", b"v2"),
                    (b"new", b"fresh"),
                ] {
                    let new = one.set(field, value, ttl, &L);
                    let old = two.expire_at(field).flatten();
                    let first = if ttl == FieldTtl::Clear {
                        FieldTtl::Clear
                    } else {
                        FieldTtl::Keep
                    };
                    assert_eq!(two.set(field, value, first, &L), new);
                    match ttl {
                        FieldTtl::At(at) => two.set_expire_at(field, Some(at)),
                        FieldTtl::Keep => two.set_expire_at(field, old),
                        FieldTtl::Clear => two.set_expire_at(field, None),
                    };
                    assert_eq!(one.get_with_ttl(field), two.get_with_ttl(field), "{n} {i}");
                }
                assert_eq!(one.encoding(), two.encoding());
                assert_eq!(one.next_expiry(), two.next_expiry());
                let all = |h: &Hash| {
                    let mut v: Vec<_> = h.iter_with_ttl().collect();
                    v.sort();
                    v.iter()
                        .map(|(f, v, t)| (f.to_vec(), v.to_vec(), *t))
                        .collect::<Vec<_>>()
                };
                assert_eq!(all(&one), all(&two));
                check(&one);
            }
        }
    }

    #[test]
    fn the_stored_key_survives_every_change() {
        let mut h = Hash::new();
        h.set(b"a", b"1", FieldTtl::Clear, &L);
        h.set_stored_key(b"user:1");
        assert_eq!(h.stored_key(), b"user:1");
        h.set(b"b", b"two", FieldTtl::Clear, &L);
        h.set(b"a", b"one", FieldTtl::Clear, &L);
        h.set_expire_at(b"b", Some(10));
        assert_eq!(h.purge_expired(10, 10), 1);
        assert!(h.remove(b"a"));
        assert!(h.is_empty());
        assert_eq!(h.stored_key(), b"user:1", "an empty hash keeps its key");
        h.set(b"c", b"3", FieldTtl::Clear, &L);
        h.set_stored_key(b"user:2");
        assert_eq!(h.stored_key(), b"user:2");
        assert_eq!(h.get(b"c"), Some(&b"3"[..]));
        // Through conversion to a table and on.
        for i in 0..600 {
            h.set(format!("f{i}").as_bytes(), b"v", FieldTtl::Clear, &L);
        }
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.stored_key(), b"user:2");
        h.set_stored_key(b"");
        assert_eq!(h.stored_key(), b"");
        assert_eq!(h.len(), 601);
        // A hash without a key and without fields owns nothing.
        let mut h = Hash::new();
        h.set_stored_key(b"k");
        h.set_stored_key(b"");
        assert_eq!(h.memory_usage(), std::mem::size_of::<Hash>());
    }
}
