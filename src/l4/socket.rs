//! One side of a proxied connection: a non-blocking socket used with plain syscalls, that
//! waits for readiness through its shard's epoll reactor ([`crate::runtime::reactor`]).
//!
//! A socket is registered with the reactor when it is made (one `epoll_ctl`), so its
//! readiness is always known: data moves with `recv`/`send` directly while the socket is
//! marked ready; a `WouldBlock` — or a short read, which means the receive queue was
//! emptied — marks it not ready, and a wait then resolves at the next event. So no
//! syscall is spent only to learn that a socket has nothing.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use futures_lite::future::poll_fn;

use crate::runtime::reactor::{self, Interest, Registration};
use crate::sys;

/// A connected (or listening), non-blocking socket. Borrowed by both directions of a
/// connection: at most one task reads it and one writes it at a time.
pub struct Socket {
    // Dropped first: the slot is freed, then the descriptor closes (which removes it from
    // epoll).
    registration: Registration,
    fd: OwnedFd,
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Socket {
    /// An accepted socket, or a listener: worth a read at once (data or connections may be
    /// waiting already).
    pub fn accepted(fd: OwnedFd) -> io::Result<Socket> {
        Socket::register(fd, true)
    }

    /// A socket this proxy connected: nothing to read until it has sent something, so the
    /// first read waits for an event (the registration reports data already there).
    pub fn connected(fd: OwnedFd) -> io::Result<Socket> {
        Socket::register(fd, false)
    }

    fn register(fd: OwnedFd, readable: bool) -> io::Result<Socket> {
        let registration = reactor::current().register(fd.as_raw_fd(), readable)?;
        Ok(Socket { registration, fd })
    }

    /// The descriptor (valid as long as this socket lives).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// `recv` now; a `WouldBlock` clears the read readiness, and so does a short read
    /// (TCP returns less than asked only when its receive queue is empty: the next
    /// arrival queues a new event), which saves the `recv` that would say `WouldBlock`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let result = sys::recv_now(self.fd(), buf);
        match &result {
            Ok(n) if *n > 0 && *n < buf.len() => self.registration.drained(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.registration.clear(Interest::Read)
            }
            _ => {}
        }
        result
    }

    /// `send` now; a `WouldBlock` clears the write readiness.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let result = sys::send_now(self.fd(), buf);
        if matches!(&result, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            self.registration.clear(Interest::Write);
        }
        result
    }

    /// Another syscall on this socket (splice, accept, ...) said `WouldBlock` for
    /// `interest`. Call it right after that syscall, with no await in between.
    pub fn blocked(&self, interest: Interest) {
        self.registration.clear(interest);
    }

    /// Whether a read may find something: false when the socket is known to be drained
    /// (a read found it empty, or it was connected by us, and no event came since).
    pub fn may_read(&self) -> bool {
        self.registration.is_ready(Interest::Read)
    }

    /// Resolves when the socket is (or may be) ready for `interest`: at once if it is
    /// marked ready, else at the next event.
    pub fn ready(&self, interest: Interest) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| self.registration.poll_ready(interest, cx))
    }

    /// [`Socket::ready`] for reading.
    pub fn readable(&self) -> impl Future<Output = ()> + '_ {
        self.ready(Interest::Read)
    }

    /// [`Socket::ready`] for writing.
    pub fn writable(&self) -> impl Future<Output = ()> + '_ {
        self.ready(Interest::Write)
    }

    /// A listener: the next connection (non-blocking, with its peer address), awaiting
    /// the listener's readability when none is waiting. One `accept4` per connection.
    pub async fn accept(&self) -> io::Result<(OwnedFd, Option<std::net::SocketAddr>)> {
        loop {
            match sys::accept_now(self.fd()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked(Interest::Read);
                    self.readable().await;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// Write all of `bytes`, awaiting writability when the socket is full (no idle
    /// accounting: for the control thread's short exchanges).
    pub async fn send_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.send(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable().await,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
