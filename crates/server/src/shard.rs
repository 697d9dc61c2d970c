//! A shard: one reactor thread, its keyspace, its connections, and its links to the others.
//!
//! Shards talk over two glommio channel meshes created once at startup: *requests* (commands to
//! run, control operations, connections handed over by the acceptor) and *responses*. Keeping
//! responses on their own mesh means a shard that is busy sending requests can always still
//! drain the responses it is owed, so two shards that send to each other cannot deadlock. A
//! message to a sleeping shard wakes it through the channel's eventfd; nothing polls.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ahash::AHashMap;
use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::net::AcceptedTcpStream;
use glommio::spawn_local;
use shardis_commands::scripting::{self, Kill};
use shardis_commands::{execute, Args, Ctx, Handler, Settings};
use shardis_resp::{Protocol, Reply, Span};
use shardis_store::Store;

use crate::client::Client;
use crate::config::Config;
use crate::slots::SlotMap;
use crate::sync::OneShot;

/// Commands for another shard, copied out of the sender's read buffer into one message.
#[derive(Default)]
pub struct RemoteBatch {
    data: Vec<u8>,
    spans: Vec<Span>,
    cmds: Vec<RemoteCmd>,
    /// The multi-shard step these commands belong to, if any (see [`crate::step`]).
    pub step: Option<u64>,
}

struct RemoteCmd {
    call: Call,
    argc: usize,
}

/// What to run for one command, besides its arguments: the shard-side operation, the
/// client's selected database and the protocol its reply must be encoded in.
#[derive(Clone, Copy)]
pub struct Call {
    /// The operation.
    pub handler: Handler,
    /// The selected database.
    pub db: usize,
    /// The client's protocol.
    pub proto: Protocol,
}

impl RemoteBatch {
    /// Appends a command with its arguments.
    pub fn push<'a>(&mut self, call: Call, args: impl Iterator<Item = &'a [u8]>) {
        let before = self.spans.len();
        for arg in args {
            let start = self.data.len();
            self.data.extend_from_slice(arg);
            self.spans.push(Span {
                start,
                end: self.data.len(),
            });
        }
        self.cmds.push(RemoteCmd {
            call,
            argc: self.spans.len() - before,
        });
    }

    /// Number of commands.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// True when no command has been added.
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }
}

/// The encoded replies to a [`RemoteBatch`], in order.
#[derive(Default)]
pub struct Replies {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Replies {
    /// The reply to command `i`; empty if the shard did not answer.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = i.checked_sub(1).and_then(|j| self.ends.get(j)).copied();
        let end = self.ends.get(i).copied().unwrap_or(0);
        self.data.get(start.unwrap_or(0)..end).unwrap_or_default()
    }

    /// The reply to command `i`, or an error saying that the shard did not answer (it is gone:
    /// only possible while the server stops), so that the client is still answered in order.
    pub fn reply(&self, i: usize) -> &[u8] {
        match self.get(i) {
            [] => UNANSWERED,
            reply => reply,
        }
    }
}

/// The reply for a command whose shard did not answer.
pub const UNANSWERED: &[u8] = b"-ERR a shard did not answer\r\n";

impl ResponseBody {
    /// The replies of an `Exec` response; none (every one unanswered) for anything else.
    pub fn into_replies(self) -> Replies {
        match self {
            ResponseBody::Exec(replies) => replies,
            _ => Replies::default(),
        }
    }
}

/// What one shard asks of another, besides running commands.
pub enum Control {
    /// Counters for `INFO`.
    Stats,
    /// `CLIENT LIST` lines of this shard's connections.
    ClientList,
    /// Close the connections that match.
    ClientKill(crate::client::KillFilter),
    /// Adopt this configuration (after `CONFIG SET`).
    Configure(Box<Config>),
    /// Clear the counters (`CONFIG RESETSTAT`).
    ResetStats,
    /// `SCRIPT KILL`: end the script this shard is running, if it may.
    ScriptKill,
    /// Start shutting down.
    Shutdown,
    /// The sender has no connections left and is ready to stop.
    Drained,
}

/// Per-shard counters, summed over all shards by `INFO`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Keys and keys with an expiry, per database.
    pub keys: Vec<(usize, usize)>,
    /// Connected clients.
    pub clients: usize,
    /// Commands processed since start (or `CONFIG RESETSTAT`).
    pub commands: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Connections refused for `maxclients`.
    pub rejected: u64,
    /// Bytes read from and written to clients.
    pub net_in: u64,
    /// Bytes written to clients.
    pub net_out: u64,
    /// Net bytes allocated by this shard's thread.
    pub allocated: i64,
}

/// The body of a request message.
pub enum RequestBody {
    /// Run these commands, in order.
    Exec(RemoteBatch),
    /// A control operation.
    Control(Control),
    /// Serve this connection (sent by the acceptor).
    Adopt(AcceptedTcpStream),
    /// Lock the shard for this step if it is free; answers `Granted`.
    TryLock(u64),
    /// Lock the shard for this step, waiting for it if need be; answers `Granted(true)`.
    Lock(u64),
    /// The step is over; no response (sent with [`Shard::tell`]).
    Unlock(u64),
    /// Move these keys (in every database) out to the step's coordinator; answers
    /// `Entries`.
    Take {
        /// The step holding the shard.
        step: u64,
        /// The keys.
        keys: crate::step::Keys,
    },
    /// Move entries back in at the end of a step.
    Put {
        /// The step holding the shard.
        step: u64,
        /// The entries.
        entries: crate::step::Moved,
    },
}

/// A message on the requests mesh.
pub struct Request {
    from: usize,
    id: u64,
    pub(crate) body: RequestBody,
}

/// The answer to a request.
pub enum ResponseBody {
    /// Replies to an `Exec`.
    Exec(Replies),
    /// `Control::Stats`.
    Stats(Stats),
    /// `Control::ClientList`.
    Lines(Vec<String>),
    /// How many things were affected (`Control::ClientKill`).
    Count(usize),
    /// Done, nothing to report.
    Done,
    /// Whether a lock was granted.
    Granted(bool),
    /// Entries moved out for a step.
    Entries(crate::step::Moved),
    /// What `Control::ScriptKill` found.
    Killed(Kill),
    /// The peer could not be reached (it is gone).
    Unreachable,
}

/// A message on the responses mesh.
pub struct Response {
    id: u64,
    body: ResponseBody,
}

/// Counters this shard keeps for itself.
#[derive(Default)]
pub struct Counters {
    /// Commands processed.
    pub commands: Cell<u64>,
    /// Connections accepted.
    pub connections: Cell<u64>,
    /// Connections refused for `maxclients`.
    pub rejected: Cell<u64>,
    /// Bytes read from clients.
    pub net_in: Cell<u64>,
    /// Bytes written to clients.
    pub net_out: Cell<u64>,
}

/// One shard's state. Shared by the tasks of its reactor through `Rc`; never across threads.
pub struct Shard {
    /// This shard's index (its place in the channel mesh).
    pub id: usize,
    /// Number of shards.
    pub count: usize,
    /// Which shard owns each slot.
    pub slots: SlotMap,
    /// The keys this shard owns.
    pub store: RefCell<Store>,
    /// Settings commands read.
    pub settings: RefCell<Settings>,
    /// This shard's copy of the configuration.
    pub config: RefCell<Config>,
    /// Connections served here, by client id.
    pub clients: RefCell<BTreeMap<u64, Rc<Client>>>,
    /// Counters.
    pub counters: Counters,
    /// When the server started.
    pub started: Instant,
    /// Listening sockets (the acceptor shard only), closed at shutdown.
    pub listeners: RefCell<Vec<RawFd>>,
    requests: Senders<Request>,
    responses: Senders<Response>,
    pending: RefCell<AHashMap<u64, Rc<OneShot<ResponseBody>>>>,
    next_request: Cell<u64>,
    next_client: Cell<u64>,
    stopping: Cell<bool>,
    drained_peers: Cell<usize>,
    drained_self: Cell<bool>,
    exit: Rc<OneShot<()>>,
    /// Which multi-shard step holds this shard, and who waits for it.
    pub(crate) lock: crate::step::Lock,
    /// A script has run past `busy-reply-threshold` and is suspended between two slices:
    /// this shard's clients are answered `BUSY` (see [`Shard::finish_script`]).
    pub busy: Cell<bool>,
    /// The step holding every shard for a script that may reach any key, while it runs here.
    pub(crate) reaching_step: Cell<Option<u64>>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Shard {
    /// A shard with its mesh endpoints.
    pub fn new(
        config: Config,
        requests: Senders<Request>,
        responses: Senders<Response>,
    ) -> Rc<Shard> {
        let count = config.shards;
        Rc::new(Shard {
            id: requests.peer_id(),
            count,
            slots: SlotMap::even(count),
            store: RefCell::new(Store::new(config.databases)),
            settings: RefCell::new(config.settings()),
            config: RefCell::new(config),
            clients: RefCell::default(),
            counters: Counters::default(),
            started: Instant::now(),
            listeners: RefCell::default(),
            requests,
            responses,
            pending: RefCell::default(),
            next_request: Cell::new(0),
            next_client: Cell::new(0),
            stopping: Cell::new(false),
            drained_peers: Cell::new(0),
            drained_self: Cell::new(false),
            exit: OneShot::new(),
            lock: crate::step::Lock::default(),
            busy: Cell::new(false),
            reaching_step: Cell::new(None),
        })
    }

    /// Serves messages from the other shards until the shard stops.
    pub fn listen(
        self: &Rc<Shard>,
        mut requests: Receivers<Request>,
        mut responses: Receivers<Response>,
    ) {
        for (_, rx) in requests.streams() {
            let shard = self.clone();
            spawn_local(async move {
                while let Some(request) = rx.recv().await {
                    shard.handle_request(request).await;
                }
            })
            .detach();
        }
        for (_, rx) in responses.streams() {
            let shard = self.clone();
            spawn_local(async move {
                while let Some(response) = rx.recv().await {
                    let slot = shard.pending.borrow_mut().remove(&response.id);
                    if let Some(slot) = slot {
                        slot.fill(response.body);
                    }
                }
            })
            .detach();
        }
    }

    /// The maintenance tick: active expiry in bounded slices. A slice that used its whole
    /// budget (more is due) is followed by a pause three times as long as the slice took, so
    /// that, as in Redis (25% of the time at most), reclaiming a mass of keys or fields that
    /// expire together never takes more than a quarter of the shard from its clients; otherwise
    /// it sleeps until the next tick, like Redis's `serverCron` at `hz 10`.
    pub fn maintain(self: &Rc<Shard>) {
        /// Keys or fields per slice: about a millisecond of work.
        const BUDGET: usize = 250;
        let shard = self.clone();
        spawn_local(async move {
            loop {
                let started = Instant::now();
                // A script or step in progress must find the keyspace as it left it (a script
                // that waits for another shard's reply holds the lock without being busy).
                let done = if shard.busy.get() || shard.is_locked() {
                    0
                } else {
                    shard.store.borrow_mut().active_expire(now_ms(), BUDGET)
                };
                let pause = if done >= BUDGET {
                    started.elapsed() * 3
                } else {
                    std::time::Duration::from_millis(100)
                };
                glommio::timer::sleep(pause).await;
            }
        })
        .detach();
    }

    /// Waits until every shard has stopped serving clients.
    pub async fn until_exit(&self) {
        self.exit.wait().await;
    }

    async fn handle_request(self: &Rc<Shard>, request: Request) {
        if let Some(request) = self.defer(request) {
            self.serve(request).await;
        }
    }

    /// Serves one request (one that need not wait for a step).
    pub(crate) async fn serve(self: &Rc<Shard>, request: Request) {
        if let Some(body) = self.serve_lock(&request.body) {
            let _ = self
                .responses
                .send_to(
                    request.from,
                    Response {
                        id: request.id,
                        body,
                    },
                )
                .await;
            return;
        }
        let body = match request.body {
            RequestBody::Adopt(stream) => {
                crate::conn::spawn(self.clone(), stream.bind_to_executor());
                return;
            }
            RequestBody::Exec(batch) => ResponseBody::Exec(self.run_batch(&batch).await),
            RequestBody::Control(Control::Drained) => {
                self.drained_peers.set(self.drained_peers.get() + 1);
                self.exit_if_done();
                return;
            }
            RequestBody::Unlock(step) => {
                self.release(step);
                return;
            }
            RequestBody::Control(op) => self.control(op),
            RequestBody::Take { keys, .. } => ResponseBody::Entries(self.take_entries(&keys)),
            RequestBody::Put { entries, .. } => {
                self.put_entries(entries);
                ResponseBody::Done
            }
            // Answered by `serve_lock` above.
            RequestBody::TryLock(_) | RequestBody::Lock(_) => ResponseBody::Done,
        };
        let response = Response {
            id: request.id,
            body,
        };
        // The requester waits for this; if it is gone there is nobody to tell.
        let _ = self.responses.send_to(request.from, response).await;
    }

    /// Runs a batch (usually one another shard sent), collecting the replies in order.
    pub async fn run_batch(self: &Rc<Shard>, batch: &RemoteBatch) -> Replies {
        let mut replies = Replies {
            data: Vec::with_capacity(batch.cmds.len() * 16),
            ends: Vec::with_capacity(batch.cmds.len()),
        };
        let now = now_ms();
        let mut at = 0;
        for cmd in &batch.cmds {
            let spans = batch.spans.get(at..at + cmd.argc).unwrap_or_default();
            at += cmd.argc;
            self.exec(
                cmd.call,
                now,
                Args::new(&batch.data, spans),
                &mut replies.data,
            )
            .await;
            replies.ends.push(replies.data.len());
        }
        replies
    }

    /// Runs one command against this shard's keyspace, appending its reply to `out`.
    pub async fn exec(
        self: &Rc<Shard>,
        call: Call,
        now_ms: u64,
        args: Args<'_>,
        out: &mut Vec<u8>,
    ) {
        self.exec_in(None, call, now_ms, args, out).await;
    }

    /// Runs one command against this shard's keyspace, or against `scratch` (a step's
    /// gathered entries), appending its reply to `out`.
    pub async fn exec_in(
        self: &Rc<Shard>,
        mut scratch: Option<&mut Store>,
        call: Call,
        now_ms: u64,
        args: Args<'_>,
        out: &mut Vec<u8>,
    ) {
        let before = out.len();
        match scratch.as_deref_mut() {
            Some(store) => self.run_handler(store, call, now_ms, args, out),
            None => self.run_handler(&mut self.store.borrow_mut(), call, now_ms, args, out),
        }
        // Every command answers, except a script that yielded (the check costs nothing else).
        // Its continuation is boxed: inline, its state would make every command's future as
        // large, and each would be copied into place on every call.
        if out.len() == before && scripting::suspended() {
            Box::pin(self.finish_script(scratch, call, out)).await;
        }
    }

    /// Runs a script that has yielded to the end, a slice at a time, on this shard's keyspace
    /// or on `scratch` (a step's gathered entries). Between slices the shard's other tasks
    /// run: its clients are answered `BUSY`, and requests for its keys wait behind the step
    /// lock, which the script holds (its own step's, or one of its own if the shard was free).
    /// So nothing sees or changes the keyspace halfway through the script, and `SCRIPT KILL`
    /// gets through.
    async fn finish_script(
        self: &Rc<Shard>,
        mut scratch: Option<&mut Store>,
        call: Call,
        out: &mut Vec<u8>,
    ) {
        let held = self.hold_if_free();
        loop {
            match scripting::take_remote_call() {
                Some(remote) => {
                    let reply = self.run_remote_call(remote, call.db).await;
                    scripting::deliver(&reply);
                }
                None => {
                    // The watchdog: let the shard breathe.
                    self.busy.set(true);
                    crate::sync::yield_now().await;
                }
            }
            let settings = self.settings.borrow();
            let mut home = None;
            let store = match scratch.as_deref_mut() {
                Some(store) => store,
                None => &mut **home.insert(self.store.borrow_mut()),
            };
            let mut ctx = Ctx {
                store,
                db: call.db,
                now_ms: now_ms(),
                reply: Reply::new(out, call.proto),
                settings: &settings,
                shard: self.id,
                shards: self.count,
            };
            if scripting::resume(&mut ctx) {
                break;
            }
        }
        self.busy.set(false);
        if let Some(step) = held {
            self.release(step);
        }
    }

    /// Runs one command's handler against `store`, appending its reply to `out`.
    fn run_handler(
        &self,
        store: &mut Store,
        call: Call,
        now_ms: u64,
        args: Args<'_>,
        out: &mut Vec<u8>,
    ) {
        let settings = self.settings.borrow();
        let mut ctx = Ctx {
            store,
            db: call.db,
            now_ms,
            reply: Reply::new(out, call.proto),
            settings: &settings,
            shard: self.id,
            shards: self.count,
        };
        execute(call.handler, &mut ctx, args);
        self.counters.commands.set(self.counters.commands.get() + 1);
    }

    /// Runs a command of a script that reaches other shards on the shard that owns its keys,
    /// inside the step that holds them all; returns its reply (RESP2).
    async fn run_remote_call(&self, remote: scripting::RemoteCall, db: usize) -> Vec<u8> {
        let Some(step) = self.reaching_step.get() else {
            return b"-ERR Script attempted to access a key that lives on another shard\r\n"
                .to_vec();
        };
        let mut batch = RemoteBatch {
            step: Some(step),
            ..RemoteBatch::default()
        };
        let call = Call {
            handler: remote.handler,
            db,
            proto: Protocol::Resp2,
        };
        batch.push(call, remote.args.iter().map(Vec::as_slice));
        let replies = self.send(remote.shard, RequestBody::Exec(batch)).await;
        replies.wait().await.into_replies().reply(0).to_vec()
    }

    /// Sends `body` to shard `to` expecting no response (`Unlock`, `Drained`): one message, where
    /// a request and its response are two, each of which may wake a thread.
    pub async fn tell(&self, to: usize, body: RequestBody) {
        let request = Request {
            from: self.id,
            id: 0,
            body,
        };
        // Nobody waits for this: if the shard is gone, there is nothing to tell.
        let _ = self.requests.send_to(to, request).await;
    }

    /// Sends `body` to shard `to`; the returned slot is filled with the response.
    pub async fn send(&self, to: usize, body: RequestBody) -> Rc<OneShot<ResponseBody>> {
        let id = self.next_request.get();
        self.next_request.set(id + 1);
        let slot = OneShot::new();
        self.pending.borrow_mut().insert(id, slot.clone());
        let request = Request {
            from: self.id,
            id,
            body,
        };
        if self.requests.send_to(to, request).await.is_err() {
            self.pending.borrow_mut().remove(&id);
            slot.fill(ResponseBody::Unreachable);
        }
        slot
    }

    /// Runs a control operation on every shard (this one included) and collects the answers.
    pub async fn broadcast(self: &Rc<Shard>, op: impl Fn() -> Control) -> Vec<ResponseBody> {
        let mut slots = Vec::with_capacity(self.count);
        for to in (0..self.count).filter(|&to| to != self.id) {
            slots.push(self.send(to, RequestBody::Control(op())).await);
        }
        let mut answers = vec![self.control(op())];
        for slot in slots {
            answers.push(slot.wait().await);
        }
        answers
    }

    /// Hands an accepted connection to shard `to` (the acceptor's round robin).
    pub async fn hand_over(&self, to: usize, stream: AcceptedTcpStream) {
        let request = Request {
            from: self.id,
            id: 0,
            body: RequestBody::Adopt(stream),
        };
        if self.requests.send_to(to, request).await.is_err() {
            tracing::warn!("shard {to} is gone; dropping a new connection");
        }
    }

    fn control(self: &Rc<Shard>, op: Control) -> ResponseBody {
        match op {
            Control::Stats => ResponseBody::Stats(self.stats()),
            Control::ClientList => ResponseBody::Lines(
                self.clients
                    .borrow()
                    .values()
                    .map(|c| c.info_line(self.started))
                    .collect(),
            ),
            Control::ClientKill(filter) => {
                let clients = self.clients.borrow();
                let victims: Vec<_> = clients.values().filter(|c| filter.matches(c)).collect();
                victims.iter().for_each(|c| c.kill());
                ResponseBody::Count(victims.len())
            }
            Control::Configure(config) => {
                *self.settings.borrow_mut() = config.settings();
                *self.config.borrow_mut() = *config;
                ResponseBody::Done
            }
            Control::ResetStats => {
                self.reset_stats();
                ResponseBody::Done
            }
            Control::ScriptKill => ResponseBody::Killed(scripting::kill(false)),
            Control::Shutdown => {
                self.begin_shutdown();
                ResponseBody::Done
            }
            Control::Drained => ResponseBody::Done,
        }
    }

    fn stats(&self) -> Stats {
        let store = self.store.borrow();
        Stats {
            keys: store
                .dbs
                .iter()
                .map(|db| (db.len(), db.volatile_len()))
                .collect(),
            clients: self.clients.borrow().len(),
            commands: self.counters.commands.get(),
            connections: self.counters.connections.get(),
            rejected: self.counters.rejected.get(),
            net_in: self.counters.net_in.get(),
            net_out: self.counters.net_out.get(),
            allocated: crate::memory::allocated_here(),
        }
    }

    /// The TCP port the server listens on.
    pub fn listening_port(&self) -> u16 {
        self.config.borrow().port
    }

    fn reset_stats(&self) {
        self.counters.commands.set(0);
        self.counters.connections.set(0);
        self.counters.rejected.set(0);
        self.counters.net_in.set(0);
        self.counters.net_out.set(0);
    }

    /// A new client id, unique across shards without coordination: ids of shard `s` are
    /// `s + 1`, `s + 1 + count`, ...
    pub fn new_client_id(&self) -> u64 {
        let n = self.next_client.get();
        self.next_client.set(n + 1);
        n * self.count as u64 + self.id as u64 + 1
    }

    /// True once shutdown has begun.
    pub fn stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Stops accepting, lets every connection finish what it has read, then stops the reactor
    /// once all shards are idle.
    pub fn begin_shutdown(self: &Rc<Shard>) {
        if self.stopping.replace(true) {
            return;
        }
        // A script running forever would keep the shard from ever stopping.
        scripting::kill(true);
        for fd in self.listeners.borrow().iter() {
            // Wakes the pending accept with an error; the accept loop sees `stopping`.
            // SAFETY: shutdown(2) on a descriptor this shard owns; it does not close it.
            unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
        }
        for client in self.clients.borrow().values() {
            client.stop_reading();
        }
        self.client_gone();
    }

    /// Called when a connection ends; during shutdown, the last one tells the other shards.
    pub fn client_gone(self: &Rc<Shard>) {
        if !self.stopping.get() || !self.clients.borrow().is_empty() || self.drained_self.get() {
            return;
        }
        self.drained_self.set(true);
        let shard = self.clone();
        spawn_local(async move {
            for to in (0..shard.count).filter(|&to| to != shard.id) {
                shard.tell(to, RequestBody::Control(Control::Drained)).await;
            }
            shard.exit_if_done();
        })
        .detach();
    }

    fn exit_if_done(&self) {
        if self.drained_self.get() && self.drained_peers.get() + 1 >= self.count {
            self.exit.fill(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use glommio::channels::shared_channel;
    use glommio::{GlommioError, LocalExecutorBuilder, Placement, ResourceType};

    /// A sender waiting for room in a full shard channel is woken when the receiver, on
    /// another executor, makes room. The vendored channel wakes a sender only when the queue
    /// was full, and it must read the queue's size for that after a fence that pairs with the
    /// one a sender passes before going to sleep; with a stale size the sender could sleep on
    /// with room in the queue, and nothing else would wake it here. 20,000 messages go through
    /// a two-slot queue, so the sender waits for most of them; the watchdog turns a sender that
    /// slept for good into a failure instead of a hung test. (The stale read itself is a
    /// matter of store-buffer timing that 900,000 messages did not hit; this test guards the
    /// wake-up path as a whole, and checks that the sender did wait.)
    #[test]
    fn a_full_channel_wakes_its_waiting_sender() {
        const MESSAGES: u64 = 20_000;
        let (tx, rx) = shared_channel::new_bounded::<u64>(2);
        let producer = LocalExecutorBuilder::new(Placement::Unbound)
            .spawn(move || async move {
                let tx = tx.connect().await;
                let mut waits = 0;
                for i in 0..MESSAGES {
                    if let Err(GlommioError::WouldBlock(ResourceType::Channel(i))) = tx.try_send(i)
                    {
                        waits += 1;
                        tx.send(i).await.expect("send");
                    }
                }
                waits
            })
            .expect("an executor (io_uring)");
        let consumer = LocalExecutorBuilder::new(Placement::Unbound)
            .spawn(move || async move {
                let rx = rx.connect().await;
                let mut sum = 0;
                while let Some(i) = rx.recv().await {
                    sum += i;
                }
                sum
            })
            .expect("an executor (io_uring)");
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let waits = producer.join().map_err(|e| e.to_string());
            let sum = consumer.join().map_err(|e| e.to_string());
            let _ = done.send((waits, sum));
        });
        let (waits, sum) = match finished.recv_timeout(Duration::from_secs(60)) {
            Ok(results) => results,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("a sender slept with room in its queue"),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the watchdog thread died"),
        };
        assert_eq!(sum, Ok(MESSAGES * (MESSAGES - 1) / 2));
        let waits = waits.expect("the sender's executor");
        assert!(
            waits > MESSAGES / 10,
            "the sender waited for room {waits} times"
        );
    }
}
