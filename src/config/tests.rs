//! Unit tests of parsing, defaults and every validation rule.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::*;

const FILE: &str = "/etc/halb/halb.toml";

/// A minimal valid configuration: one frontend, one backend, one server.
const MINIMAL: &str = r#"
[frontend.fe]
bind = ["127.0.0.1:8000"]
default_backend = "be"

[backend.be]
[[backend.be.server]]
name = "s1"
address = "127.0.0.1:9000"
"#;

fn ok(text: &str) -> Config {
    match parse(text, Path::new(FILE)) {
        Ok(cfg) => cfg,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match parse(text, Path::new(FILE)) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => {
            let d = e.diagnostics().to_vec();
            assert!(!d.is_empty());
            d
        }
    }
}

/// Asserts that `text` is rejected with (at least) a problem at `line`, on `key`,
/// whose message contains `phrase`.
#[track_caller]
fn rejects(text: &str, line: usize, key: &str, phrase: &str) {
    let diags = errors(text);
    let found = diags
        .iter()
        .any(|d| d.line == line && d.key == key && d.message.contains(phrase));
    assert!(
        found,
        "expected {FILE}:{line}: {key}: ...{phrase}... among:\n{}",
        diags
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    for d in &diags {
        assert_eq!(d.file, Path::new(FILE));
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

// ---------------------------------------------------------------- parsing, defaults

#[test]
fn minimal_config_gets_every_default() {
    let cfg = ok(MINIMAL);
    assert_eq!(cfg.source, Path::new(FILE));
    let g = &cfg.global;
    assert_eq!(g.shards, ShardCount::Auto);
    assert_eq!(g.control_core, ControlCore::Auto);
    assert_eq!(g.maxconn, None);
    assert_eq!(g.user, None);
    assert_eq!(g.group, None);
    assert_eq!(g.log, LogTarget::Stderr);
    assert_eq!(g.admin_socket, None);
    assert_eq!(g.hard_stop_after, Duration::from_secs(30));
    assert_eq!(g.maxpipes, 1024);
    assert_eq!(g.pipesize, None);

    let d = &cfg.defaults;
    assert_eq!(d.mode, Mode::Tcp);
    assert_eq!(d.retries, 3);
    assert!(d.redispatch);
    assert_eq!(d.timeouts, Timeouts::default());

    let fe = &cfg.frontends[0];
    assert_eq!(fe.name, "fe");
    assert_eq!(fe.bind, vec![addr("127.0.0.1:8000")]);
    assert_eq!(fe.mode, Mode::Tcp);
    assert_eq!(fe.maxconn, 10_000);
    assert_eq!(fe.backlog, 10_000);
    assert_eq!(fe.default_backend.as_deref(), Some("be"));
    assert_eq!(fe.default_backend_index, Some(0));
    assert_eq!(fe.timeouts, Timeouts::default());
    assert!(fe.http.is_none());

    let be = &cfg.backends[0];
    assert_eq!(be.name, "be");
    assert_eq!(be.mode, Mode::Tcp);
    assert_eq!(be.balance, Balance::RoundRobin);
    assert_eq!(be.hash_type, HashType::MapBased);
    assert_eq!(be.retries, 3);
    assert!(be.redispatch);
    assert!(be.splice);
    assert_eq!(be.timeouts, Timeouts::default());
    assert_eq!(be.cookie, None);
    assert!(!be.http_server_close);
    assert_eq!(be.http_reuse, HttpReuse::Safe);
    assert_eq!(be.pool_max_idle, 64);
    assert_eq!(be.pool_idle_timeout, Duration::from_secs(30));
    assert_eq!(
        be.servers,
        vec![Server {
            name: "s1".into(),
            address: addr("127.0.0.1:9000"),
            weight: 1,
            backup: false,
            disabled: false,
            cookie: None,
        }]
    );
}

#[test]
fn every_accepted_key_is_read() {
    let cfg = ok(r#"
[global]
shards = 2
control_core = 3
maxconn = 50000
user = "halb"
group = "halbgrp"
log = "file:/var/log/halb/access.log"
admin_socket = "/run/halb/admin.sock"
hard_stop_after = "1m30s"
maxpipes = 64
pipesize = 1048576

[defaults]
mode = "tcp"
retries = 5
redispatch = false
[defaults.timeouts]
connect = "2s"
client = "30m"
server = "45m"
http_request = "5s"
http_keep_alive = "3s"
tunnel = "2h"
check = "1s"

[frontend.db]
bind = [":3306", "[::1]:3307"]
mode = "tcp"
maxconn = 200000
backlog = 1024
default_backend = "mysql"
timeouts = { client = "8h" }

[backend.mysql]
mode = "tcp"
balance = "source"
hash_type = "consistent"
retries = 0
redispatch = true
splice = false
[backend.mysql.timeouts]
connect = "500ms"
server = "8h"
[[backend.mysql.server]]
name = "db1"
address = "10.0.0.21:3306"
weight = 256
[[backend.mysql.server]]
name = "db2"
address = "[2001:db8::22]:3306"
weight = 0
backup = true
disabled = true
"#);
    let g = &cfg.global;
    assert_eq!(g.shards, ShardCount::Fixed(2));
    assert_eq!(g.control_core, ControlCore::Core(3));
    assert_eq!(g.maxconn, Some(50_000));
    assert_eq!(g.user.as_deref(), Some("halb"));
    assert_eq!(g.group.as_deref(), Some("halbgrp"));
    assert_eq!(g.log, LogTarget::File("/var/log/halb/access.log".into()));
    assert_eq!(
        g.admin_socket.as_deref(),
        Some(Path::new("/run/halb/admin.sock"))
    );
    assert_eq!(g.hard_stop_after, Duration::from_secs(90));
    assert_eq!(g.maxpipes, 64);
    assert_eq!(g.pipesize, Some(1 << 20));

    let d = &cfg.defaults;
    assert_eq!((d.mode, d.retries, d.redispatch), (Mode::Tcp, 5, false));
    let dt = Timeouts {
        connect: Duration::from_secs(2),
        client: Duration::from_secs(1800),
        server: Duration::from_secs(2700),
        http_request: Duration::from_secs(5),
        http_keep_alive: Duration::from_secs(3),
        tunnel: Duration::from_secs(7200),
        check: Duration::from_secs(1),
    };
    assert_eq!(d.timeouts, dt);

    let fe = &cfg.frontends[0];
    assert_eq!(
        fe.bind,
        vec![addr("0.0.0.0:3306"), addr("[::]:3306"), addr("[::1]:3307")]
    );
    assert_eq!((fe.maxconn, fe.backlog), (200_000, 1024));
    assert_eq!(
        fe.timeouts,
        Timeouts {
            client: Duration::from_secs(8 * 3600),
            ..dt
        }
    );

    let be = &cfg.backends[0];
    assert_eq!(be.balance, Balance::Source);
    assert_eq!(be.hash_type, HashType::Consistent);
    assert_eq!((be.retries, be.redispatch, be.splice), (0, true, false));
    assert_eq!(
        be.timeouts,
        Timeouts {
            connect: Duration::from_millis(500),
            server: Duration::from_secs(8 * 3600),
            ..dt
        }
    );
    assert_eq!(be.servers.len(), 2);
    assert_eq!(be.servers[0].weight, 256);
    let db2 = &be.servers[1];
    assert_eq!(db2.address, addr("[2001:db8::22]:3306"));
    assert_eq!((db2.weight, db2.backup, db2.disabled), (0, true, true));
}

#[test]
fn shards_and_control_core_keywords() {
    let cfg = ok(&format!(
        "[global]\nshards = \"auto\"\ncontrol_core = \"shared\"\n{MINIMAL}"
    ));
    assert_eq!(cfg.global.shards, ShardCount::Auto);
    assert_eq!(cfg.global.control_core, ControlCore::Shared);
    let cfg = ok(&format!("[global]\ncontrol_core = \"auto\"\n{MINIMAL}"));
    assert_eq!(cfg.global.control_core, ControlCore::Auto);
}

#[test]
fn frontend_maxconn_defaults_to_global_and_backlog_is_capped() {
    let cfg = ok(&format!("[global]\nmaxconn = 100000\n{MINIMAL}"));
    assert_eq!(cfg.frontends[0].maxconn, 100_000);
    assert_eq!(cfg.frontends[0].backlog, 65_535);
    let cfg = ok(&format!("[global]\nmaxconn = 500\n{MINIMAL}"));
    assert_eq!(
        (cfg.frontends[0].maxconn, cfg.frontends[0].backlog),
        (500, 500)
    );
}

#[test]
fn sections_are_sorted_and_backend_index_follows() {
    let cfg = ok(r#"
[frontend.zeta]
bind = [":8001"]
default_backend = "alpha"
[frontend.alpha]
bind = [":8002"]
default_backend = "zeta"

[backend.zeta]
server = [{ name = "z1", address = "127.0.0.1:1" }]
[backend.alpha]
server = [{ name = "a1", address = "127.0.0.1:2" }, { name = "a2", address = "127.0.0.1:3", weight = 7 }]
"#);
    let names: Vec<&str> = cfg.frontends.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["alpha", "zeta"]);
    let names: Vec<&str> = cfg.backends.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["alpha", "zeta"]);
    for fe in &cfg.frontends {
        let name = fe.default_backend.as_deref().unwrap();
        let index = fe.default_backend_index.unwrap();
        assert_eq!(cfg.backends[index].name, name);
        assert_eq!(cfg.backend_index(name), Some(index));
    }
    // Inline arrays of inline tables work as well as [[...]] sections.
    assert_eq!(cfg.backends[0].servers[1].weight, 7);
}

#[test]
fn sections_inherit_defaults() {
    let cfg = ok(r#"
[defaults]
retries = 7
redispatch = false
timeouts = { client = "10m", server = "20m" }

[frontend.fe]
bind = ["127.0.0.1:8000"]
default_backend = "be"

[backend.be]
retries = 1
[[backend.be.server]]
name = "s1"
address = "127.0.0.1:9000"
"#);
    let be = &cfg.backends[0];
    assert_eq!((be.retries, be.redispatch), (1, false));
    assert_eq!(be.timeouts.server, Duration::from_secs(1200));
    assert_eq!(be.timeouts.connect, Duration::from_secs(5));
    assert_eq!(cfg.frontends[0].timeouts.client, Duration::from_secs(600));
}

#[test]
fn balancers_and_hash_types() {
    for (text, want) in [
        ("roundrobin", Balance::RoundRobin),
        ("static-rr", Balance::StaticRr),
        ("leastconn", Balance::LeastConn),
        ("source", Balance::Source),
        ("first", Balance::First),
    ] {
        let cfg = ok(&MINIMAL.replace(
            "[backend.be]",
            &format!("[backend.be]\nbalance = \"{text}\""),
        ));
        assert_eq!(cfg.backends[0].balance, want);
    }
    let cfg = ok(&MINIMAL.replace("[backend.be]", "[backend.be]\nhash_type = \"map-based\""));
    assert_eq!(cfg.backends[0].hash_type, HashType::MapBased);
}

// ---------------------------------------------------------------- unknown and later keys

#[test]
fn unknown_keys_suggest_the_right_one() {
    rejects(
        "[global]\nshard = 2\n",
        2,
        "global.shard",
        "unknown key \"shard\" in [global] (did you mean \"shards\"?)",
    );
    rejects(
        &MINIMAL.replace("default_backend", "defaultbackend"),
        4,
        "frontend.fe.defaultbackend",
        "did you mean \"default_backend\"?",
    );
    rejects(
        &MINIMAL.replace("[backend.be]", "[backend.be]\nbalanse = \"first\""),
        7,
        "backend.be.balanse",
        "did you mean \"balance\"?",
    );
    rejects(
        &MINIMAL.replace("address", "adress"),
        9,
        "backend.be.server[0].adress",
        "did you mean \"address\"?",
    );
    rejects(
        &format!("[defaults.timeouts]\nconect = \"1s\"\n{MINIMAL}"),
        2,
        "defaults.timeouts.conect",
        "did you mean \"connect\"?",
    );
    rejects(
        &MINIMAL.replace("[frontend.fe]", "[frontends.fe]"),
        2,
        "frontends",
        "unknown key \"frontends\" at the top level (did you mean \"frontend\"?)",
    );
    rejects(
        &format!("[global]\nfoo = 1\n{MINIMAL}"),
        2,
        "global.foo",
        "unknown key \"foo\" in [global]",
    );
}

#[test]
fn misplaced_keys_say_where_they_belong() {
    rejects(
        &MINIMAL.replace(
            "default_backend = \"be\"",
            "default_backend = \"be\"\nbalance = \"first\"",
        ),
        5,
        "frontend.fe.balance",
        "it belongs in [backend.NAME]",
    );
    rejects(
        &MINIMAL.replace(
            "default_backend = \"be\"",
            "default_backend = \"be\"\ntimeouts = { server = \"5s\" }",
        ),
        5,
        "frontend.fe.timeouts.server",
        "it belongs in [defaults.timeouts] or [backend.NAME.timeouts]",
    );
    rejects(
        &MINIMAL.replace(
            "[backend.be]",
            "[backend.be]\n[backend.be.timeouts]\nclient = \"5s\"",
        ),
        8,
        "backend.be.timeouts.client",
        "[frontend.NAME.timeouts]",
    );
    rejects(
        &format!("shards = 2\n{MINIMAL}"),
        1,
        "shards",
        "it belongs in [global]",
    );
}

#[test]
fn later_features_are_not_supported_yet() {
    let fe = |extra: &str| {
        MINIMAL.replace(
            "default_backend = \"be\"",
            &format!("default_backend = \"be\"\n{extra}"),
        )
    };
    let be = |extra: &str| MINIMAL.replace("[backend.be]", &format!("[backend.be]\n{extra}"));
    let srv = |extra: &str| MINIMAL.replace("name = \"s1\"", &format!("name = \"s1\"\n{extra}"));
    let cases: Vec<(String, usize, &str, &str)> = vec![
        (
            fe("tls = { bind = [\":443\"] }"),
            5,
            "frontend.fe.tls",
            "\"tls\" is not supported yet (arrives with TLS termination)",
        ),
        (
            be("check = { type = \"tcp\" }"),
            7,
            "backend.be.check",
            "\"check\" is not supported yet (arrives with health checks)",
        ),
        (
            srv("check = true"),
            9,
            "backend.be.server[0].check",
            "\"check\" is not supported yet (arrives with health checks)",
        ),
        (
            srv("slowstart = \"30s\""),
            9,
            "backend.be.server[0].slowstart",
            "not supported yet",
        ),
        (
            srv("maxconn = 500"),
            9,
            "backend.be.server[0].maxconn",
            "\"maxconn\" is not supported yet",
        ),
        (
            format!("{MINIMAL}\n[stats]\nbind = \"127.0.0.1:8404\"\n"),
            11,
            "stats",
            "\"stats\" is not supported yet (arrives with the stats page)",
        ),
        (
            format!("{MINIMAL}\n[vrrp.R1]\npriority = 100\n"),
            11,
            "vrrp",
            "\"vrrp\" is not supported yet (arrives with VRRP)",
        ),
        (
            format!("[global]\nlog = \"syslog\"\n{MINIMAL}"),
            2,
            "global.log",
            "log \"syslog\" is not supported yet",
        ),
    ];
    for (text, line, key, phrase) in cases {
        rejects(&text, line, key, phrase);
    }
}

#[test]
fn http_keys_need_mode_http() {
    let fe = |extra: &str| {
        MINIMAL.replace(
            "default_backend = \"be\"",
            &format!("default_backend = \"be\"\n{extra}"),
        )
    };
    let be = |extra: &str| MINIMAL.replace("[backend.be]", &format!("[backend.be]\n{extra}"));
    for extra in [
        "acl = { a = \"src 10.0.0.0/8\" }",
        "http_request = []",
        "http_response = []",
        "use_backend = []",
        "forwardfor = true",
        "x_forwarded_proto = true",
        "x_forwarded_port = true",
        "forwarded = true",
        "max_request_head = 4096",
        "max_request_line = 1024",
        "max_headers = 10",
        "max_body_size = 1000",
        "errorfile = {}",
    ] {
        let key = extra.split(' ').next().unwrap();
        rejects(
            &fe(extra),
            5,
            &format!("frontend.fe.{key}"),
            &format!("\"{key}\" is allowed only in mode http, and frontend \"fe\" is mode tcp"),
        );
    }
    for extra in [
        "cookie = { name = \"X\" }",
        "http_server_close = true",
        "http_reuse = \"never\"",
        "pool_max_idle = 0",
        "pool_idle_timeout = \"1s\"",
    ] {
        let key = extra.split(' ').next().unwrap();
        rejects(
            &be(extra),
            7,
            &format!("backend.be.{key}"),
            "only in mode http, and backend \"be\" is mode tcp",
        );
    }
    for (balance, phrase) in [
        ("uri", "balance \"uri\" needs mode http"),
        ("uri whole depth 2", "needs mode http"),
        ("url_param(userid)", "needs mode http"),
        ("hdr(host)", "and backend \"be\" is mode tcp"),
    ] {
        rejects(
            &be(&format!("balance = \"{balance}\"")),
            7,
            "backend.be.balance",
            phrase,
        );
    }
    rejects(
        &MINIMAL.replace("name = \"s1\"", "name = \"s1\"\ncookie = \"a\""),
        9,
        "backend.be.server[0].cookie",
        "a server cookie needs cookie persistence on its backend: add cookie = { name = \"SRV\" } to [backend.be] (mode http only)",
    );
}

#[test]
fn http_on_one_side_only_is_a_mode_mismatch() {
    let text = MINIMAL.replace("[backend.be]", "[backend.be]\nmode = \"http\"");
    rejects(
        &text,
        4,
        "frontend.fe.default_backend",
        "frontend \"fe\" is mode tcp but backend \"be\" is mode http",
    );
    assert_eq!(errors(&text).len(), 1);
}

// ---------------------------------------------------------------- values

#[test]
fn durations_need_units() {
    rejects(
        &format!("[defaults.timeouts]\nconnect = 5\n{MINIMAL}"),
        2,
        "defaults.timeouts.connect",
        "write \"5s\"",
    );
    rejects(
        &format!("[defaults.timeouts]\nconnect = \"5\"\n{MINIMAL}"),
        2,
        "defaults.timeouts.connect",
        "has no unit: write \"5s\"",
    );
    rejects(
        &format!("[defaults.timeouts]\nclient = 1.5\n{MINIMAL}"),
        2,
        "defaults.timeouts.client",
        "a duration is a string with a unit",
    );
    rejects(
        &format!("[defaults.timeouts]\nserver = \"5 minutes\"\n{MINIMAL}"),
        2,
        "defaults.timeouts.server",
        "without spaces",
    );
    rejects(
        &format!("[defaults.timeouts]\nserver = \"0s\"\n{MINIMAL}"),
        2,
        "defaults.timeouts.server",
        "greater than zero",
    );
    rejects(
        &format!("[global]\nhard_stop_after = true\n{MINIMAL}"),
        2,
        "global.hard_stop_after",
        "expected a duration string such as \"5s\", found a boolean (true)",
    );
    // hard_stop_after may be zero (no drain).
    let cfg = ok(&format!("[global]\nhard_stop_after = \"0s\"\n{MINIMAL}"));
    assert_eq!(cfg.global.hard_stop_after, Duration::ZERO);
}

#[test]
fn bad_addresses() {
    let bind = |b: &str| MINIMAL.replace("[\"127.0.0.1:8000\"]", b);
    rejects(
        &bind("[\"localhost:80\"]"),
        3,
        "frontend.fe.bind[0]",
        "hostname",
    );
    rejects(
        &bind("[\"127.0.0.1\"]"),
        3,
        "frontend.fe.bind[0]",
        "missing port",
    );
    rejects(
        &bind("[\"127.0.0.1:99999\"]"),
        3,
        "frontend.fe.bind[0]",
        "out of range",
    );
    rejects(
        &bind("[\"*:80\"]"),
        3,
        "frontend.fe.bind[0]",
        "write \":80\"",
    );
    rejects(
        &bind("[\":80\", 80]"),
        3,
        "frontend.fe.bind[1]",
        "expected a string, found an integer (80)",
    );
    rejects(
        &bind("[\n  \":80\",\n  \"::1:80\",\n]"),
        5,
        "frontend.fe.bind[1]",
        "needs brackets",
    );
    rejects(
        &bind("\"127.0.0.1:80\""),
        3,
        "frontend.fe.bind",
        "expected an array of addresses",
    );
    rejects(&bind("[]"), 3, "frontend.fe.bind", "bind list is empty");

    let server = |a: &str| MINIMAL.replace("127.0.0.1:9000", a);
    rejects(
        &server("db1.example.com:3306"),
        9,
        "backend.be.server[0].address",
        "hostnames are not resolved",
    );
    rejects(
        &server(":3306"),
        9,
        "backend.be.server[0].address",
        "needs an IP address",
    );
    rejects(
        &server("10.0.0.1:0"),
        9,
        "backend.be.server[0].address",
        "port 0 is out of range",
    );
    rejects(
        &server("0.0.0.0:80"),
        9,
        "backend.be.server[0].address",
        "unspecified",
    );
}

#[test]
fn addresses_bound_twice() {
    rejects(
        &MINIMAL.replace("[\"127.0.0.1:8000\"]", "[\":8000\", \"0.0.0.0:8000\"]"),
        3,
        "frontend.fe.bind[1]",
        "0.0.0.0:8000 is listed twice",
    );
    let text = format!(
        "{MINIMAL}\n[frontend.other]\nbind = [\"127.0.0.1:8000\"]\ndefault_backend = \"be\"\n"
    );
    rejects(
        &text,
        12,
        "frontend.other.bind[0]",
        "127.0.0.1:8000 is already bound by frontend \"fe\" (line 3)",
    );
    // Reported on the later line even when that frontend sorts first by name.
    let text =
        format!("{MINIMAL}\n[frontend.a]\nbind = [\"127.0.0.1:8000\"]\ndefault_backend = \"be\"\n");
    rejects(
        &text,
        12,
        "frontend.a.bind[0]",
        "127.0.0.1:8000 is already bound by frontend \"fe\" (line 3)",
    );
}

#[test]
fn wrong_types_say_what_was_expected() {
    rejects(
        &format!("[global]\nmaxconn = \"lots\"\n{MINIMAL}"),
        2,
        "global.maxconn",
        "expected an integer, found a string (\"lots\")",
    );
    rejects(
        &MINIMAL.replace("[backend.be]", "[backend.be]\nsplice = \"yes\""),
        7,
        "backend.be.splice",
        "expected a boolean (true or false), found a string (\"yes\")",
    );
    rejects(
        &format!("[defaults]\nredispatch = 1\n{MINIMAL}"),
        2,
        "defaults.redispatch",
        "expected a boolean (true or false), found an integer (1)",
    );
    rejects(
        &format!("global = 3\n{MINIMAL}"),
        1,
        "global",
        "expected a table, found an integer (3)",
    );
    rejects(
        &MINIMAL.replace("name = \"s1\"", "name = 1"),
        8,
        "backend.be.server[0].name",
        "expected a string",
    );
    rejects(
        &MINIMAL.replace("default_backend = \"be\"", "default_backend = [\"be\"]"),
        4,
        "frontend.fe.default_backend",
        "expected a string, found an array",
    );
    rejects(
        &format!("[global]\nuser = \"\"\n{MINIMAL}"),
        2,
        "global.user",
        "must not be empty",
    );
}

#[test]
fn ranges() {
    rejects(
        &format!("[global]\nshards = 0\n{MINIMAL}"),
        2,
        "global.shards",
        "expected \"auto\" or a number of shards from 1 to 1024, found an integer (0)",
    );
    rejects(
        &format!("[global]\nshards = \"four\"\n{MINIMAL}"),
        2,
        "global.shards",
        "found a string (\"four\")",
    );
    rejects(
        &format!("[global]\nshards = -1\n{MINIMAL}"),
        2,
        "global.shards",
        "expected \"auto\"",
    );
    rejects(
        &format!("[global]\ncontrol_core = \"none\"\n{MINIMAL}"),
        2,
        "global.control_core",
        "\"shared\"",
    );
    rejects(
        &format!("[global]\nmaxconn = 0\n{MINIMAL}"),
        2,
        "global.maxconn",
        "0 is out of range",
    );
    rejects(
        &format!("[global]\npipesize = 100\n{MINIMAL}"),
        2,
        "global.pipesize",
        "100 is out of range (expected 4096..=1073741824)",
    );
    rejects(
        &format!("[global]\nmaxpipes = -1\n{MINIMAL}"),
        2,
        "global.maxpipes",
        "out of range",
    );
    rejects(
        &format!("[defaults]\nretries = 101\n{MINIMAL}"),
        2,
        "defaults.retries",
        "101 is out of range (expected 0..=100)",
    );
    rejects(
        &MINIMAL.replace("[backend.be]", "[backend.be]\nretries = -1"),
        7,
        "backend.be.retries",
        "out of range",
    );
    rejects(
        &MINIMAL.replace("name = \"s1\"", "name = \"s1\"\nweight = 257"),
        9,
        "backend.be.server[0].weight",
        "257 is out of range (expected 0..=256)",
    );
    rejects(
        &MINIMAL.replace(
            "default_backend = \"be\"",
            "default_backend = \"be\"\nbacklog = 0",
        ),
        5,
        "frontend.fe.backlog",
        "out of range",
    );
}

#[test]
fn enumerations_suggest_values() {
    rejects(
        &MINIMAL.replace("[backend.be]", "[backend.be]\nbalance = \"round-robin\""),
        7,
        "backend.be.balance",
        "unknown balance algorithm \"round-robin\" (did you mean \"roundrobin\"?)",
    );
    rejects(
        &MINIMAL.replace("[backend.be]", "[backend.be]\nhash_type = \"consistant\""),
        7,
        "backend.be.hash_type",
        "did you mean \"consistent\"?",
    );
    rejects(
        &format!("[defaults]\nmode = \"tpc\"\n{MINIMAL}"),
        2,
        "defaults.mode",
        "unknown mode \"tpc\" (did you mean \"tcp\"?)",
    );
    rejects(
        &format!("[global]\nlog = \"stdrr\"\n{MINIMAL}"),
        2,
        "global.log",
        "did you mean \"stderr\"?",
    );
    rejects(
        &format!("[global]\nlog = \"file:halb.log\"\n{MINIMAL}"),
        2,
        "global.log",
        "must be absolute",
    );
    rejects(
        &format!("[global]\nadmin_socket = \"admin.sock\"\n{MINIMAL}"),
        2,
        "global.admin_socket",
        "must be absolute",
    );
}

// ---------------------------------------------------------------- references, structure

#[test]
fn missing_backend_suggests_the_closest() {
    rejects(
        &MINIMAL.replace("default_backend = \"be\"", "default_backend = \"bee\""),
        4,
        "frontend.fe.default_backend",
        "backend \"bee\" does not exist (did you mean \"be\"?)",
    );
    rejects(
        "[frontend.fe]\nbind = [\":80\"]\ndefault_backend = \"app\"\n",
        3,
        "frontend.fe.default_backend",
        "backend \"app\" does not exist (no [backend.NAME] section is defined)",
    );
}

#[test]
fn duplicate_server_names() {
    let text =
        format!("{MINIMAL}[[backend.be.server]]\nname = \"s1\"\naddress = \"127.0.0.1:9001\"\n");
    rejects(
        &text,
        11,
        "backend.be.server[1].name",
        "duplicate server name \"s1\" (already used at line 8)",
    );
}

#[test]
fn backend_without_servers() {
    rejects(
        "[frontend.fe]\nbind = [\":80\"]\ndefault_backend = \"be\"\n[backend.be]\nbalance = \"first\"\n",
        4,
        "backend.be.server",
        "backend has no servers: add at least one [[backend.be.server]] section",
    );
    rejects(
        "[frontend.fe]\nbind = [\":80\"]\ndefault_backend = \"be\"\n[backend.be]\nserver = []\n",
        5,
        "backend.be.server",
        "backend has no servers",
    );
    rejects(
        "[frontend.fe]\nbind = [\":80\"]\ndefault_backend = \"be\"\n[backend.be.server]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n",
        4,
        "backend.be.server",
        "write [[backend.be.server]] (double brackets)",
    );
}

#[test]
fn missing_required_keys() {
    rejects("[frontend.fe]\ndefault_backend = \"be\"\n[backend.be]\nserver = [{ name = \"a\", address = \"127.0.0.1:1\" }]\n", 1, "frontend.fe.bind", "missing required key \"bind\"");
    rejects("[frontend.fe]\nbind = [\":80\"]\n[backend.be]\nserver = [{ name = \"a\", address = \"127.0.0.1:1\" }]\n", 1, "frontend.fe.default_backend", "missing required key \"default_backend\"");
    rejects(
        &MINIMAL.replace("name = \"s1\"\n", ""),
        7,
        "backend.be.server[0].name",
        "missing required key \"name\"",
    );
    rejects(
        &MINIMAL.replace("address = \"127.0.0.1:9000\"\n", ""),
        7,
        "backend.be.server[0].address",
        "missing required key \"address\"",
    );
}

#[test]
fn no_frontend_at_all() {
    rejects("", 1, "frontend", "no frontend is defined");
    rejects(
        "[backend.be]\nserver = [{ name = \"a\", address = \"127.0.0.1:1\" }]\n",
        1,
        "frontend",
        "no frontend is defined",
    );
    rejects(
        "[global]\nshards = 1\n[frontend]\n",
        3,
        "frontend",
        "no frontend is defined",
    );
}

#[test]
fn names_are_restricted() {
    rejects(
        &MINIMAL.replace("[frontend.fe]", "[frontend.\"my fe\"]"),
        2,
        "frontend.\"my fe\"",
        "names may only contain",
    );
    rejects(
        &MINIMAL.replace("name = \"s1\"", "name = \"s/1\""),
        8,
        "backend.be.server[0].name",
        "names may only contain",
    );
}

// ---------------------------------------------------------------- syntax, collection

#[test]
fn toml_syntax_errors_name_the_line() {
    rejects(
        &format!("[global]\nshards = \"auto\n{MINIMAL}"),
        2,
        "global.shards",
        "TOML syntax error",
    );
    let dup = format!("{MINIMAL}\n[frontend.fe]\nbind = [\":1\"]\n");
    rejects(
        &dup,
        11,
        "frontend.fe",
        "duplicate key `fe` in table `frontend`",
    );
    rejects(
        &MINIMAL.replace(
            "default_backend = \"be\"",
            "default_backend = \"be\"\nbind = [\":1\"]",
        ),
        5,
        "frontend.fe.bind",
        "duplicate key",
    );
}

#[test]
fn all_problems_are_reported_in_file_order() {
    let text = r#"[global]
shards = 0
maxconn = "x"

[frontend.web]
bind = ["localhost:80"]
default_backend = "ap"
tls = { bind = [":443"] }

[backend.app]
balance = "roundrobin"
[[backend.app.server]]
name = "a"
address = "10.0.0.1:80"
weight = 300
[[backend.app.server]]
name = "a"
address = "10.0.0.2"
"#;
    let err = parse(text, Path::new(FILE)).unwrap_err();
    let lines: Vec<usize> = err.diagnostics().iter().map(|d| d.line).collect();
    assert_eq!(lines, [2, 3, 6, 7, 8, 15, 17, 18], "{err}");
    let display = err.to_string();
    assert_eq!(display.lines().count(), 8);
    assert!(display.contains(&format!(
        "{FILE}:7: frontend.web.default_backend: backend \"ap\" does not exist (did you mean \"app\"?)"
    )));
    for line in display.lines() {
        assert!(line.starts_with(&format!("{FILE}:")), "{line}");
    }
}

#[test]
fn load_reads_files_and_reports_unreadable_ones() {
    let dir = std::env::temp_dir().join(format!("halb-config-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, MINIMAL).unwrap();
    assert_eq!(load(&good).unwrap().source, good);

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, b"[global]\nuser = \"\xff\"\n").unwrap();
    let err = load(&bad).unwrap_err();
    assert_eq!(err.diagnostics()[0].line, 2);
    assert!(err.to_string().contains("not valid UTF-8"), "{err}");

    let missing = dir.join("missing.toml");
    let err = load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("missing.toml"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- summary

#[test]
fn summary_shows_frontends_backends_servers() {
    let cfg = ok(r#"
[global]
shards = 1
maxconn = 2000

[defaults.timeouts]
connect = "3s"

[frontend.db]
bind = [":3306"]
default_backend = "mysql"
timeouts = { client = "8h" }

[frontend.db2]
bind = ["127.0.0.1:3307"]
default_backend = "mysql"

[backend.mysql]
balance = "leastconn"
timeouts = { server = "8h" }
[[backend.mysql.server]]
name = "db1"
address = "10.0.0.21:3306"
weight = 10
[[backend.mysql.server]]
name = "db-backup"
address = "10.0.0.22:3306"
backup = true
disabled = true

[backend.spare]
balance = "source"
hash_type = "consistent"
splice = false
server = [{ name = "x", address = "10.0.0.9:1", weight = 0 }]
"#);
    let s = summary(&cfg);
    assert!(
        s.starts_with(&format!(
            "configuration {FILE}: 2 frontends, 2 backends, 3 servers\n"
        )),
        "{s}"
    );
    assert!(
        s.contains("global    shards 1, control_core auto, maxconn 2000"),
        "{s}"
    );
    assert!(
        s.contains("defaults  mode tcp, retries 3, redispatch on, timeouts connect 3s"),
        "{s}"
    );
    assert!(s.contains("frontend db   tcp  bind 0.0.0.0:3306, [::]:3306  maxconn 2000  backlog 2000  timeouts client 8h"), "{s}");
    assert!(
        s.contains(
            "  -> backend mysql  balance leastconn  retries 3  redispatch on  timeouts server 8h\n"
        ),
        "{s}"
    );
    assert!(s.contains("db1        10.0.0.21:3306      10\n"), "{s}");
    assert!(
        s.contains("db-backup  10.0.0.22:3306       1  backup, disabled\n"),
        "{s}"
    );
    assert!(s.contains("(servers listed above)"), "{s}");
    assert!(
        s.contains("backends not used by any frontend: spare"),
        "{s}"
    );
}
