//! The stats report: everything the stats page, `;csv`, `;json`, `/metrics` and
//! `halb ctl show servers` display, merged from every shard's counters and the control
//! thread's health state. Built by the control thread on request; rendered by
//! [`crate::stats::render`].

use std::net::SocketAddr;

use serde::Serialize;

/// Traffic counters of a frontend, a backend or a server (sums over the shards).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Sessions open now (frontend: client connections; backend/server: connections in
    /// `tcp` mode, requests in flight in `http` mode).
    pub current_sessions: u64,
    /// Highest `current_sessions` seen on any one shard, summed over shards (an upper
    /// bound of the true maximum).
    pub max_sessions: u64,
    /// Sessions since start (or since the item appeared).
    pub total_sessions: u64,
    /// Bytes received from clients (frontend) / sent to servers (backend, server).
    pub bytes_in: u64,
    /// Bytes sent to clients (frontend) / received from servers (backend, server).
    pub bytes_out: u64,
    /// HTTP requests (frontend: received; backend/server: forwarded). 0 in `tcp` mode.
    pub http_requests: u64,
    /// HTTP responses by status class: `[1xx, 2xx, 3xx, 4xx, 5xx, other]` (frontend:
    /// sent to clients, including halb's own error pages; backend/server: received from
    /// servers).
    pub http_responses: [u64; 6],
    /// Requests denied by `http_request` rules (frontend).
    pub denied: u64,
    /// Bad requests from clients (frontend): 4xx answered by halb itself for a malformed
    /// or timed-out request.
    pub request_errors: u64,
    /// Failed connection attempts to servers (backend, server).
    pub connection_errors: u64,
    /// Invalid, missing or timed-out server responses (backend, server).
    pub response_errors: u64,
    /// Connection attempts retried (backend, server).
    pub retries: u64,
    /// Retries that went to another server than the failed one (backend, server).
    pub redispatches: u64,
    /// Requests or connections waiting for a server slot now (always 0: halb does not
    /// queue; kept for HAProxy-compatible output).
    pub queue: u64,
    /// TLS handshakes completed on the frontend's `tls` listeners (frontend).
    pub tls_handshakes: u64,
    /// Of those, resumed sessions (tickets or the session cache) (frontend).
    pub tls_resumed: u64,
    /// Client TLS handshakes that failed or timed out (frontend).
    pub tls_handshake_failures: u64,
}

/// Health and administrative state of a server as displayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerState {
    /// Healthy (or not checked) and ready.
    Up,
    /// UP, but the last checks failed (fewer than `fall` of them): still takes traffic.
    GoingDown,
    /// Failed `fall` checks (or marked down by live-traffic errors): takes no traffic.
    Down,
    /// DOWN, but the last checks passed (fewer than `rise` of them): takes no traffic yet.
    GoingUp,
    /// Administratively in maintenance: takes no traffic at all.
    Maint,
    /// Administratively draining: keeps its connections and persistent clients, takes
    /// no new ones.
    Drain,
}

impl ServerState {
    /// The displayed word: `UP`, `GOING_DOWN`, `DOWN`, `GOING_UP`, `MAINT`, `DRAIN`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Up => "UP",
            ServerState::GoingDown => "GOING_DOWN",
            ServerState::Down => "DOWN",
            ServerState::GoingUp => "GOING_UP",
            ServerState::Maint => "MAINT",
            ServerState::Drain => "DRAIN",
        }
    }
}

/// One server's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerReport {
    /// Server name.
    pub name: String,
    /// Address traffic goes to.
    pub address: SocketAddr,
    /// State as displayed (administrative state first, then health).
    pub state: ServerState,
    /// Administrative state: `ready`, `drain` or `maint`.
    pub admin: &'static str,
    /// Whether the server is health-checked.
    pub checked: bool,
    /// `backup = true`.
    pub backup: bool,
    /// Weight set by the configuration or the admin API.
    pub weight: u32,
    /// Weight in force now (0 when not usable; ramps during slow start).
    pub effective_weight: u32,
    /// Result of the last check, e.g. `L7 status 200 in 1 ms` (`None`: not checked yet,
    /// or not checked at all).
    pub last_check: Option<String>,
    /// Why the state last changed, e.g. `L4 connect refused`, `L7 status 503`,
    /// `timeout after 2s`, `set to maint by admin`.
    pub reason: String,
    /// Seconds since the state last changed.
    pub last_change_secs: u64,
    /// Seconds spent DOWN (or MAINT) since start, the current stretch included.
    pub downtime_secs: u64,
    /// Checks that failed since start.
    pub check_failures: u64,
    /// UP → DOWN transitions since start.
    pub down_transitions: u64,
    /// Traffic counters.
    pub counters: Counters,
}

/// One backend: its own counters and its servers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendReport {
    /// Backend name.
    pub name: String,
    /// `tcp` or `http`.
    pub mode: &'static str,
    /// Balancing algorithm as configured, e.g. `roundrobin`.
    pub balance: String,
    /// Servers able to take new traffic now (primary + backup).
    pub usable_servers: usize,
    /// Traffic counters of the backend.
    pub counters: Counters,
    /// Servers in declaration order.
    pub servers: Vec<ServerReport>,
}

/// One frontend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontendReport {
    /// Frontend name.
    pub name: String,
    /// `tcp` or `http`.
    pub mode: &'static str,
    /// Listen addresses.
    pub bind: Vec<SocketAddr>,
    /// Connection limit.
    pub maxconn: u32,
    /// Traffic counters.
    pub counters: Counters,
}

/// Process-level facts shown at the top of the page and by `halb ctl show info`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessInfo {
    /// `halb`.
    pub name: &'static str,
    /// Package version.
    pub version: &'static str,
    /// Process id.
    pub pid: u32,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Snapshot generation in force.
    pub generation: u64,
    /// Configuration file in force.
    pub config: String,
    /// Successful reloads since start.
    pub reloads: u64,
    /// Data-plane shards.
    pub shards: usize,
    /// Client connections open now (all frontends).
    pub current_connections: u64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsReport {
    /// Process facts.
    pub info: ProcessInfo,
    /// Frontends, sorted by name.
    pub frontends: Vec<FrontendReport>,
    /// Backends, sorted by name.
    pub backends: Vec<BackendReport>,
    /// VRRP instances, sorted by name (empty without `[vrrp.*]`).
    pub vrrp: Vec<crate::control::vrrp::InstanceReport>,
}
