//! The one error type of the HTTP/1 domain, and its mapping to a status code.
//!
//! Every variant is something the proxy answers with an error page and a closed client
//! connection (or, for [`HttpError::BadResponse`], a 502 and a backend connection that is
//! not reused). [`HttpError::status`] is the single place where errors become statuses.

use super::chunked::ChunkError;

/// Everything that can be wrong with an HTTP/1 message head or its framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The request line is not `method SP request-target SP HTTP-version` (RFC 9112 §3),
    /// or the request-target has a form the method does not allow (RFC 9112 §3.2).
    #[error("malformed request line")]
    BadRequestLine,
    /// Whitespace between a field name and the colon (RFC 9112 §5.1).
    #[error("whitespace between header name and colon")]
    SpaceBeforeColon,
    /// Obsolete line folding, or whitespace before the first field line (RFC 9112 §5.2, §2.2).
    #[error("obsolete line folding in header")]
    ObsFold,
    /// An empty field name or one that is not a `token` (RFC 9110 §5.1).
    #[error("invalid header name")]
    BadHeaderName,
    /// A field value containing CR, LF, NUL or another control character (RFC 9110 §5.5).
    #[error("invalid header value")]
    BadHeaderValue,
    /// A line ending that is not CRLF: bare LF or bare CR (RFC 9112 §2.2).
    #[error("bare CR or LF line ending")]
    BareLineEnding,
    /// An HTTP/1.1 request without Host (RFC 9112 §3.2).
    #[error("missing Host header")]
    MissingHost,
    /// A Host field value that is not `uri-host [ ":" port ]` (RFC 9112 §3.2).
    #[error("invalid Host header")]
    InvalidHost,
    /// A request with more than one Host field line (RFC 9112 §3.2).
    #[error("multiple Host headers")]
    MultipleHost,
    /// Both Transfer-Encoding and Content-Length (RFC 9112 §6.3 rule 3; we reject).
    #[error("both Transfer-Encoding and Content-Length")]
    TransferEncodingAndContentLength,
    /// Transfer-Encoding in an HTTP/1.0 message (RFC 9112 §6.1).
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingInHttp10,
    /// A Transfer-Encoding list that is empty, repeats `chunked` or does not end with it
    /// (RFC 9112 §6.3 rule 4).
    #[error("invalid Transfer-Encoding")]
    BadTransferEncoding,
    /// A transfer coding other than a lone `chunked` (RFC 9112 §6.1: 501).
    #[error("unsupported transfer coding")]
    UnsupportedTransferCoding,
    /// Content-Length not `1*DIGIT`, overflowing, or repeated (RFC 9110 §8.6,
    /// RFC 9112 §6.3 rule 5).
    #[error("invalid Content-Length")]
    BadContentLength,
    /// A malformed chunked body (RFC 9112 §7.1).
    #[error("invalid chunked body: {0}")]
    BadChunk(#[from] ChunkError),
    /// The body is larger than the configured limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The request line is longer than the configured limit.
    #[error("request line too long")]
    UriTooLong,
    /// The head is larger than the configured limit.
    #[error("request head too large")]
    HeadTooLarge,
    /// More header fields than the configured limit.
    #[error("too many headers")]
    TooManyHeaders,
    /// A well-formed HTTP version other than 1.0 and 1.1 (RFC 9110 §15.6.6).
    #[error("HTTP version not supported")]
    VersionNotSupported,
    /// The backend's response head or framing is invalid: whatever the inner reason,
    /// the client gets a 502 and the backend connection is not reused.
    #[error("invalid response from backend: {0}")]
    BadResponse(Box<HttpError>),
}

impl HttpError {
    /// The status code the proxy answers with for this error.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequestLine
            | HttpError::SpaceBeforeColon
            | HttpError::ObsFold
            | HttpError::BadHeaderName
            | HttpError::BadHeaderValue
            | HttpError::BareLineEnding
            | HttpError::MissingHost
            | HttpError::InvalidHost
            | HttpError::MultipleHost
            | HttpError::TransferEncodingAndContentLength
            | HttpError::TransferEncodingInHttp10
            | HttpError::BadTransferEncoding
            | HttpError::BadContentLength
            | HttpError::BadChunk(_) => 400,
            HttpError::PayloadTooLarge => 413,
            HttpError::UriTooLong => 414,
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::UnsupportedTransferCoding => 501,
            HttpError::BadResponse(_) => 502,
            HttpError::VersionNotSupported => 505,
        }
    }

    /// The same error seen on the response side: wrapped in [`HttpError::BadResponse`]
    /// (once), so it maps to 502.
    pub fn in_response(self) -> HttpError {
        match self {
            HttpError::BadResponse(_) => self,
            other => HttpError::BadResponse(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        assert_eq!(HttpError::ObsFold.status(), 400);
        assert_eq!(HttpError::BadChunk(ChunkError::SizeOverflow).status(), 400);
        assert_eq!(HttpError::PayloadTooLarge.status(), 413);
        assert_eq!(HttpError::UriTooLong.status(), 414);
        assert_eq!(HttpError::HeadTooLarge.status(), 431);
        assert_eq!(HttpError::TooManyHeaders.status(), 431);
        assert_eq!(HttpError::UnsupportedTransferCoding.status(), 501);
        assert_eq!(HttpError::VersionNotSupported.status(), 505);
        assert_eq!(HttpError::BadContentLength.in_response().status(), 502);
    }

    #[test]
    fn in_response_wraps_once() {
        let e = HttpError::BadContentLength.in_response().in_response();
        assert_eq!(
            e,
            HttpError::BadResponse(Box::new(HttpError::BadContentLength))
        );
        assert_eq!(
            e.to_string(),
            "invalid response from backend: invalid Content-Length"
        );
    }
}
