//! What the integration tests share: running the real `halb-loadtest` binary and reading
//! its JSON.

#![allow(dead_code)] // each test file uses its own subset

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use serde_json::Value;

/// Runs `halb-loadtest ARGS` in `dir` (the current directory if `None`), echoing what it
/// printed (shown when a test fails).
pub fn loadtest_in(args: &[&str], dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_halb-loadtest"));
    cmd.args(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd.output().expect("run halb-loadtest");
    eprintln!(
        "halb-loadtest {}\n  exit {:?}\n  stdout {}\n  stderr {}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `halb-loadtest ARGS`.
pub fn loadtest(args: &[&str]) -> Output {
    loadtest_in(args, None)
}

/// The one JSON object a `--json` run prints.
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

/// The integer at JSON pointer `path`.
pub fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing or not an integer in {v}"))
}

/// A test server's accept loop on 127.0.0.1 (a free port): each connection is counted
/// and served by `serve` on a thread of its own, until the acceptor is dropped.
pub struct Acceptor {
    /// The port it listens on.
    pub port: u16,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Acceptor {
    /// Listen, and serve every connection with `serve`.
    pub fn start(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> Acceptor {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (connections.clone(), stop.clone());
        let serve = Arc::new(serve);
        thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let serve = Arc::clone(&serve);
                thread::spawn(move || serve(conn));
            }
        });
        Acceptor {
            port,
            connections,
            stop,
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept loop
    }
}
