//! Small single-threaded synchronisation helpers for a shard's tasks.
//!
//! [`OneShot`] is a slot for a reply that another shard will deliver to this one.
//!
//! Both ends live on the same reactor thread (the reply arrives through the shard's response
//! channel and is handed over locally), so a `RefCell` and a stored `Waker` suffice: no atomics.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// A value that will be filled in once, and a task waiting for it.
pub struct OneShot<T> {
    state: RefCell<(Option<T>, Option<Waker>)>,
}

impl<T> OneShot<T> {
    /// An empty slot.
    pub fn new() -> Rc<OneShot<T>> {
        Rc::new(OneShot {
            state: RefCell::new((None, None)),
        })
    }

    /// Fills the slot and wakes the waiting task.
    pub fn fill(&self, value: T) {
        let waker = {
            let mut state = self.state.borrow_mut();
            state.0 = Some(value);
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Waits until the slot is filled and takes the value.
    pub async fn wait(&self) -> T {
        poll_fn(|cx| {
            let mut state = self.state.borrow_mut();
            match state.0.take() {
                Some(value) => Poll::Ready(value),
                None => {
                    state.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

/// Lets the rest of this reactor run before the caller continues: every ready task, and also
/// the tasks waiting for I/O. Merely re-queueing the caller would not do the latter: glommio
/// polls the ring for socket completions only when its run queue empties or its preemption
/// timer (tens of milliseconds) fires, so a task that keeps re-queueing itself, such as active
/// expiry working through a million due fields, would hold every connection of the shard for
/// that long. A short timer empties the queue, so the reactor polls the ring and wakes the
/// connections that have input ahead of the caller. (A zero-length timer would not do: it is
/// ready at once, without ever reaching the reactor.)
pub async fn yield_now() {
    glommio::timer::sleep(std::time::Duration::from_micros(50)).await;
}
