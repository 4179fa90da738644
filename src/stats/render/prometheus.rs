//! `/metrics`: the Prometheus text exposition format, version 0.0.4.
//!
//! Each metric family is written contiguously: `# HELP`, `# TYPE`, then its samples (one
//! per frontend, backend or server, in report order). Families with no sample (no
//! frontend configured, ...) are left out. Counters are `TYPE counter` and end in
//! `_total`; everything else is a gauge. Label values are escaped (`\\`, `\"`, `\n`).
//!
//! | family | labels |
//! |---|---|
//! | `halb_build_info` (1) | `version` |
//! | `halb_process_{uptime_seconds, generation, reloads_total, current_connections, shards}` | — |
//! | `halb_frontend_{current_sessions, max_sessions, limit_sessions, sessions_total, bytes_in_total, bytes_out_total, http_requests_total, denied_total, request_errors_total, tls_handshakes_total, tls_resumed_total, tls_handshake_failures_total}` | `proxy` |
//! | `halb_frontend_http_responses_total` | `proxy`, `code` (`1xx`..`5xx`, `other`) |
//! | `halb_backend_*`: the frontend set (no `limit_sessions`) plus `connection_errors_total`, `response_errors_total`, `retries_total`, `redispatches_total`, `current_queue`, `usable_servers`, `servers` | `proxy` (+ `code`) |
//! | `halb_server_*`: the backend counter set (no `denied`, `request_errors`) plus `weight`, `effective_weight`, `check_failures_total`, `down_transitions_total`, `downtime_seconds_total`, `last_change_seconds` | `proxy`, `server` (+ `code`) |
//! | `halb_server_status` | `proxy`, `server`, `state`: one sample per state, 1 for the current one |

use std::fmt::Write as _;

use super::{ALL_STATES, RESPONSE_CLASSES};
use crate::stats::report::{BackendReport, Counters, FrontendReport, ServerReport, StatsReport};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// A family of samples computed from a [`Counters`].
struct CounterMetric {
    suffix: &'static str,
    kind: Kind,
    help: &'static str,
    get: fn(&Counters) -> u64,
}

const fn m(
    suffix: &'static str,
    kind: Kind,
    help: &'static str,
    get: fn(&Counters) -> u64,
) -> CounterMetric {
    CounterMetric {
        suffix,
        kind,
        help,
        get,
    }
}

/// Families every frontend, backend and server has (before `http_responses_total`).
const COMMON: &[CounterMetric] = &[
    m("current_sessions", Kind::Gauge, "Sessions open now.", |c| {
        c.current_sessions
    }),
    m(
        "max_sessions",
        Kind::Gauge,
        "Highest number of concurrent sessions seen (sum of per-shard maxima).",
        |c| c.max_sessions,
    ),
    m(
        "sessions_total",
        Kind::Counter,
        "Sessions since start.",
        |c| c.total_sessions,
    ),
    m(
        "bytes_in_total",
        Kind::Counter,
        "Bytes received from clients (frontend) or sent to servers (backend, server).",
        |c| c.bytes_in,
    ),
    m(
        "bytes_out_total",
        Kind::Counter,
        "Bytes sent to clients (frontend) or received from servers (backend, server).",
        |c| c.bytes_out,
    ),
    m(
        "http_requests_total",
        Kind::Counter,
        "HTTP requests received (frontend) or forwarded (backend, server).",
        |c| c.http_requests,
    ),
];

/// Frontend (and backend) client-side errors.
const CLIENT_ERRORS: &[CounterMetric] = &[
    m(
        "denied_total",
        Kind::Counter,
        "Requests denied by http_request rules.",
        |c| c.denied,
    ),
    m(
        "request_errors_total",
        Kind::Counter,
        "Invalid or timed-out client requests answered by halb itself.",
        |c| c.request_errors,
    ),
];

/// TLS termination (frontend).
const TLS: &[CounterMetric] = &[
    m(
        "tls_handshakes_total",
        Kind::Counter,
        "TLS handshakes completed on the frontend's tls listeners.",
        |c| c.tls_handshakes,
    ),
    m(
        "tls_resumed_total",
        Kind::Counter,
        "TLS handshakes that resumed a session (ticket or session cache).",
        |c| c.tls_resumed,
    ),
    m(
        "tls_handshake_failures_total",
        Kind::Counter,
        "Client TLS handshakes that failed or timed out.",
        |c| c.tls_handshake_failures,
    ),
];

/// Backend and server server-side errors and warnings.
const SERVER_ERRORS: &[CounterMetric] = &[
    m(
        "connection_errors_total",
        Kind::Counter,
        "Failed connection attempts to servers.",
        |c| c.connection_errors,
    ),
    m(
        "response_errors_total",
        Kind::Counter,
        "Invalid, missing or timed-out server responses.",
        |c| c.response_errors,
    ),
    m(
        "retries_total",
        Kind::Counter,
        "Connection attempts retried.",
        |c| c.retries,
    ),
    m(
        "redispatches_total",
        Kind::Counter,
        "Retries sent to another server than the one that failed.",
        |c| c.redispatches,
    ),
    m(
        "current_queue",
        Kind::Gauge,
        "Requests or connections waiting for a server now (always 0: halb does not queue).",
        |c| c.queue,
    ),
];

const RESPONSES_HELP: &str = "HTTP responses by status class (frontend: sent to clients; \
                              backend, server: received from servers).";

/// Writes families; drops a family's header again when it got no sample.
struct Writer {
    out: String,
    family_start: usize,
    samples: usize,
}

impl Writer {
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.family_start = self.out.len();
        self.samples = 0;
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_help_into(&mut self.out, help);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push_str(match kind {
            Kind::Counter => " counter\n",
            Kind::Gauge => " gauge\n",
        });
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.samples += 1;
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label_into(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// Close the current family: remove its header if it has no sample.
    fn end(&mut self) {
        if self.samples == 0 {
            self.out.truncate(self.family_start);
        }
    }
}

/// Append a label value to `out`, escaped for the text format: `\` → `\\`, `"` → `\"`,
/// newline → `\n`.
pub fn escape_label_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Append a HELP text to `out`, escaped for the text format: `\` → `\\`, newline → `\n`.
fn escape_help_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// One scope (frontends, backends or servers): its items and how to label them.
struct Scope<'r, T> {
    prefix: &'static str,
    items: Vec<(Vec<(&'static str, &'r str)>, &'r T)>,
}

impl<'r, T> Scope<'r, T> {
    fn counters(
        &self,
        w: &mut Writer,
        metrics: &[CounterMetric],
        counters: impl Fn(&T) -> &Counters,
    ) {
        for metric in metrics {
            self.gauge_or_counter(w, metric.suffix, metric.kind, metric.help, |t| {
                (metric.get)(counters(t))
            });
        }
    }

    fn gauge_or_counter(
        &self,
        w: &mut Writer,
        suffix: &str,
        kind: Kind,
        help: &str,
        get: impl Fn(&T) -> u64,
    ) {
        let name = format!("{}_{}", self.prefix, suffix);
        w.family(&name, kind, help);
        for (labels, item) in &self.items {
            w.sample(&name, labels, get(item));
        }
        w.end();
    }

    fn responses(&self, w: &mut Writer, counters: impl Fn(&T) -> &Counters) {
        let name = format!("{}_http_responses_total", self.prefix);
        w.family(&name, Kind::Counter, RESPONSES_HELP);
        for (labels, item) in &self.items {
            let c = counters(item);
            for (class, n) in RESPONSE_CLASSES.iter().zip(c.http_responses) {
                let mut l = labels.clone();
                l.push(("code", class));
                w.sample(&name, &l, n);
            }
        }
        w.end();
    }
}

/// The Prometheus text (format 0.0.4) rendering of `report`.
pub fn prometheus(report: &StatsReport) -> String {
    let servers: usize = report.backends.iter().map(|b| b.servers.len()).sum();
    let mut w = Writer {
        out: String::with_capacity(
            4096 + 2500 * report.frontends.len() + 3500 * report.backends.len() + 4000 * servers,
        ),
        family_start: 0,
        samples: 0,
    };
    process(&mut w, report);

    let frontends = Scope::<FrontendReport> {
        prefix: "halb_frontend",
        items: report
            .frontends
            .iter()
            .map(|f| (vec![("proxy", f.name.as_str())], f))
            .collect(),
    };
    fn fc(f: &FrontendReport) -> &Counters {
        &f.counters
    }
    frontends.counters(&mut w, &COMMON[..2], fc);
    frontends.gauge_or_counter(
        &mut w,
        "limit_sessions",
        Kind::Gauge,
        "Configured connection limit (maxconn).",
        |f| u64::from(f.maxconn),
    );
    frontends.counters(&mut w, &COMMON[2..], fc);
    frontends.responses(&mut w, fc);
    frontends.counters(&mut w, CLIENT_ERRORS, fc);
    frontends.counters(&mut w, TLS, fc);

    let backends = Scope::<BackendReport> {
        prefix: "halb_backend",
        items: report
            .backends
            .iter()
            .map(|b| (vec![("proxy", b.name.as_str())], b))
            .collect(),
    };
    fn bc(b: &BackendReport) -> &Counters {
        &b.counters
    }
    backends.counters(&mut w, COMMON, bc);
    backends.responses(&mut w, bc);
    backends.counters(&mut w, CLIENT_ERRORS, bc);
    backends.counters(&mut w, SERVER_ERRORS, bc);
    backends.gauge_or_counter(
        &mut w,
        "usable_servers",
        Kind::Gauge,
        "Servers able to take new traffic now (active and backup).",
        |b| b.usable_servers as u64,
    );
    backends.gauge_or_counter(
        &mut w,
        "servers",
        Kind::Gauge,
        "Servers configured in the backend.",
        |b| b.servers.len() as u64,
    );

    let servers = Scope::<ServerReport> {
        prefix: "halb_server",
        items: report
            .backends
            .iter()
            .flat_map(|b| {
                b.servers.iter().map(move |s| {
                    (
                        vec![("proxy", b.name.as_str()), ("server", s.name.as_str())],
                        s,
                    )
                })
            })
            .collect(),
    };
    fn sc(s: &ServerReport) -> &Counters {
        &s.counters
    }
    servers.counters(&mut w, COMMON, sc);
    servers.responses(&mut w, sc);
    servers.counters(&mut w, SERVER_ERRORS, sc);
    server_state(&mut w, &servers);
    servers.gauge_or_counter(
        &mut w,
        "weight",
        Kind::Gauge,
        "Weight set by the configuration or the admin API.",
        |s| u64::from(s.weight),
    );
    servers.gauge_or_counter(
        &mut w,
        "effective_weight",
        Kind::Gauge,
        "Weight in force now (0 when not usable; ramps up during slow start).",
        |s| u64::from(s.effective_weight),
    );
    servers.gauge_or_counter(
        &mut w,
        "check_failures_total",
        Kind::Counter,
        "Failed health checks since start.",
        |s| s.check_failures,
    );
    servers.gauge_or_counter(
        &mut w,
        "down_transitions_total",
        Kind::Counter,
        "UP to DOWN transitions since start.",
        |s| s.down_transitions,
    );
    servers.gauge_or_counter(
        &mut w,
        "downtime_seconds_total",
        Kind::Counter,
        "Seconds spent DOWN or in MAINT since start, the current stretch included.",
        |s| s.downtime_secs,
    );
    servers.gauge_or_counter(
        &mut w,
        "last_change_seconds",
        Kind::Gauge,
        "Seconds since the server's state last changed.",
        |s| s.last_change_secs,
    );
    vrrp(&mut w, report);
    w.out
}

/// The VRRP states, in the order of `halb_vrrp_state`'s samples.
const VRRP_STATES: [&str; 4] = ["INIT", "BACKUP", "MASTER", "FAULT"];

fn vrrp(w: &mut Writer, report: &StatsReport) {
    if report.vrrp.is_empty() {
        return;
    }
    let labels = |i: &crate::control::vrrp::InstanceReport| -> Vec<(&'static str, String)> {
        vec![
            ("vrrp_instance", i.name.clone()),
            ("interface", i.interface.clone()),
            ("vrid", i.virtual_router_id.to_string()),
        ]
    };
    w.family(
        "halb_vrrp_state",
        Kind::Gauge,
        "VRRP instance state: 1 for the current state, 0 for the others.",
    );
    for i in &report.vrrp {
        let owned = labels(i);
        for state in VRRP_STATES {
            let mut l: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
            l.push(("state", state));
            w.sample("halb_vrrp_state", &l, u64::from(i.state == state));
        }
    }
    w.end();
    type Get = fn(&crate::control::vrrp::InstanceReport) -> u64;
    let families: [(&str, Kind, &str, Get); 9] = [
        (
            "halb_vrrp_priority",
            Kind::Gauge,
            "Effective VRRP priority (after tracking).",
            |i| u64::from(i.priority),
        ),
        (
            "halb_vrrp_base_priority",
            Kind::Gauge,
            "Configured VRRP priority.",
            |i| u64::from(i.base_priority),
        ),
        (
            "halb_vrrp_holds_addresses",
            Kind::Gauge,
            "1 while the virtual addresses are on the interface.",
            |i| u64::from(i.holds_addresses),
        ),
        (
            "halb_vrrp_state_since_seconds",
            Kind::Gauge,
            "Unix time of the last state change.",
            |i| i.since,
        ),
        (
            "halb_vrrp_transitions_total",
            Kind::Counter,
            "VRRP state changes.",
            |i| i.counters.transitions,
        ),
        (
            "halb_vrrp_became_master_total",
            Kind::Counter,
            "Times this box became VRRP master.",
            |i| i.counters.became_master,
        ),
        (
            "halb_vrrp_adverts_sent_total",
            Kind::Counter,
            "VRRP advertisements sent.",
            |i| i.counters.adverts_sent,
        ),
        (
            "halb_vrrp_adverts_received_total",
            Kind::Counter,
            "Valid VRRP advertisements received for this virtual router.",
            |i| i.counters.adverts_received,
        ),
        (
            "halb_vrrp_announcements_total",
            Kind::Counter,
            "Gratuitous ARPs and unsolicited neighbour advertisements sent.",
            |i| i.counters.announcements,
        ),
    ];
    for (name, kind, help, get) in families {
        w.family(name, kind, help);
        for i in &report.vrrp {
            let owned = labels(i);
            let l: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
            w.sample(name, &l, get(i));
        }
        w.end();
    }
    w.family(
        "halb_vrrp_master_info",
        Kind::Gauge,
        "The VRRP master as last heard (this box's own address when master): always 1, the address as a label.",
    );
    for i in &report.vrrp {
        if let Some(master) = &i.master {
            let owned = labels(i);
            let mut l: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
            l.push(("master", master));
            w.sample("halb_vrrp_master_info", &l, 1);
        }
    }
    w.end();
    w.family(
        "halb_vrrp_invalid_total",
        Kind::Counter,
        "Received VRRP packets dropped, by reason.",
    );
    for i in &report.vrrp {
        let owned = labels(i);
        for (reason, n) in &i.counters.invalid {
            let mut l: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
            l.push(("reason", reason));
            w.sample("halb_vrrp_invalid_total", &l, *n);
        }
    }
    w.end();
}

fn server_state(w: &mut Writer, servers: &Scope<'_, ServerReport>) {
    let name = "halb_server_status";
    w.family(
        name,
        Kind::Gauge,
        "Server state: 1 for the current state, 0 for the others.",
    );
    for (labels, s) in &servers.items {
        for state in ALL_STATES {
            let mut l = labels.clone();
            l.push(("state", state.as_str()));
            w.sample(name, &l, u64::from(s.state == state));
        }
    }
    w.end();
}

fn process(w: &mut Writer, report: &StatsReport) {
    let i = &report.info;
    w.family(
        "halb_build_info",
        Kind::Gauge,
        "Build information: always 1, the version as a label.",
    );
    w.sample("halb_build_info", &[("version", i.version)], 1);
    w.end();
    let facts: [(&str, Kind, &str, u64); 5] = [
        (
            "halb_process_uptime_seconds",
            Kind::Gauge,
            "Seconds since the process started.",
            i.uptime_secs,
        ),
        (
            "halb_process_generation",
            Kind::Gauge,
            "Generation of the configuration snapshot in force.",
            i.generation,
        ),
        (
            "halb_process_reloads_total",
            Kind::Counter,
            "Successful configuration reloads since start.",
            i.reloads,
        ),
        (
            "halb_process_current_connections",
            Kind::Gauge,
            "Client connections open now (all frontends).",
            i.current_connections,
        ),
        (
            "halb_process_shards",
            Kind::Gauge,
            "Data-plane shards.",
            i.shards as u64,
        ),
    ];
    for (name, kind, help, value) in facts {
        w.family(name, kind, help);
        w.sample(name, &[], value);
        w.end();
    }
}
