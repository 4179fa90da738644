//! HAProxy-like CSV (`URI;csv`): a `# pxname,svname,...` header line, then one line per
//! frontend (`svname` = `FRONTEND`), and per backend one line per server followed by the
//! backend's own line (`svname` = `BACKEND`), as HAProxy orders them.
//!
//! Field names are HAProxy's where HAProxy has the field (`scur`, `stot`, `hrsp_2xx`,
//! `econ`, `wretr`, ...), with halb-specific ones at the end (`addr`, `mode`, `algo`,
//! `uweight`, `admin`, `last_chk`, `reason`). A field that does not apply to a line is
//! empty. `type` is 0 for a frontend, 1 for a backend, 2 for a server (HAProxy's
//! values). Lines end with `\n`; fields holding `,`, `"`, CR or LF are quoted with `"`
//! and inner quotes doubled (RFC 4180).

use std::fmt::Write as _;

use super::{backend_status, usable_split};
use crate::stats::report::{BackendReport, Counters, FrontendReport, ServerReport, StatsReport};

/// The CSV columns, in order (the header line is `# ` followed by these joined by `,`).
pub const CSV_FIELDS: &[&str] = &[
    "pxname",
    "svname",
    "qcur",
    "scur",
    "smax",
    "slim",
    "stot",
    "bin",
    "bout",
    "dreq",
    "ereq",
    "econ",
    "eresp",
    "wretr",
    "wredis",
    "status",
    "weight",
    "act",
    "bck",
    "chkfail",
    "chkdown",
    "lastchg",
    "downtime",
    "type",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "req_tot",
    "addr",
    "mode",
    "algo",
    "uweight",
    "admin",
    "last_chk",
    "reason",
];

/// Append one CSV field to `out`, quoted if it holds `,`, `"`, CR or LF (RFC 4180).
pub fn field_into(out: &mut String, s: &str) {
    if s.contains([',', '"', '\r', '\n']) {
        out.push('"');
        for c in s.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// One line under construction: fields are written in [`CSV_FIELDS`] order.
struct Line<'a> {
    out: &'a mut String,
    n: usize,
}

impl Line<'_> {
    fn s(&mut self, v: &str) -> &mut Self {
        if self.n > 0 {
            self.out.push(',');
        }
        self.n += 1;
        field_into(self.out, v);
        self
    }

    fn n(&mut self, v: impl std::fmt::Display) -> &mut Self {
        if self.n > 0 {
            self.out.push(',');
        }
        self.n += 1;
        let _ = write!(self.out, "{v}");
        self
    }

    /// `k` empty fields.
    fn e(&mut self, k: usize) -> &mut Self {
        for _ in 0..k {
            self.s("");
        }
        self
    }

    fn end(&mut self) {
        debug_assert_eq!(self.n, CSV_FIELDS.len(), "CSV line width");
        self.out.push('\n');
    }
}

/// The CSV rendering of `report`.
pub fn csv(report: &StatsReport) -> String {
    let lines = 1
        + report.frontends.len()
        + report
            .backends
            .iter()
            .map(|b| 1 + b.servers.len())
            .sum::<usize>();
    let mut out = String::with_capacity(lines * 200);
    out.push_str("# ");
    out.push_str(&CSV_FIELDS.join(","));
    out.push('\n');
    for f in &report.frontends {
        frontend(&mut out, f);
    }
    for b in &report.backends {
        for s in &b.servers {
            server(&mut out, b, s);
        }
        backend(&mut out, b);
    }
    out
}

/// `hrsp_1xx` .. `req_tot`.
fn http(l: &mut Line<'_>, c: &Counters) {
    for n in c.http_responses {
        l.n(n);
    }
    l.n(c.http_requests);
}

fn frontend(out: &mut String, f: &FrontendReport) {
    let c = &f.counters;
    let mut l = Line { out, n: 0 };
    l.s(&f.name).s("FRONTEND").e(1); // qcur
    l.n(c.current_sessions).n(c.max_sessions).n(f.maxconn);
    l.n(c.total_sessions).n(c.bytes_in).n(c.bytes_out);
    l.n(c.denied).n(c.request_errors).e(4); // econ eresp wretr wredis
    l.s("OPEN").e(6); // weight act bck chkfail chkdown lastchg
    l.e(1).n(0); // downtime, type
    http(&mut l, c);
    let bind: Vec<String> = f.bind.iter().map(ToString::to_string).collect();
    l.s(&bind.join(" ")).s(f.mode).e(5); // algo uweight admin last_chk reason
    l.end();
}

fn server(out: &mut String, b: &BackendReport, s: &ServerReport) {
    let c = &s.counters;
    let mut l = Line { out, n: 0 };
    l.s(&b.name).s(&s.name).n(c.queue);
    l.n(c.current_sessions).n(c.max_sessions).e(1); // slim
    l.n(c.total_sessions).n(c.bytes_in).n(c.bytes_out);
    l.e(2); // dreq ereq
    l.n(c.connection_errors).n(c.response_errors);
    l.n(c.retries).n(c.redispatches);
    l.s(s.state.as_str()).n(s.effective_weight);
    l.n(u8::from(!s.backup)).n(u8::from(s.backup));
    if s.checked {
        l.n(s.check_failures).n(s.down_transitions);
    } else {
        l.e(2);
    }
    l.n(s.last_change_secs).n(s.downtime_secs).n(2);
    http(&mut l, c);
    l.s(&s.address.to_string()).s(b.mode).e(1); // algo
    l.n(s.weight).s(s.admin);
    l.s(s.last_check.as_deref().unwrap_or("")).s(&s.reason);
    l.end();
}

fn backend(out: &mut String, b: &BackendReport) {
    let c = &b.counters;
    let mut l = Line { out, n: 0 };
    l.s(&b.name).s("BACKEND").n(c.queue);
    l.n(c.current_sessions).n(c.max_sessions).e(1); // slim
    l.n(c.total_sessions).n(c.bytes_in).n(c.bytes_out);
    l.n(c.denied).n(c.request_errors);
    l.n(c.connection_errors).n(c.response_errors);
    l.n(c.retries).n(c.redispatches);
    let (eff, cfg) = b.servers.iter().fold((0u64, 0u64), |(e, w), s| {
        (e + u64::from(s.effective_weight), w + u64::from(s.weight))
    });
    let (active, backup) = usable_split(b);
    l.s(backend_status(b)).n(eff).n(active).n(backup);
    l.e(4).n(1); // chkfail chkdown lastchg downtime, type
    http(&mut l, c);
    l.e(1).s(b.mode).s(&b.balance).n(cfg).e(3); // addr; admin last_chk reason
    l.end();
}
