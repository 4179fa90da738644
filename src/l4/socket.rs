//! One side of a proxied connection: a socket used with plain non-blocking syscalls, that
//! becomes a glommio stream only the first time something has to be awaited on it.
//!
//! glommio arms an io_uring readability poll for every stream it is handed, and each of
//! its partial reads arms another one at once; on a short connection most of those polls
//! are never needed. So data moves with `recv`/`send` directly, and only a `WouldBlock`
//! creates (once) the glommio stream whose poll is then the wait. A read wait asks glommio
//! for exactly one byte — a read that fills its buffer arms nothing more — and the rest is
//! taken with a plain `recv`.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

use crate::sys;

enum Inner {
    /// Not awaited on yet.
    Raw(OwnedFd),
    /// Handed to glommio (which now owns the descriptor).
    Stream(TcpStream),
    /// Only during the hand-over.
    Moving,
}

/// A connected, non-blocking TCP socket. Borrowed by both directions of a connection;
/// the inner state is borrowed only within one call or one poll, never across an await.
pub struct Socket {
    fd: RawFd,
    inner: RefCell<Inner>,
}

impl Socket {
    /// A socket from an owned, non-blocking descriptor.
    pub fn from_fd(fd: OwnedFd) -> Socket {
        Socket {
            fd: fd.as_raw_fd(),
            inner: RefCell::new(Inner::Raw(fd)),
        }
    }

    /// A socket glommio already holds (its accept fallback). It must be non-blocking.
    pub fn from_stream(stream: TcpStream) -> Socket {
        Socket {
            fd: stream.as_raw_fd(),
            inner: RefCell::new(Inner::Stream(stream)),
        }
    }

    /// The descriptor (valid as long as this socket lives).
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    fn with_stream<R>(&self, f: impl FnOnce(&mut TcpStream) -> R) -> R {
        let mut inner = self.inner.borrow_mut();
        if let Inner::Raw(_) = &*inner {
            if let Inner::Raw(fd) = std::mem::replace(&mut *inner, Inner::Moving) {
                *inner = Inner::Stream(sys::glommio_stream(fd));
            }
        }
        match &mut *inner {
            Inner::Stream(stream) => f(stream),
            _ => unreachable!("a socket is raw or a stream"),
        }
    }

    /// Await readability and read into `buf` through glommio (callers pass one byte).
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.with_stream(|s| Pin::new(s).poll_read(cx, buf))
    }

    /// Await writability and write `buf` through glommio.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.with_stream(|s| Pin::new(s).poll_write(cx, buf))
    }
}
