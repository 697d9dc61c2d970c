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

use ahash::AHashMap;

use crate::thin::varint;

/// Size of a shared block.
const BLOCK: usize = 64 * 1024;

/// Entries (header included) above this size get a block of their own.
const JUMBO: usize = 4 * 1024;

/// Where an entry lives: block index in the high 32 bits, offset in the low 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot(u64);

impl Slot {
    fn new(block: usize, offset: usize) -> Slot {
        Slot(((block as u64) << 32) | offset as u64)
    }

    fn block(self) -> usize {
        (self.0 >> 32) as usize
    }

    fn offset(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
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

/// Reads the varint at the start of `bytes`: the length it encodes and its own size.
fn read_header(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut len = 0usize;
    for (n, &b) in bytes.iter().enumerate().take(10) {
        len |= usize::from(b & 0x7f) << (7 * n);
        if b & 0x80 == 0 {
            return Some((len, n + 1));
        }
    }
    None
}

impl Arena {
    /// Stores the concatenation of `parts` and returns where.
    pub(crate) fn alloc(&mut self, parts: &[&[u8]]) -> Slot {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let (head, n) = varint(len as u64);
        let size = n + len;
        let slot = self.reserve(size);
        let block = &mut self.blocks[slot.block()];
        let mut at = slot.offset();
        for part in std::iter::once(&&head[..n]).chain(parts) {
            block[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        self.live_bytes += size;
        slot
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
                .map(|v| v.capacity() * 8 + 16)
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
