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

/// Lets every other ready task of this reactor run once before the caller continues.
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}
