//! One side of a proxied connection as the data plane handles it: a plain socket, or a
//! TLS connection over one (terminated from a client, or originated to a server).
//!
//! [`Stream`] is what the L4 and L7 paths, the server pool and the tunnels carry, so one
//! code path serves plain and TLS connections: it implements
//! [`Transport`](crate::tls::stream::Transport) by handing each call to the stream
//! inside. Only a plain stream can be spliced ([`Transport::as_plain`]): TLS records have
//! to be decrypted and encrypted in user memory.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

use crate::l4::idle::{Deadline, IdleWatch, Side};
use crate::l4::socket::Socket;
use crate::tls::stream::{ClientTls, ServerTls, TlsSocket, Transport};

/// A plain or TLS stream (see the module documentation).
pub enum Stream {
    /// Plain TCP.
    Plain(Socket),
    /// TLS terminated here: a client's connection to a frontend's `tls` listener (boxed:
    /// rustls' state is large, and most streams are plain).
    Terminated(Box<ServerTls>),
    /// TLS originated here: a connection to a server with `tls = true`.
    Originated(Box<ClientTls>),
}

impl Stream {
    /// The socket's descriptor (to cut the connection, or register it for the sweep).
    pub fn fd(&self) -> RawFd {
        self.socket().fd()
    }

    /// Whether the stream is TLS (either direction).
    pub fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }

    /// Whether the TLS session resumed an earlier one (false for plain streams).
    pub fn resumed(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Terminated(t) => t.resumed(),
            Stream::Originated(t) => t.resumed(),
        }
    }

    /// TLS termination on an accepted `socket` with a shard's `config`; the handshake is
    /// still to be done ([`Stream::accept_handshake`]).
    pub fn terminate(socket: Socket, config: Arc<ServerConfig>) -> io::Result<Stream> {
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(Stream::Terminated(Box::new(TlsSocket::new(socket, conn))))
    }

    /// Complete the handshake of a terminated stream (nothing to do for others). The
    /// whole handshake is one idle wait of the client side, bounded by `deadline`: a
    /// client that stalls mid-handshake is cut by the shard's sweep like any idle
    /// client, and never holds up another connection.
    pub async fn accept_handshake(&self, watch: &IdleWatch, deadline: Deadline) -> io::Result<()> {
        let Stream::Terminated(tls) = self else {
            return Ok(());
        };
        let _waiting = watch.waiting(Side::Upstream, deadline);
        tls.handshake().await
    }

    /// TLS to a server over the connected `socket`, as `name` (SNI and the name its
    /// certificate must show), handshake included, within `limit`.
    pub async fn originate(
        socket: Socket,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        limit: Duration,
    ) -> io::Result<Stream> {
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let tls = TlsSocket::new(socket, conn);
        match glommio::timer::timeout(limit, async { Ok(tls.handshake().await) }).await {
            Ok(Ok(())) => Ok(Stream::Originated(Box::new(tls))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("TLS handshake not done within {limit:?}"),
            )),
        }
    }
}

impl From<Socket> for Stream {
    fn from(socket: Socket) -> Stream {
        Stream::Plain(socket)
    }
}

impl Transport for Stream {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => Transport::recv(s, buf),
            Stream::Terminated(t) => t.recv(buf),
            Stream::Originated(t) => t.recv(buf),
        }
    }

    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => Transport::send(s, buf),
            Stream::Terminated(t) => t.send(buf),
            Stream::Originated(t) => t.send(buf),
        }
    }

    fn flush(&self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Terminated(t) => t.flush(),
            Stream::Originated(t) => t.flush(),
        }
    }

    fn may_read(&self) -> bool {
        match self {
            Stream::Plain(s) => Transport::may_read(s),
            Stream::Terminated(t) => t.may_read(),
            Stream::Originated(t) => t.may_read(),
        }
    }

    async fn readable(&self) {
        match self {
            Stream::Plain(s) => Transport::readable(s).await,
            Stream::Terminated(t) => t.readable().await,
            Stream::Originated(t) => t.readable().await,
        }
    }

    async fn writable(&self) {
        match self {
            Stream::Plain(s) => Transport::writable(s).await,
            Stream::Terminated(t) => t.writable().await,
            Stream::Originated(t) => t.writable().await,
        }
    }

    fn shutdown(&self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => Transport::shutdown(s),
            Stream::Terminated(t) => t.shutdown(),
            Stream::Originated(t) => t.shutdown(),
        }
    }

    fn socket(&self) -> &Socket {
        match self {
            Stream::Plain(s) => s,
            Stream::Terminated(t) => t.get_ref(),
            Stream::Originated(t) => t.get_ref(),
        }
    }

    fn as_plain(&self) -> Option<&Socket> {
        match self {
            Stream::Plain(s) => Some(s),
            _ => None,
        }
    }
}
