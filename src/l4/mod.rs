//! L4 (`mode tcp`): one accepted connection, from server choice to the closing log line.
//!
//! Per connection: pick a server with the backend's balancer, connect within
//! `timeouts.connect`, retry on failure (another server when `redispatch`), then forward
//! both directions concurrently — zero-copy splice when the backend allows it and the
//! shard has pipes, copying otherwise. One side's end of stream becomes a `shutdown(WR)`
//! on the other (half-close); the connection ends when both directions are done, or at
//! the first error or idle timeout.

pub mod idle;
pub mod pipes;
pub mod pump;
pub mod socket;

use std::cell::Cell;
use std::fmt;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::balance::PickContext;
use crate::config::Backend;
use crate::runtime::shard::{Shard, ShardView};
use crate::stream::Stream;
use crate::sys;
use crate::tls::stream::Transport;
use idle::{Deadline, IdleWatch, Side};
use pump::{Direction, Limits, PumpError};
use socket::Socket;

/// How a connection ended, as written in the access log (`end=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both directions reached end of stream.
    Closed,
    /// The client was idle past `timeouts.client`.
    ClientTimeout,
    /// The server was idle past `timeouts.server`.
    ServerTimeout,
    /// No server accepted the connection within `retries`.
    ConnectFailed,
    /// The backend had no usable server.
    NoServer,
    /// The client side failed (reset, ...).
    ClientError,
    /// The server side failed (reset, ...).
    ServerError,
    /// Cut at the end of the shutdown grace period.
    Shutdown,
    /// L7: the request head did not arrive within `timeouts.http_request` (→ 408).
    RequestTimeout,
    /// L7: no new request within `timeouts.http_keep_alive` (closed silently).
    KeepAliveTimeout,
    /// L7: a tunnel (after `101 Switching Protocols`) idle past `timeouts.tunnel`.
    TunnelTimeout,
    /// The client's TLS handshake failed (no common version, cipher or ALPN protocol, a
    /// bad certificate alert, garbage instead of a ClientHello, a close mid-handshake).
    TlsHandshakeFailed,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            End::Closed => "closed",
            End::ClientTimeout => "client_timeout",
            End::ServerTimeout => "server_timeout",
            End::ConnectFailed => "connect_failed",
            End::NoServer => "no_server",
            End::ClientError => "client_error",
            End::ServerError => "server_error",
            End::Shutdown => "shutdown",
            End::RequestTimeout => "request_timeout",
            End::KeepAliveTimeout => "keep_alive_timeout",
            End::TunnelTimeout => "tunnel_timeout",
            End::TlsHandshakeFailed => "tls_handshake_failed",
        })
    }
}

/// What the closing log line says about one connection.
struct Record<'a> {
    client: Option<SocketAddr>,
    frontend: &'a str,
    backend: &'a str,
    server: &'a str,
    bytes_in: u64,
    bytes_out: u64,
    started: Instant,
    retries: u32,
    end: End,
}

impl Record<'_> {
    fn log(&self) {
        let client = OrDash(self.client);
        tracing::info!(
            target: "halb::access",
            "client={} frontend={} backend={} server={} bytes_in={} bytes_out={} duration_ms={} retries={} end={}",
            client,
            self.frontend,
            self.backend,
            self.server,
            self.bytes_in,
            self.bytes_out,
            self.started.elapsed().as_millis(),
            self.retries,
            self.end
        );
    }
}

/// Displays the value, or `-` when there is none (formatted in place, no allocation).
pub(crate) struct OrDash<T>(pub Option<T>);

impl<T: fmt::Display> fmt::Display for OrDash<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// Serve one accepted client connection of frontend `frontend_name` to its end (on the
/// snapshot in force when it starts).
pub async fn serve(
    client: Stream,
    peer: Option<SocketAddr>,
    shard: Rc<Shard>,
    frontend_name: Rc<str>,
) {
    let started = Instant::now();
    let view = shard.view();
    let Some(frontend_index) = view.snapshot.frontend_index(&frontend_name) else {
        return;
    };
    let config = &view.snapshot.config;
    let frontend = &config.frontends[frontend_index];
    let frontend_slot = view.snapshot.frontend_stats[frontend_index];
    let backend_slot = |b: usize| view.snapshot.backends[b].stats;
    // A tcp frontend always has one (the configuration checks it).
    let backend_index = frontend
        .default_backend_index
        .expect("tcp frontends have a default backend");
    let backend = &config.backends[backend_index];
    // TCP_NODELAY: inherited from the listener (see runtime::listener).
    let (ticket, tracked) = shard.connections.register(client.fd());
    shard.stats.session_started(frontend_slot);

    let mut record = Record {
        client: peer,
        frontend: &frontend.name,
        backend: &backend.name,
        server: "-",
        bytes_in: 0,
        bytes_out: 0,
        started,
        retries: 0,
        end: End::Closed,
    };

    let ctx = PickContext {
        client_ip: peer.map(|a| a.ip()),
        ..Default::default()
    };
    // TLS termination: the handshake first, as an idle wait of the client.
    let handshake = Deadline {
        limit: frontend.timeouts.client,
        end: End::ClientTimeout,
    };
    let shaken = client.accept_handshake(&tracked.idle, handshake).await;
    count_handshake(&shard, frontend_slot, &client, shaken.is_ok());
    let handshaken = match shaken {
        Ok(()) => true,
        Err(e) => {
            record.end = tls_failure_end(&tracked.idle, &shard);
            tracing::debug!(
                target: "halb::tls",
                "frontend {}: client {}: TLS handshake failed: {e}",
                frontend.name,
                OrDash(peer)
            );
            false
        }
    };
    let connected = if handshaken {
        Some(connect(&shard, &view, backend_index, backend, &ctx).await)
    } else {
        None
    };
    match connected {
        None => {}
        Some(Err((end, retries))) => {
            record.end = end;
            record.retries = retries;
        }
        Some(Ok((server, server_index, retries))) => {
            record.server = &backend.servers[server_index].name;
            record.retries = retries;
            let server_slot = Shard::server_slot(&view, backend_index, server_index);
            shard
                .connections
                .attach_server(&tracked, server.fd(), server_slot);
            shard.stats.session_started(backend_slot(backend_index));
            shard.stats.session_started(server_slot);
            view.balancer(backend_index)
                .connection_started(server_index);
            let idle = IdleLimits {
                client: Deadline {
                    limit: frontend.timeouts.client,
                    end: End::ClientTimeout,
                },
                server: Deadline {
                    limit: backend.timeouts.server,
                    end: End::ServerTimeout,
                },
                splice: backend.splice,
            };
            let (end, bytes_in, bytes_out) =
                forward(&shard, &tracked.idle, &client, &server, idle).await;
            shard.connection_ended(&view, backend_index, server_index);
            for slot in [backend_slot(backend_index), server_slot] {
                shard.stats.session_ended(slot);
                shard.stats.update(slot, |c| {
                    c.bytes_in += bytes_in;
                    c.bytes_out += bytes_out;
                });
            }
            record.end = end;
            record.bytes_in = bytes_in;
            record.bytes_out = bytes_out;
        }
    }
    shard.stats.session_ended(frontend_slot);
    shard.stats.update(frontend_slot, |c| {
        c.bytes_in += record.bytes_in;
        c.bytes_out += record.bytes_out;
    });
    // Connections still open at the hard stop were cut by it: their sockets were shut
    // down, which both directions see as an ordinary end of stream.
    if shard.hard_stopping() {
        record.end = End::Shutdown;
    }
    shard.connections.unregister(ticket);
    record.log();
}

/// Pick and connect a server, retrying per the backend's `retries` and `redispatch`.
/// Returns the stream, the server's index and the number of retries used. Connection
/// errors, retries and redispatches are counted in the shard's stats, and observed
/// (`observe`).
async fn connect(
    shard: &Shard,
    view: &ShardView,
    backend_index: usize,
    backend: &Backend,
    ctx: &PickContext<'_>,
) -> Result<(Stream, usize, u32), (End, u32)> {
    let mut tried: Vec<usize> = Vec::new();
    let mut retries = 0u32;
    let mut last: Option<usize> = None;
    loop {
        let pick = match (backend.redispatch, last) {
            // Without redispatch a retry goes back to the same server.
            (false, Some(previous)) => Some(previous),
            _ => {
                let mut balancer = view.balancer(backend_index);
                balancer
                    .pick(ctx, &tried)
                    // Every server was tried once: start over among all of them.
                    .or_else(|| {
                        if tried.is_empty() {
                            None
                        } else {
                            balancer.pick(ctx, &[])
                        }
                    })
            }
        };
        let Some(index) = pick else {
            let end = if tried.is_empty() {
                End::NoServer
            } else {
                End::ConnectFailed
            };
            return Err((end, retries));
        };
        let address = backend.servers[index].address;
        if retries > 0 {
            let redispatched = last != Some(index);
            for slot in [
                view.snapshot.backends[backend_index].stats,
                Shard::server_slot(view, backend_index, index),
            ] {
                shard.stats.update(slot, |c| {
                    c.retries += 1;
                    c.redispatches += u64::from(redispatched);
                });
            }
        }
        match connect_server(view, backend_index, backend, index).await {
            Ok(stream) => {
                shard.observe(view, backend_index, index, false, false);
                return Ok((stream, index, retries));
            }
            Err(e) => {
                for slot in [
                    view.snapshot.backends[backend_index].stats,
                    Shard::server_slot(view, backend_index, index),
                ] {
                    shard.stats.update(slot, |c| c.connection_errors += 1);
                }
                shard.observe(view, backend_index, index, true, false);
                tracing::debug!(
                    "backend {} server {} ({}): connect failed: {}",
                    backend.name,
                    backend.servers[index].name,
                    address,
                    e
                );
                if !tried.contains(&index) {
                    tried.push(index);
                }
                last = Some(index);
                if retries >= backend.retries {
                    return Err((End::ConnectFailed, retries));
                }
                retries += 1;
            }
        }
    }
}

/// Connect to server `index` of backend `backend_index` (as indexed in `view`): TCP
/// within the backend's `timeouts.connect`, then, for a server with `tls = true`, the
/// TLS handshake (verification per `verify`, `sni`) within that limit again. A failed
/// handshake (wrong CA, a server that does not speak TLS) is a failed connection, retried
/// and counted like a refused one.
pub(crate) async fn connect_server(
    view: &ShardView,
    backend_index: usize,
    backend: &Backend,
    index: usize,
) -> std::io::Result<Stream> {
    let server = &backend.servers[index];
    let socket = connect_one(server.address, backend.timeouts.connect).await?;
    let Some(tls) = &server.tls else {
        return Ok(Stream::Plain(socket));
    };
    let _ = sys::set_nodelay(socket.fd());
    let config = view
        .origination(backend_index, index)
        .ok_or_else(|| std::io::Error::other("no TLS configuration for this server"))?;
    let name = crate::tls::server::server_name(tls, server.address);
    Stream::originate(socket, Arc::clone(config), name, backend.timeouts.connect)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("TLS: {e}")))
}

/// Count a client's TLS handshake (nothing for a plain connection) in the stats of the
/// frontend in slot `frontend_slot`: completed (and resumed), or failed.
pub(crate) fn count_handshake(shard: &Shard, frontend_slot: usize, client: &Stream, ok: bool) {
    if !client.is_tls() {
        return;
    }
    let resumed = ok && client.resumed();
    shard.stats.update(frontend_slot, |c| {
        if ok {
            c.tls_handshakes += 1;
            c.tls_resumed += u64::from(resumed);
        } else {
            c.tls_handshake_failures += 1;
        }
    });
}

/// How a connection whose TLS handshake failed ended: a timeout if the sweep cut it,
/// the hard stop, or [`End::TlsHandshakeFailed`].
pub(crate) fn tls_failure_end(idle: &IdleWatch, shard: &Shard) -> End {
    if shard.hard_stopping() {
        End::Shutdown
    } else {
        idle.expired().unwrap_or(End::TlsHandshakeFailed)
    }
}

/// Connect to `address` within `limit`: a non-blocking `connect(2)`, then a zero-length
/// `send`, which says whether the handshake is done (at once on loopback), failed, or is
/// still in progress — only then is writability awaited (shard reactor), under a timer.
pub(crate) async fn connect_one(
    address: SocketAddr,
    limit: std::time::Duration,
) -> std::io::Result<Socket> {
    let socket = Socket::connected(sys::connect_start(address)?)?;
    match socket.send(&[]) {
        Ok(_) => return Ok(socket),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    let established = glommio::timer::timeout(limit, async {
        loop {
            socket.writable().await;
            match socket.send(&[]) {
                Ok(_) => return Ok(()),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(glommio::GlommioError::from(e)),
            }
        }
    })
    .await;
    match established {
        Ok(()) => Ok(socket),
        Err(glommio::GlommioError::TimedOut(_)) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {limit:?}"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Idle limits of a forwarded connection (L4, or an L7 tunnel after an upgrade).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdleLimits {
    /// While waiting on the client (to send, or to take data).
    pub client: Deadline,
    /// While waiting on the server.
    pub server: Deadline,
    /// Whether bulk directions may switch to splice.
    pub splice: bool,
}

/// Forward both directions until both are done; returns how it ended and the bytes
/// client→server and server→client. Either side may be TLS (then that side's direction
/// copies: only plain to plain may splice).
pub(crate) async fn forward<C: Transport, S: Transport>(
    shard: &Shard,
    idle: &IdleWatch,
    client: &C,
    server: &S,
    limits: IdleLimits,
) -> (End, u64, u64) {
    let _ = sys::set_nodelay(server.socket().fd());
    let upstream = Limits {
        side: Side::Upstream,
        source_idle: limits.client,
        destination_idle: limits.server,
        splice: limits.splice,
    };
    let downstream = Limits {
        side: Side::Downstream,
        source_idle: limits.server,
        destination_idle: limits.client,
        splice: limits.splice,
    };
    idle.touch();
    let bytes_in = Cell::new(0u64);
    let bytes_out = Cell::new(0u64);
    let first_failure: Cell<Option<End>> = Cell::new(None);
    let up_done = Cell::new(false);
    let down_done = Cell::new(false);
    let (client_fd, server_fd) = (client.socket().fd(), server.socket().fd());

    // On a failure, cut both sockets so the other direction wakes up and ends too.
    let fail = |end: End| {
        if first_failure.get().is_none() {
            first_failure.set(Some(end));
        }
        let _ = sys::shutdown(client_fd, Shutdown::Both);
        let _ = sys::shutdown(server_fd, Shutdown::Both);
    };
    let up = async {
        let mut dir = Direction::new(shard, client, server, upstream, idle, &bytes_in);
        match dir.run().await {
            Ok(()) => half_close(server, idle, upstream, &down_done, &up_done).await,
            Err(e) => fail(match e {
                PumpError::Source(_) => End::ClientError,
                PumpError::Destination(_) => End::ServerError,
            }),
        }
        dir.stats
    };
    let down = async {
        let mut dir = Direction::new(shard, server, client, downstream, idle, &bytes_out);
        match dir.run().await {
            Ok(()) => half_close(client, idle, downstream, &up_done, &down_done).await,
            Err(e) => fail(match e {
                PumpError::Source(_) => End::ServerError,
                PumpError::Destination(_) => End::ClientError,
            }),
        }
        dir.stats
    };
    let (up_stats, down_stats) = futures_lite::future::zip(up, down).await;
    tracing::debug!(
        target: "halb::l4",
        "forwarding: client->server {} bytes ({} spliced, {} congested waits), server->client {} bytes ({} spliced, {} congested waits)",
        bytes_in.get(),
        up_stats.spliced,
        up_stats.congested,
        bytes_out.get(),
        down_stats.spliced,
        down_stats.congested
    );
    // An idle timeout cut the sockets: the directions saw an end of stream or an error,
    // but the timeout is what ended the connection.
    let end = idle
        .expired()
        .or(first_failure.get())
        .unwrap_or(End::Closed);
    (end, bytes_in.get(), bytes_out.get())
}

/// A direction reached a clean end of stream: pass it on to its destination as a
/// half-close (a FIN; for TLS, close_notify first), unless the other direction is
/// finished too (then both sockets are about to be closed anyway). Waiting for room to
/// send the close is an idle wait of the direction.
async fn half_close<T: Transport>(
    destination: &T,
    idle: &IdleWatch,
    limits: Limits,
    other_done: &Cell<bool>,
    me_done: &Cell<bool>,
) {
    me_done.set(true);
    if !other_done.get() {
        let _waiting = idle.waiting(limits.side, limits.destination_idle);
        let _ = destination.close().await;
    }
}
