//! One direction of an L4 connection: bytes from `src` to `dst` until `src` ends.
//!
//! Two implementations: [`splice`] moves pages socket → pipe → socket without copying them
//! through user memory; [`copy`] reads into a buffer and writes it out. Both wait through
//! glommio (io_uring) and never block the shard's thread, and both stop at the first
//! error or when the connection has been idle too long.

use std::cell::RefCell;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::time::Duration;

use futures_lite::future::poll_fn;
use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

use super::idle::{until_idle, Activity, WaitError};
use crate::sys::{self, Pipe};

/// How a direction stopped, when it did not reach a clean end of stream.
#[derive(Debug)]
pub enum PumpError {
    /// The source sent nothing while the connection was idle for its timeout.
    SourceIdle,
    /// The destination took nothing while the connection was idle for its timeout.
    DestinationIdle,
    /// Reading the source failed (reset, ...).
    Source(io::Error),
    /// Writing the destination failed (reset, broken pipe, ...).
    Destination(io::Error),
}

/// Limits of one direction.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Idle limit while waiting for the source to send.
    pub source_idle: Duration,
    /// Idle limit while waiting for the destination to take data.
    pub destination_idle: Duration,
}

/// Statistics of the splice path, for the closing log and benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpliceStats {
    /// Times the destination was full and bytes went through the copy bridge.
    pub bridged: u64,
}

/// Forward `src` → `dst` through `pipe` with splice(2). Both sockets must be O_NONBLOCK.
/// Returns the bytes moved once `src` reached end of stream (the caller then shuts down
/// `dst`'s write side).
pub async fn splice(
    src: &TcpStream,
    dst: &TcpStream,
    pipe: &mut Pipe,
    chunk: usize,
    limits: Limits,
    activity: &Activity,
    moved: &std::cell::Cell<u64>,
    stats: &mut SpliceStats,
) -> Result<(), PumpError> {
    let src_fd = src.as_raw_fd();
    let dst_fd = dst.as_raw_fd();
    // Created only if the destination is ever full (see `bridge`).
    let mut writer: Option<TcpStream> = None;
    let mut bridge_buf: Vec<u8> = Vec::new();
    loop {
        match pipe.fill_from(src_fd, chunk) {
            Ok(0) => return Ok(()),
            Ok(_) => activity.touch(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The pipe is empty here, so the socket has nothing: await readability
                // without consuming anything (a 1-byte MSG_PEEK through io_uring).
                let mut probe = [0u8; 1];
                until_idle(limits.source_idle, activity, async {
                    src.peek(&mut probe).await.map_err(io::Error::from)
                })
                .await
                .map_err(|e| match e {
                    WaitError::Idle => PumpError::SourceIdle,
                    WaitError::Io(e) => PumpError::Source(e),
                })?;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PumpError::Source(e)),
        }
        while pipe.buffered > 0 {
            match pipe.drain_into(dst_fd) {
                Ok(n) => {
                    moved.set(moved.get() + n as u64);
                    activity.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The destination's send buffer is full. glommio exposes writability
                    // only through its own write path, so move one chunk out of the pipe
                    // and write it with glommio (on a dup of the socket, as `dst` is
                    // shared with the other direction); then resume splicing.
                    stats.bridged += 1;
                    if writer.is_none() {
                        writer =
                            Some(sys::dup_glommio_stream(dst_fd).map_err(PumpError::Destination)?);
                        bridge_buf = vec![0u8; 64 * 1024];
                    }
                    let n = pipe.read_out(&mut bridge_buf).map_err(PumpError::Source)?;
                    let w = writer.as_mut().expect("created above");
                    write_all_idle(w, &bridge_buf[..n], limits.destination_idle, activity).await?;
                    moved.set(moved.get() + n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PumpError::Destination(e)),
            }
        }
    }
}

async fn write_all_idle(
    w: &mut TcpStream,
    mut buf: &[u8],
    limit: Duration,
    activity: &Activity,
) -> Result<(), PumpError> {
    while !buf.is_empty() {
        let n = until_idle(
            limit,
            activity,
            poll_fn(|cx| Pin::new(&mut *w).poll_write(cx, buf)),
        )
        .await
        .map_err(|e| match e {
            WaitError::Idle => PumpError::DestinationIdle,
            WaitError::Io(e) => PumpError::Destination(e),
        })?;
        if n == 0 {
            return Err(PumpError::Destination(io::ErrorKind::WriteZero.into()));
        }
        activity.touch();
        buf = &buf[n..];
    }
    Ok(())
}

/// Forward `src` → `dst` by copying through `buf`. The streams sit in `RefCell`s shared
/// with the other direction; each is borrowed only inside one poll, never across an await.
pub async fn copy(
    src: &RefCell<TcpStream>,
    dst: &RefCell<TcpStream>,
    buf: &mut [u8],
    limits: Limits,
    activity: &Activity,
    moved: &std::cell::Cell<u64>,
) -> Result<(), PumpError> {
    loop {
        let n = until_idle(
            limits.source_idle,
            activity,
            poll_fn(|cx| Pin::new(&mut *src.borrow_mut()).poll_read(cx, buf)),
        )
        .await
        .map_err(|e| match e {
            WaitError::Idle => PumpError::SourceIdle,
            WaitError::Io(e) => PumpError::Source(e),
        })?;
        if n == 0 {
            return Ok(());
        }
        activity.touch();
        let mut out = &buf[..n];
        while !out.is_empty() {
            let w = until_idle(
                limits.destination_idle,
                activity,
                poll_fn(|cx| Pin::new(&mut *dst.borrow_mut()).poll_write(cx, out)),
            )
            .await
            .map_err(|e| match e {
                WaitError::Idle => PumpError::DestinationIdle,
                WaitError::Io(e) => PumpError::Destination(e),
            })?;
            if w == 0 {
                return Err(PumpError::Destination(io::ErrorKind::WriteZero.into()));
            }
            moved.set(moved.get() + w as u64);
            activity.touch();
            out = &out[w..];
        }
    }
}
