//! A one-screen, human summary of a validated configuration (`halb check`).

use std::fmt::Write as _;
use std::time::Duration;

use super::build::mode_name;
use super::model::*;
use super::value::format_duration;

/// A one-screen summary of `cfg`: the global settings, then each frontend → its backend
/// → the servers (address, weight, backup/disabled flags), the balance algorithm, and
/// the timeouts that differ from their defaults. Ends with a newline.
///
/// ```text
/// configuration examples/l4-basic.toml: 2 frontends, 2 backends, 6 servers
///
/// global    shards auto, control_core auto, maxconn 20000, log stderr, hard_stop_after 30s, maxpipes 1024
/// defaults  mode tcp, retries 3, redispatch on, timeouts connect 3s
///
/// frontend mysql  tcp  bind 10.0.0.100:3306  maxconn 4000  backlog 4000  timeouts client 8h
///   -> backend mysql  balance leastconn  retries 3  redispatch on  timeouts server 8h
///        SERVER      ADDRESS         WEIGHT  FLAGS
///        db1         10.0.1.21:3306      10
///        db-standby  10.0.1.23:3306       1  backup
/// ```
pub fn summary(cfg: &Config) -> String {
    let mut out = String::new();
    let servers: usize = cfg.backends.iter().map(|b| b.servers.len()).sum();
    let _ = writeln!(
        out,
        "configuration {}: {}, {}, {}",
        cfg.source.display(),
        plural(cfg.frontends.len(), "frontend"),
        plural(cfg.backends.len(), "backend"),
        plural(servers, "server"),
    );
    out.push('\n');
    let _ = writeln!(out, "global    {}", global_line(&cfg.global));
    let _ = writeln!(out, "defaults  {}", defaults_line(&cfg.defaults));

    // Column widths shared by every server table, so that they line up.
    let name_w = cfg
        .backends
        .iter()
        .flat_map(|b| &b.servers)
        .map(|s| s.name.len())
        .chain(["SERVER".len()])
        .max()
        .unwrap_or(0);
    let addr_w = cfg
        .backends
        .iter()
        .flat_map(|b| &b.servers)
        .map(|s| s.address.to_string().len())
        .chain(["ADDRESS".len()])
        .max()
        .unwrap_or(0);
    let fe_w = cfg
        .frontends
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap_or(0);

    let mut shown = vec![false; cfg.backends.len()];
    for fe in &cfg.frontends {
        out.push('\n');
        let _ = writeln!(out, "{}", frontend_line(fe, fe_w, &cfg.defaults.timeouts));
        let Some(be) = cfg.backends.get(fe.default_backend_index) else {
            continue;
        };
        let mut line = format!("  -> backend {}", backend_line(be, &cfg.defaults));
        if shown[fe.default_backend_index] {
            line.push_str("  (servers listed above)");
            let _ = writeln!(out, "{line}");
            continue;
        }
        shown[fe.default_backend_index] = true;
        let _ = writeln!(out, "{line}");
        let _ = writeln!(
            out,
            "       {:name_w$}  {:addr_w$}  WEIGHT  FLAGS",
            "SERVER", "ADDRESS"
        );
        for s in &be.servers {
            let row = format!(
                "       {:name_w$}  {:addr_w$}  {:>6}  {}",
                s.name,
                s.address.to_string(),
                s.weight,
                server_flags(s)
            );
            let _ = writeln!(out, "{}", row.trim_end());
        }
    }

    let unused: Vec<&str> = cfg
        .backends
        .iter()
        .zip(&shown)
        .filter(|(_, shown)| !**shown)
        .map(|(b, _)| b.name.as_str())
        .collect();
    if !unused.is_empty() {
        let _ = writeln!(
            out,
            "\nbackends not used by any frontend: {}",
            unused.join(", ")
        );
    }
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn global_line(g: &Global) -> String {
    let mut parts = vec![
        match g.shards {
            ShardCount::Auto => "shards auto".to_string(),
            ShardCount::Fixed(n) => format!("shards {n}"),
        },
        match g.control_core {
            ControlCore::Auto => "control_core auto".to_string(),
            ControlCore::Shared => "control_core shared".to_string(),
            ControlCore::Core(n) => format!("control_core {n}"),
        },
        match g.maxconn {
            Some(n) => format!("maxconn {n}"),
            None => "maxconn auto (from RLIMIT_NOFILE)".to_string(),
        },
    ];
    if let Some(u) = &g.user {
        parts.push(format!("user {u}"));
    }
    if let Some(grp) = &g.group {
        parts.push(format!("group {grp}"));
    }
    parts.push(match &g.log {
        LogTarget::Stderr => "log stderr".to_string(),
        LogTarget::File(p) => format!("log file:{}", p.display()),
    });
    if let Some(p) = &g.admin_socket {
        parts.push(format!("admin_socket {}", p.display()));
    }
    parts.push(format!(
        "hard_stop_after {}",
        format_duration(g.hard_stop_after)
    ));
    parts.push(format!("maxpipes {}", g.maxpipes));
    if let Some(p) = g.pipesize {
        parts.push(format!("pipesize {p}"));
    }
    parts.join(", ")
}

/// Every timeout, with its name.
fn timeout_list(t: &Timeouts) -> [(&'static str, Duration); 7] {
    [
        ("connect", t.connect),
        ("client", t.client),
        ("server", t.server),
        ("http_request", t.http_request),
        ("http_keep_alive", t.http_keep_alive),
        ("tunnel", t.tunnel),
        ("check", t.check),
    ]
}

/// `timeouts a 1s, b 2s` for the timeouts among `keys` that differ from `base`, or "".
fn timeouts_diff(t: &Timeouts, base: &Timeouts, keys: &[&str]) -> String {
    let changed: Vec<String> = timeout_list(t)
        .iter()
        .zip(timeout_list(base))
        .filter(|((k, v), (_, b))| keys.contains(k) && v != b)
        .map(|((k, v), _)| format!("{k} {}", format_duration(*v)))
        .collect();
    if changed.is_empty() {
        String::new()
    } else {
        format!("timeouts {}", changed.join(", "))
    }
}

const ALL_TIMEOUTS: [&str; 7] = [
    "connect",
    "client",
    "server",
    "http_request",
    "http_keep_alive",
    "tunnel",
    "check",
];

fn defaults_line(d: &Defaults) -> String {
    let t = timeouts_diff(&d.timeouts, &Timeouts::default(), &ALL_TIMEOUTS);
    let t = if t.is_empty() {
        "timeouts built-in".to_string()
    } else {
        t
    };
    format!(
        "mode {}, retries {}, redispatch {}, {t}",
        mode_name(d.mode),
        d.retries,
        on_off(d.redispatch)
    )
}

fn frontend_line(fe: &Frontend, name_w: usize, defaults: &Timeouts) -> String {
    let binds: Vec<String> = fe.bind.iter().map(|a| a.to_string()).collect();
    let mut line = format!(
        "frontend {:name_w$}  {}  bind {}  maxconn {}  backlog {}",
        fe.name,
        mode_name(fe.mode),
        binds.join(", "),
        fe.maxconn,
        fe.backlog
    );
    let t = timeouts_diff(
        &fe.timeouts,
        defaults,
        &["client", "http_request", "http_keep_alive"],
    );
    if !t.is_empty() {
        line.push_str("  ");
        line.push_str(&t);
    }
    line
}

fn backend_line(be: &Backend, defaults: &Defaults) -> String {
    let balance = match be.balance {
        Balance::RoundRobin => "roundrobin",
        Balance::StaticRr => "static-rr",
        Balance::LeastConn => "leastconn",
        Balance::Source => "source",
        Balance::First => "first",
    };
    let mut parts = vec![be.name.clone(), format!("balance {balance}")];
    if be.balance == Balance::Source {
        parts.push(match be.hash_type {
            HashType::MapBased => "hash map-based".to_string(),
            HashType::Consistent => "hash consistent".to_string(),
        });
    }
    parts.push(format!("retries {}", be.retries));
    parts.push(format!("redispatch {}", on_off(be.redispatch)));
    if !be.splice {
        parts.push("splice off".to_string());
    }
    let t = timeouts_diff(
        &be.timeouts,
        &defaults.timeouts,
        &["connect", "server", "tunnel", "check"],
    );
    if !t.is_empty() {
        parts.push(t);
    }
    parts.join("  ")
}

fn server_flags(s: &Server) -> String {
    let mut flags = Vec::new();
    if s.backup {
        flags.push("backup");
    }
    if s.disabled {
        flags.push("disabled");
    }
    if s.weight == 0 {
        flags.push("no new traffic (weight 0)");
    }
    flags.join(", ")
}
