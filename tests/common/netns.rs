//! Network-namespace side of the harness, for the VRRP tests (tests/vrrp_netns.rs).
//!
//! [`Lan`] builds one private L2 segment per test, entirely inside namespaces it creates
//! (nothing is added to the root namespace: every veth is created directly inside its
//! target namespaces):
//!
//! ```text
//!   <tag>-lb1    eth0 10.99.0.11/24 fd00:99::11/64 --veth-- v-lb1 --+
//!   <tag>-lb2    eth0 10.99.0.12/24 fd00:99::12/64 --veth-- v-lb2 --+-- br0 (in <tag>-sw,
//!   <tag>-client eth0 10.99.0.2/24  fd00:99::2/64  --veth-- v-client+   mcast_snooping 0)
//!   optional second segment: ethN1 10.98.0.11/24 ... on br1 (for track_interface tests)
//! ```
//!
//! `<tag>` is `hv{pid}x{n}`: unique per test and per process, so tests running in parallel
//! threads (and other test processes) never share a namespace; the same 10.99.0.0/24 is
//! used in every Lan since addresses in different namespaces cannot collide. Namespaces
//! left behind by a dead process (`hv{pid}x*` whose pid is gone, or ours from a reused pid)
//! are deleted before the first Lan of a process is built. IPv6 is on in the boxes, with
//! DAD off (addresses usable at once): eth0 has a link-local address and `fd00:99::N/64`
//! (N as in the IPv4 address) for the VRRPv3-over-IPv6 tests; the switch namespace has
//! IPv6 off.
//! `ip_nonlocal_bind` is left at 0 everywhere: the test responders bind 0.0.0.0 and halb
//! binds the VIP with IP_FREEBIND itself.
//!
//! Inside the namespaces:
//! * [`Lan::in_ns`] runs a closure on a thread that entered a namespace
//!   (`halb::sys::enter_network`); [`Lan::http_backend`] is a tiny HTTP/1.1 server on such a
//!   thread answering its box name (body `lb1`); [`Lan::probe`] is the client: a fresh
//!   connection to VIP:80 (IPv4 or IPv6) from the client namespace, `GET /`, the body that
//!   came back. [`Lan::script`] writes an executable shell script (notify, track_script).
//! * [`Lan::spawn`] runs a process there (`ip netns exec`), output to a log file, killed on
//!   drop; [`Lan::keepalived`] and [`Lan::halb`] start the two VRRP implementations from one
//!   [`VrrpConf`] (rendered to keepalived.conf or to halb's `[vrrp.NAME]`).
//! * [`Lan::holds`] reads `ip -br addr`, [`Lan::partition`]/[`Lan::heal_box`]/[`Lan::heal`]
//!   make a true split brain (the switch stops flooding multicast to the boxes: they no
//!   longer hear each other's adverts, the client still reaches both, links stay up so
//!   nobody goes FAULT) and heal it all at once or one box at a time, [`Lan::link_down`] for
//!   track_interface, [`Lan::capture`] runs tcpdump and [`Packets`] reads back gratuitous
//!   ARPs, VRRP adverts (with destination and TTL / hop limit when read with
//!   [`Capture::stop_verbose`]) and IPv6 neighbour advertisements.
//!
//! Cleanup: on drop (also when the test panics) every process still running in the Lan's
//! namespaces is SIGKILLed by pid, the backend threads stop, and the namespaces are deleted.
//! Every command and every wait is bounded.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, Once};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::control::ctl_json;
use super::TempDir;

/// First three octets of the main segment (eth0 of every box).
pub const NET: &str = "10.99.0";
/// First three octets of the optional second segment (eth1 of the lb boxes).
pub const NET1: &str = "10.98.0";
/// The virtual IP of the tests (VRID 51).
pub const VIP: &str = "10.99.0.100";
/// The second virtual IP (VRID 52, sync-group tests).
pub const VIP2: &str = "10.99.0.101";
/// Start of the IPv6 addresses of the main segment: box `.N` has `fd00:99::N/64` on eth0.
pub const NET6: &str = "fd00:99:";
/// The IPv6 virtual IP of the VRRPv3-over-IPv6 tests.
pub const VIP6: &str = "fd00:99::100";
/// Name of the client box.
pub const CLIENT: &str = "client";
/// Name of the switch namespace (holds br0, br1).
pub const SWITCH: &str = "sw";

/// Bound of every helper command (`ip`, `sysctl`, `kill`, `tcpdump -r`...).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound for a process to come up (keepalived writing its pid files, halb printing
/// `halb: ready`, tcpdump listening) and for the first master to take the VIP.
pub const START_BOUND: Duration = Duration::from_secs(15);
/// Slack added to the VRRP master-down interval in [`failover_bound`]: gratuitous ARP
/// processing, the prober's poll interval, process scheduling on a loaded 2-core CI box.
/// Functional, not a speed claim: a box that never takes over, or takes several master-down
/// intervals, still fails.
pub const FAILOVER_SLACK: Duration = Duration::from_secs(2);
/// Connect timeout of one probe (the LAN is local: a SYN that is not answered in this
/// time went to a box that does not hold the VIP).
pub const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Read/write timeout of one probe.
pub const PROBE_IO_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between two probes in [`Lan::wait_answer`] and between polls in [`wait_until`].
pub const POLL: Duration = Duration::from_millis(20);

/// The longest a VRRP takeover may take: the master-down interval, 3 × advert_int + skew
/// (skew = (256 − priority) / 256 × advert_int < advert_int), plus [`FAILOVER_SLACK`].
pub fn failover_bound(advert_int: Duration) -> Duration {
    advert_int * 4 + FAILOVER_SLACK
}

// ---------------------------------------------------------------------------------------
// Preconditions
// ---------------------------------------------------------------------------------------

/// Whether this process runs as root (effective uid 0, from /proc/self/status).
pub fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}

/// True (after saying so on stderr) when the test must be skipped: not root. Namespaces,
/// raw sockets and bridges need root; CI runs the tests as root.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!(
        "SKIP {test}: needs root (network namespaces, raw VRRP sockets); run as root like CI does"
    );
    true
}

/// Panics with how to install it when `tool` is not on PATH (CI installs it, so a missing
/// tool is a failure, not a skip).
pub fn require_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin", "/usr/bin"]
            .iter()
            .any(|d| Path::new(d).join(tool).is_file());
    assert!(
        found,
        "`{tool}` is not installed: apt-get install {package} (tests/run-all.sh installs it)"
    );
}

// ---------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------

/// Run `cmd` to completion with stdout/stderr captured, bounded by `timeout` (killed and
/// panicking after it).
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
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
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown} still running after {timeout:?}");
        }
        thread::sleep(Duration::from_millis(2));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// Run a command (bounded); its stdout, panicking with stderr when it fails.
pub fn cmd(args: &[&str]) -> String {
    let out = run_bounded(Command::new(args[0]).args(&args[1..]), CMD_TIMEOUT);
    assert!(
        out.status.success(),
        "`{}` failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a command (bounded), ignoring how it ends.
pub fn cmd_quiet(args: &[&str]) -> Output {
    run_bounded(Command::new(args[0]).args(&args[1..]), CMD_TIMEOUT)
}

/// Send `sig` (`"TERM"`, `"KILL"`, `"STOP"`...) to `pid` with kill(1) (no `unsafe` in
/// tests); false if it failed (the process is gone).
pub fn signal(pid: u32, sig: &str) -> bool {
    cmd_quiet(&["kill", &format!("-{sig}"), &pid.to_string()])
        .status
        .success()
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // state is the field after the parenthesised command name
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Wall-clock seconds since the epoch (the clock tcpdump `-tt` timestamps use).
pub fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// ---------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------

/// Poll `cond` every [`POLL`] until it holds; how long that took. Panics naming `what`
/// after `bound`.
pub fn wait_until(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        if start.elapsed() >= bound {
            panic!("timed out after {bound:?} waiting until {what}");
        }
        thread::sleep(POLL);
    }
}

/// Like [`wait_until`] but returns false instead of panicking.
pub fn try_wait_until(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= bound {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// Check `cond` every [`POLL`] for `window`; panics naming `what` the first time it is
/// false (for "nothing flaps": the backup never claims the VIP, nopreempt holds...).
pub fn stays(what: &str, window: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        assert!(
            cond(),
            "expected {what} for {window:?}, but it stopped after {:?}",
            start.elapsed()
        );
        if start.elapsed() >= window {
            return;
        }
        thread::sleep(POLL);
    }
}

// ---------------------------------------------------------------------------------------
// The LAN
// ---------------------------------------------------------------------------------------

static NEXT_LAN: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// Delete namespaces left by an earlier run: `hv{pid}x*` whose pid is gone, or is ours
/// (pid reuse). Processes still inside them (all started by such a run) are SIGKILLed.
fn sweep_stale() {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("hv") else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('x') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid == me || !Path::new(&format!("/proc/{pid}")).exists() {
            delete_ns(&name);
        }
    }
}

/// Pids of the processes whose network namespace is `full` (never our own).
fn ns_pids(full: &str) -> Vec<u32> {
    let out = cmd_quiet(&["ip", "netns", "pids", full]);
    let me = std::process::id();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|&p| p != me)
        .collect()
}

/// SIGKILL every process inside namespace `full`, then delete it.
fn delete_ns(full: &str) {
    if !Path::new("/run/netns").join(full).exists() {
        return;
    }
    for pid in ns_pids(full) {
        signal(pid, "KILL");
    }
    let _ = cmd_quiet(&["ip", "netns", "del", full]);
}

/// Which boxes a [`Lan`] has.
#[derive(Clone, Debug)]
pub struct LanOpts {
    /// Load-balancer boxes, in order: the i-th gets `.11 + i` on each segment.
    pub lbs: Vec<String>,
    /// A client box (`.2`) to probe from.
    pub client: bool,
    /// A second segment: `eth1` in every lb box on bridge `br1` (10.98.0.0/24).
    pub eth1: bool,
}

/// One private L2 segment in namespaces of its own (see the module docs). Dropping it
/// kills everything inside and deletes the namespaces.
pub struct Lan {
    /// `hv{pid}x{n}`: prefix of this Lan's namespace names.
    pub tag: String,
    /// Private directory for configs, logs, pid files and captures.
    pub dir: TempDir,
    opts: LanOpts,
    stops: Mutex<Vec<Arc<AtomicBool>>>,
    seq: AtomicU32,
}

impl Lan {
    /// Boxes `lbs` (eth0 .11, .12, ...) and, if `client`, a client (.2) on one bridge.
    pub fn new(lbs: &[&str], client: bool) -> Lan {
        Lan::with(LanOpts {
            lbs: lbs.iter().map(|s| s.to_string()).collect(),
            client,
            eth1: false,
        })
    }

    /// Same, plus a second segment: eth1 in each lb box (10.98.0.11, ...) on bridge br1.
    pub fn with_eth1(lbs: &[&str], client: bool) -> Lan {
        Lan::with(LanOpts {
            lbs: lbs.iter().map(|s| s.to_string()).collect(),
            client,
            eth1: true,
        })
    }

    /// Build the topology described by `opts` (bounded; cleaned up if it fails half-way).
    pub fn with(opts: LanOpts) -> Lan {
        SWEEP.call_once(sweep_stale);
        let n = NEXT_LAN.fetch_add(1, Ordering::SeqCst);
        let tag = format!("hv{}x{n}", std::process::id());
        let lan = Lan {
            tag,
            dir: TempDir::new(),
            opts,
            stops: Mutex::new(Vec::new()),
            seq: AtomicU32::new(0),
        };
        lan.build(); // a panic here drops `lan`, which deletes what was made
        lan
    }

    fn build(&self) {
        let sw = self.ns(SWITCH);
        self.mkns(SWITCH, true);
        let mut bridges = vec!["br0"];
        if self.opts.eth1 {
            bridges.push("br1");
        }
        for br in &bridges {
            cmd(&[
                "ip",
                "-n",
                &sw,
                "link",
                "add",
                br,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            ]);
            cmd(&["ip", "-n", &sw, "link", "set", br, "up"]);
        }
        let boxes = self.boxes();
        for b in &boxes {
            self.mkns(b, false);
            let ip6 = self.ip6(b);
            self.attach(b, "eth0", &format!("v-{b}"), "br0", &self.ip(b), Some(&ip6));
        }
        if self.opts.eth1 {
            for b in &self.opts.lbs {
                let ip1 = self.ip1(b);
                self.attach(b, "eth1", &format!("w-{b}"), "br1", &ip1, None);
            }
        }
        // L2 reachability (carrier comes up asynchronously): from the first other box, a
        // TCP connect to each lb's port 9 must be refused (a RST proves ARP and the bridge
        // work; no ping needed), bounded.
        let from = if self.opts.client {
            CLIENT.to_string()
        } else {
            self.opts.lbs.first().cloned().unwrap_or_default()
        };
        for b in &self.opts.lbs {
            if *b == from {
                continue;
            }
            let addr: SocketAddr = format!("{}:9", self.ip(b)).parse().unwrap();
            let ok = try_wait_until(Duration::from_secs(10), || {
                self.in_ns(&from, move || {
                    matches!(
                        TcpStream::connect_timeout(&addr, Duration::from_millis(200)),
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused
                    )
                })
            });
            assert!(ok, "{from} cannot reach {b} ({addr}) on the test LAN");
        }
    }

    fn mkns(&self, short: &str, switch: bool) {
        let full = self.ns(short);
        cmd(&["ip", "netns", "add", &full]);
        cmd(&["ip", "-n", &full, "link", "set", "lo", "up"]);
        let sysctls: &[&str] = if switch {
            // the switch only forwards frames: no addresses, no ND/MLD noise of its own
            &[
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]
        } else {
            // IPv6 on (a v6 test is possible), but no duplicate address detection, so
            // addresses are usable at once; set before the veths exist so they inherit it
            &[
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ]
        };
        let mut args = vec!["ip", "netns", "exec", &full, "sysctl", "-qw"];
        args.extend_from_slice(sysctls);
        cmd(&args);
    }

    /// A veth `dev` in box `short` with peer `port` in the switch, enslaved to `bridge`;
    /// `addr`/24 and, if given, `addr6`/64 on it.
    fn attach(
        &self,
        short: &str,
        dev: &str,
        port: &str,
        bridge: &str,
        addr: &str,
        addr6: Option<&str>,
    ) {
        let full = self.ns(short);
        let sw = self.ns(SWITCH);
        cmd(&[
            "ip", "link", "add", dev, "netns", &full, "type", "veth", "peer", "name", port,
            "netns", &sw,
        ]);
        cmd(&["ip", "-n", &sw, "link", "set", port, "master", bridge, "up"]);
        cmd(&[
            "ip",
            "-n",
            &full,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            dev,
        ]);
        if let Some(a6) = addr6 {
            cmd(&[
                "ip",
                "-n",
                &full,
                "addr",
                "add",
                &format!("{a6}/64"),
                "dev",
                dev,
                "nodad",
            ]);
        }
        cmd(&["ip", "-n", &full, "link", "set", dev, "up"]);
    }

    /// Every box (lbs, then the client), without the switch.
    pub fn boxes(&self) -> Vec<String> {
        let mut v = self.opts.lbs.clone();
        if self.opts.client {
            v.push(CLIENT.to_string());
        }
        v
    }

    /// The lb boxes.
    pub fn lbs(&self) -> Vec<String> {
        self.opts.lbs.clone()
    }

    /// Full namespace name of box `short` (`lb1`, `client`, [`SWITCH`]).
    pub fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.tag)
    }

    /// `/run/netns/<full name>` of box `short`.
    pub fn ns_path(&self, short: &str) -> PathBuf {
        Path::new("/run/netns").join(self.ns(short))
    }

    /// eth0 address of box `short` (`10.99.0.11`, ..., client `10.99.0.2`).
    pub fn ip(&self, short: &str) -> String {
        if short == CLIENT {
            return format!("{NET}.2");
        }
        let i = self
            .opts
            .lbs
            .iter()
            .position(|b| b == short)
            .unwrap_or_else(|| panic!("no box {short} in this Lan"));
        format!("{NET}.{}", 11 + i)
    }

    /// IPv6 eth0 address of box `short` (`fd00:99::11`, ..., client `fd00:99::2`).
    pub fn ip6(&self, short: &str) -> String {
        let v4 = self.ip(short);
        let last = v4.rsplit('.').next().unwrap();
        format!("{NET6}:{last}")
    }

    /// The link-local (fe80::/64) address of `dev` in box `short`, without prefix length.
    pub fn link_local(&self, short: &str, dev: &str) -> String {
        let full = self.ns(short);
        let out = cmd(&[
            "ip", "-n", &full, "-6", "-br", "addr", "show", "dev", dev, "scope", "link",
        ]);
        out.split_whitespace()
            .find(|t| t.starts_with("fe80:"))
            .and_then(|t| t.split('/').next())
            .unwrap_or_else(|| panic!("no link-local address on {dev} in {short}: `{out}`"))
            .to_string()
    }

    /// eth1 address of lb box `short` (`10.98.0.11`, ...).
    pub fn ip1(&self, short: &str) -> String {
        let i = self.opts.lbs.iter().position(|b| b == short).unwrap();
        format!("{NET1}.{}", 11 + i)
    }

    /// A fresh path in this Lan's directory (`{stem}-{n}.{ext}`).
    pub fn file(&self, stem: &str, ext: &str) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        self.dir.path.join(format!("{stem}-{n}.{ext}"))
    }

    /// An executable `/bin/sh` script `body` (without the `#!` line) at a fresh absolute
    /// path in this Lan's directory (for `notify*` and `track_script`).
    pub fn script(&self, stem: &str, body: &str) -> PathBuf {
        let path = self.file(stem, "sh");
        fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod script");
        assert!(path.is_absolute(), "{}", path.display());
        path
    }

    // ---- commands and processes ------------------------------------------------------

    /// Run `args` inside box `short` (`ip netns exec`), bounded; its output (not checked).
    pub fn exec(&self, short: &str, args: &[&str]) -> Output {
        let full = self.ns(short);
        run_bounded(
            Command::new("ip").args(["netns", "exec", &full]).args(args),
            CMD_TIMEOUT,
        )
    }

    /// Start `args` inside box `short` (`ip netns exec`, which execs it: the child's pid is
    /// the program's), stdout and stderr to a log file in the Lan's directory. Killed when
    /// the [`Proc`] or the Lan is dropped.
    pub fn spawn(&self, short: &str, label: &str, args: &[&str]) -> Proc {
        let log = self.file(&format!("{short}-{label}"), "log");
        let f = File::create(&log).expect("create log file");
        let f2 = f.try_clone().unwrap();
        let full = self.ns(short);
        let child = Command::new("ip")
            .args(["netns", "exec", &full])
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {args:?} in {full}: {e}"));
        Proc {
            child,
            label: format!("{short}/{label}"),
            log,
        }
    }

    /// Pids of the processes running in box `short` (not this test process).
    pub fn pids_in(&self, short: &str) -> Vec<u32> {
        ns_pids(&self.ns(short))
    }

    /// Run `f` on a thread that entered box `short`'s namespace (its sockets live there);
    /// its result.
    pub fn in_ns<T: Send + 'static>(
        &self,
        short: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let path = self.ns_path(short);
        thread::spawn(move || {
            halb::sys::enter_network(&path)
                .unwrap_or_else(|e| panic!("enter {}: {e}", path.display()));
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }

    /// Like [`Lan::in_ns`] without waiting: the thread's handle.
    pub fn spawn_in_ns<T: Send + 'static>(
        &self,
        short: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = self.ns_path(short);
        thread::spawn(move || {
            halb::sys::enter_network(&path)
                .unwrap_or_else(|e| panic!("enter {}: {e}", path.display()));
            f()
        })
    }

    // ---- state of the LAN --------------------------------------------------------------

    /// Whether box `short` has `ip` configured on eth0 (`ip -br addr show dev eth0`).
    pub fn holds(&self, short: &str, ip: &str) -> bool {
        self.holds_on(short, "eth0", ip)
    }

    /// Whether box `short` has `ip` configured on `dev`.
    pub fn holds_on(&self, short: &str, dev: &str, ip: &str) -> bool {
        let full = self.ns(short);
        let out = cmd_quiet(&["ip", "-n", &full, "-br", "addr", "show", "dev", dev]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .any(|t| t.split('/').next() == Some(ip))
    }

    /// Wait (up to `bound`) until box `who` alone holds `ip`.
    pub fn wait_alone(&self, ip: &str, who: &str, bound: Duration) {
        wait_until(&format!("{who} alone holds {ip}"), bound, || {
            self.holders(ip) == [who]
        });
    }

    /// The lb boxes that have `ip` on eth0, in order.
    pub fn holders(&self, ip: &str) -> Vec<String> {
        self.opts
            .lbs
            .iter()
            .filter(|b| self.holds(b, ip))
            .cloned()
            .collect()
    }

    /// MAC address of `dev` in box `short` (lower case, `aa:bb:...`).
    pub fn mac(&self, short: &str, dev: &str) -> String {
        let full = self.ns(short);
        let out = cmd(&["ip", "-n", &full, "-br", "link", "show", "dev", dev]);
        out.split_whitespace()
            .nth(2)
            .unwrap_or_else(|| panic!("no MAC in `{out}`"))
            .to_lowercase()
    }

    /// Set `dev` in box `short` administratively down (its own side: the box sees its
    /// interface go down, as `track_interface` expects).
    pub fn link_down(&self, short: &str, dev: &str) {
        cmd(&["ip", "-n", &self.ns(short), "link", "set", dev, "down"]);
    }

    /// Undo [`Lan::link_down`].
    pub fn link_up(&self, short: &str, dev: &str) {
        cmd(&["ip", "-n", &self.ns(short), "link", "set", dev, "up"]);
    }

    /// Unplug box `short`'s eth0 cable at the switch (the box sees NO-CARRIER).
    pub fn unplug(&self, short: &str) {
        cmd(&[
            "ip",
            "-n",
            &self.ns(SWITCH),
            "link",
            "set",
            &format!("v-{short}"),
            "down",
        ]);
    }

    /// Undo [`Lan::unplug`].
    pub fn plug(&self, short: &str) {
        cmd(&[
            "ip",
            "-n",
            &self.ns(SWITCH),
            "link",
            "set",
            &format!("v-{short}"),
            "up",
        ]);
    }

    /// Split brain for multicast VRRP: the listed boxes stop receiving multicast (the
    /// switch no longer floods multicast out of their ports, `mcast_flood off`), so they
    /// no longer hear each other's adverts, while their own adverts still reach everyone
    /// else, broadcast (ARP) and unicast still flow, the client still reaches every box and
    /// every link stays up (nobody goes FAULT). With two lbs, `partition(&["lb1", "lb2"])`
    /// makes both masters. Unicast VRRP (`unicast_peers`) is not affected: use
    /// [`Lan::isolate`] for that.
    pub fn partition(&self, shorts: &[&str]) {
        for s in shorts {
            self.port_flag(s, "mcast_flood", false);
        }
    }

    /// Let box `short` hear multicast (the others' adverts) again, while boxes still
    /// partitioned do not hear it: a staged heal, so the survivor of a split brain
    /// provably receives the loser's lower-priority adverts before the loser steps down.
    pub fn heal_box(&self, short: &str) {
        self.port_flag(short, "mcast_flood", true);
    }

    /// Full L2 separation of the listed boxes from each other (bridge port isolation: no
    /// frame at all, unicast included, goes from one isolated port to another); the client
    /// and unlisted boxes still reach them.
    pub fn isolate(&self, shorts: &[&str]) {
        for s in shorts {
            self.port_flag(s, "isolated", true);
        }
    }

    /// Undo every [`Lan::partition`] and [`Lan::isolate`].
    pub fn heal(&self) {
        for b in self.boxes() {
            self.port_flag(&b, "mcast_flood", true);
            self.port_flag(&b, "isolated", false);
        }
    }

    fn port_flag(&self, short: &str, flag: &str, on: bool) {
        cmd(&[
            "ip",
            "-n",
            &self.ns(SWITCH),
            "link",
            "set",
            "dev",
            &format!("v-{short}"),
            "type",
            "bridge_slave",
            flag,
            if on { "on" } else { "off" },
        ]);
    }

    /// Start tcpdump in box `short` (or [`SWITCH`]) on `iface` with a BPF `filter`
    /// (e.g. `"arp or ip proto 112"`), writing a pcap in the Lan's directory; returns once
    /// it listens. [`Capture::stop`] reads the packets back.
    pub fn capture(&self, short: &str, iface: &str, filter: &str) -> Capture {
        require_tool("tcpdump", "tcpdump");
        let file = self.file(&format!("{short}-{iface}"), "pcap");
        let f = file.to_str().unwrap().to_string();
        // --immediate-mode: libpcap hands every packet over at once (otherwise packets
        // wait in the kernel ring for up to a block timeout and the last ones are lost
        // when tcpdump is stopped); -U: write every packet at once; -Z root: write the
        // file as root (the Lan's directory is root's); -s 256: headers are enough
        let args = [
            "tcpdump",
            "-i",
            iface,
            "-n",
            "--immediate-mode",
            "-U",
            "-s",
            "256",
            "-Z",
            "root",
            "-w",
            &f,
            filter,
        ];
        let proc = self.spawn(short, "tcpdump", &args);
        let ok = try_wait_until(START_BOUND, || proc.log_text().contains("listening on"));
        assert!(ok, "tcpdump did not start: {}", proc.log_text());
        Capture { proc, file }
    }

    // ---- data plane ----------------------------------------------------------------------

    /// A tiny HTTP/1.1 server inside box `short` on `addr` (`"0.0.0.0:80"`, or
    /// `"127.0.0.1:0"` for a fresh port) answering every request `200` with body `name`
    /// (keep-alive honoured). Stops on [`HttpBackend::stop`], drop, or when the Lan drops.
    pub fn http_backend(&self, short: &str, name: &str, addr: &str) -> HttpBackend {
        let addr: SocketAddr = addr.parse().expect("backend address");
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        let (st, sv, name) = (stop.clone(), served.clone(), name.to_string());
        let accept = self.spawn_in_ns(short, move || {
            let l = match bind_reuse(addr) {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = tx.send(Ok(l.local_addr().unwrap()));
            serve_http(l, name, st, sv);
        });
        let bound = rx
            .recv_timeout(CMD_TIMEOUT)
            .expect("backend thread answers")
            .unwrap_or_else(|e| panic!("backend in {short} cannot bind {addr}: {e}"));
        self.stops.lock().unwrap().push(stop.clone());
        HttpBackend {
            addr: bound,
            stop,
            served,
            accept: Some(accept),
        }
    }

    /// One client request from the client box: a new connection to `ip:80`, `GET /`,
    /// `Connection: close`; the body (trimmed) of a 200, or what went wrong.
    pub fn probe_detail(&self, ip: &str) -> Result<String, String> {
        let ip: IpAddr = ip.parse().expect("probe address");
        let addr = SocketAddr::new(ip, 80);
        self.in_ns(CLIENT, move || http_get(addr))
    }

    /// [`Lan::probe_detail`], `None` on any failure: which box answered.
    pub fn probe(&self, ip: &str) -> Option<String> {
        self.probe_detail(ip).ok()
    }

    /// Probe `ip` every [`POLL`] until `who` answers; how long that took. Panics after
    /// `bound` with the last probe's outcome.
    pub fn wait_answer(&self, ip: &str, who: &str, bound: Duration) -> Duration {
        let start = Instant::now();
        let mut last: Result<String, String>;
        loop {
            last = match self.probe_detail(ip) {
                Ok(w) if w == who => return start.elapsed(),
                other => other,
            };
            if start.elapsed() >= bound {
                panic!(
                    "client not answered by {who} on {ip}:80 within {bound:?}; last probe: {last:?}; VIP holders: {:?}",
                    self.holders(ip)
                );
            }
            thread::sleep(POLL);
        }
    }

    // ---- VRRP implementations ------------------------------------------------------------

    /// Start Keepalived (VRRP only) in box `short` with `instances` (and the sync groups
    /// they name), foreground, logging to a file; private pid files (`-p -r -c`) so several
    /// run at once. Returns once its VRRP child is up.
    pub fn keepalived(&self, short: &str, instances: &[VrrpConf]) -> Keepalived {
        require_tool("keepalived", "keepalived");
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let base = self.dir.path.join(format!("keepalived-{short}-{n}"));
        let conf = base.with_extension("conf");
        let text = render_keepalived(short, instances);
        fs::write(&conf, &text).expect("write keepalived.conf");
        let pid_main = base.with_extension("pid");
        let pid_vrrp = base.with_extension("vrrp.pid");
        let pid_chk = base.with_extension("checkers.pid");
        let s = |p: &Path| p.to_str().unwrap().to_string();
        // -n foreground, -l log to stderr, -D detailed, -P VRRP only
        let proc = self.spawn(
            short,
            "keepalived",
            &[
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-P",
                "-f",
                &s(&conf),
                "-p",
                &s(&pid_main),
                "-r",
                &s(&pid_vrrp),
                "-c",
                &s(&pid_chk),
            ],
        );
        let mut k = Keepalived {
            proc,
            short: short.to_string(),
            config: text,
            pid_vrrp,
        };
        let ok = try_wait_until(START_BOUND, || {
            k.vrrp_pid().is_some_and(alive) || !k.proc.running()
        });
        assert!(
            ok && k.proc.running(),
            "keepalived did not start in {short}\n--- config ---\n{}\n--- log ---\n{}",
            k.config,
            k.proc.log_text()
        );
        k
    }

    /// Start halb in box `short` with `conf` (admin socket in the Lan's directory) and wait
    /// for `halb: ready`.
    pub fn halb(&self, short: &str, conf: &HalbConf) -> HalbBox {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let socket = self.dir.path.join(format!("{short}-{n}.sock"));
        let config_path = self.dir.path.join(format!("halb-{short}-{n}.toml"));
        let text = conf.render(&socket);
        fs::write(&config_path, &text).expect("write halb config");
        let proc = self.spawn(
            short,
            "halb",
            &[
                env!("CARGO_BIN_EXE_halb"),
                "run",
                "-c",
                config_path.to_str().unwrap(),
            ],
        );
        let mut h = HalbBox {
            proc,
            short: short.to_string(),
            socket,
            config: text,
            config_path,
        };
        let ok = try_wait_until(START_BOUND, || {
            h.proc.log_text().contains("halb: ready") || !h.proc.running()
        });
        assert!(
            ok && h.proc.running(),
            "halb did not become ready in {short}\n--- config ---\n{}\n--- output ---\n{}",
            h.config,
            h.proc.log_text()
        );
        h
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for s in self.stops.lock().unwrap().iter() {
            s.store(true, Ordering::SeqCst);
        }
        for b in self.boxes() {
            delete_ns(&self.ns(&b));
        }
        delete_ns(&self.ns(SWITCH));
    }
}

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

/// A process started by [`Lan::spawn`]; SIGKILLed (and reaped) on drop if still running.
pub struct Proc {
    child: Child,
    /// `box/what`, for messages.
    pub label: String,
    /// Its stdout + stderr.
    pub log: PathBuf,
}

impl Proc {
    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send `sig` (`"TERM"`, `"KILL"`...); false if it is gone.
    pub fn signal(&self, sig: &str) -> bool {
        signal(self.pid(), sig)
    }

    /// Whether it still runs (reaps it when it ended).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait (bounded) for it to exit.
    pub fn wait_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if start.elapsed() >= bound {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything it printed so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines it printed.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// VRRP configuration, rendered for Keepalived and for halb
// ---------------------------------------------------------------------------------------

/// One VRRP instance, rendered as a keepalived `vrrp_instance` or a halb `[vrrp.NAME]`.
#[derive(Clone, Debug)]
pub struct VrrpConf {
    /// Instance name (`VI_51`).
    pub name: String,
    /// Keepalived's initial `state` (`MASTER`/`BACKUP`); halb has no such key.
    pub state: String,
    /// Interface the adverts go out on.
    pub interface: String,
    /// `virtual_router_id`.
    pub vrid: u8,
    /// `priority` (1..254).
    pub priority: u8,
    /// VRRP version, 2 or 3.
    pub version: u8,
    /// `advert_int` (v2: whole seconds).
    pub advert_int: Duration,
    /// `virtual_ipaddress` entries (`10.99.0.100/24`).
    pub vips: Vec<String>,
    /// VRRPv2 simple password.
    pub auth_pass: Option<String>,
    /// Unicast peers instead of multicast.
    pub unicast_peers: Vec<String>,
    /// Do not take the VIP back from a lower-priority master.
    pub nopreempt: bool,
    /// halb `preempt_delay` / keepalived `preempt_delay`.
    pub preempt_delay: Option<Duration>,
    /// halb only: `track_proxy = { weight = W }`.
    pub track_proxy: Option<i32>,
    /// `track_interface` (link down → FAULT).
    pub track_interface: Vec<String>,
    /// Sync group name.
    pub sync_group: Option<String>,
    /// halb only: `notify*` keys and their command lines (`("notify_master", "/x.sh a")`).
    pub notify: Vec<(String, String)>,
    /// halb only: `track_script` entries, as inline TOML tables.
    pub track_script: Vec<String>,
}

impl VrrpConf {
    /// Instance `VI_{vrid}` on eth0, VRRPv3, advert 100 ms, VIP [`VIP`]/24, preempt; the
    /// initial keepalived state is MASTER above priority 100, BACKUP otherwise.
    pub fn new(vrid: u8, priority: u8) -> VrrpConf {
        VrrpConf {
            name: format!("VI_{vrid}"),
            state: if priority > 100 { "MASTER" } else { "BACKUP" }.to_string(),
            interface: "eth0".to_string(),
            vrid,
            priority,
            version: 3,
            advert_int: Duration::from_millis(100),
            vips: vec![format!("{VIP}/24")],
            auth_pass: None,
            unicast_peers: Vec::new(),
            nopreempt: false,
            preempt_delay: None,
            track_proxy: None,
            track_interface: Vec::new(),
            sync_group: None,
            notify: Vec::new(),
            track_script: Vec::new(),
        }
    }
    /// Keepalived's initial state.
    pub fn state(mut self, s: &str) -> Self {
        self.state = s.to_string();
        self
    }
    /// VRRP version and advert interval.
    pub fn version(mut self, version: u8, advert_int: Duration) -> Self {
        self.version = version;
        self.advert_int = advert_int;
        self
    }
    /// VRRPv2 `auth_pass`.
    pub fn auth(mut self, pass: &str) -> Self {
        self.auth_pass = Some(pass.to_string());
        self
    }
    /// Replace the VIPs (`"10.99.0.101/24"`...).
    pub fn vips(mut self, vips: &[&str]) -> Self {
        self.vips = vips.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Set `nopreempt`.
    pub fn nopreempt(mut self) -> Self {
        self.nopreempt = true;
        self
    }
    /// Unicast peers.
    pub fn peers(mut self, peers: &[&str]) -> Self {
        self.unicast_peers = peers.iter().map(|s| s.to_string()).collect();
        self
    }
    /// `preempt_delay`.
    pub fn preempt_delay(mut self, d: Duration) -> Self {
        self.preempt_delay = Some(d);
        self
    }
    /// halb `key = "command"` for `key` one of `notify`, `notify_master`,
    /// `notify_backup`, `notify_fault`, `notify_stop`.
    pub fn notify(mut self, key: &str, command: &str) -> Self {
        self.notify.push((key.to_string(), command.to_string()));
        self
    }
    /// Add a halb `track_script` entry, an inline table
    /// (`{ script = "/x/check.sh", weight = -60 }`).
    pub fn track_script(mut self, entry: &str) -> Self {
        self.track_script.push(entry.to_string());
        self
    }
    /// halb `track_proxy = { weight = W }`.
    pub fn track_proxy(mut self, weight: i32) -> Self {
        self.track_proxy = Some(weight);
        self
    }
    /// Add a tracked interface.
    pub fn track_interface(mut self, dev: &str) -> Self {
        self.track_interface.push(dev.to_string());
        self
    }
    /// Put the instance in sync group `g`.
    pub fn sync_group(mut self, g: &str) -> Self {
        self.sync_group = Some(g.to_string());
        self
    }

    /// The first VIP without its prefix length.
    pub fn vip(&self) -> String {
        self.vips[0].split('/').next().unwrap().to_string()
    }

    /// halb's duration syntax for `d` (`"1s"`, `"100ms"`).
    fn halb_duration(d: Duration) -> String {
        let ms = d.as_millis();
        if ms % 1000 == 0 {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
    }

    /// The `[vrrp.NAME]` table for halb.
    pub fn render_halb(&self) -> String {
        let list = |v: &[String]| {
            v.iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut t = String::new();
        let _ = writeln!(t, "[vrrp.{}]", self.name);
        let _ = writeln!(t, "interface = \"{}\"", self.interface);
        let _ = writeln!(t, "virtual_router_id = {}", self.vrid);
        let _ = writeln!(t, "priority = {}", self.priority);
        let _ = writeln!(
            t,
            "advert_int = \"{}\"",
            Self::halb_duration(self.advert_int)
        );
        let _ = writeln!(t, "version = {}", self.version);
        if let Some(p) = &self.auth_pass {
            let _ = writeln!(t, "auth_pass = \"{p}\"");
        }
        let _ = writeln!(t, "virtual_ipaddress = [{}]", list(&self.vips));
        let _ = writeln!(t, "nopreempt = {}", self.nopreempt);
        if let Some(d) = self.preempt_delay {
            let _ = writeln!(t, "preempt_delay = \"{}\"", Self::halb_duration(d));
        }
        if !self.unicast_peers.is_empty() {
            let _ = writeln!(t, "unicast_peers = [{}]", list(&self.unicast_peers));
        }
        if let Some(w) = self.track_proxy {
            let _ = writeln!(t, "track_proxy = {{ weight = {w} }}");
        }
        if !self.track_interface.is_empty() {
            let _ = writeln!(t, "track_interface = [{}]", list(&self.track_interface));
        }
        if let Some(g) = &self.sync_group {
            let _ = writeln!(t, "sync_group = \"{g}\"");
        }
        for (key, command) in &self.notify {
            let _ = writeln!(t, "{key} = \"{command}\"");
        }
        if !self.track_script.is_empty() {
            let _ = writeln!(t, "track_script = [{}]", self.track_script.join(", "));
        }
        t
    }

    /// The `vrrp_instance` block for keepalived.
    pub fn render_keepalived(&self) -> String {
        assert!(
            self.track_proxy.is_none(),
            "track_proxy is halb-only (keepalived would need a vrrp_script)"
        );
        assert!(
            self.track_script.is_empty() && self.notify.is_empty(),
            "track_script and notify are only rendered for halb"
        );
        let mut t = String::new();
        let _ = writeln!(t, "vrrp_instance {} {{", self.name);
        // keepalived insists on BACKUP as the initial state with nopreempt
        let state = if self.nopreempt {
            "BACKUP"
        } else {
            &self.state
        };
        let _ = writeln!(t, "    state {state}");
        let _ = writeln!(t, "    interface {}", self.interface);
        let _ = writeln!(t, "    virtual_router_id {}", self.vrid);
        let _ = writeln!(t, "    priority {}", self.priority);
        let _ = writeln!(t, "    advert_int {}", self.advert_int.as_secs_f64());
        let _ = writeln!(t, "    version {}", self.version);
        if self.nopreempt {
            let _ = writeln!(t, "    nopreempt");
        }
        if let Some(d) = self.preempt_delay {
            let _ = writeln!(t, "    preempt_delay {}", d.as_secs_f64());
        }
        if let Some(p) = &self.auth_pass {
            let _ = writeln!(
                t,
                "    authentication {{\n        auth_type PASS\n        auth_pass {p}\n    }}"
            );
        }
        if !self.unicast_peers.is_empty() {
            let _ = writeln!(t, "    unicast_peer {{");
            for p in &self.unicast_peers {
                let _ = writeln!(t, "        {p}");
            }
            let _ = writeln!(t, "    }}");
        }
        if !self.track_interface.is_empty() {
            let _ = writeln!(t, "    track_interface {{");
            for d in &self.track_interface {
                let _ = writeln!(t, "        {d}");
            }
            let _ = writeln!(t, "    }}");
        }
        let _ = writeln!(t, "    virtual_ipaddress {{");
        for v in &self.vips {
            let _ = writeln!(t, "        {v} dev {}", self.interface);
        }
        let _ = writeln!(t, "    }}");
        let _ = writeln!(t, "}}");
        t
    }
}

/// A whole keepalived.conf for box `router_id` with `instances` and their sync groups.
pub fn render_keepalived(router_id: &str, instances: &[VrrpConf]) -> String {
    let mut t =
        format!("global_defs {{\n    router_id {router_id}\n    max_auto_priority -1\n}}\n");
    let groups: BTreeSet<&String> = instances
        .iter()
        .filter_map(|i| i.sync_group.as_ref())
        .collect();
    for g in groups {
        let members: Vec<&str> = instances
            .iter()
            .filter(|i| i.sync_group.as_ref() == Some(g))
            .map(|i| i.name.as_str())
            .collect();
        let _ = writeln!(
            t,
            "vrrp_sync_group {g} {{\n    group {{\n        {}\n    }}\n}}",
            members.join("\n        ")
        );
    }
    for i in instances {
        t += &i.render_keepalived();
    }
    t
}

/// A running Keepalived (`-P`: the main process and its VRRP child).
pub struct Keepalived {
    /// The main process.
    pub proc: Proc,
    /// Box it runs in.
    pub short: String,
    /// Its keepalived.conf.
    pub config: String,
    pid_vrrp: PathBuf,
}

impl Keepalived {
    /// Pid of the VRRP child (from its private `-r` pid file).
    pub fn vrrp_pid(&self) -> Option<u32> {
        fs::read_to_string(&self.pid_vrrp)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Orderly stop: SIGTERM to the main process (the child sends priority-0 adverts and
    /// removes the VIP); waits (bounded) for both to exit.
    pub fn stop_graceful(&mut self) {
        let child = self.vrrp_pid();
        self.proc.signal("TERM");
        assert!(
            self.proc.wait_exit(START_BOUND).is_some(),
            "keepalived in {} ignored SIGTERM",
            self.short
        );
        if let Some(c) = child {
            let _ = try_wait_until(START_BOUND, || !alive(c));
        }
    }

    /// SIGKILL the main process only. Note: keepalived's VRRP child notices its parent's
    /// death and exits *gracefully* (priority-0 advert, VIP removed); use
    /// [`Keepalived::crash`] for a failure without goodbye.
    pub fn kill9(&mut self) {
        self.proc.kill9();
    }

    /// Hard crash (as `vrrp-keepalived.sh` does): SIGSTOP the VRRP child so it cannot react,
    /// then SIGKILL the main process and the child. No goodbye advert; the VIP stays
    /// configured on the interface (stale), as after a real crash.
    pub fn crash(&mut self) {
        let child = self.vrrp_pid().filter(|&c| alive(c));
        if let Some(c) = child {
            signal(c, "STOP");
        }
        self.proc.kill9();
        if let Some(c) = child {
            signal(c, "KILL");
            let _ = try_wait_until(START_BOUND, || !alive(c));
        }
    }

    /// Everything it logged.
    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        if let Some(c) = self.vrrp_pid() {
            // only if it really is a keepalived (the pid file may be stale)
            let cmdline = fs::read(format!("/proc/{c}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("keepalived") {
                signal(c, "KILL");
            }
        }
        self.proc.kill9();
        if thread::panicking() {
            eprintln!(
                "--- keepalived in {} ---\n{}\n--- log (last 60 lines) ---\n{}\n--- end ---",
                self.short,
                self.config,
                self.proc.log_tail(60)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// halb
// ---------------------------------------------------------------------------------------

/// Health check of the local server in [`HalbConf`]: fast, so `track_proxy` reacts within
/// a second.
pub const HALB_CHECK: &str =
    "check = { type = \"http\", path = \"/\", inter = \"200ms\", rise = 1, fall = 2, timeout = \"300ms\" }";

/// A halb box: HTTP frontend `web` on the VIPs (port 80) → backend `app` with one checked
/// server (the box's own [`HttpBackend`]), plus VRRP instances.
#[derive(Clone, Debug)]
pub struct HalbConf {
    /// Frontend binds (default: port 80 of every VIP of every instance).
    pub binds: Vec<String>,
    /// The one server of backend `app`.
    pub server: SocketAddr,
    /// The backend's check line.
    pub check: String,
    /// VRRP instances.
    pub vrrp: Vec<VrrpConf>,
    /// Raw TOML appended at the end.
    pub extra: Vec<String>,
}

impl HalbConf {
    /// Frontend on VIP:80 of every instance's VIPs → `server`, with [`HALB_CHECK`].
    pub fn new(server: SocketAddr, vrrp: Vec<VrrpConf>) -> HalbConf {
        let mut binds: Vec<String> = Vec::new();
        for v in &vrrp {
            for ip in &v.vips {
                let host = ip.split('/').next().unwrap();
                let b = match host.parse::<IpAddr>() {
                    Ok(IpAddr::V6(_)) => format!("[{host}]:80"),
                    _ => format!("{host}:80"),
                };
                if !binds.contains(&b) {
                    binds.push(b);
                }
            }
        }
        HalbConf {
            binds,
            server,
            check: HALB_CHECK.to_string(),
            vrrp,
            extra: Vec::new(),
        }
    }

    /// The TOML text with the admin socket at `socket`.
    pub fn render(&self, socket: &Path) -> String {
        let binds = self
            .binds
            .iter()
            .map(|b| format!("\"{b}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut t = format!(
            "[global]\nshards = 1\nadmin_socket = \"{}\"\n\n[defaults]\nmode = \"http\"\n\n\
             [frontend.web]\nbind = [{binds}]\ndefault_backend = \"app\"\n\n\
             [backend.app]\n{}\n\n[[backend.app.server]]\nname = \"local\"\naddress = \"{}\"\ncheck = true\n",
            socket.display(),
            self.check,
            self.server
        );
        for v in &self.vrrp {
            t += "\n";
            t += &v.render_halb();
        }
        for l in &self.extra {
            t += l;
            t += "\n";
        }
        t
    }
}

/// A running halb in a box (SIGKILLed on drop; its output printed if the test panics).
pub struct HalbBox {
    /// The process (`ip netns exec` execs halb, so this is halb's pid).
    pub proc: Proc,
    /// Box it runs in.
    pub short: String,
    /// Its admin socket.
    pub socket: PathBuf,
    /// Its config text.
    pub config: String,
    /// Its config file.
    pub config_path: PathBuf,
}

impl HalbBox {
    /// `halb ctl --json show vrrp`.
    pub fn vrrp(&self) -> Value {
        ctl_json(&self.socket, &["show", "vrrp"])
    }

    /// The `show vrrp` entry of instance `name`.
    pub fn instance(&self, name: &str) -> Value {
        let v = self.vrrp();
        v["instances"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no instance {name} in `show vrrp`: {v}"))
    }

    /// State of instance `name` (`MASTER`, `BACKUP`, `FAULT`, `INIT`).
    pub fn state(&self, name: &str) -> String {
        self.instance(name)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Current (effective) priority of instance `name`.
    pub fn priority(&self, name: &str) -> i64 {
        self.instance(name)["priority"].as_i64().unwrap_or(-1)
    }

    /// Wait (bounded) until instance `name` is in `state`; how long it took.
    pub fn wait_state(&self, name: &str, state: &str, bound: Duration) -> Duration {
        let what = format!("{name} in {} is {state}", self.short);
        wait_until(&what, bound, || self.state(name) == state)
    }

    /// SIGTERM: clean stop (priority-0 advert, VIP removed).
    pub fn term(&self) {
        assert!(self.proc.signal("TERM"), "halb in {} is gone", self.short);
    }

    /// SIGKILL: no goodbye; the VIP stays configured (stale) on the interface.
    pub fn kill9(&mut self) {
        self.proc.kill9();
    }

    /// Wait (bounded) for the process to exit.
    pub fn wait_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        self.proc.wait_exit(bound)
    }

    /// Everything it printed.
    pub fn output(&self) -> String {
        self.proc.log_text()
    }
}

impl Drop for HalbBox {
    fn drop(&mut self) {
        self.proc.kill9();
        if thread::panicking() {
            eprintln!(
                "--- halb in {} ---\n{}\n--- output (last 80 lines) ---\n{}\n--- end ---",
                self.short,
                self.config,
                self.proc.log_tail(80)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Captures
// ---------------------------------------------------------------------------------------

/// A running tcpdump (see [`Lan::capture`]).
pub struct Capture {
    proc: Proc,
    /// The pcap file.
    pub file: PathBuf,
}

impl Capture {
    /// Stop tcpdump (SIGTERM, bounded) and read the pcap back (`tcpdump -r -nn -e -tt`).
    pub fn stop(self) -> Packets {
        self.stop_with(&[])
    }

    /// Same, read back with `-v` as well: the IP header is shown (TTL / hop limit, in
    /// [`Advert::hops`] and [`Na::hops`]). tcpdump then continues some packets on indented
    /// lines (the IPv4 addresses and the VRRP fields, ICMPv6 options): they are joined to
    /// their packet's line, so there is still one line per packet.
    pub fn stop_verbose(self) -> Packets {
        self.stop_with(&["-v"])
    }

    fn stop_with(mut self, extra: &[&str]) -> Packets {
        self.proc.signal("TERM");
        if self.proc.wait_exit(CMD_TIMEOUT).is_none() {
            self.proc.kill9();
        }
        let f = self.file.to_str().unwrap().to_string();
        let mut args = vec!["tcpdump", "-r", &f, "-nn", "-e", "-tt"];
        args.extend_from_slice(extra);
        let out = cmd_quiet(&args);
        let mut lines: Vec<String> = Vec::new();
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            match lines.last_mut() {
                Some(prev) if l.starts_with([' ', '\t']) => {
                    prev.push(' ');
                    prev.push_str(l.trim());
                }
                _ => lines.push(l.to_string()),
            }
        }
        Packets { lines }
    }
}

/// A gratuitous ARP seen in a capture.
#[derive(Clone, Debug, PartialEq)]
pub struct Garp {
    /// Epoch seconds.
    pub t: f64,
    /// Ethernet source (lower case).
    pub src_mac: String,
    /// `Request` (who-has VIP tell VIP) or `Reply` (VIP is-at MAC).
    pub op: String,
}

/// A VRRP advertisement seen in a capture.
#[derive(Clone, Debug, PartialEq)]
pub struct Advert {
    /// Epoch seconds.
    pub t: f64,
    /// IP source.
    pub src: String,
    /// IP destination (224.0.0.18, ff02::12, or a unicast peer).
    pub dst: String,
    /// TTL (IPv4) or hop limit (IPv6): only when read with [`Capture::stop_verbose`].
    pub hops: Option<u8>,
    /// `VRRPv2` / `VRRPv3`.
    pub version: String,
    /// Virtual router id.
    pub vrid: u8,
    /// Advertised priority (0 = the master is leaving).
    pub prio: u8,
}

/// An IPv6 neighbour advertisement seen in a capture.
#[derive(Clone, Debug, PartialEq)]
pub struct Na {
    /// Epoch seconds.
    pub t: f64,
    /// Ethernet source (lower case).
    pub src_mac: String,
    /// IPv6 source.
    pub src: String,
    /// IPv6 destination (ff02::1 for an unsolicited one).
    pub dst: String,
    /// Hop limit: only when read with [`Capture::stop_verbose`].
    pub hops: Option<u8>,
    /// The target address.
    pub target: String,
    /// Whether the Override flag is set: only shown by [`Capture::stop_verbose`].
    pub override_flag: bool,
}

/// The number after `name` in `text` (`"ttl "` in `"(tos 0x0, ttl 255, ..."`).
fn number_after(text: &str, name: &str) -> Option<u8> {
    let i = text.find(name)?;
    text[i + name.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// `(src, dst)` of the last `a > b` in `head` (the IP addresses: the MACs come first
/// with `-e`); `dst` without a trailing `:`.
fn ip_pair(head: &str) -> Option<(String, String)> {
    let (left, right) = head.rsplit_once(" > ")?;
    let src = left.rsplit(' ').next()?.to_string();
    let dst = right.split_whitespace().next()?.trim_end_matches(':');
    Some((src, dst.to_string()))
}

/// The packets of a stopped [`Capture`], as `tcpdump -nn -e -tt` lines.
pub struct Packets {
    /// One line per packet.
    pub lines: Vec<String>,
}

impl Packets {
    /// Gratuitous ARPs for `ip`: requests `who-has IP [(MAC)] tell IP`, and replies
    /// `IP is-at MAC` sent to the broadcast address (an ordinary reply to somebody's
    /// request is unicast and does not count).
    pub fn garps(&self, ip: &str) -> Vec<Garp> {
        let rep = format!("Reply {ip} is-at ");
        self.lines
            .iter()
            .filter_map(|l| {
                // `EPOCH SRC_MAC > DST_MAC, ethertype ARP (0x0806), length 42: ...`
                let mut w = l.split_whitespace();
                let t = w.next()?.parse().ok()?;
                let src_mac = w.next()?.to_lowercase();
                let dst_mac = w.nth(1)?.trim_end_matches(',').to_lowercase();
                let op = if let Some((_, req)) = l.split_once("Request who-has ") {
                    let target = req.split_whitespace().next()?;
                    let (_, tell) = req.split_once(" tell ")?;
                    let sender = tell.split([',', ' ']).next()?;
                    if target != ip || sender != ip {
                        return None;
                    }
                    "Request"
                } else if l.contains(&rep) && dst_mac == "ff:ff:ff:ff:ff:ff" {
                    "Reply"
                } else {
                    return None;
                };
                Some(Garp {
                    t,
                    src_mac,
                    op: op.to_string(),
                })
            })
            .collect()
    }

    /// VRRP advertisements (`... 10.99.0.11 > 224.0.0.18: VRRPv3, Advertisement, vrid 51,
    /// prio 101, ...`).
    pub fn adverts(&self) -> Vec<Advert> {
        self.lines
            .iter()
            .filter_map(|l| {
                let (head, vrrp) = l.split_once(": VRRPv")?;
                let t = head.split_whitespace().next()?.parse().ok()?;
                // the IP addresses are the last "a > b" of the head
                let (src, dst) = ip_pair(head)?;
                let version = format!("VRRPv{}", vrrp.chars().next()?);
                let hops = number_after(head, "ttl ").or_else(|| number_after(head, "hlim "));
                Some(Advert {
                    t,
                    src,
                    dst,
                    hops,
                    version,
                    vrid: number_after(vrrp, "vrid ")?,
                    prio: number_after(vrrp, "prio ")?,
                })
            })
            .collect()
    }

    /// IPv6 neighbour advertisements for `target` (`... fe80::1 > ff02::1: [icmp6 sum ok]
    /// ICMP6, neighbor advertisement, length 32, tgt is fd00:99::100, Flags [override]`).
    pub fn neighbour_adverts(&self, target: &str) -> Vec<Na> {
        self.lines
            .iter()
            .filter_map(|l| {
                let i = l.find("ICMP6, neighbor advertisement")?;
                let (head, na) = l.split_at(i);
                let mut w = head.split_whitespace();
                let t = w.next()?.parse().ok()?;
                let src_mac = w.next()?.to_lowercase();
                let (src, dst) = ip_pair(head)?;
                let (_, tgt) = na.split_once("tgt is ")?;
                let tgt = tgt.split([',', ' ']).next()?;
                if tgt != target {
                    return None;
                }
                let override_flag = na
                    .split_once("Flags [")
                    .is_some_and(|(_, f)| f.split(']').next().unwrap_or("").contains("override"));
                Some(Na {
                    t,
                    src_mac,
                    src,
                    dst,
                    hops: number_after(head, "hlim "),
                    target: tgt.to_string(),
                    override_flag,
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// HTTP backend and client (run on threads inside a namespace)
// ---------------------------------------------------------------------------------------

/// A server started by [`Lan::http_backend`].
pub struct HttpBackend {
    /// Where it listens (inside its namespace).
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
}

impl HttpBackend {
    /// Close the listener (new connections are refused) and stop answering; in-flight
    /// keep-alive connections are closed after their current request.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }

    /// Requests answered so far (probes and health checks).
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bind_reuse(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// Accept loop (non-blocking listener polled every 5 ms, so a stop takes effect at once).
fn serve_http(l: TcpListener, name: String, stop: Arc<AtomicBool>, served: Arc<AtomicUsize>) {
    let name = Arc::new(name);
    while !stop.load(Ordering::SeqCst) {
        match l.accept() {
            Ok((s, _)) => {
                let (n, st, sv) = (name.clone(), stop.clone(), served.clone());
                let _ = thread::Builder::new()
                    .stack_size(128 * 1024)
                    .spawn(move || serve_conn(s, &n, &st, &sv));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Answer requests on one connection until close, error, `Connection: close`, HTTP/1.0 or
/// stop (bounded: request heads up to 16 KiB, 10 s idle timeout, 100 000 requests).
fn serve_conn(mut s: TcpStream, name: &str, stop: &AtomicBool, served: &AtomicUsize) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    for _ in 0..100_000 {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 16 * 1024 {
                return;
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        // skip a request body if one is announced (tests only send GETs)
        let body_len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + body_len {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + body_len);
        let close = head.contains("connection: close")
            || head.lines().next().is_some_and(|l| l.ends_with("http/1.0"))
            || stop.load(Ordering::SeqCst);
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Box: {name}\r\n{}\r\n{name}",
            name.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if s.write_all(resp.as_bytes()).is_err() {
            return;
        }
        served.fetch_add(1, Ordering::SeqCst);
        if close {
            return;
        }
    }
}

/// `GET /` on a new connection to `addr` with `Connection: close`: the trimmed body of a
/// 200, or a description of what went wrong. Bounded by the probe timeouts.
pub fn http_get(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, PROBE_CONNECT_TIMEOUT)
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_read_timeout(Some(PROBE_IO_TIMEOUT));
    let _ = s.set_write_timeout(Some(PROBE_IO_TIMEOUT));
    s.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                data.extend_from_slice(&chunk[..n]);
                if data.len() > 64 * 1024 {
                    return Err("response too large".into());
                }
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&data);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no response head in {text:?}"))?;
    let status = head.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
        return Err(format!("status `{status}`"));
    }
    Ok(body.trim().to_string())
}
