//! Cookie-based persistence, sans-io: HAProxy's `cookie NAME insert|prefix|rewrite
//! [indirect] [nocache] [httponly] [secure]` (HAProxy configuration manual, `cookie`).
//!
//! # The three modes
//!
//! - **`insert`**: the proxy owns the cookie. It adds `Set-Cookie: NAME=SERVERVALUE;
//!   path=/` to a response when the client did not already carry the value of the server
//!   that answered, and removes any `Set-Cookie` for `NAME` the server emits itself. With
//!   `indirect` the cookie is also removed from requests, so the application never sees it.
//! - **`prefix`**: the application owns the cookie (typically its session cookie, e.g.
//!   `JSESSIONID`). When the server sets `NAME=v`, the client gets `NAME=SERVERVALUE~v`;
//!   on requests, `NAME=X~v` pins to the server whose value is `X` and is forwarded as
//!   `NAME=v`, so the application finds the cookie it emitted.
//! - **`rewrite`**: the application emits a `Set-Cookie` for `NAME` (with any value) when it
//!   wants persistence; the proxy replaces the value with the server's. On requests
//!   `NAME=X` pins to the server of value `X` and is forwarded unchanged (the server sees
//!   the rewritten value, as with HAProxy).
//!
//! # Call order (the proxy shell)
//!
//! Per request:
//!
//! 1. [`CookiePersistence::request_server`] with the values of every `Cookie` field, in
//!    order → the server the client is pinned to, if its cookie names one (all modes).
//!    Whether that server is up, and what to do when it is not (`redispatch`), is the
//!    caller's call. Keep the result: it is an input of steps 3 and 4.
//! 2. [`CookiePersistence::forward_cookie`] on each `Cookie` field value → the value to
//!    send to the backend (`insert` + `indirect`: without the persistence cookie;
//!    `prefix`: with the `X~` prefixes removed; otherwise unchanged), or `None` to drop the
//!    field. Borrowed unless something changed.
//!
//! Per response, from server `server`:
//!
//! 3. [`CookiePersistence::rewrite_set_cookie`] on each `Set-Cookie` field value, with
//!    the server of step 1 → the value to forward to the client (`prefix`: value prefixed;
//!    `rewrite`: value replaced; other cookies unchanged), or `None` to drop the field
//!    (`insert`: the server's own persistence cookie; `indirect`: the server's cookie when
//!    the client was already pinned to it). Borrowed unless something changed.
//! 4. [`CookiePersistence::on_response`] (does something in `insert` mode only) → the
//!    `Set-Cookie` line to add when the client had no valid cookie for the server that
//!    answered, plus whether to add `Cache-Control: private` (`nocache`).
//!
//! None of these allocates except to build a changed field value (steps 2 and 3).
//!
//! # Parsing the `Cookie` field (RFC 6265 §4.2.1, §5.4)
//!
//! `cookie-string = cookie-pair *( ";" SP cookie-pair )`, parsed leniently as browsers
//! send it: pairs are split on `;`, optional whitespace (SP / HTAB) around a pair and
//! around the `=` is ignored, a pair without `=` is skipped, names are case-sensitive.
//! A value in double quotes is matched without its quotes (`NAME="web1"` is `web1`).
//! Several `Cookie` fields (HTTP/2 style, or a sloppy client) are read in order as one
//! list. If the persistence cookie occurs more than once, the **first** occurrence
//! decides, even if its value names no server (later ones are not consulted).
//!
//! # Parsing `Set-Cookie` (RFC 6265 §4.1.1, §5.2)
//!
//! One cookie per field (§3: servers SHOULD NOT fold several into one field, and a comma
//! may legitimately occur in `Expires`): the cookie is the `name=value` before the first
//! `;`, the rest are attributes, kept byte-exact. Whitespace around the name and the value
//! is ignored; a pair without `=` is not a cookie and is forwarded untouched.
//!
//! # Decisions
//!
//! - **When is a cookie inserted?** (`insert`) Whenever the server that answered is not
//!   the one the request's (first) persistence cookie named: no cookie, an unknown value,
//!   or a redispatch away from a down server. As in HAProxy, this does not depend on
//!   `indirect`.
//! - **`indirect`** with `insert`: every occurrence of the persistence cookie is removed
//!   from the request's `Cookie` fields before forwarding; the other pairs are kept
//!   byte-exact (including their separators). With every mode, as in HAProxy ("no cookie
//!   will be emitted to a client which already has a valid one for the server which has
//!   processed the request. If the server sets such a cookie itself, it will be
//!   removed"), a `Set-Cookie` for `NAME` from the server the request was pinned to is
//!   dropped. HAProxy advises against `indirect` with `prefix` (the application's cookie
//!   updates would then not reach the client); it is accepted all the same.
//! - **`prefix` delimiter**: the server value ends at the **first** `~` of the cookie
//!   value, so server values may not contain `~` in this mode
//!   ([`CookieError::DelimiterInValue`]). Inside double quotes the prefix goes inside
//!   them (`"v"` ↔ `"SRV~v"`). A value without `~` is, as in HAProxy, compared whole to
//!   the server values (so `NAME=web1` pins to `web1`) and forwarded unchanged; a value
//!   with a `~` has its prefix removed even when the prefix names no server (the
//!   application always gets back the value it set), and an empty prefix (`NAME=~v`)
//!   pins nowhere.
//! - **`prefix`/`rewrite` never create a cookie**: persistence follows the application's
//!   `Set-Cookie`. After a redispatch from A to B, the client keeps A's value until B
//!   emits the cookie (then it gets B's), exactly as with HAProxy. A server without a
//!   cookie value leaves the application's `Set-Cookie` untouched.
//! - **`nocache`, `httponly`, `secure`** apply to inserted cookies only (HAProxy: "when a
//!   cookie is inserted"); they are accepted and ignored in `prefix`/`rewrite` mode.
//! - **`nocache`**: with an inserted cookie, `Cache-Control: private` is added unless the
//!   response already has a `Cache-Control` making it non-storable by shared caches
//!   (`private`, `no-cache` or `no-store` as a list element). HAProxy does the same
//!   (it adds `Cache-control: private` when the response is otherwise cacheable); an
//!   existing `Cache-Control: public, max-age=60` therefore still gets `private` added as
//!   a second field, which caches honour as the more restrictive directive. A
//!   `no-cache="set-cookie"` with arguments is not recognised and also gets `private`.
//! - **Set-Cookie format** (`insert`): exactly HAProxy's, `Set-Cookie: NAME=value;
//!   path=/`, then `; HttpOnly` and `; Secure` if configured. The lines are precomputed
//!   per server.
//! - **Not implemented**: `maxidle`/`maxlife`/`domain`/`preserve`/`postonly`.

use std::borrow::Cow;
use std::ops::Range;

use super::head::list_has_token;

/// The delimiter between the server value and the application's value in `prefix` mode
/// (HAProxy's `COOKIE_DELIM`).
pub const PREFIX_DELIMITER: u8 = b'~';

/// The `cookie` modes of HAProxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieMode {
    /// The proxy inserts its own cookie.
    Insert,
    /// The server value and `~` are prefixed to the application's cookie.
    Prefix,
    /// The value of the application's cookie is replaced by the server value.
    Rewrite,
}

impl CookieMode {
    /// Parse a config `mode`: `"insert"`, `"prefix"` or `"rewrite"` (case-sensitive, as
    /// HAProxy's keywords).
    pub fn parse(mode: &str) -> Result<CookieMode, CookieError> {
        match mode {
            "insert" => Ok(CookieMode::Insert),
            "prefix" => Ok(CookieMode::Prefix),
            "rewrite" => Ok(CookieMode::Rewrite),
            other => Err(CookieError::UnknownMode(other.to_string())),
        }
    }
}

/// Options of a `cookie` line (see CONFIG.md: `cookie = { name, mode, indirect, nocache }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieOptions {
    /// The cookie name: an RFC 6265 token.
    pub name: String,
    pub mode: CookieMode,
    /// `insert`: remove the cookie from requests before they reach the backend. All
    /// modes: drop the server's own `Set-Cookie` for the name when the client was already
    /// pinned to that server.
    pub indirect: bool,
    /// Add `Cache-Control: private` to responses that get a cookie inserted (`insert`).
    pub nocache: bool,
    /// Append `; HttpOnly` to the inserted cookie (`insert`).
    pub httponly: bool,
    /// Append `; Secure` to the inserted cookie (`insert`).
    pub secure: bool,
}

impl CookieOptions {
    /// Mode `mode` with every flag off.
    pub fn new(name: impl Into<String>, mode: CookieMode) -> Self {
        CookieOptions {
            name: name.into(),
            mode,
            indirect: false,
            nocache: false,
            httponly: false,
            secure: false,
        }
    }

    /// `insert` mode with every flag off.
    pub fn insert(name: impl Into<String>) -> Self {
        CookieOptions::new(name, CookieMode::Insert)
    }
}

/// A `cookie` configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    #[error("unknown cookie mode \"{0}\" (expected \"insert\", \"prefix\" or \"rewrite\")")]
    UnknownMode(String),
    #[error("invalid cookie name \"{0}\": it must be a non-empty token (RFC 6265 §4.1.1)")]
    InvalidName(String),
    #[error("server #{server}: invalid cookie value \"{value}\": it must be non-empty cookie-octets, no space, quote, comma, semicolon or backslash (RFC 6265 §4.1.1)")]
    InvalidValue { server: usize, value: String },
    #[error("server #{server}: cookie value \"{value}\" contains '~', the delimiter of cookie mode \"prefix\"")]
    DelimiterInValue { server: usize, value: String },
    #[error("servers #{first} and #{second} have the same cookie value \"{value}\"")]
    DuplicateValue {
        first: usize,
        second: usize,
        value: String,
    },
}

/// What a response needs added for persistence (from [`CookiePersistence::on_response`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insert<'a> {
    /// The whole `Set-Cookie: NAME=value; path=/\r\n` line to add to the head.
    pub set_cookie: &'a [u8],
    /// Also add [`CACHE_PRIVATE`] (`nocache`).
    pub cache_private: bool,
}

/// The header line added with `nocache`.
pub const CACHE_PRIVATE: &[u8] = b"Cache-Control: private\r\n";

/// Cookie persistence for one backend: its options and its servers' cookie values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookiePersistence {
    options: CookieOptions,
    /// Per server (same index as the backend's servers): its cookie value, if any.
    values: Vec<Option<Box<[u8]>>>,
    /// Per server: the precomputed `Set-Cookie` line, if it has a value (`insert` only).
    set_cookie: Vec<Option<Box<[u8]>>>,
}

impl CookiePersistence {
    /// Check the options and the servers' cookie values (`None` for a server without
    /// `cookie = "…"`: it is never pinned to and its responses get no cookie).
    pub fn new<S: AsRef<str>>(
        options: CookieOptions,
        servers: &[Option<S>],
    ) -> Result<Self, CookieError> {
        if !is_token(options.name.as_bytes()) {
            return Err(CookieError::InvalidName(options.name));
        }
        let mut values: Vec<Option<Box<[u8]>>> = Vec::with_capacity(servers.len());
        for (i, v) in servers.iter().enumerate() {
            let v = v.as_ref().map(|v| v.as_ref());
            if let Some(v) = v {
                if v.is_empty() || !v.bytes().all(is_cookie_octet) {
                    return Err(CookieError::InvalidValue {
                        server: i,
                        value: v.to_string(),
                    });
                }
                if options.mode == CookieMode::Prefix && v.as_bytes().contains(&PREFIX_DELIMITER) {
                    return Err(CookieError::DelimiterInValue {
                        server: i,
                        value: v.to_string(),
                    });
                }
                if let Some(first) = values
                    .iter()
                    .position(|w| w.as_deref() == Some(v.as_bytes()))
                {
                    return Err(CookieError::DuplicateValue {
                        first,
                        second: i,
                        value: v.to_string(),
                    });
                }
            }
            values.push(v.map(|v| v.as_bytes().into()));
        }
        let insert = options.mode == CookieMode::Insert;
        let set_cookie = values
            .iter()
            .map(|v| {
                v.as_ref().filter(|_| insert).map(|v| {
                    let mut line = Vec::with_capacity(40 + options.name.len() + v.len());
                    line.extend_from_slice(b"Set-Cookie: ");
                    line.extend_from_slice(options.name.as_bytes());
                    line.push(b'=');
                    line.extend_from_slice(v);
                    line.extend_from_slice(b"; path=/");
                    if options.httponly {
                        line.extend_from_slice(b"; HttpOnly");
                    }
                    if options.secure {
                        line.extend_from_slice(b"; Secure");
                    }
                    line.extend_from_slice(b"\r\n");
                    line.into_boxed_slice()
                })
            })
            .collect();
        Ok(CookiePersistence {
            options,
            values,
            set_cookie,
        })
    }

    /// The options this was built from.
    pub fn options(&self) -> &CookieOptions {
        &self.options
    }

    /// The value of the first persistence cookie in the request's `Cookie` field values
    /// (in order), quotes removed. In `prefix` mode this is the whole value, `X~v`.
    pub fn find<'a>(&self, cookie_fields: impl IntoIterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
        let name = self.options.name.as_bytes();
        cookie_fields
            .into_iter()
            .flat_map(pairs)
            .find(|p| p.name == name)
            .map(|p| unquote(p.value))
    }

    /// The server whose cookie value is exactly `value`.
    pub fn server_of(&self, value: &[u8]) -> Option<usize> {
        self.values.iter().position(|v| v.as_deref() == Some(value))
    }

    /// The server the request is pinned to: the one named by its first persistence
    /// cookie, if any (in `prefix` mode, by the part of its value before the first `~`).
    /// `cookie_fields` are the values of every `Cookie` field, in order (e.g.
    /// `head.headers.values(buf, "cookie")`).
    pub fn request_server<'a>(
        &self,
        cookie_fields: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<usize> {
        let value = self.find(cookie_fields)?;
        let id = match self.options.mode {
            // HAProxy: the server id ends at the first delimiter, or is the whole value
            // when there is none; an empty id matches no server.
            CookieMode::Prefix => match value.iter().position(|&b| b == PREFIX_DELIMITER) {
                Some(d) => &value[..d],
                None => value,
            },
            CookieMode::Insert | CookieMode::Rewrite => value,
        };
        self.server_of(id)
    }

    /// The `Cookie` field value to forward to the backend, or `None` to drop the field:
    /// - `insert` + `indirect`: without any occurrence of the persistence cookie (`None`
    ///   if nothing is left);
    /// - `prefix`: every occurrence of the persistence cookie with its `X~` prefix
    ///   removed (a value without `~` is kept);
    /// - otherwise unchanged.
    ///
    /// Borrowed when nothing changes.
    pub fn forward_cookie<'a>(&self, value: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        let name = self.options.name.as_bytes();
        match self.options.mode {
            CookieMode::Insert if self.options.indirect => remove_cookie(value, name),
            CookieMode::Prefix => Some(strip_prefixes(value, name)),
            CookieMode::Insert | CookieMode::Rewrite => Some(Cow::Borrowed(value)),
        }
    }

    /// What to do with a `Set-Cookie` field (value `set_cookie_value`) of the response of
    /// server `server` to a request pinned to `request_server` (from
    /// [`request_server`](Self::request_server)): `None` = drop the field, otherwise the
    /// value to forward. Cookies of other names are forwarded unchanged. For the
    /// persistence cookie:
    /// - `insert`: dropped (HAProxy: "if the server emits a cookie with the same name, it
    ///   will be removed"; [`on_response`](Self::on_response) adds the proxy's own);
    /// - `indirect` and `request_server == Some(server)`: dropped (the client already has
    ///   a valid cookie for this server);
    /// - `prefix`: `NAME=v` → `NAME=SERVERVALUE~v`;
    /// - `rewrite`: `NAME=v` → `NAME=SERVERVALUE`;
    /// - a server without a cookie value: unchanged.
    ///
    /// Attributes (`; Path=/; HttpOnly` ...) are kept byte-exact. Borrowed unless the
    /// value was rewritten.
    pub fn rewrite_set_cookie<'a>(
        &self,
        server: usize,
        request_server: Option<usize>,
        set_cookie_value: &'a [u8],
    ) -> Option<Cow<'a, [u8]>> {
        let v = set_cookie_value;
        let first = v.split(|&b| b == b';').next().unwrap_or_default();
        let Some((name, range)) = pair_range(first) else {
            return Some(Cow::Borrowed(v));
        };
        if name != self.options.name.as_bytes() {
            return Some(Cow::Borrowed(v));
        }
        let direct = request_server == Some(server);
        if self.options.mode == CookieMode::Insert || (self.options.indirect && direct) {
            return None;
        }
        let Some(sv) = self.values.get(server).and_then(|s| s.as_deref()) else {
            return Some(Cow::Borrowed(v));
        };
        let mut out = Vec::with_capacity(v.len() + sv.len() + 1);
        if self.options.mode == CookieMode::Prefix {
            // Inside the quotes of a quoted value, so the request side finds it again.
            let at = inner(v, range).start;
            out.extend_from_slice(&v[..at]);
            out.extend_from_slice(sv);
            out.push(PREFIX_DELIMITER);
            out.extend_from_slice(&v[at..]);
        } else {
            out.extend_from_slice(&v[..range.start]);
            out.extend_from_slice(sv);
            out.extend_from_slice(&v[range.end..]);
        }
        Some(Cow::Owned(out))
    }

    /// What to add to the response of server `server` to a request pinned to
    /// `request_server` (from [`request_server`](Self::request_server)):
    /// `cache_control` are the response's `Cache-Control` field values. `None` when the
    /// client already has the right cookie, the server has no cookie value, or the mode is
    /// not `insert`.
    pub fn on_response<'a, 'b>(
        &'a self,
        server: usize,
        request_server: Option<usize>,
        cache_control: impl IntoIterator<Item = &'b [u8]>,
    ) -> Option<Insert<'a>> {
        if request_server == Some(server) {
            return None;
        }
        // Only `insert` mode has precomputed lines.
        let set_cookie = self.set_cookie.get(server)?.as_deref()?;
        let cache_private = self.options.nocache
            && !cache_control.into_iter().any(|v| {
                list_has_token(v, "private")
                    || list_has_token(v, "no-cache")
                    || list_has_token(v, "no-store")
            });
        Some(Insert {
            set_cookie,
            cache_private,
        })
    }

    /// True if a backend's `Set-Cookie` field value sets the persistence cookie.
    /// [`rewrite_set_cookie`](Self::rewrite_set_cookie) covers what to do with it.
    pub fn is_own_set_cookie(&self, set_cookie_value: &[u8]) -> bool {
        let pair = set_cookie_value
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default();
        split_pair(pair).is_some_and(|p| p.name == self.options.name.as_bytes())
    }
}

/// One `name=value` pair of a `Cookie` field, whitespace-trimmed, quotes kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pair<'a> {
    name: &'a [u8],
    value: &'a [u8],
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without leading and trailing SP / HTAB, as a range of `s`.
fn trim_range(s: &[u8]) -> Range<usize> {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ows(b)).map_or(start, |e| e + 1);
    start..end
}

fn trim(s: &[u8]) -> &[u8] {
    &s[trim_range(s)]
}

/// Split one `;`-separated segment into its trimmed name and the range of its trimmed
/// value (quotes kept) in `segment`; `None` without `=` or with an empty name.
fn pair_range(segment: &[u8]) -> Option<(&[u8], Range<usize>)> {
    let eq = segment.iter().position(|&b| b == b'=')?;
    let name = trim(&segment[..eq]);
    if name.is_empty() {
        return None;
    }
    let r = trim_range(&segment[eq + 1..]);
    Some((name, eq + 1 + r.start..eq + 1 + r.end))
}

/// Split one `;`-separated segment into a pair; `None` without `=` or with an empty name.
fn split_pair(segment: &[u8]) -> Option<Pair<'_>> {
    pair_range(segment).map(|(name, r)| Pair {
        name,
        value: &segment[r],
    })
}

/// The pairs of one `Cookie` field value, in order.
fn pairs(value: &[u8]) -> impl Iterator<Item = Pair<'_>> {
    value.split(|&b| b == b';').filter_map(split_pair)
}

/// `"v"` → `v` (RFC 6265 §4.1.1 allows a value in double quotes).
fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

/// The range of `s[value]` without its double quotes, if it is quoted.
fn inner(s: &[u8], value: Range<usize>) -> Range<usize> {
    match &s[value.clone()] {
        [b'"', .., b'"'] => value.start + 1..value.end - 1,
        _ => value,
    }
}

/// Remove the `X~` prefix of every pair named `name` in a `Cookie` field value (inside
/// its quotes if quoted), keeping everything else byte-exact. Borrowed if no pair had one.
fn strip_prefixes<'a>(value: &'a [u8], name: &[u8]) -> Cow<'a, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    // Bytes of `value` before `copied` are in `out` (or skipped).
    let mut copied = 0;
    let mut seg_start = 0;
    for seg in value.split(|&b| b == b';') {
        if let Some((n, r)) = pair_range(seg) {
            let r = inner(seg, r);
            if n == name {
                if let Some(d) = seg[r.clone()].iter().position(|&b| b == PREFIX_DELIMITER) {
                    let cut = seg_start + r.start..seg_start + r.start + d + 1;
                    let o = out.get_or_insert_with(|| Vec::with_capacity(value.len()));
                    o.extend_from_slice(&value[copied..cut.start]);
                    copied = cut.end;
                }
            }
        }
        seg_start += seg.len() + 1;
    }
    match out {
        Some(mut o) => {
            o.extend_from_slice(&value[copied..]);
            Cow::Owned(o)
        }
        None => Cow::Borrowed(value),
    }
}

/// Remove every pair named `name` from a `Cookie` field value, keeping the other pairs
/// and their separators byte-exact. Borrowed if there was nothing to remove; `None` if
/// nothing is left.
pub fn remove_cookie<'a>(value: &'a [u8], name: &[u8]) -> Option<Cow<'a, [u8]>> {
    let is_ours = |seg: &[u8]| split_pair(seg).is_some_and(|p| p.name == name);
    if !value.split(|&b| b == b';').any(is_ours) {
        return if trim(value).is_empty() {
            None
        } else {
            Some(Cow::Borrowed(value))
        };
    }
    let mut out = Vec::with_capacity(value.len());
    for seg in value.split(|&b| b == b';').filter(|s| !is_ours(s)) {
        if out.is_empty() {
            // The first kept segment loses the space that separated it from a removed one.
            out.extend_from_slice(trim(seg));
        } else {
            out.push(b';');
            out.extend_from_slice(seg);
        }
    }
    // A removed last pair leaves nothing trailing; trailing whitespace of the previous
    // segment (`a=1 ; NAME=x`) is dropped too.
    while out.last().is_some_and(|&b| is_ows(b)) {
        out.pop();
    }
    if out.iter().all(|&b| b == b';' || is_ows(b)) {
        None
    } else {
        Some(Cow::Owned(out))
    }
}

/// RFC 6265 §4.1.1 cookie-octet: `%x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// RFC 9110 §5.6.2 token.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, Limits, Parsed};

    fn opts() -> CookieOptions {
        CookieOptions {
            indirect: true,
            nocache: true,
            ..CookieOptions::insert("WEBSRV")
        }
    }

    fn persistence() -> CookiePersistence {
        CookiePersistence::new(opts(), &[Some("web1"), Some("web2"), None, Some("web4")]).unwrap()
    }

    fn server(fields: &[&str]) -> Option<usize> {
        persistence().request_server(fields.iter().map(|f| f.as_bytes()))
    }

    #[test]
    fn finds_the_server() {
        assert_eq!(server(&["WEBSRV=web1"]), Some(0));
        assert_eq!(server(&["a=1; WEBSRV=web2; b=2"]), Some(1));
        assert_eq!(server(&["WEBSRV=web4"]), Some(3));
        assert_eq!(server(&["WEBSRV=web3"]), None);
        assert_eq!(server(&["WEBSRV="]), None);
        assert_eq!(server(&[]), None);
        assert_eq!(server(&[""]), None);
        assert_eq!(server(&["other=web1"]), None);
        // Names are case-sensitive, values too.
        assert_eq!(server(&["websrv=web1"]), None);
        assert_eq!(server(&["WEBSRV=WEB1"]), None);
        // A name that merely ends or starts like ours.
        assert_eq!(server(&["XWEBSRV=web1; WEBSRVX=web2"]), None);
    }

    #[test]
    fn parsing_edge_cases() {
        // Quoted values.
        assert_eq!(server(&["WEBSRV=\"web2\""]), Some(1));
        assert_eq!(server(&["WEBSRV=\"web2"]), None);
        // Spaces and tabs around pairs and '='; no space after ';'.
        assert_eq!(server(&["a=1;WEBSRV=web2"]), Some(1));
        assert_eq!(server(&["  a=1 ;\tWEBSRV = web2 ; b=2"]), Some(1));
        // Pairs without '=' and empty names are skipped.
        assert_eq!(server(&["junk; =x; WEBSRV=web4"]), Some(3));
        assert_eq!(server(&[";;WEBSRV=web1;;"]), Some(0));
        // '=' inside the value belongs to the value.
        assert_eq!(server(&["WEBSRV=web1=x"]), None);
        // Same name twice: the first wins, even when it is invalid.
        assert_eq!(server(&["WEBSRV=web2; WEBSRV=web1"]), Some(1));
        assert_eq!(server(&["WEBSRV=nope; WEBSRV=web1"]), None);
        // Several Cookie fields are one list, in order.
        assert_eq!(server(&["a=1", "b=2; WEBSRV=web4"]), Some(3));
        assert_eq!(server(&["WEBSRV=web1", "WEBSRV=web2"]), Some(0));
        assert_eq!(
            persistence().find([&b"x=1; WEBSRV=\"web9\""[..]]),
            Some(&b"web9"[..])
        );
    }

    #[test]
    fn from_a_parsed_request() {
        let buf = b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nAccept: */*\r\nCookie: WEBSRV=web2; b=2\r\n\r\n";
        let Ok(Parsed::Complete(head)) = parse_request(buf, &Limits::default()) else {
            panic!()
        };
        let p = persistence();
        assert_eq!(
            p.request_server(head.headers.values(buf, "cookie")),
            Some(1)
        );
        let forwarded: Vec<_> = head
            .headers
            .values(buf, "cookie")
            .filter_map(|v| p.forward_cookie(v))
            .collect();
        assert_eq!(forwarded, [&b"a=1"[..], b"b=2"]);
    }

    fn strip(v: &str) -> Option<String> {
        remove_cookie(v.as_bytes(), b"WEBSRV").map(|c| String::from_utf8(c.into_owned()).unwrap())
    }

    #[test]
    fn indirect_removal_keeps_the_rest_byte_exact() {
        assert_eq!(strip("a=1; WEBSRV=web1; b=2").as_deref(), Some("a=1; b=2"));
        assert_eq!(strip("WEBSRV=web1; a=1").as_deref(), Some("a=1"));
        assert_eq!(strip("a=1; WEBSRV=web1").as_deref(), Some("a=1"));
        assert_eq!(strip("a=1;WEBSRV=web1;b=2").as_deref(), Some("a=1;b=2"));
        assert_eq!(
            strip("a=\"x y\";  b=2;WEBSRV=\"web1\";\tc = 3").as_deref(),
            Some("a=\"x y\";  b=2;\tc = 3")
        );
        assert_eq!(strip("a=1 ; WEBSRV=web1").as_deref(), Some("a=1"));
        // Every occurrence goes.
        assert_eq!(
            strip("WEBSRV=web1; a=1; WEBSRV=web2; b=2; WEBSRV=x").as_deref(),
            Some("a=1; b=2")
        );
        // Nothing left → drop the field.
        assert_eq!(strip("WEBSRV=web1"), None);
        assert_eq!(strip("WEBSRV=web1; WEBSRV=web2"), None);
        assert_eq!(strip(" WEBSRV=web1 ;"), None);
        // Untouched values are borrowed, not copied.
        assert!(matches!(
            remove_cookie(b"a=1; XWEBSRV=2; junk", b"WEBSRV"),
            Some(Cow::Borrowed(b"a=1; XWEBSRV=2; junk"))
        ));
    }

    #[test]
    fn forward_without_indirect_is_unchanged() {
        let p = CookiePersistence::new(CookieOptions::insert("WEBSRV"), &[Some("web1")]).unwrap();
        assert_eq!(
            p.forward_cookie(b"a=1; WEBSRV=web1"),
            Some(Cow::Borrowed(&b"a=1; WEBSRV=web1"[..]))
        );
        assert_eq!(
            persistence().forward_cookie(b"a=1; WEBSRV=web1").unwrap(),
            &b"a=1"[..]
        );
    }

    #[test]
    fn set_cookie_when_not_already_pinned() {
        let p = persistence();
        let none: [&[u8]; 0] = [];
        let ins = p.on_response(1, None, none).unwrap();
        assert_eq!(ins.set_cookie, b"Set-Cookie: WEBSRV=web2; path=/\r\n");
        assert!(ins.cache_private);
        // Sent to a different server (e.g. redispatched away from a down one).
        let ins = p.on_response(0, Some(1), none).unwrap();
        assert_eq!(ins.set_cookie, b"Set-Cookie: WEBSRV=web1; path=/\r\n");
        // Already pinned to the server that answered: nothing.
        assert_eq!(p.on_response(1, Some(1), none), None);
        // A server without a cookie value, or out of range: nothing.
        assert_eq!(p.on_response(2, None, none), None);
        assert_eq!(p.on_response(9, None, none), None);
    }

    #[test]
    fn set_cookie_flags() {
        let o = CookieOptions {
            httponly: true,
            secure: true,
            ..CookieOptions::insert("SRV")
        };
        let p = CookiePersistence::new(o, &[Some("s1")]).unwrap();
        let ins = p.on_response(0, None, [&b"public"[..]]).unwrap();
        assert_eq!(
            ins.set_cookie,
            b"Set-Cookie: SRV=s1; path=/; HttpOnly; Secure\r\n"
        );
        // No nocache: never Cache-Control.
        assert!(!ins.cache_private);
    }

    #[test]
    fn nocache_respects_an_existing_non_shared_cache_control() {
        let p = persistence();
        let private = |cc: &[&str]| {
            p.on_response(0, None, cc.iter().map(|c| c.as_bytes()))
                .unwrap()
                .cache_private
        };
        assert!(private(&[]));
        assert!(private(&["public, max-age=60"]));
        assert!(private(&["no-cache=\"set-cookie\""]));
        assert!(!private(&["private"]));
        assert!(!private(&["max-age=0, No-Cache"]));
        assert!(!private(&["max-age=60", "no-store"]));
        assert_eq!(CACHE_PRIVATE, b"Cache-Control: private\r\n");
    }

    #[test]
    fn own_set_cookie_from_the_backend() {
        let p = persistence();
        assert!(p.is_own_set_cookie(b"WEBSRV=web1; path=/"));
        assert!(p.is_own_set_cookie(b"WEBSRV=x"));
        assert!(!p.is_own_set_cookie(b"SESSION=abc; path=/; WEBSRV=x"));
        assert!(!p.is_own_set_cookie(b"websrv=web1"));
    }

    #[test]
    fn config_errors() {
        assert_eq!(CookieMode::parse("insert"), Ok(CookieMode::Insert));
        assert_eq!(CookieMode::parse("prefix"), Ok(CookieMode::Prefix));
        assert_eq!(CookieMode::parse("rewrite"), Ok(CookieMode::Rewrite));
        assert_eq!(
            CookieMode::parse("Insert"),
            Err(CookieError::UnknownMode("Insert".into()))
        );
        assert_eq!(
            CookieMode::parse("passive").unwrap_err().to_string(),
            "unknown cookie mode \"passive\" (expected \"insert\", \"prefix\" or \"rewrite\")"
        );
        let new = |name: &str, servers: &[Option<&str>]| {
            CookiePersistence::new(CookieOptions::insert(name), servers).map(|_| ())
        };
        assert_eq!(new("", &[]), Err(CookieError::InvalidName("".into())));
        assert_eq!(new("A B", &[]), Err(CookieError::InvalidName("A B".into())));
        assert_eq!(new("A=B", &[]), Err(CookieError::InvalidName("A=B".into())));
        for bad in ["", "a b", "a;b", "a,b", "\"a\"", "a\\b", "é"] {
            assert_eq!(
                new("S", &[None, Some(bad)]),
                Err(CookieError::InvalidValue {
                    server: 1,
                    value: bad.into()
                })
            );
        }
        assert_eq!(
            new("S", &[Some("a"), None, Some("a")]),
            Err(CookieError::DuplicateValue {
                first: 0,
                second: 2,
                value: "a".into()
            })
        );
        assert_eq!(new("S", &[Some("a=b/c:1"), None]), Ok(()));
    }

    // ------------------------------------------------------------ prefix and rewrite

    fn with_mode(mode: CookieMode, indirect: bool) -> CookiePersistence {
        let o = CookieOptions {
            indirect,
            // Insert-only flags: accepted, and without effect in these modes.
            nocache: true,
            httponly: true,
            secure: true,
            ..CookieOptions::new("JSESSIONID", mode)
        };
        CookiePersistence::new(o, &[Some("a"), Some("b"), None]).unwrap()
    }

    fn text(c: Option<Cow<'_, [u8]>>) -> Option<String> {
        c.map(|c| String::from_utf8(c.into_owned()).unwrap())
    }

    fn fwd(p: &CookiePersistence, v: &str) -> Option<String> {
        text(p.forward_cookie(v.as_bytes()))
    }

    fn set(p: &CookiePersistence, server: usize, pinned: Option<usize>, v: &str) -> Option<String> {
        text(p.rewrite_set_cookie(server, pinned, v.as_bytes()))
    }

    fn pinned(p: &CookiePersistence, fields: &[&str]) -> Option<usize> {
        p.request_server(fields.iter().map(|f| f.as_bytes()))
    }

    #[test]
    fn prefix_pins_by_the_part_before_the_delimiter() {
        let p = with_mode(CookieMode::Prefix, false);
        assert_eq!(pinned(&p, &["JSESSIONID=a~0123abc"]), Some(0));
        assert_eq!(pinned(&p, &["x=1; JSESSIONID=b~0123abc; y=2"]), Some(1));
        // The first '~' ends the server value; the application's value may contain more.
        assert_eq!(pinned(&p, &["JSESSIONID=b~x~y"]), Some(1));
        assert_eq!(pinned(&p, &["JSESSIONID=b~"]), Some(1));
        // Unknown server value, empty server value, wrong name, wrong case.
        assert_eq!(pinned(&p, &["JSESSIONID=c~abc"]), None);
        assert_eq!(pinned(&p, &["JSESSIONID=~abc"]), None);
        assert_eq!(pinned(&p, &["JSESSIONID=ab~c"]), None);
        assert_eq!(pinned(&p, &["SESSION=a~abc"]), None);
        assert_eq!(pinned(&p, &["JSESSIONID=A~abc"]), None);
        // No '~': as in HAProxy, the whole value is the server value.
        assert_eq!(pinned(&p, &["JSESSIONID=abc"]), None);
        assert_eq!(pinned(&p, &["JSESSIONID=b"]), Some(1));
        // Quoted: the prefix is inside the quotes.
        assert_eq!(pinned(&p, &["JSESSIONID=\"a~abc\""]), Some(0));
        // Several cookies and fields: the first occurrence decides.
        assert_eq!(
            pinned(&p, &["u=1", "JSESSIONID=b~1; JSESSIONID=a~2"]),
            Some(1)
        );
        assert_eq!(pinned(&p, &["JSESSIONID=zz~1", "JSESSIONID=a~2"]), None);
        assert_eq!(pinned(&p, &[]), None);
        // `find` gives the whole value.
        assert_eq!(p.find([&b"JSESSIONID=a~abc"[..]]), Some(&b"a~abc"[..]));
    }

    #[test]
    fn prefix_is_stripped_before_forwarding() {
        for indirect in [false, true] {
            let p = with_mode(CookieMode::Prefix, indirect);
            assert_eq!(
                fwd(&p, "JSESSIONID=a~0123abc").as_deref(),
                Some("JSESSIONID=0123abc")
            );
            assert_eq!(
                fwd(&p, "x=1; JSESSIONID=b~v;y=2").as_deref(),
                Some("x=1; JSESSIONID=v;y=2")
            );
            // Only up to the first '~'.
            assert_eq!(
                fwd(&p, "JSESSIONID=b~x~y").as_deref(),
                Some("JSESSIONID=x~y")
            );
            // An unknown or empty prefix is removed too: the application gets its value.
            assert_eq!(fwd(&p, "JSESSIONID=zz~v").as_deref(), Some("JSESSIONID=v"));
            assert_eq!(fwd(&p, "JSESSIONID=~v").as_deref(), Some("JSESSIONID=v"));
            assert_eq!(fwd(&p, "JSESSIONID=a~").as_deref(), Some("JSESSIONID="));
            // Quotes and whitespace are kept.
            assert_eq!(
                fwd(&p, "JSESSIONID = \"a~v\" ; x=\"q~r\"").as_deref(),
                Some("JSESSIONID = \"v\" ; x=\"q~r\"")
            );
            // Every occurrence.
            assert_eq!(
                fwd(&p, "JSESSIONID=a~1; o=a~2; JSESSIONID=b~3").as_deref(),
                Some("JSESSIONID=1; o=a~2; JSESSIONID=3")
            );
            // Nothing to strip: borrowed, byte-exact.
            for v in [
                "JSESSIONID=abc",
                "o=a~1; JSESSIONIDX=a~2",
                "",
                "junk;",
                "JSESSIONID",
            ] {
                assert!(
                    matches!(p.forward_cookie(v.as_bytes()), Some(Cow::Borrowed(b)) if b == v.as_bytes()),
                    "{v:?}"
                );
            }
        }
    }

    #[test]
    fn prefix_set_cookie() {
        let p = with_mode(CookieMode::Prefix, false);
        assert_eq!(
            set(&p, 0, None, "JSESSIONID=0123abc; Path=/; HttpOnly").as_deref(),
            Some("JSESSIONID=a~0123abc; Path=/; HttpOnly")
        );
        // Whitespace and quotes are kept; the prefix goes inside the quotes.
        assert_eq!(
            set(&p, 1, None, " JSESSIONID = \"v\" ;Secure").as_deref(),
            Some(" JSESSIONID = \"b~v\" ;Secure")
        );
        assert_eq!(
            set(&p, 1, None, "JSESSIONID=").as_deref(),
            Some("JSESSIONID=b~")
        );
        // Already pinned to this server, without indirect: still prefixed (the
        // application's new value must reach the client).
        assert_eq!(
            set(&p, 1, Some(1), "JSESSIONID=new").as_deref(),
            Some("JSESSIONID=b~new")
        );
        // Round trip: what the client gets back pins and is stripped to the original.
        let sent = set(&p, 1, None, "JSESSIONID=\"s e\"; Path=/").unwrap();
        let cookie = sent.split(';').next().unwrap();
        assert_eq!(pinned(&p, &[cookie]), Some(1));
        assert_eq!(fwd(&p, cookie).as_deref(), Some("JSESSIONID=\"s e\""));
        // Other cookies, a server without value, no '=': untouched and borrowed.
        for (server, v) in [
            (0, "SESSION=x; Path=/"),
            (0, "JSESSIONIDX=x"),
            (0, "Path=/; JSESSIONID=x"),
            (0, "JSESSIONID"),
            (0, ""),
            (2, "JSESSIONID=x"),
            (9, "JSESSIONID=x"),
        ] {
            assert!(
                matches!(p.rewrite_set_cookie(server, None, v.as_bytes()), Some(Cow::Borrowed(b)) if b == v.as_bytes()),
                "{server} {v:?}"
            );
        }
        // Never an inserted cookie, whatever the flags.
        let none: [&[u8]; 0] = [];
        assert_eq!(p.on_response(0, None, none), None);
    }

    #[test]
    fn rewrite_pins_and_forwards_as_is() {
        for indirect in [false, true] {
            let p = with_mode(CookieMode::Rewrite, indirect);
            assert_eq!(pinned(&p, &["JSESSIONID=a"]), Some(0));
            assert_eq!(pinned(&p, &["x=1;JSESSIONID=\"b\""]), Some(1));
            assert_eq!(pinned(&p, &["JSESSIONID=a~x"]), None);
            assert_eq!(pinned(&p, &["JSESSIONID=c"]), None);
            assert_eq!(pinned(&p, &["JSESSIONID=", "JSESSIONID=a"]), None);
            // The server sees the rewritten value: forwarded unchanged, even with indirect.
            let v = "x=1; JSESSIONID=a";
            assert!(
                matches!(p.forward_cookie(v.as_bytes()), Some(Cow::Borrowed(b)) if b == v.as_bytes())
            );
        }
    }

    #[test]
    fn rewrite_set_cookie_replaces_the_value() {
        let p = with_mode(CookieMode::Rewrite, false);
        assert_eq!(
            set(&p, 0, None, "JSESSIONID=whatever; Path=/app; Max-Age=60").as_deref(),
            Some("JSESSIONID=a; Path=/app; Max-Age=60")
        );
        assert_eq!(
            set(&p, 1, Some(0), "JSESSIONID=\"q\"").as_deref(),
            Some("JSESSIONID=b")
        );
        assert_eq!(
            set(&p, 1, None, "JSESSIONID=").as_deref(),
            Some("JSESSIONID=b")
        );
        assert_eq!(
            set(&p, 1, Some(1), "JSESSIONID = x ;Path=/").as_deref(),
            Some("JSESSIONID = b ;Path=/")
        );
        // Not ours, or a server without value: untouched.
        assert_eq!(set(&p, 0, None, "SID=x").as_deref(), Some("SID=x"));
        assert_eq!(
            set(&p, 2, None, "JSESSIONID=x").as_deref(),
            Some("JSESSIONID=x")
        );
        let none: [&[u8]; 0] = [];
        assert_eq!(p.on_response(0, None, none), None);
    }

    #[test]
    fn indirect_drops_the_servers_cookie_on_direct_access() {
        for mode in [CookieMode::Prefix, CookieMode::Rewrite] {
            let p = with_mode(mode, true);
            // Pinned to the server that answered: the client already has its cookie.
            assert_eq!(
                set(&p, 0, Some(0), "JSESSIONID=x; Path=/"),
                None,
                "{mode:?}"
            );
            // Not pinned, or pinned elsewhere: rewritten as usual.
            assert!(set(&p, 0, None, "JSESSIONID=x").is_some(), "{mode:?}");
            assert!(set(&p, 0, Some(1), "JSESSIONID=x").is_some(), "{mode:?}");
            // Other cookies always pass.
            assert_eq!(set(&p, 0, Some(0), "SID=x").as_deref(), Some("SID=x"));
        }
    }

    #[test]
    fn insert_drops_the_servers_own_cookie() {
        for indirect in [false, true] {
            let o = CookieOptions {
                indirect,
                ..CookieOptions::insert("SRV")
            };
            let p = CookiePersistence::new(o, &[Some("s1"), None]).unwrap();
            for pin in [None, Some(0), Some(1)] {
                assert_eq!(set(&p, 0, pin, "SRV=x; Path=/"), None);
                assert_eq!(set(&p, 1, pin, "SRV=x"), None);
                assert_eq!(set(&p, 0, pin, "APP=x").as_deref(), Some("APP=x"));
            }
        }
    }

    /// A client pinned to A is redispatched to B (A is down): in every mode the client
    /// ends up with B's value once the response is through.
    #[test]
    fn redispatch_moves_the_client_to_the_new_server() {
        let none: [&[u8]; 0] = [];
        // insert: the proxy inserts B's cookie.
        for indirect in [false, true] {
            let o = CookieOptions {
                indirect,
                ..CookieOptions::insert("SRV")
            };
            let p = CookiePersistence::new(o, &[Some("a"), Some("b")]).unwrap();
            let from = p.request_server([&b"SRV=a"[..]]);
            assert_eq!(from, Some(0));
            let ins = p.on_response(1, from, none).unwrap();
            assert_eq!(ins.set_cookie, b"Set-Cookie: SRV=b; path=/\r\n");
            // B's own Set-Cookie for SRV, if any, does not reach the client.
            assert_eq!(p.rewrite_set_cookie(1, from, b"SRV=a"), None);
        }
        // prefix and rewrite: B's application cookie carries B's value, indirect or not.
        for indirect in [false, true] {
            let p = with_mode(CookieMode::Prefix, indirect);
            let from = pinned(&p, &["JSESSIONID=a~s1"]);
            assert_eq!(from, Some(0));
            // B got the stripped value and answers with a new session.
            assert_eq!(fwd(&p, "JSESSIONID=a~s1").as_deref(), Some("JSESSIONID=s1"));
            assert_eq!(
                set(&p, 1, from, "JSESSIONID=s2; Path=/").as_deref(),
                Some("JSESSIONID=b~s2; Path=/")
            );
            assert_eq!(pinned(&p, &["JSESSIONID=b~s2"]), Some(1));

            let p = with_mode(CookieMode::Rewrite, indirect);
            let from = pinned(&p, &["JSESSIONID=a"]);
            assert_eq!(from, Some(0));
            assert_eq!(
                set(&p, 1, from, "JSESSIONID=x").as_deref(),
                Some("JSESSIONID=b")
            );
        }
    }

    #[test]
    fn prefix_from_a_parsed_exchange() {
        let p = with_mode(CookieMode::Prefix, false);
        let req = b"GET / HTTP/1.1\r\nHost: h\r\nCookie: t=1; JSESSIONID=b~abc\r\nCookie: JSESSIONID=a~zz\r\n\r\n";
        let Ok(Parsed::Complete(head)) = parse_request(req, &Limits::default()) else {
            panic!()
        };
        let from = p.request_server(head.headers.values(req, "cookie"));
        assert_eq!(from, Some(1));
        let forwarded: Vec<_> = head
            .headers
            .values(req, "cookie")
            .filter_map(|v| p.forward_cookie(v))
            .collect();
        assert_eq!(forwarded, [&b"t=1; JSESSIONID=abc"[..], b"JSESSIONID=zz"]);
        let res = b"HTTP/1.1 200 OK\r\nSet-Cookie: JSESSIONID=def; Path=/\r\nSet-Cookie: t=2\r\nContent-Length: 0\r\n\r\n";
        let Ok(Parsed::Complete(head)) = crate::http::parse_response(res, &Limits::default())
        else {
            panic!()
        };
        let out: Vec<_> = head
            .headers
            .values(res, "set-cookie")
            .filter_map(|v| p.rewrite_set_cookie(1, from, v))
            .collect();
        assert_eq!(out, [&b"JSESSIONID=b~def; Path=/"[..], b"t=2"]);
    }

    #[test]
    fn mode_specific_config_errors() {
        let new = |mode, servers: &[Option<&str>]| {
            CookiePersistence::new(CookieOptions::new("S", mode), servers).map(|_| ())
        };
        // '~' would make the prefix ambiguous.
        assert_eq!(
            new(CookieMode::Prefix, &[Some("a"), Some("b~1")]),
            Err(CookieError::DelimiterInValue {
                server: 1,
                value: "b~1".into()
            })
        );
        assert_eq!(new(CookieMode::Insert, &[Some("b~1")]), Ok(()));
        assert_eq!(new(CookieMode::Rewrite, &[Some("b~1")]), Ok(()));
        assert_eq!(
            new(CookieMode::Rewrite, &[Some("a b")]),
            Err(CookieError::InvalidValue {
                server: 0,
                value: "a b".into()
            })
        );
        assert_eq!(
            new(CookieMode::Prefix, &[Some("x"), Some("x")]),
            Err(CookieError::DuplicateValue {
                first: 0,
                second: 1,
                value: "x".into()
            })
        );
        let p = with_mode(CookieMode::Prefix, true);
        assert_eq!(p.options().mode, CookieMode::Prefix);
    }
}
