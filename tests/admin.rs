//! The runtime admin API through the real binary (docs/control.md): `halb ctl show info`,
//! `show servers [BACKEND]` (text and `--json`), `set server … state|weight` reflected in
//! the stats JSON, errors that list what exists (exit status 1), usage hints, and the
//! socket's permissions.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use serde_json::Value;

use common::control::*;
use common::*;

/// `be` (s1, s2) and `other` (o1), unchecked servers (always UP), with stats and an admin
/// socket.
fn start() -> (Control, Halb) {
    let ctl = Control::new();
    let halb = ctl
        .apply(
            Conf::http()
                .server("s1", dead_addr())
                .server("s2", dead_addr())
                .extra_backend("other", &[], &[("o1", dead_addr())]),
        )
        .start();
    (ctl, halb)
}

/// stdout and stderr together (errors may be printed on either).
fn both(out: &str, err: &str) -> String {
    format!("{out}{err}")
}

/// `halb ctl ARGS` must fail with exit status 1; its output (stdout + stderr).
fn expect_failure(ctl: &Control, args: &[&str]) -> String {
    let (st, out, err) = ctl.ctl(args);
    assert_eq!(
        st.code(),
        Some(1),
        "`halb ctl {}` should exit 1, got {st}:\nstdout: {out}\nstderr: {err}",
        args.join(" ")
    );
    both(&out, &err)
}

/// The whitespace-separated fields of the `show servers` line of `backend/server`.
fn table_line(text: &str, backend: &str, server: &str) -> Vec<String> {
    let found: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|f| f.len() >= 2 && f[0] == backend && f[1] == server)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one line for {backend}/{server} in show servers:\n{text}"
    );
    found.into_iter().next().unwrap()
}

/// `show info`: the documented `key: value` lines, and the same object with `--json`.
#[test]
fn show_info_text_and_json() {
    let (ctl, halb) = start();
    let text = ctl.ctl_ok(&["show", "info"]);
    let f = info_fields(&text);
    for key in [
        "name",
        "version",
        "pid",
        "uptime_secs",
        "generation",
        "config",
        "reloads",
        "shards",
        "current_connections",
    ] {
        assert!(f.contains_key(key), "show info lacks `{key}:`:\n{text}");
    }
    assert_eq!(f["name"], "halb");
    assert_eq!(f["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(f["pid"], halb.pid().to_string());
    assert_eq!(f["config"], halb.config_path.display().to_string());
    assert_eq!(f["reloads"], "0");
    assert_eq!(f["shards"], "1");
    let generation: u64 = f["generation"].parse().expect("numeric generation");
    f["uptime_secs"].parse::<u64>().expect("numeric uptime");
    f["current_connections"]
        .parse::<u64>()
        .expect("numeric current_connections");

    let j = ctl.ctl_json(&["show", "info"]);
    assert_eq!(j["name"], "halb", "{j:#}");
    assert_eq!(j["version"], env!("CARGO_PKG_VERSION"), "{j:#}");
    assert_eq!(j["pid"], halb.pid(), "{j:#}");
    assert_eq!(j["generation"], generation, "{j:#}");
    assert_eq!(j["config"], halb.config_path.display().to_string(), "{j:#}");
    assert_eq!(j["reloads"], 0, "{j:#}");
    assert_eq!(j["shards"], 1, "{j:#}");
    assert!(
        j["uptime_secs"].is_u64() && j["current_connections"].is_u64(),
        "{j:#}"
    );
    // The same facts as the stats page's.
    let info = ctl.stats().json()["info"].clone();
    assert_eq!(info["pid"], j["pid"]);
    assert_eq!(info["generation"], j["generation"]);
}

/// `show servers [BACKEND]`: one table line per server (backend server address state
/// admin weight …); `--json`: the backends exactly as in `/stats;json`.
#[test]
fn show_servers_text_and_json() {
    let (ctl, _halb) = start();
    let report = ctl.stats().json();
    let text = ctl.ctl_ok(&["show", "servers"]);
    for (backend, server) in [("be", "s1"), ("be", "s2"), ("other", "o1")] {
        let f = table_line(&text, backend, server);
        let s = server_of(&report, backend, server);
        assert!(f.len() >= 6, "short line {f:?}");
        assert_eq!(
            f[2],
            s["address"].as_str().unwrap(),
            "address of {backend}/{server}: {f:?}"
        );
        assert_eq!(f[3], "UP", "state of {backend}/{server}: {f:?}");
        assert_eq!(f[4], "ready", "admin of {backend}/{server}: {f:?}");
        assert_eq!(f[5], "1", "weight of {backend}/{server}: {f:?}");
    }
    let only = ctl.ctl_ok(&["show", "servers", "be"]);
    table_line(&only, "be", "s1");
    table_line(&only, "be", "s2");
    assert!(
        !only.lines().any(|l| l.contains("o1")),
        "show servers be listed another backend's server:\n{only}"
    );

    let all = ctl.ctl_json(&["show", "servers"]);
    let arr = all
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {all:#}"));
    let names: Vec<&str> = arr
        .iter()
        .map(|b| b["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["be", "other"], "{all:#}");
    let shape = |b: &Value| -> Vec<(Value, Value, Value, Value, Value)> {
        b["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].clone(),
                    s["address"].clone(),
                    s["state"].clone(),
                    s["admin"].clone(),
                    s["weight"].clone(),
                )
            })
            .collect()
    };
    for b in arr {
        let name = b["name"].as_str().unwrap();
        let r = backend_of(&report, name);
        assert_eq!(shape(b), shape(r), "backend {name}: ctl vs stats JSON");
        for key in ["mode", "balance", "usable_servers", "counters"] {
            assert_eq!(
                b[key], r[key],
                "backend {name} `{key}`: ctl {b:#} vs stats {r:#}"
            );
        }
    }
    let one = ctl.ctl_json(&["show", "servers", "other"]);
    let arr = one
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {one:#}"));
    assert_eq!(arr.len(), 1, "{one:#}");
    assert_eq!(arr[0]["name"], "other");
    assert_eq!(arr[0]["servers"][0]["name"], "o1");
}

/// `set server be/s1 state drain|maint|ready` and `weight 5`, in text and `--json`, are
/// reflected in the stats JSON and in `show servers`.
#[test]
fn set_server_state_and_weight() {
    let (ctl, _halb) = start();
    let stats = ctl.stats();
    for (word, state) in [("drain", "DRAIN"), ("maint", "MAINT"), ("ready", "UP")] {
        let out = ctl.ctl_ok(&["set", "server", "be/s1", "state", word]);
        assert!(out.starts_with("ok: "), "set state {word}: {out:?}");
        let s = stats.wait_state("be", "s1", state);
        assert_eq!(s["admin"], word, "{s:#}");
        let f = table_line(&ctl.ctl_ok(&["show", "servers", "be"]), "be", "s1");
        assert_eq!((f[3].as_str(), f[4].as_str()), (state, word), "{f:?}");
    }
    let out = ctl.ctl_ok(&["set", "server", "be/s1", "weight", "5"]);
    assert!(out.starts_with("ok: "), "set weight: {out:?}");
    let s = stats.server("be", "s1");
    assert_eq!(s["weight"], 5, "{s:#}");
    assert_eq!(s["effective_weight"], 5, "{s:#}");
    assert_eq!(stats.server("be", "s2")["weight"], 1, "s2 changed too");
    let f = table_line(&ctl.ctl_ok(&["show", "servers"]), "be", "s1");
    assert_eq!(f[5], "5", "{f:?}");

    let j = ctl.ctl_json(&["set", "server", "be/s2", "state", "maint"]);
    assert_eq!(j["ok"], true, "{j:#}");
    assert!(j["message"].is_string(), "{j:#}");
    stats.wait_state("be", "s2", "MAINT");
    let j = ctl.ctl_json(&["set", "server", "be/s2", "weight", "9"]);
    assert_eq!(j["ok"], true, "{j:#}");
    assert_eq!(stats.server("be", "s2")["weight"], 9);
    let j = ctl.ctl_json(&["set", "server", "be/s2", "state", "ready"]);
    assert_eq!(j["ok"], true, "{j:#}");
    stats.wait_state("be", "s2", "UP");
    // The other backend is untouched.
    assert_eq!(stats.server("other", "o1")["weight"], 1);
    assert_eq!(stats.state("other", "o1"), "UP");
}

/// Unknown names answer an error listing what exists and `halb ctl` exits 1; bad syntax
/// exits 1 with a usage hint; nothing changes.
#[test]
fn errors_list_what_exists_and_exit_1() {
    let (ctl, _halb) = start();

    let out = expect_failure(&ctl, &["set", "server", "be/s9", "state", "maint"]);
    assert!(out.contains("error: "), "{out}");
    assert!(
        out.contains("s9") && out.contains("s1") && out.contains("s2"),
        "the error should name s9 and list be's servers (s1, s2): {out}"
    );
    let out = expect_failure(&ctl, &["set", "server", "nope/s1", "state", "maint"]);
    assert!(
        out.contains("error: ")
            && out.contains("nope")
            && out.contains("be")
            && out.contains("other"),
        "the error should name the backend and list the backends (be, other): {out}"
    );
    let out = expect_failure(&ctl, &["show", "servers", "nope"]);
    assert!(
        out.contains("error: ") && out.contains("be") && out.contains("other"),
        "show servers of an unknown backend should list the backends: {out}"
    );
    let out = expect_failure(&ctl, &["set", "server", "be/s9", "weight", "3"]);
    assert!(out.contains("s1") && out.contains("s2"), "{out}");

    // Bad syntax: a usage hint.
    for args in [
        &["set", "server", "be/s1", "state", "bogus"][..],
        &["set", "server", "be/s1", "weight", "lots"][..],
        &["set", "server", "s1", "state", "drain"][..],
        &["frobnicate"][..],
        &["show"][..],
    ] {
        let out = expect_failure(&ctl, args);
        assert!(
            out.to_ascii_lowercase().contains("usage")
                || out.contains("set server BACKEND/SERVER state ready|drain|maint"),
            "`halb ctl {}` should answer with a usage hint: {out}",
            args.join(" ")
        );
    }

    // Nothing changed.
    let report = ctl.stats().json();
    for s in ["s1", "s2"] {
        let j = server_of(&report, "be", s);
        assert_eq!(
            (j["state"].as_str(), j["weight"].as_u64()),
            (Some("UP"), Some(1)),
            "{j:#}"
        );
    }

    // --json errors.
    let (st, out, err) = ctl.ctl(&["--json", "set", "server", "be/s9", "state", "maint"]);
    assert_eq!(st.code(), Some(1), "stdout {out} stderr {err}");
    // The answer is printed on stdout or stderr.
    let answer = if out.trim().is_empty() { &err } else { &out };
    let j: Value = serde_json::from_str(answer)
        .unwrap_or_else(|e| panic!("--json error is not JSON ({e}): {out} / {err}"));
    assert_eq!(j["ok"], false, "{j:#}");
    let e = j["error"].as_str().unwrap_or_default();
    assert!(e.contains("s1") && e.contains("s2"), "{j:#}");
}

/// The admin socket is a Unix socket with mode 0600; `halb ctl` on a socket that does not
/// exist fails (exit 1) at once.
#[test]
fn socket_is_private() {
    let (ctl, _halb) = start();
    let meta = fs::metadata(&ctl.socket)
        .unwrap_or_else(|e| panic!("no admin socket at {}: {e}", ctl.socket.display()));
    assert!(
        meta.file_type().is_socket(),
        "{} is not a socket",
        ctl.socket.display()
    );
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "admin socket mode {:o}",
        meta.permissions().mode() & 0o777
    );
    let missing = ctl.dir().join("nothing-here.sock");
    let (st, out, err) = common::control::ctl(&missing, &["show", "info"]);
    assert_eq!(st.code(), Some(1), "stdout {out} stderr {err}");
    assert!(
        !both(&out, &err).is_empty(),
        "no message for a missing socket"
    );
}
