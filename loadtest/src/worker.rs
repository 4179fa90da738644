//! The load itself: one glommio executor per worker core, each driving its share of the
//! connections. Closed loop: each connection sends its next request when the previous
//! response is complete. Open loop (`--rate`): each connection has a fixed schedule of
//! intended send times; latency is measured from the intended time (wrk2's correction for
//! coordinated omission), and a connection whose slot has passed sends at once.
//!
//! Sockets are driven like halb's shards drive theirs (`halb::l4::socket::Socket`): plain
//! non-blocking `send`/`recv`, waiting for readiness through the thread's edge-triggered
//! epoll reactor (`halb::runtime::reactor`), not through one io_uring poll per wait, whose
//! completion the kernel signals with an IPI each (glommio's rings have no
//! `IORING_SETUP_COOP_TASKRUN`). Nothing is allocated per request: the request bytes are
//! built once, each connection reuses one receive buffer, and responses are parsed in it.
//!
//! `https://` runs the same code over halb's [`ClientTls`] (rustls driven on the same
//! socket and reactor): the exchange is generic over [`Transport`], monomorphised once
//! for a plain [`Socket`] and once for TLS, so the plain path pays nothing for TLS. The
//! TLS handshake of a new connection runs within the request's deadline.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::future::poll_fn;
use glommio::timer::sleep;
use halb::l4::socket::Socket;
use halb::sys;
use halb::tls::server::HTTP_ALPN;
use halb::tls::stream::{ClientTls, Transport};
use hdrhistogram::Histogram;
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion};

use crate::http::{Parser, Progress};

/// Error kinds, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Connect,
    Timeout,
    Reset,
    BadStatus,
    BadFraming,
    BadBodySize,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::BadStatus,
        ErrorKind::BadFraming,
        ErrorKind::BadBodySize,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::BadStatus => "bad_status",
            ErrorKind::BadFraming => "bad_framing",
            ErrorKind::BadBodySize => "bad_body_size",
        }
    }
}

/// What every worker of a run shares, whatever it speaks (HTTP here, TCP in `tcp.rs`):
/// when load starts and stops, the warm-up, the `--requests` budget, the open-loop rate,
/// and the few global counters.
pub struct Timeline {
    /// When load starts (a little after the workers are spawned, so they start together).
    pub start: Instant,
    /// Requests intended before this instant are warm-up: sent but not recorded.
    pub measure_from: Instant,
    /// No request is started at or after this instant.
    pub deadline: Option<Instant>,
    /// Measured requests to send in all (success or error), if bounded.
    pub requests: Option<u64>,
    /// Open loop: total requests per second across all connections.
    pub rate: Option<f64>,
    pub total_connections: usize,
    /// Tickets handed out for measured requests (the `--requests` budget).
    pub tickets: AtomicU64,
    pub stop: AtomicBool,
    /// Live counters for the progress line.
    pub done_ok: AtomicU64,
    pub done_err: AtomicU64,
}

/// One request's turn: when it was meant to start, and whether it is recorded.
pub struct Turn {
    pub intended: Instant,
    pub measured: bool,
}

/// A connection's open-loop schedule (empty in closed loop): connection `index` of C
/// sends at start + index/R + k*C/R.
pub struct Slots {
    next: Option<Instant>,
    interval: Option<Duration>,
}

impl Timeline {
    /// Connection `index`'s schedule.
    pub fn slots(&self, index: usize) -> Slots {
        Slots {
            next: self
                .rate
                .map(|r| self.start + Duration::from_secs_f64(index as f64 / r)),
            interval: self
                .rate
                .map(|r| Duration::from_secs_f64(self.total_connections as f64 / r)),
        }
    }

    /// Wait for the connection's next turn (open loop: its slot; closed loop: now), or
    /// `None` when the run is over (stopped, past the deadline, or the budget spent).
    /// `idle` runs before waiting for a slot.
    pub async fn next_turn(&self, slots: &mut Slots, idle: impl FnOnce()) -> Option<Turn> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let intended = match (slots.next, slots.interval) {
            (Some(slot), Some(interval)) => {
                if self.deadline.is_some_and(|d| slot >= d) {
                    return None;
                }
                let now = Instant::now();
                if slot > now {
                    idle();
                    sleep(slot - now).await;
                    if self.stop.load(Ordering::Relaxed) {
                        return None;
                    }
                }
                slots.next = Some(slot + interval);
                slot
            }
            _ => {
                let now = Instant::now();
                if self.deadline.is_some_and(|d| now >= d) {
                    return None;
                }
                now
            }
        };
        let measured = intended >= self.measure_from;
        if measured {
            if let Some(budget) = self.requests {
                if self.tickets.fetch_add(1, Ordering::Relaxed) >= budget {
                    self.stop.store(true, Ordering::Relaxed);
                    return None;
                }
            }
        }
        Some(Turn { intended, measured })
    }

    /// Wait until load starts.
    pub async fn started(&self) {
        let now = Instant::now();
        if self.start > now {
            sleep(self.start - now).await;
        }
    }
}

/// What every HTTP worker shares.
pub struct Plan {
    pub addr: SocketAddr,
    /// `https://`: how to open TLS on each connection (`None`: plain HTTP).
    pub tls: Option<TlsPlan>,
    pub request: Vec<u8>,
    pub close: bool,
    pub timeout: Duration,
    pub expect_status: Option<u16>,
    pub expect_body_size: Option<usize>,
    pub timeline: Timeline,
}

/// TLS settings of an `https://` run.
pub struct TlsPlan {
    /// Verification, versions and ALPN. Session resumption is set per worker (see
    /// `resume`).
    pub config: Arc<ClientConfig>,
    /// The name sent as SNI (none for an IP address) and verified in the certificate.
    pub server_name: ServerName<'static>,
    /// Resume sessions on new connections: one in-memory session cache per worker,
    /// shared by its connections. Off: every handshake is a full one.
    pub resume: bool,
}

/// Sessions kept by a worker's cache with `--tls-resume`.
const SESSION_CACHE: usize = 256;

impl TlsPlan {
    /// One worker's client configuration: its own session cache, or none.
    fn worker_config(&self) -> Arc<ClientConfig> {
        let mut config = (*self.config).clone();
        config.resumption = if self.resume {
            Resumption::in_memory_sessions(SESSION_CACHE)
        } else {
            Resumption::disabled()
        };
        Arc::new(config)
    }
}

/// TLS handshakes of measured requests.
#[derive(Debug, Default, Clone)]
pub struct TlsStats {
    /// Completed handshakes (full and resumed).
    pub handshakes: u64,
    /// Of which resumed an earlier session.
    pub resumed: u64,
    /// The version negotiated (the first one seen).
    pub version: Option<ProtocolVersion>,
    /// The ALPN protocol agreed (the first one seen), if any: we offer only `http/1.1`,
    /// and rustls refuses a server that picks another.
    pub alpn: Option<&'static str>,
}

impl TlsStats {
    fn merge(&mut self, other: &TlsStats) {
        self.handshakes += other.handshakes;
        self.resumed += other.resumed;
        if self.version.is_none() {
            self.version = other.version;
        }
        if self.alpn.is_none() {
            self.alpn = other.alpn;
        }
    }
}

/// One worker's results (merged by the caller).
pub struct Stats {
    pub hist: Histogram<u64>,
    pub ok: u64,
    pub errors: [u64; 6],
    pub bytes: u64,
    /// Completion time of the last measured request.
    pub last: Option<Instant>,
    /// TLS handshakes (all zero for plain HTTP).
    pub tls: TlsStats,
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            // 1 µs to 1 hour, 3 significant figures.
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            ok: 0,
            errors: [0; 6],
            bytes: 0,
            last: None,
            tls: TlsStats::default(),
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        self.hist
            .add(&other.hist)
            .expect("histograms with the same bounds merge");
        self.ok += other.ok;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.bytes += other.bytes;
        self.last = self.last.max(other.last);
        self.tls.merge(&other.tls);
    }

    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

/// A worker's body: run its connections (global indices) to the end and return the stats.
pub async fn run_worker(plan: Arc<Plan>, connections: Vec<usize>) -> Stats {
    match &plan.tls {
        None => run_connections::<Socket>(plan.clone(), connections, Rc::new(())).await,
        Some(tls) => {
            let dialer = Rc::new(TlsDialer {
                config: tls.worker_config(),
                server_name: tls.server_name.clone(),
            });
            run_connections::<ClientTls>(plan.clone(), connections, dialer).await
        }
    }
}

/// A connection's stream, opened over a connected socket: the plain socket itself, or
/// TLS after its handshake.
pub(crate) trait Dial: Transport + Sized + 'static {
    /// What opening needs (shared by a worker's connections).
    type Dialer: 'static;

    /// Open the stream over `socket` (not yet known to be connected); `None` on failure.
    /// TLS: the handshake's facts with the stream.
    fn dial(
        socket: Socket,
        dialer: &Self::Dialer,
    ) -> impl Future<Output = Option<(Self, Option<Handshake>)>>;
}

/// What a completed TLS handshake negotiated.
pub(crate) struct Handshake {
    resumed: bool,
    version: Option<ProtocolVersion>,
    alpn: Option<&'static str>,
}

impl Dial for Socket {
    type Dialer = ();

    async fn dial(socket: Socket, _: &()) -> Option<(Socket, Option<Handshake>)> {
        Some((socket, None))
    }
}

/// A worker's TLS client: its configuration (with its session cache) and the name.
pub(crate) struct TlsDialer {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl Dial for ClientTls {
    type Dialer = TlsDialer;

    async fn dial(socket: Socket, dialer: &TlsDialer) -> Option<(ClientTls, Option<Handshake>)> {
        let conn = ClientConnection::new(dialer.config.clone(), dialer.server_name.clone()).ok()?;
        let tls = ClientTls::new(socket, conn);
        tls.handshake().await.ok()?;
        let handshake = Handshake {
            resumed: tls.resumed(),
            version: tls.protocol_version(),
            alpn: tls.with_connection(|c| {
                (c.alpn_protocol() == Some(HTTP_ALPN.as_bytes())).then_some(HTTP_ALPN)
            }),
        };
        Some((tls, Some(handshake)))
    }
}

async fn run_connections<T: Dial>(
    plan: Arc<Plan>,
    connections: Vec<usize>,
    dialer: Rc<T::Dialer>,
) -> Stats {
    let timeline = &plan.timeline;
    let timeout = plan.timeout;
    drive_connections(timeline, timeout, connections, |index, stats, deadline| {
        let plan = plan.clone();
        let dialer = dialer.clone();
        async move { run_connection::<T>(&plan, &dialer, index, &stats, &deadline).await }
    })
    .await
}

/// What every worker (HTTP or TCP) does with its connections: wait for the start, run
/// one task per connection (`connection(global index, shared stats, its deadline)`) with
/// one watchdog for all their timeouts, and return the merged stats once all are done.
pub(crate) async fn drive_connections<F, Fut>(
    timeline: &Timeline,
    timeout: Duration,
    connections: Vec<usize>,
    connection: F,
) -> Stats
where
    F: Fn(usize, Rc<RefCell<Stats>>, DeadlineRef) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let stats = Rc::new(RefCell::new(Stats::new()));
    let watch = Rc::new(Watch {
        deadlines: (0..connections.len())
            .map(|_| Deadline::default())
            .collect(),
    });
    timeline.started().await;
    // Dropped (so cancelled) once the connections are done.
    let _watchdog = glommio::spawn_local(watchdog(watch.clone(), tick(timeout)));
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(slot, index)| {
            let deadline = DeadlineRef {
                watch: watch.clone(),
                slot,
            };
            glommio::spawn_local(connection(index, stats.clone(), deadline))
        })
        .collect();
    for task in tasks {
        task.await;
    }
    Rc::try_unwrap(stats)
        .map(RefCell::into_inner)
        .unwrap_or_else(|rc| {
            let mut s = Stats::new();
            s.merge(&rc.borrow());
            s
        })
}

/// One connection's [`Deadline`] in its worker's [`Watch`] (owned, so a connection task
/// can hold it).
pub(crate) struct DeadlineRef {
    watch: Rc<Watch>,
    slot: usize,
}

impl std::ops::Deref for DeadlineRef {
    type Target = Deadline;

    fn deref(&self) -> &Deadline {
        &self.watch.deadlines[self.slot]
    }
}

/// Request timeouts without a timer per request: each connection publishes the deadline
/// of the request it is on, and one task per worker looks at them every `tick` and wakes
/// (with `expired` set) the connections past theirs. A timeout fires up to one tick late.
struct Watch {
    deadlines: Vec<Deadline>,
}

#[derive(Default)]
pub(crate) struct Deadline {
    at: Cell<Option<Instant>>,
    expired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// The watchdog's period: a twentieth of the timeout, between 1 ms and 10 ms.
fn tick(timeout: Duration) -> Duration {
    (timeout / 20).clamp(Duration::from_millis(1), Duration::from_millis(10))
}

async fn watchdog(watch: Rc<Watch>, tick: Duration) {
    loop {
        sleep(tick).await;
        let now = Instant::now();
        for d in &watch.deadlines {
            if d.at.get().is_some_and(|at| at <= now) && !d.expired.get() {
                d.expired.set(true);
                if let Some(w) = d.waker.borrow_mut().take() {
                    w.wake();
                }
            }
        }
    }
}

impl Deadline {
    pub(crate) fn arm(&self, at: Instant) {
        self.at.set(Some(at));
        self.expired.set(false);
    }

    pub(crate) fn disarm(&self) {
        self.at.set(None);
        self.expired.set(false);
    }

    /// Run `work` until it completes (`Some`) or the deadline passes (`None`).
    pub(crate) async fn run<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let mut work = std::pin::pin!(work);
        poll_fn(|cx| {
            if self.expired.get() {
                return Poll::Ready(None);
            }
            if let Poll::Ready(v) = work.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            let mut waker = self.waker.borrow_mut();
            match &*waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }
}

async fn run_connection<T: Dial>(
    plan: &Plan,
    dialer: &T::Dialer,
    index: usize,
    stats: &RefCell<Stats>,
    deadline: &Deadline,
) {
    let mut conn = Conn::<T> {
        stream: None,
        buf: vec![0; READ_CHUNK],
        handshake: None,
    };
    // Progress counters, flushed to the shared atomics now and then (not per request: the
    // workers would contend on their cache line).
    let (mut pending_ok, mut pending_err) = (0u64, 0u64);
    let timeline = &plan.timeline;
    let mut slots = timeline.slots(index);
    loop {
        // Flush before idling, so the progress line stays current.
        let idle = || flush_progress(timeline, &mut pending_ok, &mut pending_err);
        let Some(Turn { intended, measured }) = timeline.next_turn(&mut slots, idle).await else {
            break;
        };
        let outcome = one_request(plan, dialer, &mut conn, deadline).await;
        let done = Instant::now();
        if let Some(hs) = conn.handshake.take() {
            if measured {
                let tls = &mut stats.borrow_mut().tls;
                tls.handshakes += 1;
                tls.resumed += u64::from(hs.resumed);
                if tls.version.is_none() {
                    tls.version = hs.version;
                }
                if tls.alpn.is_none() {
                    tls.alpn = hs.alpn;
                }
            }
        }
        match outcome {
            Ok(bytes) => {
                pending_ok += 1;
                if measured {
                    let mut s = stats.borrow_mut();
                    let us = done.saturating_duration_since(intended).as_micros() as u64;
                    s.hist.saturating_record(us.max(1));
                    s.ok += 1;
                    s.bytes += bytes;
                    s.last = Some(done);
                }
            }
            Err((kind, bytes)) => {
                pending_err += 1;
                if measured {
                    let mut s = stats.borrow_mut();
                    s.errors[kind as usize] += 1;
                    s.bytes += bytes;
                    s.last = Some(done);
                }
                if kind == ErrorKind::Connect && timeline.rate.is_none() {
                    // Closed loop: don't spin on a refused port.
                    flush_progress(timeline, &mut pending_ok, &mut pending_err);
                    sleep(Duration::from_millis(10)).await;
                }
            }
        }
        if pending_ok + pending_err >= PROGRESS_BATCH {
            flush_progress(timeline, &mut pending_ok, &mut pending_err);
        }
    }
    flush_progress(timeline, &mut pending_ok, &mut pending_err);
}

/// Requests counted locally before the shared progress counters are updated.
pub(crate) const PROGRESS_BATCH: u64 = 64;

pub(crate) fn flush_progress(timeline: &Timeline, ok: &mut u64, err: &mut u64) {
    if *ok > 0 {
        timeline
            .done_ok
            .fetch_add(std::mem::take(ok), Ordering::Relaxed);
    }
    if *err > 0 {
        timeline
            .done_err
            .fetch_add(std::mem::take(err), Ordering::Relaxed);
    }
}

/// Bytes asked of each `recv` (the buffer grows by this much when a response needs more).
const READ_CHUNK: usize = 16 * 1024;

/// Bytes asked of each `recv` while counting a large body (the buffer grows to this once
/// per connection): fewer syscalls per GiB for bulk downloads.
const COUNT_CHUNK: usize = 128 * 1024;

/// One connection's state, kept across requests: the stream (when open) and the receive
/// buffer, allocated (and zeroed) once and reused for every response.
struct Conn<T> {
    stream: Option<T>,
    buf: Vec<u8>,
    /// The handshake of the connection opened by the last request, not yet counted.
    handshake: Option<Handshake>,
}

/// One request/response on the connection (opened if needed). Ok: response bytes.
/// Err: the error kind and the response bytes received (for complete but rejected ones).
async fn one_request<T: Dial>(
    plan: &Plan,
    dialer: &T::Dialer,
    conn: &mut Conn<T>,
    deadline: &Deadline,
) -> Result<u64, (ErrorKind, u64)> {
    deadline.arm(Instant::now() + plan.timeout);
    let result = request_within(plan, dialer, conn, deadline).await;
    deadline.disarm();
    result
}

async fn request_within<T: Dial>(
    plan: &Plan,
    dialer: &T::Dialer,
    conn: &mut Conn<T>,
    deadline: &Deadline,
) -> Result<u64, (ErrorKind, u64)> {
    // A new plain connection is confirmed by the request's own `send` (as wrk does): it
    // succeeds once the TCP handshake is done, waits for writability while it is not,
    // and fails if the connect failed. No syscall is spent on the confirmation alone.
    // A TLS connection is confirmed by its handshake, within the request's deadline; a
    // failed or timed-out handshake is a connect error.
    let fresh = conn.stream.is_none();
    if fresh {
        let socket = connect(plan.addr).map_err(|_| (ErrorKind::Connect, 0))?;
        match deadline.run(T::dial(socket, dialer)).await {
            Some(Some((stream, handshake))) => {
                conn.stream = Some(stream);
                conn.handshake = handshake;
            }
            _ => return Err((ErrorKind::Connect, 0)),
        }
    }
    let s = conn.stream.as_ref().expect("connected above");
    let sent = Cell::new(false);
    let result = deadline
        .run(exchange(plan, s, &mut conn.buf, fresh, &sent))
        .await
        .unwrap_or(Err(if fresh && !sent.get() {
            ErrorKind::Connect
        } else {
            ErrorKind::Timeout
        }));
    let response = match result {
        Ok(r) => r,
        Err(kind) => {
            conn.stream = None;
            return Err((kind, 0));
        }
    };
    if response.close || plan.close {
        conn.stream = None;
    }
    let bytes = response.wire_len as u64;
    let status_ok = match plan.expect_status {
        Some(want) => response.status == want,
        None => (200..400).contains(&response.status),
    };
    if !status_ok {
        return Err((ErrorKind::BadStatus, bytes));
    }
    if plan
        .expect_body_size
        .is_some_and(|want| want != response.body_len)
    {
        return Err((ErrorKind::BadBodySize, bytes));
    }
    Ok(bytes)
}

/// A non-blocking connect, its socket registered with this thread's epoll reactor (as
/// halb's shards connect to backends). Whether it succeeded is learnt from the first
/// `send` (see [`request_within`]).
pub(crate) fn connect(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::connected(sys::connect_start(addr)?)?;
    sys::set_nodelay(socket.fd())?;
    Ok(socket)
}

/// Send the request, then receive into `buf` (reused: only its first `filled` bytes are
/// this response's) until the parser says the response is complete. A body with a
/// Content-Length that does not fit the buffer is counted, not kept: the buffer is
/// reused for it, so a response of any size takes constant memory.
async fn exchange<T: Transport>(
    plan: &Plan,
    s: &T,
    buf: &mut Vec<u8>,
    fresh: bool,
    sent: &Cell<bool>,
) -> Result<crate::http::Response, ErrorKind> {
    if send_all(s, &plan.request).await.is_err() {
        return Err(if fresh {
            ErrorKind::Connect
        } else {
            ErrorKind::Reset
        });
    }
    sent.set(true);
    let mut filled = 0;
    let mut parser = Parser::new();
    loop {
        if filled == buf.len() {
            if let Some(r) = parser.length_framed() {
                if buf.len() < COUNT_CHUNK {
                    buf.resize(COUNT_CHUNK, 0);
                }
                return count_body(s, buf, r, filled).await;
            }
            // A head or a chunked body larger than the buffer: grow it (once per
            // connection, as a rule).
            buf.resize(buf.len() + READ_CHUNK, 0);
        }
        // Only read when the reactor says there may be something: right after the
        // request, the answer is rarely there yet, and a `recv` that says `WouldBlock`
        // would be a syscall for nothing (the previous response's short read, or the new
        // connection, left the socket marked drained).
        s.readable().await;
        let n = match s.recv(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(ErrorKind::Reset),
        };
        filled += n;
        let eof = n == 0;
        match parser.advance(&buf[..filled], eof) {
            Err(_) => return Err(ErrorKind::BadFraming),
            Ok(Progress::Partial) if eof => return Err(ErrorKind::Reset),
            Ok(Progress::Partial) => {}
            Ok(Progress::Complete(r)) => {
                // We never pipeline: bytes past the response are a framing violation.
                if r.wire_len < filled {
                    return Err(ErrorKind::BadFraming);
                }
                return Ok(r);
            }
        }
    }
}

/// The rest of a Content-Length response (`response`, of which `received` bytes are in),
/// read over and over into `buf` and only counted.
async fn count_body<T: Transport>(
    s: &T,
    buf: &mut [u8],
    response: crate::http::Response,
    mut received: usize,
) -> Result<crate::http::Response, ErrorKind> {
    while received < response.wire_len {
        s.readable().await;
        match s.recv(buf) {
            Ok(0) => return Err(ErrorKind::Reset),
            Ok(n) => received += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(ErrorKind::Reset),
        }
    }
    if received > response.wire_len {
        // Bytes past the response: we never pipeline.
        return Err(ErrorKind::BadFraming);
    }
    Ok(response)
}

/// Write all of `bytes` and flush them (a TLS stream may queue records), awaiting room
/// as needed. On a plain socket `flush` is a no-op that compiles away.
async fn send_all<T: Transport>(s: &T, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match s.send(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => s.writable().await,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    loop {
        match s.flush() {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => s.writable().await,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
