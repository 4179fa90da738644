//! The control core: what the control thread knows and decides, and the snapshots it
//! publishes to the shards.
//!
//! [`Control`] holds the configuration in force and one [`ServerHealth`] per server. Health
//! checks ([`health`]), live-traffic observations from the shards, admin actions
//! ([`admin`], the stats page) and reloads change it; every change that matters to traffic
//! becomes a new immutable [`Snapshot`] with the next generation, published with one
//! atomic store. Everything here runs on the control thread's glommio executor: the state
//! sits in an `Rc<RefCell<Control>>` shared by its tasks, borrowed only between awaits.
//!
//! Stats slots: each frontend, backend and server gets a number, stable over reloads (a
//! server keeps its number while its backend, name and address stay the same). Shards
//! count under these numbers; the report maps them back to names.

pub mod admin;
pub mod health;
pub mod stats_server;
pub mod vrrp;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::balance::ServerSlot;
use crate::config::{Balance, Check, Config, Mode, Observe};
use crate::snapshot::{BackendState, ServerLive, Snapshot, SnapshotCell};
use crate::stats::collect::StatsHub;
use crate::stats::report::{
    BackendReport, Counters, FrontendReport, ProcessInfo, ServerReport, StatsReport,
};
use crate::stats::AdminState;
use health::state::{admin_word, ServerHealth, Transition};

/// A server's identity over reloads: backend name, server name, address.
type ServerKey = (String, String, SocketAddr);

/// What the control thread knows of one server.
#[derive(Debug)]
struct ServerEntry {
    /// Index of its backend in the configuration in force.
    backend: usize,
    /// Index in the backend's `servers`.
    server: usize,
    health: ServerHealth,
}

/// A live-traffic observation a shard sends to the control thread: server `slot` made
/// `error_limit` consecutive errors.
#[derive(Debug, Clone, Copy)]
pub struct ObservedErrors {
    /// Stats slot of the server.
    pub slot: usize,
    /// How many consecutive errors.
    pub count: u32,
}

/// The control thread's state.
pub struct Control {
    config: Arc<Config>,
    snapshots: Arc<SnapshotCell>,
    hub: Arc<StatsHub>,
    generation: u64,
    reloads: u64,
    started: Instant,
    shards: usize,
    /// `[backend][server]` → stats slot.
    server_slots: Vec<Vec<usize>>,
    entries: HashMap<usize, ServerEntry>,
    keys: HashMap<ServerKey, usize>,
    frontend_slots: HashMap<String, usize>,
    backend_slots: HashMap<String, usize>,
    next_slot: usize,
    /// Servers whose check task runs.
    checking: HashSet<usize>,
    /// A slow start was in progress at the last tick.
    ramp_active: bool,
    /// The VRRP instances, for reports (`None` without `[vrrp.*]`).
    vrrp: Option<Rc<RefCell<vrrp::Vrrp>>>,
    /// TLS termination per frontend of `config` (see [`Snapshot::tls`]).
    tls: Vec<Option<Arc<crate::tls::server::Termination>>>,
}

impl Control {
    /// The control state of `config`, and the first snapshot (generation 1) in a new cell.
    pub fn new(config: Arc<Config>, hub: Arc<StatsHub>, shards: usize) -> Control {
        let first = Snapshot::initial(Arc::clone(&config));
        let tls = first.tls.clone();
        let mut control = Control {
            config: Arc::clone(&config),
            snapshots: Arc::new(SnapshotCell::new(first)),
            hub,
            generation: 0,
            reloads: 0,
            started: Instant::now(),
            shards,
            server_slots: Vec::new(),
            entries: HashMap::new(),
            keys: HashMap::new(),
            frontend_slots: HashMap::new(),
            backend_slots: HashMap::new(),
            next_slot: 0,
            checking: HashSet::new(),
            ramp_active: false,
            vrrp: None,
            tls,
        };
        control.adopt(config, Instant::now());
        control.publish();
        control
    }

    /// Attach the running VRRP instances (their state goes into reports).
    pub fn set_vrrp(&mut self, vrrp: Rc<RefCell<vrrp::Vrrp>>) {
        self.vrrp = Some(vrrp);
    }

    /// The VRRP instances' reports (empty without `[vrrp.*]`).
    pub fn vrrp_report(&self) -> Vec<vrrp::InstanceReport> {
        self.vrrp
            .as_ref()
            .map(|v| v.borrow().report())
            .unwrap_or_default()
    }

    /// The cell shards read snapshots from.
    pub fn snapshots(&self) -> &Arc<SnapshotCell> {
        &self.snapshots
    }

    /// The stats hub shards answer through.
    pub fn hub(&self) -> &Arc<StatsHub> {
        &self.hub
    }

    /// The configuration in force.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The generation of the snapshot in force.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Changes each time a new configuration is adopted (reload): what was read from the
    /// previous one (a server's check) must be read again.
    pub fn config_version(&self) -> u64 {
        self.reloads
    }

    fn new_slot(&mut self) -> usize {
        self.next_slot += 1;
        self.next_slot - 1
    }

    /// Make `config` the one in force: slots and health carried over by identity.
    fn adopt(&mut self, config: Arc<Config>, now: Instant) {
        let mut frontend_slots = HashMap::new();
        for f in &config.frontends {
            let slot = match self.frontend_slots.get(&f.name) {
                Some(&s) => s,
                None => self.new_slot(),
            };
            frontend_slots.insert(f.name.clone(), slot);
        }
        let mut backend_slots = HashMap::new();
        let mut keys = HashMap::new();
        let mut entries = HashMap::new();
        let mut server_slots = Vec::new();
        for (b, backend) in config.backends.iter().enumerate() {
            let slot = match self.backend_slots.get(&backend.name) {
                Some(&s) => s,
                None => self.new_slot(),
            };
            backend_slots.insert(backend.name.clone(), slot);
            let mut slots = Vec::with_capacity(backend.servers.len());
            for (s, server) in backend.servers.iter().enumerate() {
                let key = (backend.name.clone(), server.name.clone(), server.address);
                let checked = server.check.is_some();
                let (slot, health) = match self.keys.get(&key).copied() {
                    Some(slot) => {
                        let old = self.entries.remove(&slot).expect("every key has an entry");
                        let old_server = &self.config.backends[old.backend].servers[old.server];
                        let mut health = old.health;
                        if !checked && !health.up {
                            // No longer checked: unchecked servers are always UP.
                            health.up = true;
                            health.streak = 0;
                            health.up_since = Some(now);
                            health.reason = "not checked".to_string();
                            health.last_change = now;
                        }
                        health.checked = checked;
                        if server.weight != health.config_weight {
                            health.weight = server.weight;
                            health.config_weight = server.weight;
                        }
                        if server.disabled != old_server.disabled {
                            let admin = if server.disabled {
                                AdminState::Maint
                            } else {
                                AdminState::Ready
                            };
                            health.set_admin(admin, now);
                        }
                        (slot, health)
                    }
                    None => (
                        self.new_slot(),
                        ServerHealth::new(checked, server.weight, server.disabled, now),
                    ),
                };
                keys.insert(key, slot);
                entries.insert(
                    slot,
                    ServerEntry {
                        backend: b,
                        server: s,
                        health,
                    },
                );
                slots.push(slot);
            }
            server_slots.push(slots);
        }
        self.frontend_slots = frontend_slots;
        self.backend_slots = backend_slots;
        self.keys = keys;
        self.entries = entries;
        self.server_slots = server_slots;
        if !Arc::ptr_eq(&self.config, &config) {
            self.tls =
                crate::snapshot::terminations(&config, Some((&self.config, self.tls.as_slice())));
        }
        self.config = config;
    }

    /// The snapshot of the state now.
    fn build_snapshot(&self, now: Instant) -> Snapshot {
        let config = &self.config;
        let backends = config
            .backends
            .iter()
            .enumerate()
            .map(|(b, backend)| {
                let mut servers = Vec::with_capacity(backend.servers.len());
                let mut live = Vec::with_capacity(backend.servers.len());
                for (s, server) in backend.servers.iter().enumerate() {
                    let slot = self.server_slots[b][s];
                    let health = &self.entries[&slot].health;
                    servers.push(ServerSlot {
                        name: server.name.clone(),
                        weight: health.effective_weight(server.slowstart, now),
                        backup: server.backup,
                        usable: health.usable(),
                    });
                    live.push(ServerLive {
                        stats: slot,
                        pinnable: health.pinnable(),
                        shutdown_epoch: health.shutdown_epoch,
                    });
                }
                BackendState {
                    servers,
                    live,
                    stats: self.backend_slots[&backend.name],
                }
            })
            .collect();
        Snapshot {
            generation: self.generation,
            config: Arc::clone(config),
            backends,
            frontend_stats: config
                .frontends
                .iter()
                .map(|f| self.frontend_slots[&f.name])
                .collect(),
            tls: self.tls.clone(),
        }
    }

    /// Publish the state now as the next generation.
    pub fn publish(&mut self) {
        self.generation += 1;
        let snapshot = self.build_snapshot(Instant::now());
        self.snapshots.publish(snapshot);
    }

    /// Servers that have a check but no check task yet (the caller spawns them and
    /// marks them with [`Control::checking_started`]).
    pub fn unchecked_servers(&self) -> Vec<usize> {
        let mut slots: Vec<usize> = self
            .entries
            .iter()
            .filter(|(slot, e)| {
                !self.checking.contains(slot)
                    && self.config.backends[e.backend].servers[e.server]
                        .check
                        .is_some()
            })
            .map(|(&slot, _)| slot)
            .collect();
        slots.sort_unstable();
        slots
    }

    /// A check task for `slot` runs now.
    pub fn checking_started(&mut self, slot: usize) {
        self.checking.insert(slot);
    }

    /// The check task of `slot` ended.
    pub fn checking_ended(&mut self, slot: usize) {
        self.checking.remove(&slot);
    }

    /// Whether backend `name` has a server that can take traffic now (a backup counts);
    /// `None` when there is no such backend.
    pub fn backend_usable(&self, name: &str) -> Option<bool> {
        let b = self.config.backend_index(name)?;
        let slots = self.server_slots.get(b)?;
        Some(
            slots
                .iter()
                .any(|slot| self.entries.get(slot).is_some_and(|e| e.health.usable())),
        )
    }

    /// The backends the frontends route to (default and `use_backend`), sorted.
    pub fn routed_backends(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for f in &self.config.frontends {
            names.extend(f.default_backend.iter().cloned());
            if let Some(http) = &f.http {
                names.extend(http.use_backends.iter().map(|u| u.backend.clone()));
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// The check of server `slot`, the address it connects to and the TLS it speaks;
    /// `None` when the server is gone or no longer checked (its task then ends).
    pub fn check_of(&self, slot: usize) -> Option<health::CheckTarget> {
        let e = self.entries.get(&slot)?;
        let backend = &self.config.backends[e.backend];
        let server = &backend.servers[e.server];
        let check = server.check.clone()?;
        Some(health::CheckTarget {
            address: check.target(server.address),
            tls: health::probe::check_tls(server).map(|tls| (tls.clone(), backend.mode)),
            check,
        })
    }

    /// How long until the next check of `slot`.
    pub fn next_check_in(&self, slot: usize) -> Option<Duration> {
        let e = self.entries.get(&slot)?;
        let check = self.config.backends[e.backend].servers[e.server]
            .check
            .as_ref()?;
        Some(e.health.next_interval(check))
    }

    /// A check of `slot` finished with `result`.
    pub fn on_check(&mut self, slot: usize, result: Result<String, String>, now: Instant) {
        let Some(e) = self.entries.get_mut(&slot) else {
            return;
        };
        let server = &self.config.backends[e.backend].servers[e.server];
        let Some(check) = &server.check else {
            return;
        };
        let (rise, fall) = (check.rise, check.fall);
        let shutdown = check.shutdown_sessions_on_down;
        let transition = e.health.on_check(result, rise, fall, now);
        if let Some(t) = transition {
            let how = match t {
                Transition::Up => format!("{rise}/{rise} checks passed"),
                Transition::Down => format!("{fall}/{fall} checks failed"),
            };
            self.changed(slot, t, &how, shutdown);
        }
    }

    /// A shard reports `count` consecutive live-traffic errors on `slot`.
    pub fn on_observed(&mut self, observed: ObservedErrors, now: Instant) {
        let Some(e) = self.entries.get_mut(&observed.slot) else {
            return;
        };
        let server = &self.config.backends[e.backend].servers[e.server];
        let Some(check) = &server.check else {
            return;
        };
        if check.observe.is_none() {
            return;
        }
        let shutdown = check.shutdown_sessions_on_down;
        let reason = format!("observed {} consecutive errors", observed.count);
        if let Some(t) = e.health.on_observed_errors(reason, now) {
            self.changed(observed.slot, t, "live traffic", shutdown);
        }
    }

    /// Log a usability change of `slot` and publish it.
    fn changed(&mut self, slot: usize, transition: Transition, how: &str, shutdown: bool) {
        let e = self.entries.get_mut(&slot).expect("caller checked");
        if transition == Transition::Down && shutdown {
            e.health.shutdown_epoch += 1;
        }
        let (b, s) = (e.backend, e.server);
        let backend = &self.config.backends[b];
        let state = e.health.state().as_str();
        let reason = e.health.reason.clone();
        let (active, backup) = self.usable_counts(b);
        let line = format!(
            "server {}/{} is {}: {} ({}); {} active and {} backup servers {} in {}",
            backend.name,
            backend.servers[s].name,
            state,
            reason,
            how,
            active,
            backup,
            if transition == Transition::Down {
                "left"
            } else {
                "online"
            },
            backend.name
        );
        match transition {
            Transition::Down => tracing::warn!(target: "halb::health", "{line}"),
            Transition::Up => tracing::info!(target: "halb::health", "{line}"),
        }
        if active + backup == 0 {
            tracing::error!(target: "halb::health", "backend {} has no server available", backend.name);
        }
        self.publish();
    }

    /// Usable primary and backup servers of backend `b`.
    fn usable_counts(&self, b: usize) -> (usize, usize) {
        let backend = &self.config.backends[b];
        let mut counts = (0, 0);
        for (s, server) in backend.servers.iter().enumerate() {
            if self.entries[&self.server_slots[b][s]].health.usable() {
                if server.backup {
                    counts.1 += 1;
                } else {
                    counts.0 += 1;
                }
            }
        }
        counts
    }

    /// Periodic: while a slow start ramps, republish so shards see the growing weight
    /// (once more after the last ramp ends, for the full weight).
    pub fn tick_slowstart(&mut self, now: Instant) {
        let ramping = self.entries.values().any(|e| {
            let server = &self.config.backends[e.backend].servers[e.server];
            e.health.ramping(server.slowstart, now)
        });
        if ramping || self.ramp_active {
            self.publish();
        }
        self.ramp_active = ramping;
    }

    /// The slot of `backend/server`, or an error listing what exists.
    pub fn resolve(&self, backend: &str, server: &str) -> Result<usize, String> {
        let Some(b) = self.config.backend_index(backend) else {
            return Err(format!(
                "no backend {backend:?} (backends: {})",
                self.backend_names().join(", ")
            ));
        };
        let be = &self.config.backends[b];
        match be.servers.iter().position(|s| s.name == server) {
            Some(s) => Ok(self.server_slots[b][s]),
            None => Err(format!(
                "no server {server:?} in backend {backend:?} (servers: {})",
                be.servers
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Names of the backends, in order.
    pub fn backend_names(&self) -> Vec<&str> {
        self.config
            .backends
            .iter()
            .map(|b| b.name.as_str())
            .collect()
    }

    /// `set server B/S state …`.
    pub fn set_state(
        &mut self,
        backend: &str,
        server: &str,
        admin: AdminState,
        now: Instant,
    ) -> Result<String, String> {
        let slot = self.resolve(backend, server)?;
        let e = self.entries.get_mut(&slot).expect("resolved");
        let before = e.health.admin;
        let transition = e.health.set_admin(admin, now);
        let message = format!(
            "server {backend}/{server} is now {} (was {})",
            admin_word(admin),
            admin_word(before)
        );
        if before != admin {
            tracing::info!(target: "halb::health", "{message} (admin)");
            if transition.is_some() {
                let (b, _) = (e.backend, e.server);
                let (active, backup) = self.usable_counts(b);
                if active + backup == 0 {
                    tracing::error!(target: "halb::health", "backend {backend} has no server available");
                }
            }
            self.publish();
        }
        Ok(message)
    }

    /// `set server B/S weight N`.
    pub fn set_weight(
        &mut self,
        backend: &str,
        server: &str,
        weight: u32,
    ) -> Result<String, String> {
        if weight > crate::balance::MAX_WEIGHT {
            return Err(format!(
                "weight {weight} is out of range (0..={})",
                crate::balance::MAX_WEIGHT
            ));
        }
        let slot = self.resolve(backend, server)?;
        let e = self.entries.get_mut(&slot).expect("resolved");
        let before = e.health.weight;
        e.health.weight = weight;
        if before != weight {
            tracing::info!(target: "halb::health", "server {backend}/{server} weight {before} -> {weight} (admin)");
            self.publish();
        }
        Ok(format!(
            "server {backend}/{server} weight is now {weight} (was {before})"
        ))
    }

    /// Reload: make `config` the one in force (state carried over), publish it. Returns
    /// notes about what a reload cannot change.
    pub fn reload(&mut self, config: Arc<Config>) -> Vec<String> {
        let mut notes = Vec::new();
        let old = &self.config.global;
        let new = &config.global;
        let restart = [
            ("shards", old.shards != new.shards),
            ("control_core", old.control_core != new.control_core),
            ("maxconn", old.maxconn != new.maxconn),
            ("user", old.user != new.user),
            ("group", old.group != new.group),
            ("log", old.log != new.log),
            ("admin_socket", old.admin_socket != new.admin_socket),
            ("maxpipes", old.maxpipes != new.maxpipes),
            ("pipesize", old.pipesize != new.pipesize),
        ];
        for (key, changed) in restart {
            if changed {
                notes.push(format!(
                    "global.{key} changed: takes effect at the next restart"
                ));
            }
        }
        if self.config.stats.as_ref().map(|s| s.bind) != config.stats.as_ref().map(|s| s.bind) {
            notes.push("stats.bind changed: takes effect at the next restart".to_string());
        }
        if self.config.vrrp != config.vrrp {
            notes.push(
                "[vrrp.*] changed: takes effect at the next restart (the running instances keep their settings)"
                    .to_string(),
            );
        }
        self.adopt(config, Instant::now());
        self.reloads += 1;
        self.publish();
        notes
    }

    /// The report of everything, from the shards' merged counters.
    pub fn report(&self, counters: &[Counters], now: Instant) -> StatsReport {
        let at = |slot: usize| counters.get(slot).copied().unwrap_or_default();
        let frontends: Vec<FrontendReport> = self
            .config
            .frontends
            .iter()
            .map(|f| FrontendReport {
                name: f.name.clone(),
                mode: mode_word(f.mode),
                bind: f.bind.clone(),
                maxconn: f.maxconn,
                counters: at(self.frontend_slots[&f.name]),
            })
            .collect();
        let backends = self
            .config
            .backends
            .iter()
            .enumerate()
            .map(|(b, backend)| {
                let servers: Vec<ServerReport> = backend
                    .servers
                    .iter()
                    .enumerate()
                    .map(|(s, server)| {
                        let slot = self.server_slots[b][s];
                        let h = &self.entries[&slot].health;
                        ServerReport {
                            name: server.name.clone(),
                            address: server.address,
                            state: h.state(),
                            admin: admin_word(h.admin),
                            checked: h.checked,
                            backup: server.backup,
                            weight: h.weight,
                            effective_weight: h.effective_weight(server.slowstart, now),
                            last_check: h.last_check.clone(),
                            reason: h.reason.clone(),
                            last_change_secs: now
                                .saturating_duration_since(h.last_change)
                                .as_secs(),
                            downtime_secs: h.downtime_at(now).as_secs(),
                            check_failures: h.check_failures,
                            down_transitions: h.down_transitions,
                            counters: at(slot),
                        }
                    })
                    .collect();
                let (active, backup) = self.usable_counts(b);
                BackendReport {
                    name: backend.name.clone(),
                    mode: mode_word(backend.mode),
                    balance: balance_word(&backend.balance),
                    usable_servers: active + backup,
                    counters: at(self.backend_slots[&backend.name]),
                    servers,
                }
            })
            .collect();
        let current_connections = frontends.iter().map(|f| f.counters.current_sessions).sum();
        StatsReport {
            info: ProcessInfo {
                name: "halb",
                version: env!("CARGO_PKG_VERSION"),
                pid: std::process::id(),
                uptime_secs: now.saturating_duration_since(self.started).as_secs(),
                generation: self.generation,
                config: self.config.source.display().to_string(),
                reloads: self.reloads,
                shards: self.shards,
                current_connections,
            },
            frontends,
            backends,
            vrrp: self.vrrp_report(),
        }
    }
}

/// Observation settings of a server: `(observe, error_limit)` when on.
pub fn observation(check: Option<&Check>) -> Option<(Observe, u32)> {
    let check = check?;
    check.observe.map(|o| (o, check.error_limit))
}

fn mode_word(mode: Mode) -> &'static str {
    match mode {
        Mode::Tcp => "tcp",
        Mode::Http => "http",
    }
}

/// The balancing algorithm as written in the configuration.
pub fn balance_word(balance: &Balance) -> String {
    match balance {
        Balance::RoundRobin => "roundrobin".to_string(),
        Balance::StaticRr => "static-rr".to_string(),
        Balance::LeastConn => "leastconn".to_string(),
        Balance::Source => "source".to_string(),
        Balance::First => "first".to_string(),
        Balance::Uri(_) => "uri".to_string(),
        Balance::UrlParam(p) => format!("url_param({p})"),
        Balance::Hdr(h) => format!("hdr({h})"),
    }
}

/// Wait until every shard has answered stats request `seq` (bounded: a shard that does
/// not answer within a second is reported with its previous numbers).
pub async fn gather(hub: &StatsHub) -> Vec<Counters> {
    let seq = hub.request();
    let deadline = Instant::now() + Duration::from_secs(1);
    while !hub.answered(seq) && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    hub.merged()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::report::ServerState;

    fn config(text: &str) -> Arc<Config> {
        Arc::new(crate::config::parse(text, std::path::Path::new("test.toml")).expect("valid"))
    }

    const BASE: &str = r#"
[frontend.fe]
bind = ["127.0.0.1:1"]
default_backend = "be"
[backend.be]
check = { type = "tcp", rise = 2, fall = 2 }
[[backend.be.server]]
name = "s1"
address = "127.0.0.1:11"
check = true
[[backend.be.server]]
name = "s2"
address = "127.0.0.1:12"
check = true
"#;

    fn state(c: &Control, server: &str) -> ServerState {
        let report = c.report(&[], Instant::now());
        report.backends[0]
            .servers
            .iter()
            .find(|s| s.name == server)
            .map(|s| s.state)
            .expect("server in the report")
    }

    #[test]
    fn checks_publish_generations_and_reload_carries_state_over() {
        let mut c = Control::new(config(BASE), Arc::new(StatsHub::new(1)), 1);
        assert_eq!(c.generation(), 1);
        let s2 = c.resolve("be", "s2").unwrap();
        let now = Instant::now();
        c.on_check(s2, Err("L4 connect refused".into()), now);
        assert_eq!(c.generation(), 1, "going down is not a traffic change");
        assert_eq!(state(&c, "s2"), ServerState::GoingDown);
        c.on_check(s2, Err("L4 connect refused".into()), now);
        assert_eq!(c.generation(), 2);
        assert_eq!(state(&c, "s2"), ServerState::Down);
        let snap = c.snapshots().load_full();
        assert!(!snap.backends[0].servers[1].usable);
        assert!(snap.backends[0].servers[0].usable);

        c.set_state("be", "s1", AdminState::Maint, now).unwrap();
        assert_eq!(c.generation(), 3);
        let s1 = c.resolve("be", "s1").unwrap();

        // s1 unchanged, s2 moves (a new server), s3 added.
        let next = BASE.replace("127.0.0.1:12", "127.0.0.1:22")
            + "[[backend.be.server]]\nname = \"s3\"\naddress = \"127.0.0.1:13\"\n";
        let notes = c.reload(config(&next));
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(c.generation(), 4);
        assert_eq!(
            c.resolve("be", "s1").unwrap(),
            s1,
            "same slot over a reload"
        );
        assert_eq!(state(&c, "s1"), ServerState::Maint);
        assert_ne!(
            c.resolve("be", "s2").unwrap(),
            s2,
            "a moved server is a new one"
        );
        assert_eq!(state(&c, "s2"), ServerState::Up);
        assert_eq!(state(&c, "s3"), ServerState::Up);
        assert!(c.check_of(s2).is_none(), "the old s2's check task ends");
        let mut unchecked = c.unchecked_servers();
        unchecked.sort_unstable();
        assert_eq!(unchecked.len(), 2, "s1 and the new s2 need check tasks");

        let e = c.resolve("be", "s9").unwrap_err();
        assert!(e.contains("s1, s2, s3"), "{e}");
        let e = c.resolve("nope", "s1").unwrap_err();
        assert!(e.contains("backends: be"), "{e}");
        assert!(c.set_weight("be", "s1", 300).is_err());
    }

    #[test]
    fn observed_errors_need_observe() {
        let with_observe = BASE.replace(
            "check = { type = \"tcp\", rise = 2, fall = 2 }",
            "check = { type = \"tcp\", rise = 2, fall = 2, observe = \"layer4\", error_limit = 3 }",
        );
        for (text, down) in [(BASE.to_string(), false), (with_observe, true)] {
            let mut c = Control::new(config(&text), Arc::new(StatsHub::new(1)), 1);
            let slot = c.resolve("be", "s1").unwrap();
            c.on_observed(ObservedErrors { slot, count: 3 }, Instant::now());
            assert_eq!(state(&c, "s1") == ServerState::Down, down, "{text}");
        }
    }
}
