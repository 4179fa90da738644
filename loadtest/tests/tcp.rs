//! `tcp://` request/response and `tcp-bulk://` streaming, driving the real binary against
//! small std::net echo and sink servers written here (loopback only, read timeouts).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::{json, loadtest, u};

#[derive(Clone, Copy)]
enum Behaviour {
    /// Echo every byte back.
    Echo,
    /// Read and discard.
    Sink,
    /// Close at once with nothing read.
    Reset,
    /// Read, never answer.
    Silent,
    /// Read 64 KiB, then stop reading (the connection stays open).
    Stall,
}

struct Server {
    port: u16,
    received: Arc<AtomicU64>,
    connections: Arc<AtomicUsize>,
}

fn start(behaviour: Behaviour) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(AtomicU64::new(0));
    let connections = Arc::new(AtomicUsize::new(0));
    let (rx, count) = (received.clone(), connections.clone());
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            let rx = rx.clone();
            thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                conn.set_nodelay(true).unwrap();
                if let Behaviour::Reset = behaviour {
                    return;
                }
                let mut buf = vec![0u8; 64 * 1024];
                if let Behaviour::Stall = behaviour {
                    let _ = conn.read_exact(&mut buf);
                    rx.fetch_add(buf.len() as u64, Ordering::Relaxed);
                    thread::sleep(Duration::from_secs(10));
                    return;
                }
                loop {
                    let n = match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    rx.fetch_add(n as u64, Ordering::Relaxed);
                    if let Behaviour::Echo = behaviour {
                        if conn.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Server {
        port,
        received,
        connections,
    }
}

#[test]
fn request_response_against_an_echo_server() {
    let server = start(Behaviour::Echo);
    let url = format!("tcp://127.0.0.1:{}", server.port);
    let out = loadtest(&[
        "-c",
        "3",
        "--requests",
        "300",
        "--payload",
        "100",
        "--json",
        &url,
    ]);
    assert!(out.status.success());
    let v = json(&out);
    assert_eq!(v["protocol"], "tcp");
    assert_eq!(v["mode"], "closed");
    assert_eq!(u(&v, "/ok"), 300);
    assert_eq!(u(&v, "/errors_total"), 0);
    assert_eq!(u(&v, "/payload"), 100);
    assert_eq!(u(&v, "/response"), 100);
    assert_eq!(u(&v, "/bytes"), 300 * 100);
    assert_eq!(server.received.load(Ordering::SeqCst), 300 * 100);
    assert!(u(&v, "/latency_us/p50") > 0);
    assert!(u(&v, "/latency_us/p99") <= u(&v, "/latency_us/max"));
    assert!(v["requests_per_sec"].as_f64().unwrap() > 0.0);
    assert!(server.connections.load(Ordering::SeqCst) <= 3);

    // Open loop, default 64-byte echo, a new connection per exchange.
    let server = start(Behaviour::Echo);
    let url = format!("tcp://127.0.0.1:{}", server.port);
    let out = loadtest(&[
        "-c",
        "2",
        "--rate",
        "400",
        "--requests",
        "40",
        "--close",
        "--json",
        &url,
    ]);
    let v = json(&out);
    assert_eq!(v["mode"], "open");
    assert_eq!((u(&v, "/ok"), u(&v, "/bytes")), (40, 40 * 64));
    assert_eq!(server.connections.load(Ordering::SeqCst), 40);

    // Text summary.
    let out = loadtest(&["--requests", "5", &url]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("5 ok, 0 errors") && text.contains("p99"),
        "{text}"
    );
}

#[test]
fn request_response_errors_by_kind() {
    let check = |url: &str, extra: &[&str], kind: &str| {
        let mut args = vec!["-c", "2", "--requests", "6", "--json"];
        args.extend_from_slice(extra);
        args.push(url);
        let out = loadtest(&args);
        assert_eq!(out.status.code(), Some(1), "nothing succeeded");
        let v = json(&out);
        assert_eq!((u(&v, "/ok"), u(&v, "/requests")), (0, 6));
        assert_eq!(u(&v, &format!("/errors/{kind}")), 6, "{v}");
    };
    // The echo answers 64 bytes, we wait for 65: the timeout.
    let echo = start(Behaviour::Echo);
    let url = format!("tcp://127.0.0.1:{}", echo.port);
    check(&url, &["--response", "65", "--timeout", "200ms"], "timeout");
    let silent = start(Behaviour::Silent);
    let url = format!("tcp://127.0.0.1:{}", silent.port);
    check(&url, &["--timeout", "200ms"], "timeout");
    let reset = start(Behaviour::Reset);
    check(&format!("tcp://127.0.0.1:{}", reset.port), &[], "reset");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    check(&format!("tcp://127.0.0.1:{port}"), &[], "connect");
}

#[test]
fn request_response_with_close_and_a_shorter_response() {
    // Closed loop, a new connection per exchange.
    let server = start(Behaviour::Echo);
    let url = format!("tcp://127.0.0.1:{}", server.port);
    let out = loadtest(&["-c", "2", "--requests", "30", "--close", "--json", &url]);
    assert!(out.status.success());
    let v = json(&out);
    assert_eq!(v["mode"], "closed");
    assert_eq!((u(&v, "/ok"), u(&v, "/errors_total")), (30, 0));
    assert_eq!(u(&v, "/bytes"), 30 * 64);
    assert_eq!(server.connections.load(Ordering::SeqCst), 30);
    assert_eq!(server.received.load(Ordering::SeqCst), 30 * 64);

    // 20 bytes out, 10 expected back: the echo's surplus is read by the next exchanges,
    // in order, on the same connection.
    let server = start(Behaviour::Echo);
    let url = format!("tcp://127.0.0.1:{}", server.port);
    let out = loadtest(&[
        "-c",
        "1",
        "--requests",
        "50",
        "--payload",
        "20",
        "--response",
        "10",
        "--json",
        &url,
    ]);
    assert!(out.status.success());
    let v = json(&out);
    assert_eq!((u(&v, "/ok"), u(&v, "/errors_total")), (50, 0));
    assert_eq!(u(&v, "/bytes"), 50 * 10);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn bulk_into_a_peer_that_stops_reading() {
    let server = start(Behaviour::Stall);
    let url = format!("tcp-bulk://127.0.0.1:{}", server.port);
    // Writes stall once the socket buffers are full: each times out and the connection
    // is replaced.
    let out = loadtest(&[
        "-c",
        "2",
        "--duration",
        "1s",
        "--timeout",
        "200ms",
        "--json",
        &url,
    ]);
    let v = json(&out);
    assert!(u(&v, "/ok") > 0, "{v}");
    assert!(u(&v, "/errors/timeout") >= 2, "{v}");
    assert_eq!(u(&v, "/errors_total"), u(&v, "/errors/timeout"), "{v}");
    assert!(server.connections.load(Ordering::SeqCst) > 2);

    // A timeout far longer than the run: the write stalled at the end is no error, and
    // the run ends at its deadline instead of waiting for the timeout (a liveness check,
    // not a speed one: waiting would take 30 s, the bound is 10 s).
    let server = start(Behaviour::Stall);
    let url = format!("tcp-bulk://127.0.0.1:{}", server.port);
    let began = Instant::now();
    let out = loadtest(&[
        "-c",
        "2",
        "--duration",
        "500ms",
        "--timeout",
        "30s",
        "--json",
        &url,
    ]);
    let wall = began.elapsed();
    assert!(out.status.success());
    assert!(wall < Duration::from_secs(10), "{wall:?}");
    let v = json(&out);
    assert!(u(&v, "/ok") > 0, "{v}");
    assert_eq!(u(&v, "/errors_total"), 0, "{v}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[test]
fn bulk_streams_into_a_sink() {
    let server = start(Behaviour::Sink);
    let url = format!("tcp-bulk://127.0.0.1:{}", server.port);
    let out = loadtest(&[
        "-c",
        "2",
        "--duration",
        "1s",
        "--payload",
        "16384",
        "--json",
        &url,
    ]);
    assert!(out.status.success());
    let v = json(&out);
    assert_eq!(v["protocol"], "tcp-bulk");
    assert_eq!(v["mode"], "bulk");
    assert!(v["latency_us"].is_null());
    assert!(v["requests_per_sec"].is_null());
    assert_eq!(u(&v, "/errors_total"), 0);
    let bytes = u(&v, "/bytes");
    assert!(
        bytes > 1_000_000,
        "a loopback sink takes more than 1 MB/s: {bytes}"
    );
    assert_eq!(bytes % 16384, 0, "whole writes");
    assert_eq!(u(&v, "/ok"), bytes / 16384);
    // Everything counted was sent (the sink may still be reading the rest).
    thread::sleep(Duration::from_millis(300));
    assert!(server.received.load(Ordering::SeqCst) >= bytes);
    let bps = v["bytes_per_sec"].as_f64().unwrap();
    let gbps = v["gbit_per_sec"].as_f64().unwrap();
    assert!((gbps - bps * 8.0 / 1e9).abs() < 1e-9);
    let secs = v["duration_s"].as_f64().unwrap();
    assert!((0.5..=1.1).contains(&secs), "{secs}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);

    let out = loadtest(&["--duration", "300ms", &url]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Gbit/s"), "{text}");

    // Connect errors, and options that make no sense for bulk.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = loadtest(&[
        "--duration",
        "300ms",
        "--json",
        &format!("tcp-bulk://127.0.0.1:{port}"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(u(&json(&out), "/errors/connect") > 0);
    for extra in [&["--rate", "10"][..], &["--requests", "5"], &["--close"]] {
        let mut args = extra.to_vec();
        args.push(&url);
        assert_eq!(loadtest(&args).status.code(), Some(2), "{extra:?}");
    }
}

#[test]
fn tcp_urls_are_checked() {
    for url in [
        "tcp://127.0.0.1",
        "tcp://127.0.0.1:1/path",
        "udp://127.0.0.1:1",
    ] {
        assert_eq!(
            loadtest(&["--requests", "1", url]).status.code(),
            Some(2),
            "{url}"
        );
    }
    assert_eq!(
        loadtest(&["--requests", "1", "--payload", "5", "http://127.0.0.1:1/"])
            .status
            .code(),
        Some(2)
    );
}
