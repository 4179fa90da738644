//! VRRP in private network namespaces (tests/common/netns.rs): two load-balancer boxes and a
//! client on one bridge, real adverts, real VIPs (netlink), real gratuitous ARPs.
//!
//! * `harness_*`: the harness itself, validated with Keepalived on both boxes (a real
//!   outcome: the client is answered by the box that holds the VIP, before and after a
//!   failover, a split brain and its heal). These need Keepalived installed (CI installs it;
//!   a missing Keepalived fails with how to install it).
//! * `halb_*` and `interop_*`: halb's VRRP, alone and against Keepalived (VRRPv2 with
//!   auth_pass, VRRPv3). halb alone also covers VRRPv3 over IPv6 (VIP fd00:99::100/64,
//!   adverts from the link-local address, unsolicited neighbour advertisements),
//!   `unicast_peers` with multicast flooding off on the bridge, notify scripts (arguments
//!   and `HALB_VRRP_*` environment), `track_script` (negative, positive and zero weight)
//!   and `preempt_delay`.
//!
//! Every test runs as root (skipped with a message otherwise), builds its own namespaces
//! (unique names, removed on drop, also on panic) and bounds every wait. Deadlines are
//! functional (a takeover within the VRRP master-down interval plus slack, see
//! `failover_bound`); the only comparison of durations is the protocol property that a
//! priority-0 handover is quicker than waiting for the master-down timer.
//!
//! Boxes: lb1 (10.99.0.11) normally master (priority 101), lb2 (10.99.0.12) backup (100),
//! VIP 10.99.0.100/24 (VRID 51), client 10.99.0.2. Each box answers HTTP with its own name:
//! Keepalived boxes through a responder on 0.0.0.0:80, halb boxes through halb's frontend on
//! VIP:80 to a local server on 127.0.0.1.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::netns::*;
use serde_json::Value;

/// Advert interval of the fast tests (VRRPv3 allows 10 ms steps).
const FAST: Duration = Duration::from_millis(100);
/// Advert interval of VRRPv2 (whole seconds) and of the term-vs-kill comparison.
const SLOW: Duration = Duration::from_secs(1);
/// Extra time for halb's health checks to notice a dead server (fall 2 × inter 200 ms +
/// timeout 300 ms, and margin) before the VRRP priority can drop.
const CHECK_SLACK: Duration = Duration::from_secs(2);

/// A box's VRRP implementation, so interop tests can treat both alike.
enum Router {
    Keepalived(Keepalived),
    Halb(HalbBox),
}

impl Router {
    /// Failure without goodbye: halb SIGKILL, keepalived crash (its VRRP child frozen then
    /// killed; a plain SIGKILL of keepalived's main process makes the child leave politely).
    fn kill(&mut self) {
        match self {
            Router::Keepalived(k) => k.crash(),
            Router::Halb(h) => h.kill9(),
        }
    }
}

/// Which implementation runs on a box.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Impl {
    Keepalived,
    Halb,
}

/// A box's data plane: keepalived boxes answer on 0.0.0.0:80 themselves; halb boxes have a
/// local server on 127.0.0.1 that halb's frontend (bound to VIP:80) forwards to.
fn responder(lan: &Lan, lb: &str, which: Impl) -> HttpBackend {
    match which {
        Impl::Keepalived => lan.http_backend(lb, lb, "0.0.0.0:80"),
        Impl::Halb => lan.http_backend(lb, lb, "127.0.0.1:0"),
    }
}

fn start(lan: &Lan, lb: &str, which: Impl, be: &HttpBackend, conf: &[VrrpConf]) -> Router {
    match which {
        Impl::Keepalived => Router::Keepalived(lan.keepalived(lb, conf)),
        Impl::Halb => Router::Halb(lan.halb(lb, &HalbConf::new(be.addr, conf.to_vec()))),
    }
}

/// Start lb1 (priority 101) alone until it holds the VIP, then lb2 (100); check that only
/// lb1 holds the VIP for a whole master-down interval and answers the client.
fn elect_lb1(lan: &Lan, adv: Duration, start_lb2: impl FnOnce()) {
    elect_lb1_on(lan, adv, VIP, start_lb2)
}

/// [`elect_lb1`] for the virtual address `vip`.
fn elect_lb1_on(lan: &Lan, adv: Duration, vip: &str, start_lb2: impl FnOnce()) {
    wait_until("lb1 holds the VIP", START_BOUND, || lan.holds("lb1", vip));
    start_lb2();
    stays("lb1 alone holding the VIP", failover_bound(adv), || {
        lan.holders(vip) == ["lb1"]
    });
    assert_eq!(lan.probe_detail(vip), Ok("lb1".to_string()));
}

// ---------------------------------------------------------------------------------------
// The harness, validated with Keepalived on both boxes
// ---------------------------------------------------------------------------------------

/// Baseline: lb1 MASTER 101 / lb2 BACKUP 100, VRRPv3 advert 0.1 s. The client is answered
/// by lb1; SIGKILL of lb1's keepalived → lb2 holds the VIP and answers; lb1's keepalived
/// restarted → it preempts; a hard crash of lb1 (no goodbye advert, stale VIP left) → lb2
/// again.
#[test]
fn harness_baseline_keepalived_failover() {
    if skip_unless_root("harness_baseline_keepalived_failover") {
        return;
    }
    require_tool("keepalived", "keepalived");
    let lan = Lan::new(&["lb1", "lb2"], true);
    let _r1 = lan.http_backend("lb1", "lb1", "0.0.0.0:80");
    let _r2 = lan.http_backend("lb2", "lb2", "0.0.0.0:80");
    let c1 = [VrrpConf::new(51, 101).version(3, FAST)];
    let c2 = [VrrpConf::new(51, 100).version(3, FAST)];

    let mut k1 = lan.keepalived("lb1", &c1);
    let mut _k2 = None;
    elect_lb1(&lan, FAST, || _k2 = Some(lan.keepalived("lb2", &c2)));

    k1.kill9();
    let took = lan.wait_answer(VIP, "lb2", failover_bound(FAST));
    lan.wait_alone(VIP, "lb2", failover_bound(FAST));
    eprintln!("keepalived kill -9 of the master: client answered by lb2 after {took:?}");

    let mut k1 = lan.keepalived("lb1", &c1);
    lan.wait_answer(VIP, "lb1", START_BOUND + failover_bound(FAST));
    lan.wait_alone(VIP, "lb1", failover_bound(FAST));

    k1.crash();
    let took = lan.wait_answer(VIP, "lb2", failover_bound(FAST));
    assert!(lan.holds("lb2", VIP));
    assert!(
        lan.holds("lb1", VIP),
        "after a crash the VIP stays configured on lb1 (nobody removed it)"
    );
    eprintln!("keepalived crash of the master: client answered by lb2 after {took:?}");
}

/// Split brain and heal with Keepalived: partition → both boxes master, both hold the VIP,
/// the client follows lb2's gratuitous ARP. Staged heal: lb1 hears lb2's lower-priority
/// adverts first → lb1 sends gratuitous ARPs (Keepalived "forcing new election"), the client
/// is answered by lb1; then full heal → lb2 steps down, lb1 alone holds the VIP.
///
/// Why staged: after a simultaneous heal the loser may hear the survivor's advert before
/// the survivor hears one of the loser's, and step down silently (RFC 5798); then nobody
/// sends a gratuitous ARP and the client keeps the loser's MAC until its ARP entry expires.
#[test]
fn harness_keepalived_split_brain_and_heal() {
    if skip_unless_root("harness_keepalived_split_brain_and_heal") {
        return;
    }
    require_tool("keepalived", "keepalived");
    let lan = Lan::new(&["lb1", "lb2"], true);
    let _r1 = lan.http_backend("lb1", "lb1", "0.0.0.0:80");
    let _r2 = lan.http_backend("lb2", "lb2", "0.0.0.0:80");
    let _k1 = lan.keepalived("lb1", &[VrrpConf::new(51, 101).version(3, FAST)]);
    let mut _k2 = None;
    elect_lb1(&lan, FAST, || {
        _k2 = Some(lan.keepalived("lb2", &[VrrpConf::new(51, 100).version(3, FAST)]))
    });
    let cap = lan.capture(SWITCH, "br0", "arp or ip proto 112");
    split_then_staged_heal(&lan, cap, || {});
}

/// The split-brain scenario shared by the Keepalived and halb tests (lb1 priority 101,
/// lb2 100, both running, lb1 master, `cap` capturing ARP + VRRP on br0).
/// `on_split` runs while both are masters.
fn split_then_staged_heal(lan: &Lan, cap: Capture, on_split: impl FnOnce()) {
    lan.partition(&["lb1", "lb2"]);
    wait_until("both boxes hold the VIP", failover_bound(FAST), || {
        lan.holders(VIP) == ["lb1", "lb2"]
    });
    lan.wait_answer(VIP, "lb2", failover_bound(FAST));
    on_split();
    // a few adverts of both masters on the wire while split
    std::thread::sleep(FAST * 5);

    let healed_at = epoch_now();
    lan.heal_box("lb1");
    lan.wait_answer(VIP, "lb1", failover_bound(FAST));
    lan.heal();
    lan.wait_alone(VIP, "lb1", failover_bound(FAST));
    stays("the client answered by lb1", FAST * 5, || {
        lan.probe(VIP).as_deref() == Some("lb1")
    });

    let packets = cap.stop();
    let lb1_mac = lan.mac("lb1", "eth0");
    let garps: Vec<Garp> = packets
        .garps(VIP)
        .into_iter()
        .filter(|g| g.t >= healed_at && g.src_mac == lb1_mac)
        .collect();
    assert!(
        !garps.is_empty(),
        "no gratuitous ARP from lb1 ({lb1_mac}) after the heal; capture:\n{}",
        packets.lines.join("\n")
    );
    let lb2 = lan.ip("lb2");
    assert!(
        packets
            .adverts()
            .iter()
            .any(|a| a.src == lb2 && a.t < healed_at && a.vrid == 51 && a.prio == 100),
        "lb2 advertised as master during the split; capture:\n{}",
        packets.lines.join("\n")
    );
}

/// The sync-group scenario with Keepalived (validates the second segment, `link_down` and
/// the sync-group rendering): VI_51 (VIP .100) and VI_52 (VIP .101, tracking eth1) in one
/// group; eth1 down on the master → both VIPs move to lb2; eth1 up → both come back.
#[test]
fn harness_keepalived_sync_group_track_interface() {
    if skip_unless_root("harness_keepalived_sync_group_track_interface") {
        return;
    }
    require_tool("keepalived", "keepalived");
    let lan = Lan::with_eth1(&["lb1", "lb2"], true);
    let _r1 = lan.http_backend("lb1", "lb1", "0.0.0.0:80");
    let _r2 = lan.http_backend("lb2", "lb2", "0.0.0.0:80");
    let _k1 = lan.keepalived("lb1", &sync_pair(101));
    let mut _k2 = None;
    elect_lb1(&lan, FAST, || {
        _k2 = Some(lan.keepalived("lb2", &sync_pair(100)))
    });
    sync_group_scenario(&lan, || {});
}

/// VI_51 (VIP) and VI_52 (VIP2, tracking eth1) in sync group G1, VRRPv3 advert 100 ms.
fn sync_pair(priority: u8) -> Vec<VrrpConf> {
    vec![
        VrrpConf::new(51, priority).sync_group("G1"),
        VrrpConf::new(52, priority)
            .vips(&[&format!("{VIP2}/24")])
            .track_interface("eth1")
            .sync_group("G1"),
    ]
}

/// lb1 holds both VIPs; eth1 down on lb1 → both VIPs on lb2 only (the client is answered
/// by lb2 on both); `on_fault` runs then; eth1 up → both back on lb1.
fn sync_group_scenario(lan: &Lan, on_fault: impl FnOnce()) {
    lan.wait_alone(VIP2, "lb1", failover_bound(FAST));
    assert_eq!(lan.probe_detail(VIP2), Ok("lb1".to_string()));

    lan.link_down("lb1", "eth1");
    lan.wait_answer(VIP2, "lb2", failover_bound(FAST));
    lan.wait_answer(VIP, "lb2", failover_bound(FAST));
    wait_until("lb2 alone holds both VIPs", failover_bound(FAST), || {
        lan.holders(VIP) == ["lb2"] && lan.holders(VIP2) == ["lb2"]
    });
    on_fault();

    lan.link_up("lb1", "eth1");
    lan.wait_answer(VIP2, "lb1", failover_bound(FAST));
    lan.wait_answer(VIP, "lb1", failover_bound(FAST));
    wait_until(
        "lb1 alone holds both VIPs again",
        failover_bound(FAST),
        || lan.holders(VIP) == ["lb1"] && lan.holders(VIP2) == ["lb1"],
    );
}

// ---------------------------------------------------------------------------------------
// halb on both boxes (waiting for halb's VRRP)
// ---------------------------------------------------------------------------------------

/// The two halb boxes' local servers (lb1, lb2 answering their names on 127.0.0.1).
fn halb_servers(lan: &Lan) -> (HttpBackend, HttpBackend) {
    (
        lan.http_backend("lb1", "lb1", "127.0.0.1:0"),
        lan.http_backend("lb2", "lb2", "127.0.0.1:0"),
    )
}

/// Start halb on lb1 (`c1`) then lb2 (`c2`) with `elect_lb1`; both boxes.
fn halb_pair(lan: &Lan, adv: Duration, c1: &HalbConf, c2: &HalbConf) -> (HalbBox, HalbBox) {
    halb_pair_on(lan, adv, VIP, c1, c2)
}

/// [`halb_pair`] for the virtual address `vip`.
fn halb_pair_on(
    lan: &Lan,
    adv: Duration,
    vip: &str,
    c1: &HalbConf,
    c2: &HalbConf,
) -> (HalbBox, HalbBox) {
    let h1 = lan.halb("lb1", c1);
    let mut h2 = None;
    elect_lb1_on(lan, adv, vip, || h2 = Some(lan.halb("lb2", c2)));
    let h2 = h2.unwrap();
    for (h, state) in [(&h1, "MASTER"), (&h2, "BACKUP")] {
        h.wait_state("VI_51", state, failover_bound(adv));
    }
    (h1, h2)
}

/// Two halb boxes: exactly one holds the VIP and `show vrrp` agrees; SIGKILL of the master
/// → the backup holds the VIP and the client is answered through it within the master-down
/// bound; the old master comes back (its stale VIP removed at start) → it preempts.
#[test]
fn halb_pair_kill_master_then_preempt() {
    if skip_unless_root("halb_pair_kill_master_then_preempt") {
        return;
    }
    let lan = Lan::new(&["lb1", "lb2"], true);
    let (s1, s2) = halb_servers(&lan);
    let c1 = HalbConf::new(s1.addr, vec![VrrpConf::new(51, 101)]);
    let c2 = HalbConf::new(s2.addr, vec![VrrpConf::new(51, 100)]);
    let (mut h1, h2) = halb_pair(&lan, FAST, &c1, &c2);
    let i1 = h1.instance("VI_51");
    let i2 = h2.instance("VI_51");
    assert_eq!(i1["priority"], 101, "{i1}");
    assert_eq!(i1["base_priority"], 101, "{i1}");
    assert_eq!(i2["priority"], 100, "{i2}");
    assert!(
        i2["master"].to_string().contains(&lan.ip("lb1")),
        "the backup names lb1 as master: {i2}"
    );

    h1.kill9();
    let took = lan.wait_answer(VIP, "lb2", failover_bound(FAST));
    h2.wait_state("VI_51", "MASTER", failover_bound(FAST));
    assert!(lan.holds("lb2", VIP));
    eprintln!("halb SIGKILL of the master: client answered by lb2 after {took:?}");

    let h1 = lan.halb("lb1", &c1);
    lan.wait_answer(VIP, "lb1", START_BOUND + failover_bound(FAST));
    lan.wait_alone(VIP, "lb1", failover_bound(FAST));
    h1.wait_state("VI_51", "MASTER", failover_bound(FAST));
    h2.wait_state("VI_51", "BACKUP", failover_bound(FAST));
}

/// Same with `nopreempt` on both: the old master comes back as BACKUP and lb2 keeps the VIP
/// (checked continuously for two master-down bounds), the client stays on lb2.
#[test]
fn halb_pair_nopreempt_keeps_the_new_master() {
    if skip_unless_root("halb_pair_nopreempt_keeps_the_new_master") {
        return;
    }
    let lan = Lan::new(&["lb1", "lb2"], true);
    let (s1, s2) = halb_servers(&lan);
    let c1 = HalbConf::new(s1.addr, vec![VrrpConf::new(51, 101).nopreempt()]);
    let c2 = HalbConf::new(s2.addr, vec![VrrpConf::new(51, 100).nopreempt()]);
    let (mut h1, h2) = halb_pair(&lan, FAST, &c1, &c2);

    h1.kill9();
    lan.wait_answer(VIP, "lb2", failover_bound(FAST));
    h2.wait_state("VI_51", "MASTER", failover_bound(FAST));

    let h1 = lan.halb("lb1", &c1);
    h1.wait_state("VI_51", "BACKUP", START_BOUND);
    stays(
        "lb2 alone holding the VIP and answering (nopreempt)",
        failover_bound(FAST) * 2,
        || lan.holders(VIP) == ["lb2"] && lan.probe(VIP).as_deref() == Some("lb2"),
    );
    assert_eq!(h1.state("VI_51"), "BACKUP");
    assert_eq!(h2.state("VI_51"), "MASTER");
}

/// SIGTERM vs SIGKILL of the master, advert_int 1 s: SIGTERM is a clean stop (halb exits
/// successfully, sends a priority-0 advert, removes the VIP) and the backup takes over after
/// its skew time only; SIGKILL makes the backup wait for the master-down interval
/// (3 × advert_int + skew). So the measured handover after SIGTERM is shorter than after
/// SIGKILL — a protocol property, with the kill-case bound as the only deadline.
#[test]
fn halb_term_hands_over_sooner_than_kill() {
    if skip_unless_root("halb_term_hands_over_sooner_than_kill") {
        return;
    }
    let lan = Lan::new(&["lb1", "lb2"], true);
    let (s1, s2) = halb_servers(&lan);
    let c1 = HalbConf::new(s1.addr, vec![VrrpConf::new(51, 101).version(3, SLOW)]);
    let c2 = HalbConf::new(s2.addr, vec![VrrpConf::new(51, 100).version(3, SLOW)]);
    let (mut h1, _h2) = halb_pair(&lan, SLOW, &c1, &c2);
    let cap = lan.capture(SWITCH, "br0", "ip proto 112");

    let term_at = epoch_now();
    let t0 = Instant::now();
    h1.term();
    lan.wait_answer(VIP, "lb2", failover_bound(SLOW));
    let took_term = t0.elapsed();
    let st = h1.wait_exit(START_BOUND).expect("halb exits after SIGTERM");
    assert!(st.success(), "halb exit status after SIGTERM: {st}");
    assert!(!lan.holds("lb1", VIP), "SIGTERM removes the VIP");
    let packets = cap.stop();
    let lb1 = lan.ip("lb1");
    assert!(
        packets
            .adverts()
            .iter()
            .any(|a| a.src == lb1 && a.t >= term_at && a.prio == 0),
        "no priority-0 advert from lb1 after SIGTERM; capture:\n{}",
        packets.lines.join("\n")
    );

    let mut h1 = lan.halb("lb1", &c1);
    lan.wait_answer(VIP, "lb1", START_BOUND + failover_bound(SLOW));
    lan.wait_alone(VIP, "lb1", failover_bound(SLOW));

    let t0 = Instant::now();
    h1.kill9();
    lan.wait_answer(VIP, "lb2", failover_bound(SLOW));
    let took_kill = t0.elapsed();
    eprintln!("handover after SIGTERM {took_term:?}, after SIGKILL {took_kill:?}");
    assert!(
        took_term < took_kill,
        "a priority-0 advert must hand over sooner (skew time) than the master-down \
         interval: SIGTERM {took_term:?} vs SIGKILL {took_kill:?}"
    );
}

/// Split brain with halb on both boxes: partition → two masters (both say MASTER, both hold
/// the VIP); staged heal → lb1 hears lb2's lower-priority adverts and sends a gratuitous ARP
/// (seen on the bridge after the heal), the client is answered by lb1; full heal → one
/// master.
#[test]
fn halb_split_brain_then_heal_one_master_and_garp() {
    if skip_unless_root("halb_split_brain_then_heal_one_master_and_garp") {
        return;
    }
    let lan = Lan::new(&["lb1", "lb2"], true);
    let (s1, s2) = halb_servers(&lan);
    let c1 = HalbConf::new(s1.addr, vec![VrrpConf::new(51, 101)]);
    let c2 = HalbConf::new(s2.addr, vec![VrrpConf::new(51, 100)]);
    let (h1, h2) = halb_pair(&lan, FAST, &c1, &c2);
    let cap = lan.capture(SWITCH, "br0", "arp or ip proto 112");
    lan.partition(&["lb1", "lb2"]);
    wait_until("both boxes hold the VIP", failover_bound(FAST), || {
        lan.holders(VIP) == ["lb1", "lb2"]
    });
    h1.wait_state("VI_51", "MASTER", failover_bound(FAST));
    h2.wait_state("VI_51", "MASTER", failover_bound(FAST));
    lan.wait_answer(VIP, "lb2", failover_bound(FAST));
    std::thread::sleep(FAST * 5);

    // Heal both ports at once: lb2 may hear lb1 first and yield without ever advertising
    // to it as master. halb's loser then says so (priority 0) and the winner announces the
    // VIP again — Keepalived stays silent here until its next refresh, and a client whose
    // ARP entry points at the loser gets no answer meanwhile.
    let healed_at = epoch_now();
    lan.heal();
    h2.wait_state("VI_51", "BACKUP", failover_bound(FAST));
    h1.wait_state("VI_51", "MASTER", failover_bound(FAST));
    lan.wait_answer(VIP, "lb1", failover_bound(FAST));
    lan.wait_alone(VIP, "lb1", failover_bound(FAST));
    std::thread::sleep(FAST * 3);
    let packets = cap.stop();
    let lb1_mac = lan.mac("lb1", "eth0");
    assert!(
        packets
            .garps(VIP)
            .iter()
            .any(|g| g.t >= healed_at && g.src_mac == lb1_mac),
        "no gratuitous ARP from lb1 ({lb1_mac}) after the heal; capture:\n{}",
        packets.lines.join("\n")
    );
    let lb2 = lan.ip("lb2");
    assert!(
        packets
            .adverts()
            .iter()
            .any(|a| a.src == lb2 && a.t < healed_at && a.vrid == 51 && a.prio == 100),
        "lb2 advertised as master during the split; capture:\n{}",
        packets.lines.join("\n")
    );
    assert!(
        packets
            .adverts()
            .iter()
            .any(|a| a.src == lb2 && a.t >= healed_at && a.prio == 0),
        "lb2 yielded without a priority-0 advert; capture:\n{}",
        packets.lines.join("\n")
    );
}

/// track_proxy: the master's only server dies → its health check marks it DOWN → its VRRP
/// priority drops by 60 (101 → 41) → lb2 (100) preempts and the client is answered by lb2;
/// the server comes back → priority 101 again → lb1 preempts back.
#[test]
fn halb_track_proxy_moves_the_vip_off_a_box_without_servers() {
    if skip_unless_root("halb_track_proxy_moves_the_vip_off_a_box_without_servers") {
        return;
    }
    let lan = Lan::new(&["lb1", "lb2"], true);
    let (mut s1, s2) = halb_servers(&lan);
    let c1 = HalbConf::new(s1.addr, vec![VrrpConf::new(51, 101).track_proxy(-60)]);
    let c2 = HalbConf::new(s2.addr, vec![VrrpConf::new(51, 100).track_proxy(-60)]);
    let (h1, h2) = halb_pair(&lan, FAST, &c1, &c2);

    s1.stop();
    lan.wait_answer(VIP, "lb2", CHECK_SLACK + failover_bound(FAST));
    lan.wait_alone(VIP, "lb2", failover_bound(FAST));
    let i1 = h1.instance("VI_51");
    assert_eq!(i1["priority"], 41, "{i1}");
    assert_eq!(i1["base_priority"], 101, "{i1}");
    assert_eq!(i1["state"], "BACKUP", "{i1}");
    assert_eq!(h2.state("VI_51"), "MASTER");

    let _s1 = lan.http_backend("lb1", "lb1", &s1.addr.to_string());
    lan.wait_answer(VIP, "lb1", CHECK_SLACK + failover_bound(FAST));
    lan.wait_alone(VIP, "lb1", failover_bound(FAST));
    assert_eq!(h1.priority("VI_51"), 101);
}

/// sync_group + track_interface with halb on both boxes: VI_51 (VIP .100) and VI_52
/// (VIP .101, tracking eth1) in group G1; eth1 down on the master → VI_52 FAULT, the whole
/// group leaves lb1 and both VIPs are answered by lb2; eth1 up → both come back to lb1.
#[test]
fn halb_sync_group_moves_both_vips_on_tracked_link_down() {
    if skip_unless_root("halb_sync_group_moves_both_vips_on_tracked_link_down") {
        return;
    }
    let lan = Lan::with_eth1(&["lb1", "lb2"], true);
    let (s1, s2) = halb_servers(&lan);
    let c1 = HalbConf::new(s1.addr, sync_pair(101));
    let c2 = HalbConf::new(s2.addr, sync_pair(100));
    assert_eq!(c1.binds, [format!("{VIP}:80"), format!("{VIP2}:80")]);
    let (h1, h2) = halb_pair(&lan, FAST, &c1, &c2);
    h1.wait_state("VI_52", "MASTER", failover_bound(FAST));
    sync_group_scenario(&lan, || {
        h1.wait_state("VI_52", "FAULT", failover_bound(FAST));
        let s = h1.state("VI_51");
        assert!(
            s == "FAULT" || s == "BACKUP",
            "VI_51 follows its sync group out of MASTER, got {s}"
        );
        h2.wait_state("VI_51", "MASTER", failover_bound(FAST));
        h2.wait_state("VI_52", "MASTER", failover_bound(FAST));
    });
    h1.wait_state("VI_51", "MASTER", failover_bound(FAST));
    h1.wait_state("VI_52", "MASTER", failover_bound(FAST));
}

// ---------------------------------------------------------------------------------------
// halb: IPv6, unicast peers, notify scripts, track_script, preempt_delay
// ---------------------------------------------------------------------------------------

/// Advert interval of the notify test: long enough that lb1's BACKUP scripts have surely
/// run before it becomes master (an ordering, not a speed, assertion).
const MID: Duration = Duration::from_millis(500);

/// Lines of a file written by the test's scripts (empty while it does not exist).
fn file_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Store `code` as the exit status of the `check.sh` of [`check_script`] (written aside and
/// renamed, so the script never reads a half-written file).
fn set_status(path: &Path, code: u8) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, format!("{code}\n")).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// A `check.sh` that exits with the status stored in a file (initially `code`): the
/// script's path and the status file.
fn check_script(lan: &Lan, code: u8) -> (PathBuf, PathBuf) {
    let status = lan.file("check-status", "txt");
    set_status(&status, code);
    let script = lan.script("check", &format!("exit \"$(cat {})\"\n", status.display()));
    (script, status)
}

/// The `track_script` entry running `script` every 100 ms with `weight`, fall 2, rise 2.
fn track_entry(script: &Path, weight: i32) -> String {
    format!(
        "{{ script = \"{}\", interval = \"100ms\", weight = {weight}, fall = 2, rise = 2 }}",
        script.display()
    )
}

/// The `script:...` tracker of `instance` (a `show vrrp --json` entry).
fn script_tracker(instance: &Value) -> Value {
    instance["trackers"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|t| t["name"].as_str().is_some_and(|n| n.starts_with("script:")))
                .cloned()
        })
        .unwrap_or_else(|| panic!("no script tracker in {instance}"))
}

/// VRRPv3 over IPv6: VIP fd00:99::100/64 (each box also has fd00:99::N/64 on eth0; halb
/// sends from the link-local address). Exactly one box holds the VIP and the client is
/// answered by lb1 on [fd00:99::100]:80, the backup names lb1's link-local address as
/// master; the adverts go to ff02::12 with hop limit 255; SIGKILL of lb1 → lb2 holds the
/// VIP, answers, and sends unsolicited neighbour advertisements for the VIP (to ff02::1,
/// Override flag) after the failover.
#[test]
fn halb_ipv6_pair_kill_master_neighbour_advert() {
    if skip_unless_root("halb_ipv6_pair_kill_master_neighbour_advert") {
        return;
    }
    let lan = Lan::new(&["lb1", "lb2"], true);
    let (s1, s2) = halb_servers(&lan);
    let v6 = |prio| VrrpConf::new(51, prio).vips(&[&format!("{VIP6}/64")]);
    let c1 = HalbConf::new(s1.addr, vec![v6(101)]);
    let c2 = HalbConf::new(s2.addr, vec![v6(100)]);
    assert_eq!(c1.binds, [format!("[{VIP6}]:80")]);
    let (mut h1, h2) = halb_pair_on(&lan, FAST, VIP6, &c1, &c2);
    let (ll1, ll2) = (lan.link_local("lb1", "eth0"), lan.link_local("lb2", "eth0"));
    let i2 = h2.instance("VI_51");
    assert_eq!(
        i2["master"],
        ll1.as_str(),
        "lb1's link-local is the master: {i2}"
    );
    assert_eq!(i2["priority"], 100, "{i2}");

    let cap = lan.capture(SWITCH, "br0", "ip6 proto 112 or (icmp6 and ip6[40] == 136)");
    std::thread::sleep(FAST * 5); // a few adverts of lb1 on the wire
    let killed_at = epoch_now();
    h1.kill9();
    let took = lan.wait_answer(VIP6, "lb2", failover_bound(FAST));
    h2.wait_state("VI_51", "MASTER", failover_bound(FAST));
    assert!(lan.holds("lb2", VIP6));
    eprintln!("halb IPv6 SIGKILL of the master: client answered by lb2 after {took:?}");
    std::thread::sleep(FAST * 3);
    let packets = cap.stop_verbose();
    let dump = || packets.lines.join("\n");

    let adverts = packets.adverts();
    let before: Vec<&Advert> = adverts.iter().filter(|a| a.t < killed_at).collect();
    assert!(
        !before.is_empty(),
        "no advert before the kill; capture:\n{}",
        dump()
    );
    for a in &before {
        assert!(
            a.src == ll1
                && a.dst == "ff02::12"
                && a.hops == Some(255)
                && a.version == "VRRPv3"
                && a.vrid == 51
                && a.prio == 101,
            "before the kill only lb1 ({ll1}) advertises, VRRPv3 to ff02::12 with hop limit \
             255: {a:?}; capture:\n{}",
            dump()
        );
    }
    assert!(
        adverts.iter().any(|a| a.src == ll2
            && a.t >= killed_at
            && a.dst == "ff02::12"
            && a.hops == Some(255)
            && a.prio == 100),
        "no advert from lb2 ({ll2}) to ff02::12 with hop limit 255 after the failover; \
         capture:\n{}",
        dump()
    );
    let lb2_mac = lan.mac("lb2", "eth0");
    let nas: Vec<Na> = packets
        .neighbour_adverts(VIP6)
        .into_iter()
        .filter(|n| n.t >= killed_at && n.src_mac == lb2_mac)
        .collect();
    assert!(
        !nas.is_empty(),
        "no neighbour advertisement for {VIP6} from lb2 ({lb2_mac}) after the failover; \
         capture:\n{}",
        dump()
    );
    assert!(
        nas.iter()
            .all(|n| n.dst == "ff02::1" && n.override_flag && n.hops == Some(255)),
        "lb2's neighbour advertisements are unsolicited (to ff02::1, Override, hop limit \
         255): {nas:?}"
    );
}

/// unicast_peers, with multicast flooding off on every bridge port for the whole test (a
/// multicast advert would reach nobody): lb1 is elected, SIGKILL of lb1 → lb2 takes over
/// and answers, lb1 restarted → it preempts. The capture on the bridge shows adverts from
/// lb1 to 10.99.0.12 and, after the failover, from lb2 to 10.99.0.11 (TTL 255), none to
/// 224.0.0.18.
#[test]
fn halb_unicast_peers_failover_without_multicast() {
    if skip_unless_root("halb_unicast_peers_failover_without_multicast") {
        return;
    }
    let lan = Lan::new(&["lb1", "lb2"], true);
    lan.partition(&["lb1", "lb2", CLIENT]);
    let (s1, s2) = halb_servers(&lan);
    let (ip1, ip2) = (lan.ip("lb1"), lan.ip("lb2"));
    let c1 = HalbConf::new(s1.addr, vec![VrrpConf::new(51, 101).peers(&[&ip2])]);
    let c2 = HalbConf::new(s2.addr, vec![VrrpConf::new(51, 100).peers(&[&ip1])]);
    let cap = lan.capture(SWITCH, "br0", "ip proto 112");
    let (mut h1, h2) = halb_pair(&lan, FAST, &c1, &c2);
    let i2 = h2.instance("VI_51");
    assert_eq!(i2["master"], ip1.as_str(), "{i2}");

    let killed_at = epoch_now();
    h1.kill9();
    lan.wait_answer(VIP, "lb2", failover_bound(FAST));
    h2.wait_state("VI_51", "MASTER", failover_bound(FAST));
    std::thread::sleep(FAST * 3);

    let restarted_at = epoch_now();
    let h1 = lan.halb("lb1", &c1);
    lan.wait_answer(VIP, "lb1", START_BOUND + failover_bound(FAST));
    lan.wait_alone(VIP, "lb1", failover_bound(FAST));
    h1.wait_state("VI_51", "MASTER", failover_bound(FAST));
    h2.wait_state("VI_51", "BACKUP", failover_bound(FAST));

    let packets = cap.stop_verbose();
    let dump = || packets.lines.join("\n");
    let adverts = packets.adverts();
    for a in &adverts {
        assert!(
            (a.src == ip1 && a.dst == ip2) || (a.src == ip2 && a.dst == ip1),
            "every advert goes to the peer's unicast address (none to 224.0.0.18): {a:?}; \
             capture:\n{}",
            dump()
        );
        assert_eq!(a.hops, Some(255), "{a:?}");
    }
    assert!(
        adverts
            .iter()
            .any(|a| a.src == ip1 && a.t < killed_at && a.prio == 101),
        "no advert from lb1 to {ip2} before the kill; capture:\n{}",
        dump()
    );
    assert!(
        adverts
            .iter()
            .any(|a| a.src == ip2 && a.t >= killed_at && a.t < restarted_at && a.prio == 100),
        "no advert from lb2 to {ip1} after the failover; capture:\n{}",
        dump()
    );
    assert!(
        adverts
            .iter()
            .any(|a| a.src == ip1 && a.t >= restarted_at && a.prio == 101),
        "no advert from the restarted lb1 to {ip2}; capture:\n{}",
        dump()
    );
}

/// notify scripts: `notify_master`, `notify_backup`, `notify_fault`, `notify_stop` and
/// the generic `notify` run one script (absolute path, executable) that appends `$0`, its
/// arguments and `HALB_VRRP_INSTANCE/STATE/PRIORITY` to a file per box. lb1 at startup:
/// BACKUP then MASTER (the generic one with `INSTANCE VI_51 MASTER 101`); lb2: BACKUP; a
/// SIGTERM of lb1 runs its `notify_stop` and the generic `STOP`, and lb2 runs
/// `notify_master`. No FAULT script runs.
#[test]
fn halb_notify_scripts_run_with_args_and_env() {
    if skip_unless_root("halb_notify_scripts_run_with_args_and_env") {
        return;
    }
    let lan = Lan::new(&["lb1", "lb2"], true);
    let (s1, s2) = halb_servers(&lan);
    let script = lan.script(
        "notify",
        "out=$1\nshift\n\
         echo \"$0 $* | $HALB_VRRP_INSTANCE $HALB_VRRP_STATE $HALB_VRRP_PRIORITY\" >> \"$out\"\n",
    );
    let sc = script.display().to_string();
    let (out1, out2) = (lan.file("lb1-notify", "out"), lan.file("lb2-notify", "out"));
    let conf = |prio: u8, out: &Path| {
        let cmd = |what: &str| format!("{sc} {} {what}", out.display());
        VrrpConf::new(51, prio)
            .version(3, MID)
            .notify("notify_master", &cmd("master"))
            .notify("notify_backup", &cmd("backup"))
            .notify("notify_fault", &cmd("fault"))
            .notify("notify_stop", &cmd("stop"))
            .notify("notify", &cmd("generic"))
    };
    let c1 = HalbConf::new(s1.addr, vec![conf(101, &out1)]);
    let c2 = HalbConf::new(s2.addr, vec![conf(100, &out2)]);
    let (mut h1, h2) = halb_pair(&lan, MID, &c1, &c2);

    let specific =
        |what: &str, state: &str, prio: u8| format!("{sc} {what} | VI_51 {state} {prio}");
    let generic = |state: &str, prio: u8| {
        format!("{sc} generic INSTANCE VI_51 {state} {prio} | VI_51 {state} {prio}")
    };
    let wait_lines = |who: &str, out: &Path, want: &[String]| {
        let ok = try_wait_until(START_BOUND, || {
            let l = file_lines(out);
            want.iter().all(|w| l.contains(w))
        });
        assert!(
            ok,
            "{who}'s notify scripts: expected the lines\n{}\ngot\n{}",
            want.join("\n"),
            file_lines(out).join("\n")
        );
        file_lines(out)
    };
    let pos = |l: &[String], w: &str| l.iter().position(|x| x == w).unwrap();

    // startup: lb1 BACKUP then MASTER, lb2 BACKUP
    let want1 = [
        specific("backup", "BACKUP", 101),
        generic("BACKUP", 101),
        specific("master", "MASTER", 101),
        generic("MASTER", 101),
    ];
    let l1 = wait_lines("lb1", &out1, &want1);
    assert_eq!(
        l1.len(),
        4,
        "lb1 ran exactly four scripts:\n{}",
        l1.join("\n")
    );
    assert!(
        pos(&l1, &want1[0]) < pos(&l1, &want1[2]) && pos(&l1, &want1[1]) < pos(&l1, &want1[3]),
        "lb1: BACKUP before MASTER:\n{}",
        l1.join("\n")
    );
    let want2 = [specific("backup", "BACKUP", 100), generic("BACKUP", 100)];
    let l2 = wait_lines("lb2", &out2, &want2);
    assert_eq!(
        l2.len(),
        2,
        "lb2 ran exactly two scripts:\n{}",
        l2.join("\n")
    );

    // SIGTERM of lb1: notify_stop and the generic STOP on lb1, notify_master on lb2
    h1.term();
    let st = h1.wait_exit(START_BOUND).expect("halb exits after SIGTERM");
    assert!(st.success(), "halb exit status after SIGTERM: {st}");
    lan.wait_answer(VIP, "lb2", failover_bound(MID));
    h2.wait_state("VI_51", "MASTER", failover_bound(MID));
    let l1 = wait_lines(
        "lb1",
        &out1,
        &[specific("stop", "STOP", 101), generic("STOP", 101)],
    );
    assert_eq!(l1.len(), 6, "lb1 after SIGTERM:\n{}", l1.join("\n"));
    let l2 = wait_lines(
        "lb2",
        &out2,
        &[specific("master", "MASTER", 100), generic("MASTER", 100)],
    );
    assert_eq!(l2.len(), 4, "lb2 after the takeover:\n{}", l2.join("\n"));
    for l in l1.iter().chain(&l2) {
        assert!(!l.contains("FAULT"), "no FAULT script ran: {l}");
    }
}

/// track_script with a negative weight on lb1 (101, weight -60, every 100 ms, fall 2, rise
/// 2; the script exits with a status the test stores in a file): status 1 → lb1's priority
/// drops to 41, lb2 (100) takes the VIP and answers; status 0 again → 101, lb1 preempts.
#[test]
fn halb_track_script_negative_weight_moves_the_vip() {
    if skip_unless_root("halb_track_script_negative_weight_moves_the_vip") {
        return;
    }
    let lan = Lan::new(&["lb1", "lb2"], true);
    let (s1, s2) = halb_servers(&lan);
    let (check, status) = check_script(&lan, 0);
    let c1 = HalbConf::new(
        s1.addr,
        vec![VrrpConf::new(51, 101).track_script(&track_entry(&check, -60))],
    );
    let c2 = HalbConf::new(s2.addr, vec![VrrpConf::new(51, 100)]);
    let (h1, h2) = halb_pair(&lan, FAST, &c1, &c2);
    let i1 = h1.instance("VI_51");
    assert_eq!(i1["priority"], 101, "{i1}");
    assert_eq!(script_tracker(&i1)["healthy"], true, "{i1}");

    set_status(&status, 1);
    wait_until("lb1's priority is 41", CHECK_SLACK, || {
        h1.priority("VI_51") == 41
    });
    lan.wait_answer(VIP, "lb2", failover_bound(FAST));
    lan.wait_alone(VIP, "lb2", failover_bound(FAST));
    let i1 = h1.instance("VI_51");
    assert_eq!(i1["base_priority"], 101, "{i1}");
    assert_eq!(i1["state"], "BACKUP", "{i1}");
    assert_eq!(script_tracker(&i1)["healthy"], false, "{i1}");
    assert_eq!(h2.state("VI_51"), "MASTER");

    set_status(&status, 0);
    wait_until("lb1's priority is 101 again", CHECK_SLACK, || {
        h1.priority("VI_51") == 101
    });
    lan.wait_answer(VIP, "lb1", failover_bound(FAST));
    lan.wait_alone(VIP, "lb1", failover_bound(FAST));
    h1.wait_state("VI_51", "MASTER", failover_bound(FAST));
    h2.wait_state("VI_51", "BACKUP", failover_bound(FAST));
}

/// track_script with a positive weight: lb2 (base 100, weight +10 for a succeeding script)
/// has priority 110 from the start and takes the VIP from lb1 (101); its script failing →
/// 100, lb1 preempts back.
#[test]
fn halb_track_script_positive_weight_counts_from_the_start() {
    if skip_unless_root("halb_track_script_positive_weight_counts_from_the_start") {
        return;
    }
    let lan = Lan::new(&["lb1", "lb2"], true);
    let (s1, s2) = halb_servers(&lan);
    let (check, status) = check_script(&lan, 0);
    let c1 = HalbConf::new(s1.addr, vec![VrrpConf::new(51, 101)]);
    let c2 = HalbConf::new(
        s2.addr,
        vec![VrrpConf::new(51, 100).track_script(&track_entry(&check, 10))],
    );
    let h1 = lan.halb("lb1", &c1);
    lan.wait_answer(VIP, "lb1", START_BOUND);
    let h2 = lan.halb("lb2", &c2);
    let i2 = h2.instance("VI_51");
    assert_eq!(i2["priority"], 110, "{i2}");
    assert_eq!(i2["base_priority"], 100, "{i2}");
    lan.wait_answer(VIP, "lb2", failover_bound(FAST));
    lan.wait_alone(VIP, "lb2", failover_bound(FAST));
    h1.wait_state("VI_51", "BACKUP", failover_bound(FAST));
    h2.wait_state("VI_51", "MASTER", failover_bound(FAST));

    set_status(&status, 1);
    wait_until("lb2's priority is 100", CHECK_SLACK, || {
        h2.priority("VI_51") == 100
    });
    lan.wait_answer(VIP, "lb1", failover_bound(FAST));
    lan.wait_alone(VIP, "lb1", failover_bound(FAST));
    h1.wait_state("VI_51", "MASTER", failover_bound(FAST));
    h2.wait_state("VI_51", "BACKUP", failover_bound(FAST));
}

/// track_script with weight 0: lb1's script failing puts lb1 in FAULT (it leaves with
/// priority 0, holds nothing), lb2 takes the VIP and answers; the script succeeding again →
/// lb1 starts again as BACKUP and preempts.
#[test]
fn halb_track_script_weight_zero_means_fault() {
    if skip_unless_root("halb_track_script_weight_zero_means_fault") {
        return;
    }
    let lan = Lan::new(&["lb1", "lb2"], true);
    let (s1, s2) = halb_servers(&lan);
    let (check, status) = check_script(&lan, 0);
    let c1 = HalbConf::new(
        s1.addr,
        vec![VrrpConf::new(51, 101).track_script(&track_entry(&check, 0))],
    );
    let c2 = HalbConf::new(s2.addr, vec![VrrpConf::new(51, 100)]);
    let (h1, h2) = halb_pair(&lan, FAST, &c1, &c2);

    set_status(&status, 1);
    h1.wait_state("VI_51", "FAULT", CHECK_SLACK);
    lan.wait_answer(VIP, "lb2", failover_bound(FAST));
    lan.wait_alone(VIP, "lb2", failover_bound(FAST));
    let i1 = h1.instance("VI_51");
    assert!(
        i1["faults"].to_string().contains("script"),
        "the fault names the script: {i1}"
    );
    h2.wait_state("VI_51", "MASTER", failover_bound(FAST));

    set_status(&status, 0);
    lan.wait_answer(VIP, "lb1", CHECK_SLACK + failover_bound(FAST));
    lan.wait_alone(VIP, "lb1", failover_bound(FAST));
    h1.wait_state("VI_51", "MASTER", failover_bound(FAST));
    h2.wait_state("VI_51", "BACKUP", failover_bound(FAST));
}

/// preempt_delay: lb1 (101, `preempt_delay = "2s"`) is killed, lb2 takes over; lb1
/// restarted → for ~1.5 s after it is up lb2 stays the only holder and lb1 does not claim
/// mastership; then lb1 preempts (the reason says so).
#[test]
fn halb_preempt_delay_holds_off_the_returning_master() {
    if skip_unless_root("halb_preempt_delay_holds_off_the_returning_master") {
        return;
    }
    let delay = Duration::from_secs(2);
    let lan = Lan::new(&["lb1", "lb2"], true);
    let (s1, s2) = halb_servers(&lan);
    let c1 = HalbConf::new(s1.addr, vec![VrrpConf::new(51, 101).preempt_delay(delay)]);
    let c2 = HalbConf::new(s2.addr, vec![VrrpConf::new(51, 100)]);
    let (mut h1, h2) = halb_pair(&lan, FAST, &c1, &c2);

    h1.kill9();
    lan.wait_answer(VIP, "lb2", failover_bound(FAST));
    h2.wait_state("VI_51", "MASTER", failover_bound(FAST));

    let h1 = lan.halb("lb1", &c1);
    stays(
        "lb2 alone holding the VIP, lb1 not master (preempt_delay)",
        Duration::from_millis(1500),
        || lan.holders(VIP) == ["lb2"] && h1.state("VI_51") != "MASTER",
    );
    assert_eq!(lan.probe_detail(VIP), Ok("lb2".to_string()));
    assert_eq!(h2.state("VI_51"), "MASTER");

    lan.wait_answer(VIP, "lb1", delay + failover_bound(FAST));
    lan.wait_alone(VIP, "lb1", failover_bound(FAST));
    let i1 = h1.instance("VI_51");
    assert_eq!(i1["state"], "MASTER", "{i1}");
    assert!(
        i1["reason"].to_string().contains("preempting"),
        "lb1 became master by preempting lb2: {i1}"
    );
    h2.wait_state("VI_51", "BACKUP", failover_bound(FAST));
}

// ---------------------------------------------------------------------------------------
// Interop: Keepalived on one box, halb on the other
// ---------------------------------------------------------------------------------------

/// `a` on lb1, `b` on lb2, same VRRP parameters (`base` gives version, advert, auth):
/// 1. b alone (priority 100) becomes master;
/// 2. a starts with 101 → a takes over (the higher priority wins, whichever implementation);
/// 3. a killed without goodbye → b takes over;
/// 4. a restarted → a preempts back;
/// 5. b restarted with 150 → b preempts a;
/// 6. b killed → a takes over.
///
/// So each implementation takes the VIP from the other by priority and by failover, and
/// each accepts the other's adverts as backup (no flapping, checked continuously).
fn interop(a: Impl, b: Impl, base: VrrpConf) {
    let adv = base.advert_int;
    let conf = |prio: u8| {
        let mut c = base.clone();
        c.priority = prio;
        c.state = if prio > 100 { "MASTER" } else { "BACKUP" }.to_string();
        vec![c]
    };
    let lan = Lan::new(&["lb1", "lb2"], true);
    let r1 = responder(&lan, "lb1", a);
    let r2 = responder(&lan, "lb2", b);
    let steady = |who: &str| {
        lan.wait_alone(VIP, who, failover_bound(adv));
        stays(
            &format!("{who} alone holding the VIP"),
            failover_bound(adv),
            || lan.holders(VIP) == [who],
        );
        assert_eq!(lan.probe_detail(VIP), Ok(who.to_string()));
    };

    // 1, 2
    let mut rb = start(&lan, "lb2", b, &r2, &conf(100));
    lan.wait_answer(VIP, "lb2", START_BOUND);
    let mut ra = start(&lan, "lb1", a, &r1, &conf(101));
    lan.wait_answer(VIP, "lb1", START_BOUND + failover_bound(adv));
    steady("lb1");
    // 3
    ra.kill();
    lan.wait_answer(VIP, "lb2", failover_bound(adv));
    // 4
    drop(ra);
    let _ra = start(&lan, "lb1", a, &r1, &conf(101));
    lan.wait_answer(VIP, "lb1", START_BOUND + failover_bound(adv));
    steady("lb1");
    // 5
    rb.kill();
    drop(rb);
    let mut rb = start(&lan, "lb2", b, &r2, &conf(150));
    lan.wait_answer(VIP, "lb2", START_BOUND + failover_bound(adv));
    steady("lb2");
    // 6
    rb.kill();
    lan.wait_answer(VIP, "lb1", failover_bound(adv));
    // (lb2's stale VIP stays configured after its kill)
    assert!(lan.holds("lb1", VIP));
}

/// The interop flow itself, validated with Keepalived on both boxes (VRRPv3, 100 ms).
#[test]
fn harness_interop_flow_keepalived_both() {
    if skip_unless_root("harness_interop_flow_keepalived_both") {
        return;
    }
    require_tool("keepalived", "keepalived");
    interop(Impl::Keepalived, Impl::Keepalived, v3_fast());
}

/// Keepalived accepts every configuration shape the harness renders (`keepalived -t`):
/// VRRPv2 with auth_pass, nopreempt, unicast peers, sync group with track_interface.
#[test]
fn harness_keepalived_accepts_rendered_configs() {
    if skip_unless_root("harness_keepalived_accepts_rendered_configs") {
        return;
    }
    require_tool("keepalived", "keepalived");
    // checked inside a box: keepalived -t also checks that the interfaces exist
    let lan = Lan::with_eth1(&["lb1"], false);
    let shapes = [
        vec![v2_auth()],
        vec![v3_fast().nopreempt()],
        vec![v3_fast().peers(&["10.99.0.12"])],
        sync_pair(101),
    ];
    for shape in &shapes {
        let text = render_keepalived("lb1", shape);
        let path = lan.file("check", "conf");
        std::fs::write(&path, &text).unwrap();
        let out = lan.exec(
            "lb1",
            &["keepalived", "-t", "-l", "-f", path.to_str().unwrap()],
        );
        let log = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "keepalived -t rejects:\n{text}\n{log}"
        );
    }
}

/// VRRPv2 (advert 1 s) with `auth_pass`.
fn v2_auth() -> VrrpConf {
    VrrpConf::new(51, 100).version(2, SLOW).auth("s3cret")
}

/// VRRPv3, advert 100 ms.
fn v3_fast() -> VrrpConf {
    VrrpConf::new(51, 100).version(3, FAST)
}

#[test]
fn interop_v2_auth_halb_lb1_keepalived_lb2() {
    if skip_unless_root("interop_v2_auth_halb_lb1_keepalived_lb2") {
        return;
    }
    require_tool("keepalived", "keepalived");
    interop(Impl::Halb, Impl::Keepalived, v2_auth());
}

#[test]
fn interop_v2_auth_keepalived_lb1_halb_lb2() {
    if skip_unless_root("interop_v2_auth_keepalived_lb1_halb_lb2") {
        return;
    }
    require_tool("keepalived", "keepalived");
    interop(Impl::Keepalived, Impl::Halb, v2_auth());
}

#[test]
fn interop_v3_halb_lb1_keepalived_lb2() {
    if skip_unless_root("interop_v3_halb_lb1_keepalived_lb2") {
        return;
    }
    require_tool("keepalived", "keepalived");
    interop(Impl::Halb, Impl::Keepalived, v3_fast());
}

#[test]
fn interop_v3_keepalived_lb1_halb_lb2() {
    if skip_unless_root("interop_v3_keepalived_lb1_halb_lb2") {
        return;
    }
    require_tool("keepalived", "keepalived");
    interop(Impl::Keepalived, Impl::Halb, v3_fast());
}
