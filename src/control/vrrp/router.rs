//! The I/O shell of VRRP on the control thread: every `[vrrp.NAME]` instance with its
//! [`Machine`], raw socket, virtual addresses (netlink), announcements (gratuitous ARP /
//! unsolicited NA), trackers, sync group and notify scripts.
//!
//! One task per instance waits for its socket, its next deadline or a nudge (an event
//! queued by a tracker or a sync-group sibling), then feeds the machine and carries out
//! its actions synchronously: sending an advert, adding addresses over netlink and
//! announcing them are each a syscall or two, so nothing here waits on anything but the
//! reactor and timers. Around them: one task watches links and addresses (netlink), one
//! the proxy (`track_proxy`) and reaps notify scripts, and one per `track_script`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use futures_lite::future::{or, poll_fn};
use serde::Serialize;

use super::announce::Announcer;
use super::machine::{Action, Event, Machine, Params, State};
use super::netlink::{Change, LinkMonitor, Netlink};
use super::packet::{self, Advert, Auth, Expect, Invalid};
use super::socket::{VrrpSocket, GROUP_V4, GROUP_V6};
use super::track::{self, Effect, ScriptTracker, Verdict, SHARD_SILENCE};
use crate::config::{VrrpInstance, VrrpVersion};
use crate::control::Control;
use crate::runtime::reactor::{self, Interest, Registration};

/// How often the proxy tracker looks at the backends and shards, and notify scripts are
/// reaped.
const PROXY_TICK: Duration = Duration::from_millis(100);
/// Largest VRRP packet read (an IPv6 advert of 76 addresses is 1,224 bytes).
const RECV_BUFFER: usize = 2048;
/// At most this many send failures per instance are logged (then one line per 1,000).
const LOGGED_SEND_ERRORS: u64 = 5;
/// After the virtual addresses could not be added, the instance stays in FAULT this long
/// before trying again.
const ADDRESS_RETRY: Duration = Duration::from_secs(5);
/// `CAP_NET_ADMIN` (adding and removing addresses) and `CAP_NET_RAW` (the VRRP and
/// packet sockets), as bit numbers of `/proc/self/status`'s `CapEff`.
const CAPABILITIES: [(u32, &str); 2] = [(12, "CAP_NET_ADMIN"), (13, "CAP_NET_RAW")];

/// An error naming what VRRP needs and this process lacks (`CapEff` of
/// `/proc/self/status`); Ok when it cannot tell.
fn missing_capabilities() -> Result<(), String> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Ok(());
    };
    let Some(effective) = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
    else {
        return Ok(());
    };
    let missing: Vec<&str> = CAPABILITIES
        .iter()
        .filter(|(bit, _)| effective & (1 << bit) == 0)
        .map(|(_, name)| *name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "vrrp needs {} (to move the virtual addresses and send adverts): run halb as root, or give it these capabilities (systemd: AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW)",
            missing.join(" and ")
        ))
    }
}

/// A wake-up flag for one task (set by anyone on the control thread).
#[derive(Default)]
pub struct Nudge {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Nudge {
    /// Wake the task (now, or at its next wait).
    pub fn nudge(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.replace(false) {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// The sockets and addresses of one instance on its interface.
struct Wire {
    ifindex: u32,
    /// The source of our adverts: the interface's primary IPv4 address, or its IPv6
    /// link-local address.
    local: IpAddr,
    link_local: Option<Ipv6Addr>,
    socket: Rc<VrrpSocket>,
    announcer: Option<Announcer>,
    /// Where adverts go: the group, or the unicast peers.
    destinations: Vec<IpAddr>,
}

/// Counters of one instance.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceCounters {
    /// Adverts sent (priority-0 ones included).
    pub adverts_sent: u64,
    /// Valid adverts of our VRID received.
    pub adverts_received: u64,
    /// Priority-0 adverts received (a master leaving).
    pub priority_zero_received: u64,
    /// Sends that failed.
    pub send_errors: u64,
    /// Received packets dropped, by reason.
    pub invalid: BTreeMap<String, u64>,
    /// State changes.
    pub transitions: u64,
    /// Times this box became master.
    pub became_master: u64,
    /// Gratuitous ARPs / unsolicited NAs sent.
    pub announcements: u64,
}

/// One instance: configuration, machine, wire, tracking and status.
struct Instance {
    config: VrrpInstance,
    machine: Machine,
    wire: Wire,
    auth: Auth,
    version: packet::Version,
    vips: Vec<IpAddr>,
    /// Events queued by trackers and the sync group, handled by the instance's task.
    pending: VecDeque<Event>,
    nudge: Rc<Nudge>,
    /// Why this instance itself is in FAULT (tracked links, scripts, proxy), by tracker.
    own_faults: BTreeMap<String, String>,
    /// Sync-group siblings in FAULT of their own, by name.
    group_faults: BTreeSet<String>,
    /// Priority adjustments by tracker.
    adjustments: BTreeMap<String, i32>,
    scripts: Vec<ScriptTracker>,
    proxy: Option<Verdict>,
    /// Tracked links (the instance's own interface first): name → (index, up).
    links: Vec<(String, Option<u32>, bool)>,
    holds_addresses: bool,
    /// Adding the addresses failed (the error): FAULT until `address_retry_at`.
    address_error: Option<String>,
    address_retry_at: Option<Instant>,
    second_burst_at: Option<Instant>,
    refresh_at: Option<Instant>,
    since: SystemTime,
    reason: String,
    last_transition: Option<(State, State)>,
    counters: InstanceCounters,
}

/// What `halb ctl show vrrp`, the stats page and `/metrics` show of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceReport {
    /// Section name.
    pub name: String,
    /// Interface.
    pub interface: String,
    /// Virtual router id.
    pub virtual_router_id: u8,
    /// 2 or 3.
    pub version: u8,
    /// `INIT`, `BACKUP`, `MASTER` or `FAULT`.
    pub state: &'static str,
    /// Effective priority (after tracking).
    pub priority: u8,
    /// Configured priority.
    pub base_priority: u8,
    /// The master as last heard (our own address when master).
    pub master: Option<String>,
    /// Our advert source address.
    pub local: String,
    /// The virtual addresses.
    pub virtual_ipaddress: Vec<String>,
    /// Whether the addresses are on the interface now.
    pub holds_addresses: bool,
    /// Advert interval in milliseconds.
    pub advert_int_ms: u64,
    /// When the state last changed (Unix seconds).
    pub since: u64,
    /// Seconds since then.
    pub since_secs: u64,
    /// The last transition, `FROM -> TO`.
    pub last_transition: Option<String>,
    /// Why.
    pub reason: String,
    /// Sync group.
    pub sync_group: Option<String>,
    /// What keeps the instance in FAULT now.
    pub faults: Vec<String>,
    /// Trackers: name, healthy, effect on priority.
    pub trackers: Vec<TrackerReport>,
    /// Counters.
    pub counters: InstanceCounters,
}

/// One tracker in an [`InstanceReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackerReport {
    /// `script:NAME`, `proxy` or `interface:NAME`.
    pub name: String,
    /// Healthy now.
    pub healthy: bool,
    /// Configured weight (0 = FAULT while unhealthy).
    pub weight: i32,
    /// Last result or reason.
    pub reason: String,
}

/// Every VRRP instance of this box.
pub struct Vrrp {
    instances: Vec<Instance>,
    netlink: Netlink,
    /// Sync group → member indexes.
    groups: HashMap<String, Vec<usize>>,
    /// Notify scripts not yet reaped.
    children: Vec<(String, Child)>,
    /// Link and address changes (taken by the link task when it starts).
    monitor: Option<LinkMonitor>,
    stopped: bool,
}

impl Vrrp {
    /// Set up every instance of `instances` (links, sockets, stale addresses removed);
    /// nothing is sent yet. Errors name the instance and what failed.
    pub fn new(instances: &[VrrpInstance]) -> Result<Vrrp, String> {
        missing_capabilities()?;
        let mut netlink = Netlink::open().map_err(|e| format!("vrrp: netlink: {e}"))?;
        let monitor = LinkMonitor::open().map_err(|e| format!("vrrp: link monitor: {e}"))?;
        let now = Instant::now();
        let mut out = Vec::new();
        let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, config) in instances.iter().enumerate() {
            let instance = Instance::new(config, &mut netlink, now)
                .map_err(|e| format!("vrrp.{}: {e}", config.name))?;
            if let Some(g) = &config.sync_group {
                groups.entry(g.clone()).or_default().push(i);
            }
            out.push(instance);
        }
        Ok(Vrrp {
            instances: out,
            netlink,
            groups,
            children: Vec::new(),
            monitor: Some(monitor),
            stopped: false,
        })
    }

    /// Start everything on the current glommio executor (the control thread).
    pub fn spawn(vrrp: &Rc<RefCell<Vrrp>>, control: &Rc<RefCell<Control>>) -> io::Result<()> {
        let reactor = reactor::current();
        let count = vrrp.borrow().instances.len();
        let now = Instant::now();
        for i in 0..count {
            let (fd, socket, nudge) = {
                let v = vrrp.borrow();
                let inst = &v.instances[i];
                (
                    inst.wire.socket.fd(),
                    Rc::clone(&inst.wire.socket),
                    Rc::clone(&inst.nudge),
                )
            };
            let registration = reactor.register(fd, true)?;
            {
                let mut v = vrrp.borrow_mut();
                // Trackers start healthy: positive weights count from the start.
                v.trackers_changed(i, now);
                v.handle(i, Event::Startup, now);
                let faults = v.instances[i].fault_summary();
                if let Some(reason) = faults {
                    v.handle(i, Event::Fault(reason), now);
                }
            }
            glommio::spawn_local(instance_task(
                Rc::clone(vrrp),
                i,
                socket,
                registration,
                nudge,
            ))
            .detach();
            let scripts = vrrp.borrow().instances[i].scripts.len();
            for s in 0..scripts {
                glommio::spawn_local(script_task(Rc::clone(vrrp), i, s)).detach();
            }
        }
        let monitor = vrrp.borrow_mut().monitor.take();
        if let Some(monitor) = monitor {
            let registration = reactor.register(monitor.fd(), true)?;
            glommio::spawn_local(link_task(Rc::clone(vrrp), monitor, registration)).detach();
        }
        glommio::spawn_local(proxy_task(Rc::clone(vrrp), Rc::clone(control))).detach();
        Ok(())
    }

    /// A clean stop: every master sends priority 0 and removes its addresses, then
    /// `notify_stop` runs. Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        let now = Instant::now();
        for i in 0..self.instances.len() {
            self.handle(i, Event::Shutdown, now);
            let inst = &self.instances[i];
            if let Some(cmd) = inst.config.notify_stop.clone() {
                self.run_notify(i, &cmd, "STOP", false);
            }
        }
        self.stopped = true;
        for inst in &self.instances {
            inst.nudge.nudge();
        }
    }

    /// The report of every instance.
    pub fn report(&self) -> Vec<InstanceReport> {
        self.instances.iter().map(Instance::report).collect()
    }

    /// Feed `event` to instance `i` and carry out what its machine decides.
    fn handle(&mut self, i: usize, event: Event, now: Instant) {
        let actions = self.instances[i].machine.handle(event, now);
        for action in actions {
            self.act(i, action, now);
        }
        // A master that could not add its addresses must not keep claiming them: FAULT
        // (priority 0, the peer takes over), and try again later.
        if let Some(error) = self.instances[i].address_error.take() {
            let inst = &mut self.instances[i];
            tracing::error!(
                target: "halb::vrrp",
                "vrrp {}: {error}; FAULT for {} s, then trying again",
                inst.config.name,
                ADDRESS_RETRY.as_secs()
            );
            inst.own_faults.insert(
                "addresses".into(),
                format!("cannot add the virtual addresses: {error}"),
            );
            inst.address_retry_at = Some(now + ADDRESS_RETRY);
            self.faults_changed(i, now);
        }
    }

    fn act(&mut self, i: usize, action: Action, now: Instant) {
        match action {
            Action::Send(priority) => self.instances[i].send(priority),
            Action::TakeAddresses => {
                let inst = &mut self.instances[i];
                inst.take_addresses(&mut self.netlink);
                if !inst.holds_addresses {
                    return; // failed: `handle` puts the instance in FAULT
                }
                inst.announce_burst();
                inst.second_burst_at = (!inst.config.garp_master_delay.is_zero())
                    .then(|| now + inst.config.garp_master_delay);
                inst.refresh_at = inst.config.garp_master_refresh.map(|d| now + d);
            }
            Action::ReleaseAddresses => {
                let inst = &mut self.instances[i];
                inst.release_addresses(&mut self.netlink);
                inst.second_burst_at = None;
                inst.refresh_at = None;
            }
            Action::Transition { from, to, reason } => self.transition(i, from, to, reason),
        }
    }

    fn transition(&mut self, i: usize, from: State, to: State, reason: String) {
        let inst = &mut self.instances[i];
        inst.counters.transitions += 1;
        if to == State::Master {
            inst.counters.became_master += 1;
        }
        inst.since = SystemTime::now();
        inst.reason = reason.clone();
        inst.last_transition = Some((from, to));
        let name = inst.config.name.clone();
        tracing::info!(
            target: "halb::vrrp",
            "vrrp {name}: {} -> {} (priority {}): {reason}",
            from.as_str(),
            to.as_str(),
            inst.machine.priority()
        );
        let (word, specific) = match to {
            State::Master => ("MASTER", inst.config.notify_master.clone()),
            State::Backup => ("BACKUP", inst.config.notify_backup.clone()),
            State::Fault => ("FAULT", inst.config.notify_fault.clone()),
            State::Init => ("STOP", None),
        };
        if let Some(cmd) = specific {
            self.run_notify(i, &cmd, word, false);
        }
        if let Some(cmd) = self.instances[i].config.notify.clone() {
            self.run_notify(i, &cmd, word, true);
        }
        // The sync group follows.
        let Some(group) = self.instances[i].config.sync_group.clone() else {
            return;
        };
        let members: Vec<usize> = self.groups.get(&group).cloned().unwrap_or_default();
        for j in members.into_iter().filter(|&j| j != i) {
            let sibling = &mut self.instances[j];
            let event = match (from, to) {
                (_, State::Master) if sibling.machine.state() == State::Backup => Some(
                    Event::Takeover(format!("sync group {group}: {name} became master")),
                ),
                (State::Master, State::Backup) if sibling.machine.state() == State::Master => Some(
                    Event::StepDown(format!("sync group {group}: {name} left master")),
                ),
                _ => None,
            };
            if let Some(e) = event {
                sibling.pending.push_back(e);
                sibling.nudge.nudge();
            }
        }
    }

    /// Instance `i`'s own fault set changed: recompute its fault state and its group's.
    fn faults_changed(&mut self, i: usize, now: Instant) {
        let own = !self.instances[i].own_faults.is_empty();
        let name = self.instances[i].config.name.clone();
        if let Some(group) = self.instances[i].config.sync_group.clone() {
            let members: Vec<usize> = self.groups.get(&group).cloned().unwrap_or_default();
            for j in members.into_iter().filter(|&j| j != i) {
                let changed = if own {
                    self.instances[j].group_faults.insert(name.clone())
                } else {
                    self.instances[j].group_faults.remove(&name)
                };
                if changed {
                    self.refresh_fault(j, now);
                }
            }
        }
        self.refresh_fault(i, now);
    }

    /// Bring the machine of `i` in line with its fault sets.
    fn refresh_fault(&mut self, i: usize, now: Instant) {
        if self.stopped {
            return;
        }
        let inst = &self.instances[i];
        let summary = inst.fault_summary();
        let in_fault = inst.machine.state() == State::Fault;
        match summary {
            Some(reason) if !in_fault => self.handle(i, Event::Fault(reason), now),
            None if in_fault => self.handle(i, Event::FaultCleared, now),
            _ => {}
        }
        self.instances[i].nudge.nudge();
    }

    /// Recompute `i`'s priority from its trackers (faults included).
    fn trackers_changed(&mut self, i: usize, now: Instant) {
        let inst = &mut self.instances[i];
        let in_group = inst.config.sync_group.is_some();
        let mut faults = BTreeMap::new();
        let mut adjustments = BTreeMap::new();
        for (name, index, up) in &inst.links {
            if !up {
                let why = if index.is_some() { "down" } else { "not found" };
                faults.insert(
                    format!("interface:{name}"),
                    format!("interface {name} {why}"),
                );
            }
        }
        for s in &inst.scripts {
            let key = format!("script:{}", s.label());
            match track::effect(s.script.weight, s.verdict.healthy(), in_group) {
                Effect::None => {}
                Effect::Adjust(w) => {
                    adjustments.insert(key, w);
                }
                Effect::Fault => {
                    faults.insert(key, format!("track_script {} failing", s.label()));
                }
            }
        }
        if let (Some(v), Some(tp)) = (&inst.proxy, &inst.config.track_proxy) {
            match track::effect(tp.weight, v.healthy(), in_group) {
                Effect::None => {}
                Effect::Adjust(w) => {
                    adjustments.insert("proxy".to_string(), w);
                }
                Effect::Fault => {
                    faults.insert(
                        "proxy".to_string(),
                        format!("proxy unhealthy: {}", v.reason),
                    );
                }
            }
        }
        if let Some(f) = inst.own_faults.get("addresses") {
            faults.insert("addresses".to_string(), f.clone());
        }
        let priority =
            track::effective_priority(inst.config.priority, adjustments.values().copied());
        inst.adjustments = adjustments;
        let faults_differ = faults != inst.own_faults;
        inst.own_faults = faults;
        if priority != inst.machine.priority() {
            tracing::info!(
                target: "halb::vrrp",
                "vrrp {}: priority {} -> {priority} ({})",
                inst.config.name,
                inst.machine.priority(),
                if inst.adjustments.is_empty() {
                    "trackers healthy".to_string()
                } else {
                    inst.adjustments
                        .iter()
                        .map(|(k, w)| format!("{k} {w:+}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            self.handle(i, Event::Priority(priority), now);
        }
        if faults_differ {
            self.faults_changed(i, now);
        }
    }

    /// Handle what is due for instance `i`: its machine's deadline, announcements and
    /// queued events.
    fn poll(&mut self, i: usize, now: Instant) {
        if self.stopped {
            return;
        }
        while let Some(event) = self.instances[i].pending.pop_front() {
            self.handle(i, event, now);
        }
        if self.instances[i].address_retry_at.is_some_and(|t| now >= t) {
            self.instances[i].address_retry_at = None;
            self.instances[i].own_faults.remove("addresses");
            self.faults_changed(i, now);
        }
        if self.instances[i]
            .machine
            .next_deadline()
            .is_some_and(|d| now >= d)
        {
            self.handle(i, Event::Timer, now);
        }
        let inst = &mut self.instances[i];
        if inst.second_burst_at.is_some_and(|t| now >= t) {
            inst.second_burst_at = None;
            inst.announce_burst();
        }
        if let Some(t) = inst.refresh_at {
            if now >= t {
                inst.announce_once();
                inst.refresh_at = inst.config.garp_master_refresh.map(|d| now + d);
            }
        }
    }

    /// A packet arrived for instance `i`.
    fn on_packet(&mut self, i: usize, bytes: &[u8], rx: &super::socket::Received, now: Instant) {
        if self.stopped {
            return;
        }
        let inst = &mut self.instances[i];
        if rx.src == inst.wire.local {
            return;
        }
        // Other virtual routers share the group: not ours, not counted.
        if bytes.len() >= 2 && bytes[1] != inst.config.virtual_router_id {
            return;
        }
        // With unicast peers, only they speak for this virtual router.
        if !inst.config.unicast_peers.is_empty() && !inst.config.unicast_peers.contains(&rx.src) {
            inst.count_invalid("unknown_peer", rx.src);
            return;
        }
        let expect = Expect {
            version: inst.version,
            auth: &inst.auth,
        };
        let advert = match packet::decode(bytes, rx.src, rx.dst, rx.ttl, &expect) {
            Ok(a) => a,
            Err(kind) => {
                inst.count_invalid(invalid_word(kind), rx.src);
                return;
            }
        };
        // RFC 5798 §7.1: an address list that differs from ours is dropped unless it comes
        // from the address owner; RFC 3768 also drops another advert interval.
        let mut theirs = advert.addresses.clone();
        let mut ours = inst.vips.clone();
        theirs.sort();
        ours.sort();
        if theirs != ours && advert.priority != super::machine::OWNER_PRIORITY {
            inst.count_invalid("address_list", rx.src);
            return;
        }
        if inst.version == packet::Version::V2 && advert.interval != inst.config.advert_int {
            inst.count_invalid("advert_interval", rx.src);
            return;
        }
        inst.counters.adverts_received += 1;
        if advert.priority == 0 {
            inst.counters.priority_zero_received += 1;
        }
        self.handle(
            i,
            Event::Advert {
                from: rx.src,
                priority: advert.priority,
                interval: advert.interval,
            },
            now,
        );
    }

    /// Links or addresses changed (netlink).
    fn on_changes(&mut self, changes: Vec<Change>, now: Instant) {
        let mut relook = false;
        let mut touched = BTreeSet::new();
        for change in changes {
            match change {
                Change::Link { index, name, up } => {
                    for (i, inst) in self.instances.iter_mut().enumerate() {
                        for link in inst.links.iter_mut() {
                            let same =
                                link.1 == Some(index) || (link.1.is_none() && link.0 == name);
                            if same && (link.2 != up || link.1 != Some(index)) {
                                link.1 = Some(index);
                                link.2 = up;
                                touched.insert(i);
                            }
                        }
                    }
                }
                Change::AddressRemoved { index, address } => {
                    for inst in &mut self.instances {
                        if inst.holds_addresses
                            && inst.wire.ifindex == index
                            && inst.vips.contains(&address)
                        {
                            tracing::warn!(
                                target: "halb::vrrp",
                                "vrrp {}: {address} was removed from {} behind our back: adding it again",
                                inst.config.name, inst.config.interface
                            );
                            inst.take_addresses(&mut self.netlink);
                            inst.announce_once();
                        }
                    }
                }
                Change::AddressAdded { .. } => {}
                Change::Overrun => relook = true,
            }
        }
        if relook {
            for (i, inst) in self.instances.iter_mut().enumerate() {
                for link in inst.links.iter_mut() {
                    let now_up = match self.netlink.link_by_name(&link.0) {
                        Ok(Some(l)) => {
                            link.1 = Some(l.index);
                            l.up
                        }
                        _ => {
                            link.1 = None;
                            false
                        }
                    };
                    if now_up != link.2 {
                        link.2 = now_up;
                        touched.insert(i);
                    }
                }
                if inst.holds_addresses {
                    inst.take_addresses(&mut self.netlink);
                }
            }
        }
        for i in touched {
            self.trackers_changed(i, now);
        }
    }

    fn run_notify(&mut self, i: usize, cmd: &[String], state: &str, generic: bool) {
        let inst = &self.instances[i];
        let mut command = Command::new(&cmd[0]);
        command.args(&cmd[1..]);
        if generic {
            // Keepalived's `notify`: "INSTANCE" NAME STATE PRIORITY.
            command.args([
                "INSTANCE",
                inst.config.name.as_str(),
                state,
                &inst.machine.priority().to_string(),
            ]);
        }
        command
            .env("HALB_VRRP_INSTANCE", &inst.config.name)
            .env("HALB_VRRP_STATE", state)
            .env("HALB_VRRP_PRIORITY", inst.machine.priority().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match command.spawn() {
            Ok(child) => self.children.push((cmd.join(" "), child)),
            Err(e) => tracing::warn!(
                target: "halb::vrrp",
                "vrrp {}: notify script {} could not start: {e}",
                inst.config.name,
                cmd[0]
            ),
        }
    }

    /// Collect finished notify scripts (never waits).
    fn reap(&mut self) {
        self.children.retain_mut(|(cmd, child)| match child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    tracing::warn!(target: "halb::vrrp", "notify script {cmd} exited with {status}");
                }
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
    }
}

impl Instance {
    fn new(config: &VrrpInstance, netlink: &mut Netlink, now: Instant) -> Result<Instance, String> {
        let ipv6 = config.ipv6();
        let link = netlink
            .link_by_name(&config.interface)
            .map_err(|e| format!("interface {}: {e}", config.interface))?
            .ok_or_else(|| format!("interface {} not found", config.interface))?;
        let addresses = netlink
            .addresses(link.index)
            .map_err(|e| format!("addresses of {}: {e}", config.interface))?;
        let vips: Vec<IpAddr> = config.virtual_ipaddress.iter().map(|v| v.address).collect();
        let link_local = addresses.iter().find_map(|a| match a.address {
            IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Some(v6),
            _ => None,
        });
        let local = if ipv6 {
            link_local.map(IpAddr::V6).ok_or_else(|| {
                format!(
                    "{} has no IPv6 link-local address (VRRPv3 over IPv6 sends from it)",
                    config.interface
                )
            })?
        } else {
            // The primary address, else any address of our own; the address owner
            // (priority 255) may have only the virtual address itself.
            let v4 = || addresses.iter().filter(|a| a.address.is_ipv4());
            v4().filter(|a| !a.secondary && !vips.contains(&a.address))
                .chain(v4().filter(|a| !vips.contains(&a.address)))
                .chain(v4().filter(|_| config.priority == super::machine::OWNER_PRIORITY))
                .map(|a| a.address)
                .next()
                .ok_or_else(|| {
                    format!(
                        "{} has no IPv4 address of its own to send adverts from",
                        config.interface
                    )
                })?
        };
        let multicast = config.unicast_peers.is_empty();
        let socket = VrrpSocket::open(&config.interface, link.index, ipv6, multicast)
            .map_err(|e| e.to_string())?;
        let announcer = match link.mac {
            Some(mac) => Some(
                Announcer::open(link.index, mac)
                    .map_err(|e| format!("announcer on {}: {e}", config.interface))?,
            ),
            None => None,
        };
        let destinations = if multicast {
            vec![if ipv6 {
                IpAddr::V6(GROUP_V6)
            } else {
                IpAddr::V4(GROUP_V4)
            }]
        } else {
            config.unicast_peers.clone()
        };
        let auth = match &config.auth_pass {
            Some(p) => Auth::password(p).unwrap_or(Auth::None),
            None => Auth::None,
        };
        let version = match config.version {
            VrrpVersion::V2 => packet::Version::V2,
            VrrpVersion::V3 => packet::Version::V3,
        };
        let params = Params {
            advert_int: config.advert_int,
            preempt: !config.nopreempt,
            preempt_delay: config.preempt_delay,
            local,
        };
        let mut links = vec![(config.interface.clone(), Some(link.index), link.up)];
        for name in &config.track_interface {
            let l = netlink
                .link_by_name(name)
                .map_err(|e| format!("track_interface {name}: {e}"))?;
            links.push((
                name.clone(),
                l.as_ref().map(|l| l.index),
                l.is_some_and(|l| l.up),
            ));
        }
        let mut instance = Instance {
            machine: Machine::new(params, config.priority, now),
            wire: Wire {
                ifindex: link.index,
                local,
                link_local,
                socket: Rc::new(socket),
                announcer,
                destinations,
            },
            auth,
            version,
            vips,
            pending: VecDeque::new(),
            nudge: Rc::new(Nudge::default()),
            own_faults: BTreeMap::new(),
            group_faults: BTreeSet::new(),
            adjustments: BTreeMap::new(),
            scripts: config
                .track_script
                .iter()
                .cloned()
                .map(ScriptTracker::new)
                .collect(),
            proxy: config.track_proxy.as_ref().map(|_| Verdict::new(1, 1)),
            links,
            holds_addresses: false,
            address_error: None,
            address_retry_at: None,
            second_burst_at: None,
            refresh_at: None,
            since: SystemTime::now(),
            reason: "not started".into(),
            last_transition: None,
            counters: InstanceCounters::default(),
            config: config.clone(),
        };
        // Addresses left behind by a previous run that was killed (it could not remove
        // them) would answer for a VIP this box does not hold: remove them now, unless
        // this box is the address owner.
        if config.priority != super::machine::OWNER_PRIORITY {
            let stale: Vec<_> = config
                .virtual_ipaddress
                .iter()
                .filter(|v| addresses.iter().any(|a| a.address == v.address))
                .collect();
            for v in stale {
                tracing::warn!(
                    target: "halb::vrrp",
                    "vrrp {}: removing {v} left on {} by a previous run",
                    config.name, config.interface
                );
                netlink
                    .remove_address(link.index, v.address, v.prefix)
                    .map_err(|e| format!("removing stale {v}: {e}"))?;
            }
        }
        // Initial tracker state (links).
        for (name, index, up) in &instance.links {
            if !up {
                let why = if index.is_some() { "down" } else { "not found" };
                instance.own_faults.insert(
                    format!("interface:{name}"),
                    format!("interface {name} {why}"),
                );
            }
        }
        Ok(instance)
    }

    /// Why the instance must be in FAULT now, if it must.
    fn fault_summary(&self) -> Option<String> {
        let mut reasons: Vec<String> = self.own_faults.values().cloned().collect();
        reasons.extend(
            self.group_faults
                .iter()
                .map(|n| format!("sync group: {n} in FAULT")),
        );
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// When the instance's task must look again.
    fn deadline(&self) -> Option<Instant> {
        [
            self.machine.next_deadline(),
            self.address_retry_at,
            self.second_burst_at,
            self.refresh_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn send(&mut self, priority: u8) {
        let advert = Advert {
            version: self.version,
            vrid: self.config.virtual_router_id,
            priority,
            interval: self.config.advert_int,
            addresses: self.vips.clone(),
            auth: self.auth.clone(),
        };
        for &dst in &self.wire.destinations {
            let message = advert.encode(self.wire.local, dst);
            match self.wire.socket.send(&message, self.wire.local, dst) {
                Ok(()) => self.counters.adverts_sent += 1,
                Err(e) => {
                    self.counters.send_errors += 1;
                    let n = self.counters.send_errors;
                    if n <= LOGGED_SEND_ERRORS || n % 1000 == 0 {
                        tracing::warn!(
                            target: "halb::vrrp",
                            "vrrp {}: sending an advert to {dst} failed ({n} so far): {e}",
                            self.config.name
                        );
                    }
                }
            }
        }
    }

    /// Add every virtual address; a failure is left in `address_error` for
    /// [`Vrrp::handle`] (the addresses added are removed again).
    fn take_addresses(&mut self, netlink: &mut Netlink) {
        for v in &self.config.virtual_ipaddress {
            if let Err(e) = netlink.add_address(self.wire.ifindex, v.address, v.prefix) {
                self.address_error = Some(e.to_string());
                self.release_addresses(netlink);
                return;
            }
        }
        self.holds_addresses = true;
    }

    fn release_addresses(&mut self, netlink: &mut Netlink) {
        for v in &self.config.virtual_ipaddress {
            if let Err(e) = netlink.remove_address(self.wire.ifindex, v.address, v.prefix) {
                tracing::error!(target: "halb::vrrp", "vrrp {}: {e}", self.config.name);
            }
        }
        self.holds_addresses = false;
    }

    /// `garp_master_repeat` announcements of every address.
    fn announce_burst(&mut self) {
        for _ in 0..self.config.garp_master_repeat {
            self.announce_once();
        }
    }

    fn announce_once(&mut self) {
        let Some(announcer) = &self.wire.announcer else {
            return;
        };
        match announcer.announce(&self.vips, self.wire.link_local) {
            Ok(n) => self.counters.announcements += n as u64,
            Err(e) => tracing::warn!(
                target: "halb::vrrp",
                "vrrp {}: announcing the addresses failed: {e}",
                self.config.name
            ),
        }
    }

    fn count_invalid(&mut self, kind: &str, from: IpAddr) {
        let n = self.counters.invalid.entry(kind.to_string()).or_insert(0);
        *n += 1;
        if *n <= 3 || n.is_power_of_two() {
            tracing::warn!(
                target: "halb::vrrp",
                "vrrp {}: dropped an advert from {from}: {kind} ({n} so far)",
                self.config.name
            );
        }
    }

    fn report(&self) -> InstanceReport {
        let mut trackers = Vec::new();
        for (name, index, up) in &self.links {
            let reason = match (up, index) {
                (true, _) => "up",
                (false, Some(_)) => "down",
                (false, None) => "not found",
            };
            trackers.push(TrackerReport {
                name: format!("interface:{name}"),
                healthy: *up,
                weight: 0,
                reason: reason.into(),
            });
        }
        for s in &self.scripts {
            trackers.push(TrackerReport {
                name: format!("script:{}", s.label()),
                healthy: s.verdict.healthy(),
                weight: s.script.weight,
                reason: s.verdict.reason.clone(),
            });
        }
        if let (Some(v), Some(tp)) = (&self.proxy, &self.config.track_proxy) {
            trackers.push(TrackerReport {
                name: "proxy".into(),
                healthy: v.healthy(),
                weight: tp.weight,
                reason: v.reason.clone(),
            });
        }
        let since = self
            .since
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        InstanceReport {
            name: self.config.name.clone(),
            interface: self.config.interface.clone(),
            virtual_router_id: self.config.virtual_router_id,
            version: match self.version {
                packet::Version::V2 => 2,
                packet::Version::V3 => 3,
            },
            state: self.machine.state().as_str(),
            priority: self.machine.priority(),
            base_priority: self.config.priority,
            master: self.machine.master().map(|m| m.to_string()),
            local: self.wire.local.to_string(),
            virtual_ipaddress: self
                .config
                .virtual_ipaddress
                .iter()
                .map(|v| v.to_string())
                .collect(),
            holds_addresses: self.holds_addresses,
            advert_int_ms: self.config.advert_int.as_millis() as u64,
            since,
            since_secs: self.since.elapsed().unwrap_or_default().as_secs(),
            last_transition: self
                .last_transition
                .map(|(f, t)| format!("{} -> {}", f.as_str(), t.as_str())),
            reason: self.reason.clone(),
            sync_group: self.config.sync_group.clone(),
            faults: self
                .fault_summary()
                .map(|s| s.split("; ").map(str::to_string).collect())
                .unwrap_or_default(),
            trackers,
            counters: self.counters.clone(),
        }
    }
}

/// The metric label of a drop reason.
fn invalid_word(kind: Invalid) -> &'static str {
    match kind {
        Invalid::Truncated => "truncated",
        Invalid::Version => "version",
        Invalid::Type => "type",
        Invalid::Vrid => "vrid",
        Invalid::Count => "address_count",
        Invalid::Checksum => "checksum",
        Invalid::Auth => "auth",
        Invalid::Interval => "advert_interval",
        Invalid::Family => "family",
        Invalid::Ttl => "ttl",
    }
}

/// Await the socket's readability (or a nudge, or the deadline), then handle everything.
async fn instance_task(
    vrrp: Rc<RefCell<Vrrp>>,
    i: usize,
    socket: Rc<VrrpSocket>,
    registration: Registration,
    nudge: Rc<Nudge>,
) {
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        let deadline = {
            let v = vrrp.borrow();
            if v.stopped {
                return;
            }
            v.instances[i].deadline()
        };
        let wait = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(3600));
        if !wait.is_zero() {
            let readable = poll_fn(|cx| registration.poll_ready(Interest::Read, cx));
            or(or(readable, nudge.wait()), glommio::timer::sleep(wait)).await;
        }
        loop {
            match socket.recv(&mut buf) {
                Ok(Some(rx)) => {
                    let now = Instant::now();
                    vrrp.borrow_mut().on_packet(i, &buf[..rx.len], &rx, now);
                }
                Ok(None) => {
                    registration.clear(Interest::Read);
                    break;
                }
                Err(e) => {
                    let mut v = vrrp.borrow_mut();
                    let kind = if e.kind() == io::ErrorKind::InvalidData {
                        "ip_header"
                    } else {
                        "receive_error"
                    };
                    let from = v.instances[i].wire.local;
                    v.instances[i].count_invalid(kind, from);
                    if e.kind() != io::ErrorKind::InvalidData {
                        // Look again at the next arrival rather than spin on the error.
                        registration.clear(Interest::Read);
                        break;
                    }
                }
            }
        }
        vrrp.borrow_mut().poll(i, Instant::now());
    }
}

/// Watch links and addresses.
async fn link_task(vrrp: Rc<RefCell<Vrrp>>, mut monitor: LinkMonitor, registration: Registration) {
    loop {
        poll_fn(|cx| registration.poll_ready(Interest::Read, cx)).await;
        let changes = match monitor.drain() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(target: "halb::vrrp", "link monitor: {e}");
                vec![Change::Overrun]
            }
        };
        registration.clear(Interest::Read);
        if vrrp.borrow().stopped {
            return;
        }
        if !changes.is_empty() {
            vrrp.borrow_mut().on_changes(changes, Instant::now());
        }
    }
}

/// `track_proxy` for every instance that has it, and reaping notify scripts.
async fn proxy_task(vrrp: Rc<RefCell<Vrrp>>, control: Rc<RefCell<Control>>) {
    let mut request: Option<(u64, Instant)> = None;
    loop {
        glommio::timer::sleep(PROXY_TICK).await;
        if vrrp.borrow().stopped {
            vrrp.borrow_mut().reap();
            if vrrp.borrow().children.is_empty() {
                return;
            }
            continue;
        }
        vrrp.borrow_mut().reap();
        let tracked = vrrp
            .borrow()
            .instances
            .iter()
            .any(|inst| inst.config.track_proxy.is_some());
        if !tracked {
            continue;
        }
        let now = Instant::now();
        // Shards answer stats requests at their tick: one that stays silent is stuck.
        let hub = control.borrow().hub().clone();
        let stuck = match request {
            None => {
                request = Some((hub.request(), now));
                false
            }
            Some((seq, at)) if hub.answered(seq) => {
                if now - at >= Duration::from_millis(500) {
                    request = Some((hub.request(), now));
                }
                false
            }
            Some((_, at)) => now - at >= SHARD_SILENCE,
        };
        let verdicts: Vec<(usize, bool, String)> = {
            let v = vrrp.borrow();
            let c = control.borrow();
            v.instances
                .iter()
                .enumerate()
                .filter_map(|(i, inst)| {
                    let tp = inst.config.track_proxy.as_ref()?;
                    if stuck {
                        return Some((
                            i,
                            false,
                            format!("a shard has not answered for {} s", SHARD_SILENCE.as_secs()),
                        ));
                    }
                    let names: Vec<String> = if tp.backends.is_empty() {
                        c.routed_backends()
                    } else {
                        tp.backends.clone()
                    };
                    let dead: Vec<&String> = names
                        .iter()
                        .filter(|b| c.backend_usable(b) == Some(false))
                        .collect();
                    if dead.is_empty() {
                        Some((i, true, "ok".to_string()))
                    } else {
                        Some((
                            i,
                            false,
                            format!(
                                "no usable server in backend {}",
                                dead.iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ))
                    }
                })
                .collect()
        };
        let mut v = vrrp.borrow_mut();
        for (i, ok, reason) in verdicts {
            let flipped = match v.instances[i].proxy.as_mut() {
                Some(verdict) => verdict.record(ok, reason),
                None => false,
            };
            if flipped {
                let inst = &v.instances[i];
                tracing::info!(
                    target: "halb::vrrp",
                    "vrrp {}: track_proxy {}: {}",
                    inst.config.name,
                    if ok { "healthy" } else { "unhealthy" },
                    inst.proxy.as_ref().map(|p| p.reason.as_str()).unwrap_or("")
                );
                v.trackers_changed(i, now);
            }
        }
    }
}

/// Run one `track_script` entry forever (every `interval`, killed after `timeout`).
async fn script_task(vrrp: Rc<RefCell<Vrrp>>, i: usize, s: usize) {
    loop {
        let (script, label) = {
            let v = vrrp.borrow();
            if v.stopped {
                return;
            }
            let t = &v.instances[i].scripts[s];
            (t.script.clone(), t.label())
        };
        let started = Instant::now();
        let outcome = run_script(&script.script, script.timeout).await;
        let (ok, reason) = match outcome {
            Ok(0) => (true, "exit 0".to_string()),
            Ok(code) => (false, format!("exit {code}")),
            Err(e) => (false, e),
        };
        {
            let mut v = vrrp.borrow_mut();
            if v.stopped {
                return;
            }
            let now = Instant::now();
            let tracker = &mut v.instances[i].scripts[s];
            tracker.last_run = Some(now);
            if tracker.verdict.record(ok, reason.clone()) {
                let name = v.instances[i].config.name.clone();
                tracing::info!(
                    target: "halb::vrrp",
                    "vrrp {name}: track_script {label} {} ({reason})",
                    if ok { "succeeded: healthy" } else { "failed: failing" }
                );
                v.trackers_changed(i, now);
            }
        }
        let spent = started.elapsed();
        glommio::timer::sleep(script.interval.saturating_sub(spent)).await;
    }
}

/// Run `cmd` and wait (polling, on the control thread's timers) for its exit code, killing
/// it after `timeout`.
async fn run_script(cmd: &[String], timeout: Duration) -> Result<i32, String> {
    let mut child = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cmd[0]))?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Ok(status.code().unwrap_or(-1));
            }
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for {}: {e}", cmd[0])),
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {} ms", timeout.as_millis()));
        }
        glommio::timer::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
