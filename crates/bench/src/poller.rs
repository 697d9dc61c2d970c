//! Thin safe wrappers over Linux `epoll` and `timerfd`, the only `unsafe`
//! code in the crate.
//!
//! Level-triggered epoll is used on purpose: a connection is always
//! interested in reads, and in writes only while a partial write is pending,
//! so level triggering never spins and needs no "drain until EAGAIN" loops.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Readiness reported for one registered descriptor.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// The token given at registration.
    pub token: u64,
    /// Data (or EOF/error) can be read.
    pub readable: bool,
    /// The socket buffer has room again.
    pub writable: bool,
}

/// An epoll instance.
#[derive(Debug)]
pub struct Poller {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl Poller {
    /// A new epoll instance able to report `capacity` events per wait.
    pub fn new(capacity: usize) -> io::Result<Poller> {
        // SAFETY: plain syscall; the returned descriptor is owned below.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Poller {
            fd,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; capacity.max(1)],
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64, writable: bool) -> io::Result<()> {
        let mut flags = libc::EPOLLIN | libc::EPOLLRDHUP;
        if writable {
            flags |= libc::EPOLLOUT;
        }
        let mut ev = libc::epoll_event {
            events: flags as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    /// Watches `fd` for reads (and writes if `writable`), reporting `token`.
    pub fn add(&self, fd: RawFd, token: u64, writable: bool) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, writable)
    }

    /// Changes whether `fd` is also watched for writability.
    pub fn modify(&self, fd: RawFd, token: u64, writable: bool) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, writable)
    }

    /// Waits up to `timeout` (rounded up to whole milliseconds) and returns
    /// the ready descriptors. `EINTR` is reported as no events.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<impl Iterator<Item = Event> + '_> {
        // Round up: waking a little late is harmless (the open-loop schedule
        // has its own timer), waking early in a loop wastes CPU.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        let cap = self.events.len().min(i32::MAX as usize) as libc::c_int;
        // SAFETY: the buffer holds `cap` epoll_event slots.
        let ret =
            unsafe { libc::epoll_wait(self.fd.as_raw_fd(), self.events.as_mut_ptr(), cap, ms) };
        let n = match check(ret) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        Ok(self.events[..n].iter().map(|ev| {
            let flags = ev.events as libc::c_int;
            Event {
                token: ev.u64,
                // Hang-ups and errors are surfaced by the next read.
                readable: flags
                    & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR)
                    != 0,
                writable: flags & libc::EPOLLOUT != 0,
            }
        }))
    }
}

/// A one-shot monotonic timer with nanosecond resolution, waited on through
/// epoll. epoll_wait's own timeout is in milliseconds, far too coarse to pace
/// an open-loop schedule of thousands of requests per second.
#[derive(Debug)]
pub struct Timer {
    fd: OwnedFd,
    armed: bool,
}

impl Timer {
    /// A disarmed timer.
    pub fn new() -> io::Result<Timer> {
        // SAFETY: plain syscall; the returned descriptor is owned below.
        let fd = check(unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        })?;
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Timer { fd, armed: false })
    }

    /// The descriptor to register with the poller.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Fires once after `after` (at least 1 ns: zero would disarm it).
    pub fn arm(&mut self, after: Duration) -> io::Result<()> {
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs().min(i32::MAX as u64) as libc::time_t,
                tv_nsec: libc::c_long::from(after.subsec_nanos() as i32),
            },
        };
        // SAFETY: `spec` is valid; a null old-value pointer is allowed.
        check(unsafe {
            libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut())
        })?;
        self.armed = true;
        Ok(())
    }

    /// Whether the timer is armed and has not been consumed yet.
    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// Consumes an expiry after epoll reported the timer readable.
    pub fn consume(&mut self) {
        let mut buf = [0u8; 8];
        // SAFETY: reading at most 8 bytes into an 8-byte buffer. A spurious
        // EAGAIN (nothing expired) is fine to ignore.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        self.armed = false;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn timer_fires_through_epoll() {
        let mut poller = Poller::new(4).unwrap();
        let mut timer = Timer::new().unwrap();
        poller.add(timer.raw_fd(), 7, false).unwrap();
        let start = Instant::now();
        timer.arm(Duration::from_millis(5)).unwrap();
        let events: Vec<Event> = poller.wait(Duration::from_secs(2)).unwrap().collect();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].token, 7);
        assert!(events[0].readable);
        assert!(start.elapsed() >= Duration::from_millis(5));
        timer.consume();
        assert!(!timer.is_armed());
        let events: Vec<Event> = poller.wait(Duration::from_millis(1)).unwrap().collect();
        assert!(events.is_empty());
    }
}
