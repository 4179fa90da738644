//! Health checks through the real binary (docs/control.md): a server killed under load is
//! marked DOWN without a single failed client request and comes back with slow start;
//! admin drain and maintenance against cookie persistence; backup servers; what a
//! frontend does when no server is left; HTTP check expectations, check timeouts, live
//! traffic observation and `on_marked_down = "shutdown-sessions"`.
//!
//! Backends are [`KillableBackend`]s (stop = listener and connections closed, so connects
//! are refused; restart = the same address again). State is read from the stats JSON
//! (`/stats;json`) and transitions from halb's log. Checks run every 200 ms (100 ms while a
//! server changes state), rise 2, fall 2, timeout 300 ms, so a transition takes well under
//! a second; every wait is bounded (20 s) and the assertions are about outcomes, never
//! about how long something took.

mod common;

use std::time::Duration;

use common::control::*;
use common::http::*;
use common::*;

use LoadMode::{KeepAlive, NewConnection};

/// Pause between two requests of one load thread.
const PACE: Duration = Duration::from_millis(2);

/// The `Set-Cookie` value halb inserted for `name`, if any.
fn inserted_cookie(r: &Response, name: &str) -> Option<String> {
    r.header_all("set-cookie").iter().find_map(|v| {
        let first = v.split(';').next()?.trim();
        let (n, val) = first.split_once('=')?;
        (n == name).then(|| val.to_string())
    })
}

/// Share of `name` among `servers` (0 when empty).
fn share(servers: &[String], name: &str) -> f64 {
    if servers.is_empty() {
        return 0.0;
    }
    servers.iter().filter(|s| *s == name).count() as f64 / servers.len() as f64
}

/// GET `path` on a fresh connection; panics on an I/O error.
fn get_fresh(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    request(addr, "GET", path, headers, b"").unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The sum of one counter over a backend's servers.
fn servers_counter(backend: &serde_json::Value, name: &str) -> u64 {
    backend["servers"]
        .as_array()
        .expect("servers array")
        .iter()
        .map(|s| counter(s, name))
        .sum()
}

/// halb's log lines about errors and health transitions (for failure messages).
fn error_lines(halb: &Halb) -> String {
    halb.lines()
        .into_iter()
        .filter(|l| {
            (l.contains("halb::access") && !l.contains("status=200"))
                || (!l.contains("halb::access") && !l.contains("halb: ready"))
        })
        .take(100)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A server killed under load (keep-alive and new-connection clients) is marked DOWN
/// (stats JSON and log line), receives nothing once DOWN (neither requests nor connection
/// attempts), and no client request fails meanwhile (refused connects before the DOWN
/// mark are retried on the other server). Restarted, it is UP after `rise` checks and,
/// with `slowstart`, its share of the traffic grows from the first window to the last.
#[test]
fn killed_server_goes_down_without_failed_requests_and_returns_with_slowstart() {
    let s1 = KillableBackend::start("s1");
    let s2 = KillableBackend::start("s2");
    let ctl = Control::new();
    let halb = ctl
        .apply(
            Conf::http()
                .backend("retries = 3")
                .backend("redispatch = true")
                .backend(&http_check(""))
                .server_with("s1", s1.addr, &["check = true", "weight = 100"])
                .server_with(
                    "s2",
                    s2.addr,
                    &["check = true", "weight = 100", "slowstart = \"3s\""],
                ),
        )
        .start();
    let stats = ctl.stats();
    assert_eq!(stats.state("be", "s1"), "UP");
    assert_eq!(stats.state("be", "s2"), "UP");

    let load = Load::start(halb.addr, &[KeepAlive, NewConnection], PACE);
    load.wait_more(100);
    wait_until("both servers served requests", WAIT, || {
        s1.served() > 0 && s2.served() > 0
    });

    // Kill s2 under load.
    s2.stop();
    let down = stats.wait_state("be", "s2", "DOWN");
    let reason = down["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("refused"),
        "a server whose port refuses should go DOWN for `L4 connect refused`, got reason {reason:?}: {down:#}"
    );
    let line = wait_log(&halb, "server be/s2 is DOWN");
    assert!(
        line.contains("1 active and 0 backup servers left in be"),
        "DOWN line without the servers left: {line}"
    );

    // Once DOWN (and after the in-flight decisions settled), s2 gets nothing more: no
    // request, no connection attempt.
    load.wait_more(50);
    let before = stats.server("be", "s2");
    let served_before = s2.served();
    let mark = load.mark();
    load.wait_more(300);
    let after = stats.server("be", "s2");
    assert_eq!(s2.served(), served_before, "requests reached s2 while DOWN");
    for c in [
        "total_sessions",
        "connection_errors",
        "http_requests",
        "retries",
    ] {
        assert_eq!(
            counter(&after, c),
            counter(&before, c),
            "s2's {c} changed while it was DOWN: before {before:#}\nafter {after:#}"
        );
    }
    let since = load.servers_since(mark);
    assert!(
        since.iter().all(|s| s == "s1"),
        "answers from another server than s1 while s2 was DOWN: {:?}",
        count_names(&since)
    );
    // Checked at the end (so that the restart is exercised too): no failure so far.
    let failed_while_down = load.failures().len();

    // Restart: UP after `rise` checks, then slow start.
    s2.restart();
    let up = stats.wait_state("be", "s2", "UP");
    let mark = load.mark();
    wait_log(&halb, "server be/s2 is UP");
    println!(
        "s2 UP again: effective_weight {} of weight {}",
        up["effective_weight"], up["weight"]
    );
    wait_until("s2's effective weight ramps back to 100", WAIT, || {
        stats.server("be", "s2")["effective_weight"] == 100
    });
    load.wait_more(200);
    let ramp = load.servers_since(mark);
    let report = load.stop();
    assert!(
        ramp.len() >= 400,
        "too few requests over the ramp: {}",
        ramp.len()
    );
    let q = ramp.len() / 4;
    let windows: Vec<f64> = (0..4)
        .map(|i| share(&ramp[i * q..(i + 1) * q], "s2"))
        .collect();
    println!(
        "s2's share of {} requests after it came back, in 4 windows: {windows:?}",
        ramp.len()
    );
    assert!(
        windows[0] < windows[3],
        "slowstart: s2's share should grow from the first window to the last: {windows:?}"
    );
    assert!(
        windows[3] > 0.0,
        "s2 got nothing after coming back: {windows:?}"
    );
    assert!(
        report.failures.is_empty(),
        "{} client requests failed ({failed_while_down} of them before s2 was restarted; \
         retries/redispatch should hide a dead server): {:#?}\nhalb's error and health lines:\n{}",
        report.failures.len(),
        &report.failures[..report.failures.len().min(20)],
        error_lines(&halb)
    );
}

/// `set server … state drain` keeps a keep-alive client pinned by an inserted cookie on
/// its server and sends new clients elsewhere; `maint` moves even the pinned client;
/// `ready` brings the server back.
#[test]
fn drain_keeps_cookie_pinned_clients_and_maint_moves_them() {
    let s1 = KillableBackend::start("s1");
    let s2 = KillableBackend::start("s2");
    let ctl = Control::new();
    let halb = ctl
        .apply(
            Conf::http()
                .backend("cookie = { name = \"SRV\", mode = \"insert\" }")
                .server_with("s1", s1.addr, &["cookie = \"v1\""])
                .server_with("s2", s2.addr, &["cookie = \"v2\""]),
        )
        .start();
    let stats = ctl.stats();

    let mut pinned = Client::connect(halb.addr);
    let r = pinned.get("/first", &[]);
    assert_eq!(r.status, 200, "{r}");
    let server = r.server();
    let value = inserted_cookie(&r, "SRV").unwrap_or_else(|| panic!("no SRV cookie: {r}"));
    let other = if server == "s1" { "s2" } else { "s1" };
    let cookie = format!("SRV={value}");
    for i in 0..5 {
        let r = pinned.get(&format!("/pinned/{i}"), &[("Cookie", &cookie)]);
        assert_eq!((r.status, r.server()), (200, server.clone()), "{r}");
    }

    // Drain: the pinned client stays, new clients go to the other server.
    let out = ctl.ctl_ok(&["set", "server", &format!("be/{server}"), "state", "drain"]);
    assert!(out.starts_with("ok: "), "set … drain answered {out:?}");
    let s = stats.wait_state("be", &server, "DRAIN");
    assert_eq!(s["admin"], "drain", "{s:#}");
    // Persistence violations are collected and reported at the end, so that the rest of
    // the test still runs.
    let mut problems: Vec<String> = Vec::new();
    for i in 0..10 {
        let r = pinned.get(&format!("/drain/pinned/{i}"), &[("Cookie", &cookie)]);
        assert_eq!(r.status, 200, "{r}");
        if r.server() != server {
            problems.push(format!(
                "request {i} of the cookie-pinned keep-alive client left its DRAIN server {server}: {r}"
            ));
        }
    }
    let r = get_fresh(halb.addr, "/drain/pinned-new-conn", &[("Cookie", &cookie)]);
    assert_eq!(r.status, 200, "{r}");
    if r.server() != server {
        problems.push(format!(
            "a persistent client on a new connection did not reach its DRAIN server {server}: {r}"
        ));
    }
    for i in 0..10 {
        let r = get_fresh(halb.addr, &format!("/drain/new/{i}"), &[]);
        assert_eq!(r.status, 200, "{r}");
        assert_eq!(
            r.server(),
            other,
            "a new client was sent to the DRAIN server: {r}"
        );
    }

    // Maint: even the pinned client goes elsewhere.
    let out = ctl.ctl_ok(&["set", "server", &format!("be/{server}"), "state", "maint"]);
    assert!(out.starts_with("ok: "), "set … maint answered {out:?}");
    let s = stats.wait_state("be", &server, "MAINT");
    assert_eq!(s["admin"], "maint", "{s:#}");
    let served_in_maint = if server == "s1" {
        s1.served()
    } else {
        s2.served()
    };
    for i in 0..10 {
        let r = pinned.get(&format!("/maint/pinned/{i}"), &[("Cookie", &cookie)]);
        assert_eq!(r.status, 200, "{r}");
        assert_eq!(
            r.server(),
            other,
            "a cookie-pinned request reached the MAINT server: {r}"
        );
    }
    for i in 0..10 {
        let r = get_fresh(halb.addr, &format!("/maint/new/{i}"), &[]);
        assert_eq!((r.status, r.server()), (200, other.to_string()), "{r}");
    }
    let served_now = if server == "s1" {
        s1.served()
    } else {
        s2.served()
    };
    assert_eq!(
        served_now, served_in_maint,
        "the MAINT server served requests"
    );

    // Ready: back in rotation.
    ctl.ctl_ok(&["set", "server", &format!("be/{server}"), "state", "ready"]);
    stats.wait_state("be", &server, "UP");
    let names: Vec<String> = (0..10)
        .map(|i| get_fresh(halb.addr, &format!("/ready/{i}"), &[]).server())
        .collect();
    assert!(
        names.contains(&server) && names.iter().any(|n| n == other),
        "after ready both servers should take new clients: {names:?}"
    );
    assert!(
        problems.is_empty(),
        "DRAIN must keep persistent (cookie) clients on their server:\n{}",
        problems.join("\n")
    );
}

/// A backup server gets nothing while a primary is usable and everything once all the
/// primaries are DOWN; with the backup DOWN too, an HTTP frontend answers 503 at once
/// (no connection attempt to any server).
#[test]
fn backup_takes_over_when_all_primaries_are_down_then_503() {
    let p1 = KillableBackend::start("p1");
    let p2 = KillableBackend::start("p2");
    let b1 = KillableBackend::start("b1");
    let ctl = Control::new();
    let halb = ctl
        .apply(
            Conf::http()
                .backend("retries = 3")
                .backend("redispatch = true")
                .backend(&http_check(""))
                .server_with("p1", p1.addr, &["check = true"])
                .server_with("p2", p2.addr, &["check = true"])
                .server_with("b1", b1.addr, &["check = true", "backup = true"]),
        )
        .start();
    let stats = ctl.stats();
    assert_eq!(stats.server("be", "b1")["backup"], true);

    for i in 0..20 {
        let r = get_fresh(halb.addr, &format!("/primary/{i}"), &[]);
        assert_eq!(r.status, 200, "{r}");
        assert!(r.server() == "p1" || r.server() == "p2", "{r}");
    }
    assert_eq!(b1.served(), 0, "the backup served while primaries were UP");

    p1.stop();
    stats.wait_state("be", "p1", "DOWN");
    for i in 0..10 {
        let r = get_fresh(halb.addr, &format!("/one-primary/{i}"), &[]);
        assert_eq!((r.status, r.server()), (200, "p2".to_string()), "{r}");
    }
    assert_eq!(b1.served(), 0, "the backup served while p2 was UP");

    p2.stop();
    stats.wait_state("be", "p2", "DOWN");
    for i in 0..20 {
        let r = get_fresh(halb.addr, &format!("/backup/{i}"), &[]);
        assert_eq!(r.status, 200, "{r}");
        assert_eq!(
            r.server(),
            "b1",
            "primaries are DOWN: the backup should answer: {r}"
        );
    }
    assert_eq!(b1.served(), 20);

    b1.stop();
    stats.wait_state("be", "b1", "DOWN");
    wait_log(&halb, "backend be has no server available");
    let before = stats.backend("be");
    for i in 0..5 {
        let r = get_fresh(halb.addr, &format!("/nothing/{i}"), &[]);
        assert_eq!(r.status, 503, "no server left: expected 503, got {r}");
    }
    let after = stats.backend("be");
    assert_eq!(
        servers_counter(&after, "connection_errors"),
        servers_counter(&before, "connection_errors"),
        "halb tried to connect to DOWN servers instead of answering 503 at once:\nbefore {before:#}\nafter {after:#}"
    );
    assert_eq!(after["usable_servers"], 0, "{after:#}");
}

/// A TCP frontend whose only server is DOWN closes new client connections at once,
/// without a byte.
#[test]
fn tcp_frontend_closes_at_once_when_no_server_is_left() {
    let s1 = KillableBackend::start("s1");
    let ctl = Control::new();
    let halb = ctl
        .apply(
            Conf::new()
                .backend(&tcp_check(""))
                .server_with("s1", s1.addr, &["check = true"]),
        )
        .start();
    let stats = ctl.stats();

    // Sanity: the tunnel reaches s1 while it is UP.
    let mut c = Client::connect(halb.addr);
    let r = c.get("/tcp", &[]);
    assert_eq!((r.status, r.server()), (200, "s1".to_string()), "{r}");
    drop(c);

    s1.stop();
    stats.wait_state("be", "s1", "DOWN");
    for i in 0..3 {
        let mut s = connect(halb.addr);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let end = read_end(&mut s);
        assert!(
            end.closed(),
            "connection {i} to a TCP frontend with no server left: expected a close without data, got {end:?}"
        );
    }
}

/// `expect_status` and `expect_body`: a server answering 503 on /health goes DOWN with
/// `L7 status 503`, one whose body lacks the expected text goes DOWN for its body, a good
/// one stays UP and takes all the traffic; a fixed server comes back UP.
#[test]
fn http_check_expect_status_and_body() {
    let good = KillableBackend::start("good");
    let bad_status = KillableBackend::start("bad_status");
    let bad_body = KillableBackend::start("bad_body");
    good.set_health(200, "all ok here");
    bad_status.set_health(503, "ok");
    bad_body.set_health(200, "nope");
    let ctl = Control::new();
    let halb = ctl
        .apply(
            Conf::http()
                .backend(&http_check("expect_status = [200], expect_body = \"ok\""))
                .server_with("good", good.addr, &["check = true"])
                .server_with("bad_status", bad_status.addr, &["check = true"])
                .server_with("bad_body", bad_body.addr, &["check = true"]),
        )
        .start();
    let stats = ctl.stats();

    let s = stats.wait_state("be", "bad_status", "DOWN");
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("L7 status 503"), "reason {reason:?}: {s:#}");
    let s = stats.wait_state("be", "bad_body", "DOWN");
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("body"),
        "a body mismatch should be the reason, got {reason:?}: {s:#}"
    );
    wait_log(&halb, "server be/bad_status is DOWN");
    wait_log(&halb, "server be/bad_body is DOWN");

    let g = stats.server("be", "good");
    assert_eq!(g["state"], "UP", "{g:#}");
    let last = g["last_check"].as_str().unwrap_or_default();
    assert!(
        last.contains("L7 status 200"),
        "good's last_check {last:?}: {g:#}"
    );
    assert!(good.health_checks() > 0);

    for i in 0..10 {
        let r = get_fresh(halb.addr, &format!("/x/{i}"), &[]);
        assert_eq!((r.status, r.server()), (200, "good".to_string()), "{r}");
    }

    bad_status.set_health(200, "ok");
    stats.wait_state("be", "bad_status", "UP");
    let line = wait_log(&halb, "server be/bad_status is UP");
    assert!(line.contains("L7 status 200"), "{line}");
}

/// A server whose /health never answers goes DOWN for a check timeout.
#[test]
fn check_timeout_marks_down() {
    let good = KillableBackend::start("good");
    let hung = KillableBackend::start("hung");
    hung.set_health_hang(true);
    let ctl = Control::new();
    let halb = ctl
        .apply(
            Conf::http()
                .backend(&http_check(""))
                .server_with("good", good.addr, &["check = true"])
                .server_with("hung", hung.addr, &["check = true"]),
        )
        .start();
    let stats = ctl.stats();
    let s = stats.wait_state("be", "hung", "DOWN");
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("timeout"),
        "reason should say timeout, got {reason:?}: {s:#}"
    );
    assert!(hung.health_checks() >= 2, "the hung server was not checked");
    let line = wait_log(&halb, "server be/hung is DOWN");
    assert!(line.contains("timeout"), "{line}");
    assert_eq!(stats.state("be", "good"), "UP");
    for i in 0..6 {
        let r = get_fresh(halb.addr, &format!("/t/{i}"), &[]);
        assert_eq!((r.status, r.server()), (200, "good".to_string()), "{r}");
    }
}

/// `observe = "layer7"`, `error_limit = 3`: a server that passes its health checks but
/// answers 500 to live traffic is marked DOWN by the observed errors.
#[test]
fn observe_layer7_marks_down_a_server_failing_live_traffic() {
    let good = KillableBackend::start("good");
    let failing = KillableBackend::start("failing");
    failing.set_status(500);
    let ctl = Control::new();
    let halb = ctl
        .apply(
            Conf::http()
                .backend(&http_check("observe = \"layer7\", error_limit = 3"))
                .server_with("good", good.addr, &["check = true"])
                .server_with("failing", failing.addr, &["check = true"]),
        )
        .start();
    let stats = ctl.stats();
    let mut marked = false;
    let mut fives = 0;
    for i in 0..200 {
        let r = get_fresh(halb.addr, &format!("/o/{i}"), &[]);
        if r.status == 500 {
            fives += 1;
        }
        if !log_lines(&halb, "server be/failing is DOWN").is_empty() {
            marked = true;
            break;
        }
    }
    assert!(
        marked
            || try_wait_until(WAIT, || {
                !log_lines(&halb, "server be/failing is DOWN").is_empty()
            }),
        "the server answering 500 to {fives} live requests was not marked DOWN (error_limit 3)"
    );
    assert!(fives >= 3, "only {fives} 500s went through before the mark");
    let line = wait_log(&halb, "server be/failing is DOWN");
    assert!(
        line.contains("observed"),
        "the DOWN line should say the errors were observed: {line}"
    );
    let s = stats.server("be", "failing");
    assert!(
        s["down_transitions"].as_u64().unwrap_or(0) >= 1,
        "no down transition counted: {s:#}"
    );
    let g = stats.server("be", "good");
    assert_eq!(
        g["down_transitions"], 0,
        "the good server was marked down: {g:#}"
    );
    assert!(
        log_lines(&halb, "server be/good is DOWN").is_empty(),
        "the good server was marked down"
    );
}

/// `on_marked_down = "shutdown-sessions"`: an open TCP connection to a server that goes
/// DOWN is closed by halb.
#[test]
fn shutdown_sessions_closes_connections_of_a_downed_server() {
    let s1 = KillableBackend::start("s1");
    let ctl = Control::new();
    let halb = ctl
        .apply(
            Conf::new()
                .backend(&http_check("on_marked_down = \"shutdown-sessions\""))
                .server_with("s1", s1.addr, &["check = true"]),
        )
        .start();
    let stats = ctl.stats();

    let mut c = Client::connect(halb.addr);
    let r = c.get("/before", &[]);
    assert_eq!((r.status, r.server()), (200, "s1".to_string()), "{r}");

    s1.set_health(503, "going away");
    stats.wait_state("be", "s1", "DOWN");
    match c.closed_within(Duration::from_secs(10)) {
        Ok(true) => {}
        other => panic!(
            "the client connection through a server marked DOWN with shutdown-sessions was not closed: {other:?}"
        ),
    }
    // The server itself never closed it (it is still running and keeps idle
    // connections open): halb did.
    assert!(s1.running());
}
