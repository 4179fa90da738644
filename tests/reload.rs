//! Hitless reload through the real binary (docs/control.md, "Reload"): 20 reloads under
//! sustained load (keep-alive and new-connection clients) lose no request and reset no
//! connection; frontends added by a reload answer and removed ones refuse; an invalid
//! config changes nothing (and `halb ctl reload` says so with exit status 1); server
//! state (MAINT, DOWN, admin weight) and counters carry over; the generation goes up by
//! one per successful reload.

mod common;

use std::fs;
use std::net::SocketAddr;
use std::time::Duration;

use common::control::*;
use common::http::*;
use common::*;

use LoadMode::{KeepAlive, NewConnection};

/// Pause between two requests of one load thread.
const PACE: Duration = Duration::from_millis(2);

/// `generation` from `show info --json`.
fn generation(ctl: &Control) -> u64 {
    ctl.ctl_json(&["show", "info"])["generation"]
        .as_u64()
        .expect("numeric generation")
}

/// `reloads` from `show info --json`.
fn reloads(ctl: &Control) -> u64 {
    ctl.ctl_json(&["show", "info"])["reloads"]
        .as_u64()
        .expect("numeric reloads")
}

/// The three configs of the load test, for frontend `fe` on `addr`:
/// A: backend `be` with s1 and s2 (weight 1 each);
/// B: A with s2 at weight 3 and a second frontend `fe2` on `fe2` → `be`;
/// C: invalid (an unknown balance algorithm).
fn configs(
    ctl: &Control,
    addr: SocketAddr,
    fe2: SocketAddr,
    s1: SocketAddr,
    s2: SocketAddr,
) -> (String, String, String) {
    let base = || {
        Conf::http()
            .backend("retries = 3")
            .backend("redispatch = true")
            .server_with("s1", s1, &["weight = 1"])
    };
    let a = ctl.apply(base().server_with("s2", s2, &["weight = 1"]));
    let b = ctl
        .apply(base().server_with("s2", s2, &["weight = 3"]))
        .raw(&format!(
            "\n[frontend.fe2]\nbind = [\"{fe2}\"]\ndefault_backend = \"be\""
        ));
    let c = ctl.apply(
        base()
            .server_with("s2", s2, &["weight = 1"])
            .backend("balance = \"no-such-algorithm\""),
    );
    (a.render(addr), b.render(addr), c.render(addr))
}

/// How a reload is asked for.
#[derive(Clone, Copy, Debug)]
enum How {
    Ctl,
    Sighup,
}

/// 20 reloads (B, A, invalid C, …; by `halb ctl reload` and by SIGHUP) under three client
/// threads: every request gets a complete 200, fe2 answers after B and refuses after A,
/// the weight follows the config, the invalid config is refused and changes nothing, and
/// the generation goes up by one per successful reload.
#[test]
fn reloads_under_load_lose_nothing() {
    let s1 = KillableBackend::start("s1");
    let s2 = KillableBackend::start("s2");
    let ctl = Control::new();
    let addr = free_addr();
    let fe2 = free_addr();
    let (a, b, c) = configs(&ctl, addr, fe2, s1.addr, s2.addr);
    let mut halb = Halb::start(&a, addr);
    let stats = ctl.stats();
    assert!(
        wait_refused(fe2, Duration::from_secs(1)),
        "fe2 open before B"
    );

    let load = Load::start(addr, &[KeepAlive, KeepAlive, NewConnection], PACE);
    load.wait_more(100);
    let first_generation = generation(&ctl);
    let mut gen = first_generation;
    let mut successful = 0u64;
    let mut invalid = 0u64;
    for i in 0..20 {
        let (name, text) = match i % 3 {
            0 => ("B", &b),
            1 => ("A", &a),
            _ => ("C", &c),
        };
        // Valid configs alternate between ctl (even rounds) and SIGHUP (odd rounds); the
        // invalid one always goes through ctl, which must report the error.
        let how = if name == "C" || (i / 3) % 2 == 0 {
            How::Ctl
        } else {
            How::Sighup
        };
        fs::write(&halb.config_path, text).expect("write config");
        match (name, how) {
            ("C", _) => {
                let (st, out, err) = ctl.ctl(&["reload"]);
                assert_eq!(
                    st.code(),
                    Some(1),
                    "reload {i}: an invalid config should make `halb ctl reload` exit 1:\nstdout: {out}\nstderr: {err}"
                );
                let all = format!("{out}{err}");
                assert!(
                    all.starts_with("error: ") || all.contains("\nerror: "),
                    "reload {i}: expected `error: …`, got {all:?}"
                );
                assert!(halb.running(), "halb exited on an invalid reload");
                assert_eq!(
                    generation(&ctl),
                    gen,
                    "reload {i}: an invalid config changed the generation"
                );
                invalid += 1;
            }
            (_, How::Ctl) => {
                let out = ctl.ctl_ok(&["reload"]);
                assert!(out.starts_with("ok: "), "reload {i} ({name}): {out:?}");
                successful += 1;
                assert_eq!(
                    generation(&ctl),
                    gen + 1,
                    "reload {i} ({name}, ctl): the generation should go up by one"
                );
                gen += 1;
            }
            (_, How::Sighup) => {
                halb.signal("HUP");
                successful += 1;
                let want = gen + 1;
                wait_until(
                    &format!("reload {i} ({name}, SIGHUP): generation {want}"),
                    WAIT,
                    || generation(&ctl) >= want,
                );
                assert_eq!(
                    generation(&ctl),
                    want,
                    "reload {i}: one SIGHUP, one generation"
                );
                gen = want;
            }
        }
        match name {
            "B" => {
                let mut last = None;
                let ok = try_wait_until(WAIT, || {
                    let r = request(fe2, "GET", "/fe2", &[], b"");
                    let ok = matches!(&r, Ok(r) if r.status == 200);
                    last = Some(r.map(|r| r.status));
                    ok
                });
                assert!(ok, "reload {i}: fe2 (added by B) does not answer: {last:?}");
                assert_eq!(
                    stats.server("be", "s2")["weight"],
                    3,
                    "reload {i}: B's weight"
                );
            }
            "A" => {
                assert!(
                    wait_refused(fe2, WAIT),
                    "reload {i}: fe2 (removed by A) still accepts connections"
                );
                assert_eq!(
                    stats.server("be", "s2")["weight"],
                    1,
                    "reload {i}: A's weight"
                );
            }
            _ => {}
        }
        load.wait_more(30);
    }
    let last_ok = load.ok();
    let report = load.stop();
    assert!(
        report.failures.is_empty(),
        "{} of {} requests failed across the reloads: {:#?}",
        report.failures.len(),
        report.ok + report.failures.len(),
        &report.failures[..report.failures.len().min(30)]
    );
    assert!(
        last_ok >= 100 + 20 * 30,
        "too little load went through: {last_ok}"
    );
    let counts = count_names(&report.servers);
    assert!(
        counts.get("s1").copied().unwrap_or(0) > 0 && counts.get("s2").copied().unwrap_or(0) > 0,
        "both servers should have served: {counts:?}"
    );
    assert!(halb.running());
    assert_eq!(successful, 14);
    assert_eq!(invalid, 6);
    assert_eq!(generation(&ctl), first_generation + successful);
    assert_eq!(reloads(&ctl), successful);
    println!(
        "20 reloads ({successful} applied, {invalid} refused) under load: {} requests, all 200 ({counts:?})",
        report.ok
    );
}

/// Servers whose backend, name and address are unchanged keep their state across a
/// reload: MAINT and an admin weight set with `halb ctl`, DOWN found by checks, and their
/// counters; a reload changing another server leaves them be.
#[test]
fn server_state_carries_over_reloads() {
    let s1 = KillableBackend::start("s1");
    let s2 = KillableBackend::start("s2");
    let dead = dead_addr();
    let ctl = Control::new();
    let addr = free_addr();
    let conf = |s2_weight: u32| {
        ctl.apply(
            Conf::http()
                .backend(&tcp_check(""))
                .server_with("s1", s1.addr, &["check = true"])
                .server_with(
                    "s2",
                    s2.addr,
                    &["check = true", &format!("weight = {s2_weight}")],
                )
                .server_with("s3", dead, &["check = true"]),
        )
        .render(addr)
    };
    let halb = Halb::start(&conf(1), addr);
    let stats = ctl.stats();
    stats.wait_state("be", "s3", "DOWN");
    ctl.ctl_ok(&["set", "server", "be/s1", "state", "maint"]);
    ctl.ctl_ok(&["set", "server", "be/s1", "weight", "5"]);
    stats.wait_state("be", "s1", "MAINT");
    for i in 0..10 {
        let r = get(addr, &format!("/before/{i}"), &[]);
        assert_eq!((r.status, r.server()), (200, "s2".to_string()), "{r}");
    }
    wait_until("s2 counts 10 requests", WAIT, || {
        counter(&stats.server("be", "s2"), "http_requests") == 10
    });
    let g0 = generation(&ctl);

    for (round, weight) in [(1u64, 4u32), (2, 1)] {
        fs::write(&halb.config_path, conf(weight)).expect("write config");
        let out = ctl.ctl_ok(&["reload"]);
        assert!(out.starts_with("ok: "), "{out:?}");
        // Read right after the reload: nothing had time to be re-checked.
        let report = stats.json();
        let j1 = server_of(&report, "be", "s1");
        let j2 = server_of(&report, "be", "s2");
        let j3 = server_of(&report, "be", "s3");
        assert_eq!(j1["state"], "MAINT", "round {round}: s1 lost MAINT: {j1:#}");
        assert_eq!(
            j1["weight"], 5,
            "round {round}: s1 lost its admin weight: {j1:#}"
        );
        assert_eq!(j3["state"], "DOWN", "round {round}: s3 lost DOWN: {j3:#}");
        assert_eq!(
            j2["weight"], weight,
            "round {round}: s2's new weight: {j2:#}"
        );
        assert_eq!(
            counter(j2, "http_requests"),
            10,
            "round {round}: s2's counters were not kept: {j2:#}"
        );
        assert_eq!(generation(&ctl), g0 + round, "round {round}");
        assert_eq!(reloads(&ctl), round, "round {round}");
    }
    // Still in force: s1 gets nothing.
    for i in 0..6 {
        let r = get(addr, &format!("/after/{i}"), &[]);
        assert_eq!((r.status, r.server()), (200, "s2".to_string()), "{r}");
    }
    assert_eq!(s1.served(), 0, "s1 (MAINT) served requests");
    // And the server comes back when told.
    ctl.ctl_ok(&["set", "server", "be/s1", "state", "ready"]);
    stats.wait_state("be", "s1", "UP");
}
