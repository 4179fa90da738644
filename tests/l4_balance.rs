//! Balancers through the real proxy (one shard, so one balancer state): distribution and
//! weights of every algorithm, consistent-hash stability, backup servers.
//!
//! Every server is a [`Backend::name`] answering its own name, so each connection tells
//! which server the proxy picked.

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;

use common::*;

/// Weighted smooth round robin: exact shares over whole cycles, interleaved (every window
/// of `sum(weights)` consecutive picks holds each server exactly `weight` times); weight 0
/// and disabled servers receive nothing.
#[test]
fn roundrobin_weights_exact_and_smooth() {
    let (a, b, c, z, d) = (
        Backend::name("a"),
        Backend::name("b"),
        Backend::name("c"),
        Backend::name("zero"),
        Backend::name("off"),
    );
    let halb = Conf::new()
        .backend("balance = \"roundrobin\"")
        .server_with("a", a.addr, &["weight = 3"])
        .server_with("b", b.addr, &["weight = 2"])
        .server_with("c", c.addr, &["weight = 1"])
        .server_with("zero", z.addr, &["weight = 0"])
        .server_with("off", d.addr, &["disabled = true"])
        .start();
    let picks = ask_many(halb.addr, 60);
    let t = tally(&picks);
    assert_eq!(t.get("a"), Some(&30), "{t:?}");
    assert_eq!(t.get("b"), Some(&20), "{t:?}");
    assert_eq!(t.get("c"), Some(&10), "{t:?}");
    assert_eq!(t.get("zero"), None, "{t:?}");
    assert_eq!(t.get("off"), None, "{t:?}");
    assert_eq!(z.accepted() + d.accepted(), 0);
    for (i, w) in picks.windows(6).enumerate() {
        let wt = tally(w);
        assert_eq!(
            (wt.get("a"), wt.get("b"), wt.get("c")),
            (Some(&3), Some(&2), Some(&1)),
            "picks {i}..{} are not interleaved 3:2:1: {w:?} (all: {picks:?})",
            i + 6
        );
    }
}

/// Static round robin: exact 3:1 shares over whole cycles.
#[test]
fn static_rr_weights_exact() {
    let (a, b, z) = (
        Backend::name("a"),
        Backend::name("b"),
        Backend::name("zero"),
    );
    let halb = Conf::new()
        .backend("balance = \"static-rr\"")
        .server_with("a", a.addr, &["weight = 3"])
        .server_with("b", b.addr, &["weight = 1"])
        .server_with("zero", z.addr, &["weight = 0"])
        .start();
    let picks = ask_many(halb.addr, 40);
    let t = tally(&picks);
    assert_eq!(t.get("a"), Some(&30), "{picks:?}");
    assert_eq!(t.get("b"), Some(&10), "{picks:?}");
    assert_eq!(z.accepted(), 0);
}

/// Leastconn: while one connection is held open on one server, every new (short)
/// connection goes to the other one; round robin would alternate.
#[test]
fn leastconn_prefers_the_idle_server() {
    let (a, b) = (Backend::name("a"), Backend::name("b"));
    let halb = Conf::new()
        .backend("balance = \"leastconn\"")
        .server("a", a.addr)
        .server("b", b.addr)
        .start();
    let mut held = connect(halb.addr);
    let busy = read_line(&mut held).expect("first connection");
    let other = if busy == "a" { "b" } else { "a" };
    for i in 0..6 {
        let mut s = connect(halb.addr);
        let name = read_line(&mut s).expect("short connection");
        assert_eq!(
            name, other,
            "connection {i}: {busy} holds one connection, {other} none"
        );
        drop(s);
        // Wait until halb has finished that connection (its log line) before the next.
        halb.wait_access_logs(i + 1, LOG_TIMEOUT);
    }
    // Now hold two on the idle one: the next goes back to the first server.
    let mut h2 = connect(halb.addr);
    assert_eq!(read_line(&mut h2).unwrap(), other);
    let mut h3 = connect(halb.addr);
    let third = read_line(&mut h3).unwrap();
    // a:1 b:1 after h2 → tie, either is fine; then one more makes it 2:1 or 1:2 and the
    // next must go to the less loaded one.
    let mut h4 = connect(halb.addr);
    let fourth = read_line(&mut h4).unwrap();
    assert_ne!(
        third, fourth,
        "after a tie, the next connection balances it"
    );
    drop((held, h2, h3, h4));
}

/// Source hashing: a client address always lands on the same server; different client
/// addresses spread over the servers.
#[test]
fn source_hash_is_sticky_per_client_ip() {
    let (a, b, c) = (Backend::name("a"), Backend::name("b"), Backend::name("c"));
    let halb = Conf::new()
        .backend("balance = \"source\"")
        .server("a", a.addr)
        .server("b", b.addr)
        .server("c", c.addr)
        .start();
    let mut seen = HashMap::new();
    for x in 10..40u8 {
        let src = Ipv4Addr::new(127, 0, 0, x);
        let first = ask_from(src, halb.addr).expect("ask");
        for _ in 0..3 {
            assert_eq!(
                ask_from(src, halb.addr).expect("ask"),
                first,
                "client {src} moved"
            );
        }
        seen.insert(src, first);
    }
    let names: Vec<String> = seen.values().cloned().collect();
    let t = tally(&names);
    assert!(t.len() >= 2, "30 client addresses all on one server: {t:?}");
}

/// `first`: the first usable server in declaration order takes everything.
#[test]
fn first_uses_the_first_usable_server() {
    let (a, b, c) = (Backend::name("a"), Backend::name("b"), Backend::name("c"));
    let conf = Conf::new()
        .backend("balance = \"first\"")
        .server("a", a.addr)
        .server("b", b.addr)
        .server("c", c.addr);
    {
        let halb = conf.start();
        let t = tally(&ask_many(halb.addr, 10));
        assert_eq!(t.get("a"), Some(&10), "{t:?}");
    }
    let halb = conf.server_line("a", "disabled = true").start();
    let t = tally(&ask_many(halb.addr, 10));
    assert_eq!(t.get("b"), Some(&10), "{t:?}");
}

/// Map each client address 127.0.0.2..=250 to the server halb picks for it.
fn source_map(conf: &Conf) -> HashMap<Ipv4Addr, String> {
    let halb = conf.start();
    (2..=250u8)
        .map(|x| {
            let src = Ipv4Addr::new(127, 0, 0, x);
            let name = ask_from(src, halb.addr).unwrap_or_else(|e| panic!("{src}: {e}"));
            (src, name)
        })
        .collect()
}

/// Only the clients of `gone` moved (and they moved to someone else).
fn assert_only_moved(
    before: &HashMap<Ipv4Addr, String>,
    after: &HashMap<Ipv4Addr, String>,
    gone: &str,
) {
    let mut moved_others = Vec::new();
    for (ip, old) in before {
        let new = &after[ip];
        if old == gone {
            assert_ne!(new, gone, "{ip} still on removed server");
        } else if new != old {
            moved_others.push(format!("{ip}: {old} -> {new}"));
        }
    }
    assert!(
        moved_others.is_empty(),
        "{} clients of remaining servers moved: {moved_others:?}",
        moved_others.len()
    );
}

fn four_servers(backends: &[Backend]) -> Conf {
    let mut conf = Conf::new()
        .backend("balance = \"source\"")
        .backend("hash_type = \"consistent\"");
    for (i, b) in backends.iter().enumerate() {
        conf = conf.server(&format!("s{}", i + 1), b.addr);
    }
    conf
}

/// Consistent hashing: disabling one of four servers moves only that server's clients.
#[test]
fn consistent_hash_disabling_a_server_moves_only_its_clients() {
    let backends: Vec<Backend> = (1..=4).map(|i| Backend::name(&format!("s{i}"))).collect();
    let conf = four_servers(&backends);
    let before = source_map(&conf);
    let t = tally(&before.values().cloned().collect::<Vec<_>>());
    for s in ["s1", "s2", "s3", "s4"] {
        assert!(
            t.get(s).copied().unwrap_or(0) >= 5,
            "249 clients spread badly over 4 servers: {t:?}"
        );
    }
    let after = source_map(&conf.server_line("s3", "disabled = true"));
    assert_only_moved(&before, &after, "s3");
}

/// Consistent hashing: removing one of four servers from the config moves only that
/// server's clients (the ring must not depend on the servers' positions).
#[test]
fn consistent_hash_removing_a_server_moves_only_its_clients() {
    let backends: Vec<Backend> = (1..=4).map(|i| Backend::name(&format!("s{i}"))).collect();
    let conf = four_servers(&backends);
    let before = source_map(&conf);
    let after = source_map(&conf.without_server("s2"));
    assert_only_moved(&before, &after, "s2");
}

/// Backup servers receive nothing while a primary is usable, and everything once all
/// primaries are disabled.
#[test]
fn backup_used_only_without_usable_primaries() {
    let (a, b, bk) = (Backend::name("a"), Backend::name("b"), Backend::name("bk"));
    let conf = Conf::new()
        .server("a", a.addr)
        .server("b", b.addr)
        .server_with("bk", bk.addr, &["backup = true"]);
    {
        let halb = conf.start();
        let t = tally(&ask_many(halb.addr, 20));
        assert_eq!(t.get("bk"), None, "{t:?}");
        assert_eq!((t.get("a"), t.get("b")), (Some(&10), Some(&10)), "{t:?}");
    }
    let halb = conf
        .server_line("a", "disabled = true")
        .server_line("b", "disabled = true")
        .start();
    let t = tally(&ask_many(halb.addr, 10));
    assert_eq!(t.get("bk"), Some(&10), "{t:?}");
}

/// Without health checks halb cannot know a primary is down before trying it; what we
/// assert: when every primary refuses, the retries (with redispatch) exclude the primaries
/// already tried and then fall over to the backup, so clients are still served.
#[test]
fn backup_takes_over_when_all_primaries_refuse() {
    let bk = Backend::name("bk");
    let halb = Conf::new()
        .backend("retries = 3")
        .backend("redispatch = true")
        .server("a", dead_addr())
        .server("b", dead_addr())
        .server_with("bk", bk.addr, &["backup = true"])
        .start();
    let t = tally(&ask_many(halb.addr, 6));
    assert_eq!(t.get("bk"), Some(&6), "{t:?}");
    let logs = halb.wait_access_logs(6, LOG_TIMEOUT);
    for l in logs {
        assert_eq!(l.get("server"), "bk", "{}", l.line);
        assert_eq!(
            l.num("retries"),
            2,
            "both primaries tried first: {}",
            l.line
        );
    }
}

/// Source hashing gives every server its share by weight: a weight-0 server gets no
/// client at all.
#[test]
fn source_hash_skips_weight_zero() {
    let (a, b, z) = (
        Backend::name("a"),
        Backend::name("b"),
        Backend::name("zero"),
    );
    let halb = Conf::new()
        .backend("balance = \"source\"")
        .server("a", a.addr)
        .server_with("zero", z.addr, &["weight = 0"])
        .server("b", b.addr)
        .start();
    for x in 50..90u8 {
        let name = ask_from(Ipv4Addr::new(127, 0, 0, x), halb.addr).unwrap();
        assert_ne!(name, "zero");
    }
    assert_eq!(z.accepted(), 0);
}

/// Weighted leastconn: with weights 2:1 and every connection held open, six connections
/// end up exactly 4:2 (each new one goes where active/weight is lowest).
#[test]
fn leastconn_weights_held_connections() {
    let (a, b) = (Backend::name("a"), Backend::name("b"));
    let halb = Conf::new()
        .backend("balance = \"leastconn\"")
        .server_with("a", a.addr, &["weight = 2"])
        .server_with("b", b.addr, &["weight = 1"])
        .start();
    let mut held = Vec::new();
    let mut names = Vec::new();
    for _ in 0..6 {
        let mut s = connect(halb.addr);
        names.push(read_line(&mut s).expect("held connection"));
        held.push(s);
    }
    let t = tally(&names);
    assert_eq!((t.get("a"), t.get("b")), (Some(&4), Some(&2)), "{names:?}");
    drop(held);
}

/// Source hashing honours weights: with weights 3:1 over 240 client addresses the heavy
/// server gets clearly more clients (expected 3×; asserted > 2×).
#[test]
fn source_hash_follows_weights() {
    let (a, b) = (Backend::name("a"), Backend::name("b"));
    let halb = Conf::new()
        .backend("balance = \"source\"")
        .server_with("a", a.addr, &["weight = 3"])
        .server_with("b", b.addr, &["weight = 1"])
        .start();
    let names: Vec<String> = (5..245u8)
        .map(|x| ask_from(Ipv4Addr::new(127, 0, 0, x), halb.addr).unwrap())
        .collect();
    let t = tally(&names);
    let (na, nb) = (
        t.get("a").copied().unwrap_or(0),
        t.get("b").copied().unwrap_or(0),
    );
    assert!(nb > 0 && na > 2 * nb, "weights 3:1 gave {na}:{nb}");
}
