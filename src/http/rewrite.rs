//! Building the head the proxy forwards, sans-io: from a parsed [`RequestHead`] or
//! [`ResponseHead`] (byte ranges into the caller's buffer) and a set of edits, append
//! the outgoing head to a caller-provided `Vec<u8>` that is reused per message. Nothing
//! here allocates besides growing that `Vec` (IP addresses and ports are formatted
//! straight into it).
//!
//! # What is written, in order
//!
//! 1. The start line, rebuilt from its parts: `method SP target SP version` (the target
//!    optionally replaced) or `version SP status SP reason`. The version is unchanged.
//! 2. The original field lines, in order, as `Name: value` (name bytes as received,
//!    value without surrounding whitespace), minus the removed ones (below).
//! 3. The values added by `set_header` / `add_header` rules that a later rule did not
//!    remove, in rule order.
//! 4. Requests only, from [`Forwarding`]: `X-Forwarded-For`, `X-Forwarded-Proto`,
//!    `X-Forwarded-Port`, `Forwarded`.
//! 5. `TE: trailers` (requests, when the client sent it) and the proxy's own
//!    `Connection` field ([`ConnectionHeader`]), then the final CRLF.
//!
//! # Decisions
//!
//! - **Hop-by-hop** (RFC 9110 §7.6.1): `Connection`, `Keep-Alive`, `Proxy-Connection`
//!   and `TE` are always removed, as is every field named in a `Connection` value
//!   (tokens compared case-insensitively, any spacing, over all Connection lines).
//!   `Upgrade` is removed unless the caller forwards an upgrade
//!   ([`ConnectionHeader::Upgrade`]), even when Connection does not name it.
//! - **Never removed because Connection names them**: `Content-Length`,
//!   `Transfer-Encoding` and `Host`. The proxy frames the body from the original head
//!   and forwards it as-is (chunked included), so stripping a framing field on the
//!   client's say-so would desynchronise proxy and backend (request smuggling via
//!   `Connection: Content-Length`).
//! - **TE**: only the `trailers` member is meaningful end to end here (chunked bodies,
//!   trailers included, are forwarded unchanged), so if any TE line carries `trailers`
//!   the request gets `TE: trailers` and `te` in the proxy's Connection field (RFC 9110
//!   §10.1.4 requires the pairing); other codings are dropped — the proxy does not
//!   re-encode. Responses never carry TE.
//! - **Kept** (not hop-by-hop in RFC 9110, and what HAProxy forwards): `Trailer`,
//!   `Proxy-Authorization`, `Proxy-Authenticate`.
//! - **Rules** ([`HeaderRule`]) apply in order: `del_header` removes every line of that
//!   name (original or added by an earlier rule), `set_header` is a `del_header`
//!   followed by an `add_header` (HAProxy `set-header`: the new line goes at the end),
//!   `add_header` appends. Rules may not name the fields the writer manages or that
//!   frame the body ([`RESERVED`]); that, bad names and bad values are rejected when
//!   the rule is built, i.e. when the config is loaded.
//! - **X-Forwarded-For**: like HAProxy's `option forwardfor`, a *new* line
//!   `X-Forwarded-For: <client>` is appended after the existing ones, which are kept
//!   (a list split over lines is the same list, RFC 9110 §5.3). Skipped when the client
//!   is inside one of the `except` networks ([`Cidr`], shared with the ACLs: an IPv4
//!   network also matches the IPv4-mapped form of an address). IPv6 is printed without
//!   brackets; an IPv4-mapped IPv6 client (`::ffff:a.b.c.d`, a dual-stack socket) is
//!   printed as IPv4.
//! - **X-Forwarded-Proto / X-Forwarded-Port**: HAProxy `http-request set-header`
//!   semantics: every incoming line is removed (a client cannot spoof them) and one
//!   line with the proxy's value is appended.
//! - **Forwarded** (RFC 7239): a new line `for=<client>[;proto=<http|https>][;by=<local
//!   address>]` appended after any existing ones (RFC 7239 §4: proxies append). IPv6
//!   nodes are quoted and bracketed: `for="[2001:db8::1]"`; IPv4 is a bare token. The
//!   `except` list does not apply to it.
//! - **Connection**: the proxy decides ([`ConnectionHeader`]); `KeepAlive` always writes
//!   `Connection: keep-alive` (needed for HTTP/1.0 peers, harmless for 1.1), `Omit`
//!   writes nothing (HTTP/1.1 persistence is the default).

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::cidr::Cidr;
use super::head::{is_tchar, trim_ows, Headers, RequestHead, ResponseHead, Version};

/// Errors building rewrite configuration: each is a config error at load time, except
/// [`RewriteError::BadTarget`], which a caller rewriting the target may hit per request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// A header name that is empty or not a `token` (RFC 9110 §5.1).
    #[error("invalid header name `{0}`: must be a non-empty token")]
    BadName(String),
    /// A header value with CR, LF, NUL or another control character (RFC 9110 §5.5).
    #[error("invalid value for header `{0}`: control characters (CR, LF, NUL...) are not allowed")]
    BadValue(String),
    /// A rule naming a field the proxy manages or that frames the body.
    #[error("header `{0}` is managed by the proxy and cannot be changed by a rule")]
    Reserved(String),
    /// A rewritten request-target that is empty or has SP, CTL or non-ASCII bytes.
    #[error("invalid request target")]
    BadTarget,
    /// Not `addr` or `addr/prefix`.
    #[error("`{0}` is not an IP address or CIDR (expected e.g. 10.0.0.0/8 or ::1)")]
    BadCidr(String),
}

/// Field names rules may not touch: hop-by-hop fields the writer manages, and the body
/// framing fields (the body is forwarded as framed by the original head).
pub const RESERVED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
    "transfer-encoding",
    "content-length",
];

/// What a [`HeaderRule`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOp {
    /// Remove every line of the name, then append one.
    Set,
    /// Append one line.
    Add,
    /// Remove every line of the name.
    Del,
}

/// One validated `set_header` / `add_header` / `del_header` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRule {
    op: RuleOp,
    name: Box<str>,
    value: Box<str>,
}

impl HeaderRule {
    /// `set_header`: replace all occurrences of `name` with one `name: value` at the end.
    pub fn set(name: &str, value: &str) -> Result<HeaderRule, RewriteError> {
        HeaderRule::new(RuleOp::Set, name, value)
    }

    /// `add_header`: append `name: value`.
    pub fn add(name: &str, value: &str) -> Result<HeaderRule, RewriteError> {
        HeaderRule::new(RuleOp::Add, name, value)
    }

    /// `del_header`: remove every `name` line (case-insensitive).
    pub fn del(name: &str) -> Result<HeaderRule, RewriteError> {
        HeaderRule::new(RuleOp::Del, name, "")
    }

    fn new(op: RuleOp, name: &str, value: &str) -> Result<HeaderRule, RewriteError> {
        validate_name(name)?;
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return Err(RewriteError::Reserved(name.to_owned()));
        }
        if op != RuleOp::Del {
            validate_value(name, value.as_bytes())?;
        }
        Ok(HeaderRule {
            op,
            name: name.into(),
            value: value.into(),
        })
    }

    pub fn op(&self) -> RuleOp {
        self.op
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// True if this rule removes existing `name` lines.
    fn removes(&self, name: &[u8]) -> bool {
        self.op != RuleOp::Add && self.name.as_bytes().eq_ignore_ascii_case(name)
    }
}

/// A header name must be a non-empty token (RFC 9110 §5.1).
pub fn validate_name(name: &str) -> Result<(), RewriteError> {
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(RewriteError::BadName(name.to_owned()));
    }
    Ok(())
}

/// A header value may not contain CR, LF, NUL or any other control character but HTAB
/// (RFC 9110 §5.5; the same rule our parser enforces, so output always re-parses).
pub fn validate_value(name: &str, value: &[u8]) -> Result<(), RewriteError> {
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(RewriteError::BadValue(name.to_owned()));
    }
    Ok(())
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) → IPv4; anything else unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Parse an `except` entry of `forwardfor` (see [`Cidr::parse`]).
pub fn parse_except(s: &str) -> Result<Cidr, RewriteError> {
    Cidr::parse(s.trim()).map_err(|_| RewriteError::BadCidr(s.to_owned()))
}

/// `forwardfor`: append `X-Forwarded-For` unless the client is in `except`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardFor {
    pub except: Vec<Cidr>,
}

/// Which optional parameters the RFC 7239 `Forwarded` line carries (`for` always).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardedParams {
    pub proto: bool,
    pub by: bool,
}

/// Per-frontend forwarding fields; the default adds nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarding {
    pub forwardfor: Option<ForwardFor>,
    pub x_forwarded_proto: bool,
    pub x_forwarded_port: bool,
    pub forwarded: Option<ForwardedParams>,
}

impl Forwarding {
    /// True if a forwarding field replaces incoming lines of `name`.
    fn replaces(&self, name: &[u8]) -> bool {
        (self.x_forwarded_proto && name.eq_ignore_ascii_case(b"x-forwarded-proto"))
            || (self.x_forwarded_port && name.eq_ignore_ascii_case(b"x-forwarded-port"))
    }
}

/// The client side of one connection, for the forwarding fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The client's address.
    pub client: IpAddr,
    /// The proxy's listening address the client connected to (port → X-Forwarded-Port,
    /// address → Forwarded `by`).
    pub local: SocketAddr,
    /// The client connection is TLS (→ `https`).
    pub https: bool,
}

/// The `Connection` field the proxy writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionHeader {
    /// Write nothing (HTTP/1.1 is persistent by default).
    Omit,
    /// `Connection: keep-alive`.
    KeepAlive,
    /// `Connection: close`.
    Close,
    /// `Connection: upgrade`, and the `Upgrade` field is forwarded.
    Upgrade,
}

/// Append `Connection: close` / `keep-alive` / `upgrade` (nothing for `Omit`).
pub fn write_connection(out: &mut Vec<u8>, conn: ConnectionHeader) {
    write_connection_te(out, conn, false);
}

fn write_connection_te(out: &mut Vec<u8>, conn: ConnectionHeader, te: bool) {
    let token: &[u8] = match conn {
        ConnectionHeader::Omit => b"",
        ConnectionHeader::KeepAlive => b"keep-alive",
        ConnectionHeader::Close => b"close",
        ConnectionHeader::Upgrade => b"upgrade",
    };
    if token.is_empty() && !te {
        return;
    }
    out.extend_from_slice(b"Connection: ");
    out.extend_from_slice(token);
    if te {
        if !token.is_empty() {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(b"te");
    }
    out.extend_from_slice(b"\r\n");
}

/// A per-field hook, called for each field of the given name (see
/// [`RequestEdits::hook`]): `None` drops the field, `Some(value)` forwards that value
/// (borrowing the original to keep it unchanged).
pub type FieldHook<'h> = dyn for<'v> Fn(&'v [u8]) -> Option<std::borrow::Cow<'v, [u8]>> + 'h;

/// Coerces a closure to a [`FieldHook`] (closures need the hint to be higher-ranked).
pub fn field_hook<F>(f: F) -> F
where
    F: for<'v> Fn(&'v [u8]) -> Option<std::borrow::Cow<'v, [u8]>>,
{
    f
}

/// The edits for one forwarded request.
#[derive(Clone, Copy)]
pub struct RequestEdits<'a> {
    /// Replace the request-target (validated: non-empty, visible ASCII only).
    pub target: Option<&'a [u8]>,
    /// `http_request` header rules, in order.
    pub rules: &'a [HeaderRule],
    pub forwarding: &'a Forwarding,
    pub peer: Peer,
    pub connection: ConnectionHeader,
    /// Rewrites or drops each field named `.0` (e.g. cookie persistence on `Cookie`).
    pub hook: Option<(&'a str, &'a FieldHook<'a>)>,
}

/// The edits for one forwarded response.
#[derive(Clone, Copy)]
pub struct ResponseEdits<'a> {
    /// `http_response` header rules, in order.
    pub rules: &'a [HeaderRule],
    pub connection: ConnectionHeader,
    /// Rewrites or drops each field named `.0` (e.g. cookie persistence on `Set-Cookie`).
    pub hook: Option<(&'a str, &'a FieldHook<'a>)>,
    /// Complete field lines (`Name: value\r\n`) added after the rules' additions.
    pub extra: &'a [u8],
}

/// Append the request head to forward for `head` (parsed from `buf`) to `out`.
/// `out` is not cleared. On error nothing is appended.
pub fn write_request(
    out: &mut Vec<u8>,
    head: &RequestHead,
    buf: &[u8],
    edits: &RequestEdits<'_>,
) -> Result<(), RewriteError> {
    let target = match edits.target {
        Some(t) if t.is_empty() || !t.iter().all(|&b| (0x21..0x7f).contains(&b)) => {
            return Err(RewriteError::BadTarget)
        }
        Some(t) => t,
        None => head.target_bytes(buf),
    };
    out.reserve(head.head_len + 128);
    out.extend_from_slice(head.method_bytes(buf));
    out.push(b' ');
    out.extend_from_slice(target);
    out.push(b' ');
    out.extend_from_slice(version_bytes(head.version));
    out.extend_from_slice(b"\r\n");

    let fwd = edits.forwarding;
    let upgrade = edits.connection == ConnectionHeader::Upgrade;
    for (name, value) in head.headers.iter(buf) {
        if is_hop_by_hop(&head.headers, buf, name, upgrade)
            || edits.rules.iter().any(|r| r.removes(name))
            || fwd.replaces(name)
        {
            continue;
        }
        put_hooked(out, name, value, edits.hook);
    }
    write_rule_additions(out, edits.rules, |n| fwd.replaces(n));

    let peer = edits.peer;
    let client = canonical(peer.client);
    if let Some(ff) = &fwd.forwardfor {
        if !ff.except.iter().any(|c| c.contains(client)) {
            out.extend_from_slice(b"X-Forwarded-For: ");
            let _ = write!(out, "{client}");
            out.extend_from_slice(b"\r\n");
        }
    }
    let proto: &[u8] = if peer.https { b"https" } else { b"http" };
    if fwd.x_forwarded_proto {
        put(out, b"X-Forwarded-Proto", proto);
    }
    if fwd.x_forwarded_port {
        let _ = write!(out, "X-Forwarded-Port: {}\r\n", peer.local.port());
    }
    if let Some(params) = fwd.forwarded {
        out.extend_from_slice(b"Forwarded: for=");
        write_node(out, client);
        if params.proto {
            out.extend_from_slice(b";proto=");
            out.extend_from_slice(proto);
        }
        if params.by {
            out.extend_from_slice(b";by=");
            write_node(out, canonical(peer.local.ip()));
        }
        out.extend_from_slice(b"\r\n");
    }

    let te = head.headers.has_token(buf, "te", "trailers");
    if te {
        put(out, b"TE", b"trailers");
    }
    write_connection_te(out, edits.connection, te);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Append the response head to forward for `head` (parsed from `buf`) to `out`.
/// `out` is not cleared.
pub fn write_response(
    out: &mut Vec<u8>,
    head: &ResponseHead,
    buf: &[u8],
    edits: &ResponseEdits<'_>,
) {
    out.reserve(head.head_len + 64);
    out.extend_from_slice(version_bytes(head.version));
    let _ = write!(out, " {} ", head.status);
    out.extend_from_slice(&buf[head.reason.clone()]);
    out.extend_from_slice(b"\r\n");
    let upgrade = edits.connection == ConnectionHeader::Upgrade;
    for (name, value) in head.headers.iter(buf) {
        if is_hop_by_hop(&head.headers, buf, name, upgrade)
            || edits.rules.iter().any(|r| r.removes(name))
        {
            continue;
        }
        put_hooked(out, name, value, edits.hook);
    }
    write_rule_additions(out, edits.rules, |_| false);
    out.extend_from_slice(edits.extra);
    write_connection(out, edits.connection);
    out.extend_from_slice(b"\r\n");
}

fn version_bytes(v: Version) -> &'static [u8] {
    match v {
        Version::Http10 => b"HTTP/1.0",
        Version::Http11 => b"HTTP/1.1",
    }
}

/// `put`, through the hook when the field is the one it watches.
fn put_hooked(out: &mut Vec<u8>, name: &[u8], value: &[u8], hook: Option<(&str, &FieldHook<'_>)>) {
    match hook {
        Some((watched, f)) if name.eq_ignore_ascii_case(watched.as_bytes()) => {
            if let Some(v) = f(value) {
                put(out, name, &v);
            }
        }
        _ => put(out, name, value),
    }
}

fn put(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Lines added by Set/Add rules that no later rule (nor `replaced_later`) removes.
fn write_rule_additions(
    out: &mut Vec<u8>,
    rules: &[HeaderRule],
    replaced_later: impl Fn(&[u8]) -> bool,
) {
    for (i, r) in rules.iter().enumerate() {
        let name = r.name.as_bytes();
        if r.op == RuleOp::Del
            || rules[i + 1..].iter().any(|l| l.removes(name))
            || replaced_later(name)
        {
            continue;
        }
        put(out, name, r.value.as_bytes());
    }
}

/// Whether an incoming field is hop-by-hop and must not be forwarded.
fn is_hop_by_hop(headers: &Headers, buf: &[u8], name: &[u8], upgrade: bool) -> bool {
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    if is("connection") || is("keep-alive") || is("proxy-connection") || is("te") {
        return true;
    }
    if is("upgrade") {
        return !upgrade;
    }
    // Framing and Host are never dropped on the client's say-so (see module docs).
    if is("content-length") || is("transfer-encoding") || is("host") {
        return false;
    }
    headers.values(buf, "connection").any(|v| {
        v.split(|&b| b == b',')
            .any(|t| trim_ows(t).eq_ignore_ascii_case(name))
    })
}

/// A Forwarded node (RFC 7239 §6): IPv4 is a token; IPv6 is `"[addr]"` (quoted, since
/// `[`, `]` and `:` are not tchars).
fn write_node(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => write_v4(out, v4),
        IpAddr::V6(v6) => write_v6_quoted(out, v6),
    }
}

fn write_v4(out: &mut Vec<u8>, ip: Ipv4Addr) {
    let _ = write!(out, "{ip}");
}

fn write_v6_quoted(out: &mut Vec<u8>, ip: Ipv6Addr) {
    let _ = write!(out, "\"[{ip}]\"");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{parse_request, parse_response, Limits, Parsed};

    fn req(buf: &[u8]) -> RequestHead {
        match parse_request(buf, &Limits::default()) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("{other:?}"),
        }
    }

    fn resp(buf: &[u8]) -> ResponseHead {
        match parse_response(buf, &Limits::default()) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("{other:?}"),
        }
    }

    fn peer(client: &str) -> Peer {
        Peer {
            client: client.parse().unwrap(),
            local: "192.0.2.10:8080".parse().unwrap(),
            https: false,
        }
    }

    fn edits<'a>(rules: &'a [HeaderRule], fwd: &'a Forwarding, client: &str) -> RequestEdits<'a> {
        RequestEdits {
            target: None,
            rules,
            forwarding: fwd,
            peer: peer(client),
            connection: ConnectionHeader::Omit,
            hook: None,
        }
    }

    fn rewrite(buf: &[u8], e: &RequestEdits<'_>) -> String {
        let mut out = Vec::new();
        write_request(&mut out, &req(buf), buf, e).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Parse the output back and list its fields.
    fn reparse(out: &[u8]) -> Vec<(String, String)> {
        let h = req(out);
        assert_eq!(h.head_len, out.len());
        h.headers
            .iter(out)
            .map(|(n, v)| {
                (
                    String::from_utf8(n.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    const NOFWD: Forwarding = Forwarding {
        forwardfor: None,
        x_forwarded_proto: false,
        x_forwarded_port: false,
        forwarded: None,
    };

    #[test]
    fn unchanged_head_is_normalised_only() {
        let buf = b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\nX-A:1\r\nAccept:  */*  \r\n\r\n";
        assert_eq!(
            rewrite(buf, &edits(&[], &NOFWD, "10.0.0.1")),
            "GET /a?b=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nAccept: */*\r\n\r\n"
        );
    }

    #[test]
    fn target_rewrite_and_validation() {
        let buf = b"GET /old HTTP/1.0\r\n\r\n";
        let mut e = edits(&[], &NOFWD, "10.0.0.1");
        e.target = Some(b"/new/path?q");
        assert_eq!(rewrite(buf, &e), "GET /new/path?q HTTP/1.0\r\n\r\n");
        for bad in [&b""[..], b"/a b", b"/a\r\n", b"/\xff"] {
            e.target = Some(bad);
            let mut out = b"keep".to_vec();
            assert_eq!(
                write_request(&mut out, &req(buf), buf, &e),
                Err(RewriteError::BadTarget)
            );
            assert_eq!(out, b"keep");
        }
    }

    #[test]
    fn hop_by_hop_removed_incl_connection_named() {
        let buf = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive ,  x-FOO,,\tX-Bar \r\n\
X-Foo: 1\r\nKeep-Alive: timeout=5\r\nX-Keep: k\r\nProxy-Connection: close\r\nx-bar: 2\r\n\
connection: X-Baz\r\nX-Baz: 3\r\nUpgrade: websocket\r\nTE: gzip\r\nTrailer: X-T\r\n\r\n";
        let mut e = edits(&[], &NOFWD, "10.0.0.1");
        e.connection = ConnectionHeader::Close;
        assert_eq!(
            rewrite(buf, &e),
            "GET / HTTP/1.1\r\nHost: h\r\nX-Keep: k\r\nTrailer: X-T\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn framing_and_host_survive_connection_naming() {
        let buf = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\
Connection: content-length, host\r\n\r\nhello";
        let e = edits(&[], &NOFWD, "10.0.0.1");
        assert_eq!(
            rewrite(buf, &e),
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
        );
        let buf = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\
Connection: Transfer-Encoding\r\n\r\n";
        assert_eq!(
            rewrite(buf, &e),
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn upgrade_kept_only_when_asked() {
        let buf = b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Key: k\r\n\r\n";
        let mut e = edits(&[], &NOFWD, "10.0.0.1");
        e.connection = ConnectionHeader::Upgrade;
        assert_eq!(
            rewrite(buf, &e),
            "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\
Connection: upgrade\r\n\r\n"
        );
        e.connection = ConnectionHeader::KeepAlive;
        assert_eq!(
            rewrite(buf, &e),
            "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn te_trailers_kept_with_connection_te() {
        let buf = b"GET / HTTP/1.1\r\nHost: h\r\nTE: gzip, Trailers\r\nConnection: TE\r\n\r\n";
        let mut e = edits(&[], &NOFWD, "10.0.0.1");
        assert_eq!(
            rewrite(buf, &e),
            "GET / HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nConnection: te\r\n\r\n"
        );
        e.connection = ConnectionHeader::Close;
        assert_eq!(
            rewrite(buf, &e),
            "GET / HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nConnection: close, te\r\n\r\n"
        );
    }

    #[test]
    fn forwardfor_appends_new_line() {
        let fwd = Forwarding {
            forwardfor: Some(ForwardFor::default()),
            ..NOFWD
        };
        let buf = b"GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: h\r\n\r\n";
        let out = rewrite(buf, &edits(&[], &fwd, "203.0.113.7"));
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: h\r\n\
X-Forwarded-For: 203.0.113.7\r\n\r\n"
        );
        let h = req(out.as_bytes());
        assert_eq!(h.headers.count(out.as_bytes(), "x-forwarded-for"), 2);
        // IPv6 without brackets; IPv4-mapped printed as IPv4.
        let buf = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(rewrite(buf, &edits(&[], &fwd, "2001:db8::1"))
            .ends_with("\r\nX-Forwarded-For: 2001:db8::1\r\n\r\n"));
        assert!(rewrite(buf, &edits(&[], &fwd, "::ffff:198.51.100.2"))
            .ends_with("\r\nX-Forwarded-For: 198.51.100.2\r\n\r\n"));
    }

    #[test]
    fn forwardfor_except_v4_and_v6() {
        let fwd = Forwarding {
            forwardfor: Some(ForwardFor {
                except: vec![
                    parse_except("127.0.0.0/8").unwrap(),
                    parse_except("2001:db8:1::/48").unwrap(),
                    parse_except("192.0.2.1").unwrap(),
                ],
            }),
            ..NOFWD
        };
        let buf = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let plain = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        for skipped in [
            "127.1.2.3",
            "::ffff:127.0.0.1",
            "2001:db8:1:ffff::9",
            "192.0.2.1",
        ] {
            assert_eq!(rewrite(buf, &edits(&[], &fwd, skipped)), plain, "{skipped}");
        }
        for added in ["128.0.0.1", "2001:db8:2::1", "192.0.2.2", "::1"] {
            assert!(
                rewrite(buf, &edits(&[], &fwd, added)).contains("X-Forwarded-For: "),
                "{added}"
            );
        }
    }

    #[test]
    fn except_entries_are_checked() {
        assert!(parse_except(" 10.0.0.0/8 ").is_ok());
        for bad in ["", "10.0.0.0/33", "x/8"] {
            assert!(
                matches!(parse_except(bad), Err(RewriteError::BadCidr(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn x_forwarded_proto_and_port_replace_incoming() {
        let fwd = Forwarding {
            x_forwarded_proto: true,
            x_forwarded_port: true,
            ..NOFWD
        };
        let buf = b"GET / HTTP/1.1\r\nx-forwarded-proto: https\r\nHost: h\r\n\
X-Forwarded-Port: 443\r\nX-Forwarded-Proto: ftp\r\n\r\n";
        let mut e = edits(&[], &fwd, "10.0.0.1");
        assert_eq!(
            rewrite(buf, &e),
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 8080\r\n\r\n"
        );
        e.peer.https = true;
        e.peer.local = "[::]:443".parse().unwrap();
        assert_eq!(
            rewrite(buf, &e),
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n\r\n"
        );
    }

    #[test]
    fn forwarded_quoting() {
        let fwd = Forwarding {
            forwarded: Some(ForwardedParams {
                proto: true,
                by: true,
            }),
            ..NOFWD
        };
        let buf = b"GET / HTTP/1.1\r\nHost: h\r\nForwarded: for=1.1.1.1\r\n\r\n";
        assert_eq!(
            rewrite(buf, &edits(&[], &fwd, "203.0.113.7")),
            "GET / HTTP/1.1\r\nHost: h\r\nForwarded: for=1.1.1.1\r\n\
Forwarded: for=203.0.113.7;proto=http;by=192.0.2.10\r\n\r\n"
        );
        let mut e = edits(&[], &fwd, "2001:db8::1");
        e.peer.local = "[2001:db8::ff]:443".parse().unwrap();
        e.peer.https = true;
        assert!(rewrite(buf, &e).ends_with(
            "\r\nForwarded: for=\"[2001:db8::1]\";proto=https;by=\"[2001:db8::ff]\"\r\n\r\n"
        ));
        let only_for = Forwarding {
            forwarded: Some(ForwardedParams::default()),
            ..NOFWD
        };
        assert!(rewrite(buf, &edits(&[], &only_for, "::ffff:10.1.2.3"))
            .ends_with("\r\nForwarded: for=10.1.2.3\r\n\r\n"));
    }

    #[test]
    fn rules_apply_in_order() {
        let buf = b"GET / HTTP/1.1\r\nHost: h\r\nX-Env: dev\r\nx-env: dev2\r\nX-Del: a\r\n\
X-Keep: 1\r\n\r\n";
        let rules = [
            HeaderRule::set("X-Env", "prod").unwrap(),
            HeaderRule::add("X-Multi", "1").unwrap(),
            HeaderRule::add("X-Multi", "2").unwrap(),
            HeaderRule::del("x-del").unwrap(),
            HeaderRule::add("X-Gone", "g").unwrap(),
            HeaderRule::del("X-GONE").unwrap(),
            HeaderRule::add("X-Keep", "2").unwrap(),
            HeaderRule::add("X-Late", "a").unwrap(),
            HeaderRule::set("X-Late", "b").unwrap(),
        ];
        let out = rewrite(buf, &edits(&rules, &NOFWD, "10.0.0.1"));
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nHost: h\r\nX-Keep: 1\r\nX-Env: prod\r\nX-Multi: 1\r\nX-Multi: 2\r\n\
X-Keep: 2\r\nX-Late: b\r\n\r\n"
        );
    }

    #[test]
    fn rule_validation() {
        assert_eq!(
            HeaderRule::set("X Bad", "v"),
            Err(RewriteError::BadName("X Bad".into()))
        );
        assert!(matches!(HeaderRule::del(""), Err(RewriteError::BadName(_))));
        assert!(matches!(
            HeaderRule::add("X:y", "v"),
            Err(RewriteError::BadName(_))
        ));
        for v in [
            "a\r\nX-Injected: 1",
            "a\nb",
            "a\rb",
            "a\0b",
            "a\x01b",
            "a\x7fb",
        ] {
            assert_eq!(
                HeaderRule::set("X-A", v),
                Err(RewriteError::BadValue("X-A".into())),
                "{v:?}"
            );
        }
        assert!(HeaderRule::set("X-A", "tab\tand é ok").is_ok());
        assert!(HeaderRule::set("X-A", "").is_ok());
        for name in [
            "Connection",
            "content-length",
            "Transfer-Encoding",
            "TE",
            "Upgrade",
        ] {
            assert_eq!(
                HeaderRule::add(name, "x"),
                Err(RewriteError::Reserved(name.into()))
            );
        }
        let msg = HeaderRule::set("X-A", "\r").unwrap_err().to_string();
        assert!(msg.contains("X-A"), "{msg}");
    }

    #[test]
    fn rules_and_forwarding_interact() {
        // A rule-added X-Forwarded-Proto is replaced by the proxy's; XFF from a rule stays.
        let fwd = Forwarding {
            forwardfor: Some(ForwardFor::default()),
            x_forwarded_proto: true,
            ..NOFWD
        };
        let rules = [
            HeaderRule::add("X-Forwarded-Proto", "spoof").unwrap(),
            HeaderRule::del("X-Forwarded-For").unwrap(),
        ];
        let buf = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n";
        assert_eq!(
            rewrite(buf, &edits(&rules, &fwd, "10.0.0.1")),
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n"
        );
    }

    #[test]
    fn pipelined_second_request() {
        let buf = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\
GET /b HTTP/1.1\r\nHost: h2\r\nConnection: close\r\nX-B: 1\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n";
        let first = req(buf);
        let rest = &buf[first.head_len + 3..];
        let second = req(rest);
        let fwd = Forwarding {
            forwardfor: Some(ForwardFor::default()),
            ..NOFWD
        };
        let rules = [HeaderRule::set("X-B", "2").unwrap()];
        let mut e = edits(&rules, &fwd, "10.0.0.1");
        e.connection = ConnectionHeader::KeepAlive;
        let mut out = b"previous bytes|".to_vec();
        write_request(&mut out, &second, rest, &e).unwrap();
        assert_eq!(
            out,
            b"previous bytes|GET /b HTTP/1.1\r\nHost: h2\r\nX-B: 2\r\nX-Forwarded-For: 10.0.0.1\r\n\
Connection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn output_round_trips_through_parser() {
        let fwd = Forwarding {
            forwardfor: Some(ForwardFor::default()),
            x_forwarded_proto: true,
            x_forwarded_port: true,
            forwarded: Some(ForwardedParams {
                proto: true,
                by: true,
            }),
        };
        let rules = [
            HeaderRule::set("X-Env", "prod").unwrap(),
            HeaderRule::add("X-Tab", "a\tb").unwrap(),
            HeaderRule::del("Cookie").unwrap(),
        ];
        let buf = b"PUT /x HTTP/1.1\r\nHost: example.com:8080\r\nTransfer-Encoding: chunked\r\n\
Cookie: a=b\r\nConnection: keep-alive, X-Hop\r\nX-Hop: h\r\nTE: trailers\r\nAccept: */*\r\n\r\n";
        let mut e = edits(&rules, &fwd, "2001:db8::7");
        e.connection = ConnectionHeader::Close;
        let mut out = Vec::new();
        for _ in 0..2 {
            // The buffer is reused per request.
            out.clear();
            write_request(&mut out, &req(buf), buf, &e).unwrap();
        }
        let h = req(&out);
        assert_eq!(h.target_bytes(&out), b"/x");
        assert!(!h.keep_alive(&out));
        let fields = reparse(&out);
        let expect: Vec<(String, String)> = [
            ("Host", "example.com:8080"),
            ("Transfer-Encoding", "chunked"),
            ("Accept", "*/*"),
            ("X-Env", "prod"),
            ("X-Tab", "a\tb"),
            ("X-Forwarded-For", "2001:db8::7"),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Port", "8080"),
            (
                "Forwarded",
                "for=\"[2001:db8::7]\";proto=http;by=192.0.2.10",
            ),
            ("TE", "trailers"),
            ("Connection", "close, te"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        assert_eq!(fields, expect);
    }

    #[test]
    fn response_hop_by_hop_rules_and_connection() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Srv\r\n\
Keep-Alive: timeout=5\r\nX-Srv: s\r\nServer: nginx\r\nSet-Cookie: a=1\r\nUpgrade: h2c\r\n\r\nok";
        let rules = [
            HeaderRule::del("server").unwrap(),
            HeaderRule::add("X-Frame-Options", "DENY").unwrap(),
        ];
        let mut out = Vec::new();
        write_response(
            &mut out,
            &resp(buf),
            buf,
            &ResponseEdits {
                rules: &rules,
                connection: ConnectionHeader::Close,
                hook: None,
                extra: b"",
            },
        );
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: a=1\r\nX-Frame-Options: DENY\r\n\
Connection: close\r\n\r\n"
        );
        let h = resp(&out);
        assert_eq!(h.head_len, out.len());
        assert!(!h.keep_alive(&out));
    }

    #[test]
    fn response_101_upgrade_and_empty_reason() {
        let buf = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
        let mut out = Vec::new();
        write_response(
            &mut out,
            &resp(buf),
            buf,
            &ResponseEdits {
                rules: &[],
                connection: ConnectionHeader::Upgrade,
                hook: None,
                extra: b"",
            },
        );
        assert_eq!(
            out,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        );
        let buf = b"HTTP/1.0 204 \r\nConnection: keep-alive\r\n\r\n";
        out.clear();
        write_response(
            &mut out,
            &resp(buf),
            buf,
            &ResponseEdits {
                rules: &[],
                connection: ConnectionHeader::KeepAlive,
                hook: None,
                extra: b"",
            },
        );
        assert_eq!(out, b"HTTP/1.0 204 \r\nConnection: keep-alive\r\n\r\n");
        assert!(resp(&out).keep_alive(&out));
    }

    #[test]
    fn write_connection_helper() {
        let mut out = Vec::new();
        write_connection(&mut out, ConnectionHeader::Omit);
        assert!(out.is_empty());
        write_connection(&mut out, ConnectionHeader::Close);
        write_connection(&mut out, ConnectionHeader::KeepAlive);
        assert_eq!(out, b"Connection: close\r\nConnection: keep-alive\r\n");
    }
}
