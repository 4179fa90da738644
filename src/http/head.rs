//! Request and response heads: httparse does the tokenizing, this module adds the checks
//! RFC 9112 requires and httparse leaves out, and returns heads as byte ranges into the
//! caller's buffer (no copies, no lifetimes tying the head to the buffer).

use std::ops::Range;

use super::error::HttpError;

/// Size limits for a head. A relaxation is a config option, never a code change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest head (start line, fields, final CRLF) in bytes; beyond it → 431.
    pub max_head: usize,
    /// Longest request line in bytes; beyond it → 414.
    pub max_request_line: usize,
    /// Most header fields in one head; beyond it → 431.
    pub max_headers: usize,
}

impl Default for Limits {
    /// HAProxy-like defaults: a 16 KiB head, an 8 KiB request line, 100 fields.
    fn default() -> Self {
        Limits {
            max_head: 16 * 1024,
            max_request_line: 8 * 1024,
            max_headers: 100,
        }
    }
}

/// The outcome of parsing a head from the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// The head is complete.
    Complete(T),
    /// More bytes are needed (and the limits are not yet exceeded).
    Partial,
}

/// HTTP version of a message; only 1.0 and 1.1 exist here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// The request method. Methods are case-sensitive (RFC 9110 §9.1): `get` is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
    /// Any other token; its bytes are [`RequestHead::method_range`].
    Other,
}

impl Method {
    fn from_bytes(b: &[u8]) -> Method {
        match b {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"CONNECT" => Method::Connect,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }

    /// Idempotent per RFC 9110 §9.2.2 (the proxy may retry these).
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            Method::Get
                | Method::Head
                | Method::Put
                | Method::Delete
                | Method::Options
                | Method::Trace
        )
    }
}

/// One header field as ranges into the buffer the head was parsed from. The value has
/// its leading and trailing whitespace removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRange {
    pub name: Range<usize>,
    pub value: Range<usize>,
}

/// The header fields of a head, in order, as ranges into the parsed buffer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers {
    pub fields: Vec<HeaderRange>,
}

impl Headers {
    /// Number of field lines.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True if there are no field lines.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// All `(name, value)` pairs, in order.
    pub fn iter<'a>(&'a self, buf: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.fields
            .iter()
            .map(move |h| (&buf[h.name.clone()], &buf[h.value.clone()]))
    }

    /// The values of every field named `name` (ASCII case-insensitive), in order.
    pub fn values<'a>(&'a self, buf: &'a [u8], name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.iter(buf)
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The value of the first field named `name`.
    pub fn get<'a>(&'a self, buf: &'a [u8], name: &'a str) -> Option<&'a [u8]> {
        self.values(buf, name).next()
    }

    /// How many field lines are named `name`.
    pub fn count(&self, buf: &[u8], name: &str) -> usize {
        self.values(buf, name).count()
    }

    /// True if any field named `name` contains `token` as a comma-separated list
    /// element (ASCII case-insensitive), e.g. `Connection: keep-alive, Upgrade`.
    pub fn has_token(&self, buf: &[u8], name: &str, token: &str) -> bool {
        self.values(buf, name).any(|v| list_has_token(v, token))
    }
}

/// True if the comma-separated list `value` contains `token` (case-insensitive).
pub fn list_has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|e| trim_ows(e).eq_ignore_ascii_case(token.as_bytes()))
}

/// Strip optional whitespace (SP / HTAB) at both ends.
pub(crate) fn trim_ows(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    pub method_range: Range<usize>,
    pub target: Range<usize>,
    pub version: Version,
    pub headers: Headers,
    /// Bytes of the head, including the final CRLF (and any empty lines before the
    /// request line). The body, or the next pipelined request, starts here.
    pub head_len: usize,
}

impl RequestHead {
    /// The method's bytes.
    pub fn method_bytes<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.method_range.clone()]
    }

    /// The request-target's bytes.
    pub fn target_bytes<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.target.clone()]
    }

    /// Whether the connection stays open after this exchange, per the client
    /// (RFC 9112 §9.3). All Connection fields are considered.
    pub fn keep_alive(&self, buf: &[u8]) -> bool {
        connection_keep_alive(self.version, &self.headers, buf)
    }

    /// The request carries `Expect: 100-continue` (RFC 9110 §10.1.1). An HTTP/1.0
    /// request's Expect is ignored, as that section requires.
    pub fn expects_continue(&self, buf: &[u8]) -> bool {
        self.version == Version::Http11
            && self
                .headers
                .values(buf, "expect")
                .any(|v| v.eq_ignore_ascii_case(b"100-continue"))
    }
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub version: Version,
    /// 100..=599.
    pub status: u16,
    pub reason: Range<usize>,
    pub headers: Headers,
    /// Bytes of the head, including the final CRLF.
    pub head_len: usize,
}

impl ResponseHead {
    /// Whether the backend keeps the connection open after this response
    /// (RFC 9112 §9.3).
    pub fn keep_alive(&self, buf: &[u8]) -> bool {
        connection_keep_alive(self.version, &self.headers, buf)
    }
}

/// The persistence rule of RFC 9112 §9.3 on one Connection field value: HTTP/1.1 is
/// persistent unless `close`; HTTP/1.0 only with `keep-alive` (and not `close`).
pub fn keep_alive(version: Version, connection: Option<&[u8]>) -> bool {
    let has = |t: &str| connection.is_some_and(|v| list_has_token(v, t));
    if has("close") {
        return false;
    }
    match version {
        Version::Http11 => true,
        Version::Http10 => has("keep-alive"),
    }
}

fn connection_keep_alive(version: Version, headers: &Headers, buf: &[u8]) -> bool {
    if headers.has_token(buf, "connection", "close") {
        return false;
    }
    match version {
        Version::Http11 => true,
        Version::Http10 => headers.has_token(buf, "connection", "keep-alive"),
    }
}

/// `tchar` (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Offset of `part` (a sub-slice of `buf`) in `buf`, as a range.
/// An empty `part` may not point into `buf` at all; it becomes `0..0`.
fn range_in(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    if part.is_empty() || start > buf.len() {
        return 0..0;
    }
    start..start + part.len()
}

/// Empty lines (CRLF) before the start line, which RFC 9112 §2.2 says a server SHOULD
/// ignore; httparse skips them too.
fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    while buf[i..].starts_with(b"\r\n") {
        i += 2;
    }
    i
}

/// RFC 9112 §2.2: a line ending is CRLF. httparse also accepts a bare LF; we do not
/// (bare LF is a classic request-smuggling lever between lenient and strict parsers).
fn check_line_endings(head: &[u8]) -> Result<(), HttpError> {
    for (i, &b) in head.iter().enumerate() {
        if b == b'\n' && (i == 0 || head[i - 1] != b'\r') {
            return Err(HttpError::BareLineEnding);
        }
    }
    Ok(())
}

/// httparse reports every bad field line as `HeaderName`; find which rule it broke.
fn diagnose_field_lines(buf: &[u8]) -> HttpError {
    let start = leading_empty_lines(buf);
    let mut lines = buf[start..].split(|&b| b == b'\n');
    lines.next(); // the start line
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        // RFC 9112 §5.2: obs-fold (a line starting with SP/HTAB) in a request → 400.
        // RFC 9112 §2.2: whitespace before the first field line → reject; same shape.
        if line[0] == b' ' || line[0] == b'\t' {
            return HttpError::ObsFold;
        }
        match line.iter().position(|&b| b == b':') {
            // RFC 9110 §5.1: field-name = token, so it cannot be empty.
            Some(0) | None => return HttpError::BadHeaderName,
            Some(colon) => {
                let name = &line[..colon];
                // RFC 9112 §5.1: no whitespace between field name and colon → 400.
                if matches!(name.last(), Some(b' ' | b'\t')) {
                    return HttpError::SpaceBeforeColon;
                }
                if !name.iter().all(|&b| is_tchar(b)) {
                    return HttpError::BadHeaderName;
                }
            }
        }
    }
    HttpError::BadHeaderName
}

/// On httparse's `Version` error: a well-formed `HTTP/d.d` that is not 1.0/1.1 → 505
/// (RFC 9110 §15.6.6); anything else is a malformed request line → 400 (RFC 9112 §3).
fn diagnose_version(buf: &[u8]) -> HttpError {
    let start = leading_empty_lines(buf);
    let line = buf[start..]
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    match parts.as_slice() {
        [_, _, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            HttpError::VersionNotSupported
        }
        _ => HttpError::BadRequestLine,
    }
}

/// httparse rejects a version as soon as it cannot be `HTTP/1.x` (`GET / HTTP/2` before
/// the `.0` has arrived). If the request line is not complete yet and its version is
/// still a prefix of some `HTTP/d.d`, wait for the rest: the complete line decides
/// between 505 (a well-formed other version) and 400.
fn version_incomplete(buf: &[u8]) -> bool {
    let start = leading_empty_lines(buf);
    let line = &buf[start..];
    if line.contains(&b'\n') {
        return false;
    }
    let Some(version) = line.split(|&b| b == b' ').nth(2) else {
        return false;
    };
    const SHAPE: &[u8] = b"HTTP/d.d";
    version.len() < SHAPE.len()
        && version.iter().zip(SHAPE).all(|(&b, &want)| match want {
            b'd' => b.is_ascii_digit(),
            _ => b == want,
        })
}

fn map_httparse_error(e: httparse::Error, buf: &[u8]) -> HttpError {
    match e {
        httparse::Error::HeaderName => diagnose_field_lines(buf),
        // httparse rejects CR, LF (bare), NUL and other CTLs in values: RFC 9110 §5.5.
        httparse::Error::HeaderValue => HttpError::BadHeaderValue,
        // Something other than CRLF after the version (e.g. trailing space) or a CR
        // that is not followed by LF.
        httparse::Error::NewLine => HttpError::BadRequestLine,
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::Version => diagnose_version(buf),
        httparse::Error::Token | httparse::Error::Status => HttpError::BadRequestLine,
    }
}

fn version_of(v: Option<u8>) -> Version {
    match v {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    }
}

fn collect_headers(buf: &[u8], headers: &[httparse::Header<'_>]) -> Headers {
    Headers {
        fields: headers
            .iter()
            .map(|h| HeaderRange {
                name: range_in(buf, h.name.as_bytes()),
                value: range_in(buf, h.value),
            })
            .collect(),
    }
}

/// Parse a request head from the start of `buf`.
///
/// Returns [`Parsed::Partial`] while the head is incomplete and within the limits; the
/// caller reads more and calls again with the whole buffer. Any error is final: answer
/// with [`HttpError::status`] and close the connection.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Parsed<RequestHead>, HttpError> {
    // Request line too long → 414 (RFC 9112 §3: a server that receives a request-target
    // longer than it wishes to parse MUST respond with 414).
    let start = leading_empty_lines(buf);
    let line_len = buf[start..]
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(buf.len() - start);
    if line_len > limits.max_request_line {
        return Err(HttpError::UriTooLong);
    }

    let window = &buf[..buf.len().min(limits.max_head)];
    let mut storage = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut storage);
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return incomplete(buf, limits),
        Err(httparse::Error::Version) if version_incomplete(window) => return Ok(Parsed::Partial),
        Err(e) => return Err(map_httparse_error(e, window)),
    };
    check_line_endings(&buf[..head_len])?;

    let (Some(method), Some(path)) = (req.method, req.path) else {
        return Err(HttpError::BadRequestLine);
    };
    let version = version_of(req.version);
    let method_kind = Method::from_bytes(method.as_bytes());
    let target = path.as_bytes();

    // RFC 9112 §3.2: the request-target form must match the method: origin-form
    // ("/path"), absolute-form ("scheme://..."), authority-form (CONNECT only),
    // asterisk-form (OPTIONS only).
    let target_ok = match target {
        [b'/', ..] => method_kind != Method::Connect,
        b"*" => method_kind == Method::Options,
        _ if method_kind == Method::Connect => !target.is_empty(),
        _ => is_absolute_form(target),
    };
    if !target_ok {
        return Err(HttpError::BadRequestLine);
    }

    let headers = collect_headers(buf, req.headers);

    // RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request without Host, and
    // to any request with more than one Host field line.
    match headers.count(buf, "host") {
        0 if version == Version::Http11 => return Err(HttpError::MissingHost),
        0 => {}
        1 => {
            // RFC 9112 §3.2: 400 for a Host field with an invalid value. Host is
            // uri-host [ ":" port ] (RFC 9110 §7.2): only the RFC 3986 characters of
            // reg-name, IP-literal and port may appear.
            let host = headers.get(buf, "host").unwrap_or_default();
            if !host.iter().all(|&b| is_host_byte(b)) {
                return Err(HttpError::InvalidHost);
            }
        }
        _ => return Err(HttpError::MultipleHost),
    }

    Ok(Parsed::Complete(RequestHead {
        method: method_kind,
        method_range: range_in(buf, method.as_bytes()),
        target: range_in(buf, target),
        version,
        headers,
        head_len,
    }))
}

/// unreserved / pct-encoded / sub-delims (RFC 3986 §3.2.2), plus `:` and the brackets
/// of an IP-literal.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
        )
}

/// `scheme ":" "//"` with scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
/// (RFC 3986 §3.1).
fn is_absolute_form(target: &[u8]) -> bool {
    let Some(colon) = target.iter().position(|&b| b == b':') else {
        return false;
    };
    let scheme = &target[..colon];
    matches!(scheme.first(), Some(b) if b.is_ascii_alphabetic())
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && target[colon..].starts_with(b"://")
}

/// Parse a response head from the start of `buf`. Every error is wrapped in
/// An incomplete head: wait for more bytes, unless `max_head` bytes are already there
/// and it still does not end → 431 (RFC 6585 §5).
fn incomplete<T>(buf: &[u8], limits: &Limits) -> Result<Parsed<T>, HttpError> {
    if buf.len() >= limits.max_head {
        Err(HttpError::HeadTooLarge)
    } else {
        Ok(Parsed::Partial)
    }
}

/// [`HttpError::BadResponse`] (→ 502; do not reuse the backend connection).
pub fn parse_response(buf: &[u8], limits: &Limits) -> Result<Parsed<ResponseHead>, HttpError> {
    parse_response_inner(buf, limits).map_err(HttpError::in_response)
}

fn parse_response_inner(buf: &[u8], limits: &Limits) -> Result<Parsed<ResponseHead>, HttpError> {
    let window = &buf[..buf.len().min(limits.max_head)];
    let mut storage = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut resp = httparse::Response::new(&mut storage);
    let head_len = match resp.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return incomplete(buf, limits),
        Err(httparse::Error::Version) => return Err(HttpError::VersionNotSupported),
        Err(e) => return Err(map_httparse_error(e, window)),
    };
    check_line_endings(&buf[..head_len])?;
    let (Some(status), Some(reason)) = (resp.code, resp.reason) else {
        return Err(HttpError::BadRequestLine);
    };
    // RFC 9110 §15: status codes are 100..=599 (httparse accepts any three digits).
    if !(100..=599).contains(&status) {
        return Err(HttpError::BadRequestLine);
    }
    let reason_range = range_in(buf, reason.as_bytes());
    Ok(Parsed::Complete(ResponseHead {
        version: version_of(resp.version),
        status,
        reason: reason_range,
        headers: collect_headers(buf, resp.headers),
        head_len,
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn req(buf: &[u8]) -> Result<Parsed<RequestHead>, HttpError> {
        parse_request(buf, &Limits::default())
    }

    pub(crate) fn complete(buf: &[u8]) -> RequestHead {
        match req(buf) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("expected a complete head for {buf:?}, got {other:?}"),
        }
    }

    fn err(buf: &[u8]) -> HttpError {
        match req(buf) {
            Err(e) => e,
            other => panic!("expected an error for {buf:?}, got {other:?}"),
        }
    }

    #[test]
    fn simple_request() {
        let buf = b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
        let h = complete(buf);
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.method_bytes(buf), b"GET");
        assert_eq!(h.target_bytes(buf), b"/index.html?q=1");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.head_len, buf.len());
        assert_eq!(h.headers.len(), 2);
        assert_eq!(h.headers.get(buf, "HOST"), Some(&b"example.com"[..]));
        let all: Vec<_> = h.headers.iter(buf).collect();
        assert_eq!(all[1], (&b"Accept"[..], &b"*/*"[..]));
    }

    #[test]
    fn partial_until_complete() {
        let buf = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
        for n in 0..buf.len() {
            assert_eq!(req(&buf[..n]), Ok(Parsed::Partial), "prefix {n}");
        }
        assert_eq!(complete(buf).head_len, buf.len());
    }

    #[test]
    fn pipelined_requests() {
        let buf = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
        let first = complete(buf);
        assert_eq!(first.target_bytes(buf), b"/a");
        let rest = &buf[first.head_len..];
        let second = complete(rest);
        assert_eq!(second.target_bytes(rest), b"/b");
        assert_eq!(first.head_len + second.head_len, buf.len());
    }

    #[test]
    fn values_are_trimmed_and_may_be_empty() {
        let buf = b"GET / HTTP/1.1\r\nHost:  h \t\r\nX-Empty:\r\n\r\n";
        let h = complete(buf);
        assert_eq!(h.headers.get(buf, "host"), Some(&b"h"[..]));
        assert_eq!(h.headers.get(buf, "x-empty"), Some(&b""[..]));
    }

    #[test]
    fn leading_empty_line_is_ignored() {
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the
        // request line.
        let buf = b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let h = complete(buf);
        assert_eq!(h.head_len, buf.len());
        assert_eq!(h.method_bytes(buf), b"GET");
    }

    #[test]
    fn whitespace_before_colon() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n"),
            HttpError::SpaceBeforeColon
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length\t: 0\r\n\r\n"),
            HttpError::SpaceBeforeColon
        );
    }

    #[test]
    fn obs_fold() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"),
            HttpError::ObsFold
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n"),
            HttpError::ObsFold
        );
        // Whitespace before the first field line (RFC 9112 §2.2).
        assert_eq!(
            err(b"GET / HTTP/1.1\r\n Host: h\r\n\r\n"),
            HttpError::ObsFold
        );
    }

    #[test]
    fn bad_header_names() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n"),
            HttpError::BadHeaderName
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nX(y): v\r\n\r\n"),
            HttpError::BadHeaderName
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n"),
            HttpError::BadHeaderName
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nX\x00: v\r\n\r\n"),
            HttpError::BadHeaderName
        );
    }

    #[test]
    fn bad_header_values() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"),
            HttpError::BadHeaderValue
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n"),
            HttpError::BadHeaderValue
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n"),
            HttpError::BadHeaderValue
        );
        // obs-text and HTAB inside a value are allowed (RFC 9110 §5.5).
        let ok = b"GET / HTTP/1.1\r\nHost: h\r\nX: a\tb\xe9\r\n\r\n";
        assert_eq!(complete(ok).headers.get(ok, "x"), Some(&b"a\tb\xe9"[..]));
    }

    #[test]
    fn bare_lf_is_rejected() {
        assert_eq!(
            err(b"GET / HTTP/1.1\nHost: h\n\n"),
            HttpError::BareLineEnding
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n"),
            HttpError::BareLineEnding
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\n\n"),
            HttpError::BareLineEnding
        );
    }

    #[test]
    fn host_rules() {
        assert_eq!(err(b"GET / HTTP/1.1\r\n\r\n"), HttpError::MissingHost);
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
            HttpError::MultipleHost
        );
        assert_eq!(
            err(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
            HttpError::MultipleHost
        );
        // HTTP/1.0 may omit Host.
        let h = complete(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(h.version, Version::Http10);
        // Empty Host is allowed (RFC 9112 §3.2, authority-less URIs).
        complete(b"GET / HTTP/1.1\r\nHost:\r\n\r\n");
        complete(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
        complete(b"GET / HTTP/1.1\r\nHost: xn--bcher-kva.example:443\r\n\r\n");
        for bad in [
            &b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n",
        ] {
            assert_eq!(err(bad), HttpError::InvalidHost);
            assert_eq!(err(bad).status(), 400);
        }
    }

    #[test]
    fn request_line_errors() {
        for bad in [
            &b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n"[..],
            b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
            b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
            b"G@T / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / FOO\r\nHost: h\r\n\r\n",
            b"GET /\r\n\r\n", // HTTP/0.9
            b"GET\r\n\r\n",
            b" GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / http/1.1\r\nHost: h\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET index.html HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET * HTTP/1.1\r\nHost: h\r\n\r\n",
            b"CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n",
        ] {
            assert_eq!(
                err(bad),
                HttpError::BadRequestLine,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn target_forms() {
        let b = b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(complete(b).method, Method::Options);
        let b = b"GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n";
        assert_eq!(complete(b).target_bytes(b), b"http://example.com/x");
        let b = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
        assert_eq!(complete(b).method, Method::Connect);
        let b = b"PURGE /x HTTP/1.1\r\nHost: h\r\n\r\n";
        let h = complete(b);
        assert_eq!(h.method, Method::Other);
        assert_eq!(h.method_bytes(b), b"PURGE");
        // Methods are case-sensitive.
        assert_eq!(
            complete(b"get / HTTP/1.1\r\nHost: h\r\n\r\n").method,
            Method::Other
        );
    }

    #[test]
    fn unsupported_versions() {
        assert_eq!(
            err(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n"),
            HttpError::VersionNotSupported
        );
        assert_eq!(
            err(b"GET / HTTP/1.2\r\nHost: h\r\n\r\n"),
            HttpError::VersionNotSupported
        );
        assert_eq!(
            err(b"GET / HTTP/0.9\r\nHost: h\r\n\r\n"),
            HttpError::VersionNotSupported
        );
        assert_eq!(err(b"GET / HTTP/2.0\r\n\r\n").status(), 505);
    }

    #[test]
    fn a_version_cut_by_a_segment_boundary_waits_for_the_rest() {
        // Every prefix of these requests is incomplete, not an error: the verdict needs
        // the whole version token.
        for full in [
            &b"GET / HTTP/2.0\r\nHost: h\r\n\r\n"[..],
            b"GET / HTTP/0.9\r\nHost: h\r\n\r\n",
        ] {
            let line_end = full.iter().position(|&b| b == b'\r').unwrap();
            for cut in 1..line_end {
                assert_eq!(
                    req(&full[..cut]),
                    Ok(Parsed::Partial),
                    "{:?}",
                    String::from_utf8_lossy(&full[..cut])
                );
            }
            assert_eq!(err(full), HttpError::VersionNotSupported);
        }
        // Not a prefix of any HTTP/d.d: rejected at once.
        assert_eq!(err(b"GET / HTTX"), HttpError::BadRequestLine);
    }

    #[test]
    fn limits() {
        let limits = Limits {
            max_head: 64,
            max_request_line: 32,
            max_headers: 2,
        };
        let long_target = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(40));
        assert_eq!(
            parse_request(long_target.as_bytes(), &limits),
            Err(HttpError::UriTooLong)
        );
        // Detected before the line is complete.
        assert_eq!(
            parse_request(&long_target.as_bytes()[..36], &limits),
            Err(HttpError::UriTooLong)
        );
        let big = format!("GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n", "v".repeat(60));
        assert_eq!(
            parse_request(big.as_bytes(), &limits),
            Err(HttpError::HeadTooLarge)
        );
        assert_eq!(
            parse_request(&big.as_bytes()[..30], &limits),
            Ok(Parsed::Partial)
        );
        let many = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(parse_request(many, &limits), Err(HttpError::TooManyHeaders));
        assert_eq!(HttpError::TooManyHeaders.status(), 431);
        // Exactly at the limits is fine.
        let fits = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n";
        assert!(matches!(
            parse_request(fits, &limits),
            Ok(Parsed::Complete(_))
        ));
    }

    #[test]
    fn keep_alive_rules() {
        assert!(keep_alive(Version::Http11, None));
        assert!(!keep_alive(Version::Http11, Some(b"close")));
        assert!(!keep_alive(Version::Http11, Some(b"Upgrade, Close")));
        assert!(keep_alive(Version::Http11, Some(b"keep-alive")));
        assert!(!keep_alive(Version::Http10, None));
        assert!(keep_alive(Version::Http10, Some(b"Keep-Alive")));
        assert!(keep_alive(Version::Http10, Some(b"foo , keep-alive")));
        assert!(!keep_alive(Version::Http10, Some(b"keep-alive, close")));
        assert!(!keep_alive(Version::Http10, Some(b"keep-alivex")));

        let b = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        assert!(complete(b).keep_alive(b));
        let b = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: foo\r\nConnection: close\r\n\r\n";
        assert!(!complete(b).keep_alive(b));
        let b = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(complete(b).keep_alive(b));
    }

    #[test]
    fn expect_continue() {
        let b = b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n\r\n";
        assert!(complete(b).expects_continue(b));
        let b = b"PUT / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(!complete(b).expects_continue(b));
        let b = b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n";
        assert!(!complete(b).expects_continue(b));
        // Ignored in HTTP/1.0 (RFC 9110 §10.1.1).
        let b = b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n";
        assert!(!complete(b).expects_continue(b));
    }

    fn resp(buf: &[u8]) -> Result<Parsed<ResponseHead>, HttpError> {
        parse_response(buf, &Limits::default())
    }

    #[test]
    fn responses() {
        let b = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        let Ok(Parsed::Complete(h)) = resp(b) else {
            panic!()
        };
        assert_eq!(h.status, 200);
        assert_eq!(&b[h.reason.clone()], b"OK");
        assert_eq!(h.head_len, b.len() - 2);
        assert!(h.keep_alive(b));
        let b = b"HTTP/1.0 204\r\n\r\n";
        let Ok(Parsed::Complete(h)) = resp(b) else {
            panic!()
        };
        assert_eq!((h.version, h.status), (Version::Http10, 204));
        assert!(h.reason.is_empty());
        assert!(!h.keep_alive(b));
        assert_eq!(resp(b"HTTP/1.1 200 OK\r\n"), Ok(Parsed::Partial));
    }

    #[test]
    fn bad_responses_are_502() {
        for bad in [
            &b"HTTP/1.1 099 Odd\r\n\r\n"[..],
            b"HTTP/1.1 600 Odd\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/2.0 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA : b\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: b\x00\r\n\r\n",
            b"HTTP/1.1 200 OK\nA: b\n\n",
            b"garbage\r\n\r\n",
        ] {
            let e = resp(bad).expect_err(&String::from_utf8_lossy(bad));
            assert_eq!(e.status(), 502, "{e}");
        }
    }
}
