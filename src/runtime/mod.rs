//! The process: shards (one pinned glommio executor per core) plus the control thread.
//!
//! [`run`] checks everything that can fail early (CPU placement, resource limits, every
//! listen address, the stats listener and the admin socket) before starting anything,
//! then starts the shards, publishes the first snapshot, and turns the calling thread
//! into the control thread: a glommio executor (pinned to the control core, or unbound)
//! that runs the health checks, the stats page, the admin socket and reloads, and
//! supervises the process: on SIGTERM/SIGINT it tells the shards to stop accepting, lets
//! connections drain for up to `global.hard_stop_after`, then has the shards cut what is
//! left. SIGHUP reloads the configuration file.

pub mod identity;
pub mod limits;
pub mod listener;
pub mod pinning;
pub mod reactor;
pub mod shard;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use glommio::sync::Semaphore;
use glommio::{LocalExecutorBuilder, Placement as GlommioPlacement};
use socket2::Socket;

use crate::config::Config;
use crate::control::Control;
use crate::stats::collect::StatsHub;
use shard::{ControlLinks, Shard};

/// io_uring registered-buffer memory per shard. Kept small: halb does network I/O with
/// its own buffers, and this memory counts against RLIMIT_MEMLOCK.
pub const IO_MEMORY: usize = 256 * 1024;

/// After the hard stop, how long shards get to close what they cut before the process
/// exits regardless.
const HARD_STOP_EXIT: Duration = Duration::from_secs(5);

/// How long a shard may take to set up its executor and listeners.
const SHARD_START_TIMEOUT: Duration = Duration::from_secs(30);

/// Process-wide run state, written by the control thread and polled by the shards.
#[derive(Debug, Default)]
pub struct RunControl {
    /// Stop accepting; drain.
    pub stopping: AtomicBool,
    /// The grace period is over: cut remaining connections.
    pub hard_stop: AtomicBool,
}

/// Why halb could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// CPU placement impossible.
    #[error(transparent)]
    Placement(#[from] pinning::PlacementError),
    /// A resource limit is too low.
    #[error(transparent)]
    Limits(#[from] limits::LimitError),
    /// A listener could not be bound.
    #[error(transparent)]
    Listen(#[from] listener::ListenError),
    /// A shard could not start (io_uring setup, ...) or died while running.
    #[error("shard {shard} on core {core}: {reason}")]
    Shard {
        /// Shard number.
        shard: usize,
        /// Its core.
        core: usize,
        /// What failed.
        reason: String,
    },
    /// global.user / global.group cannot be taken.
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    /// Shards did not report ready in time.
    #[error("only {started} of {shards} shards started within {waited:?}")]
    ShardsSlow {
        /// Shards that did start.
        started: usize,
        /// Shards expected.
        shards: usize,
        /// How long we waited.
        waited: Duration,
    },
    /// Signal handling could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The stats listener could not be bound.
    #[error("stats listener {address}: {source}")]
    Stats {
        /// `stats.bind`.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The admin socket could not be created.
    #[error("admin socket {path}: {source}")]
    AdminSocket {
        /// `global.admin_socket`.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The control thread's executor could not start.
    #[error("control thread: {0}")]
    Control(String),
    /// A VRRP instance could not be set up (interface, sockets, netlink).
    #[error("{0}")]
    Vrrp(String),
}

/// A listener's identity over reloads: frontend name and address.
pub type ListenerKey = (String, SocketAddr);

/// What the control thread tells a shard besides publishing snapshots.
pub enum ShardCommand {
    /// Start accepting on this new listener (a frontend added or rebound by a reload).
    Listen(ListenerKey, Socket),
    /// Stop accepting on this listener and close it (its connections finish).
    Close(ListenerKey),
}

/// Everything checked and prepared before any thread starts.
struct Prepared {
    placement: pinning::Placement,
    budget: limits::Budget,
    /// Per shard: the bound listeners.
    listeners: Vec<Vec<(ListenerKey, Socket)>>,
    /// The `[stats]` listener.
    stats: Option<OwnedFd>,
    /// The admin socket.
    admin: Option<OwnedFd>,
    /// The VRRP instances, set up (sockets open, stale addresses removed), not started.
    vrrp: Option<crate::control::vrrp::Vrrp>,
}

/// The listeners `config` asks for.
fn listener_keys(config: &Config) -> Vec<ListenerKey> {
    let mut keys = Vec::new();
    for frontend in &config.frontends {
        let tls = frontend.tls.iter().flat_map(|t| &t.bind);
        for &address in frontend.bind.iter().chain(tls) {
            keys.push((frontend.name.clone(), address));
        }
    }
    keys
}

/// Bind one listener per shard for `key`.
fn bind_for_shards(
    config: &Config,
    key: &ListenerKey,
    shards: usize,
) -> Result<Vec<Socket>, listener::ListenError> {
    let backlog = config
        .frontends
        .iter()
        .find(|f| f.name == key.0)
        .map(|f| f.backlog)
        .unwrap_or(1024);
    (0..shards)
        .map(|_| listener::bind(&key.0, key.1, backlog))
        .collect()
}

fn prepare(config: &Config) -> Result<Prepared, RuntimeError> {
    let cores = crate::sys::allowed_cpus();
    let placement = pinning::plan(config.global.shards, config.global.control_core, &cores)?;
    let shards = placement.shard_cores.len();
    // Idle pooled server connections (HTTP backends) hold descriptors too; only backends
    // some frontend routes to ever pool.
    let routed: std::collections::HashSet<usize> = config
        .frontends
        .iter()
        .flat_map(|f| {
            let rules = f
                .http
                .iter()
                .flat_map(|h| h.use_backends.iter().map(|u| u.backend_index));
            f.default_backend_index.into_iter().chain(rules)
        })
        .collect();
    let pooled_per_shard: u64 = config
        .backends
        .iter()
        .enumerate()
        .filter(|(i, b)| {
            routed.contains(i)
                && b.mode == crate::config::Mode::Http
                && !b.http_server_close
                && b.http_reuse != crate::config::HttpReuse::Never
        })
        .map(|(_, b)| b)
        .map(|b| u64::from(b.pool_max_idle) * b.servers.len() as u64)
        .sum();
    let budget = limits::prepare(
        config.global.maxconn,
        config.global.maxpipes,
        pooled_per_shard,
        shards,
    )?;
    for (frontend, address) in listener_keys(config) {
        listener::probe(&frontend, address)?;
    }
    let mut listeners: Vec<Vec<(ListenerKey, Socket)>> = (0..shards).map(|_| Vec::new()).collect();
    for key in listener_keys(config) {
        for (shard, socket) in bind_for_shards(config, &key, shards)?
            .into_iter()
            .enumerate()
        {
            listeners[shard].push((key.clone(), socket));
        }
    }
    let stats =
        match &config.stats {
            Some(stats) => Some(crate::control::stats_server::bind(stats.bind).map_err(
                |source| RuntimeError::Stats {
                    address: stats.bind,
                    source,
                },
            )?),
            None => None,
        };
    let admin = match &config.global.admin_socket {
        Some(path) => Some(OwnedFd::from(crate::control::admin::bind(path).map_err(
            |source| RuntimeError::AdminSocket {
                path: path.display().to_string(),
                source,
            },
        )?)),
        None => None,
    };
    // VRRP last: its sockets and netlink need CAP_NET_RAW / CAP_NET_ADMIN, held now.
    let vrrp = if config.vrrp.is_empty() {
        None
    } else {
        Some(crate::control::vrrp::Vrrp::new(&config.vrrp).map_err(RuntimeError::Vrrp)?)
    };
    Ok(Prepared {
        placement,
        budget,
        listeners,
        stats,
        admin,
        vrrp,
    })
}

fn per_shard(limit: u64, shards: usize) -> u64 {
    limit.div_ceil(shards as u64).max(1)
}

/// Run `config` until SIGTERM/SIGINT; returns once every shard has stopped.
/// `on_ready` is called once every listener is bound and the shards are started.
pub fn run(config: Config, on_ready: impl FnOnce(usize)) -> Result<(), RuntimeError> {
    let prepared = prepare(&config)?;
    // Everything privileged (binding, raising limits) is done: become global.user now,
    // while the process still has a single thread.
    if let Some(who) = identity::drop_privileges(&config.global)? {
        tracing::info!("running as {who}");
    }
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(RuntimeError::Signals)?;
    let shards = prepared.placement.shard_cores.len();
    let hard_stop_after = config.global.hard_stop_after;
    let maxpipes = prepared.budget.maxpipes as usize;
    let pipesize = config.global.pipesize;
    let global_share = per_shard(prepared.budget.maxconn, shards);
    let hub = Arc::new(StatsHub::new(shards));
    let control = Control::new(Arc::new(config), Arc::clone(&hub), shards);
    let snapshots = Arc::clone(control.snapshots());
    let run_control = Arc::new(RunControl::default());
    let (observed_tx, observed_rx) = mpsc::channel();

    let (events_tx, events) = mpsc::channel::<Event>();
    let mut shard_commands = Vec::with_capacity(shards);
    for (id, (core, listeners)) in prepared
        .placement
        .shard_cores
        .iter()
        .copied()
        .zip(prepared.listeners)
        .enumerate()
    {
        let snapshots = Arc::clone(&snapshots);
        let stop = Arc::clone(&run_control);
        let started = events_tx.clone();
        let links = ControlLinks {
            hub: Arc::clone(&hub),
            observed: observed_tx.clone(),
        };
        let (commands_tx, commands) = mpsc::channel::<ShardCommand>();
        shard_commands.push(commands_tx);
        let spawned = LocalExecutorBuilder::new(GlommioPlacement::Fixed(core))
            .name(&format!("halb-shard-{id}"))
            .io_memory(IO_MEMORY)
            .spawn(move || async move {
                let shard = Rc::new(Shard::new(
                    id,
                    snapshots,
                    maxpipes,
                    pipesize,
                    global_share,
                    links,
                ));
                shard_main(shard, shards, listeners, commands, stop, started).await;
            });
        let handle = match spawned {
            Ok(handle) => handle,
            Err(e) => {
                abort(&run_control);
                return Err(RuntimeError::Shard {
                    shard: id,
                    core,
                    reason: e.to_string(),
                });
            }
        };
        // glommio builds the executor (io_uring rings) inside the new thread: a failure
        // there, or a panic later, shows up only when the thread is joined.
        let exited = events_tx.clone();
        std::thread::Builder::new()
            .name(format!("halb-watch-{id}"))
            .spawn(move || {
                let outcome = handle.join().map(|_| ()).map_err(|e| e.to_string());
                let _ = exited.send(Event::ShardExited(id, core, outcome));
            })
            .expect("spawn a shard watcher thread");
    }
    drop(observed_tx);
    let mut signals = signals;
    let signal_handle = signals.handle();
    let signal_events = events_tx.clone();
    let signal_thread = std::thread::Builder::new()
        .name("halb-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if signal_events.send(Event::Signal(sig)).is_err() {
                    break;
                }
            }
        })
        .expect("spawn the signal thread");
    drop(events_tx);

    // This thread becomes the control thread: its own executor, on the control core.
    let placement = match prepared.placement.control_core {
        Some(core) => GlommioPlacement::Fixed(core),
        None => GlommioPlacement::Unbound,
    };
    let executor = LocalExecutorBuilder::new(placement)
        .name("halb-control")
        .io_memory(IO_MEMORY)
        .make();
    let outcome = match executor {
        Err(e) => {
            abort(&run_control);
            Err(RuntimeError::Control(e.to_string()))
        }
        Ok(executor) => {
            let parts = ControlParts {
                control,
                events,
                shards,
                run_control: Arc::clone(&run_control),
                hard_stop_after,
                shard_commands,
                observed: observed_rx,
                stats: prepared.stats,
                admin: prepared.admin,
                vrrp: prepared.vrrp,
                control_core: prepared.placement.control_core,
                shard_cores: prepared.placement.shard_cores.clone(),
            };
            executor.run(control_main(parts, on_ready))
        }
    };
    signal_handle.close();
    let _ = signal_thread.join();
    if outcome.is_ok() {
        tracing::info!("stopped");
    }
    outcome
}

/// Stop accepting and cut everything now (a fatal error).
fn abort(control: &RunControl) {
    control.stopping.store(true, Ordering::Release);
    control.hard_stop.store(true, Ordering::Release);
}

/// What the control thread starts with.
struct ControlParts {
    control: Control,
    events: mpsc::Receiver<Event>,
    shards: usize,
    run_control: Arc<RunControl>,
    hard_stop_after: Duration,
    shard_commands: Vec<mpsc::Sender<ShardCommand>>,
    observed: mpsc::Receiver<crate::control::ObservedErrors>,
    stats: Option<OwnedFd>,
    admin: Option<OwnedFd>,
    vrrp: Option<crate::control::vrrp::Vrrp>,
    control_core: Option<usize>,
    shard_cores: Vec<usize>,
}

/// The control thread's life: health checks, stats, admin socket and supervision.
async fn control_main(
    parts: ControlParts,
    on_ready: impl FnOnce(usize),
) -> Result<(), RuntimeError> {
    let ControlParts {
        control,
        events,
        shards,
        run_control,
        hard_stop_after,
        shard_commands,
        observed,
        stats,
        admin,
        vrrp,
        control_core,
        shard_cores,
    } = parts;
    let listening: HashSet<ListenerKey> = listener_keys(control.config()).into_iter().collect();
    let control = Rc::new(RefCell::new(control));
    let reloader = Rc::new(Reloader {
        control: Rc::clone(&control),
        shard_commands,
        listening: RefCell::new(listening),
    });
    let reload: Rc<dyn Fn() -> Result<String, String>> = {
        let reloader = Rc::clone(&reloader);
        Rc::new(move || reloader.reload())
    };
    // The reactor of this thread (epoll), for health checks and the control listeners.
    drop(reactor::current());
    crate::control::health::spawn_checks(&control);
    glommio::spawn_local(crate::control::health::slowstart_loop(Rc::clone(&control))).detach();
    glommio::spawn_local(crate::control::health::observe_loop(
        Rc::clone(&control),
        observed,
    ))
    .detach();
    if let Some(listener) = stats {
        glommio::spawn_local(crate::control::stats_server::serve(
            listener,
            Rc::clone(&control),
        ))
        .detach();
    }
    if let Some(listener) = admin {
        glommio::spawn_local(crate::control::admin::serve(
            listener,
            Rc::clone(&control),
            Rc::clone(&reload),
        ))
        .detach();
    }
    let vrrp = vrrp.map(|v| Rc::new(RefCell::new(v)));
    if let Some(v) = &vrrp {
        control.borrow_mut().set_vrrp(Rc::clone(v));
    }
    let stop_vrrp = || {
        if let Some(v) = &vrrp {
            v.borrow_mut().stop();
        }
    };
    let outcome = supervise(
        &events,
        shards,
        &run_control,
        hard_stop_after,
        &reload,
        &stop_vrrp,
        || {
            // VRRP starts once the shards serve: a box never claims the addresses before
            // it can answer on them.
            if let Some(v) = &vrrp {
                if let Err(e) = crate::control::vrrp::Vrrp::spawn(v, &control) {
                    tracing::error!("vrrp: cannot start: {e}");
                }
            }
            tracing::info!(
                "shards on cores {:?}, control thread {}",
                shard_cores,
                match control_core {
                    Some(c) => format!("on core {c}"),
                    None => "sharing cores".to_string(),
                }
            );
            on_ready(shards);
        },
    )
    .await;
    stop_vrrp();
    if let Some(path) = &control.borrow().config().global.admin_socket {
        let _ = std::fs::remove_file(path);
    }
    outcome
}

/// Reloads: reread the file, bind what is new, publish, tell the shards.
struct Reloader {
    control: Rc<RefCell<Control>>,
    shard_commands: Vec<mpsc::Sender<ShardCommand>>,
    listening: RefCell<HashSet<ListenerKey>>,
}

impl Reloader {
    fn reload(&self) -> Result<String, String> {
        let path = self.control.borrow().config().source.clone();
        let generation = self.control.borrow().generation();
        if !path.is_file() {
            let message = format!(
                "reload refused: {} is not a configuration file (the demo cannot be reloaded); still running generation {generation}",
                path.display()
            );
            tracing::error!("{message}");
            return Err(message);
        }
        let config = match crate::config::load(&path).map_err(|e| e.to_string()) {
            Ok(c) => c,
            Err(e) => {
                let message = format!(
                    "reload failed, keeping the running configuration (generation {generation}): {e}"
                );
                tracing::error!("{message}");
                return Err(message);
            }
        };
        let shards = self.shard_commands.len();
        let wanted: HashSet<ListenerKey> = listener_keys(&config).into_iter().collect();
        let mut added = Vec::new();
        {
            let listening = self.listening.borrow();
            let mut new_keys: Vec<&ListenerKey> = wanted.difference(&listening).collect();
            new_keys.sort();
            for key in new_keys {
                match bind_for_shards(&config, key, shards) {
                    Ok(sockets) => added.push((key.clone(), sockets)),
                    Err(e) => {
                        let message = format!(
                            "reload failed, keeping the running configuration (generation {generation}): {e}"
                        );
                        tracing::error!("{message}");
                        return Err(message);
                    }
                }
            }
        }
        let notes = self.control.borrow_mut().reload(Arc::new(config));
        let mut removed: Vec<ListenerKey> = self
            .listening
            .borrow()
            .difference(&wanted)
            .cloned()
            .collect();
        removed.sort();
        for (key, sockets) in added {
            for (commands, socket) in self.shard_commands.iter().zip(sockets) {
                let _ = commands.send(ShardCommand::Listen(key.clone(), socket));
            }
        }
        for key in &removed {
            for commands in &self.shard_commands {
                let _ = commands.send(ShardCommand::Close(key.clone()));
            }
        }
        *self.listening.borrow_mut() = wanted;
        crate::control::health::spawn_checks(&self.control);
        let generation = self.control.borrow().generation();
        let mut message = format!("reloaded {}: generation {generation}", path.display());
        for note in notes {
            tracing::warn!("reload: {note}");
            message.push_str("; ");
            message.push_str(&note);
        }
        tracing::info!("{message}");
        Ok(message)
    }
}

/// What the control thread hears about.
enum Event {
    /// A shard has bound its listeners and accepts.
    ShardStarted(usize),
    /// A shard's thread ended (shard, core, Ok or why not).
    ShardExited(usize, usize, Result<(), String>),
    /// SIGTERM, SIGINT or SIGHUP.
    Signal(i32),
}

/// How often the control thread looks for shard and signal events (signals and a shard's
/// exit are rare; this bounds how late they are noticed).
const EVENT_POLL: Duration = Duration::from_millis(100);

/// The next event, waiting up to `limit` (polled: the control thread's executor also
/// runs the health checks and the admin listeners meanwhile).
async fn next_event(
    events: &mpsc::Receiver<Event>,
    limit: Option<Duration>,
) -> Result<Event, mpsc::RecvTimeoutError> {
    let deadline = limit.map(|l| std::time::Instant::now() + l);
    loop {
        match events.try_recv() {
            Ok(event) => return Ok(event),
            Err(mpsc::TryRecvError::Disconnected) => {
                return Err(mpsc::RecvTimeoutError::Disconnected)
            }
            Err(mpsc::TryRecvError::Empty) => {}
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(mpsc::RecvTimeoutError::Timeout);
        }
        glommio::timer::sleep(EVENT_POLL).await;
    }
}

/// Startup until every shard runs, then the process's life: wait for SIGTERM/SIGINT,
/// reload on SIGHUP, drain for up to `hard_stop_after`, then cut. A shard that fails to
/// start or dies later stops the whole process with an error (a supervisor restarts it)
/// rather than leaving it to serve on fewer cores.
async fn supervise(
    events: &mpsc::Receiver<Event>,
    shards: usize,
    control: &RunControl,
    hard_stop_after: Duration,
    reload: &Rc<dyn Fn() -> Result<String, String>>,
    on_stop: &dyn Fn(),
    on_ready: impl FnOnce(),
) -> Result<(), RuntimeError> {
    let mut exited = 0usize;
    // 1. Startup.
    let mut started = 0usize;
    let mut stop_requested = false;
    while started < shards && !stop_requested {
        match next_event(events, Some(SHARD_START_TIMEOUT)).await {
            Ok(Event::ShardStarted(shard)) => {
                tracing::debug!("shard {shard} accepting");
                started += 1;
            }
            Ok(Event::ShardExited(shard, core, outcome)) => {
                abort(control);
                let reason = match outcome {
                    Ok(()) => "exited while starting".to_string(),
                    Err(e) => format!("cannot start: {e}"),
                };
                return Err(RuntimeError::Shard {
                    shard,
                    core,
                    reason,
                });
            }
            Ok(Event::Signal(sig)) if sig == signal_hook::consts::SIGHUP => {}
            Ok(Event::Signal(_)) => stop_requested = true,
            Err(_) => {
                abort(control);
                return Err(RuntimeError::ShardsSlow {
                    started,
                    shards,
                    waited: SHARD_START_TIMEOUT,
                });
            }
        }
    }
    if !stop_requested {
        on_ready();
    }
    // 2. Running.
    while !stop_requested {
        match next_event(events, None).await {
            Ok(Event::Signal(sig)) if sig == signal_hook::consts::SIGHUP => {
                tracing::info!("SIGHUP received: reloading the configuration");
                // The outcome is logged by the reload itself.
                let _ = reload();
            }
            Ok(Event::Signal(sig)) => {
                tracing::info!(
                    "received signal {sig}: no longer accepting, draining connections for up to {hard_stop_after:?}"
                );
                stop_requested = true;
            }
            Ok(Event::ShardExited(shard, core, outcome)) => {
                abort(control);
                let reason = match outcome {
                    Ok(()) => "stopped unexpectedly".to_string(),
                    Err(e) => format!("stopped unexpectedly: {e}"),
                };
                tracing::error!("shard {shard} on core {core} {reason}; stopping halb");
                return Err(RuntimeError::Shard {
                    shard,
                    core,
                    reason,
                });
            }
            Ok(Event::ShardStarted(_)) => {}
            Err(_) => break,
        }
    }
    // 3. Draining: give up the virtual addresses first (priority 0: the peer takes over
    // now), stop accepting; cut what is left at the deadline, or at once on a second
    // signal.
    on_stop();
    control.stopping.store(true, Ordering::Release);
    let mut deadline = std::time::Instant::now() + hard_stop_after;
    let mut cutting = false;
    while exited < shards {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match next_event(events, Some(left)).await {
            Ok(Event::ShardExited(..)) => exited += 1,
            Ok(Event::Signal(sig)) if sig != signal_hook::consts::SIGHUP && !cutting => {
                tracing::warn!("second signal: cutting remaining connections now");
                control.hard_stop.store(true, Ordering::Release);
                cutting = true;
                deadline = std::time::Instant::now() + HARD_STOP_EXIT;
            }
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) if !cutting => {
                tracing::warn!("grace period over: cutting remaining connections");
                control.hard_stop.store(true, Ordering::Release);
                cutting = true;
                deadline = std::time::Instant::now() + HARD_STOP_EXIT;
            }
            Err(_) => break,
        }
    }
    Ok(())
}

/// A shard's listeners: one accept task per listener, by key.
struct Accepting {
    shard: Rc<Shard>,
    shards: usize,
    tasks: HashMap<ListenerKey, glommio::Task<()>>,
    /// Per frontend name: this shard's share of the frontend's `maxconn`.
    slots: HashMap<String, Rc<Semaphore>>,
}

impl Accepting {
    fn listen(&mut self, key: ListenerKey, socket: Socket) {
        let listener = match crate::l4::socket::Socket::accepted(OwnedFd::from(socket)) {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!("shard {}: cannot watch a listener: {}", self.shard.id, e);
                return;
            }
        };
        let name = key.0.clone();
        let slots = match self.slots.get(&name) {
            Some(s) => Rc::clone(s),
            None => {
                let view = self.shard.view();
                let maxconn = view
                    .snapshot
                    .frontend_index(&name)
                    .map(|i| view.snapshot.config.frontends[i].maxconn)
                    .unwrap_or(1);
                let s = Rc::new(Semaphore::new(per_shard(maxconn as u64, self.shards)));
                self.slots.insert(name.clone(), Rc::clone(&s));
                s
            }
        };
        let task = glommio::spawn_local(accept_loop(
            listener,
            key.1,
            Rc::from(name.as_str()),
            Rc::clone(&self.shard),
            slots,
        ));
        // Replacing a task drops (cancels) the old one, closing its listener.
        self.tasks.insert(key, task);
    }

    fn apply(&mut self, command: ShardCommand) {
        match command {
            ShardCommand::Listen(key, socket) => self.listen(key, socket),
            ShardCommand::Close(key) => {
                if self.tasks.remove(&key).is_some() {
                    tracing::info!(
                        "shard {}: frontend {} no longer listens on {}",
                        self.shard.id,
                        key.0,
                        key.1
                    );
                }
            }
        }
    }
}

/// A shard's life: accept on its listeners until told to stop, then drain.
async fn shard_main(
    shard: Rc<Shard>,
    shards: usize,
    listeners: Vec<(ListenerKey, Socket)>,
    commands: mpsc::Receiver<ShardCommand>,
    control: Arc<RunControl>,
    started: mpsc::Sender<Event>,
) {
    // The shard's readiness reactor (epoll), created now rather than at the first wait.
    drop(reactor::current());
    let mut accepting = Accepting {
        shard: Rc::clone(&shard),
        shards,
        tasks: HashMap::new(),
        slots: HashMap::new(),
    };
    for (key, socket) in listeners {
        accepting.listen(key, socket);
    }
    let _ = started.send(Event::ShardStarted(shard.id));
    drop(started);
    let accepting = RefCell::new(accepting);
    shard
        .run_until_stop(&control, || {
            while let Ok(command) = commands.try_recv() {
                accepting.borrow_mut().apply(command);
            }
        })
        .await;
    // Dropping the tasks cancels the accept loops and closes the listeners.
    drop(accepting);
    shard.drain(&control).await;
}

/// Accept connections of one listener of frontend `frontend` while this shard has
/// connection slots left (when it has none, new connections wait in the kernel's accept
/// backlog). The frontend is looked up by name in the snapshot in force for each
/// connection, so a reload's changes apply to the next connection.
async fn accept_loop(
    listener: crate::l4::socket::Socket,
    address: SocketAddr,
    frontend: Rc<str>,
    shard: Rc<Shard>,
    frontend_slots: Rc<Semaphore>,
) {
    loop {
        let Ok(global) = shard.global_slots.acquire_static_permit(1).await else {
            return;
        };
        let Ok(local) = frontend_slots.acquire_static_permit(1).await else {
            return;
        };
        // Nothing waiting: the listener's readability is awaited (shard reactor).
        match listener.accept().await {
            Ok((fd, peer)) => {
                let view = shard.view();
                let Some(index) = view.snapshot.frontend_index(&frontend) else {
                    // Removed by a reload an instant ago; its listener closes at the
                    // shard's next tick.
                    drop((fd, global, local));
                    continue;
                };
                let config = &view.snapshot.config.frontends[index];
                let http = config.mode == crate::config::Mode::Http;
                // A listener of the frontend's `tls.bind` terminates TLS (decided per
                // connection: a reload may move an address between `bind` and `tls`).
                let tls = config
                    .tls
                    .as_ref()
                    .is_some_and(|t| t.bind.contains(&address));
                let stream = crate::l4::socket::Socket::accepted(fd).and_then(|socket| {
                    if !tls {
                        return Ok(crate::stream::Stream::Plain(socket));
                    }
                    let termination = view.termination(index).ok_or_else(|| {
                        std::io::Error::other("no TLS termination for this frontend")
                    })?;
                    crate::stream::Stream::terminate(socket, Arc::clone(termination))
                });
                let stream = match stream {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::warn!("shard {}: cannot serve a connection: {}", shard.id, e);
                        drop((global, local));
                        continue;
                    }
                };
                let shard = Rc::clone(&shard);
                let frontend = Rc::clone(&frontend);
                glommio::spawn_local(async move {
                    if http {
                        crate::l7::serve(stream, peer, shard, frontend).await;
                    } else {
                        crate::l4::serve(stream, peer, shard, frontend).await;
                    }
                    drop((global, local));
                })
                .detach();
            }
            Err(e) => {
                tracing::warn!("accept failed on shard {}: {}", shard.id, e);
                drop((global, local));
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Test helpers for code that needs a glommio executor.
#[cfg(test)]
pub(crate) mod testing {
    use std::future::Future;

    use glommio::{LocalExecutorBuilder, Placement};

    /// Run `f` on a fresh glommio executor on a thread of its own, as a shard or the
    /// control thread would (a thread's reactor lives with the first executor that made
    /// it, so each call gets a new thread); a panic inside is passed on.
    pub fn on_fresh_executor<F, T>(f: impl FnOnce() -> F + Send + 'static) -> T
    where
        F: Future<Output = T>,
        T: Send + 'static,
    {
        std::thread::spawn(move || {
            LocalExecutorBuilder::new(Placement::Unbound)
                .io_memory(super::IO_MEMORY)
                .make()
                .unwrap()
                .run(f())
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}
