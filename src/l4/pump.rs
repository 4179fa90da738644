//! One direction of an L4 connection: bytes from `src` to `dst` until `src` ends.
//!
//! A direction starts by copying (a plain non-blocking `recv` into a pooled buffer, a
//! plain `send` out): for the small exchanges of short connections that is the fewest
//! syscalls. When a `recv` fills the whole buffer the stream is bulk, and — if the backend
//! allows splicing and the shard has a pipe free — the direction switches to zero-copy:
//! socket → pipe → socket with `splice(2)`, pages moved, never copied through user memory.
//!
//! Waits (nothing to read, no room to write) go through the shard's epoll reactor, see
//! [`super::socket`]: a `WouldBlock` clears the socket's readiness, the wait resolves at
//! the next event, then the syscall is tried again. A spliced direction holds a pipe (two
//! descriptors); a copying one nothing extra.

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;

use super::idle::{Deadline, IdleWatch, Side};
use super::socket::Socket;
use crate::runtime::reactor::Interest;
use crate::runtime::shard::Shard;
use crate::sys::Pipe;
use crate::tls::stream::Transport;

/// How a direction stopped, when it did not reach a clean end of stream. (Idle timeouts
/// are not errors of a direction: the shard's sweep marks the connection, see
/// [`super::idle`].)
#[derive(Debug)]
pub enum PumpError {
    /// Reading the source failed (reset, ...).
    Source(io::Error),
    /// Writing the destination failed (reset, broken pipe, ...).
    Destination(io::Error),
}

/// Fixed parameters of one direction.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Which direction this is (its slot in the connection's [`IdleWatch`]).
    pub side: Side,
    /// Idle limit (and resulting end) while waiting for the source to send.
    pub source_idle: Deadline,
    /// Idle limit (and resulting end) while waiting for the destination to take data.
    pub destination_idle: Deadline,
    /// Whether this direction may switch to splice when the stream turns out to be bulk.
    pub splice: bool,
}

/// Counters of one direction (logged at debug level when the connection closes).
#[derive(Debug, Default, Clone, Copy)]
pub struct PumpStats {
    /// Bytes that went through splice (the rest were copied).
    pub spliced: u64,
    /// Times the destination was full and writability had to be awaited.
    pub congested: u64,
}

/// The state of one direction, from `S` to `D` (plain sockets or TLS streams: only a
/// direction between two plain sockets may splice).
pub struct Direction<'a, S, D> {
    shard: &'a Shard,
    src: &'a S,
    dst: &'a D,
    /// Both ends, when both are plain sockets (splice is possible).
    plain: Option<(&'a Socket, &'a Socket)>,
    limits: Limits,
    watch: &'a IdleWatch,
    moved: &'a Cell<u64>,
    pipe: Option<Pipe>,
    /// Counters.
    pub stats: PumpStats,
}

impl<'a, S: Transport, D: Transport> Direction<'a, S, D> {
    /// A direction from `src` to `dst`, counting moved bytes in `moved`.
    pub fn new(
        shard: &'a Shard,
        src: &'a S,
        dst: &'a D,
        limits: Limits,
        watch: &'a IdleWatch,
        moved: &'a Cell<u64>,
    ) -> Direction<'a, S, D> {
        let plain = src.as_plain().zip(dst.as_plain());
        Direction {
            shard,
            src,
            dst,
            plain,
            limits,
            watch,
            moved,
            pipe: None,
            stats: PumpStats::default(),
        }
    }

    /// Forward until the source's end of stream (`Ok`) or the first failure.
    pub async fn run(&mut self) -> Result<(), PumpError> {
        let result = self.forward().await;
        if let Some(pipe) = self.pipe.take() {
            self.shard.give_back_pipe(pipe);
        }
        result
    }

    /// Copy mode. A copy buffer is held only while bytes are in flight: a direction that
    /// waits for its source holds none, so idle connections cost no buffer memory.
    async fn forward(&mut self) -> Result<(), PumpError> {
        loop {
            let (buf, n) = self.read_chunk().await?;
            if n == 0 {
                self.shard.give_back_buffer(buf);
                return Ok(());
            }
            self.watch.touch();
            let written = self.write_all(&buf[..n]).await;
            let bulk = n == buf.len();
            self.shard.give_back_buffer(buf);
            written?;
            if bulk && self.limits.splice && self.plain.is_some() && self.start_splicing() {
                return self.splice_loop().await;
            }
        }
    }

    /// Read what the source has into a pooled buffer (a plain `recv`). While nothing is
    /// there the buffer goes back to the pool and the source's readability is awaited.
    /// Returns the buffer and the bytes in it (0 at end of stream).
    async fn read_chunk(&mut self) -> Result<(Vec<u8>, usize), PumpError> {
        if !self.src.may_read() {
            // Known to be drained: no `recv` that would only say `WouldBlock`.
            self.wait_readable().await?;
        }
        loop {
            let mut buf = self.shard.take_buffer();
            loop {
                match self.src.recv(&mut buf) {
                    Ok(n) => return Ok((buf, n)),
                    // A TLS peer that closed TCP without close_notify: an end of stream
                    // here, as for HAProxy (the bytes before it were whole records).
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok((buf, 0)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.shard.give_back_buffer(buf);
                        return Err(PumpError::Source(e));
                    }
                }
            }
            self.shard.give_back_buffer(buf);
            self.wait_readable().await?;
        }
    }

    /// Take a pipe (both sockets are already non-blocking, which splice needs: it honours
    /// only O_NONBLOCK).
    fn start_splicing(&mut self) -> bool {
        match self.shard.take_pipe() {
            Some(pipe) => {
                self.pipe = Some(pipe);
                true
            }
            None => false,
        }
    }

    async fn splice_loop(&mut self) -> Result<(), PumpError> {
        let (src, dst) = self.plain.expect("splicing needs two plain sockets");
        let (src_fd, dst_fd): (RawFd, RawFd) = (src.fd(), dst.fd());
        let chunk = self.shard.pipe_chunk();
        loop {
            let pipe = self.pipe.as_mut().expect("splicing");
            match pipe.fill_from(src_fd, chunk) {
                Ok(0) => return Ok(()),
                Ok(_) => self.watch.touch(),
                // The pipe is empty here, so it is the socket that has nothing.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    src.blocked(Interest::Read);
                    self.wait_readable().await?;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(PumpError::Source(e)),
            }
            while self.pipe.as_ref().is_some_and(|p| p.buffered > 0) {
                let pipe = self.pipe.as_mut().expect("splicing");
                match pipe.drain_into(dst_fd) {
                    Ok(n) => {
                        self.moved.set(self.moved.get() + n as u64);
                        self.stats.spliced += n as u64;
                        self.watch.touch();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // Destination full: await room, then splice on.
                        dst.blocked(Interest::Write);
                        self.stats.congested += 1;
                        let _waiting = self
                            .watch
                            .waiting(self.limits.side, self.limits.destination_idle);
                        dst.writable().await;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(PumpError::Destination(e)),
                }
            }
        }
    }

    /// Await readability of the source (after a `WouldBlock`), as an idle wait.
    async fn wait_readable(&mut self) -> Result<(), PumpError> {
        let _waiting = self
            .watch
            .waiting(self.limits.side, self.limits.source_idle);
        self.src.readable().await;
        Ok(())
    }

    /// Write all of `data`: directly while the destination takes it, awaiting room when
    /// full; a TLS destination also flushes the records it queued.
    async fn write_all(&mut self, mut data: &[u8]) -> Result<(), PumpError> {
        let mut waited = false;
        loop {
            let step = if data.is_empty() {
                self.dst.flush().map(|()| None)
            } else {
                self.dst.send(data).map(Some)
            };
            match step {
                Ok(None) => break,
                Ok(Some(n)) => {
                    self.moved.set(self.moved.get() + n as u64);
                    if waited {
                        self.watch.touch();
                    }
                    data = &data[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !waited {
                        self.stats.congested += 1;
                        waited = true;
                    }
                    let _waiting = self
                        .watch
                        .waiting(self.limits.side, self.limits.destination_idle);
                    self.dst.writable().await;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PumpError::Destination(e)),
            }
        }
        Ok(())
    }
}
