//! The multi-shard step: running one command atomically on several shards.
//!
//! Single-key commands never lock anything. A command whose keys live on several shards
//! (`MSET`, `MGET`, `DEL k1 k2`, `RENAME`, `MSETNX`, `LMOVE` ...) runs as a *step*: its
//! connection's home shard becomes the coordinator, takes exclusive use of every shard involved,
//! does the work, and lets go. While a shard belongs to a step:
//!
//! * requests from other connections (their batches, other steps' lock requests) are queued in
//!   arrival order and served when the step ends; the shard's receive loops never block, so the
//!   step's own messages always get through;
//! * the shard's own connections queue in the same line before running a command inline
//!   ([`Shard::after_steps`]), so that a steady stream of steps cannot starve them.
//!
//! So no client can observe half of a step. Locks are taken with one round of *try-locks* sent
//! to all the shards at once (one round trip when nothing is contended); if any shard is busy,
//! the coordinator gives back what it got and locks the shards one by one in ascending order,
//! which cannot deadlock because every step waits in the same order.
//!
//! What a step does once it holds its shards depends on the command: `Split` commands run their
//! per-shard parts there; any other multi-key command has its entries *moved* to the
//! coordinator, runs its ordinary single-shard handler there, and the entries are moved back.
//! Values move by ownership, never by copy.
//!
//! A step taken for a connection's run of spread commands stays open to the other connections
//! of the same home shard whose commands need only shards it holds: they *join* it, sending
//! their parts without a lock of their own ([`Shard::open_to_joiners`]). A connection that finds
//! such a step still being locked waits for it to open rather than contend for the same shards
//! ([`Shard::begin_opening`]). The owner's parts, and each joiner's, go out as one batch per
//! shard when the connection's run of spread commands ends; a joiner holds the step open until
//! then ([`Shard::join`], [`Pin`]), and the owner waits for its joiners before it unlocks. Every
//! send of a run's parts happens in one *send turn* ([`Shard::send_turn`]) together with the
//! part that runs on the home shard, so all shards run the step's commands in the same order.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use glommio::spawn_local;
use glommio::sync::{Permit, Semaphore};
use shardis_store::Entry;

use crate::shard::{RemoteBatch, Replies, Request, RequestBody, ResponseBody, Shard};

/// A shard's lock: which step holds it, and who waits.
pub struct Lock {
    holder: Cell<Option<u64>>,
    /// Requests that arrived while a step held the shard, and this shard's own connections
    /// waiting for it ([`Shard::after_steps`]), in arrival order.
    deferred: RefCell<VecDeque<Queued>>,
    /// This shard's own connections waiting to run a command inline.
    waiters: RefCell<Vec<Waker>>,
    /// True while the deferred queue is being served.
    draining: Cell<bool>,
    next_step: Cell<u64>,
    /// A step of one of this shard's connections that its other connections may join, and
    /// the shards it holds (see [`Shard::joinable`]).
    joinable: RefCell<Option<(u64, Vec<usize>)>>,
    /// The shards a step of one of this shard's connections is being locked for, to be opened
    /// to joiners once locked, and the connections waiting for it to open (see
    /// [`Shard::until_opened`]).
    opening: RefCell<Option<Vec<usize>>>,
    opening_waiters: RefCell<Vec<Waker>>,
    /// Held while one command's parts are sent in a step, so that the parts of the step's
    /// commands reach every shard in the same order.
    sends: Semaphore,
    /// How many joiners hold each step open ([`Pin`]), and the owners waiting for them.
    pins: RefCell<Vec<(u64, usize)>>,
    pin_waiters: RefCell<Vec<Waker>>,
}

impl Default for Lock {
    fn default() -> Lock {
        Lock {
            holder: Cell::new(None),
            deferred: RefCell::default(),
            waiters: RefCell::default(),
            draining: Cell::new(false),
            next_step: Cell::new(0),
            joinable: RefCell::new(None),
            opening: RefCell::new(None),
            opening_waiters: RefCell::default(),
            sends: Semaphore::new(1),
            pins: RefCell::default(),
            pin_waiters: RefCell::default(),
        }
    }
}

/// What waits for a shard held by a step.
enum Queued {
    /// A request from another shard.
    Remote(Request),
    /// One of this shard's connections, for the step it will hold ([`Shard::after_steps`]).
    Local(u64),
}

/// An announced step being locked ([`Shard::begin_opening`]); dropping it ends the
/// announcement and wakes the connections that waited for it.
pub(crate) struct Opening<'a> {
    lock: &'a Lock,
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        *self.lock.opening.borrow_mut() = None;
        wake_all(&self.lock.opening_waiters);
    }
}

/// A joiner's hold on a step ([`Shard::join`]): the step does not end while one exists, so the
/// joiner may gather its run's parts and send them together.
pub(crate) struct Pin {
    shard: Rc<Shard>,
    /// The step held.
    pub step: u64,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let lock = &self.shard.lock;
        let mut pins = lock.pins.borrow_mut();
        if let Some(i) = pins.iter().position(|&(step, _)| step == self.step) {
            pins[i].1 -= 1;
            if pins[i].1 == 0 {
                pins.swap_remove(i);
                drop(pins);
                wake_all(&lock.pin_waiters);
            }
        }
    }
}

/// Waits while `busy` says so, registered in `waiters` for [`wake_all`] to wake.
async fn wait_while(waiters: &RefCell<Vec<Waker>>, busy: impl Fn() -> bool) {
    poll_fn(|cx| {
        if busy() {
            waiters.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await
}

/// Wakes every task waiting in `waiters` (see [`wait_while`]).
fn wake_all(waiters: &RefCell<Vec<Waker>>) {
    for waker in waiters.borrow_mut().drain(..) {
        waker.wake();
    }
}

/// The keys a step moves out of one shard, and later back.
pub type Keys = Vec<Box<[u8]>>;

/// Entries moved by a step: database index, key, entry.
pub type Moved = Vec<(usize, Box<[u8]>, Entry)>;

impl Shard {
    /// Queues `request` if it must wait for the current step; otherwise hands it back to be
    /// served now.
    pub(crate) fn defer(&self, request: Request) -> Option<Request> {
        let lock = &self.lock;
        let holder = lock.holder.get();
        let step = match &request.body {
            RequestBody::Exec(batch) => batch.step,
            RequestBody::Take { step, .. } | RequestBody::Put { step, .. } => Some(*step),
            RequestBody::Lock(_) => None,
            // Try-locks, unlocks, control messages and new connections never wait.
            _ => return Some(request),
        };
        // The step that holds the shard always gets through, or it would wait for itself.
        if holder.is_some() && step == holder {
            return Some(request);
        }
        // Anyone else waits while a step holds the shard, and also while earlier requests are
        // still queued, so that requests keep their order.
        let queued = !lock.deferred.borrow().is_empty() || lock.draining.get();
        if holder.is_some() || queued {
            lock.deferred
                .borrow_mut()
                .push_back(Queued::Remote(request));
            None
        } else {
            Some(request)
        }
    }

    /// Serves the lock requests; `None` for any other body.
    pub(crate) fn serve_lock(self: &Rc<Shard>, body: &RequestBody) -> Option<ResponseBody> {
        match *body {
            RequestBody::TryLock(step) => {
                let free =
                    self.lock.holder.get().is_none() && self.lock.deferred.borrow().is_empty();
                if free {
                    self.lock.holder.set(Some(step));
                }
                Some(ResponseBody::Granted(free))
            }
            RequestBody::Lock(step) => {
                self.lock.holder.set(Some(step));
                Some(ResponseBody::Granted(true))
            }
            _ => None,
        }
    }

    /// Takes `keys` out of this shard's store, in every database (a command such as
    /// `COPY ... DB n` reaches beyond the selected one), for a step.
    pub(crate) fn take_entries(&self, keys: &Keys) -> Moved {
        let mut store = self.store.borrow_mut();
        let mut moved = Vec::new();
        for (index, db) in store.dbs.iter_mut().enumerate() {
            for key in keys {
                if let Some(entry) = db.take(key) {
                    moved.push((index, key.clone(), entry));
                }
            }
        }
        moved
    }

    /// Puts entries back at the end of a step.
    pub(crate) fn put_entries(&self, entries: Moved) {
        let mut store = self.store.borrow_mut();
        for (index, key, entry) in entries {
            if let Some(db) = store.dbs.get_mut(index) {
                db.put(&key, entry);
            }
        }
    }

    /// Holds this shard for a command of one of its own connections that runs inline, if a
    /// step holds it now: waits in turn with every request queued for the shard and returns the
    /// step it now holds the shard for, to [`Shard::release`] once the command has run. `None`
    /// at once when no step holds the shard. (A step id, not a guard that releases on drop: a
    /// guard's drop code in every single-key command's future cost 40 instructions a command.)
    ///
    /// Waiting for the shard to come free and then running would not do: woken when the shard
    /// comes free, a waiter found it taken again by the next queued request, and again, for as
    /// long as a load of spread commands lasted (seconds, at 3 shards).
    pub(crate) async fn after_steps(self: &Rc<Shard>) -> Option<u64> {
        if !self.is_locked() {
            return None;
        }
        let step = self.new_step();
        self.queue_for(step).await;
        Some(step)
    }

    /// Runs `batch` on this shard from one of its own connections: at once if it belongs to a
    /// step (which holds the shard), else after any step holding it, in turn with what waits.
    pub(crate) async fn run_batch_here(self: &Rc<Shard>, batch: &RemoteBatch) -> Replies {
        let turn = match batch.step {
            Some(_) => None,
            None => self.after_steps().await,
        };
        let replies = self.run_batch(batch).await;
        if let Some(step) = turn {
            self.release(step);
        }
        replies
    }

    /// Takes this shard for `step` at once if nothing holds it or waits for it, else queues
    /// `step` behind what waits and returns once the queue has handed it the shard.
    async fn queue_for(self: &Rc<Shard>, step: u64) {
        let lock = &self.lock;
        if self.is_locked() || lock.draining.get() || !lock.deferred.borrow().is_empty() {
            lock.deferred.borrow_mut().push_back(Queued::Local(step));
            // Nothing holds the shard to hand it on when done: serve the queue now.
            if !self.is_locked() {
                self.drain();
            }
            wait_while(&lock.waiters, || lock.holder.get() != Some(step)).await;
        } else {
            lock.holder.set(Some(step));
        }
    }

    /// True if a step holds this shard.
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.lock.holder.get().is_some()
    }

    /// Takes exclusive use of `shards` (ascending, no duplicates) for a new step.
    pub async fn lock_shards(self: &Rc<Shard>, shards: &[usize]) -> u64 {
        let step = self.new_step();
        // First, try every shard at once.
        let mut waiting = Vec::new();
        let mut all = true;
        let mut got = Vec::new();
        for &s in shards {
            if s == self.id {
                let free = !self.is_locked() && self.lock.deferred.borrow().is_empty();
                if free {
                    self.lock.holder.set(Some(step));
                    got.push(s);
                }
                all &= free;
            } else {
                waiting.push((s, self.send(s, RequestBody::TryLock(step)).await));
            }
        }
        for (s, slot) in waiting {
            if matches!(slot.wait().await, ResponseBody::Granted(true)) {
                got.push(s);
            } else {
                all = false;
            }
        }
        if all {
            return step;
        }
        // Contended: give everything back, then queue for each shard in ascending order.
        self.unlock_shards(step, &got);
        for &s in shards {
            if s == self.id {
                self.queue_for(step).await;
            } else {
                self.send(s, RequestBody::Lock(step)).await.wait().await;
            }
        }
        step
    }

    /// Lets this shard's other connections join `step`, which holds `shards` (ascending).
    ///
    /// A connection whose spread command finds every shard it needs held by another
    /// connection's step on the same home shard sends its parts in that step instead of waiting
    /// for it to end and taking a step of its own: no lock, no unlock, one round trip. It stays
    /// atomic: the shards stay held until the step ends, and the step's parts go out in send
    /// turns ([`Shard::send_turn`]), so every shard runs them in the same order.
    pub(crate) fn open_to_joiners(&self, step: u64, shards: &[usize]) {
        *self.lock.joinable.borrow_mut() = Some((step, shards.to_vec()));
    }

    /// Joins the joinable step that holds every shard in `shards`, if any, holding it open
    /// until the returned pin is dropped: the joiner gathers the parts of its run of spread
    /// commands and sends them together, then drops the pin.
    pub(crate) fn join(self: &Rc<Shard>, shards: &[usize]) -> Option<Pin> {
        let step = self.joinable(shards)?;
        let mut pins = self.lock.pins.borrow_mut();
        match pins.iter_mut().find(|(held, _)| *held == step) {
            Some((_, n)) => *n += 1,
            None => pins.push((step, 1)),
        }
        Some(Pin {
            shard: self.clone(),
            step,
        })
    }

    /// Ends joining `step` and waits until every joiner has sent its parts and let go of it
    /// (what they sent then travels ahead of the step's unlock on every channel). Another step
    /// of this home shard, on other shards, may have taken the joinable place since; that one
    /// stays.
    pub(crate) async fn close_to_joiners(&self, step: u64) {
        {
            let mut joinable = self.lock.joinable.borrow_mut();
            if joinable.as_ref().is_some_and(|(id, _)| *id == step) {
                *joinable = None;
            }
        }
        wait_while(&self.lock.pin_waiters, || {
            self.lock
                .pins
                .borrow()
                .iter()
                .any(|&(held, _)| held == step)
        })
        .await
    }

    /// Announces that a step for `shards` is being locked and will be open to joiners, unless
    /// another is being locked already. The announcement lasts as long as the guard (drop it
    /// once the step is open), so that a connection whose task ends on the way cannot leave the
    /// others waiting for good.
    ///
    /// The connections of a home shard that have spread commands ready in the same reactor turn
    /// would otherwise each try to lock the same shards at once: all but one would fail, give
    /// back what they got and queue for the shards one by one, each then a step of its own.
    /// Waiting for the first step to open instead lets them join it, one round trip each.
    pub(crate) fn begin_opening(&self, shards: &[usize]) -> Option<Opening<'_>> {
        let mut opening = self.lock.opening.borrow_mut();
        if opening.is_some() {
            return None;
        }
        *opening = Some(shards.to_vec());
        Some(Opening { lock: &self.lock })
    }

    /// Waits while a step that will hold every shard in `shards` is being locked here.
    pub(crate) async fn until_opened(&self, shards: &[usize]) {
        wait_while(&self.lock.opening_waiters, || {
            self.lock
                .opening
                .borrow()
                .as_ref()
                .is_some_and(|held| shards.iter().all(|s| held.contains(s)))
        })
        .await
    }

    /// The joinable step that holds every shard in `shards`, if any.
    pub(crate) fn joinable(&self, shards: &[usize]) -> Option<u64> {
        match &*self.lock.joinable.borrow() {
            Some((step, held)) if shards.iter().all(|s| held.contains(s)) => Some(*step),
            _ => None,
        }
    }

    /// The turn to send one command's parts in a step (an error only if the semaphore were
    /// closed, which it never is).
    pub(crate) async fn send_turn(&self) -> glommio::Result<Permit<'_>, ()> {
        self.lock.sends.acquire_permit(1).await
    }

    /// Ends a step on `shards`. Remote shards are told without waiting for an answer: the
    /// unlock travels behind the step's other messages, so it cannot overtake them.
    pub fn unlock_shards(self: &Rc<Shard>, step: u64, shards: &[usize]) {
        for &s in shards {
            if s == self.id {
                self.release(step);
            } else {
                let shard = self.clone();
                spawn_local(async move {
                    shard.tell(s, RequestBody::Unlock(step)).await;
                })
                .detach();
            }
        }
    }

    /// A step id unique across shards: ids of shard `s` are `s`, `s + count`, ...
    fn new_step(&self) -> u64 {
        let n = self.lock.next_step.get();
        self.lock.next_step.set(n + 1);
        n * self.count as u64 + self.id as u64
    }

    /// Takes this shard's lock for a step of its own if no step holds it; returns that step.
    pub(crate) fn hold_if_free(&self) -> Option<u64> {
        if self.is_locked() {
            return None;
        }
        let step = self.new_step();
        self.lock.holder.set(Some(step));
        Some(step)
    }

    /// Lets go of this shard if `step` holds it, wakes local waiters and serves what queued.
    pub(crate) fn release(self: &Rc<Shard>, step: u64) {
        if self.lock.holder.get() != Some(step) {
            return;
        }
        self.lock.holder.set(None);
        wake_all(&self.lock.waiters);
        self.drain();
    }

    /// Serves the queued requests in order, until one of them locks the shard again, unless
    /// that is under way already.
    fn drain(self: &Rc<Shard>) {
        if self.lock.draining.get() || self.lock.deferred.borrow().is_empty() {
            return;
        }
        self.lock.draining.set(true);
        let shard = self.clone();
        spawn_local(async move {
            // Serve queued requests in order until one of them locks the shard again.
            while !shard.is_locked() {
                let next = shard.lock.deferred.borrow_mut().pop_front();
                match next {
                    Some(Queued::Remote(request)) => shard.serve(request).await,
                    Some(Queued::Local(step)) => {
                        shard.lock.holder.set(Some(step));
                        wake_all(&shard.lock.waiters);
                    }
                    None => break,
                }
            }
            shard.lock.draining.set(false);
        })
        .detach();
    }
}
