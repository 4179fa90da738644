//! The process: shards (one pinned glommio executor per core) plus the control thread.
//!
//! [`run`] checks everything that can fail early (CPU placement, resource limits, every
//! listen address) before starting anything, then starts the shards, publishes the first
//! snapshot, and turns the calling thread into the control thread: it waits for
//! SIGTERM/SIGINT, tells the shards to stop accepting, lets connections drain for up to
//! `global.hard_stop_after`, then has the shards cut what is left.

pub mod identity;
pub mod limits;
pub mod listener;
pub mod pinning;
pub mod reactor;
pub mod shard;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use glommio::sync::Semaphore;
use glommio::{LocalExecutorBuilder, Placement as GlommioPlacement};
use socket2::Socket;

use crate::config::Config;
use crate::snapshot::{Snapshot, SnapshotCell};
use shard::Shard;

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
}

/// Everything checked and prepared before any thread starts.
struct Prepared {
    placement: pinning::Placement,
    budget: limits::Budget,
    /// Per shard: (frontend index, bound listener).
    listeners: Vec<Vec<(usize, Socket)>>,
}

fn prepare(config: &Config) -> Result<Prepared, RuntimeError> {
    let cores = crate::sys::allowed_cpus();
    let placement = pinning::plan(config.global.shards, config.global.control_core, &cores)?;
    let shards = placement.shard_cores.len();
    // Idle pooled server connections (HTTP backends) hold descriptors too.
    let pooled_per_shard: u64 = config
        .backends
        .iter()
        .filter(|b| {
            b.mode == crate::config::Mode::Http
                && !b.http_server_close
                && b.http_reuse != crate::config::HttpReuse::Never
        })
        .map(|b| u64::from(b.pool_max_idle) * b.servers.len() as u64)
        .sum();
    let budget = limits::prepare(
        config.global.maxconn,
        config.global.maxpipes,
        pooled_per_shard,
        shards,
    )?;
    for frontend in &config.frontends {
        for &address in &frontend.bind {
            listener::probe(&frontend.name, address)?;
        }
    }
    let mut listeners = Vec::with_capacity(shards);
    for _ in 0..shards {
        let mut mine = Vec::new();
        for (index, frontend) in config.frontends.iter().enumerate() {
            for &address in &frontend.bind {
                mine.push((
                    index,
                    listener::bind(&frontend.name, address, frontend.backlog)?,
                ));
            }
        }
        listeners.push(mine);
    }
    Ok(Prepared {
        placement,
        budget,
        listeners,
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
    if let Some(path) = &config.global.admin_socket {
        tracing::warn!(
            "global.admin_socket = {}: the admin API is not implemented yet; no socket is created",
            path.display()
        );
    }
    let mut signals = signal_hook::iterator::Signals::new([
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
    let frontend_shares: Vec<u64> = config
        .frontends
        .iter()
        .map(|f| per_shard(f.maxconn as u64, shards))
        .collect();
    let snapshots = Arc::new(SnapshotCell::new(Snapshot::initial(Arc::new(config))));
    let control = Arc::new(RunControl::default());

    let (events_tx, events) = mpsc::channel::<Event>();
    for (id, (core, listeners)) in prepared
        .placement
        .shard_cores
        .iter()
        .copied()
        .zip(prepared.listeners)
        .enumerate()
    {
        let snapshots = Arc::clone(&snapshots);
        let control = Arc::clone(&control);
        let frontend_shares = frontend_shares.clone();
        let started = events_tx.clone();
        let handle = LocalExecutorBuilder::new(GlommioPlacement::Fixed(core))
            .name(&format!("halb-shard-{id}"))
            .io_memory(IO_MEMORY)
            .spawn(move || async move {
                let shard = Rc::new(Shard::new(id, snapshots, maxpipes, pipesize, global_share));
                shard_main(shard, listeners, frontend_shares, control, started).await;
            })
            .map_err(|e| RuntimeError::Shard {
                shard: id,
                core,
                reason: e.to_string(),
            })?;
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
    if let Some(core) = prepared.placement.control_core {
        core_affinity::set_for_current(core_affinity::CoreId { id: core });
    }
    let outcome = supervise(&events, shards, &control, hard_stop_after, || {
        tracing::info!(
            "shards on cores {:?}, control thread {}",
            prepared.placement.shard_cores,
            match prepared.placement.control_core {
                Some(c) => format!("on core {c}"),
                None => "sharing cores".to_string(),
            }
        );
        on_ready(shards);
    });
    signal_handle.close();
    let _ = signal_thread.join();
    if outcome.is_ok() {
        tracing::info!("stopped");
    }
    outcome
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

/// Startup until every shard runs, then the process's life: wait for SIGTERM/SIGINT,
/// drain for up to `hard_stop_after`, then cut. A shard that fails to start or dies
/// later stops the whole process with an error (a supervisor restarts it) rather than
/// leaving it to serve on fewer cores.
fn supervise(
    events: &mpsc::Receiver<Event>,
    shards: usize,
    control: &RunControl,
    hard_stop_after: Duration,
    on_ready: impl FnOnce(),
) -> Result<(), RuntimeError> {
    let mut exited = 0usize;
    let abort = |control: &RunControl| {
        control.stopping.store(true, Ordering::Release);
        control.hard_stop.store(true, Ordering::Release);
    };
    // 1. Startup.
    let mut started = 0usize;
    let mut stop_requested = false;
    while started < shards && !stop_requested {
        match events.recv_timeout(SHARD_START_TIMEOUT) {
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
        match events.recv() {
            Ok(Event::Signal(sig)) if sig == signal_hook::consts::SIGHUP => {
                tracing::warn!("SIGHUP received: reload is not implemented yet; ignoring it (use SIGTERM and restart)");
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
    // 3. Draining: stop accepting; cut what is left at the deadline, or at once on a
    // second signal.
    control.stopping.store(true, Ordering::Release);
    let mut deadline = std::time::Instant::now() + hard_stop_after;
    let mut cutting = false;
    while exited < shards {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events.recv_timeout(left) {
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

/// A shard's life: accept on its listeners until told to stop, then drain.
async fn shard_main(
    shard: Rc<Shard>,
    listeners: Vec<(usize, Socket)>,
    frontend_shares: Vec<u64>,
    control: Arc<RunControl>,
    started: mpsc::Sender<Event>,
) {
    let frontend_slots: Vec<Rc<Semaphore>> = frontend_shares
        .iter()
        .map(|&n| Rc::new(Semaphore::new(n)))
        .collect();
    // The shard's readiness reactor (epoll), created now rather than at the first wait.
    drop(reactor::current());
    let mut accept_tasks = Vec::with_capacity(listeners.len());
    for (frontend, socket) in listeners {
        let listener = match crate::l4::socket::Socket::accepted(std::os::fd::OwnedFd::from(socket))
        {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!("shard {}: cannot watch a listener: {}", shard.id, e);
                continue;
            }
        };
        let shard = Rc::clone(&shard);
        let slots = Rc::clone(&frontend_slots[frontend]);
        accept_tasks.push(glommio::spawn_local(accept_loop(
            listener, frontend, shard, slots,
        )));
    }
    let _ = started.send(Event::ShardStarted(shard.id));
    drop(started);
    shard.run_until_stop(&control).await;
    // Dropping the tasks cancels the accept loops and closes the listeners.
    drop(accept_tasks);
    shard.drain(&control).await;
}

/// Accept connections of one listener while this shard has connection slots left (when
/// it has none, new connections wait in the kernel's accept backlog).
async fn accept_loop(
    listener: crate::l4::socket::Socket,
    frontend: usize,
    shard: Rc<Shard>,
    frontend_slots: Rc<Semaphore>,
) {
    let http = shard.view().snapshot.config.frontends[frontend].mode == crate::config::Mode::Http;
    loop {
        let Ok(global) = shard.global_slots.acquire_static_permit(1).await else {
            return;
        };
        let Ok(local) = frontend_slots.acquire_static_permit(1).await else {
            return;
        };
        let accepted = loop {
            match crate::sys::accept_now(listener.fd()) {
                // Nothing waiting: await the listener's readability (shard reactor).
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    listener.blocked(reactor::Interest::Read);
                    listener.readable().await;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match accepted {
            Ok((fd, peer)) => {
                let stream = match crate::l4::socket::Socket::accepted(fd) {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::warn!("shard {}: cannot watch a connection: {}", shard.id, e);
                        drop((global, local));
                        continue;
                    }
                };
                let shard = Rc::clone(&shard);
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
