//! Plain TCP load, with the HTTP worker's conventions and I/O path (`worker.rs`): one
//! glommio executor per worker core, its share of the connections, the same schedule and
//! error kinds; sockets driven with plain non-blocking `send`/`recv` on halb's epoll
//! reactor (`halb::l4::socket::Socket`); timeouts from the worker's watchdog (one task per
//! worker scanning the connections' deadlines, no timer per exchange); progress counters
//! flushed in batches.
//!
//! - request/response (`tcp://`): each exchange writes `--payload` bytes and reads exactly
//!   `--response` bytes back (an echo server by default); latency per exchange, closed or
//!   open loop. Nothing is allocated per exchange: each connection reuses one buffer.
//! - bulk (`tcp-bulk://`): each connection writes `--payload`-sized buffers as fast as the
//!   peer takes them until the deadline; bytes written are counted, no latency. A write
//!   still waiting for the peer at the deadline ends the connection's run, not an error.
//!
//! A new connection is confirmed by its first `send` (as in `worker.rs`): a failure or a
//! timeout before any `send` succeeded is a connect error.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::timer::sleep;
use halb::l4::socket::Socket;

use crate::worker::{
    connect, drive_connections, flush_progress, Deadline, ErrorKind, Stats, Timeline, Turn,
    PROGRESS_BATCH,
};

/// What every TCP worker shares.
pub struct TcpPlan {
    pub addr: SocketAddr,
    pub bulk: bool,
    /// The bytes written per exchange (request/response) or per write (bulk).
    pub payload: Vec<u8>,
    /// Request/response: bytes expected back per exchange.
    pub response: usize,
    /// Request/response: a new connection per exchange.
    pub close: bool,
    pub timeout: Duration,
    pub timeline: Timeline,
}

/// The payload: a repeating, recognisable pattern.
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A worker's body: run its connections (global indices) to the end and return the stats.
pub async fn run_worker(plan: Arc<TcpPlan>, connections: Vec<usize>) -> Stats {
    let (timeline, timeout) = (&plan.timeline, plan.timeout);
    drive_connections(timeline, timeout, connections, |index, stats, deadline| {
        let plan = plan.clone();
        async move {
            if plan.bulk {
                bulk_connection(&plan, &stats, &deadline).await
            } else {
                exchange_connection(&plan, index, &stats, &deadline).await
            }
        }
    })
    .await
}

fn record_error(stats: &RefCell<Stats>, kind: ErrorKind, measured: bool, at: Instant) {
    if measured {
        let mut s = stats.borrow_mut();
        s.errors[kind as usize] += 1;
        s.last = Some(at);
    }
}

/// A request/response connection's state, kept across exchanges: the socket (when open)
/// and the receive buffer, allocated once.
struct Conn {
    socket: Option<Socket>,
    /// `--response` bytes, and one more: each `recv` asks for one byte past the response,
    /// so the read that completes it is short, which tells the reactor the socket is
    /// drained (the next exchange then waits for an event instead of spending a `recv` on
    /// `WouldBlock`).
    buf: Vec<u8>,
    /// Bytes at the start of `buf` that came with the last response but belong to the
    /// next one (a peer that sent more than asked): the stream's order is kept.
    early: usize,
}

impl Conn {
    fn close(&mut self) {
        self.socket = None;
        self.early = 0;
    }
}

async fn exchange_connection(
    plan: &TcpPlan,
    index: usize,
    stats: &RefCell<Stats>,
    deadline: &Deadline,
) {
    let mut conn = Conn {
        socket: None,
        buf: vec![0; plan.response + 1],
        early: 0,
    };
    // Progress counters, flushed to the shared atomics now and then (as in `worker.rs`).
    let (mut pending_ok, mut pending_err) = (0u64, 0u64);
    let timeline = &plan.timeline;
    let mut slots = timeline.slots(index);
    loop {
        // Flush before idling, so the progress line stays current.
        let idle = || flush_progress(timeline, &mut pending_ok, &mut pending_err);
        let Some(Turn { intended, measured }) = timeline.next_turn(&mut slots, idle).await else {
            break;
        };
        deadline.arm(Instant::now() + plan.timeout);
        let outcome = exchange_within(plan, &mut conn, deadline).await;
        deadline.disarm();
        let done = Instant::now();
        match outcome {
            Ok(()) => {
                pending_ok += 1;
                if measured {
                    let mut s = stats.borrow_mut();
                    let us = done.saturating_duration_since(intended).as_micros() as u64;
                    s.hist.saturating_record(us.max(1));
                    s.ok += 1;
                    s.bytes += plan.response as u64;
                    s.last = Some(done);
                }
            }
            Err(kind) => {
                pending_err += 1;
                record_error(stats, kind, measured, done);
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

/// One exchange on the connection (opened if needed), within the armed deadline.
async fn exchange_within(
    plan: &TcpPlan,
    conn: &mut Conn,
    deadline: &Deadline,
) -> Result<(), ErrorKind> {
    let mut confirmed = conn.socket.is_some();
    if !confirmed {
        conn.socket = Some(connect(plan.addr).map_err(|_| ErrorKind::Connect)?);
    }
    let s = conn.socket.as_ref().expect("connected above");
    let (buf, early, sent) = (&mut conn.buf, &mut conn.early, &mut confirmed);
    let exchange = async move {
        send_payload(s, &plan.payload, sent).await?;
        receive(s, buf, early, plan.response).await
    };
    let result = match deadline.run(exchange).await {
        Some(result) => result,
        None if confirmed => Err(ErrorKind::Timeout),
        None => Err(ErrorKind::Connect),
    };
    if result.is_err() || plan.close {
        conn.close();
    }
    result
}

/// Write all of `payload`. Until `confirmed`, the connection is new and not known to be
/// established: the first `send` that succeeds confirms it (a zero-length one when the
/// payload is empty), and a failure before that is the connect's.
async fn send_payload(s: &Socket, mut rest: &[u8], confirmed: &mut bool) -> Result<(), ErrorKind> {
    while !rest.is_empty() || !*confirmed {
        match s.send(rest) {
            Ok(n) => {
                rest = &rest[n..];
                *confirmed = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => s.writable().await,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) if *confirmed => return Err(ErrorKind::Reset),
            Err(_) => return Err(ErrorKind::Connect),
        }
    }
    Ok(())
}

/// Receive one response of `response` bytes into `buf` (`response + 1` long), of which
/// the first `early` are in already; leaves the bytes past the response, if any, at the
/// start of `buf` for the next exchange.
async fn receive(
    s: &Socket,
    buf: &mut [u8],
    early: &mut usize,
    response: usize,
) -> Result<(), ErrorKind> {
    let mut filled = *early;
    while filled < response {
        // Only read when the reactor says there may be something (see `worker.rs`).
        s.readable().await;
        match s.recv(&mut buf[filled..]) {
            Ok(0) => return Err(ErrorKind::Reset),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(ErrorKind::Reset),
        }
    }
    buf.copy_within(response..filled, 0);
    *early = filled - response;
    Ok(())
}

/// How often at most a bulk connection's progress waits unflushed: writes to a slow peer
/// may take long to fill a batch.
const BULK_FLUSH: Duration = Duration::from_millis(100);

async fn bulk_connection(plan: &TcpPlan, stats: &RefCell<Stats>, deadline: &Deadline) {
    let timeline = &plan.timeline;
    let Some(end) = timeline.deadline else {
        return;
    };
    let mut socket: Option<Socket> = None;
    let mut confirmed = false;
    let (mut pending_ok, mut pending_err) = (0u64, 0u64);
    let mut next_flush = Instant::now() + BULK_FLUSH;
    loop {
        let started = Instant::now();
        if timeline.stop.load(Ordering::Relaxed) || started >= end {
            break;
        }
        let measured = started >= timeline.measure_from;
        if socket.is_none() {
            match connect(plan.addr) {
                Ok(s) => {
                    socket = Some(s);
                    confirmed = false;
                }
                Err(_) => {
                    pending_err += 1;
                    record_error(stats, ErrorKind::Connect, measured, started);
                    flush_progress(timeline, &mut pending_ok, &mut pending_err);
                    sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let s = socket.as_ref().expect("connected above");
        // The write's timeout, cut short by the end of the run.
        let until = (started + plan.timeout).min(end);
        deadline.arm(until);
        let write = deadline
            .run(send_payload(s, &plan.payload, &mut confirmed))
            .await;
        deadline.disarm();
        let done = Instant::now();
        let failed = match write {
            Some(Ok(())) => {
                pending_ok += 1;
                if measured && done <= end {
                    let mut s = stats.borrow_mut();
                    s.ok += 1;
                    s.bytes += plan.payload.len() as u64;
                    s.last = Some(done);
                }
                None
            }
            Some(Err(kind)) => Some(kind),
            // Still waiting for the peer when the run ends: the end, not an error.
            None if until >= end => break,
            None if confirmed => Some(ErrorKind::Timeout),
            None => Some(ErrorKind::Connect),
        };
        if let Some(kind) = failed {
            socket = None;
            pending_err += 1;
            record_error(stats, kind, measured, done);
            if kind == ErrorKind::Connect {
                // Don't spin on a refused port.
                flush_progress(timeline, &mut pending_ok, &mut pending_err);
                sleep(Duration::from_millis(10)).await;
            }
        }
        if pending_ok + pending_err >= PROGRESS_BATCH || done >= next_flush {
            flush_progress(timeline, &mut pending_ok, &mut pending_err);
            next_flush = done + BULK_FLUSH;
        }
    }
    flush_progress(timeline, &mut pending_ok, &mut pending_err);
}
