//! Buffers and socket I/O of the HTTP proxy.
//!
//! Same approach as L4 ([`crate::l4::socket`]): data moves with plain non-blocking
//! `recv`/`send`; only when a socket has nothing to give (or no room) is the wait handed
//! to glommio — a one-byte read (readability) or a write (writability) — while the
//! connection's [`IdleWatch`] knows what it waits for, so the shard's sweep enforces the
//! timeouts without a timer per wait.

use std::io;

use futures_lite::future::poll_fn;

use crate::l4::idle::{Deadline, IdleWatch, Side};
use crate::l4::socket::Socket;
use crate::runtime::shard::{Shard, COPY_BUFFER};
use crate::sys;

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

/// Receive more bytes into `buf` (at least one, or 0 at end of stream). With
/// `try_first`, a plain `recv` is tried before waiting; callers that know nothing can be
/// there yet (they just sent a request) skip it. Errors with `OutOfMemory` kind if the
/// buffer is full.
pub async fn fill(
    shard: &Shard,
    socket: &Socket,
    buf: &mut Buffer,
    capacity: usize,
    watch: &IdleWatch,
    wait: Wait,
    try_first: bool,
) -> io::Result<usize> {
    if !buf.make_room(shard, capacity) {
        return Err(io::Error::new(io::ErrorKind::OutOfMemory, "buffer full"));
    }
    if try_first {
        loop {
            match sys::recv_now(socket.fd(), &mut buf.data[buf.end..]) {
                Ok(n) => {
                    buf.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    let got = {
        let _waiting = watch.waiting(wait.side, wait.deadline);
        let end = buf.end;
        let first = &mut buf.data[end..end + 1];
        poll_fn(|cx| socket.poll_read(cx, first)).await?
    };
    if got == 0 {
        return Ok(0);
    }
    buf.end += 1;
    match sys::recv_now(socket.fd(), &mut buf.data[buf.end..]) {
        Ok(n) => {
            buf.end += n;
            Ok(1 + n)
        }
        // Nothing more yet, or an end of stream right after that byte (seen next time).
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted =>
        {
            Ok(1)
        }
        Err(e) => Err(e),
    }
}

/// Receive what `socket` has right now into `buf`, without waiting: `Ok(0)` at end of
/// stream, `WouldBlock` when nothing is there.
pub fn fill_now(
    shard: &Shard,
    socket: &Socket,
    buf: &mut Buffer,
    capacity: usize,
) -> io::Result<usize> {
    if !buf.make_room(shard, capacity) {
        return Err(io::Error::new(io::ErrorKind::OutOfMemory, "buffer full"));
    }
    let n = sys::recv_now(socket.fd(), &mut buf.data[buf.end..])?;
    buf.end += n;
    Ok(n)
}

/// Write all of `data`: directly while the socket takes it, through glommio otherwise.
/// Progress touches the idle watch.
pub async fn write_all(
    socket: &Socket,
    mut data: &[u8],
    watch: &IdleWatch,
    wait: Wait,
) -> io::Result<()> {
    while !data.is_empty() {
        match sys::send_now(socket.fd(), data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let _waiting = watch.waiting(wait.side, wait.deadline);
                while !data.is_empty() {
                    let n = poll_fn(|cx| socket.poll_write(cx, data)).await?;
                    if n == 0 {
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    watch.touch();
                    data = &data[n..];
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
