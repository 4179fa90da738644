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
use crate::tls::server::Termination;

/// The TLS termination of each frontend of `config` (see [`Snapshot::tls`]): taken from
/// `previous` (the configuration before a reload, and its terminations) for a frontend
/// of the same name whose `tls` settings and certificates are unchanged, so that its
/// ticket keys and sessions survive the reload; built anew otherwise. A termination that
/// cannot be built (rustls refusing settings the configuration check accepted, or no
/// randomness for the ticket keys: not expected) is logged, and that frontend's TLS
/// connections are closed at once.
pub fn terminations(
    config: &Config,
    previous: Option<(&Config, &[Option<Arc<Termination>>])>,
) -> Vec<Option<Arc<Termination>>> {
    config
        .frontends
        .iter()
        .map(|frontend| {
            let tls = frontend.tls.as_ref()?;
            let kept = previous.and_then(|(old, built)| {
                let i = old.frontends.iter().position(|f| f.name == frontend.name)?;
                let same = old.frontends[i].tls.as_deref() == Some(&**tls);
                same.then(|| built.get(i).cloned().flatten()).flatten()
            });
            if kept.is_some() {
                return kept;
            }
            match Termination::new(tls) {
                Ok(t) => Some(Arc::new(t)),
                Err(e) => {
                    tracing::error!("frontend {}: TLS termination: {e}", frontend.name);
                    None
                }
            }
        })
        .collect()
}

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
    /// Stats slot of each frontend, indexed like `config.frontends` (stable over reloads
    /// for a frontend of the same name).
    pub frontend_stats: Vec<usize>,
    /// TLS termination of each frontend with `tls`, indexed like `config.frontends`:
    /// what its shards share (certificates by SNI, ticket keys). Built once per
    /// configuration (kept over a reload that leaves the frontend's `tls` unchanged);
    /// each shard derives its own rustls config from it.
    pub tls: Vec<Option<Arc<Termination>>>,
}

/// Live state of one backend.
#[derive(Debug, Clone)]
pub struct BackendState {
    /// One slot per server, indexed like the backend's `servers`.
    pub servers: Vec<ServerSlot>,
    /// What shards need besides the balancer's view, indexed like `servers`.
    pub live: Vec<ServerLive>,
    /// Stats slot of the backend (see [`Snapshot::frontend_stats`]).
    pub stats: usize,
}

/// A server's live facts other than its balancing weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLive {
    /// Stats slot: a stable number for this server (backend, name and address) over
    /// reloads; shards keep its counters under it.
    pub stats: usize,
    /// Whether a request pinned to it (persistence cookie) may still go to it: UP or
    /// DRAIN (DOWN and MAINT redispatch).
    pub pinnable: bool,
    /// Increases each time the server is marked DOWN with `on_marked_down =
    /// "shutdown-sessions"`: shards then cut the connections they have to it.
    pub shutdown_epoch: u64,
}

impl Snapshot {
    /// A snapshot of a configuration where every enabled server is usable at its
    /// configured weight, with stats slots numbered in order (tests and tools; the
    /// control thread builds the real ones from its health state).
    pub fn initial(config: Arc<Config>) -> Snapshot {
        let mut next_slot = 0usize;
        let mut slot = || {
            next_slot += 1;
            next_slot - 1
        };
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
                live: b
                    .servers
                    .iter()
                    .map(|s| ServerLive {
                        stats: slot(),
                        pinnable: !s.disabled,
                        shutdown_epoch: 0,
                    })
                    .collect(),
                stats: slot(),
            })
            .collect();
        let frontend_stats = (0..config.frontends.len()).collect();
        let tls = terminations(&config, None);
        Snapshot {
            generation: 1,
            config,
            backends,
            frontend_stats,
            tls,
        }
    }

    /// Index of the frontend called `name`, if any.
    pub fn frontend_index(&self, name: &str) -> Option<usize> {
        self.config.frontends.iter().position(|f| f.name == name)
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
