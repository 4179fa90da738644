//! A one-screen, human summary of a validated configuration (`halb check`).

use std::fmt::Write as _;
use std::time::Duration;

use super::build::{default_check, mode_name, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_POOL_MAX_IDLE};
use super::model::*;
use super::value::format_duration;
use crate::http::acl::AclSet;
use crate::http::cookie::CookieMode;
use crate::http::errors::{ErrorPages, STATUSES};
use crate::http::Limits;

/// A one-screen summary of `cfg`: the global settings (and the stats page), then each
/// frontend → its backend → the servers (address, weight, backup/disabled flags), the
/// balance algorithm, and the timeouts that differ from their defaults. Ends with a
/// newline.
///
/// A backend with a health check (or with checked servers) gets a `check` line: how it
/// checks and how many of its servers are checked; a checked server is flagged `check`,
/// followed by what its own `check = { ... }` changes, and `slowstart` when set.
///
/// A frontend with `tls` gets a `tls` line (listener, versions, ALPN, resumption) and one
/// `cert` line per certificate (file, names, expiry, `(default)` on the first); a TLS
/// server is flagged `tls (verify ..., sni ...)`. Warnings ([`Config::warnings`]) close
/// the summary, one `warning: FILE:LINE: KEY: message` line each.
///
/// An http frontend also gets a line counting its ACLs and rules (with the forwarding
/// headers and limits that are set), one line per `use_backend` rule, and then every
/// backend it can reach: the use_backend targets in rule order, then `default_backend`
/// (marked so), each with its servers the first time it appears.
///
/// ```text
/// configuration examples/l4-basic.toml: 2 frontends, 2 backends, 6 servers
///
/// global    shards auto, control_core auto, maxconn 20000, log stderr, hard_stop_after 30s, maxpipes 1024
/// defaults  mode tcp, retries 3, redispatch on, timeouts connect 3s
/// stats     bind 127.0.0.1:8404, uri /stats, auth admin, admin on, refresh 5s
///
/// frontend mysql  tcp  bind 10.0.0.100:3306  maxconn 4000  backlog 4000  timeouts client 8h
///   -> backend mysql  balance leastconn  retries 3  redispatch on  timeouts server 8h
///        check  tcp every 2s rise 2 fall 3 timeout 2s  (2 of 2 servers)
///        SERVER      ADDRESS         WEIGHT  FLAGS
///        db1         10.0.1.21:3306      10  check, slowstart 30s
///        db-standby  10.0.1.23:3306       1  backup, check (port 3307)
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
    if let Some(st) = &cfg.stats {
        let _ = writeln!(out, "stats     {}", stats_line(st));
    }
    for v in &cfg.vrrp {
        let _ = writeln!(out, "vrrp      {}", vrrp_line(v));
    }

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
        if let Some(tls) = &fe.tls {
            let _ = writeln!(out, "  tls   {}", tls_line(tls));
            let now = crate::tls::certs::unix_now();
            for (i, cert) in tls.certs.iter().enumerate() {
                let _ = writeln!(out, "  cert  {}", cert_line(cert, i == 0, now));
            }
        }
        // The backends this frontend reaches, in order, each once: (index, is the default).
        let mut reached: Vec<(usize, bool)> = Vec::new();
        if let Some(http) = &fe.http {
            let _ = writeln!(out, "  http  {}", http_line(http));
            for rule in &http.use_backends {
                let _ = writeln!(out, "  use_backend {} {}", rule.backend, rule.condition);
                if !reached.iter().any(|&(i, _)| i == rule.backend_index) {
                    reached.push((rule.backend_index, false));
                }
            }
            if fe.default_backend_index.is_none() {
                let _ = writeln!(
                    out,
                    "  no default_backend: a request that no rule routes gets a 404"
                );
            }
        }
        if let Some(index) = fe.default_backend_index {
            match reached.iter_mut().find(|(i, _)| *i == index) {
                Some(entry) => entry.1 = true,
                None => reached.push((index, true)),
            }
        }
        for (index, is_default) in reached {
            let be = &cfg.backends[index];
            let mut line = format!("  -> backend {}", backend_line(be, &cfg.defaults));
            if is_default && fe.http.is_some() {
                line.push_str("  (default_backend)");
            }
            if shown[index] {
                line.push_str("  (servers listed above)");
                let _ = writeln!(out, "{line}");
                continue;
            }
            shown[index] = true;
            let _ = writeln!(out, "{line}");
            if let Some(check) = check_line(be) {
                let _ = writeln!(out, "       check  {check}");
            }
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
                    server_flags(s, be)
                );
                let _ = writeln!(out, "{}", row.trim_end());
            }
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
    if !cfg.warnings.is_empty() {
        out.push('\n');
        for w in &cfg.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
    }
    out
}

/// `bind 0.0.0.0:443  min_version 1.2  alpn http/1.1  session_cache 20000  tickets on`.
fn tls_line(tls: &FrontendTls) -> String {
    let binds: Vec<String> = tls.bind.iter().map(|a| a.to_string()).collect();
    let alpn = if tls.alpn.is_empty() {
        "none".to_string()
    } else {
        tls.alpn.join(",")
    };
    format!(
        "bind {}  min_version {}  alpn {alpn}  session_cache {}  tickets {}",
        binds.join(", "),
        tls.min_version.as_str(),
        tls.session_cache,
        on_off(tls.session_tickets)
    )
}

/// `/etc/halb/certs/web.pem  www.example.com, example.com  expires 2027-01-01  (default)`.
fn cert_line(cert: &crate::tls::certs::Certificate, default: bool, now: i64) -> String {
    use crate::tls::certs::format_date;
    let names = if cert.names.is_empty() {
        "(no DNS name)".to_string()
    } else {
        cert.names.join(", ")
    };
    let validity = if now > cert.not_after {
        format!("EXPIRED {}", format_date(cert.not_after))
    } else if now < cert.not_before {
        format!("NOT YET VALID (from {})", format_date(cert.not_before))
    } else {
        format!("expires {}", format_date(cert.not_after))
    };
    let mut line = format!("{}  {names}  {validity}", cert.path.display());
    if cert.has_ocsp() {
        line.push_str("  ocsp stapled");
    }
    if default {
        line.push_str("  (default)");
    }
    line
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

/// `3 ACLs, 4 request rules, 1 response rule` and the forwarding headers, limits and
/// error files that are set.
fn http_line(h: &HttpFrontend) -> String {
    let predefined = AclSet::parse(&[]).map_or(0, |set| set.names().count());
    let acls = h.acls.names().count().saturating_sub(predefined);
    let mut parts = vec![format!(
        "{}, {}, {}",
        plural(acls, "ACL"),
        plural(h.request_rules.len(), "request rule"),
        plural(h.response_rules.len(), "response rule")
    )];
    let fw = &h.forwarding;
    if let Some(ff) = &fw.forwardfor {
        parts.push(match ff.except.len() {
            0 => "forwardfor".to_string(),
            n => format!("forwardfor (except {})", plural(n, "network")),
        });
    }
    if fw.x_forwarded_proto {
        parts.push("x_forwarded_proto".to_string());
    }
    if fw.x_forwarded_port {
        parts.push("x_forwarded_port".to_string());
    }
    if let Some(p) = fw.forwarded {
        let mut params = vec!["for"];
        if p.proto {
            params.push("proto");
        }
        if p.by {
            params.push("by");
        }
        parts.push(format!("forwarded ({})", params.join(", ")));
    }
    let l = h.limits;
    let d = Limits::default();
    if l.max_head != d.max_head {
        parts.push(format!("max_request_head {}", l.max_head));
    }
    if l.max_request_line != d.max_request_line {
        parts.push(format!("max_request_line {}", l.max_request_line));
    }
    if l.max_headers != d.max_headers {
        parts.push(format!("max_headers {}", l.max_headers));
    }
    if let Some(n) = h.max_body_size {
        parts.push(format!("max_body_size {n}"));
    }
    let builtin = ErrorPages::new();
    let replaced: Vec<String> = STATUSES
        .iter()
        .filter(|&&s| h.errors.get(s) != builtin.get(s))
        .map(|s| s.to_string())
        .collect();
    if !replaced.is_empty() {
        parts.push(format!("errorfile {}", replaced.join(" ")));
    }
    parts.join(", ")
}

fn backend_line(be: &Backend, defaults: &Defaults) -> String {
    let balance = match &be.balance {
        Balance::RoundRobin => "roundrobin".to_string(),
        Balance::StaticRr => "static-rr".to_string(),
        Balance::LeastConn => "leastconn".to_string(),
        Balance::Source => "source".to_string(),
        Balance::First => "first".to_string(),
        Balance::Uri(o) => {
            let mut text = "uri".to_string();
            if o.whole {
                text.push_str(" whole");
            }
            if o.len > 0 {
                text.push_str(&format!(" len {}", o.len));
            }
            if o.depth > 0 {
                text.push_str(&format!(" depth {}", o.depth));
            }
            text
        }
        Balance::UrlParam(name) => format!("url_param({name})"),
        Balance::Hdr(name) => format!("hdr({name})"),
    };
    let mut parts = vec![be.name.clone(), format!("balance {balance}")];
    let hashing = matches!(
        be.balance,
        Balance::Source | Balance::Uri(_) | Balance::UrlParam(_) | Balance::Hdr(_)
    );
    if hashing {
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
    if let Some(c) = &be.cookie {
        let o = c.options();
        let mut text = format!("cookie {}", o.name);
        if o.mode != CookieMode::Insert {
            text.push_str(&format!(" {:?}", o.mode).to_ascii_lowercase());
        }
        for (on, flag) in [
            (o.indirect, "indirect"),
            (o.nocache, "nocache"),
            (o.httponly, "httponly"),
            (o.secure, "secure"),
        ] {
            if on {
                text.push(' ');
                text.push_str(flag);
            }
        }
        parts.push(text);
    }
    if be.mode == Mode::Http {
        if be.http_server_close {
            parts.push("http_server_close".to_string());
        }
        if be.http_reuse != HttpReuse::Safe {
            parts.push(match be.http_reuse {
                HttpReuse::Always => "http_reuse always".to_string(),
                _ => "http_reuse never".to_string(),
            });
        }
        if be.pool_max_idle != DEFAULT_POOL_MAX_IDLE {
            parts.push(format!("pool_max_idle {}", be.pool_max_idle));
        }
        if be.pool_idle_timeout != DEFAULT_POOL_IDLE_TIMEOUT {
            parts.push(format!(
                "pool_idle_timeout {}",
                format_duration(be.pool_idle_timeout)
            ));
        }
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

/// `R1 on eth0 vrid 51 VRRPv3 priority 100 advert 1s, 10.0.0.100/24, multicast, preempt`
/// and what tracks it.
fn vrrp_line(v: &VrrpInstance) -> String {
    let mut line = format!(
        "{} on {} vrid {} VRRPv{} priority {} advert {}, {}",
        v.name,
        v.interface,
        v.virtual_router_id,
        if v.version == VrrpVersion::V2 { 2 } else { 3 },
        v.priority,
        format_duration(v.advert_int),
        v.virtual_ipaddress
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(" "),
    );
    if v.unicast_peers.is_empty() {
        line.push_str(", multicast");
    } else {
        let peers: Vec<String> = v.unicast_peers.iter().map(|p| p.to_string()).collect();
        let _ = write!(line, ", unicast to {}", peers.join(" "));
    }
    if v.nopreempt {
        line.push_str(", nopreempt");
    } else if !v.preempt_delay.is_zero() {
        let _ = write!(line, ", preempt after {}", format_duration(v.preempt_delay));
    }
    if v.auth_pass.is_some() {
        line.push_str(", auth_pass");
    }
    if let Some(t) = &v.track_proxy {
        let _ = write!(line, ", track_proxy {:+}", t.weight);
    }
    if !v.track_script.is_empty() {
        let _ = write!(line, ", {} track_script", v.track_script.len());
    }
    if !v.track_interface.is_empty() {
        let _ = write!(line, ", track_interface {}", v.track_interface.join(" "));
    }
    if let Some(g) = &v.sync_group {
        let _ = write!(line, ", sync_group {g}");
    }
    line
}

/// `bind 127.0.0.1:8404, uri /stats, auth admin, admin on, refresh 5s`.
fn stats_line(st: &Stats) -> String {
    let auth = match &st.auth {
        Some(a) => format!("auth {}", a.user),
        None => "no auth".to_string(),
    };
    format!(
        "bind {}, uri {}, {auth}, admin {}, refresh {}",
        st.bind,
        st.uri,
        on_off(st.admin),
        format_duration(st.refresh)
    )
}

/// The check servers of `be` start from: its `check`, or the default one.
fn base_check(be: &Backend) -> Check {
    be.check
        .clone()
        .unwrap_or_else(|| default_check(be.timeouts.check))
}

/// `tcp every 2s rise 2 fall 3 timeout 2s  (1 of 2 servers)`, when `be` has a check or
/// checked servers.
fn check_line(be: &Backend) -> Option<String> {
    let checked = be.servers.iter().filter(|s| s.check.is_some()).count();
    if be.check.is_none() && checked == 0 {
        return None;
    }
    let words: Vec<String> = check_words(&base_check(be))
        .into_iter()
        .map(|(_, w)| w)
        .collect();
    let note = match (&be.check, checked) {
        (Some(_), 0) => "(no server has check = true)".to_string(),
        (Some(_), n) => format!("({n} of {} servers)", be.servers.len()),
        (None, n) => format!(
            "(defaults, no check table; {n} of {} servers)",
            be.servers.len()
        ),
    };
    Some(format!("{}  {note}", words.join(" ")))
}

/// A check as `(key, words)` pairs, in display order; keys at their default (or equal
/// to what they default to) are left out.
fn check_words(c: &Check) -> Vec<(&'static str, String)> {
    let mut w = Vec::new();
    match &c.kind {
        CheckKind::Tcp => w.push(("type", "tcp".to_string())),
        CheckKind::Http(h) => {
            w.push(("type", format!("http {} {}", h.method, h.path)));
            if let Some(host) = &h.host {
                w.push(("host", format!("host {host}")));
            }
            let ranges: Vec<String> = h
                .expect_status
                .iter()
                .map(|&(lo, hi)| {
                    if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo}-{hi}")
                    }
                })
                .collect();
            w.push(("expect_status", format!("expect {}", ranges.join(","))));
            if let Some(body) = &h.expect_body {
                w.push(("expect_body", format!("body {body:?}")));
            }
        }
    }
    w.push(("inter", format!("every {}", format_duration(c.inter))));
    if c.fastinter != c.inter {
        w.push((
            "fastinter",
            format!("fastinter {}", format_duration(c.fastinter)),
        ));
    }
    if c.downinter != c.inter {
        w.push((
            "downinter",
            format!("downinter {}", format_duration(c.downinter)),
        ));
    }
    w.push(("rise", format!("rise {}", c.rise)));
    w.push(("fall", format!("fall {}", c.fall)));
    w.push(("timeout", format!("timeout {}", format_duration(c.timeout))));
    if let Some(a) = c.address {
        w.push(("address", format!("address {a}")));
    }
    if let Some(p) = c.port {
        w.push(("port", format!("port {p}")));
    }
    if let Some(o) = c.observe {
        let layer = match o {
            Observe::Layer4 => "layer4",
            Observe::Layer7 => "layer7",
        };
        w.push((
            "observe",
            format!("observe {layer} error_limit {}", c.error_limit),
        ));
    }
    if c.shutdown_sessions_on_down {
        w.push((
            "on_marked_down",
            "on_marked_down shutdown-sessions".to_string(),
        ));
    }
    w
}

/// `check` when `s` is checked exactly as its backend says, else `check (port 8081 every
/// 1s)` with what differs.
fn server_check_flag(c: &Check, be: &Backend) -> String {
    let base = base_check(be);
    if *c == base {
        return "check".to_string();
    }
    let base = check_words(&base);
    let words = check_words(c);
    let mut diff: Vec<&str> = words
        .iter()
        .filter(|piece| !base.contains(piece))
        .map(|(_, w)| w.as_str())
        .collect();
    if diff.is_empty() {
        // A key set back to what it defaults to (e.g. fastinter = inter): say it all.
        diff = words.iter().map(|(_, w)| w.as_str()).collect();
    }
    format!("check ({})", diff.join(" "))
}

fn server_flags(s: &Server, be: &Backend) -> String {
    let mut flags = Vec::new();
    if s.backup {
        flags.push("backup".to_string());
    }
    if s.disabled {
        flags.push("disabled".to_string());
    }
    if s.weight == 0 {
        flags.push("no new traffic (weight 0)".to_string());
    }
    if let Some(c) = &s.cookie {
        flags.push(format!("cookie {c}"));
    }
    if let Some(c) = &s.check {
        flags.push(server_check_flag(c, be));
    }
    if let Some(d) = s.slowstart {
        flags.push(format!("slowstart {}", format_duration(d)));
    }
    if let Some(tls) = &s.tls {
        let verify = match &tls.verify {
            TlsVerify::Required(ca) => format!("verify required, ca_file {}", ca.path.display()),
            TlsVerify::None => "verify none".to_string(),
        };
        match &tls.sni {
            Some(sni) => flags.push(format!("tls ({verify}, sni {sni})")),
            None => flags.push(format!("tls ({verify})")),
        }
    }
    flags.join(", ")
}
