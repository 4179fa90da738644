//! Idle timeouts without a timer per wait.
//!
//! A connection is idle only when neither direction moves: a download whose client sends
//! nothing must not hit `timeouts.client` while the server is streaming. Each direction
//! touches the connection's clock on progress, and while it waits it declares what for
//! (a [`Deadline`]: the limit, and the `end=` to report). Nothing else happens on the data
//! path — no timer is armed per wait (a glommio timer costs an io_uring TIMEOUT plus an
//! ASYNC_CANCEL each time). Instead the shard sweeps its connections every
//! [`SWEEP_INTERVAL`] ([`IdleWatch::check`]); an expired one is marked and its sockets are
//! shut down, which wakes both directions. Timeouts therefore fire within one sweep
//! interval after their limit.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::End;

/// How often a shard checks its connections for idle timeouts.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// What a waiting direction waits for: how long the connection may stay idle, and how the
/// connection ends if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// Idle limit (`timeouts.client` or `timeouts.server`).
    pub limit: Duration,
    /// The `end=` reported when it expires.
    pub end: End,
}

/// Which direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Client → server.
    Upstream = 0,
    /// Server → client.
    Downstream = 1,
}

/// The idle state of one connection, shared by its two directions and the shard's sweep.
#[derive(Debug)]
pub struct IdleWatch {
    last: Cell<Instant>,
    waits: [Cell<Option<Deadline>>; 2],
    expired: Cell<Option<End>>,
}

impl Default for IdleWatch {
    fn default() -> Self {
        IdleWatch::new()
    }
}

impl IdleWatch {
    /// A watch whose clock starts now.
    pub fn new() -> IdleWatch {
        IdleWatch {
            last: Cell::new(Instant::now()),
            waits: [Cell::new(None), Cell::new(None)],
            expired: Cell::new(None),
        }
    }

    /// Record progress (bytes moved in either direction).
    pub fn touch(&self) {
        self.last.set(Instant::now());
    }

    /// Declare that `side` now waits for `deadline`, until the returned guard is dropped.
    pub fn waiting(&self, side: Side, deadline: Deadline) -> WaitGuard<'_> {
        self.waits[side as usize].set(Some(deadline));
        WaitGuard { watch: self, side }
    }

    /// The timeout that ended this connection, if one did.
    pub fn expired(&self) -> Option<End> {
        self.expired.get()
    }

    /// Called by the sweep: marks the connection expired (and returns how it ends) when a
    /// waiting direction's limit has passed with no progress on either direction.
    pub fn check(&self, now: Instant) -> Option<End> {
        if self.expired.get().is_some() {
            return None;
        }
        let idle = now.saturating_duration_since(self.last.get());
        let due = self
            .waits
            .iter()
            .filter_map(Cell::get)
            .filter(|d| idle >= d.limit)
            .min_by_key(|d| d.limit)?;
        self.expired.set(Some(due.end));
        Some(due.end)
    }
}

/// Clears a direction's declared wait when dropped (also when the wait is cancelled).
#[derive(Debug)]
pub struct WaitGuard<'a> {
    watch: &'a IdleWatch,
    side: Side,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.watch.waits[self.side as usize].set(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline(ms: u64, end: End) -> Deadline {
        Deadline {
            limit: Duration::from_millis(ms),
            end,
        }
    }

    #[test]
    fn nothing_expires_without_a_declared_wait() {
        let w = IdleWatch::new();
        assert_eq!(w.check(Instant::now() + Duration::from_secs(3600)), None);
    }

    #[test]
    fn a_wait_expires_after_its_limit_of_idleness() {
        let w = IdleWatch::new();
        let start = Instant::now();
        let _g = w.waiting(Side::Upstream, deadline(500, End::ClientTimeout));
        assert_eq!(w.check(start), None);
        assert_eq!(
            w.check(start + Duration::from_millis(600)),
            Some(End::ClientTimeout)
        );
        assert_eq!(w.expired(), Some(End::ClientTimeout));
        // Reported once.
        assert_eq!(w.check(start + Duration::from_millis(900)), None);
    }

    #[test]
    fn progress_of_either_direction_postpones_expiry() {
        let w = IdleWatch::new();
        let _g = w.waiting(Side::Upstream, deadline(500, End::ClientTimeout));
        w.touch();
        let after_touch = Instant::now();
        assert_eq!(w.check(after_touch + Duration::from_millis(400)), None);
        assert!(w.check(after_touch + Duration::from_millis(600)).is_some());
    }

    #[test]
    fn the_shortest_due_wait_names_the_end() {
        let w = IdleWatch::new();
        let start = Instant::now();
        let _a = w.waiting(Side::Upstream, deadline(800, End::ClientTimeout));
        let _b = w.waiting(Side::Downstream, deadline(300, End::ServerTimeout));
        assert_eq!(
            w.check(start + Duration::from_millis(900)),
            Some(End::ServerTimeout)
        );
    }

    #[test]
    fn a_dropped_guard_clears_the_wait() {
        let w = IdleWatch::new();
        let start = Instant::now();
        drop(w.waiting(Side::Downstream, deadline(10, End::ServerTimeout)));
        assert_eq!(w.check(start + Duration::from_secs(10)), None);
    }
}
