//! A TLS connection driven over a shard's non-blocking [`Socket`], sans-io style: rustls
//! holds the protocol state, this module moves its records with the socket's own
//! `recv`/`send` (so the reactor's readiness bookkeeping stays exact) and waits for
//! readiness the same way a plain socket does. The handshake runs on the shard that
//! accepted (or opened) the connection and never leaves it.
//!
//! [`Transport`] is what the data plane needs from a stream, implemented by both
//! [`Socket`] (plain) and [`TlsSocket`], so the HTTP path ([`crate::l7::io`]) works on
//! either.
//!
//! Rules kept here:
//!
//! - both directions of a connection share one `TlsSocket` on one thread; the rustls
//!   state is in a `RefCell` that is never borrowed across an `.await`;
//! - memory per connection stays small: rustls' own buffers (its default limits), and
//!   [`Transport::send`] accepts new plaintext only once the TLS records of the previous
//!   send are all on the socket, so the outgoing buffer holds at most one send's worth;
//! - plaintext is copied once, out of rustls into the caller's buffer;
//! - TLS output produced while reading (handshake messages, alerts, key updates) is
//!   flushed right there when the socket has room; what does not fit stays queued and
//!   goes out with the next `send`, `flush`, `writable` or `recv`. The reading side never
//!   waits for write readiness (and the writing side never for read readiness): the
//!   reactor keeps one waker per interest per socket, so a reader waiting for room would
//!   take the writer's place. Only [`TlsSocket::handshake`], which runs alone, waits for
//!   both (one after the other).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::ops::DerefMut;

use rustls::{
    ClientConnection, ConnectionCommon, HandshakeKind, ProtocolVersion, ServerConnection,
    SupportedCipherSuite,
};

use crate::l4::socket::Socket;
use crate::sys;

/// Most plaintext taken by one [`Transport::send`] on a TLS stream: one full record.
/// With the rule that a send first flushes everything queued before, a connection whose
/// socket is full keeps at most one record queued (the syscalls are the same as with
/// bigger chunks: rustls writes one record per `send`).
pub const SEND_CHUNK: usize = 16 * 1024;

/// What the data plane needs from one side of a connection: non-blocking reads and
/// writes, and readiness. Implemented by a plain [`Socket`] and by a [`TlsSocket`].
///
/// Both directions may use one stream at the same time (one reads, one writes) from the
/// same thread.
pub trait Transport {
    /// Read what is there now into `buf`: `Ok(0)` at end of stream, `WouldBlock` when
    /// nothing is there yet.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Take (a prefix of) `buf` now: the count taken, or `WouldBlock` when there is no
    /// room. Bytes taken may still be queued inside the stream: see [`Transport::flush`].
    fn send(&self, buf: &[u8]) -> io::Result<usize>;

    /// Put everything taken by [`Transport::send`] on the wire, now: `WouldBlock` if some
    /// of it has to wait for room ([`Transport::writable`] then flushes it). Always
    /// `Ok` on a plain socket (it queues nothing).
    fn flush(&self) -> io::Result<()>;

    /// Whether a [`Transport::recv`] may find something now (false when the stream is
    /// known to have nothing until the next event).
    fn may_read(&self) -> bool;

    /// Resolves when a read may find something (at once if it may now).
    fn readable(&self) -> impl Future<Output = ()> + '_;

    /// Resolves when a write may make progress (a TLS stream first flushes what it has
    /// queued, and resolves once that is done or fails).
    fn writable(&self) -> impl Future<Output = ()> + '_;

    /// End our direction gracefully, now: a plain socket sends its FIN
    /// (`shutdown(SHUT_WR)`); a TLS stream queues `close_notify`, flushes it and then
    /// sends the FIN. `WouldBlock` when queued records have to wait for room: call it
    /// again after [`Transport::writable`] (or use [`Transport::close`]).
    fn shutdown(&self) -> io::Result<()>;

    /// [`Transport::shutdown`], awaiting room as long as needed (no timeout of its own).
    fn close(&self) -> impl Future<Output = io::Result<()>> + '_ {
        async move {
            loop {
                match self.shutdown() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable().await,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => return other,
                }
            }
        }
    }

    /// The socket underneath (its descriptor, to cut the connection).
    fn socket(&self) -> &Socket;

    /// The plain socket, when the stream is one: only then may bytes be spliced.
    fn as_plain(&self) -> Option<&Socket> {
        None
    }
}

impl Transport for Socket {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        Socket::recv(self, buf)
    }

    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        Socket::send(self, buf)
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }

    fn may_read(&self) -> bool {
        Socket::may_read(self)
    }

    fn readable(&self) -> impl Future<Output = ()> + '_ {
        Socket::readable(self)
    }

    fn writable(&self) -> impl Future<Output = ()> + '_ {
        Socket::writable(self)
    }

    fn shutdown(&self) -> io::Result<()> {
        sys::shutdown(self.fd(), Shutdown::Write)
    }

    fn socket(&self) -> &Socket {
        self
    }

    fn as_plain(&self) -> Option<&Socket> {
        Some(self)
    }
}

/// `io::Read`/`io::Write` over a [`Socket`] for rustls' `read_tls`/`write_tls`, through
/// the socket's own `recv`/`send` (which keep its readiness up to date).
struct Wire<'a>(&'a Socket);

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A TLS connection over a [`Socket`]: `C` is [`rustls::ServerConnection`] (termination,
/// see [`ServerTls`]) or [`rustls::ClientConnection`] (TLS to a server, see
/// [`ClientTls`]).
///
/// Call [`TlsSocket::handshake`] first (bounded by the caller's timeout), then use it as
/// a [`Transport`].
pub struct TlsSocket<C> {
    socket: Socket,
    conn: RefCell<C>,
    /// Decrypted bytes waiting in rustls.
    plaintext: Cell<usize>,
    /// The peer's side has ended (close_notify or TCP end of stream): a read answers at
    /// once (`Ok(0)`, or `UnexpectedEof` for a truncation).
    at_end: Cell<bool>,
    /// A TLS error happened (the alert was queued): reads and writes fail.
    failed: Cell<bool>,
    /// close_notify queued; FIN sent.
    close_queued: Cell<bool>,
    fin_sent: Cell<bool>,
}

/// The server side of a TLS connection (termination of a client's TLS).
pub type ServerTls = TlsSocket<ServerConnection>;

/// The client side of a TLS connection (TLS to a backend server).
pub type ClientTls = TlsSocket<ClientConnection>;

fn failed_error() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "TLS connection failed earlier")
}

impl<C, D> TlsSocket<C>
where
    C: DerefMut<Target = ConnectionCommon<D>>,
{
    /// A TLS connection over `socket`, with rustls state `conn` (fresh: nothing read or
    /// written yet; a client connection has its ClientHello queued).
    pub fn new(socket: Socket, conn: C) -> TlsSocket<C> {
        TlsSocket {
            socket,
            conn: RefCell::new(conn),
            plaintext: Cell::new(0),
            at_end: Cell::new(false),
            failed: Cell::new(false),
            close_queued: Cell::new(false),
            fin_sent: Cell::new(false),
        }
    }

    /// Drive the handshake to completion: reads and writes as needed, awaiting the
    /// socket's readiness. Ends with the handshake's last messages (and TLS 1.3 session
    /// tickets) flushed. Errors: `InvalidData` for a TLS error (its alert sent when the
    /// socket takes it; the rustls error is the inner error), `UnexpectedEof` when the
    /// peer closes first, or the socket's error. Never resolves while the peer sends
    /// nothing: the caller bounds it with its timeout.
    pub async fn handshake(&self) -> io::Result<()> {
        loop {
            match self.flush_now() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.socket.writable().await;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if self.failed.get() {
                return Err(failed_error());
            }
            if !self.conn.borrow().is_handshaking() {
                return Ok(());
            }
            if self.at_end.get() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed during the TLS handshake",
                ));
            }
            let read = self.conn.borrow_mut().read_tls(&mut Wire(&self.socket));
            match read {
                Ok(0) => self.at_end.set(true),
                Ok(_) => self.process()?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.socket.readable().await,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Process the records read; on a TLS error, mark the connection failed, flush the
    /// alert if the socket takes it and return the error as `InvalidData`.
    fn process(&self) -> io::Result<()> {
        let mut conn = self.conn.borrow_mut();
        match conn.process_new_packets() {
            Ok(state) => {
                self.plaintext.set(state.plaintext_bytes_to_read());
                if state.peer_has_closed() {
                    self.at_end.set(true);
                }
                Ok(())
            }
            Err(e) => {
                self.failed.set(true);
                drop(conn);
                let _ = self.flush_now();
                Err(io::Error::new(io::ErrorKind::InvalidData, e))
            }
        }
    }

    /// Write queued TLS records to the socket until none is left (`Ok`) or it is full
    /// (`WouldBlock`).
    fn flush_now(&self) -> io::Result<()> {
        let mut conn = self.conn.borrow_mut();
        while conn.wants_write() {
            match conn.write_tls(&mut Wire(&self.socket)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether a read answers at once without the socket: plaintext is waiting, the peer
    /// has ended, or the connection failed.
    fn answers_now(&self) -> bool {
        self.plaintext.get() > 0 || self.at_end.get() || self.failed.get()
    }

    /// Copy waiting plaintext into `buf`: `Ok(0)` after close_notify, `UnexpectedEof`
    /// after a TCP end without it, `WouldBlock` if none.
    fn read_plaintext(&self, conn: &mut C, buf: &mut [u8]) -> io::Result<usize> {
        let n = conn.reader().read(buf)?;
        self.plaintext.set(self.plaintext.get().saturating_sub(n));
        Ok(n)
    }

    /// The underlying socket.
    pub fn get_ref(&self) -> &Socket {
        &self.socket
    }

    /// Whether the handshake is still in progress.
    pub fn is_handshaking(&self) -> bool {
        self.conn.borrow().is_handshaking()
    }

    /// The negotiated protocol version (after the handshake).
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.conn.borrow().protocol_version()
    }

    /// The negotiated cipher suite (after the handshake).
    pub fn cipher_suite(&self) -> Option<SupportedCipherSuite> {
        self.conn.borrow().negotiated_cipher_suite()
    }

    /// The protocol agreed by ALPN, if any.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.conn.borrow().alpn_protocol().map(<[u8]>::to_vec)
    }

    /// Whether the handshake resumed an earlier session (false before it completes).
    pub fn resumed(&self) -> bool {
        self.conn.borrow().handshake_kind() == Some(HandshakeKind::Resumed)
    }

    /// Look at the rustls connection (peer certificates, exporter, ...). Do no I/O
    /// through it.
    pub fn with_connection<R>(&self, f: impl FnOnce(&C) -> R) -> R {
        f(&self.conn.borrow())
    }
}

impl TlsSocket<ServerConnection> {
    /// The server name the client asked for (SNI), if it sent one.
    pub fn server_name(&self) -> Option<String> {
        self.conn.borrow().server_name().map(str::to_owned)
    }
}

impl<C, D> Transport for TlsSocket<C>
where
    C: DerefMut<Target = ConnectionCommon<D>>,
{
    /// Plaintext now: what rustls holds, then as many records as the socket has ready
    /// (up to `buf`'s size). The socket is read only while it may have data; the first
    /// read is always tried when nothing is buffered (like a plain `recv`).
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.borrow_mut();
        let mut total = 0;
        let mut first = true;
        loop {
            if self.plaintext.get() > 0 || (self.at_end.get() && !self.failed.get()) {
                match self.read_plaintext(&mut conn, &mut buf[total..]) {
                    Ok(n) if n > 0 => {
                        total += n;
                        if total == buf.len() {
                            return Ok(total);
                        }
                        continue;
                    }
                    // End of stream (clean or not) after some bytes: those first.
                    _ if total > 0 => return Ok(total),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    other => return other,
                }
            }
            if self.failed.get() {
                return if total > 0 {
                    Ok(total)
                } else {
                    Err(failed_error())
                };
            }
            if !first && !self.socket.may_read() {
                return if total > 0 {
                    Ok(total)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            first = false;
            match conn.read_tls(&mut Wire(&self.socket)) {
                Ok(0) => {
                    self.at_end.set(true);
                    continue;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drop(conn);
                    // Anything queued while reading goes out now if it can.
                    let _ = self.flush_now();
                    return if total > 0 { Ok(total) } else { Err(e) };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The bytes already copied first; the error comes again (or as an end
                // of stream) at the next read.
                Err(_) if total > 0 => return Ok(total),
                Err(e) => return Err(e),
            }
            drop(conn);
            match self.process() {
                Ok(()) => {}
                // The next read reports the failure.
                Err(_) if total > 0 => return Ok(total),
                Err(e) => return Err(e),
            }
            // Handshake messages, key-update answers: best effort (the rest stays
            // queued for the next send, flush or writable).
            let _ = self.flush_now();
            conn = self.conn.borrow_mut();
        }
    }

    /// Flush what is queued first (`WouldBlock` if it does not all fit), then encrypt up
    /// to [`SEND_CHUNK`] bytes of `buf` and flush as much as the socket takes. The bytes
    /// counted as taken may still be queued: see [`Transport::flush`]. `NotConnected`
    /// before the handshake is complete.
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        if self.failed.get() {
            return Err(failed_error());
        }
        self.flush_now()?;
        if buf.is_empty() {
            return Ok(0);
        }
        let take = buf.len().min(SEND_CHUNK);
        let n = {
            let mut conn = self.conn.borrow_mut();
            if conn.is_handshaking() {
                // rustls would buffer it until its limit, then take nothing while the
                // socket has room: a writer would spin. Handshake first.
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "TLS handshake not complete",
                ));
            }
            conn.writer().write(&buf[..take])?
        };
        if n == 0 {
            // Only with a rustls buffer limit set below one record by the connection's
            // owner (nothing is queued here): report it rather than a zero-length write.
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "rustls buffer limit below one record",
            ));
        }
        match self.flush_now() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    fn flush(&self) -> io::Result<()> {
        self.flush_now()
    }

    fn may_read(&self) -> bool {
        self.answers_now() || self.socket.may_read()
    }

    /// At once if plaintext (or the end) is waiting; else flushes what it can of the
    /// queued records (without waiting for room) and awaits the socket's readability.
    // `async fn` would capture `D` as well and ask for `D: '_`.
    #[allow(clippy::manual_async_fn)]
    fn readable(&self) -> impl Future<Output = ()> + '_ {
        async move {
            if self.answers_now() {
                return;
            }
            let _ = self.flush_now();
            self.socket.readable().await;
        }
    }

    /// Flushes the queued records, awaiting room as needed; resolves once none is left
    /// (or the socket failed: the next send reports it).
    #[allow(clippy::manual_async_fn)]
    fn writable(&self) -> impl Future<Output = ()> + '_ {
        async move {
            loop {
                match self.flush_now() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.socket.writable().await,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    _ => return,
                }
            }
        }
    }

    fn shutdown(&self) -> io::Result<()> {
        if !self.close_queued.get() {
            self.close_queued.set(true);
            self.conn.borrow_mut().send_close_notify();
        }
        self.flush_now()?;
        if !self.fin_sent.get() {
            self.fin_sent.set(true);
            sys::shutdown(self.socket.fd(), Shutdown::Write)?;
        }
        Ok(())
    }

    fn socket(&self) -> &Socket {
        &self.socket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::{TcpListener, TcpStream};
    use std::os::fd::OwnedFd;
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    use futures_lite::future;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::{ClientConfig, RootCertStore, ServerConfig};

    use crate::l4::idle::{Deadline, IdleWatch, Side};
    use crate::l4::End;
    use crate::l7::io::{write_all, Wait};
    use crate::runtime::testing::on_fresh_executor;

    const MIB: usize = 1024 * 1024;

    /// A test CA and a certificate for `localhost` signed by it (generated, never stored).
    struct Pki {
        ca: CertificateDer<'static>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivatePkcs8KeyDer<'static>,
    }

    fn pki() -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        Pki {
            ca: ca.der().clone(),
            chain: vec![leaf.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }

    fn server_config(pki: &Pki, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(pki.chain.clone(), PrivateKeyDer::Pkcs8(pki.key.clone_key()))
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    fn client_config(pki: &Pki, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca.clone()).unwrap();
        let mut config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    fn client_conn(config: &Arc<ClientConfig>) -> ClientConnection {
        ClientConnection::new(
            Arc::clone(config),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap()
    }

    /// What most tests start with: server and client configs (no ALPN) over one test
    /// PKI, and a connected loopback pair (accepted side, client side).
    fn tls_pair() -> (Arc<ServerConfig>, Arc<ClientConfig>, TcpStream, TcpStream) {
        let pki = pki();
        let (accepted, client) = tcp_pair();
        (
            server_config(&pki, &[]),
            client_config(&pki, &[]),
            accepted,
            client,
        )
    }

    /// A connected loopback pair: (accepted side, client side).
    fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        (accepted, client)
    }

    /// The accepted stream as a shard socket (call on the executor).
    fn shard_socket(stream: TcpStream) -> Socket {
        stream.set_nonblocking(true).unwrap();
        Socket::accepted(OwnedFd::from(stream)).unwrap()
    }

    fn wait() -> Wait {
        Wait {
            side: Side::Downstream,
            deadline: Deadline {
                limit: Duration::from_secs(60),
                end: End::ClientTimeout,
            },
        }
    }

    /// Await a read of up to `buf.len()` bytes the way `l7::io::fill` does.
    async fn read_some<T: Transport>(t: &T, buf: &mut [u8]) -> io::Result<usize> {
        let mut try_now = t.may_read();
        loop {
            if try_now {
                match t.recv(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    other => return other,
                }
            }
            try_now = true;
            t.readable().await;
        }
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
            .collect()
    }

    /// Client of the echo test: a non-blocking rustls client that sends `data` and reads
    /// as much back at the same time, then closes with close_notify and expects the
    /// server's close_notify.
    fn echo_client(mut sock: TcpStream, mut conn: ClientConnection, data: &[u8]) -> Vec<u8> {
        sock.set_nonblocking(true).unwrap();
        let mut sent = 0;
        let mut got = Vec::with_capacity(data.len());
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < data.len() {
            let mut progress = false;
            if sent < data.len() {
                let end = data.len().min(sent + 16 * 1024);
                let n = conn.writer().write(&data[sent..end]).unwrap();
                sent += n;
                progress |= n > 0;
            }
            while conn.wants_write() {
                match conn.write_tls(&mut sock) {
                    Ok(_) => progress = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("client write: {e}"),
                }
            }
            match conn.read_tls(&mut sock) {
                Ok(0) => panic!("server closed early"),
                Ok(_) => {
                    conn.process_new_packets().unwrap();
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("client read: {e}"),
            }
            loop {
                match conn.reader().read(&mut buf) {
                    Ok(0) => panic!("close_notify before the echo"),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("client plaintext: {e}"),
                }
            }
            if !progress {
                thread::sleep(Duration::from_micros(200));
            }
        }
        sock.set_nonblocking(false).unwrap();
        conn.send_close_notify();
        let mut stream = rustls::Stream::new(&mut conn, &mut sock);
        stream.flush().unwrap();
        // The server answers our close_notify with its own.
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        got
    }

    #[test]
    fn echo_one_mib_both_ways_then_close_notify() {
        let (server_cfg, client_cfg, accepted, client) = tls_pair();
        let data = pattern(MIB, 7);
        let expected = data.clone();
        let peer = thread::spawn(move || echo_client(client, client_conn(&client_cfg), &data));
        let echoed = on_fresh_executor(|| async move {
            let tls = TlsSocket::new(
                shard_socket(accepted),
                ServerConnection::new(server_cfg).unwrap(),
            );
            tls.handshake().await.unwrap();
            assert!(!tls.is_handshaking());
            assert!(!tls.resumed());
            let watch = IdleWatch::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut echoed = 0;
            loop {
                let n = read_some(&tls, &mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                write_all(&tls, &buf[..n], &watch, wait()).await.unwrap();
                echoed += n;
            }
            // Ok(0) again, not an error, once close_notify came.
            assert_eq!(tls.recv(&mut buf).unwrap(), 0);
            assert!(tls.may_read());
            tls.close().await.unwrap();
            echoed
        });
        assert_eq!(echoed, MIB);
        let got = peer.join().unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "echoed bytes differ");
    }

    #[test]
    fn alpn_sni_version_and_resumption_are_visible() {
        let pki = pki();
        let server_cfg = server_config(&pki, &[b"http/1.1"]);
        let client_cfg = client_config(&pki, &[b"h2", b"http/1.1"]);
        // Both connections on one shard (the second resumes the first's session).
        on_fresh_executor(|| async move {
            for round in 0..2 {
                let (accepted, mut client) = tcp_pair();
                let cfg = Arc::clone(&client_cfg);
                let peer = thread::spawn(move || {
                    let mut conn = client_conn(&cfg);
                    let mut stream = rustls::Stream::new(&mut conn, &mut client);
                    stream.write_all(b"ping").unwrap();
                    let mut answer = [0u8; 4];
                    stream.read_exact(&mut answer).unwrap();
                    assert_eq!(&answer, b"pong");
                    conn.send_close_notify();
                    conn.complete_io(&mut client).unwrap();
                });
                let tls = ServerTls::new(
                    shard_socket(accepted),
                    ServerConnection::new(Arc::clone(&server_cfg)).unwrap(),
                );
                tls.handshake().await.unwrap();
                assert_eq!(tls.alpn_protocol().as_deref(), Some(&b"http/1.1"[..]));
                assert_eq!(tls.server_name().as_deref(), Some("localhost"));
                assert_eq!(tls.protocol_version(), Some(ProtocolVersion::TLSv1_3));
                assert!(tls.cipher_suite().is_some());
                let mut buf = [0u8; 4];
                let mut got = 0;
                while got < 4 {
                    got += read_some(&tls, &mut buf[got..]).await.unwrap();
                }
                assert_eq!(&buf, b"ping");
                let watch = IdleWatch::new();
                write_all(&tls, b"pong", &watch, wait()).await.unwrap();
                assert_eq!(read_some(&tls, &mut buf).await.unwrap(), 0);
                // The first connection is a full handshake; the second resumes it (the
                // client kept the ticket it read during the first).
                assert_eq!(tls.resumed(), round == 1, "round {round}");
                peer.join().unwrap();
            }
        });
    }

    #[test]
    fn garbage_instead_of_a_client_hello_fails_the_handshake() {
        let pki = pki();
        let server_cfg = server_config(&pki, &[]);
        let (accepted, mut client) = tcp_pair();
        let peer = thread::spawn(move || {
            client
                .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            // The server answers an alert (or nothing) and closes: no hang.
            let mut rest = Vec::new();
            let _ = client.read_to_end(&mut rest);
            rest
        });
        let err = on_fresh_executor(|| async move {
            let tls = ServerTls::new(
                shard_socket(accepted),
                ServerConnection::new(server_cfg).unwrap(),
            );
            let err = tls.handshake().await.unwrap_err();
            // Reads fail afterwards too, at once.
            let mut buf = [0u8; 16];
            assert!(tls.may_read());
            assert_eq!(
                tls.recv(&mut buf).unwrap_err().kind(),
                io::ErrorKind::InvalidData
            );
            err
        });
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .is_some());
        let alert = peer.join().unwrap();
        // A TLS alert record (content type 21) went out before the close.
        assert_eq!(alert.first(), Some(&21), "{alert:?}");
    }

    #[test]
    fn a_stalled_handshake_stays_pending_without_spinning() {
        let (server_cfg, client_cfg, accepted, mut client) = tls_pair();
        let (release, released) = mpsc::channel::<()>();
        let peer = thread::spawn(move || {
            let mut hello = Vec::new();
            client_conn(&client_cfg).write_tls(&mut hello).unwrap();
            // Half of the ClientHello, then nothing.
            client.write_all(&hello[..hello.len() / 2]).unwrap();
            let _ = released.recv();
        });
        let polls = on_fresh_executor(|| async move {
            let tls = ServerTls::new(
                shard_socket(accepted),
                ServerConnection::new(server_cfg).unwrap(),
            );
            let polls = Cell::new(0u32);
            let mut handshake = std::pin::pin!(tls.handshake());
            let counted = future::poll_fn(|cx| {
                polls.set(polls.get() + 1);
                handshake.as_mut().poll(cx).map(Some)
            });
            let timer = async {
                glommio::timer::sleep(Duration::from_millis(300)).await;
                None
            };
            let outcome = future::or(counted, timer).await;
            assert!(outcome.is_none(), "handshake ended: {outcome:?}");
            assert!(tls.is_handshaking());
            polls.get()
        });
        release.send(()).unwrap();
        peer.join().unwrap();
        // Polled when started and (at most) once per readiness event: never in a loop.
        assert!(polls <= 3, "handshake polled {polls} times");
    }

    #[test]
    fn tcp_close_without_close_notify_is_an_error() {
        let (server_cfg, client_cfg, accepted, mut client) = tls_pair();
        let peer = thread::spawn(move || {
            let mut conn = client_conn(&client_cfg);
            let mut stream = rustls::Stream::new(&mut conn, &mut client);
            stream.write_all(b"truncated").unwrap();
            stream.flush().unwrap();
            // No close_notify: just the TCP FIN.
            client.shutdown(Shutdown::Write).unwrap();
        });
        let (data, err) = on_fresh_executor(|| async move {
            let tls = ServerTls::new(
                shard_socket(accepted),
                ServerConnection::new(server_cfg).unwrap(),
            );
            tls.handshake().await.unwrap();
            let mut buf = [0u8; 64];
            let mut data = Vec::new();
            let err = loop {
                match read_some(&tls, &mut buf).await {
                    Ok(0) => panic!("a truncation read as a clean end"),
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                    Err(e) => break e,
                }
            };
            // Sticky: the next read says the same at once.
            assert!(tls.may_read());
            assert_eq!(
                tls.recv(&mut buf).unwrap_err().kind(),
                io::ErrorKind::UnexpectedEof
            );
            (data, err)
        });
        peer.join().unwrap();
        assert_eq!(data, b"truncated");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    }

    #[test]
    fn close_notify_reads_as_end_of_stream() {
        let (server_cfg, client_cfg, accepted, mut client) = tls_pair();
        let peer = thread::spawn(move || {
            let mut conn = client_conn(&client_cfg);
            let mut stream = rustls::Stream::new(&mut conn, &mut client);
            stream.write_all(b"bye").unwrap();
            conn.send_close_notify();
            conn.complete_io(&mut client).unwrap();
            // Keep the TCP connection open: the end comes from TLS alone.
            let mut rest = Vec::new();
            let _ = client.read_to_end(&mut rest);
        });
        let data = on_fresh_executor(|| async move {
            let tls = ServerTls::new(
                shard_socket(accepted),
                ServerConnection::new(server_cfg).unwrap(),
            );
            tls.handshake().await.unwrap();
            let mut buf = [0u8; 64];
            let mut data = Vec::new();
            loop {
                match read_some(&tls, &mut buf).await.unwrap() {
                    0 => break,
                    n => data.extend_from_slice(&buf[..n]),
                }
            }
            tls.close().await.unwrap();
            data
        });
        peer.join().unwrap();
        assert_eq!(data, b"bye");
    }

    #[test]
    fn send_stops_taking_bytes_when_the_peer_does_not_read() {
        let (server_cfg, client_cfg, accepted, mut client) = tls_pair();
        let (release, released) = mpsc::channel::<()>();
        let peer = thread::spawn(move || {
            let mut conn = client_conn(&client_cfg);
            conn.complete_io(&mut client).unwrap();
            // Handshake done; now read nothing until released.
            let _ = released.recv();
        });
        on_fresh_executor(|| async move {
            let tls = ServerTls::new(
                shard_socket(accepted),
                ServerConnection::new(server_cfg).unwrap(),
            );
            tls.handshake().await.unwrap();
            let chunk = vec![0x5a; SEND_CHUNK];
            let mut taken = 0usize;
            loop {
                match tls.send(&chunk) {
                    Ok(n) => {
                        assert!(n <= SEND_CHUNK);
                        taken += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
                assert!(taken < 256 * MIB, "send never pushed back");
            }
            // Full: nothing more is taken, and flush says so too.
            assert_eq!(
                tls.send(&chunk).unwrap_err().kind(),
                io::ErrorKind::WouldBlock
            );
            assert_eq!(tls.flush().unwrap_err().kind(), io::ErrorKind::WouldBlock);
            // What is queued is at most one chunk's records.
            let queued = tls.with_connection(|c| c.wants_write());
            assert!(queued);
            // The writable wait does not resolve while the peer reads nothing.
            let outcome = future::or(
                async {
                    tls.writable().await;
                    Some(())
                },
                async {
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                    None
                },
            )
            .await;
            assert!(outcome.is_none());
        });
        release.send(()).unwrap();
        peer.join().unwrap();
    }

    #[test]
    fn client_side_round_trip() {
        let pki = pki();
        let server_cfg = server_config(&pki, &[b"http/1.1"]);
        let client_cfg = client_config(&pki, &[b"http/1.1"]);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut conn = ServerConnection::new(server_cfg).unwrap();
            let mut stream = rustls::Stream::new(&mut conn, &mut sock);
            let mut request = [0u8; 4];
            stream.read_exact(&mut request).unwrap();
            assert_eq!(&request, b"ping");
            stream.write_all(b"pong").unwrap();
            // Our client closes with close_notify: a clean end.
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty());
            conn.send_close_notify();
            conn.complete_io(&mut sock).unwrap();
        });
        let answer = on_fresh_executor(move || async move {
            let socket = Socket::connected(sys::connect_start(addr).unwrap()).unwrap();
            let tls = ClientTls::new(socket, client_conn(&client_cfg));
            tls.handshake().await.unwrap();
            assert_eq!(tls.alpn_protocol().as_deref(), Some(&b"http/1.1"[..]));
            let watch = IdleWatch::new();
            write_all(&tls, b"ping", &watch, wait()).await.unwrap();
            let mut buf = [0u8; 16];
            let mut answer = Vec::new();
            while answer.len() < 4 {
                let n = read_some(&tls, &mut buf).await.unwrap();
                assert!(n > 0, "server closed early");
                answer.extend_from_slice(&buf[..n]);
            }
            tls.close().await.unwrap();
            assert_eq!(read_some(&tls, &mut buf).await.unwrap(), 0);
            answer
        });
        peer.join().unwrap();
        assert_eq!(answer, b"pong");
    }
}
