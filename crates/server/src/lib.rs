//! The Shardis server: one reactor per core, each owning a slice of the keyspace.
//!
//! ```text
//!   clients ──► acceptor (shard 0) ──round robin──► home shard of each connection
//!
//!   shard 0            shard 1            shard N-1      one glommio executor each, pinned
//!   ├ connections      ├ connections      ├ connections  (io_uring; parks when idle)
//!   ├ keyspace         ├ keyspace         ├ keyspace     only the keys of its hash slots
//!   └───────── requests / responses meshes ─────────┘    one message per shard per batch
//! ```
//!
//! A connection lives on its home shard. The home shard reads and parses a whole pipelined
//! batch, runs the commands whose keys it owns inline, and sends the rest to their owners as
//! one message per destination ([`route`]). Replies are written back in request order with one
//! write. Shards share nothing mutable: no locks, no atomic counters on the data path;
//! statistics and configuration are per shard and combined on request.
//!
//! Module map: [`config`] (options and config file), [`slots`] (CRC16 hash slots),
//! [`shard`] (a reactor's state and its messages), [`conn`] (the connection loop),
//! [`route`] (batch routing), [`connection`] and [`admin`] (connection and server commands).

pub mod admin;
pub mod client;
pub mod config;
pub mod conn;
pub mod connection;
pub mod memory;
pub mod route;
pub mod shard;
pub mod slots;
pub mod step;
pub mod sync;

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::rc::Rc;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::net::{TcpListener, UnixStream};
use glommio::{spawn_local, LocalExecutorBuilder, Placement};

pub use config::Config;

use shard::Shard;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listening address could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The kernel refuses io_uring, which the reactors need.
    #[error("{0}")]
    IoUring(String),
    /// Anything else during startup.
    #[error("{0}")]
    Other(String),
}

/// Binds the listening sockets. Done before any reactor starts, so that a busy port is an
/// immediate, clear error, and so that `--port 0` is resolved to a real port once.
fn bind_all(config: &mut Config) -> Result<Vec<(RawFd, SocketAddr)>, StartError> {
    let mut bound = Vec::new();
    for host in &config.bind.clone() {
        let host = host.trim_start_matches('-');
        let addr = (host, config.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| StartError::Bind {
                addr: format!("{host}:{}", config.port),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not an address"),
            })?;
        let listener = StdListener::bind(addr).map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        // std listens with a backlog of 128; a burst of new clients would overflow it and wait
        // for SYN retransmissions. Listening again on a bound socket just raises the backlog
        // to Redis's default `tcp-backlog` (the kernel caps it at net.core.somaxconn).
        // SAFETY: listen(2) on the descriptor the listener owns.
        unsafe { libc::listen(listener.as_raw_fd(), 511) };
        let local = listener
            .local_addr()
            .map_err(|e| StartError::Other(e.to_string()))?;
        // The first address fixes the port (`--port 0`); the others use the same one.
        config.port = local.port();
        bound.push((listener.into_raw_fd(), local));
    }
    Ok(bound)
}

/// Explains a failure to start a reactor, checking the usual cause: io_uring switched off.
fn reactor_error(err: impl std::fmt::Display) -> StartError {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    if disabled == "2" || disabled == "1" {
        StartError::IoUring(format!(
            "cannot start a reactor ({err}): io_uring is disabled on this system \
             (/proc/sys/kernel/io_uring_disabled = {disabled}); Shardis needs it: \
             run `sysctl kernel.io_uring_disabled=0` as root"
        ))
    } else {
        StartError::Other(format!("cannot start a reactor: {err}"))
    }
}

/// Lets the process open as many sockets as it may (Redis does the same for `maxclients`).
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Runs the server until `SHUTDOWN` or SIGINT/SIGTERM. `ready` is called with the bound
/// addresses once every shard is serving.
pub fn run(mut config: Config) -> Result<(), StartError> {
    raise_fd_limit();
    let listeners = bind_all(&mut config)?;
    let shards = config.shards;

    // SIGINT and SIGTERM write a byte to this socket pair; shard 0 reads it and shuts down.
    let (signal_rx, signal_tx) =
        std::os::unix::net::UnixStream::pair().map_err(|e| StartError::Other(e.to_string()))?;
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let tx = signal_tx
            .try_clone()
            .map_err(|e| StartError::Other(e.to_string()))?;
        signal_hook::low_level::pipe::register(signal, tx)
            .map_err(|e| StartError::Other(e.to_string()))?;
    }
    let signal_fd = signal_rx.into_raw_fd();

    let requests = MeshBuilder::full(shards, 1024);
    let responses = MeshBuilder::full(shards, 1024);
    let cores = core_ids();
    let mut handles = Vec::with_capacity(shards);
    for i in 0..shards {
        let (requests, responses, config) = (requests.clone(), responses.clone(), config.clone());
        let listeners = if i == 0 {
            listeners.clone()
        } else {
            Vec::new()
        };
        let placement = match cores.get(i % cores.len().max(1)) {
            Some(&core) => Placement::Fixed(core),
            None => Placement::Unbound,
        };
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{i}"))
            // glommio reserves this for registered file-I/O buffers, which Shardis does not
            // use; the default (10 MiB per shard) would only inflate resident memory.
            .io_memory(64 * 1024)
            .spawn(move || async move {
                let (req_tx, req_rx) = requests.join().await.map_err(|e| e.to_string())?;
                let (resp_tx, resp_rx) = responses.join().await.map_err(|e| e.to_string())?;
                let shard = Shard::new(config, req_tx, resp_tx);
                shard.listen(req_rx, resp_rx);
                shard.maintain();
                if shard.id == 0 {
                    accept(&shard, &listeners, signal_fd);
                    tracing::info!(
                        "Shardis {} ready with {} shards; Ready to accept connections on {}",
                        env!("CARGO_PKG_VERSION"),
                        shard.count,
                        listeners
                            .iter()
                            .map(|(_, a)| a.to_string())
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                }
                shard.until_exit().await;
                Ok::<(), String>(())
            })
            .map_err(reactor_error)?;
        handles.push(handle);
    }
    for handle in handles {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(StartError::Other(e)),
            Err(e) => return Err(reactor_error(e)),
        }
    }
    tracing::info!("Shardis is now ready to exit, bye bye...");
    Ok(())
}

/// The CPU cores this process may run on.
fn core_ids() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills the zeroed set we pass.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let ok =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) }
            == 0;
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: reads a bit of the set filled above.
        .filter(|&cpu| ok && unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Shard 0's acceptor: takes connections on every listener and deals them out round robin;
/// also watches for SIGINT/SIGTERM.
fn accept(shard: &Rc<Shard>, listeners: &[(RawFd, SocketAddr)], signal_fd: RawFd) {
    let next = Rc::new(std::cell::Cell::new(0usize));
    for &(fd, _) in listeners {
        shard.listeners.borrow_mut().push(fd);
        // SAFETY: the descriptor came from a std listener we own and handed over once.
        let listener = unsafe { TcpListener::from_raw_fd(fd) };
        let (shard, next) = (shard.clone(), next.clone());
        spawn_local(async move {
            loop {
                let stream = match listener.shared_accept().await {
                    Ok(stream) => stream,
                    Err(_) if shard.stopping() => break,
                    Err(err) => {
                        // Out of descriptors and the like: log, and keep serving the others.
                        tracing::warn!("accept: {err}");
                        glommio::yield_if_needed().await;
                        continue;
                    }
                };
                let mut n = next.get();
                let home = route::next_home(&mut n, shard.count);
                next.set(n);
                if home == shard.id {
                    conn::spawn(shard.clone(), stream.bind_to_executor());
                } else {
                    shard.hand_over(home, stream).await;
                }
            }
        })
        .detach();
    }
    let shard = shard.clone();
    spawn_local(async move {
        // SAFETY: our end of the socket pair, handed over once.
        let mut signals = unsafe { UnixStream::from_raw_fd(signal_fd) };
        let mut byte = [0u8; 1];
        if futures_lite::AsyncReadExt::read(&mut signals, &mut byte)
            .await
            .is_ok()
        {
            tracing::info!("Received a signal, scheduling shutdown...");
            shard.broadcast(|| shard::Control::Shutdown).await;
        }
    })
    .detach();
}
