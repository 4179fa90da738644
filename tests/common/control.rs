//! Control-plane side of the harness, for the health-check, stats, admin and reload tests
//! (docs/control.md).
//!
//! * [`Control`] adds an admin socket (`global.admin_socket`, in a private temp dir) and a
//!   `[stats]` listener on a fresh loopback address to a [`Conf`]; [`StatsClient`] reads
//!   `/stats;json` (parsed into a [`serde_json::Value`], optional basic auth) and the other
//!   stats paths; [`ctl`] runs `halb ctl --socket PATH ...` (bounded) and returns its exit
//!   status, stdout and stderr.
//! * [`KillableBackend`] is an HTTP/1.1 origin on a fixed address that can be stopped
//!   (listener closed so connects are refused, every connection closed once the request it
//!   is serving is answered) and started again on the same address. It answers `/health…`
//!   with a configurable status and body (or never), every other path with its name
//!   (`X-Server: NAME`), and counts what it served.
//! * [`Load`] runs client threads (keep-alive, or one connection per request) in a bounded
//!   loop against a frontend, counting every request and recording which server answered
//!   each one and every failure.
//! * [`wait_until`] polls a condition, bounded, and panics with what it was waiting for.
//!
//! As in the rest of the harness, every socket has timeouts and every loop is bounded.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;
use socket2::{Domain, Socket, Type};

use super::http::{find, toml_str, Client, Response};
use super::{free_addr, fresh_ip, try_connect, Conf, Halb, TempDir};

/// Default bound of [`wait_until`] in these tests: state changes take a few check
/// intervals (200 ms here), so 20 s only matters when something is broken.
pub const WAIT: Duration = Duration::from_secs(20);

/// The health-check settings every test uses unless it needs others: fast, so a state
/// change takes well under a second.
pub const FAST_CHECK: &str =
    "inter = \"200ms\", fastinter = \"100ms\", rise = 2, fall = 2, timeout = \"300ms\"";

/// `check = { type = "http", path = "/health", <FAST_CHECK>, <extra> }` as a backend line.
pub fn http_check(extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!("check = {{ type = \"http\", path = \"/health\", {FAST_CHECK}{extra} }}")
}

/// `check = { type = "tcp", <FAST_CHECK>, <extra> }` as a backend line.
pub fn tcp_check(extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!("check = {{ type = \"tcp\", {FAST_CHECK}{extra} }}")
}

// ---------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------

/// Poll `cond` every 20 ms until it is true; panic naming `what` after `bound`.
pub fn wait_until(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) {
    if !try_wait_until(bound, &mut cond) {
        panic!("timed out after {bound:?} waiting until {what}");
    }
}

/// Poll `cond` every 20 ms until it is true (true) or `bound` has passed (false).
pub fn try_wait_until(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Wait (bounded by [`WAIT`]) for an output line of `halb` containing `needle`; return it.
pub fn wait_log(halb: &Halb, needle: &str) -> String {
    let mut found = None;
    let ok = try_wait_until(WAIT, || {
        found = halb.lines().into_iter().find(|l| l.contains(needle));
        found.is_some()
    });
    assert!(ok, "no log line containing {needle:?} within {WAIT:?}");
    found.unwrap()
}

/// Output lines of `halb` containing `needle`.
pub fn log_lines(halb: &Halb, needle: &str) -> Vec<String> {
    halb.lines()
        .into_iter()
        .filter(|l| l.contains(needle))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Stats listener + admin socket in a config
// ---------------------------------------------------------------------------------------

/// Where a test's halb serves its stats page and admin socket.
pub struct Control {
    /// `[stats] bind`.
    pub stats_addr: SocketAddr,
    /// `global.admin_socket`.
    pub socket: PathBuf,
    /// `[stats] auth` (user, password).
    pub auth: Option<(String, String)>,
    /// `[stats] admin`.
    pub admin: bool,
    dir: TempDir,
}

impl Default for Control {
    fn default() -> Self {
        Control::new()
    }
}

impl Control {
    /// Stats without authentication, admin socket in a fresh temp dir.
    pub fn new() -> Control {
        let dir = TempDir::new();
        Control {
            stats_addr: free_addr(),
            socket: dir.path.join("admin.sock"),
            auth: None,
            admin: false,
            dir,
        }
    }

    /// Stats with basic auth `user:password`, and POST actions when `admin`.
    pub fn with_auth(user: &str, password: &str, admin: bool) -> Control {
        let mut c = Control::new();
        c.auth = Some((user.to_string(), password.to_string()));
        c.admin = admin;
        c
    }

    /// A private directory for the test's own files (configs, output).
    pub fn dir(&self) -> &Path {
        &self.dir.path
    }

    /// The `[stats]` table.
    pub fn stats_table(&self) -> String {
        let mut t = format!("\n[stats]\nbind = \"{}\"\n", self.stats_addr);
        if let Some((u, p)) = &self.auth {
            t += &format!(
                "auth = {{ user = {}, password = {} }}\n",
                toml_str(u),
                toml_str(p)
            );
        }
        if self.admin {
            t += "admin = true\n";
        }
        t
    }

    /// `conf` with `global.admin_socket` and the `[stats]` table added.
    pub fn apply(&self, conf: Conf) -> Conf {
        let line = format!(
            "admin_socket = {}",
            toml_str(self.socket.to_str().expect("utf-8 socket path"))
        );
        conf.global(&line).raw(&self.stats_table())
    }

    /// A stats client with this control's credentials.
    pub fn stats(&self) -> StatsClient {
        StatsClient {
            addr: self.stats_addr,
            uri: "/stats".to_string(),
            auth: self.auth.clone(),
        }
    }

    /// `halb ctl --socket SOCKET ARGS...`.
    pub fn ctl(&self, args: &[&str]) -> (ExitStatus, String, String) {
        ctl(&self.socket, args)
    }

    /// `halb ctl` that must succeed; its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        ctl_ok(&self.socket, args)
    }

    /// `halb ctl --json ARGS...` that must succeed; its stdout parsed.
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        ctl_json(&self.socket, args)
    }
}

// ---------------------------------------------------------------------------------------
// Stats client
// ---------------------------------------------------------------------------------------

/// Standard base64 (with padding) of `data`: for `Authorization: Basic`.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// `Basic <base64(user:password)>`.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// A client of halb's stats listener.
#[derive(Clone, Debug)]
pub struct StatsClient {
    /// The listener.
    pub addr: SocketAddr,
    /// `[stats] uri`.
    pub uri: String,
    /// Credentials sent with every request (`None`: none).
    pub auth: Option<(String, String)>,
}

impl StatsClient {
    /// Any request on a fresh connection, with the credentials (if any) and `headers`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let auth = self.auth.as_ref().map(|(u, p)| basic_auth(u, p));
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &auth {
            h.push(("Authorization", a));
        }
        h.push(("Connection", "close"));
        let s = try_connect(self.addr)?;
        Client::from_stream(s).request(method, path, &h, body)
    }

    /// GET `path`; panics on an I/O error (any status is returned).
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
            .unwrap_or_else(|e| panic!("GET {path} from the stats listener {}: {e}", self.addr))
    }

    /// GET `URI;json`, expecting 200 and valid JSON.
    pub fn json(&self) -> Value {
        let path = format!("{};json", self.uri);
        let r = self.get(&path);
        assert_eq!(r.status, 200, "GET {path}: {r}");
        serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {}", r.text()))
    }

    /// The backend `name` of a fresh report.
    pub fn backend(&self, name: &str) -> Value {
        backend_of(&self.json(), name).clone()
    }

    /// The frontend `name` of a fresh report.
    pub fn frontend(&self, name: &str) -> Value {
        let report = self.json();
        report["frontends"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["name"] == name))
            .unwrap_or_else(|| panic!("no frontend {name:?} in the stats report: {report:#}"))
            .clone()
    }

    /// Server `backend/server` of a fresh report.
    pub fn server(&self, backend: &str, server: &str) -> Value {
        server_of(&self.json(), backend, server).clone()
    }

    /// Its displayed state (`UP`, `DOWN`, `MAINT`, ...).
    pub fn state(&self, backend: &str, server: &str) -> String {
        self.server(backend, server)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Wait (bounded by [`WAIT`]) until `backend/server` shows `state`; return the server.
    pub fn wait_state(&self, backend: &str, server: &str, state: &str) -> Value {
        let mut last = Value::Null;
        let ok = try_wait_until(WAIT, || {
            last = self.server(backend, server);
            last["state"] == state
        });
        assert!(
            ok,
            "server {backend}/{server} did not become {state} within {WAIT:?}; last seen: {last:#}"
        );
        last
    }
}

/// The backend `name` in a report (`/stats;json`) or in a `show servers --json` array.
pub fn backend_of<'a>(report: &'a Value, name: &str) -> &'a Value {
    let list = if report.is_array() {
        report
    } else {
        &report["backends"]
    };
    list.as_array()
        .and_then(|a| a.iter().find(|b| b["name"] == name))
        .unwrap_or_else(|| panic!("no backend {name:?} in: {report:#}"))
}

/// Server `backend/server` in a report or a `show servers --json` array.
pub fn server_of<'a>(report: &'a Value, backend: &str, server: &str) -> &'a Value {
    backend_of(report, backend)["servers"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == server))
        .unwrap_or_else(|| panic!("no server {backend}/{server} in: {report:#}"))
}

/// A counter of a report item (`item["counters"][name]`) as a number.
pub fn counter(item: &Value, name: &str) -> u64 {
    item["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name:?} in: {item:#}"))
}

// ---------------------------------------------------------------------------------------
// halb ctl
// ---------------------------------------------------------------------------------------

/// How long one `halb ctl` may run before it is killed and the test fails.
pub const CTL_TIMEOUT: Duration = Duration::from_secs(15);

/// Run `halb ctl --socket SOCKET ARGS...` (bounded by [`CTL_TIMEOUT`]); its exit status,
/// stdout and stderr.
pub fn ctl(socket: &Path, args: &[&str]) -> (ExitStatus, String, String) {
    let mut full: Vec<&str> = vec!["--socket", socket.to_str().expect("utf-8 socket path")];
    full.extend_from_slice(args);
    ctl_raw(&full)
}

/// Run `halb ctl ARGS...` as given (no `--socket` added), bounded.
pub fn ctl_raw(args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_halb"))
        .arg("ctl")
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn halb ctl");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + CTL_TIMEOUT;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`halb ctl {}` still running after {CTL_TIMEOUT:?}",
                args.join(" ")
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
    (status, stdout, stderr)
}

/// `halb ctl` that must exit 0; its stdout.
pub fn ctl_ok(socket: &Path, args: &[&str]) -> String {
    let (st, out, err) = ctl(socket, args);
    assert!(
        st.success(),
        "`halb ctl {}` failed ({st}):\nstdout: {out}\nstderr: {err}",
        args.join(" ")
    );
    out
}

/// `halb ctl --json ARGS...` that must exit 0; its stdout as JSON.
pub fn ctl_json(socket: &Path, args: &[&str]) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let out = ctl_ok(socket, &full);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("`halb ctl {}`: not JSON ({e}): {out}", full.join(" ")))
}

/// The `key: value` lines of a `show info` reply.
pub fn info_fields(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// A killable, restartable HTTP backend
// ---------------------------------------------------------------------------------------

/// How a [`KillableBackend`] answers.
#[derive(Clone, Debug)]
pub struct Answers {
    /// Status of every non-health request (body: the backend's name).
    pub status: u16,
    /// Status of `/health…` requests.
    pub health_status: u16,
    /// Body of `/health…` requests.
    pub health_body: String,
    /// Never answer `/health…` (read the request, write nothing).
    pub health_hang: bool,
}

impl Default for Answers {
    fn default() -> Self {
        Answers {
            status: 200,
            health_status: 200,
            health_body: "ok".to_string(),
            health_hang: false,
        }
    }
}

struct KInner {
    name: String,
    answers: Mutex<Answers>,
    served: AtomicUsize,
    health: AtomicUsize,
    accepted: AtomicUsize,
    /// Bumped by `stop`: connections (and the accept loop) of an older epoch wind down.
    epoch: AtomicU64,
    conns: Mutex<Vec<JoinHandle<()>>>,
}

/// An HTTP/1.1 origin on a fixed loopback address that can be stopped and restarted (see
/// the module docs). Stopped on drop.
pub struct KillableBackend {
    /// Where it listens (the same after a restart).
    pub addr: SocketAddr,
    /// Its name: `X-Server` and body of normal answers.
    pub name: String,
    inner: Arc<KInner>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

/// Most requests served on one connection (bounds the serving loop).
const MAX_REQUESTS_PER_CONN: usize = 1_000_000;
/// Longest life of one backend connection.
const MAX_CONN_LIFE: Duration = Duration::from_secs(300);

impl KillableBackend {
    /// Start a backend called `name` on a fresh loopback address, answering 200.
    pub fn start(name: &str) -> KillableBackend {
        KillableBackend::start_with(name, Answers::default())
    }

    /// Start a backend called `name` with these answers.
    pub fn start_with(name: &str, answers: Answers) -> KillableBackend {
        let listener =
            Self::listen(SocketAddr::new(fresh_ip().into(), 0)).expect("bind a killable backend");
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(KInner {
            name: name.to_string(),
            answers: Mutex::new(answers),
            served: AtomicUsize::new(0),
            health: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
            conns: Mutex::new(Vec::new()),
        });
        let b = KillableBackend {
            addr,
            name: name.to_string(),
            inner,
            accept: Mutex::new(None),
        };
        b.run(listener);
        b
    }

    fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        sock.set_reuse_address(true)?;
        sock.bind(&addr.into())?;
        sock.listen(1024)?;
        Ok(sock.into())
    }

    fn run(&self, listener: TcpListener) {
        let inner = self.inner.clone();
        let epoch = inner.epoch.load(Ordering::SeqCst);
        let h = thread::spawn(move || accept_loop(listener, inner, epoch));
        *self.accept.lock().unwrap() = Some(h);
    }

    /// Whether it is listening.
    pub fn running(&self) -> bool {
        self.accept.lock().unwrap().is_some()
    }

    /// Stop: close the listener (connects are refused from now on) and every connection
    /// (each once the request it has received, if any, is answered). Returns when all of
    /// them are closed. No-op when stopped.
    pub fn stop(&self) {
        let Some(h) = self.accept.lock().unwrap().take() else {
            return;
        };
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
        // Wake the accept loop (it drains its queue and drops the listener).
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = h.join();
        let conns: Vec<JoinHandle<()>> = std::mem::take(&mut *self.inner.conns.lock().unwrap());
        for c in conns {
            let _ = c.join();
        }
    }

    /// Listen again on the same address (after [`KillableBackend::stop`]).
    pub fn restart(&self) {
        assert!(!self.running(), "{} is already running", self.name);
        let mut last = None;
        for _ in 0..100 {
            match Self::listen(self.addr) {
                Ok(l) => {
                    self.run(l);
                    return;
                }
                Err(e) => last = Some(e),
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("cannot listen on {} again: {last:?}", self.addr);
    }

    /// Change how it answers (applies to the next request).
    pub fn set_answers(&self, a: Answers) {
        *self.inner.answers.lock().unwrap() = a;
    }

    /// How it answers now.
    pub fn answers(&self) -> Answers {
        self.inner.answers.lock().unwrap().clone()
    }

    /// Answer `/health…` with `status` and `body`.
    pub fn set_health(&self, status: u16, body: &str) {
        let mut a = self.inner.answers.lock().unwrap();
        a.health_status = status;
        a.health_body = body.to_string();
        a.health_hang = false;
    }

    /// Never answer `/health…` (`true`) or answer again (`false`).
    pub fn set_health_hang(&self, hang: bool) {
        self.inner.answers.lock().unwrap().health_hang = hang;
    }

    /// Status of normal (non-health) answers.
    pub fn set_status(&self, status: u16) {
        self.inner.answers.lock().unwrap().status = status;
    }

    /// Non-health requests answered so far (over every start).
    pub fn served(&self) -> usize {
        self.inner.served.load(Ordering::SeqCst)
    }

    /// Health requests received so far.
    pub fn health_checks(&self) -> usize {
        self.inner.health.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.inner.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for KillableBackend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, inner: Arc<KInner>, epoch: u64) {
    loop {
        let r = listener.accept();
        if inner.epoch.load(Ordering::SeqCst) != epoch {
            // Stopping: serve what is already queued (connections the kernel completed,
            // whose clients may have sent a request), then drop the listener.
            if let Ok((s, _)) = r {
                spawn_conn(&inner, s, epoch);
            }
            let _ = listener.set_nonblocking(true);
            for _ in 0..10_000 {
                match listener.accept() {
                    Ok((s, _)) => spawn_conn(&inner, s, epoch),
                    Err(_) => break,
                }
            }
            return;
        }
        match r {
            Ok((s, _)) => spawn_conn(&inner, s, epoch),
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn spawn_conn(inner: &Arc<KInner>, s: TcpStream, epoch: u64) {
    inner.accepted.fetch_add(1, Ordering::SeqCst);
    let i2 = inner.clone();
    let h = thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || serve_conn(i2, s, epoch));
    if let Ok(h) = h {
        let mut conns = inner.conns.lock().unwrap();
        conns.retain(|c| !c.is_finished());
        conns.push(h);
    }
}

/// One parsed request head: (path, head length, body length, close after the answer).
fn parse_head(buf: &[u8]) -> Option<Result<(String, usize, usize, bool), String>> {
    let end = find(buf, b"\r\n\r\n")?;
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default();
    let parts: Vec<&str> = start.split(' ').collect();
    if parts.len() != 3 {
        return Some(Err(format!("bad request line {start:?}")));
    }
    let version = parts[2];
    let mut len = 0usize;
    let mut close = version == "HTTP/1.0";
    for l in lines {
        let Some((n, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if n.eq_ignore_ascii_case("content-length") {
            match v.parse() {
                Ok(n) => len = n,
                Err(_) => return Some(Err(format!("bad content-length {v:?}"))),
            }
        } else if n.eq_ignore_ascii_case("connection") {
            for t in v.split(',') {
                let t = t.trim();
                if t.eq_ignore_ascii_case("close") {
                    close = true;
                } else if t.eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            }
        }
    }
    Some(Ok((parts[1].to_string(), end + 4, len, close)))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

fn serve_conn(inner: Arc<KInner>, mut s: TcpStream, epoch: u64) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_nodelay(true);
    // Short read timeouts: the loop notices a stop within 20 ms.
    let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
    let born = Instant::now();
    let mut buf: Vec<u8> = Vec::new();
    let mut tmp = vec![0u8; 64 * 1024];
    let mut seq = 0usize;
    let mut stop_seen: Option<Instant> = None;
    while seq < MAX_REQUESTS_PER_CONN && born.elapsed() < MAX_CONN_LIFE {
        // Every complete request in the buffer first.
        match parse_head(&buf) {
            Some(Err(_)) => break,
            Some(Ok((path, head, body, close))) if buf.len() >= head + body => {
                buf.drain(..head + body);
                seq += 1;
                let a = inner.answers.lock().unwrap().clone();
                let (status, text) = if path.starts_with("/health") {
                    inner.health.fetch_add(1, Ordering::SeqCst);
                    if a.health_hang {
                        continue;
                    }
                    (a.health_status, a.health_body.clone())
                } else {
                    (a.status, inner.name.clone())
                };
                let mut out = format!(
                    "HTTP/1.1 {status} {}\r\nX-Server: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
                    reason(status),
                    inner.name,
                    text.len()
                );
                if close {
                    out += "Connection: close\r\n";
                }
                out += "\r\n";
                out += &text;
                if !path.starts_with("/health") {
                    inner.served.fetch_add(1, Ordering::SeqCst);
                }
                if s.write_all(out.as_bytes()).is_err() || close {
                    break;
                }
                continue;
            }
            _ => {}
        }
        if inner.epoch.load(Ordering::SeqCst) != epoch {
            let since = *stop_seen.get_or_insert_with(Instant::now);
            if buf.is_empty() && seq > 0 {
                // An idle connection that served already: take what has arrived, if
                // anything, else close now.
                let _ = s.set_nonblocking(true);
                let got = s.read(&mut tmp);
                let _ = s.set_nonblocking(false);
                match got {
                    Ok(n) if n > 0 => {
                        buf.extend_from_slice(&tmp[..n]);
                        continue;
                    }
                    _ => break,
                }
            }
            // A fresh connection gets a moment for its first request; a partial request
            // a bit longer to complete.
            let grace = if buf.is_empty() {
                Duration::from_millis(200)
            } else {
                Duration::from_secs(2)
            };
            if since.elapsed() > grace {
                break;
            }
        }
        match s.read(&mut tmp) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = s.shutdown(Shutdown::Both);
}

// ---------------------------------------------------------------------------------------
// Client load
// ---------------------------------------------------------------------------------------

/// How a [`Load`] client thread sends its requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadMode {
    /// Every request on one keep-alive connection (a new one only when the server says
    /// `Connection: close`).
    KeepAlive,
    /// A new connection for every request, closed after the response.
    NewConnection,
}

/// A bound on every load thread: it stops by itself after this long...
pub const LOAD_MAX_DURATION: Duration = Duration::from_secs(90);
/// ... or this many requests.
pub const LOAD_MAX_REQUESTS: usize = 500_000;

struct LoadShared {
    ok: AtomicUsize,
    failures: Mutex<Vec<String>>,
    /// `X-Server` of every 200, in completion order (all threads).
    log: Mutex<Vec<String>>,
}

/// Client threads sending GETs to a frontend until stopped (bounded by
/// [`LOAD_MAX_DURATION`] and [`LOAD_MAX_REQUESTS`]). A request succeeds when it gets a
/// complete 200; anything else (another status, a reset, a close before the response, a
/// refused connect, a timeout) is recorded as a failure.
pub struct Load {
    stop: Arc<AtomicBool>,
    shared: Arc<LoadShared>,
    threads: Vec<JoinHandle<()>>,
}

/// What a [`Load`] did.
#[derive(Debug)]
pub struct LoadReport {
    /// Requests answered 200.
    pub ok: usize,
    /// Every failed request, described.
    pub failures: Vec<String>,
    /// `X-Server` of every 200, in completion order.
    pub servers: Vec<String>,
}

impl Load {
    /// One thread per mode, each pausing `pace` between requests.
    pub fn start(addr: SocketAddr, modes: &[LoadMode], pace: Duration) -> Load {
        Load::start_with_headers(addr, modes, pace, Vec::new())
    }

    /// Like [`Load::start`], every request carrying `headers`.
    pub fn start_with_headers(
        addr: SocketAddr,
        modes: &[LoadMode],
        pace: Duration,
        headers: Vec<(String, String)>,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(LoadShared {
            ok: AtomicUsize::new(0),
            failures: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
        });
        let threads = modes
            .iter()
            .enumerate()
            .map(|(id, &mode)| {
                let (stop, shared, headers) = (stop.clone(), shared.clone(), headers.clone());
                thread::spawn(move || load_thread(addr, id, mode, pace, headers, stop, shared))
            })
            .collect();
        Load {
            stop,
            shared,
            threads,
        }
    }

    /// Requests answered 200 so far.
    pub fn ok(&self) -> usize {
        self.shared.ok.load(Ordering::SeqCst)
    }

    /// Failures so far.
    pub fn failures(&self) -> Vec<String> {
        self.shared.failures.lock().unwrap().clone()
    }

    /// How many answers are in the server log so far (a mark for [`Load::servers_since`]).
    pub fn mark(&self) -> usize {
        self.shared.log.lock().unwrap().len()
    }

    /// `X-Server` of the answers after `mark`, in completion order.
    pub fn servers_since(&self, mark: usize) -> Vec<String> {
        self.shared.log.lock().unwrap()[mark..].to_vec()
    }

    /// Wait (bounded by [`WAIT`]) until `n` more requests than now were answered 200.
    pub fn wait_more(&self, n: usize) {
        let target = self.ok() + n;
        let ok = try_wait_until(WAIT, || self.ok() >= target);
        assert!(
            ok,
            "load stalled: {} of {target} requests answered 200 within {WAIT:?}; failures: {:#?}",
            self.ok(),
            self.failures()
        );
    }

    /// Stop the threads and return what they did.
    pub fn stop(mut self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        LoadReport {
            ok: self.ok(),
            failures: self.failures(),
            servers: self.shared.log.lock().unwrap().clone(),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn load_thread(
    addr: SocketAddr,
    id: usize,
    mode: LoadMode,
    pace: Duration,
    headers: Vec<(String, String)>,
    stop: Arc<AtomicBool>,
    shared: Arc<LoadShared>,
) {
    let deadline = Instant::now() + LOAD_MAX_DURATION;
    let hdrs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut conn: Option<Client> = None;
    let fail = |what: String| shared.failures.lock().unwrap().push(what);
    for i in 0..LOAD_MAX_REQUESTS {
        if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
            break;
        }
        let path = format!("/load/{id}/{i}");
        let result = match mode {
            LoadMode::KeepAlive => {
                let fresh = conn.is_none();
                if fresh {
                    match try_connect(addr) {
                        Ok(s) => conn = Some(Client::from_stream(s)),
                        Err(e) => {
                            fail(format!("{mode:?} #{id} request {i}: connect: {e}"));
                            thread::sleep(pace.max(Duration::from_millis(10)));
                            continue;
                        }
                    }
                }
                conn.as_mut().unwrap().request("GET", &path, &hdrs, b"")
            }
            LoadMode::NewConnection => try_connect(addr)
                .and_then(|s| Client::from_stream(s).request("GET", &path, &hdrs, b"")),
        };
        match result {
            Ok(r) if r.status == 200 => {
                shared.ok.fetch_add(1, Ordering::SeqCst);
                shared.log.lock().unwrap().push(r.server());
                if r.says_close() {
                    conn = None;
                }
            }
            Ok(r) => {
                fail(format!(
                    "{mode:?} #{id} request {i}: status {}: {}",
                    r.status,
                    super::http::show(&r.raw_head, 500)
                ));
                if r.says_close() {
                    conn = None;
                }
            }
            Err(e) => {
                fail(format!("{mode:?} #{id} request {i}: {e}"));
                conn = None;
            }
        }
        if !pace.is_zero() {
            thread::sleep(pace);
        }
    }
}

/// Count of each name.
pub fn count_names(names: &[String]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for n in names {
        *m.entry(n.clone()).or_insert(0) += 1;
    }
    m
}

/// Send `buf` on a fresh connection, ignoring errors (a wake-up, a probe).
pub fn poke(addr: SocketAddr, buf: &[u8]) {
    if let Ok(mut s) = try_connect(addr) {
        let _ = s.write_all(buf);
    }
}
