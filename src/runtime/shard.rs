//! One data-plane shard: a glommio executor pinned to one core, owning its listeners,
//! the connections it accepts, its balancer state and its pipe pool. Nothing in here is
//! shared with other shards except the [`SnapshotCell`] it reads and the [`RunControl`]
//! flags it polls.

use std::cell::{Cell, RefCell, RefMut};
use std::net::Shutdown;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::sync::Semaphore;

use super::RunControl;
use crate::balance::Balancer;
use crate::config::Observe;
use crate::control::{observation, ObservedErrors};
use crate::l4::idle::{IdleWatch, SWEEP_INTERVAL};
use crate::l4::pipes::PipePool;
use crate::l4::End;
use crate::l7::pool::ServerPool;
use crate::snapshot::{Snapshot, SnapshotCell};
use crate::stats::collect::{ShardStats, StatsHub};
use crate::sys::{self, Pipe};

/// The shard's view of one snapshot: the snapshot plus what the shard builds from it for
/// itself (balancers, rustls configurations with their own session caches).
pub struct ShardView {
    /// The snapshot this view was built from.
    pub snapshot: Arc<Snapshot>,
    balancers: Vec<RefCell<Balancer>>,
    /// Per frontend (indexed like `config.frontends`): this shard's rustls config for
    /// its TLS listeners.
    termination: Vec<Option<Arc<rustls::ServerConfig>>>,
    /// Per backend, per server: the rustls config for servers with `tls = true`.
    origination: Vec<Vec<Option<Arc<rustls::ClientConfig>>>>,
}

impl ShardView {
    fn build(snapshot: Arc<Snapshot>, previous: Option<&ShardView>) -> ShardView {
        let (termination, origination) = Self::tls_configs(&snapshot, previous);
        let balancers = snapshot
            .config
            .backends
            .iter()
            .zip(&snapshot.backends)
            .map(|(backend, state)| {
                let mut balancer =
                    Balancer::new(&backend.balance, backend.hash_type, &state.servers);
                if let Some(prev) = previous {
                    if let Some(i) = prev.snapshot.config.backend_index(&backend.name) {
                        balancer.inherit_counts(&prev.balancers[i].borrow());
                    }
                }
                RefCell::new(balancer)
            })
            .collect();
        ShardView {
            snapshot,
            balancers,
            termination,
            origination,
        }
    }

    /// This shard's rustls configs for `snapshot`: those of `previous` while they derive
    /// from the same termination (frontends) or the same configuration (servers), so
    /// session caches live on across health changes and unchanged reloads.
    #[allow(clippy::type_complexity)]
    fn tls_configs(
        snapshot: &Snapshot,
        previous: Option<&ShardView>,
    ) -> (
        Vec<Option<Arc<rustls::ServerConfig>>>,
        Vec<Vec<Option<Arc<rustls::ClientConfig>>>>,
    ) {
        let config = &snapshot.config;
        let termination = config
            .frontends
            .iter()
            .zip(&snapshot.tls)
            .map(|(frontend, shared)| {
                let shared = shared.as_ref()?;
                if let Some(prev) = previous {
                    if let Some(i) = prev.snapshot.frontend_index(&frontend.name) {
                        let same = prev.snapshot.tls[i]
                            .as_ref()
                            .is_some_and(|t| Arc::ptr_eq(t, shared));
                        if same {
                            return prev.termination[i].clone();
                        }
                    }
                }
                match shared.shard_config() {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::error!("frontend {}: TLS: {e}", frontend.name);
                        None
                    }
                }
            })
            .collect();
        let origination = match previous {
            Some(prev) if Arc::ptr_eq(&prev.snapshot.config, config) => prev.origination.clone(),
            _ => config
                .backends
                .iter()
                .map(|backend| {
                    backend
                        .servers
                        .iter()
                        .map(|server| {
                            let tls = server.tls.as_ref()?;
                            match crate::tls::server::client_config(tls, backend.mode) {
                                Ok(c) => Some(c),
                                Err(e) => {
                                    tracing::error!(
                                        "server {}/{}: TLS: {e}",
                                        backend.name,
                                        server.name
                                    );
                                    None
                                }
                            }
                        })
                        .collect()
                })
                .collect(),
        };
        (termination, origination)
    }

    /// This shard's rustls config for the TLS listeners of frontend `index` (`None`: the
    /// frontend has no `tls`, or its termination could not be built).
    pub fn termination(&self, index: usize) -> Option<&Arc<rustls::ServerConfig>> {
        self.termination.get(index)?.as_ref()
    }

    /// The rustls config for connecting to server `server` of backend `backend` (`None`:
    /// a plain server, or a TLS one whose config could not be built, which then fails
    /// to connect).
    pub fn origination(&self, backend: usize, server: usize) -> Option<&Arc<rustls::ClientConfig>> {
        self.origination.get(backend)?.get(server)?.as_ref()
    }

    /// The balancer of backend `index` (borrow it only between awaits).
    pub fn balancer(&self, index: usize) -> RefMut<'_, Balancer> {
        self.balancers[index].borrow_mut()
    }
}

/// Stats slots of servers whose `shutdown_epoch` grew from `old` to `new`.
fn shutdown_servers(old: &Snapshot, new: &Snapshot) -> Vec<usize> {
    let mut before = std::collections::HashMap::new();
    for backend in &old.backends {
        for live in &backend.live {
            before.insert(live.stats, live.shutdown_epoch);
        }
    }
    let mut cut = Vec::new();
    for backend in &new.backends {
        for live in &backend.live {
            if before
                .get(&live.stats)
                .is_some_and(|&epoch| live.shutdown_epoch > epoch)
            {
                cut.push(live.stats);
            }
        }
    }
    cut
}

/// What the shard tracks of one live connection: its sockets (so a hard stop or an idle
/// timeout can cut them) and its idle state (checked by the shard's sweep).
#[derive(Debug)]
pub struct Tracked {
    client_fd: RawFd,
    server_fd: Cell<RawFd>,
    /// Stats slot of the server `server_fd` goes to (`usize::MAX`: none), so that
    /// `on_marked_down = "shutdown-sessions"` can find its connections.
    server_slot: Cell<usize>,
    /// An HTTP connection: some timeouts must leave the client side writable so the
    /// proxy can still answer (408, 504), see [`Tracked::cut_expired`].
    http: bool,
    /// HTTP: the connection waits for its next request (nothing in flight), so a soft
    /// stop may close it at once.
    between_requests: Cell<bool>,
    /// Idle accounting shared by the connection's two directions and the sweep.
    pub idle: IdleWatch,
}

impl Tracked {
    fn cut(&self) {
        let _ = sys::shutdown(self.client_fd, Shutdown::Both);
        self.cut_server();
    }

    fn cut_server(&self) {
        let server = self.server_fd.get();
        if server >= 0 {
            let _ = sys::shutdown(server, Shutdown::Both);
        }
    }

    /// Wake the connection's task after the timeout `end` expired. L4: both sockets are
    /// shut down. HTTP: a request-head timeout only shuts the client's read side (the
    /// task then answers 408), a server timeout only the server socket (the task answers
    /// 504 if the response has not started); everything else cuts both.
    fn cut_expired(&self, end: End) {
        match (self.http, end) {
            (true, End::RequestTimeout) => {
                let _ = sys::shutdown(self.client_fd, Shutdown::Read);
            }
            (true, End::ServerTimeout) => self.cut_server(),
            _ => self.cut(),
        }
    }

    /// Stats slot of the server the connection is attached to (`usize::MAX`: none).
    pub fn server_slot(&self) -> usize {
        self.server_slot.get()
    }

    /// HTTP: mark whether the connection is waiting for its next request.
    pub fn set_between_requests(&self, idle: bool) {
        self.between_requests.set(idle);
    }
}

/// Live connections of a shard.
#[derive(Default)]
pub struct ConnectionRegistry {
    slots: RefCell<Vec<Option<Rc<Tracked>>>>,
    free: RefCell<Vec<usize>>,
    live: Cell<usize>,
}

/// A connection's place in the [`ConnectionRegistry`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket(usize);

impl ConnectionRegistry {
    /// Record a new client connection.
    pub fn register(&self, client_fd: RawFd) -> (Ticket, Rc<Tracked>) {
        self.register_as(client_fd, false)
    }

    /// Record a new HTTP client connection (see [`Tracked::cut_expired`]).
    pub fn register_http(&self, client_fd: RawFd) -> (Ticket, Rc<Tracked>) {
        self.register_as(client_fd, true)
    }

    fn register_as(&self, client_fd: RawFd, http: bool) -> (Ticket, Rc<Tracked>) {
        self.live.set(self.live.get() + 1);
        let tracked = Rc::new(Tracked {
            client_fd,
            server_fd: Cell::new(-1),
            server_slot: Cell::new(usize::MAX),
            http,
            between_requests: Cell::new(false),
            idle: IdleWatch::new(),
        });
        let mut slots = self.slots.borrow_mut();
        let index = match self.free.borrow_mut().pop() {
            Some(i) => {
                slots[i] = Some(Rc::clone(&tracked));
                i
            }
            None => {
                slots.push(Some(Rc::clone(&tracked)));
                slots.len() - 1
            }
        };
        (Ticket(index), tracked)
    }

    /// Record the server side of a connection: its socket and the server's stats slot.
    pub fn attach_server(&self, tracked: &Tracked, server_fd: RawFd, server_slot: usize) {
        tracked.server_fd.set(server_fd);
        tracked.server_slot.set(server_slot);
    }

    /// Forget the server side of a connection (HTTP: it went back to the pool or closed).
    pub fn detach_server(&self, tracked: &Tracked) {
        tracked.server_fd.set(-1);
        tracked.server_slot.set(usize::MAX);
    }

    /// Cut every connection whose server side goes to one of `slots` (a server marked
    /// DOWN with `on_marked_down = "shutdown-sessions"`).
    fn cut_servers(&self, slots: &[usize]) {
        for tracked in self.slots.borrow().iter().flatten() {
            if slots.contains(&tracked.server_slot.get()) {
                tracked.cut();
            }
        }
    }

    /// Forget a connection (its sockets are about to close).
    pub fn unregister(&self, ticket: Ticket) {
        self.slots.borrow_mut()[ticket.0] = None;
        self.free.borrow_mut().push(ticket.0);
        self.live.set(self.live.get() - 1);
    }

    /// Connections alive now.
    pub fn live(&self) -> usize {
        self.live.get()
    }

    /// Cut every connection whose idle timeout has passed (see `l4::idle`).
    fn sweep_idle(&self, now: Instant) {
        for tracked in self.slots.borrow().iter().flatten() {
            if let Some(end) = tracked.idle.check(now) {
                tracked.cut_expired(end);
            }
        }
    }

    /// Close HTTP connections that wait for their next request (soft stop).
    fn close_idle_http(&self) {
        for tracked in self.slots.borrow().iter().flatten() {
            if tracked.http && tracked.between_requests.get() {
                tracked.cut();
            }
        }
    }

    /// Shut down both sockets of every live connection; their tasks then end by themselves.
    fn cut_all(&self) {
        for tracked in self.slots.borrow().iter().flatten() {
            tracked.cut();
        }
    }
}

/// Size of a copy buffer: one `recv` of this size that comes back full marks a bulk
/// stream (which then switches to splice where allowed).
pub const COPY_BUFFER: usize = 64 * 1024;

/// Free copy buffers a shard keeps for reuse.
pub const MAX_POOLED_BUFFERS: usize = 256;

/// Per-shard state, shared by the shard's tasks through an `Rc`.
pub struct Shard {
    /// Shard number (0-based).
    pub id: usize,
    snapshots: Arc<SnapshotCell>,
    view: RefCell<Rc<ShardView>>,
    pipes: RefCell<PipePool>,
    buffers: RefCell<Vec<Vec<u8>>>,
    /// Live connections.
    pub connections: ConnectionRegistry,
    hard_stopping: Cell<bool>,
    stopping: Cell<bool>,
    /// Slots of the global `maxconn` that this shard may use.
    pub global_slots: Rc<Semaphore>,
    /// HTTP: idle keep-alive connections to servers, reused by later requests.
    pub server_pool: RefCell<ServerPool>,
    /// This shard's counters (see [`crate::stats::collect`]).
    pub stats: ShardStats,
    links: ControlLinks,
    /// The last stats request answered.
    answered: Cell<u64>,
}

/// How a shard talks to the control thread (besides the snapshot it reads).
#[derive(Debug, Clone)]
pub struct ControlLinks {
    /// Where the shard answers stats requests.
    pub hub: Arc<StatsHub>,
    /// Where the shard reports servers failing on live traffic (`observe`).
    pub observed: std::sync::mpsc::Sender<ObservedErrors>,
}

impl Shard {
    /// A shard reading snapshots from `snapshots`.
    pub fn new(
        id: usize,
        snapshots: Arc<SnapshotCell>,
        maxpipes: usize,
        pipesize: Option<u32>,
        global_maxconn: u64,
        links: ControlLinks,
    ) -> Shard {
        let first = snapshots.load_full();
        Shard {
            id,
            view: RefCell::new(Rc::new(ShardView::build(first, None))),
            snapshots,
            pipes: RefCell::new(PipePool::new(maxpipes, pipesize)),
            buffers: RefCell::new(Vec::new()),
            connections: ConnectionRegistry::default(),
            hard_stopping: Cell::new(false),
            stopping: Cell::new(false),
            global_slots: Rc::new(Semaphore::new(global_maxconn)),
            server_pool: RefCell::new(ServerPool::default()),
            stats: ShardStats::default(),
            links,
            answered: Cell::new(0),
        }
    }

    /// The view of the snapshot in force, rebuilt here when the control core has published
    /// a new generation. A cheap lock-free load per call.
    pub fn view(&self) -> Rc<ShardView> {
        let current = self.snapshots.load();
        let cached = self.view.borrow().clone();
        if cached.snapshot.generation == current.generation {
            return cached;
        }
        let fresh = Rc::new(ShardView::build(Arc::clone(&current), Some(&cached)));
        *self.view.borrow_mut() = Rc::clone(&fresh);
        let shut_down = shutdown_servers(&cached.snapshot, &fresh.snapshot);
        if !shut_down.is_empty() {
            self.connections.cut_servers(&shut_down);
        }
        fresh
    }

    /// Live-traffic observation of server `server` of backend `backend` (indexed as in
    /// `view`): an error (connection failure; with `layer7`, also an invalid or 5xx
    /// response) or a success. Reports the server to the control thread when its
    /// `error_limit` is reached.
    pub fn observe(
        &self,
        view: &ShardView,
        backend: usize,
        server: usize,
        error: bool,
        layer7: bool,
    ) {
        let config = &view.snapshot.config.backends[backend].servers[server];
        let Some((mode, limit)) = observation(config.check.as_ref()) else {
            return;
        };
        if layer7 && mode == Observe::Layer4 {
            return;
        }
        let slot = view.snapshot.backends[backend].live[server].stats;
        if self.stats.observe(slot, error, limit) {
            let _ = self
                .links
                .observed
                .send(ObservedErrors { slot, count: limit });
        }
    }

    /// Stats slot of server `server` of backend `backend` in `view`.
    pub fn server_slot(view: &ShardView, backend: usize, server: usize) -> usize {
        view.snapshot.backends[backend].live[server].stats
    }

    /// Housekeeping with the control thread: answer a pending stats request, and pick up
    /// a new snapshot even when no traffic asks for it (so `shutdown-sessions` applies).
    fn talk_to_control(&self) {
        let wanted = self.links.hub.wanted();
        if wanted > self.answered.get() {
            self.links.hub.publish(self.id, wanted, &self.stats);
            self.answered.set(wanted);
        }
        drop(self.view());
    }

    /// A connection to server `server` of backend `backend` (as indexed in `started_on`)
    /// has ended: update the balancer in force now (the snapshot may have changed).
    pub fn connection_ended(&self, started_on: &ShardView, backend: usize, server: usize) {
        let now = self.view();
        if Arc::ptr_eq(&now.snapshot, &started_on.snapshot) {
            now.balancer(backend).connection_ended(server);
            return;
        }
        let backend_name = &started_on.snapshot.config.backends[backend].name;
        let server_name = &started_on.snapshot.config.backends[backend].servers[server].name;
        if let Some(b) = now.snapshot.config.backend_index(backend_name) {
            if let Some(s) = now.snapshot.config.backends[b]
                .servers
                .iter()
                .position(|s| &s.name == server_name)
            {
                now.balancer(b).connection_ended(s);
            }
        }
    }

    /// A pipe for a direction that turned bulk, or `None` to keep copying.
    pub fn take_pipe(&self) -> Option<Pipe> {
        self.pipes.borrow_mut().take()
    }

    /// Return a direction's pipe to the pool.
    pub fn give_back_pipe(&self, pipe: Pipe) {
        self.pipes.borrow_mut().give_back(pipe);
    }

    /// A copy buffer of [`COPY_BUFFER`] bytes (pooled: its pages are already mapped).
    pub fn take_buffer(&self) -> Vec<u8> {
        self.buffers
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| vec![0u8; COPY_BUFFER])
    }

    /// Return a copy buffer to the pool (kept up to [`MAX_POOLED_BUFFERS`]).
    pub fn give_back_buffer(&self, buf: Vec<u8>) {
        let mut pool = self.buffers.borrow_mut();
        if pool.len() < MAX_POOLED_BUFFERS && buf.len() == COPY_BUFFER {
            pool.push(buf);
        }
    }

    /// Bytes moved per splice call.
    pub fn pipe_chunk(&self) -> usize {
        self.pipes.borrow().chunk()
    }

    /// True once the grace period is over and connections are being cut.
    pub fn hard_stopping(&self) -> bool {
        self.hard_stopping.get()
    }

    /// True once the shard stopped accepting (soft stop): HTTP connections close after
    /// their current response.
    pub fn stopping(&self) -> bool {
        self.stopping.get()
    }

    /// The shard's housekeeping until it should stop accepting: every [`SWEEP_INTERVAL`],
    /// cut idle connections, answer the control thread, run `each_tick` (listener
    /// changes after a reload) and look at the process-wide run state.
    pub async fn run_until_stop(&self, control: &RunControl, mut each_tick: impl FnMut()) {
        while !control.stopping.load(Ordering::Acquire) {
            glommio::timer::sleep(SWEEP_INTERVAL).await;
            let now = Instant::now();
            self.connections.sweep_idle(now);
            self.server_pool.borrow_mut().purge(now);
            self.talk_to_control();
            each_tick();
        }
    }

    /// After accepting stopped: wait for connections to finish (idle timeouts still
    /// apply), cutting them all once the control thread declares the hard stop.
    pub async fn drain(&self, control: &RunControl) {
        self.stopping.set(true);
        self.server_pool.borrow_mut().clear();
        while self.connections.live() > 0 {
            self.connections.close_idle_http();
            if control.hard_stop.load(Ordering::Acquire) && !self.hard_stopping.get() {
                self.hard_stopping.set(true);
                self.connections.cut_all();
            }
            glommio::timer::sleep(SWEEP_INTERVAL.min(Duration::from_millis(20))).await;
            self.connections.sweep_idle(Instant::now());
            self.talk_to_control();
        }
    }
}
