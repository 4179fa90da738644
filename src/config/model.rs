//! The typed, validated configuration model.
//!
//! Everything the runtime reads comes from these types; they are built only by
//! [`crate::config::load`] / [`crate::config::parse`], which have already checked every
//! cross-reference (a frontend's backend exists, modes agree, server names are unique...).
//! Durations are [`std::time::Duration`], addresses are [`std::net::SocketAddr`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::http::acl::{AclSet, Condition};
use crate::http::cookie::CookiePersistence;
use crate::http::errors::ErrorPages;
use crate::http::rewrite::{Forwarding, HeaderRule};

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
    /// `[stats]`: the stats page listener (`None` = no stats page).
    pub stats: Option<Stats>,
    /// `[vrrp.NAME]` instances (virtual routers), sorted by name.
    pub vrrp: Vec<VrrpInstance>,
    /// Problems that do not make the configuration invalid (an expired certificate...),
    /// in file order; `halb check` prints them.
    pub warnings: Vec<crate::config::Diagnostic>,
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
    /// Path of the admin Unix socket (`halb ctl`); `None` = no admin socket.
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
    /// Layer 7: HTTP/1 reverse proxy.
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
    /// Name of the backend used when no `use_backend` rule matches. Required in `tcp`
    /// mode; optional in `http` mode, where a request no rule routes gets a 404.
    pub default_backend: Option<String>,
    /// Index of `default_backend` in [`Config::backends`].
    pub default_backend_index: Option<usize>,
    /// Timeouts (defaults merged with this section's `timeouts`); `client` applies here,
    /// and in `http` mode `http_request` and `http_keep_alive`.
    pub timeouts: Timeouts,
    /// Everything specific to `mode = "http"` (`None` in `tcp` mode).
    pub http: Option<Arc<HttpFrontend>>,
    /// `tls = { ... }`: TLS termination on a second set of listeners (`None` = no TLS).
    pub tls: Option<Arc<FrontendTls>>,
}

/// `tls = { bind, certs, alpn, min_version, session_cache, session_tickets }` of a
/// frontend: TLS termination on listeners of their own; behind the handshake the
/// connections are served exactly like those of `bind`.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontendTls {
    /// `bind`: addresses of the TLS listeners (same forms as the frontend's `bind`, never
    /// one of another listener's).
    pub bind: Vec<SocketAddr>,
    /// `certs`: the certificate files, loaded and checked; the first is the default (for
    /// clients without SNI or with an unknown name). At least one.
    pub certs: Vec<Arc<crate::tls::certs::Certificate>>,
    /// `alpn`: protocols offered by ALPN, in preference order. Default `["http/1.1"]` in
    /// mode http, none in mode tcp.
    pub alpn: Vec<String>,
    /// `min_version`: the oldest TLS version accepted ("1.2" or "1.3"). Default 1.2.
    pub min_version: TlsVersion,
    /// `session_cache`: sessions kept per shard for stateful resumption (HAProxy's
    /// `tune.ssl.cachesize`); 0 = no cache. Default 20000.
    pub session_cache: u32,
    /// `session_tickets`: resumption by tickets (keys shared by the frontend's shards,
    /// rotated every 6 hours). Default true.
    pub session_tickets: bool,
}

/// A TLS protocol version (`min_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

impl TlsVersion {
    /// As written in the configuration: `"1.2"`, `"1.3"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }
}

/// `tls = true` on a server, with `verify`, `ca_file` and `sni`: halb connects to it with
/// TLS.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerTls {
    /// `verify` (and `ca_file`): how the server's certificate is checked. Default
    /// `"required"`, which needs `ca_file`.
    pub verify: TlsVerify,
    /// `sni`: the server name sent in the handshake and checked against the server's
    /// certificate. Default none: no SNI is sent, and with `verify = "required"` the
    /// certificate must name the server's IP address.
    pub sni: Option<String>,
}

/// `verify = "required" | "none"` of a TLS server.
#[derive(Debug, Clone, PartialEq)]
pub enum TlsVerify {
    /// `"required"`: the certificate must chain to a CA of `ca_file` and name the server
    /// (`sni`, else its IP address).
    Required(Arc<crate::tls::certs::CaBundle>),
    /// `"none"`: any certificate is accepted (encryption without authentication:
    /// insecure against an active attacker, like HAProxy's `verify none`).
    None,
}

/// The L7 part of an `http` frontend, compiled when the configuration is loaded (ACLs,
/// regexes, header rules, error pages): the proxy only evaluates it.
#[derive(Debug, Clone, Default)]
pub struct HttpFrontend {
    /// `[frontend.NAME.acl]`: named ACLs (HAProxy syntax).
    pub acls: AclSet,
    /// `[[frontend.NAME.http_request]]`, in order.
    pub request_rules: Vec<RequestRule>,
    /// `[[frontend.NAME.http_response]]`, in order (header rules on responses).
    pub response_rules: Vec<ResponseRule>,
    /// `[[frontend.NAME.use_backend]]`, in order: the first whose condition holds wins.
    pub use_backends: Vec<UseBackend>,
    /// `forwardfor`, `x_forwarded_proto`, `x_forwarded_port`, `forwarded`.
    pub forwarding: Forwarding,
    /// `max_request_head` (→ 431), `max_request_line` (→ 414), `max_headers` (→ 431).
    pub limits: crate::http::Limits,
    /// `max_body_size`: largest request body accepted (→ 413); `None` = unlimited.
    pub max_body_size: Option<u64>,
    /// Error pages, with `errorfile = { STATUS = "/path" }` replacements.
    pub errors: ErrorPages,
}

/// Compiled ACLs and regexes have no useful equality: two frontends compare equal when
/// their rule texts do (enough for config tests).
impl PartialEq for HttpFrontend {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

/// One `[[frontend.NAME.http_request]]` rule.
#[derive(Debug, Clone)]
pub struct RequestRule {
    /// What the rule does.
    pub action: RequestAction,
    /// `if = "..."` / `unless = "..."`; `None` = always.
    pub condition: Option<Condition>,
}

/// The action of an `http_request` rule.
#[derive(Debug, Clone)]
pub enum RequestAction {
    /// `redirect = "scheme https" | "location URL" | "prefix /p"`, `code = 301..308`.
    Redirect(Redirect),
    /// `deny = STATUS` (default 403): answer with that error page and close.
    Deny(u16),
    /// `set_header`, `add_header`, `del_header` on the forwarded request.
    Header(HeaderRule),
}

/// A `redirect` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// What the `Location` is built from.
    pub kind: RedirectKind,
    /// 301, 302 (default), 303, 307 or 308.
    pub code: u16,
}

/// The three HAProxy redirect forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectKind {
    /// `scheme https`: same host and target, new scheme.
    Scheme(String),
    /// `location URL`: exactly this URL.
    Location(String),
    /// `prefix /p`: the prefix followed by the original target.
    Prefix(String),
}

/// One `[[frontend.NAME.http_response]]` header rule.
#[derive(Debug, Clone)]
pub struct ResponseRule {
    /// `set_header`, `add_header` or `del_header`.
    pub rule: HeaderRule,
    /// Evaluated on the request that the response answers; `None` = always.
    pub condition: Option<Condition>,
}

/// One `[[frontend.NAME.use_backend]]` rule.
#[derive(Debug, Clone)]
pub struct UseBackend {
    /// Backend name.
    pub backend: String,
    /// Index of the backend in [`Config::backends`].
    pub backend_index: usize,
    /// `if`/`unless` condition.
    pub condition: Condition,
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
    /// `uri [whole] [len N] [depth N]` (http only): hash of the request target.
    Uri(UriHashOptions),
    /// `url_param(name)` (http only): hash of a query parameter, round robin without it.
    UrlParam(String),
    /// `hdr(name)` (http only): hash of a request header, round robin without it.
    Hdr(String),
}

/// Options of `balance = "uri ..."` (HAProxy's `whole`, `len`, `depth`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UriHashOptions {
    /// Hash the whole target, query string included (default: up to the first `?`).
    pub whole: bool,
    /// Hash at most this many characters; 0 = no limit.
    pub len: u32,
    /// Hash at most this many directories (`/`-separated levels); 0 = no limit.
    pub depth: u32,
}

/// `http_reuse = "safe" | "always" | "never"`: which requests may go on an idle pooled
/// backend connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpReuse {
    /// Idempotent requests reuse idle connections; others get a fresh one (so a request
    /// that cannot be replayed never meets a connection the server may just have closed).
    Safe,
    /// Every request may reuse (a non-idempotent request that meets a stale connection
    /// gets a 502).
    Always,
    /// No pooling: like `http_server_close`.
    Never,
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
    /// `cookie = { name, mode, ... }` persistence (http only), with the servers' values.
    pub cookie: Option<CookiePersistence>,
    /// `http_server_close`: close the backend connection after each response (no pool).
    pub http_server_close: bool,
    /// `http_reuse`: which requests may use a pooled idle connection. Default safe.
    pub http_reuse: HttpReuse,
    /// `pool_max_idle`: idle backend connections kept per server and per shard. Default 64.
    pub pool_max_idle: u32,
    /// `pool_idle_timeout`: an idle pooled connection older than this is closed. Default 30 s.
    pub pool_idle_timeout: Duration,
    /// `check = { ... }`: the backend's health-check settings, used by servers with
    /// `check = true` and overridden key by key by a server's `check = { ... }`.
    pub check: Option<Check>,
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
    /// `cookie = "value"`: this server's persistence cookie value (http backends).
    pub cookie: Option<String>,
    /// `check = true | { ... }`: the resolved health check (the backend's `check` with this
    /// server's overrides); `None` = not checked, the server is always considered UP.
    pub check: Option<Check>,
    /// `slowstart = "30s"`: after coming back UP, the server's effective weight ramps from
    /// ~0 to `weight` over this long. `None` = full weight at once.
    pub slowstart: Option<Duration>,
    /// `tls = true` (with `verify`, `ca_file`, `sni`): connect to the server with TLS.
    /// `None` = plain TCP.
    pub tls: Option<ServerTls>,
}

/// `check = { type = "tcp" | "http", ... }`: how and how often a server is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `type`: a TCP connect, or an HTTP request whose answer is matched.
    pub kind: CheckKind,
    /// `inter`: time between two checks of a server that is steadily UP. Default 2 s.
    pub inter: Duration,
    /// `fastinter`: time between checks while the server is changing state (going up or
    /// going down). Default `inter`.
    pub fastinter: Duration,
    /// `downinter`: time between checks of a server that is DOWN. Default `inter`.
    pub downinter: Duration,
    /// `rise`: consecutive successful checks that bring a DOWN server UP. Default 2.
    pub rise: u32,
    /// `fall`: consecutive failed checks that take an UP server DOWN. Default 3.
    pub fall: u32,
    /// `timeout`: how long one check may take (connect + answer). Default
    /// `timeouts.check` (2 s).
    pub timeout: Duration,
    /// `port`: check this port instead of the server's.
    pub port: Option<u16>,
    /// `address`: check this IP address instead of the server's.
    pub address: Option<std::net::IpAddr>,
    /// `observe = "layer4" | "layer7"`: also watch live traffic; `error_limit`
    /// consecutive errors mark the server DOWN like failed checks. `None` = off.
    pub observe: Option<Observe>,
    /// `error_limit`: consecutive live-traffic errors (per shard) that mark the server
    /// DOWN when `observe` is on. Default 10.
    pub error_limit: u32,
    /// `on_marked_down = "shutdown-sessions"`: when the server goes DOWN, close the
    /// connections it still has. Default false (they finish).
    pub shutdown_sessions_on_down: bool,
}

impl Check {
    /// Where the check connects for a server at `server`: `address`/`port` override it.
    pub fn target(&self, server: SocketAddr) -> SocketAddr {
        SocketAddr::new(
            self.address.unwrap_or(server.ip()),
            self.port.unwrap_or(server.port()),
        )
    }
}

/// The kind of a health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// `type = "tcp"`: the server is UP when a TCP connection is accepted.
    Tcp,
    /// `type = "http"`: the server is UP when it answers an HTTP request as expected.
    Http(HttpCheck),
}

/// An HTTP health check: the request sent and what the answer must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// `method`. Default `GET`.
    pub method: String,
    /// `path` (the request target). Default `/`.
    pub path: String,
    /// `host`: the `Host` header. Default: the checked address.
    pub host: Option<String>,
    /// `expect_status = [200, "300-399"]`: accepted statuses as inclusive ranges.
    /// Default 200-399.
    pub expect_status: Vec<(u16, u16)>,
    /// `expect_body`: a substring the first 16 KiB of the body must contain.
    pub expect_body: Option<String>,
}

impl HttpCheck {
    /// Whether `status` is an expected one.
    pub fn status_ok(&self, status: u16) -> bool {
        self.expect_status
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

/// `observe = "layer4" | "layer7"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observe {
    /// Connection failures to the server count as errors.
    Layer4,
    /// Connection failures, invalid responses and 5xx statuses count as errors.
    Layer7,
}

/// `[stats]`: the stats page (HTML, `;csv`, `;json`) and `/metrics` (Prometheus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// `bind`: address of the stats listener (served by the control thread).
    pub bind: SocketAddr,
    /// `uri`: path of the HTML page; `URI;csv` and `URI;json` serve the same data.
    /// Default `/stats`. `/metrics` is always served.
    pub uri: String,
    /// `auth = { user, password }`: HTTP basic authentication; `None` = open.
    pub auth: Option<StatsAuth>,
    /// `admin`: allow POST actions (server ready/drain/maint, weight). Requires `auth`.
    pub admin: bool,
    /// `refresh`: the HTML page reloads itself this often. Default 5 s.
    pub refresh: Duration,
}

/// `auth = { user = "...", password = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsAuth {
    /// User name.
    pub user: String,
    /// Password (compared in constant time).
    pub password: String,
}

/// `[vrrp.NAME]`: one VRRP instance (a virtual router) — the Keepalived half of halb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance {
    /// The section name (`VI_1`, `R1`...).
    pub name: String,
    /// `interface`: where the adverts go and the virtual addresses are added.
    pub interface: String,
    /// `virtual_router_id`: 1..=255, the same on every box of this virtual router.
    pub virtual_router_id: u8,
    /// `priority`: 1..=254; 255 = the address owner. Default 100.
    pub priority: u8,
    /// `advert_int`: the advertisement interval. Default 1 s. VRRPv3: 10 ms..=40.95 s in
    /// steps of 10 ms; VRRPv2: whole seconds, 1..=255.
    pub advert_int: Duration,
    /// `version`: 3 (RFC 5798, default) or 2 (RFC 3768, IPv4 only).
    pub version: VrrpVersion,
    /// `nopreempt`: a higher-priority backup does not take over from a live master.
    pub nopreempt: bool,
    /// `preempt_delay`: after startup, preemption waits this long. Default 0.
    pub preempt_delay: Duration,
    /// `auth_pass`: the VRRPv2 simple password (1..=8 bytes); VRRPv2 only.
    pub auth_pass: Option<String>,
    /// `virtual_ipaddress`: the addresses this instance moves (`"10.0.0.100/24"`; without
    /// a prefix length, /32 or /128). All of one family; IPv4 only with VRRPv2.
    pub virtual_ipaddress: Vec<VirtualAddress>,
    /// `unicast_peers`: send adverts to these addresses instead of the multicast group
    /// (224.0.0.18 / ff02::12). Empty = multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// `track_proxy = { weight, backends }`: lower (or raise) the priority while this
    /// box's own proxy is unhealthy.
    pub track_proxy: Option<TrackProxy>,
    /// `track_script = [{ script, interval, timeout, weight, rise, fall }]`.
    pub track_script: Vec<TrackScript>,
    /// `track_interface = ["eth1"]`: any of these links down puts the instance in FAULT.
    pub track_interface: Vec<String>,
    /// `sync_group`: instances with the same group name change state together.
    pub sync_group: Option<String>,
    /// `notify_master`: command run (not waited for) on becoming MASTER.
    pub notify_master: Option<Vec<String>>,
    /// `notify_backup`: command run on becoming BACKUP.
    pub notify_backup: Option<Vec<String>>,
    /// `notify_fault`: command run on entering FAULT.
    pub notify_fault: Option<Vec<String>>,
    /// `notify_stop`: command run when the instance stops (halb shutting down).
    pub notify_stop: Option<Vec<String>>,
    /// `notify`: command run on every change, with `INSTANCE NAME STATE PRIORITY`
    /// appended, as Keepalived's `notify` does.
    pub notify: Option<Vec<String>>,
    /// `garp_master_repeat`: gratuitous ARPs / unsolicited NAs per address in each burst
    /// on becoming master. Default 5.
    pub garp_master_repeat: u32,
    /// `garp_master_delay`: a second burst this long after becoming master (0 = none).
    /// Default 5 s.
    pub garp_master_delay: Duration,
    /// `garp_master_refresh`: while master, announce again this often (`None` = never).
    pub garp_master_refresh: Option<Duration>,
}

impl VrrpInstance {
    /// Whether the instance speaks IPv6 (its virtual addresses are IPv6).
    pub fn ipv6(&self) -> bool {
        self.virtual_ipaddress
            .first()
            .is_some_and(|a| a.address.is_ipv6())
    }
}

/// `version = 2 | 3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpVersion {
    /// RFC 3768: IPv4, intervals in whole seconds, optional simple password.
    V2,
    /// RFC 5798: IPv4 and IPv6, intervals in centiseconds.
    V3,
}

/// One entry of `virtual_ipaddress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualAddress {
    /// The address.
    pub address: IpAddr,
    /// Its prefix length on the interface.
    pub prefix: u8,
}

impl std::fmt::Display for VirtualAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// `track_proxy = { weight = -50, backends = ["app"] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackProxy {
    /// Added to the priority while the proxy is unhealthy when negative (healthy when
    /// positive); 0 = FAULT while unhealthy.
    pub weight: i32,
    /// The backends that must each have a usable server (`backends`); empty = every
    /// backend a frontend uses.
    pub backends: Vec<String>,
}

/// One `track_script` entry: a command whose exit status tracks health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    /// `script`: the command line (an absolute path and its arguments, split on spaces).
    pub script: Vec<String>,
    /// `interval`: how often it runs. Default 1 s.
    pub interval: Duration,
    /// `timeout`: a run still going after this long is killed and counts as a failure.
    /// Default: `interval`.
    pub timeout: Duration,
    /// `weight`: as in [`TrackProxy::weight`]. Default 0 (FAULT while failing).
    pub weight: i32,
    /// `rise`: successes in a row that make it healthy again. Default 1.
    pub rise: u32,
    /// `fall`: failures in a row that make it failing. Default 1.
    pub fall: u32,
}
