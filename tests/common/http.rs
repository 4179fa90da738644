//! HTTP side of the harness, for the L7 tests (`mode = "http"`).
//!
//! * [`HttpBackend`] is a threaded HTTP/1.1 origin on a fresh loopback address that
//!   *records* everything: accepted connections, the raw bytes of each connection and
//!   every request it parsed ([`Request`]: method, target, version, headers, body, which
//!   connection and which request on it). It answers keep-alive properly and its
//!   [`Behaviour`] is configurable (status, echo, pattern bodies, chunked, close, delay,
//!   silent close of idle connections, `100 Continue`, `101` + echo, raw responses).
//!   Requests can override the behaviour per request with `X-Test-*` headers
//!   (see [`Behaviour`]).
//! * Clients: [`send_raw`] writes exact bytes and reads until EOF or timeout;
//!   [`parse_responses`] splits what came back into HTTP/1.1 responses; [`get`] and
//!   [`Client`] (keep-alive, several requests on one connection) for ordinary requests.
//! * [`Conf::http`] and friends render `mode = "http"` configs with ACLs, request and
//!   response rules, `use_backend` rules and extra backends.
//!
//! Every socket has read/write timeouts and every loop is bounded.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use super::{fresh_ip, set_timeouts, try_connect, try_connect_from, Conf, IO_TIMEOUT};

/// Largest request head the test backend accepts.
const MAX_HEAD: usize = 1 << 20;
/// Largest body (request or response) the harness buffers.
const MAX_BODY: usize = 256 << 20;
/// Most requests served on one backend connection (bounds the serving loop).
const MAX_REQUESTS_PER_CONN: usize = 100_000;
/// How long a backend connection may stay silent before its handler gives up.
pub const HTTP_BACKEND_IO_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Config helpers
// ---------------------------------------------------------------------------------------

/// A TOML basic string with `value` in it (quotes and backslashes escaped).
pub fn toml_str(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

impl Conf {
    /// One shard, `mode = "http"` in `[defaults]`, frontend `fe` → `be` by default.
    pub fn http() -> Conf {
        let mut c = Conf::new();
        c.mode = "http".to_string();
        c
    }

    /// Leave `default_backend` out of `[frontend.fe]`.
    pub fn no_default_backend(mut self) -> Conf {
        self.default_backend = None;
        self
    }

    /// `[frontend.fe] default_backend = NAME`.
    pub fn default_backend(mut self, name: &str) -> Conf {
        self.default_backend = Some(name.to_string());
        self
    }

    /// `[frontend.fe.acl] NAME = "DEFINITION"`.
    pub fn acl(mut self, name: &str, definition: &str) -> Conf {
        self.acls.push(format!("{name} = {}", toml_str(definition)));
        self
    }

    /// A `[[frontend.fe.http_request]]` table with these raw TOML lines.
    pub fn http_request(mut self, lines: &[&str]) -> Conf {
        self.tail.push("\n[[frontend.fe.http_request]]".to_string());
        self.tail.extend(lines.iter().map(|l| l.to_string()));
        self
    }

    /// A `[[frontend.fe.http_response]]` table with these raw TOML lines.
    pub fn http_response(mut self, lines: &[&str]) -> Conf {
        self.tail
            .push("\n[[frontend.fe.http_response]]".to_string());
        self.tail.extend(lines.iter().map(|l| l.to_string()));
        self
    }

    /// `[[frontend.fe.use_backend]] backend = BACKEND, if = CONDITION`.
    pub fn use_backend(mut self, backend: &str, condition: &str) -> Conf {
        self.tail.push(format!(
            "\n[[frontend.fe.use_backend]]\nbackend = {}\nif = {}",
            toml_str(backend),
            toml_str(condition)
        ));
        self
    }

    /// Another backend `[backend.NAME]` with raw lines and servers `(name, address)`.
    pub fn extra_backend(
        mut self,
        name: &str,
        lines: &[&str],
        servers: &[(&str, SocketAddr)],
    ) -> Conf {
        self.tail.push(format!("\n[backend.{name}]"));
        self.tail.extend(lines.iter().map(|l| l.to_string()));
        for (server, addr) in servers {
            self.tail.push(format!(
                "\n[[backend.{name}.server]]\nname = {}\naddress = \"{addr}\"",
                toml_str(server)
            ));
        }
        self
    }

    /// A raw TOML line appended at the end of the file.
    pub fn raw(mut self, line: &str) -> Conf {
        self.tail.push(line.to_string());
        self
    }
}

// ---------------------------------------------------------------------------------------
// Deterministic bodies and chunked encoding
// ---------------------------------------------------------------------------------------

/// `len` deterministic bytes whose value depends on the offset (a shifted or truncated
/// copy does not compare equal).
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i % 251) as u8) ^ ((i / 251) as u8).wrapping_mul(7))
        .collect()
}

/// Chunk sizes [`chunked_encode`] cycles through by default.
pub const CHUNK_SIZES: &[usize] = &[1, 10, 100, 1000, 4096, 16_384, 65_536, 7];

/// `body` in chunked framing, chunk sizes cycling through `sizes`, then `0\r\n\r\n`.
pub fn chunked_encode(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 8 + 16);
    let mut at = 0;
    let mut k = 0;
    while at < body.len() {
        let n = sizes[k % sizes.len()].min(body.len() - at);
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend_from_slice(&body[at..at + n]);
        out.extend_from_slice(b"\r\n");
        at += n;
        k += 1;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// Bytes as text for messages (lossy, control characters escaped, at most `max` bytes).
pub fn show(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    let mut s = String::new();
    for &b in cut {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > max {
        s.push_str(&format!("...({} bytes)", bytes.len()));
    }
    s
}

// ---------------------------------------------------------------------------------------
// Header lists
// ---------------------------------------------------------------------------------------

/// A list of header fields in received order.
pub type HeaderList = Vec<(String, String)>;

/// Every value of the fields named `name` (ASCII case-insensitive), in order.
pub fn header_values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// True if a field named `name` has `token` as a comma-separated element.
fn header_has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    header_values(headers, name)
        .iter()
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Split a head (without the final empty line) into its start line and fields. Field
/// lines without a colon are kept with an empty value.
fn split_head(head: &[u8]) -> (String, HeaderList) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        match line.split_once(':') {
            Some((n, v)) => headers.push((n.to_string(), v.trim().to_string())),
            None => headers.push((line.to_string(), String::new())),
        }
    }
    (start, headers)
}

// ---------------------------------------------------------------------------------------
// The recording backend
// ---------------------------------------------------------------------------------------

/// One request as the backend parsed it.
#[derive(Clone, Debug)]
pub struct Request {
    /// Connection id: accept order on this backend, from 0.
    pub conn: usize,
    /// Index of this request on its connection, from 0 (0 = the connection was fresh).
    pub seq: usize,
    pub method: String,
    pub target: String,
    /// `HTTP/1.1` or `HTTP/1.0` as sent.
    pub version: String,
    /// Fields in received order, values trimmed.
    pub headers: HeaderList,
    /// The body, chunked framing removed.
    pub body: Vec<u8>,
    /// The body as received (chunked framing and trailers included).
    pub raw_body: Vec<u8>,
    /// The body came chunked.
    pub chunked: bool,
}

impl Request {
    /// The first value of `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_values(&self.headers, name).first().copied()
    }
    /// Every value of `name`, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        header_values(&self.headers, name)
    }
    /// Whether any field is named `name`.
    pub fn has(&self, name: &str) -> bool {
        !self.header_all(name).is_empty()
    }
}

/// What the bytes of one backend connection looked like.
#[derive(Clone, Debug, Default)]
pub struct ConnRecord {
    /// Everything received on it, in order.
    pub raw: Vec<u8>,
    /// The peer (the proxy) closed or reset it.
    pub peer_closed: bool,
    /// The handler is done with it (closed by either side).
    pub ended: bool,
}

/// A responder that may answer a request with raw bytes instead of the normal response.
pub type Responder = Arc<dyn Fn(&Request) -> Option<Vec<u8>> + Send + Sync>;

/// How an [`HttpBackend`] answers. Defaults: 200, headers `X-Server: NAME`,
/// `X-Conn: <connection id>`, `X-Seq: <request index on it>`, `X-Target: <target>`, body
/// `NAME` with a Content-Length, keep-alive unless the request asks for a close.
///
/// Per-request overrides, from request headers: `X-Test-Status: N`, `X-Test-Len: N`
/// (pattern body of N bytes), `X-Test-Chunked: 1`, `X-Test-Close: 1`,
/// `X-Test-Delay-Ms: N`, `X-Test-Header: Name: value` (repeatable), `X-Test-Echo: 1`.
#[derive(Clone)]
pub struct Behaviour {
    /// Status of normal responses.
    pub status: u16,
    /// Answer with the request body.
    pub echo: bool,
    /// Answer with [`pattern`]`(n)`.
    pub body_len: Option<usize>,
    /// Send the body chunked ([`chunked_encode`] with [`CHUNK_SIZES`]).
    pub chunked: bool,
    /// `Connection: close` and close after every response.
    pub close: bool,
    /// Wait this long before each response.
    pub delay: Duration,
    /// Close every connection right after its first response, without `Connection:
    /// close` (an idle keep-alive connection the server drops: a stale pooled one).
    pub drop_idle: bool,
    /// On a reused connection (from its second request on), read the request head and
    /// close without answering: a keep-alive connection the server closed just as a
    /// request arrived (the race a proxy must survive by replaying idempotent requests).
    /// Such requests are not recorded as requests; see [`HttpBackend::dropped`].
    pub drop_on_reuse: bool,
    /// Send `100 Continue` before reading the body of a request with
    /// `Expect: 100-continue`.
    pub continue_100: bool,
    /// Answer a request with `Upgrade` by `101 Switching Protocols`, then echo bytes.
    pub upgrade: bool,
    /// Never answer (read requests, record them, write nothing).
    pub silent: bool,
    /// Extra response fields.
    pub headers: HeaderList,
    /// Raw answers for some requests (bytes written as they are; the connection is then
    /// kept open and served as usual).
    pub responder: Option<Responder>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            status: 200,
            echo: false,
            body_len: None,
            chunked: false,
            close: false,
            delay: Duration::ZERO,
            drop_idle: false,
            drop_on_reuse: false,
            continue_100: false,
            upgrade: false,
            silent: false,
            headers: Vec::new(),
            responder: None,
        }
    }
}

impl Behaviour {
    pub fn new() -> Behaviour {
        Behaviour::default()
    }
    pub fn status(mut self, s: u16) -> Behaviour {
        self.status = s;
        self
    }
    pub fn echo(mut self) -> Behaviour {
        self.echo = true;
        self
    }
    pub fn body_len(mut self, n: usize) -> Behaviour {
        self.body_len = Some(n);
        self
    }
    pub fn chunked(mut self) -> Behaviour {
        self.chunked = true;
        self
    }
    pub fn close(mut self) -> Behaviour {
        self.close = true;
        self
    }
    pub fn delay(mut self, d: Duration) -> Behaviour {
        self.delay = d;
        self
    }
    pub fn drop_idle(mut self) -> Behaviour {
        self.drop_idle = true;
        self
    }
    pub fn drop_on_reuse(mut self) -> Behaviour {
        self.drop_on_reuse = true;
        self
    }
    pub fn continue_100(mut self) -> Behaviour {
        self.continue_100 = true;
        self
    }
    pub fn upgrade(mut self) -> Behaviour {
        self.upgrade = true;
        self
    }
    pub fn silent(mut self) -> Behaviour {
        self.silent = true;
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Behaviour {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    pub fn responder(
        mut self,
        f: impl Fn(&Request) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> Behaviour {
        self.responder = Some(Arc::new(f));
        self
    }
}

struct Shared {
    name: String,
    behaviour: Mutex<Behaviour>,
    accepted: AtomicUsize,
    requests: Mutex<Vec<Request>>,
    dropped: Mutex<Vec<String>>,
    conns: Mutex<Vec<ConnRecord>>,
    changed: Condvar,
    /// Guards nothing; paired with `changed` for waits.
    wait_lock: Mutex<()>,
}

impl Shared {
    fn notify(&self) {
        let _g = self.wait_lock.lock().unwrap();
        self.changed.notify_all();
    }
}

/// A recording HTTP/1.1 origin server (see the module docs).
pub struct HttpBackend {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its name (`X-Server` and default body).
    pub name: String,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl HttpBackend {
    /// A default backend called `name`.
    pub fn new(name: &str) -> HttpBackend {
        HttpBackend::start(name, Behaviour::default())
    }

    /// A backend called `name` with this behaviour, on a fresh loopback address.
    pub fn start(name: &str, behaviour: Behaviour) -> HttpBackend {
        let addr = SocketAddr::V4(SocketAddrV4::new(fresh_ip(), 0));
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        sock.set_reuse_address(true).unwrap();
        sock.bind(&addr.into()).unwrap();
        sock.listen(1024).unwrap();
        let listener: TcpListener = sock.into();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            name: name.to_string(),
            behaviour: Mutex::new(behaviour),
            accepted: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            dropped: Mutex::new(Vec::new()),
            conns: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            wait_lock: Mutex::new(()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, sp) = (shared.clone(), stop.clone());
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(s) = conn else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = s.set_read_timeout(Some(HTTP_BACKEND_IO_TIMEOUT));
                let _ = s.set_write_timeout(Some(HTTP_BACKEND_IO_TIMEOUT));
                let id = {
                    let mut conns = sh.conns.lock().unwrap();
                    conns.push(ConnRecord::default());
                    conns.len() - 1
                };
                sh.accepted.fetch_add(1, Ordering::SeqCst);
                sh.notify();
                let sh2 = sh.clone();
                let _ = thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(move || serve(sh2, id, s));
            }
        });
        HttpBackend {
            addr,
            name: name.to_string(),
            shared,
            stop,
            accept: Some(accept),
        }
    }

    /// Replace the behaviour (applies to the next request read).
    pub fn set_behaviour(&self, b: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = b;
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Every complete request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// `METHOD TARGET` of the requests dropped unanswered by [`Behaviour::drop_on_reuse`].
    pub fn dropped(&self) -> Vec<String> {
        self.shared.dropped.lock().unwrap().clone()
    }

    /// How many complete requests arrived.
    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// The last complete request (panics if none).
    pub fn last(&self) -> Request {
        self.requests()
            .pop()
            .unwrap_or_else(|| panic!("backend {} received no request", self.name))
    }

    /// Every connection's record, by id.
    pub fn conns(&self) -> Vec<ConnRecord> {
        self.shared.conns.lock().unwrap().clone()
    }

    /// Raw bytes received on connection `id`.
    pub fn raw(&self, id: usize) -> Vec<u8> {
        self.shared.conns.lock().unwrap()[id].raw.clone()
    }

    /// Total raw bytes received over all connections.
    pub fn raw_len(&self) -> usize {
        self.shared
            .conns
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.raw.len())
            .sum()
    }

    /// Whether any connection's raw bytes contain `needle`.
    pub fn saw(&self, needle: &[u8]) -> bool {
        self.shared
            .conns
            .lock()
            .unwrap()
            .iter()
            .any(|c| contains(&c.raw, needle))
    }

    /// Wait (bounded) until at least `n` complete requests arrived; true if they did.
    pub fn wait_requests(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, || self.request_count() >= n)
    }

    /// Wait (bounded) until connection `id` was closed by the proxy; true if it was.
    pub fn wait_conn_closed(&self, id: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, || {
            self.shared
                .conns
                .lock()
                .unwrap()
                .get(id)
                .is_some_and(|c| c.peer_closed)
        })
    }

    fn wait_until(&self, timeout: Duration, cond: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let g = self.shared.wait_lock.lock().unwrap();
            let _ = self
                .shared
                .changed
                .wait_timeout(g, (deadline - now).min(Duration::from_millis(50)))
                .unwrap();
        }
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// The backend side of one connection: a buffer over the socket that records every byte.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    shared: Arc<Shared>,
    id: usize,
    eof: bool,
}

impl Conn {
    /// Read more bytes into `buf`; Ok(0) at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        let mut tmp = [0u8; 64 * 1024];
        match self.s.read(&mut tmp) {
            Ok(0) => {
                self.eof = true;
                self.mark_closed();
                Ok(0)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                self.shared.conns.lock().unwrap()[self.id]
                    .raw
                    .extend_from_slice(&tmp[..n]);
                self.shared.notify();
                Ok(n)
            }
            Err(e) => {
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) {
                    self.eof = true;
                    self.mark_closed();
                }
                Err(e)
            }
        }
    }

    fn mark_closed(&self) {
        self.shared.conns.lock().unwrap()[self.id].peer_closed = true;
        self.shared.notify();
    }

    fn need(&mut self, n: usize) -> io::Result<()> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }

    /// The next head (without the final CRLFCRLF), or None on a clean EOF before any byte.
    fn read_head(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = self.buf[..end].to_vec();
                self.buf.drain(..end + 4);
                return Ok(Some(head));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
            }
            if self.fill()? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        self.need(n)?;
        Ok(self.buf.drain(..n).collect())
    }

    /// One CRLF-terminated line (CRLF included).
    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                return Ok(self.buf.drain(..i + 2).collect());
            }
            if self.buf.len() > 64 * 1024 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// A chunked body: (decoded, raw).
    fn chunked_body(&mut self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
        let (mut body, mut raw) = (Vec::new(), Vec::new());
        for _ in 0..10_000_000 {
            let line = self.line()?;
            raw.extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line[..line.len() - 2]).to_string();
            let size_text = text.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("chunk size"))?;
            if size > MAX_BODY || body.len() + size > MAX_BODY {
                return Err(bad("body too large"));
            }
            if size == 0 {
                // Trailers until the empty line.
                for _ in 0..1000 {
                    let t = self.line()?;
                    raw.extend_from_slice(&t);
                    if t == b"\r\n" {
                        return Ok((body, raw));
                    }
                }
                return Err(bad("too many trailers"));
            }
            let data = self.take(size + 2)?;
            if &data[size..] != b"\r\n" {
                return Err(bad("no CRLF after chunk data"));
            }
            body.extend_from_slice(&data[..size]);
            raw.extend_from_slice(&data);
        }
        Err(bad("too many chunks"))
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.s.write_all(bytes)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

fn serve(shared: Arc<Shared>, id: usize, s: TcpStream) {
    let mut c = Conn {
        s,
        buf: Vec::new(),
        shared: shared.clone(),
        id,
        eof: false,
    };
    let _ = serve_requests(&mut c);
    shared.conns.lock().unwrap()[id].ended = true;
    shared.notify();
}

fn serve_requests(c: &mut Conn) -> io::Result<()> {
    let shared = c.shared.clone();
    for seq in 0..MAX_REQUESTS_PER_CONN {
        let Some(head) = c.read_head()? else {
            return Ok(());
        };
        let (start, headers) = split_head(&head);
        let parts: Vec<&str> = start.splitn(3, ' ').collect();
        let (method, target, version) = match parts.as_slice() {
            [m, t, v] => (m.to_string(), t.to_string(), v.to_string()),
            _ => return Ok(()), // not HTTP: stop serving this connection
        };
        let b = shared.behaviour.lock().unwrap().clone();
        let hv = |n: &str| header_values(&headers, n).first().map(|v| v.to_string());
        if b.drop_on_reuse && seq > 0 {
            shared
                .dropped
                .lock()
                .unwrap()
                .push(format!("{method} {target}"));
            shared.notify();
            return Ok(()); // closed without a response byte
        }

        if b.continue_100 && hv("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            c.write(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let chunked = header_has_token(&headers, "transfer-encoding", "chunked");
        let (body, raw_body) = if chunked {
            c.chunked_body()?
        } else if let Some(cl) = hv("content-length") {
            let n: usize = cl
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "content-length"))?;
            if n > MAX_BODY {
                return Ok(());
            }
            let body = c.take(n)?;
            (body.clone(), body)
        } else {
            (Vec::new(), Vec::new())
        };
        let req = Request {
            conn: c.id,
            seq,
            method: method.clone(),
            target: target.clone(),
            version: version.clone(),
            headers: headers.clone(),
            body,
            raw_body,
            chunked,
        };
        shared.requests.lock().unwrap().push(req.clone());
        shared.notify();

        if b.silent {
            continue;
        }
        if let Some(r) = &b.responder {
            if let Some(bytes) = r(&req) {
                c.write(&bytes)?;
                continue;
            }
        }
        if b.upgrade && req.has("upgrade") {
            let mut head = String::from("HTTP/1.1 101 Switching Protocols\r\n");
            head += &format!(
                "Upgrade: {}\r\nConnection: Upgrade\r\n",
                req.header("upgrade").unwrap()
            );
            head += &format!("X-Server: {}\r\n\r\n", shared.name);
            c.write(head.as_bytes())?;
            // Echo: what is buffered already, then everything until EOF.
            let pending = std::mem::take(&mut c.buf);
            c.write(&pending)?;
            for _ in 0..10_000_000 {
                if c.fill()? == 0 {
                    let _ = c.s.shutdown(Shutdown::Write);
                    return Ok(());
                }
                let data = std::mem::take(&mut c.buf);
                c.write(&data)?;
            }
            return Ok(());
        }

        let delay = hv("x-test-delay-ms")
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(b.delay);
        if !delay.is_zero() {
            thread::sleep(delay);
        }
        let status: u16 = hv("x-test-status")
            .and_then(|v| v.parse().ok())
            .unwrap_or(b.status);
        let test_len: Option<usize> = hv("x-test-len").and_then(|v| v.parse().ok());
        let echo = b.echo || hv("x-test-echo").is_some();
        let send_chunked = b.chunked || hv("x-test-chunked").is_some();
        let client_close = header_has_token(&headers, "connection", "close")
            || (version == "HTTP/1.0" && !header_has_token(&headers, "connection", "keep-alive"));
        let close = b.close || hv("x-test-close").is_some() || client_close;

        // A per-request length wins over the backend's echo/length behaviour.
        let body = if let Some(n) = test_len {
            pattern(n)
        } else if echo {
            req.body.clone()
        } else if let Some(n) = b.body_len {
            pattern(n)
        } else {
            shared.name.as_bytes().to_vec()
        };
        let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        out += &format!(
            "X-Server: {}\r\nX-Conn: {}\r\nX-Seq: {seq}\r\nX-Target: {target}\r\nX-Method: {method}\r\n",
            shared.name, c.id
        );
        for (n, v) in &b.headers {
            out += &format!("{n}: {v}\r\n");
        }
        for v in header_values(&headers, "x-test-header") {
            out += &format!("{v}\r\n");
        }
        let bodyless_status = status == 204 || status == 304 || (100..200).contains(&status);
        let mut payload: Vec<u8> = Vec::new();
        if status == 204 {
            // No framing fields at all.
        } else if send_chunked && !bodyless_status {
            out += "Transfer-Encoding: chunked\r\n";
            if method != "HEAD" {
                payload = chunked_encode(&body, CHUNK_SIZES);
            }
        } else {
            out += &format!("Content-Length: {}\r\n", body.len());
            if method != "HEAD" && !bodyless_status {
                payload = body;
            }
        }
        if close {
            out += "Connection: close\r\n";
        }
        out += "\r\n";
        let mut all = out.into_bytes();
        all.extend_from_slice(&payload);
        c.write(&all)?;
        if close {
            let _ = c.s.shutdown(Shutdown::Write);
            // Lingering close: read what the peer still sends until it closes.
            for _ in 0..1000 {
                if c.fill().unwrap_or(0) == 0 {
                    break;
                }
            }
            return Ok(());
        }
        if b.drop_idle {
            return Ok(()); // dropped: closed without a word
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

/// One HTTP response as a client received it.
#[derive(Clone, Debug)]
pub struct Response {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// Fields in received order, values trimmed.
    pub headers: HeaderList,
    /// The body, chunked framing removed.
    pub body: Vec<u8>,
    /// The body as received (framing included).
    pub raw_body: Vec<u8>,
    /// The head as received (start line and fields, final CRLFCRLF included).
    pub raw_head: Vec<u8>,
}

impl Response {
    /// The first value of `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_values(&self.headers, name).first().copied()
    }
    /// Every value of `name`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        header_values(&self.headers, name)
    }
    /// Whether any field is named `name`.
    pub fn has(&self, name: &str) -> bool {
        !self.header_all(name).is_empty()
    }
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// `X-Server` of the backend that answered ("" if none).
    pub fn server(&self) -> String {
        self.header("x-server").unwrap_or_default().to_string()
    }
    /// `Connection: close` is among the fields.
    pub fn says_close(&self) -> bool {
        header_has_token(&self.headers, "connection", "close")
    }
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}",
            show(&self.raw_head, 2000),
            show(&self.raw_body, 300)
        )
    }
}

/// Parse one response at the start of `buf`. `head_request`: the request was HEAD (no
/// body). `eof`: no more bytes will come (a close-delimited body ends here).
/// Ok(None): incomplete. Ok(Some((response, consumed))).
pub fn parse_response(
    buf: &[u8],
    head_request: bool,
    eof: bool,
) -> Result<Option<(Response, usize)>, String> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err("response head too large".into());
        }
        return Ok(None);
    };
    let raw_head = buf[..end + 4].to_vec();
    let (start, headers) = split_head(&buf[..end]);
    let mut parts = start.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_string();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not a status line: {}", show(&buf[..end], 200)));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {start:?}"))?;
    let reason = parts.next().unwrap_or_default().to_string();
    let body_at = end + 4;
    let mk = |body: Vec<u8>, raw_body: Vec<u8>| Response {
        version: version.clone(),
        status,
        reason: reason.clone(),
        headers: headers.clone(),
        body,
        raw_body,
        raw_head: raw_head.clone(),
    };
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Some((mk(Vec::new(), Vec::new()), body_at)));
    }
    let rest = &buf[body_at..];
    if header_has_token(&headers, "transfer-encoding", "chunked") {
        return match decode_chunked(rest)? {
            None => Ok(None),
            Some((body, used)) => Ok(Some((mk(body, rest[..used].to_vec()), body_at + used))),
        };
    }
    if let Some(cl) = header_values(&headers, "content-length").first() {
        let n: usize = cl
            .parse()
            .map_err(|_| format!("bad Content-Length {cl:?}"))?;
        if rest.len() < n {
            return Ok(None);
        }
        return Ok(Some((
            mk(rest[..n].to_vec(), rest[..n].to_vec()),
            body_at + n,
        )));
    }
    // Close-delimited.
    if eof {
        Ok(Some((mk(rest.to_vec(), rest.to_vec()), buf.len())))
    } else {
        Ok(None)
    }
}

/// Decode a chunked body at the start of `buf`: Ok(None) if incomplete, else (payload,
/// bytes used including trailers).
pub fn decode_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut at = 0;
    let mut body = Vec::new();
    loop {
        let Some(i) = find(&buf[at..], b"\r\n") else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&buf[at..at + i]).to_string();
        let size_text = line
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let size = usize::from_str_radix(&size_text, 16)
            .map_err(|_| format!("bad chunk size line {line:?}"))?;
        at += i + 2;
        if size == 0 {
            // Trailers until an empty line.
            loop {
                let Some(j) = find(&buf[at..], b"\r\n") else {
                    return Ok(None);
                };
                at += j + 2;
                if j == 0 {
                    return Ok(Some((body, at)));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err("no CRLF after chunk data".into());
        }
        at += size + 2;
    }
}

/// Every response in `buf`, in order, the i-th final response answering `methods[i]`
/// (missing entries are GET; only `HEAD` matters). Interim 1xx responses (not 101) are
/// included and do not use up a method. The bytes are the whole stream (EOF after them).
/// Returns the responses and, if bytes were left that do not parse, a description.
pub fn parse_responses(buf: &[u8], methods: &[&str]) -> (Vec<Response>, Option<String>) {
    let mut out = Vec::new();
    let mut at = 0;
    let mut final_index = 0;
    while at < buf.len() && out.len() < 10_000 {
        let head = methods.get(final_index).is_some_and(|m| *m == "HEAD");
        match parse_response(&buf[at..], head, true) {
            Ok(Some((r, used))) => {
                if !(100..200).contains(&r.status) || r.status == 101 {
                    final_index += 1;
                }
                let tunnel = r.status == 101;
                out.push(r);
                at += used;
                if tunnel {
                    break;
                }
            }
            Ok(None) => {
                return (
                    out,
                    Some(format!("incomplete response: {}", show(&buf[at..], 500))),
                )
            }
            Err(e) => {
                return (
                    out,
                    Some(format!("{e} at byte {at}: {}", show(&buf[at..], 500))),
                )
            }
        }
    }
    (out, None)
}

// ---------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------

/// What came back on a raw connection.
#[derive(Clone, Debug)]
pub struct RawReply {
    /// Every byte received.
    pub bytes: Vec<u8>,
    /// The server closed the connection (EOF or reset) — as opposed to a read timeout.
    pub closed: bool,
    /// The close was a reset.
    pub reset: bool,
}

impl RawReply {
    /// The responses in it (all answering GETs).
    pub fn responses(&self) -> Vec<Response> {
        parse_responses(&self.bytes, &[]).0
    }
    /// The status of the first response, if one parses.
    pub fn status(&self) -> Option<u16> {
        self.responses().first().map(|r| r.status)
    }
    /// The bytes, printable.
    pub fn text(&self) -> String {
        show(&self.bytes, 3000)
    }
}

/// Options of [`send_raw_with`].
#[derive(Clone, Debug)]
pub struct RawOpts {
    /// Shut the write side down after sending.
    pub half_close: bool,
    /// Read timeout (the read ends, `closed == false`, when nothing comes for this long).
    pub timeout: Duration,
    /// Source address to bind.
    pub src: Option<Ipv4Addr>,
    /// Write in pieces of this many bytes (TCP_NODELAY, one write each; stops writing
    /// once the proxy closed). 0: one write.
    pub piece: usize,
    /// Pause between pieces (pacing only, so the proxy reads every prefix on its own).
    pub pause: Duration,
}

impl Default for RawOpts {
    fn default() -> Self {
        RawOpts {
            half_close: false,
            timeout: Duration::from_secs(5),
            src: None,
            piece: 0,
            pause: Duration::ZERO,
        }
    }
}

/// Write `bytes` on a fresh connection and read until EOF or a 5 s silence.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> RawReply {
    send_raw_with(addr, bytes, &RawOpts::default())
}

/// [`send_raw`] with options.
pub fn send_raw_with(addr: SocketAddr, bytes: &[u8], opts: &RawOpts) -> RawReply {
    let mut s = match opts.src {
        Some(src) => try_connect_from(src, addr),
        None => try_connect(addr),
    }
    .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(opts.timeout)).unwrap();
    // A write error (the proxy closed early) is not fatal: read what it answered.
    if opts.piece == 0 {
        let _ = s.write_all(bytes);
    } else {
        s.set_nodelay(true).unwrap();
        for piece in bytes.chunks(opts.piece) {
            if s.write_all(piece).is_err() || peer_closed(&s) {
                break;
            }
            if !opts.pause.is_zero() {
                thread::sleep(opts.pause);
            }
        }
    }
    if opts.half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    read_all(&mut s)
}

/// Whether the peer already closed with nothing left to read (a non-blocking peek;
/// pending data means "not known yet").
fn peer_closed(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    s.set_nonblocking(true).unwrap();
    let r = match s.peek(&mut b) {
        Ok(n) => n == 0,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).unwrap();
    r
}

/// Read until EOF, reset or a read timeout (at most 256 MiB).
pub fn read_all(s: &mut TcpStream) -> RawReply {
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => {
                return RawReply {
                    bytes: out,
                    closed: true,
                    reset: false,
                }
            }
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_BODY {
                    return RawReply {
                        bytes: out,
                        closed: false,
                        reset: false,
                    };
                }
            }
            Err(e) => {
                let reset = matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                );
                return RawReply {
                    bytes: out,
                    closed: reset,
                    reset,
                };
            }
        }
    }
}

/// A request's bytes: `METHOD PATH HTTP/1.1`, `Host: halb.test` unless `headers` has a
/// Host, the headers, `Content-Length` when there is a body (or for POST/PUT), the body.
pub fn build_request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut h = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        h += "Host: halb.test\r\n";
    }
    for (n, v) in headers {
        h += &format!("{n}: {v}\r\n");
    }
    let framed = headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
    });
    if !framed && (!body.is_empty() || method == "POST" || method == "PUT") {
        h += &format!("Content-Length: {}\r\n", body.len());
    }
    h += "\r\n";
    let mut v = h.into_bytes();
    v.extend_from_slice(body);
    v
}

/// A client connection that can carry several requests (keep-alive, pipelining).
pub struct Client {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Client {
    /// Connect to `addr` (panics on failure).
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = try_connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        Client::from_stream(stream)
    }

    /// Connect from source address `src`.
    pub fn connect_from(src: Ipv4Addr, addr: SocketAddr) -> Client {
        let stream = try_connect_from(src, addr)
            .unwrap_or_else(|e| panic!("connect to {addr} from {src}: {e}"));
        Client::from_stream(stream)
    }

    /// Wrap a connected socket.
    pub fn from_stream(stream: TcpStream) -> Client {
        set_timeouts(&stream);
        Client {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// The local address (the proxy's view of the client).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    /// Write raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Read the next response (interim ones included) to a request with `method`.
    pub fn read_response(&mut self, method: &str) -> io::Result<Response> {
        read_response_from(&mut self.stream, &mut self.buf, &mut self.eof, method)
    }

    /// Read the next final (non-1xx, or 101) response.
    pub fn read_final(&mut self, method: &str) -> io::Result<Response> {
        for _ in 0..100 {
            let r = self.read_response(method)?;
            if !(100..200).contains(&r.status) || r.status == 101 {
                return Ok(r);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "100 interim responses",
        ))
    }

    /// Send a request (see [`build_request`]) and read its final response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        self.send(&build_request(method, path, headers, body))?;
        self.read_final(method)
    }

    /// GET `path`, panicking on failure.
    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers, b"")
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Whether the server closed the connection: reads (up to `timeout`) and expects
    /// EOF or reset; unexpected data is an error.
    pub fn closed_within(&mut self, timeout: Duration) -> Result<bool, String> {
        if self.eof {
            return Ok(true);
        }
        if !self.buf.is_empty() {
            return Err(format!("unread bytes: {}", show(&self.buf, 500)));
        }
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let mut tmp = [0u8; 4096];
        let r = match self.stream.read(&mut tmp) {
            Ok(0) => Ok(true),
            Ok(n) => Err(format!("data instead of a close: {}", show(&tmp[..n], 500))),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                Ok(true)
            }
            Err(_) => Ok(false),
        };
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        if r == Ok(true) {
            self.eof = true;
        }
        r
    }

    /// Bytes received but not consumed by a response yet.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Take the bytes received but not consumed yet (e.g. tunnel data after a 101).
    pub fn take_pending(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// GET `path` on a fresh connection (panics on failure).
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    Client::connect(addr).get(path, headers)
}

/// GET `path` on a fresh connection from source address `src`.
pub fn get_from(src: Ipv4Addr, addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    Client::connect_from(src, addr).get(path, headers)
}

/// Any request on a fresh connection; the final response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    Client::connect(addr).request(method, path, headers, body)
}

/// Read the next response (interim ones included) to a request with `method` from
/// `stream`: bytes already received wait in `buf`, and `eof` records (for good) that the
/// peer closed. A TLS peer's close without close_notify counts as an end of stream too.
pub fn read_response_from(
    stream: &mut impl Read,
    buf: &mut Vec<u8>,
    eof: &mut bool,
    method: &str,
) -> io::Result<Response> {
    let head = method == "HEAD";
    let mut tmp = vec![0u8; 64 * 1024];
    loop {
        match parse_response(buf, head, *eof) {
            Ok(Some((r, used))) => {
                buf.drain(..used);
                return Ok(r);
            }
            Ok(None) if *eof => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("closed before a complete response: {}", show(buf, 1000)),
                ))
            }
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
        if buf.len() > MAX_BODY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "response too large",
            ));
        }
        match stream.read(&mut tmp) {
            Ok(0) => *eof = true,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => *eof = true,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{e} after {}", show(buf, 1000)),
                ))
            }
        }
    }
}
