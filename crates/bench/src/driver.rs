//! The connection driver: one worker thread, its connections, its event loop.
//!
//! Each worker owns `--clients` non-blocking sockets registered with its own
//! epoll instance and a [`Workload`] that produces requests. Per loop turn it
//!
//! 1. hands out new requests to connections with free pipeline slots
//!    (closed loop: whenever a slot frees; open loop: when the schedule says a
//!    request is due), appending them to the connection's write buffer and
//!    writing the whole batch with one `write`;
//! 2. waits in `epoll_wait` for replies, writability, the pacing timer or the
//!    100 ms housekeeping tick;
//! 3. reads replies, which the RESP reader delimits, and matches each to the
//!    oldest outstanding request of that connection (RESP replies come back
//!    in request order), recording the latency in the thread's histogram.
//!    A request of several commands (a template with `;`) is complete, and
//!    counted once, when the reply to its last command has arrived.
//!
//! Nothing is shared with other workers except the stop flag and the
//! progress counters, so workers scale with cores.

use crate::options::{Config, Limit};
use crate::poller::{Poller, Timer};
use crate::resp::{ReplyKind, ReplyReader};
use crate::stats::{ErrorSample, Progress, ThreadStats, ERRORS_KEPT};
use crate::workload::Workload;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// How long to wait for outstanding replies once sending has stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest sleep in `epoll_wait`, so stop requests and deadlines are noticed.
const TICK: Duration = Duration::from_millis(100);
/// Connect and handshake timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Initial read buffer per connection; grows only for huge header lines.
const READ_BUF: usize = 64 * 1024;
/// Epoll token of the pacing timer (connections use their index).
const TIMER_TOKEN: u64 = u64::MAX;

/// What a worker needs from the outside.
#[derive(Debug, Clone)]
pub struct WorkerContext {
    /// Worker index, 0-based.
    pub index: usize,
    /// The run configuration.
    pub config: Arc<Config>,
    /// Shared progress counters.
    pub progress: Arc<Progress>,
    /// Set to make every worker stop sending and drain.
    pub stop: Arc<AtomicBool>,
    /// Set when a worker failed, so the others stop at once.
    pub abort: Arc<AtomicBool>,
    /// Released when every worker has connected, so all start together.
    pub start: Arc<Barrier>,
}

/// What a worker hands back.
#[derive(Debug)]
pub struct WorkerOutput {
    /// Its measurements (none if it failed before it could measure).
    pub stats: Option<ThreadStats>,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
    /// When its last reply arrived (or it gave up).
    pub finished: Instant,
}

/// One connection's state.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    wbuf: Vec<u8>,
    wpos: usize,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    reader: ReplyReader,
    /// Outstanding requests, oldest first.
    pending: VecDeque<Pending>,
    /// Requests this connection may still send (closed loop with a count).
    remaining: u64,
    /// Whether EPOLLOUT is currently registered.
    want_write: bool,
}

/// A request sent and not yet fully answered.
#[derive(Debug)]
struct Pending {
    /// Index of its command (template) in the mix.
    cmd: usize,
    /// The time its latency counts from.
    sent: Instant,
    /// Replies still to come (one per command of the template).
    replies_left: usize,
    /// The first error reply among those already read.
    error: Option<String>,
}

impl Pending {
    fn new(cmd: usize, sent: Instant, workload: &Workload) -> Pending {
        Pending {
            cmd,
            sent,
            replies_left: workload.replies(cmd),
            error: None,
        }
    }
}

/// Resolves the server address once per worker.
fn resolve(config: &Config) -> Result<SocketAddr, String> {
    (config.host.as_str(), config.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}:{}: {e}", config.host, config.port))?
        .next()
        .ok_or_else(|| format!("{}:{} resolves to no address", config.host, config.port))
}

/// Connects one client; for RESP3 sends `HELLO 3` and waits for its reply
/// while the socket is still blocking, which keeps the event loop simple.
fn connect(addr: &SocketAddr, protocol: u8) -> Result<TcpStream, String> {
    let stream = TcpStream::connect_timeout(addr, CONNECT_TIMEOUT)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY on {addr}: {e}"))?;
    if protocol == 3 {
        hello3(&stream).map_err(|e| format!("HELLO 3 to {addr}: {e}"))?;
    }
    stream
        .set_nonblocking(true)
        .map_err(|e| format!("non-blocking mode on {addr}: {e}"))?;
    Ok(stream)
}

fn hello3(mut stream: &TcpStream) -> Result<(), String> {
    stream
        .set_read_timeout(Some(CONNECT_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
        .map_err(|e| e.to_string())?;
    let mut reader = ReplyReader::new();
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = stream.read(&mut buf[len..]).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed during handshake".to_string());
        }
        len += n;
        let (used, reply) = reader.feed(&buf[..len]).map_err(|e| e.to_string())?;
        buf.copy_within(used..len, 0);
        len -= used;
        if let Some(reply) = reply {
            if reply.kind == ReplyKind::Error {
                return Err(format!(
                    "server refused RESP3: {}",
                    reply.error.unwrap_or_default()
                ));
            }
            if len > 0 {
                return Err("unexpected data after HELLO reply".to_string());
            }
            return stream.set_read_timeout(None).map_err(|e| e.to_string());
        }
    }
}

/// Runs one worker to completion.
pub fn run(ctx: WorkerContext) -> WorkerOutput {
    let mut worker = match Worker::new(&ctx) {
        Ok(w) => w,
        Err(error) => {
            // Still meet the others at the barrier, or they would wait
            // forever; they see the abort flag right after it.
            ctx.abort.store(true, Ordering::Relaxed);
            ctx.start.wait();
            return WorkerOutput {
                stats: None,
                error: Some(error),
                finished: Instant::now(),
            };
        }
    };
    ctx.start.wait();
    let error = if ctx.abort.load(Ordering::Relaxed) {
        None
    } else {
        worker.event_loop(&ctx).err()
    };
    if error.is_some() {
        ctx.abort.store(true, Ordering::Relaxed);
    }
    worker.stats.unanswered = worker.conns.iter().map(|c| c.pending.len() as u64).sum();
    worker.publish(&ctx.progress);
    WorkerOutput {
        stats: Some(worker.stats),
        error,
        finished: worker.finished.unwrap_or_else(Instant::now),
    }
}

struct Worker {
    conns: Vec<Conn>,
    poller: Poller,
    timer: Timer,
    workload: Workload,
    stats: ThreadStats,
    pipeline: usize,
    /// Open-loop pacing, if `--rate` was given.
    pace: Option<Pace>,
    /// Round-robin cursor for handing out open-loop requests.
    cursor: usize,
    /// Progress not yet published.
    unpublished: (u64, u64, u64),
    finished: Option<Instant>,
}

/// The open-loop schedule of one worker: request `k` is due at
/// `start + k * interval`, whether or not the server has kept up.
struct Pace {
    start: Instant,
    interval_ns: f64,
    /// Requests issued so far (= index of the next one).
    issued: u64,
    /// Total this worker may issue (`u64::MAX` for a timed run).
    budget: u64,
    /// When the timer is set to fire, to avoid re-arming it every turn.
    timer_target: Option<Instant>,
}

impl Pace {
    fn due_time(&self, k: u64) -> Instant {
        self.start + Duration::from_nanos((k as f64 * self.interval_ns) as u64)
    }

    /// How many requests should have been issued by `now`.
    fn due_count(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos() as f64;
        if now < self.start {
            return 0;
        }
        ((elapsed / self.interval_ns).floor() as u64)
            .saturating_add(1)
            .min(self.budget)
    }
}

impl Worker {
    fn new(ctx: &WorkerContext) -> Result<Worker, String> {
        let config = &ctx.config;
        if !config.cpus.is_empty() {
            let id = config.cpus[ctx.index % config.cpus.len()];
            if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                eprintln!("warning: could not pin thread {} to CPU {id}", ctx.index);
            }
        }
        let addr = resolve(config)?;
        let poller = Poller::new(config.clients + 1).map_err(|e| format!("epoll: {e}"))?;
        let timer = Timer::new().map_err(|e| format!("timerfd: {e}"))?;
        poller
            .add(timer.raw_fd(), TIMER_TOKEN, false)
            .map_err(|e| format!("epoll: {e}"))?;
        let remaining = match (config.limit, config.rate) {
            (Limit::Requests(n), None) => n,
            // Timed runs and open loop (which budgets per thread) have no
            // per-connection limit.
            _ => u64::MAX,
        };
        let mut conns = Vec::with_capacity(config.clients);
        for i in 0..config.clients {
            let stream = connect(&addr, config.protocol)?;
            poller
                .add(stream.as_raw_fd(), i as u64, false)
                .map_err(|e| format!("epoll: {e}"))?;
            conns.push(Conn {
                stream,
                wbuf: Vec::with_capacity(4096),
                wpos: 0,
                rbuf: vec![0; READ_BUF],
                rstart: 0,
                rend: 0,
                reader: ReplyReader::new(),
                pending: VecDeque::with_capacity(config.pipeline),
                remaining,
                want_write: false,
            });
        }
        let pace = config.rate.map(|rate| {
            let per_thread = rate as f64 / config.threads as f64;
            let interval_ns = 1e9 / per_thread;
            let budget = match config.limit {
                Limit::Requests(n) => n.saturating_mul(config.clients as u64),
                Limit::Time(_) => u64::MAX,
            };
            Pace {
                start: Instant::now(),
                interval_ns,
                issued: 0,
                budget,
                timer_target: None,
            }
        });
        Ok(Worker {
            conns,
            poller,
            timer,
            workload: Workload::new(
                &config.commands,
                &config.key_space,
                &config.key_prefix,
                config.data_size,
                config.seed,
                ctx.index,
                config.threads,
            ),
            stats: ThreadStats::new(config.commands.len())
                .map_err(|e| format!("histogram: {e}"))?,
            pipeline: config.pipeline,
            pace,
            cursor: 0,
            unpublished: (0, 0, 0),
            finished: None,
        })
    }

    fn event_loop(&mut self, ctx: &WorkerContext) -> Result<(), String> {
        let start = Instant::now();
        if let Some(pace) = &mut self.pace {
            // Stagger the workers' schedules so their requests interleave
            // instead of arriving in bursts of `threads`.
            pace.start = start
                + Duration::from_nanos(
                    (pace.interval_ns * ctx.index as f64 / ctx.config.threads as f64) as u64,
                );
        }
        let deadline = match ctx.config.limit {
            Limit::Time(d) => Some(start + d),
            Limit::Requests(_) => None,
        };
        let mut drain_since: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if ctx.abort.load(Ordering::Relaxed) {
                return Ok(());
            }
            let stopping = ctx.stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d);
            if !stopping {
                self.issue(now)?;
            }
            let idle = self
                .conns
                .iter()
                .all(|c| c.pending.is_empty() && c.wpos == c.wbuf.len());
            if idle && (stopping || self.exhausted()) {
                self.finished = Some(now);
                return Ok(());
            }
            if stopping {
                let since = *drain_since.get_or_insert(now);
                if now.duration_since(since) >= DRAIN_TIMEOUT {
                    self.finished = Some(now);
                    return Err(format!(
                        "no reply to {} requests within {}s after sending stopped",
                        self.conns.iter().map(|c| c.pending.len()).sum::<usize>(),
                        DRAIN_TIMEOUT.as_secs()
                    ));
                }
            }
            self.publish(&ctx.progress);
            let mut timeout = TICK;
            if let Some(d) = deadline {
                if !stopping {
                    timeout = timeout.min(d.saturating_duration_since(now));
                }
            }
            let events: Vec<_> = self
                .poller
                .wait(timeout)
                .map_err(|e| format!("epoll_wait: {e}"))?
                .collect();
            for ev in events {
                if ev.token == TIMER_TOKEN {
                    self.timer.consume();
                    if let Some(p) = &mut self.pace {
                        p.timer_target = None;
                    }
                    continue;
                }
                let i = ev.token as usize;
                if ev.writable {
                    self.flush(i)?;
                }
                if ev.readable {
                    self.read(i)?;
                }
            }
        }
    }

    /// Whether every request of a counted run has been handed out.
    fn exhausted(&self) -> bool {
        match &self.pace {
            Some(p) => p.issued >= p.budget,
            None => self.conns.iter().all(|c| c.remaining == 0),
        }
    }

    /// Hands out new requests and writes them.
    fn issue(&mut self, now: Instant) -> Result<(), String> {
        if self.pace.is_some() {
            return self.issue_paced(now);
        }
        for i in 0..self.conns.len() {
            let conn = &mut self.conns[i];
            let free = self.pipeline.saturating_sub(conn.pending.len());
            let n = (free as u64).min(conn.remaining) as usize;
            if n == 0 {
                continue;
            }
            for _ in 0..n {
                let cmd = self.workload.next_request(&mut conn.wbuf);
                conn.pending
                    .push_back(Pending::new(cmd, now, &self.workload));
            }
            conn.remaining -= n as u64;
            // Latency counts from just before the write, not from before the
            // requests were generated.
            let sent = Instant::now();
            for entry in conn.pending.iter_mut().rev().take(n) {
                entry.sent = sent;
            }
            self.flush(i)?;
        }
        Ok(())
    }

    /// Open loop: issues every request that is due, each stamped with its
    /// scheduled time (so queueing behind a slow server shows up as latency),
    /// on connections with free pipeline slots.
    fn issue_paced(&mut self, now: Instant) -> Result<(), String> {
        let Some(pace) = self.pace.as_mut() else {
            return Ok(());
        };
        let due = pace.due_count(now);
        let n_conns = self.conns.len();
        let mut scanned = 0;
        while pace.issued < due && scanned < n_conns {
            let i = self.cursor;
            self.cursor = (self.cursor + 1) % n_conns;
            scanned += 1;
            let conn = &mut self.conns[i];
            let mut added = false;
            while pace.issued < due && conn.pending.len() < self.pipeline {
                let cmd = self.workload.next_request(&mut conn.wbuf);
                let due = pace.due_time(pace.issued);
                conn.pending
                    .push_back(Pending::new(cmd, due, &self.workload));
                pace.issued += 1;
                added = true;
            }
            if added {
                scanned = 0;
                flush_conn(&self.poller, conn, i, &mut self.stats)?;
            }
        }
        // Sleep until the next request is due, unless some are already
        // waiting for a free slot (then replies will wake us).
        if pace.issued == due && pace.issued < pace.budget {
            let next = pace.due_time(pace.issued);
            if pace.timer_target != Some(next) || !self.timer.is_armed() {
                self.timer
                    .arm(next.saturating_duration_since(Instant::now()))
                    .map_err(|e| format!("timerfd: {e}"))?;
                pace.timer_target = Some(next);
            }
        }
        Ok(())
    }

    fn flush(&mut self, i: usize) -> Result<(), String> {
        flush_conn(&self.poller, &mut self.conns[i], i, &mut self.stats)
    }

    /// Reads what is available on connection `i` and processes the replies.
    fn read(&mut self, i: usize) -> Result<(), String> {
        let conn = &mut self.conns[i];
        loop {
            if conn.rend == conn.rbuf.len() {
                if conn.rstart > 0 {
                    conn.rbuf.copy_within(conn.rstart..conn.rend, 0);
                    conn.rend -= conn.rstart;
                    conn.rstart = 0;
                } else {
                    // One header line fills the buffer: make room.
                    let len = conn.rbuf.len();
                    conn.rbuf.resize(len * 2, 0);
                }
            }
            let space = conn.rbuf.len() - conn.rend;
            let n = match conn.stream.read(&mut conn.rbuf[conn.rend..]) {
                Ok(0) => {
                    return Err(format!(
                        "connection {i} closed by the server ({} requests outstanding)",
                        conn.pending.len()
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("connection {i}: read failed: {e}")),
            };
            conn.rend += n;
            self.stats.bytes_in += n as u64;
            let now = Instant::now();
            loop {
                let (used, reply) = conn
                    .reader
                    .feed(&conn.rbuf[conn.rstart..conn.rend])
                    .map_err(|e| format!("connection {i}: protocol error: {e}"))?;
                conn.rstart += used;
                let Some(reply) = reply else { break };
                if reply.kind == ReplyKind::Push {
                    self.stats.pushes += 1;
                    continue;
                }
                let Some(mut done) = conn.pending.pop_front() else {
                    return Err(format!("connection {i}: reply without a request"));
                };
                if reply.kind == ReplyKind::Error && done.error.is_none() {
                    done.error = Some(reply.error.unwrap_or_default());
                }
                done.replies_left -= 1;
                if done.replies_left > 0 {
                    conn.pending.push_front(done);
                    continue;
                }
                let us = now.saturating_duration_since(done.sent).as_micros() as u64;
                let cs = &mut self.stats.commands[done.cmd];
                cs.hist.saturating_record(us);
                self.unpublished.0 += 1;
                self.unpublished.1 += us;
                // A request is an error if any of its replies was; otherwise
                // its last reply says hit or miss.
                match (done.error, reply.kind) {
                    (Some(message), _) => {
                        cs.errors += 1;
                        self.unpublished.2 += 1;
                        if self.stats.error_samples.len() < ERRORS_KEPT {
                            self.stats.error_samples.push(ErrorSample {
                                command: done.cmd,
                                message,
                            });
                        }
                    }
                    (None, ReplyKind::Null) => cs.misses += 1,
                    (None, _) => cs.hits += 1,
                }
            }
            if conn.rstart == conn.rend {
                conn.rstart = 0;
                conn.rend = 0;
            }
            // A short read means the socket is drained (level-triggered
            // epoll will tell us about more); skip the EAGAIN round trip.
            if n < space {
                return Ok(());
            }
        }
    }

    fn publish(&mut self, progress: &Progress) {
        let (ops, lat, errs) = std::mem::take(&mut self.unpublished);
        progress.add(ops, lat, errs);
    }
}

/// Writes as much of the connection's buffer as the socket takes and keeps
/// EPOLLOUT registered exactly while something is left.
fn flush_conn(
    poller: &Poller,
    conn: &mut Conn,
    i: usize,
    stats: &mut ThreadStats,
) -> Result<(), String> {
    while conn.wpos < conn.wbuf.len() {
        match conn.stream.write(&conn.wbuf[conn.wpos..]) {
            Ok(0) => return Err(format!("connection {i}: write returned 0")),
            Ok(n) => {
                conn.wpos += n;
                stats.bytes_out += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("connection {i}: write failed: {e}")),
        }
    }
    let left = conn.wpos < conn.wbuf.len();
    if !left {
        conn.wbuf.clear();
        conn.wpos = 0;
    }
    if left != conn.want_write {
        poller
            .modify(conn.stream.as_raw_fd(), i as u64, left)
            .map_err(|e| format!("epoll: {e}"))?;
        conn.want_write = left;
    }
    Ok(())
}
