//! Failure handling through the real proxy: refused connects retried on another server,
//! retries exhausted, all servers down or disabled, connect timeouts, idle timeouts.

mod common;

use std::io::Write;
use std::thread;
use std::time::Duration;

use common::*;

/// A refused connect is retried on another server: with one dead and one good server and
/// `retries = 3, redispatch = true`, every client is served by the good one.
#[test]
fn refused_connect_is_retried_on_another_server() {
    let good = Backend::name("good");
    let halb = Conf::new()
        .backend("retries = 3")
        .backend("redispatch = true")
        .server("dead", dead_addr())
        .server("good", good.addr)
        .start();
    let t = tally(&ask_many(halb.addr, 10));
    assert_eq!(t.get("good"), Some(&10), "{t:?}");
    let logs = halb.wait_access_logs(10, LOG_TIMEOUT);
    for l in &logs {
        assert_eq!(l.get("end"), "closed", "{}", l.line);
        assert_eq!(l.get("server"), "good", "{}", l.line);
    }
    assert!(
        logs.iter().any(|l| l.num("retries") >= 1),
        "round robin over [dead, good] must have hit dead at least once: {logs:#?}"
    );
}

/// Shared body: [dead, good] with round robin and the given retry settings: exactly the
/// connections that picked `dead` (every other one) fail.
fn half_fail(retries: u32, redispatch: bool) {
    let good = Backend::name("good");
    let halb = Conf::new()
        .backend(&format!("retries = {retries}"))
        .backend(&format!("redispatch = {redispatch}"))
        .server("dead", dead_addr())
        .server("good", good.addr)
        .start();
    let mut ok = 0;
    let mut failed = 0;
    for i in 0..10 {
        let mut s = connect(halb.addr);
        match read_line(&mut s) {
            Ok(name) => {
                assert_eq!(name, "good");
                ok += 1;
            }
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                    ),
                    "connection {i}: failed connection must be closed, not hang: {e}"
                );
                failed += 1;
            }
        }
    }
    assert_eq!((ok, failed), (5, 5), "round robin alternates dead/good");
    let logs = halb.wait_access_logs(10, LOG_TIMEOUT);
    let failed_logs: Vec<_> = logs
        .iter()
        .filter(|l| l.get("end") == "connect_failed")
        .collect();
    assert_eq!(failed_logs.len(), 5, "{logs:#?}");
    for l in failed_logs {
        assert_eq!(l.num("retries"), retries as u64, "{}", l.line);
        assert_eq!(l.num("bytes_out"), 0, "{}", l.line);
    }
}

/// `retries = 0`: a refused connect is not retried; the client is closed.
#[test]
fn refused_connect_without_retries_fails() {
    half_fail(0, false);
}

/// `redispatch = false`: retries go to the same (dead) server, so they fail too.
#[test]
fn refused_connect_without_redispatch_retries_the_same_server() {
    half_fail(2, false);
}

/// All servers refuse: every client is closed promptly (not left hanging) and the log
/// says the connect failed.
#[test]
fn all_servers_down_closes_client() {
    let halb = Conf::new()
        .backend("retries = 3")
        .server("d1", dead_addr())
        .server("d2", dead_addr())
        .start();
    for _ in 0..3 {
        let mut s = connect(halb.addr);
        let client = s.local_addr().unwrap();
        let end = read_end(&mut s);
        assert!(end.closed(), "client must be closed, got {end:?}");
        let l = halb.access_log_of(client);
        assert!(
            ["connect_failed", "no_server"].contains(&l.get("end")),
            "{}",
            l.line
        );
        assert_eq!(l.num("bytes_out"), 0, "{}", l.line);
    }
}

/// All servers disabled: nothing to pick; the client is closed, end=no_server, server=-.
#[test]
fn all_servers_disabled_is_no_server() {
    let a = Backend::name("a");
    let halb = Conf::new()
        .server_with("a", a.addr, &["disabled = true"])
        .start();
    let mut s = connect(halb.addr);
    let client = s.local_addr().unwrap();
    let end = read_end(&mut s);
    assert!(end.closed(), "client must be closed, got {end:?}");
    let l = halb.access_log_of(client);
    assert_eq!(l.get("end"), "no_server", "{}", l.line);
    assert_eq!(l.get("server"), "-", "{}", l.line);
    assert_eq!(a.accepted(), 0);
}

/// A server that never answers the SYN: the connect times out after `timeouts.connect`,
/// the client is closed and the log says connect_failed.
#[test]
fn connect_timeout_closes_client() {
    let hole = Blackhole::new();
    let halb = Conf::new()
        .backend("retries = 0")
        .timeout("connect = \"300ms\"")
        .server("hole", hole.addr)
        .start();
    let mut s = connect(halb.addr);
    let client = s.local_addr().unwrap();
    let end = read_end(&mut s);
    assert!(
        end.closed(),
        "client must be closed after the connect timeout, got {end:?}"
    );
    let l = halb.access_log_of(client);
    assert_eq!(l.get("end"), "connect_failed", "{}", l.line);
    assert_eq!(l.num("bytes_out"), 0, "{}", l.line);
}

/// A connect timeout is retried on another server like a refusal.
#[test]
fn connect_timeout_is_retried_on_another_server() {
    let hole = Blackhole::new();
    let good = Backend::name("good");
    let halb = Conf::new()
        .backend("retries = 2")
        .backend("redispatch = true")
        .timeout("connect = \"300ms\"")
        .server("hole", hole.addr)
        .server("good", good.addr)
        .start();
    let t = tally(&ask_many(halb.addr, 4));
    assert_eq!(t.get("good"), Some(&4), "{t:?}");
}

/// Client idle longer than `timeouts.client` (server side long): halb closes the
/// connection, end=client_timeout.
#[test]
fn client_idle_timeout() {
    let be = Backend::silent();
    let halb = Conf::new()
        .timeout("client = \"1s\"")
        .timeout("server = \"60s\"")
        .server("s1", be.addr)
        .start();
    let mut s = connect(halb.addr);
    let client = s.local_addr().unwrap();
    let end = read_end(&mut s);
    assert!(end.closed(), "idle client must be closed, got {end:?}");
    let l = halb.access_log_of(client);
    assert_eq!(l.get("end"), "client_timeout", "{}", l.line);
}

/// Server silent longer than `timeouts.server` (client side long): halb closes the
/// connection, end=server_timeout.
#[test]
fn server_idle_timeout() {
    let be = Backend::silent();
    let halb = Conf::new()
        .timeout("client = \"60s\"")
        .timeout("server = \"1s\"")
        .server("s1", be.addr)
        .start();
    let mut s = connect(halb.addr);
    let client = s.local_addr().unwrap();
    s.write_all(b"hello?\n").unwrap();
    let end = read_end(&mut s);
    assert!(
        end.closed(),
        "silent server: client must be closed, got {end:?}"
    );
    let l = halb.access_log_of(client);
    assert_eq!(l.get("end"), "server_timeout", "{}", l.line);
    assert_eq!(l.num("bytes_in"), 7, "{}", l.line);
}

/// Idle timeouts are about inactivity, not age: a connection exchanging data every
/// 100 ms for longer than both timeouts (2 s) is never cut.
#[test]
fn active_connection_outlives_idle_timeouts() {
    let be = Backend::echo();
    let halb = Conf::new()
        .timeout("client = \"2s\"")
        .timeout("server = \"2s\"")
        .server("s1", be.addr)
        .start();
    let mut s = connect(halb.addr);
    for i in 0..35 {
        let msg = format!("ping {i}\n");
        s.write_all(msg.as_bytes()).unwrap();
        let back = read_line(&mut s).unwrap_or_else(|e| panic!("exchange {i}: {e}"));
        assert_eq!(back, format!("ping {i}"));
        thread::sleep(Duration::from_millis(100));
    }
}

/// A client that resets its connection: halb ends it with end=client_error and closes the
/// server side too (the backend's handler sees the close and finishes).
#[test]
fn client_reset_is_client_error_and_frees_the_server_side() {
    let be = Backend::name("s1");
    let halb = Conf::new().server("s1", be.addr).start();
    let mut c = connect(halb.addr);
    let client = c.local_addr().unwrap();
    assert_eq!(read_line(&mut c).unwrap(), "s1");
    reset(c);
    let l = halb.access_log_of(client);
    assert_eq!(l.get("end"), "client_error", "{}", l.line);
    // The backend connection is closed by halb (bounded wait on its handler).
    let deadline = std::time::Instant::now() + LOG_TIMEOUT;
    while be.active() > 0 && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(be.active(), 0, "backend connection still open");
}

/// A server that resets mid-connection: the client is closed (not left hanging) and the
/// log says end=server_error.
#[test]
fn server_reset_is_server_error_and_closes_the_client() {
    let be = Backend::spawn(|mut s| {
        if s.write_all(b"bye\n").is_ok() {
            let _ = read_line(&mut s); // wait for the client's line, then reset
            reset(s);
        }
    });
    let halb = Conf::new().server("s1", be.addr).start();
    let mut c = connect(halb.addr);
    let client = c.local_addr().unwrap();
    assert_eq!(read_line(&mut c).unwrap(), "bye");
    c.write_all(b"ok\n").unwrap();
    let end = read_end(&mut c);
    assert!(end.closed(), "client must be closed, got {end:?}");
    let l = halb.access_log_of(client);
    assert_eq!(l.get("end"), "server_error", "{}", l.line);
}
