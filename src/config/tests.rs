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
    assert_eq!(be.check, None);
    assert_eq!(cfg.stats, None);
    assert_eq!(
        be.servers,
        vec![Server {
            name: "s1".into(),
            address: addr("127.0.0.1:9000"),
            weight: 1,
            backup: false,
            disabled: false,
            cookie: None,
            check: None,
            slowstart: None,
            tls: None,
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
check = { port = 3307 }
slowstart = "1m"

[backend.mysql.check]
type = "tcp"
inter = "3s"
fastinter = "1s"
downinter = "10s"
rise = 4
fall = 5
timeout = "750ms"
port = 9200
address = "10.0.0.99"
observe = "layer4"
error_limit = 20
on_marked_down = "shutdown-sessions"

[stats]
bind = "127.0.0.1:8404"
uri = "/haproxy-stats"
auth = { user = "admin", password = "s3cret" }
admin = true
refresh = "10s"
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

    let check = Check {
        kind: CheckKind::Tcp,
        inter: Duration::from_secs(3),
        fastinter: Duration::from_secs(1),
        downinter: Duration::from_secs(10),
        rise: 4,
        fall: 5,
        timeout: Duration::from_millis(750),
        port: Some(9200),
        address: Some("10.0.0.99".parse().unwrap()),
        observe: Some(Observe::Layer4),
        error_limit: 20,
        shutdown_sessions_on_down: true,
    };
    assert_eq!(be.check.as_ref(), Some(&check));
    assert_eq!(be.servers[0].check, None);
    assert_eq!(be.servers[0].slowstart, None);
    assert_eq!(
        db2.check,
        Some(Check {
            port: Some(3307),
            ..check
        })
    );
    assert_eq!(db2.slowstart, Some(Duration::from_secs(60)));

    assert_eq!(
        cfg.stats,
        Some(Stats {
            bind: addr("127.0.0.1:8404"),
            uri: "/haproxy-stats".into(),
            auth: Some(StatsAuth {
                user: "admin".into(),
                password: "s3cret".into(),
            }),
            admin: true,
            refresh: Duration::from_secs(10),
        })
    );
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
            srv("maxconn = 500"),
            9,
            "backend.be.server[0].maxconn",
            "\"maxconn\" is not supported yet",
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
    // Health checks, slow start, the stats page and TLS are no longer "later".
    ok(&be("check = { type = \"tcp\" }"));
    rejects(
        &fe("tls = { bind = [\":443\"] }"),
        5,
        "frontend.fe.tls.certs",
        "missing required key \"certs\"",
    );
    ok(&srv("check = true\nslowstart = \"30s\""));
    ok(&format!("{MINIMAL}\n[stats]\nbind = \"127.0.0.1:8404\"\n"));
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

// ---------------------------------------------------------------- health checks

/// [`MINIMAL`] with `extra` lines in the backend (from line 7).
fn tcp_be(extra: &str) -> String {
    MINIMAL.replace("[backend.be]\n", &format!("[backend.be]\n{extra}\n"))
}

/// [`MINIMAL`] with `extra` lines in the server (from line 9, after `name`).
fn tcp_srv(extra: &str) -> String {
    MINIMAL.replace("name = \"s1\"\n", &format!("name = \"s1\"\n{extra}\n"))
}

/// The default check: a TCP connect every 2 s, rise 2, fall 3, timeout 2 s.
fn default_tcp_check() -> Check {
    Check {
        kind: CheckKind::Tcp,
        inter: Duration::from_secs(2),
        fastinter: Duration::from_secs(2),
        downinter: Duration::from_secs(2),
        rise: 2,
        fall: 3,
        timeout: Duration::from_secs(2),
        port: None,
        address: None,
        observe: None,
        error_limit: 10,
        shutdown_sessions_on_down: false,
    }
}

#[test]
fn check_defaults() {
    // `check = true` without a backend check: every default.
    let cfg = ok(&tcp_srv("check = true"));
    assert_eq!(cfg.backends[0].check, None);
    assert_eq!(cfg.backends[0].servers[0].check, Some(default_tcp_check()));
    assert_eq!(cfg.backends[0].servers[0].slowstart, None);
    // An empty backend check is the default check too; servers without `check` (or with
    // `check = false`) are not checked.
    let cfg = ok(&format!(
        "{}[[backend.be.server]]\nname = \"s2\"\naddress = \"127.0.0.1:9001\"\ncheck = false\n",
        tcp_be("check = {}")
    ));
    let be = &cfg.backends[0];
    assert_eq!(be.check, Some(default_tcp_check()));
    assert_eq!((&be.servers[0].check, &be.servers[1].check), (&None, &None));
    // An http check gets GET / expecting 200-399.
    let cfg = ok(&tcp_be("check = { type = \"http\" }"));
    assert_eq!(
        cfg.backends[0].check.as_ref().unwrap().kind,
        CheckKind::Http(HttpCheck {
            method: "GET".into(),
            path: "/".into(),
            host: None,
            expect_status: vec![(200, 399)],
            expect_body: None,
        })
    );
    // fastinter and downinter follow inter; timeout follows the merged timeouts.check.
    let cfg = ok(&format!(
        "[defaults.timeouts]\ncheck = \"3s\"\n{}",
        tcp_be("check = { inter = \"10s\" }")
    ));
    let c = cfg.backends[0].check.clone().unwrap();
    assert_eq!(
        (c.inter, c.fastinter, c.downinter, c.timeout),
        (
            Duration::from_secs(10),
            Duration::from_secs(10),
            Duration::from_secs(10),
            Duration::from_secs(3)
        )
    );
    let cfg = ok(&tcp_be(
        "timeouts = { check = \"500ms\" }\n[backend.be.check]\ntype = \"tcp\"",
    ));
    assert_eq!(
        cfg.backends[0].check.as_ref().unwrap().timeout,
        Duration::from_millis(500)
    );
    let cfg = ok(&tcp_be(
        "timeouts = { check = \"500ms\" }\ncheck = { timeout = \"4s\" }",
    ));
    assert_eq!(
        cfg.backends[0].check.as_ref().unwrap().timeout,
        Duration::from_secs(4)
    );
}

#[test]
fn http_check_every_key_is_read() {
    let cfg = ok(&http_be(
        r#"check = { type = "http", method = "HEAD", path = "/health?full=1", host = "app.example", expect_status = [204, "300-302"], expect_body = "ok", inter = "2s", fastinter = "500ms", downinter = "5s", rise = 1, fall = 2, timeout = "1s", port = 8081, address = "[::1]", observe = "layer7", error_limit = 3, on_marked_down = "shutdown-sessions" }"#,
    ));
    let c = cfg.backends[0].check.clone().unwrap();
    let http = HttpCheck {
        method: "HEAD".into(),
        path: "/health?full=1".into(),
        host: Some("app.example".into()),
        expect_status: vec![(204, 204), (300, 302)],
        expect_body: Some("ok".into()),
    };
    assert!(http.status_ok(204) && http.status_ok(301) && !http.status_ok(200));
    assert_eq!(
        c,
        Check {
            kind: CheckKind::Http(http),
            inter: Duration::from_secs(2),
            fastinter: Duration::from_millis(500),
            downinter: Duration::from_secs(5),
            rise: 1,
            fall: 2,
            timeout: Duration::from_secs(1),
            port: Some(8081),
            address: Some("::1".parse().unwrap()),
            observe: Some(Observe::Layer7),
            error_limit: 3,
            shutdown_sessions_on_down: true,
        }
    );
    assert_eq!(c.target(addr("127.0.0.1:9000")), addr("[::1]:8081"));
    // A single status or range is accepted without the array.
    let cfg = ok(&http_be(
        "check = { type = \"http\", expect_status = \"200-299\" }",
    ));
    let CheckKind::Http(h) = &cfg.backends[0].check.as_ref().unwrap().kind else {
        panic!("an http check");
    };
    assert_eq!(h.expect_status, [(200, 299)]);
    let cfg = ok(&http_be("check = { type = \"http\", expect_status = 200 }"));
    let CheckKind::Http(h) = &cfg.backends[0].check.as_ref().unwrap().kind else {
        panic!("an http check");
    };
    assert_eq!(h.expect_status, [(200, 200)]);
}

#[test]
fn server_check_tables_override_the_backend() {
    let text = r#"
[frontend.fe]
bind = ["127.0.0.1:8000"]
default_backend = "be"

[backend.be]
check = { type = "http", path = "/health", inter = "2s", fastinter = "1s", rise = 3 }
[[backend.be.server]]
name = "same"
address = "127.0.0.1:9000"
check = true
[[backend.be.server]]
name = "faster"
address = "127.0.0.1:9001"
check = { inter = "500ms", port = 8081, path = "/ready", observe = "layer4" }
[[backend.be.server]]
name = "tcp"
address = "127.0.0.1:9002"
check = { type = "tcp" }
[[backend.be.server]]
name = "off"
address = "127.0.0.1:9003"
check = false
slowstart = "30s"
"#;
    let cfg = ok(text);
    let be = &cfg.backends[0];
    let base = be.check.clone().unwrap();
    assert_eq!(base.inter, Duration::from_secs(2));
    assert_eq!(base.fastinter, Duration::from_secs(1));
    assert_eq!(base.downinter, Duration::from_secs(2));
    assert_eq!(base.rise, 3);
    assert_eq!(be.servers[0].check.as_ref(), Some(&base));

    let faster = be.servers[1].check.clone().unwrap();
    let CheckKind::Http(h) = &faster.kind else {
        panic!("the type is inherited");
    };
    assert_eq!(h.path, "/ready");
    assert_eq!(faster.inter, Duration::from_millis(500));
    // fastinter is the backend's; downinter follows the server's inter.
    assert_eq!(faster.fastinter, Duration::from_secs(1));
    assert_eq!(faster.downinter, Duration::from_millis(500));
    assert_eq!((faster.rise, faster.port), (3, Some(8081)));
    assert_eq!(faster.observe, Some(Observe::Layer4));

    let tcp = be.servers[2].check.clone().unwrap();
    assert_eq!(tcp.kind, CheckKind::Tcp);
    assert_eq!((tcp.inter, tcp.rise), (Duration::from_secs(2), 3));

    assert_eq!(be.servers[3].check, None);
    assert_eq!(be.servers[3].slowstart, Some(Duration::from_secs(30)));

    // A server may turn a tcp check (or none) into an http one.
    let cfg = ok(&tcp_srv("check = { type = \"http\", path = \"/x\" }"));
    let CheckKind::Http(h) = &cfg.backends[0].servers[0].check.as_ref().unwrap().kind else {
        panic!("an http check");
    };
    assert_eq!((h.method.as_str(), h.path.as_str()), ("GET", "/x"));
}

#[test]
fn check_errors() {
    for (extra, key, phrase) in [
        (
            "check = true",
            "backend.be.check",
            "expected a table such as { type = \"http\", path = \"/health\" }, found a boolean (true): a backend's check holds the settings; servers enable it with check = true",
        ),
        (
            "check = { typ = \"http\" }",
            "backend.be.check.typ",
            "unknown key \"typ\" in the check table (did you mean \"type\"?)",
        ),
        (
            "check = { type = \"htttp\" }",
            "backend.be.check.type",
            "unknown check type \"htttp\" (did you mean \"http\"?): expected \"tcp\" or \"http\"",
        ),
        (
            "check = { path = \"/health\" }",
            "backend.be.check.path",
            "\"path\" applies to http checks only, and this check is type \"tcp\" (set type = \"http\")",
        ),
        (
            "check = { type = \"tcp\", expect_status = [200] }",
            "backend.be.check.expect_status",
            "\"expect_status\" applies to http checks only",
        ),
        (
            "check = { rise = 0 }",
            "backend.be.check.rise",
            "rise must be at least 1, found 0",
        ),
        (
            "check = { fall = -2 }",
            "backend.be.check.fall",
            "fall must be at least 1, found -2",
        ),
        (
            "check = { error_limit = 0 }",
            "backend.be.check.error_limit",
            "error_limit must be at least 1",
        ),
        (
            "check = { inter = \"0s\" }",
            "backend.be.check.inter",
            "inter must be greater than zero",
        ),
        (
            "check = { timeout = 2 }",
            "backend.be.check.timeout",
            "write \"2s\"",
        ),
        (
            "check = { port = 0 }",
            "backend.be.check.port",
            "0 is out of range (expected 1..=65535)",
        ),
        (
            "check = { address = \"10.0.0.1:8080\" }",
            "backend.be.check.address",
            "write address = \"10.0.0.1\" and port = 8080",
        ),
        (
            "check = { address = \"health.local\" }",
            "backend.be.check.address",
            "hostnames are not resolved",
        ),
        (
            "check = { observe = \"layer7\" }",
            "backend.be.check.observe",
            "observe = \"layer7\" needs mode http (it watches HTTP responses), and backend \"be\" is mode tcp: use \"layer4\"",
        ),
        (
            "check = { observe = \"layer3\" }",
            "backend.be.check.observe",
            "unknown observe \"layer3\"",
        ),
        (
            "check = { on_marked_down = \"shutdown-session\" }",
            "backend.be.check.on_marked_down",
            "unknown on_marked_down \"shutdown-session\" (did you mean \"shutdown-sessions\"?): the only value is \"shutdown-sessions\"",
        ),
        (
            "check = { on_marked_down = \"drain\" }",
            "backend.be.check.on_marked_down",
            "the only value is \"shutdown-sessions\"",
        ),
        (
            "inter = \"2s\"",
            "backend.be.inter",
            "unknown key \"inter\" in [backend.NAME] (it belongs in the check table)",
        ),
    ] {
        rejects(&tcp_be(extra), 7, key, phrase);
    }
    for (extra, key, phrase) in [
        (
            "check = { type = \"http\", expect_status = [] }",
            "backend.be.check.expect_status",
            "expect_status is empty: give at least one status or range",
        ),
        (
            "check = { type = \"http\", expect_status = [200, 600] }",
            "backend.be.check.expect_status[1]",
            "status 600 is out of range (expected 100..=599)",
        ),
        (
            "check = { type = \"http\", expect_status = [\"399-200\"] }",
            "backend.be.check.expect_status[0]",
            "\"399-200\": the range is empty (399 is above 200): write \"200-399\"",
        ),
        (
            "check = { type = \"http\", expect_status = [\"2xx\"] }",
            "backend.be.check.expect_status[0]",
            "\"2xx\": expected a status such as 200 or a range",
        ),
        (
            "check = { type = \"http\", expect_status = [true] }",
            "backend.be.check.expect_status[0]",
            "found a boolean (true)",
        ),
        (
            "check = { type = \"http\", method = \"get\" }",
            "backend.be.check.method",
            "methods are case-sensitive, write \"GET\"",
        ),
        (
            "check = { type = \"http\", method = \"GET /\" }",
            "backend.be.check.method",
            "a method is a token",
        ),
        (
            "check = { type = \"http\", path = \"health\" }",
            "backend.be.check.path",
            "path \"health\" must start with '/'",
        ),
        (
            "check = { type = \"http\", path = \"/a b\" }",
            "backend.be.check.path",
            "spaces, control characters and non-ASCII characters are not allowed",
        ),
        (
            "check = { type = \"http\", host = \"a\\r\\nX-Admin: 1\" }",
            "backend.be.check.host",
            "a Host header may not contain spaces, CR, LF",
        ),
        (
            "check = { type = \"http\", expect_body = \"\" }",
            "backend.be.check.expect_body",
            "must not be empty",
        ),
        (
            "check = { type = \"http\", observe = \"layr7\" }",
            "backend.be.check.observe",
            "unknown observe \"layr7\" (did you mean \"layer7\"?): expected \"layer4\" or \"layer7\"",
        ),
    ] {
        rejects(&http_be(extra), 10, key, phrase);
    }
    let long = "x".repeat(16 * 1024 + 1);
    rejects(
        &http_be(&format!(
            "check = {{ type = \"http\", expect_body = \"{long}\" }}"
        )),
        10,
        "backend.be.check.expect_body",
        "only the first 16384 bytes of a response body are searched",
    );
    // layer7 observation is fine in an http backend, whatever the check type.
    ok(&http_be("check = { type = \"tcp\", observe = \"layer7\" }"));

    for (extra, key, phrase) in [
        (
            "check = \"yes\"",
            "backend.be.server[0].check",
            "expected true, false or a table of check keys such as { port = 8081 }, found a string (\"yes\")",
        ),
        (
            "check = { prot = 8081 }",
            "backend.be.server[0].check.prot",
            "did you mean \"port\"?",
        ),
        (
            "check = { path = \"/health\" }",
            "backend.be.server[0].check.path",
            "\"path\" applies to http checks only, and this check is type \"tcp\"",
        ),
        (
            "check = { observe = \"layer7\" }",
            "backend.be.server[0].check.observe",
            "and backend \"be\" is mode tcp",
        ),
        (
            "slowstart = \"0s\"",
            "backend.be.server[0].slowstart",
            "slowstart must be greater than zero",
        ),
        (
            "slowstart = 30",
            "backend.be.server[0].slowstart",
            "write \"30s\"",
        ),
        (
            "rise = 2",
            "backend.be.server[0].rise",
            "unknown key \"rise\" in [[backend.NAME.server]] (it belongs in the check table)",
        ),
        (
            "check = { weight = 2 }",
            "backend.be.server[0].check.weight",
            "unknown key \"weight\" in the check table (it belongs in [[backend.NAME.server]])",
        ),
    ] {
        rejects(&tcp_srv(extra), 9, key, phrase);
    }
    // A server's http key is checked against the type it inherits.
    rejects(
        &tcp_be("check = { type = \"http\" }").replace(
            "name = \"s1\"\n",
            "name = \"s1\"\ncheck = { type = \"tcp\", host = \"x\" }\n",
        ),
        10,
        "backend.be.server[0].check.host",
        "\"host\" applies to http checks only",
    );
    ok(&tcp_be("check = { type = \"http\" }").replace(
        "name = \"s1\"\n",
        "name = \"s1\"\ncheck = { host = \"x\" }\n",
    ));
    // A check table as a [section] reports at its keys' lines.
    rejects(
        &tcp_be("[backend.be.check]\ntype = \"http\"\nrise = 0"),
        9,
        "backend.be.check.rise",
        "rise must be at least 1",
    );
}

// ---------------------------------------------------------------- stats

/// [`MINIMAL`] followed by a `[stats]` section with `body` (its keys from line 12).
fn with_stats(body: &str) -> String {
    format!("{MINIMAL}\n[stats]\n{body}\n")
}

#[test]
fn stats_defaults_and_keys() {
    let cfg = ok(&with_stats("bind = \"127.0.0.1:8404\""));
    assert_eq!(
        cfg.stats,
        Some(Stats {
            bind: addr("127.0.0.1:8404"),
            uri: "/stats".into(),
            auth: None,
            admin: false,
            refresh: Duration::from_secs(5),
        })
    );
    let cfg = ok(&with_stats(
        "bind = \"[::1]:8404\"\nuri = \"/\"\nauth = { user = \"ops\", password = \"p:w\" }\nadmin = false\nrefresh = \"1m\"",
    ));
    let st = cfg.stats.unwrap();
    assert_eq!(st.bind, addr("[::1]:8404"));
    assert_eq!(st.uri, "/");
    assert_eq!(st.auth.unwrap().password, "p:w");
    assert_eq!(st.refresh, Duration::from_secs(60));
    // Another port on the frontend's address is fine.
    ok(&with_stats("bind = \"127.0.0.1:8001\""));
}

#[test]
fn stats_errors() {
    for (body, line, key, phrase) in [
        (
            "uri = \"/s\"",
            11,
            "stats.bind",
            "missing required key \"bind\": give the address of the stats page, e.g. bind = \"127.0.0.1:8404\"",
        ),
        (
            "bind = \":8404\"",
            12,
            "stats.bind",
            "the stats page listens on one address: write \"127.0.0.1:8404\" to keep it local",
        ),
        (
            "bind = [\"127.0.0.1:8404\"]",
            12,
            "stats.bind",
            "expected one address such as \"127.0.0.1:8404\" (a string), found an array",
        ),
        (
            "bind = \"stats.local:8404\"",
            12,
            "stats.bind",
            "hostnames are not resolved",
        ),
        (
            "bind = \"127.0.0.1:8000\"",
            12,
            "stats.bind",
            "127.0.0.1:8000 is already bound by frontend \"fe\" (line 3): the stats page needs an address of its own",
        ),
        (
            "bind = \"0.0.0.0:8000\"",
            12,
            "stats.bind",
            "0.0.0.0:8000 overlaps 127.0.0.1:8000 of frontend \"fe\" (line 3): the stats page needs a port of its own",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nuri = \"/metrics\"",
            13,
            "stats.uri",
            "uri \"/metrics\" is reserved",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nuri = \"stats\"",
            13,
            "stats.uri",
            "uri \"stats\" must start with '/'",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nuri = \"/stats;csv\"",
            13,
            "stats.uri",
            "contains ';'",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nuri = \"/stats?x=1\"",
            13,
            "stats.uri",
            "contains '?'",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nadmin = true",
            13,
            "stats.admin",
            "admin = true needs auth: add auth = { user = \"...\", password = \"...\" }",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nadmin = \"yes\"",
            13,
            "stats.admin",
            "expected a boolean",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nrefresh = \"0s\"",
            13,
            "stats.refresh",
            "refresh must be greater than zero",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nrefresh = 5",
            13,
            "stats.refresh",
            "write \"5s\"",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nrefrsh = \"5s\"",
            13,
            "stats.refrsh",
            "unknown key \"refrsh\" in [stats] (did you mean \"refresh\"?)",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nauth = \"admin:pw\"",
            13,
            "stats.auth",
            "expected a table such as { user = \"admin\", password = \"...\" }, found a string",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nauth = { user = \"a:b\", password = \"x\" }",
            13,
            "stats.auth.user",
            "user \"a:b\" contains ':'",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nauth = { user = \"\", password = \"x\" }",
            13,
            "stats.auth.user",
            "must not be empty",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nauth = { user = \"a\", password = \"\" }",
            13,
            "stats.auth.password",
            "must not be empty",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nauth = { user = \"a\" }",
            13,
            "stats.auth.password",
            "missing required key \"password\"",
        ),
        (
            "bind = \"127.0.0.1:8404\"\nauth = { usr = \"a\", password = \"x\" }",
            13,
            "stats.auth.usr",
            "unknown key \"usr\" in the stats auth table (did you mean \"user\"?)",
        ),
    ] {
        rejects(&with_stats(body), line, key, phrase);
    }
    // An invalid auth does not also report "admin needs auth".
    let text = with_stats("bind = \"127.0.0.1:8404\"\nauth = { user = \"a\" }\nadmin = true");
    assert_eq!(errors(&text).len(), 1);
    rejects(
        &format!("stats = true\n{MINIMAL}"),
        1,
        "stats",
        "expected a table, found a boolean (true)",
    );
    rejects(
        &MINIMAL.replace("[backend.be]", "[backend.be]\nuri = \"/stats\""),
        7,
        "backend.be.uri",
        "unknown key \"uri\" in [backend.NAME] (it belongs in [stats])",
    );
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

#[test]
fn summary_shows_checks_and_stats() {
    let cfg = ok(r#"
[defaults]
mode = "http"

[stats]
bind = "127.0.0.1:8404"
auth = { user = "ops", password = "x" }
admin = true

[frontend.web]
bind = ["127.0.0.1:8080"]
default_backend = "app"
[[frontend.web.use_backend]]
backend = "plain"
if = "TRUE"
[[frontend.web.use_backend]]
backend = "unchecked"
if = "TRUE"

[backend.app]
check = { type = "http", path = "/health", expect_status = [200, "300-302"], fastinter = "500ms", observe = "layer7", on_marked_down = "shutdown-sessions" }
[[backend.app.server]]
name = "web1"
address = "10.0.0.11:80"
check = true
slowstart = "30s"
[[backend.app.server]]
name = "web2"
address = "10.0.0.12:80"
check = { port = 8081, inter = "1s" }
[[backend.app.server]]
name = "web3"
address = "10.0.0.13:80"

[backend.plain]
server = [{ name = "p1", address = "10.0.0.21:80", check = true }]

[backend.unchecked]
check = { rise = 5 }
server = [{ name = "u1", address = "10.0.0.31:80" }]
"#);
    let s = summary(&cfg);
    for expected in [
        "stats     bind 127.0.0.1:8404, uri /stats, auth ops, admin on, refresh 5s\n",
        "       check  http GET /health expect 200,300-302 every 2s fastinter 500ms rise 2 fall 3 timeout 2s observe layer7 error_limit 10 on_marked_down shutdown-sessions  (2 of 3 servers)\n",
        "10.0.0.11:80       1  check, slowstart 30s\n",
        "10.0.0.12:80       1  check (every 1s port 8081)\n",
        "       check  tcp every 2s rise 2 fall 3 timeout 2s  (defaults, no check table; 1 of 1 servers)\n",
        "10.0.0.21:80       1  check\n",
        "       check  tcp every 2s rise 5 fall 3 timeout 2s  (no server has check = true)\n",
    ] {
        assert!(s.contains(expected), "missing {expected:?} in:\n{s}");
    }
    let web3 = s.lines().find(|l| l.contains("10.0.0.13:80")).unwrap();
    assert!(web3.ends_with("10.0.0.13:80       1"), "{s}");
    // No stats line, no check line without checks.
    let s = summary(&ok(MINIMAL));
    assert!(!s.contains("stats") && !s.contains("check"), "{s}");
}

// ---------------------------------------------------------------- mode http

/// [`MINIMAL`] in mode http: extra frontend keys and tables go at line 8 (after
/// `default_backend`), extra backend keys at line 10 (after `[backend.be]`).
const HTTP: &str = r#"
[defaults]
mode = "http"

[frontend.fe]
bind = ["127.0.0.1:8000"]
default_backend = "be"

[backend.be]
[[backend.be.server]]
name = "s1"
address = "127.0.0.1:9000"
"#;

/// [`HTTP`] with `extra` lines in the frontend, from line 8.
fn http_fe(extra: &str) -> String {
    HTTP.replace(
        "default_backend = \"be\"\n",
        &format!("default_backend = \"be\"\n{extra}\n"),
    )
}

/// [`HTTP`] with `extra` lines in the backend, from line 10.
fn http_be(extra: &str) -> String {
    HTTP.replace("[backend.be]\n", &format!("[backend.be]\n{extra}\n"))
}

/// A temporary directory for one test's errorfiles, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("halb-config-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn http_of(cfg: &Config, frontend: usize) -> &HttpFrontend {
    cfg.frontends[frontend]
        .http
        .as_deref()
        .expect("an http frontend")
}

#[test]
fn http_frontend_gets_every_default() {
    let cfg = ok(HTTP);
    let fe = &cfg.frontends[0];
    assert_eq!(fe.mode, Mode::Http);
    assert_eq!(cfg.backends[0].mode, Mode::Http);
    let http = http_of(&cfg, 0);
    assert!(http.request_rules.is_empty());
    assert!(http.response_rules.is_empty());
    assert!(http.use_backends.is_empty());
    assert_eq!(http.forwarding, crate::http::rewrite::Forwarding::default());
    assert_eq!(http.limits, crate::http::Limits::default());
    assert_eq!(http.max_body_size, None);
    assert_eq!(http.errors, crate::http::errors::ErrorPages::new());
    // The predefined ACLs are there even without an acl table.
    assert!(http.acls.names().any(|n| n == "ssl_fc"));

    // default_backend is optional in http mode (unrouted requests get a 404).
    let cfg = ok(&HTTP.replace("default_backend = \"be\"\n", ""));
    assert_eq!(cfg.frontends[0].default_backend, None);
    assert_eq!(cfg.frontends[0].default_backend_index, None);
    // ... and a frontend alone can set mode http.
    let cfg = ok(&MINIMAL
        .replace("[frontend.fe]", "[frontend.fe]\nmode = \"http\"")
        .replace("[backend.be]", "[backend.be]\nmode = \"http\""));
    assert!(cfg.frontends[0].http.is_some());
}

#[test]
fn full_http_config_round_trip() {
    let page =
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy";
    let dir = TempDir::new("round-trip");
    let errorfile = dir.file("503.http", page);
    let text = format!(
        r#"
[defaults]
mode = "http"

[frontend.web]
bind = [":8080"]
default_backend = "app"
forwardfor = {{ except = ["127.0.0.0/8", "::1"] }}
x_forwarded_proto = true
x_forwarded_port = true
forwarded = {{ proto = true, by = true }}
max_request_head = 32768
max_request_line = 4096
max_headers = 50
max_body_size = 1048576
errorfile = {{ 503 = "{}" }}
timeouts = {{ http_request = "5s", http_keep_alive = "20s" }}

[frontend.web.acl]
is_api = "path_beg /api /v1"
from_lan = "src 10.0.0.0/8"
is_img = ["path_end .png", "path_end .jpg"]

[[frontend.web.http_request]]
redirect = "scheme https"
code = 301
unless = "ssl_fc"
[[frontend.web.http_request]]
redirect = "location https://example.com/"
[[frontend.web.http_request]]
redirect = "prefix /new"
code = 308
[[frontend.web.http_request]]
deny = true
if = "is_api !from_lan"
[[frontend.web.http_request]]
deny = 503
if = "is_img || is_api"
[[frontend.web.http_request]]
set_header = {{ name = "X-Env", value = "prod" }}
[[frontend.web.http_request]]
add_header = {{ name = "X-Via", value = "" }}
[[frontend.web.http_request]]
del_header = "X-Debug"
unless = "from_lan"

[[frontend.web.http_response]]
set_header = {{ name = "Strict-Transport-Security", value = "max-age=31536000" }}
[[frontend.web.http_response]]
del_header = "Server"
if = "is_api"

[[frontend.web.use_backend]]
backend = "api"
if = "is_api"
[[frontend.web.use_backend]]
backend = "static"
unless = "!is_img"

[backend.app]
cookie = {{ name = "SRV", mode = "insert", indirect = true, nocache = true, httponly = true, secure = true }}
http_server_close = true
http_reuse = "never"
pool_max_idle = 0
pool_idle_timeout = "1m"
[[backend.app.server]]
name = "w1"
address = "10.0.0.11:80"
cookie = "w1"
[[backend.app.server]]
name = "w2"
address = "10.0.0.12:80"

[backend.api]
balance = "url_param(userid)"
http_reuse = "always"
server = [{{ name = "a1", address = "10.0.0.21:80" }}]

[backend.static]
balance = "uri whole len 10 depth 2"
hash_type = "consistent"
server = [{{ name = "s1", address = "10.0.0.31:80" }}]
"#,
        errorfile.display()
    );
    let cfg = ok(&text);
    let fe = &cfg.frontends[0];
    assert_eq!(fe.timeouts.http_request, Duration::from_secs(5));
    assert_eq!(fe.timeouts.http_keep_alive, Duration::from_secs(20));
    let http = http_of(&cfg, 0);

    let user: Vec<&str> = http.acls.names().take(3).collect();
    assert_eq!(user, ["is_api", "from_lan", "is_img"]);

    let rules = &http.request_rules;
    assert_eq!(rules.len(), 8);
    let redirect = |i: usize| match &rules[i].action {
        RequestAction::Redirect(r) => r.clone(),
        other => panic!("rule {i}: {other:?}"),
    };
    assert_eq!(
        redirect(0),
        Redirect {
            kind: RedirectKind::Scheme("https".into()),
            code: 301
        }
    );
    assert_eq!(
        rules[0].condition.as_ref().unwrap().to_string(),
        "unless ssl_fc"
    );
    assert_eq!(
        redirect(1),
        Redirect {
            kind: RedirectKind::Location("https://example.com/".into()),
            code: 302
        }
    );
    assert!(rules[1].condition.is_none());
    assert_eq!(redirect(2).kind, RedirectKind::Prefix("/new".into()));
    assert_eq!(redirect(2).code, 308);
    assert!(matches!(rules[3].action, RequestAction::Deny(403)));
    assert_eq!(
        rules[3].condition.as_ref().unwrap().to_string(),
        "if is_api !from_lan"
    );
    assert!(matches!(rules[4].action, RequestAction::Deny(503)));
    assert_eq!(
        rules[4].condition.as_ref().unwrap().to_string(),
        "if is_img || is_api"
    );
    use crate::http::rewrite::{HeaderRule, RuleOp};
    let header = |i: usize| match &rules[i].action {
        RequestAction::Header(h) => h.clone(),
        other => panic!("rule {i}: {other:?}"),
    };
    assert_eq!(header(5), HeaderRule::set("X-Env", "prod").unwrap());
    assert_eq!(header(6), HeaderRule::add("X-Via", "").unwrap());
    assert_eq!(header(7).op(), RuleOp::Del);
    assert_eq!(header(7).name(), "X-Debug");

    assert_eq!(http.response_rules.len(), 2);
    assert_eq!(
        http.response_rules[0].rule,
        HeaderRule::set("Strict-Transport-Security", "max-age=31536000").unwrap()
    );
    assert!(http.response_rules[0].condition.is_none());
    assert_eq!(
        http.response_rules[1].rule,
        HeaderRule::del("Server").unwrap()
    );
    assert_eq!(
        http.response_rules[1]
            .condition
            .as_ref()
            .unwrap()
            .to_string(),
        "if is_api"
    );

    let routes: Vec<(&str, usize, String)> = http
        .use_backends
        .iter()
        .map(|u| (u.backend.as_str(), u.backend_index, u.condition.to_string()))
        .collect();
    let api = cfg.backend_index("api").unwrap();
    let stat = cfg.backend_index("static").unwrap();
    assert_eq!(
        routes,
        [
            ("api", api, "if is_api".to_string()),
            ("static", stat, "unless !is_img".to_string())
        ]
    );
    assert_eq!(fe.default_backend_index, cfg.backend_index("app"));

    let fw = &http.forwarding;
    assert_eq!(fw.forwardfor.as_ref().unwrap().except.len(), 2);
    assert!(fw.x_forwarded_proto && fw.x_forwarded_port);
    assert_eq!(
        fw.forwarded,
        Some(crate::http::rewrite::ForwardedParams {
            proto: true,
            by: true
        })
    );
    assert_eq!(
        http.limits,
        crate::http::Limits {
            max_head: 32768,
            max_request_line: 4096,
            max_headers: 50
        }
    );
    assert_eq!(http.max_body_size, Some(1 << 20));
    assert_eq!(http.errors.get(503), Some(&page[..]));
    assert_eq!(
        http.errors.get(502),
        crate::http::errors::ErrorPages::new().get(502)
    );

    let app = &cfg.backends[cfg.backend_index("app").unwrap()];
    let cookie = app.cookie.as_ref().unwrap();
    let o = cookie.options();
    assert_eq!(o.name, "SRV");
    assert_eq!(o.mode, crate::http::cookie::CookieMode::Insert);
    assert!(o.indirect && o.nocache && o.httponly && o.secure);
    assert_eq!(cookie.server_of(b"w1"), Some(0));
    assert_eq!(app.servers[0].cookie.as_deref(), Some("w1"));
    assert_eq!(app.servers[1].cookie, None);
    assert!(app.http_server_close);
    assert_eq!(app.http_reuse, HttpReuse::Never);
    assert_eq!(app.pool_max_idle, 0);
    assert_eq!(app.pool_idle_timeout, Duration::from_secs(60));

    let api = &cfg.backends[api];
    assert_eq!(api.balance, Balance::UrlParam("userid".into()));
    assert_eq!(api.http_reuse, HttpReuse::Always);
    let stat = &cfg.backends[stat];
    assert_eq!(
        stat.balance,
        Balance::Uri(UriHashOptions {
            whole: true,
            len: 10,
            depth: 2
        })
    );
    assert_eq!(stat.hash_type, HashType::Consistent);

    // The same text gives the same configuration.
    assert_eq!(ok(&text), cfg);
}

#[test]
fn http_balance_forms() {
    let uri = |whole, len, depth| Balance::Uri(UriHashOptions { whole, len, depth });
    for (text, want) in [
        ("uri", uri(false, 0, 0)),
        ("uri whole", uri(true, 0, 0)),
        ("uri len 10", uri(false, 10, 0)),
        ("uri depth 3", uri(false, 0, 3)),
        ("uri  depth 2 whole len 7", uri(true, 7, 2)),
        ("url_param(userid)", Balance::UrlParam("userid".into())),
        ("hdr(host)", Balance::Hdr("host".into())),
        ("hdr(X-Tenant)", Balance::Hdr("X-Tenant".into())),
    ] {
        let cfg = ok(&http_be(&format!("balance = \"{text}\"")));
        assert_eq!(cfg.backends[0].balance, want, "{text}");
    }
    for (text, phrase) in [
        ("uri whole whole", "\"whole\" is given twice"),
        ("uri len", "\"len\" needs a number from 1"),
        ("uri len 0", "\"len\" needs a number from 1"),
        ("uri depth x", "\"depth\" needs a number"),
        (
            "uri hole",
            "unknown option \"hole\" (did you mean \"whole\"?)",
        ),
        ("url_param()", "\"\" is not a valid query parameter name"),
        ("url_param(a&b)", "is not a valid query parameter name"),
        (
            "url_param",
            "write the query parameter name in parentheses: \"url_param(userid)\"",
        ),
        ("hdr host", "\"hdr(host)\""),
        ("hdr(host", "expected \"hdr(NAME)\""),
        ("hdr(host) use_domain_only", "and nothing after it"),
        ("hdr(a b)", "expected \"hdr(NAME)\""),
        ("hdr(a:b)", "\"a:b\" is not a valid header name"),
        (
            "urii",
            "unknown balance algorithm \"urii\" (did you mean \"uri\"?)",
        ),
    ] {
        rejects(
            &http_be(&format!("balance = \"{text}\"")),
            10,
            "backend.be.balance",
            phrase,
        );
    }
}

#[test]
fn forwarding_forms() {
    use crate::http::rewrite::ForwardedParams;
    let fw = |extra: &str| http_of(&ok(&http_fe(extra)), 0).forwarding.clone();
    assert_eq!(fw("forwardfor = true").forwardfor.unwrap().except, []);
    assert_eq!(fw("forwardfor = false").forwardfor, None);
    assert_eq!(fw("forwardfor = {}").forwardfor.unwrap().except, []);
    let one = fw("forwardfor = { except = \"127.0.0.0/8\" }");
    assert_eq!(one.forwardfor.unwrap().except.len(), 1);
    let two = fw("forwardfor = { except = [\"10.0.0.0/8\", \"2001:db8::/32\"] }");
    let except = two.forwardfor.unwrap().except;
    assert!(except[0].contains("10.1.2.3".parse().unwrap()));
    assert!(except[1].contains("2001:db8::1".parse().unwrap()));
    assert_eq!(
        fw("forwarded = true").forwarded,
        Some(ForwardedParams::default())
    );
    assert_eq!(fw("forwarded = false").forwarded, None);
    assert_eq!(
        fw("forwarded = { by = true }").forwarded,
        Some(ForwardedParams {
            proto: false,
            by: true
        })
    );
    let all = fw("x_forwarded_proto = true\nx_forwarded_port = false");
    assert!(all.x_forwarded_proto && !all.x_forwarded_port);

    rejects(
        &http_fe("forwardfor = { except = [\"10.0.0.0/8\", \"10.0.0.300\"] }"),
        8,
        "frontend.fe.forwardfor.except[1]",
        "`10.0.0.300` is not an IP address or CIDR",
    );
    rejects(
        &http_fe("forwardfor = \"yes\""),
        8,
        "frontend.fe.forwardfor",
        "expected true, false or a table such as { except = \"127.0.0.0/8\" }, found a string",
    );
    rejects(
        &http_fe("forwardfor = { exept = \"10.0.0.0/8\" }"),
        8,
        "frontend.fe.forwardfor.exept",
        "did you mean \"except\"?",
    );
    rejects(
        &http_fe("forwarded = { proto = 1 }"),
        8,
        "frontend.fe.forwarded.proto",
        "expected a boolean",
    );
    rejects(
        &http_fe("x_forwarded_port = \"yes\""),
        8,
        "frontend.fe.x_forwarded_port",
        "expected a boolean",
    );
}

#[test]
fn acls_and_conditions() {
    let cfg = ok(&http_fe(
        "acl = { a = \"path_beg /a\", b = [\"src 10.0.0.0/8\", \"src ::1\"] }\n\
         [[frontend.fe.http_request]]\ndeny = true\nif = \"a || !b or METH_POST\"",
    ));
    let rule = &http_of(&cfg, 0).request_rules[0];
    assert_eq!(
        rule.condition.as_ref().unwrap().to_string(),
        "if a || !b || METH_POST"
    );

    let acl = |defs: &str| http_fe(&format!("[frontend.fe.acl]\n{defs}"));
    rejects(
        &acl("is_api = \"path_beg /api\"\nbad = \"pathbeg /x\""),
        10,
        "frontend.fe.acl.bad",
        "unknown fetch `pathbeg`",
    );
    rejects(
        &acl("x = [\"src 10.0.0.0/8\", \"src nope\"]"),
        9,
        "frontend.fe.acl.x[1]",
        "nope",
    );
    rejects(&acl("x = []"), 9, "frontend.fe.acl.x", "empty ACL");
    rejects(&acl("x = 3"), 9, "frontend.fe.acl.x", "expected a string");
    rejects(
        &acl("TRUE = \"src 10.0.0.0/8\""),
        9,
        "frontend.fe.acl.TRUE",
        "is a predefined ACL and cannot be redefined",
    );
    // A condition naming a refused ACL is not reported a second time.
    let text = acl("bad = \"pathbeg /x\"\n[[frontend.fe.http_request]]\ndeny = true\nif = \"bad\"");
    assert_eq!(errors(&text).len(), 1);
}

#[test]
fn request_rules_reject_bad_shapes() {
    let rule = |body: &str| {
        http_fe(&format!(
            "[frontend.fe.acl]\nis_api = \"path_beg /api\"\n[[frontend.fe.http_request]]\n{body}"
        ))
    };
    // The rule's keys start at line 11.
    let cases: Vec<(&str, usize, &str, &str)> = vec![
        (
            "deny = true\nif = \"is_ap\"",
            12,
            "frontend.fe.http_request[0].if",
            "unknown ACL \"is_ap\" in condition \"is_ap\" (did you mean \"is_api\"?)",
        ),
        (
            "deny = true\nunless = \"is_api !zzzz\"",
            12,
            "frontend.fe.http_request[0].unless",
            "unknown ACL \"zzzz\" in condition \"is_api !zzzz\": define it in [frontend.fe.acl]",
        ),
        (
            "deny = true\nif = \"is_api\"\nunless = \"is_api\"",
            13,
            "frontend.fe.http_request[0].unless",
            "a rule takes \"if\" or \"unless\", not both",
        ),
        (
            "deny = true\nif = \"is_api ||\"",
            12,
            "frontend.fe.http_request[0].if",
            "invalid condition \"is_api ||\": `||` with nothing after it",
        ),
        (
            "deny = true\nif = \"\"",
            12,
            "frontend.fe.http_request[0].if",
            "must not be empty",
        ),
        (
            "redirect = \"scheme https\"\ndeny = true",
            12,
            "frontend.fe.http_request[0].deny",
            "a rule has one action and this one already has \"redirect\": put \"deny\" in its own [[frontend.fe.http_request]] entry",
        ),
        (
            "if = \"is_api\"",
            10,
            "frontend.fe.http_request[0]",
            "the rule has no action: give one of \"redirect\", \"deny\", \"set_header\", \"add_header\", \"del_header\"",
        ),
        (
            "redirect = \"scheme https\"\ncode = 200",
            12,
            "frontend.fe.http_request[0].code",
            "redirect code 200 is not allowed: expected 301, 302, 303, 307 or 308",
        ),
        (
            "deny = true\ncode = 301",
            12,
            "frontend.fe.http_request[0].code",
            "\"code\" is the status of a redirect, and this rule is \"deny\"",
        ),
        (
            "redirect = \"location\"",
            11,
            "frontend.fe.http_request[0].redirect",
            "redirect \"location\" needs an argument",
        ),
        (
            "redirect = \"scheme https\\r\\n\"",
            11,
            "frontend.fe.http_request[0].redirect",
            "control character",
        ),
        (
            "redirect = \"prefix /a /b\"",
            11,
            "frontend.fe.http_request[0].redirect",
            "takes one argument without spaces",
        ),
        (
            "redirect = \"schema https\"",
            11,
            "frontend.fe.http_request[0].redirect",
            "unknown redirect kind \"schema\" (did you mean \"scheme\"?)",
        ),
        (
            "redirect = \"scheme ht/tp\"",
            11,
            "frontend.fe.http_request[0].redirect",
            "\"ht/tp\" is not a URI scheme",
        ),
        (
            "deny = 200",
            11,
            "frontend.fe.http_request[0].deny",
            "deny status 200 is not allowed: expected one of 400, 403, 404",
        ),
        (
            "deny = 302",
            11,
            "frontend.fe.http_request[0].deny",
            "deny status 302 is not allowed",
        ),
        (
            "deny = 418",
            11,
            "frontend.fe.http_request[0].deny",
            "deny status 418 is not allowed",
        ),
        (
            "deny = false",
            11,
            "frontend.fe.http_request[0].deny",
            "deny = false denies nothing",
        ),
        (
            "deny = \"403\"",
            11,
            "frontend.fe.http_request[0].deny",
            "expected true or an error status such as 403, found a string",
        ),
        (
            "set_header = { name = \"X-A\", value = \"a\\r\\nInjected: 1\" }",
            11,
            "frontend.fe.http_request[0].set_header.value",
            "invalid value for header `X-A`: control characters (CR, LF, NUL...) are not allowed",
        ),
        (
            "add_header = { name = \"X A\", value = \"a\" }",
            11,
            "frontend.fe.http_request[0].add_header.name",
            "invalid header name `X A`",
        ),
        (
            "set_header = { name = \"Content-Length\", value = \"0\" }",
            11,
            "frontend.fe.http_request[0].set_header.name",
            "header `Content-Length` is managed by the proxy and cannot be changed by a rule",
        ),
        (
            "del_header = \"Connection\"",
            11,
            "frontend.fe.http_request[0].del_header",
            "header `Connection` is managed by the proxy",
        ),
        (
            "set_header = { name = \"host\", value = \"example.com\" }",
            11,
            "frontend.fe.http_request[0].set_header.name",
            "header `host` is managed by the proxy",
        ),
        (
            "set_header = { name = \"X-A\" }",
            11,
            "frontend.fe.http_request[0].set_header.value",
            "missing required key \"value\"",
        ),
        (
            "set_header = { nme = \"X-A\", value = \"1\" }",
            11,
            "frontend.fe.http_request[0].set_header.nme",
            "unknown key \"nme\" in a set_header/add_header table (did you mean \"name\"?)",
        ),
        (
            "set_header = \"X-A 1\"",
            11,
            "frontend.fe.http_request[0].set_header",
            "expected a table such as { name = \"X-Env\", value = \"prod\" }",
        ),
        (
            "deny = true\nbackend = \"be\"",
            12,
            "frontend.fe.http_request[0].backend",
            "it belongs in [[frontend.NAME.use_backend]]",
        ),
    ];
    for (body, line, key, phrase) in cases {
        rejects(&rule(body), line, key, phrase);
    }
    // A single [table] instead of [[array of tables]].
    rejects(
        &http_fe("[frontend.fe.http_request]\ndeny = true"),
        8,
        "frontend.fe.http_request",
        "write [[frontend.fe.http_request]] (double brackets) for each rule",
    );
}

#[test]
fn response_rules() {
    let cfg = ok(&http_fe(
        "http_response = [{ add_header = { name = \"X-A\", value = \"1\" }, unless = \"TRUE\" }]",
    ));
    let rules = &http_of(&cfg, 0).response_rules;
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].condition.as_ref().unwrap().to_string(),
        "unless TRUE"
    );
    rejects(
        &http_fe("[[frontend.fe.http_response]]\nredirect = \"scheme https\""),
        9,
        "frontend.fe.http_response[0].redirect",
        "unknown key \"redirect\" in [[frontend.NAME.http_response]] (it belongs in [[frontend.NAME.http_request]])",
    );
    rejects(
        &http_fe("[[frontend.fe.http_response]]\nset_header = { name = \"Transfer-Encoding\", value = \"x\" }"),
        9,
        "frontend.fe.http_response[0].set_header.name",
        "is managed by the proxy",
    );
    rejects(
        &http_fe("[[frontend.fe.http_response]]\ndel_header = \"Server\"\nadd_header = { name = \"a\", value = \"b\" }"),
        10,
        "frontend.fe.http_response[0].add_header",
        "already has \"del_header\"",
    );
}

#[test]
fn use_backend_rules() {
    let two = format!(
        "{}\n[backend.db]\nmode = \"tcp\"\nserver = [{{ name = \"d\", address = \"10.0.0.5:3306\" }}]\n",
        http_fe("acl = { is_api = \"path_beg /api\" }\n[[frontend.fe.use_backend]]\nbackend = \"db\"\nif = \"is_api\"")
    );
    rejects(
        &two,
        10,
        "frontend.fe.use_backend[0].backend",
        "frontend \"fe\" is mode http but backend \"db\" is mode tcp: a frontend and the backends it routes to must use the same mode",
    );
    let rule = |body: &str| http_fe(&format!("[[frontend.fe.use_backend]]\n{body}"));
    rejects(
        &rule("backend = \"bee\"\nif = \"TRUE\""),
        9,
        "frontend.fe.use_backend[0].backend",
        "backend \"bee\" does not exist (did you mean \"be\"?)",
    );
    rejects(
        &rule("backend = \"be\""),
        8,
        "frontend.fe.use_backend[0].if",
        "a use_backend rule needs a condition",
    );
    rejects(
        &rule("if = \"TRUE\""),
        8,
        "frontend.fe.use_backend[0].backend",
        "missing required key \"backend\"",
    );
    rejects(
        &rule("backend = \"be\"\nif = \"nope\""),
        10,
        "frontend.fe.use_backend[0].if",
        "unknown ACL \"nope\"",
    );
    // A misspelled "if" is reported once, as a misspelling.
    let text = rule("backend = \"be\"\niff = \"TRUE\"");
    rejects(
        &text,
        10,
        "frontend.fe.use_backend[0].iff",
        "did you mean \"if\"?",
    );
    assert_eq!(errors(&text).len(), 1);

    // Without default_backend, rules only.
    let cfg =
        ok(&rule("backend = \"be\"\nif = \"METH_GET\"").replace("default_backend = \"be\"\n", ""));
    let http = http_of(&cfg, 0);
    assert_eq!(http.use_backends[0].backend_index, 0);
    assert_eq!(cfg.frontends[0].default_backend_index, None);
    // tcp frontends still need one.
    rejects(
        &MINIMAL.replace("default_backend = \"be\"\n", ""),
        2,
        "frontend.fe.default_backend",
        "missing required key \"default_backend\"",
    );
}

#[test]
fn limits_and_body_size() {
    let limits = |extra: &str| http_of(&ok(&http_fe(extra)), 0).limits;
    let l = limits("max_request_head = 65536\nmax_request_line = 65536\nmax_headers = 1000");
    assert_eq!(
        (l.max_head, l.max_request_line, l.max_headers),
        (65536, 65536, 1000)
    );
    // An unset max_request_line is capped at a smaller head.
    let l = limits("max_request_head = 4096");
    assert_eq!((l.max_head, l.max_request_line), (4096, 4096));
    let l = limits("max_request_head = 1024\nmax_request_line = 256\nmax_headers = 1");
    assert_eq!(
        (l.max_head, l.max_request_line, l.max_headers),
        (1024, 256, 1)
    );
    let cfg = ok(&http_fe("max_body_size = 1"));
    assert_eq!(http_of(&cfg, 0).max_body_size, Some(1));

    for (extra, key, phrase) in [
        (
            "max_request_head = 2048\nmax_request_line = 4096",
            "frontend.fe.max_request_line",
            "max_request_line (4096) is larger than max_request_head (2048)",
        ),
        (
            "max_request_line = 20000",
            "frontend.fe.max_request_line",
            "max_request_line (20000) is larger than max_request_head (16384)",
        ),
        (
            "max_request_head = 1023",
            "frontend.fe.max_request_head",
            "1023 is out of range (expected 1024..=1048576)",
        ),
        (
            "max_request_line = 255",
            "frontend.fe.max_request_line",
            "out of range (expected 256..=",
        ),
        (
            "max_headers = 1001",
            "frontend.fe.max_headers",
            "1001 is out of range (expected 1..=1000)",
        ),
        (
            "max_body_size = 0",
            "frontend.fe.max_body_size",
            "0 is out of range (expected 1..=",
        ),
    ] {
        let line = 7 + extra.lines().count();
        rejects(&http_fe(extra), line, key, phrase);
    }
}

#[test]
fn errorfiles() {
    let dir = TempDir::new("errorfiles");
    let good = dir.file(
        "403.http",
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno",
    );
    let cfg = ok(&http_fe(&format!(
        "errorfile = {{ 403 = \"{}\" }}",
        good.display()
    )));
    assert_eq!(
        http_of(&cfg, 0).errors.get(403),
        Some(&std::fs::read(&good).unwrap()[..])
    );

    let missing = good.with_file_name("missing.http");
    rejects(
        &http_fe(&format!(
            "errorfile = {{ 503 = \"{}\" }}",
            missing.display()
        )),
        8,
        "frontend.fe.errorfile.503",
        &format!(
            "\"{}\": cannot read the errorfile: No such file or directory",
            missing.display()
        ),
    );
    let wrong = dir.file(
        "wrong.http",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    rejects(
        &http_fe(&format!(
            "[frontend.fe.errorfile]\n503 = \"{}\"",
            wrong.display()
        )),
        9,
        "frontend.fe.errorfile.503",
        &format!(
            "\"{}\": errorfile for status 503: its status line says 200",
            wrong.display()
        ),
    );
    let big = dir.file("big.http", &vec![b'x'; 70_000]);
    rejects(
        &http_fe(&format!("errorfile = {{ 503 = \"{}\" }}", big.display())),
        8,
        "frontend.fe.errorfile.503",
        "larger than the 65536 bytes allowed",
    );
    rejects(
        &http_fe("errorfile = { 200 = \"/etc/halb/200.http\" }"),
        8,
        "frontend.fe.errorfile.200",
        "no error page for status \"200\": expected one of 400, 403",
    );
    rejects(
        &http_fe("errorfile = { 503 = \"errors/503.http\" }"),
        8,
        "frontend.fe.errorfile.503",
        "errorfile path \"errors/503.http\" must be absolute",
    );
}

#[test]
fn cookie_persistence() {
    let cookie = |cookie: &str, servers: &str| {
        format!(
            "[defaults]\nmode = \"http\"\n[frontend.fe]\nbind = [\":80\"]\ndefault_backend = \"be\"\n\
             [backend.be]\ncookie = {cookie}\n{servers}"
        )
    };
    let srv = |name: &str, cookie: &str| {
        format!("[[backend.be.server]]\nname = \"{name}\"\naddress = \"10.0.0.1:80\"\n{cookie}\n")
    };
    let cfg = ok(&cookie(
        "{ name = \"SRV\" }",
        &format!("{}{}", srv("a", "cookie = \"ca\""), srv("b", "")),
    ));
    let c = cfg.backends[0].cookie.as_ref().unwrap();
    let o = c.options();
    assert_eq!(o.name, "SRV");
    assert_eq!(o.mode, crate::http::cookie::CookieMode::Insert);
    assert!(!(o.indirect || o.nocache || o.httponly || o.secure));
    assert_eq!(c.server_of(b"ca"), Some(0));

    // Line 7: the cookie; servers start at line 8 (a: 8-11, b: 12-15, c: 16-19).
    let three = format!(
        "{}{}{}",
        srv("a", "cookie = \"x y\""),
        srv("b", "cookie = \"ok\""),
        srv("c", "cookie = \"ok\"")
    );
    let text = cookie("{ name = \"SRV\" }", &three);
    rejects(
        &text,
        11,
        "backend.be.server[0].cookie",
        "server \"a\": invalid cookie value \"x y\"",
    );
    rejects(
        &text,
        19,
        "backend.be.server[2].cookie",
        "servers \"b\" and \"c\" have the same cookie value \"ok\"",
    );
    let one = srv("a", "cookie = \"a\"");
    rejects(
        &cookie("{ name = \"S R V\" }", &one),
        7,
        "backend.be.cookie.name",
        "invalid cookie name \"S R V\"",
    );
    rejects(
        &cookie("{ name = \"SRV\", mode = \"insrt\" }", &one),
        7,
        "backend.be.cookie.mode",
        "unknown cookie mode \"insrt\"",
    );
    rejects(
        &cookie("{ name = \"SRV\", maxidle = \"1h\" }", &one),
        7,
        "backend.be.cookie.maxidle",
        "\"maxidle\" is not supported yet (arrives with cookie expiry)",
    );
    rejects(
        &cookie("{ name = \"SRV\", maxlife = \"1h\" }", &one),
        7,
        "backend.be.cookie.maxlife",
        "not supported yet",
    );
    rejects(
        &cookie("{ mode = \"insert\" }", &one),
        7,
        "backend.be.cookie.name",
        "missing required key \"name\"",
    );
    rejects(
        &cookie("\"SRV\"", &one),
        7,
        "backend.be.cookie",
        "expected a table such as { name = \"SRV\", mode = \"insert\" }",
    );
    rejects(
        &cookie("{ name = \"SRV\", indirect = \"yes\" }", &one),
        7,
        "backend.be.cookie.indirect",
        "expected a boolean",
    );
    let cfg = ok(&cookie(
        "{ name = \"JSESSIONID\", mode = \"prefix\" }",
        &one,
    ));
    assert_eq!(
        cfg.backends[0].cookie.as_ref().unwrap().options().mode,
        crate::http::cookie::CookieMode::Prefix
    );
    assert!(summary(&cfg).contains("cookie JSESSIONID prefix"));
    let cfg = ok(&cookie("{ name = \"SRV\", mode = \"rewrite\" }", &one));
    assert_eq!(
        cfg.backends[0].cookie.as_ref().unwrap().options().mode,
        crate::http::cookie::CookieMode::Rewrite
    );
    rejects(
        &cookie(
            "{ name = \"JSESSIONID\", mode = \"prefix\" }",
            &srv("a", "cookie = \"a~1\""),
        ),
        11,
        "backend.be.server[0].cookie",
        "server \"a\": cookie value \"a~1\" contains '~'",
    );
    // A server cookie without a backend cookie.
    rejects(
        &http_be("").replace("name = \"s1\"", "name = \"s1\"\ncookie = \"s1\""),
        13,
        "backend.be.server[0].cookie",
        "a server cookie needs cookie persistence on its backend: add cookie = { name = \"SRV\" } to [backend.be]",
    );
    rejects(
        &HTTP.replace("name = \"s1\"", "name = \"s1\"\ncookie = \"\""),
        12,
        "backend.be.server[0].cookie",
        "must not be empty",
    );
}

#[test]
fn http_backend_keys() {
    let be = |extra: &str| ok(&http_be(extra)).backends.remove(0);
    assert_eq!(be("http_reuse = \"always\"").http_reuse, HttpReuse::Always);
    assert_eq!(be("http_reuse = \"safe\"").http_reuse, HttpReuse::Safe);
    assert!(be("http_server_close = true").http_server_close);
    assert_eq!(be("pool_max_idle = 100000").pool_max_idle, 100_000);
    assert_eq!(
        be("pool_idle_timeout = \"500ms\"").pool_idle_timeout,
        Duration::from_millis(500)
    );
    for (extra, key, phrase) in [
        (
            "http_reuse = \"alway\"",
            "backend.be.http_reuse",
            "unknown http_reuse \"alway\" (did you mean \"always\"?)",
        ),
        (
            "pool_max_idle = 100001",
            "backend.be.pool_max_idle",
            "100001 is out of range (expected 0..=100000)",
        ),
        (
            "pool_idle_timeout = \"0s\"",
            "backend.be.pool_idle_timeout",
            "greater than zero",
        ),
        (
            "pool_idle_timeout = 30",
            "backend.be.pool_idle_timeout",
            "write \"30s\"",
        ),
        (
            "http_server_close = 1",
            "backend.be.http_server_close",
            "expected a boolean",
        ),
    ] {
        rejects(&http_be(extra), 10, key, phrase);
    }
    rejects(
        &format!("[defaults]\nmode = \"htp\"\n{MINIMAL}"),
        2,
        "defaults.mode",
        "unknown mode \"htp\" (did you mean \"http\"?): expected \"tcp\" or \"http\"",
    );
}

#[test]
fn summary_shows_http_routing() {
    let cfg = ok(r#"
[defaults]
mode = "http"

[frontend.web]
bind = ["127.0.0.1:8080"]
default_backend = "app"
forwardfor = true
max_body_size = 1000

[frontend.web.acl]
is_api = "path_beg /api"
is_static = "path_end .css"

[[frontend.web.http_request]]
deny = 403
if = "is_api !LOCALHOST"

[[frontend.web.use_backend]]
backend = "api"
if = "is_api"
[[frontend.web.use_backend]]
backend = "static"
unless = "!is_static"

[frontend.rules_only]
bind = ["127.0.0.1:8081"]
[[frontend.rules_only.use_backend]]
backend = "api"
if = "TRUE"

[backend.app]
server = [{ name = "a1", address = "10.0.0.1:80" }]
[backend.api]
cookie = { name = "SRV", indirect = true }
http_server_close = true
server = [{ name = "p1", address = "10.0.0.2:80", cookie = "p1" }]
[backend.static]
balance = "uri len 10 whole"
hash_type = "consistent"
server = [{ name = "s1", address = "10.0.0.3:80" }]
"#);
    let s = summary(&cfg);
    for expected in [
        "frontend web         http  bind 127.0.0.1:8080",
        "  http  2 ACLs, 1 request rule, 0 response rules, forwardfor, max_body_size 1000\n",
        "  use_backend api if is_api\n",
        "  use_backend static unless !is_static\n",
        "  -> backend api  balance roundrobin  retries 3  redispatch on  cookie SRV indirect  http_server_close\n",
        "10.0.0.2:80       1  cookie p1\n",
        "  -> backend static  balance uri whole len 10  hash consistent",
        "  -> backend app  balance roundrobin  retries 3  redispatch on  (default_backend)\n",
        "frontend rules_only  http",
        "  no default_backend: a request that no rule routes gets a 404\n",
        // rules_only sorts first: web's api line refers to it.
        "  -> backend api  balance roundrobin  retries 3  redispatch on  cookie SRV indirect  http_server_close  (servers listed above)\n",
    ] {
        assert!(s.contains(expected), "missing {expected:?} in:\n{s}");
    }
    assert!(!s.contains("not used by any frontend"), "{s}");
}

// ---------------------------------------------------------------- vrrp

/// [`MINIMAL`] plus one `[vrrp.R1]` (line 11 is its header) with `extra` keys.
fn vrrp(extra: &str) -> String {
    format!(
        "{MINIMAL}\n[vrrp.R1]\ninterface = \"eth0\"\nvirtual_router_id = 51\nvirtual_ipaddress = [\"10.0.0.100/24\"]\n{extra}"
    )
}

#[test]
fn vrrp_instance_defaults_and_keys() {
    let c = ok(&vrrp(""));
    let r = &c.vrrp[0];
    assert_eq!(r.name, "R1");
    assert_eq!(r.interface, "eth0");
    assert_eq!(r.virtual_router_id, 51);
    assert_eq!(r.priority, 100);
    assert_eq!(r.advert_int, Duration::from_secs(1));
    assert_eq!(r.version, VrrpVersion::V3);
    assert!(!r.nopreempt);
    assert_eq!(r.preempt_delay, Duration::ZERO);
    assert_eq!(
        r.virtual_ipaddress,
        vec![VirtualAddress {
            address: "10.0.0.100".parse().unwrap(),
            prefix: 24
        }]
    );
    assert!(r.unicast_peers.is_empty());
    assert_eq!(r.garp_master_repeat, 5);
    assert_eq!(r.garp_master_delay, Duration::from_secs(5));
    assert_eq!(r.garp_master_refresh, None);

    let c = ok(&vrrp(
        r#"priority = 150
advert_int = "10ms"
nopreempt = true
preempt_delay = "2s"
unicast_peers = ["10.0.0.12", "10.0.0.13"]
track_proxy = { weight = -50, backends = ["be"] }
track_script = [{ script = "/usr/libexec/halb/check-upstream --fast", interval = "2s", weight = -2, fall = 3, rise = 1 }]
track_interface = ["eth1"]
sync_group = "G1"
notify_master = "/etc/halb/notify.sh master"
notify = "/etc/halb/notify-all.sh"
garp_master_refresh = "60s"
"#,
    ));
    let r = &c.vrrp[0];
    assert_eq!(r.priority, 150);
    assert_eq!(r.advert_int, Duration::from_millis(10));
    assert!(r.nopreempt);
    assert_eq!(r.preempt_delay, Duration::from_secs(2));
    assert_eq!(r.unicast_peers.len(), 2);
    assert_eq!(
        r.track_proxy,
        Some(TrackProxy {
            weight: -50,
            backends: vec!["be".into()]
        })
    );
    let s = &r.track_script[0];
    assert_eq!(s.script, vec!["/usr/libexec/halb/check-upstream", "--fast"]);
    assert_eq!(
        (s.interval, s.timeout),
        (Duration::from_secs(2), Duration::from_secs(2))
    );
    assert_eq!((s.weight, s.rise, s.fall), (-2, 1, 3));
    assert_eq!(r.track_interface, vec!["eth1"]);
    assert_eq!(r.sync_group.as_deref(), Some("G1"));
    assert_eq!(
        r.notify_master,
        Some(vec!["/etc/halb/notify.sh".into(), "master".into()])
    );
    assert_eq!(r.garp_master_refresh, Some(Duration::from_secs(60)));

    // VRRPv2 with a password, IPv6 with v3, an address without prefix length.
    let c = ok(&vrrp(
        "version = 2\nauth_pass = \"secret12\"\nadvert_int = \"2s\"",
    ));
    assert_eq!(c.vrrp[0].version, VrrpVersion::V2);
    assert_eq!(c.vrrp[0].auth_pass.as_deref(), Some("secret12"));
    let c = ok(&vrrp("").replace("10.0.0.100/24", "fd00::100"));
    assert!(c.vrrp[0].ipv6());
    assert_eq!(c.vrrp[0].virtual_ipaddress[0].prefix, 128);
}

#[test]
fn vrrp_bad_values_name_the_key() {
    let missing = format!("{MINIMAL}\n[vrrp.R1]\npriority = 100\n");
    rejects(
        &missing,
        11,
        "vrrp.R1.interface",
        "missing required key \"interface\"",
    );
    rejects(
        &missing,
        11,
        "vrrp.R1.virtual_router_id",
        "missing required key",
    );
    rejects(
        &missing,
        11,
        "vrrp.R1.virtual_ipaddress",
        "missing required key",
    );
    rejects(
        &vrrp("priority = 0"),
        15,
        "vrrp.R1.priority",
        "out of range (expected 1..=255)",
    );
    rejects(
        &vrrp("priority = 256"),
        15,
        "vrrp.R1.priority",
        "out of range",
    );
    rejects(
        &vrrp("").replace("virtual_router_id = 51", "virtual_router_id = 0"),
        13,
        "vrrp.R1.virtual_router_id",
        "out of range (expected 1..=255)",
    );
    rejects(
        &vrrp("advert_int = \"5ms\""),
        15,
        "vrrp.R1.advert_int",
        "\"10ms\"..=\"40950ms\" in steps of 10 ms",
    );
    rejects(
        &vrrp("advert_int = \"15ms\""),
        15,
        "vrrp.R1.advert_int",
        "steps of 10 ms",
    );
    rejects(
        &vrrp("advert_int = \"41s\""),
        15,
        "vrrp.R1.advert_int",
        "40950ms",
    );
    rejects(
        &vrrp("advert_int = 1"),
        15,
        "vrrp.R1.advert_int",
        "write \"1s\"",
    );
    rejects(
        &vrrp("version = 2\nadvert_int = \"500ms\""),
        16,
        "vrrp.R1.advert_int",
        "VRRPv2 advert_int is whole seconds",
    );
    rejects(
        &vrrp("version = 4"),
        15,
        "vrrp.R1.version",
        "out of range (expected 2..=3)",
    );
    rejects(
        &vrrp("auth_pass = \"x\""),
        15,
        "vrrp.R1.auth_pass",
        "VRRPv2 only",
    );
    rejects(
        &vrrp("version = 2\nauth_pass = \"longer-than-8\""),
        16,
        "vrrp.R1.auth_pass",
        "at most 8 bytes",
    );
    rejects(
        &vrrp("").replace("\"10.0.0.100/24\"", "\"10.0.0.100/24\", \"fd00::1/64\""),
        14,
        "vrrp.R1.virtual_ipaddress[1]",
        "not of the same family",
    );
    rejects(
        &vrrp("version = 2").replace("10.0.0.100/24", "fd00::1/64"),
        14,
        "vrrp.R1.virtual_ipaddress[0]",
        "VRRPv2 is IPv4 only",
    );
    rejects(
        &vrrp("").replace("10.0.0.100/24", "10.0.0.100/33"),
        14,
        "vrrp.R1.virtual_ipaddress[0]",
        "prefix length must be 1..=32",
    );
    rejects(
        &vrrp("").replace("10.0.0.100/24", "vip.example.com"),
        14,
        "vrrp.R1.virtual_ipaddress[0]",
        "is not an address",
    );
    rejects(
        &vrrp("").replace("10.0.0.100/24", "224.0.0.18"),
        14,
        "vrrp.R1.virtual_ipaddress[0]",
        "cannot be a virtual address",
    );
    rejects(
        &vrrp("").replace("[\"10.0.0.100/24\"]", "[]"),
        14,
        "vrrp.R1.virtual_ipaddress",
        "at least one virtual address",
    );
    rejects(
        &vrrp("unicast_peers = [\"10.0.0.12:80\"]"),
        15,
        "vrrp.R1.unicast_peers[0]",
        "not an IP address (no port",
    );
    rejects(
        &vrrp("unicast_peers = [\"fd00::12\"]"),
        15,
        "vrrp.R1.unicast_peers[0]",
        "not of the family of virtual_ipaddress",
    );
    rejects(
        &vrrp("track_proxy = { weight = -50, backends = [\"bee\"] }"),
        15,
        "vrrp.R1.track_proxy.backends[0]",
        "no backend \"bee\" (did you mean \"be\"?)",
    );
    rejects(
        &vrrp("track_proxy = { weight = -300 }"),
        15,
        "vrrp.R1.track_proxy.weight",
        "out of range (expected -253..=253)",
    );
    rejects(
        &vrrp("track_proxy = { }"),
        15,
        "vrrp.R1.track_proxy.weight",
        "missing required key",
    );
    rejects(
        &vrrp("track_script = [{ script = \"check-upstream\" }]"),
        15,
        "vrrp.R1.track_script[0].script",
        "must start with an absolute program path",
    );
    rejects(
        &vrrp("track_script = [{ script = \"/bin/true\", intervall = \"1s\" }]"),
        15,
        "vrrp.R1.track_script[0].intervall",
        "did you mean \"interval\"?",
    );
    rejects(
        &vrrp("notify_master = \"notify.sh master\""),
        15,
        "vrrp.R1.notify_master",
        "absolute program path",
    );
    rejects(
        &vrrp("track_interface = [\"a/b\"]"),
        15,
        "vrrp.R1.track_interface[0]",
        "not an interface name",
    );
    rejects(
        &vrrp("virtual_router = 51"),
        15,
        "vrrp.R1.virtual_router",
        "did you mean \"virtual_router_id\"?",
    );
    rejects(
        &vrrp("preempt_delay = \"1001s\""),
        15,
        "vrrp.R1.preempt_delay",
        "at most \"1000s\"",
    );
    // Two instances with one VRID on one interface.
    let twice = format!(
        "{}\n[vrrp.R2]\ninterface = \"eth0\"\nvirtual_router_id = 51\nvirtual_ipaddress = [\"10.0.0.101/24\"]\n",
        vrrp("")
    );
    rejects(
        &twice,
        16,
        "vrrp.R2.virtual_router_id",
        "already used by [vrrp.R1]",
    );
    // ... which is fine on another interface or in the other family.
    ok(&twice.replace(
        "interface = \"eth0\"\nvirtual_router_id = 51\nvirtual_ipaddress = [\"10.0.0.101/24\"]",
        "interface = \"eth1\"\nvirtual_router_id = 51\nvirtual_ipaddress = [\"10.0.0.101/24\"]",
    ));
    // Switching user would drop the capabilities VRRP needs.
    rejects(
        &format!("[global]\nuser = \"halb\"\n{}", vrrp("")),
        2,
        "global.user",
        "user cannot be combined with [vrrp.*]",
    );
}

// ---------------------------------------------------------------- TLS

mod tls {
    use super::*;
    use crate::tls::certs::testing::{generate, generate_for_key, TempDir};

    /// A temp dir with `good.pem` (www.example.com, *.example.com), `other.pem`
    /// (api.example.org), `expired.pem`, `nokey.pem` and `ca.pem` (good.pem's certificate).
    struct Files {
        dir: TempDir,
    }

    impl Files {
        fn new() -> Files {
            let dir = TempDir::new("config");
            let good = generate(&["www.example.com", "*.example.com"]);
            good.write(&dir, "good.pem");
            dir.write("ca.pem", &good.cert);
            dir.write("nokey.pem", &good.cert);
            generate(&["api.example.org"]).write(&dir, "other.pem");
            let key = rcgen::KeyPair::generate().unwrap();
            generate_for_key(&["old.example.com"], key, |p| {
                p.not_before = rcgen::date_time_ymd(2020, 1, 1);
                p.not_after = rcgen::date_time_ymd(2021, 1, 1);
            })
            .write(&dir, "expired.pem");
            Files { dir }
        }

        fn path(&self, name: &str) -> String {
            self.dir.0.join(name).display().to_string()
        }

        /// [`MINIMAL`] (http when `http`) with `tls = { TLS }` on the frontend (line 5).
        fn frontend(&self, tls: &str, http: bool) -> String {
            let text = MINIMAL.replace(
                "default_backend = \"be\"",
                &format!(
                    "default_backend = \"be\"\ntls = {{ {} }}",
                    tls.replace("DIR", &self.path(""))
                ),
            );
            if http {
                format!("[defaults]\nmode = \"http\"\n{text}")
            } else {
                text
            }
        }

        /// [`MINIMAL`] with `KEYS` in the server table (from line 9).
        fn server(&self, keys: &str) -> String {
            MINIMAL.replace(
                "name = \"s1\"",
                &format!("name = \"s1\"\n{}", keys.replace("DIR", &self.path(""))),
            )
        }
    }

    #[test]
    fn frontend_tls_defaults_and_every_key() {
        let files = Files::new();
        let cfg = ok(&files.frontend(
            "bind = [\":443\"], certs = [\"DIRgood.pem\", \"DIRother.pem\"]",
            true,
        ));
        let fe = &cfg.frontends[0];
        let tls = fe.tls.as_ref().expect("tls");
        assert_eq!(fe.bind, vec![addr("127.0.0.1:8000")]);
        assert_eq!(tls.bind, vec![addr("0.0.0.0:443"), addr("[::]:443")]);
        assert_eq!(tls.certs.len(), 2);
        assert_eq!(tls.certs[0].names, ["www.example.com", "*.example.com"]);
        assert_eq!(tls.alpn, ["http/1.1"]);
        assert_eq!(tls.min_version, TlsVersion::Tls12);
        assert_eq!(tls.session_cache, 20_000);
        assert!(tls.session_tickets);
        assert!(cfg.warnings.is_empty());

        // mode tcp: no ALPN by default, any protocol name may be offered.
        let cfg = ok(&files.frontend(
            "bind = [\"127.0.0.1:8443\"], certs = [\"DIRgood.pem\"]",
            false,
        ));
        assert!(cfg.frontends[0].tls.as_ref().unwrap().alpn.is_empty());
        let cfg = ok(&files.frontend(
            "bind = [\"127.0.0.1:8443\"], certs = [\"DIRgood.pem\"], alpn = [\"imap\", \"h2\"], min_version = \"1.3\", session_cache = 0, session_tickets = false",
            false,
        ));
        let tls = cfg.frontends[0].tls.as_ref().unwrap();
        assert_eq!(tls.alpn, ["imap", "h2"]);
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert_eq!(tls.session_cache, 0);
        assert!(!tls.session_tickets);

        // The summary names the TLS listener and its certificates.
        let text = summary(&cfg);
        assert!(text.contains("  tls   bind 127.0.0.1:8443  min_version 1.3  alpn imap,h2  session_cache 0  tickets off"), "{text}");
        assert!(
            text.contains("good.pem  www.example.com, *.example.com  expires "),
            "{text}"
        );
        assert!(text.contains("(default)"), "{text}");

        // As a [frontend.fe.tls] table too.
        let text = MINIMAL.replace(
            "[backend.be]",
            &format!(
                "[frontend.fe.tls]\nbind = [\":443\"]\ncerts = [\"{}\"]\n\n[backend.be]",
                files.path("good.pem")
            ),
        );
        assert!(ok(&text).frontends[0].tls.is_some());
    }

    #[test]
    fn frontend_tls_errors() {
        let files = Files::new();
        let fe = |tls: &str| files.frontend(tls, false);
        let cases: Vec<(String, &str, &str)> = vec![
            (
                fe("certs = [\"DIRgood.pem\"]"),
                "frontend.fe.tls.bind",
                "missing required key \"bind\"",
            ),
            (
                fe("bind = []"),
                "frontend.fe.tls.bind",
                "bind list is empty",
            ),
            (
                fe("bind = [\"nope\"], certs = [\"DIRgood.pem\"]"),
                "frontend.fe.tls.bind[0]",
                "nope",
            ),
            (
                fe("bind = [\":443\"], certs = []"),
                "frontend.fe.tls.certs",
                "certs is empty",
            ),
            (
                fe("bind = [\":443\"], certs = \"DIRgood.pem\""),
                "frontend.fe.tls.certs",
                "expected an array of PEM file paths",
            ),
            (
                fe("bind = [\":443\"], certs = [\"good.pem\"]"),
                "frontend.fe.tls.certs[0]",
                "must be absolute",
            ),
            (
                fe("bind = [\":443\"], certs = [\"DIRnokey.pem\"]"),
                "frontend.fe.tls.certs[0]",
                "nokey.pem: no private key",
            ),
            (
                fe("bind = [\":443\"], certs = [\"DIRmissing.pem\"]"),
                "frontend.fe.tls.certs[0]",
                "missing.pem: cannot read",
            ),
            (
                fe("bind = [\":443\"], certs = [\"DIRgood.pem\", \"DIRgood.pem\"]"),
                "frontend.fe.tls.certs[1]",
                "listed twice",
            ),
            (
                fe("bind = [\":443\"], certs = [\"DIRgood.pem\"], min_version = \"1.1\""),
                "frontend.fe.tls.min_version",
                "TLS 1.1 is not supported",
            ),
            (
                fe("bind = [\":443\"], certs = [\"DIRgood.pem\"], min_version = \"TLSv1.3\""),
                "frontend.fe.tls.min_version",
                "(did you mean \"1.3\"?): expected \"1.2\" or \"1.3\"",
            ),
            (
                fe("bind = [\":443\"], certs = [\"DIRgood.pem\"], min_version = 1.2"),
                "frontend.fe.tls.min_version",
                "expected \"1.2\" or \"1.3\" (a string), found a float",
            ),
            (
                fe("bind = [\":443\"], certs = [\"DIRgood.pem\"], session_cache = -1"),
                "frontend.fe.tls.session_cache",
                "out of range (expected 0..=10000000)",
            ),
            (
                fe("bind = [\":443\"], certs = [\"DIRgood.pem\"], session_tickets = \"yes\""),
                "frontend.fe.tls.session_tickets",
                "expected a boolean",
            ),
            (
                fe("bind = [\":443\"], certs = [\"DIRgood.pem\"], alpn = [\"\"]"),
                "frontend.fe.tls.alpn[0]",
                "invalid ALPN protocol name",
            ),
            (
                fe("bind = [\":443\"], certs = [\"DIRgood.pem\"], alpn = [\"x\", \"x\"]"),
                "frontend.fe.tls.alpn[1]",
                "listed twice",
            ),
            (
                fe("bind = [\":443\"], certs = [\"DIRgood.pem\"], cert = 1"),
                "frontend.fe.tls.cert",
                "unknown key \"cert\" in the tls table (did you mean \"certs\"?)",
            ),
            (
                fe("bind = [\":443\"], certs = [\"DIRgood.pem\"], maxconn = 1"),
                "frontend.fe.tls.maxconn",
                "it belongs in [global] or [frontend.NAME]",
            ),
            (
                fe("bind = [\"127.0.0.1:8000\"], certs = [\"DIRgood.pem\"]"),
                "frontend.fe.tls.bind[0]",
                "127.0.0.1:8000 is already bound by frontend \"fe\" (line 3)",
            ),
            (
                fe("bind = [\":443\", \":443\"], certs = [\"DIRgood.pem\"]"),
                "frontend.fe.tls.bind[1]",
                "listed twice in this bind list",
            ),
            (
                MINIMAL.replace(
                    "default_backend = \"be\"",
                    "default_backend = \"be\"\ntls = true",
                ),
                "frontend.fe.tls",
                "expected a table",
            ),
        ];
        for (text, key, phrase) in cases {
            rejects(&text, 5, key, phrase);
        }
        // http frontends offer only HTTP/1.
        rejects(
            &files.frontend(
                "bind = [\":443\"], certs = [\"DIRgood.pem\"], alpn = [\"h2\", \"http/1.1\"]",
                true,
            ),
            7,
            "frontend.fe.tls.alpn[0]",
            "cannot be offered by an http frontend: halb speaks HTTP/1",
        );
        // Another frontend's address, and the stats page's.
        let two = format!(
            "{}\n[frontend.fe2]\nbind = [\"0.0.0.0:443\"]\ndefault_backend = \"be\"\n",
            fe("bind = [\":443\"], certs = [\"DIRgood.pem\"]")
        );
        rejects(
            &two,
            13,
            "frontend.fe2.bind[0]",
            "0.0.0.0:443 is already bound by frontend \"fe\" (line 5)",
        );
        let stats = format!(
            "{}\n[stats]\nbind = \"127.0.0.1:443\"\n",
            fe("bind = [\":443\"], certs = [\"DIRgood.pem\"]")
        );
        rejects(
            &stats,
            13,
            "stats.bind",
            "overlaps 0.0.0.0:443 of frontend \"fe\"",
        );
    }

    #[test]
    fn expired_certificate_is_a_warning() {
        let files = Files::new();
        let cfg = ok(&files.frontend(
            "bind = [\":443\"], certs = [\"DIRgood.pem\", \"DIRexpired.pem\"]",
            false,
        ));
        assert_eq!(cfg.warnings.len(), 1, "{:?}", cfg.warnings);
        let w = &cfg.warnings[0];
        assert_eq!((w.line, w.key.as_str()), (5, "frontend.fe.tls.certs[1]"));
        assert!(
            w.message
                .contains("expired.pem: the certificate expired on 2021-01-01"),
            "{}",
            w.message
        );
        let text = summary(&cfg);
        assert!(text.contains("EXPIRED 2021-01-01"), "{text}");
        assert!(text.contains(&format!("warning: {w}")), "{text}");
    }

    #[test]
    fn server_tls_keys() {
        let files = Files::new();
        let cfg = ok(&files.server("tls = true\nca_file = \"DIRca.pem\"\nsni = \"API.internal\""));
        let tls = cfg.backends[0].servers[0].tls.as_ref().expect("tls");
        assert_eq!(tls.sni.as_deref(), Some("api.internal"));
        match &tls.verify {
            TlsVerify::Required(ca) => assert_eq!(ca.certs.len(), 1),
            TlsVerify::None => panic!("verify required by default"),
        }
        let text = summary(&cfg);
        assert!(text.contains("tls (verify required, ca_file "), "{text}");
        assert!(text.contains("sni api.internal)"), "{text}");

        let cfg = ok(&files.server("tls = true\nverify = \"none\""));
        let tls = cfg.backends[0].servers[0].tls.as_ref().unwrap();
        assert_eq!(tls.verify, TlsVerify::None);
        assert_eq!(tls.sni, None);
        assert!(ok(&files.server("tls = false")).backends[0].servers[0]
            .tls
            .is_none());
        assert!(ok(MINIMAL).backends[0].servers[0].tls.is_none());

        let cases: Vec<(&str, usize, &str, &str)> = vec![
            (
                "tls = true",
                9,
                "backend.be.server[0].tls",
                "verify = \"required\" (the default with tls = true) needs ca_file",
            ),
            (
                "tls = true\nverify = \"required\"",
                10,
                "backend.be.server[0].verify",
                "needs ca_file",
            ),
            (
                "tls = \"yes\"",
                9,
                "backend.be.server[0].tls",
                "expected a boolean",
            ),
            (
                "tls = true\nverify = \"optional\"",
                10,
                "backend.be.server[0].verify",
                "unknown verify \"optional\"",
            ),
            (
                "tls = true\nverify = \"non\"",
                10,
                "backend.be.server[0].verify",
                "(did you mean \"none\"?)",
            ),
            (
                "tls = true\nverify = \"none\"\nca_file = \"DIRca.pem\"",
                11,
                "backend.be.server[0].ca_file",
                "not used with verify = \"none\"",
            ),
            (
                "tls = true\nca_file = \"ca.pem\"",
                10,
                "backend.be.server[0].ca_file",
                "must be absolute",
            ),
            (
                "tls = true\nca_file = \"DIRmissing.pem\"",
                10,
                "backend.be.server[0].ca_file",
                "missing.pem: cannot read",
            ),
            (
                "tls = true\nverify = \"none\"\nsni = \"10.0.0.1\"",
                11,
                "backend.be.server[0].sni",
                "not the IP address",
            ),
            (
                "tls = true\nverify = \"none\"\nsni = \"bad name\"",
                11,
                "backend.be.server[0].sni",
                "not a valid DNS name",
            ),
            (
                "tls = true\nverify = \"none\"\nsni = \"\"",
                11,
                "backend.be.server[0].sni",
                "must not be empty",
            ),
            (
                "verify = \"none\"",
                9,
                "backend.be.server[0].verify",
                "set tls = true on this server",
            ),
            (
                "tls = false\nsni = \"a.example\"",
                10,
                "backend.be.server[0].sni",
                "set tls = true on this server",
            ),
            (
                "ca_file = \"DIRca.pem\"",
                9,
                "backend.be.server[0].ca_file",
                "set tls = true on this server",
            ),
            (
                "tls = true\nverify = \"none\"\nssl = true",
                11,
                "backend.be.server[0].ssl",
                "unknown key \"ssl\"",
            ),
        ];
        for (keys, line, key, phrase) in cases {
            rejects(&files.server(keys), line, key, phrase);
        }
        // The CA file must hold certificates.
        rejects(
            &files.server(&format!(
                "tls = true\nca_file = \"{}\"",
                files.path("nokey.pem").replace("nokey", "missing2")
            )),
            10,
            "backend.be.server[0].ca_file",
            "cannot read",
        );
    }
}
