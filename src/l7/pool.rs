//! Idle keep-alive connections to servers, per shard.
//!
//! After an exchange that ended cleanly (request and response complete, the server did
//! not ask to close, no stray bytes), the server connection is parked here under the
//! server's address, and a later request to the same server — from any client of this
//! shard — takes it instead of connecting. Each shard has its own pool: connections never
//! move between cores.
//!
//! A parked connection may be closed by the server at any time. For a request that could
//! not be replayed, [`ServerPool::take`] first checks with one non-blocking `recv` that
//! the connection is still open and silent; a replayable request (idempotent, body sent
//! whole) skips that syscall: if the connection turns out closed before any response
//! byte, the proxy replays the request on a fresh connection. A connection parked longer
//! than [`PROBE_AFTER`] is probed anyway. Connections idle past their backend's `pool_idle_timeout` are closed by the
//! shard's sweep ([`ServerPool::purge`]).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::stream::Stream;
use crate::tls::stream::Transport;

/// A connection parked longer than this is always probed before use, even for a
/// replayable request: a server may have sent something (an unsolicited `408`) before
/// closing it, which must not be read as the next response.
pub const PROBE_AFTER: Duration = Duration::from_millis(250);

/// One parked connection.
struct Parked {
    socket: Stream,
    parked_at: Instant,
    expires: Instant,
}

/// Which server a parked connection goes to: its address, and whether it speaks TLS
/// (`tls = true`: the connection is a TLS session, not interchangeable with plain ones).
pub type PoolKey = (SocketAddr, bool);

/// The idle server connections of one shard, by server address.
#[derive(Default)]
pub struct ServerPool {
    idle: HashMap<PoolKey, Vec<Parked>>,
    count: usize,
}

impl ServerPool {
    /// An idle connection to `address`, most recently parked first. With `probe` (or when
    /// it was parked more than [`PROBE_AFTER`] ago), only one that is still open and
    /// silent (checked with one `recv`); otherwise the caller must cope with a connection
    /// the server has just closed (by replaying the request).
    pub fn take(&mut self, address: PoolKey, probe: bool) -> Option<Stream> {
        let list = self.idle.get_mut(&address)?;
        while let Some(parked) = list.pop() {
            self.count -= 1;
            let check = probe || parked.parked_at.elapsed() > PROBE_AFTER;
            if !check || still_open(&parked.socket) {
                return Some(parked.socket);
            }
        }
        None
    }

    /// Park `socket` (to `address`) until `expires`, unless `max_idle` connections to that
    /// address are parked already (then it is closed).
    pub fn put(&mut self, address: PoolKey, socket: Stream, max_idle: usize, expires: Instant) {
        let list = self.idle.entry(address).or_default();
        if list.len() >= max_idle {
            return;
        }
        list.push(Parked {
            socket,
            parked_at: Instant::now(),
            expires,
        });
        self.count += 1;
    }

    /// Close the connections whose idle time is over.
    pub fn purge(&mut self, now: Instant) {
        if self.count == 0 {
            return;
        }
        let mut count = 0;
        self.idle.retain(|_, list| {
            list.retain(|p| p.expires > now);
            count += list.len();
            !list.is_empty()
        });
        self.count = count;
    }

    /// Close every parked connection (the shard stops).
    pub fn clear(&mut self) {
        self.idle.clear();
        self.count = 0;
    }

    /// Connections parked now.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// A parked connection is usable if reading it would block: no end of stream, no error,
/// and no unsolicited bytes (which would desynchronise the next response).
fn still_open(socket: &Stream) -> bool {
    // Known drained (no event since its last read): open and silent, no syscall needed.
    if !socket.may_read() {
        return true;
    }
    let mut probe = [0u8; 1];
    matches!(
        socket.recv(&mut probe),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock
    )
}
