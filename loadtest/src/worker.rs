//! The load itself: one glommio executor per worker core, each driving its share of the
//! connections. Closed loop: each connection sends its next request when the previous
//! response is complete. Open loop (`--rate`): each connection has a fixed schedule of
//! intended send times; latency is measured from the intended time (wrk2's correction for
//! coordinated omission), and a connection whose slot has passed sends at once.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::timer::sleep;
use hdrhistogram::Histogram;

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

/// What every worker shares: the run's parameters and its few global counters.
pub struct Plan {
    pub addr: SocketAddr,
    pub request: Vec<u8>,
    pub close: bool,
    /// When load starts (a little after the workers are spawned, so they start together).
    pub start: Instant,
    /// Requests intended before this instant are warm-up: sent but not recorded.
    pub measure_from: Instant,
    /// No request is started at or after this instant.
    pub deadline: Option<Instant>,
    /// Measured requests to send in all (success or error), if bounded.
    pub requests: Option<u64>,
    pub timeout: Duration,
    pub expect_status: Option<u16>,
    pub expect_body_size: Option<usize>,
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

/// One worker's results (merged by the caller).
pub struct Stats {
    pub hist: Histogram<u64>,
    pub ok: u64,
    pub errors: [u64; 6],
    pub bytes: u64,
    /// Completion time of the last measured request.
    pub last: Option<Instant>,
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
pub async fn run_worker(plan: std::sync::Arc<Plan>, connections: Vec<usize>) -> Stats {
    let stats = Rc::new(RefCell::new(Stats::new()));
    let now = Instant::now();
    if plan.start > now {
        sleep(plan.start - now).await;
    }
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|index| {
            let plan = plan.clone();
            let stats = stats.clone();
            glommio::spawn_local(async move { run_connection(&plan, index, &stats).await })
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

async fn run_connection(plan: &Plan, index: usize, stats: &RefCell<Stats>) {
    let mut stream: Option<TcpStream> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    // Open loop: connection `index` of C sends at start + index/R + k*C/R.
    let interval = plan
        .rate
        .map(|r| Duration::from_secs_f64(plan.total_connections as f64 / r));
    let mut next_slot = plan
        .rate
        .map(|r| plan.start + Duration::from_secs_f64(index as f64 / r));
    loop {
        if plan.stop.load(Ordering::Relaxed) {
            break;
        }
        let intended = match (next_slot, interval) {
            (Some(slot), Some(interval)) => {
                if plan.deadline.is_some_and(|d| slot >= d) {
                    break;
                }
                let now = Instant::now();
                if slot > now {
                    sleep(slot - now).await;
                    if plan.stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                next_slot = Some(slot + interval);
                slot
            }
            _ => {
                let now = Instant::now();
                if plan.deadline.is_some_and(|d| now >= d) {
                    break;
                }
                now
            }
        };
        let measured = intended >= plan.measure_from;
        if measured {
            if let Some(budget) = plan.requests {
                if plan.tickets.fetch_add(1, Ordering::Relaxed) >= budget {
                    plan.stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        let outcome = one_request(plan, &mut stream, &mut buf).await;
        let done = Instant::now();
        match outcome {
            Ok(bytes) => {
                plan.done_ok.fetch_add(1, Ordering::Relaxed);
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
                plan.done_err.fetch_add(1, Ordering::Relaxed);
                if measured {
                    let mut s = stats.borrow_mut();
                    s.errors[kind as usize] += 1;
                    s.bytes += bytes;
                    s.last = Some(done);
                }
                if kind == ErrorKind::Connect && plan.rate.is_none() {
                    // Closed loop: don't spin on a refused port.
                    sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

/// One request/response on the connection (opened if needed). Ok: response bytes.
/// Err: the error kind and the response bytes received (for complete but rejected ones).
async fn one_request(
    plan: &Plan,
    stream: &mut Option<TcpStream>,
    buf: &mut Vec<u8>,
) -> Result<u64, (ErrorKind, u64)> {
    let started = Instant::now();
    if stream.is_none() {
        let connect = async {
            let s = TcpStream::connect(plan.addr).await.ok()?;
            s.set_nodelay(true).ok()?;
            Some(s)
        };
        let timed_out = async {
            sleep(plan.timeout).await;
            None
        };
        match future::or(connect, timed_out).await {
            Some(s) => *stream = Some(s),
            None => return Err((ErrorKind::Connect, 0)),
        }
    }
    let remaining = plan.timeout.saturating_sub(started.elapsed());
    let s = stream.as_mut().expect("connected above");
    let exchange = exchange(plan, s, buf);
    let timed_out = async {
        sleep(remaining).await;
        Err(ErrorKind::Timeout)
    };
    let result = future::or(exchange, timed_out).await;
    let response = match result {
        Ok(r) => r,
        Err(kind) => {
            *stream = None;
            return Err((kind, 0));
        }
    };
    if response.close || plan.close {
        *stream = None;
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

async fn exchange(
    plan: &Plan,
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<crate::http::Response, ErrorKind> {
    s.write_all(&plan.request)
        .await
        .map_err(|_| ErrorKind::Reset)?;
    buf.clear();
    let mut parser = Parser::new();
    loop {
        let len = buf.len();
        buf.resize(len + 16 * 1024, 0);
        let n = match s.read(&mut buf[len..]).await {
            Ok(n) => n,
            Err(_) => {
                buf.truncate(len);
                return Err(ErrorKind::Reset);
            }
        };
        buf.truncate(len + n);
        let eof = n == 0;
        match parser.advance(buf, eof) {
            Err(_) => return Err(ErrorKind::BadFraming),
            Ok(Progress::Partial) if eof => return Err(ErrorKind::Reset),
            Ok(Progress::Partial) => {}
            Ok(Progress::Complete(r)) => {
                // We never pipeline: bytes past the response are a framing violation.
                if r.wire_len < buf.len() {
                    return Err(ErrorKind::BadFraming);
                }
                return Ok(r);
            }
        }
    }
}
