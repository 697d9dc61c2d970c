//! Routing a pipelined batch of commands to the shards that own their keys.
//!
//! The connection's home shard walks the batch once:
//!
//! * a command for a key the home shard owns runs at once, inline, with no message;
//! * a command for another shard is appended to that shard's *group*; each group becomes one
//!   message, sent when the batch is done (or earlier, at a barrier), answered by one message;
//! * a command that spans shards (`DEL k1 k2` across shards, `DBSIZE`, `INFO`) is a *barrier*:
//!   the groups sent so far are flushed and awaited first, so it sees every earlier command of
//!   the connection, and then it runs on all the shards it needs.
//!
//! Replies are recorded as [`Slot`]s in request order and assembled at the end into one buffer,
//! written with one write. Single-key commands on different shards touch different keys, so
//! running their groups concurrently cannot change what any reply says.
//!
//! A run of consecutive spread commands (`MSET`, `MGET`, `DEL` ... whose keys live on several
//! shards) shares one multi-shard step: the shards are locked once, every command's parts are
//! sent at once without waiting, and the replies are collected and the shards unlocked when
//! the run ends. Each shard still runs the parts in order, and no other connection can come in
//! between, so every command is as atomic as with a step of its own; a pipeline of them pays for
//! one lock and one round trip instead of one each. Other connections of the same home shard
//! whose spread commands need only shards the step holds join it while it lasts (see
//! `step.rs`).

use std::rc::Rc;

use shardis_commands::scripting::{self, Kill};
use shardis_commands::table::{flag, CURSOR_SHARD_SHIFT};
use shardis_commands::{lookup, Args, CmdError, Command, ConnCommand, Merge, Route};
use shardis_resp::{scan, Protocol, Reply, Span};

use crate::client::Client;
use crate::connection::{self, Flow};
use crate::shard::{
    now_ms, Call, Control, RemoteBatch, Replies, RequestBody, ResponseBody, Shard, UNANSWERED,
};
use crate::step::{Keys, Pin};
use crate::sync::OneShot;
use shardis_store::Store;

/// Where the reply to one command of the batch is.
enum Slot {
    /// `out[start..end]`.
    Local { start: usize, end: usize },
    /// Reply `index` of group `group`.
    Remote { group: usize, index: usize },
    /// The merged reply of the batch's `index`th command run in a step.
    Step { index: usize },
}

/// The step a run of consecutive spread commands goes into: one of our own, open to the home
/// shard's other connections ([`Shard::joinable`]) while it lasts, or another connection's that
/// we joined. The run's parts are not sent one command at a time but gathered into one batch
/// per shard and sent together when the run ends: one message each way per shard for the whole
/// run, as for single-key commands.
struct OpenStep {
    /// The step, and the shards it holds.
    id: u64,
    shards: Vec<usize>,
    /// Our hold on another connection's step; `None` for a step of our own.
    pin: Option<Pin>,
    /// The run's commands, in order.
    cmds: Vec<StepCmd>,
    /// The parts not sent yet, one batch per shard (indexed by shard).
    pending: Vec<Option<RemoteBatch>>,
}

/// A command of a step's own run: how to merge its parts, and where each part's reply will
/// be, as (shard, index in that shard's batch), in the order of its [`Fan`].
struct StepCmd {
    merge: Merge,
    proto: Protocol,
    /// For each key in the original order, the part it went to (see [`Fan::order`]).
    order: Vec<usize>,
    parts: Vec<(usize, usize)>,
}

/// A command whose parts went out to their shards, waiting to have its replies merged.
struct Sent {
    merge: Merge,
    proto: Protocol,
    /// For each key in the original order, the part it went to (see [`Fan::order`]).
    order: Vec<usize>,
    /// Each part's replies, in the order of the parts.
    answers: Vec<Answer>,
}

/// The replies of one part: already here (the home shard's) or still on their way.
enum Answer {
    Here(Replies),
    There(Rc<OneShot<ResponseBody>>),
}

/// One command cut into per-shard parts.
struct Fan<'a> {
    /// The shard of each part.
    shards: Vec<usize>,
    /// The arguments of each part.
    parts: Vec<Vec<&'a [u8]>>,
    /// For each key in the original order, the part it went to (to put per-key replies back).
    order: Vec<usize>,
}

/// Commands for one destination shard, and later their replies.
struct Group {
    batch: RemoteBatch,
    replies: Replies,
}

mod transaction;

pub use transaction::{Transaction, Watched};

/// The state of the batch being routed. One lives as long as its connection, so its vectors
/// are allocated once and reused by every batch.
pub struct Plan {
    shard: Rc<Shard>,
    slots: Vec<Slot>,
    groups: Vec<Group>,
    /// The group currently collecting commands for each shard.
    open: Vec<Option<usize>>,
    /// The step of the run of spread commands in progress, if any.
    step: Option<OpenStep>,
    /// The merged replies of the batch's commands run in steps, and where each one ends.
    step_replies: Vec<u8>,
    step_ends: Vec<usize>,
    now_ms: u64,
    /// The buffers of the connection's last transaction, for its next `MULTI`.
    spare_tx: Transaction,
}

impl Plan {
    /// A plan for a connection served by `shard`.
    pub fn new(shard: Rc<Shard>) -> Plan {
        let open = vec![None; shard.count];
        Plan {
            shard,
            slots: Vec::new(),
            groups: Vec::new(),
            open,
            step: None,
            step_replies: Vec::new(),
            step_ends: Vec::new(),
            now_ms: 0,
            spare_tx: Transaction::default(),
        }
    }

    /// Runs the commands of a batch (`cmds` are (first span, argument count) pairs over `buf`)
    /// and appends all their replies, in order, to `out`. Returns whether the connection goes
    /// on.
    pub async fn run_batch(
        &mut self,
        client: &Rc<Client>,
        buf: &[u8],
        spans: &[Span],
        cmds: &[(usize, usize)],
        out: &mut Vec<u8>,
    ) -> Flow {
        self.slots.clear();
        self.groups.clear();
        self.step_replies.clear();
        self.step_ends.clear();
        self.now_ms = now_ms();
        client.state.borrow_mut().last_active_ms = self.now_ms;
        let base = out.len();
        let mut flow = Flow::Continue;
        for &(first, argc) in cmds {
            let args = Args::new(buf, spans.get(first..first + argc).unwrap_or_default());
            let (start, queued) = (out.len(), self.slots.len());
            flow = self.route(client, args, out).await;
            // A command either queued a remote slot or wrote its reply here (or, like
            // SHUTDOWN, answered nothing).
            if self.slots.len() == queued && out.len() > start {
                self.slots.push(Slot::Local {
                    start,
                    end: out.len(),
                });
            }
            if flow != Flow::Continue || client.killed.get() {
                break;
            }
        }
        self.close_step().await;
        self.flush().await;
        if !self.groups.is_empty() || !self.step_ends.is_empty() {
            self.assemble(base, out);
        }
        flow
    }
    /// Routes one command. A reply written to `out` is recorded as a local slot by the caller;
    /// a command sent elsewhere records its remote slot here.
    async fn route(&mut self, client: &Rc<Client>, args: Args<'_>, out: &mut Vec<u8>) -> Flow {
        let (db, proto) = {
            let s = client.state.borrow();
            (s.db, s.proto)
        };
        let name = args.get(0);
        let found = lookup(name);
        let rejected = match found {
            None => Err(CmdError::unknown_command(name, args.iter().skip(1))),
            Some(cmd) if !cmd.has(flag::NO_AUTH) && !client.state.borrow().authenticated => {
                Err(CmdError::NoAuth)
            }
            Some(cmd) if !cmd.arity_ok(args.len()) => {
                Err(CmdError::WrongArity(cmd.name.to_owned()))
            }
            Some(cmd) if self.shard.busy.get() && !allowed_while_busy(cmd, args) => {
                Err(CmdError::Busy)
            }
            Some(cmd) => Ok(cmd),
        };
        let cmd = match rejected {
            Ok(cmd) => cmd,
            Err(err) if found.is_some_and(|cmd| cmd.name == "exec") => {
                // A refused `EXEC` (arity, authentication, a busy script) discards the
                // transaction, open or not, and says why in an EXECABORT, as Redis's
                // `execCommandAbort` does: the reason without its `ERR` code.
                transaction::discard(client);
                let reason = err.to_string();
                let reason = reason.strip_prefix("ERR ").unwrap_or(&reason);
                Reply::new(out, proto).error(&format!(
                    "EXECABORT Transaction discarded because of: {reason}"
                ));
                return Flow::Continue;
            }
            Err(err) => {
                // A command rejected inside MULTI dooms the transaction (EXECABORT).
                if let Some(tx) = client.state.borrow_mut().multi.as_mut() {
                    tx.abort();
                }
                error(out, proto, err);
                return Flow::Continue;
            }
        };
        {
            let mut state = client.state.borrow_mut();
            if let Some(tx) = state.multi.as_mut() {
                if !transaction::runs_inside_multi(cmd) {
                    tx.queue(cmd, args);
                    drop(state);
                    Reply::new(out, proto).simple(b"QUEUED");
                    return Flow::Continue;
                }
            }
        }
        client.state.borrow_mut().last_command = cmd.name;
        // Only another spread command may join the open step; anything else comes after it
        // (a `Split` command on one shard is closed for below, once its owner is known).
        if !matches!(cmd.route, Route::Split(..)) {
            self.close_step().await;
        }
        match cmd.route {
            Route::Connection(which) => {
                if connection::needs_barrier(which) {
                    self.flush().await;
                }
                connection::run(&self.shard, client, which, args, out).await
            }
            Route::Keyed(handler) => {
                let call = Call { handler, db, proto };
                if is_script(cmd) && self.shard.config.borrow().lua_allow_undeclared_keys {
                    self.reaching_script(call, args, out).await;
                    return Flow::Continue;
                }
                match self.owner(cmd, args) {
                    Some(owner) => self.single(call, owner, args, out).await,
                    None => self.gathered(cmd, call, args, out).await,
                }
                Flow::Continue
            }
            Route::Split(handler, merge) => {
                let call = Call { handler, db, proto };
                match self.owner(cmd, args) {
                    Some(owner) => {
                        self.close_step().await;
                        self.single(call, owner, args, out).await;
                    }
                    None => self.split(cmd, call, merge, args, out).await,
                }
                Flow::Continue
            }
            Route::Broadcast(..) if is_script_kill(cmd, args) => {
                self.script_kill(args, proto, out).await;
                Flow::Continue
            }
            Route::Broadcast(handler, merge) => {
                let call = Call { handler, db, proto };
                let fan = Fan {
                    shards: (0..self.shard.count).collect(),
                    parts: vec![args.iter().collect(); self.shard.count],
                    order: Vec::new(),
                };
                self.flush().await;
                self.fan_out(call, merge, fan, None, out).await;
                Flow::Continue
            }
            Route::Cursor(handler) => {
                let call = Call { handler, db, proto };
                let owner = self.cursor_owner(args);
                self.single(call, owner, args, out).await;
                Flow::Continue
            }
            Route::Transaction(which) => self.transaction(client, which, args, out).await,
        }
    }

    /// A script allowed to reach any key (`lua-allow-undeclared-keys`): it runs here under a
    /// step that holds every shard, and each of its commands runs on the shard that owns the
    /// command's keys.
    async fn reaching_script(&mut self, call: Call, args: Args<'_>, out: &mut Vec<u8>) {
        let all: Vec<usize> = (0..self.shard.count).collect();
        self.flush().await;
        let step = self.shard.lock_shards(&all).await;
        self.shard.reaching_step.set(Some(step));
        scripting::reach_next_script();
        self.shard.exec(call, self.now_ms, args, out).await;
        self.shard.reaching_step.set(None);
        self.shard.unlock_shards(step, &all);
    }

    /// `SCRIPT KILL`: asks every shard to end the script it runs. It travels as a control
    /// message, which no step lock holds back, because the script being killed holds its
    /// shard's lock.
    async fn script_kill(&mut self, args: Args<'_>, proto: Protocol, out: &mut Vec<u8>) {
        if args.len() != 2 {
            error(out, proto, CmdError::WrongArity("script|kill".to_owned()));
            return;
        }
        let found: Vec<Kill> = self
            .shard
            .broadcast(|| Control::ScriptKill)
            .await
            .into_iter()
            .filter_map(|answer| match answer {
                ResponseBody::Killed(kill) => Some(kill),
                _ => None,
            })
            .collect();
        if found.contains(&Kill::Killed) {
            Reply::new(out, proto).ok();
        } else if found.contains(&Kill::Unkillable) {
            error(out, proto, CmdError::Unkillable);
        } else {
            error(out, proto, CmdError::NotBusy);
        }
    }

    /// The shard a `SCAN`-style cursor continues on (an unparsable cursor is answered, with
    /// Redis's error, by the home shard).
    fn cursor_owner(&self, args: Args<'_>) -> usize {
        shardis_resp::parse_i64(args.get(1)).map_or(self.shard.id, |c| {
            (c as u64 >> CURSOR_SHARD_SHIFT) as usize % self.shard.count
        })
    }

    /// The one shard that owns every key of the command (the home shard for a command without
    /// keys), or None if its keys are spread over several.
    fn owner(&self, cmd: &Command, args: Args<'_>) -> Option<usize> {
        if self.shard.count == 1 {
            return Some(0);
        }
        let mut keys = cmd
            .key_positions(args)
            .map(|i| self.shard.slots.shard_of(args.get(i)));
        let first = keys.next().unwrap_or(self.shard.id);
        keys.all(|s| s == first).then_some(first)
    }

    /// A command for one shard: run it now if it is ours, else queue it for its group.
    async fn single(&mut self, call: Call, owner: usize, args: Args<'_>, out: &mut Vec<u8>) {
        if owner == self.shard.id {
            // After any other connection's multi-shard step holding this shard. A branch of
            // its own: one path for both, with the turn kept across `exec`, cost the usual
            // command 11 to 40 instructions (callgrind).
            if self.shard.is_locked() {
                let turn = self.shard.after_steps().await;
                self.shard.exec(call, self.now_ms, args, out).await;
                if let Some(step) = turn {
                    self.shard.release(step);
                }
                return;
            }
            self.shard.exec(call, self.now_ms, args, out).await;
            return;
        }
        let group = match self.open[owner] {
            Some(g) => g,
            None => {
                self.groups.push(Group {
                    batch: RemoteBatch::default(),
                    replies: Replies::default(),
                });
                self.open[owner] = Some(self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let index = self.groups[group].batch.len();
        self.groups[group].batch.push(call, args.iter());
        self.slots.push(Slot::Remote { group, index });
    }

    /// A command whose keys live on several shards: each shard runs it with its own keys.
    async fn split(
        &mut self,
        cmd: &Command,
        call: Call,
        merge: Merge,
        args: Args<'_>,
        out: &mut Vec<u8>,
    ) {
        let Some(fan) = self.fan(cmd, args) else {
            error(out, call.proto, CmdError::WrongArity(cmd.name.to_owned()));
            return;
        };
        let mut shards = fan.shards.clone();
        shards.sort_unstable();
        let shard = self.shard.clone();
        // The step of our run, if it holds every shard this command needs: the parts join its
        // batches. Otherwise the run ends here: its parts wait to be sent, so ours cannot go
        // into another step while it is open.
        if let Some(open) = self.step.as_ref().map(|step| step.id) {
            if shard.joinable(&shards) == Some(open) {
                self.add_to_step(call, merge, fan);
                return;
            }
            self.close_step().await;
        }
        // A step for these shards that another connection of this home shard is locking will
        // be open to join in a moment: wait for it rather than contend for the shards.
        shard.until_opened(&shards).await;
        // Earlier commands first: once we hold the shards, their messages would wait for us.
        self.flush().await;
        // Another connection's step that holds every shard this command needs: join it, holding
        // it open until our run's parts have gone (see `step.rs`).
        let (id, pin) = match shard.join(&shards) {
            Some(pin) => (pin.step, Some(pin)),
            None => {
                // Else a step of our own, open to the others from now on.
                let announced = shard.begin_opening(&shards);
                let id = shard.lock_shards(&shards).await;
                shard.open_to_joiners(id, &shards);
                drop(announced);
                (id, None)
            }
        };
        self.step = Some(OpenStep {
            id,
            shards,
            pin,
            cmds: Vec::new(),
            pending: (0..shard.count).map(|_| None).collect(),
        });
        self.add_to_step(call, merge, fan);
    }

    /// Adds a command to the run's step: its parts wait in the run's batches, and its reply is
    /// merged when the run ends.
    fn add_to_step(&mut self, call: Call, merge: Merge, fan: Fan<'_>) {
        let Some(step) = self.step.as_mut() else {
            return;
        };
        let mut parts = Vec::with_capacity(fan.shards.len());
        for (&to, part) in fan.shards.iter().zip(&fan.parts) {
            let Some(pending) = step.pending.get_mut(to) else {
                continue;
            };
            let batch = pending.get_or_insert_with(|| {
                let mut batch = RemoteBatch::default();
                batch.step = Some(step.id);
                batch
            });
            parts.push((to, batch.len()));
            batch.push(call, part.iter().copied());
        }
        self.slots.push(Slot::Step {
            index: self.step_ends.len() + step.cmds.len(),
        });
        step.cmds.push(StepCmd {
            merge,
            proto: call.proto,
            order: fan.order,
            parts,
        });
    }

    /// Ends the run's step, if any: sends the run's parts and merges the replies of its
    /// commands; then lets go of a joined step, or unlocks the shards of our own.
    async fn close_step(&mut self) {
        let Some(OpenStep {
            id,
            shards,
            pin,
            cmds,
            pending,
        }) = self.step.take()
        else {
            return;
        };
        // All the run's parts in one send turn, this shard's run there too, so that every shard
        // sees them at the same point among the parts of the step's other connections.
        let home = self.shard.id;
        let mut replies: Vec<Option<Replies>> = (0..pending.len()).map(|_| None).collect();
        let mut waiting = Vec::new();
        {
            let _turn = self.shard.send_turn().await;
            for (to, batch) in pending.into_iter().enumerate() {
                match batch {
                    Some(batch) if to == home => {
                        replies[to] = Some(self.shard.run_batch(&batch).await);
                    }
                    Some(batch) => {
                        waiting.push((to, self.shard.send(to, RequestBody::Exec(batch)).await));
                    }
                    None => {}
                }
            }
        }
        // Our parts have gone: the step may end once its owner has its replies.
        let joined = pin.is_some();
        drop(pin);
        for (to, slot) in waiting {
            replies[to] = Some(slot.wait().await.into_replies());
        }
        for cmd in cmds {
            let parts: Vec<&[u8]> = cmd
                .parts
                .iter()
                .map(|&(to, i)| {
                    replies
                        .get(to)
                        .and_then(Option::as_ref)
                        .map_or(&[][..], |r| r.get(i))
                })
                .collect();
            merge_replies(
                cmd.merge,
                &parts,
                &cmd.order,
                &mut Reply::new(&mut self.step_replies, cmd.proto),
            );
            self.step_ends.push(self.step_replies.len());
        }
        if !joined {
            // Others may have joined while we waited for the replies.
            self.shard.close_to_joiners(id).await;
            self.shard.unlock_shards(id, &shards);
        }
    }

    /// Cuts a `Split` command into per-shard parts, each with the keys (and the arguments that
    /// go with them) its shard owns, in their original order. None when the last key lacks
    /// arguments (`MSET k v k`): one shard would get a key without its value, so the command is
    /// refused whole, as its handler refuses it on one shard.
    fn fan<'b>(&self, cmd: &Command, args: Args<'b>) -> Option<Fan<'b>> {
        let step = cmd.step.max(1) as usize;
        let positions: Vec<usize> = cmd.key_positions(args).collect();
        let first = positions.first().copied().unwrap_or(1);
        let after = positions.last().map_or(args.len(), |&p| p + step);
        if after > args.len() {
            return None;
        }
        let mut fan = Fan {
            shards: Vec::new(),
            parts: Vec::new(),
            order: Vec::with_capacity(positions.len()),
        };
        for &p in &positions {
            let owner = self.shard.slots.shard_of(args.get(p));
            let i = match fan.shards.iter().position(|&s| s == owner) {
                Some(i) => i,
                None => {
                    fan.shards.push(owner);
                    fan.parts.push(args.iter().take(first).collect());
                    fan.parts.len() - 1
                }
            };
            fan.parts[i].extend((p..p + step).map(|i| args.get(i)));
            fan.order.push(i);
        }
        for part in &mut fan.parts {
            part.extend((after..args.len()).map(|i| args.get(i)));
        }
        Some(fan)
    }

    /// A multi-key command whose keys live on several shards, run atomically by moving its
    /// entries here for the length of one step and running its ordinary handler on them.
    async fn gathered(&mut self, cmd: &Command, call: Call, args: Args<'_>, out: &mut Vec<u8>) {
        let by_shard = self.keys_by_shard(cmd, args);
        let locked: Vec<usize> = by_shard.iter().map(|(s, _)| *s).collect();
        self.flush().await;
        let step = self.shard.lock_shards(&locked).await;
        self.gathered_in(step, by_shard, call, args, out).await;
        self.shard.unlock_shards(step, &locked);
    }

    /// The distinct keys of a command grouped by owning shard, shards ascending.
    fn keys_by_shard(&self, cmd: &Command, args: Args<'_>) -> Vec<(usize, Keys)> {
        let mut by_shard: Vec<(usize, Keys)> = Vec::new();
        for p in cmd.key_positions(args) {
            let key = args.get(p);
            let owner = self.shard.slots.shard_of(key);
            let i = match by_shard.iter().position(|(s, _)| *s == owner) {
                Some(i) => i,
                None => {
                    by_shard.push((owner, Vec::new()));
                    by_shard.len() - 1
                }
            };
            if !by_shard[i].1.iter().any(|k| **k == *key) {
                by_shard[i].1.push(key.into());
            }
        }
        by_shard.sort_unstable_by_key(|(s, _)| *s);
        by_shard
    }

    /// The body of [`Plan::gathered`], inside a step that already holds the shards.
    async fn gathered_in(
        &mut self,
        step: u64,
        by_shard: Vec<(usize, Keys)>,
        call: Call,
        args: Args<'_>,
        out: &mut Vec<u8>,
    ) {
        // Move the entries here.
        let mut scratch = Store::new(self.shard.config.borrow().databases);
        let mut waiting = Vec::new();
        for (s, keys) in &by_shard {
            if *s == self.shard.id {
                put_all(&mut scratch, self.shard.take_entries(keys));
            } else {
                let body = RequestBody::Take {
                    step,
                    keys: keys.clone(),
                };
                waiting.push(self.shard.send(*s, body).await);
            }
        }
        for slot in waiting {
            if let ResponseBody::Entries(moved) = slot.wait().await {
                put_all(&mut scratch, moved);
            }
        }

        // The ordinary handler, as if every key were local.
        self.shard
            .exec_in(Some(&mut scratch), call, self.now_ms, args, out)
            .await;

        // Move them back, changed or not, and end the step. Puts travel ahead of the unlock on
        // the same channel, so nobody can see the keys missing.
        for (s, keys) in by_shard {
            let mut entries = Vec::new();
            for (index, db) in scratch.dbs.iter_mut().enumerate() {
                for key in &keys {
                    if let Some(entry) = db.take(key) {
                        entries.push((index, key.clone(), entry));
                    }
                }
            }
            if s == self.shard.id {
                self.shard.put_entries(entries);
            } else {
                self.shard.send(s, RequestBody::Put { step, entries }).await;
            }
        }
    }

    /// Runs each part of `fan` on its shard and writes the merged reply; `step` is the step
    /// holding those shards, if any. The caller has flushed the batch's earlier commands.
    async fn fan_out(
        &mut self,
        call: Call,
        merge: Merge,
        fan: Fan<'_>,
        step: Option<u64>,
        out: &mut Vec<u8>,
    ) {
        let sent = self.send_parts(call, merge, fan, step).await;
        merge_sent(sent, out).await;
    }

    /// Sends each part of `fan` to its shard (the home shard's part runs now) without waiting
    /// for the answers.
    async fn send_parts(
        &mut self,
        call: Call,
        merge: Merge,
        fan: Fan<'_>,
        step: Option<u64>,
    ) -> Sent {
        let mut answers = Vec::with_capacity(fan.shards.len());
        for (&to, part) in fan.shards.iter().zip(&fan.parts) {
            let mut batch = RemoteBatch::default();
            batch.step = step;
            batch.push(call, part.iter().copied());
            answers.push(if to == self.shard.id {
                Answer::Here(self.shard.run_batch_here(&batch).await)
            } else {
                Answer::There(self.shard.send(to, RequestBody::Exec(batch)).await)
            });
        }
        Sent {
            merge,
            proto: call.proto,
            order: fan.order,
            answers,
        }
    }

    /// Sends every open group and waits for all their replies.
    async fn flush(&mut self) {
        let mut waiting = Vec::new();
        for to in 0..self.open.len() {
            if let Some(group) = self.open[to].take() {
                let batch = std::mem::take(&mut self.groups[group].batch);
                waiting.push((group, self.shard.send(to, RequestBody::Exec(batch)).await));
            }
        }
        for (group, slot) in waiting {
            self.groups[group].replies = slot.wait().await.into_replies();
        }
    }

    /// Rewrites `out[base..]` with every reply in request order.
    fn assemble(&self, base: usize, out: &mut Vec<u8>) {
        let mut assembled = Vec::with_capacity(out.len() - base + self.groups.len() * 64);
        for slot in &self.slots {
            match *slot {
                Slot::Local { start, end } => assembled.extend_from_slice(&out[start..end]),
                Slot::Remote { group, index } => {
                    assembled.extend_from_slice(self.groups[group].replies.reply(index));
                }
                Slot::Step { index } => {
                    let start = index.checked_sub(1).map_or(0, |i| self.step_ends[i]);
                    assembled.extend_from_slice(&self.step_replies[start..self.step_ends[index]]);
                }
            }
        }
        out.truncate(base);
        out.extend_from_slice(&assembled);
    }
}

/// `EVAL`, `EVALSHA` and their `_RO` variants.
fn is_script(cmd: &Command) -> bool {
    cmd.has(flag::MOVABLEKEYS) && cmd.name.starts_with("eval")
}

fn is_script_kill(cmd: &Command, args: Args<'_>) -> bool {
    cmd.name == "script" && args.get(1).eq_ignore_ascii_case(b"kill")
}

/// What a shard running a long script still serves for its own clients (Redis's `allow-busy`
/// commands that Shardis has).
fn allowed_while_busy(cmd: &Command, args: Args<'_>) -> bool {
    matches!(
        cmd.route,
        Route::Connection(ConnCommand::Auth | ConnCommand::Hello | ConnCommand::Shutdown)
    ) || is_script_kill(cmd, args)
}

/// Puts entries a step moved out of a shard into its scratch store.
fn put_all(scratch: &mut Store, moved: crate::step::Moved) {
    for (index, key, entry) in moved {
        if let Some(db) = scratch.dbs.get_mut(index) {
            db.put(&key, entry);
        }
    }
}

/// Writes an error reply.
fn error(out: &mut Vec<u8>, proto: Protocol, err: CmdError) {
    Reply::new(out, proto).error(&err.to_string());
}

/// Waits for the replies of every part of `sent` and writes the merged reply.
async fn merge_sent(sent: Sent, out: &mut Vec<u8>) {
    let mut replies = Vec::with_capacity(sent.answers.len());
    for answer in sent.answers {
        replies.push(match answer {
            Answer::Here(replies) => replies,
            Answer::There(slot) => slot.wait().await.into_replies(),
        });
    }
    let parts: Vec<&[u8]> = replies.iter().map(|r| r.get(0)).collect();
    merge_replies(
        sent.merge,
        &parts,
        &sent.order,
        &mut Reply::new(out, sent.proto),
    );
}

/// Combines the per-shard replies of a multi-shard command.
fn merge_replies(merge: Merge, parts: &[&[u8]], order: &[usize], reply: &mut Reply<'_>) {
    if parts.iter().any(|p| p.is_empty()) {
        reply.raw(UNANSWERED);
        return;
    }
    if let Some(err) = parts.iter().find(|p| scan::is_error(p)) {
        reply.raw(err);
        return;
    }
    match merge {
        Merge::SumIntegers => reply.integer(parts.iter().filter_map(|p| scan::integer(p)).sum()),
        Merge::AllOk => reply.ok(),
        Merge::Same => {
            let arrays: Option<Vec<Vec<i64>>> = parts
                .iter()
                .map(|p| {
                    scan::elements(p)?
                        .iter()
                        .map(|e| scan::integer(e))
                        .collect()
                })
                .collect();
            match arrays.as_deref() {
                Some([first, rest @ ..]) => {
                    reply.array(first.len());
                    for (i, n) in first.iter().enumerate() {
                        let min = rest
                            .iter()
                            .filter_map(|a| a.get(i))
                            .fold(*n, |m, &x| m.min(x));
                        reply.integer(min);
                    }
                }
                _ => reply.raw(parts.first().copied().unwrap_or_default()),
            }
        }
        Merge::AnyNonNull => {
            let values: Vec<&[u8]> = parts
                .iter()
                .copied()
                .filter(|p| !p.starts_with(b"$-1") && !p.starts_with(b"_"))
                .collect();
            // A fresh std RandomState is seeded differently each time: a cheap random pick.
            let pick = std::hash::BuildHasher::hash_one(
                &std::collections::hash_map::RandomState::new(),
                values.len(),
            );
            match values.get((pick % values.len().max(1) as u64) as usize) {
                Some(value) => reply.raw(value),
                None => reply.null(),
            }
        }
        Merge::ByKey | Merge::Concat => {
            let arrays: Vec<Vec<&[u8]>> = parts
                .iter()
                .map(|p| scan::elements(p).unwrap_or_default())
                .collect();
            if merge == Merge::Concat {
                reply.array(arrays.iter().map(Vec::len).sum());
                arrays.iter().flatten().for_each(|e| reply.raw(e));
                return;
            }
            let mut next = vec![0; arrays.len()];
            reply.array(order.len());
            for &part in order {
                match arrays.get(part).and_then(|a| a.get(next[part])) {
                    Some(element) => reply.raw(element),
                    None => reply.null(),
                }
                next[part] += 1;
            }
        }
    }
}

/// The shard that serves a new connection: round robin over all shards.
pub fn next_home(counter: &mut usize, shards: usize) -> usize {
    let home = *counter % shards.max(1);
    *counter = counter.wrapping_add(1);
    home
}
