//! The HTML stats page, in HAProxy's spirit: process facts at the top, a legend, then one
//! table per frontend and one per backend (a row per server plus the backend's total
//! row), rows coloured by state. Self-contained HTML5: inline CSS, no script, no
//! external resource; the page reloads itself with `<meta http-equiv="refresh">`.
//!
//! Hooks for tests and scrapers: every server row is
//! `<tr class="server state-UP" data-backend="app" data-server="web1" data-state="UP">`;
//! a backend's total row is `<tr class="backend total bk-UP" data-backend="app">`;
//! frontend rows are `<tr class="frontend" data-frontend="main">`. With `admin`, each
//! server row ends with forms posting `backend`, `server`, `action` (and `weight`) to the
//! stats URI.

use std::fmt::Write as _;

use super::{backend_status, human_duration, usable_split, ALL_STATES, RESPONSE_CLASSES};
use crate::config::model::Stats;
use crate::stats::report::{
    BackendReport, Counters, FrontendReport, ServerReport, ServerState, StatsReport,
};

/// What the HTML page needs besides the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtmlOptions<'a> {
    /// The stats URI (`/stats`): forms post to it, links to `;csv`/`;json` hang off it.
    pub uri: &'a str,
    /// Auto-refresh period in seconds; 0 = no `<meta http-equiv="refresh">`.
    pub refresh_secs: u64,
    /// Show the admin forms (ready/drain/maint, weight) on server rows.
    pub admin: bool,
}

impl<'a> HtmlOptions<'a> {
    /// The options of a `[stats]` section: its URI, its refresh (rounded up to whole
    /// seconds; zero disables it), admin forms when `admin` is on and `auth` is set
    /// (the router refuses admin actions without auth, so no form is shown either).
    pub fn from_config(cfg: &'a Stats) -> Self {
        let refresh = cfg.refresh;
        let refresh_secs = refresh.as_secs() + u64::from(refresh.subsec_nanos() > 0);
        HtmlOptions {
            uri: &cfg.uri,
            refresh_secs,
            admin: cfg.admin && cfg.auth.is_some(),
        }
    }
}

/// Append `s` to `out` with `&`, `<`, `>`, `"` and `'` escaped (safe in text and in
/// double- or single-quoted attribute values).
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `s` HTML-escaped (`&`, `<`, `>`, `"`, `'`).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

const STYLE: &str = "\
body{font-family:Arial,Helvetica,sans-serif;font-size:13px;margin:1em;color:#000;background:#fff}\n\
h1{font-size:20px;margin:0 0 .5em}\n\
h2{font-size:15px;margin:1.2em 0 .3em}\n\
table{border-collapse:collapse;margin-bottom:.5em}\n\
th,td{border:1px solid #999;padding:2px 5px;white-space:nowrap}\n\
th{background:#20377a;color:#fff;font-weight:normal}\n\
td.n{text-align:right}\n\
table.info th{text-align:left;background:#e0e0e0;color:#000}\n\
tr.frontend td{background:#eef}\n\
tr.total td{font-weight:bold;background:#d8d8d8}\n\
tr.bk-DOWN td{background:#ff8080}\n\
.state-UP td,.legend .state-UP{background:#c0f0c0}\n\
.state-GOING_DOWN td,.legend .state-GOING_DOWN{background:#ffd070}\n\
.state-GOING_UP td,.legend .state-GOING_UP{background:#ffe8a0}\n\
.state-DOWN td,.legend .state-DOWN{background:#ff9090}\n\
.state-DRAIN td,.legend .state-DRAIN{background:#b0d0f0}\n\
.state-MAINT td,.legend .state-MAINT{background:#c0c0d0}\n\
.vrrp-MASTER td{background:#c0f0c0}\n\
.vrrp-BACKUP td{background:#e8e8f0}\n\
.vrrp-FAULT td{background:#ff9090}\n\
.vrrp-INIT td{background:#c0c0d0}\n\
.legend span{display:inline-block;padding:2px 6px;margin-right:4px;border:1px solid #999}\n\
td.actions form{display:inline;margin:0 2px 0 0}\n\
td.actions input[type=number]{width:4.5em}\n\
a{color:#20377a}\n";

/// The HTML stats page of `report`.
pub fn html(report: &StatsReport, opts: &HtmlOptions<'_>) -> String {
    let mut out = String::with_capacity(
        4096 + 1024 * report.frontends.len()
            + report
                .backends
                .iter()
                .map(|b| 1024 + (800 + 1200 * usize::from(opts.admin)) * b.servers.len())
                .sum::<usize>(),
    );
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    if opts.refresh_secs > 0 {
        let _ = writeln!(
            out,
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            opts.refresh_secs
        );
    }
    out.push_str("<title>");
    escape_into(&mut out, report.info.name);
    out.push_str(" statistics</title>\n<style>\n");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n<h1>");
    escape_into(&mut out, report.info.name);
    out.push_str(" statistics report</h1>\n");
    info_table(&mut out, report, opts);
    legend(&mut out);
    if !report.vrrp.is_empty() {
        vrrp_table(&mut out, &report.vrrp);
    }
    for f in &report.frontends {
        frontend_table(&mut out, f);
    }
    for b in &report.backends {
        backend_table(&mut out, b, opts);
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn info_table(out: &mut String, report: &StatsReport, opts: &HtmlOptions<'_>) {
    let i = &report.info;
    out.push_str("<table class=\"info\">\n");
    let mut row = |k: &str, v: &str| {
        out.push_str("<tr><th>");
        out.push_str(k);
        out.push_str("</th><td>");
        escape_into(out, v);
        out.push_str("</td></tr>\n");
    };
    row("Version", i.version);
    row("PID", &i.pid.to_string());
    row(
        "Uptime",
        &format!("{} ({} s)", human_duration(i.uptime_secs), i.uptime_secs),
    );
    row("Generation", &i.generation.to_string());
    row("Configuration", &i.config);
    row("Reloads", &i.reloads.to_string());
    row("Shards", &i.shards.to_string());
    row("Current connections", &i.current_connections.to_string());
    row(
        "Refresh",
        &if opts.refresh_secs > 0 {
            format!("every {} s", opts.refresh_secs)
        } else {
            "off".to_owned()
        },
    );
    out.push_str("</table>\n<p class=\"links\">Other formats: <a href=\"");
    escape_into(out, opts.uri);
    out.push_str(";csv\">CSV</a> · <a href=\"");
    escape_into(out, opts.uri);
    out.push_str(";json\">JSON</a> · <a href=\"/metrics\">Prometheus</a></p>\n");
}

fn legend(out: &mut String) {
    out.push_str("<p class=\"legend\">Legend: ");
    for s in ALL_STATES {
        let what = match s {
            ServerState::Up => "up",
            ServerState::GoingDown => "up, going down",
            ServerState::GoingUp => "down, going up",
            ServerState::Down => "down",
            ServerState::Drain => "draining (admin)",
            ServerState::Maint => "maintenance (admin)",
        };
        let _ = write!(
            out,
            "<span class=\"state-{0}\">{0}: {1}</span>",
            s.as_str(),
            what
        );
    }
    out.push_str("</p>\n");
}

/// The VRRP instances: one row each, coloured by state,
/// `<tr class="vrrp vrrp-MASTER" data-instance="VI_1" data-state="MASTER">`.
fn vrrp_table(out: &mut String, instances: &[crate::control::vrrp::InstanceReport]) {
    out.push_str("<h2>VRRP</h2>\n<table class=\"vrrp\">\n<tr><th>Instance</th><th>State</th><th>Priority</th><th>Base</th><th>Master</th><th>Interface</th><th>VRID</th><th>Version</th><th>Virtual addresses</th><th>Last transition</th><th>Since</th><th>Reason</th><th>Faults</th><th>Adverts sent</th><th>Adverts received</th><th>Dropped</th></tr>\n");
    for i in instances {
        let _ = write!(out, "<tr class=\"vrrp vrrp-{0}\" data-instance=\"", i.state);
        escape_into(out, &i.name);
        let _ = write!(out, "\" data-state=\"{}\">", i.state);
        text(out, &i.name);
        text(out, i.state);
        num(out, i.priority);
        num(out, i.base_priority);
        text(out, i.master.as_deref().unwrap_or("-"));
        text(out, &i.interface);
        num(out, i.virtual_router_id);
        num(out, i.version);
        text(
            out,
            &format!(
                "{}{}",
                i.virtual_ipaddress.join(" "),
                if i.holds_addresses { " (held)" } else { "" }
            ),
        );
        text(out, i.last_transition.as_deref().unwrap_or("-"));
        text(out, &human_duration(i.since_secs));
        text(out, &i.reason);
        text(out, &i.faults.join("; "));
        num(out, i.counters.adverts_sent);
        num(out, i.counters.adverts_received);
        num(out, i.counters.invalid.values().sum::<u64>());
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn num(out: &mut String, n: impl std::fmt::Display) {
    let _ = write!(out, "<td class=\"n\">{n}</td>");
}

fn text(out: &mut String, s: &str) {
    out.push_str("<td>");
    escape_into(out, s);
    out.push_str("</td>");
}

fn frontend_table(out: &mut String, f: &FrontendReport) {
    out.push_str("<h2>Frontend ");
    escape_into(out, &f.name);
    out.push_str("</h2>\n<table class=\"frontend\" data-frontend=\"");
    escape_into(out, &f.name);
    out.push_str(
        "\">\n<thead>\n\
         <tr><th rowspan=\"2\">Name</th><th rowspan=\"2\">Status</th><th rowspan=\"2\">Mode</th>\
         <th rowspan=\"2\">Bind</th><th colspan=\"4\">Sessions</th><th colspan=\"2\">Bytes</th>\
         <th rowspan=\"2\">Requests</th><th colspan=\"6\">Responses</th>\
         <th rowspan=\"2\">Denied</th><th rowspan=\"2\">Request errors</th></tr>\n\
         <tr><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th><th>In</th><th>Out</th>",
    );
    response_heads(out);
    out.push_str("</tr>\n</thead>\n<tbody>\n<tr class=\"frontend\" data-frontend=\"");
    escape_into(out, &f.name);
    out.push_str("\">");
    text(out, "FRONTEND");
    text(out, "OPEN");
    text(out, f.mode);
    let bind: Vec<String> = f.bind.iter().map(ToString::to_string).collect();
    text(out, &bind.join(", "));
    let c = &f.counters;
    num(out, c.current_sessions);
    num(out, c.max_sessions);
    num(out, f.maxconn);
    num(out, c.total_sessions);
    num(out, c.bytes_in);
    num(out, c.bytes_out);
    num(out, c.http_requests);
    for n in c.http_responses {
        num(out, n);
    }
    num(out, c.denied);
    num(out, c.request_errors);
    out.push_str("</tr>\n</tbody>\n</table>\n");
}

fn response_heads(out: &mut String) {
    for class in RESPONSE_CLASSES {
        let _ = write!(out, "<th>{class}</th>");
    }
}

fn backend_table(out: &mut String, b: &BackendReport, opts: &HtmlOptions<'_>) {
    out.push_str("<h2>Backend ");
    escape_into(out, &b.name);
    let _ = write!(out, " <small>({}, ", b.mode);
    escape_into(out, &b.balance);
    let _ = write!(
        out,
        ", {}/{} servers usable)</small></h2>\n<table class=\"backend\" data-backend=\"",
        b.usable_servers,
        b.servers.len()
    );
    escape_into(out, &b.name);
    out.push_str(
        "\">\n<thead>\n\
         <tr><th rowspan=\"2\">Name</th><th colspan=\"4\">Server</th><th colspan=\"3\">Check</th>\
         <th colspan=\"2\">State change</th><th colspan=\"3\">Sessions</th>\
         <th colspan=\"2\">Bytes</th><th rowspan=\"2\">Requests</th><th colspan=\"6\">Responses</th>\
         <th colspan=\"2\">Errors</th><th colspan=\"2\">Warnings</th><th rowspan=\"2\">Queue</th>",
    );
    if opts.admin {
        out.push_str("<th rowspan=\"2\">Actions</th>");
    }
    out.push_str(
        "</tr>\n<tr><th>Address</th><th>State</th><th>Admin</th><th>Weight</th>\
         <th>Last check</th><th>Fails</th><th>Downs</th>\
         <th>Reason</th><th>Last change / downtime</th>\
         <th>Cur</th><th>Max</th><th>Total</th><th>In</th><th>Out</th>",
    );
    response_heads(out);
    out.push_str("<th>Conn</th><th>Resp</th><th>Retr</th><th>Redis</th></tr>\n</thead>\n<tbody>\n");
    for s in &b.servers {
        server_row(out, b, s, opts);
    }
    backend_row(out, b, opts);
    out.push_str("</tbody>\n</table>\n");
}

fn server_row(out: &mut String, b: &BackendReport, s: &ServerReport, opts: &HtmlOptions<'_>) {
    let state = s.state.as_str();
    let _ = write!(out, "<tr class=\"server state-{state}\" data-backend=\"");
    escape_into(out, &b.name);
    out.push_str("\" data-server=\"");
    escape_into(out, &s.name);
    let _ = write!(out, "\" data-state=\"{state}\">");
    if s.backup {
        out.push_str("<td>");
        escape_into(out, &s.name);
        out.push_str(" <small>(backup)</small></td>");
    } else {
        text(out, &s.name);
    }
    text(out, &s.address.to_string());
    let _ = write!(out, "<td class=\"state\">{state}</td>");
    text(out, s.admin);
    let _ = write!(
        out,
        "<td class=\"n\" title=\"effective / configured\">{}/{}</td>",
        s.effective_weight, s.weight
    );
    let check = match (&s.last_check, s.checked) {
        (Some(c), _) => c.as_str(),
        (None, true) => "pending",
        (None, false) => "no check",
    };
    text(out, check);
    if s.checked {
        num(out, s.check_failures);
        num(out, s.down_transitions);
    } else {
        out.push_str("<td></td><td></td>");
    }
    text(out, &s.reason);
    let _ = write!(
        out,
        "<td>{} ago / {}</td>",
        human_duration(s.last_change_secs),
        human_duration(s.downtime_secs)
    );
    traffic_cells(out, &s.counters);
    if opts.admin {
        actions_cell(out, b, s, opts);
    }
    out.push_str("</tr>\n");
}

fn backend_row(out: &mut String, b: &BackendReport, opts: &HtmlOptions<'_>) {
    let status = backend_status(b);
    let _ = write!(
        out,
        "<tr class=\"backend total bk-{status}\" data-backend=\""
    );
    escape_into(out, &b.name);
    out.push_str("\">");
    text(out, "BACKEND");
    let (active, backup) = usable_split(b);
    let _ = write!(
        out,
        "<td>{} active, {} backup usable</td><td class=\"state\">{status}</td><td></td>",
        active, backup
    );
    let (eff, cfg) = b.servers.iter().fold((0u64, 0u64), |(e, c), s| {
        (e + u64::from(s.effective_weight), c + u64::from(s.weight))
    });
    let _ = write!(
        out,
        "<td class=\"n\" title=\"effective / configured\">{eff}/{cfg}</td>"
    );
    out.push_str("<td></td><td></td><td></td><td></td><td></td>");
    traffic_cells(out, &b.counters);
    if opts.admin {
        out.push_str("<td></td>");
    }
    out.push_str("</tr>\n");
}

/// Sessions cur/max/total, bytes in/out, requests, responses by class, errors conn/resp,
/// warnings retries/redispatches, queue.
fn traffic_cells(out: &mut String, c: &Counters) {
    num(out, c.current_sessions);
    num(out, c.max_sessions);
    num(out, c.total_sessions);
    num(out, c.bytes_in);
    num(out, c.bytes_out);
    num(out, c.http_requests);
    for n in c.http_responses {
        num(out, n);
    }
    num(out, c.connection_errors);
    num(out, c.response_errors);
    num(out, c.retries);
    num(out, c.redispatches);
    num(out, c.queue);
}

fn form_start(out: &mut String, b: &BackendReport, s: &ServerReport, opts: &HtmlOptions<'_>) {
    out.push_str("<form method=\"post\" action=\"");
    escape_into(out, opts.uri);
    out.push_str("\"><input type=\"hidden\" name=\"backend\" value=\"");
    escape_into(out, &b.name);
    out.push_str("\"><input type=\"hidden\" name=\"server\" value=\"");
    escape_into(out, &s.name);
    out.push_str("\">");
}

fn actions_cell(out: &mut String, b: &BackendReport, s: &ServerReport, opts: &HtmlOptions<'_>) {
    out.push_str("<td class=\"actions\">");
    for action in ["ready", "drain", "maint"] {
        form_start(out, b, s, opts);
        let _ = write!(
            out,
            "<input type=\"hidden\" name=\"action\" value=\"{action}\">\
             <button type=\"submit\">{action}</button></form>"
        );
    }
    form_start(out, b, s, opts);
    let _ = write!(
        out,
        "<input type=\"hidden\" name=\"action\" value=\"weight\">\
         <input type=\"number\" name=\"weight\" min=\"0\" max=\"256\" value=\"{}\" \
         aria-label=\"weight\"><button type=\"submit\">set</button></form>",
        s.weight
    );
    out.push_str("</td>");
}
