//! Message body framing (RFC 9112 §6): from a parsed head, decide how the body is
//! delimited. The decision is made once per message, before any body byte is forwarded.

use super::error::HttpError;
use super::head::{trim_ows, Headers, Method, RequestHead, ResponseHead, Version};

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (also used for `Content-Length: 0`).
    None,
    /// Exactly this many bytes (never 0).
    Length(u64),
    /// Chunked: scan it with [`super::chunked::ChunkedDecoder`].
    Chunked,
    /// Responses only: the body runs until the backend closes the connection, which
    /// therefore cannot be reused.
    CloseDelimited,
    /// Responses only: `101 Switching Protocols`; after the head the connection becomes
    /// a tunnel. The proxy must check that the request asked for an upgrade.
    Tunnel,
}

/// The Content-Length of a message, if it has one.
///
/// Strict choice: each Content-Length field value must be exactly `1*DIGIT`
/// (RFC 9110 §8.6; leading zeros are digits, so `007` is 7) — no sign, no inner
/// whitespace, no comma list — and the field may appear only once. RFC 9110 §8.6 allows
/// a recipient to accept identical duplicates; we reject them (→ 400) because duplicate
/// Content-Length is a request-smuggling lever and no sane client sends it.
fn content_length(headers: &Headers, buf: &[u8]) -> Result<Option<u64>, HttpError> {
    let mut values = headers.values(buf, "content-length");
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(HttpError::BadContentLength);
    }
    parse_content_length(first).map(Some)
}

/// `1*DIGIT` into a u64, overflow being an error (RFC 9112 §6.3 rule 5: invalid → 400).
pub fn parse_content_length(v: &[u8]) -> Result<u64, HttpError> {
    if v.is_empty() {
        return Err(HttpError::BadContentLength);
    }
    v.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return Err(HttpError::BadContentLength);
        }
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(b - b'0')))
            .ok_or(HttpError::BadContentLength)
    })
}

/// The transfer codings of all Transfer-Encoding fields, in order (RFC 9112 §6.1),
/// or `None` if there is no such field. Empty list elements are skipped
/// (RFC 9110 §5.6.1); a field with no element at all is an error.
fn transfer_codings<'a>(
    headers: &'a Headers,
    buf: &'a [u8],
) -> Result<Option<Vec<&'a [u8]>>, HttpError> {
    let mut any = false;
    let mut codings = Vec::new();
    for v in headers.values(buf, "transfer-encoding") {
        any = true;
        codings.extend(
            v.split(|&b| b == b',')
                .map(trim_ows)
                .filter(|c| !c.is_empty()),
        );
    }
    if !any {
        return Ok(None);
    }
    if codings.is_empty() {
        return Err(HttpError::BadTransferEncoding);
    }
    Ok(Some(codings))
}

fn is_chunked(c: &[u8]) -> bool {
    c.eq_ignore_ascii_case(b"chunked")
}

/// Body framing of a request (RFC 9112 §6.3). Any error: answer `status()` and close.
pub fn request_framing(head: &RequestHead, buf: &[u8]) -> Result<BodyFraming, HttpError> {
    let codings = transfer_codings(&head.headers, buf)?;
    let has_cl = head.headers.values(buf, "content-length").next().is_some();
    if let Some(codings) = codings {
        // RFC 9112 §6.1: a server MAY reject an HTTP/1.0 request with Transfer-Encoding
        // as faulty (HTTP/1.0 has no chunked); we do → 400.
        if head.version == Version::Http10 {
            return Err(HttpError::TransferEncodingInHttp10);
        }
        // RFC 9112 §6.3 rule 3: both Transfer-Encoding and Content-Length "ought to be
        // handled as an error"; we reject with 400 rather than drop Content-Length and
        // forward (HAProxy's choice), so nothing ambiguous ever reaches a backend.
        if has_cl {
            return Err(HttpError::TransferEncodingAndContentLength);
        }
        // RFC 9112 §6.3 rule 4: if chunked is not the final coding of a request → 400.
        // chunked applied twice is invalid too (RFC 9112 §6.1).
        let chunked_count = codings.iter().filter(|c| is_chunked(c)).count();
        if !codings.last().is_some_and(|c| is_chunked(c)) || chunked_count > 1 {
            // A final coding we do not know is "not implemented" (RFC 9112 §6.1: 501);
            // a misplaced or repeated chunked is a bad request.
            return Err(if chunked_count == 0 {
                HttpError::UnsupportedTransferCoding
            } else {
                HttpError::BadTransferEncoding
            });
        }
        // Strict choice: only a lone `chunked` is accepted (no gzip, chunked) → 501.
        if codings.len() > 1 {
            return Err(HttpError::UnsupportedTransferCoding);
        }
        return Ok(BodyFraming::Chunked);
    }
    // RFC 9112 §6.3 rules 5–7: Content-Length, otherwise no body.
    Ok(match content_length(&head.headers, buf)? {
        None | Some(0) => BodyFraming::None,
        Some(n) => BodyFraming::Length(n),
    })
}

/// Body framing of a response to a request with method `request_method`
/// (RFC 9112 §6.3). Errors are [`HttpError::BadResponse`] (→ 502, do not reuse the
/// backend connection).
pub fn response_framing(
    request_method: Method,
    head: &ResponseHead,
    buf: &[u8],
) -> Result<BodyFraming, HttpError> {
    response_framing_inner(request_method, head, buf).map_err(HttpError::in_response)
}

fn response_framing_inner(
    request_method: Method,
    head: &ResponseHead,
    buf: &[u8],
) -> Result<BodyFraming, HttpError> {
    // RFC 9112 §6.3 rule 1: responses to HEAD, and 1xx, 204, 304, have no body whatever
    // their header fields say. 101 switches protocols (RFC 9110 §15.2.2).
    if head.status == 101 {
        return Ok(BodyFraming::Tunnel);
    }
    if request_method == Method::Head || (100..200).contains(&head.status) {
        return Ok(BodyFraming::None);
    }
    if head.status == 204 || head.status == 304 {
        return Ok(BodyFraming::None);
    }
    // RFC 9112 §6.3 rule 2: a 2xx response to CONNECT is a tunnel. (The proxy refuses
    // CONNECT with 405, so this is for completeness.)
    if request_method == Method::Connect && (200..300).contains(&head.status) {
        return Ok(BodyFraming::Tunnel);
    }
    let codings = transfer_codings(&head.headers, buf)?;
    let has_cl = head.headers.values(buf, "content-length").next().is_some();
    if let Some(codings) = codings {
        // RFC 9112 §6.3 rule 3: TE overrides CL but the message "ought to be handled as
        // an error"; strict choice: 502, never forward an ambiguous response.
        if has_cl {
            return Err(HttpError::TransferEncodingAndContentLength);
        }
        // RFC 9112 §6.1: HTTP/1.0 has no transfer codings.
        if head.version == Version::Http10 {
            return Err(HttpError::TransferEncodingInHttp10);
        }
        let chunked_count = codings.iter().filter(|c| is_chunked(c)).count();
        if chunked_count > 1 {
            return Err(HttpError::BadTransferEncoding);
        }
        // RFC 9112 §6.3 rule 4: final chunked → chunked (other codings before it are
        // forwarded untouched); otherwise the body is delimited by closing.
        return Ok(if codings.last().is_some_and(|c| is_chunked(c)) {
            BodyFraming::Chunked
        } else if chunked_count == 1 {
            // chunked applied but not last: invalid (RFC 9112 §6.1).
            return Err(HttpError::BadTransferEncoding);
        } else {
            BodyFraming::CloseDelimited
        });
    }
    Ok(match content_length(&head.headers, buf)? {
        Some(0) => BodyFraming::None,
        Some(n) => BodyFraming::Length(n),
        // RFC 9112 §6.3 rule 8: read until the connection closes.
        None => BodyFraming::CloseDelimited,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::tests::complete;
    use crate::http::head::{parse_response, Limits, Parsed};

    fn framing(buf: &[u8]) -> Result<BodyFraming, HttpError> {
        request_framing(&complete(buf), buf)
    }

    fn req_with(headers: &str) -> Result<BodyFraming, HttpError> {
        framing(format!("POST / HTTP/1.1\r\nHost: h\r\n{headers}\r\n").as_bytes())
    }

    fn resp_framing(method: Method, head: &str) -> Result<BodyFraming, HttpError> {
        let buf = head.as_bytes();
        let Ok(Parsed::Complete(h)) = parse_response(buf, &Limits::default()) else {
            panic!("bad test response {head:?}")
        };
        response_framing(method, &h, buf)
    }

    #[test]
    fn request_without_body() {
        assert_eq!(req_with(""), Ok(BodyFraming::None));
        assert_eq!(req_with("Content-Length: 0\r\n"), Ok(BodyFraming::None));
    }

    #[test]
    fn request_content_length() {
        assert_eq!(
            req_with("Content-Length: 42\r\n"),
            Ok(BodyFraming::Length(42))
        );
        // Leading zeros are DIGITs (RFC 9110 §8.6).
        assert_eq!(
            req_with("Content-Length: 007\r\n"),
            Ok(BodyFraming::Length(7))
        );
        // Surrounding OWS is not part of the value.
        assert_eq!(
            req_with("Content-Length:  5 \r\n"),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            req_with("Content-Length: 18446744073709551615\r\n"),
            Ok(BodyFraming::Length(u64::MAX))
        );
    }

    #[test]
    fn request_bad_content_length() {
        for bad in [
            "Content-Length: +5\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: 5 5\r\n",
            "Content-Length: 5,5\r\n",
            "Content-Length: 5, 6\r\n",
            "Content-Length: 0x10\r\n",
            "Content-Length: 1e3\r\n",
            "Content-Length:\r\n",
            "Content-Length: 18446744073709551616\r\n",
            "Content-Length: 99999999999999999999999\r\n",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            // Identical duplicates are rejected too (documented strict choice).
            "Content-Length: 5\r\nContent-Length: 5\r\n",
        ] {
            let e = req_with(bad).expect_err(bad);
            assert_eq!(e, HttpError::BadContentLength, "{bad:?}");
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn request_chunked() {
        assert_eq!(
            req_with("Transfer-Encoding: chunked\r\n"),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            req_with("Transfer-Encoding: CHUNKED\r\n"),
            Ok(BodyFraming::Chunked)
        );
        // Empty list elements are ignored (RFC 9110 §5.6.1).
        assert_eq!(
            req_with("Transfer-Encoding: , chunked\r\n"),
            Ok(BodyFraming::Chunked)
        );
    }

    #[test]
    fn request_te_and_cl() {
        let e = req_with("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n").unwrap_err();
        assert_eq!(e, HttpError::TransferEncodingAndContentLength);
        assert_eq!(e.status(), 400);
        let e = req_with("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n").unwrap_err();
        assert_eq!(e, HttpError::TransferEncodingAndContentLength);
    }

    #[test]
    fn request_te_in_http10() {
        let b = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
        let e = framing(b).unwrap_err();
        assert_eq!(e, HttpError::TransferEncodingInHttp10);
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn request_unsupported_codings() {
        for te in [
            "Transfer-Encoding: gzip\r\n",
            "Transfer-Encoding: gzip, chunked\r\n",
            "Transfer-Encoding: chunked;q=1\r\n",
            "Transfer-Encoding: xchunked\r\n",
            "Transfer-Encoding: identity\r\n",
        ] {
            let e = req_with(te).expect_err(te);
            assert_eq!(e.status(), 501, "{te:?} gave {e}");
        }
        // chunked not last, or twice: 400.
        for te in [
            "Transfer-Encoding: chunked, gzip\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
            "Transfer-Encoding: chunked, chunked\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding:\r\n",
            "Transfer-Encoding: ,\r\n",
        ] {
            let e = req_with(te).expect_err(te);
            assert_eq!(e.status(), 400, "{te:?} gave {e}");
        }
    }

    #[test]
    fn response_no_body_cases() {
        let cl = "Content-Length: 10\r\n\r\n";
        assert_eq!(
            resp_framing(Method::Head, &format!("HTTP/1.1 200 OK\r\n{cl}")),
            Ok(BodyFraming::None)
        );
        for status in [
            "100 Continue",
            "103 Early",
            "204 No Content",
            "304 Not Modified",
        ] {
            assert_eq!(
                resp_framing(Method::Get, &format!("HTTP/1.1 {status}\r\n{cl}")),
                Ok(BodyFraming::None),
                "{status}"
            );
        }
        assert_eq!(
            resp_framing(Method::Get, "HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            Ok(BodyFraming::Tunnel)
        );
    }

    #[test]
    fn response_bodies() {
        assert_eq!(
            resp_framing(Method::Get, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
            Ok(BodyFraming::Length(10))
        );
        assert_eq!(
            resp_framing(Method::Get, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            Ok(BodyFraming::None)
        );
        assert_eq!(
            resp_framing(
                Method::Post,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            resp_framing(
                Method::Get,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            ),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            resp_framing(
                Method::Get,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"
            ),
            Ok(BodyFraming::CloseDelimited)
        );
        assert_eq!(
            resp_framing(Method::Get, "HTTP/1.1 200 OK\r\n\r\n"),
            Ok(BodyFraming::CloseDelimited)
        );
        assert_eq!(
            resp_framing(Method::Get, "HTTP/1.0 200 OK\r\n\r\n"),
            Ok(BodyFraming::CloseDelimited)
        );
    }

    #[test]
    fn bad_response_framing_is_502() {
        for head in [
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            let e = resp_framing(Method::Get, head).expect_err(head);
            assert!(matches!(e, HttpError::BadResponse(_)), "{head:?}");
            assert_eq!(e.status(), 502);
        }
    }
}
