//! HAProxy-like error responses, sans-io: complete HTTP/1.1 responses built once (when
//! the config is loaded) and then only borrowed, so answering with an error allocates
//! nothing.
//!
//! Every built-in page has the shape of HAProxy's (`http_err_msgs` in HAProxy's
//! `src/http.c`), plus `Connection: close`, because after an error the proxy closes the
//! client connection:
//!
//! ```text
//! HTTP/1.1 503 Service Unavailable\r\n
//! Content-Type: text/html\r\n
//! Content-Length: 107\r\n
//! Cache-Control: no-cache\r\n
//! Connection: close\r\n
//! \r\n
//! <html><body><h1>503 Service Unavailable</h1>\n
//! No server is available to handle this request.\n
//! </body></html>\n
//! ```
//!
//! # `errorfile`
//!
//! As in HAProxy, an errorfile is a complete raw HTTP response sent as is.
//! [`ErrorPages::with_errorfile`] replaces one status's page with it after checking that:
//!
//! - the status is one this module serves ([`STATUSES`]);
//! - the file is at most [`MAX_ERRORFILE`] bytes (HAProxy requires an errorfile to fit in
//!   a buffer, 16 KiB by default; we are more generous);
//! - it starts with a complete response head that [`parse_response`] accepts (strict
//!   RFC 9112 rules, CRLF line endings);
//! - its status code is the one it replaces;
//! - its body is exactly what its framing says: `Content-Length` bytes, a complete
//!   chunked body, nothing for no framing on a bodyless status, or anything when
//!   close-delimited — no trailing bytes that a client could read as a next response.
//!
//! The file is not required to carry `Connection: close`: the proxy closes the client
//! connection after any error page regardless of what the page says — except as below.
//!
//! # Keep-alive variants
//!
//! A `deny` rule may answer on a connection that stays open (see `src/l7/mod.rs`), as
//! HAProxy does. For that, each status may also have a [`KeepAlivePage`], built once
//! with the pages:
//!
//! - a built-in page has one: the same bytes without the `Connection: close` line (for
//!   HTTP/1.1 clients), or with `Connection: keep-alive` in its place (for HTTP/1.0
//!   clients that asked for keep-alive);
//! - an errorfile has one only if its body is framed by `Content-Length` and its own head
//!   lets the connection persist (RFC 9112 §9.3: no `close` token in `Connection`, and
//!   `Connection: keep-alive` if its status line says HTTP/1.0). The file is then sent
//!   as is to HTTP/1.1 clients, and with `Connection: keep-alive` added before the blank
//!   line to HTTP/1.0 clients when it lacks that token. A chunked or close-delimited
//!   errorfile, or one that says `Connection: close`, always closes the connection.
//!
//! A response to `HEAD` is sent without its body when the connection stays open (the
//! client reads no body after a `HEAD`, so the body would pass for the next response).

use super::chunked::ChunkedDecoder;
use super::error::HttpError;
use super::framing::{response_framing, BodyFraming};
use super::head::{parse_response, Limits, Method, Parsed, ResponseHead, Version};

/// The statuses with a built-in page, in ascending order.
pub const STATUSES: &[u16] = &[
    400, 403, 404, 405, 408, 413, 414, 421, 429, 431, 500, 501, 502, 503, 504, 505,
];

/// The largest accepted errorfile, in bytes.
pub const MAX_ERRORFILE: usize = 64 * 1024;

/// Reason phrase and one-line explanation of each status in [`STATUSES`], same order.
/// The texts are HAProxy's where HAProxy has a page for the status.
const TEXTS: [(&str, &str); 16] = [
    ("Bad Request", "Your browser sent an invalid request."),
    ("Forbidden", "Request forbidden by administrative rules."),
    ("Not Found", "The resource could not be found."),
    (
        "Method Not Allowed",
        "A request was made of a resource using a request method not supported by that resource",
    ),
    (
        "Request Time-out",
        "Your browser didn't send a complete request in time.",
    ),
    (
        "Payload Too Large",
        "The request entity exceeds the maximum allowed.",
    ),
    ("URI Too Long", "The request URI is too long."),
    (
        "Misdirected Request",
        "The server cannot produce a response for this request.",
    ),
    (
        "Too Many Requests",
        "You have sent too many requests in a given amount of time.",
    ),
    (
        "Request Header Fields Too Large",
        "The request header fields are too large.",
    ),
    (
        "Internal Server Error",
        "An internal server error occurred.",
    ),
    (
        "Not Implemented",
        "The server does not support the functionality required to fulfill the request.",
    ),
    (
        "Bad Gateway",
        "The server returned an invalid or incomplete response.",
    ),
    (
        "Service Unavailable",
        "No server is available to handle this request.",
    ),
    ("Gateway Time-out", "The server didn't respond in time."),
    (
        "HTTP Version Not Supported",
        "The server does not support the HTTP version used in the request.",
    ),
];

/// Why an errorfile was refused. The caller adds the file's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorfileError {
    /// The status has no error page to replace.
    #[error("errorfile for status {0}: halb has no error page for this status (supported: 400, 403, 404, 405, 408, 413, 414, 421, 429, 431, 500, 501, 502, 503, 504, 505)")]
    UnsupportedStatus(u16),
    /// The file is larger than [`MAX_ERRORFILE`].
    #[error("errorfile for status {status}: {len} bytes, more than the {max} allowed")]
    TooLarge { status: u16, len: usize, max: usize },
    /// The file does not start with a complete response head.
    #[error("errorfile for status {0}: the file ends before the end of the response head (a blank CRLF line)")]
    Truncated(u16),
    /// The head is not a valid HTTP/1 response head.
    #[error("errorfile for status {status}: not a valid HTTP response: {error}")]
    Invalid { status: u16, error: HttpError },
    /// The status line carries another status code.
    #[error("errorfile for status {expected}: its status line says {found}")]
    StatusMismatch { expected: u16, found: u16 },
    /// The body does not match the framing the head announces.
    #[error("errorfile for status {status}: {problem}")]
    BadBody { status: u16, problem: String },
}

/// The error page of every status in [`STATUSES`], each a complete response.
///
/// Build it once per config (e.g. `ErrorPages::default()` then
/// [`with_errorfile`](Self::with_errorfile) per `errorfile`), share it, and borrow pages
/// with [`page`](Self::page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPages {
    /// Indexed like [`STATUSES`]: the page sent before closing the connection.
    pages: Vec<Box<[u8]>>,
    /// Indexed like [`STATUSES`]: the page sent on a connection that stays open, if the
    /// page allows it (see the module documentation).
    keep_alive: Vec<Option<KeepAlivePage>>,
}

/// An error page that can be sent on a client connection that stays open: complete
/// responses without `Connection: close`, framed by `Content-Length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepAlivePage {
    /// For HTTP/1.1 clients, and the length of its head.
    http11: Box<[u8]>,
    http11_head: usize,
    /// For HTTP/1.0 clients that asked for keep-alive (says `Connection: keep-alive`),
    /// and the length of its head.
    http10: Box<[u8]>,
    http10_head: usize,
}

impl KeepAlivePage {
    /// The bytes to send in answer to a request of `version` with `method`: the whole
    /// response, or only its head for `HEAD`.
    pub fn response(&self, version: Version, method: Method) -> &[u8] {
        let (bytes, head_len) = match version {
            Version::Http11 => (&self.http11, self.http11_head),
            Version::Http10 => (&self.http10, self.http10_head),
        };
        if method == Method::Head {
            &bytes[..head_len]
        } else {
            bytes
        }
    }
}

impl Default for ErrorPages {
    /// The built-in pages.
    fn default() -> Self {
        let (pages, keep_alive) = STATUSES
            .iter()
            .zip(TEXTS)
            .map(|(&status, (reason, text))| {
                let page = |connection| build_page(status, reason, text, connection);
                let (close, _) = page("Connection: close\r\n");
                let (http11, http11_head) = page("");
                let (http10, http10_head) = page("Connection: keep-alive\r\n");
                let keep = KeepAlivePage {
                    http11,
                    http11_head,
                    http10,
                    http10_head,
                };
                (close, Some(keep))
            })
            .unzip();
        ErrorPages { pages, keep_alive }
    }
}

/// A built-in page with `connection` (a whole field line, or nothing) as its last field,
/// and the length of its head.
fn build_page(status: u16, reason: &str, text: &str, connection: &str) -> (Box<[u8]>, usize) {
    let body = format!("<html><body><h1>{status} {reason}</h1>\n{text}\n</body></html>\n");
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\n\
         Content-Type: text/html\r\n\
         Content-Length: {}\r\n\
         Cache-Control: no-cache\r\n\
         {connection}\
         \r\n",
        body.len()
    );
    let head_len = head.len();
    ((head + &body).into_bytes().into_boxed_slice(), head_len)
}

fn index_of(status: u16) -> Option<usize> {
    STATUSES.binary_search(&status).ok()
}

impl ErrorPages {
    /// The built-in pages (same as `default()`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The page for `status`, if it is one of [`STATUSES`].
    pub fn get(&self, status: u16) -> Option<&[u8]> {
        index_of(status).map(|i| &*self.pages[i])
    }

    /// The page for `status`; a status without a page gets the 500 page.
    pub fn page(&self, status: u16) -> &[u8] {
        self.get(status)
            .unwrap_or_else(|| &self.pages[index_of(500).expect("500 is in STATUSES")])
    }

    /// The page answering a parse or framing error (its [`HttpError::status`]).
    pub fn for_error(&self, error: &HttpError) -> &[u8] {
        self.page(error.status())
    }

    /// The variant of [`page`](Self::page)`(status)` that may be sent on a connection
    /// that stays open, if that page has one (see the module documentation).
    pub fn keep_alive(&self, status: u16) -> Option<&KeepAlivePage> {
        let i = index_of(status).or_else(|| index_of(500))?;
        self.keep_alive[i].as_ref()
    }

    /// Replace the page of `status` with the content of an `errorfile`, after checking
    /// it (see the module documentation). On error, nothing is replaced.
    pub fn with_errorfile(
        mut self,
        status: u16,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<Self, ErrorfileError> {
        let bytes = bytes.into();
        let i = index_of(status).ok_or(ErrorfileError::UnsupportedStatus(status))?;
        let (head, framing) = validate_errorfile(status, &bytes)?;
        self.keep_alive[i] = errorfile_keep_alive(&bytes, &head, framing);
        self.pages[i] = bytes.into_boxed_slice();
        Ok(self)
    }
}

/// The keep-alive variant of a valid errorfile, if it may have one: `Content-Length`
/// framing and a head that lets the connection persist.
fn errorfile_keep_alive(
    bytes: &[u8],
    head: &ResponseHead,
    framing: BodyFraming,
) -> Option<KeepAlivePage> {
    // `Content-Length: 0` frames as `None`; without the field a 4xx/5xx response would
    // be close-delimited.
    let has_length = head.headers.get(bytes, "content-length").is_some()
        && matches!(framing, BodyFraming::Length(_) | BodyFraming::None);
    if !has_length || !head.keep_alive(bytes) {
        return None;
    }
    let http11: Box<[u8]> = bytes.into();
    let http10: Box<[u8]> = if head.headers.has_token(bytes, "connection", "keep-alive") {
        http11.clone()
    } else {
        // Before the blank line that ends the head.
        let at = head.head_len - 2;
        [&bytes[..at], b"Connection: keep-alive\r\n", &bytes[at..]]
            .concat()
            .into()
    };
    let added = http10.len() - http11.len();
    Some(KeepAlivePage {
        http11,
        http11_head: head.head_len,
        http10,
        http10_head: head.head_len + added,
    })
}

/// Check that `bytes` is a complete, self-consistent response with status `status`;
/// its head and body framing.
fn validate_errorfile(
    status: u16,
    bytes: &[u8],
) -> Result<(ResponseHead, BodyFraming), ErrorfileError> {
    if bytes.len() > MAX_ERRORFILE {
        return Err(ErrorfileError::TooLarge {
            status,
            len: bytes.len(),
            max: MAX_ERRORFILE,
        });
    }
    let invalid = |error: HttpError| ErrorfileError::Invalid { status, error };
    // A strict parse, with a head limit as large as the file itself.
    let limits = Limits {
        max_head: MAX_ERRORFILE,
        ..Limits::default()
    };
    let head = match parse_response(bytes, &limits).map_err(invalid)? {
        Parsed::Complete(head) => head,
        Parsed::Partial => return Err(ErrorfileError::Truncated(status)),
    };
    if head.status != status {
        return Err(ErrorfileError::StatusMismatch {
            expected: status,
            found: head.status,
        });
    }
    let body = &bytes[head.head_len..];
    let bad_body = |problem: String| ErrorfileError::BadBody { status, problem };
    let framing = response_framing(Method::Get, &head, bytes).map_err(invalid)?;
    match framing {
        BodyFraming::None if !body.is_empty() => Err(bad_body(format!(
            "{} bytes after a head that announces no body",
            body.len()
        ))),
        BodyFraming::Length(n) if n != body.len() as u64 => Err(bad_body(format!(
            "Content-Length is {n} but the body has {} bytes",
            body.len()
        ))),
        BodyFraming::Chunked => {
            let p = ChunkedDecoder::new()
                .advance(body)
                .map_err(|e| invalid(HttpError::BadChunk(e)))?;
            if !p.done {
                Err(bad_body("the chunked body is incomplete".to_string()))
            } else if p.consumed != body.len() {
                Err(bad_body(format!(
                    "{} bytes after the end of the chunked body",
                    body.len() - p.consumed
                )))
            } else {
                Ok(())
            }
        }
        // Close-delimited: the whole rest is the body, and we close after it anyway.
        // Tunnel cannot happen: 101 is not in STATUSES.
        _ => Ok(()),
    }?;
    Ok((head, framing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ResponseHead;

    fn parse(page: &[u8]) -> ResponseHead {
        match parse_response(page, &Limits::default()) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("{other:?} for {}", String::from_utf8_lossy(page)),
        }
    }

    #[test]
    fn every_page_is_a_valid_response() {
        let pages = ErrorPages::default();
        for &status in STATUSES {
            let page = pages.get(status).unwrap();
            let head = parse(page);
            assert_eq!(head.status, status);
            let body = &page[head.head_len..];
            assert_eq!(
                response_framing(Method::Get, &head, page).unwrap(),
                BodyFraming::Length(body.len() as u64)
            );
            let h = &head.headers;
            assert_eq!(h.get(page, "content-type"), Some(&b"text/html"[..]));
            assert_eq!(h.get(page, "cache-control"), Some(&b"no-cache"[..]));
            assert_eq!(h.get(page, "connection"), Some(&b"close"[..]));
            assert!(!head.keep_alive(page));
            let reason = std::str::from_utf8(&page[head.reason.clone()]).unwrap();
            let expected = format!("<html><body><h1>{status} {reason}</h1>\n");
            assert!(body.starts_with(expected.as_bytes()), "{status}");
            assert!(body.ends_with(b"\n</body></html>\n"));
        }
    }

    #[test]
    fn page_503_is_exactly_haproxys() {
        let pages = ErrorPages::new();
        assert_eq!(
            pages.page(503),
            &b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/html\r\n\
Content-Length: 107\r\n\
Cache-Control: no-cache\r\n\
Connection: close\r\n\
\r\n\
<html><body><h1>503 Service Unavailable</h1>\n\
No server is available to handle this request.\n\
</body></html>\n"[..]
        );
    }

    #[test]
    fn lookup_and_fallback() {
        let pages = ErrorPages::default();
        assert!(pages.get(200).is_none());
        assert!(pages.get(418).is_none());
        assert_eq!(pages.page(418), pages.page(500));
        assert!(pages.page(404).starts_with(b"HTTP/1.1 404 Not Found\r\n"));
        assert!(pages
            .for_error(&HttpError::UriTooLong)
            .starts_with(b"HTTP/1.1 414 "));
        assert!(pages
            .for_error(&HttpError::BadContentLength.in_response())
            .starts_with(b"HTTP/1.1 502 "));
    }

    #[test]
    fn every_http_error_status_has_a_page() {
        use crate::http::ChunkError;
        let errors = [
            HttpError::BadRequestLine,
            HttpError::BadChunk(ChunkError::SizeOverflow),
            HttpError::PayloadTooLarge,
            HttpError::UriTooLong,
            HttpError::HeadTooLarge,
            HttpError::TooManyHeaders,
            HttpError::UnsupportedTransferCoding,
            HttpError::VersionNotSupported,
            HttpError::BadResponse(Box::new(HttpError::BadContentLength)),
        ];
        for e in errors {
            assert!(index_of(e.status()).is_some(), "{e}");
        }
    }

    const CUSTOM_503: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nsorry";

    #[test]
    fn errorfile_replaces_one_page() {
        let pages = ErrorPages::default()
            .with_errorfile(503, CUSTOM_503)
            .unwrap();
        assert_eq!(pages.page(503), CUSTOM_503);
        assert_eq!(pages.page(502), ErrorPages::default().page(502));
    }

    #[test]
    fn errorfile_other_framings() {
        let chunked =
            &b"HTTP/1.1 404 Nope\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n"[..];
        let pages = ErrorPages::default().with_errorfile(404, chunked).unwrap();
        assert_eq!(pages.page(404), chunked);
        // Close-delimited: everything after the head is the body.
        let close = &b"HTTP/1.0 403 Forbidden\r\n\r\n<p>no</p>\n"[..];
        let pages = pages.with_errorfile(403, close).unwrap();
        assert_eq!(pages.page(403), close);
        // No body at all.
        let empty = &b"HTTP/1.1 429 Slow down\r\nContent-Length: 0\r\nRetry-After: 5\r\n\r\n"[..];
        ErrorPages::default().with_errorfile(429, empty).unwrap();
    }

    /// The keep-alive variants of `pages` for `status`: (HTTP/1.1 GET, HTTP/1.0 GET,
    /// HTTP/1.1 HEAD, HTTP/1.0 HEAD).
    fn variants(pages: &ErrorPages, status: u16) -> Option<[&[u8]; 4]> {
        let k = pages.keep_alive(status)?;
        Some([
            k.response(Version::Http11, Method::Get),
            k.response(Version::Http10, Method::Get),
            k.response(Version::Http11, Method::Head),
            k.response(Version::Http10, Method::Head),
        ])
    }

    #[test]
    fn every_builtin_page_has_keep_alive_variants() {
        let pages = ErrorPages::default();
        for &status in STATUSES {
            let close = pages.page(status);
            let [v11, v10, head11, head10] = variants(&pages, status).unwrap();
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            // The same bytes minus the Connection: close line / with keep-alive instead.
            assert_eq!(text(v11), text(close).replace("Connection: close\r\n", ""));
            assert_eq!(
                text(v10),
                text(close).replace("Connection: close\r\n", "Connection: keep-alive\r\n")
            );
            let h11 = parse(v11);
            assert_eq!(h11.status, status);
            assert!(h11.headers.get(v11, "connection").is_none());
            assert!(h11.keep_alive(v11), "{status}");
            assert_eq!(&close[parse(close).head_len..], &v11[h11.head_len..]);
            let h10 = parse(v10);
            assert_eq!(h10.headers.get(v10, "connection"), Some(&b"keep-alive"[..]));
            // For HEAD, the head alone.
            assert_eq!(head11, &v11[..h11.head_len]);
            assert_eq!(head10, &v10[..h10.head_len]);
            assert!(head11.ends_with(b"Cache-Control: no-cache\r\n\r\n"));
        }
        // A status without a page gets the 500 page's variant, like `page`.
        assert_eq!(variants(&pages, 418), variants(&pages, 500));
    }

    #[test]
    fn page_403_keep_alive_is_exact() {
        let pages = ErrorPages::new();
        assert_eq!(
            pages
                .keep_alive(403)
                .unwrap()
                .response(Version::Http11, Method::Get),
            &b"HTTP/1.1 403 Forbidden\r\n\
Content-Type: text/html\r\n\
Content-Length: 93\r\n\
Cache-Control: no-cache\r\n\
\r\n\
<html><body><h1>403 Forbidden</h1>\n\
Request forbidden by administrative rules.\n\
</body></html>\n"[..]
        );
    }

    #[test]
    fn errorfile_keep_alive_only_with_content_length_and_no_close() {
        let with =
            |status: u16, file: &[u8]| ErrorPages::default().with_errorfile(status, file).unwrap();
        // Content-Length, no Connection: sent as is; HTTP/1.0 clients get keep-alive added.
        let file = &b"HTTP/1.1 403 No\r\nContent-Length: 3\r\nX-A: b\r\n\r\nno\n"[..];
        let pages = with(403, file);
        let [v11, v10, head11, head10] = variants(&pages, 403).unwrap();
        assert_eq!(v11, file);
        assert_eq!(
            v10,
            &b"HTTP/1.1 403 No\r\nContent-Length: 3\r\nX-A: b\r\nConnection: keep-alive\r\n\r\nno\n"[..]
        );
        assert_eq!(head11, &file[..file.len() - 3]);
        assert_eq!(head10, &v10[..v10.len() - 3]);
        // The other statuses keep their built-in variants.
        assert_eq!(variants(&pages, 429), variants(&ErrorPages::new(), 429));
        // Content-Length: 0, and a file that already says keep-alive (also HTTP/1.0).
        let empty = &b"HTTP/1.1 429 Slow\r\nContent-Length: 0\r\nRetry-After: 5\r\n\r\n"[..];
        assert_eq!(variants(&with(429, empty), 429).unwrap()[0], empty);
        let ka = &b"HTTP/1.0 403 No\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nno"[..];
        assert_eq!(variants(&with(403, ka), 403).unwrap()[..2], [ka, ka]);
        // No keep-alive variant: the page always closes.
        for file in [
            &b"HTTP/1.1 403 No\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"[..],
            b"HTTP/1.1 403 No\r\nConnection: x, Close\r\nContent-Length: 2\r\n\r\nno",
            b"HTTP/1.1 403 No\r\nContent-Type: text/plain\r\n\r\nclose-delimited",
            b"HTTP/1.1 403 No\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n",
            b"HTTP/1.0 403 No\r\nContent-Length: 2\r\n\r\nno",
        ] {
            let pages = with(403, file);
            assert!(pages.keep_alive(403).is_none(), "{}", show(file));
            assert_eq!(pages.page(403), file);
        }
    }

    fn show(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    fn refused(status: u16, bytes: &[u8]) -> ErrorfileError {
        ErrorPages::default()
            .with_errorfile(status, bytes)
            .unwrap_err()
    }

    #[test]
    fn errorfile_validation() {
        assert_eq!(
            refused(200, CUSTOM_503),
            ErrorfileError::UnsupportedStatus(200)
        );
        assert_eq!(
            refused(502, CUSTOM_503),
            ErrorfileError::StatusMismatch {
                expected: 502,
                found: 503
            }
        );
        assert_eq!(
            refused(503, b"HTTP/1.1 503 Oops\r\nContent-Length: 5\r\n"),
            ErrorfileError::Truncated(503)
        );
        assert!(matches!(
            refused(503, b"<html>503</html>\n"),
            ErrorfileError::Invalid { status: 503, .. }
        ));
        // Bare LF line endings (a file saved without CRs).
        assert!(matches!(
            refused(503, b"HTTP/1.1 503 Oops\nContent-Length: 0\n\n"),
            ErrorfileError::Invalid { .. }
        ));
        assert!(matches!(
            refused(503, b"HTTP/1.1 503 Oops\r\nContent-Length: 9\r\n\r\nshort"),
            ErrorfileError::BadBody { status: 503, .. }
        ));
        assert!(matches!(
            refused(
                503,
                b"HTTP/1.1 503 Oops\r\nContent-Length: 2\r\n\r\ntoo long"
            ),
            ErrorfileError::BadBody { .. }
        ));
        assert!(matches!(
            refused(
                503,
                b"HTTP/1.1 503 Oops\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"
            ),
            ErrorfileError::Invalid { .. }
        ));
        assert!(matches!(
            refused(
                503,
                b"HTTP/1.1 503 Oops\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n"
            ),
            ErrorfileError::BadBody { .. }
        ));
        assert!(matches!(
            refused(
                503,
                b"HTTP/1.1 503 Oops\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"
            ),
            ErrorfileError::BadBody { .. }
        ));
        let mut big = b"HTTP/1.1 503 Oops\r\n\r\n".to_vec();
        big.resize(MAX_ERRORFILE + 1, b'x');
        assert!(matches!(
            refused(503, &big),
            ErrorfileError::TooLarge { status: 503, .. }
        ));
        // The message names the problem.
        assert_eq!(
            refused(503, b"HTTP/1.1 503 Oops\r\nContent-Length: 9\r\n\r\nshort").to_string(),
            "errorfile for status 503: Content-Length is 9 but the body has 5 bytes"
        );
    }
}
