//! Listening sockets, built with socket2 so that every shard binds its own
//! SO_REUSEPORT listener per address (the kernel then spreads connections over shards),
//! with SO_REUSEADDR (restart while old connections linger in TIME_WAIT) and IP_FREEBIND
//! (bind a VIP that VRRP has not put on the box yet).

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// A listener could not be set up: names the address and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Another process (or another frontend) already listens there.
    #[error("cannot listen on {address} (frontend {frontend}): address already in use — stop the other process or change `bind`")]
    InUse {
        /// The frontend being bound.
        frontend: String,
        /// The address.
        address: SocketAddr,
    },
    /// Ports below 1024 need root or CAP_NET_BIND_SERVICE.
    #[error("cannot listen on {address} (frontend {frontend}): permission denied — ports below 1024 need root or CAP_NET_BIND_SERVICE (the packaged systemd unit grants it)")]
    Permission {
        /// The frontend being bound.
        frontend: String,
        /// The address.
        address: SocketAddr,
    },
    /// Anything else.
    #[error("cannot listen on {address} (frontend {frontend}): {source}")]
    Other {
        /// The frontend being bound.
        frontend: String,
        /// The address.
        address: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
}

fn classify(frontend: &str, address: SocketAddr, e: io::Error) -> ListenError {
    let frontend = frontend.to_string();
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => ListenError::InUse { frontend, address },
        Some(libc::EACCES) | Some(libc::EPERM) => ListenError::Permission { frontend, address },
        _ => ListenError::Other {
            frontend,
            address,
            source: e,
        },
    }
}

fn new_socket(address: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let domain = if address.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::STREAM.cloexec(), Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listener: one setsockopt here instead
    // of one per connection.
    socket.set_nodelay(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
        socket.set_freebind_ipv6(true)?;
    } else {
        socket.set_freebind(true)?;
    }
    Ok(socket)
}

/// Check that nobody listens on `address` yet: a bind without SO_REUSEPORT fails if any
/// socket (even a SO_REUSEPORT one of another process) holds the port.
pub fn probe(frontend: &str, address: SocketAddr) -> Result<(), ListenError> {
    let socket = new_socket(address, false).map_err(|e| classify(frontend, address, e))?;
    socket
        .bind(&address.into())
        .map_err(|e| classify(frontend, address, e))?;
    socket
        .listen(1)
        .map_err(|e| classify(frontend, address, e))?;
    Ok(())
}

/// One shard's listener on `address`.
pub fn bind(frontend: &str, address: SocketAddr, backlog: u32) -> Result<Socket, ListenError> {
    let socket = new_socket(address, true).map_err(|e| classify(frontend, address, e))?;
    socket
        .bind(&address.into())
        .map_err(|e| classify(frontend, address, e))?;
    socket
        .listen(backlog.min(i32::MAX as u32) as i32)
        .map_err(|e| classify(frontend, address, e))?;
    // Shards accept with a plain accept4 and await readability (epoll) when nothing is
    // waiting; that needs a non-blocking listener.
    socket
        .set_nonblocking(true)
        .map_err(|e| classify(frontend, address, e))?;
    Ok(socket)
}
