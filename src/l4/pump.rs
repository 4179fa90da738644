//! One direction of an L4 connection: bytes from `src` to `dst` until `src` ends.
//!
//! A direction starts by copying (a plain non-blocking `recv` into a pooled buffer, a
//! plain `send` out): for the small exchanges of short connections that is the fewest
//! syscalls. When a `recv` fills the whole buffer the stream is bulk, and — if the backend
//! allows splicing and the shard has a pipe free — the direction switches to zero-copy:
//! socket → pipe → socket with `splice(2)`, pages moved, never copied through user memory.
//!
//! Waits go through glommio (io_uring), see [`super::socket`]: readability by a one-byte
//! glommio read (copy mode) or a 1-byte `MSG_PEEK` receive (splice mode, where nothing
//! may be consumed), writability by glommio's write. The `MSG_PEEK` wait is an async call
//! that holds its stream for the whole wait, so a spliced direction peeks on a duplicate
//! of its source socket, made when it switches. Descriptors: a spliced direction holds a
//! pipe (two) and that duplicate (one); a copying one nothing extra.

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;

use futures_lite::future::poll_fn;
use glommio::net::TcpStream;

use super::idle::{Deadline, IdleWatch, Side};
use super::socket::Socket;
use crate::runtime::shard::Shard;
use crate::sys::{self, Pipe};

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
    /// Times the destination was full and bytes were written through glommio.
    pub congested: u64,
}

/// The state of one direction.
pub struct Direction<'a> {
    shard: &'a Shard,
    src: &'a Socket,
    dst: &'a Socket,
    src_fd: RawFd,
    dst_fd: RawFd,
    limits: Limits,
    watch: &'a IdleWatch,
    moved: &'a Cell<u64>,
    /// A duplicate of the source socket to await readability on while splicing.
    peeker: Option<TcpStream>,
    pipe: Option<Pipe>,
    /// Counters.
    pub stats: PumpStats,
}

impl<'a> Direction<'a> {
    /// A direction from `src` to `dst`, counting moved bytes in `moved`.
    pub fn new(
        shard: &'a Shard,
        src: &'a Socket,
        dst: &'a Socket,
        limits: Limits,
        watch: &'a IdleWatch,
        moved: &'a Cell<u64>,
    ) -> Direction<'a> {
        let src_fd = src.fd();
        let dst_fd = dst.fd();
        Direction {
            shard,
            src,
            dst,
            src_fd,
            dst_fd,
            limits,
            watch,
            moved,
            peeker: None,
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
            if bulk && self.limits.splice && self.start_splicing() {
                return self.splice_loop().await;
            }
        }
    }

    /// Read what the source has into a pooled buffer: a plain `recv`; when nothing is
    /// there, the buffer goes back to the pool and a one-byte read through glommio awaits
    /// the data (one io_uring poll), then a `recv` takes the rest. Returns the buffer and
    /// the bytes in it (0 at end of stream).
    async fn read_chunk(&mut self) -> Result<(Vec<u8>, usize), PumpError> {
        let mut buf = self.shard.take_buffer();
        loop {
            match sys::recv_now(self.src_fd, &mut buf) {
                Ok(n) => return Ok((buf, n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.shard.give_back_buffer(buf);
                    return Err(PumpError::Source(e));
                }
            }
        }
        self.shard.give_back_buffer(buf);
        let src = self.src;
        let mut first = [0u8; 1];
        let got = {
            let _waiting = self
                .watch
                .waiting(self.limits.side, self.limits.source_idle);
            poll_fn(|cx| src.poll_read(cx, &mut first))
                .await
                .map_err(PumpError::Source)?
        };
        let mut buf = self.shard.take_buffer();
        if got == 0 {
            return Ok((buf, 0));
        }
        buf[0] = first[0];
        match sys::recv_now(self.src_fd, &mut buf[1..]) {
            Ok(n) => Ok((buf, 1 + n)),
            // Nothing more yet, or the end of stream right after that byte (seen next time).
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                Ok((buf, 1))
            }
            Err(e) => {
                self.shard.give_back_buffer(buf);
                Err(PumpError::Source(e))
            }
        }
    }

    /// Take a pipe and a duplicate of the source to peek on (both sockets are already
    /// non-blocking, which splice needs: it honours only O_NONBLOCK).
    fn start_splicing(&mut self) -> bool {
        let Some(pipe) = self.shard.take_pipe() else {
            return false;
        };
        match sys::dup_glommio_stream(self.src_fd) {
            Ok(peeker) => {
                self.peeker = Some(peeker);
                self.pipe = Some(pipe);
                true
            }
            Err(_) => {
                self.shard.give_back_pipe(pipe);
                false
            }
        }
    }

    async fn splice_loop(&mut self) -> Result<(), PumpError> {
        let (src_fd, dst_fd) = (self.src_fd, self.dst_fd);
        let chunk = self.shard.pipe_chunk();
        loop {
            let pipe = self.pipe.as_mut().expect("splicing");
            match pipe.fill_from(src_fd, chunk) {
                Ok(0) => return Ok(()),
                Ok(_) => self.watch.touch(),
                // The pipe is empty here, so it is the socket that has nothing.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
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
                        // Destination full: move one buffer's worth out of the pipe and
                        // let glommio write it when the socket has room, then splice on.
                        let mut buf = self.shard.take_buffer();
                        let got = pipe.read_out(&mut buf).map_err(PumpError::Source);
                        let result = match got {
                            Ok(n) => self.write_waiting(&buf[..n]).await,
                            Err(e) => Err(e),
                        };
                        self.shard.give_back_buffer(buf);
                        result?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(PumpError::Destination(e)),
                }
            }
        }
    }

    /// Await readability of the source without consuming anything (splice mode).
    async fn wait_readable(&mut self) -> Result<(), PumpError> {
        let mut probe = [0u8; 1];
        let src = self.peeker.as_ref().expect("splicing");
        let _waiting = self
            .watch
            .waiting(self.limits.side, self.limits.source_idle);
        src.peek(&mut probe)
            .await
            .map(|_| ())
            .map_err(|e| PumpError::Source(e.into()))
    }

    /// Write all of `data`: directly while the socket takes it, through glommio otherwise.
    async fn write_all(&mut self, mut data: &[u8]) -> Result<(), PumpError> {
        let dst_fd = self.dst_fd;
        while !data.is_empty() {
            match sys::send_now(dst_fd, data) {
                Ok(n) => {
                    self.moved.set(self.moved.get() + n as u64);
                    data = &data[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return self.write_waiting(data).await;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PumpError::Destination(e)),
            }
        }
        Ok(())
    }

    /// Write `data` through glommio, which awaits writability (io_uring poll) as needed.
    async fn write_waiting(&mut self, mut data: &[u8]) -> Result<(), PumpError> {
        self.stats.congested += 1;
        let dst = self.dst;
        let _waiting = self
            .watch
            .waiting(self.limits.side, self.limits.destination_idle);
        while !data.is_empty() {
            let n = poll_fn(|cx| dst.poll_write(cx, data))
                .await
                .map_err(PumpError::Destination)?;
            if n == 0 {
                return Err(PumpError::Destination(io::ErrorKind::WriteZero.into()));
            }
            self.moved.set(self.moved.get() + n as u64);
            self.watch.touch();
            data = &data[n..];
        }
        Ok(())
    }
}
