//! `http_request` redirect responses, sans-io: HAProxy's `redirect scheme|location|prefix`
//! (HAProxy configuration manual, `redirect`), written as a complete response head.
//!
//! [`write_redirect`] appends
//!
//! ```text
//! HTTP/1.1 {code} {reason}\r\n
//! Location: {location}\r\n
//! Content-Length: 0\r\n
//! Cache-Control: no-cache\r\n
//! [Connection: close\r\n]
//! \r\n
//! ```
//!
//! to the caller's buffer. Whether the connection is then closed is the caller's call
//! (`close`); the response has no body (`Content-Length: 0`, RFC 9110 §8.6), so it can be
//! followed by the next response on a kept-alive connection.
//!
//! # The Location (RFC 9110 §10.2.2)
//!
//! - **`location URL`**: `URL` exactly ("the exact value in `<loc>` is placed into the HTTP
//!   Location header").
//! - **`prefix P`**: `P` followed by the request's path and query ("the concatenation of
//!   `<pfx>` and the complete URI path, including the query string"). As in HAProxy, a
//!   prefix of `/` alone leaves the path unchanged (a self-redirect, e.g. to change the
//!   status code or the scheme seen by a later rule); beyond HAProxy, a prefix ending in
//!   `/` does not double the path's leading slash (`/new/` + `/a` → `/new/a`).
//! - **`scheme S`**: `S://HOST` followed by the path and query ("concatenating `<sch>` with
//!   `://` then the first occurrence of the Host header, and then the URI path").
//!
//! The path and query come from the request-target: origin-form as is; absolute-form
//! (`http://h/p?q`) keeps only its path and query (`/p?q`), with a `/` for an empty path
//! (`http://h?q` → `/?q`, RFC 3986 §6.2.3); asterisk-form (`*`) gives `/`, as in HAProxy.
//!
//! # Decisions
//!
//! - **The host of `scheme`**: the authority of an absolute-form target if there is one
//!   (RFC 9112 §3.2.2: a server MUST ignore Host then and use the target's authority;
//!   userinfo is dropped, RFC 9110 §4.2.4), else the `Host` field. With neither (an
//!   HTTP/1.0 request without Host) or an empty one, HAProxy would send `https:///path`,
//!   which browsers resolve in surprising ways; we return [`RedirectError::MissingHost`]
//!   and the caller answers 400 instead.
//! - **Ports**: when the new scheme is `http` or `https`, an explicit `:80` or `:443` (or
//!   an empty port) is removed from the host: it is the default port of the scheme the
//!   request came with, and kept it would send `https://h:80/` clients to TLS on port 80.
//!   Any other port is kept as HAProxy does (right when the same port serves both
//!   schemes, e.g. behind a TLS-terminating listener on the same port).
//! - **Validation**: the code must be 301, 302, 303, 307 or 308 ([`reason`]); the
//!   Location must be non-empty visible ASCII (no SP, CTL or DEL: a field value cannot
//!   carry CR/LF, RFC 9110 §5.5), which the configuration checks and the request parser
//!   guarantee for the target and Host, and which is checked again here. On any error
//!   nothing is appended.

use crate::config::RedirectKind;

/// Why no redirect response could be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// `redirect scheme` on a request with no host to redirect to (→ 400).
    #[error("redirect scheme: the request has no host (no Host field, no absolute-form target)")]
    MissingHost,
    /// Not a redirect status.
    #[error("redirect code {0} is not one of 301, 302, 303, 307, 308")]
    BadCode(u16),
    /// The Location would be empty or contain a space, control character or non-ASCII
    /// byte.
    #[error("the redirect Location would be empty or contain a space or control character")]
    InvalidLocation,
}

/// The reason phrase of a redirect status (RFC 9110 §15.4), `None` for other codes.
pub fn reason(code: u16) -> Option<&'static str> {
    Some(match code {
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        _ => return None,
    })
}

/// Append the complete head of the redirect response for rule `kind` with status `code`
/// to `out` (not cleared). `target` is the request-target as received (origin-, absolute-
/// or asterisk-form; the origin-form part of it is enough), `host` the value of the
/// request's `Host` field, if any. `close` adds `Connection: close`. On error nothing is
/// appended.
pub fn write_redirect(
    out: &mut Vec<u8>,
    kind: &RedirectKind,
    code: u16,
    target: &[u8],
    host: Option<&[u8]>,
    close: bool,
) -> Result<(), RedirectError> {
    let reason = reason(code).ok_or(RedirectError::BadCode(code))?;
    let start = out.len();
    out.reserve(112 + target.len() + host.map_or(0, <[u8]>::len));
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(code.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\nLocation: ");
    let location_start = out.len();
    if let Err(e) = write_location(out, kind, target, host) {
        out.truncate(start);
        return Err(e);
    }
    let location = &out[location_start..];
    if location.is_empty() || !location.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        out.truncate(start);
        return Err(RedirectError::InvalidLocation);
    }
    out.extend_from_slice(b"\r\nContent-Length: 0\r\nCache-Control: no-cache\r\n");
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Append the Location value for `kind` (see the module documentation).
fn write_location(
    out: &mut Vec<u8>,
    kind: &RedirectKind,
    target: &[u8],
    host: Option<&[u8]>,
) -> Result<(), RedirectError> {
    let Target {
        authority,
        slash,
        rest,
    } = split_target(target);
    let write_path = |out: &mut Vec<u8>| {
        if slash {
            out.push(b'/');
        }
        out.extend_from_slice(rest);
    };
    match kind {
        RedirectKind::Location(url) => out.extend_from_slice(url.as_bytes()),
        RedirectKind::Prefix(prefix) => {
            if prefix != "/" {
                // The path always starts with '/': do not double a trailing one.
                let prefix = prefix.as_bytes();
                out.extend_from_slice(prefix.strip_suffix(b"/").unwrap_or(prefix));
            }
            write_path(out);
        }
        RedirectKind::Scheme(scheme) => {
            let host = authority
                .or(host)
                .filter(|h| !h.is_empty())
                .ok_or(RedirectError::MissingHost)?;
            out.extend_from_slice(scheme.as_bytes());
            out.extend_from_slice(b"://");
            let web = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
            out.extend_from_slice(if web {
                without_default_port(host)
            } else {
                host
            });
            write_path(out);
        }
    }
    Ok(())
}

/// What a redirect takes from the request-target.
struct Target<'a> {
    /// The authority of an absolute-form target, userinfo removed.
    authority: Option<&'a [u8]>,
    /// Write a `/` before `rest` (the target's path is empty).
    slash: bool,
    /// The path (starting with `/`) and query, or only the query when `slash`.
    rest: &'a [u8],
}

/// Split the request-target: `*` or an empty target give `/`; an absolute-form target
/// gives its authority, and `/` when its path is empty (RFC 3986 §6.2.3: `http://h?q` is
/// `http://h/?q`).
fn split_target(target: &[u8]) -> Target<'_> {
    let origin = |slash, rest| Target {
        authority: None,
        slash,
        rest,
    };
    match target {
        [] | b"*" => return origin(true, b""),
        [b'/', ..] => return origin(false, target),
        _ => {}
    }
    let Some(after_scheme) = target
        .windows(3)
        .position(|w| w == b"://")
        .map(|i| &target[i + 3..])
    else {
        // Not a form a parsed request can have here (authority-form is CONNECT only).
        return origin(true, target);
    };
    let end = after_scheme
        .iter()
        .position(|&b| b == b'/' || b == b'?' || b == b'#')
        .unwrap_or(after_scheme.len());
    let authority = &after_scheme[..end];
    let authority = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let rest = &after_scheme[end..];
    Target {
        authority: Some(authority),
        slash: rest.first() != Some(&b'/'),
        rest,
    }
}

/// `host` without a `:80`, `:443` or empty port (an IP-literal's colons are not a port).
fn without_default_port(host: &[u8]) -> &[u8] {
    let Some(colon) = host.iter().rposition(|&b| b == b':') else {
        return host;
    };
    if host[colon..].contains(&b']') {
        return host; // `[::1]` without a port
    }
    match &host[colon + 1..] {
        b"" | b"80" | b"443" => &host[..colon],
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(
        kind: RedirectKind,
        code: u16,
        target: &str,
        host: Option<&str>,
        close: bool,
    ) -> Result<String, RedirectError> {
        let mut out = b"previous".to_vec();
        let r = write_redirect(
            &mut out,
            &kind,
            code,
            target.as_bytes(),
            host.map(str::as_bytes),
            close,
        );
        match r {
            Ok(()) => {
                assert!(out.starts_with(b"previous"));
                Ok(String::from_utf8(out[8..].to_vec()).unwrap())
            }
            Err(e) => {
                assert_eq!(out, b"previous", "nothing appended on error");
                Err(e)
            }
        }
    }

    /// Just the Location of a 302.
    fn location(
        kind: RedirectKind,
        target: &str,
        host: Option<&str>,
    ) -> Result<String, RedirectError> {
        let head = redirect(kind, 302, target, host, false)?;
        let line = head
            .lines()
            .find_map(|l| l.strip_prefix("Location: "))
            .unwrap();
        Ok(line.to_string())
    }

    fn scheme(s: &str) -> RedirectKind {
        RedirectKind::Scheme(s.into())
    }

    fn prefix(p: &str) -> RedirectKind {
        RedirectKind::Prefix(p.into())
    }

    #[test]
    fn whole_head() {
        assert_eq!(
            redirect(scheme("https"), 301, "/a?b=1", Some("example.com"), false).unwrap(),
            "HTTP/1.1 301 Moved Permanently\r\nLocation: https://example.com/a?b=1\r\n\
             Content-Length: 0\r\nCache-Control: no-cache\r\n\r\n"
        );
        assert_eq!(
            redirect(
                RedirectKind::Location("https://x.test/".into()),
                302,
                "/",
                None,
                true
            )
            .unwrap(),
            "HTTP/1.1 302 Found\r\nLocation: https://x.test/\r\n\
             Content-Length: 0\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn codes_and_reasons() {
        for (code, phrase) in [
            (301, "Moved Permanently"),
            (302, "Found"),
            (303, "See Other"),
            (307, "Temporary Redirect"),
            (308, "Permanent Redirect"),
        ] {
            assert_eq!(reason(code), Some(phrase));
            let head = redirect(prefix("/p"), code, "/x", None, false).unwrap();
            assert!(
                head.starts_with(&format!("HTTP/1.1 {code} {phrase}\r\n")),
                "{head}"
            );
        }
        for code in [200, 300, 304, 305, 306, 309, 404, 0] {
            assert_eq!(reason(code), None);
            assert_eq!(
                redirect(prefix("/p"), code, "/x", None, false),
                Err(RedirectError::BadCode(code))
            );
        }
    }

    #[test]
    fn scheme_redirects() {
        let https = |target, host| location(scheme("https"), target, host);
        assert_eq!(https("/", Some("h")).unwrap(), "https://h/");
        assert_eq!(
            https("/a/b?c=d&e", Some("h.test")).unwrap(),
            "https://h.test/a/b?c=d&e"
        );
        assert_eq!(https("*", Some("h")).unwrap(), "https://h/");
        // Absolute-form: its authority wins over Host (RFC 9112 §3.2.2), path kept.
        assert_eq!(
            https("http://a.test/p?q", Some("b.test")).unwrap(),
            "https://a.test/p?q"
        );
        assert_eq!(https("http://a.test", None).unwrap(), "https://a.test/");
        assert_eq!(
            https("http://a.test?q=1", None).unwrap(),
            "https://a.test/?q=1"
        );
        assert_eq!(
            https("http://user:pw@a.test:8080/p", None).unwrap(),
            "https://a.test:8080/p"
        );
        // Default ports go, others stay; IPv6 literals keep their colons.
        assert_eq!(https("/", Some("h:80")).unwrap(), "https://h/");
        assert_eq!(https("/", Some("h:443")).unwrap(), "https://h/");
        assert_eq!(https("/", Some("h:")).unwrap(), "https://h/");
        assert_eq!(https("/", Some("h:8443")).unwrap(), "https://h:8443/");
        assert_eq!(https("/", Some("[::1]:80")).unwrap(), "https://[::1]/");
        assert_eq!(https("/", Some("[::1]")).unwrap(), "https://[::1]/");
        assert_eq!(
            location(scheme("HTTP"), "/x", Some("h:443")).unwrap(),
            "HTTP://h/x"
        );
        // Another scheme: the host is kept as is.
        assert_eq!(
            location(scheme("wss"), "/x", Some("h:80")).unwrap(),
            "wss://h:80/x"
        );
        // No host at all, or an empty Host: the caller answers 400.
        assert_eq!(https("/", None), Err(RedirectError::MissingHost));
        assert_eq!(https("/", Some("")), Err(RedirectError::MissingHost));
        assert_eq!(
            https("http:///p", Some("h")),
            Err(RedirectError::MissingHost)
        );
    }

    #[test]
    fn prefix_redirects() {
        let p = |pfx, target| location(prefix(pfx), target, Some("h")).unwrap();
        assert_eq!(p("/new", "/a/b?c=1"), "/new/a/b?c=1");
        assert_eq!(p("/new", "/"), "/new/");
        // "/" alone: the target unchanged.
        assert_eq!(p("/", "/a?b"), "/a?b");
        assert_eq!(p("/", "/"), "/");
        // A trailing slash is not doubled.
        assert_eq!(p("/new/", "/a"), "/new/a");
        assert_eq!(p("/new/", "/"), "/new/");
        assert_eq!(p("https://other.test", "/a?q"), "https://other.test/a?q");
        assert_eq!(p("https://other.test/", "/a"), "https://other.test/a");
        // Absolute-form and asterisk-form targets.
        assert_eq!(p("/new", "http://h.test/a?q"), "/new/a?q");
        assert_eq!(p("/new", "http://h.test"), "/new/");
        assert_eq!(p("/new", "*"), "/new/");
        // The Host does not matter.
        assert_eq!(location(prefix("/n"), "/a", None).unwrap(), "/n/a");
    }

    #[test]
    fn location_redirects() {
        let l = |url: &str, target, host| {
            location(RedirectKind::Location(url.into()), target, host).unwrap()
        };
        assert_eq!(
            l("https://example.com/", "/a?b", Some("h")),
            "https://example.com/"
        );
        assert_eq!(
            l("/maintenance.html", "http://x/y", None),
            "/maintenance.html"
        );
    }

    #[test]
    fn invalid_locations_are_refused() {
        // The configuration and the parser prevent these; checked again all the same.
        for kind in [
            RedirectKind::Location(String::new()),
            RedirectKind::Location("/a\r\nSet-Cookie: x=1".into()),
            RedirectKind::Location("/a b".into()),
            RedirectKind::Location("/é".into()),
            prefix("/a\tb"),
        ] {
            assert_eq!(
                redirect(kind.clone(), 302, "/", Some("h"), true),
                Err(RedirectError::InvalidLocation),
                "{kind:?}"
            );
        }
        assert_eq!(
            location(scheme("https"), "/", Some("h\r\nX: y")),
            Err(RedirectError::InvalidLocation)
        );
    }

    #[test]
    fn appends_after_existing_bytes() {
        // Two redirects back to back in one buffer (pipelined requests).
        let mut out = Vec::new();
        let kind = scheme("https");
        write_redirect(&mut out, &kind, 308, b"/1", Some(b"h"), false).unwrap();
        let first = out.len();
        write_redirect(&mut out, &kind, 308, b"/2", Some(b"h"), true).unwrap();
        assert!(out[..first].ends_with(b"\r\n\r\n"));
        assert!(out[first..]
            .starts_with(b"HTTP/1.1 308 Permanent Redirect\r\nLocation: https://h/2\r\n"));
        assert!(out.ends_with(b"Connection: close\r\n\r\n"));
    }
}
