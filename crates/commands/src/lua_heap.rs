//! The allocator of the shards' Lua states: free lists of exact-size blocks in front of the
//! system allocator.
//!
//! A script run allocates and frees about nine small blocks: its `KEYS` and `ARGV` tables and
//! their strings, the values `redis.call` passes and returns, a closure for each protected
//! call. Lua's collector frees them later, in bursts. Through `malloc` and `free` each of those
//! cost about 150 instructions, 14% of an `EVALSHA` of a two-command limiter. Here a freed block
//! of up to [`MAX_POOLED`] bytes goes onto a list of blocks of its exact size, and the next
//! request for that size takes it back: a handful of instructions each way. Lua asks for few
//! distinct sizes (a string's header plus its length, a table, a closure), so the lists fill
//! and empty in step with the collector.
//!
//! The lists are per thread, like the Lua states (one per shard, on its thread); together they
//! hold at most [`HELD_MAX`] bytes, past which freed blocks go back to the system. Every block,
//! pooled or not, is a system allocation of exactly the size Lua asked for (Lua hands each
//! block back with the size it was given), so the blocks the state allocated through mlua's
//! allocator before it switched to this one are freed here like any other.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::ffi::c_void;
use std::ptr;

/// The largest block kept for reuse: above it, Lua's blocks are stacks, big tables and long
/// strings, rarer and better left to the system.
const MAX_POOLED: usize = 256;
/// The smallest: a free block holds the link to the next one.
const MIN_POOLED: usize = size_of::<*mut c_void>();
/// At most this many bytes wait on a thread's lists.
const HELD_MAX: usize = 4 << 20;
/// The alignment mlua's allocator gives its blocks, so that this one can free them.
const ALIGN: usize = mlua::ffi::SYS_MIN_ALIGN;

/// A thread's free lists: `heads[n]` is the first free block of exactly `n` bytes, each block
/// holding the address of the next in its first word.
struct Pool {
    heads: [Cell<*mut c_void>; MAX_POOLED + 1],
    held: Cell<usize>,
}

thread_local! {
    // No destructor (plain cells), so a Lua state closed while its thread's other
    // thread-locals are being destroyed can still free here.
    static POOL: Pool = const {
        Pool {
            heads: [const { Cell::new(ptr::null_mut()) }; MAX_POOLED + 1],
            held: Cell::new(0),
        }
    };
}

/// The layout of a block of `size` bytes; none for a size no allocation can have.
fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size, ALIGN).ok()
}

/// The layout of a live block of `size` bytes.
fn live(size: usize) -> Layout {
    // SAFETY: the block was allocated with this layout, so the layout is valid.
    unsafe { Layout::from_size_align_unchecked(size, ALIGN) }
}

/// A block of `size` bytes (not zero): a pooled one if there is one, else the system's.
fn take(size: usize) -> *mut c_void {
    if (MIN_POOLED..=MAX_POOLED).contains(&size) {
        let pooled = POOL.with(|pool| {
            let head = pool.heads[size].get();
            if !head.is_null() {
                // SAFETY: a block on the list is a free block of `size` >= 8 bytes whose first
                // word holds the next block's address (see `give`).
                pool.heads[size].set(unsafe { head.cast::<*mut c_void>().read() });
                pool.held.set(pool.held.get() - size);
            }
            head
        });
        if !pooled.is_null() {
            return pooled;
        }
    }
    match layout(size) {
        // SAFETY: `size` is not zero.
        Some(layout) => unsafe { alloc::alloc(layout).cast() },
        None => ptr::null_mut(),
    }
}

/// Frees `block` of `size` bytes: onto its list, or back to the system.
///
/// # Safety
/// `block` is a live block of exactly `size` bytes from `take` or from the system allocator
/// with [`ALIGN`], and is not used again.
unsafe fn give(block: *mut c_void, size: usize) {
    if (MIN_POOLED..=MAX_POOLED).contains(&size) {
        let kept = POOL.with(|pool| {
            let held = pool.held.get() + size;
            if held > HELD_MAX {
                return false;
            }
            // SAFETY: the block is free and at least a word long.
            unsafe { block.cast::<*mut c_void>().write(pool.heads[size].get()) };
            pool.heads[size].set(block);
            pool.held.set(held);
            true
        });
        if kept {
            return;
        }
    }
    // SAFETY: the caller's contract: a system block of `size` bytes with this alignment.
    unsafe { alloc::dealloc(block.cast(), live(size)) }
}

/// The `lua_Alloc` of the shards' states (`lua_setallocf`): allocates when `block` is null,
/// frees when `new_size` is zero, and otherwise moves the block to one of `new_size` bytes.
///
/// # Safety
/// Called by Lua only, with its contract: `block` is null or a live block of `old_size` bytes
/// that this allocator or the system allocator (mlua's) gave out.
pub unsafe extern "C-unwind" fn allocate(
    _: *mut c_void,
    block: *mut c_void,
    old_size: usize,
    new_size: usize,
) -> *mut c_void {
    if block.is_null() {
        return if new_size == 0 {
            ptr::null_mut()
        } else {
            take(new_size)
        };
    }
    if new_size == 0 {
        // SAFETY: Lua frees a block it holds, with the size it was given.
        unsafe { give(block, old_size) };
        return ptr::null_mut();
    }
    if new_size == old_size {
        return block;
    }
    if old_size > MAX_POOLED && new_size > MAX_POOLED {
        // Neither size is pooled: the system may grow or shrink the block in place.
        if layout(new_size).is_none() {
            return ptr::null_mut();
        }
        // SAFETY: a system block of `old_size` bytes with this alignment, and a valid size.
        return unsafe { alloc::realloc(block.cast(), live(old_size), new_size).cast() };
    }
    let moved = take(new_size);
    if !moved.is_null() {
        // SAFETY: two distinct live blocks, each at least the copied length.
        unsafe {
            ptr::copy_nonoverlapping(
                block.cast::<u8>(),
                moved.cast::<u8>(),
                old_size.min(new_size),
            );
            give(block, old_size);
        }
    }
    // A null result leaves `block` to Lua, which raises a memory error.
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_by_exact_size_and_keep_their_contents_when_moved() {
        // SAFETY: each block is used within its size and handed back once.
        unsafe {
            let a = allocate(ptr::null_mut(), ptr::null_mut(), 0, 40);
            a.cast::<u8>().write_bytes(7, 40);
            allocate(ptr::null_mut(), a, 40, 0);
            // The next block of 40 bytes is the one just freed; one of 48 is not.
            let b = allocate(ptr::null_mut(), ptr::null_mut(), 0, 40);
            assert_eq!(a, b);
            let c = allocate(ptr::null_mut(), ptr::null_mut(), 0, 48);
            assert_ne!(c, b);
            // Moving to a bigger block keeps the bytes, and frees the old block for reuse.
            b.cast::<u8>().write_bytes(9, 40);
            let grown = allocate(ptr::null_mut(), b, 40, 1000);
            assert!(std::slice::from_raw_parts(grown.cast::<u8>(), 40)
                .iter()
                .all(|&x| x == 9));
            let again = allocate(ptr::null_mut(), ptr::null_mut(), 0, 40);
            assert_eq!(again, b);
            let shrunk = allocate(ptr::null_mut(), grown, 1000, 16);
            assert!(std::slice::from_raw_parts(shrunk.cast::<u8>(), 16)
                .iter()
                .all(|&x| x == 9));
            for (block, size) in [(again, 40), (c, 48), (shrunk, 16)] {
                allocate(ptr::null_mut(), block, size, 0);
            }
        }
    }

    #[test]
    fn the_lists_hold_at_most_their_limit() {
        let blocks: Vec<_> = (0..HELD_MAX / 200 + 100).map(|_| take(200)).collect();
        for &block in &blocks {
            // SAFETY: blocks of 200 bytes from `take`, each given back once.
            unsafe { give(block, 200) };
        }
        let held = POOL.with(|pool| pool.held.get());
        assert!(held <= HELD_MAX && held > HELD_MAX - 200, "{held}");
        // Empty the list again for the other tests on this thread.
        while POOL.with(|pool| !pool.heads[200].get().is_null()) {
            let block = take(200);
            // SAFETY: a block of 200 bytes, straight back to the system.
            unsafe { alloc::dealloc(block.cast(), live(200)) };
        }
        assert_eq!(POOL.with(|pool| pool.held.get()), 0);
    }
}
