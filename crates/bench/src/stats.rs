//! Measurements: per-thread histograms and counters, merged after the run,
//! plus a few shared atomics for the once-a-second progress line.
//!
//! Each worker owns its histograms outright, so recording a latency is a
//! plain array increment with no synchronisation; only the coarse progress
//! counters are shared, and workers add to them once per event-loop turn,
//! not per reply.

use hdrhistogram::{CreationError, Histogram};
use std::sync::atomic::{AtomicU64, Ordering};

/// Highest latency tracked precisely: one hour in microseconds. Anything
/// slower is clamped (and would be a broken server anyway).
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Significant digits of the histograms (0.1% value precision).
pub const SIGFIG: u8 = 3;
/// How many error replies are kept verbatim for the report.
pub const ERRORS_KEPT: usize = 5;

/// A fresh latency histogram (microseconds). Every histogram of a run has
/// these bounds, which is what makes merging them exact.
pub fn new_histogram() -> Result<Histogram<u64>, CreationError> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGFIG)
}

/// Results for one command type.
#[derive(Debug, Clone)]
pub struct CmdStats {
    /// Latencies in microseconds.
    pub hist: Histogram<u64>,
    /// Error replies.
    pub errors: u64,
    /// Non-null replies of a GET-like command.
    pub hits: u64,
    /// Null replies of a GET-like command.
    pub misses: u64,
}

impl CmdStats {
    /// Empty statistics.
    pub fn new() -> Result<CmdStats, CreationError> {
        Ok(CmdStats::with_histogram(new_histogram()?))
    }

    fn with_histogram(hist: Histogram<u64>) -> CmdStats {
        CmdStats {
            hist,
            errors: 0,
            hits: 0,
            misses: 0,
        }
    }

    /// Completed requests (replies received).
    pub fn ops(&self) -> u64 {
        self.hist.len()
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &CmdStats) {
        // Both histograms have identical bounds, so adding cannot fail; if
        // it somehow did, re-record value by value (slow but exact enough).
        if self.hist.add(&other.hist).is_err() {
            for v in other.hist.iter_recorded() {
                self.hist
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        self.errors += other.errors;
        self.hits += other.hits;
        self.misses += other.misses;
    }
}

/// An error reply kept for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorSample {
    /// Index of the command that got it.
    pub command: usize,
    /// The server's message.
    pub message: String,
}

/// Everything one worker thread measured.
#[derive(Debug, Clone)]
pub struct ThreadStats {
    /// Per command, indexed like the workload's command list.
    pub commands: Vec<CmdStats>,
    /// The first few error replies.
    pub error_samples: Vec<ErrorSample>,
    /// Out-of-band RESP3 pushes received (not counted as replies).
    pub pushes: u64,
    /// Requests sent that never got a reply (the run was cut short).
    pub unanswered: u64,
    /// Bytes written to the server.
    pub bytes_out: u64,
    /// Bytes read from the server.
    pub bytes_in: u64,
    /// An empty histogram to copy the bounds from (creating one is fallible
    /// in the hdrhistogram API, copying one is not).
    total_proto: Histogram<u64>,
}

impl ThreadStats {
    /// Empty statistics for `commands` command types.
    pub fn new(commands: usize) -> Result<ThreadStats, CreationError> {
        Ok(ThreadStats {
            total_proto: new_histogram()?,
            commands: (0..commands)
                .map(|_| CmdStats::new())
                .collect::<Result<_, _>>()?,
            error_samples: Vec::new(),
            pushes: 0,
            unanswered: 0,
            bytes_out: 0,
            bytes_in: 0,
        })
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ThreadStats) {
        for (mine, theirs) in self.commands.iter_mut().zip(&other.commands) {
            mine.merge(theirs);
        }
        for sample in &other.error_samples {
            if self.error_samples.len() < ERRORS_KEPT {
                self.error_samples.push(sample.clone());
            }
        }
        self.pushes += other.pushes;
        self.unanswered += other.unanswered;
        self.bytes_out += other.bytes_out;
        self.bytes_in += other.bytes_in;
    }

    /// All commands together.
    pub fn total(&self) -> CmdStats {
        let mut total = CmdStats::with_histogram(Histogram::new_from(&self.total_proto));
        for c in &self.commands {
            total.merge(c);
        }
        total
    }
}

/// Counters shared with the progress reporter.
#[derive(Debug, Default)]
pub struct Progress {
    /// Replies received so far.
    pub ops: AtomicU64,
    /// Sum of their latencies in microseconds.
    pub latency_us: AtomicU64,
    /// Error replies so far.
    pub errors: AtomicU64,
}

impl Progress {
    /// Publishes a worker's local deltas.
    pub fn add(&self, ops: u64, latency_us: u64, errors: u64) {
        if ops > 0 {
            self.ops.fetch_add(ops, Ordering::Relaxed);
            self.latency_us.fetch_add(latency_us, Ordering::Relaxed);
        }
        if errors > 0 {
            self.errors.fetch_add(errors, Ordering::Relaxed);
        }
    }

    /// (ops, latency sum, errors) so far.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.ops.load(Ordering::Relaxed),
            self.latency_us.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_everything() {
        let mut a = ThreadStats::new(2).unwrap();
        let mut b = ThreadStats::new(2).unwrap();
        a.commands[0].hist.saturating_record(100);
        b.commands[0].hist.saturating_record(300);
        b.commands[1].hist.saturating_record(5);
        b.commands[1].misses = 1;
        b.commands[0].errors = 2;
        for i in 0..10 {
            b.error_samples.push(ErrorSample {
                command: 0,
                message: format!("e{i}"),
            });
        }
        a.merge(&b);
        assert_eq!(a.commands[0].ops(), 2);
        assert_eq!(a.commands[0].hist.max(), 300);
        assert_eq!(a.commands[1].misses, 1);
        assert_eq!(a.error_samples.len(), ERRORS_KEPT);
        let total = a.total();
        assert_eq!((total.ops(), total.errors, total.misses), (3, 2, 1));
    }

    #[test]
    fn huge_latency_is_clamped_not_lost() {
        let mut c = CmdStats::new().unwrap();
        c.hist.saturating_record(u64::MAX);
        c.hist.saturating_record(0);
        assert_eq!(c.ops(), 2);
    }
}
