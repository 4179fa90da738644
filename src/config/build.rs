//! Converting a parsed document into the model: every section, every key, its default,
//! and the checks that need more than one key (references, modes, duplicates).
//!
//! Conversion never stops at the first problem: a bad value is reported and replaced by
//! its default so that the rest of the file is still checked. The caller discards the
//! [`Config`] when anything was reported.

use std::collections::HashMap;
use std::io::Read as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml_edit::{Table, TableLike, Value};

use super::model::*;
use super::reader::{describe, join, Field, Node, Reader, Spec};
use super::suggest;
use super::value::{
    check_host_header, check_method, check_name, check_request_path, check_stats_uri,
    parse_bind_address, parse_check_address, parse_http_balance, parse_redirect,
    parse_server_address, parse_stats_bind, parse_status_range,
};
use crate::http::acl::{AclSet, Condition};
use crate::http::cookie::{CookieError, CookieMode, CookieOptions, CookiePersistence};
use crate::http::errors::{ErrorPages, MAX_ERRORFILE, STATUSES};
use crate::http::rewrite::{
    parse_except, ForwardFor, ForwardedParams, Forwarding, HeaderRule, RewriteError,
};

mod vrrp;
use crate::http::Limits;

/// Frontend `maxconn` when neither the frontend nor `[global]` sets one.
pub const DEFAULT_FRONTEND_MAXCONN: u32 = 10_000;
/// Largest default listen backlog (a frontend's backlog defaults to its maxconn, capped).
pub const MAX_DEFAULT_BACKLOG: u32 = 65_535;
/// Default `[defaults] retries`.
pub const DEFAULT_RETRIES: u32 = 3;
/// Largest accepted `retries`.
pub const MAX_RETRIES: u32 = 100;
/// Default `[global] hard_stop_after`.
pub const DEFAULT_HARD_STOP_AFTER: Duration = Duration::from_secs(30);
/// Default `[global] maxpipes`.
pub const DEFAULT_MAXPIPES: u32 = 1024;
/// Largest accepted `maxpipes`.
pub const MAX_MAXPIPES: u32 = 1 << 20;
/// Accepted `pipesize` range in bytes (one page .. 1 GiB).
pub const PIPESIZE_RANGE: (u32, u32) = (4096, 1 << 30);
/// Largest accepted shard count and control core number + 1 (glibc's CPU_SETSIZE).
pub const MAX_CORES: u32 = 1024;
/// Largest server weight.
pub const MAX_WEIGHT: u32 = 256;

/// Idle pooled connections kept per server and per shard, by default.
pub const DEFAULT_POOL_MAX_IDLE: u32 = 64;
/// How long an idle pooled backend connection is kept, by default.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest accepted `pool_max_idle`.
pub const MAX_POOL_MAX_IDLE: u32 = 100_000;
/// Accepted `max_request_head` range in bytes (default: [`Limits::default`], 16 KiB).
pub const REQUEST_HEAD_RANGE: (u32, u32) = (1024, 1 << 20);
/// Smallest accepted `max_request_line` in bytes (the largest is `max_request_head`).
pub const MIN_REQUEST_LINE: u32 = 256;
/// Largest accepted `max_headers`.
pub const MAX_HEADERS: u32 = 1000;
/// Default `tls.session_cache` of a frontend (HAProxy's `tune.ssl.cachesize`).
pub const DEFAULT_SESSION_CACHE: u32 = 20_000;
/// Largest accepted `tls.session_cache`.
pub const MAX_SESSION_CACHE: u32 = 10_000_000;
/// The ALPN protocols an http frontend may offer: halb speaks HTTP/1.
pub const HTTP_ALPN: [&str; 2] = ["http/1.1", "http/1.0"];
/// The status codes a `redirect` rule may use.
pub const REDIRECT_CODES: [u16; 5] = [301, 302, 303, 307, 308];

/// Default `check.inter` (and so of `fastinter` and `downinter`).
pub const DEFAULT_CHECK_INTER: Duration = Duration::from_secs(2);
/// Default `check.rise`.
pub const DEFAULT_CHECK_RISE: u32 = 2;
/// Default `check.fall`.
pub const DEFAULT_CHECK_FALL: u32 = 3;
/// Default `check.error_limit`.
pub const DEFAULT_CHECK_ERROR_LIMIT: u32 = 10;
/// Default `check.expect_status`: 200-399.
pub const DEFAULT_CHECK_EXPECT_STATUS: (u16, u16) = (200, 399);
/// How much of a check response's body `expect_body` is looked for in (16 KiB): a longer
/// `expect_body` could never match.
pub const CHECK_BODY_WINDOW: usize = 16 * 1024;
/// Default `[stats] uri`.
pub const DEFAULT_STATS_URI: &str = "/stats";
/// Default `[stats] refresh`.
pub const DEFAULT_STATS_REFRESH: Duration = Duration::from_secs(5);

const ROOT: Spec = Spec {
    section: "at the top level",
    keys: &["global", "defaults", "frontend", "backend", "stats", "vrrp"],
    later: &[],
};
const GLOBAL: Spec = Spec {
    section: "[global]",
    keys: &[
        "shards",
        "control_core",
        "maxconn",
        "user",
        "group",
        "log",
        "admin_socket",
        "hard_stop_after",
        "maxpipes",
        "pipesize",
    ],
    later: &[],
};
const DEFAULTS: Spec = Spec {
    section: "[defaults]",
    keys: &["mode", "retries", "redispatch", "timeouts"],
    later: &[],
};
/// The keys of `[frontend.NAME]` that only `mode = "http"` accepts.
const HTTP_FRONTEND_KEYS: [&str; 13] = [
    "acl",
    "http_request",
    "http_response",
    "use_backend",
    "forwardfor",
    "x_forwarded_proto",
    "x_forwarded_port",
    "forwarded",
    "max_request_head",
    "max_request_line",
    "max_headers",
    "max_body_size",
    "errorfile",
];
const FRONTEND: Spec = Spec {
    section: "[frontend.NAME]",
    keys: &[
        "bind",
        "mode",
        "maxconn",
        "backlog",
        "default_backend",
        "timeouts",
        "acl",
        "http_request",
        "http_response",
        "use_backend",
        "forwardfor",
        "x_forwarded_proto",
        "x_forwarded_port",
        "forwarded",
        "max_request_head",
        "max_request_line",
        "max_headers",
        "max_body_size",
        "errorfile",
        "tls",
    ],
    later: &[],
};
/// `tls = { ... }` of a frontend.
const FRONTEND_TLS: Spec = Spec {
    section: "in the tls table",
    keys: &[
        "bind",
        "certs",
        "alpn",
        "min_version",
        "session_cache",
        "session_tickets",
    ],
    later: &[],
};
/// The keys of `[backend.NAME]` that only `mode = "http"` accepts.
const HTTP_BACKEND_KEYS: [&str; 5] = [
    "cookie",
    "http_server_close",
    "http_reuse",
    "pool_max_idle",
    "pool_idle_timeout",
];
const BACKEND: Spec = Spec {
    section: "[backend.NAME]",
    keys: &[
        "mode",
        "balance",
        "hash_type",
        "retries",
        "redispatch",
        "splice",
        "timeouts",
        "server",
        "cookie",
        "http_server_close",
        "http_reuse",
        "pool_max_idle",
        "pool_idle_timeout",
        "check",
    ],
    later: &[],
};
const SERVER: Spec = Spec {
    section: "[[backend.NAME.server]]",
    keys: &[
        "name",
        "address",
        "weight",
        "backup",
        "disabled",
        "cookie",
        "check",
        "slowstart",
        "tls",
        "verify",
        "ca_file",
        "sni",
    ],
    later: &[("maxconn", "per-server connection limits and queueing")],
};
/// The keys of a check table that only `type = "http"` checks accept.
const HTTP_CHECK_KEYS: [&str; 5] = ["method", "path", "host", "expect_status", "expect_body"];
/// `check = { ... }` of a backend or a server.
const CHECK: Spec = Spec {
    section: "in the check table",
    keys: &[
        "type",
        "method",
        "path",
        "host",
        "expect_status",
        "expect_body",
        "inter",
        "fastinter",
        "downinter",
        "rise",
        "fall",
        "timeout",
        "port",
        "address",
        "observe",
        "error_limit",
        "on_marked_down",
    ],
    later: &[],
};
/// The keys that exist only in a check table, so that one written straight in a backend
/// or a server (HAProxy's `server web1 ... check inter 2s rise 2`) is told where it
/// belongs. (Not every check key: `timeout`, `path`, `port`... are too common.)
const CHECK_ONLY: Spec = Spec {
    section: "in the check table",
    keys: &[
        "inter",
        "fastinter",
        "downinter",
        "rise",
        "fall",
        "observe",
        "error_limit",
        "on_marked_down",
        "expect_status",
        "expect_body",
    ],
    later: &[],
};
const STATS: Spec = Spec {
    section: "[stats]",
    keys: &["bind", "uri", "auth", "admin", "refresh"],
    later: &[],
};
/// `auth = { user, password }` of `[stats]` (not in [`ALL`]: `user` is a `[global]` key).
const STATS_AUTH: Spec = Spec {
    section: "in the stats auth table",
    keys: &["user", "password"],
    later: &[],
};
/// The actions of an `http_request` rule (exactly one per rule).
const REQUEST_ACTIONS: [&str; 5] = ["redirect", "deny", "set_header", "add_header", "del_header"];
/// The actions of an `http_response` rule (exactly one per rule).
const RESPONSE_ACTIONS: [&str; 3] = ["set_header", "add_header", "del_header"];
const HTTP_REQUEST: Spec = Spec {
    section: "[[frontend.NAME.http_request]]",
    keys: &[
        "redirect",
        "code",
        "deny",
        "set_header",
        "add_header",
        "del_header",
        "if",
        "unless",
    ],
    later: &[],
};
const HTTP_RESPONSE: Spec = Spec {
    section: "[[frontend.NAME.http_response]]",
    keys: &["set_header", "add_header", "del_header", "if", "unless"],
    later: &[],
};
const USE_BACKEND: Spec = Spec {
    section: "[[frontend.NAME.use_backend]]",
    keys: &["backend", "if", "unless"],
    later: &[],
};
/// `set_header = { name, value }` / `add_header = { ... }` (not in [`ALL`]: `name` is
/// too common a key to suggest this table for it).
const HEADER: Spec = Spec {
    section: "in a set_header/add_header table",
    keys: &["name", "value"],
    later: &[],
};
const FORWARDFOR: Spec = Spec {
    section: "in the forwardfor table",
    keys: &["except"],
    later: &[],
};
const FORWARDED: Spec = Spec {
    section: "in the forwarded table",
    keys: &["proto", "by"],
    later: &[],
};
const COOKIE: Spec = Spec {
    section: "in the cookie table",
    keys: &["name", "mode", "indirect", "nocache", "httponly", "secure"],
    later: &[("maxidle", "cookie expiry"), ("maxlife", "cookie expiry")],
};
const DEFAULTS_TIMEOUTS: Spec = Spec {
    section: "[defaults.timeouts]",
    keys: &[
        "connect",
        "client",
        "server",
        "http_request",
        "http_keep_alive",
        "tunnel",
        "check",
    ],
    later: &[],
};
const FRONTEND_TIMEOUTS: Spec = Spec {
    section: "[frontend.NAME.timeouts]",
    keys: &["client", "http_request", "http_keep_alive"],
    later: &[],
};
const BACKEND_TIMEOUTS: Spec = Spec {
    section: "[backend.NAME.timeouts]",
    keys: &["connect", "server", "tunnel", "check"],
    later: &[],
};

/// Every section spec, to tell where a misplaced key belongs.
const ALL: &[&Spec] = &[
    &GLOBAL,
    &DEFAULTS,
    &DEFAULTS_TIMEOUTS,
    &FRONTEND,
    &FRONTEND_TIMEOUTS,
    &BACKEND,
    &BACKEND_TIMEOUTS,
    &SERVER,
    &HTTP_REQUEST,
    &HTTP_RESPONSE,
    &USE_BACKEND,
    &STATS,
    &vrrp::VRRP,
];
/// [`ALL`] and the check-only keys: what a backend or server table's unknown keys are
/// looked up in.
const ALL_AND_CHECK: &[&Spec] = &[
    &GLOBAL,
    &DEFAULTS,
    &DEFAULTS_TIMEOUTS,
    &FRONTEND,
    &FRONTEND_TIMEOUTS,
    &BACKEND,
    &BACKEND_TIMEOUTS,
    &SERVER,
    &HTTP_REQUEST,
    &HTTP_RESPONSE,
    &USE_BACKEND,
    &STATS,
    &vrrp::VRRP,
    &CHECK_ONLY,
];

/// Where a frontend's cross-checked keys are, for the checks run once all sections are read.
struct FrontendSite {
    /// Line and path of `default_backend` (or the header when it is missing).
    backend_line: usize,
    backend_path: String,
    /// Every expanded bind address with the line and path of its array element.
    binds: Vec<(SocketAddr, usize, String)>,
    /// The L7 part (http mode); its `use_backends` are filled in by [`cross_check`].
    http: Option<HttpFrontend>,
    /// The `use_backend` rules as read (http mode), resolved by [`cross_check`].
    use_backends: Vec<PendingUseBackend>,
}

/// A `[[frontend.NAME.use_backend]]` entry before its backend is looked up.
struct PendingUseBackend {
    /// The backend name (`None` when missing or invalid: already reported).
    backend: Option<String>,
    /// Line and path of the `backend` key (or of the entry when it is missing).
    line: usize,
    path: String,
    /// The compiled condition (`None` when missing or invalid: already reported).
    condition: Option<Condition>,
}

/// Bind addresses, each with the line and path of its array element.
type Binds = Vec<(SocketAddr, usize, String)>;

/// Builds the model from the document root, recording every problem in `r`.
pub(super) fn build(root: &Table, r: &mut Reader<'_>, source: &Path) -> Config {
    let top = Field {
        path: String::new(),
        line: 1,
        node: Node::Table(root),
    };
    r.check_keys(root, &top, &ROOT, ALL);

    let global = match section(r, root, &top, "global") {
        Some((t, f)) => global(r, t, &f),
        None => default_global(),
    };
    let defaults = match section(r, root, &top, "defaults") {
        Some((t, f)) => defaults(r, t, &f),
        None => Defaults {
            mode: Mode::Tcp,
            retries: DEFAULT_RETRIES,
            redispatch: true,
            timeouts: Timeouts::default(),
        },
    };

    let mut backends = Vec::new();
    if let Some((t, f)) = section(r, root, &top, "backend") {
        for (name, field) in named_sections(r, t, &f) {
            if let Some(table) = r.table(&field) {
                backends.push(backend(r, name, table, &field, &defaults));
            }
        }
    }
    backends.sort_by(|a, b| a.name.cmp(&b.name));

    let mut frontends = Vec::new();
    let no_frontend = "no frontend is defined: add a [frontend.NAME] section";
    match section(r, root, &top, "frontend") {
        Some((t, f)) => {
            if t.is_empty() {
                r.error(f.line, "frontend", no_frontend);
            }
            for (name, field) in named_sections(r, t, &f) {
                if let Some(table) = r.table(&field) {
                    frontends.push(frontend(r, name, table, &field, &global, &defaults));
                }
            }
        }
        // (A misspelled `[frontends.x]` already has its "did you mean".)
        None if !root.contains_key("frontend")
            && !root
                .iter()
                .any(|(k, _)| suggest::closest(k, ["frontend"]).is_some()) =>
        {
            r.error(1, "frontend", no_frontend)
        }
        None => {} // not a table: already reported
    }
    frontends.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    cross_check(r, &mut frontends, &backends);

    let mut stats_section = None;
    if let Some((t, f)) = section(r, root, &top, "stats") {
        if let Some((st, line, path)) = stats(r, t, &f) {
            check_stats_bind(r, st.bind, line, &path, &frontends);
            stats_section = Some(st);
        }
    }

    let vrrp = match section(r, root, &top, "vrrp") {
        Some((t, f)) => vrrp::instances(r, t, &f, &backends),
        None => Vec::new(),
    };
    if !vrrp.is_empty() && global.user.is_some() {
        if let Some(user) =
            section(r, root, &top, "global").and_then(|(t, f)| r.child(t, &f, "user"))
        {
            r.error(
                user.line,
                &user.path,
                "user cannot be combined with [vrrp.*]: switching user drops the CAP_NET_ADMIN and CAP_NET_RAW that VRRP needs to move addresses and send adverts; run halb as its user from the start with those capabilities (the packaged systemd unit does: User=halb, AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW)",
            );
        }
    }

    Config {
        source: PathBuf::from(source),
        global,
        defaults,
        frontends: frontends.into_iter().map(|(f, _)| f).collect(),
        backends,
        stats: stats_section,
        vrrp,
        warnings: Vec::new(),
    }
}

/// A top-level table (`global`, `defaults`, `frontend`, `backend`), type-checked.
fn section<'d>(
    r: &mut Reader<'_>,
    root: &'d Table,
    top: &Field<'_>,
    key: &str,
) -> Option<(&'d dyn TableLike, Field<'d>)> {
    let field = r.child(root, top, key)?;
    let table = r.table(&field)?;
    Some((table, field))
}

/// The `NAME` entries of `[frontend.NAME]` / `[backend.NAME]`, with valid names.
fn named_sections<'d>(
    r: &mut Reader<'_>,
    table: &'d dyn TableLike,
    parent: &Field<'_>,
) -> Vec<(String, Field<'d>)> {
    let mut out = Vec::new();
    for (name, _) in table.iter() {
        let Some(field) = r.child(table, parent, name) else {
            continue;
        };
        if let Err(msg) = check_name(name) {
            r.error(field.line, &field.path, msg);
        }
        out.push((name.to_string(), field));
    }
    out
}

/// Reads `key` of `table` with `convert` when present.
fn get<'d, T>(
    r: &mut Reader<'_>,
    table: &'d dyn TableLike,
    parent: &Field<'_>,
    key: &str,
    convert: impl FnOnce(&mut Reader<'_>, &Field<'d>) -> Option<T>,
) -> Option<T> {
    let field = r.child(table, parent, key)?;
    convert(r, &field)
}

/// Reports a required key that is absent (at the line of its table's header) and
/// returns `None`. Nothing is reported when an unknown key of the table is a
/// misspelling of it: its "unknown key (did you mean ...)" already says it.
fn missing<T>(
    r: &mut Reader<'_>,
    table: &dyn TableLike,
    spec: &Spec,
    parent: &Field<'_>,
    key: &str,
    hint: &str,
) -> Option<T> {
    if table
        .iter()
        .any(|(k, _)| !spec.keys.contains(&k) && suggest::closest(k, [key]).is_some())
    {
        return None;
    }
    r.error(
        parent.line,
        &join(&parent.path, key),
        format!("missing required key \"{key}\"{hint}"),
    );
    None
}

fn default_global() -> Global {
    Global {
        shards: ShardCount::Auto,
        control_core: ControlCore::Auto,
        maxconn: None,
        user: None,
        group: None,
        log: LogTarget::Stderr,
        admin_socket: None,
        hard_stop_after: DEFAULT_HARD_STOP_AFTER,
        maxpipes: DEFAULT_MAXPIPES,
        pipesize: None,
    }
}

fn global(r: &mut Reader<'_>, t: &dyn TableLike, f: &Field<'_>) -> Global {
    r.check_keys(t, f, &GLOBAL, ALL);
    let mut g = default_global();
    if let Some(v) = get(r, t, f, "shards", shards) {
        g.shards = v;
    }
    if let Some(v) = get(r, t, f, "control_core", control_core) {
        g.control_core = v;
    }
    g.maxconn = get(r, t, f, "maxconn", |r, f| r.u32_in(f, 1, u32::MAX));
    g.user = get(r, t, f, "user", |r, f| r.nonempty_string(f)).map(str::to_string);
    g.group = get(r, t, f, "group", |r, f| r.nonempty_string(f)).map(str::to_string);
    if let Some(v) = get(r, t, f, "log", log_target) {
        g.log = v;
    }
    g.admin_socket = get(r, t, f, "admin_socket", |r, f| {
        absolute_path(r, f, "admin_socket")
    });
    if let Some(v) = get(r, t, f, "hard_stop_after", |r, f| r.duration(f)) {
        g.hard_stop_after = v;
    }
    if let Some(v) = get(r, t, f, "maxpipes", |r, f| r.u32_in(f, 0, MAX_MAXPIPES)) {
        g.maxpipes = v;
    }
    g.pipesize = get(r, t, f, "pipesize", |r, f| {
        r.u32_in(f, PIPESIZE_RANGE.0, PIPESIZE_RANGE.1)
    });
    g
}

fn shards(r: &mut Reader<'_>, f: &Field<'_>) -> Option<ShardCount> {
    let expected = format!("expected \"auto\" or a number of shards from 1 to {MAX_CORES}");
    match f.node {
        Node::Value(Value::String(s)) if s.value() == "auto" => Some(ShardCount::Auto),
        Node::Value(Value::Integer(i)) if (1..=i64::from(MAX_CORES)).contains(i.value()) => {
            Some(ShardCount::Fixed(*i.value() as usize))
        }
        node => {
            let found = super::reader::describe(node);
            r.error(f.line, &f.path, format!("{expected}, found {found}"));
            None
        }
    }
}

fn control_core(r: &mut Reader<'_>, f: &Field<'_>) -> Option<ControlCore> {
    match f.node {
        Node::Value(Value::String(s)) if s.value() == "auto" => Some(ControlCore::Auto),
        Node::Value(Value::String(s)) if s.value() == "shared" => Some(ControlCore::Shared),
        Node::Value(Value::Integer(i)) if (0..i64::from(MAX_CORES)).contains(i.value()) => {
            Some(ControlCore::Core(*i.value() as usize))
        }
        node => {
            let found = super::reader::describe(node);
            r.error(
                f.line,
                &f.path,
                format!(
                    "expected \"auto\", \"shared\" or a core number from 0 to {}, found {found}",
                    MAX_CORES - 1
                ),
            );
            None
        }
    }
}

fn log_target(r: &mut Reader<'_>, f: &Field<'_>) -> Option<LogTarget> {
    let s = r.string(f)?;
    match s {
        "stderr" => Some(LogTarget::Stderr),
        "syslog" => {
            r.error(
                f.line,
                &f.path,
                "log \"syslog\" is not supported yet (arrives with syslog logging); use \"stderr\" or \"file:/path\"",
            );
            None
        }
        _ => {
            if let Some(path) = s.strip_prefix("file:") {
                if Path::new(path).is_absolute() {
                    return Some(LogTarget::File(PathBuf::from(path)));
                }
                r.error(
                    f.line,
                    &f.path,
                    format!("log file path \"{path}\" must be absolute, e.g. \"file:/var/log/halb/access.log\""),
                );
                return None;
            }
            let hint = suggest::did_you_mean(s, ["stderr", "syslog", "file:"]);
            r.error(
                f.line,
                &f.path,
                format!("unknown log target \"{s}\"{hint}: expected \"stderr\" or \"file:/path\""),
            );
            None
        }
    }
}

fn absolute_path(r: &mut Reader<'_>, f: &Field<'_>, what: &str) -> Option<PathBuf> {
    let s = r.nonempty_string(f)?;
    if !Path::new(s).is_absolute() {
        r.error(
            f.line,
            &f.path,
            format!("{what} path \"{s}\" must be absolute"),
        );
        return None;
    }
    Some(PathBuf::from(s))
}

fn mode(r: &mut Reader<'_>, f: &Field<'_>) -> Option<Mode> {
    match r.string(f)? {
        "tcp" => Some(Mode::Tcp),
        "http" => Some(Mode::Http),
        other => {
            let hint = suggest::did_you_mean(other, ["tcp", "http"]);
            r.error(
                f.line,
                &f.path,
                format!("unknown mode \"{other}\"{hint}: expected \"tcp\" or \"http\""),
            );
            None
        }
    }
}

/// The `mode` of a frontend or backend section (`inherited` when absent), and whether it
/// is known: `false` when the key is present but invalid (already reported), so that
/// checks depending on the mode are skipped.
fn section_mode(
    r: &mut Reader<'_>,
    t: &dyn TableLike,
    f: &Field<'_>,
    inherited: Mode,
) -> (Mode, bool) {
    match r.child(t, f, "mode") {
        None => (inherited, true),
        Some(mf) => match mode(r, &mf) {
            Some(m) => (m, true),
            None => (inherited, false),
        },
    }
}

/// Reports each of `keys` present in `t`: they need mode http, and `what` (`frontend
/// "web"`) is mode tcp.
fn only_in_http(r: &mut Reader<'_>, t: &dyn TableLike, f: &Field<'_>, keys: &[&str], what: &str) {
    for key in keys {
        if let Some(kf) = r.child(t, f, key) {
            r.error(
                kf.line,
                &kf.path,
                format!(
                    "\"{key}\" is allowed only in mode http, and {what} is mode tcp (set mode = \"http\")"
                ),
            );
        }
    }
}

fn retries(r: &mut Reader<'_>, f: &Field<'_>) -> Option<u32> {
    r.u32_in(f, 0, MAX_RETRIES)
}

fn defaults(r: &mut Reader<'_>, t: &dyn TableLike, f: &Field<'_>) -> Defaults {
    r.check_keys(t, f, &DEFAULTS, ALL);
    Defaults {
        mode: get(r, t, f, "mode", mode).unwrap_or(Mode::Tcp),
        retries: get(r, t, f, "retries", retries).unwrap_or(DEFAULT_RETRIES),
        redispatch: get(r, t, f, "redispatch", |r, f| r.boolean(f)).unwrap_or(true),
        timeouts: get(r, t, f, "timeouts", |r, f| {
            Some(timeouts(r, f, Timeouts::default(), &DEFAULTS_TIMEOUTS))
        })
        .unwrap_or_default(),
    }
}

/// `base` overridden by the keys of the `timeouts` table in `f`.
fn timeouts(r: &mut Reader<'_>, f: &Field<'_>, base: Timeouts, spec: &Spec) -> Timeouts {
    let Some(t) = r.table(f) else {
        return base;
    };
    r.check_keys(t, f, spec, ALL);
    let mut out = base;
    let slots: [(&str, &mut Duration); 7] = [
        ("connect", &mut out.connect),
        ("client", &mut out.client),
        ("server", &mut out.server),
        ("http_request", &mut out.http_request),
        ("http_keep_alive", &mut out.http_keep_alive),
        ("tunnel", &mut out.tunnel),
        ("check", &mut out.check),
    ];
    for (key, slot) in slots {
        if !spec.keys.contains(&key) {
            continue;
        }
        let Some(field) = r.child(t, f, key) else {
            continue;
        };
        match r.duration(&field) {
            Some(d) if d.is_zero() => r.error(
                field.line,
                &field.path,
                "a timeout must be greater than zero",
            ),
            Some(d) => *slot = d,
            None => {}
        }
    }
    out
}

fn frontend(
    r: &mut Reader<'_>,
    name: String,
    t: &dyn TableLike,
    f: &Field<'_>,
    global: &Global,
    defaults: &Defaults,
) -> (Frontend, FrontendSite) {
    r.check_keys(t, f, &FRONTEND, ALL);
    let mut site = FrontendSite {
        backend_line: f.line,
        backend_path: join(&f.path, "default_backend"),
        binds: Vec::new(),
        http: None,
        use_backends: Vec::new(),
    };

    match &r.child(t, f, "bind") {
        None => missing::<()>(
            r,
            t,
            &FRONTEND,
            f,
            "bind",
            ": list the addresses to listen on, e.g. bind = [\":3306\"]",
        )
        .unwrap_or(()),
        Some(bf) => site.binds = bind_list(r, bf, "80"),
    }

    let (mode, mode_known) = section_mode(r, t, f, defaults.mode);
    let maxconn = get(r, t, f, "maxconn", |r, f| r.u32_in(f, 1, u32::MAX))
        .unwrap_or(global.maxconn.unwrap_or(DEFAULT_FRONTEND_MAXCONN));
    let backlog = get(r, t, f, "backlog", |r, f| r.u32_in(f, 1, i32::MAX as u32))
        .unwrap_or(maxconn.min(MAX_DEFAULT_BACKLOG));
    let default_backend = match r.child(t, f, "default_backend") {
        Some(bf) => {
            site.backend_line = bf.line;
            site.backend_path = bf.path.clone();
            r.nonempty_string(&bf).map(str::to_string)
        }
        // Optional in http mode: a request that no use_backend rule routes gets a 404.
        None if mode == Mode::Http => None,
        None => missing(
            r,
            t,
            &FRONTEND,
            f,
            "default_backend",
            ": name the backend that receives the connections",
        ),
    };
    let timeouts = get(r, t, f, "timeouts", |r, f| {
        Some(timeouts(r, f, defaults.timeouts, &FRONTEND_TIMEOUTS))
    })
    .unwrap_or(defaults.timeouts);
    let plain_binds = site.binds.len();
    let tls = get(r, t, f, "tls", |r, f| frontend_tls(r, f, mode)).map(|(tls, binds)| {
        site.binds.extend(binds);
        Arc::new(tls)
    });
    match mode {
        Mode::Http => {
            let (http, use_backends) = http_frontend(r, t, f);
            site.http = Some(http);
            site.use_backends = use_backends;
        }
        Mode::Tcp if mode_known => {
            only_in_http(
                r,
                t,
                f,
                &HTTP_FRONTEND_KEYS,
                &format!("frontend \"{name}\""),
            );
        }
        Mode::Tcp => {} // invalid mode: already reported
    }

    let frontend = Frontend {
        name,
        bind: site.binds[..plain_binds]
            .iter()
            .map(|(a, _, _)| *a)
            .collect(),
        mode,
        maxconn,
        backlog,
        default_backend,
        default_backend_index: None,
        timeouts,
        http: None,
        tls,
    };
    (frontend, site)
}

/// The addresses of a `bind` list, each with the line and path of its array element;
/// `port` is the example port of the messages.
fn bind_list(r: &mut Reader<'_>, bf: &Field<'_>, port: &str) -> Binds {
    let mut out = Vec::new();
    let expected = format!("an array of addresses such as [\"0.0.0.0:{port}\"]");
    if let Some(items) = r.array(bf, &expected) {
        if items.is_empty() {
            r.error(
                bf.line,
                &bf.path,
                format!("bind list is empty: give at least one address, e.g. [\":{port}\"]"),
            );
        }
        for item in items {
            let Some(text) = r.string(&item) else {
                continue;
            };
            match parse_bind_address(text) {
                Ok(addrs) => {
                    out.extend(addrs.into_iter().map(|a| (a, item.line, item.path.clone())))
                }
                Err(msg) => r.error(item.line, &item.path, msg),
            }
        }
    }
    out
}

/// `tls = { bind, certs, alpn, min_version, session_cache, session_tickets }` of a
/// frontend in `mode`; its bind addresses are returned apart, to be checked against every
/// other listener. The certificates are loaded and checked here (expiry: a warning).
fn frontend_tls(r: &mut Reader<'_>, f: &Field<'_>, mode: Mode) -> Option<(FrontendTls, Binds)> {
    let t = r.table(f)?;
    r.check_keys(t, f, &FRONTEND_TLS, ALL);
    let binds = match r.child(t, f, "bind") {
        Some(bf) => bind_list(r, &bf, "443"),
        None => {
            missing::<()>(
                r,
                t,
                &FRONTEND_TLS,
                f,
                "bind",
                ": list the addresses of the TLS listener, e.g. tls = { bind = [\":443\"], certs = [\"/etc/halb/certs/site.pem\"] }",
            );
            Vec::new()
        }
    };
    let certs = match r.child(t, f, "certs") {
        Some(cf) => tls_certs(r, &cf),
        None => {
            missing::<()>(
                r,
                t,
                &FRONTEND_TLS,
                f,
                "certs",
                ": list the PEM files (certificate chain + private key), e.g. certs = [\"/etc/halb/certs/site.pem\"]",
            );
            Vec::new()
        }
    };
    let alpn = match r.child(t, f, "alpn") {
        Some(af) => alpn(r, &af, mode),
        None if mode == Mode::Http => vec![HTTP_ALPN[0].to_string()],
        None => Vec::new(),
    };
    let tls = FrontendTls {
        bind: binds.iter().map(|(a, _, _)| *a).collect(),
        certs,
        alpn,
        min_version: get(r, t, f, "min_version", tls_version).unwrap_or(TlsVersion::Tls12),
        session_cache: get(r, t, f, "session_cache", |r, f| {
            r.u32_in(f, 0, MAX_SESSION_CACHE)
        })
        .unwrap_or(DEFAULT_SESSION_CACHE),
        session_tickets: get(r, t, f, "session_tickets", |r, f| r.boolean(f)).unwrap_or(true),
    };
    Some((tls, binds))
}

/// `certs = ["/path.pem", ...]`: every file loaded and checked, errors at its element.
fn tls_certs(r: &mut Reader<'_>, cf: &Field<'_>) -> Vec<Arc<crate::tls::certs::Certificate>> {
    let mut out: Vec<Arc<crate::tls::certs::Certificate>> = Vec::new();
    let Some(items) = r.array(
        cf,
        "an array of PEM file paths such as [\"/etc/halb/certs/site.pem\"]",
    ) else {
        return out;
    };
    if items.is_empty() {
        r.error(
            cf.line,
            &cf.path,
            "certs is empty: give at least one PEM file (certificate chain + private key)",
        );
    }
    let now = crate::tls::certs::unix_now();
    let mut seen: HashMap<PathBuf, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let Some(path) = absolute_path(r, item, "certificate") else {
            continue;
        };
        if let Some(first) = seen.get(&path) {
            r.error(
                item.line,
                &item.path,
                format!("{} is listed twice (first at line {first})", path.display()),
            );
            continue;
        }
        seen.insert(path.clone(), item.line);
        match crate::tls::certs::load_certificate(&path) {
            Ok(cert) => {
                if let Some(warning) = cert.validity_warning(now) {
                    r.warn(item.line, &item.path, warning);
                }
                if cert.names.is_empty() && i > 0 {
                    r.warn(
                        item.line,
                        &item.path,
                        format!(
                            "{}: the certificate names no DNS host (no subjectAltName DNS entry, no CN): SNI never selects it, and only the first of certs is the default",
                            path.display()
                        ),
                    );
                }
                out.push(Arc::new(cert));
            }
            Err(e) => r.error(item.line, &item.path, e.to_string()),
        }
    }
    out
}

/// `alpn = ["http/1.1"]`: protocol names (1..=255 printable ASCII bytes), no duplicates;
/// an http frontend may offer only HTTP/1 ([`HTTP_ALPN`]).
fn alpn(r: &mut Reader<'_>, af: &Field<'_>, mode: Mode) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let Some(items) = r.array(af, "an array of protocol names such as [\"http/1.1\"]") else {
        return out;
    };
    for item in items {
        let Some(p) = r.string(&item) else {
            continue;
        };
        if p.is_empty() || p.len() > 255 || !p.bytes().all(|b| b.is_ascii_graphic()) {
            r.error(
                item.line,
                &item.path,
                format!("invalid ALPN protocol name {p:?}: expected 1 to 255 printable ASCII characters, e.g. \"http/1.1\""),
            );
            continue;
        }
        if mode == Mode::Http && !HTTP_ALPN.contains(&p) {
            let hint = suggest::did_you_mean(p, HTTP_ALPN);
            r.error(
                item.line,
                &item.path,
                format!(
                    "ALPN protocol \"{p}\"{hint} cannot be offered by an http frontend: halb speaks HTTP/1 (expected \"http/1.1\" or \"http/1.0\")"
                ),
            );
            continue;
        }
        if out.iter().any(|q| q == p) {
            r.error(item.line, &item.path, format!("\"{p}\" is listed twice"));
            continue;
        }
        out.push(p.to_string());
    }
    out
}

/// `min_version = "1.2" | "1.3"`.
fn tls_version(r: &mut Reader<'_>, f: &Field<'_>) -> Option<TlsVersion> {
    let expected = "expected \"1.2\" or \"1.3\"";
    let s = match f.node {
        Node::Value(Value::String(s)) => s.value().as_str(),
        node => {
            r.error(
                f.line,
                &f.path,
                format!("{expected} (a string), found {}", describe(node)),
            );
            return None;
        }
    };
    match s {
        "1.2" => Some(TlsVersion::Tls12),
        "1.3" => Some(TlsVersion::Tls13),
        "1.0" | "1.1" => {
            r.error(
                f.line,
                &f.path,
                format!("TLS {s} is not supported (deprecated by RFC 8996; rustls speaks TLS 1.2 and 1.3): {expected}"),
            );
            None
        }
        _ => {
            let bare = s
                .trim_start_matches("TLSv")
                .trim_start_matches("TLS")
                .trim_start_matches("tlsv")
                .trim();
            let hint = if ["1.2", "1.3"].contains(&bare) {
                format!(" (did you mean \"{bare}\"?)")
            } else {
                String::new()
            };
            r.error(
                f.line,
                &f.path,
                format!("unknown TLS version \"{s}\"{hint}: {expected}"),
            );
            None
        }
    }
}

/// A server's `tls`, `verify`, `ca_file` and `sni` (`None` without `tls = true`; the
/// other three need it).
fn server_tls(r: &mut Reader<'_>, table: &dyn TableLike, sf: &Field<'_>) -> Option<ServerTls> {
    let tls_field = r.child(table, sf, "tls");
    let on = tls_field.as_ref().and_then(|f| r.boolean(f));
    let verify_field = r.child(table, sf, "verify");
    let ca_field = r.child(table, sf, "ca_file");
    let sni_field = r.child(table, sf, "sni");
    if on != Some(true) {
        if on.is_none() && tls_field.is_some() {
            return None; // not a boolean: already reported
        }
        for (key, field) in [
            ("verify", &verify_field),
            ("ca_file", &ca_field),
            ("sni", &sni_field),
        ] {
            if let Some(field) = field {
                r.error(
                    field.line,
                    &field.path,
                    format!("\"{key}\" applies to TLS connections: set tls = true on this server (or remove \"{key}\")"),
                );
            }
        }
        return None;
    }
    let tls_line = tls_field.as_ref().map_or(sf.line, |f| f.line);
    let verify_required = match &verify_field {
        None => Some(true),
        Some(vf) => match r.string(vf) {
            Some("required") => Some(true),
            Some("none") => Some(false),
            Some(other) => {
                let hint = suggest::did_you_mean(other, ["required", "none"]);
                r.error(
                    vf.line,
                    &vf.path,
                    format!("unknown verify \"{other}\"{hint}: expected \"required\" (check the certificate against ca_file) or \"none\" (insecure: accept any certificate)"),
                );
                None
            }
            None => None,
        },
    };
    let ca = ca_field.as_ref().and_then(|cf| {
        let path = absolute_path(r, cf, "ca_file")?;
        match crate::tls::certs::load_ca_bundle(&path) {
            Ok(bundle) => Some(Arc::new(bundle)),
            Err(e) => {
                r.error(cf.line, &cf.path, e.to_string());
                None
            }
        }
    });
    let sni = sni_field.as_ref().and_then(|nf| {
        let name = r.nonempty_string(nf)?;
        if name.parse::<IpAddr>().is_ok() {
            r.error(
                nf.line,
                &nf.path,
                format!("sni must be a host name, not the IP address {name}: leave sni out to check the certificate against the server's address"),
            );
            return None;
        }
        match rustls::pki_types::DnsName::try_from(name) {
            Ok(_) => Some(name.to_ascii_lowercase()),
            Err(_) => {
                r.error(
                    nf.line,
                    &nf.path,
                    format!("sni \"{name}\" is not a valid DNS name (letters, digits, '-' and '.', e.g. \"api.internal.example\")"),
                );
                None
            }
        }
    });
    let verify = match verify_required {
        Some(true) => match (ca, &ca_field) {
            (Some(ca), _) => TlsVerify::Required(ca),
            (None, Some(_)) => return None, // bad ca_file: already reported
            (None, None) => {
                let (line, path) = match &verify_field {
                    Some(vf) => (vf.line, vf.path.clone()),
                    None => (tls_line, join(&sf.path, "tls")),
                };
                r.error(
                    line,
                    &path,
                    "verify = \"required\" (the default with tls = true) needs ca_file = \"/path/to/ca.pem\": the CAs the server's certificate must chain to (halb ships no root store); or set verify = \"none\" (insecure: any certificate is accepted)",
                );
                return None;
            }
        },
        Some(false) => {
            if let Some(cf) = &ca_field {
                r.error(
                    cf.line,
                    &cf.path,
                    "ca_file is not used with verify = \"none\": remove it, or set verify = \"required\"",
                );
            }
            TlsVerify::None
        }
        None => return None,
    };
    Some(ServerTls { verify, sni })
}

/// `balance`; the HTTP forms (`uri ...`, `url_param(NAME)`, `hdr(NAME)`) need `mode`
/// http (`backend` names the section in that message).
fn balance(r: &mut Reader<'_>, f: &Field<'_>, mode: Mode, backend: &str) -> Option<Balance> {
    const KNOWN: [&str; 6] = [
        "roundrobin",
        "static-rr",
        "leastconn",
        "source",
        "first",
        "uri",
    ];
    let s = r.string(f)?;
    match s {
        "roundrobin" => Some(Balance::RoundRobin),
        "static-rr" => Some(Balance::StaticRr),
        "leastconn" => Some(Balance::LeastConn),
        "source" => Some(Balance::Source),
        "first" => Some(Balance::First),
        _ => match parse_http_balance(s) {
            Some(Ok(_)) if mode == Mode::Tcp => {
                r.error(
                    f.line,
                    &f.path,
                    format!(
                        "balance \"{s}\" needs mode http (it hashes a part of the HTTP request), and backend \"{backend}\" is mode tcp"
                    ),
                );
                None
            }
            Some(Ok(b)) => Some(b),
            Some(Err(msg)) => {
                r.error(f.line, &f.path, msg);
                None
            }
            None => {
                let hint = suggest::did_you_mean(s, KNOWN);
                r.error(
                    f.line,
                    &f.path,
                    format!(
                        "unknown balance algorithm \"{s}\"{hint}: expected one of {}, url_param(NAME), hdr(NAME)",
                        KNOWN.join(", ")
                    ),
                );
                None
            }
        },
    }
}

fn hash_type(r: &mut Reader<'_>, f: &Field<'_>) -> Option<HashType> {
    let s = r.string(f)?;
    match s {
        "map-based" => Some(HashType::MapBased),
        "consistent" => Some(HashType::Consistent),
        _ => {
            let hint = suggest::did_you_mean(s, ["map-based", "consistent"]);
            r.error(
                f.line,
                &f.path,
                format!(
                    "unknown hash_type \"{s}\"{hint}: expected \"map-based\" or \"consistent\""
                ),
            );
            None
        }
    }
}

fn backend(
    r: &mut Reader<'_>,
    name: String,
    t: &dyn TableLike,
    f: &Field<'_>,
    defaults: &Defaults,
) -> Backend {
    r.check_keys(t, f, &BACKEND, ALL_AND_CHECK);
    let (mode, mode_known) = section_mode(r, t, f, defaults.mode);
    let timeouts = get(r, t, f, "timeouts", |r, f| {
        Some(timeouts(r, f, defaults.timeouts, &BACKEND_TIMEOUTS))
    })
    .unwrap_or(defaults.timeouts);
    let mut ctx = CheckContext {
        backend: &name,
        mode: mode_known.then_some(mode),
        base: None,
        timeout: timeouts.check,
    };
    ctx.base = get(r, t, f, "check", |r, f| backend_check(r, f, &ctx));
    let check = ctx.base.as_ref().map(|k| k.resolve(ctx.timeout));
    let (servers, cookie_sites) = servers(r, t, f, &ctx);
    let mut be = Backend {
        mode,
        balance: get(r, t, f, "balance", |r, f| balance(r, f, mode, &name))
            .unwrap_or(Balance::RoundRobin),
        hash_type: get(r, t, f, "hash_type", hash_type).unwrap_or(HashType::MapBased),
        retries: get(r, t, f, "retries", retries).unwrap_or(defaults.retries),
        redispatch: get(r, t, f, "redispatch", |r, f| r.boolean(f)).unwrap_or(defaults.redispatch),
        splice: get(r, t, f, "splice", |r, f| r.boolean(f)).unwrap_or(true),
        cookie: None,
        http_server_close: false,
        http_reuse: HttpReuse::Safe,
        pool_max_idle: DEFAULT_POOL_MAX_IDLE,
        pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
        timeouts,
        check,
        servers,
        name,
    };
    match mode {
        Mode::Http => http_backend(r, t, f, &mut be, &cookie_sites),
        Mode::Tcp if mode_known => {
            let what = format!("backend \"{}\"", be.name);
            only_in_http(r, t, f, &HTTP_BACKEND_KEYS, &what);
        }
        Mode::Tcp => {} // invalid mode: already reported
    }
    // A server cookie needs the backend's `cookie` (when that key is present but
    // invalid, or in a tcp backend, its own error says enough).
    if !t.contains_key("cookie") {
        for (line, path) in cookie_sites.iter().flatten() {
            r.error(
                *line,
                path,
                format!(
                    "a server cookie needs cookie persistence on its backend: add cookie = {{ name = \"SRV\" }} to [backend.{}]{}",
                    be.name,
                    if be.mode == Mode::Tcp { " (mode http only)" } else { "" }
                ),
            );
        }
    }
    be
}

/// The entries of an array of tables: `[[PATH]]` sections or an inline array of inline
/// tables, each as a field `PATH[i]` whose node is a table. `None` (reported) when the
/// item is something else; `noun` names one entry in that message.
fn table_array<'d>(r: &mut Reader<'_>, field: &Field<'d>, noun: &str) -> Option<Vec<Field<'d>>> {
    match field.node {
        Node::TableArray(array) => Some(
            array
                .iter()
                .enumerate()
                .map(|(i, table)| Field {
                    path: format!("{}[{i}]", field.path),
                    line: r.line_of(table.span(), field.line),
                    node: Node::Table(table),
                })
                .collect(),
        ),
        Node::Value(Value::Array(array)) => {
            let mut out = Vec::new();
            for (i, value) in array.iter().enumerate() {
                let item = r.element(value, format!("{}[{i}]", field.path), field.line);
                if r.table(&item).is_some() {
                    out.push(item);
                }
            }
            Some(out)
        }
        _ => {
            r.error(
                field.line,
                &field.path,
                format!(
                    "expected an array of tables, found {}: write [[{}]] (double brackets) for each {noun}",
                    describe(field.node),
                    field.path
                ),
            );
            None
        }
    }
}

/// Where a server's `cookie` key is (line, path), per server.
type CookieSites = Vec<Option<(usize, String)>>;

/// The `[[backend.NAME.server]]` entries (also accepted as an inline array of inline
/// tables), with unique names, and where each one's `cookie` is.
fn servers(
    r: &mut Reader<'_>,
    t: &dyn TableLike,
    backend: &Field<'_>,
    checks: &CheckContext<'_>,
) -> (Vec<Server>, CookieSites) {
    let path = join(&backend.path, "server");
    let header = format!("[[{path}]]");
    let Some(field) = r.child(t, backend, "server") else {
        r.error(
            backend.line,
            &path,
            format!("backend has no servers: add at least one {header} section"),
        );
        return (Vec::new(), Vec::new());
    };
    let entries = table_array(r, &field, "server").unwrap_or_default();
    if matches!(field.node, Node::Value(Value::Array(a)) if a.is_empty()) {
        r.error(
            field.line,
            &path,
            format!("backend has no servers: add at least one {header} section"),
        );
    }

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    let mut cookie_sites = Vec::new();
    for sf in entries {
        let Some(table) = sf.as_table() else {
            continue;
        };
        r.check_keys(table, &sf, &SERVER, ALL_AND_CHECK);
        let name = match r.child(table, &sf, "name") {
            Some(nf) => server_name(r, &nf, &mut seen),
            None => missing(r, table, &SERVER, &sf, "name", ""),
        };
        let address = match r.child(table, &sf, "address") {
            Some(af) => r.string(&af).and_then(|s| match parse_server_address(s) {
                Ok(a) => Some(a),
                Err(msg) => {
                    r.error(af.line, &af.path, msg);
                    None
                }
            }),
            None => missing(
                r,
                table,
                &SERVER,
                &sf,
                "address",
                ", e.g. address = \"10.0.0.11:80\"",
            ),
        };
        let mut server = Server {
            name: name.unwrap_or_default(),
            address: address.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
            weight: get(r, table, &sf, "weight", |r, f| r.u32_in(f, 0, MAX_WEIGHT)).unwrap_or(1),
            backup: get(r, table, &sf, "backup", |r, f| r.boolean(f)).unwrap_or(false),
            disabled: get(r, table, &sf, "disabled", |r, f| r.boolean(f)).unwrap_or(false),
            cookie: None,
            check: get(r, table, &sf, "check", |r, f| server_check(r, f, checks)),
            slowstart: get(r, table, &sf, "slowstart", |r, f| {
                positive_duration(
                    r,
                    f,
                    "slowstart must be greater than zero (leave it out for full weight at once)",
                )
            }),
            tls: server_tls(r, table, &sf),
        };
        let mut site = None;
        if let Some(cf) = r.child(table, &sf, "cookie") {
            server.cookie = r.nonempty_string(&cf).map(str::to_string);
            site = Some((cf.line, cf.path.clone()));
        }
        out.push(server);
        cookie_sites.push(site);
    }
    (out, cookie_sites)
}

/// A duration greater than zero; `zero` is the message for `"0s"`.
fn positive_duration(r: &mut Reader<'_>, f: &Field<'_>, zero: &str) -> Option<Duration> {
    let d = r.duration(f)?;
    if d.is_zero() {
        r.error(f.line, &f.path, zero);
        return None;
    }
    Some(d)
}

/// A count of at least one (`rise`, `fall`, `error_limit`).
fn count(r: &mut Reader<'_>, f: &Field<'_>, key: &str) -> Option<u32> {
    let v = r.integer(f, i64::MIN, i64::from(u32::MAX))?;
    if v < 1 {
        r.error(
            f.line,
            &f.path,
            format!("{key} must be at least 1, found {v}"),
        );
        return None;
    }
    Some(v as u32)
}

// ---------------------------------------------------------------- health checks

/// The keys of one `check` table as read (`None` = not given), before defaults: a
/// server's table is laid over its backend's ([`CheckKeys::over`]), then
/// [`CheckKeys::resolve`] fills in what is still missing.
#[derive(Debug, Clone, Default)]
struct CheckKeys {
    /// `type`: `Some(true)` = http.
    http: Option<bool>,
    method: Option<String>,
    path: Option<String>,
    host: Option<String>,
    expect_status: Option<Vec<(u16, u16)>>,
    expect_body: Option<String>,
    inter: Option<Duration>,
    fastinter: Option<Duration>,
    downinter: Option<Duration>,
    rise: Option<u32>,
    fall: Option<u32>,
    timeout: Option<Duration>,
    port: Option<u16>,
    address: Option<IpAddr>,
    observe: Option<Observe>,
    error_limit: Option<u32>,
    shutdown_sessions: Option<bool>,
}

impl CheckKeys {
    /// These keys, and `base`'s where these have none.
    fn over(self, base: &CheckKeys) -> CheckKeys {
        CheckKeys {
            http: self.http.or(base.http),
            method: self.method.or_else(|| base.method.clone()),
            path: self.path.or_else(|| base.path.clone()),
            host: self.host.or_else(|| base.host.clone()),
            expect_status: self.expect_status.or_else(|| base.expect_status.clone()),
            expect_body: self.expect_body.or_else(|| base.expect_body.clone()),
            inter: self.inter.or(base.inter),
            fastinter: self.fastinter.or(base.fastinter),
            downinter: self.downinter.or(base.downinter),
            rise: self.rise.or(base.rise),
            fall: self.fall.or(base.fall),
            timeout: self.timeout.or(base.timeout),
            port: self.port.or(base.port),
            address: self.address.or(base.address),
            observe: self.observe.or(base.observe),
            error_limit: self.error_limit.or(base.error_limit),
            shutdown_sessions: self.shutdown_sessions.or(base.shutdown_sessions),
        }
    }

    /// The check, with the defaults where no key was given (`timeout`: the backend's
    /// `timeouts.check`; `fastinter`, `downinter`: `inter`).
    fn resolve(&self, timeout: Duration) -> Check {
        let kind = if self.http == Some(true) {
            CheckKind::Http(HttpCheck {
                method: self.method.clone().unwrap_or_else(|| "GET".to_string()),
                path: self.path.clone().unwrap_or_else(|| "/".to_string()),
                host: self.host.clone(),
                expect_status: self
                    .expect_status
                    .clone()
                    .unwrap_or_else(|| vec![DEFAULT_CHECK_EXPECT_STATUS]),
                expect_body: self.expect_body.clone(),
            })
        } else {
            CheckKind::Tcp
        };
        let inter = self.inter.unwrap_or(DEFAULT_CHECK_INTER);
        Check {
            kind,
            inter,
            fastinter: self.fastinter.unwrap_or(inter),
            downinter: self.downinter.unwrap_or(inter),
            rise: self.rise.unwrap_or(DEFAULT_CHECK_RISE),
            fall: self.fall.unwrap_or(DEFAULT_CHECK_FALL),
            timeout: self.timeout.unwrap_or(timeout),
            port: self.port,
            address: self.address,
            observe: self.observe,
            error_limit: self.error_limit.unwrap_or(DEFAULT_CHECK_ERROR_LIMIT),
            shutdown_sessions_on_down: self.shutdown_sessions.unwrap_or(false),
        }
    }
}

/// The check a server with `check = true` gets in a backend without `check`: every
/// default (a TCP connect every 2 s, rise 2, fall 3), `timeout` = `timeouts.check`.
pub fn default_check(timeout: Duration) -> Check {
    CheckKeys::default().resolve(timeout)
}

/// What the check tables of one backend are read against.
struct CheckContext<'a> {
    /// The backend's name, for messages.
    backend: &'a str,
    /// The backend's mode; `None` when its `mode` is invalid (already reported).
    mode: Option<Mode>,
    /// The backend's `check` as read, which servers' checks start from.
    base: Option<CheckKeys>,
    /// The backend's `timeouts.check` (the default `timeout`).
    timeout: Duration,
}

/// A backend's `check = { ... }`.
fn backend_check(r: &mut Reader<'_>, f: &Field<'_>, ctx: &CheckContext<'_>) -> Option<CheckKeys> {
    if f.as_table().is_none() {
        let hint = if matches!(f.node, Node::Value(Value::Boolean(_))) {
            ": a backend's check holds the settings; servers enable it with check = true"
        } else {
            ""
        };
        r.error(
            f.line,
            &f.path,
            format!(
                "expected a table such as {{ type = \"http\", path = \"/health\" }}, found {}{hint}",
                describe(f.node)
            ),
        );
        return None;
    }
    Some(check_table(r, f, ctx, false))
}

/// A server's `check = true | false | { ... }`: the backend's check (or the default one),
/// with the server's keys laid over it; `None` for `false`.
fn server_check(r: &mut Reader<'_>, f: &Field<'_>, ctx: &CheckContext<'_>) -> Option<Check> {
    let base = ctx.base.clone().unwrap_or_default();
    if let Node::Value(Value::Boolean(b)) = f.node {
        return b.value().then(|| base.resolve(ctx.timeout));
    }
    if f.as_table().is_none() {
        r.error(
            f.line,
            &f.path,
            format!(
                "expected true, false or a table of check keys such as {{ port = 8081 }}, found {}",
                describe(f.node)
            ),
        );
        return None;
    }
    let inherited_http = base.http == Some(true);
    let keys = check_table(r, f, ctx, inherited_http);
    Some(keys.over(&base).resolve(ctx.timeout))
}

/// The keys of a check table `f` (already known to be a table); `inherited_http` is the
/// type when the table has no `type` (a server's table inherits its backend's).
fn check_table(
    r: &mut Reader<'_>,
    f: &Field<'_>,
    ctx: &CheckContext<'_>,
    inherited_http: bool,
) -> CheckKeys {
    let Some(t) = f.as_table() else {
        return CheckKeys::default();
    };
    r.check_keys(t, f, &CHECK, ALL);
    let mut k = CheckKeys::default();
    // `None`: `type` is invalid (reported), the HTTP keys are not held against it.
    let http = match r.child(t, f, "type") {
        None => Some(inherited_http),
        Some(tf) => {
            k.http = check_type(r, &tf);
            k.http
        }
    };
    for key in HTTP_CHECK_KEYS {
        let Some(kf) = r.child(t, f, key) else {
            continue;
        };
        if http == Some(false) {
            r.error(
                kf.line,
                &kf.path,
                format!(
                    "\"{key}\" applies to http checks only, and this check is type \"tcp\" (set type = \"http\")"
                ),
            );
            continue;
        }
        let checked = |r: &mut Reader<'_>, check: fn(&str) -> Result<(), String>| {
            let s = r.string(&kf)?;
            match check(s) {
                Ok(()) => Some(s.to_string()),
                Err(msg) => {
                    r.error(kf.line, &kf.path, msg);
                    None
                }
            }
        };
        match key {
            "method" => k.method = checked(r, check_method),
            "path" => k.path = checked(r, check_request_path),
            "host" => k.host = checked(r, check_host_header),
            "expect_status" => k.expect_status = expect_status(r, &kf),
            _ => k.expect_body = expect_body(r, &kf),
        }
    }
    for (key, slot) in [
        ("inter", &mut k.inter),
        ("fastinter", &mut k.fastinter),
        ("downinter", &mut k.downinter),
        ("timeout", &mut k.timeout),
    ] {
        *slot = get(r, t, f, key, |r, f| {
            positive_duration(r, f, &format!("{key} must be greater than zero"))
        });
    }
    k.rise = get(r, t, f, "rise", |r, f| count(r, f, "rise"));
    k.fall = get(r, t, f, "fall", |r, f| count(r, f, "fall"));
    k.error_limit = get(r, t, f, "error_limit", |r, f| count(r, f, "error_limit"));
    k.port = get(r, t, f, "port", |r, f| r.u32_in(f, 1, 65535)).map(|p| p as u16);
    k.address = get(r, t, f, "address", |r, f| {
        let s = r.string(f)?;
        parse_check_address(s)
            .map_err(|msg| r.error(f.line, &f.path, msg))
            .ok()
    });
    k.observe = get(r, t, f, "observe", |r, f| observe(r, f, ctx));
    k.shutdown_sessions = get(r, t, f, "on_marked_down", on_marked_down);
    k
}

/// `type = "tcp" | "http"`: `Some(true)` for http.
fn check_type(r: &mut Reader<'_>, f: &Field<'_>) -> Option<bool> {
    match r.string(f)? {
        "tcp" => Some(false),
        "http" => Some(true),
        other => {
            let hint = suggest::did_you_mean(other, ["tcp", "http"]);
            r.error(
                f.line,
                &f.path,
                format!("unknown check type \"{other}\"{hint}: expected \"tcp\" or \"http\""),
            );
            None
        }
    }
}

/// `expect_status = [200, "300-399"]` (a single status or range is accepted as well).
fn expect_status(r: &mut Reader<'_>, f: &Field<'_>) -> Option<Vec<(u16, u16)>> {
    let items = match f.node {
        Node::Value(Value::Array(_)) => r.array(f, "an array of statuses")?,
        _ => vec![f.clone()],
    };
    if items.is_empty() {
        r.error(
            f.line,
            &f.path,
            "expect_status is empty: give at least one status or range, e.g. [200, \"300-399\"]",
        );
        return None;
    }
    let mut out = Vec::new();
    let mut valid = true;
    for item in items {
        let range = match item.node {
            Node::Value(Value::Integer(i)) => {
                let v = *i.value();
                if (100..=599).contains(&v) {
                    Ok((v as u16, v as u16))
                } else {
                    Err(format!("status {v} is out of range (expected 100..=599)"))
                }
            }
            Node::Value(Value::String(s)) => parse_status_range(s.value()),
            node => Err(format!(
                "expected a status such as 200 or a range such as \"200-399\", found {}",
                describe(node)
            )),
        };
        match range {
            Ok(range) => out.push(range),
            Err(msg) => {
                r.error(item.line, &item.path, msg);
                valid = false;
            }
        }
    }
    valid.then_some(out)
}

/// `expect_body = "ok"`: non-empty, and short enough to fit in the part of the body read.
fn expect_body(r: &mut Reader<'_>, f: &Field<'_>) -> Option<String> {
    let s = r.nonempty_string(f)?;
    if s.len() > CHECK_BODY_WINDOW {
        r.error(
            f.line,
            &f.path,
            format!(
                "expect_body is {} bytes long, and only the first {CHECK_BODY_WINDOW} bytes of a response body are searched",
                s.len()
            ),
        );
        return None;
    }
    Some(s.to_string())
}

/// `observe = "layer4" | "layer7"` (layer7 only in an http backend).
fn observe(r: &mut Reader<'_>, f: &Field<'_>, ctx: &CheckContext<'_>) -> Option<Observe> {
    match r.string(f)? {
        "layer4" => Some(Observe::Layer4),
        "layer7" if ctx.mode == Some(Mode::Tcp) => {
            r.error(
                f.line,
                &f.path,
                format!(
                    "observe = \"layer7\" needs mode http (it watches HTTP responses), and backend \"{}\" is mode tcp: use \"layer4\"",
                    ctx.backend
                ),
            );
            None
        }
        "layer7" => Some(Observe::Layer7),
        other => {
            let hint = suggest::did_you_mean(other, ["layer4", "layer7"]);
            r.error(
                f.line,
                &f.path,
                format!("unknown observe \"{other}\"{hint}: expected \"layer4\" or \"layer7\""),
            );
            None
        }
    }
}

/// `on_marked_down = "shutdown-sessions"`.
fn on_marked_down(r: &mut Reader<'_>, f: &Field<'_>) -> Option<bool> {
    match r.string(f)? {
        "shutdown-sessions" => Some(true),
        other => {
            let hint = suggest::did_you_mean(other, ["shutdown-sessions"]);
            r.error(
                f.line,
                &f.path,
                format!(
                    "unknown on_marked_down \"{other}\"{hint}: the only value is \"shutdown-sessions\" (leave the key out to let connections finish)"
                ),
            );
            None
        }
    }
}

// ---------------------------------------------------------------- stats

/// `[stats]`, with the line and path of its `bind` (for [`check_stats_bind`]); `None`
/// when `bind` is missing or invalid (reported).
fn stats(r: &mut Reader<'_>, t: &dyn TableLike, f: &Field<'_>) -> Option<(Stats, usize, String)> {
    r.check_keys(t, f, &STATS, ALL);
    let bind = match r.child(t, f, "bind") {
        Some(bf) => {
            let addr = match bf.node {
                Node::Value(Value::Array(_)) => {
                    r.error(
                        bf.line,
                        &bf.path,
                        "expected one address such as \"127.0.0.1:8404\" (a string), found an array: the stats page listens on one address",
                    );
                    None
                }
                _ => r.string(&bf).and_then(|s| {
                    parse_stats_bind(s)
                        .map_err(|msg| r.error(bf.line, &bf.path, msg))
                        .ok()
                }),
            };
            addr.map(|a| (a, bf.line, bf.path.clone()))
        }
        None => missing(
            r,
            t,
            &STATS,
            f,
            "bind",
            ": give the address of the stats page, e.g. bind = \"127.0.0.1:8404\"",
        ),
    };
    let uri = get(r, t, f, "uri", |r, f| {
        let s = r.string(f)?;
        check_stats_uri(s)
            .map_err(|msg| r.error(f.line, &f.path, msg))
            .ok()
            .map(|()| s.to_string())
    })
    .unwrap_or_else(|| DEFAULT_STATS_URI.to_string());
    let auth = get(r, t, f, "auth", stats_auth);
    let admin = match r.child(t, f, "admin") {
        Some(af) => {
            let admin = r.boolean(&af).unwrap_or(false);
            if admin && !t.contains_key("auth") {
                r.error(
                    af.line,
                    &af.path,
                    "admin = true needs auth: add auth = { user = \"...\", password = \"...\" } (admin actions change servers' state)",
                );
            }
            admin
        }
        None => false,
    };
    let refresh = get(r, t, f, "refresh", |r, f| {
        positive_duration(r, f, "refresh must be greater than zero")
    })
    .unwrap_or(DEFAULT_STATS_REFRESH);
    let (bind, line, path) = bind?;
    let stats = Stats {
        bind,
        uri,
        auth,
        admin,
        refresh,
    };
    Some((stats, line, path))
}

/// `auth = { user = "...", password = "..." }`.
fn stats_auth(r: &mut Reader<'_>, f: &Field<'_>) -> Option<StatsAuth> {
    let Some(t) = f.as_table() else {
        r.error(
            f.line,
            &f.path,
            format!(
                "expected a table such as {{ user = \"admin\", password = \"...\" }}, found {}",
                describe(f.node)
            ),
        );
        return None;
    };
    r.check_keys(t, f, &STATS_AUTH, ALL);
    let user = match r.child(t, f, "user") {
        Some(uf) => r.nonempty_string(&uf).and_then(|u| {
            if u.contains(':') {
                r.error(
                    uf.line,
                    &uf.path,
                    format!("user \"{u}\" contains ':', which separates the user from the password in HTTP basic authentication"),
                );
                return None;
            }
            Some(u.to_string())
        }),
        None => missing(r, t, &STATS_AUTH, f, "user", ", e.g. user = \"admin\""),
    };
    let password = match r.child(t, f, "password") {
        Some(pf) => r.nonempty_string(&pf).map(str::to_string),
        None => missing(r, t, &STATS_AUTH, f, "password", ""),
    };
    Some(StatsAuth {
        user: user?,
        password: password?,
    })
}

/// Reports a stats address that a frontend also listens on: the same address, or the
/// same port with a wildcard address (`0.0.0.0` / `[::]`) on either side.
fn check_stats_bind(
    r: &mut Reader<'_>,
    addr: SocketAddr,
    line: usize,
    path: &str,
    frontends: &[(Frontend, FrontendSite)],
) {
    let clash = frontends.iter().find_map(|(fe, site)| {
        site.binds
            .iter()
            .find(|(a, _, _)| {
                *a == addr
                    || (a.port() == addr.port()
                        && a.is_ipv4() == addr.is_ipv4()
                        && (a.ip().is_unspecified() || addr.ip().is_unspecified()))
            })
            .map(|(a, l, _)| (fe.name.as_str(), *a, *l))
    });
    let Some((fe, other, other_line)) = clash else {
        return;
    };
    let msg = if other == addr {
        format!(
            "{addr} is already bound by frontend \"{fe}\" (line {other_line}): the stats page needs an address of its own"
        )
    } else {
        format!(
            "{addr} overlaps {other} of frontend \"{fe}\" (line {other_line}): the stats page needs a port of its own"
        )
    };
    r.error(line, path, msg);
}

/// A server's name, checked for its characters and for uniqueness against `seen`
/// (name → line of the server that uses it first).
fn server_name(
    r: &mut Reader<'_>,
    f: &Field<'_>,
    seen: &mut HashMap<String, usize>,
) -> Option<String> {
    let name = r.nonempty_string(f)?;
    if let Err(msg) = check_name(name) {
        r.error(f.line, &f.path, msg);
    } else if let Some(first) = seen.get(name) {
        r.error(
            f.line,
            &f.path,
            format!(
                "duplicate server name \"{name}\" (already used at line {first}): \
                 server names must be unique within a backend"
            ),
        );
    } else {
        seen.insert(name.to_string(), f.line);
    }
    Some(name.to_string())
}

/// Checks that need every section: each backend a frontend routes to (default_backend,
/// use_backend) exists and has the same mode, and no address is bound twice. Completes
/// each http frontend with its resolved use_backend rules.
fn cross_check(
    r: &mut Reader<'_>,
    frontends: &mut [(Frontend, FrontendSite)],
    backends: &[Backend],
) {
    check_binds(r, frontends);
    for (fe, site) in frontends.iter_mut() {
        if let Some(default_backend) = fe.default_backend.clone() {
            fe.default_backend_index = route(
                r,
                fe,
                backends,
                &default_backend,
                site.backend_line,
                &site.backend_path,
            );
        }
        let Some(mut http) = site.http.take() else {
            continue;
        };
        for rule in site.use_backends.drain(..) {
            let Some(name) = rule.backend else {
                continue; // missing or invalid: already reported
            };
            let index = route(r, fe, backends, &name, rule.line, &rule.path);
            if let (Some(backend_index), Some(condition)) = (index, rule.condition) {
                http.use_backends.push(UseBackend {
                    backend: name,
                    backend_index,
                    condition,
                });
            }
        }
        fe.http = Some(Arc::new(http));
    }
}

/// The index of backend `name`, which `fe` routes to from the key at `line`/`path`;
/// reports a missing backend (with a suggestion) or one of another mode.
fn route(
    r: &mut Reader<'_>,
    fe: &Frontend,
    backends: &[Backend],
    name: &str,
    line: usize,
    path: &str,
) -> Option<usize> {
    let Some(i) = backends.iter().position(|b| b.name == name) else {
        let hint = if backends.is_empty() {
            " (no [backend.NAME] section is defined)".to_string()
        } else {
            suggest::did_you_mean(name, backends.iter().map(|b| b.name.as_str()))
        };
        r.error(
            line,
            path,
            format!("backend \"{name}\" does not exist{hint}"),
        );
        return None;
    };
    let be = &backends[i];
    if be.mode != fe.mode {
        r.error(
            line,
            path,
            format!(
                "frontend \"{}\" is mode {} but backend \"{}\" is mode {}: a frontend and the backends it routes to must use the same mode",
                fe.name,
                mode_name(fe.mode),
                be.name,
                mode_name(be.mode)
            ),
        );
    }
    Some(i)
}

/// Reports every address bound twice, on its later occurrence in the file.
fn check_binds(r: &mut Reader<'_>, frontends: &[(Frontend, FrontendSite)]) {
    let mut all: Vec<(&SocketAddr, usize, &str, &str)> = frontends
        .iter()
        .flat_map(|(fe, site)| {
            site.binds
                .iter()
                .map(move |(addr, line, path)| (addr, *line, path.as_str(), fe.name.as_str()))
        })
        .collect();
    all.sort_by_key(|&(_, line, _, _)| line);
    let mut bound: HashMap<&SocketAddr, (&str, usize)> = HashMap::new();
    // `frontend.web.bind[0]` → `frontend.web.bind`: which list an address is in.
    let list = |path: &str| path.rsplit_once('[').map_or(path, |(l, _)| l).to_string();
    let mut lists: HashMap<&SocketAddr, String> = HashMap::new();
    for (addr, line, path, fe) in all {
        match bound.get(addr) {
            Some(&(other, other_line)) if other == fe && lists.get(addr) == Some(&list(path)) => r
                .error(
                    line,
                    path,
                    format!(
                        "{addr} is listed twice in this bind list (first at line {other_line})"
                    ),
                ),
            Some(&(other, other_line)) => r.error(
                line,
                path,
                format!("{addr} is already bound by frontend \"{other}\" (line {other_line})"),
            ),
            None => {
                bound.insert(addr, (fe, line));
                lists.insert(addr, list(path));
            }
        }
    }
}

// ---------------------------------------------------------------- mode http

/// The L7 keys of an http frontend: everything but its use_backend rules, which are
/// returned as read and resolved by [`cross_check`].
fn http_frontend(
    r: &mut Reader<'_>,
    t: &dyn TableLike,
    f: &Field<'_>,
) -> (HttpFrontend, Vec<PendingUseBackend>) {
    let (acls, broken) = match r.child(t, f, "acl") {
        Some(af) => acl_set(r, &af),
        None => (predefined_acls(), Vec::new()),
    };
    let scope = AclScope {
        acls: &acls,
        broken: &broken,
        table: join(&f.path, "acl"),
    };
    let mut http = HttpFrontend::default();
    if let Some(rf) = r.child(t, f, "http_request") {
        for entry in table_array(r, &rf, "rule").unwrap_or_default() {
            if let Some(rule) = request_rule(r, &entry, &scope) {
                http.request_rules.push(rule);
            }
        }
    }
    if let Some(rf) = r.child(t, f, "http_response") {
        for entry in table_array(r, &rf, "rule").unwrap_or_default() {
            if let Some(rule) = response_rule(r, &entry, &scope) {
                http.response_rules.push(rule);
            }
        }
    }
    let mut use_backends = Vec::new();
    if let Some(uf) = r.child(t, f, "use_backend") {
        for entry in table_array(r, &uf, "rule").unwrap_or_default() {
            if let Some(rule) = use_backend_rule(r, &entry, &scope) {
                use_backends.push(rule);
            }
        }
    }
    http.forwarding = forwarding(r, t, f);
    http.limits = limits(r, t, f);
    http.max_body_size = get(r, t, f, "max_body_size", |r, f| {
        r.integer(f, 1, i64::MAX).map(|v| v as u64)
    });
    http.errors = get(r, t, f, "errorfile", |r, f| Some(errorfiles(r, f))).unwrap_or_default();
    http.acls = acls;
    (http, use_backends)
}

/// The built-in ACLs only (`TRUE`, `FALSE`, `LOCALHOST`, `METH_*`, `ssl_fc`...).
fn predefined_acls() -> AclSet {
    AclSet::parse(&[]).expect("the predefined ACLs compile")
}

/// `[frontend.NAME.acl]`: `name = "definition"` or `name = ["definition", ...]` (several
/// definitions of one name are OR-ed, like repeated `acl` lines in HAProxy). Returns the
/// compiled set and the names whose definition was refused (already reported), so that
/// conditions naming them are not reported again as unknown.
fn acl_set(r: &mut Reader<'_>, f: &Field<'_>) -> (AclSet, Vec<String>) {
    let Some(t) = r.table(f) else {
        return (predefined_acls(), Vec::new());
    };
    let mut defs: Vec<(String, String)> = Vec::new();
    let mut broken = Vec::new();
    for (name, _) in t.iter() {
        let Some(nf) = r.child(t, f, name) else {
            continue;
        };
        let items = match nf.node {
            Node::Value(Value::Array(_)) => {
                let items = r
                    .array(&nf, "a definition string or an array of them")
                    .unwrap_or_default();
                if items.is_empty() {
                    r.error(
                        nf.line,
                        &nf.path,
                        "empty ACL: give a definition such as \"path_beg /api\"",
                    );
                }
                items
            }
            _ => vec![nf.clone()],
        };
        let mut ok = !items.is_empty();
        for item in items {
            let Some(text) = r.string(&item) else {
                ok = false;
                continue;
            };
            // Compiled alone first, so that each error points at its own line.
            let def = (name.to_string(), text.to_string());
            match AclSet::parse(std::slice::from_ref(&def)) {
                Ok(_) => defs.push(def),
                Err(e) => {
                    r.error(item.line, &item.path, e.message());
                    ok = false;
                }
            }
        }
        if !ok {
            broken.push(name.to_string());
        }
    }
    match AclSet::parse(&defs) {
        Ok(set) => (set, broken),
        Err(e) => {
            // Each definition compiled alone; this is not expected, but is not ignored.
            r.error(f.line, &f.path, e.to_string());
            (predefined_acls(), broken)
        }
    }
}

/// What a condition may name: a frontend's ACLs.
struct AclScope<'a> {
    acls: &'a AclSet,
    /// ACLs whose definition was refused (conditions naming them are not reported).
    broken: &'a [String],
    /// Path of the `acl` table, for "define it in ..." hints.
    table: String,
}

/// The `if` / `unless` of a rule: `Ok(None)` when it has neither, `Err(())` when it is
/// invalid (reported).
fn rule_condition(
    r: &mut Reader<'_>,
    t: &dyn TableLike,
    entry: &Field<'_>,
    scope: &AclScope<'_>,
) -> Result<Option<Condition>, ()> {
    let (field, negate) = match (r.child(t, entry, "if"), r.child(t, entry, "unless")) {
        (None, None) => return Ok(None),
        (Some(i), None) => (i, false),
        (None, Some(u)) => (u, true),
        (Some(i), Some(u)) => {
            let later = if u.line >= i.line { u } else { i };
            r.error(
                later.line,
                &later.path,
                "a rule takes \"if\" or \"unless\", not both: write one condition (e.g. if = \"a !b\")",
            );
            return Err(());
        }
    };
    let text = r.nonempty_string(&field).ok_or(())?;
    // Unknown names first, with this file's "did you mean" and a hint where to define them.
    for word in text.split_whitespace() {
        if word == "||" || word == "or" || word.starts_with('{') || word.ends_with('}') {
            continue; // Condition::parse explains these
        }
        let name = word.trim_start_matches('!');
        if name.is_empty() || scope.acls.names().any(|n| n == name) {
            continue;
        }
        if scope.broken.iter().any(|b| b == name) {
            return Err(()); // its definition is already reported
        }
        let hint = match suggest::closest(name, scope.acls.names()) {
            Some(c) => format!(" (did you mean \"{c}\"?)"),
            None => format!(": define it in [{}]", scope.table),
        };
        r.error(
            field.line,
            &field.path,
            format!("unknown ACL \"{name}\" in condition \"{text}\"{hint}"),
        );
        return Err(());
    }
    match Condition::parse(text, scope.acls, negate) {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            r.error(
                field.line,
                &field.path,
                format!("invalid condition \"{text}\": {}", e.message()),
            );
            Err(())
        }
    }
}

/// The one action of a rule among `actions`: its key and field. Reports a rule without
/// an action (unless it has an unknown key, already reported: likely the misspelled or
/// misplaced action), and every action after the first.
fn rule_action<'d>(
    r: &mut Reader<'_>,
    t: &'d dyn TableLike,
    entry: &Field<'_>,
    actions: &[&'static str],
    spec: &Spec,
) -> Option<(&'static str, Field<'d>)> {
    let present: Vec<&'static str> = t
        .iter()
        .filter_map(|(k, _)| actions.iter().find(|a| **a == k).copied())
        .collect();
    let Some((&first, rest)) = present.split_first() else {
        if t.iter().all(|(k, _)| spec.keys.contains(&k)) {
            let list: Vec<String> = actions.iter().map(|a| format!("\"{a}\"")).collect();
            r.error(
                entry.line,
                &entry.path,
                format!("the rule has no action: give one of {}", list.join(", ")),
            );
        }
        return None;
    };
    // `frontend.web.http_request[2]` → `[[frontend.web.http_request]]`.
    let array = entry
        .path
        .rsplit_once('[')
        .map_or(entry.path.as_str(), |(a, _)| a);
    for other in rest {
        if let Some(of) = r.child(t, entry, other) {
            r.error(
                of.line,
                &of.path,
                format!(
                    "a rule has one action and this one already has \"{first}\": put \"{other}\" in its own [[{array}]] entry"
                ),
            );
        }
    }
    Some((first, r.child(t, entry, first)?))
}

/// One `[[frontend.NAME.http_request]]` entry.
fn request_rule(
    r: &mut Reader<'_>,
    entry: &Field<'_>,
    scope: &AclScope<'_>,
) -> Option<RequestRule> {
    let t = entry.as_table()?;
    r.check_keys(t, entry, &HTTP_REQUEST, ALL);
    let action = rule_action(r, t, entry, &REQUEST_ACTIONS, &HTTP_REQUEST);
    let code = r.child(t, entry, "code");
    let action = match action {
        Some(("redirect", af)) => {
            let kind = r.string(&af).and_then(|s| match parse_redirect(s) {
                Ok(kind) => Some(kind),
                Err(msg) => {
                    r.error(af.line, &af.path, msg);
                    None
                }
            });
            let code = match &code {
                Some(cf) => redirect_code(r, cf),
                None => Some(302),
            };
            match (kind, code) {
                (Some(kind), Some(code)) => Some(RequestAction::Redirect(Redirect { kind, code })),
                _ => None,
            }
        }
        Some((op, af)) => {
            if let Some(cf) = &code {
                r.error(
                    cf.line,
                    &cf.path,
                    format!("\"code\" is the status of a redirect, and this rule is \"{op}\""),
                );
            }
            if op == "deny" {
                deny_status(r, &af).map(RequestAction::Deny)
            } else {
                header_rule(r, op, &af).map(RequestAction::Header)
            }
        }
        None => None,
    };
    let condition = rule_condition(r, t, entry, scope);
    Some(RequestRule {
        action: action?,
        condition: condition.ok()?,
    })
}

/// One `[[frontend.NAME.http_response]]` entry.
fn response_rule(
    r: &mut Reader<'_>,
    entry: &Field<'_>,
    scope: &AclScope<'_>,
) -> Option<ResponseRule> {
    let t = entry.as_table()?;
    r.check_keys(t, entry, &HTTP_RESPONSE, ALL);
    let rule = rule_action(r, t, entry, &RESPONSE_ACTIONS, &HTTP_RESPONSE)
        .and_then(|(op, af)| header_rule(r, op, &af));
    let condition = rule_condition(r, t, entry, scope);
    Some(ResponseRule {
        rule: rule?,
        condition: condition.ok()?,
    })
}

/// One `[[frontend.NAME.use_backend]]` entry; its backend is looked up later.
fn use_backend_rule(
    r: &mut Reader<'_>,
    entry: &Field<'_>,
    scope: &AclScope<'_>,
) -> Option<PendingUseBackend> {
    let t = entry.as_table()?;
    r.check_keys(t, entry, &USE_BACKEND, ALL);
    let (backend, line, path) = match r.child(t, entry, "backend") {
        Some(bf) => (
            r.nonempty_string(&bf).map(str::to_string),
            bf.line,
            bf.path.clone(),
        ),
        None => (
            missing(
                r,
                t,
                &USE_BACKEND,
                entry,
                "backend",
                ": name the backend this rule routes to",
            ),
            entry.line,
            join(&entry.path, "backend"),
        ),
    };
    let condition = match rule_condition(r, t, entry, scope) {
        Ok(Some(c)) => Some(c),
        Ok(None) => {
            // Not when a misspelled "if"/"unless" already has its "did you mean".
            let misspelled = t.iter().any(|(k, _)| {
                !USE_BACKEND.keys.contains(&k) && suggest::closest(k, ["if", "unless"]).is_some()
            });
            if !misspelled {
                r.error(
                    entry.line,
                    &join(&entry.path, "if"),
                    "a use_backend rule needs a condition: add if = \"ACL ...\" or unless = \"ACL ...\" (requests that no rule routes go to default_backend)",
                );
            }
            None
        }
        Err(()) => None,
    };
    Some(PendingUseBackend {
        backend,
        line,
        path,
        condition,
    })
}

/// `set_header = { name, value }`, `add_header = { name, value }` or `del_header = "name"`.
fn header_rule(r: &mut Reader<'_>, op: &str, f: &Field<'_>) -> Option<HeaderRule> {
    if op == "del_header" {
        let name = r.nonempty_string(f)?;
        return match new_header_rule(op, name, "") {
            Ok(rule) => Some(rule),
            Err(e) => {
                r.error(f.line, &f.path, e.to_string());
                None
            }
        };
    }
    let Some(t) = f.as_table() else {
        r.error(
            f.line,
            &f.path,
            format!(
                "expected a table such as {{ name = \"X-Env\", value = \"prod\" }}, found {}",
                describe(f.node)
            ),
        );
        return None;
    };
    r.check_keys(t, f, &HEADER, ALL);
    let name_field = r.child(t, f, "name");
    let value_field = r.child(t, f, "value");
    let name = match &name_field {
        Some(nf) => r.nonempty_string(nf),
        None => missing(r, t, &HEADER, f, "name", ", e.g. name = \"X-Env\""),
    };
    let value = match &value_field {
        Some(vf) => r.string(vf),
        None => missing(
            r,
            t,
            &HEADER,
            f,
            "value",
            " (value = \"\" for an empty value)",
        ),
    };
    let (name, value) = (name?, value?);
    match new_header_rule(op, name, value) {
        Ok(rule) => Some(rule),
        Err(e) => {
            let at = match e {
                RewriteError::BadValue(_) => value_field.as_ref(),
                _ => name_field.as_ref(),
            };
            let at = at.unwrap_or(f);
            r.error(at.line, &at.path, e.to_string());
            None
        }
    }
}

/// A header rule, refusing also `Host` (a request must keep exactly one; the proxy
/// forwards the client's).
fn new_header_rule(op: &str, name: &str, value: &str) -> Result<HeaderRule, RewriteError> {
    if name.eq_ignore_ascii_case("host") {
        return Err(RewriteError::Reserved(name.to_string()));
    }
    match op {
        "set_header" => HeaderRule::set(name, value),
        "add_header" => HeaderRule::add(name, value),
        _ => HeaderRule::del(name),
    }
}

/// The error statuses `deny` may answer with.
fn deny_statuses() -> impl Iterator<Item = u16> {
    STATUSES.iter().copied().filter(|s| (400..600).contains(s))
}

/// `deny = true` (403) or `deny = STATUS`.
fn deny_status(r: &mut Reader<'_>, f: &Field<'_>) -> Option<u16> {
    match f.node {
        Node::Value(Value::Boolean(b)) if *b.value() => Some(403),
        Node::Value(Value::Boolean(_)) => {
            r.error(
                f.line,
                &f.path,
                "deny = false denies nothing: remove the rule, or write deny = true (403) or an error status",
            );
            None
        }
        Node::Value(Value::Integer(i)) => {
            let v = *i.value();
            match deny_statuses().find(|&s| i64::from(s) == v) {
                Some(s) => Some(s),
                None => {
                    let list: Vec<String> = deny_statuses().map(|s| s.to_string()).collect();
                    r.error(
                        f.line,
                        &f.path,
                        format!(
                            "deny status {v} is not allowed: expected one of {}",
                            list.join(", ")
                        ),
                    );
                    None
                }
            }
        }
        node => {
            r.error(
                f.line,
                &f.path,
                format!(
                    "expected true or an error status such as 403, found {}",
                    describe(node)
                ),
            );
            None
        }
    }
}

/// `code` of a redirect: 301, 302, 303, 307 or 308.
fn redirect_code(r: &mut Reader<'_>, f: &Field<'_>) -> Option<u16> {
    let v = r.integer(f, i64::MIN, i64::MAX)?;
    match REDIRECT_CODES.iter().find(|&&c| i64::from(c) == v) {
        Some(&c) => Some(c),
        None => {
            r.error(
                f.line,
                &f.path,
                format!("redirect code {v} is not allowed: expected 301, 302, 303, 307 or 308"),
            );
            None
        }
    }
}

/// `forwardfor`, `x_forwarded_proto`, `x_forwarded_port`, `forwarded`.
fn forwarding(r: &mut Reader<'_>, t: &dyn TableLike, f: &Field<'_>) -> Forwarding {
    let mut fw = Forwarding::default();
    if let Some(v) = get(r, t, f, "forwardfor", forwardfor) {
        fw.forwardfor = v;
    }
    fw.x_forwarded_proto = get(r, t, f, "x_forwarded_proto", |r, f| r.boolean(f)).unwrap_or(false);
    fw.x_forwarded_port = get(r, t, f, "x_forwarded_port", |r, f| r.boolean(f)).unwrap_or(false);
    if let Some(v) = get(r, t, f, "forwarded", forwarded) {
        fw.forwarded = v;
    }
    fw
}

/// `forwardfor = true | false | { except = "cidr" | ["cidr", ...] }`.
fn forwardfor(r: &mut Reader<'_>, f: &Field<'_>) -> Option<Option<ForwardFor>> {
    if let Node::Value(Value::Boolean(b)) = f.node {
        return Some(b.value().then(ForwardFor::default));
    }
    let Some(t) = f.as_table() else {
        r.error(
            f.line,
            &f.path,
            format!(
                "expected true, false or a table such as {{ except = \"127.0.0.0/8\" }}, found {}",
                describe(f.node)
            ),
        );
        return None;
    };
    r.check_keys(t, f, &FORWARDFOR, ALL);
    let mut except = Vec::new();
    if let Some(ef) = r.child(t, f, "except") {
        let items = match ef.node {
            Node::Value(Value::String(_)) => vec![ef.clone()],
            _ => r
                .array(&ef, "a network such as \"10.0.0.0/8\" or an array of them")
                .unwrap_or_default(),
        };
        for item in items {
            if let Some(s) = r.string(&item) {
                match parse_except(s) {
                    Ok(cidr) => except.push(cidr),
                    Err(e) => r.error(item.line, &item.path, e.to_string()),
                }
            }
        }
    }
    Some(Some(ForwardFor { except }))
}

/// `forwarded = true | false | { proto = bool, by = bool }`.
fn forwarded(r: &mut Reader<'_>, f: &Field<'_>) -> Option<Option<ForwardedParams>> {
    if let Node::Value(Value::Boolean(b)) = f.node {
        return Some(b.value().then(ForwardedParams::default));
    }
    let Some(t) = f.as_table() else {
        r.error(
            f.line,
            &f.path,
            format!(
                "expected true, false or a table such as {{ proto = true, by = true }}, found {}",
                describe(f.node)
            ),
        );
        return None;
    };
    r.check_keys(t, f, &FORWARDED, ALL);
    Some(Some(ForwardedParams {
        proto: get(r, t, f, "proto", |r, f| r.boolean(f)).unwrap_or(false),
        by: get(r, t, f, "by", |r, f| r.boolean(f)).unwrap_or(false),
    }))
}

/// `max_request_head`, `max_request_line` (at most the head; when unset, the default
/// capped at the head), `max_headers`.
fn limits(r: &mut Reader<'_>, t: &dyn TableLike, f: &Field<'_>) -> Limits {
    let mut limits = Limits::default();
    if let Some(v) = get(r, t, f, "max_request_head", |r, f| {
        r.u32_in(f, REQUEST_HEAD_RANGE.0, REQUEST_HEAD_RANGE.1)
    }) {
        limits.max_head = v as usize;
    }
    match r.child(t, f, "max_request_line") {
        Some(lf) => {
            if let Some(v) = r.u32_in(&lf, MIN_REQUEST_LINE, REQUEST_HEAD_RANGE.1) {
                if v as usize > limits.max_head {
                    r.error(
                        lf.line,
                        &lf.path,
                        format!(
                            "max_request_line ({v}) is larger than max_request_head ({}): the request line is part of the head",
                            limits.max_head
                        ),
                    );
                } else {
                    limits.max_request_line = v as usize;
                }
            }
        }
        None => limits.max_request_line = limits.max_request_line.min(limits.max_head),
    }
    if let Some(v) = get(r, t, f, "max_headers", |r, f| r.u32_in(f, 1, MAX_HEADERS)) {
        limits.max_headers = v as usize;
    }
    limits
}

/// `errorfile = { STATUS = "/absolute/path", ... }`: each file is read and checked now.
fn errorfiles(r: &mut Reader<'_>, f: &Field<'_>) -> ErrorPages {
    let mut pages = ErrorPages::new();
    let Some(t) = r.table(f) else {
        return pages;
    };
    for (key, _) in t.iter() {
        let Some(ef) = r.child(t, f, key) else {
            continue;
        };
        let Some(status) = key.parse::<u16>().ok().filter(|s| STATUSES.contains(s)) else {
            let list: Vec<String> = STATUSES.iter().map(|s| s.to_string()).collect();
            r.error(
                ef.line,
                &ef.path,
                format!(
                    "no error page for status \"{key}\": expected one of {}",
                    list.join(", ")
                ),
            );
            continue;
        };
        let Some(path) = absolute_path(r, &ef, "errorfile") else {
            continue;
        };
        let bytes = match read_errorfile(&path) {
            Ok(bytes) => bytes,
            Err(msg) => {
                r.error(ef.line, &ef.path, format!("\"{}\": {msg}", path.display()));
                continue;
            }
        };
        match pages.clone().with_errorfile(status, bytes) {
            Ok(p) => pages = p,
            Err(e) => r.error(ef.line, &ef.path, format!("\"{}\": {e}", path.display())),
        }
    }
    pages
}

/// The content of an errorfile, read up to one byte past the size limit.
fn read_errorfile(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the errorfile: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_ERRORFILE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the errorfile: {e}"))?;
    if bytes.len() > MAX_ERRORFILE {
        return Err(format!(
            "the errorfile is larger than the {MAX_ERRORFILE} bytes allowed"
        ));
    }
    Ok(bytes)
}

/// The L7 keys of an http backend: `cookie`, `http_server_close`, `http_reuse`,
/// `pool_max_idle`, `pool_idle_timeout`.
fn http_backend(
    r: &mut Reader<'_>,
    t: &dyn TableLike,
    f: &Field<'_>,
    be: &mut Backend,
    cookie_sites: &[Option<(usize, String)>],
) {
    be.cookie = get(r, t, f, "cookie", |r, f| {
        cookie(r, f, &be.servers, cookie_sites)
    });
    if let Some(v) = get(r, t, f, "http_server_close", |r, f| r.boolean(f)) {
        be.http_server_close = v;
    }
    if let Some(v) = get(r, t, f, "http_reuse", http_reuse) {
        be.http_reuse = v;
    }
    if let Some(v) = get(r, t, f, "pool_max_idle", |r, f| {
        r.u32_in(f, 0, MAX_POOL_MAX_IDLE)
    }) {
        be.pool_max_idle = v;
    }
    if let Some(pf) = r.child(t, f, "pool_idle_timeout") {
        match r.duration(&pf) {
            Some(d) if d.is_zero() => r.error(
                pf.line,
                &pf.path,
                "pool_idle_timeout must be greater than zero (pool_max_idle = 0 disables pooling)",
            ),
            Some(d) => be.pool_idle_timeout = d,
            None => {}
        }
    }
}

fn http_reuse(r: &mut Reader<'_>, f: &Field<'_>) -> Option<HttpReuse> {
    match r.string(f)? {
        "safe" => Some(HttpReuse::Safe),
        "always" => Some(HttpReuse::Always),
        "never" => Some(HttpReuse::Never),
        other => {
            let hint = suggest::did_you_mean(other, ["safe", "always", "never"]);
            r.error(
                f.line,
                &f.path,
                format!(
                    "unknown http_reuse \"{other}\"{hint}: expected \"safe\", \"always\" or \"never\""
                ),
            );
            None
        }
    }
}

/// `cookie = { name, mode, indirect, nocache, httponly, secure }`, checked with the
/// servers' `cookie` values. A bad server value is reported at that server's `cookie`
/// (naming the servers by name); every one is reported, not only the first.
fn cookie(
    r: &mut Reader<'_>,
    f: &Field<'_>,
    servers: &[Server],
    sites: &[Option<(usize, String)>],
) -> Option<CookiePersistence> {
    let Some(t) = f.as_table() else {
        r.error(
            f.line,
            &f.path,
            format!(
                "expected a table such as {{ name = \"SRV\", mode = \"insert\" }}, found {}",
                describe(f.node)
            ),
        );
        return None;
    };
    r.check_keys(t, f, &COOKIE, ALL);
    let name_field = r.child(t, f, "name");
    let name = match &name_field {
        Some(nf) => r.nonempty_string(nf),
        None => missing(
            r,
            t,
            &COOKIE,
            f,
            "name",
            ", e.g. cookie = { name = \"SRV\" }",
        ),
    };
    let mut valid = name.is_some();
    let mut mode = None;
    if let Some(mf) = r.child(t, f, "mode") {
        match r.string(&mf).map(CookieMode::parse) {
            Some(Ok(m)) => mode = Some(m),
            Some(Err(e)) => {
                r.error(mf.line, &mf.path, e.to_string());
                valid = false;
            }
            None => valid = false,
        }
    }
    let mut options = CookieOptions::insert(name.unwrap_or_default());
    if let Some(m) = mode {
        options.mode = m;
    }
    let flag = |r: &mut Reader<'_>, key: &str| get(r, t, f, key, |r, f| r.boolean(f));
    options.indirect = flag(r, "indirect").unwrap_or(false);
    options.nocache = flag(r, "nocache").unwrap_or(false);
    options.httponly = flag(r, "httponly").unwrap_or(false);
    options.secure = flag(r, "secure").unwrap_or(false);
    if !valid {
        return None;
    }

    let mut values: Vec<Option<&str>> = servers.iter().map(|s| s.cookie.as_deref()).collect();
    let server_site = |i: usize| -> (usize, String) {
        sites
            .get(i)
            .cloned()
            .flatten()
            .unwrap_or_else(|| (f.line, f.path.clone()))
    };
    let server_name = |i: usize| servers.get(i).map_or("?", |s| s.name.as_str());
    // Each refused value is dropped and the rest checked again (at most once per server).
    let mut refused = false;
    for _ in 0..=servers.len() {
        let e = match CookiePersistence::new(options.clone(), &values) {
            Ok(p) => return (!refused).then_some(p),
            Err(e) => e,
        };
        let msg = e.to_string();
        match e {
            CookieError::InvalidValue { server, .. }
            | CookieError::DelimiterInValue { server, .. } => {
                let (line, path) = server_site(server);
                let msg = msg.replace(
                    &format!("server #{server}"),
                    &format!("server \"{}\"", server_name(server)),
                );
                r.error(line, &path, msg);
                values[server] = None;
            }
            CookieError::DuplicateValue { first, second, .. } => {
                let (line, path) = server_site(second);
                let msg = msg.replace(
                    &format!("servers #{first} and #{second}"),
                    &format!(
                        "servers \"{}\" and \"{}\"",
                        server_name(first),
                        server_name(second)
                    ),
                );
                r.error(line, &path, msg);
                values[second] = None;
            }
            CookieError::InvalidName(_) => {
                let at = name_field.as_ref().unwrap_or(f);
                r.error(at.line, &at.path, msg);
                return None;
            }
            _ => {
                r.error(f.line, &f.path, msg);
                return None;
            }
        }
        refused = true;
    }
    None
}

/// `tcp` / `http`.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Tcp => "tcp",
        Mode::Http => "http",
    }
}
