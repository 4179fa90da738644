//! The typed, validated configuration model.
//!
//! Everything the runtime reads comes from these types; they are built only by
//! [`crate::config::load`] / [`crate::config::parse`], which have already checked every
//! cross-reference (a frontend's backend exists, modes agree, server names are unique...).
//! Durations are [`std::time::Duration`], addresses are [`std::net::SocketAddr`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A whole configuration file, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this configuration was read from (or a label such as `<demo>`).
    pub source: PathBuf,
    /// `[global]`: process-wide settings.
    pub global: Global,
    /// `[defaults]`: values inherited by every frontend and backend.
    pub defaults: Defaults,
    /// `[frontend.NAME]` sections, sorted by name.
    pub frontends: Vec<Frontend>,
    /// `[backend.NAME]` sections, sorted by name.
    pub backends: Vec<Backend>,
}

impl Config {
    /// Index of the backend called `name`, if any.
    pub fn backend_index(&self, name: &str) -> Option<usize> {
        self.backends.iter().position(|b| b.name == name)
    }
}

/// `shards = "auto" | N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardCount {
    /// Every core but the control core (at least one).
    Auto,
    /// Exactly this many shards (1..=number of cores).
    Fixed(usize),
}

/// `control_core = "auto" | "shared" | N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlCore {
    /// The last core when there are more cores than shards, otherwise shared.
    Auto,
    /// The control thread is not pinned and shares cores with the shards.
    Shared,
    /// Pin the control thread to this core.
    Core(usize),
}

/// `log = "stderr" | "file:/path"` (`"syslog"` is accepted by name only once it lands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Log lines go to standard error.
    Stderr,
    /// Log lines are appended to this file.
    File(PathBuf),
}

/// `[global]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// Number of data-plane shards.
    pub shards: ShardCount,
    /// Where the control thread runs.
    pub control_core: ControlCore,
    /// Connection limit of the process; `None` = derived from RLIMIT_NOFILE at startup.
    /// Enforced per shard as ceil(maxconn / shards): a shard at its share stops accepting
    /// (new connections wait in its listen backlog) even if another shard has room.
    pub maxconn: Option<u32>,
    /// Drop to this user after binding (optional).
    pub user: Option<String>,
    /// Drop to this group after binding (optional).
    pub group: Option<String>,
    /// Where connection logs go.
    pub log: LogTarget,
    /// Path of the admin Unix socket (used once the admin API lands).
    pub admin_socket: Option<PathBuf>,
    /// On SIGTERM/SIGINT, how long connections in flight may drain before the process
    /// exits anyway (`hard_stop_after`, as in HAProxy). Default 30 s.
    pub hard_stop_after: Duration,
    /// Pipes kept per shard for zero-copy splicing (`maxpipes`). Default: 1024.
    pub maxpipes: u32,
    /// Pipe buffer size in bytes (`pipesize`, F_SETPIPE_SZ); `None` = kernel default (64 KiB).
    pub pipesize: Option<u32>,
}

/// `mode = "tcp" | "http"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Layer 4: bytes are forwarded as they are.
    Tcp,
    /// Layer 7: HTTP/1 (rejected as "not supported yet" until L7 lands).
    Http,
}

/// `[defaults.timeouts]` (and per-section `timeouts` overrides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Max time to establish a connection to a server. Default 5 s.
    pub connect: Duration,
    /// Max inactivity on the client side. Default 1 min.
    pub client: Duration,
    /// Max inactivity on the server side. Default 1 min.
    pub server: Duration,
    /// Max time for a whole HTTP request head (L7). Default 10 s.
    pub http_request: Duration,
    /// Max idle time between two HTTP requests (L7). Default 10 s.
    pub http_keep_alive: Duration,
    /// Max inactivity of a tunnel (WebSocket, CONNECT-like). Default 1 h.
    pub tunnel: Duration,
    /// Health check timeout. Default 2 s.
    pub check: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            client: Duration::from_secs(60),
            server: Duration::from_secs(60),
            http_request: Duration::from_secs(10),
            http_keep_alive: Duration::from_secs(10),
            tunnel: Duration::from_secs(3600),
            check: Duration::from_secs(2),
        }
    }
}

/// `[defaults]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// Default mode of frontends and backends. Default `tcp`.
    pub mode: Mode,
    /// Connection attempts after the first failed one. Default 3.
    pub retries: u32,
    /// Retry on another server instead of the same one. Default true.
    pub redispatch: bool,
    /// Default timeouts.
    pub timeouts: Timeouts,
}

/// `[frontend.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Frontend {
    /// Section name.
    pub name: String,
    /// Addresses to listen on (`":port"` expands to `0.0.0.0:port` and `[::]:port`).
    pub bind: Vec<SocketAddr>,
    /// Mode (from the section or `[defaults]`).
    pub mode: Mode,
    /// Connection limit of this frontend; excess waits in the backlog. Enforced per shard
    /// as ceil(maxconn / shards), like `global.maxconn`.
    pub maxconn: u32,
    /// Listen backlog. Default: maxconn, capped at 65535.
    pub backlog: u32,
    /// Name of the backend used when no rule matches.
    pub default_backend: String,
    /// Index of `default_backend` in [`Config::backends`].
    pub default_backend_index: usize,
    /// Timeouts (defaults merged with this section's `timeouts`); `client` applies here.
    pub timeouts: Timeouts,
}

/// `balance = ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    /// Smooth weighted round robin, weights may change at run time.
    RoundRobin,
    /// Static weighted round robin.
    StaticRr,
    /// Fewest active connections (weighted, per shard).
    LeastConn,
    /// Hash of the client IP address.
    Source,
    /// First server with a free slot (by declaration order).
    First,
}

/// `hash_type = "map-based" | "consistent"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashType {
    /// hash modulo the total weight: cheap, but moves most keys when servers change.
    MapBased,
    /// Hash ring: removing a server moves only that server's keys.
    Consistent,
}

/// `[backend.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    /// Section name.
    pub name: String,
    /// Mode (from the section or `[defaults]`).
    pub mode: Mode,
    /// Load-balancing algorithm. Default roundrobin.
    pub balance: Balance,
    /// Hash placement for hashing balancers. Default map-based.
    pub hash_type: HashType,
    /// Connection attempts after the first failed one.
    pub retries: u32,
    /// Retry on another server.
    pub redispatch: bool,
    /// Timeouts (defaults merged with this section's `timeouts`); `connect`, `server` apply.
    pub timeouts: Timeouts,
    /// Zero-copy splice for L4 forwarding. Default true; false forces the copy path.
    pub splice: bool,
    /// Servers, in declaration order.
    pub servers: Vec<Server>,
}

/// `[[backend.NAME.server]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Server name, unique within its backend.
    pub name: String,
    /// Address to connect to.
    pub address: SocketAddr,
    /// Weight 0..=256 (0 = receives no new traffic). Default 1.
    pub weight: u32,
    /// Used only when no primary server is usable.
    pub backup: bool,
    /// Administratively disabled: receives nothing.
    pub disabled: bool,
}
