//! Converting a parsed document into the model: every section, every key, its default,
//! and the checks that need more than one key (references, modes, duplicates).
//!
//! Conversion never stops at the first problem: a bad value is reported and replaced by
//! its default so that the rest of the file is still checked. The caller discards the
//! [`Config`] when anything was reported.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{Table, TableLike, Value};

use super::model::*;
use super::reader::{join, Field, Node, Reader, Spec};
use super::suggest;
use super::value::{check_name, parse_bind_address, parse_server_address};

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

const L7: &str = "the L7 HTTP proxy";
const CHECKS: &str = "health checks";

const ROOT: Spec = Spec {
    section: "at the top level",
    keys: &["global", "defaults", "frontend", "backend"],
    later: &[("stats", "the stats page"), ("vrrp", "VRRP")],
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
const FRONTEND: Spec = Spec {
    section: "[frontend.NAME]",
    keys: &[
        "bind",
        "mode",
        "maxconn",
        "backlog",
        "default_backend",
        "timeouts",
    ],
    later: &[
        ("tls", "TLS termination"),
        ("acl", L7),
        ("http_request", L7),
        ("use_backend", L7),
        ("forwardfor", L7),
    ],
};
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
    ],
    later: &[
        ("cookie", "cookie persistence in the L7 HTTP proxy"),
        ("check", CHECKS),
    ],
};
const SERVER: Spec = Spec {
    section: "[[backend.NAME.server]]",
    keys: &["name", "address", "weight", "backup", "disabled"],
    later: &[
        ("check", CHECKS),
        ("cookie", "cookie persistence in the L7 HTTP proxy"),
        ("slowstart", "health checks (slow start)"),
        ("maxconn", "per-server connection limits and queueing"),
    ],
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
];

/// Where a frontend's cross-checked keys are, for the checks run once all sections are read.
struct FrontendSite {
    /// Line and path of `default_backend` (or the header when it is missing).
    backend_line: usize,
    backend_path: String,
    /// Every expanded bind address with the line and path of its array element.
    binds: Vec<(SocketAddr, usize, String)>,
}

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

    Config {
        source: PathBuf::from(source),
        global,
        defaults,
        frontends: frontends.into_iter().map(|(f, _)| f).collect(),
        backends,
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
        "http" => {
            r.error(
                f.line,
                &f.path,
                format!(
                    "mode \"http\" is not supported yet (arrives with {L7}); use mode = \"tcp\""
                ),
            );
            // Kept so that frontend/backend mode agreement is still checked.
            Some(Mode::Http)
        }
        other => {
            let hint = suggest::did_you_mean(other, ["tcp", "http"]);
            r.error(
                f.line,
                &f.path,
                format!("unknown mode \"{other}\"{hint}: expected \"tcp\""),
            );
            None
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
        Some(bf) => {
            if let Some(items) = r.array(bf, "an array of addresses such as [\"0.0.0.0:80\"]") {
                if items.is_empty() {
                    r.error(
                        bf.line,
                        &bf.path,
                        "bind list is empty: give at least one address, e.g. [\":80\"]",
                    );
                }
                for item in items {
                    let Some(text) = r.string(&item) else {
                        continue;
                    };
                    match parse_bind_address(text) {
                        Ok(addrs) => site
                            .binds
                            .extend(addrs.into_iter().map(|a| (a, item.line, item.path.clone()))),
                        Err(msg) => r.error(item.line, &item.path, msg),
                    }
                }
            }
        }
    }

    let mode = get(r, t, f, "mode", mode).unwrap_or(defaults.mode);
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

    let frontend = Frontend {
        name,
        bind: site.binds.iter().map(|(a, _, _)| *a).collect(),
        mode,
        maxconn,
        backlog,
        default_backend: default_backend.unwrap_or_default(),
        default_backend_index: 0,
        timeouts,
    };
    (frontend, site)
}

fn balance(r: &mut Reader<'_>, f: &Field<'_>) -> Option<Balance> {
    const KNOWN: [&str; 5] = ["roundrobin", "static-rr", "leastconn", "source", "first"];
    let s = r.string(f)?;
    match s {
        "roundrobin" => Some(Balance::RoundRobin),
        "static-rr" => Some(Balance::StaticRr),
        "leastconn" => Some(Balance::LeastConn),
        "source" => Some(Balance::Source),
        "first" => Some(Balance::First),
        _ if s == "uri" || s.starts_with("url_param") || s.starts_with("hdr") => {
            r.error(
                f.line,
                &f.path,
                format!("balance \"{s}\" is not supported yet (arrives with {L7})"),
            );
            None
        }
        _ => {
            let hint = suggest::did_you_mean(s, KNOWN);
            r.error(
                f.line,
                &f.path,
                format!(
                    "unknown balance algorithm \"{s}\"{hint}: expected one of {}",
                    KNOWN.join(", ")
                ),
            );
            None
        }
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
    r.check_keys(t, f, &BACKEND, ALL);
    Backend {
        name,
        mode: get(r, t, f, "mode", mode).unwrap_or(defaults.mode),
        balance: get(r, t, f, "balance", balance).unwrap_or(Balance::RoundRobin),
        hash_type: get(r, t, f, "hash_type", hash_type).unwrap_or(HashType::MapBased),
        retries: get(r, t, f, "retries", retries).unwrap_or(defaults.retries),
        redispatch: get(r, t, f, "redispatch", |r, f| r.boolean(f)).unwrap_or(defaults.redispatch),
        splice: get(r, t, f, "splice", |r, f| r.boolean(f)).unwrap_or(true),
        timeouts: get(r, t, f, "timeouts", |r, f| {
            Some(timeouts(r, f, defaults.timeouts, &BACKEND_TIMEOUTS))
        })
        .unwrap_or(defaults.timeouts),
        servers: servers(r, t, f),
    }
}

/// The `[[backend.NAME.server]]` entries (also accepted as an inline array of inline
/// tables), with unique names.
fn servers(r: &mut Reader<'_>, t: &dyn TableLike, backend: &Field<'_>) -> Vec<Server> {
    let path = join(&backend.path, "server");
    let header = format!("[[{path}]]");
    let Some(field) = r.child(t, backend, "server") else {
        r.error(
            backend.line,
            &path,
            format!("backend has no servers: add at least one {header} section"),
        );
        return Vec::new();
    };
    // Each entry: (table, its path, its line).
    let mut entries: Vec<(&dyn TableLike, String, usize)> = Vec::new();
    match field.node {
        Node::TableArray(array) => {
            for (i, table) in array.iter().enumerate() {
                let line = r.line_of(table.span(), field.line);
                entries.push((table, format!("{path}[{i}]"), line));
            }
        }
        Node::Value(Value::Array(array)) => {
            for (i, value) in array.iter().enumerate() {
                let item = r.element(value, format!("{path}[{i}]"), field.line);
                if let Some(table) = r.table(&item) {
                    entries.push((table, item.path, item.line));
                }
            }
            if array.is_empty() {
                r.error(
                    field.line,
                    &path,
                    format!("backend has no servers: add at least one {header} section"),
                );
            }
        }
        _ => {
            r.error(
                field.line,
                &path,
                format!(
                    "expected an array of tables, found {}: write {header} (double brackets) for each server",
                    super::reader::describe(field.node)
                ),
            );
        }
    }

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (table, path, line) in entries {
        let sf = Field {
            path,
            line,
            node: Node::Table(table),
        };
        r.check_keys(table, &sf, &SERVER, ALL);
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
        let server = Server {
            name: name.unwrap_or_default(),
            address: address.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
            weight: get(r, table, &sf, "weight", |r, f| r.u32_in(f, 0, MAX_WEIGHT)).unwrap_or(1),
            backup: get(r, table, &sf, "backup", |r, f| r.boolean(f)).unwrap_or(false),
            disabled: get(r, table, &sf, "disabled", |r, f| r.boolean(f)).unwrap_or(false),
        };
        out.push(server);
    }
    out
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

/// Checks that need every section: each frontend's backend exists and has the same
/// mode, and no address is bound twice.
fn cross_check(
    r: &mut Reader<'_>,
    frontends: &mut [(Frontend, FrontendSite)],
    backends: &[Backend],
) {
    check_binds(r, frontends);
    for (fe, site) in frontends.iter_mut() {
        if fe.default_backend.is_empty() {
            continue; // missing or invalid: already reported
        }
        match backends.iter().position(|b| b.name == fe.default_backend) {
            Some(i) => {
                fe.default_backend_index = i;
                let be = &backends[i];
                if be.mode != fe.mode {
                    r.error(
                        site.backend_line,
                        &site.backend_path,
                        format!(
                            "frontend \"{}\" is mode {} but backend \"{}\" is mode {}: a frontend and its backend must use the same mode",
                            fe.name,
                            mode_name(fe.mode),
                            be.name,
                            mode_name(be.mode)
                        ),
                    );
                }
            }
            None => {
                let hint = if backends.is_empty() {
                    " (no [backend.NAME] section is defined)".to_string()
                } else {
                    suggest::did_you_mean(
                        &fe.default_backend,
                        backends.iter().map(|b| b.name.as_str()),
                    )
                };
                r.error(
                    site.backend_line,
                    &site.backend_path,
                    format!("backend \"{}\" does not exist{hint}", fe.default_backend),
                );
            }
        }
    }
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
    for (addr, line, path, fe) in all {
        match bound.get(addr) {
            Some(&(other, other_line)) if other == fe => r.error(
                line,
                path,
                format!("{addr} is listed twice in this bind list (first at line {other_line})"),
            ),
            Some(&(other, other_line)) => r.error(
                line,
                path,
                format!("{addr} is already bound by frontend \"{other}\" (line {other_line})"),
            ),
            None => {
                bound.insert(addr, (fe, line));
            }
        }
    }
}

/// `tcp` / `http`.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Tcp => "tcp",
        Mode::Http => "http",
    }
}
