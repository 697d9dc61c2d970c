//! Settings shared by the micro-benchmarks.

use criterion::Criterion;
use std::time::Duration;

/// Short warm-up and measurement, so a whole bench target finishes in seconds: these
/// benchmarks compare code changes on one machine, they do not need criterion's default 5 s per
/// function.
pub fn quick() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
}
