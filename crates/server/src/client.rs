//! What the server knows about each connection, for `CLIENT` and `INFO`.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::time::Instant;

use shardis_resp::Protocol;

/// A connection's identity and its mutable session state.
pub struct Client {
    /// Unique id (`CLIENT ID`).
    pub id: u64,
    /// The peer's address, `ip:port`.
    pub addr: String,
    /// The local address, `ip:port`.
    pub laddr: String,
    /// The socket, for `shutdown(2)` when the client is killed or the server stops.
    pub fd: RawFd,
    /// When it connected.
    pub created: Instant,
    /// Session state that commands change.
    pub state: RefCell<Session>,
    /// Set by `CLIENT KILL`: the connection stops at once, unanswered.
    pub killed: Cell<bool>,
}

/// Session state: what `SELECT`, `HELLO`, `AUTH` and `CLIENT SETNAME` change.
pub struct Session {
    /// Selected database.
    pub db: usize,
    /// Negotiated protocol.
    pub proto: Protocol,
    /// Whether the client may run commands that need authentication.
    pub authenticated: bool,
    /// `CLIENT SETNAME`.
    pub name: String,
    /// `CLIENT SETINFO LIB-NAME`.
    pub lib_name: String,
    /// `CLIENT SETINFO LIB-VER`.
    pub lib_ver: String,
    /// The transaction being queued (between `MULTI` and `EXEC`).
    pub multi: Option<crate::route::Transaction>,
    /// Keys `WATCH`ed for the next `EXEC`.
    pub watched: Vec<crate::route::Watched>,
    /// Name of the last command.
    pub last_command: &'static str,
    /// When the last batch of commands arrived, in ms since the Unix epoch.
    pub last_active_ms: u64,
}

impl Client {
    /// A new client; it starts authenticated unless a password is required.
    pub fn new(id: u64, addr: String, laddr: String, fd: RawFd, needs_auth: bool) -> Client {
        let now = Instant::now();
        Client {
            id,
            addr,
            laddr,
            fd,
            created: now,
            state: RefCell::new(Session {
                db: 0,
                proto: Protocol::Resp2,
                authenticated: !needs_auth,
                name: String::new(),
                lib_name: String::new(),
                lib_ver: String::new(),
                multi: None,
                watched: Vec::new(),
                last_command: "NULL",
                last_active_ms: crate::shard::now_ms(),
            }),
            killed: Cell::new(false),
        }
    }

    /// Ends the connection's reads: it finishes the batch it is running, then closes.
    pub fn stop_reading(&self) {
        // SAFETY: shutdown(2) on the connection's own socket; the fd stays open (and owned by
        // the connection) until the connection task drops it.
        unsafe { libc::shutdown(self.fd, libc::SHUT_RD) };
    }

    /// `CLIENT KILL`: stop reading and drop whatever else the client sent.
    pub fn kill(&self) {
        self.killed.set(true);
        self.stop_reading();
    }

    /// The `CLIENT LIST` / `CLIENT INFO` line for this client.
    pub fn info_line(&self, _started: Instant) -> String {
        let s = self.state.borrow();
        let resp = match s.proto {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        };
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub=0 psub=0 ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            s.name,
            self.created.elapsed().as_secs(),
            crate::shard::now_ms().saturating_sub(s.last_active_ms) / 1000,
            // Redis's flags: `x` in MULTI, `N` for nothing special.
            if s.multi.is_some() { "x" } else { "N" },
            s.db,
            s.multi.as_ref().map_or(-1, |tx| tx.len() as i64),
            s.last_command,
            resp,
            s.lib_name,
            s.lib_ver,
        )
    }
}

/// Which clients `CLIENT KILL` closes: every given condition must hold.
#[derive(Clone, Debug, Default)]
pub struct KillFilter {
    /// `ID id`.
    pub id: Option<u64>,
    /// `ADDR ip:port` (or the old form `CLIENT KILL ip:port`).
    pub addr: Option<String>,
    /// `LADDR ip:port`.
    pub laddr: Option<String>,
    /// `SKIPME yes` (the default): the id of the client asking, which is spared.
    pub skip: Option<u64>,
    /// `USER name`: only `default` exists.
    pub user: Option<String>,
}

impl KillFilter {
    /// True if `client` is to be killed.
    pub fn matches(&self, client: &Client) -> bool {
        self.id.is_none_or(|id| id == client.id)
            && self.addr.as_ref().is_none_or(|a| *a == client.addr)
            && self.laddr.as_ref().is_none_or(|a| *a == client.laddr)
            && self.skip != Some(client.id)
            && self.user.as_ref().is_none_or(|u| u == "default")
    }
}
