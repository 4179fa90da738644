//! The runtime admin API: a Unix socket (`global.admin_socket`) that takes one command per
//! connection as a line of text and answers in text, or JSON with `--json`. `halb ctl` is
//! its client (see `docs/control.md`).
//!
//! [`parse`] and [`execute`] are sans-io; [`serve`] is the accept loop on the control
//! thread.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Control;
use crate::l4::socket::Socket;
use crate::stats::report::{BackendReport, StatsReport};
use crate::stats::AdminState;

/// Longest command line accepted.
pub const MAX_COMMAND: usize = 4096;

/// How long a client may take to send its command and read the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The commands `halb ctl` sends.
pub const USAGE: &str = "commands: show info | show servers [BACKEND] | show vrrp | \
set server BACKEND/SERVER state ready|drain|maint | set server BACKEND/SERVER weight N | \
reload   (add --json for JSON)";

/// One admin command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `show info`.
    ShowInfo,
    /// `show servers [BACKEND]`.
    ShowServers(Option<String>),
    /// `show vrrp`.
    ShowVrrp,
    /// `set server B/S state ready|drain|maint`.
    SetState(String, String, AdminState),
    /// `set server B/S weight N`.
    SetWeight(String, String, u32),
    /// `reload`.
    Reload,
    /// `help`.
    Help,
}

/// A parsed request: the command and whether the answer is JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What to do.
    pub command: Command,
    /// `--json` was given.
    pub json: bool,
}

/// Parse one command line. Errors carry the usage.
pub fn parse(line: &str) -> Result<Request, (String, bool)> {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    let json = words.contains(&"--json");
    words.retain(|w| *w != "--json");
    let bad = |what: String| Err((format!("{what}; {USAGE}"), json));
    let command = match words.as_slice() {
        ["show", "info"] => Command::ShowInfo,
        ["show", "servers"] => Command::ShowServers(None),
        ["show", "servers", backend] => Command::ShowServers(Some(backend.to_string())),
        ["show", "vrrp"] => Command::ShowVrrp,
        ["set", "server", target, "state", state] => {
            let (b, s) = match split_target(target) {
                Ok(t) => t,
                Err(e) => return bad(e),
            };
            let admin = match *state {
                "ready" => AdminState::Ready,
                "drain" => AdminState::Drain,
                "maint" => AdminState::Maint,
                other => {
                    return bad(format!(
                        "unknown state {other:?} (expected ready, drain or maint)"
                    ))
                }
            };
            Command::SetState(b, s, admin)
        }
        ["set", "server", target, "weight", n] => {
            let (b, s) = match split_target(target) {
                Ok(t) => t,
                Err(e) => return bad(e),
            };
            match n.parse::<u32>() {
                Ok(w) => Command::SetWeight(b, s, w),
                Err(_) => return bad(format!("weight {n:?} is not a number (0..=256)")),
            }
        }
        ["reload"] => Command::Reload,
        ["help"] => Command::Help,
        [] => return bad("empty command".to_string()),
        _ => return bad(format!("unknown command {:?}", words.join(" "))),
    };
    Ok(Request { command, json })
}

fn split_target(target: &str) -> Result<(String, String), String> {
    match target.split_once('/') {
        Some((b, s)) if !b.is_empty() && !s.is_empty() && !s.contains('/') => {
            Ok((b.to_string(), s.to_string()))
        }
        _ => Err(format!("{target:?} is not BACKEND/SERVER")),
    }
}

/// An answer: the text sent back, and whether it is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Whole reply (ends with a newline).
    pub text: String,
    /// The command failed.
    pub error: bool,
}

impl Answer {
    fn ok(json: bool, message: &str) -> Answer {
        Answer {
            text: if json {
                format!("{}\n", serde_json::json!({"ok": true, "message": message}))
            } else {
                format!("ok: {message}\n")
            },
            error: false,
        }
    }

    /// The reply for a failed command.
    pub fn error(json: bool, message: &str) -> Answer {
        Answer {
            text: if json {
                format!("{}\n", serde_json::json!({"ok": false, "error": message}))
            } else {
                format!("error: {message}\n")
            },
            error: true,
        }
    }
}

/// What [`execute`] may need besides the control state.
pub trait Effects {
    /// Reread the configuration file and apply it (see `runtime`).
    fn reload(&self) -> Result<String, String>;
    /// The stats report (counters gathered from the shards beforehand).
    fn report(&self) -> StatsReport;
}

/// Carry out `request`.
pub fn execute(request: &Request, control: &RefCell<Control>, effects: &dyn Effects) -> Answer {
    let json = request.json;
    let done = |r: Result<String, String>| match r {
        Ok(m) => Answer::ok(json, &m),
        Err(e) => Answer::error(json, &e),
    };
    match &request.command {
        Command::Help => Answer::ok(json, USAGE),
        Command::ShowInfo => {
            let report = effects.report();
            let text = if json {
                format!(
                    "{}\n",
                    serde_json::to_string(&report.info).unwrap_or_default()
                )
            } else {
                info_text(&report)
            };
            Answer { text, error: false }
        }
        Command::ShowServers(backend) => {
            let report = effects.report();
            let backends: Vec<&BackendReport> = match backend {
                None => report.backends.iter().collect(),
                Some(name) => match report.backends.iter().find(|b| &b.name == name) {
                    Some(b) => vec![b],
                    None => {
                        let names: Vec<&str> =
                            report.backends.iter().map(|b| b.name.as_str()).collect();
                        return Answer::error(
                            json,
                            &format!("no backend {name:?} (backends: {})", names.join(", ")),
                        );
                    }
                },
            };
            let text = if json {
                format!("{}\n", serde_json::to_string(&backends).unwrap_or_default())
            } else {
                servers_text(&backends)
            };
            Answer { text, error: false }
        }
        Command::ShowVrrp => {
            let instances = control.borrow().vrrp_report();
            if instances.is_empty() {
                return Answer::error(
                    json,
                    "VRRP is not configured (no [vrrp.*] instance in this configuration)",
                );
            }
            let text = if json {
                format!("{}\n", serde_json::json!({ "instances": instances }))
            } else {
                vrrp_text(&instances)
            };
            Answer { text, error: false }
        }
        Command::SetState(b, s, admin) => {
            done(control.borrow_mut().set_state(b, s, *admin, Instant::now()))
        }
        Command::SetWeight(b, s, w) => done(control.borrow_mut().set_weight(b, s, *w)),
        Command::Reload => done(effects.reload()),
    }
}

/// `show info` as `key: value` lines.
pub fn info_text(report: &StatsReport) -> String {
    let i = &report.info;
    let mut out = String::new();
    let _ = writeln!(out, "name: {}", i.name);
    let _ = writeln!(out, "version: {}", i.version);
    let _ = writeln!(out, "pid: {}", i.pid);
    let _ = writeln!(out, "uptime_secs: {}", i.uptime_secs);
    let _ = writeln!(out, "generation: {}", i.generation);
    let _ = writeln!(out, "config: {}", i.config);
    let _ = writeln!(out, "reloads: {}", i.reloads);
    let _ = writeln!(out, "shards: {}", i.shards);
    let _ = writeln!(out, "current_connections: {}", i.current_connections);
    out
}

/// `show vrrp`: one block of `key: value` lines per instance.
pub fn vrrp_text(instances: &[crate::control::vrrp::InstanceReport]) -> String {
    let mut out = String::new();
    for (n, i) in instances.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "instance: {}", i.name);
        let _ = writeln!(out, "state: {}", i.state);
        let _ = writeln!(out, "priority: {} (base {})", i.priority, i.base_priority);
        let _ = writeln!(out, "master: {}", i.master.as_deref().unwrap_or("-"));
        let _ = writeln!(
            out,
            "interface: {} vrid {} VRRPv{} advert_int {} ms, from {}",
            i.interface, i.virtual_router_id, i.version, i.advert_int_ms, i.local
        );
        let _ = writeln!(
            out,
            "virtual_ipaddress: {} ({})",
            i.virtual_ipaddress.join(" "),
            if i.holds_addresses {
                "held"
            } else {
                "not held"
            }
        );
        let _ = writeln!(
            out,
            "last_transition: {} {}s ago: {}",
            i.last_transition.as_deref().unwrap_or("-"),
            i.since_secs,
            i.reason
        );
        if let Some(g) = &i.sync_group {
            let _ = writeln!(out, "sync_group: {g}");
        }
        if !i.faults.is_empty() {
            let _ = writeln!(out, "faults: {}", i.faults.join("; "));
        }
        for t in &i.trackers {
            let _ = writeln!(
                out,
                "track {}: {} (weight {}): {}",
                t.name,
                if t.healthy { "ok" } else { "FAILING" },
                t.weight,
                t.reason
            );
        }
        let c = &i.counters;
        let invalid: u64 = c.invalid.values().sum();
        let _ = writeln!(
            out,
            "adverts: {} sent, {} received ({} priority 0), {} dropped{}; transitions {}, became master {} times",
            c.adverts_sent,
            c.adverts_received,
            c.priority_zero_received,
            invalid,
            if invalid > 0 {
                format!(
                    " ({})",
                    c.invalid
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                String::new()
            },
            c.transitions,
            c.became_master
        );
    }
    out
}

/// `show servers` as an aligned table.
pub fn servers_text(backends: &[&BackendReport]) -> String {
    let mut rows: Vec<[String; 11]> = vec![[
        "backend".into(),
        "server".into(),
        "address".into(),
        "state".into(),
        "admin".into(),
        "weight".into(),
        "effective_weight".into(),
        "check".into(),
        "last_check".into(),
        "reason".into(),
        "last_change".into(),
    ]];
    for b in backends {
        for s in &b.servers {
            rows.push([
                b.name.clone(),
                s.name.clone(),
                s.address.to_string(),
                s.state.as_str().to_string(),
                s.admin.to_string(),
                s.weight.to_string(),
                s.effective_weight.to_string(),
                if s.checked { "yes" } else { "no" }.to_string(),
                s.last_check.clone().unwrap_or_else(|| "-".into()),
                s.reason.clone(),
                format!("{}s ago", s.last_change_secs),
            ]);
        }
    }
    let mut widths = [0usize; 11];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Create the admin socket at `path` (mode 0600), replacing a stale socket file left by
/// a process that is gone; refuse if another process answers on it.
pub fn bind(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use by another process", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Accept admin connections on `listener` forever, one task per connection.
pub async fn serve(
    listener: OwnedFd,
    control: Rc<RefCell<Control>>,
    reload: Rc<dyn Fn() -> Result<String, String>>,
) {
    let listener = match Socket::accepted(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("admin socket: cannot watch the listener: {e}");
            return;
        }
    };
    loop {
        let fd = match listener.accept().await {
            Ok((fd, _)) => fd,
            Err(e) => {
                tracing::warn!("admin socket: accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let control = Rc::clone(&control);
        let reload = Rc::clone(&reload);
        glommio::spawn_local(async move {
            let Ok(client) = Socket::accepted(fd) else {
                return;
            };
            let _ = glommio::timer::timeout(CLIENT_TIMEOUT, async {
                one_client(&client, &control, &reload).await;
                Ok(())
            })
            .await;
        })
        .detach();
    }
}

/// Read until `done(bytes)` says the message is complete, the peer closes, or `max`
/// bytes have arrived.
pub async fn read_until(
    socket: &Socket,
    max: usize,
    done: impl Fn(&[u8]) -> bool,
) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; max];
    let mut len = 0;
    while len < max && !done(&buf[..len]) {
        match socket.recv(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.readable().await,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

struct Live<'a> {
    control: &'a RefCell<Control>,
    reload: &'a dyn Fn() -> Result<String, String>,
    counters: Vec<crate::stats::report::Counters>,
}

impl Effects for Live<'_> {
    fn reload(&self) -> Result<String, String> {
        (self.reload)()
    }

    fn report(&self) -> StatsReport {
        self.control.borrow().report(&self.counters, Instant::now())
    }
}

async fn one_client(
    client: &Socket,
    control: &Rc<RefCell<Control>>,
    reload: &Rc<dyn Fn() -> Result<String, String>>,
) {
    let Ok(bytes) = read_until(client, MAX_COMMAND, |b| b.contains(&b'\n')).await else {
        return;
    };
    let line = String::from_utf8_lossy(&bytes);
    let line = line.lines().next().unwrap_or("");
    let answer = match parse(line) {
        Err((message, json)) => Answer::error(json, &message),
        Ok(request) => {
            let needs_counters =
                matches!(request.command, Command::ShowInfo | Command::ShowServers(_));
            let counters = if needs_counters {
                let hub = Arc::clone(control.borrow().hub());
                super::gather(&hub).await
            } else {
                Vec::new()
            };
            let live = Live {
                control,
                reload: reload.as_ref(),
                counters,
            };
            execute(&request, control, &live)
        }
    };
    let _ = client.send_all(answer.text.as_bytes()).await;
    let _ = crate::sys::shutdown(client.fd(), std::net::Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(
            parse("show info").unwrap(),
            Request {
                command: Command::ShowInfo,
                json: false
            }
        );
        assert_eq!(
            parse("show servers app --json").unwrap(),
            Request {
                command: Command::ShowServers(Some("app".into())),
                json: true
            }
        );
        assert_eq!(
            parse("set server app/web1 state drain").unwrap().command,
            Command::SetState("app".into(), "web1".into(), AdminState::Drain)
        );
        assert_eq!(
            parse("set server app/web1 weight 7").unwrap().command,
            Command::SetWeight("app".into(), "web1".into(), 7)
        );
        assert_eq!(parse("reload").unwrap().command, Command::Reload);
        let (e, _) = parse("set server app state drain").unwrap_err();
        assert!(e.contains("is not BACKEND/SERVER"), "{e}");
        let (e, _) = parse("set server a/b state sleepy").unwrap_err();
        assert!(e.contains("unknown state"), "{e}");
        let (e, json) = parse("frobnicate --json").unwrap_err();
        assert!(
            e.contains("unknown command") && e.contains("commands:"),
            "{e}"
        );
        assert!(json);
    }

    #[test]
    fn answers() {
        assert_eq!(Answer::ok(false, "done").text, "ok: done\n");
        assert_eq!(Answer::error(false, "no").text, "error: no\n");
        let j: serde_json::Value = serde_json::from_str(&Answer::error(true, "no").text).unwrap();
        assert_eq!(j["ok"], false);
        assert_eq!(j["error"], "no");
    }
}
