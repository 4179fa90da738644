//! Plain TCP load, with the HTTP worker's conventions (one glommio executor per worker
//! core, its share of the connections, the same schedule and error kinds):
//!
//! - request/response (`tcp://`): each exchange writes `--payload` bytes and reads exactly
//!   `--response` bytes back (an echo server by default); latency per exchange, closed or
//!   open loop.
//! - bulk (`tcp-bulk://`): each connection writes `--payload`-sized buffers as fast as the
//!   peer takes them until the deadline; bytes written are counted, no latency.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::timer::sleep;

use crate::worker::{ErrorKind, Stats, Timeline, Turn};

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

pub async fn run_worker(plan: Arc<TcpPlan>, connections: Vec<usize>) -> Stats {
    let stats = Rc::new(RefCell::new(Stats::new()));
    plan.timeline.started().await;
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|index| {
            let plan = plan.clone();
            let stats = stats.clone();
            glommio::spawn_local(async move {
                if plan.bulk {
                    bulk_connection(&plan, &stats).await
                } else {
                    exchange_connection(&plan, index, &stats).await
                }
            })
        })
        .collect();
    for task in tasks {
        task.await;
    }
    let mut out = Stats::new();
    out.merge(&stats.borrow());
    out
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Option<TcpStream> {
    let connect = async {
        let s = TcpStream::connect(addr).await.ok()?;
        s.set_nodelay(true).ok()?;
        Some(s)
    };
    let timed_out = async {
        sleep(timeout).await;
        None
    };
    future::or(connect, timed_out).await
}

fn record_error(plan: &TcpPlan, stats: &RefCell<Stats>, kind: ErrorKind, measured: bool) {
    plan.timeline.done_err.fetch_add(1, Ordering::Relaxed);
    if measured {
        let mut s = stats.borrow_mut();
        s.errors[kind as usize] += 1;
        s.last = Some(Instant::now());
    }
}

async fn exchange_connection(plan: &TcpPlan, index: usize, stats: &RefCell<Stats>) {
    let mut stream: Option<TcpStream> = None;
    let mut buf = vec![0u8; plan.response];
    let timeline = &plan.timeline;
    let mut slots = timeline.slots(index);
    while let Some(Turn { intended, measured }) = timeline.next_turn(&mut slots, || ()).await {
        match exchange(plan, &mut stream, &mut buf).await {
            Ok(bytes) => {
                let done = Instant::now();
                timeline.done_ok.fetch_add(1, Ordering::Relaxed);
                if measured {
                    let mut s = stats.borrow_mut();
                    let us = done.saturating_duration_since(intended).as_micros() as u64;
                    s.hist.saturating_record(us.max(1));
                    s.ok += 1;
                    s.bytes += bytes;
                    s.last = Some(done);
                }
            }
            Err(kind) => {
                record_error(plan, stats, kind, measured);
                if kind == ErrorKind::Connect && timeline.rate.is_none() {
                    sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

/// One exchange on the connection (opened if needed). Ok: the response bytes read.
async fn exchange(
    plan: &TcpPlan,
    stream: &mut Option<TcpStream>,
    buf: &mut [u8],
) -> Result<u64, ErrorKind> {
    let started = Instant::now();
    if stream.is_none() {
        *stream = Some(
            connect(plan.addr, plan.timeout)
                .await
                .ok_or(ErrorKind::Connect)?,
        );
    }
    let remaining = plan.timeout.saturating_sub(started.elapsed());
    let s = stream.as_mut().expect("connected above");
    let io = async {
        s.write_all(&plan.payload)
            .await
            .map_err(|_| ErrorKind::Reset)?;
        s.read_exact(buf).await.map_err(|_| ErrorKind::Reset)?;
        Ok(buf.len() as u64)
    };
    let timed_out = async {
        sleep(remaining).await;
        Err(ErrorKind::Timeout)
    };
    let result = future::or(io, timed_out).await;
    if result.is_err() || plan.close {
        *stream = None;
    }
    result
}

enum Write {
    Done,
    Deadline,
    Failed(ErrorKind),
}

async fn bulk_connection(plan: &TcpPlan, stats: &RefCell<Stats>) {
    let Some(deadline) = plan.timeline.deadline else {
        return;
    };
    let mut stream: Option<TcpStream> = None;
    loop {
        let now = Instant::now();
        if plan.timeline.stop.load(Ordering::Relaxed) || now >= deadline {
            break;
        }
        let s = match stream.as_mut() {
            Some(s) => s,
            None => {
                let wait = plan.timeout.min(deadline - now);
                match connect(plan.addr, wait).await {
                    Some(s) => stream.insert(s),
                    None => {
                        if Instant::now() < deadline {
                            record_error(
                                plan,
                                stats,
                                ErrorKind::Connect,
                                now >= plan.timeline.measure_from,
                            );
                            sleep(Duration::from_millis(10)).await;
                        }
                        continue;
                    }
                }
            }
        };
        let started = Instant::now();
        let until = (started + plan.timeout).min(deadline);
        let write = async {
            match s.write_all(&plan.payload).await {
                Ok(()) => Write::Done,
                Err(_) => Write::Failed(ErrorKind::Reset),
            }
        };
        let timed_out = async {
            sleep(until.saturating_duration_since(started)).await;
            if until >= deadline {
                Write::Deadline
            } else {
                Write::Failed(ErrorKind::Timeout)
            }
        };
        match future::or(write, timed_out).await {
            Write::Done => {
                let done = Instant::now();
                plan.timeline.done_ok.fetch_add(1, Ordering::Relaxed);
                if started >= plan.timeline.measure_from && done <= deadline {
                    let mut s = stats.borrow_mut();
                    s.ok += 1;
                    s.bytes += plan.payload.len() as u64;
                    s.last = Some(done);
                }
            }
            Write::Deadline => break,
            Write::Failed(kind) => {
                stream = None;
                record_error(plan, stats, kind, started >= plan.timeline.measure_from);
            }
        }
    }
}
