//! Transactions: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`.
//!
//! Between `MULTI` and `EXEC` the router queues commands (answering `+QUEUED`); a command it
//! rejects (unknown, wrong arity, not authenticated) marks the transaction so that `EXEC`
//! answers `EXECABORT`. `EXEC` then runs the queue atomically:
//!
//! * when every queued command is keyed, all keys live on one shard and nothing is watched, the
//!   queue goes to that shard as one batch, which a shard always runs without interruption;
//! * otherwise it is one multi-shard step (see [`crate::step`]) over every shard involved (all
//!   of them if a whole-keyspace command such as `DBSIZE` is queued): the watched keys are
//!   checked, then the commands run one after the other, each where its keys are, while no
//!   other client can touch those shards.
//!
//! `WATCH` records a fingerprint of each key's entry (value and expiry, or its absence);
//! `EXEC` compares it, under the step, with the entry's fingerprint then. So a write, a delete,
//! an expiry or a `FLUSHALL` by anyone in between fails the `EXEC`, with no bookkeeping on the
//! path of ordinary writes. (A change that restores exactly the old content goes unnoticed,
//! where Redis would abort; that is the one difference.)

use std::ops::Range;
use std::rc::Rc;

use shardis_commands::{Args, CmdError, Command, Ctx, Route, TxCommand};
use shardis_resp::{scan, Reply, Span};

use super::Plan;
use crate::client::Client;
use crate::connection::{self, Flow};
use crate::shard::{Call, RemoteBatch, Replies, RequestBody};

/// A transaction being queued. Its buffers are kept for the connection's next transaction
/// (`Plan::spare_tx`), so that queuing allocates nothing once they have grown.
#[derive(Default)]
pub struct Transaction {
    /// The queued commands, each with the range of its arguments in `spans`.
    queued: Vec<(&'static Command, Range<usize>)>,
    /// Every queued command's arguments, copied back to back, and where each one is.
    data: Vec<u8>,
    spans: Vec<Span>,
    /// A command was rejected while queuing: `EXEC` must answer `EXECABORT`.
    aborted: bool,
}

/// Most bytes a finished transaction's buffers may hold to be kept for the next one.
const SPARE_TX_BYTES: usize = 64 * 1024;

/// A watched key and what its entry looked like when `WATCH` ran.
pub struct Watched {
    db: usize,
    key: Box<[u8]>,
    fingerprint: Option<u64>,
}

impl Transaction {
    /// Marks the transaction as failed (a command was rejected while queuing).
    pub fn abort(&mut self) {
        self.aborted = true;
    }

    /// Number of queued commands.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Queues a command.
    pub fn queue(&mut self, cmd: &'static Command, args: Args<'_>) {
        let first = self.spans.len();
        for a in args.iter() {
            let start = self.data.len();
            self.data.extend_from_slice(a);
            self.spans.push(Span {
                start,
                end: self.data.len(),
            });
        }
        self.queued.push((cmd, first..self.spans.len()));
    }

    /// The queued commands with their arguments, in order.
    fn commands(&self) -> impl Iterator<Item = (&'static Command, Args<'_>)> {
        self.queued.iter().map(|(cmd, range)| {
            let spans = self.spans.get(range.clone()).unwrap_or_default();
            (*cmd, Args::new(&self.data, spans))
        })
    }

    /// Bytes its buffers hold (spans and commands too: a queue of empty arguments is all spans).
    fn heap_bytes(&self) -> usize {
        self.data.capacity()
            + self.spans.capacity() * std::mem::size_of::<Span>()
            + self.queued.capacity() * std::mem::size_of::<(&Command, Range<usize>)>()
    }

    /// Empties it, keeping its buffers.
    fn clear(&mut self) {
        self.queued.clear();
        self.data.clear();
        self.spans.clear();
        self.aborted = false;
    }
}

/// True for the commands that run at once even inside `MULTI`.
pub fn runs_inside_multi(cmd: &Command) -> bool {
    matches!(
        cmd.route,
        Route::Transaction(
            TxCommand::Exec | TxCommand::Discard | TxCommand::Multi | TxCommand::Watch
        )
    ) || matches!(cmd.name, "quit" | "reset")
}

/// The shard-side half of `WATCH` and of `EXEC`'s check: the fingerprint of each key's entry
/// (an integer), or nil for a missing key.
fn fingerprints(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let db = ctx.db();
    let prints: Vec<Option<u64>> = args
        .iter()
        .skip(1)
        .map(|key| db.get(key, now).map(|e| e.fingerprint()))
        .collect();
    ctx.reply.array(prints.len());
    for print in prints {
        match print {
            Some(p) => ctx.reply.integer(p as i64),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

impl Plan {
    /// Runs `MULTI`, `EXEC`, `DISCARD`, `WATCH` or `UNWATCH`.
    pub(super) async fn transaction(
        &mut self,
        client: &Rc<Client>,
        which: TxCommand,
        args: Args<'_>,
        out: &mut Vec<u8>,
    ) -> Flow {
        let proto = client.state.borrow().proto;
        let in_multi = client.state.borrow().multi.is_some();
        let mut reply = Reply::new(out, proto);
        match which {
            TxCommand::Multi if in_multi => reply.error("ERR MULTI calls can not be nested"),
            TxCommand::Multi => {
                client.state.borrow_mut().multi = Some(std::mem::take(&mut self.spare_tx));
                reply.ok();
            }
            TxCommand::Discard if !in_multi => reply.error("ERR DISCARD without MULTI"),
            TxCommand::Discard => {
                discard(client);
                reply.ok();
            }
            TxCommand::Unwatch => {
                client.state.borrow_mut().watched.clear();
                reply.ok();
            }
            TxCommand::Watch if in_multi => reply.error("ERR WATCH inside MULTI is not allowed"),
            TxCommand::Watch => {
                self.flush().await;
                let db = client.state.borrow().db;
                let keys: Vec<&[u8]> = args.iter().skip(1).collect();
                let prints = self.fingerprints(db, &keys, None).await;
                let mut state = client.state.borrow_mut();
                for (key, fingerprint) in keys.into_iter().zip(prints) {
                    state.watched.push(Watched {
                        db,
                        key: key.into(),
                        fingerprint,
                    });
                }
                reply.ok();
            }
            TxCommand::Exec => return self.exec(client, out).await,
        }
        Flow::Continue
    }

    /// `EXEC`.
    async fn exec(&mut self, client: &Rc<Client>, out: &mut Vec<u8>) -> Flow {
        let (tx, watched, proto, db) = {
            let mut state = client.state.borrow_mut();
            let tx = state.multi.take();
            let watched = std::mem::take(&mut state.watched);
            (tx, watched, state.proto, state.db)
        };
        let mut reply = Reply::new(out, proto);
        let Some(mut tx) = tx else {
            reply.error("ERR EXEC without MULTI");
            return Flow::Continue;
        };
        if tx.aborted {
            reply.error("EXECABORT Transaction discarded because of previous errors.");
        } else {
            self.flush().await;
            self.run_transaction(client, &tx, watched, db, proto, out)
                .await;
        }
        // Kept for the next MULTI, unless it grew large: an idle connection keeps little.
        if tx.heap_bytes() <= SPARE_TX_BYTES {
            tx.clear();
            self.spare_tx = tx;
        }
        Flow::Continue
    }

    /// Runs the queued commands of `tx` atomically (see the module's documentation).
    async fn run_transaction(
        &mut self,
        client: &Rc<Client>,
        tx: &Transaction,
        watched: Vec<Watched>,
        db: usize,
        proto: shardis_resp::Protocol,
        out: &mut Vec<u8>,
    ) {
        // Which shards the transaction touches, and whether one batch can carry it.
        let mut shards: Vec<usize> = Vec::new();
        let mut whole_keyspace = false;
        let mut only_keyed = true;
        for (cmd, args) in tx.commands() {
            match cmd.route {
                Route::Keyed(_) | Route::Split(..) => {
                    shards.extend(
                        cmd.key_positions(args)
                            .map(|p| self.shard.slots.shard_of(args.get(p))),
                    );
                }
                Route::Cursor(_) => shards.push(self.cursor_owner(args)),
                Route::Broadcast(..) => whole_keyspace = true,
                Route::Connection(_) | Route::Transaction(_) => only_keyed = false,
            }
        }
        shards.extend(watched.iter().map(|w| self.shard.slots.shard_of(&w.key)));
        shards.sort_unstable();
        shards.dedup();
        if whole_keyspace {
            shards = (0..self.shard.count).collect();
        }

        if watched.is_empty() && !whole_keyspace && only_keyed && shards.len() <= 1 {
            let target = shards.first().copied().unwrap_or(self.shard.id);
            self.exec_on_one_shard(target, tx, db, proto, out).await;
            return;
        }

        let step = self.shard.lock_shards(&shards).await;
        let mut dirty = false;
        for w in &watched {
            let now = self.fingerprints(w.db, &[&w.key], Some(step)).await;
            dirty |= now.first().copied().flatten() != w.fingerprint;
        }
        if dirty {
            Reply::new(out, proto).null_array();
        } else {
            Reply::new(out, proto).array(tx.len());
            for (cmd, args) in tx.commands() {
                self.run_in_step(step, client, cmd, args, out).await;
            }
        }
        self.shard.unlock_shards(step, &shards);
    }

    /// Runs a transaction whose keys all live on `target` as one batch there, or, on this
    /// shard, straight from its queue into `out`: the shard runs nothing else in between (only
    /// a script that runs long yields, as it does anywhere).
    async fn exec_on_one_shard(
        &mut self,
        target: usize,
        tx: &Transaction,
        db: usize,
        proto: shardis_resp::Protocol,
        out: &mut Vec<u8>,
    ) {
        // Only keyed commands take this path.
        let calls = tx.commands().filter_map(|(cmd, args)| match cmd.route {
            Route::Keyed(handler) | Route::Split(handler, _) | Route::Cursor(handler) => {
                Some((Call { handler, db, proto }, args))
            }
            _ => None,
        });
        if target == self.shard.id {
            let turn = self.shard.after_steps().await;
            Reply::new(out, proto).array(tx.len());
            let now = crate::shard::now_ms();
            for (call, args) in calls {
                self.shard.exec(call, now, args, out).await;
            }
            if let Some(step) = turn {
                self.shard.release(step);
            }
            return;
        }
        let mut batch = RemoteBatch::default();
        for (call, args) in calls {
            batch.push(call, args.iter());
        }
        let replies = self.run_on(target, batch).await;
        let mut reply = Reply::new(out, proto);
        reply.array(tx.len());
        for i in 0..tx.len() {
            reply.raw(replies.reply(i));
        }
    }

    /// The fingerprints of `keys` of database `db` (all owned by one shard), inside `step` if
    /// given.
    async fn fingerprints(
        &mut self,
        db: usize,
        keys: &[&[u8]],
        step: Option<u64>,
    ) -> Vec<Option<u64>> {
        let proto = shardis_resp::Protocol::Resp2;
        let call = Call {
            handler: fingerprints,
            db,
            proto,
        };
        let mut prints = Vec::with_capacity(keys.len());
        for key in keys {
            let owner = self.shard.slots.shard_of(key);
            let mut batch = RemoteBatch::default();
            batch.step = step;
            batch.push(call, [&b"fingerprints"[..], key].into_iter());
            let replies = self.run_on(owner, batch).await;
            let element = scan::elements(replies.get(0)).and_then(|e| e.first().copied());
            prints.push(element.and_then(scan::integer).map(|n| n as u64));
        }
        prints
    }

    /// Runs one command inside a step that holds every shard it touches, writing its reply.
    async fn run_in_step(
        &mut self,
        step: u64,
        client: &Rc<Client>,
        cmd: &'static Command,
        args: Args<'_>,
        out: &mut Vec<u8>,
    ) {
        let (db, proto) = {
            let s = client.state.borrow();
            (s.db, s.proto)
        };
        match cmd.route {
            Route::Keyed(handler) | Route::Cursor(handler) => {
                let call = Call { handler, db, proto };
                let owner = match cmd.route {
                    Route::Cursor(_) => Some(self.cursor_owner(args)),
                    _ => self.owner(cmd, args),
                };
                match owner {
                    Some(owner) => self.exec_at(owner, step, call, args, out).await,
                    None => {
                        let by_shard = self.keys_by_shard(cmd, args);
                        self.gathered_in(step, by_shard, call, args, out).await;
                    }
                }
            }
            Route::Split(handler, merge) => {
                let call = Call { handler, db, proto };
                match self.owner(cmd, args) {
                    Some(owner) => self.exec_at(owner, step, call, args, out).await,
                    None => match self.fan(cmd, args) {
                        Some(fan) => self.fan_out(call, merge, fan, Some(step), out).await,
                        None => super::error(out, proto, CmdError::WrongArity(cmd.name.to_owned())),
                    },
                }
            }
            Route::Broadcast(handler, merge) => {
                let call = Call { handler, db, proto };
                let fan = super::Fan {
                    shards: (0..self.shard.count).collect(),
                    parts: vec![args.iter().collect(); self.shard.count],
                    order: Vec::new(),
                };
                self.fan_out(call, merge, fan, Some(step), out).await;
            }
            Route::Connection(which) => {
                connection::run(&self.shard.clone(), client, which, args, out).await;
            }
            // Only UNWATCH is queued; inside EXEC it has nothing left to forget.
            Route::Transaction(_) => Reply::new(out, proto).ok(),
        }
    }

    /// Runs one command on `owner` inside `step`.
    async fn exec_at(
        &mut self,
        owner: usize,
        step: u64,
        call: Call,
        args: Args<'_>,
        out: &mut Vec<u8>,
    ) {
        let mut batch = RemoteBatch::default();
        batch.step = Some(step);
        batch.push(call, args.iter());
        out.extend_from_slice(self.run_on(owner, batch).await.reply(0));
    }

    /// Runs `batch` on `target`: here, directly (after any other step holding this shard, unless
    /// the batch belongs to the step), or there, by message.
    async fn run_on(&mut self, target: usize, batch: RemoteBatch) -> Replies {
        if target == self.shard.id {
            return self.shard.run_batch_here(&batch).await;
        }
        let replies = self.shard.send(target, RequestBody::Exec(batch)).await;
        replies.wait().await.into_replies()
    }
}

/// Ends the connection's transaction, if one is open, and forgets its watched keys (`DISCARD`,
/// and an `EXEC` refused before it could run).
pub(super) fn discard(client: &Client) {
    let mut state = client.state.borrow_mut();
    state.multi = None;
    state.watched.clear();
}
