//! Sans-io routing of one request to the stats listener: what it asks for (a page, an
//! admin action) or the answer to send at once (401, 403, 404, 405, 400, 415).
//!
//! Order of the decisions:
//! 1. `auth` configured and the `Authorization` field missing, malformed or wrong → 401
//!    with `WWW-Authenticate: Basic realm="halb stats"`, on every path (`/metrics` too)
//!    and every method;
//! 2. path (query string ignored): `URI`, `URI;csv`, `URI;json`, `/metrics`; anything
//!    else → 404;
//! 3. method: `GET`/`HEAD` on any of them; `POST` on `URI` only; anything else → 405 with
//!    `Allow` (`GET, HEAD, POST` on `URI`, `GET, HEAD` elsewhere);
//! 4. `POST`: `admin` off (or no `auth`: admin actions are never open) → 403; a body
//!    that is not `application/x-www-form-urlencoded` → 415; a bad form → 400.
//!
//! The I/O loop then, for a page route, builds a report and calls [`Route::render`];
//! for [`Route::Action`], applies it and answers [`see_other`]`(uri)` (303, so that the
//! browser reloads the page with a GET) or, when the backend or server does not exist,
//! [`Response::text`]`(404, ...)`; for [`Route::Respond`], sends it. A `HEAD` request is
//! answered with [`Response::to_bytes`]`(true)`.

use std::fmt::Write as _;

use crate::config::model::Stats;
use crate::stats::render::{self, HtmlOptions};
use crate::stats::report::StatsReport;

/// The largest weight an admin action may set.
pub const MAX_WEIGHT: u32 = 256;

/// The path of the Prometheus page (always served, next to the configured URI).
pub const METRICS_PATH: &str = "/metrics";

/// The realm of the basic-auth challenge.
pub const REALM: &str = "halb stats";

/// Administrative state an admin action sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    /// Back in service (health decides UP or DOWN).
    Ready,
    /// No new traffic; existing connections and persistent clients stay.
    Drain,
    /// Maintenance: no traffic at all.
    Maint,
}

impl AdminState {
    /// `ready`, `drain` or `maint`.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        }
    }

    /// Parse `ready`, `drain` or `maint` (exact, lower case).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ready" => Some(AdminState::Ready),
            "drain" => Some(AdminState::Drain),
            "maint" => Some(AdminState::Maint),
            _ => None,
        }
    }
}

/// What an admin action does to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// Set the administrative state.
    State(AdminState),
    /// Set the weight (0..=[`MAX_WEIGHT`]).
    Weight(u32),
}

/// An admin action posted by the stats page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsAction {
    /// Backend name as posted (not checked against the configuration here).
    pub backend: String,
    /// Server name as posted.
    pub server: String,
    /// What to do.
    pub what: ActionKind,
}

/// What a stats request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET`/`HEAD URI`: the HTML page.
    Html,
    /// `GET`/`HEAD URI;csv`.
    Csv,
    /// `GET`/`HEAD URI;json`.
    Json,
    /// `GET`/`HEAD /metrics`.
    Metrics,
    /// `POST URI`: an admin action to apply, then answer [`see_other`].
    Action(StatsAction),
    /// Answer this at once (401, 403, 404, 405, 400, 415).
    Respond(Response),
}

impl Route {
    /// Whether answering needs a fresh [`StatsReport`] (the page routes).
    pub fn needs_report(&self) -> bool {
        matches!(
            self,
            Route::Html | Route::Csv | Route::Json | Route::Metrics
        )
    }

    /// The `200 OK` answer of a page route rendered from `report`; `None` for
    /// [`Route::Action`] and [`Route::Respond`].
    pub fn render(&self, cfg: &Stats, report: &StatsReport) -> Option<Response> {
        Some(match self {
            Route::Html => ok(
                render::CONTENT_TYPE_HTML,
                render::html(report, &HtmlOptions::from_config(cfg)).into_bytes(),
            ),
            Route::Csv => ok(render::CONTENT_TYPE_CSV, render::csv(report).into_bytes()),
            Route::Json => ok(render::CONTENT_TYPE_JSON, render::json(report).into_bytes()),
            Route::Metrics => ok(
                render::CONTENT_TYPE_METRICS,
                render::prometheus(report).into_bytes(),
            ),
            Route::Action(_) | Route::Respond(_) => return None,
        })
    }
}

/// A complete answer, written by [`Response::to_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type` value.
    pub content_type: &'static str,
    /// More header fields (`WWW-Authenticate`, `Allow`, `Location`).
    pub extra_headers: Vec<(String, String)>,
    /// Body (also counted by `Content-Length` for `HEAD`, which does not send it).
    pub body: Vec<u8>,
}

/// Content type of the plain-text answers (errors, redirects).
pub const CONTENT_TYPE_TEXT: &str = "text/plain; charset=utf-8";

/// `200 OK` with `body`.
pub fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
    Response {
        status: 200,
        content_type,
        extra_headers: Vec::new(),
        body: body.into(),
    }
}

/// `303 See Other` to `location` (after a successful POST: the browser GETs the page).
pub fn see_other(location: &str) -> Response {
    let mut r = Response::text(303, &format!("See {location}"));
    r.extra_headers
        .push(("Location".to_owned(), location.to_owned()));
    r
}

/// The reason phrase of the statuses the stats listener sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

impl Response {
    /// A plain-text answer: `"{status} {reason}: {message}\n"`.
    pub fn text(status: u16, message: &str) -> Response {
        Response {
            status,
            content_type: CONTENT_TYPE_TEXT,
            extra_headers: Vec::new(),
            body: format!("{status} {}: {message}\n", reason(status)).into_bytes(),
        }
    }

    /// The response as HTTP/1.1 bytes: status line, `Content-Type`, `Content-Length`,
    /// `Cache-Control: no-cache`, `Connection: close`, the extra fields, then the body
    /// unless `head_only` (answering `HEAD`: the same head, no body). CR, LF and other
    /// control characters in extra field names or values are dropped.
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut head = String::with_capacity(160);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-cache\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.extra_headers {
            head.extend(name.chars().filter(|c| !c.is_control()));
            head.push_str(": ");
            head.extend(value.chars().filter(|&c| c == '\t' || !c.is_control()));
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// Route one request. `target` is the request-target as received (origin or absolute
/// form); `authorization` and `content_type` are the values of those fields, if present;
/// `body` the request body (the caller bounds its size).
pub fn route(
    cfg: &Stats,
    method: &str,
    target: &str,
    authorization: Option<&[u8]>,
    content_type: Option<&[u8]>,
    body: &[u8],
) -> Route {
    if let Some(auth) = &cfg.auth {
        if !authorized(authorization, &auth.user, &auth.password) {
            let mut r = Response::text(401, "authentication required");
            r.extra_headers.push((
                "WWW-Authenticate".to_owned(),
                format!("Basic realm=\"{REALM}\""),
            ));
            return Route::Respond(r);
        }
    }
    let path = path_of(target);
    let page = if path == cfg.uri {
        Route::Html
    } else if path == METRICS_PATH {
        Route::Metrics
    } else if path.strip_prefix(cfg.uri.as_str()) == Some(";csv") {
        Route::Csv
    } else if path.strip_prefix(cfg.uri.as_str()) == Some(";json") {
        Route::Json
    } else {
        return Route::Respond(Response::text(404, "no such stats page"));
    };
    match method {
        "GET" | "HEAD" => page,
        "POST" if page == Route::Html => post(cfg, content_type, body),
        _ => {
            let allow = if page == Route::Html {
                "GET, HEAD, POST"
            } else {
                "GET, HEAD"
            };
            let mut r = Response::text(405, &format!("allowed methods: {allow}"));
            r.extra_headers.push(("Allow".to_owned(), allow.to_owned()));
            Route::Respond(r)
        }
    }
}

/// The path of a request-target: the absolute form's scheme and authority removed, the
/// query string (and a fragment, should one be sent) ignored.
fn path_of(target: &str) -> &str {
    let mut path = target;
    for scheme in ["http://", "https://"] {
        if let Some(rest) = strip_prefix_ignore_case(target, scheme) {
            path = rest.find('/').map_or("/", |i| &rest[i..]);
            break;
        }
    }
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn post(cfg: &Stats, content_type: Option<&[u8]>, body: &[u8]) -> Route {
    if !cfg.admin || cfg.auth.is_none() {
        return Route::Respond(Response::text(403, "admin actions are disabled"));
    }
    if !is_form(content_type) {
        return Route::Respond(Response::text(
            415,
            "expected Content-Type: application/x-www-form-urlencoded",
        ));
    }
    match parse_action(body) {
        Ok(action) => Route::Action(action),
        Err(why) => Route::Respond(Response::text(400, &why)),
    }
}

/// `application/x-www-form-urlencoded`, case-insensitive, parameters (`; charset=...`)
/// allowed.
fn is_form(content_type: Option<&[u8]>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let media = ct.split(|&b| b == b';').next().unwrap_or_default();
    media
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
}

/// Parse the admin form: `backend`, `server`, `action` = `ready`/`drain`/`maint`/`weight`,
/// `weight` (required for `action=weight`). Other fields are ignored; a field given
/// twice, a bad `%XX` escape or invalid UTF-8 is an error.
pub fn parse_action(body: &[u8]) -> Result<StatsAction, String> {
    let (mut backend, mut server, mut action, mut weight) = (None, None, None, None);
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let k = form_decode(k)?;
        let slot = match k.as_str() {
            "backend" => &mut backend,
            "server" => &mut server,
            "action" => &mut action,
            "weight" => &mut weight,
            _ => continue,
        };
        if slot.replace(form_decode(v)?).is_some() {
            return Err(format!("field {k:?} given twice"));
        }
    }
    let required = |v: Option<String>, name: &str| match v {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("missing field {name:?}")),
    };
    let backend = required(backend, "backend")?;
    let server = required(server, "server")?;
    let action = required(action, "action")?;
    let what = if action == "weight" {
        let w = required(weight, "weight")?;
        match w.trim().parse::<u32>() {
            Ok(n) if n <= MAX_WEIGHT => ActionKind::Weight(n),
            _ => return Err(format!("weight must be 0..={MAX_WEIGHT}, got {w:?}")),
        }
    } else {
        match AdminState::parse(&action) {
            Some(state) => ActionKind::State(state),
            None => {
                return Err(format!(
                    "unknown action {action:?} (ready, drain, maint, weight)"
                ))
            }
        }
    };
    Ok(StatsAction {
        backend,
        server,
        what,
    })
}

/// Decode one `application/x-www-form-urlencoded` name or value: `+` → space, `%XX` →
/// byte; the result must be UTF-8.
pub fn form_decode(s: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
                match (hex(s.get(i + 1)), hex(s.get(i + 2))) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => return Err("bad %-escape in the form".into()),
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "the form is not UTF-8".into())
}

/// Whether `authorization` is `Basic base64(user:password)` with the configured
/// credentials. The scheme is case-insensitive; user and password are compared in
/// constant time (for a given length of the expected values).
pub fn authorized(authorization: Option<&[u8]>, user: &str, password: &str) -> bool {
    let Some(value) = authorization else {
        return false;
    };
    let value = value.trim_ascii();
    if value.len() < 6 || !value[..6].eq_ignore_ascii_case(b"Basic ") {
        return false;
    }
    let Some(decoded) = base64_decode(value[6..].trim_ascii_start()) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    // `&`, not `&&`: both comparisons always run.
    ct_eq(&decoded[..colon], user.as_bytes()) & ct_eq(&decoded[colon + 1..], password.as_bytes())
}

/// Constant-time equality: the time depends on `expected`'s length only.
fn ct_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, &e) in expected.iter().enumerate() {
        diff |= e ^ given.get(i).copied().unwrap_or(!e);
    }
    std::hint::black_box(diff) == 0
}

/// Decode standard base64 (RFC 4648 §4, `+/`), with or without `=` padding. `None` on
/// any other byte, misplaced padding, or a length that cannot be base64.
pub fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let data = match s.iter().position(|&c| c == b'=') {
        Some(p) => {
            // Padding only at the end, at most two, completing a 4-byte group.
            let pad = &s[p..];
            if pad.len() > 2 || pad.iter().any(|&c| c != b'=') || s.len() % 4 != 0 {
                return None;
            }
            &s[..p]
        }
        None => s,
    };
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut n = 0u32;
        for &c in chunk {
            n = n << 6 | val(c)?;
        }
        n <<= 6 * (4 - chunk.len() as u32);
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}
