//! The immutable state the control core publishes to the shards.
//!
//! A [`Snapshot`] is built whole by the control thread and published with one atomic
//! store ([`SnapshotCell::publish`]); shards [`SnapshotCell::load`] it at each decision (per
//! accepted connection) and never wait for anyone. A connection keeps the snapshot it
//! started with until it ends.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::balance::ServerSlot;
use crate::config::Config;

/// Everything a shard needs to route a new connection.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one at every publication; shards rebuild per-backend balancer state
    /// when it changes.
    pub generation: u64,
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Live state of each backend, indexed like `config.backends`.
    pub backends: Vec<BackendState>,
}

/// Live state of one backend.
#[derive(Debug, Clone)]
pub struct BackendState {
    /// One slot per server, indexed like the backend's `servers`.
    pub servers: Vec<ServerSlot>,
}

impl Snapshot {
    /// The first snapshot of a configuration: every enabled server is considered usable
    /// (health checks, when they land, publish later generations).
    pub fn initial(config: Arc<Config>) -> Snapshot {
        let backends = config
            .backends
            .iter()
            .map(|b| BackendState {
                servers: b
                    .servers
                    .iter()
                    .map(|s| ServerSlot {
                        name: s.name.clone(),
                        weight: s.weight,
                        backup: s.backup,
                        usable: !s.disabled,
                    })
                    .collect(),
            })
            .collect();
        Snapshot {
            generation: 1,
            config,
            backends,
        }
    }
}

/// The one place a snapshot is published and read: an `ArcSwap`, lock-free for readers.
#[derive(Debug)]
pub struct SnapshotCell {
    current: ArcSwap<Snapshot>,
}

impl SnapshotCell {
    /// A cell holding `first`.
    pub fn new(first: Snapshot) -> SnapshotCell {
        SnapshotCell {
            current: ArcSwap::from_pointee(first),
        }
    }

    /// The snapshot in force now (a cheap, lock-free guard).
    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// The snapshot in force now, as an owned `Arc` (for connections that keep it).
    pub fn load_full(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replace the snapshot with one atomic store. Only the control thread calls this.
    pub fn publish(&self, next: Snapshot) {
        self.current.store(Arc::new(next));
    }
}
