//! HTTP/1 parsing and framing, sans-io: functions take bytes and return results; no
//! sockets, no async, no clocks. The L7 proxy ([`crate::l7`]) is the I/O shell around it.
//!
//! # The split
//!
//! - [`head`]: request and response heads. httparse tokenizes; we add the RFC 9112
//!   checks it does not make and return a head as byte ranges into the caller's buffer
//!   plus `head_len`, where the body (or the next pipelined request) starts.
//! - [`framing`]: from a parsed head, how the body is delimited (RFC 9112 §6.3):
//!   none, `Content-Length`, chunked, close-delimited (responses), tunnel (101).
//! - [`chunked`]: an incremental chunked-body scanner that validates the framing and
//!   finds the exact end of the body, for bodies that are forwarded as they arrived.
//! - [`error`]: [`HttpError`], the one error type, and its mapping to a status code.
//!
//! # Strictness (RFC 9112), all → 400 unless noted
//!
//! - Whitespace between a field name and the colon (§5.1); obs-fold and whitespace
//!   before the first field line (§5.2, §2.2); empty or non-token field names; CR, LF,
//!   NUL or other CTLs in a field value (RFC 9110 §5.5).
//! - Line endings must be CRLF: a bare LF, which httparse accepts, is rejected (§2.2).
//! - Request line: exactly `method SP target SP HTTP/1.x`, the target's form matching
//!   the method (§3.2); a well-formed other version (`HTTP/2.0`) → 505; longer than
//!   `max_request_line` → 414; head larger than `max_head` or more than `max_headers`
//!   fields → 431.
//! - Host: missing in HTTP/1.1, present more than once, or with characters that cannot
//!   be in `uri-host [":" port]` → 400 (§3.2).
//! - Transfer-Encoding: only a lone, final `chunked` is accepted; other codings → 501;
//!   `chunked` not last, repeated, or an empty list → 400; any TE in an HTTP/1.0
//!   request → 400; TE together with Content-Length → 400 (we reject rather than
//!   follow HAProxy in dropping Content-Length).
//! - Content-Length: exactly `1*DIGIT` (leading zeros allowed; no sign, comma list or
//!   inner space), fitting in u64, and at most one field — identical duplicates are
//!   rejected too.
//! - Chunked bodies: chunk-size overflow, bad extensions (validated, then ignored), a
//!   missing CRLF after data, malformed trailers → 400.
//! - Responses: any of the above in a backend's response (and status codes outside
//!   100..=599) → [`HttpError::BadResponse`] → 502, and the backend connection is not
//!   to be reused.

pub mod acl;
pub mod chunked;
pub mod cidr;
pub mod cookie;
pub mod error;
pub mod errors;
pub mod framing;
pub mod head;
pub mod redirect;
pub mod rewrite;

pub use chunked::{ChunkError, ChunkedDecoder, Progress};
pub use error::HttpError;
pub use framing::{request_framing, response_framing, BodyFraming};
pub use head::{
    keep_alive, parse_request, parse_response, HeaderRange, Headers, Limits, Method, Parsed,
    RequestHead, ResponseHead, Version,
};

#[cfg(test)]
mod pipeline {
    //! Several messages in one buffer: each step tells the caller where the next starts.
    use super::*;

    #[test]
    fn requests_with_bodies_back_to_back() {
        let buf = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\
PUT /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n\
GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
        let limits = Limits::default();
        let mut at = 0;
        let mut seen = Vec::new();
        while at < buf.len() {
            let rest = &buf[at..];
            let Ok(Parsed::Complete(h)) = parse_request(rest, &limits) else {
                panic!("no head at {at}");
            };
            seen.push(h.target_bytes(rest).to_vec());
            at += h.head_len;
            match request_framing(&h, rest).unwrap() {
                BodyFraming::None => {}
                BodyFraming::Length(n) => at += n as usize,
                BodyFraming::Chunked => {
                    let p = ChunkedDecoder::new().advance(&buf[at..]).unwrap();
                    assert!(p.done);
                    assert_eq!(p.data, 2);
                    at += p.consumed;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(at, buf.len());
        assert_eq!(seen, [&b"/a"[..], b"/b", b"/c"]);
    }
}

#[cfg(test)]
mod fuzz {
    //! Deterministic mutation fuzzing: no crash, and every Ok result is consistent.
    use super::*;

    /// xorshift64*: deterministic, dependency-free.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const SEEDS: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"POST /upload?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
        b"PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5;e=\"v\"\r\nhello\r\n0\r\nT: x\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
    ];

    const INTERESTING: &[u8] = b"\r\n\0 \t:;,\"\\=0fF9-+ \x7f\x80\xff";

    fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..1 + rng.below(4) {
            let pos = if v.is_empty() { 0 } else { rng.below(v.len()) };
            match rng.below(6) {
                0 if !v.is_empty() => v[pos] = rng.next() as u8,
                1 if !v.is_empty() => v[pos] = INTERESTING[rng.below(INTERESTING.len())],
                2 => v.insert(pos, INTERESTING[rng.below(INTERESTING.len())]),
                3 if !v.is_empty() => {
                    v.remove(pos);
                }
                4 => {
                    // Duplicate a slice (repeats headers, chunk sizes...).
                    let end = (pos + rng.below(24)).min(v.len());
                    let piece = v[pos..end].to_vec();
                    let at = rng.below(v.len() + 1);
                    v.splice(at..at, piece);
                }
                _ => v.truncate(pos),
            }
        }
        v
    }

    fn check_request(buf: &[u8], limits: &Limits) {
        match parse_request(buf, limits) {
            Ok(Parsed::Complete(h)) => {
                assert!(h.head_len <= buf.len() && h.head_len <= limits.max_head);
                assert!(h.headers.len() <= limits.max_headers);
                for f in &h.headers.fields {
                    assert!(f.name.end <= h.head_len && f.value.end <= h.head_len);
                }
                assert!(h.target.end <= h.head_len);
                let _ = h.keep_alive(buf);
                let _ = h.expects_continue(buf);
                if let Ok(BodyFraming::Chunked) = request_framing(&h, buf) {
                    let body = &buf[h.head_len..];
                    if let Ok(p) = ChunkedDecoder::new().advance(body) {
                        assert!(p.consumed <= body.len() && p.data <= p.consumed);
                    }
                }
            }
            Ok(Parsed::Partial) => assert!(buf.len() < limits.max_head),
            Err(e) => assert!([400, 414, 431, 501, 505].contains(&e.status()), "{e}"),
        }
    }

    fn check_response(buf: &[u8], limits: &Limits) {
        match parse_response(buf, limits) {
            Ok(Parsed::Complete(h)) => {
                assert!(h.head_len <= buf.len());
                assert!((100..=599).contains(&h.status));
                match response_framing(Method::Get, &h, buf) {
                    Ok(_) => {}
                    Err(e) => assert_eq!(e.status(), 502),
                }
            }
            Ok(Parsed::Partial) => {}
            Err(e) => assert_eq!(e.status(), 502, "{e}"),
        }
    }

    #[test]
    fn mutated_messages_never_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let limits = Limits::default();
        let tight = Limits {
            max_head: 48,
            max_request_line: 24,
            max_headers: 2,
        };
        for i in 0..20_000 {
            let seed = SEEDS[i % SEEDS.len()];
            let buf = mutate(&mut rng, seed);
            check_request(&buf, &limits);
            check_request(&buf, &tight);
            check_response(&buf, &limits);
            // The chunked scanner on arbitrary bytes, in one piece and split in two.
            let mut d = ChunkedDecoder::new();
            if let Ok(p) = d.advance(&buf) {
                assert!(p.consumed <= buf.len());
            }
            let split = rng.below(buf.len() + 1);
            let mut d = ChunkedDecoder::new();
            if let Ok(p) = d.advance(&buf[..split]) {
                if !p.done {
                    let _ = d.advance(&buf[split..]);
                }
            }
        }
    }
}
