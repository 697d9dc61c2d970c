//! `shardis-bench`: a memtier_benchmark-style load generator for any RESP
//! server (Redis or Shardis).
//!
//! # Design
//!
//! * **Threads.** `--threads` OS threads, optionally pinned to `--cpus`. Each
//!   drives `--clients` non-blocking TCP connections from its own epoll event
//!   loop ([`driver`]), so a couple of threads can saturate a server without
//!   thousands of OS threads competing with it for the same two cores.
//! * **Workload apart from transport.** [`workload`] decides what to send —
//!   command mix by weighted round-robin, key numbers by pattern (random,
//!   gaussian, sequential, zipfian), `__key__`/`__data__` template expansion
//!   (a template may hold several `;`-separated commands, sent as one request,
//!   and several independently drawn keys `__key1__`, `__key2__` ...) — from a
//!   per-thread RNG seeded with `--seed + thread`, so runs repeat. The driver
//!   only asks it to append the next request to a buffer.
//! * **Pipelining and replies.** Each connection keeps up to `--pipeline`
//!   requests outstanding, written in batches; replies are delimited by an
//!   incremental RESP2/RESP3 reader ([`resp`]) and matched to requests in
//!   order. RESP3 pushes are skipped, not matched.
//! * **Closed or open loop.** Without `--rate` a connection sends as soon as
//!   a pipeline slot frees (closed loop). With `--rate` each thread follows a
//!   fixed schedule and latency is measured from the *scheduled* send time,
//!   correcting coordinated omission: a server stall is charged for all the
//!   requests it delayed, not just the one in flight.
//! * **Measurements.** Every thread records microsecond latencies into its
//!   own HdrHistograms (one per command), with no locking; they are merged
//!   after the run ([`stats`]). A once-a-second progress line reads a few
//!   shared atomic counters. [`report`] prints the table and writes JSON and
//!   `.hgrm` files; [`plot`] draws an SVG.
//!
//! Exit status: 0 on success, 1 if a connection failed or was closed by the
//! server, the protocol broke, or requests went unanswered; 2 for bad
//! arguments; 130 if interrupted with Ctrl-C (results are still reported).

mod driver;
mod json;
mod options;
mod plot;
mod poller;
mod report;
mod resp;
mod stats;
mod workload;

use crate::driver::{WorkerContext, WorkerOutput};
use crate::options::{Config, Limit};
use crate::report::Summary;
use crate::stats::{Progress, ThreadStats};
use crossbeam_channel::RecvTimeoutError;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Set by the SIGINT handler.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // First Ctrl-C: stop sending and report. Second: give up at once.
    // Only async-signal-safe operations here (an atomic swap and _exit).
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe and never returns.
        unsafe { libc::_exit(130) };
    }
}

fn install_sigint() {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: the handler only touches an atomic and calls _exit.
    unsafe { libc::signal(libc::SIGINT, handler as *const () as libc::sighandler_t) };
}

fn main() -> ExitCode {
    let config = options::parse();
    match run(config) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shardis-bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn describe(config: &Config) -> String {
    let limit = match config.limit {
        Limit::Requests(n) => format!("{n} requests per client"),
        Limit::Time(d) => format!("{} s", d.as_secs()),
    };
    let mode = match config.rate {
        Some(r) => format!("open loop at {r} req/s"),
        None => "closed loop".to_string(),
    };
    let mix: Vec<String> = config
        .commands
        .iter()
        .map(|c| format!("{}×{} [{}]", c.weight, c.name, c.key_pattern))
        .collect();
    format!(
        "{}:{} RESP{}, {} threads × {} connections, pipeline {}, {limit}, {mode}, \
         keys {}{}..{}, {} B data, mix {}, seed {}",
        config.host,
        config.port,
        config.protocol,
        config.threads,
        config.clients,
        config.pipeline,
        config.key_prefix,
        config.key_space.min,
        config.key_space.max,
        config.data_size,
        mix.join(" + "),
        config.seed
    )
}

/// Prints the live progress line, overwriting itself on a terminal.
struct ProgressLine {
    tty: bool,
    printed: bool,
}

impl ProgressLine {
    fn show(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r{line}\x1b[K");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
        self.printed = true;
    }

    fn finish(&mut self) {
        if self.tty && self.printed {
            eprintln!();
        }
    }
}

fn run(config: Config) -> Result<ExitCode, String> {
    install_sigint();
    eprintln!("shardis-bench: {}", describe(&config));
    let config = Arc::new(config);
    let threads = config.threads;
    let progress = Arc::new(Progress::default());
    let stop = Arc::new(AtomicBool::new(false));
    let abort = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let (tx, rx) = crossbeam_channel::unbounded::<WorkerOutput>();

    let mut handles = Vec::with_capacity(threads);
    for index in 0..threads {
        let ctx = WorkerContext {
            index,
            config: Arc::clone(&config),
            progress: Arc::clone(&progress),
            stop: Arc::clone(&stop),
            abort: Arc::clone(&abort),
            start: Arc::clone(&barrier),
        };
        let tx = tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("bench-{index}"))
            .spawn(move || {
                let _ = tx.send(driver::run(ctx));
            })
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        handles.push(handle);
    }
    drop(tx);

    // Every worker has connected (or failed) once this returns.
    barrier.wait();
    let start = Instant::now();

    let total_requests = match config.limit {
        Limit::Requests(n) => Some(n.saturating_mul((threads * config.clients) as u64)),
        Limit::Time(_) => None,
    };
    let mut line = ProgressLine {
        tty: std::io::stderr().is_terminal(),
        printed: false,
    };
    let mut outputs: Vec<WorkerOutput> = Vec::with_capacity(threads);
    let mut timeline: Vec<f64> = Vec::new();
    let mut last = (start, 0u64, 0u64);
    let mut next_tick = start + Duration::from_secs(1);
    while outputs.len() < threads {
        if INTERRUPTED.load(Ordering::Relaxed) {
            stop.store(true, Ordering::Relaxed);
        }
        // Wake at least every 100 ms to notice Ctrl-C promptly.
        let wait = next_tick
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok(out) => outputs.push(out),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                if now < next_tick {
                    continue;
                }
                next_tick += Duration::from_secs(1);
                let (ops, lat, errors) = progress.snapshot();
                let interval = now.duration_since(last.0).as_secs_f64();
                let d_ops = ops - last.1;
                let rate = d_ops as f64 / interval.max(1e-9);
                let avg_ms = if d_ops > 0 {
                    (lat - last.2) as f64 / d_ops as f64 / 1000.0
                } else {
                    0.0
                };
                timeline.push(rate);
                last = (now, ops, lat);
                let elapsed = now.duration_since(start).as_secs_f64();
                let remaining = match (config.limit, total_requests) {
                    (Limit::Time(d), _) => format!("{:.0}s", (d.as_secs_f64() - elapsed).max(0.0)),
                    (_, Some(total)) if rate > 0.0 => {
                        format!("~{:.0}s", total.saturating_sub(ops) as f64 / rate)
                    }
                    _ => "?".to_string(),
                };
                line.show(&format!(
                    "[{elapsed:>5.0}s] {rate:>11.0} ops/s  avg {avg_ms:>8.3} ms  {ops:>11} ops  \
                     {errors} errors  remaining {remaining}"
                ));
            }
        }
    }
    line.finish();
    for handle in handles {
        if handle.join().is_err() {
            return Err("a worker thread panicked".to_string());
        }
    }
    // The last, partial second still belongs on the throughput chart.
    let end = outputs.iter().map(|o| o.finished).max().unwrap_or(start);
    let (ops, _, _) = progress.snapshot();
    let tail = end.saturating_duration_since(last.0).as_secs_f64();
    if tail > 0.05 && ops > last.1 {
        timeline.push((ops - last.1) as f64 / tail);
    }

    let mut merged = ThreadStats::new(config.commands.len()).map_err(|e| e.to_string())?;
    let mut failures = Vec::new();
    for (i, out) in outputs.iter().enumerate() {
        if let Some(stats) = &out.stats {
            merged.merge(stats);
        }
        if let Some(e) = &out.error {
            failures.push(format!("thread {i}: {e}"));
        }
    }
    let interrupted = INTERRUPTED.load(Ordering::Relaxed);
    let summary = Summary {
        config: &config,
        stats: merged,
        duration: end.saturating_duration_since(start),
        timeline,
        failures,
        interrupted,
    };
    // A run that failed before any reply (e.g. connection refused) has
    // nothing worth tabulating; the error below says it all.
    if summary.failures.is_empty() || summary.stats.total().ops() > 0 {
        print!("{}", summary.table());
        let _ = std::io::stdout().flush();
    }
    for f in &summary.failures {
        eprintln!("shardis-bench: error: {f}");
    }
    write_outputs(&summary)?;

    let failed = !summary.failures.is_empty() || (summary.stats.unanswered > 0 && !interrupted);
    Ok(if failed {
        ExitCode::from(1)
    } else if interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes the `--json-out`, `--hdr-file-prefix` and `--plot` files.
fn write_outputs(summary: &Summary<'_>) -> Result<(), String> {
    let config = summary.config;
    let write = |path: &std::path::Path, text: &str| {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    if let Some(path) = &config.json_out {
        write(path, &summary.json().to_pretty())?;
    }
    let histograms = summary.histograms();
    if let Some(prefix) = &config.hdr_file_prefix {
        for (name, h) in &histograms {
            let path = std::path::PathBuf::from(format!("{prefix}_{name}.hgrm"));
            write(&path, &report::hgrm(h))?;
        }
    }
    if let Some(path) = &config.plot {
        let series: Vec<(String, &hdrhistogram::Histogram<u64>)> = summary
            .config
            .commands
            .iter()
            .map(|c| c.name.clone())
            .chain(std::iter::once("Totals".to_string()))
            .zip(histograms.iter().map(|(_, h)| h))
            .collect();
        let title = format!(
            "shardis-bench {}:{} — {} threads × {} clients, pipeline {}{}",
            config.host,
            config.port,
            config.threads,
            config.clients,
            config.pipeline,
            config
                .rate
                .map(|r| format!(", {r} req/s"))
                .unwrap_or_default()
        );
        write(path, &plot::render(&title, &series, &summary.timeline))?;
    }
    Ok(())
}
