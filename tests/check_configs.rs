//! `halb check -c FILE` through the real binary: a table of bad configurations, each
//! rejected with exit code 1 and a message naming the file, the line, the key path and
//! the problem; and good configurations accepted with exit code 0 and a summary.
//!
//! In each bad case the line the error must point at carries a `# <-` marker; the test
//! finds it in the text, so the expected line numbers cannot drift from the fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "halb-check-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write config");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn halb_check(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_halb"))
        .arg("check")
        .arg("-c")
        .arg(path)
        .output()
        .expect("run halb check")
}

/// A bad configuration and what `halb check` must say about it.
struct Case {
    name: &'static str,
    /// The file; exactly one line carries the `# <-` marker.
    text: String,
    /// The key path the error names.
    key: &'static str,
    /// A phrase of the message.
    phrase: &'static str,
}

/// A valid frontend + backend to build cases on (no marker).
const FE: &str = "[frontend.web]\nbind = [\"127.0.0.1:8080\"]\ndefault_backend = \"app\"\n";
const BE: &str =
    "[backend.app]\n[[backend.app.server]]\nname = \"a1\"\naddress = \"127.0.0.1:9001\"\n";
/// The server of [`BE`] alone, to follow a `[backend.app]` header with other keys.
const SRV: &str = "[[backend.app.server]]\nname = \"a1\"\naddress = \"127.0.0.1:9001\"\n";
/// [`FE`] in mode http (for every section, through `[defaults]`), with one ACL `is_api`.
const HFE: &str = "[defaults]\nmode = \"http\"\n[frontend.web]\nbind = [\"127.0.0.1:8080\"]\ndefault_backend = \"app\"\n[frontend.web.acl]\nis_api = \"path_beg /api\"\n";

fn case(
    name: &'static str,
    text: impl Into<String>,
    key: &'static str,
    phrase: &'static str,
) -> Case {
    Case {
        name,
        text: text.into(),
        key,
        phrase,
    }
}

fn bad_cases() -> Vec<Case> {
    vec![
        case(
            "unknown key with a suggestion",
            format!("[global]\nshard = 2 # <-\n{FE}{BE}"),
            "global.shard",
            "unknown key \"shard\" in [global] (did you mean \"shards\"?)",
        ),
        case(
            "duration without unit",
            format!("[defaults.timeouts]\nconnect = 5 # <-\n{FE}{BE}"),
            "defaults.timeouts.connect",
            "write \"5s\"",
        ),
        case(
            "duration with an unknown unit",
            format!("{FE}{BE}[backend.app.timeouts]\nserver = \"5min\" # <-\n"),
            "backend.app.timeouts.server",
            "unknown unit \"min\"",
        ),
        case(
            "bind to a hostname",
            format!(
                "[frontend.web]\nbind = [\n  \"127.0.0.1:8080\",\n  \"lb.example.com:8081\", # <-\n]\ndefault_backend = \"app\"\n{BE}"
            ),
            "frontend.web.bind[1]",
            "hostnames are not resolved",
        ),
        case(
            "server address without port",
            format!("{FE}[backend.app]\n[[backend.app.server]]\nname = \"a1\"\naddress = \"10.0.0.1\" # <-\n"),
            "backend.app.server[0].address",
            "missing port: write \"10.0.0.1:PORT\"",
        ),
        case(
            "server address with a hostname",
            format!("{FE}[backend.app]\n[[backend.app.server]]\nname = \"a1\"\naddress = \"db1.internal:3306\" # <-\n"),
            "backend.app.server[0].address",
            "is a hostname, not an IP address",
        ),
        case(
            "server port out of range",
            format!("{FE}[backend.app]\n[[backend.app.server]]\nname = \"a1\"\naddress = \"10.0.0.1:70000\" # <-\n"),
            "backend.app.server[0].address",
            "port 70000 is out of range",
        ),
        case(
            "frontend names a missing backend",
            format!("[frontend.web]\nbind = [\":8080\"]\ndefault_backend = \"ap\" # <-\n{BE}"),
            "frontend.web.default_backend",
            "backend \"ap\" does not exist (did you mean \"app\"?)",
        ),
        case(
            "duplicate server names",
            format!("{FE}{BE}[[backend.app.server]]\nname = \"a1\" # <-\naddress = \"127.0.0.1:9002\"\n"),
            "backend.app.server[1].name",
            "duplicate server name \"a1\"",
        ),
        case(
            "weight out of range",
            format!("{FE}{BE}weight = 300 # <-\n"),
            "backend.app.server[0].weight",
            "300 is out of range (expected 0..=256)",
        ),
        case(
            "mode mismatch between frontend and backend",
            "[frontend.web]\nbind = [\":8080\"]\ndefault_backend = \"app\" # <-\n[backend.app]\nmode = \"http\"\nserver = [{ name = \"a1\", address = \"127.0.0.1:9001\" }]\n",
            "frontend.web.default_backend",
            "frontend \"web\" is mode tcp but backend \"app\" is mode http",
        ),
        case(
            "empty bind list",
            format!("[frontend.web]\nbind = [] # <-\ndefault_backend = \"app\"\n{BE}"),
            "frontend.web.bind",
            "bind list is empty",
        ),
        case(
            "backend without servers",
            format!("{FE}[backend.app] # <-\nbalance = \"leastconn\"\n"),
            "backend.app.server",
            "backend has no servers",
        ),
        case(
            "zero shards",
            format!("[global]\nshards = 0 # <-\n{FE}{BE}"),
            "global.shards",
            "expected \"auto\" or a number of shards from 1 to 1024, found an integer (0)",
        ),
        case(
            "shards neither auto nor a number",
            format!("[global]\nshards = \"all\" # <-\n{FE}{BE}"),
            "global.shards",
            "found a string (\"all\")",
        ),
        case(
            "retries out of range",
            format!("[defaults]\nretries = 1000 # <-\n{FE}{BE}"),
            "defaults.retries",
            "1000 is out of range (expected 0..=100)",
        ),
        case(
            "wrong value type",
            format!("{FE}[backend.app]\nsplice = \"yes\" # <-\nserver = [{{ name = \"a1\", address = \"127.0.0.1:9001\" }}]\n"),
            "backend.app.splice",
            "expected a boolean (true or false), found a string (\"yes\")",
        ),
        case(
            "TOML syntax error",
            format!("[global]\nuser = \"halb # <-\n{FE}{BE}"),
            "global.user",
            "TOML syntax error",
        ),
        case(
            "duplicate section",
            format!("{FE}{BE}[frontend.web] # <-\nbind = [\":9090\"]\n"),
            "frontend.web",
            "duplicate key `web` in table `frontend`",
        ),
        case(
            "unknown mode",
            format!("[defaults]\nmode = \"htpp\" # <-\n{FE}{BE}"),
            "defaults.mode",
            "unknown mode \"htpp\" (did you mean \"http\"?)",
        ),
        case(
            "tls certificate file that does not exist",
            format!("{FE}tls = {{ bind = [\":443\"], certs = [\"/nonexistent/halb/web.pem\"] }} # <-\n{BE}"),
            "frontend.web.tls.certs[0]",
            "/nonexistent/halb/web.pem: cannot read",
        ),
        case(
            "vrrp instance without virtual addresses",
            format!("{FE}{BE}[vrrp.R1] # <-\ninterface = \"eth0\"\nvirtual_router_id = 51\n"),
            "vrrp.R1.virtual_ipaddress",
            "missing required key \"virtual_ipaddress\", e.g. virtual_ipaddress = [\"10.0.0.100/24\"]",
        ),
        case(
            "vrrp auth_pass with VRRPv3",
            format!("{FE}{BE}[vrrp.R1]\ninterface = \"eth0\"\nvirtual_router_id = 51\nvirtual_ipaddress = [\"10.0.0.100/24\"]\nauth_pass = \"secret\" # <-\n"),
            "vrrp.R1.auth_pass",
            "auth_pass is for VRRPv2 only",
        ),
        case(
            "vrrp advert_int below 10ms",
            format!("{FE}{BE}[vrrp.R1]\ninterface = \"eth0\"\nvirtual_router_id = 51\nadvert_int = \"1ms\" # <-\nvirtual_ipaddress = [\"10.0.0.100/24\"]\n"),
            "vrrp.R1.advert_int",
            "VRRPv3 advert_int is \"10ms\"..=\"40950ms\" in steps of 10 ms",
        ),
        case(
            "vrrp priority out of range",
            format!("{FE}{BE}[vrrp.R1]\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = 300 # <-\nvirtual_ipaddress = [\"10.0.0.100/24\"]\n"),
            "vrrp.R1.priority",
            "300 is out of range (expected 1..=255)",
        ),
        case(
            "vrrp track_proxy names an unknown backend",
            format!("{FE}{BE}[vrrp.R1]\ninterface = \"eth0\"\nvirtual_router_id = 51\nvirtual_ipaddress = [\"10.0.0.100/24\"]\ntrack_proxy = {{ weight = -50, backends = [\"ap\"] }} # <-\n"),
            "vrrp.R1.track_proxy.backends[0]",
            "no backend \"ap\" (did you mean \"app\"?)",
        ),
        case(
            "server maxconn is not supported yet",
            format!("{FE}{BE}maxconn = 100 # <-\n"),
            "backend.app.server[0].maxconn",
            "\"maxconn\" is not supported yet (arrives with per-server connection limits and queueing)",
        ),
        case(
            "check status out of range",
            format!("{FE}[backend.app]\ncheck = {{ type = \"http\", expect_status = [200, 700] }} # <-\n[[backend.app.server]]\nname = \"a1\"\naddress = \"127.0.0.1:9001\"\ncheck = true\n"),
            "backend.app.check.expect_status[1]",
            "status 700 is out of range (expected 100..=599)",
        ),
        case(
            "check status range upside down",
            format!("{FE}[backend.app]\n[backend.app.check]\ntype = \"http\"\nexpect_status = [\n  \"200-299\",\n  \"399-300\", # <-\n]\n[[backend.app.server]]\nname = \"a1\"\naddress = \"127.0.0.1:9001\"\n"),
            "backend.app.check.expect_status[1]",
            "\"399-300\": the range is empty (399 is above 300): write \"300-399\"",
        ),
        case(
            "empty expect_status",
            format!("{FE}[backend.app]\n[backend.app.check]\ntype = \"http\"\nexpect_status = [] # <-\n[[backend.app.server]]\nname = \"a1\"\naddress = \"127.0.0.1:9001\"\n"),
            "backend.app.check.expect_status",
            "expect_status is empty",
        ),
        case(
            "http check key in a tcp check",
            format!("{FE}[backend.app]\n[backend.app.check]\ntype = \"tcp\"\npath = \"/health\" # <-\n[[backend.app.server]]\nname = \"a1\"\naddress = \"127.0.0.1:9001\"\n"),
            "backend.app.check.path",
            "\"path\" applies to http checks only, and this check is type \"tcp\" (set type = \"http\")",
        ),
        case(
            "unknown key in a check table",
            format!("{FE}{BE}check = {{ intr = \"1s\" }} # <-\n"),
            "backend.app.server[0].check.intr",
            "unknown key \"intr\" in the check table (did you mean \"inter\"?)",
        ),
        case(
            "check key written in the server",
            format!("{FE}{BE}check = true\nfall = 5 # <-\n"),
            "backend.app.server[0].fall",
            "unknown key \"fall\" in [[backend.NAME.server]] (it belongs in the check table)",
        ),
        case(
            "zero rise",
            format!("{FE}[backend.app]\ncheck = {{ rise = 0 }} # <-\n{SRV}"),
            "backend.app.check.rise",
            "rise must be at least 1, found 0",
        ),
        case(
            "bad on_marked_down",
            format!("{FE}[backend.app]\ncheck = {{ on_marked_down = \"shutdown-backup-sessions\" }} # <-\n{SRV}"),
            "backend.app.check.on_marked_down",
            "the only value is \"shutdown-sessions\"",
        ),
        case(
            "layer7 observe in a tcp backend",
            format!("{FE}[backend.app]\ncheck = {{ observe = \"layer7\" }} # <-\n{SRV}"),
            "backend.app.check.observe",
            "observe = \"layer7\" needs mode http (it watches HTTP responses), and backend \"app\" is mode tcp",
        ),
        case(
            "unknown observe",
            format!("{FE}{BE}check = {{ observe = \"layer-4\" }} # <-\n"),
            "backend.app.server[0].check.observe",
            "unknown observe \"layer-4\" (did you mean \"layer4\"?)",
        ),
        case(
            "check true on a backend",
            format!("{FE}[backend.app]\ncheck = true # <-\n{SRV}"),
            "backend.app.check",
            "servers enable it with check = true",
        ),
        case(
            "zero slowstart",
            format!("{FE}{BE}slowstart = \"0s\" # <-\n"),
            "backend.app.server[0].slowstart",
            "slowstart must be greater than zero",
        ),
        case(
            "stats uri /metrics",
            format!("{FE}{BE}[stats]\nbind = \"127.0.0.1:8404\"\nuri = \"/metrics\" # <-\n"),
            "stats.uri",
            "uri \"/metrics\" is reserved",
        ),
        case(
            "stats admin without auth",
            format!("{FE}{BE}[stats]\nbind = \"127.0.0.1:8404\"\nadmin = true # <-\n"),
            "stats.admin",
            "admin = true needs auth",
        ),
        case(
            "stats on a frontend's address",
            format!("{FE}{BE}[stats]\nbind = \"127.0.0.1:8080\" # <-\n"),
            "stats.bind",
            "127.0.0.1:8080 is already bound by frontend \"web\" (line 2)",
        ),
        case(
            "stats without bind",
            format!("{FE}{BE}[stats] # <-\nuri = \"/s\"\n"),
            "stats.bind",
            "missing required key \"bind\"",
        ),
        case(
            "stats bind on every address",
            format!("{FE}{BE}[stats]\nbind = \":8404\" # <-\n"),
            "stats.bind",
            "the stats page listens on one address",
        ),
        case(
            "unknown stats key",
            format!("{FE}{BE}[stats]\nbind = \"127.0.0.1:8404\"\nrefesh = \"5s\" # <-\n"),
            "stats.refesh",
            "unknown key \"refesh\" in [stats] (did you mean \"refresh\"?)",
        ),
        case(
            "stats user with a colon",
            format!("{FE}{BE}[stats]\nbind = \"127.0.0.1:8404\"\nauth = {{ user = \"a:b\", password = \"x\" }} # <-\n"),
            "stats.auth.user",
            "user \"a:b\" contains ':'",
        ),
        case(
            "HTTP balance algorithm in a tcp backend",
            format!("{FE}[backend.app]\nbalance = \"url_param(userid)\" # <-\nserver = [{{ name = \"a1\", address = \"127.0.0.1:9001\" }}]\n"),
            "backend.app.balance",
            "balance \"url_param(userid)\" needs mode http (it hashes a part of the HTTP request), and backend \"app\" is mode tcp",
        ),
        case(
            "HTTP key in a tcp frontend",
            format!("{FE}forwardfor = true # <-\n{BE}"),
            "frontend.web.forwardfor",
            "\"forwardfor\" is allowed only in mode http, and frontend \"web\" is mode tcp",
        ),
        case(
            "unknown ACL in a condition",
            format!("{HFE}[[frontend.web.http_request]]\ndeny = true\nif = \"is_apj\" # <-\n{BE}"),
            "frontend.web.http_request[0].if",
            "unknown ACL \"is_apj\" in condition \"is_apj\" (did you mean \"is_api\"?)",
        ),
        case(
            "both if and unless",
            format!("{HFE}[[frontend.web.http_request]]\ndeny = true\nif = \"is_api\"\nunless = \"LOCALHOST\" # <-\n{BE}"),
            "frontend.web.http_request[0].unless",
            "a rule takes \"if\" or \"unless\", not both",
        ),
        case(
            "two actions in one rule",
            format!("{HFE}[[frontend.web.http_request]]\nredirect = \"scheme https\"\ndel_header = \"X-Debug\" # <-\n{BE}"),
            "frontend.web.http_request[0].del_header",
            "a rule has one action and this one already has \"redirect\"",
        ),
        case(
            "redirect code not allowed",
            format!("{HFE}[[frontend.web.http_request]]\nredirect = \"location https://example.com/\"\ncode = 304 # <-\n{BE}"),
            "frontend.web.http_request[0].code",
            "redirect code 304 is not allowed: expected 301, 302, 303, 307 or 308",
        ),
        case(
            "deny status not allowed",
            format!("{HFE}[[frontend.web.http_request]]\ndeny = 204 # <-\n{BE}"),
            "frontend.web.http_request[0].deny",
            "deny status 204 is not allowed",
        ),
        case(
            "header value with CR LF",
            format!("{HFE}[[frontend.web.http_request]]\nset_header = {{ name = \"X-Env\", value = \"prod\\r\\nX-Admin: 1\" }} # <-\n{BE}"),
            "frontend.web.http_request[0].set_header.value",
            "invalid value for header `X-Env`: control characters (CR, LF, NUL...) are not allowed",
        ),
        case(
            "header managed by the proxy",
            format!("{HFE}[[frontend.web.http_response]]\ndel_header = \"Transfer-Encoding\" # <-\n{BE}"),
            "frontend.web.http_response[0].del_header",
            "header `Transfer-Encoding` is managed by the proxy and cannot be changed by a rule",
        ),
        case(
            "use_backend to a tcp backend",
            format!("{HFE}[[frontend.web.use_backend]]\nbackend = \"db\" # <-\nif = \"is_api\"\n{BE}[backend.db]\nmode = \"tcp\"\nserver = [{{ name = \"d1\", address = \"127.0.0.1:3306\" }}]\n"),
            "frontend.web.use_backend[0].backend",
            "frontend \"web\" is mode http but backend \"db\" is mode tcp",
        ),
        case(
            "use_backend to a missing backend",
            format!("{HFE}[[frontend.web.use_backend]]\nbackend = \"ap\" # <-\nif = \"is_api\"\n{BE}"),
            "frontend.web.use_backend[0].backend",
            "backend \"ap\" does not exist (did you mean \"app\"?)",
        ),
        case(
            "bad server cookie value",
            format!("{HFE}[backend.app]\ncookie = {{ name = \"SRV\" }}\n[[backend.app.server]]\nname = \"a1\"\naddress = \"127.0.0.1:9001\"\ncookie = \"a;1\" # <-\n"),
            "backend.app.server[0].cookie",
            "server \"a1\": invalid cookie value \"a;1\"",
        ),
        case(
            "server cookie without a backend cookie",
            format!("{HFE}{BE}cookie = \"a1\" # <-\n"),
            "backend.app.server[0].cookie",
            "a server cookie needs cookie persistence on its backend",
        ),
        case(
            "errorfile that does not exist",
            format!("{HFE}[frontend.web.errorfile]\n503 = \"/nonexistent/halb/503.http\" # <-\n{BE}"),
            "frontend.web.errorfile.503",
            "\"/nonexistent/halb/503.http\": cannot read the errorfile: No such file or directory",
        ),
        case(
            "request line limit above the head limit",
            format!("[defaults]\nmode = \"http\"\n[frontend.web]\nbind = [\":8080\"]\nmax_request_head = 4096\nmax_request_line = 8192 # <-\n{BE}"),
            "frontend.web.max_request_line",
            "max_request_line (8192) is larger than max_request_head (4096)",
        ),
        case(
            "uri balance with a bad option",
            format!("{HFE}[backend.app]\nbalance = \"uri depth\" # <-\nserver = [{{ name = \"a1\", address = \"127.0.0.1:9001\" }}]\n"),
            "backend.app.balance",
            "\"depth\" needs a number",
        ),
        case(
            "syslog is not supported yet",
            format!("[global]\nlog = \"syslog\" # <-\n{FE}{BE}"),
            "global.log",
            "log \"syslog\" is not supported yet",
        ),
        case(
            "unknown balance algorithm",
            format!("{FE}[backend.app]\nbalance = \"round-robin\" # <-\nserver = [{{ name = \"a1\", address = \"127.0.0.1:9001\" }}]\n"),
            "backend.app.balance",
            "did you mean \"roundrobin\"?",
        ),
        case(
            "address bound by two frontends",
            format!("{FE}[frontend.other]\nbind = [\"127.0.0.1:8080\"] # <-\ndefault_backend = \"app\"\n{BE}"),
            "frontend.other.bind[0]",
            "127.0.0.1:8080 is already bound by frontend \"web\"",
        ),
        case(
            "server without address",
            format!("{FE}[backend.app]\n[[backend.app.server]] # <-\nname = \"a1\"\n"),
            "backend.app.server[0].address",
            "missing required key \"address\"",
        ),
        case(
            "single [backend.x.server] table instead of an array",
            format!("{FE}[backend.app]\n[backend.app.server] # <-\nname = \"a1\"\naddress = \"127.0.0.1:9001\"\n"),
            "backend.app.server",
            "write [[backend.app.server]] (double brackets)",
        ),
        case(
            "key of another section",
            format!("[frontend.web]\nbind = [\":8080\"]\ndefault_backend = \"app\"\nbalance = \"first\" # <-\n{BE}"),
            "frontend.web.balance",
            "it belongs in [backend.NAME]",
        ),
        case(
            "timeout in the wrong section",
            format!("{FE}[frontend.web.timeouts]\nserver = \"10s\" # <-\n{BE}"),
            "frontend.web.timeouts.server",
            "it belongs in [defaults.timeouts] or [backend.NAME.timeouts]",
        ),
    ]
}

/// The 1-based line carrying the `# <-` marker.
fn marked_line(case: &Case) -> usize {
    let marked: Vec<usize> = case
        .text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("# <-"))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(
        marked.len(),
        1,
        "case {:?} must mark exactly one line",
        case.name
    );
    marked[0]
}

#[test]
fn bad_configs_are_rejected_with_file_line_key_and_reason() {
    let cases = bad_cases();
    assert!(cases.len() >= 20);
    let dir = TempDir::new("bad");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let path = dir.write(&format!("case{i}.toml"), &case.text);
        let out = halb_check(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = marked_line(case);
        let prefix = format!("{}:{line}: {}: ", path.display(), case.key);
        let named = stderr
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains(case.phrase));
        if out.status.code() != Some(1) || !named {
            failures.push(format!(
                "case {:?}: exit {:?}, expected a line starting with {prefix:?} containing {:?}; stderr:\n{stderr}",
                case.name,
                out.status.code(),
                case.phrase
            ));
        }
        if !out.stdout.is_empty() {
            failures.push(format!(
                "case {:?}: nothing expected on stdout, got:\n{}",
                case.name,
                String::from_utf8_lossy(&out.stdout)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_problem_of_a_file_is_reported() {
    let dir = TempDir::new("many");
    let text = r#"[global]
shards = 0
maxconn = "many"

[frontend.web]
bind = ["*:80"]
default_backend = "ap"

[backend.app]
[[backend.app.server]]
name = "a1"
address = "10.0.0.1:80"
weight = -1
[[backend.app.server]]
name = "a1"
address = "10.0.0.2"
"#;
    let path = dir.write("many.toml", text);
    let out = halb_check(&path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = [
        (2, "global.shards"),
        (3, "global.maxconn"),
        (6, "frontend.web.bind[0]"),
        (7, "frontend.web.default_backend"),
        (13, "backend.app.server[0].weight"),
        (15, "backend.app.server[1].name"),
        (16, "backend.app.server[1].address"),
    ];
    for (line, key) in expected {
        let prefix = format!("{}:{line}: {key}: ", path.display());
        assert!(
            stderr.lines().any(|l| l.starts_with(&prefix)),
            "missing {prefix:?} in:\n{stderr}"
        );
    }
}

#[test]
fn unreadable_file_is_an_error_naming_it() {
    let dir = TempDir::new("missing");
    let path = dir.0.join("does-not-exist.toml");
    let out = halb_check(&path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
}

#[test]
fn example_l4_basic_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/l4-basic.toml");
    let out = halb_check(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("2 frontends, 2 backends, 6 servers"),
        "{stdout}"
    );
    for expected in [
        "frontend mysql",
        "-> backend mysql  balance leastconn",
        "db-standby",
        "backup",
        "frontend app",
        "balance source  hash consistent",
        "10.0.2.13:7000",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn example_http_basic_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/http-basic.toml");
    let out = halb_check(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 frontend, 3 backends, 7 servers"),
        "{stdout}"
    );
    for expected in [
        "frontend www  http  bind 10.0.0.100:80",
        "  http  5 ACLs, 4 request rules, 2 response rules, forwardfor (except 1 network)",
        "  use_backend api if is_api\n",
        "  use_backend static if is_static\n",
        "-> backend api  balance leastconn",
        "cookie SRVID indirect nocache httponly",
        "cookie a1",
        "-> backend static  balance uri depth 3  hash consistent",
        "-> backend app  balance roundrobin",
        "(default_backend)",
        "stats     bind 127.0.0.1:8404, uri /stats, auth admin, admin on, refresh 5s\n",
        "       check  http GET /health expect 200 every 2s rise 2 fall 3 timeout 2s  (2 of 2 servers)\n",
        "check, slowstart 30s\n",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn good_config_prints_frontends_backends_servers() {
    let dir = TempDir::new("good");
    let text = r#"
[global]
shards = 1
maxconn = 1000

[frontend.front]
bind = [":15000", "[::1]:15001"]
default_backend = "pool"

[backend.pool]
balance = "static-rr"
splice = false
[[backend.pool.server]]
name = "one"
address = "127.0.0.1:16001"
weight = 3
[[backend.pool.server]]
name = "two"
address = "[::1]:16002"
disabled = true
"#;
    let path = dir.write("good.toml", text);
    let out = halb_check(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&path.display().to_string()), "{stdout}");
    assert!(stdout.contains("shards 1"), "{stdout}");
    assert!(
        stdout.contains(
            "frontend front  tcp  bind 0.0.0.0:15000, [::]:15000, [::1]:15001  maxconn 1000"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("-> backend pool  balance static-rr"),
        "{stdout}"
    );
    assert!(stdout.contains("splice off"), "{stdout}");
    let one = stdout
        .lines()
        .find(|l| l.contains("127.0.0.1:16001"))
        .unwrap_or("");
    assert!(
        one.trim_start().starts_with("one") && one.contains(" 3"),
        "{stdout}"
    );
    let two = stdout
        .lines()
        .find(|l| l.contains("[::1]:16002"))
        .unwrap_or("");
    assert!(two.contains("disabled"), "{stdout}");
}

/// Every configuration we ship (examples/, the packaged default, the demo's) passes
/// `halb check`, so a newcomer copying one starts from something valid.
#[test]
fn shipped_configs_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.push(root.join("packaging/halb.toml"));
    assert!(
        files.len() >= 3,
        "expected several shipped configs: {files:?}"
    );
    for path in &files {
        let out = halb_check(path);
        assert!(
            out.status.success(),
            "{} is not valid:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = String::from_utf8_lossy(&out.stdout);
        assert!(
            summary.contains("frontend"),
            "{}: {summary}",
            path.display()
        );
    }
    let dir = TempDir::new("demo-config");
    let pem = halb::demo::make_certificate(&dir.0).expect("the demo's certificate");
    let demo = halb::demo::demo_config(8080, &pem);
    halb::config::parse(&demo, Path::new("<demo>")).expect("the demo's config is valid");
}

/// A self-signed certificate for `names` (ECDSA P-256) with its key, as one PEM file;
/// `expired` backdates it to 2020-2021.
fn certificate(names: &[&str], expired: bool) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("params");
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = params.self_signed(&key).expect("self-sign");
    (cert.pem(), key.serialize_pem())
}

/// An http frontend with `tls = { bind, certs = [CERTS] }` on line 6.
fn tls_config(certs: &[&Path]) -> String {
    let certs: Vec<String> = certs
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    format!(
        "[defaults]\nmode = \"http\"\n[frontend.web]\nbind = [\"127.0.0.1:8080\"]\ndefault_backend = \"app\"\ntls = {{ bind = [\"127.0.0.1:8443\"], certs = [{}] }}\n{BE}",
        certs.join(", ")
    )
}

#[test]
fn bad_certificate_file_is_named_with_the_problem() {
    let dir = TempDir::new("tls-bad");
    let (cert, _) = certificate(&["www.example.com"], false);
    let (_, other_key) = certificate(&["other.example.com"], false);
    for (file, pem, problem) in [
        ("nokey.pem", cert.clone(), "no private key"),
        (
            "mismatch.pem",
            format!("{cert}{other_key}"),
            "the private key does not match the certificate",
        ),
        (
            "garbage.pem",
            "not a certificate\n".to_string(),
            "not a PEM file",
        ),
    ] {
        let pem_path = dir.write(file, &pem);
        let path = dir.write("tls.toml", &tls_config(&[&pem_path]));
        let out = halb_check(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = format!(
            "{}:6: frontend.web.tls.certs[0]: {}: {problem}",
            path.display(),
            pem_path.display()
        );
        assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
        assert!(
            stderr.lines().any(|l| l.starts_with(&expected)),
            "{file}: expected {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn expired_certificate_is_a_warning_and_tls_is_summarised() {
    let dir = TempDir::new("tls-warn");
    let (cert, key) = certificate(&["www.example.com", "*.example.com"], false);
    let good = dir.write("good.pem", &format!("{cert}{key}"));
    let (cert, key) = certificate(&["old.example.com"], true);
    let old = dir.write("old.pem", &format!("{cert}{key}"));
    let path = dir.write("tls.toml", &tls_config(&[&good, &old]));
    let out = halb_check(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("  tls   bind 127.0.0.1:8443  min_version 1.2  alpn http/1.1"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "  cert  {}  www.example.com, *.example.com  expires ",
            good.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "  cert  {}  old.example.com  EXPIRED 2021-01-01",
            old.display()
        )),
        "{stdout}"
    );
    let warning = format!(
        "warning: {}:6: frontend.web.tls.certs[1]: {}: the certificate expired on 2021-01-01",
        path.display(),
        old.display()
    );
    assert!(
        stdout.lines().any(|l| l.starts_with(&warning)),
        "expected {warning:?} in:\n{stdout}"
    );
}
