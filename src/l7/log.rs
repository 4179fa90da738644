//! The access log of the HTTP proxy: one line per request, in the spirit of HAProxy's
//! `option httplog`, on the `halb::access` target.

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use crate::http::{RequestHead, Version};

/// How a request ended (`end=` in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The response was forwarded completely.
    Done,
    /// The request head was invalid (4xx/5xx from the parser).
    BadRequest,
    /// A request body was invalid (bad chunked framing) or too large.
    BadBody,
    /// An `http_request` rule denied it.
    Denied,
    /// An `http_request` rule redirected it.
    Redirected,
    /// No `use_backend` matched and there is no `default_backend` (404).
    NoBackend,
    /// The backend has no usable server (503).
    NoServer,
    /// No server accepted the connection within `retries` (503).
    ConnectFailed,
    /// The server's response was invalid (502).
    BadResponse,
    /// The server closed or failed before the response was complete.
    ServerError,
    /// The server did not answer within `timeouts.server` (504 if nothing was sent).
    ServerTimeout,
    /// The client closed or failed before the response was complete.
    ClientError,
    /// The client was idle past `timeouts.client`.
    ClientTimeout,
    /// The request head did not arrive within `timeouts.http_request` (408).
    RequestTimeout,
    /// The exchange became a tunnel (101), which ended normally.
    Tunnel,
    /// The tunnel was idle past `timeouts.tunnel`.
    TunnelTimeout,
    /// Cut at the end of the shutdown grace period.
    Shutdown,
    /// A method the proxy refuses (CONNECT → 405).
    MethodRefused,
    /// The proxy itself failed to build the request (500).
    InternalError,
    /// The client's TLS handshake failed (see [`crate::l4::End::TlsHandshakeFailed`]).
    TlsHandshakeFailed,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Done => "done",
            Outcome::BadRequest => "bad_request",
            Outcome::BadBody => "bad_body",
            Outcome::Denied => "denied",
            Outcome::Redirected => "redirected",
            Outcome::NoBackend => "no_backend",
            Outcome::NoServer => "no_server",
            Outcome::ConnectFailed => "connect_failed",
            Outcome::BadResponse => "bad_response",
            Outcome::ServerError => "server_error",
            Outcome::ServerTimeout => "server_timeout",
            Outcome::ClientError => "client_error",
            Outcome::ClientTimeout => "client_timeout",
            Outcome::RequestTimeout => "request_timeout",
            Outcome::Tunnel => "tunnel",
            Outcome::TunnelTimeout => "tunnel_timeout",
            Outcome::Shutdown => "shutdown",
            Outcome::MethodRefused => "method_refused",
            Outcome::InternalError => "internal_error",
            Outcome::TlsHandshakeFailed => "tls_handshake_failed",
        })
    }
}

/// Milliseconds between two instants, or -1 when the phase did not happen.
fn ms(from: Option<Instant>, to: Option<Instant>) -> i64 {
    match (from, to) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).as_millis() as i64,
        _ => -1,
    }
}

/// What the log line says about one request.
pub struct Record<'a> {
    pub client: Option<SocketAddr>,
    pub frontend: &'a str,
    pub backend: &'a str,
    pub server: &'a str,
    /// Status sent to the client, if any.
    pub status: Option<u16>,
    /// Request bytes received from the client (head and body).
    pub bytes_in: u64,
    /// Response bytes sent to the client.
    pub bytes_out: u64,
    /// When the request started (first byte, or the connection for a first request).
    pub started: Instant,
    /// When the request head was complete.
    pub head_done: Option<Instant>,
    /// When the connection attempt started / succeeded (a reused connection: both at
    /// the same instant).
    pub connect_start: Option<Instant>,
    pub connected: Option<Instant>,
    /// When the response head arrived.
    pub response_head: Option<Instant>,
    pub retries: u32,
    pub end: Outcome,
    /// `METHOD target HTTP/1.x`, captured only when the access log is enabled.
    pub request: String,
    /// Index of the backend chosen (in the request's snapshot), for the stats.
    pub backend_index: Option<usize>,
    /// Index of the server that got the request, for the stats.
    pub server_index: Option<usize>,
}

impl<'a> Record<'a> {
    /// A record for a request whose head has been parsed.
    pub fn new(client: Option<SocketAddr>, frontend: &'a str, started: Instant) -> Record<'a> {
        Record {
            client,
            frontend,
            backend: "-",
            server: "-",
            status: None,
            bytes_in: 0,
            bytes_out: 0,
            started,
            head_done: None,
            connect_start: None,
            connected: None,
            response_head: None,
            retries: 0,
            end: Outcome::Done,
            request: String::new(),
            backend_index: None,
            server_index: None,
        }
    }

    /// Capture the request line (called only when the log is enabled).
    pub fn capture_request(&mut self, head: &RequestHead, buf: &[u8]) {
        let target = String::from_utf8_lossy(head.target_bytes(buf));
        let method = String::from_utf8_lossy(head.method_bytes(buf));
        let version = match head.version {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        };
        self.request = format!("{method} {target} {version}");
    }

    /// Write the line.
    pub fn log(&self) {
        let now = Some(Instant::now());
        let client = OrDash(self.client);
        let status = OrDash(self.status);
        tracing::info!(
            target: "halb::access",
            "client={} frontend={} backend={} server={} status={} bytes_in={} bytes_out={} timers={}/{}/{}/{}/{} retries={} end={} request=\"{}\"",
            client,
            self.frontend,
            self.backend,
            self.server,
            status,
            self.bytes_in,
            self.bytes_out,
            ms(Some(self.started), self.head_done),
            if self.connect_start.is_some() { 0 } else { -1 },
            ms(self.connect_start, self.connected),
            ms(self.connected, self.response_head),
            ms(Some(self.started), now),
            self.retries,
            self.end,
            self.request.escape_debug()
        );
    }
}

/// Displays the value, or `-` when there is none.
struct OrDash<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for OrDash<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("-"),
        }
    }
}
