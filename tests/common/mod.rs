//! Shared harness for the integration tests (L4, and L7 through [`http`]).
//!
//! Everything here drives the real `halb` binary (`halb run -c FILE`) over real loopback
//! sockets:
//!
//! * [`Conf`] renders a config file (frontend `fe` → backend `be` with servers) on a fresh
//!   loopback address and [`Halb`] runs the binary on it, collects its stdout/stderr in a
//!   reader thread, waits for `halb: ready`, and SIGKILLs it on drop (even when the test
//!   panics, in which case the captured output is printed).
//! * [`Backend`] is a threaded std::net server with a handler per connection: [`Backend::name`]
//!   (answers its name), [`Backend::echo`], [`Backend::silent`] or any closure.
//! * [`dead_addr`] is a port that refuses, [`Blackhole`] a listener whose accept queue is full
//!   so SYNs go unanswered (a connect timeout without leaving the box).
//! * [`Pattern`]/[`Verifier`] produce and check a deterministic byte stream exactly (every
//!   byte compared with `memcmp`, so offsets, losses, duplicates and reordering are caught and
//!   it stays fast in a debug build).
//!
//! Every socket has read/write timeouts and every loop is bounded, so a broken proxy fails a
//! test instead of hanging it. Each halb and each backend listens on its own 127.x.y.z
//! address, so tests can run in parallel (also next to other test processes) without
//! colliding on SO_REUSEPORT ports.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

pub mod control;
pub mod http;
pub mod netns;

/// Read/write timeout of every test socket: a proxy that hangs fails the test after this.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long halb may take to print `halb: ready`.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Default bound for waiting on access-log lines.
pub const LOG_TIMEOUT: Duration = Duration::from_secs(10);
/// One mebibyte.
pub const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------

/// A loopback address no other test of this process uses (`127.B.C.D`, B derived from the
/// process id so that two test processes running at once rarely share addresses either).
pub fn fresh_ip() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let b = 100 + (std::process::id() % 150) as u8;
    Ipv4Addr::new(127, b, (n / 250 % 250) as u8 + 1, (n % 250) as u8 + 1)
}

/// A free `ip:port` on a fresh loopback address (bound once to port 0, then released).
pub fn free_addr() -> SocketAddr {
    let ip = fresh_ip();
    let l = TcpListener::bind((ip, 0)).expect("bind a free port");
    l.local_addr().unwrap()
}

/// An address where nothing listens: connecting to it is refused at once.
pub fn dead_addr() -> SocketAddr {
    free_addr()
}

/// A listener whose accept queue is full and never drained: SYNs to it are dropped, so a
/// connect to [`Blackhole::addr`] hangs until the connector's own timeout (the loopback
/// stand-in for a server that does not answer). Checked on construction.
pub struct Blackhole {
    /// Address that never completes a handshake.
    pub addr: SocketAddr,
    _listener: Socket,
    _fillers: Vec<TcpStream>,
}

impl Blackhole {
    /// Listen with backlog 0 and fill the queue until a probe connect times out.
    pub fn new() -> Blackhole {
        let addr = SocketAddr::V4(SocketAddrV4::new(fresh_ip(), 0));
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        sock.bind(&addr.into()).unwrap();
        sock.listen(0).unwrap();
        let addr = sock.local_addr().unwrap().as_socket().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..8 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => fillers.push(s),
                // backlog 0 still queues one connection: a timeout before that is noise.
                Err(e) if e.kind() == io::ErrorKind::TimedOut && !fillers.is_empty() => {
                    return Blackhole {
                        addr,
                        _listener: sock,
                        _fillers: fillers,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                Err(e) => panic!("blackhole probe failed unexpectedly: {e}"),
            }
        }
        panic!("a full accept queue still completes handshakes on this kernel: no blackhole");
    }
}

/// Soft and hard RLIMIT_NOFILE of this process (from /proc/self/limits).
pub fn nofile_limits() -> (u64, u64) {
    let text = fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// Make sure this process may open `needed` descriptors: raise the soft RLIMIT_NOFILE
/// towards the hard one with prlimit(1) if needed (no `unsafe` in tests); panics with what
/// to raise when the hard limit is too low.
pub fn ensure_nofile(needed: u64) {
    let (soft, hard) = nofile_limits();
    if soft >= needed {
        return;
    }
    if hard >= needed {
        let _ = Command::new("prlimit")
            .arg("--pid")
            .arg(std::process::id().to_string())
            .arg(format!("--nofile={hard}:{hard}"))
            .status();
    }
    let (soft, hard) = nofile_limits();
    assert!(
        soft >= needed,
        "this test needs {needed} open files but RLIMIT_NOFILE is {soft} (hard {hard}): run `ulimit -n {needed}` first"
    );
}

// ---------------------------------------------------------------------------------------
// Config + the halb process
// ---------------------------------------------------------------------------------------

/// A config for one frontend `fe` → one backend `be`, rendered to TOML by [`Conf::render`].
/// Extra lines are raw TOML added to the named section.
#[derive(Clone, Debug)]
pub struct Conf {
    /// `[global] shards`.
    pub shards: u32,
    /// `[global] maxconn`.
    pub maxconn: u32,
    /// Extra lines of `[global]`.
    pub global: Vec<String>,
    /// Extra lines of `[defaults]`.
    pub defaults: Vec<String>,
    /// Lines of `[defaults.timeouts]`.
    pub timeouts: Vec<String>,
    /// Extra lines of `[frontend.fe]`.
    pub frontend: Vec<String>,
    /// Extra lines of `[backend.be]`.
    pub backend: Vec<String>,
    /// Servers of `be`: name, address, extra lines.
    pub servers: Vec<(String, SocketAddr, Vec<String>)>,
    /// `[defaults] mode`: `"tcp"` (default) or `"http"` (see [`Conf::http`]).
    pub mode: String,
    /// `[frontend.fe] default_backend`: `Some("be")` by default; `None` leaves it out
    /// (http mode: a request no rule routes gets a 404).
    pub default_backend: Option<String>,
    /// Lines of `[frontend.fe.acl]` (`name = "fetch pattern"`).
    pub acls: Vec<String>,
    /// Raw TOML appended after everything else (extra tables: `[[frontend.fe.http_request]]`,
    /// `[[frontend.fe.use_backend]]`, more backends...).
    pub tail: Vec<String>,
}

impl Default for Conf {
    fn default() -> Self {
        Conf::new()
    }
}

impl Conf {
    /// One shard, maxconn 4096, no servers yet.
    pub fn new() -> Conf {
        Conf {
            shards: 1,
            maxconn: 4096,
            global: Vec::new(),
            defaults: Vec::new(),
            timeouts: Vec::new(),
            frontend: Vec::new(),
            backend: Vec::new(),
            servers: Vec::new(),
            mode: "tcp".to_string(),
            default_backend: Some("be".to_string()),
            acls: Vec::new(),
            tail: Vec::new(),
        }
    }
    /// Set `[global] shards`.
    pub fn shards(mut self, n: u32) -> Conf {
        self.shards = n;
        self
    }
    /// Add a line to `[global]`.
    pub fn global(mut self, line: &str) -> Conf {
        self.global.push(line.to_string());
        self
    }
    /// Add a line to `[defaults]`.
    pub fn defaults(mut self, line: &str) -> Conf {
        self.defaults.push(line.to_string());
        self
    }
    /// Add a line to `[defaults.timeouts]`.
    pub fn timeout(mut self, line: &str) -> Conf {
        self.timeouts.push(line.to_string());
        self
    }
    /// Add a line to `[frontend.fe]`.
    pub fn frontend(mut self, line: &str) -> Conf {
        self.frontend.push(line.to_string());
        self
    }
    /// Add a line to `[backend.be]`.
    pub fn backend(mut self, line: &str) -> Conf {
        self.backend.push(line.to_string());
        self
    }
    /// Add a server with default settings.
    pub fn server(self, name: &str, addr: SocketAddr) -> Conf {
        self.server_with(name, addr, &[])
    }
    /// Add a server with extra lines (e.g. `"weight = 3"`, `"backup = true"`).
    pub fn server_with(mut self, name: &str, addr: SocketAddr, extra: &[&str]) -> Conf {
        self.servers.push((
            name.to_string(),
            addr,
            extra.iter().map(|s| s.to_string()).collect(),
        ));
        self
    }
    /// Remove the server called `name` (for "what if this server were gone" runs).
    pub fn without_server(mut self, name: &str) -> Conf {
        self.servers.retain(|(n, _, _)| n != name);
        self
    }
    /// Add an extra line to the server called `name`.
    pub fn server_line(mut self, name: &str, line: &str) -> Conf {
        for (n, _, extra) in self.servers.iter_mut() {
            if n == name {
                extra.push(line.to_string());
            }
        }
        self
    }

    /// The TOML text, with `fe` bound to `bind`.
    pub fn render(&self, bind: SocketAddr) -> String {
        let mut t = String::new();
        t += &format!(
            "[global]\nshards = {}\nmaxconn = {}\n",
            self.shards, self.maxconn
        );
        for l in &self.global {
            t += &format!("{l}\n");
        }
        t += &format!("\n[defaults]\nmode = \"{}\"\n", self.mode);
        for l in &self.defaults {
            t += &format!("{l}\n");
        }
        if !self.timeouts.is_empty() {
            t += "\n[defaults.timeouts]\n";
            for l in &self.timeouts {
                t += &format!("{l}\n");
            }
        }
        t += &format!("\n[frontend.fe]\nbind = [\"{bind}\"]\n");
        if let Some(be) = &self.default_backend {
            t += &format!("default_backend = \"{be}\"\n");
        }
        for l in &self.frontend {
            t += &format!("{l}\n");
        }
        if !self.acls.is_empty() {
            t += "\n[frontend.fe.acl]\n";
            for l in &self.acls {
                t += &format!("{l}\n");
            }
        }
        t += "\n[backend.be]\n";
        for l in &self.backend {
            t += &format!("{l}\n");
        }
        for (name, addr, extra) in &self.servers {
            t += &format!("\n[[backend.be.server]]\nname = \"{name}\"\naddress = \"{addr}\"\n");
            for l in extra {
                t += &format!("{l}\n");
            }
        }
        for l in &self.tail {
            t += &format!("{l}\n");
        }
        t
    }

    /// Start halb with this config on a fresh address and wait until it is ready.
    pub fn start(&self) -> Halb {
        let addr = free_addr();
        Halb::start(&self.render(addr), addr)
    }
}

/// A private temporary directory, removed on drop.
pub struct TempDir {
    /// Its path.
    pub path: PathBuf,
}

impl TempDir {
    /// Create a fresh directory under the system temp dir.
    pub fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("halb-l4-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Output lines of a child process, filled by reader threads.
#[derive(Default)]
struct Output {
    lines: Mutex<Vec<String>>,
    cond: Condvar,
}

/// Remove ANSI escape sequences (`ESC [ ... final`), in case the log is colored.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn pump(reader: impl Read + Send + 'static, out: Arc<Output>) -> JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(reader).split(b'\n') {
            let Ok(line) = line else { break };
            let line = strip_ansi(&String::from_utf8_lossy(&line));
            out.lines.lock().unwrap().push(line);
            out.cond.notify_all();
        }
    })
}

/// One `halb::access` log line, split into its `key=value` fields.
#[derive(Clone, Debug)]
pub struct AccessLog {
    /// The whole line (ANSI codes removed).
    pub line: String,
    /// Its `key=value` fields (surrounding quotes removed from values).
    pub fields: HashMap<String, String>,
}

impl AccessLog {
    /// Parse a line if it is an access-log line.
    pub fn parse(line: &str) -> Option<AccessLog> {
        if !line.contains("halb::access") {
            return None;
        }
        let mut fields = HashMap::new();
        for tok in line.split_whitespace() {
            if let Some((k, v)) = tok.split_once('=') {
                fields.insert(k.to_string(), v.trim_matches('"').to_string());
            }
        }
        Some(AccessLog {
            line: line.to_string(),
            fields,
        })
    }
    /// A field's value; panics (showing the line) when it is missing.
    pub fn get(&self, key: &str) -> &str {
        match self.fields.get(key) {
            Some(v) => v,
            None => panic!("access log line has no `{key}=`: {}", self.line),
        }
    }
    /// A numeric field's value.
    pub fn num(&self, key: &str) -> u64 {
        let v = self.get(key);
        v.parse()
            .unwrap_or_else(|_| panic!("`{key}={v}` is not a number in: {}", self.line))
    }
}

/// A running `halb run -c FILE`. Killed (SIGKILL) on drop if still running.
pub struct Halb {
    child: Child,
    /// The frontend's listen address.
    pub addr: SocketAddr,
    /// The config file it runs.
    pub config_path: PathBuf,
    /// The config text.
    pub config: String,
    output: Arc<Output>,
    _dir: TempDir,
}

impl Halb {
    /// Write `config` to a temp file and start `halb run -c` on it, output piped.
    fn spawn(config: &str) -> (TempDir, PathBuf, Child) {
        Halb::spawn_with_env(config, &[])
    }

    fn spawn_with_env(config: &str, env: &[(&str, &str)]) -> (TempDir, PathBuf, Child) {
        let dir = TempDir::new();
        let config_path = dir.path.join("halb.toml");
        fs::write(&config_path, config).expect("write config");
        let child = Command::new(env!("CARGO_BIN_EXE_halb"))
            .arg("run")
            .arg("-c")
            .arg(&config_path)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn halb");
        (dir, config_path, child)
    }

    /// Write `config` to a temp file, run halb on it and wait for `halb: ready` (bounded).
    /// `addr` is the frontend address the config binds.
    pub fn start(config: &str, addr: SocketAddr) -> Halb {
        Halb::start_with_env(config, addr, &[])
    }

    /// [`Halb::start`] with extra environment variables (e.g. `HALB_LOG`).
    pub fn start_with_env(config: &str, addr: SocketAddr, env: &[(&str, &str)]) -> Halb {
        let (dir, config_path, mut child) = Halb::spawn_with_env(config, env);
        let output = Arc::new(Output::default());
        pump(child.stdout.take().unwrap(), output.clone());
        pump(child.stderr.take().unwrap(), output.clone());
        let mut halb = Halb {
            child,
            addr,
            config_path,
            config: config.to_string(),
            output,
            _dir: dir,
        };
        halb.wait_ready();
        halb
    }

    /// Run `halb run` on `config` expecting it to exit by itself within `timeout` (a startup
    /// failure); returns its exit status and all its output. Panics (killing it) if it is
    /// still running then.
    pub fn run_to_exit(config: &str, timeout: Duration) -> (ExitStatus, String) {
        let (_dir, _, mut child) = Halb::spawn(config);
        let output = Arc::new(Output::default());
        let pumps = [
            pump(child.stdout.take().unwrap(), output.clone()),
            pump(child.stderr.take().unwrap(), output.clone()),
        ];
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let text = output.lines.lock().unwrap().join("\n");
                panic!("halb still running after {timeout:?}; output:\n{text}\nconfig:\n{config}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        for p in pumps {
            let _ = p.join();
        }
        let text = output.lines.lock().unwrap().join("\n");
        (status, text)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut lines = self.output.lines.lock().unwrap();
        loop {
            if lines.iter().any(|l| l.contains("halb: ready")) {
                return;
            }
            drop(lines);
            if let Ok(Some(status)) = self.child.try_wait() {
                thread::sleep(Duration::from_millis(100)); // let the pumps finish
                panic!(
                    "halb exited ({status}) before `halb: ready`\n--- config ---\n{}\n--- output ---\n{}",
                    self.config,
                    self.output_text()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "halb did not print `halb: ready` within {START_TIMEOUT:?}\n--- config ---\n{}\n--- output ---\n{}",
                    self.config,
                    self.output_text()
                );
            }
            lines = self.output.lines.lock().unwrap();
            lines = self
                .output
                .cond
                .wait_timeout(lines, Duration::from_millis(50))
                .unwrap()
                .0;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every output line so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.lines.lock().unwrap().clone()
    }

    /// All output so far as one string.
    pub fn output_text(&self) -> String {
        self.lines().join("\n")
    }

    /// The access-log lines so far.
    pub fn access_logs(&self) -> Vec<AccessLog> {
        self.lines()
            .iter()
            .filter_map(|l| AccessLog::parse(l))
            .collect()
    }

    /// Wait (bounded) until at least `n` access-log lines were printed; return them all.
    pub fn wait_access_logs(&self, n: usize, timeout: Duration) -> Vec<AccessLog> {
        let deadline = Instant::now() + timeout;
        loop {
            let logs = self.access_logs();
            if logs.len() >= n {
                return logs;
            }
            if Instant::now() > deadline {
                panic!(
                    "expected {n} access log lines within {timeout:?}, got {}\n--- output ---\n{}",
                    logs.len(),
                    self.output_text()
                );
            }
            let lines = self.output.lines.lock().unwrap();
            let _ = self
                .output
                .cond
                .wait_timeout(lines, Duration::from_millis(50))
                .unwrap();
        }
    }

    /// Wait (bounded) for an access-log line matching `pred` and return it.
    pub fn wait_access_log(&self, pred: impl Fn(&AccessLog) -> bool) -> AccessLog {
        let deadline = Instant::now() + LOG_TIMEOUT;
        loop {
            if let Some(l) = self.access_logs().into_iter().find(&pred) {
                return l;
            }
            if Instant::now() > deadline {
                panic!(
                    "no matching access log line within {LOG_TIMEOUT:?}\n--- output ---\n{}",
                    self.output_text()
                );
            }
            let lines = self.output.lines.lock().unwrap();
            let _ = self
                .output
                .cond
                .wait_timeout(lines, Duration::from_millis(50))
                .unwrap();
        }
    }

    /// The access-log line of the connection whose client address is `client`.
    pub fn access_log_of(&self, client: SocketAddr) -> AccessLog {
        let c = client.to_string();
        self.wait_access_log(|l| l.fields.get("client") == Some(&c))
    }

    /// Send a signal (`"TERM"`, `"INT"`, ...) with kill(1) (no `unsafe` in tests).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Wait (bounded) for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Halb {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            let lines = self.lines();
            let from = lines.len().saturating_sub(200);
            eprintln!(
                "--- halb config ({}) ---\n{}\n--- halb output (last {} lines) ---\n{}\n--- end ---",
                self.addr,
                self.config,
                lines.len() - from,
                lines[from..].join("\n")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------

/// Connection counters of a [`Backend`].
#[derive(Default, Debug)]
pub struct Stats {
    /// Connections accepted so far.
    pub accepted: AtomicUsize,
    /// Connections whose handler is still running.
    pub active: AtomicUsize,
    /// Highest `active` seen.
    pub peak: AtomicUsize,
}

/// A test server: an accept thread and one thread per connection running a handler.
/// Stops accepting on drop (handlers still running end on their own socket timeouts).
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its counters.
    pub stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

/// How long a backend connection may stay silent before its handler gives up.
pub const BACKEND_IO_TIMEOUT: Duration = Duration::from_secs(30);

impl Backend {
    /// Listen on a fresh address (backlog 4096) and run `handler` for every connection in
    /// its own thread. Accepted sockets have [`BACKEND_IO_TIMEOUT`] read/write timeouts.
    pub fn spawn<F>(handler: F) -> Backend
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let addr = SocketAddr::V4(SocketAddrV4::new(fresh_ip(), 0));
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        sock.set_reuse_address(true).unwrap();
        sock.bind(&addr.into()).unwrap();
        sock.listen(4096).unwrap();
        let listener: TcpListener = sock.into();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let (st, sp) = (stats.clone(), stop.clone());
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(s) = conn else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                st.accepted.fetch_add(1, Ordering::SeqCst);
                let now = st.active.fetch_add(1, Ordering::SeqCst) + 1;
                st.peak.fetch_max(now, Ordering::SeqCst);
                let _ = s.set_read_timeout(Some(BACKEND_IO_TIMEOUT));
                let _ = s.set_write_timeout(Some(BACKEND_IO_TIMEOUT));
                let (h, st2) = (handler.clone(), st.clone());
                let spawned = thread::Builder::new()
                    .stack_size(128 * 1024)
                    .spawn(move || {
                        h(s);
                        st2.active.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    st.active.fetch_sub(1, Ordering::SeqCst);
                }
            }
        });
        Backend {
            addr,
            stats,
            stop,
            accept: Some(accept),
        }
    }

    /// Answers every connection with `NAME\n`, then keeps it open (reading and discarding)
    /// until the peer closes.
    pub fn name(name: &str) -> Backend {
        let line = format!("{name}\n");
        Backend::spawn(move |mut s| {
            if s.write_all(line.as_bytes()).is_ok() {
                drain(&mut s);
            }
        })
    }

    /// Writes back everything it reads, until EOF.
    pub fn echo() -> Backend {
        Backend::spawn(|mut s| {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        })
    }

    /// Accepts, reads and discards, never writes a byte.
    pub fn silent() -> Backend {
        Backend::spawn(|mut s| {
            drain(&mut s);
        })
    }

    /// A scriptable server: the first line of each connection is a command.
    ///
    /// * `down N SEED` — send the first N bytes of `Pattern::new(SEED)`, then read until EOF.
    /// * `up N SEED` — read exactly N bytes, check them against `Pattern::new(SEED)` and
    ///   answer `ok\n` or `bad\n`, then read until EOF.
    /// * `stall` — read nothing for 2 s (lets buffers fill up), then read until EOF.
    pub fn commands() -> Backend {
        Backend::spawn(|mut s| {
            let Ok(cmd) = read_line(&mut s) else { return };
            let words: Vec<&str> = cmd.split_whitespace().collect();
            let num = |i: usize| {
                words
                    .get(i)
                    .and_then(|w| w.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            match words.first().copied() {
                Some("down") => {
                    if Pattern::new(num(2)).write_to(&mut s, num(1)).is_err() {
                        return;
                    }
                }
                Some("up") => {
                    let p = Pattern::new(num(2));
                    let mut v = Verifier::new(&p);
                    let mut left = num(1);
                    let mut buf = vec![0u8; 64 * 1024];
                    while left > 0 {
                        let want = left.min(buf.len() as u64) as usize;
                        match s.read(&mut buf[..want]) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                v.feed(&buf[..n]);
                                left -= n as u64;
                            }
                        }
                    }
                    let verdict: &[u8] = if v.result().first_bad.is_none() {
                        b"ok\n"
                    } else {
                        b"bad\n"
                    };
                    if s.write_all(verdict).is_err() {
                        return;
                    }
                }
                Some("stall") => thread::sleep(Duration::from_secs(2)),
                _ => return,
            }
            drain(&mut s);
        })
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.stats.accepted.load(Ordering::SeqCst)
    }

    /// Handlers still running.
    pub fn active(&self) -> usize {
        self.stats.active.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Read and discard until EOF, error or timeout; returns the byte count.
pub fn drain(s: &mut TcpStream) -> u64 {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    total
}

// ---------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------

fn set_timeouts(s: &TcpStream) {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
}

/// Connect (bounded) with [`IO_TIMEOUT`] read/write timeouts.
pub fn try_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    set_timeouts(&s);
    Ok(s)
}

/// Connect, panicking on failure.
pub fn connect(addr: SocketAddr) -> TcpStream {
    try_connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// Connect from a given source address (e.g. `127.0.0.7`), any port.
pub fn try_connect_from(src: Ipv4Addr, addr: SocketAddr) -> io::Result<TcpStream> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    sock.bind(&SocketAddr::V4(SocketAddrV4::new(src, 0)).into())?;
    sock.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    let s: TcpStream = sock.into();
    set_timeouts(&s);
    Ok(s)
}

/// Close `s` with a reset (SO_LINGER 0) instead of a FIN.
pub fn reset(s: TcpStream) {
    let sock = Socket::from(s);
    let _ = sock.set_linger(Some(Duration::ZERO));
    drop(sock);
}

/// Read one `\n`-terminated line (at most 4 KiB), without the newline.
/// A close before the newline is `UnexpectedEof`.
pub fn read_line(s: &mut TcpStream) -> io::Result<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while out.len() < 4096 {
        match s.read(&mut b)? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("closed after {:?}", String::from_utf8_lossy(&out)),
                ))
            }
            _ if b[0] == b'\n' => return Ok(String::from_utf8_lossy(&out).into_owned()),
            _ => out.push(b[0]),
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"))
}

/// Connect through the proxy and read the answering server's name.
pub fn ask(addr: SocketAddr) -> io::Result<String> {
    let mut s = try_connect(addr)?;
    read_line(&mut s)
}

/// Like [`ask`], from a given source address.
pub fn ask_from(src: Ipv4Addr, addr: SocketAddr) -> io::Result<String> {
    let mut s = try_connect_from(src, addr)?;
    read_line(&mut s)
}

/// `n` sequential [`ask`]s (each connection closed before the next), panicking on failure.
pub fn ask_many(addr: SocketAddr, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| ask(addr).unwrap_or_else(|e| panic!("connection {i} to {addr}: {e}")))
        .collect()
}

/// How many times each name occurs.
pub fn tally(names: &[String]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for n in names {
        *m.entry(n.clone()).or_insert(0) += 1;
    }
    m
}

/// How a read on a socket ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Orderly close (read returned 0).
    Eof,
    /// Connection reset / aborted.
    Reset,
    /// Nothing within the socket's read timeout: the peer kept the connection open.
    TimedOut,
    /// Data arrived (this many bytes in the first read).
    Data(usize),
    /// Any other error.
    Other(String),
}

impl End {
    /// The connection was closed (EOF or reset).
    pub fn closed(&self) -> bool {
        matches!(self, End::Eof | End::Reset)
    }
}

/// One read on `s`, classified.
pub fn read_end(s: &mut TcpStream) -> End {
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => End::Eof,
        Ok(n) => End::Data(n),
        Err(e) => match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => End::Reset,
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => End::TimedOut,
            _ => End::Other(e.to_string()),
        },
    }
}

/// Read until EOF, at most `max` bytes (more is an error).
pub fn read_to_end_bounded(s: &mut TcpStream, max: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() > max {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "too much data"));
        }
    }
}

/// Poll (bounded by `timeout`) until connecting to `addr` is refused; true if it was.
/// Connections that still succeed meanwhile are closed at once.
pub fn wait_refused(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return true,
            Ok(s) => drop(s),
            Err(_) => {}
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

// ---------------------------------------------------------------------------------------
// Deterministic byte streams
// ---------------------------------------------------------------------------------------

/// Block size of a [`Pattern`].
pub const BLOCK: usize = 64 * 1024;
const NBLOCKS: u64 = 17;

/// A deterministic pseudo-random byte stream: block `k` is one of 17 random 64 KiB blocks
/// (chosen by `k` and the seed) with `k ^ seed` stamped in its first 8 bytes, so every
/// offset has a unique, checkable content.
pub struct Pattern {
    seed: u64,
    blocks: Vec<Vec<u8>>,
}

impl Pattern {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> Pattern {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let blocks = (0..NBLOCKS)
            .map(|_| {
                let mut b = Vec::with_capacity(BLOCK);
                while b.len() < BLOCK {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b.extend_from_slice(&x.to_le_bytes());
                }
                b
            })
            .collect();
        Pattern { seed, blocks }
    }

    /// Block `k` of the stream.
    pub fn block(&self, k: u64, out: &mut [u8]) {
        let src = &self.blocks[((k.wrapping_mul(7).wrapping_add(self.seed)) % NBLOCKS) as usize];
        out[..BLOCK].copy_from_slice(src);
        out[..8].copy_from_slice(&(k ^ self.seed).to_le_bytes());
    }

    /// Write the first `len` bytes of the stream.
    pub fn write_to(&self, w: &mut impl Write, len: u64) -> io::Result<()> {
        let mut buf = vec![0u8; BLOCK];
        let mut off = 0u64;
        let mut k = 0u64;
        while off < len {
            self.block(k, &mut buf);
            let take = (len - off).min(BLOCK as u64) as usize;
            w.write_all(&buf[..take])?;
            off += take as u64;
            k += 1;
        }
        Ok(())
    }

    /// Read from `r` until EOF (at most `max` bytes) and check it against the stream.
    pub fn read_verify(&self, r: &mut impl Read, max: u64) -> io::Result<Verified> {
        let mut v = Verifier::new(self);
        let mut buf = vec![0u8; 128 * 1024];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            v.feed(&buf[..n]);
            if v.offset > max {
                break;
            }
        }
        Ok(v.result())
    }
}

/// Outcome of checking a received stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Bytes received.
    pub bytes: u64,
    /// Offset of the first byte that differs from the pattern, if any.
    pub first_bad: Option<u64>,
}

impl Verified {
    /// Exactly `len` bytes, all matching.
    pub fn is_exact(&self, len: u64) -> bool {
        self.bytes == len && self.first_bad.is_none()
    }
}

/// Incremental check of received bytes against a [`Pattern`].
pub struct Verifier<'a> {
    p: &'a Pattern,
    /// Bytes checked so far.
    pub offset: u64,
    cur_k: u64,
    cur: Vec<u8>,
    first_bad: Option<u64>,
}

impl<'a> Verifier<'a> {
    /// Start at offset 0.
    pub fn new(p: &'a Pattern) -> Verifier<'a> {
        Verifier {
            p,
            offset: 0,
            cur_k: u64::MAX,
            cur: vec![0u8; BLOCK],
            first_bad: None,
        }
    }

    /// Check the next bytes of the stream.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let k = self.offset / BLOCK as u64;
            let pos = (self.offset % BLOCK as u64) as usize;
            if k != self.cur_k {
                self.p.block(k, &mut self.cur);
                self.cur_k = k;
            }
            let take = (BLOCK - pos).min(data.len());
            if self.first_bad.is_none() && data[..take] != self.cur[pos..pos + take] {
                let i = (0..take)
                    .find(|&i| data[i] != self.cur[pos + i])
                    .unwrap_or(0);
                self.first_bad = Some(self.offset + i as u64);
            }
            self.offset += take as u64;
            data = &data[take..];
        }
    }

    /// What was seen.
    pub fn result(&self) -> Verified {
        Verified {
            bytes: self.offset,
            first_bad: self.first_bad,
        }
    }
}

/// A one-shot gate threads can wait on (bounded) until the test opens it.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }
    /// Open it for every waiter.
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cond.notify_all();
    }
    /// Wait until open or `timeout`; true if it opened.
    pub fn wait(&self, timeout: Duration) -> bool {
        let g = self.open.lock().unwrap();
        let (g, _) = self
            .cond
            .wait_timeout_while(g, timeout, |open| !*open)
            .unwrap();
        *g
    }
}

/// Shutdown the write side, ignoring "not connected" (the peer may be gone already).
pub fn shutdown_write(s: &TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
}

/// A path inside a directory, as a displayable string (for configs).
pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}
