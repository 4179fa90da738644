//! Buffers and socket I/O of the HTTP proxy.
//!
//! Same approach as L4 ([`crate::l4::socket`]): data moves with plain non-blocking
//! `recv`/`send`; only when a socket has nothing to give (or no room) is its readiness
//! awaited (the shard's epoll reactor), while the connection's [`IdleWatch`] knows what it
//! waits for, so the shard's sweep enforces the timeouts without a timer per wait. The
//! functions take any [`Transport`]: a plain [`crate::l4::socket::Socket`] or a TLS
//! stream ([`crate::tls::stream::TlsSocket`]).

use std::io;

use crate::l4::idle::{Deadline, IdleWatch, Side};
use crate::runtime::shard::{Shard, COPY_BUFFER};
use crate::tls::stream::Transport;

/// A read buffer: bytes `start..end` of `data` are received and not yet consumed.
/// Backed by the shard's pooled 64 KiB buffers (a bigger one when the head limit needs
/// it); an empty buffer holds no memory ([`Buffer::release`]).
#[derive(Default)]
pub struct Buffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Buffer {
    /// The unconsumed bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// Number of unconsumed bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether no byte is waiting.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Mark `n` bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Make sure there is free space after the unconsumed bytes, for a buffer of at
    /// least `capacity` bytes; returns false if the unconsumed bytes fill it all.
    fn make_room(&mut self, shard: &Shard, capacity: usize) -> bool {
        if self.data.is_empty() {
            self.data = if capacity <= COPY_BUFFER {
                shard.take_buffer()
            } else {
                vec![0u8; capacity]
            };
        }
        if self.end == self.data.len() && self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.end < self.data.len()
    }

    /// Give the memory back to the shard if nothing is waiting in it.
    pub fn release(&mut self, shard: &Shard) {
        if self.is_empty() && !self.data.is_empty() {
            shard.give_back_buffer(std::mem::take(&mut self.data));
        }
    }

    /// Give the memory back, dropping anything unconsumed.
    pub fn discard(&mut self, shard: &Shard) {
        self.start = 0;
        self.end = 0;
        self.release(shard);
    }
}

/// What a read waits for (idle accounting).
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    /// The connection's idle watch.
    pub side: Side,
    /// The limit and the end reported if it strikes.
    pub deadline: Deadline,
}

/// Receive more bytes into `buf` (at least one, or 0 at end of stream): a plain `recv`
/// if the socket may have something, else (or after a `WouldBlock`) a wait for its
/// readiness first. Errors with `OutOfMemory` kind if the buffer is full.
pub async fn fill<T: Transport>(
    shard: &Shard,
    socket: &T,
    buf: &mut Buffer,
    capacity: usize,
    watch: &IdleWatch,
    wait: Wait,
) -> io::Result<usize> {
    if !buf.make_room(shard, capacity) {
        return Err(io::Error::new(io::ErrorKind::OutOfMemory, "buffer full"));
    }
    let mut try_now = socket.may_read();
    loop {
        if try_now {
            match socket.recv(&mut buf.data[buf.end..]) {
                Ok(n) => {
                    buf.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        try_now = true;
        let _waiting = watch.waiting(wait.side, wait.deadline);
        socket.readable().await;
    }
}

/// Receive what `socket` has right now into `buf`, without waiting: `Ok(0)` at end of
/// stream, `WouldBlock` when nothing is there.
pub fn fill_now<T: Transport>(
    shard: &Shard,
    socket: &T,
    buf: &mut Buffer,
    capacity: usize,
) -> io::Result<usize> {
    if !buf.make_room(shard, capacity) {
        return Err(io::Error::new(io::ErrorKind::OutOfMemory, "buffer full"));
    }
    let n = socket.recv(&mut buf.data[buf.end..])?;
    buf.end += n;
    Ok(n)
}

/// Write all of `data`: directly while the socket takes it, awaiting room when full.
/// Progress after a wait touches the idle watch. Returns once everything is on the
/// socket (for TLS: encrypted and flushed, nothing left queued in the stream).
pub async fn write_all<T: Transport>(
    socket: &T,
    mut data: &[u8],
    watch: &IdleWatch,
    wait: Wait,
) -> io::Result<()> {
    let mut waited = false;
    loop {
        // Once all is taken, what the stream still queues (TLS records) must reach the
        // socket too: the peer may wait for it while we go on to read (a plain socket
        // queues nothing: `flush` is `Ok` at once).
        let step = if data.is_empty() {
            socket.flush().map(|()| None)
        } else {
            socket.send(data).map(Some)
        };
        match step {
            Ok(None) => {
                if waited {
                    watch.touch();
                }
                break;
            }
            Ok(Some(n)) => {
                if waited {
                    watch.touch();
                }
                data = &data[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                waited = true;
                let _waiting = watch.waiting(wait.side, wait.deadline);
                socket.writable().await;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
