//! HTTP/1.1 request building and response framing (Content-Length, chunked, until-EOF).
//!
//! The parser is incremental: feed it the bytes received so far and it says whether the
//! response is complete, needs more bytes, or violates HTTP/1.1 framing.

/// The GET request a connection sends, once per request: as small as wrk's (`Host`,
/// plus `Connection: close` for a connection per request; HTTP/1.1 keeps alive by
/// default), so the server's parsing cost is the same under both generators.
pub fn build_request(host_header: &str, path: &str, close: bool) -> Vec<u8> {
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!("GET {path} HTTP/1.1\r\nHost: {host_header}\r\n{connection}\r\n").into_bytes()
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Length(usize),
    Chunked,
    UntilEof,
}

/// Chunked decoding state: where we are in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line at this offset.
    Size,
    /// Inside a chunk's data; this many data bytes (plus CRLF) remain.
    Data(usize),
    /// After the last chunk: trailer lines until an empty one.
    Trailer,
}

/// A complete response's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Body length (decoded, for chunked).
    pub body_len: usize,
    /// Bytes of the buffer this response occupied (headers + framed body).
    pub wire_len: usize,
    /// The connection cannot be reused (Connection: close, HTTP/1.0, or body until EOF).
    pub close: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// More bytes needed.
    Partial,
    Complete(Response),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramingError(pub String);

/// Incremental parser for one response.
#[derive(Debug, Default)]
pub struct Parser {
    head: Option<Head>,
}

#[derive(Debug)]
struct Head {
    status: u16,
    header_len: usize,
    body: Body,
    close: bool,
    /// Chunked: offset of the next unparsed byte and the decoding state.
    pos: usize,
    chunk: Chunk,
    decoded: usize,
}

const MAX_HEADERS: usize = 64;
const MAX_HEAD_BYTES: usize = 64 * 1024;

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse what `buf` holds so far (always the whole response from its first byte).
    /// `eof` says the peer closed: then a body delimited by EOF is complete.
    pub fn advance(&mut self, buf: &[u8], eof: bool) -> Result<Progress, FramingError> {
        if self.head.is_none() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(buf) {
                Ok(httparse::Status::Partial) => {
                    if buf.len() > MAX_HEAD_BYTES {
                        return Err(FramingError("response head too large".into()));
                    }
                    return Ok(Progress::Partial);
                }
                Ok(httparse::Status::Complete(header_len)) => {
                    self.head = Some(head_from(&resp, header_len)?);
                }
                Err(e) => return Err(FramingError(format!("bad response head: {e}"))),
            }
        }
        let head = self.head.as_mut().expect("head parsed above");
        match head.body {
            Body::Length(n) => {
                if buf.len() >= head.header_len + n {
                    Ok(Progress::Complete(Response {
                        status: head.status,
                        body_len: n,
                        wire_len: head.header_len + n,
                        close: head.close,
                    }))
                } else {
                    Ok(Progress::Partial)
                }
            }
            Body::UntilEof => {
                if eof {
                    Ok(Progress::Complete(Response {
                        status: head.status,
                        body_len: buf.len() - head.header_len,
                        wire_len: buf.len(),
                        close: true,
                    }))
                } else {
                    Ok(Progress::Partial)
                }
            }
            Body::Chunked => advance_chunked(head, buf),
        }
    }
}

impl Parser {
    /// Once the head is parsed and the body has a Content-Length: the response it will
    /// be when complete. Lets a reader count a large body's bytes instead of keeping them.
    pub fn length_framed(&self) -> Option<Response> {
        let head = self.head.as_ref()?;
        match head.body {
            Body::Length(n) => Some(Response {
                status: head.status,
                body_len: n,
                wire_len: head.header_len + n,
                close: head.close,
            }),
            _ => None,
        }
    }
}

fn head_from(resp: &httparse::Response, header_len: usize) -> Result<Head, FramingError> {
    let status = resp
        .code
        .ok_or_else(|| FramingError("no status code".into()))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut close = resp.version == Some(0);
    // Header values are looked at as bytes, in place: no UTF-8 check, no allocation.
    for h in resp.headers.iter() {
        let value = h.value.trim_ascii();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_decimal(value).ok_or_else(|| {
                FramingError(format!(
                    "invalid Content-Length {:?}",
                    String::from_utf8_lossy(value)
                ))
            })?;
            if length.is_some_and(|prev| prev != n) {
                return Err(FramingError("conflicting Content-Length headers".into()));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or(b"")
                .trim_ascii();
            if last.eq_ignore_ascii_case(b"chunked") {
                chunked = true;
            } else {
                return Err(FramingError(format!(
                    "unsupported Transfer-Encoding {:?}",
                    String::from_utf8_lossy(value)
                )));
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            let has = |token: &[u8]| {
                value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
            };
            if has(b"close") {
                close = true;
            } else if has(b"keep-alive") {
                close = false;
            }
        }
    }
    if chunked && length.is_some() {
        return Err(FramingError(
            "both Transfer-Encoding and Content-Length".into(),
        ));
    }
    let body = if (100..200).contains(&status) || status == 204 || status == 304 {
        Body::Length(0)
    } else if chunked {
        Body::Chunked
    } else if let Some(n) = length {
        Body::Length(n)
    } else {
        close = true;
        Body::UntilEof
    };
    Ok(Head {
        status,
        header_len,
        body,
        close,
        pos: header_len,
        chunk: Chunk::Size,
        decoded: 0,
    })
}

/// A non-empty run of ASCII digits that fits a usize (what `str::parse::<usize>` accepts,
/// less a leading `+`).
fn parse_decimal(text: &[u8]) -> Option<usize> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0usize, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(usize::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Find a CRLF-terminated line starting at `from`; returns (line, offset after CRLF).
fn line_at(buf: &[u8], from: usize) -> Result<Option<(&[u8], usize)>, FramingError> {
    let rest = &buf[from..];
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok(Some((&rest[..i], from + i + 2))),
        None if rest.len() > 4096 => Err(FramingError("chunk line too long".into())),
        None => Ok(None),
    }
}

fn advance_chunked(head: &mut Head, buf: &[u8]) -> Result<Progress, FramingError> {
    loop {
        match head.chunk {
            Chunk::Size => {
                let Some((line, next)) = line_at(buf, head.pos)? else {
                    return Ok(Progress::Partial);
                };
                let size_text = line.split(|&b| b == b';').next().unwrap_or(b"");
                let size_text = std::str::from_utf8(size_text)
                    .map_err(|_| FramingError("bad chunk size".into()))?
                    .trim();
                if size_text.is_empty() || size_text.len() > 15 {
                    return Err(FramingError(format!("bad chunk size {size_text:?}")));
                }
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| FramingError(format!("bad chunk size {size_text:?}")))?;
                head.pos = next;
                head.chunk = if size == 0 {
                    Chunk::Trailer
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(size) => {
                if buf.len() < head.pos + size + 2 {
                    return Ok(Progress::Partial);
                }
                if &buf[head.pos + size..head.pos + size + 2] != b"\r\n" {
                    return Err(FramingError("chunk data not followed by CRLF".into()));
                }
                head.decoded += size;
                head.pos += size + 2;
                head.chunk = Chunk::Size;
            }
            Chunk::Trailer => {
                let Some((line, next)) = line_at(buf, head.pos)? else {
                    return Ok(Progress::Partial);
                };
                head.pos = next;
                if line.is_empty() {
                    return Ok(Progress::Complete(Response {
                        status: head.status,
                        body_len: head.decoded,
                        wire_len: next,
                        close: head.close,
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8], eof: bool) -> Result<Progress, FramingError> {
        Parser::new().advance(bytes, eof)
    }

    /// Feeding byte by byte gives the same result as all at once.
    fn parse_bytewise(bytes: &[u8]) -> Result<Progress, FramingError> {
        let mut p = Parser::new();
        for end in 1..bytes.len() {
            if let Progress::Complete(r) = p.advance(&bytes[..end], false)? {
                return Ok(Progress::Complete(r));
            }
        }
        p.advance(bytes, false)
    }

    #[test]
    fn content_length() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let want = Progress::Complete(Response {
            status: 200,
            body_len: 5,
            wire_len: r.len(),
            close: false,
        });
        assert_eq!(parse_all(r, false).unwrap(), want);
        assert_eq!(parse_bytewise(r).unwrap(), want);
        assert_eq!(
            parse_all(&r[..r.len() - 1], false).unwrap(),
            Progress::Partial
        );
    }

    #[test]
    fn chunked_with_extension_and_trailer() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";
        let want = Progress::Complete(Response {
            status: 200,
            body_len: 8,
            wire_len: r.len(),
            close: false,
        });
        assert_eq!(parse_all(r, false).unwrap(), want);
        assert_eq!(parse_bytewise(r).unwrap(), want);
    }

    #[test]
    fn framing_violations() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n",
            b"HTTX/1.1 200 OK\r\n\r\n",
        ] {
            assert!(
                parse_all(bad, false).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn until_eof_and_no_body_statuses() {
        let r = b"HTTP/1.1 200 OK\r\n\r\nabc";
        assert_eq!(parse_all(r, false).unwrap(), Progress::Partial);
        let Progress::Complete(resp) = parse_all(r, true).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!((resp.body_len, resp.close), (3, true));
        let r = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert!(matches!(
            parse_all(r, false).unwrap(),
            Progress::Complete(_)
        ));
        let r = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        let Progress::Complete(resp) = parse_all(r, false).unwrap() else {
            panic!("incomplete")
        };
        assert!(resp.close);
    }
}
