//! [`Arena`]: the entries of a big hash, packed back to back in shared blocks.
//!
//! A field of a million-field hash is typically 20 to 30 bytes with its value. Given one
//! allocation each, glibc adds an 8-byte header and rounds up to 16 bytes (32 at least), so a
//! 26-byte entry took a 48-byte block: almost half the memory of such a hash was allocator
//! overhead. An arena holds entries back to back in 64 KiB blocks instead, each addressed by
//! a [`Slot`] (block and offset, 8 bytes, as the thin pointer it replaces). An entry is the
//! LEB128 varint of its length and then its bytes, as in [`ThinBytes`](crate::thin).
//!
//! Freed room is kept on a free list by size and reused by the next entry of exactly that size
//! (the fields of one hash tend to have a few sizes only). Room that no entry of the right size
//! comes back for is reclaimed by [`Arena::compact`], which the owner calls when
//! [`Arena::needs_compaction`] says that the free room has outgrown half of the live bytes:
//! each compaction copies the live entries once, and at least half as many bytes must be freed
//! again before the next, so the copying is amortised O(1) per freed byte. An entry larger than
//! [`JUMBO`] gets a block of its own, given back as soon as the entry is freed.

use std::ops::Range;

use ahash::AHashMap;

use crate::thin::{read_varint, varint};

/// Size of a shared block.
const BLOCK: usize = 64 * 1024;

/// Entries (header included) above this size get a block of their own.
const JUMBO: usize = 4 * 1024;

/// Where an entry lives: the block's index (32 bits) and the offset in it (16 bits: blocks are
/// 64 KiB, and an entry with a block of its own starts at 0), in 6 bytes, 2-aligned. A big hash
/// keeps one per field, so each byte here is a megabyte per million fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot([u16; 3]);

const _: () = assert!(
    BLOCK <= 1 << 16,
    "offsets in a shared block must fit 16 bits"
);

impl Slot {
    fn new(block: usize, offset: usize) -> Slot {
        Slot([(block >> 16) as u16, block as u16, offset as u16])
    }

    fn block(self) -> usize {
        usize::from(self.0[0]) << 16 | usize::from(self.0[1])
    }

    fn offset(self) -> usize {
        usize::from(self.0[2])
    }
}

/// A piece of an entry being written: new bytes, or bytes of the entry it replaces (a range of
/// that entry's bytes, see [`Arena::rebuild`]).
pub(crate) enum Part<'a> {
    New(&'a [u8]),
    Old(Range<usize>),
}

impl Part<'_> {
    fn reborrow(&self) -> Part<'_> {
        match self {
            Part::New(bytes) => Part::New(bytes),
            Part::Old(range) => Part::Old(range.clone()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Part::New(bytes) => bytes.len(),
            Part::Old(range) => range.len(),
        }
    }
}

/// Blocks of entries; see the module documentation.
#[derive(Clone, Default)]
pub(crate) struct Arena {
    blocks: Vec<Box<[u8]>>,
    /// The shared block being filled, and how many of its bytes are taken.
    open: Option<(usize, usize)>,
    /// Freed room of shared blocks, by size (header included).
    free: AHashMap<u32, Vec<Slot>>,
    /// Indices of blocks given back (empty), to reuse before growing `blocks`.
    spare: Vec<usize>,
    free_bytes: usize,
    live_bytes: usize,
}

/// Block `from` to read and block `to` to write, two different blocks of `blocks`.
fn two_blocks(blocks: &mut [Box<[u8]>], from: usize, to: usize) -> (&[u8], &mut [u8]) {
    if from < to {
        let (low, high) = blocks.split_at_mut(to);
        (&low[from], &mut high[0])
    } else {
        let (low, high) = blocks.split_at_mut(from);
        (&high[0], &mut low[to])
    }
}

/// Reads the varint at the start of `bytes`: the length it encodes and its own size.
fn read_header(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut n = 0;
    let len = usize::try_from(read_varint(bytes, &mut n)?).ok()?;
    Some((len, n))
}

impl Arena {
    /// Stores the concatenation of `parts` and returns where.
    pub(crate) fn alloc(&mut self, parts: &[&[u8]]) -> Slot {
        self.write(parts.iter().map(|&p| Part::New(p)), None)
    }

    /// Stores a new entry made of `parts`, whose [`Part::Old`] pieces are ranges of the bytes
    /// of entry `old`, and frees `old`: an entry rebuilt from itself (a value of a new size, a
    /// TTL added or dropped) without copying its bytes out first. `None` if `old` is not an
    /// entry.
    pub(crate) fn rebuild(&mut self, old: Slot, parts: &[Part<'_>]) -> Option<Slot> {
        let (raw, n) = self.raw(old)?;
        let data = raw.len() - n;
        if parts
            .iter()
            .any(|p| matches!(p, Part::Old(r) if r.end > data))
        {
            return None;
        }
        let fresh = self.write(parts.iter().map(|p| p.reborrow()), Some(old));
        self.free(old);
        Some(fresh)
    }

    /// Writes the varint of the parts' total length and then the parts into new room. `Old`
    /// ranges are of `from`'s bytes (which the new room never overlaps: `from` is live).
    fn write<'p>(
        &mut self,
        parts: impl Iterator<Item = Part<'p>> + Clone,
        from: Option<Slot>,
    ) -> Slot {
        let len: usize = parts.clone().map(|p| p.len()).sum();
        let (head, n) = varint(len as u64);
        let size = n + len;
        let to = self.reserve(size);
        let source = from.and_then(|f| Some((f.block(), f.offset() + self.raw(f)?.1)));
        self.blocks[to.block()][to.offset()..to.offset() + n].copy_from_slice(&head[..n]);
        let mut at = to.offset() + n;
        for part in parts {
            let end = at + part.len();
            match (part, source) {
                (Part::New(bytes), _) => self.blocks[to.block()][at..end].copy_from_slice(bytes),
                (Part::Old(r), Some((block, data))) if block == to.block() => {
                    self.blocks[block].copy_within(data + r.start..data + r.end, at);
                }
                (Part::Old(r), Some((block, data))) => {
                    let (src, dst) = two_blocks(&mut self.blocks, block, to.block());
                    dst[at..end].copy_from_slice(&src[data + r.start..data + r.end]);
                }
                (Part::Old(_), None) => {}
            }
            at = end;
        }
        self.live_bytes += size;
        to
    }

    /// Room for `size` bytes: reused, at the end of the open block, or in a new block.
    fn reserve(&mut self, size: usize) -> Slot {
        if size > JUMBO {
            return Slot::new(self.new_block(size), 0);
        }
        if let Some(slot) = self.free.get_mut(&(size as u32)).and_then(Vec::pop) {
            self.free_bytes -= size;
            return slot;
        }
        match self.open {
            Some((block, used)) if used + size <= BLOCK => {
                self.open = Some((block, used + size));
                Slot::new(block, used)
            }
            _ => {
                let block = self.new_block(BLOCK);
                self.open = Some((block, size));
                Slot::new(block, 0)
            }
        }
    }

    fn new_block(&mut self, size: usize) -> usize {
        let bytes = vec![0u8; size].into_boxed_slice();
        match self.spare.pop() {
            Some(i) => {
                self.blocks[i] = bytes;
                i
            }
            None => {
                self.blocks.push(bytes);
                self.blocks.len() - 1
            }
        }
    }

    /// The entry's header and bytes.
    fn raw(&self, slot: Slot) -> Option<(&[u8], usize)> {
        let bytes = self.blocks.get(slot.block())?.get(slot.offset()..)?;
        let (len, n) = read_header(bytes)?;
        Some((bytes.get(..n + len)?, n))
    }

    /// The entry's bytes.
    pub(crate) fn get(&self, slot: Slot) -> Option<&[u8]> {
        let (raw, n) = self.raw(slot)?;
        raw.get(n..)
    }

    /// The entry's bytes, to change in place.
    pub(crate) fn get_mut(&mut self, slot: Slot) -> Option<&mut [u8]> {
        let (len, n) = self.raw(slot).map(|(raw, n)| (raw.len(), n))?;
        let start = slot.offset();
        self.blocks
            .get_mut(slot.block())?
            .get_mut(start + n..start + len)
    }

    /// Bytes the entry takes, header included.
    pub(crate) fn size(&self, slot: Slot) -> usize {
        self.raw(slot).map_or(0, |(raw, _)| raw.len())
    }

    /// Gives the entry's room back.
    pub(crate) fn free(&mut self, slot: Slot) {
        let size = self.size(slot);
        self.live_bytes = self.live_bytes.saturating_sub(size);
        if size > JUMBO {
            if let Some(block) = self.blocks.get_mut(slot.block()) {
                *block = Box::default();
                self.spare.push(slot.block());
            }
        } else if size > 0 {
            self.free.entry(size as u32).or_default().push(slot);
            self.free_bytes += size;
        }
    }

    /// True when the free room exceeds a block and half of the live bytes.
    pub(crate) fn needs_compaction(&self) -> bool {
        self.free_bytes > BLOCK && self.free_bytes > self.live_bytes / 2
    }

    /// Moves every entry of `slots` into fresh blocks, back to back, rewriting the slots, and
    /// drops the old blocks. `slots` must name every live entry. An entry with a block of its
    /// own keeps it: its block moves, its bytes are not copied.
    pub(crate) fn compact(&mut self, slots: &mut [Slot]) {
        let mut fresh = Arena::default();
        for slot in slots.iter_mut() {
            let size = self.size(*slot);
            if size > JUMBO {
                let Some(block) = self.blocks.get_mut(slot.block()) else {
                    continue;
                };
                fresh.blocks.push(std::mem::take(block));
                *slot = Slot::new(fresh.blocks.len() - 1, 0);
            } else if let Some((raw, _)) = self.raw(*slot) {
                let to = fresh.reserve(size);
                fresh.blocks[to.block()][to.offset()..to.offset() + size].copy_from_slice(raw);
                *slot = to;
            }
            fresh.live_bytes += size;
        }
        *self = fresh;
    }

    /// Bytes of the live entries, headers included.
    #[cfg(test)]
    pub(crate) fn live_bytes(&self) -> usize {
        self.live_bytes
    }

    /// Heap bytes the arena holds: its blocks and their list.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.blocks.iter().map(|b| b.len()).sum::<usize>()
            + self.blocks.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self
                .free
                .values()
                .map(|v| v.capacity() * std::mem::size_of::<Slot>() + 16)
                .sum::<usize>()
    }
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena")
            .field("blocks", &self.blocks.len())
            .field("live_bytes", &self.live_bytes)
            .field("free_bytes", &self.free_bytes)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bytes(seed: usize, len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + seed) as u8).collect()
    }

    #[test]
    fn entries_round_trip_and_change_in_place() {
        let mut a = Arena::default();
        let lens = [0, 1, 26, 127, 128, 4000, 5000, 70_000, 26];
        let slots: Vec<Slot> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| a.alloc(&[&bytes(i, len)[..len / 2], &bytes(i, len)[len / 2..]]))
            .collect();
        for (i, (&slot, &len)) in slots.iter().zip(&lens).enumerate() {
            assert_eq!(a.get(slot).unwrap(), &bytes(i, len)[..], "entry {i}");
        }
        a.get_mut(slots[2]).unwrap()[0] = 0xaa;
        assert_eq!(a.get(slots[2]).unwrap()[0], 0xaa);
        assert_eq!(
            a.get(slots[3]).unwrap(),
            &bytes(3, 127)[..],
            "neighbour untouched"
        );
        let header = |len: usize| 1 + usize::from(len >= 128) + usize::from(len >= 16_384);
        let live: usize = lens.iter().map(|&l| l + header(l)).sum();
        assert_eq!(a.live_bytes(), live);
    }

    #[test]
    fn an_entry_is_rebuilt_from_its_own_bytes_in_any_block() {
        let mut a = Arena::default();
        // `near` fills the open block's neighbourhood; `far` ends up in another block.
        let near = a.alloc(&[b"field", b"old-value"]);
        let filler = bytes(3, 4000);
        let mut others: Vec<Slot> = (0..20).map(|_| a.alloc(&[&filler])).collect();
        let far = a.alloc(&[b"field2", b"v2"]);
        assert_ne!(near.block(), far.block());
        for (slot, field, old_value) in [
            (near, &b"field"[..], &b"old-value"[..]),
            (far, b"field2", b"v2"),
        ] {
            let f = 0..field.len();
            let v = field.len()..field.len() + old_value.len();
            // A new value after the old field: bytes from the old entry and new ones.
            let grown = a
                .rebuild(
                    slot,
                    &[
                        Part::Old(f.clone()),
                        Part::New(b"|"),
                        Part::New(b"new value"),
                    ],
                )
                .unwrap();
            assert_eq!(a.get(grown).unwrap(), [field, b"|", b"new value"].concat());
            // The old value kept, something inserted before it.
            let again = a
                .rebuild(
                    grown,
                    &[
                        Part::Old(f.clone()),
                        Part::New(b"+ttl"),
                        Part::Old(f.len() + 1..f.len() + 10),
                    ],
                )
                .unwrap();
            assert_eq!(
                a.get(again).unwrap(),
                [field, b"+ttl", b"new value"].concat()
            );
            // A range past the entry's end is refused and leaves it alone.
            assert_eq!(a.rebuild(again, &[Part::Old(v.start..v.start + 100)]), None);
            assert_eq!(
                a.get(again).unwrap(),
                [field, b"+ttl", b"new value"].concat()
            );
            others.push(again);
        }
        let header = |len: usize| 1 + usize::from(len >= 128);
        let live: usize = others
            .iter()
            .map(|&s| {
                let len = a.get(s).unwrap().len();
                len + header(len)
            })
            .sum();
        assert_eq!(a.live_bytes(), live, "the old entries were freed");
    }

    #[test]
    fn freed_room_is_reused_by_the_same_size_and_jumbo_blocks_go_back() {
        let mut a = Arena::default();
        let small = a.alloc(&[b"field:1 value:1"]);
        let other = a.alloc(&[b"x"]);
        a.free(small);
        let again = a.alloc(&[b"field:2 value:2"]);
        assert_eq!(again, small, "same size, same room");
        assert_eq!(a.get(other).unwrap(), b"x");
        let big = a.alloc(&[&bytes(0, 10_000)]);
        let blocks = a.blocks.len();
        a.free(big);
        assert!(a.blocks[big.block()].is_empty(), "jumbo block given back");
        let big2 = a.alloc(&[&bytes(1, 20_000)]);
        assert_eq!((a.blocks.len(), big2.block()), (blocks, big.block()));
        assert_eq!(a.get(big2).unwrap(), &bytes(1, 20_000)[..]);
    }

    #[test]
    fn compaction_keeps_the_live_entries_and_gives_room_back() {
        let mut a = Arena::default();
        let mut slots: Vec<Slot> = (0..20_000)
            .map(|i| a.alloc(&[format!("field:{i} value:{i}").as_bytes()]))
            .collect();
        // Free three entries in four, of every size.
        let mut kept = Vec::new();
        for (i, slot) in slots.drain(..).enumerate() {
            if i % 4 == 0 {
                kept.push((i, slot));
            } else {
                a.free(slot);
            }
        }
        assert!(a.needs_compaction());
        let before = a.heap_bytes();
        let big = a.alloc(&[&bytes(7, 100_000)]);
        let big_at = a.blocks[big.block()].as_ptr();
        let mut live: Vec<Slot> = kept.iter().map(|&(_, s)| s).collect();
        live.push(big);
        a.compact(&mut live);
        assert!(!a.needs_compaction());
        let after = a.heap_bytes();
        assert!(after < before / 2 + 100_100, "{before} -> {after}");
        for (&(i, _), &slot) in kept.iter().zip(&live) {
            let want = format!("field:{i} value:{i}");
            assert_eq!(a.get(slot).unwrap(), want.as_bytes());
        }
        let big = live[kept.len()];
        assert_eq!(a.get(big).unwrap(), &bytes(7, 100_000)[..]);
        assert_eq!(a.blocks[big.block()].as_ptr(), big_at, "moved, not copied");
    }
}
