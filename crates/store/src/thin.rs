//! [`ThinBytes`]: an owned byte string behind one thin pointer.
//!
//! The dense array of a database holds a key per item, and the table of a big hash an entry
//! per field, a million times over, so the 8 bytes a `Box<[u8]>` spends on its length add up
//! (8 MB per million). A `ThinBytes` is a single pointer to one allocation holding the length
//! as a LEB128 varint, then the bytes: one byte of length for strings under 128 bytes, which an
//! allocator block of a key's size usually has to spare anyway (glibc's smallest block holds
//! 24 bytes).

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

/// An owned byte string of fixed length, 8 bytes wide.
pub(crate) struct ThinBytes {
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

impl ThinBytes {
    pub(crate) fn new(bytes: &[u8]) -> ThinBytes {
        ThinBytes::from_parts(&[bytes])
    }

    /// The concatenation of `parts`, built in place.
    pub(crate) fn from_parts(parts: &[&[u8]]) -> ThinBytes {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let (head, n) = varint(len as u64);
        let layout = ThinBytes::layout(n + len);
        // SAFETY: the layout is never zero-sized (the length takes at least one byte).
        let Some(ptr) = NonNull::new(unsafe { alloc(layout) }) else {
            handle_alloc_error(layout)
        };
        // SAFETY: the allocation holds `n + len` bytes, the header and then every part, and
        // no source overlaps it.
        unsafe {
            std::ptr::copy_nonoverlapping(head.as_ptr(), ptr.as_ptr(), n);
            let mut at = n;
            for part in parts {
                std::ptr::copy_nonoverlapping(part.as_ptr(), ptr.as_ptr().add(at), part.len());
                at += part.len();
            }
        }
        ThinBytes { ptr }
    }

    /// Bytes the allocation takes: the length's varint and the bytes.
    pub(crate) fn heap_len(&self) -> usize {
        let (len, n) = self.header();
        n + len
    }

    /// The layout of an allocation of `size` bytes.
    fn layout(size: usize) -> Layout {
        // `size` is the size of an allocation that exists or is being made from a slice that
        // exists plus a few bytes, so it never exceeds `isize::MAX`: this cannot fail.
        Layout::array::<u8>(size).unwrap_or_else(|_| handle_alloc_error(Layout::new::<u8>()))
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

impl std::fmt::Debug for ThinBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let parts = ThinBytes::from_parts(&[b"ab", b"", b"cde"]);
        assert_eq!(&*parts, b"abcde");
    }
}
