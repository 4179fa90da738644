//! Tests of the stats renderers, the Prometheus validator and the request router.

use std::time::Duration;

use super::prom_check::validate;
use super::render::{self, human_duration, HtmlOptions, CSV_FIELDS};
use super::report::{
    BackendReport, Counters, FrontendReport, ProcessInfo, ServerReport, ServerState, StatsReport,
};
use super::route::{
    base64_decode, form_decode, parse_action, route, see_other, ActionKind, AdminState, Response,
    Route, StatsAction,
};
use crate::config::model::{Stats, StatsAuth};

fn counters(seed: u64) -> Counters {
    Counters {
        current_sessions: seed,
        max_sessions: seed * 2,
        total_sessions: seed * 100,
        bytes_in: seed * 1000,
        bytes_out: seed * 5000,
        http_requests: seed * 90,
        http_responses: [0, seed * 80, seed, seed * 3, seed * 2, 1],
        denied: seed / 2,
        request_errors: seed / 3,
        connection_errors: seed + 1,
        response_errors: seed + 2,
        retries: seed + 3,
        redispatches: seed + 4,
        queue: 0,
        tls_handshakes: seed * 7,
        tls_resumed: seed * 5,
        tls_handshake_failures: seed / 4,
    }
}

fn server(name: &str, port: u16, state: ServerState, admin: &'static str) -> ServerReport {
    ServerReport {
        name: name.to_owned(),
        address: format!("10.0.0.{}:{port}", port % 250).parse().unwrap(),
        state,
        admin,
        checked: true,
        backup: false,
        weight: 10,
        effective_weight: if matches!(state, ServerState::Up | ServerState::GoingDown) {
            10
        } else {
            0
        },
        last_check: Some("L7 status 200 in 1 ms".to_owned()),
        reason: "L7 status 200".to_owned(),
        last_change_secs: 12,
        downtime_secs: 184,
        check_failures: 4,
        down_transitions: 1,
        counters: counters(u64::from(port)),
    }
}

/// 2 frontends, 2 backends, 3 servers (UP, DOWN, MAINT) + a DRAIN backup.
fn report() -> StatsReport {
    let mut down = server("web2", 12, ServerState::Down, "ready");
    down.last_check = Some("L4 connect refused".to_owned());
    down.reason = "L4 connect refused".to_owned();
    down.last_change_secs = 184;
    let mut maint = server("db1", 21, ServerState::Maint, "maint");
    maint.checked = false;
    maint.last_check = None;
    maint.reason = "set to maint by admin".to_owned();
    let mut drain = server("db2", 22, ServerState::Drain, "drain");
    drain.backup = true;
    StatsReport {
        info: ProcessInfo {
            name: "halb",
            version: "0.1.0",
            pid: 4242,
            uptime_secs: 3725,
            generation: 3,
            config: "/etc/halb/halb.toml".to_owned(),
            reloads: 2,
            shards: 4,
            current_connections: 17,
        },
        frontends: vec![
            FrontendReport {
                name: "main".to_owned(),
                mode: "http",
                bind: vec!["0.0.0.0:80".parse().unwrap(), "[::]:80".parse().unwrap()],
                maxconn: 10_000,
                counters: counters(7),
            },
            FrontendReport {
                name: "tcp-in".to_owned(),
                mode: "tcp",
                bind: vec!["0.0.0.0:5432".parse().unwrap()],
                maxconn: 500,
                counters: counters(3),
            },
        ],
        backends: vec![
            BackendReport {
                name: "app".to_owned(),
                mode: "http",
                balance: "roundrobin".to_owned(),
                usable_servers: 1,
                counters: counters(9),
                servers: vec![server("web1", 11, ServerState::Up, "ready"), down],
            },
            BackendReport {
                name: "db".to_owned(),
                mode: "tcp",
                balance: "leastconn".to_owned(),
                usable_servers: 0,
                counters: counters(5),
                servers: vec![maint, drain],
            },
        ],
        vrrp: Vec::new(),
    }
}

/// [`report`] with two VRRP instances (one master, one in FAULT with drops counted).
fn vrrp_report() -> StatsReport {
    use crate::control::vrrp::router::{InstanceCounters, TrackerReport};
    use crate::control::vrrp::InstanceReport;
    let master = InstanceReport {
        name: "VI_51".to_owned(),
        interface: "eth0".to_owned(),
        virtual_router_id: 51,
        version: 3,
        state: "MASTER",
        priority: 101,
        base_priority: 101,
        master: Some("10.0.0.11".to_owned()),
        local: "10.0.0.11".to_owned(),
        virtual_ipaddress: vec!["10.0.0.100/24".to_owned()],
        holds_addresses: true,
        advert_int_ms: 1000,
        since: 1_790_000_000,
        since_secs: 42,
        last_transition: Some("BACKUP -> MASTER".to_owned()),
        reason: "no advertisement from the master for 3605 ms".to_owned(),
        sync_group: None,
        faults: Vec::new(),
        trackers: vec![TrackerReport {
            name: "proxy".to_owned(),
            healthy: true,
            weight: -50,
            reason: "ok".to_owned(),
        }],
        counters: InstanceCounters {
            adverts_sent: 40,
            adverts_received: 3,
            transitions: 2,
            became_master: 1,
            announcements: 10,
            ..InstanceCounters::default()
        },
    };
    let mut fault = master.clone();
    fault.name = "VI_<52>".to_owned();
    fault.virtual_router_id = 52;
    fault.state = "FAULT";
    fault.priority = 51;
    fault.master = None;
    fault.holds_addresses = false;
    fault.faults = vec!["interface eth1 down".to_owned()];
    fault.counters.invalid.insert("checksum".to_owned(), 2);
    fault.counters.invalid.insert("ttl".to_owned(), 1);
    let mut r = report();
    r.vrrp = vec![master, fault];
    r
}

/// A report whose names need escaping in every format.
fn evil_report() -> StatsReport {
    let mut r = report();
    r.frontends[0].name = "fe<script>\"a,b\"".to_owned();
    r.backends[0].name = "be&'x'\\\n".to_owned();
    r.backends[0].servers[0].name = "s\"1,\r\n<b>".to_owned();
    r.backends[0].servers[0].reason = "L7 body does not contain \"ok\"".to_owned();
    r
}

fn stats_cfg(auth: bool, admin: bool) -> Stats {
    Stats {
        bind: "127.0.0.1:8404".parse().unwrap(),
        uri: "/stats".to_owned(),
        auth: auth.then(|| StatsAuth {
            user: "admin".to_owned(),
            password: "s3cr:et".to_owned(),
        }),
        admin,
        refresh: Duration::from_secs(5),
    }
}

// ---------------------------------------------------------------------------------
// helpers

#[test]
fn durations() {
    assert_eq!(human_duration(0), "0s");
    assert_eq!(human_duration(12), "12s");
    assert_eq!(human_duration(184), "3m4s");
    assert_eq!(human_duration(3725), "1h2m");
    assert_eq!(human_duration(2 * 86_400 + 3 * 3600 + 59), "2d3h");
}

#[test]
fn html_escaping() {
    assert_eq!(
        render::escape_html("<a href=\"x\">&'</a>"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
    );
    assert_eq!(render::escape_html("plain"), "plain");
}

// ---------------------------------------------------------------------------------
// HTML

/// Checks that the non-void elements of `html` nest properly and that attribute values
/// are quoted and hold no raw `<`, `>`, `"` inside; returns the number of elements.
fn check_html(html: &str) -> usize {
    const VOID: &[&str] = &["meta", "input", "br", "hr", "img", "link"];
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    let mut stack: Vec<&str> = Vec::new();
    let mut count = 0;
    let mut rest = &html["<!DOCTYPE html>".len()..];
    while let Some(lt) = rest.find('<') {
        let text = &rest[..lt];
        assert!(!text.contains('>'), "raw '>' in text {text:?}");
        let gt = rest[lt..].find('>').expect("unclosed tag") + lt;
        let tag = &rest[lt + 1..gt];
        assert!(!tag.contains('<'), "'<' inside a tag: {tag:?}");
        // Attribute values: quotes balanced.
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in {tag:?}"
        );
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name), "misnested </{name}>");
        } else {
            let name = tag.split([' ', '\n']).next().unwrap();
            count += 1;
            if !VOID.contains(&name) {
                stack.push(name);
            }
            if name == "style" {
                let end = rest[gt..].find("</style>").unwrap() + gt;
                rest = &rest[end..];
                continue;
            }
        }
        rest = &rest[gt + 1..];
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    assert_eq!(rest, "\n");
    count
}

#[test]
fn html_page() {
    let r = report();
    let cfg = stats_cfg(true, false);
    let page = render::html(&r, &HtmlOptions::from_config(&cfg));
    check_html(&page);
    assert!(page.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
    for fact in ["0.1.0", "4242", "1h2m", "/etc/halb/halb.toml", ">17<"] {
        assert!(page.contains(fact), "{fact} missing");
    }
    // Server rows: hooks for browser tests.
    for (b, s, state) in [
        ("app", "web1", "UP"),
        ("app", "web2", "DOWN"),
        ("db", "db1", "MAINT"),
        ("db", "db2", "DRAIN"),
    ] {
        let row = format!(
            "<tr class=\"server state-{state}\" data-backend=\"{b}\" data-server=\"{s}\" \
             data-state=\"{state}\">"
        );
        assert!(page.contains(&row), "{row} missing");
    }
    assert_eq!(page.matches("<tr class=\"server ").count(), 4);
    assert!(page.contains("<tr class=\"backend total bk-UP\" data-backend=\"app\">"));
    assert!(page.contains("<tr class=\"backend total bk-DOWN\" data-backend=\"db\">"));
    assert!(page.contains("<tr class=\"frontend\" data-frontend=\"main\">"));
    assert!(page.contains("<tr class=\"frontend\" data-frontend=\"tcp-in\">"));
    assert!(page.contains("12s ago / 3m4s"));
    assert!(page.contains("3m4s ago"));
    assert!(page.contains("L4 connect refused"));
    assert!(page.contains("no check"));
    assert!(page.contains("(backup)"));
    // Legend and colours for every state.
    for state in ["UP", "GOING_DOWN", "GOING_UP", "DOWN", "MAINT", "DRAIN"] {
        assert!(
            page.contains(&format!(".state-{state} td")),
            "{state} colour"
        );
        assert!(page.contains(&format!("<span class=\"state-{state}\">")));
    }
    // No admin forms, no script, no external resource.
    assert!(!page.contains("<form"));
    assert!(!page.contains("<script"));
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert!(page.contains("href=\"/stats;csv\""));
}

#[test]
fn html_admin_forms() {
    let r = report();
    let cfg = stats_cfg(true, true);
    let page = render::html(&r, &HtmlOptions::from_config(&cfg));
    check_html(&page);
    // 4 forms per server: ready, drain, maint, weight.
    assert_eq!(
        page.matches("<form method=\"post\" action=\"/stats\">")
            .count(),
        16
    );
    let web1 = "<input type=\"hidden\" name=\"backend\" value=\"app\">\
                <input type=\"hidden\" name=\"server\" value=\"web1\">";
    assert_eq!(page.matches(web1).count(), 4);
    for action in ["ready", "drain", "maint", "weight"] {
        let field = format!("<input type=\"hidden\" name=\"action\" value=\"{action}\">");
        assert_eq!(page.matches(&field).count(), 4, "{action}");
    }
    assert!(
        page.contains("<input type=\"number\" name=\"weight\" min=\"0\" max=\"256\" value=\"10\"")
    );
    // Admin without auth: no forms (the router refuses the POST anyway).
    let page = render::html(&r, &HtmlOptions::from_config(&stats_cfg(false, true)));
    assert!(!page.contains("<form"));
}

#[test]
fn html_refresh_options() {
    let r = report();
    let mut cfg = stats_cfg(false, false);
    cfg.refresh = Duration::from_millis(1500);
    assert_eq!(HtmlOptions::from_config(&cfg).refresh_secs, 2);
    cfg.refresh = Duration::ZERO;
    let page = render::html(&r, &HtmlOptions::from_config(&cfg));
    assert!(!page.contains("http-equiv"));
}

#[test]
fn html_escapes_names() {
    let r = evil_report();
    let opts = HtmlOptions {
        uri: "/st\"ats",
        refresh_secs: 5,
        admin: true,
    };
    let page = render::html(&r, &opts);
    check_html(&page);
    assert!(!page.contains("<script>"));
    assert!(!page.contains("<b>"));
    assert!(page.contains("fe&lt;script&gt;&quot;a,b&quot;"));
    assert!(page.contains("data-backend=\"be&amp;&#39;x&#39;\\\n\""));
    assert!(page.contains("data-server=\"s&quot;1,\r\n&lt;b&gt;\""));
    assert!(page.contains("action=\"/st&quot;ats\""));
    assert!(page.contains("does not contain &quot;ok&quot;"));
}

// ---------------------------------------------------------------------------------
// CSV

/// A strict RFC 4180 parser: records of fields, `\n` line ends.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if at_start => {
                loop {
                    match chars.next().expect("unterminated quoted field") {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        '"' => break,
                        c => field.push(c),
                    }
                }
                assert!(
                    matches!(chars.peek(), Some(',' | '\n')),
                    "junk after a quoted field"
                );
                at_start = false;
            }
            '"' => panic!("quote inside an unquoted field"),
            ',' => {
                record.push(std::mem::take(&mut field));
                at_start = true;
            }
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                at_start = true;
            }
            '\r' => panic!("bare CR outside quotes"),
            c => {
                field.push(c);
                at_start = false;
            }
        }
    }
    assert!(field.is_empty() && record.is_empty(), "no final line feed");
    records
}

fn column(name: &str) -> usize {
    CSV_FIELDS.iter().position(|f| *f == name).unwrap()
}

#[test]
fn csv_report() {
    let text = render::csv(&report());
    let header = format!("# {}\n", CSV_FIELDS.join(","));
    assert!(text.starts_with(&header));
    let records = parse_csv(&text);
    // header + 2 frontends + (2 servers + backend) + (2 servers + backend)
    assert_eq!(records.len(), 1 + 2 + 3 + 3);
    for r in &records {
        assert_eq!(r.len(), CSV_FIELDS.len(), "{r:?}");
    }
    let names: Vec<(&str, &str)> = records[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("main", "FRONTEND"),
            ("tcp-in", "FRONTEND"),
            ("app", "web1"),
            ("app", "web2"),
            ("app", "BACKEND"),
            ("db", "db1"),
            ("db", "db2"),
            ("db", "BACKEND"),
        ]
    );
    let get = |row: usize, col: &str| records[row][column(col)].as_str();
    // Frontend main: counters(7).
    assert_eq!(get(1, "scur"), "7");
    assert_eq!(get(1, "stot"), "700");
    assert_eq!(get(1, "slim"), "10000");
    assert_eq!(get(1, "status"), "OPEN");
    assert_eq!(get(1, "type"), "0");
    assert_eq!(get(1, "hrsp_2xx"), "560");
    assert_eq!(get(1, "req_tot"), "630");
    assert_eq!(get(1, "addr"), "0.0.0.0:80 [::]:80");
    assert_eq!(get(1, "econ"), "");
    // Server web2 (DOWN).
    assert_eq!(get(4, "status"), "DOWN");
    assert_eq!(get(4, "type"), "2");
    assert_eq!(get(4, "weight"), "0");
    assert_eq!(get(4, "uweight"), "10");
    assert_eq!(get(4, "act"), "1");
    assert_eq!(get(4, "bck"), "0");
    assert_eq!(get(4, "chkfail"), "4");
    assert_eq!(get(4, "chkdown"), "1");
    assert_eq!(get(4, "lastchg"), "184");
    assert_eq!(get(4, "downtime"), "184");
    assert_eq!(get(4, "econ"), "13");
    assert_eq!(get(4, "wredis"), "16");
    assert_eq!(get(4, "last_chk"), "L4 connect refused");
    assert_eq!(get(4, "addr"), "10.0.0.12:12");
    // Backend app: 1 usable active server.
    assert_eq!(get(5, "status"), "UP");
    assert_eq!(get(5, "type"), "1");
    assert_eq!(get(5, "act"), "1");
    assert_eq!(get(5, "bck"), "0");
    assert_eq!(get(5, "weight"), "10");
    assert_eq!(get(5, "uweight"), "20");
    assert_eq!(get(5, "algo"), "roundrobin");
    // db1 is unchecked: no check counters; db2 is a backup.
    assert_eq!(get(6, "status"), "MAINT");
    assert_eq!(get(6, "chkfail"), "");
    assert_eq!(get(7, "bck"), "1");
    assert_eq!(get(7, "admin"), "drain");
    assert_eq!(get(8, "status"), "DOWN");
}

#[test]
fn csv_quotes_fields() {
    let text = render::csv(&evil_report());
    assert!(text.contains("\"fe<script>\"\"a,b\"\"\",FRONTEND,"));
    assert!(text.contains("\"be&'x'\\\n\",\"s\"\"1,\r\n<b>\","));
    let records = parse_csv(&text);
    assert_eq!(records[1][0], "fe<script>\"a,b\"");
    assert_eq!(records[3][0], "be&'x'\\\n");
    assert_eq!(records[3][1], "s\"1,\r\n<b>");
    assert_eq!(
        records[3][column("reason")],
        "L7 body does not contain \"ok\""
    );
    for r in &records {
        assert_eq!(r.len(), CSV_FIELDS.len());
    }
}

// ---------------------------------------------------------------------------------
// JSON

#[test]
fn json_report() {
    let r = evil_report();
    let text = render::json(&r);
    assert!(text.ends_with("}\n"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["info"]["pid"], 4242);
    assert_eq!(v["info"]["version"], "0.1.0");
    assert_eq!(v["frontends"][0]["name"], "fe<script>\"a,b\"");
    assert_eq!(v["backends"][0]["servers"][0]["name"], "s\"1,\r\n<b>");
    assert_eq!(v["backends"][0]["servers"][1]["state"], "DOWN");
    assert_eq!(v["backends"][1]["servers"][0]["state"], "MAINT");
    assert_eq!(
        v["backends"][1]["servers"][0]["last_check"],
        serde_json::Value::Null
    );
    assert_eq!(v["backends"][0]["servers"][1]["address"], "10.0.0.12:12");
    assert_eq!(
        v["backends"][0]["counters"]["http_responses"],
        serde_json::json!([0, 720, 9, 27, 18, 1])
    );
}

// ---------------------------------------------------------------------------------
// Prometheus

#[test]
fn prometheus_report_is_valid() {
    let text = render::prometheus(&report());
    let samples = validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let series_lines = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(samples, series_lines);
    for line in [
        "halb_build_info{version=\"0.1.0\"} 1",
        "halb_process_uptime_seconds 3725",
        "halb_process_generation 3",
        "halb_process_reloads_total 2",
        "halb_process_current_connections 17",
        "halb_frontend_current_sessions{proxy=\"main\"} 7",
        "halb_frontend_sessions_total{proxy=\"main\"} 700",
        "halb_frontend_bytes_in_total{proxy=\"main\"} 7000",
        "halb_frontend_bytes_out_total{proxy=\"main\"} 35000",
        "halb_frontend_http_requests_total{proxy=\"main\"} 630",
        "halb_frontend_http_responses_total{proxy=\"main\",code=\"2xx\"} 560",
        "halb_frontend_http_responses_total{proxy=\"main\",code=\"other\"} 1",
        "halb_frontend_denied_total{proxy=\"main\"} 3",
        "halb_frontend_request_errors_total{proxy=\"tcp-in\"} 1",
        "halb_backend_connection_errors_total{proxy=\"app\"} 10",
        "halb_backend_response_errors_total{proxy=\"app\"} 11",
        "halb_backend_retries_total{proxy=\"app\"} 12",
        "halb_backend_redispatches_total{proxy=\"app\"} 13",
        "halb_backend_usable_servers{proxy=\"app\"} 1",
        "halb_backend_usable_servers{proxy=\"db\"} 0",
        "halb_server_current_sessions{proxy=\"app\",server=\"web1\"} 11",
        "halb_server_http_responses_total{proxy=\"app\",server=\"web2\",code=\"5xx\"} 24",
        "halb_server_status{proxy=\"app\",server=\"web1\",state=\"UP\"} 1",
        "halb_server_status{proxy=\"app\",server=\"web1\",state=\"DOWN\"} 0",
        "halb_server_status{proxy=\"app\",server=\"web2\",state=\"DOWN\"} 1",
        "halb_server_status{proxy=\"db\",server=\"db1\",state=\"MAINT\"} 1",
        "halb_server_status{proxy=\"db\",server=\"db2\",state=\"DRAIN\"} 1",
        "halb_server_weight{proxy=\"app\",server=\"web2\"} 10",
        "halb_server_effective_weight{proxy=\"app\",server=\"web2\"} 0",
        "halb_server_check_failures_total{proxy=\"app\",server=\"web2\"} 4",
        "halb_server_down_transitions_total{proxy=\"app\",server=\"web2\"} 1",
        "halb_server_downtime_seconds_total{proxy=\"app\",server=\"web2\"} 184",
        "halb_server_last_change_seconds{proxy=\"app\",server=\"web2\"} 184",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing line {line}\n{text}"
        );
    }
    for family in [
        "# TYPE halb_frontend_sessions_total counter",
        "# TYPE halb_frontend_current_sessions gauge",
        "# TYPE halb_server_status gauge",
        "# TYPE halb_build_info gauge",
        "# TYPE halb_server_downtime_seconds_total counter",
    ] {
        assert_eq!(text.matches(&format!("{family}\n")).count(), 1, "{family}");
    }
    // One-hot status: 6 samples per server, exactly one of them 1.
    let status: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("halb_server_status{"))
        .collect();
    assert_eq!(status.len(), 4 * 6);
    assert_eq!(status.iter().filter(|l| l.ends_with(" 1")).count(), 4);
}

#[test]
fn prometheus_vrrp_families() {
    let text = render::prometheus(&vrrp_report());
    validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for line in [
        "halb_vrrp_state{vrrp_instance=\"VI_51\",interface=\"eth0\",vrid=\"51\",state=\"MASTER\"} 1",
        "halb_vrrp_state{vrrp_instance=\"VI_51\",interface=\"eth0\",vrid=\"51\",state=\"BACKUP\"} 0",
        "halb_vrrp_state{vrrp_instance=\"VI_<52>\",interface=\"eth0\",vrid=\"52\",state=\"FAULT\"} 1",
        "halb_vrrp_priority{vrrp_instance=\"VI_<52>\",interface=\"eth0\",vrid=\"52\"} 51",
        "halb_vrrp_base_priority{vrrp_instance=\"VI_<52>\",interface=\"eth0\",vrid=\"52\"} 101",
        "halb_vrrp_holds_addresses{vrrp_instance=\"VI_51\",interface=\"eth0\",vrid=\"51\"} 1",
        "halb_vrrp_adverts_sent_total{vrrp_instance=\"VI_51\",interface=\"eth0\",vrid=\"51\"} 40",
        "halb_vrrp_became_master_total{vrrp_instance=\"VI_51\",interface=\"eth0\",vrid=\"51\"} 1",
        "halb_vrrp_invalid_total{vrrp_instance=\"VI_<52>\",interface=\"eth0\",vrid=\"52\",reason=\"checksum\"} 2",
        "halb_vrrp_master_info{vrrp_instance=\"VI_51\",interface=\"eth0\",vrid=\"51\",master=\"10.0.0.11\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing line {line}\n{text}");
    }
    let states = text
        .lines()
        .filter(|l| l.starts_with("halb_vrrp_state{"))
        .count();
    assert_eq!(states, 2 * 4);
    // Without instances, no VRRP family at all.
    assert!(!render::prometheus(&report()).contains("halb_vrrp"));
}

#[test]
fn html_vrrp_rows() {
    let page = render::html(
        &vrrp_report(),
        &render::HtmlOptions {
            uri: "/stats",
            refresh_secs: 0,
            admin: false,
        },
    );
    assert!(page
        .contains("<tr class=\"vrrp vrrp-MASTER\" data-instance=\"VI_51\" data-state=\"MASTER\">"));
    assert!(page.contains("data-instance=\"VI_&lt;52&gt;\" data-state=\"FAULT\""));
    assert!(page.contains("<td>interface eth1 down</td>"));
    assert!(!render::html(
        &report(),
        &render::HtmlOptions {
            uri: "/stats",
            refresh_secs: 0,
            admin: false
        }
    )
    .contains("<h2>VRRP</h2>"));
}

#[test]
fn prometheus_escapes_labels() {
    let text = render::prometheus(&evil_report());
    validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(text.contains("halb_frontend_current_sessions{proxy=\"fe<script>\\\"a,b\\\"\"} 7\n"));
    assert!(text
        .contains("halb_server_weight{proxy=\"be&'x'\\\\\\n\",server=\"s\\\"1,\r\\n<b>\"} 10\n"));
}

#[test]
fn prometheus_empty_report() {
    let mut r = report();
    r.frontends.clear();
    r.backends.clear();
    let text = render::prometheus(&r);
    assert_eq!(validate(&text), Ok(6));
    assert!(!text.contains("halb_frontend"));
    assert!(!text.contains("halb_server"));
}

#[test]
fn validator_accepts() {
    let ok = "# HELP a_total Things.\n# TYPE a_total counter\na_total{x=\"1\"} 1\n\
              a_total{x=\"2\",y=\"a\\\\b\\\"c\\nd\"} 2.5e3\n# TYPE g gauge\ng -1\ng{x=\"\"} NaN\n\
              # TYPE h gauge\nh{} +Inf 1700000000000\n";
    assert_eq!(validate(ok), Ok(5));
}

#[test]
fn validator_rejects() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("# TYPE a gauge\na 1", "line feed"),
        ("# TYPE a gauge\n\na 1\n", "empty line"),
        ("a 1\n", "without a TYPE"),
        ("# TYPE a gauge\n# TYPE a gauge\na 1\n", "second TYPE"),
        (
            "# HELP a x\n# HELP a y\n# TYPE a gauge\na 1\n",
            "second HELP",
        ),
        ("# TYPE a gauge\na 1\n# HELP a late\n", "after its samples"),
        ("# TYPE a gauge\na 1\n# TYPE a counter\n", "second TYPE"),
        ("# TYPE a histogram\na 1\n", "unsupported TYPE"),
        (
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n",
            "interleaved",
        ),
        (
            "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",
            "duplicate series",
        ),
        (
            "# TYPE a gauge\na{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\n",
            "duplicate series",
        ),
        ("# TYPE 1a gauge\n1a 1\n", "invalid metric name"),
        ("# TYPE a-b gauge\n", "invalid metric name"),
        ("# TYPE a gauge\na{1x=\"1\"} 1\n", "invalid label name"),
        ("# TYPE a gauge\na{__x=\"1\"} 1\n", "invalid label name"),
        ("# TYPE a gauge\na{x=1} 1\n", "not quoted"),
        ("# TYPE a gauge\na{x=\"a\\tb\"} 1\n", "bad escape"),
        ("# TYPE a gauge\na{x=\"1\",} 1\n", "trailing comma"),
        ("# TYPE a gauge\na{x=\"1\" y=\"2\"} 1\n", "separated"),
        ("# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n", "twice"),
        ("# TYPE a gauge\na{x=\"1} 1\n", "unterminated"),
        ("# TYPE a gauge\na one\n", "bad value"),
        ("# TYPE a gauge\na inf\n", "bad value"),
        ("# TYPE a gauge\na  1\n", "bad value"),
        ("# TYPE a gauge\na 1 x\n", "bad timestamp"),
        ("# TYPE a gauge\na\n", "without a value"),
        ("# TYPE a gauge\na 1\r\n", "carriage return"),
        ("# a comment\n", "neither HELP nor TYPE"),
        ("# HELP a bad \\t escape\n", "bad escape"),
        ("# TYPE a counter\na 1\n", "does not end in _total"),
        ("# TYPE a_total gauge\na_total 1\n", "ends in _total"),
        ("# TYPE a_total counter\na_total -1\n", "has value"),
        ("# TYPE a_total counter\na_total NaN\n", "has value"),
    ];
    for (text, want) in cases {
        match validate(text) {
            Ok(n) => panic!("{text:?} accepted ({n} samples)"),
            Err(e) => assert!(e.contains(want), "{text:?}: {e:?} lacks {want:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------
// Routing

fn basic(user_pass: &str) -> Vec<u8> {
    // A tiny encoder for the tests (the router only decodes).
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = b"Basic ".to_vec();
    for chunk in user_pass.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");

fn get(cfg: &Stats, target: &str, auth: Option<&[u8]>) -> Route {
    route(cfg, "GET", target, auth, None, b"")
}

fn status(r: &Route) -> u16 {
    match r {
        Route::Respond(resp) => resp.status,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn header<'a>(r: &'a Route, name: &str) -> Option<&'a str> {
    match r {
        Route::Respond(resp) => resp
            .extra_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str()),
        _ => None,
    }
}

#[test]
fn base64() {
    assert_eq!(
        base64_decode(b"YWRtaW46czNjcjpldA==").unwrap(),
        b"admin:s3cr:et"
    );
    assert_eq!(
        base64_decode(b"YWRtaW46czNjcjpldA").unwrap(),
        b"admin:s3cr:et"
    );
    assert_eq!(base64_decode(b"").unwrap(), b"");
    assert_eq!(base64_decode(b"YQ==").unwrap(), b"a");
    assert_eq!(base64_decode(b"YWI=").unwrap(), b"ab");
    assert_eq!(base64_decode(b"YWJj").unwrap(), b"abc");
    assert_eq!(base64_decode(b"+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
    for bad in [
        &b"Y"[..],
        b"YQ=",
        b"YQ===",
        b"Y=Q=",
        b"YW!j",
        b"YWJj=",
        b"=",
        b"YQ==YQ==",
    ] {
        assert_eq!(
            base64_decode(bad),
            None,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(basic("admin:s3cr:et"), b"Basic YWRtaW46czNjcjpldA==");
}

#[test]
fn auth() {
    let cfg = stats_cfg(true, false);
    let good = basic("admin:s3cr:et");
    for target in ["/stats", "/stats;csv", "/stats;json", "/metrics", "/nope"] {
        let r = get(&cfg, target, None);
        assert_eq!(status(&r), 401, "{target}");
        assert_eq!(
            header(&r, "WWW-Authenticate"),
            Some("Basic realm=\"halb stats\"")
        );
        assert_ne!(get(&cfg, target, Some(&good)), r);
    }
    assert_eq!(get(&cfg, "/stats", Some(&good)), Route::Html);
    assert_eq!(get(&cfg, "/metrics", Some(&good)), Route::Metrics);
    // Scheme is case-insensitive, extra blanks tolerated.
    let mut lower = b"basic  ".to_vec();
    lower.extend_from_slice(&good[6..]);
    assert_eq!(get(&cfg, "/stats", Some(&lower)), Route::Html);
    for bad in [
        basic("admin:wrong"),
        basic("admin:s3cr:et "),
        basic("admin:s3cr:e"),
        basic("Admin:s3cr:et"),
        basic("admin"),
        basic(""),
        basic("admin:s3cr:etadmin:s3cr:et"),
        b"Bearer YWRtaW46czNjcjpldA==".to_vec(),
        b"Basic".to_vec(),
        b"Basic !!!!".to_vec(),
        b"BasicYWRtaW46czNjcjpldA==".to_vec(),
    ] {
        let r = get(&cfg, "/stats", Some(&bad));
        assert_eq!(status(&r), 401, "{}", String::from_utf8_lossy(&bad));
    }
    // POST needs auth before anything else.
    let r = route(&cfg, "POST", "/stats", None, FORM, b"x");
    assert_eq!(status(&r), 401);
}

#[test]
fn paths() {
    let cfg = stats_cfg(false, false);
    assert_eq!(get(&cfg, "/stats", None), Route::Html);
    assert_eq!(get(&cfg, "/stats?x=1;csv", None), Route::Html);
    assert_eq!(get(&cfg, "/stats;csv", None), Route::Csv);
    assert_eq!(get(&cfg, "/stats;csv?norefresh", None), Route::Csv);
    assert_eq!(get(&cfg, "/stats;json", None), Route::Json);
    assert_eq!(get(&cfg, "/metrics", None), Route::Metrics);
    assert_eq!(get(&cfg, "/metrics?name[]=x", None), Route::Metrics);
    assert_eq!(
        get(&cfg, "http://lb.example:8404/stats;json", None),
        Route::Json
    );
    assert_eq!(get(&cfg, "HTTP://lb.example/metrics", None), Route::Metrics);
    assert_eq!(route(&cfg, "HEAD", "/stats", None, None, b""), Route::Html);
    assert_eq!(
        route(&cfg, "HEAD", "/metrics", None, None, b""),
        Route::Metrics
    );
    for target in [
        "/",
        "/stats/",
        "/stats;xml",
        "/statsx",
        "/Stats",
        "/metrics/",
        "*",
        "",
        "/stats;csv;x",
        "http://lb.example",
    ] {
        assert_eq!(status(&get(&cfg, target, None)), 404, "{target}");
    }
    let mut other = stats_cfg(false, false);
    other.uri = "/lb/stats".to_owned();
    assert_eq!(get(&other, "/lb/stats;csv", None), Route::Csv);
    assert_eq!(status(&get(&other, "/stats", None)), 404);
}

#[test]
fn methods() {
    let cfg = stats_cfg(true, true);
    let auth = basic("admin:s3cr:et");
    let a = Some(&auth[..]);
    for (method, target, allow) in [
        ("PUT", "/stats", "GET, HEAD, POST"),
        ("DELETE", "/stats", "GET, HEAD, POST"),
        ("get", "/stats", "GET, HEAD, POST"),
        ("POST", "/stats;csv", "GET, HEAD"),
        ("POST", "/metrics", "GET, HEAD"),
        ("OPTIONS", "/stats;json", "GET, HEAD"),
    ] {
        let r = route(&cfg, method, target, a, FORM, b"");
        assert_eq!(status(&r), 405, "{method} {target}");
        assert_eq!(header(&r, "Allow"), Some(allow));
    }
    // 404 wins over 405.
    assert_eq!(status(&route(&cfg, "PUT", "/x", a, None, b"")), 404);
}

#[test]
fn post_actions() {
    let cfg = stats_cfg(true, true);
    let auth = basic("admin:s3cr:et");
    let post = |ct: Option<&[u8]>, body: &str| {
        route(&cfg, "POST", "/stats", Some(&auth), ct, body.as_bytes())
    };
    let action = |b: &str, s: &str, what| {
        Route::Action(StatsAction {
            backend: b.to_owned(),
            server: s.to_owned(),
            what,
        })
    };
    assert_eq!(
        post(FORM, "backend=app&server=web1&action=drain"),
        action("app", "web1", ActionKind::State(AdminState::Drain))
    );
    assert_eq!(
        post(FORM, "action=ready&server=web1&backend=app"),
        action("app", "web1", ActionKind::State(AdminState::Ready))
    );
    assert_eq!(
        post(
            Some(b"Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
            "backend=my+app&server=web%201%2B%c3%a9&action=maint&submit=go"
        ),
        action("my app", "web 1+é", ActionKind::State(AdminState::Maint))
    );
    assert_eq!(
        post(FORM, "backend=app&server=web1&action=weight&weight=256"),
        action("app", "web1", ActionKind::Weight(256))
    );
    assert_eq!(
        post(FORM, "backend=app&server=web1&action=weight&weight=0"),
        action("app", "web1", ActionKind::Weight(0))
    );
    // The weight is ignored for state actions.
    assert_eq!(
        post(FORM, "backend=app&server=web1&action=maint&weight=x"),
        action("app", "web1", ActionKind::State(AdminState::Maint))
    );
    for bad in [
        "",
        "backend=app&server=web1",
        "backend=app&action=ready",
        "server=web1&action=ready",
        "backend=&server=web1&action=ready",
        "backend=app&server=web1&action=stop",
        "backend=app&server=web1&action=READY",
        "backend=app&server=web1&action=weight",
        "backend=app&server=web1&action=weight&weight=",
        "backend=app&server=web1&action=weight&weight=257",
        "backend=app&server=web1&action=weight&weight=-1",
        "backend=app&server=web1&action=weight&weight=1.5",
        "backend=app&server=web1&action=weight&weight=99999999999",
        "backend=app&backend=db&server=web1&action=ready",
        "backend=a%2&server=web1&action=ready",
        "backend=a%zz&server=web1&action=ready",
        "backend=%ff&server=web1&action=ready",
    ] {
        assert_eq!(status(&post(FORM, bad)), 400, "{bad}");
    }
    assert_eq!(
        status(&post(None, "backend=app&server=web1&action=drain")),
        415
    );
    assert_eq!(
        status(&post(
            Some(b"multipart/form-data; boundary=x"),
            "backend=app"
        )),
        415
    );
    assert_eq!(status(&post(Some(b"application/json"), "{}")), 415);
}

#[test]
fn admin_off() {
    let auth = basic("admin:s3cr:et");
    let body = b"backend=app&server=web1&action=drain";
    let cfg = stats_cfg(true, false);
    assert_eq!(
        status(&route(&cfg, "POST", "/stats", Some(&auth), FORM, body)),
        403
    );
    // admin without auth is never open.
    let cfg = stats_cfg(false, true);
    assert_eq!(
        status(&route(&cfg, "POST", "/stats", None, FORM, body)),
        403
    );
    // Forms are still parsed by parse_action alone.
    assert!(parse_action(body).is_ok());
}

#[test]
fn form_decoding() {
    assert_eq!(form_decode(b"a+b%20c%2b%26%3D").unwrap(), "a b c+&=");
    assert_eq!(form_decode(b"").unwrap(), "");
    assert!(form_decode(b"%").is_err());
    assert!(form_decode(b"%4").is_err());
    assert!(form_decode(b"%g0").is_err());
    assert!(form_decode(b"%c3").is_err());
}

#[test]
fn responses() {
    let r = Response::text(404, "no such stats page");
    let bytes = String::from_utf8(r.to_bytes(false)).unwrap();
    let body = "404 Not Found: no such stats page\n";
    assert_eq!(
        bytes,
        format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    );
    // HEAD: same head (Content-Length of the body not sent), no body.
    let head = String::from_utf8(r.to_bytes(true)).unwrap();
    assert_eq!(head, bytes.strip_suffix(body).unwrap());

    let r = see_other("/stats");
    assert_eq!(r.status, 303);
    let bytes = String::from_utf8(r.to_bytes(false)).unwrap();
    assert!(bytes.starts_with("HTTP/1.1 303 See Other\r\n"));
    assert!(bytes.contains("\r\nLocation: /stats\r\n"));

    // No header injection through extra fields.
    let mut r = super::route::ok("text/plain", "x");
    r.extra_headers
        .push(("X-A\r\n".to_owned(), "v\r\nSet-Cookie: evil".to_owned()));
    let bytes = String::from_utf8(r.to_bytes(false)).unwrap();
    assert!(bytes.contains("\r\nX-A: vSet-Cookie: evil\r\n"));
    assert!(bytes.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(bytes.ends_with("\r\n\r\nx"));

    let r401 = get(&stats_cfg(true, false), "/stats", None);
    let Route::Respond(r401) = r401 else { panic!() };
    let bytes = String::from_utf8(r401.to_bytes(false)).unwrap();
    assert!(bytes.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
    assert!(bytes.contains("\r\nWWW-Authenticate: Basic realm=\"halb stats\"\r\n"));
}

#[test]
fn render_pages() {
    let cfg = stats_cfg(false, false);
    let r = report();
    let cases = [
        (Route::Html, "text/html; charset=utf-8"),
        (Route::Csv, "text/csv; charset=utf-8"),
        (Route::Json, "application/json"),
        (Route::Metrics, "text/plain; version=0.0.4; charset=utf-8"),
    ];
    for (route, ct) in cases {
        assert!(route.needs_report());
        let resp = route.render(&cfg, &r).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.content_type, ct);
        assert!(!resp.body.is_empty());
    }
    let resp = Route::Metrics.render(&cfg, &r).unwrap();
    validate(std::str::from_utf8(&resp.body).unwrap()).unwrap();
    let respond = Route::Respond(Response::text(404, "x"));
    assert!(!respond.needs_report());
    assert_eq!(respond.render(&cfg, &r), None);
}
