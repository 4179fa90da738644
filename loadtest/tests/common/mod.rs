//! What the integration tests share: running the real `halb-loadtest` binary and reading
//! its JSON.

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::process::{Command, Output};

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
