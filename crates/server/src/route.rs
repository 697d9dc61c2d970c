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

use std::rc::Rc;

use shardis_commands::table::{flag, CURSOR_SHARD_SHIFT};
use shardis_commands::{lookup, Args, CmdError, Command, Merge, Route};
use shardis_resp::{scan, Protocol, Reply, Span};

use crate::client::Client;
use crate::connection::{self, Flow};
use crate::shard::{now_ms, Call, RemoteBatch, Replies, RequestBody, ResponseBody, Shard};

/// Where the reply to one command of the batch is.
enum Slot {
    /// `out[start..end]`.
    Local { start: usize, end: usize },
    /// Reply `index` of group `group`.
    Remote { group: usize, index: usize },
}

/// Commands for one destination shard, and later their replies.
struct Group {
    batch: RemoteBatch,
    replies: Replies,
}

/// The state of one batch being routed.
struct Plan<'a> {
    shard: &'a Rc<Shard>,
    slots: Vec<Slot>,
    groups: Vec<Group>,
    /// The group currently collecting commands for each shard.
    open: Vec<Option<usize>>,
    now_ms: u64,
}

/// Runs the commands of a batch (`cmds` are (first span, argument count) pairs over `buf`) and
/// appends all their replies, in order, to `out`. Returns whether the connection goes on.
pub async fn run_batch(
    shard: &Rc<Shard>,
    client: &Rc<Client>,
    buf: &[u8],
    spans: &[Span],
    cmds: &[(usize, usize)],
    out: &mut Vec<u8>,
) -> Flow {
    let mut plan = Plan {
        shard,
        slots: Vec::with_capacity(cmds.len()),
        groups: Vec::new(),
        open: vec![None; shard.count],
        now_ms: now_ms(),
    };
    let base = out.len();
    let mut flow = Flow::Continue;
    for &(first, argc) in cmds {
        let args = Args::new(buf, spans.get(first..first + argc).unwrap_or_default());
        let (start, queued) = (out.len(), plan.slots.len());
        flow = plan.route(client, args, out).await;
        // A command either queued a remote slot or wrote its reply here (or, like SHUTDOWN,
        // answered nothing).
        if plan.slots.len() == queued && out.len() > start {
            plan.slots.push(Slot::Local {
                start,
                end: out.len(),
            });
        }
        if flow != Flow::Continue || client.killed.get() {
            break;
        }
    }
    plan.flush().await;
    if !plan.groups.is_empty() {
        plan.assemble(base, out);
    }
    flow
}

impl Plan<'_> {
    /// Routes one command. A reply written to `out` is recorded as a local slot by the caller;
    /// a command sent elsewhere records its remote slot here.
    async fn route(&mut self, client: &Rc<Client>, args: Args<'_>, out: &mut Vec<u8>) -> Flow {
        let (db, proto) = {
            let s = client.state.borrow();
            (s.db, s.proto)
        };
        let name = args.get(0);
        let Some(cmd) = lookup(name) else {
            error(
                out,
                proto,
                CmdError::unknown_command(name, args.iter().skip(1)),
            );
            return Flow::Continue;
        };
        if !cmd.has(flag::NO_AUTH) && !client.state.borrow().authenticated {
            error(out, proto, CmdError::NoAuth);
            return Flow::Continue;
        }
        if !cmd.arity_ok(args.len()) {
            error(out, proto, CmdError::WrongArity(cmd.name.to_owned()));
            return Flow::Continue;
        }
        client.state.borrow_mut().last_command = cmd.name;
        match cmd.route {
            Route::Connection(which) => {
                if connection::needs_barrier(which) {
                    self.flush().await;
                }
                connection::run(self.shard, client, which, args, out).await
            }
            Route::Keyed(handler) => {
                let call = Call { handler, db, proto };
                match self.owner(cmd, args) {
                    Ok(owner) => self.single(call, owner, args, out),
                    Err(err) => error(out, proto, err),
                }
                Flow::Continue
            }
            Route::Split(handler, merge) => {
                let call = Call { handler, db, proto };
                match self.owner(cmd, args) {
                    Ok(owner) => self.single(call, owner, args, out),
                    Err(_) => self.split(cmd, call, merge, args, out).await,
                }
                Flow::Continue
            }
            Route::Broadcast(handler, merge) => {
                let call = Call { handler, db, proto };
                let all: Vec<usize> = (0..self.shard.count).collect();
                let parts = vec![args.iter().collect::<Vec<_>>(); all.len()];
                self.fan_out(call, merge, &all, parts, &[], out).await;
                Flow::Continue
            }
            Route::Cursor(handler) => {
                let call = Call { handler, db, proto };
                // An unparsable cursor is answered (with Redis's error) by the home shard.
                let owner = shardis_resp::parse_i64(args.get(1)).map_or(self.shard.id, |c| {
                    (c as u64 >> CURSOR_SHARD_SHIFT) as usize % self.shard.count
                });
                self.single(call, owner, args, out);
                Flow::Continue
            }
        }
    }

    /// The one shard that owns every key of the command, or an error if they are spread.
    fn owner(&self, cmd: &Command, args: Args<'_>) -> Result<usize, CmdError> {
        let mut keys = cmd
            .key_positions(args.len())
            .map(|i| self.shard.slots.shard_of(args.get(i)));
        let first = keys.next().unwrap_or(self.shard.id);
        if keys.all(|s| s == first) {
            Ok(first)
        } else {
            Err(CmdError::Other(
                "CROSSSLOT Keys in request don't hash to the same slot".to_owned(),
            ))
        }
    }

    /// A command for one shard: run it now if it is ours, else queue it for its group.
    fn single(&mut self, call: Call, owner: usize, args: Args<'_>, out: &mut Vec<u8>) {
        if owner == self.shard.id {
            self.shard.exec(call, self.now_ms, args, out);
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
        let step = cmd.step.max(1) as usize;
        let positions: Vec<usize> = cmd.key_positions(args.len()).collect();
        // `MSET k v k` would hand one shard a key without its value: refuse it whole, as the
        // command itself would on one shard.
        if positions.last().is_some_and(|&p| p + step > args.len()) {
            error(out, call.proto, CmdError::WrongArity(cmd.name.to_owned()));
            return;
        }
        let first = positions.first().copied().unwrap_or(1);
        let after = positions.last().map_or(args.len(), |&p| p + step);
        let mut shards: Vec<usize> = Vec::new();
        let mut parts: Vec<Vec<&[u8]>> = Vec::new();
        // The part each key went to, in key order, to put per-key replies back in order.
        let mut order = Vec::with_capacity(positions.len());
        for &p in &positions {
            let owner = self.shard.slots.shard_of(args.get(p));
            let i = match shards.iter().position(|&s| s == owner) {
                Some(i) => i,
                None => {
                    shards.push(owner);
                    parts.push(args.iter().take(first).collect());
                    parts.len() - 1
                }
            };
            parts[i].extend((p..p + step).map(|i| args.get(i)));
            order.push(i);
        }
        for part in &mut parts {
            part.extend((after..args.len()).map(|i| args.get(i)));
        }
        self.fan_out(call, merge, &shards, parts, &order, out).await;
    }

    /// Runs `parts[i]` on `shards[i]` for every i, after everything queued before, and writes
    /// the merged reply (`order` gives the part of each key, for [`Merge::ByKey`]).
    async fn fan_out(
        &mut self,
        call: Call,
        merge: Merge,
        shards: &[usize],
        parts: Vec<Vec<&[u8]>>,
        order: &[usize],
        out: &mut Vec<u8>,
    ) {
        self.flush().await;
        let mut waiting = Vec::new();
        let mut local = None;
        for (&to, part) in shards.iter().zip(&parts) {
            let mut batch = RemoteBatch::default();
            batch.push(call, part.iter().copied());
            if to == self.shard.id {
                local = Some((to, self.shard.run_batch(&batch)));
            } else {
                waiting.push((to, self.shard.send(to, RequestBody::Exec(batch)).await));
            }
        }
        let mut answers = Vec::with_capacity(shards.len());
        for (to, slot) in waiting {
            let replies = match slot.wait().await {
                ResponseBody::Exec(replies) => replies,
                _ => Replies::default(),
            };
            answers.push((to, replies));
        }
        answers.extend(local);
        // Back in the order of `shards` (and so of `parts`).
        answers.sort_by_key(|(to, _)| shards.iter().position(|s| s == to));
        let parts: Vec<&[u8]> = answers.iter().map(|(_, r)| r.get(0)).collect();
        merge_replies(merge, &parts, order, &mut Reply::new(out, call.proto));
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
            self.groups[group].replies = match slot.wait().await {
                ResponseBody::Exec(replies) => replies,
                _ => Replies::default(),
            };
        }
    }

    /// Rewrites `out[base..]` with every reply in request order.
    fn assemble(&self, base: usize, out: &mut Vec<u8>) {
        let mut assembled = Vec::with_capacity(out.len() - base + self.groups.len() * 64);
        for slot in &self.slots {
            match *slot {
                Slot::Local { start, end } => assembled.extend_from_slice(&out[start..end]),
                Slot::Remote { group, index } => {
                    let reply = self.groups[group].replies.get(index);
                    if reply.is_empty() {
                        // The shard could not be reached; still answer, in order.
                        assembled.extend_from_slice(b"-ERR a shard did not answer\r\n");
                    } else {
                        assembled.extend_from_slice(reply);
                    }
                }
            }
        }
        out.truncate(base);
        out.extend_from_slice(&assembled);
    }
}

/// Writes an error reply.
fn error(out: &mut Vec<u8>, proto: Protocol, err: CmdError) {
    Reply::new(out, proto).error(&err.to_string());
}

/// Combines the per-shard replies of a multi-shard command.
fn merge_replies(merge: Merge, parts: &[&[u8]], order: &[usize], reply: &mut Reply<'_>) {
    if parts.iter().any(|p| p.is_empty()) {
        // A shard could not be reached (only possible while the server stops).
        reply.error("ERR a shard did not answer");
        return;
    }
    if let Some(err) = parts.iter().find(|p| scan::is_error(p)) {
        reply.raw(err);
        return;
    }
    match merge {
        Merge::SumIntegers => reply.integer(parts.iter().filter_map(|p| scan::integer(p)).sum()),
        Merge::AllOk => reply.ok(),
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
