//! Shared field names: a field name that many small hashes use is stored once, and each compact
//! hash refers to it by a one- or two-byte id.
//!
//! Small hashes of one application tend to have the same fields: a million user profiles each
//! spell out `name`, `email`, `age`, `city`, `verified`, 24 of the 86 bytes of each buffer, a
//! quarter of the memory. Redis's listpack stores them every time. Here a compact entry names
//! its field either by its bytes or by the id of a shared name (see the layout in
//! [`crate::hash`]), and the bytes of a shared name live once, in a table for the whole
//! process.
//!
//! The table is process-wide, not per shard, so that an id means the same on every shard and a
//! hash can move between shards (`RENAME`, `COPY`) as it is. It only grows: at most
//! [`CAPACITY`] names of at most [`MAX_NAME`] bytes, each written once and never changed or
//! freed, so readers need no lock, only the acquire load of a `OnceLock` (a plain load on
//! x86-64), and a `&'static [u8]` to a shared name is always valid. Writers take a mutex, once
//! per name and shard, when a name is admitted.
//!
//! Admission is by use: each shard counts, per name, the new fields of compact hashes it creates (a
//! write that only changes a field's value or TTL does not look at names), in a small table of
//! counters indexed by the name's hash that is cleared every [`WINDOW`] counts. A name created
//! [`ADMIT_AFTER`] times within a window, one new field in 512 or more, is admitted. Names that are
//! unique to their hash (item ids in carts, say) stay spelled out: they would only fill the table,
//! and spread over thousands of counters they never reach the bar. A field created before its name
//! was admitted stays spelled out; both forms read the same.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use ahash::RandomState;

/// Most names shared in the process. Ids under 32 take one byte in an entry, the rest two.
pub(crate) const CAPACITY: usize = 1024;

/// Longest name shared, in bytes.
pub(crate) const MAX_NAME: usize = 32;

/// Creations of a name within a window that admit it.
const ADMIT_AFTER: u8 = 32;

/// Counts after which a shard's counters start again from zero.
const WINDOW: u32 = 1 << 14;

/// Counters per shard (a power of two).
const COUNTERS: usize = 4096;

/// The shared names, by id.
static NAMES: [OnceLock<&'static [u8]>; CAPACITY] = [const { OnceLock::new() }; CAPACITY];

/// How many ids are taken; held while a name is admitted.
static TAKEN: Mutex<usize> = Mutex::new(0);

/// The shared name with id `id`.
#[inline]
pub(crate) fn name(id: usize) -> Option<&'static [u8]> {
    NAMES.get(id)?.get().copied()
}

/// One shard's view: the shared names it has met, and the counters of the others.
struct Local {
    ids: HashMap<&'static [u8], u16, RandomState>,
    counters: Box<[u8; COUNTERS]>,
    counted: u32,
    /// Set once the table has no room: nothing more can be admitted, so nothing is counted.
    full: bool,
    /// Picks the counter of a name; fixed per shard.
    hasher: RandomState,
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local {
        ids: HashMap::default(),
        counters: Box::new([0; COUNTERS]),
        counted: 0,
        full: false,
        hasher: RandomState::new(),
    });
}

/// The id to store for field `name`, which is being added to a compact hash, if the name is
/// shared; the addition counts towards admitting it.
pub(crate) fn id_of(name: &[u8]) -> Option<u16> {
    if name.is_empty() || name.len() > MAX_NAME {
        return None;
    }
    LOCAL.with(|local| {
        let mut local = local.try_borrow_mut().ok()?;
        if let Some(&id) = local.ids.get(name) {
            return Some(id);
        }
        if local.full {
            return None;
        }
        local.counted += 1;
        if local.counted >= WINDOW {
            local.counters.fill(0);
            local.counted = 0;
        }
        let slot = (local.hasher.hash_one(name) as usize) & (COUNTERS - 1);
        let count = local.counters[slot].saturating_add(1);
        local.counters[slot] = count;
        if count < ADMIT_AFTER {
            return None;
        }
        local.counters[slot] = 0;
        let Some((id, shared)) = admit(name) else {
            local.full = true;
            return None;
        };
        local.ids.insert(shared, id);
        Some(id)
    })
}

/// The id of `name` in the process's table, added if it is not there and there is room.
fn admit(name: &[u8]) -> Option<(u16, &'static [u8])> {
    // A poisoned lock only means another shard panicked while adding a name; every name it
    // published is complete, so the count is still right.
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for id in 0..*taken {
        if let Some(shared) = self::name(id).filter(|shared| *shared == name) {
            return Some((u16::try_from(id).ok()?, shared));
        }
    }
    let id = *taken;
    let cell = NAMES.get(id)?;
    let shared: &'static [u8] = Box::leak(name.into());
    cell.set(shared).ok()?;
    *taken += 1;
    Some((u16::try_from(id).ok()?, shared))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_shared_once_it_is_common_and_means_the_same_everywhere() {
        let name = b"field_names::tests::common";
        let mut id = None;
        for _ in 0..ADMIT_AFTER {
            assert_eq!(id, None, "admitted too early");
            id = id_of(name);
        }
        let id = id.expect("admitted after ADMIT_AFTER creations");
        assert_eq!(self::name(usize::from(id)), Some(&name[..]));
        // Another shard gets the same id when it admits the name on its own.
        assert_eq!(id_of(name), Some(id));
        let other = std::thread::spawn(move || (0..ADMIT_AFTER).find_map(|_| id_of(name)));
        assert_eq!(other.join().ok().flatten(), Some(id));
    }

    #[test]
    fn unique_or_long_names_are_not_shared() {
        for _ in 0..100 {
            assert_eq!(id_of(&[b'x'; MAX_NAME + 1]), None);
            assert_eq!(id_of(b""), None);
        }
        // Ten thousand names created once each: none is admitted.
        let admitted = (0..10_000)
            .filter(|i| id_of(format!("field_names::tests::unique:{i}").as_bytes()).is_some())
            .count();
        assert_eq!(admitted, 0);
    }
}
