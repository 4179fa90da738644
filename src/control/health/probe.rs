//! One health check, run on the control thread's executor: a TCP connect, or an HTTP/1.1
//! request whose status (and optionally body) is matched. The result is `Ok(detail)` or
//! `Err(reason)`, in the words shown by the stats page and the health log, e.g.
//! `L4 connect ok in 1 ms`, `L4 connect refused`, `L7 status 503`, `timeout after 2s`.
//!
//! Check connections are closed with a reset (SO_LINGER 0), as HAProxy does: a check
//! leaves no TIME_WAIT socket behind, which matters at a thousand checks a second.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::{format_duration, Check, CheckKind, HttpCheck};
use crate::l4::socket::Socket;

/// How much of an HTTP check's answer is read at most (head and body).
pub const MAX_CHECK_RESPONSE: usize = 16 * 1024;

/// Run `check` against `target` within `check.timeout`. `buf` holds the answer of an
/// HTTP check (kept by the caller from one check to the next: its pages stay mapped).
pub async fn run(check: &Check, target: SocketAddr, buf: &mut Vec<u8>) -> Result<String, String> {
    let started = Instant::now();
    let outcome = glommio::timer::timeout(check.timeout, async {
        Ok(attempt(check, target, started, buf).await)
    })
    .await;
    match outcome {
        Ok(result) => result,
        Err(_) => Err(format!("timeout after {}", format_duration(check.timeout))),
    }
}

async fn attempt(
    check: &Check,
    target: SocketAddr,
    started: Instant,
    buf: &mut Vec<u8>,
) -> Result<String, String> {
    // The outer timer bounds the whole check; the connect gets the same limit.
    let socket = crate::l4::connect_one(target, check.timeout)
        .await
        .map_err(|e| connect_reason(&e, check.timeout))?;
    let _ = socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO));
    match &check.kind {
        CheckKind::Tcp => Ok(format!("L4 connect ok in {}", elapsed_ms(started))),
        CheckKind::Http(http) => http_check(&socket, http, target, started, buf).await,
    }
}

fn connect_reason(e: &io::Error, limit: Duration) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "L4 connect refused".to_string(),
        io::ErrorKind::TimedOut => format!("timeout after {}", format_duration(limit)),
        _ => format!("L4 connect error: {e}"),
    }
}

fn elapsed_ms(started: Instant) -> String {
    format!("{} ms", started.elapsed().as_millis())
}

/// The request an HTTP check sends.
pub fn request_bytes(http: &HttpCheck, target: SocketAddr) -> Vec<u8> {
    let host = match &http.host {
        Some(h) => h.clone(),
        None => target.to_string(),
    };
    format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: halb-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        http.method, http.path, host
    )
    .into_bytes()
}

async fn http_check(
    socket: &Socket,
    http: &HttpCheck,
    target: SocketAddr,
    started: Instant,
    buf: &mut Vec<u8>,
) -> Result<String, String> {
    let request = request_bytes(http, target);
    socket
        .send_all(&request)
        .await
        .map_err(|e| format!("L7 send error: {e}"))?;
    buf.resize(MAX_CHECK_RESPONSE, 0);
    let mut len = 0;
    let mut eof = false;
    loop {
        match evaluate(http, &buf[..len], eof || len == buf.len()) {
            Verdict::NeedMore => {}
            Verdict::Pass(status) => {
                return Ok(format!("L7 status {status} in {}", elapsed_ms(started)))
            }
            Verdict::Fail(reason) => return Err(reason),
        }
        match socket.recv(&mut buf[len..]) {
            Ok(0) => eof = true,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.readable().await,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if len == 0 => return Err(format!("L7 receive error: {e}")),
            // A reset after the answer (servers that close hard): judge what arrived.
            Err(_) => eof = true,
        }
    }
}

/// What the bytes received so far say.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Read more.
    NeedMore,
    /// The answer matches (its status).
    Pass(u16),
    /// It does not, and why.
    Fail(String),
}

/// Judge an HTTP check's answer `got`; `complete` = nothing more will come (the server
/// closed, or [`MAX_CHECK_RESPONSE`] bytes are here).
pub fn evaluate(http: &HttpCheck, got: &[u8], complete: bool) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(got) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if !complete => return Verdict::NeedMore,
        Ok(httparse::Status::Partial) if got.is_empty() => {
            return Verdict::Fail("L7 connection closed without a response".to_string())
        }
        _ => return Verdict::Fail("L7 invalid response".to_string()),
    };
    let status = response.code.unwrap_or(0);
    if !http.status_ok(status) {
        return Verdict::Fail(format!("L7 status {status}"));
    }
    let Some(expected) = &http.expect_body else {
        return Verdict::Pass(status);
    };
    let content_length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let body = &got[head_len..];
    let needle = expected.as_bytes();
    if body.windows(needle.len().max(1)).any(|w| w == needle) {
        return Verdict::Pass(status);
    }
    let body_complete = complete || content_length.is_some_and(|n| body.len() >= n);
    if body_complete {
        Verdict::Fail(format!("L7 body does not contain {expected:?}"))
    } else {
        Verdict::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(expect_body: Option<&str>) -> HttpCheck {
        HttpCheck {
            method: "GET".into(),
            path: "/health".into(),
            host: None,
            expect_status: vec![(200, 299)],
            expect_body: expect_body.map(str::to_string),
        }
    }

    #[test]
    fn status_and_body() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nall ok\n";
        assert_eq!(evaluate(&http(None), ok, false), Verdict::Pass(200));
        assert_eq!(evaluate(&http(Some("ok")), ok, false), Verdict::Pass(200));
        assert_eq!(
            evaluate(&http(Some("ready")), ok, false),
            Verdict::Fail("L7 body does not contain \"ready\"".into())
        );
        let bad = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            evaluate(&http(None), bad, false),
            Verdict::Fail("L7 status 503".into())
        );
        assert_eq!(
            evaluate(&http(None), b"HTTP/1.1 200", false),
            Verdict::NeedMore
        );
        assert_eq!(
            evaluate(&http(None), b"garbage\r\n\r\n", true),
            Verdict::Fail("L7 invalid response".into())
        );
        assert_eq!(
            evaluate(&http(None), b"", true),
            Verdict::Fail("L7 connection closed without a response".into())
        );
        // Body still arriving, no length: wait for the close.
        let partial = b"HTTP/1.1 200 OK\r\n\r\nnot y";
        assert_eq!(
            evaluate(&http(Some("yes")), partial, false),
            Verdict::NeedMore
        );
    }

    #[test]
    fn request_has_host_and_close() {
        let req = request_bytes(&http(None), "127.0.0.1:80".parse().unwrap());
        let text = String::from_utf8(req).unwrap();
        assert!(text.starts_with("GET /health HTTP/1.1\r\nHost: 127.0.0.1:80\r\n"));
        assert!(text.contains("Connection: close\r\n"));
    }
}
