//! Cookie-based persistence, sans-io: HAProxy's `cookie NAME insert [indirect] [nocache]
//! [httponly] [secure]`.
//!
//! The proxy shell calls, per request and response:
//!
//! 1. [`CookiePersistence::request_server`] with the values of the request's `Cookie`
//!    fields → the server the client is pinned to, if its cookie names one. Whether that
//!    server is up (and what to do when it is not: `redispatch`) is the caller's call.
//! 2. With `indirect`, [`CookiePersistence::forward_cookie`] on each `Cookie` field value
//!    → the value to send to the backend with the persistence cookie removed (the backend
//!    never sees it), or `None` to drop the field.
//! 3. On the response, [`CookiePersistence::on_response`] → the `Set-Cookie` line to add
//!    when the client had no valid cookie for the server that answered, plus whether to
//!    add `Cache-Control: private` (`nocache`).
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
//! # Decisions
//!
//! - **When is a cookie inserted?** Whenever the server that answered is not the one the
//!   request's (first) persistence cookie named: no cookie, an unknown value, or a
//!   redispatch away from a down server. As in HAProxy, this does not depend on
//!   `indirect`.
//! - **`indirect`**: every occurrence of the persistence cookie is removed from the
//!   request's `Cookie` fields before forwarding; the other pairs are kept byte-exact
//!   (including their separators). HAProxy additionally removes a `Set-Cookie` for the
//!   same name emitted by the server; [`CookiePersistence::is_own_set_cookie`] lets the
//!   shell do that.
//! - **`nocache`**: with an inserted cookie, `Cache-Control: private` is added unless the
//!   response already has a `Cache-Control` making it non-storable by shared caches
//!   (`private`, `no-cache` or `no-store` as a list element). HAProxy does the same
//!   (it adds `Cache-control: private` when the response is otherwise cacheable); an
//!   existing `Cache-Control: public, max-age=60` therefore still gets `private` added as
//!   a second field, which caches honour as the more restrictive directive. A
//!   `no-cache="set-cookie"` with arguments is not recognised and also gets `private`.
//! - **Set-Cookie format**: exactly HAProxy's, `Set-Cookie: NAME=value; path=/`, then
//!   `; HttpOnly` and `; Secure` if configured. The lines are precomputed per server.
//! - **Modes**: only `insert`. `rewrite` and `prefix` parse to
//!   [`CookieError::UnsupportedMode`] so a config using them fails at load time with a
//!   clear message rather than silently not persisting. `maxidle`/`maxlife`/`domain`/
//!   `preserve`/`postonly` are not implemented.

use std::borrow::Cow;

use super::head::list_has_token;

/// The `cookie` modes of HAProxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieMode {
    /// The proxy inserts its own cookie (the only mode implemented).
    Insert,
}

impl CookieMode {
    /// Parse a config `mode`: `"insert"`; `"rewrite"` and `"prefix"` are known HAProxy
    /// modes that halb does not implement yet.
    pub fn parse(mode: &str) -> Result<CookieMode, CookieError> {
        match mode {
            "insert" => Ok(CookieMode::Insert),
            "rewrite" | "prefix" => Err(CookieError::UnsupportedMode(mode.to_string())),
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
    /// Remove the cookie from requests before they reach the backend.
    pub indirect: bool,
    /// Add `Cache-Control: private` to responses that get a cookie inserted.
    pub nocache: bool,
    /// Append `; HttpOnly` to the inserted cookie.
    pub httponly: bool,
    /// Append `; Secure` to the inserted cookie.
    pub secure: bool,
}

impl CookieOptions {
    /// `insert` mode with every flag off.
    pub fn insert(name: impl Into<String>) -> Self {
        CookieOptions {
            name: name.into(),
            mode: CookieMode::Insert,
            indirect: false,
            nocache: false,
            httponly: false,
            secure: false,
        }
    }
}

/// A `cookie` configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    #[error("cookie mode \"{0}\" is not supported yet (only \"insert\" is)")]
    UnsupportedMode(String),
    #[error("unknown cookie mode \"{0}\" (expected \"insert\")")]
    UnknownMode(String),
    #[error("invalid cookie name \"{0}\": it must be a non-empty token (RFC 6265 §4.1.1)")]
    InvalidName(String),
    #[error("server #{server}: invalid cookie value \"{value}\": it must be non-empty cookie-octets, no space, quote, comma, semicolon or backslash (RFC 6265 §4.1.1)")]
    InvalidValue { server: usize, value: String },
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
    /// Per server: the precomputed `Set-Cookie` line, if it has a value.
    set_cookie: Vec<Option<Box<[u8]>>>,
}

impl CookiePersistence {
    /// Check the options and the servers' cookie values (`None` for a server without
    /// `cookie = "…"`: it is never pinned to and gets no cookie inserted).
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
        let set_cookie = values
            .iter()
            .map(|v| {
                v.as_ref().map(|v| {
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
    /// (in order), quotes removed.
    pub fn find<'a>(&self, cookie_fields: impl IntoIterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
        let name = self.options.name.as_bytes();
        cookie_fields
            .into_iter()
            .flat_map(pairs)
            .find(|p| p.name == name)
            .map(|p| unquote(p.value))
    }

    /// The server a cookie value names.
    pub fn server_of(&self, value: &[u8]) -> Option<usize> {
        self.values.iter().position(|v| v.as_deref() == Some(value))
    }

    /// The server the request is pinned to: the one named by its first persistence
    /// cookie, if any. `cookie_fields` are the values of every `Cookie` field, in order
    /// (e.g. `head.headers.values(buf, "cookie")`).
    pub fn request_server<'a>(
        &self,
        cookie_fields: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<usize> {
        self.find(cookie_fields).and_then(|v| self.server_of(v))
    }

    /// The `Cookie` field value to forward to the backend: unchanged (borrowed) without
    /// `indirect` or when it has no persistence cookie; otherwise rewritten without it,
    /// or `None` if nothing is left (drop the field).
    pub fn forward_cookie<'a>(&self, value: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        if self.options.indirect {
            remove_cookie(value, self.options.name.as_bytes())
        } else {
            Some(Cow::Borrowed(value))
        }
    }

    /// What to add to the response of server `server` to a request pinned to
    /// `request_server` (from [`request_server`](Self::request_server)):
    /// `cache_control` are the response's `Cache-Control` field values. `None` when the
    /// client already has the right cookie or the server has no cookie value.
    pub fn on_response<'a, 'b>(
        &'a self,
        server: usize,
        request_server: Option<usize>,
        cache_control: impl IntoIterator<Item = &'b [u8]>,
    ) -> Option<Insert<'a>> {
        if request_server == Some(server) {
            return None;
        }
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

    /// True if a backend's `Set-Cookie` field value sets the persistence cookie (in
    /// `insert` mode HAProxy removes it, so the client keeps only the proxy's).
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

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Split one `;`-separated segment into a pair; `None` without `=` or with an empty name.
fn split_pair(segment: &[u8]) -> Option<Pair<'_>> {
    let eq = segment.iter().position(|&b| b == b'=')?;
    let name = trim(&segment[..eq]);
    if name.is_empty() {
        return None;
    }
    Some(Pair {
        name,
        value: trim(&segment[eq + 1..]),
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
        assert_eq!(
            CookieMode::parse("rewrite"),
            Err(CookieError::UnsupportedMode("rewrite".into()))
        );
        assert_eq!(
            CookieMode::parse("prefix").unwrap_err().to_string(),
            "cookie mode \"prefix\" is not supported yet (only \"insert\" is)"
        );
        assert_eq!(
            CookieMode::parse("Insert"),
            Err(CookieError::UnknownMode("Insert".into()))
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
}
