//! Process-level behaviour through the real proxy: many concurrent connections, frontend
//! maxconn (excess waits, is not reset), graceful SIGTERM draining, hard_stop_after.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::*;

/// 2,000 connections open at the same time through one halb (two shards), each doing a
/// small exchange; all succeed and each produces one clean log line.
#[test]
fn two_thousand_concurrent_connections() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 500;
    const TOTAL: usize = THREADS * PER_THREAD;
    // Client and backend sockets of every connection live in this process.
    ensure_nofile(2 * TOTAL as u64 + 500);
    let be = Backend::echo();
    let halb = Conf::new()
        .shards(2)
        .frontend("maxconn = 4000")
        .server("s1", be.addr)
        .start();
    let all_open = Arc::new(Barrier::new(THREADS));
    let addr = halb.addr;
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let all_open = all_open.clone();
            thread::spawn(move || -> Result<usize, String> {
                let mut conns: Vec<TcpStream> = Vec::with_capacity(PER_THREAD);
                for i in 0..PER_THREAD {
                    let s = try_connect(addr).map_err(|e| format!("connect {t}/{i}: {e}"))?;
                    conns.push(s);
                }
                for (i, s) in conns.iter_mut().enumerate() {
                    s.write_all(format!("hello {t} {i}\n").as_bytes())
                        .map_err(|e| format!("write {t}/{i}: {e}"))?;
                }
                let mut ok = 0;
                for (i, s) in conns.iter_mut().enumerate() {
                    let line = read_line(s).map_err(|e| format!("read {t}/{i}: {e}"))?;
                    if line != format!("hello {t} {i}") {
                        return Err(format!("{t}/{i}: got {line:?}"));
                    }
                    ok += 1;
                }
                // Keep everything open until every thread has finished its exchanges.
                all_open.wait();
                Ok(ok)
            })
        })
        .collect();
    let mut ok = 0;
    let mut errors = Vec::new();
    for w in workers {
        match w.join().unwrap() {
            Ok(n) => ok += n,
            Err(e) => errors.push(e),
        }
    }
    assert!(errors.is_empty(), "failures: {errors:?}");
    assert_eq!(ok, TOTAL);
    assert_eq!(
        be.stats.peak.load(Ordering::SeqCst),
        TOTAL,
        "all connections were open at once on the backend"
    );
    let logs = halb.wait_access_logs(TOTAL, Duration::from_secs(60));
    assert_eq!(logs.len(), TOTAL);
    for l in &logs {
        assert_eq!(l.get("end"), "closed", "{}", l.line);
        assert_eq!(l.num("bytes_in"), l.num("bytes_out"), "{}", l.line);
    }
}

/// With a limit of 2 connections (one shard): a third client is accepted by the kernel
/// (backlog) but not served (and not reset) until one of the first two leaves; then it is
/// served.
fn excess_connection_waits(limit: Conf) {
    let be = Backend::name("s1");
    let halb = limit.server("s1", be.addr).start();
    let mut c1 = connect(halb.addr);
    assert_eq!(read_line(&mut c1).unwrap(), "s1");
    let mut c2 = connect(halb.addr);
    assert_eq!(read_line(&mut c2).unwrap(), "s1");
    let mut c3 = connect(halb.addr);
    c3.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let waiting = read_end(&mut c3);
    assert_eq!(
        waiting,
        End::TimedOut,
        "third connection must wait (neither served nor closed) while two are active"
    );
    assert_eq!(be.accepted(), 2, "the backend saw only the first two");
    drop(c1);
    c3.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(
        read_line(&mut c3).expect("served once a slot is free"),
        "s1"
    );
    assert_eq!(be.accepted(), 3);
    drop((c2, c3));
}

#[test]
fn frontend_maxconn_excess_waits_in_backlog() {
    excess_connection_waits(Conf::new().frontend("maxconn = 2"));
}

#[test]
fn global_maxconn_excess_waits_in_backlog() {
    let mut conf = Conf::new();
    conf.maxconn = 2;
    excess_connection_waits(conf);
}

/// SIGTERM with a transfer in flight: the listener closes (new connects refused), the
/// in-flight transfer (both directions, paused across the signal) completes intact, and
/// halb exits 0 once it is done.
#[test]
fn sigterm_drains_in_flight_connections() {
    const LEN: u64 = 24 * MIB;
    const BEFORE: u64 = 4 * MIB;
    let up = Arc::new(Pattern::new(71));
    let down = Arc::new(Pattern::new(72));
    let gate = Gate::new();
    let (report, rx) = channel::<Result<Verified, String>>();

    // Backend: sends the first BEFORE bytes of `down`, waits for the gate, sends the rest;
    // meanwhile checks `up` until EOF.
    // Only the first connection is the transfer; later ones (probes that got through
    // before the listener closed) are dropped at once.
    let (u, d, g, r) = (up.clone(), down.clone(), gate.clone(), report);
    let taken = AtomicBool::new(false);
    let be = Backend::spawn(move |mut s| {
        if taken.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut w = s.try_clone().unwrap();
        let (d, g) = (d.clone(), g.clone());
        let writer = thread::spawn(move || -> Result<(), String> {
            let mut gated = GatedWriter {
                inner: &mut w,
                written: 0,
                pause_at: BEFORE,
                gate: &g,
            };
            d.write_to(&mut gated, LEN).map_err(|e| e.to_string())?;
            shutdown_write(&w);
            Ok(())
        });
        let got = u.read_verify(&mut s, LEN + MIB).map_err(|e| e.to_string());
        let wrote = writer.join().unwrap();
        let _ = r.send(wrote.and(got));
    });
    let mut halb = Conf::new()
        .global("hard_stop_after = \"60s\"")
        .server("s1", be.addr)
        .start();

    let mut c = connect(halb.addr);
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let client_addr = c.local_addr().unwrap();
    let mut w = c.try_clone().unwrap();
    let (u, g) = (up.clone(), gate.clone());
    let writer = thread::spawn(move || -> std::io::Result<()> {
        let mut gated = GatedWriter {
            inner: &mut w,
            written: 0,
            pause_at: BEFORE,
            gate: &g,
        };
        u.write_to(&mut gated, LEN)?;
        shutdown_write(&w);
        Ok(())
    });
    let d = down.clone();
    let reader = thread::spawn(move || d.read_verify(&mut c, LEN + MIB));

    // Both directions have moved data before the signal (the backend has received it).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while be.accepted() == 0 && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(300));
    halb.signal("TERM");
    assert!(
        wait_refused(halb.addr, Duration::from_secs(10)),
        "after SIGTERM new connections must be refused"
    );
    assert!(
        halb.running(),
        "halb must wait for the connection in flight"
    );
    gate.open();

    writer.join().unwrap().expect("client upload");
    let got = reader.join().unwrap().expect("client download");
    assert!(got.is_exact(LEN), "client got {got:?}");
    let status = halb
        .wait_exit(Duration::from_secs(20))
        .expect("halb exits once drained");
    assert_eq!(status.code(), Some(0), "exit status {status}");
    let seen = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("backend report")
        .expect("backend");
    assert!(seen.is_exact(LEN), "backend got {seen:?}");
    let l = halb.access_log_of(client_addr);
    assert_eq!(l.num("bytes_in"), LEN, "{}", l.line);
    assert_eq!(l.num("bytes_out"), LEN, "{}", l.line);
}

/// A writer that pauses (bounded, 30 s) at `pause_at` bytes until the gate opens.
struct GatedWriter<'a> {
    inner: &'a mut TcpStream,
    written: u64,
    pause_at: u64,
    gate: &'a Gate,
}

impl Write for GatedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written >= self.pause_at {
            self.gate.wait(Duration::from_secs(30));
        }
        let room = if self.written < self.pause_at {
            ((self.pause_at - self.written) as usize).min(buf.len())
        } else {
            buf.len()
        };
        let n = self.inner.write(&buf[..room])?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// hard_stop_after: an idle connection still open when the grace period ends is cut, and
/// halb still exits 0.
#[test]
fn hard_stop_after_cuts_idle_connections_and_exits_zero() {
    let be = Backend::name("s1");
    let mut halb = Conf::new()
        .global("hard_stop_after = \"1s\"")
        .server("s1", be.addr)
        .start();
    let mut c = connect(halb.addr);
    let client_addr = c.local_addr().unwrap();
    assert_eq!(read_line(&mut c).unwrap(), "s1");
    halb.signal("TERM");
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let end = read_end(&mut c);
    assert!(
        end.closed(),
        "connection must be cut after hard_stop_after: {end:?}"
    );
    let status = halb
        .wait_exit(Duration::from_secs(20))
        .expect("halb exits after hard_stop_after");
    assert_eq!(status.code(), Some(0), "exit status {status}");
    let l = halb.access_log_of(client_addr);
    assert_eq!(l.get("end"), "shutdown", "{}", l.line);
}

/// SIGINT behaves like SIGTERM: with nothing in flight halb exits 0 promptly.
#[test]
fn sigint_with_no_connections_exits_zero() {
    let be = Backend::name("s1");
    let mut halb = Conf::new()
        .global("hard_stop_after = \"60s\"")
        .server("s1", be.addr)
        .start();
    assert_eq!(ask(halb.addr).unwrap(), "s1");
    halb.wait_access_logs(1, LOG_TIMEOUT);
    halb.signal("INT");
    let status = halb
        .wait_exit(Duration::from_secs(20))
        .expect("idle halb exits on SIGINT without waiting for hard_stop_after");
    assert_eq!(status.code(), Some(0), "exit status {status}");
}

/// Startup fails loudly and early when the frontend's port is taken by another socket:
/// non-zero exit, and the message names the address.
#[test]
fn startup_fails_when_port_in_use() {
    let taken = std::net::TcpListener::bind(free_addr()).unwrap();
    let addr = taken.local_addr().unwrap();
    let be = Backend::name("s1");
    let conf = Conf::new().server("s1", be.addr);
    let (status, out) = Halb::run_to_exit(&conf.render(addr), Duration::from_secs(15));
    assert!(!status.success(), "halb must fail to start:\n{out}");
    assert!(
        out.contains(&addr.to_string()),
        "the error names {addr}:\n{out}"
    );
    assert!(!out.contains("halb: ready"), "{out}");
}

/// Startup fails when RLIMIT_NOFILE cannot cover maxconn, saying what to raise.
#[test]
fn startup_fails_when_maxconn_exceeds_open_file_limit() {
    let be = Backend::name("s1");
    let mut conf = Conf::new().server("s1", be.addr);
    conf.maxconn = 100_000_000;
    let (status, out) = Halb::run_to_exit(&conf.render(free_addr()), Duration::from_secs(15));
    assert!(!status.success(), "halb must fail to start:\n{out}");
    assert!(
        out.contains("RLIMIT_NOFILE") || out.contains("ulimit"),
        "the error says which limit to raise:\n{out}"
    );
    assert!(!out.contains("halb: ready"), "{out}");
}

/// Idle connections hold no copy buffer: 1,000 connections that each moved ~64 KB both
/// ways (so every buffer they used was written all over) and then wait cost halb far less
/// memory than the 1,000 × 2 × 64 KiB that per-connection buffers would pin (an LB often
/// carries many long-lived, mostly idle connections).
#[test]
fn idle_connections_hold_no_copy_buffers() {
    const TOTAL: usize = 1000;
    const MESSAGE: usize = 60_000; // below one 64 KiB buffer: stays on the copy path
    ensure_nofile(2 * TOTAL as u64 + 500);
    let be = Backend::echo();
    let halb = Conf::new()
        .shards(1)
        .frontend("maxconn = 2000")
        .server("s1", be.addr)
        .start();
    let message = vec![b'm'; MESSAGE];
    let mut echoed = vec![0u8; MESSAGE];
    let mut conns = Vec::with_capacity(TOTAL);
    for _ in 0..TOTAL {
        let mut s = connect(halb.addr);
        s.write_all(&message).unwrap();
        std::io::Read::read_exact(&mut s, &mut echoed).unwrap();
        assert!(echoed == message, "echo came back intact");
        conns.push(s);
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", halb.pid())).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status");
    let per_connection_buffers_kib = (TOTAL * 2 * 64) as u64;
    assert!(
        rss_kib < per_connection_buffers_kib / 3,
        "halb's RSS is {rss_kib} KiB with {TOTAL} idle connections open"
    );
    drop(conns);
}
