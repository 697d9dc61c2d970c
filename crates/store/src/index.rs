//! [`OrderedIndex`]: an index over entries whose positions are the caller's (a place in a dense
//! array, an address in an arena), which finds entries by hash and walks them in hash order.
//! (The earliest expiries are found by an [`ExpiryIndex`](crate::expiry_index::ExpiryIndex).)
//!
//! # The ordered hash index
//!
//! [`OrderedIndex`] maps 32-bit hashes to 32-bit positions of the caller's and keeps its slots
//! sorted by hash.
//!
//! The keyspace of a database keeps its keys densely packed in a `Vec` (so that a random key is
//! one index away and a walk touches contiguous memory) and finds them through this index; a big
//! hash finds its fields' entries in its arena by the arena slots the index holds. The
//! index is an open-addressing table of 8-byte slots `(hash, position)` with linear probing that
//! never wraps around: a hash's *home* slot is `hash * buckets >> 32`, which grows with the hash,
//! and every run of occupied slots stays sorted by hash (an insertion shifts the rest of its run
//! right; a deletion shifts the following displaced slots left, so there are no tombstones).
//! Clusters near the end spill into a short overflow tail past `buckets`.
//!
//! Being sorted by hash is what gives `SCAN` its guarantee. A scan cursor is a *hash value*, not
//! a slot number: "continue with the entries whose hash is at least this". The table may grow or
//! shrink between two calls, moving every slot, and an entry present for the whole scan is still
//! visited exactly once, because its hash does not change. (Redis gets the same guarantee from
//! its reverse-binary cursor over power-of-two tables; a hash-ordered table makes it plain.)
//! Entries sharing a hash are always visited in the same call, so a cursor never splits them.

/// One slot: a hash and the position of its entry. `idx == u32::MAX` marks an empty slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    h: u32,
    idx: u32,
}

const EMPTY: Slot = Slot {
    h: 0,
    idx: u32::MAX,
};

impl Slot {
    fn is_empty(self) -> bool {
        self.idx == u32::MAX
    }
}

/// Fewest home slots a non-empty index has.
const MIN_BUCKETS: usize = 8;

/// Most entries an index holds: positions are `u32` with one value reserved for "empty".
pub const MAX_ENTRIES: usize = (u32::MAX - 1) as usize;

/// The index. Positions and hashes are the caller's; the index never looks at the entries.
#[derive(Clone, Debug, Default)]
pub struct OrderedIndex {
    /// The home-slot range; 0 while nothing was ever inserted.
    buckets: usize,
    /// Sorted by hash within runs, with empty gaps between runs; may run past `buckets`.
    slots: Vec<Slot>,
    /// Occupied slots.
    len: usize,
}

impl OrderedIndex {
    /// An empty index; it allocates nothing until the first insertion.
    pub fn new() -> OrderedIndex {
        OrderedIndex::default()
    }

    /// An empty index sized for `n` entries, so that filling it does not resize it.
    pub fn with_capacity(n: usize) -> OrderedIndex {
        let buckets = buckets_for(n);
        let mut slots = Vec::with_capacity(buckets + buckets / 64 + 8);
        slots.resize(buckets, EMPTY);
        OrderedIndex {
            buckets,
            slots,
            len: 0,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the slots take.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
    }

    /// The first slot a hash may occupy. Monotonic in `h`, which keeps the slots sorted.
    fn home(&self, h: u32) -> usize {
        ((u64::from(h) * self.buckets as u64) >> 32) as usize
    }

    /// The first entry with hash `h` that `accept` takes (given its position), as (slot, position).
    pub fn find(&self, h: u32, mut accept: impl FnMut(usize) -> bool) -> Option<(usize, usize)> {
        let mut p = self.home(h);
        while let Some(&s) = self.slots.get(p) {
            // Sorted runs: an empty slot or a larger hash ends the search.
            if s.is_empty() || s.h > h {
                return None;
            }
            if s.h == h && accept(s.idx as usize) {
                return Some((p, s.idx as usize));
            }
            p += 1;
        }
        None
    }

    /// Points slot `slot` (from [`OrderedIndex::find`]) at a new position.
    pub fn set_position(&mut self, slot: usize, idx: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            s.idx = idx as u32;
        }
    }

    /// Slots, occupied or not: the range [`OrderedIndex::position_at`] takes. A random slot
    /// that turns out occupied is a uniformly random entry (each entry has exactly one).
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The position in slot `slot`, if it is occupied.
    pub fn position_at(&self, slot: usize) -> Option<usize> {
        self.slots
            .get(slot)
            .filter(|s| !s.is_empty())
            .map(|s| s.idx as usize)
    }

    /// Every position, in hash order.
    pub fn positions(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.idx as usize)
    }

    /// Replaces every position `p` with `f(p)`, for an owner whose entries all moved (a
    /// compaction). `f` keeps the caller's bounds on positions.
    pub fn remap_positions(&mut self, mut f: impl FnMut(usize) -> usize) {
        for s in self.slots.iter_mut().filter(|s| !s.is_empty()) {
            s.idx = f(s.idx as usize) as u32;
        }
    }

    /// Adds an entry. The caller keeps `idx < MAX_ENTRIES` and `len() < MAX_ENTRIES`.
    pub fn insert(&mut self, h: u32, idx: usize) {
        if (self.len + 1).saturating_mul(5) > self.buckets.saturating_mul(4) {
            self.resize(buckets_for(self.len + 1));
        }
        let new = Slot { h, idx: idx as u32 };
        // After every slot of the run with a hash <= h.
        let mut p = self.home(h);
        while self.slots.get(p).is_some_and(|s| !s.is_empty() && s.h <= h) {
            p += 1;
        }
        let mut q = p;
        while self.slots.get(q).is_some_and(|s| !s.is_empty()) {
            q += 1;
        }
        if q == self.slots.len() {
            push_slot(&mut self.slots, EMPTY);
        }
        // slots[q] is empty: shift slots[p..q] right by one.
        self.slots.copy_within(p..q, p + 1);
        if let Some(s) = self.slots.get_mut(p) {
            *s = new;
        }
        self.len += 1;
    }

    /// Removes the entry in slot `slot` (from [`OrderedIndex::find`]), and shrinks the index
    /// once it is mostly empty.
    pub fn remove(&mut self, slot: usize) {
        self.remove_keeping_size(slot);
        self.shrink_if_sparse();
    }

    /// [`OrderedIndex::remove`] without shrinking, for callers that remove many entries in a
    /// row (a mass expiry) and call [`OrderedIndex::shrink_if_sparse`] once at the end: each
    /// shrink rebuilds the index, and doing it at every halving in one burst adds up to long
    /// stalls. Following slots that sit past their home move back by one, so runs stay
    /// gap-free without tombstones.
    pub fn remove_keeping_size(&mut self, slot: usize) {
        if self.slots.get(slot).is_none_or(|s| s.is_empty()) {
            return;
        }
        let mut i = slot;
        while let Some(&next) = self.slots.get(i + 1) {
            if next.is_empty() || self.home(next.h) > i {
                break;
            }
            self.slots[i] = next;
            i += 1;
        }
        self.slots[i] = EMPTY;
        self.len -= 1;
        while self.slots.len() > self.buckets && self.slots.last().is_some_and(|s| s.is_empty()) {
            self.slots.pop();
        }
    }

    /// Shrinks the index if fewer than one home slot in eight is used.
    pub fn shrink_if_sparse(&mut self) {
        if self.buckets > MIN_BUCKETS && self.len.saturating_mul(8) < self.buckets {
            self.shrink(buckets_for(self.len));
        }
    }

    /// Removes every entry and frees the slots.
    pub fn clear(&mut self) {
        *self = OrderedIndex::default();
    }

    /// Calls `f(position)` for the entries whose hash is at least `from`, in hash order, until
    /// `count` have been visited and the next one has a different hash. Returns the hash to
    /// continue from, or `None` when the walk reached the end.
    pub fn scan(&self, from: u64, count: usize, mut f: impl FnMut(usize)) -> Option<u64> {
        let from = u32::try_from(from).ok()?;
        let mut visited = 0usize;
        let mut last = None;
        // Every entry with a hash >= from sits at or after from's home slot.
        for &s in self.slots.iter().skip(self.home(from)) {
            if s.is_empty() || s.h < from {
                continue;
            }
            if visited >= count && last != Some(s.h) {
                return Some(u64::from(s.h));
            }
            f(s.idx as usize);
            visited += 1;
            last = Some(s.h);
        }
        None
    }

    /// Shrinks the index to `buckets` home slots within its own allocation, then gives the
    /// tail back. With fewer buckets every slot's new position is at or before its old one
    /// (homes only move left and the old positions are strictly increasing), so one forward
    /// pass can move slots down without overwriting any it has yet to read. Besides avoiding a
    /// second copy of the index at peak, this avoids asking the allocator for a fresh
    /// multi-megabyte block right after a purge freed many small ones, which glibc answers with
    /// a long `malloc_consolidate` (~80 ms measured after a 1M-field purge).
    fn shrink(&mut self, buckets: usize) {
        self.buckets = buckets;
        let mut next_free = 0usize;
        for read in 0..self.slots.len() {
            let s = self.slots[read];
            if s.is_empty() {
                continue;
            }
            let p = self.home(s.h).max(next_free);
            self.slots[read] = EMPTY;
            self.slots[p] = s;
            next_free = p + 1;
        }
        self.slots.truncate(buckets.max(next_free));
        self.slots
            .shrink_to(buckets.saturating_add(buckets / 64 + 8));
    }

    /// Home slots (tests).
    #[cfg(test)]
    pub(crate) fn buckets(&self) -> usize {
        self.buckets
    }

    /// Checks the index's invariants (sorted runs, every slot at or after its home with no gap
    /// in between, the count) and returns the `(hash, position)` pairs it holds, in slot order.
    #[cfg(test)]
    pub(crate) fn assert_valid(&self) -> Vec<(u32, usize)> {
        assert!(self.slots.len() >= self.buckets);
        let mut prev: Option<u32> = None;
        let mut positions = Vec::new();
        for (pos, s) in self.slots.iter().enumerate() {
            if s.is_empty() {
                continue;
            }
            if let Some(p) = prev {
                assert!(p <= s.h, "index not sorted at {pos}");
            }
            prev = Some(s.h);
            let home = self.home(s.h);
            assert!(home <= pos, "slot before its home");
            for q in home..pos {
                assert!(!self.slots[q].is_empty(), "gap between home and slot");
            }
            positions.push((s.h, s.idx as usize));
        }
        assert_eq!(positions.len(), self.len);
        positions
    }

    /// Grows the slots to `buckets` home slots. The old slots are already in hash order and
    /// `home` is monotonic, so placing each at its home or right after the previous one (in one
    /// pass) gives a valid index.
    fn resize(&mut self, buckets: usize) {
        let old = std::mem::take(&mut self.slots);
        self.buckets = buckets;
        let mut slots = Vec::with_capacity(buckets + buckets / 64 + 8);
        slots.resize(buckets, EMPTY);
        let mut next_free = 0usize;
        for s in old.into_iter().filter(|s| !s.is_empty()) {
            let p = self.home(s.h).max(next_free);
            while slots.len() <= p {
                push_slot(&mut slots, EMPTY);
            }
            slots[p] = s;
            next_free = p + 1;
        }
        self.slots = slots;
    }
}

/// Home slots for `n` entries, when an index is built, grows or shrinks: a load of 8/15, so that
/// it takes half as many entries again before it passes 4/5 and must grow, the load where
/// ordered linear probing still finds an entry within a cache line or two. Any size works, as
/// `home` maps a hash by multiplication, not by a mask; growing by half rather than doubling to
/// a power of two keeps a slot at 10-15 bytes per entry instead of 10-20 (16.8 bytes for a
/// million entries). Shared by the hash tables of big hashes.
pub(crate) fn buckets_for(n: usize) -> usize {
    let want = n.saturating_add(n / 4).saturating_add(1);
    want.saturating_add(want / 2).max(MIN_BUCKETS)
}

/// Appends a slot without `Vec`'s doubling, which would double the index for a few overflow
/// slots.
fn push_slot(slots: &mut Vec<Slot>, slot: Slot) {
    if slots.len() == slots.capacity() {
        slots.reserve_exact(slots.len() / 64 + 8);
    }
    slots.push(slot);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model: entries (hash, position) and a check that the index finds each.
    fn check(index: &OrderedIndex, entries: &[(u32, usize)]) {
        assert_eq!(index.len(), entries.len());
        for &(h, idx) in entries {
            assert_eq!(index.find(h, |i| i == idx).map(|f| f.1), Some(idx));
        }
        let mut sorted: Vec<u32> = index
            .slots
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.h)
            .collect();
        let copy = sorted.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, copy, "slots stay sorted by hash");
    }

    fn lcg(state: &mut u64) -> u32 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*state >> 32) as u32
    }

    #[test]
    fn insert_find_remove_across_resizes() {
        let mut index = OrderedIndex::new();
        let mut entries = Vec::new();
        let mut rng = 7;
        for i in 0..5000 {
            // Some equal hashes, some at the very top of the range.
            let h = match i % 10 {
                0 => 42,
                1 => u32::MAX - (i as u32 % 3),
                _ => lcg(&mut rng),
            };
            index.insert(h, i);
            entries.push((h, i));
        }
        check(&index, &entries);
        while entries.len() > 10 {
            let (h, idx) = entries.swap_remove(lcg(&mut rng) as usize % entries.len());
            let (slot, _) = index.find(h, |i| i == idx).unwrap();
            index.remove(slot);
        }
        check(&index, &entries);
        assert!(
            index.buckets <= 32,
            "shrinks when sparse: {}",
            index.buckets
        );
    }

    #[test]
    fn scan_visits_everything_once_even_when_the_index_changes_size() {
        let mut index = OrderedIndex::new();
        let mut rng = 3;
        let kept: Vec<(u32, usize)> = (0..1000).map(|i| (lcg(&mut rng), i)).collect();
        for &(h, i) in &kept {
            index.insert(h, i);
        }
        let mut seen = vec![0u32; 1_000_000];
        let mut cursor = 0;
        let mut extra = 1000;
        let mut calls = 0;
        loop {
            let next = index.scan(cursor, 10, |i| seen[i] += 1);
            calls += 1;
            // Grow a lot, then shrink, between calls.
            if calls < 20 {
                for _ in 0..2000 {
                    index.insert(lcg(&mut rng), extra);
                    extra += 1;
                }
            } else if calls == 20 {
                index.clear();
                for &(h, i) in &kept {
                    index.insert(h, i);
                }
            }
            match next {
                Some(c) => cursor = c,
                None => break,
            }
        }
        for &(_, i) in &kept {
            assert_eq!(seen[i], 1, "entry {i}");
        }
    }

    #[test]
    fn scan_keeps_equal_hashes_together() {
        let mut index = OrderedIndex::new();
        for i in 0..10 {
            index.insert(5, i);
        }
        index.insert(6, 10);
        let mut got = Vec::new();
        let next = index.scan(0, 1, |i| got.push(i));
        assert_eq!(got.len(), 10);
        assert_eq!(next, Some(6));
        assert_eq!(index.scan(u64::from(u32::MAX) + 1, 10, |_| {}), None);
    }
}
