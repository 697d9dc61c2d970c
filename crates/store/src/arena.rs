//! [`Arena`]: the entries of a big hash, packed back to back in shared blocks.
//!
//! A field of a million-field hash is typically 20 to 30 bytes with its value. Given one
//! allocation each, glibc adds an 8-byte header and rounds up to 16 bytes (32 at least), so a
//! 26-byte entry took a 48-byte block: almost half the memory of such a hash was allocator
//! overhead. An arena holds entries back to back in 64 KiB blocks instead, each addressed by
//! a 4-byte [`Slot`]. The hash's index holds the slots themselves, so a field costs its entry
//! and one index slot, with no array of addresses in between. An entry is the LEB128 varint of
//! its length and then its bytes, as in [`ThinBytes`](crate::thin).
//!
//! Freed room is kept on a free list by size and reused by the next entry of exactly that size
//! (the fields of one hash tend to have a few sizes only). Room that no entry of the right size
//! comes back for is reclaimed by [`Arena::compact`], which the owner calls when
//! [`Arena::needs_compaction`] says that the free room has outgrown half of the live bytes:
//! each compaction copies the live entries once, and at least half as many bytes must be freed
//! again before the next, so the copying is amortised O(1) per freed byte. An entry larger than
//! [`JUMBO`] gets an allocation of its own, given back as soon as the entry is freed; so do
//! all entries once the shared blocks reach their 2 GiB of addresses (a hash of some 70
//! million fields), which costs such entries the allocator's overhead but never refuses one.

use std::ops::Range;

use ahash::AHashMap;

use crate::thin::{read_varint, varint};

/// Size of a shared block.
const BLOCK: usize = 64 * 1024;

/// Entries (header included) above this size get an allocation of their own.
const JUMBO: usize = 4 * 1024;

/// The top bit of a [`Slot`]: set for an entry with an allocation of its own.
const OWN: u32 = 1 << 31;

/// Shared blocks an arena may have: a block's number takes the 15 bits above the offset.
const MAX_SHARED_BLOCKS: usize = 1 << 15;

/// Entries with an allocation of their own an arena may have: their numbers take 31 bits, and
/// the last two are never used, so that every slot is a position an index takes (below
/// [`MAX_ENTRIES`](crate::index::MAX_ENTRIES); `u32::MAX` is its mark for "empty").
const MAX_OWN: usize = (OWN - 2) as usize;

/// Where an entry lives, in 4 bytes: a shared block's number (15 bits) and the offset in it
/// (16 bits: blocks are 64 KiB), or with the top bit set the number of an allocation of its
/// own. A big hash keeps one per field in its index, so each byte here is a megabyte per
/// million fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot(u32);

const _: () = assert!(
    BLOCK <= 1 << 16,
    "offsets in a shared block must fit 16 bits"
);

/// A buffer of the arena: a shared block or an entry's own allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Buffer {
    Shared(usize),
    Own(usize),
}

impl Slot {
    fn shared(block: usize, offset: usize) -> Slot {
        Slot((block as u32) << 16 | offset as u32)
    }

    fn own(number: usize) -> Slot {
        Slot(OWN | number as u32)
    }

    /// The slot's buffer and where in it the entry starts. (In line: every lookup of a field
    /// decodes its slot.)
    #[inline(always)]
    fn place(self) -> (Buffer, usize) {
        if self.0 & OWN != 0 {
            (Buffer::Own((self.0 & !OWN) as usize), 0)
        } else {
            (
                Buffer::Shared((self.0 >> 16) as usize),
                (self.0 & 0xffff) as usize,
            )
        }
    }

    /// The slot as a position of an [`OrderedIndex`](crate::index::OrderedIndex), which holds
    /// it for its field.
    pub(crate) fn position(self) -> usize {
        self.0 as usize
    }

    /// The slot a position of an index holds (see [`Slot::position`]).
    pub(crate) fn from_position(position: usize) -> Slot {
        Slot(position as u32)
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
    /// The shared blocks.
    blocks: Vec<Box<[u8]>>,
    /// The entries with an allocation of their own (empty once freed, until reused).
    own: Vec<Box<[u8]>>,
    /// The shared block being filled, and how many of its bytes are taken.
    open: Option<(usize, usize)>,
    /// Freed room of shared blocks, by size (header included).
    free: AHashMap<u32, Vec<Slot>>,
    /// Numbers of own allocations given back, to reuse before growing `own`.
    spare: Vec<usize>,
    free_bytes: usize,
    live_bytes: usize,
}

/// Buffer `from` to read and buffer `to` to write, two different buffers of `buffers`.
fn two_of(buffers: &mut [Box<[u8]>], from: usize, to: usize) -> Option<(&[u8], &mut [u8])> {
    if from < to {
        let (low, high) = buffers.split_at_mut(to);
        Some((low.get(from)?, high.first_mut()?))
    } else {
        let (low, high) = buffers.split_at_mut(from);
        Some((high.first()?, low.get_mut(to)?))
    }
}

/// Reads the varint at the start of `bytes`: the length it encodes and its own size.
fn read_header(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut n = 0;
    let len = usize::try_from(read_varint(bytes, &mut n)?).ok()?;
    Some((len, n))
}

impl Arena {
    /// Stores the concatenation of `parts` and returns where; `None` only when the arena has
    /// run out of slots (2^31 entries of their own), which no memory could hold.
    pub(crate) fn alloc(&mut self, parts: &[&[u8]]) -> Option<Slot> {
        self.write(parts.iter().map(|&p| Part::New(p)), None)
    }

    /// Stores a new entry made of `parts`, whose [`Part::Old`] pieces are ranges of the bytes
    /// of entry `old`, and frees `old`: an entry rebuilt from itself (a value of a new size, a
    /// TTL added or dropped) without copying its bytes out first. `None` if `old` is not an
    /// entry (or no room could be had; `old` is then kept).
    pub(crate) fn rebuild(&mut self, old: Slot, parts: &[Part<'_>]) -> Option<Slot> {
        let (raw, n) = self.raw(old)?;
        let data = raw.len() - n;
        if parts
            .iter()
            .any(|p| matches!(p, Part::Old(r) if r.end > data))
        {
            return None;
        }
        let fresh = self.write(parts.iter().map(|p| p.reborrow()), Some(old))?;
        self.free(old);
        Some(fresh)
    }

    /// Writes the varint of the parts' total length and then the parts into new room. `Old`
    /// ranges are of `from`'s bytes (which the new room never overlaps: `from` is live).
    fn write<'p>(
        &mut self,
        parts: impl Iterator<Item = Part<'p>> + Clone,
        from: Option<Slot>,
    ) -> Option<Slot> {
        let len: usize = parts.clone().map(|p| p.len()).sum();
        let (head, n) = varint(len as u64);
        let size = n + len;
        let to = self.reserve(size)?;
        let source = from.and_then(|f| Some((f.place(), self.raw(f)?.1)));
        let (buffer, start) = to.place();
        self.buffer_mut(buffer)?[start..start + n].copy_from_slice(&head[..n]);
        let mut at = start + n;
        for part in parts {
            let end = at + part.len();
            match (part, source) {
                (Part::New(bytes), _) => self.buffer_mut(buffer)?[at..end].copy_from_slice(bytes),
                (Part::Old(r), Some(((from, offset), header))) => {
                    let data = offset + header;
                    let old = data + r.start..data + r.end;
                    if from == buffer {
                        self.buffer_mut(buffer)?.copy_within(old, at);
                    } else {
                        let (src, dst) = self.two_buffers(from, buffer)?;
                        dst[at..end].copy_from_slice(&src[old]);
                    }
                }
                (Part::Old(_), None) => {}
            }
            at = end;
        }
        self.live_bytes += size;
        Some(to)
    }

    /// Room for `size` bytes: reused, at the end of the open block, in a new block, or in an
    /// allocation of its own.
    fn reserve(&mut self, size: usize) -> Option<Slot> {
        if size <= JUMBO {
            if let Some(slot) = self.free.get_mut(&(size as u32)).and_then(Vec::pop) {
                self.free_bytes -= size;
                return Some(slot);
            }
            match self.open {
                Some((block, used)) if used + size <= BLOCK => {
                    self.open = Some((block, used + size));
                    return Some(Slot::shared(block, used));
                }
                _ if self.blocks.len() < MAX_SHARED_BLOCKS => {
                    self.blocks.push(vec![0u8; BLOCK].into_boxed_slice());
                    let block = self.blocks.len() - 1;
                    self.open = Some((block, size));
                    return Some(Slot::shared(block, 0));
                }
                // Every shared block's address is taken: fall back to an allocation.
                _ => {}
            }
        }
        let bytes = vec![0u8; size].into_boxed_slice();
        let number = match self.spare.pop() {
            Some(i) => {
                *self.own.get_mut(i)? = bytes;
                i
            }
            None if self.own.len() < MAX_OWN => {
                self.own.push(bytes);
                self.own.len() - 1
            }
            None => return None,
        };
        Some(Slot::own(number))
    }

    fn buffer_mut(&mut self, buffer: Buffer) -> Option<&mut [u8]> {
        match buffer {
            Buffer::Shared(i) => self.blocks.get_mut(i).map(|b| &mut b[..]),
            Buffer::Own(i) => self.own.get_mut(i).map(|b| &mut b[..]),
        }
    }

    /// Buffer `from` to read and buffer `to` to write, two different buffers.
    fn two_buffers(&mut self, from: Buffer, to: Buffer) -> Option<(&[u8], &mut [u8])> {
        match (from, to) {
            (Buffer::Shared(a), Buffer::Shared(b)) => two_of(&mut self.blocks, a, b),
            (Buffer::Own(a), Buffer::Own(b)) => two_of(&mut self.own, a, b),
            (Buffer::Shared(a), Buffer::Own(b)) => {
                Some((self.blocks.get(a)?, self.own.get_mut(b)?))
            }
            (Buffer::Own(a), Buffer::Shared(b)) => {
                Some((self.own.get(a)?, self.blocks.get_mut(b)?))
            }
        }
    }

    /// The entry's header and bytes.
    fn raw(&self, slot: Slot) -> Option<(&[u8], usize)> {
        let bytes = match slot.place() {
            (Buffer::Shared(i), start) => self.blocks.get(i)?.get(start..)?,
            (Buffer::Own(i), _) => self.own.get(i)?,
        };
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
        let (buffer, start) = slot.place();
        self.buffer_mut(buffer)?.get_mut(start + n..start + len)
    }

    /// Bytes the entry takes, header included.
    pub(crate) fn size(&self, slot: Slot) -> usize {
        self.raw(slot).map_or(0, |(raw, _)| raw.len())
    }

    /// Gives the entry's room back.
    pub(crate) fn free(&mut self, slot: Slot) {
        let size = self.size(slot);
        if size == 0 {
            return;
        }
        self.live_bytes = self.live_bytes.saturating_sub(size);
        match slot.place() {
            (Buffer::Own(i), _) => {
                if let Some(own) = self.own.get_mut(i) {
                    *own = Box::default();
                    self.spare.push(i);
                }
            }
            (Buffer::Shared(_), _) => {
                self.free.entry(size as u32).or_default().push(slot);
                self.free_bytes += size;
            }
        }
    }

    /// True when the free room exceeds a block and half of the live bytes.
    pub(crate) fn needs_compaction(&self) -> bool {
        self.free_bytes > BLOCK && self.free_bytes > self.live_bytes / 2
    }

    /// Moves the live entries into fresh blocks, back to back, and drops the old blocks.
    /// `relocate` gets a function that moves one entry and returns its new slot, and must call
    /// it once for every live entry (the owner knows where its slots are kept). An entry with
    /// an allocation of its own keeps it: the allocation moves, its bytes are not copied.
    pub(crate) fn compact(&mut self, relocate: impl FnOnce(&mut dyn FnMut(Slot) -> Slot)) {
        let mut fresh = Arena::default();
        // A move fails only for a slot that names no entry (or with 2^31 entries of their own
        // already), which no live entry's slot is.
        relocate(&mut |slot| self.move_into(&mut fresh, slot).unwrap_or(slot));
        *self = fresh;
    }

    /// Moves one entry into `fresh` (see [`Arena::compact`]).
    fn move_into(&mut self, fresh: &mut Arena, slot: Slot) -> Option<Slot> {
        let size = self.size(slot);
        let moved = match slot.place() {
            (Buffer::Own(i), _) => {
                let bytes = std::mem::take(self.own.get_mut(i)?);
                fresh.own.push(bytes);
                Slot::own(fresh.own.len() - 1)
            }
            (Buffer::Shared(_), _) => {
                let to = fresh.reserve(size)?;
                let (raw, _) = self.raw(slot)?;
                let (buffer, start) = to.place();
                fresh.buffer_mut(buffer)?[start..start + size].copy_from_slice(raw);
                to
            }
        };
        fresh.live_bytes += size;
        Some(moved)
    }

    /// Bytes of the live entries, headers included.
    #[cfg(test)]
    pub(crate) fn live_bytes(&self) -> usize {
        self.live_bytes
    }

    /// Heap bytes the arena holds: its blocks, own allocations and their lists.
    pub(crate) fn heap_bytes(&self) -> usize {
        let buffers = |v: &Vec<Box<[u8]>>| {
            v.iter().map(|b| b.len()).sum::<usize>() + v.capacity() * size_of::<Box<[u8]>>()
        };
        buffers(&self.blocks)
            + buffers(&self.own)
            + self.spare.capacity() * size_of::<usize>()
            + self
                .free
                .values()
                .map(|v| v.capacity() * size_of::<Slot>() + 16)
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
#[allow(clippy::unwrap_used, clippy::panic)]
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
            .map(|(i, &len)| {
                a.alloc(&[&bytes(i, len)[..len / 2], &bytes(i, len)[len / 2..]])
                    .unwrap()
            })
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
        let near = a.alloc(&[b"field", b"old-value"]).unwrap();
        let filler = bytes(3, 4000);
        let mut others: Vec<Slot> = (0..20).map(|_| a.alloc(&[&filler]).unwrap()).collect();
        let far = a.alloc(&[b"field2", b"v2"]).unwrap();
        assert_ne!(near.place().0, far.place().0);
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
    fn freed_room_is_reused_by_the_same_size_and_own_allocations_go_back() {
        let mut a = Arena::default();
        let small = a.alloc(&[b"field:1 value:1"]).unwrap();
        let other = a.alloc(&[b"x"]).unwrap();
        a.free(small);
        let again = a.alloc(&[b"field:2 value:2"]).unwrap();
        assert_eq!(again, small, "same size, same room");
        assert_eq!(a.get(other).unwrap(), b"x");
        let big = a.alloc(&[&bytes(0, 10_000)]).unwrap();
        let (Buffer::Own(number), 0) = big.place() else {
            panic!("a jumbo entry has an allocation of its own")
        };
        a.free(big);
        assert!(a.own[number].is_empty(), "given back");
        let big2 = a.alloc(&[&bytes(1, 20_000)]).unwrap();
        assert_eq!((a.own.len(), big2), (number + 1, big), "its number reused");
        assert_eq!(a.get(big2).unwrap(), &bytes(1, 20_000)[..]);
    }

    #[test]
    fn slots_are_never_an_empty_index_slot() {
        assert_eq!(
            Slot::own(MAX_OWN - 1).position(),
            crate::index::MAX_ENTRIES - 1
        );
        let last_shared = Slot::shared(MAX_SHARED_BLOCKS - 1, BLOCK - 1);
        assert_eq!(
            last_shared.place(),
            (Buffer::Shared(MAX_SHARED_BLOCKS - 1), BLOCK - 1)
        );
        assert_eq!(last_shared.position() as u32 & OWN, 0);
        assert_eq!(Slot::from_position(last_shared.position()), last_shared);
    }

    #[test]
    fn entries_get_allocations_of_their_own_once_the_shared_blocks_run_out() {
        let mut a = Arena::default();
        let first = a.alloc(&[b"first"]).unwrap();
        // Pretend every shared block's address is taken and the open block full.
        a.blocks
            .resize_with(MAX_SHARED_BLOCKS, || Box::new([]) as Box<[u8]>);
        a.open = None;
        let late = a.alloc(&[b"late"]).unwrap();
        assert!(matches!(late.place(), (Buffer::Own(_), 0)));
        assert_eq!(a.get(late).unwrap(), b"late");
        let grown = a
            .rebuild(first, &[Part::Old(0..5), Part::New(b"!")])
            .unwrap();
        assert_eq!(a.get(grown).unwrap(), b"first!");
        a.free(late);
        assert_eq!(a.live_bytes(), 7);
    }

    #[test]
    fn compaction_keeps_the_live_entries_and_gives_room_back() {
        let mut a = Arena::default();
        let mut slots: Vec<Slot> = (0..20_000)
            .map(|i| {
                a.alloc(&[format!("field:{i} value:{i}").as_bytes()])
                    .unwrap()
            })
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
        let big = a.alloc(&[&bytes(7, 100_000)]).unwrap();
        let big_at = a.get(big).unwrap().as_ptr();
        let mut live: Vec<Slot> = kept.iter().map(|&(_, s)| s).collect();
        live.push(big);
        a.compact(|relocate| live.iter_mut().for_each(|s| *s = relocate(*s)));
        assert!(!a.needs_compaction());
        let after = a.heap_bytes();
        assert!(after < before / 2 + 100_100, "{before} -> {after}");
        for (&(i, _), &slot) in kept.iter().zip(&live) {
            let want = format!("field:{i} value:{i}");
            assert_eq!(a.get(slot).unwrap(), want.as_bytes());
        }
        let big = live[kept.len()];
        assert_eq!(a.get(big).unwrap(), &bytes(7, 100_000)[..]);
        assert_eq!(a.get(big).unwrap().as_ptr(), big_at, "moved, not copied");
    }
}
