//! The stats listener through the real binary (docs/control.md, src/stats/report.rs):
//! counters equal what the test sent, `/metrics` is valid Prometheus text, basic auth,
//! admin POST actions, `;csv`, and the HTML page as a real browser (headless Chromium)
//! renders it: one row per server with its state, and a screenshot.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::control::*;
use common::http::*;
use common::*;

/// Where the browser is (Debian's `chromium` package, installed by tests/run-all.sh).
const CHROMIUM: &str = "/usr/bin/chromium";
/// Longest a Chromium run may take.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);

/// Sum of a counter over a backend's servers.
fn servers_counter(backend: &Value, name: &str) -> u64 {
    backend["servers"]
        .as_array()
        .expect("servers array")
        .iter()
        .map(|s| counter(s, name))
        .sum()
}

/// `counters.http_responses[class]` (0 = 1xx … 4 = 5xx, 5 = other).
fn responses(item: &Value, class: usize) -> u64 {
    item["counters"]["http_responses"][class]
        .as_u64()
        .unwrap_or_else(|| panic!("no http_responses[{class}] in {item:#}"))
}

/// N requests with known body sizes, one connection each, spread over two servers: the
/// frontend, backend and server counters add up to exactly what was sent, and each
/// server's count is what that server itself served.
#[test]
fn counters_equal_what_was_sent() {
    let s1 = KillableBackend::start("s1");
    let s2 = KillableBackend::start("s2");
    let ctl = Control::new();
    let halb = ctl
        .apply(Conf::http().server("s1", s1.addr).server("s2", s2.addr))
        .start();
    let stats = ctl.stats();

    const N: u64 = 40;
    let mut sent = 0u64;
    let mut body_bytes = 0u64;
    let mut received = 0u64;
    for i in 0..N {
        let body = pattern(100 * i as usize + 1);
        body_bytes += body.len() as u64;
        let req = build_request("POST", &format!("/upload/{i}"), &[], &body);
        sent += req.len() as u64;
        let mut c = Client::connect(halb.addr);
        c.send(&req).expect("send");
        let r = c.read_final("POST").expect("response");
        assert_eq!(r.status, 200, "{r}");
        received += (r.raw_head.len() + r.raw_body.len()) as u64;
    }
    let mut fe = Value::Null;
    let done = try_wait_until(WAIT, || {
        fe = stats.frontend("fe");
        counter(&fe, "http_requests") == N
            && counter(&fe, "total_sessions") == N
            && counter(&fe, "current_sessions") == 0
    });
    assert!(
        done,
        "the frontend should count {N} requests on {N} closed connections: {fe:#}"
    );
    let report = stats.json();
    let fe = report["frontends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "fe")
        .unwrap()
        .clone();
    let be = backend_of(&report, "be").clone();
    let (j1, j2) = (
        server_of(&report, "be", "s1"),
        server_of(&report, "be", "s2"),
    );

    assert_eq!(responses(&fe, 1), N, "frontend 2xx: {fe:#}");
    assert!(
        counter(&fe, "bytes_in") >= sent,
        "frontend bytes_in {} < {sent} bytes sent: {fe:#}",
        counter(&fe, "bytes_in")
    );
    assert!(
        counter(&fe, "bytes_out") >= received,
        "frontend bytes_out {} < {received} bytes received: {fe:#}",
        counter(&fe, "bytes_out")
    );
    assert_eq!(counter(&be, "http_requests"), N, "backend: {be:#}");
    assert_eq!(responses(&be, 1), N, "backend 2xx: {be:#}");
    assert_eq!(servers_counter(&be, "http_requests"), N, "servers: {be:#}");
    assert_eq!(
        counter(j1, "http_requests"),
        s1.served() as u64,
        "s1's count vs what s1 served: {j1:#}"
    );
    assert_eq!(
        counter(j2, "http_requests"),
        s2.served() as u64,
        "s2's count vs what s2 served: {j2:#}"
    );
    assert!(
        s1.served() > 0 && s2.served() > 0,
        "round robin used one server only"
    );
    assert_eq!(responses(j1, 1) + responses(j2, 1), N);
    assert!(
        servers_counter(&be, "bytes_in") >= body_bytes,
        "servers got at least every body byte: {be:#}"
    );
    for c in [
        "connection_errors",
        "response_errors",
        "request_errors",
        "denied",
    ] {
        assert_eq!(fe["counters"][c].as_u64().unwrap_or(0), 0, "{c}: {fe:#}");
    }
    assert_eq!(report["info"]["pid"], halb.pid(), "{:#}", report["info"]);
}

/// The value of the sample `series` (name and labels exactly as written) in Prometheus
/// text, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let rest = l.strip_prefix(series)?;
        rest.starts_with(' ')
            .then(|| rest.split_whitespace().next()?.parse().ok())
            .flatten()
    })
}

/// `/metrics` is valid Prometheus text (checked by `halb::stats::prom_check::validate`)
/// with the frontend's, the backend's and each server's series, values matching what
/// was sent and the servers' states.
#[test]
fn metrics_are_valid_prometheus_text() {
    let s1 = KillableBackend::start("s1");
    let s2 = KillableBackend::start("s2");
    let ctl = Control::new();
    let halb = ctl
        .apply(Conf::http().server("s1", s1.addr).server("s2", s2.addr))
        .start();
    for i in 0..6 {
        let r = get(halb.addr, &format!("/m/{i}"), &[]);
        assert_eq!(r.status, 200, "{r}");
    }
    let stats = ctl.stats();
    wait_until("the frontend counts 6 requests", WAIT, || {
        counter(&stats.frontend("fe"), "http_requests") == 6
    });
    ctl.ctl_ok(&["set", "server", "be/s2", "state", "maint"]);
    stats.wait_state("be", "s2", "MAINT");
    let r = stats.get("/metrics");
    assert_eq!(r.status, 200, "{r}");
    let ct = r.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/plain"), "content-type {ct:?}");
    let text = r.text();
    let n = halb::stats::prom_check::validate(&text)
        .unwrap_or_else(|e| panic!("/metrics is not valid Prometheus text: {e}\n{text}"));
    assert!(n > 0, "no samples in /metrics:\n{text}");
    assert!(
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .all(|l| l.starts_with("halb_")),
        "every series should be named halb_*:\n{text}"
    );
    let want = |series: &str, value: f64| {
        assert_eq!(
            sample(&text, series),
            Some(value),
            "{series} in /metrics:\n{text}"
        );
    };
    want("halb_frontend_http_requests_total{proxy=\"fe\"}", 6.0);
    want("halb_frontend_sessions_total{proxy=\"fe\"}", 6.0);
    want(
        "halb_frontend_http_responses_total{proxy=\"fe\",code=\"2xx\"}",
        6.0,
    );
    want("halb_backend_http_requests_total{proxy=\"be\"}", 6.0);
    want(
        "halb_server_http_requests_total{proxy=\"be\",server=\"s1\"}",
        s1.served() as f64,
    );
    want(
        "halb_server_http_requests_total{proxy=\"be\",server=\"s2\"}",
        s2.served() as f64,
    );
    assert_eq!(s1.served() + s2.served(), 6);
    want(
        "halb_server_status{proxy=\"be\",server=\"s1\",state=\"UP\"}",
        1.0,
    );
    want(
        "halb_server_status{proxy=\"be\",server=\"s2\",state=\"MAINT\"}",
        1.0,
    );
    want(
        "halb_server_status{proxy=\"be\",server=\"s2\",state=\"UP\"}",
        0.0,
    );
    let generation = stats.json()["info"]["generation"].as_f64().unwrap();
    want("halb_process_generation", generation);
}

/// With `auth`, every stats path answers 401 (with `WWW-Authenticate`) without or with
/// wrong credentials, and 200 with the right ones.
#[test]
fn basic_auth_protects_the_stats_page() {
    let s1 = KillableBackend::start("s1");
    let ctl = Control::with_auth("admin", "s3cret", false);
    let _halb = ctl.apply(Conf::http().server("s1", s1.addr)).start();
    let good = ctl.stats();
    let none = StatsClient {
        auth: None,
        ..good.clone()
    };
    let wrong = StatsClient {
        auth: Some(("admin".to_string(), "guess".to_string())),
        ..good.clone()
    };
    for path in ["/stats", "/stats;json", "/stats;csv"] {
        for (who, client) in [("no credentials", &none), ("a wrong password", &wrong)] {
            let r = client.get(path);
            assert_eq!(r.status, 401, "GET {path} with {who}: {r}");
            let challenge = r.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.to_ascii_lowercase().starts_with("basic"),
                "GET {path} with {who}: 401 without a Basic challenge: {r}"
            );
        }
        let r = good.get(path);
        assert_eq!(r.status, 200, "GET {path} with the right credentials: {r}");
    }
    assert_eq!(good.state("be", "s1"), "UP");
}

/// `admin = true`: POST actions set a server to maint (seen in the JSON and by `halb
/// ctl`), change a weight and bring it back; without credentials a POST is refused and
/// changes nothing.
#[test]
fn admin_post_sets_server_state_and_weight() {
    let s1 = KillableBackend::start("s1");
    let s2 = KillableBackend::start("s2");
    let ctl = Control::with_auth("admin", "s3cret", true);
    let _halb = ctl
        .apply(Conf::http().server("s1", s1.addr).server("s2", s2.addr))
        .start();
    let stats = ctl.stats();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let post = |client: &StatsClient, body: &str| {
        client
            .request("POST", "/stats", &form, body.as_bytes())
            .unwrap_or_else(|e| panic!("POST /stats {body}: {e}"))
    };

    let anonymous = StatsClient {
        auth: None,
        ..stats.clone()
    };
    let r = post(&anonymous, "backend=be&server=s1&action=maint");
    assert_eq!(r.status, 401, "an admin POST without credentials: {r}");
    assert_eq!(stats.state("be", "s1"), "UP", "the refused POST changed s1");

    let r = post(&stats, "backend=be&server=s1&action=maint");
    assert!(r.status < 400, "POST maint: {r}");
    let s = stats.wait_state("be", "s1", "MAINT");
    assert_eq!(s["admin"], "maint", "{s:#}");
    let listed = ctl.ctl_json(&["show", "servers", "be"]);
    assert_eq!(
        server_of(&listed, "be", "s1")["state"],
        "MAINT",
        "{listed:#}"
    );
    let text = ctl.ctl_ok(&["show", "servers", "be"]);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("s1"))
        .unwrap_or_else(|| panic!("no s1 line in show servers:\n{text}"));
    assert!(line.contains("MAINT"), "show servers line of s1: {line}");

    let r = post(&stats, "backend=be&server=s2&action=weight&weight=7");
    assert!(r.status < 400, "POST weight: {r}");
    wait_until("s2's weight is 7", WAIT, || {
        stats.server("be", "s2")["weight"] == 7
    });

    let r = post(&stats, "backend=be&server=s1&action=ready");
    assert!(r.status < 400, "POST ready: {r}");
    stats.wait_state("be", "s1", "UP");

    let r = post(&stats, "backend=be&server=nope&action=maint");
    assert!(
        r.status >= 400,
        "a POST naming an unknown server should be refused: {r}"
    );
}

/// `;csv`: a header line, then one line per frontend, backend and server, all with the
/// header's number of fields.
#[test]
fn csv_has_a_header_and_a_line_per_server() {
    let s1 = KillableBackend::start("s1");
    let s2 = KillableBackend::start("s2");
    let ctl = Control::new();
    let _halb = ctl
        .apply(Conf::http().server("s1", s1.addr).server("s2", s2.addr))
        .start();
    let stats = ctl.stats();
    let r = stats.get("/stats;csv");
    assert_eq!(r.status, 200, "{r}");
    let text = r.text();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "empty CSV");
    let header = lines[0];
    let width = header.split(',').count();
    assert!(
        width >= 5,
        "a header line with the column names first: {header:?}"
    );
    assert!(
        !header.contains(",s1,") && !header.contains(",be,"),
        "the first line should be the header, got {header:?}"
    );
    // fe, be, s1, s2.
    assert_eq!(
        lines.len(),
        1 + 1 + 1 + 2,
        "expected a header, one frontend, one backend and two server lines:\n{text}"
    );
    for l in &lines[1..] {
        assert_eq!(
            l.split(',').count(),
            width,
            "line with another number of fields than the header: {l:?}\n{text}"
        );
    }
    for name in ["s1", "s2"] {
        let n = lines[1..]
            .iter()
            .filter(|l| l.split(',').any(|f| f.trim_matches('"') == name))
            .count();
        assert_eq!(n, 1, "expected one line for server {name}:\n{text}");
    }
}

// ---------------------------------------------------------------------------------------
// A real browser
// ---------------------------------------------------------------------------------------

/// Run Chromium headless with `args` (bounded); its stdout.
fn chromium(profile: &Path, args: &[String]) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test drives a real headless Chromium. Run tests/run-all.sh \
         (it installs Debian's `chromium` package), or `apt-get install chromium`"
    );
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn chromium");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let t_err = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} still running after {CHROMIUM_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
    assert!(
        status.success(),
        "chromium {args:?} failed ({status}):\n{stderr}"
    );
    stdout
}

/// `(data-server, data-state)` of every element that has a `data-server` attribute.
fn server_rows(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let at = tag.find(&key)? + key.len();
        let end = tag[at..].find('"')?;
        Some(tag[at..at + end].to_string())
    };
    let mut rows = Vec::new();
    let mut rest = html;
    for _ in 0..10_000 {
        let Some(at) = rest.find("data-server=\"") else {
            break;
        };
        let open = rest[..at].rfind('<').unwrap_or(0);
        let close = rest[at..].find('>').map(|e| at + e).unwrap_or(rest.len());
        let tag = &rest[open..close];
        rows.push((
            attr(tag, "data-server").unwrap_or_default(),
            attr(tag, "data-state").unwrap_or_default(),
        ));
        rest = &rest[close..];
    }
    rows
}

/// The HTML page in headless Chromium: `--dump-dom` shows one row per server whose
/// `data-server`/`data-state` match the stats JSON (UP, MAINT, DOWN), and a screenshot is
/// saved under target/test-output/stats-page.png.
#[test]
fn stats_page_in_a_real_browser() {
    let s1 = KillableBackend::start("s1");
    let s2 = KillableBackend::start("s2");
    let ctl = Control::new();
    let halb = ctl
        .apply(
            Conf::http()
                .backend(&tcp_check(""))
                .server_with("s1", s1.addr, &["check = true"])
                .server_with("s2", s2.addr, &["check = true"])
                .server_with("s3", dead_addr(), &["check = true"]),
        )
        .start();
    let stats = ctl.stats();
    ctl.ctl_ok(&["set", "server", "be/s2", "state", "maint"]);
    stats.wait_state("be", "s2", "MAINT");
    stats.wait_state("be", "s3", "DOWN");
    for i in 0..4 {
        let _ = get(halb.addr, &format!("/page/{i}"), &[]);
    }
    let report = stats.json();
    let want: Vec<(String, String)> = backend_of(&report, "be")["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        want.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
        ["UP", "MAINT", "DOWN"],
        "{report:#}"
    );

    let url = format!("http://{}/stats", ctl.stats_addr);
    let profile = ctl.dir().join("chromium-dom");
    let dom = chromium(&profile, &["--dump-dom".to_string(), url.clone()]);
    let mut rows = server_rows(&dom);
    for (server, _) in rows.iter_mut() {
        if let Some(short) = server.strip_prefix("be/") {
            *server = short.to_string();
        }
    }
    assert_eq!(
        rows, want,
        "rows of the page (data-server, data-state) vs the stats JSON; page:\n{dom}"
    );

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-output");
    fs::create_dir_all(&dir).expect("create target/test-output");
    let png = dir.join("stats-page.png");
    let _ = fs::remove_file(&png);
    let profile = ctl.dir().join("chromium-shot");
    chromium(
        &profile,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1400,900".to_string(),
            url,
        ],
    );
    let bytes =
        fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    assert!(
        bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG ({} bytes)",
        png.display(),
        bytes.len()
    );
    println!("stats page screenshot: {}", png.display());
}
