//! [`ThinBytes`]: an owned byte string behind one thin pointer.
//!
//! The dense array of a database holds a key per item, a million times over, so the 8 bytes a
//! `Box<[u8]>` spends on its length add up (8 MB per million). A `ThinBytes` is a single pointer to one allocation holding the length
//! as a LEB128 varint, then the bytes: one byte of length for strings under 128 bytes, which an
//! allocator block of a key's size usually has to spare anyway (glibc's smallest block holds
//! 24 bytes). String values and the buffers of small hashes are `ThinBytes` too, which is what
//! keeps a [`Value`](crate::Value) at 16 bytes.
//!
//! Allocations are 2-aligned, so the low bit of the pointer is free: a
//! [`Hash`](crate::hash::Hash) uses it to tell its compact buffer from its table.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

/// An owned byte string of fixed length, 8 bytes wide; `Option<ThinBytes>` is 8 bytes too.
#[repr(transparent)]
pub struct ThinBytes {
    /// Points at `varint(len) bytes`, allocated with [`ThinBytes::layout`].
    ptr: NonNull<u8>,
}

// SAFETY: a `ThinBytes` owns its allocation exclusively, like a `Box<[u8]>`.
unsafe impl Send for ThinBytes {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for ThinBytes {}

/// `v` as a LEB128 varint in a stack buffer, and how many bytes of it are used.
pub(crate) fn varint(mut v: u64) -> ([u8; 10], usize) {
    let mut out = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        out[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    out[n] = v as u8;
    (out, n + 1)
}

/// Reads the varint at `*pos` (as [`varint`] writes it), advancing `*pos`; `None` on truncated
/// or overlong input, which callers treat as the end of the data.
#[inline]
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    // One byte: the lengths and counts of short strings and small hashes.
    if let Some(&b) = buf.get(*pos).filter(|&&b| b < 0x80) {
        *pos += 1;
        return Some(u64::from(b));
    }
    let mut v = 0u64;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
        if shift >= 64 {
            return None;
        }
    }
}

/// Alignment of every allocation: 2, so that a pointer's low bit is always 0.
const ALIGN: usize = 2;

impl ThinBytes {
    /// A copy of `bytes`.
    pub fn new(bytes: &[u8]) -> ThinBytes {
        ThinBytes::from_parts(&[bytes], &[])
    }

    /// The concatenation of the parts of `first` and then of `then`, built in place (two lists
    /// so that a caller can put a header of its own before parts it was given).
    pub(crate) fn from_parts(first: &[&[u8]], then: &[&[u8]]) -> ThinBytes {
        let len = first.iter().map(|p| p.len()).sum::<usize>()
            + then.iter().map(|p| p.len()).sum::<usize>();
        let (head, n) = varint(len as u64);
        let layout = ThinBytes::layout(n + len);
        // SAFETY: the layout is never zero-sized (the length takes at least one byte).
        let Some(ptr) = NonNull::new(unsafe { alloc(layout) }) else {
            handle_alloc_error(layout)
        };
        // SAFETY: the allocation holds `n + len` bytes, the header and then every part, and
        // no source overlaps it.
        unsafe {
            copy_part(&head[..n], ptr.as_ptr());
            let mut at = n;
            // Two loops, not a chained iterator: the chain cost more than the copying.
            for part in first {
                copy_part(part, ptr.as_ptr().add(at));
                at += part.len();
            }
            for part in then {
                copy_part(part, ptr.as_ptr().add(at));
                at += part.len();
            }
        }
        ThinBytes { ptr }
    }

    /// Gives up ownership: the pointer, for [`ThinBytes::from_raw`].
    pub(crate) fn into_raw(self) -> *mut u8 {
        std::mem::ManuallyDrop::new(self).ptr.as_ptr()
    }

    /// Takes ownership back.
    ///
    /// # Safety
    ///
    /// `ptr` must come from [`ThinBytes::into_raw`] and not have been taken back before.
    pub(crate) unsafe fn from_raw(ptr: *mut u8) -> ThinBytes {
        // SAFETY: `into_raw` gave out a non-null pointer (the caller's contract).
        ThinBytes {
            ptr: unsafe { NonNull::new_unchecked(ptr) },
        }
    }

    /// Bytes the allocation takes: the length's varint and the bytes.
    pub fn heap_len(&self) -> usize {
        let (len, n) = self.header();
        n + len
    }

    /// The layout of an allocation of `size` bytes.
    fn layout(size: usize) -> Layout {
        // `size` is the size of an allocation that exists or is being made from a slice that
        // exists plus a few bytes, so it never exceeds `isize::MAX`: this cannot fail.
        Layout::from_size_align(size, ALIGN)
            .unwrap_or_else(|_| handle_alloc_error(Layout::new::<u16>()))
    }

    /// The length and the number of bytes its varint takes.
    #[inline]
    fn header(&self) -> (usize, usize) {
        // SAFETY: the allocation starts with the varint, which is at least one byte.
        let first = unsafe { *self.ptr.as_ptr() };
        if first < 0x80 {
            return (usize::from(first), 1);
        }
        let mut len = 0usize;
        let mut n = 0;
        loop {
            // SAFETY: `from_parts` wrote a complete varint at the start of the allocation; this
            // reads it byte by byte and stops at its last byte.
            let b = unsafe { *self.ptr.as_ptr().add(n) };
            len |= usize::from(b & 0x7f) << (7 * n);
            n += 1;
            if b & 0x80 == 0 {
                return (len, n);
            }
        }
    }
}

/// Copies `part` to `dst`. Most parts of a small hash's buffer are one-byte varints, for which a
/// call to `memcpy` would cost more than the byte.
///
/// # Safety
///
/// `dst` must be valid for `part.len()` bytes and not overlap `part`.
#[inline]
unsafe fn copy_part(part: &[u8], dst: *mut u8) {
    // SAFETY: the caller's contract.
    unsafe {
        match part {
            [b] => *dst = *b,
            _ => std::ptr::copy_nonoverlapping(part.as_ptr(), dst, part.len()),
        }
    }
}

impl std::ops::Deref for ThinBytes {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        let (len, n) = self.header();
        // SAFETY: `from_parts` wrote `len` bytes right after the `n` bytes of the varint.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(n), len) }
    }
}

impl std::ops::DerefMut for ThinBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        let (len, n) = self.header();
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(n), len) }
    }
}

impl Drop for ThinBytes {
    fn drop(&mut self) {
        let (len, n) = self.header();
        // SAFETY: allocated in `from_parts` with this very layout.
        unsafe { dealloc(self.ptr.as_ptr(), ThinBytes::layout(n + len)) }
    }
}

impl Clone for ThinBytes {
    fn clone(&self) -> ThinBytes {
        ThinBytes::new(self)
    }
}

impl PartialEq for ThinBytes {
    fn eq(&self, other: &ThinBytes) -> bool {
        **self == **other
    }
}

impl Eq for ThinBytes {}

impl std::fmt::Debug for ThinBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 16383, 16384, 1 << 41, u64::MAX] {
            let (bytes, n) = varint(v);
            let out = &bytes[..n];
            // Seven bits a byte.
            let bits = 64 - (v | 1).leading_zeros() as usize;
            assert_eq!(out.len(), bits.div_ceil(7));
            let mut p = 0;
            assert_eq!(read_varint(out, &mut p), Some(v));
            assert_eq!(p, out.len());
        }
        let mut p = 0;
        assert_eq!(read_varint(&[0x80, 0x80], &mut p), None);
    }

    #[test]
    fn every_length_class_round_trips() {
        assert_eq!(std::mem::size_of::<Option<ThinBytes>>(), 8);
        for len in [0, 1, 11, 127, 128, 16_383, 16_384, 100_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut thin = ThinBytes::new(&bytes);
            assert_eq!(&*thin, &bytes[..], "{len}");
            assert_eq!(&*thin.clone(), &bytes[..], "{len}");
            let varint = 1 + usize::from(len >= 128) + usize::from(len >= 16_384);
            assert_eq!(thin.heap_len(), len + varint);
            if let Some(b) = thin.first_mut() {
                *b = 1;
            }
        }
        let parts = ThinBytes::from_parts(&[b"ab", b""], &[b"cde"]);
        assert_eq!(&*parts, b"abcde");
    }
}
