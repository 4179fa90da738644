//! Startup fails loudly and early: the real binary, real limits (prlimit), a real
//! unprivileged user (setpriv), real sockets. Each case asserts the exit status and that
//! the message says what is wrong and what to do.

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HALB: &str = env!("CARGO_BIN_EXE_halb");

/// A config file in a fresh world-readable directory, removed on drop.
struct ConfigFile {
    dir: PathBuf,
    path: PathBuf,
}

impl ConfigFile {
    fn new(tag: &str, text: &str) -> ConfigFile {
        let dir = std::env::temp_dir().join(format!("halb-startup-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("halb.toml");
        fs::write(&path, text).unwrap();
        // Readable by the unprivileged user of the permission test.
        let _ = Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(&dir)
            .status();
        ConfigFile { dir, path }
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn config(bind: &str, global: &str) -> String {
    format!(
        r#"[global]
shards = 1
{global}

[frontend.web]
bind = ["{bind}"]
default_backend = "app"

[backend.app]
[[backend.app.server]]
name = "s1"
address = "127.0.0.1:9"
"#
    )
}

/// Run `prefix... halb run -c FILE` and expect it to exit by itself within 20 s.
/// Returns (exit code, stderr). With a prefix (which may switch to an unprivileged user),
/// a copy of the binary in the config's world-readable directory is run, since the build
/// tree may not be reachable by that user.
fn run_expecting_exit(prefix: &[&str], cfg: &ConfigFile) -> (Option<i32>, String) {
    let (program, args): (&str, Vec<&str>) = match prefix.split_first() {
        Some((p, rest)) => (p, rest.to_vec()),
        None => (HALB, vec![]),
    };
    let mut cmd = Command::new(program);
    cmd.args(&args);
    if !prefix.is_empty() {
        let copy = cfg.dir.join("halb");
        fs::copy(HALB, &copy).expect("copy the halb binary");
        let _ = Command::new("chmod").arg("755").arg(&copy).status();
        cmd.arg(copy);
    }
    let mut child = cmd
        .arg("run")
        .arg("-c")
        .arg(&cfg.path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn halb");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("halb did not exit on its own: it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

/// A running `halb run -c FILE`, killed on drop (also when a test panics).
struct Running(std::process::Child);

impl Running {
    fn start(cfg: &ConfigFile) -> Running {
        let child = Command::new(HALB)
            .arg("run")
            .arg("-c")
            .arg(&cfg.path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn halb");
        Running(child)
    }

    /// Connect to `addr` once halb listens there (bounded wait).
    fn connect(&mut self, addr: &str) -> std::net::TcpStream {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(c) = std::net::TcpStream::connect(addr) {
                return c;
            }
            assert!(Instant::now() < deadline, "halb never listened on {addr}");
            assert!(self.0.try_wait().unwrap().is_none(), "halb exited early");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status (bounded wait).
    fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "halb did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

#[test]
fn port_in_use_is_refused_naming_address_and_frontend() {
    let ip = Ipv4Addr::new(127, 31, 0, 1);
    let holder = TcpListener::bind((ip, 0)).unwrap();
    let addr = holder.local_addr().unwrap();
    let cfg = ConfigFile::new("inuse", &config(&addr.to_string(), "maxconn = 100"));
    let (code, err) = run_expecting_exit(&[], &cfg);
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(err.contains("address already in use"), "stderr: {err}");
    assert!(err.contains(&addr.to_string()), "stderr: {err}");
    assert!(err.contains("frontend web"), "stderr: {err}");
    assert!(
        !err.contains("halb: ready"),
        "must fail before announcing readiness: {err}"
    );
}

#[test]
fn privileged_port_without_permission_says_what_is_needed() {
    let start: u32 = fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .map(|s| s.trim().parse().unwrap_or(1024))
        .unwrap_or(1024);
    // Ports below net.ipv4.ip_unprivileged_port_start need privilege (1024 by default;
    // some container runtimes set it to 0, and then no port does).
    if start <= 1 {
        eprintln!("skipped: ip_unprivileged_port_start = {start}, no port is privileged here");
        return;
    }
    let port = (start - 1).min(81);
    let cfg = ConfigFile::new(
        "perm",
        &config(&format!("127.31.0.2:{port}"), "maxconn = 100"),
    );
    let prefix: Vec<&str> = if is_root() {
        vec![
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]
    } else {
        vec![]
    };
    let (code, err) = run_expecting_exit(&prefix, &cfg);
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(err.contains("permission denied"), "stderr: {err}");
    assert!(err.contains("CAP_NET_BIND_SERVICE"), "stderr: {err}");
}

#[test]
fn open_file_limit_too_low_for_maxconn_says_what_to_raise() {
    let cfg = ConfigFile::new("nofile", &config("127.31.0.3:18001", "maxconn = 10000"));
    let (code, err) = run_expecting_exit(&["prlimit", "--nofile=200:200"], &cfg);
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(err.contains("open-file limit too low"), "stderr: {err}");
    assert!(err.contains("ulimit -n"), "stderr: {err}");
    assert!(err.contains("LimitNOFILE"), "stderr: {err}");
}

#[test]
fn locked_memory_limit_too_low_says_what_to_raise() {
    let cfg = ConfigFile::new("memlock", &config("127.31.0.4:18002", "maxconn = 100"));
    // root may raise its own limits (and halb does), so drop privileges for this case.
    let mut prefix: Vec<&str> = Vec::new();
    if is_root() {
        prefix.extend([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]);
    }
    prefix.extend(["prlimit", "--memlock=65536:65536"]);
    let (code, err) = run_expecting_exit(&prefix, &cfg);
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(err.contains("locked-memory limit too low"), "stderr: {err}");
    assert!(err.contains("ulimit -l"), "stderr: {err}");
    assert!(err.contains("LimitMEMLOCK"), "stderr: {err}");
}

#[test]
fn more_shards_than_cores_is_refused() {
    let text = config("127.31.0.5:18003", "maxconn = 100").replace("shards = 1", "shards = 1000");
    let cfg = ConfigFile::new("shards", &text);
    let (code, err) = run_expecting_exit(&[], &cfg);
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(err.contains("shards = 1000"), "stderr: {err}");
    assert!(err.contains("core(s) are available"), "stderr: {err}");
}

#[test]
fn invalid_config_is_not_started_and_names_the_file() {
    let text =
        config("127.31.0.6:18004", "maxconn = 100").replace("name = \"s1\"", "nmae = \"s1\"");
    let cfg = ConfigFile::new("invalid", &text);
    let (code, err) = run_expecting_exit(&[], &cfg);
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(
        err.contains(&cfg.path.display().to_string()),
        "stderr: {err}"
    );
    assert!(err.contains("not starting"), "stderr: {err}");
}

#[test]
fn global_user_drops_root_after_binding_or_refuses_without_root() {
    let text = config("127.31.0.7:18005", "maxconn = 100\nuser = \"nobody\"");
    let cfg = ConfigFile::new("user", &text);
    if !is_root() {
        let (code, err) = run_expecting_exit(&[], &cfg);
        assert_eq!(code, Some(1), "stderr: {err}");
        assert!(err.contains("needs root"), "stderr: {err}");
        return;
    }
    let mut halb = Running::start(&cfg);
    drop(halb.connect("127.31.0.7:18005"));
    let status = fs::read_to_string(format!("/proc/{}/status", halb.0.id())).unwrap();
    let exit = halb.stop();
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_string();
    let gid_line = status
        .lines()
        .find(|l| l.starts_with("Gid:"))
        .unwrap()
        .to_string();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid_line}"
    );
    assert!(
        gid_line.split_whitespace().skip(1).all(|g| g == "65534"),
        "{gid_line}"
    );
    assert!(
        exit.success(),
        "SIGTERM after the drop still exits 0: {exit:?}"
    );
}

#[test]
fn log_file_target_receives_the_access_lines() {
    let dir = std::env::temp_dir().join(format!("halb-logfile-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let log = dir.join("access.log");
    // A backend that answers "pong" and closes.
    let backend = TcpListener::bind("127.31.0.8:0").unwrap();
    let backend_addr = backend.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = backend.accept().unwrap();
        use std::io::Write;
        s.write_all(b"pong").unwrap();
    });
    let text = config(
        "127.31.0.9:18006",
        &format!("maxconn = 100\nlog = \"file:{}\"", log.display()),
    )
    .replace("127.0.0.1:9", &backend_addr.to_string());
    let cfg = ConfigFile::new("logfile", &text);
    let mut halb = Running::start(&cfg);
    let mut client = halb.connect("127.31.0.9:18006");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "pong");
    server.join().unwrap();
    let client_addr = client.local_addr().unwrap().to_string();
    drop(client);
    // The line is written when the connection closes: wait for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains(&client_addr)) {
            break l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no access line in {}: {text}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(halb.stop().success());
    let _ = fs::remove_dir_all(&dir);
    assert!(line.contains("halb::access"), "{line}");
    assert!(
        line.contains("frontend=web backend=app server=s1"),
        "{line}"
    );
    assert!(line.contains("bytes_out=4"), "{line}");
    assert!(
        !line.contains('\u{1b}'),
        "no colour codes in a file: {line}"
    );
}

#[test]
fn sighup_is_ignored_until_reload_exists() {
    let cfg = ConfigFile::new("sighup", &config("127.31.0.10:18007", "maxconn = 100"));
    let mut halb = Running::start(&cfg);
    drop(halb.connect("127.31.0.10:18007"));
    let _ = Command::new("kill")
        .args(["-HUP", &halb.0.id().to_string()])
        .status();
    // Still there, still accepting (a new connection succeeds after the signal).
    drop(halb.connect("127.31.0.10:18007"));
    assert!(halb.0.try_wait().unwrap().is_none(), "SIGHUP ended halb");
    assert!(halb.stop().success());
}
