//! [`ExpiryIndex`]: the entries with an expiry, earliest first, in 4-10 bytes each.
//!
//! Active expiry must find the due entries of a million without walking them, and must stay
//! exact so that the earliest expiry it reports is never stale. Every key with a TTL, every
//! field of a big hash with a TTL and every hash with field TTLs has one record here, so the
//! size of a record is the memory a TTL costs: a `BTreeMap<(u64, u32), u32>` took about 32 bytes
//! per record (16-byte keys padded from 12, the counts, nodes two-thirds full); a big hash with a
//! TTL on each of its million fields spent a third of its memory on it.
//!
//! A record is an expiry and the entry's 32-bit hash, nothing else. Records sit in sorted chunks
//! of at most [`CHUNK`], with the first record of every chunk copied into one contiguous array, so
//! a lookup is a binary search over that array and one inside a chunk, and a change moves at most
//! two chunks' bytes. A full chunk first hands a record to a neighbour that has room, and only
//! then splits, in the middle or, at the very end, by starting a new chunk: a load in expiry order
//! (`EXPIRE key 60` after `EXPIRE key 60`) leaves every chunk full, and a thousand records a
//! millisecond in random order within it leave them about 85% full. A chunk that falls below a
//! quarter full is merged into a neighbour that has room, so deletions cannot leave the records
//! spread thin. Records that share both expiry and hash are simply stored as many times.
//!
//! Sorted records are close together, so a chunk stores each expiry as its distance from a base
//! of the chunk's, in as few bytes as its widest distance needed when the chunk was last
//! encoded: none when every record of the chunk expires in the same millisecond (the fields one
//! `HSETEX` sets, keys given a TTL at a high rate), two when they span a minute (a million TTLs
//! spread over a day). A record then takes 4-6 bytes where a full 48-bit expiry took 10 (tests
//! `records_in_expiry_order_fill_their_chunks` and
//! `spread_records_take_the_bytes_their_distances_need`).
//! A chunk is encoded anew when a record does not fit it (below its base, or too far above), when
//! an insertion finds that narrower distances would do, and when it splits; each is O([`CHUNK`]),
//! and records added in descending order pay it on every insertion.

/// Most records a chunk holds: an insertion shifts half of at most 1.25 KiB.
const CHUNK: usize = 128;

/// Records a chunk of `n` has room for before its bytes are reallocated: a quarter more, and
/// at least 16 more, up to [`CHUNK`]. A record's room costs as much whether it is used or not,
/// so a chunk gets a little at a time, not `CHUNK` at once nor twice what it holds; steps much
/// smaller than these reallocate so often that the freed buffers fragment the heap (a million
/// hashes with field TTLs took 3 MB more RSS with steps of an eighth).
fn room(n: usize) -> usize {
    (n + (n / 4).max(16)).min(CHUNK)
}

/// Grows `v` by half when it is full, rather than doubling it (the chunks' list and their
/// first records: 50 bytes a chunk).
fn reserve_half<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len() / 2 + 4);
    }
}

/// The latest expiry a record holds: 2^48 - 1 ms, in the year 10889. A later one (only a key's
/// can be, `EXPIREAT` takes any 64-bit time) is listed as this: never due in practice, and the
/// entry keeps its exact expiry, so adding and removing it still meet the same record.
pub const AT_MAX: u64 = (1 << 48) - 1;

/// One record as the index hands it around: 48 bits of expiry and the 32-bit hash bit-reversed,
/// packed into 10 bytes, 2-aligned (a `u64` and a `u32` would be padded to 16), as the array of
/// the chunks' first records holds them. The derived order compares the fields in declaration
/// order, which is the order of `(expire_at, reversed hash)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(C, packed(2))]
struct Record {
    at_high: u16,
    at_low: u32,
    reversed: u32,
}

impl Record {
    fn new(at: u64, h: u32) -> Record {
        Record::with_reversed(at, h.reverse_bits())
    }

    fn with_reversed(at: u64, reversed: u32) -> Record {
        let at = at.min(AT_MAX);
        Record {
            at_high: (at >> 32) as u16,
            at_low: at as u32,
            reversed,
        }
    }

    fn at(self) -> u64 {
        u64::from(self.at_high) << 32 | u64::from(self.at_low)
    }

    fn hash(self) -> u32 {
        self.reversed.reverse_bits()
    }

    /// `(expire_at, reversed hash)`: the record's order as two plain integers, which compare
    /// faster than the packed fields.
    fn key(self) -> (u64, u32) {
        (self.at(), self.reversed)
    }
}

/// Bytes that hold `distance`: 0 for 0, up to 6 for a 48-bit one.
fn width_for(distance: u64) -> usize {
    (u64::BITS - distance.leading_zeros()).div_ceil(8) as usize
}

/// Writes the low `out.len()` bytes of `n` into `out`, little-endian.
fn write_le(out: &mut [u8], mut n: u64) {
    for b in out {
        *b = n as u8;
        n >>= 8;
    }
}

/// A chunk's records, sorted, packed: each is its expiry's distance from `base` in `width` bytes
/// then its reversed hash in 4, little-endian. `base` is at most every record's expiry and
/// `width` holds every distance; an insertion re-encodes the chunk when the new record is outside
/// them or when narrower distances would now do.
#[derive(Clone, Debug, Default)]
struct Chunk {
    base: u64,
    bytes: Vec<u8>,
    width: u8,
    len: u8,
}

impl Chunk {
    fn len(&self) -> usize {
        usize::from(self.len)
    }

    fn stride(&self) -> usize {
        usize::from(self.width) + 4
    }

    /// Record `i`'s [`Record::key`]; a slot past the end reads as the latest record there is
    /// (never asked for). Every read is of a fixed size (a record is at least 4 bytes, and at
    /// least 8 when its distance takes 4 or more), so a search calls no `memcpy`.
    fn key(&self, i: usize) -> (u64, u32) {
        let w = usize::from(self.width);
        let Some(b) = self.bytes.get(i * (w + 4)..(i + 1) * (w + 4)) else {
            return (AT_MAX, u32::MAX);
        };
        let raw = if w >= 4 {
            let mut eight = [0; 8];
            eight.copy_from_slice(&b[..8]);
            u64::from_le_bytes(eight)
        } else {
            let mut four = [0; 4];
            four.copy_from_slice(&b[..4]);
            u64::from(u32::from_le_bytes(four))
        };
        let mut reversed = [0; 4];
        reversed.copy_from_slice(&b[w..]);
        (
            self.base + (raw & ((1 << (8 * w)) - 1)),
            u32::from_le_bytes(reversed),
        )
    }

    fn get(&self, i: usize) -> Record {
        let (at, reversed) = self.key(i);
        Record::with_reversed(at, reversed)
    }

    fn records(&self) -> impl Iterator<Item = Record> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The chunk of `records` (sorted, at most [`CHUNK`]), with room for `capacity` records.
    fn from_records(records: &[Record], capacity: usize) -> Chunk {
        let (base, last) = match (records.first(), records.last()) {
            (Some(first), Some(last)) => (first.at(), last.at()),
            _ => (0, 0),
        };
        let width = width_for(last - base);
        let mut bytes = Vec::with_capacity(capacity.max(records.len()) * (width + 4));
        for r in records {
            let end = bytes.len();
            bytes.resize(end + width + 4, 0);
            write_le(&mut bytes[end..end + width], r.at() - base);
            write_le(&mut bytes[end + width..], u64::from(r.reversed));
        }
        Chunk {
            base,
            bytes,
            width: width as u8,
            len: records.len() as u8,
        }
    }

    /// Index of the first record whose key `pred` is false for (records sorted by it).
    fn partition_point(&self, pred: impl Fn((u64, u32)) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if pred(self.key(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Inserts `r` at position `i` (keeping the records sorted is the caller's part).
    fn insert(&mut self, i: usize, r: Record) {
        let at = r.at();
        let last = self
            .len()
            .checked_sub(1)
            .map_or(at, |l| self.key(l).0.max(at));
        let first = if self.len == 0 {
            at
        } else {
            self.key(0).0.min(at)
        };
        let fits = at >= self.base && width_for(last - self.base) <= usize::from(self.width);
        if !fits || self.len == 0 || width_for(last - first) < usize::from(self.width) {
            // Re-based on the first record: the records that made the chunk wide may have gone
            // (to a neighbour, or expired), and the distances may fit in fewer bytes now.
            let mut records: Vec<Record> = self.records().collect();
            records.insert(i, r);
            let capacity = self.bytes.capacity() / self.stride();
            *self = Chunk::from_records(&records, capacity.clamp(records.len(), CHUNK));
            debug_assert_eq!(self.base, first);
            return;
        }
        let (w, stride) = (usize::from(self.width), self.stride());
        let (pos, end) = (i * stride, self.bytes.len());
        if end + stride > self.bytes.capacity() {
            self.bytes
                .reserve_exact(room(self.len() + 1) * stride - end);
        }
        self.bytes.resize(end + stride, 0);
        self.bytes.copy_within(pos..end, pos + stride);
        write_le(&mut self.bytes[pos..pos + w], at - self.base);
        write_le(
            &mut self.bytes[pos + w..pos + stride],
            u64::from(r.reversed),
        );
        self.len += 1;
    }

    fn push(&mut self, r: Record) {
        self.insert(self.len(), r);
    }

    /// Removes and returns record `i`.
    fn remove(&mut self, i: usize) -> Record {
        let r = self.get(i);
        let pos = i * self.stride();
        self.bytes.drain(pos..pos + self.stride());
        self.len -= 1;
        r
    }

    /// Splits off the records from position `i` on into a chunk of their own. Both halves are
    /// encoded anew: each spans less than the whole did, and may need narrower distances.
    fn split_off(&mut self, i: usize) -> Chunk {
        let records: Vec<Record> = self.records().collect();
        let (left, right) = records.split_at(i.min(records.len()));
        *self = Chunk::from_records(left, room(left.len()));
        Chunk::from_records(right, room(right.len()))
    }

    /// Appends the records of `next`, which all sort after these.
    fn append(&mut self, next: &Chunk) {
        for r in next.records() {
            self.push(r);
        }
    }
}

/// Entries with an expiry, ordered by `(expire_at, bit-reversed hash)`, earliest first.
///
/// Entries that expire in the same millisecond come out in the order of their hashes' low bits,
/// which are spread evenly over an [`OrderedIndex`](crate::index::OrderedIndex). In plain hash
/// order a mass expiry would delete them index position by position, leaving the survivors
/// bunched at the top of hash space, where a shrunken index would pile them into one long
/// cluster (every later removal then shifting thousands of slots).
///
/// It stores the entry's 32-bit hash rather than its name, so that nothing is stored twice: the
/// index of the entries resolves the hash to the few entries that share it, and the one whose
/// expiry matches is the one. Being exact (no stale records to clean up in one long pass) at
/// O(log n) per change, it lets active expiry reclaim any number of due entries a bounded slice
/// at a time.
#[derive(Clone, Debug, Default)]
pub struct ExpiryIndex {
    /// Sorted, each non-empty, each sorted and ordered before the next.
    chunks: Vec<Chunk>,
    /// `firsts[i]` is `chunks[i].get(0)`.
    firsts: Vec<Record>,
    len: usize,
}

impl ExpiryIndex {
    /// Entries listed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no entry is listed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the records and the chunks' bookkeeping take (MEMORY USAGE, INFO).
    pub fn heap_bytes(&self) -> usize {
        let records: usize = self.chunks.iter().map(|c| c.bytes.capacity()).sum();
        records
            + self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.firsts.capacity() * std::mem::size_of::<Record>()
    }

    /// Lists an entry with hash `h` expiring at `at`.
    pub fn add(&mut self, at: u64, h: u32) {
        let r = Record::new(at, h);
        self.len += 1;
        if self.chunks.is_empty() {
            self.push_chunk(0, Chunk::from_records(&[r], room(1)));
            return;
        }
        // The last chunk starting at or before `r` (the first chunk when `r` is the smallest).
        let i = self.firsts.partition_point(|f| *f <= r).saturating_sub(1);
        let key = r.key();
        let chunk = &self.chunks[i];
        // Most TTLs are set from the current time, so most records are the latest yet.
        let at = match chunk.len().checked_sub(1) {
            Some(last) if chunk.key(last) <= key => chunk.len(),
            _ => chunk.partition_point(|x| x <= key),
        };
        if self.chunks[i].len() < CHUNK {
            self.chunks[i].insert(at, r);
        } else if at == CHUNK && i + 1 == self.chunks.len() {
            // Past the end of everything: a new chunk, leaving this one full.
            self.push_chunk(i + 1, Chunk::from_records(&[r], room(1)));
            return;
        } else if i > 0 && self.chunks[i - 1].len() < CHUNK {
            // Hand the first record to the left neighbour, an append there.
            let chunk = &mut self.chunks[i];
            let moved = if at == 0 {
                r
            } else {
                let first = chunk.remove(0);
                chunk.insert(at - 1, r);
                first
            };
            self.chunks[i - 1].push(moved);
        } else if self
            .chunks
            .get(i + 1)
            .is_some_and(|next| next.len() < CHUNK)
        {
            // Hand the last record to the right neighbour and take `r` in its place.
            let chunk = &mut self.chunks[i];
            let moved = if at == CHUNK {
                r
            } else {
                let last = chunk.remove(CHUNK - 1);
                chunk.insert(at, r);
                last
            };
            self.chunks[i + 1].insert(0, moved);
            self.firsts[i + 1] = moved;
        } else {
            let mut right = self.chunks[i].split_off(CHUNK / 2);
            if at <= CHUNK / 2 {
                self.chunks[i].insert(at, r);
            } else {
                right.insert(at - CHUNK / 2, r);
            }
            self.push_chunk(i + 1, right);
        }
        self.firsts[i] = self.chunks[i].get(0);
    }

    /// Unlists one entry with hash `h` expiring at `at`, if listed.
    pub fn remove(&mut self, at: u64, h: u32) {
        let r = Record::new(at, h);
        // A record equal to `r` is at the end of the last chunk starting before `r`, or at the
        // front of the chunk after it (equal records may span chunks).
        let j = self.firsts.partition_point(|f| *f < r);
        for i in [j.wrapping_sub(1), j] {
            let Some(chunk) = self.chunks.get_mut(i) else {
                continue;
            };
            let key = r.key();
            let pos = chunk.partition_point(|x| x < key);
            if pos < chunk.len() && chunk.key(pos) == key {
                chunk.remove(pos);
                self.len -= 1;
                self.settle(i);
                return;
            }
        }
    }

    /// The earliest `(expire_at, hash)` listed.
    pub fn first(&self) -> Option<(u64, u32)> {
        self.firsts.first().map(|r| (r.at(), r.hash()))
    }

    /// Drops every record of `(at, h)`: for a record no entry matches (which only a caller that
    /// changed an expiry behind the index's back can cause), so that expiry cannot spin on it.
    pub fn forget(&mut self, at: u64, h: u32) {
        loop {
            let before = self.len;
            self.remove(at, h);
            if self.len == before {
                return;
            }
        }
    }

    /// Unlists everything.
    pub fn clear(&mut self) {
        *self = ExpiryIndex::default();
    }

    /// Inserts a chunk at position `i`.
    fn push_chunk(&mut self, i: usize, chunk: Chunk) {
        reserve_half(&mut self.chunks);
        reserve_half(&mut self.firsts);
        self.firsts.insert(i, chunk.get(0));
        self.chunks.insert(i, chunk);
    }

    /// After a removal from chunk `i`: drops it when empty, merges it into a neighbour when
    /// under a quarter full and the two fit in one chunk, and refreshes its first record.
    fn settle(&mut self, i: usize) {
        let len = self.chunks[i].len();
        if len == 0 {
            self.chunks.remove(i);
            self.firsts.remove(i);
            return;
        }
        if len < CHUNK / 4 {
            let fits = |c: Option<&Chunk>| c.is_some_and(|c| c.len() + len <= CHUNK);
            if fits(self.chunks.get(i + 1)) {
                let next = self.chunks.remove(i + 1);
                self.firsts.remove(i + 1);
                self.chunks[i].append(&next);
            } else if i > 0 && fits(self.chunks.get(i - 1)) {
                let chunk = self.chunks.remove(i);
                self.firsts.remove(i);
                self.chunks[i - 1].append(&chunk);
                return;
            }
        }
        self.firsts[i] = self.chunks[i].get(0);
    }

    /// Every `(expire_at, hash)` listed, with how many entries share it (tests).
    #[cfg(test)]
    pub(crate) fn records(&self) -> std::collections::BTreeMap<(u64, u32), u32> {
        let mut out = std::collections::BTreeMap::new();
        for r in self.chunks.iter().flat_map(Chunk::records) {
            *out.entry((r.at(), r.hash())).or_insert(0) += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *state >> 33
    }

    /// The invariants, and that the index holds exactly `model`.
    fn check(e: &ExpiryIndex, model: &BTreeMap<(u64, u32), u32>) {
        assert_eq!(&e.records(), model);
        assert_eq!(e.len(), model.values().map(|&n| n as usize).sum::<usize>());
        assert_eq!(e.chunks.len(), e.firsts.len());
        let all: Vec<Record> = e.chunks.iter().flat_map(Chunk::records).collect();
        assert!(all.windows(2).all(|w| w[0] <= w[1]), "records stay sorted");
        for (chunk, first) in e.chunks.iter().zip(&e.firsts) {
            assert!(chunk.len() > 0 && chunk.len() <= CHUNK);
            assert_eq!(chunk.get(0), *first);
            assert_eq!(chunk.bytes.len(), chunk.len() * chunk.stride());
            assert!(chunk.records().all(|r| r.at() >= chunk.base));
        }
        // `first` sorts by bit-reversed hash within a millisecond, so compare with the model
        // under the same order.
        let want = model.keys().min_by_key(|&&(at, h)| (at, h.reverse_bits()));
        assert_eq!(e.first(), want.copied());
    }

    #[test]
    fn counts_and_orders() {
        let mut e = ExpiryIndex::default();
        e.add(20, 1);
        e.add(10, 2);
        e.add(10, 2);
        assert_eq!((e.len(), e.first()), (3, Some((10, 2))));
        e.remove(10, 2);
        assert_eq!((e.len(), e.first()), (2, Some((10, 2))));
        e.remove(99, 9);
        e.forget(10, 2);
        assert_eq!((e.len(), e.first()), (1, Some((20, 1))));
        e.clear();
        assert!(e.is_empty() && e.first().is_none());
        assert_eq!(std::mem::size_of::<Record>(), 10);
        // Past 48 bits, listed as the latest there is, and still removed by the same time.
        e.add(u64::MAX, 5);
        e.add(AT_MAX, 6);
        assert_eq!(
            e.records().keys().copied().collect::<Vec<_>>(),
            [(AT_MAX, 5), (AT_MAX, 6)]
        );
        e.remove(u64::MAX, 5);
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn matches_a_model_through_random_changes() {
        let mut e = ExpiryIndex::default();
        let mut model: BTreeMap<(u64, u32), u32> = BTreeMap::new();
        let mut listed: Vec<(u64, u32)> = Vec::new();
        let mut rng = 11;
        for step in 0..60_000u64 {
            let roll = lcg(&mut rng) % 10;
            if roll < 6 || listed.is_empty() {
                // Mostly rising expiries, some anywhere, some repeated, some past 2^32 ms.
                let at = match roll {
                    0 => lcg(&mut rng) % 1000,
                    1 => (1 << 40) + lcg(&mut rng) % 50,
                    _ => step / 4,
                };
                let h = if roll == 2 { 7 } else { lcg(&mut rng) as u32 };
                e.add(at, h);
                *model.entry((at, h)).or_insert(0) += 1;
                listed.push((at, h));
            } else if roll < 9 {
                let (at, h) = listed.swap_remove(lcg(&mut rng) as usize % listed.len());
                e.remove(at, h);
                let n = model.get_mut(&(at, h)).unwrap();
                *n -= 1;
                if *n == 0 {
                    model.remove(&(at, h));
                }
            } else {
                // Active expiry: take the earliest.
                let (at, h) = e.first().unwrap();
                e.forget(at, h);
                model.remove(&(at, h));
                listed.retain(|&x| x != (at, h));
            }
            if step % 5000 == 0 {
                check(&e, &model);
            }
        }
        check(&e, &model);
        while let Some((at, h)) = e.first() {
            e.forget(at, h);
            model.remove(&(at, h));
        }
        check(&e, &model);
        assert!(e.chunks.is_empty());
    }

    #[test]
    fn records_in_expiry_order_fill_their_chunks() {
        let mut e = ExpiryIndex::default();
        let mut rng = 5;
        // A thousand entries a millisecond, in random hash order within it, as a load of
        // `HSETEX ... EX 86400` puts them.
        for i in 0..100_000u64 {
            e.add(1_000_000 + i / 1000, lcg(&mut rng) as u32);
        }
        let per_record = e.heap_bytes() as f64 / e.len() as f64;
        assert!(per_record < 6.0, "{per_record} bytes per record");
        // Deleting most of them at random leaves no chunk under a quarter full next to one
        // with room for it.
        let all: Vec<(u64, u32)> = e.records().into_keys().collect();
        for (n, &(at, h)) in all.iter().enumerate() {
            if n % 10 != 0 {
                e.remove(at, h);
            }
        }
        assert_eq!(e.len(), all.len().div_ceil(10));
        assert!(e.chunks.len() <= 2 * e.len() / (CHUNK / 4) + 1);
    }

    #[test]
    fn spread_records_take_the_bytes_their_distances_need() {
        // A million TTLs spread at random over a day: a chunk spans about 11 seconds, two-byte
        // distances, 6-byte records in chunks three-quarters full or more.
        let mut e = ExpiryIndex::default();
        let mut model = BTreeMap::new();
        let mut rng = 9;
        for _ in 0..1_000_000 {
            let (at, h) = ((1 << 40) + lcg(&mut rng) % 86_400_000, lcg(&mut rng) as u32);
            e.add(at, h);
            *model.entry((at, h)).or_insert(0) += 1;
        }
        let per_record = e.heap_bytes() as f64 / e.len() as f64;
        assert!(per_record < 8.5, "{per_record} bytes per record");
        assert!(e.chunks.iter().all(|c| c.width <= 2));
        check(&e, &model);
        // Records far apart widen their chunk, and come out in order all the same.
        e.add(7, 1);
        e.add(AT_MAX, 2);
        e.add(1 << 41, 3);
        assert_eq!(e.first(), Some((7, 1)));
        for (at, h) in [(7, 1), (AT_MAX, 2), (1 << 41, 3)] {
            *model.entry((at, h)).or_insert(0) += 1;
        }
        check(&e, &model);
    }
}
