//! Memory and CPU figures for `INFO`.
//!
//! `used_memory` comes from a counting global allocator. Each thread adds and subtracts its own
//! allocations in a thread-local counter (no atomics on the allocation path); each shard
//! reports its counter and `INFO` adds them up. A buffer allocated on one shard and freed on
//! another makes one counter go up and the other down, which cancels out in the sum.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting bytes per thread.
pub struct CountingAlloc;

thread_local! {
    static ALLOCATED: Cell<i64> = const { Cell::new(0) };
}

fn account(delta: i64) {
    // `try_with` fails only while the thread is being torn down; the count no longer matters.
    let _ = ALLOCATED.try_with(|a| a.set(a.get() + delta));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counting has no
// effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as i64);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as i64);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as i64));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size as i64 - layout.size() as i64);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Net bytes allocated by the calling thread.
pub fn allocated_here() -> i64 {
    ALLOCATED.try_with(Cell::get).unwrap_or(0)
}

/// Resident set size of the process, from `/proc/self/statm`.
pub fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

/// User and system CPU seconds used by the process.
pub fn cpu_seconds() -> (f64, f64) {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

/// Bytes in Redis's human form (`1.50M`).
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes}B"),
        1024..1_048_576 => format!("{:.2}K", b / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.2}M", b / 1_048_576.0),
        _ => format!("{:.2}G", b / 1_073_741_824.0),
    }
}
