//! `--hist-out`, `--plot` and scenario files, driving the real binary against a small
//! keep-alive HTTP server written here (loopback only, read timeouts on every socket).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::thread;
use std::time::Duration;

use serde_json::Value;

mod common;

/// A keep-alive server answering every request with 200 and a 5-byte body.
fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || serve(conn));
        }
    });
    port
}

fn serve(mut conn: TcpStream) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            let response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
            if conn.write_all(response).is_err() {
                return;
            }
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn loadtest(args: &[&str], dir: &Path) -> Output {
    common::loadtest_in(args, Some(dir))
}

/// A fresh directory under the target dir's tmp (removed first if a previous run left it).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Parses an HdrHistogram percentile distribution: (value, percentile, total count) rows
/// and the footer's total count.
fn parse_hgrm(text: &str) -> (Vec<(f64, f64, u64)>, u64) {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    );
    assert_eq!(lines.next(), Some(""));
    let mut rows = Vec::new();
    let mut total = None;
    let mut footer = 0;
    for line in lines {
        if let Some(rest) = line.strip_prefix("#[") {
            footer += 1;
            assert!(rest.ends_with(']'), "{line}");
            if let Some(t) = rest.split("Total count    =").nth(1) {
                total = Some(t.trim_end_matches(']').trim().parse().unwrap());
            }
            continue;
        }
        assert_eq!(footer, 0, "rows after the footer: {line}");
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert!(cols.len() == 4 || cols.len() == 3, "{line}");
        let percentile: f64 = cols[1].parse().unwrap();
        if cols.len() == 4 {
            let inverse: f64 = cols[3].parse().unwrap();
            assert!((inverse - 1.0 / (1.0 - percentile)).abs() / inverse < 0.01);
        } else {
            assert_eq!(percentile, 1.0, "only the last row has 3 columns");
        }
        rows.push((
            cols[0].parse().unwrap(),
            percentile,
            cols[2].parse().unwrap(),
        ));
    }
    assert_eq!(footer, 3, "Mean, Max and Buckets footer lines");
    assert!(text.contains("#[Mean    ="));
    (rows, total.expect("a Total count"))
}

/// A tiny well-formedness check: balanced tags, quoted attributes, one root.
fn check_xml(text: &str) {
    let mut rest = text.trim();
    if let Some(decl) = rest.strip_prefix("<?xml") {
        rest = decl[decl.find("?>").expect("closed declaration") + 2..].trim_start();
    }
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    while let Some(open) = rest.find('<') {
        assert!(
            !rest[..open].contains('>'),
            "stray > in text: {}",
            &rest[..open]
        );
        let text_part = &rest[..open];
        assert!(
            !stack.is_empty() || text_part.trim().is_empty(),
            "text outside the root"
        );
        for (i, _) in text_part.match_indices('&') {
            let entity = &text_part[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "bad entity in {text_part}"
            );
        }
        let close = rest[open..].find('>').expect("unclosed tag") + open;
        let tag = &rest[open + 1..close];
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else {
            let name: String = tag
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '/')
                .collect();
            assert!(!name.is_empty(), "empty tag name");
            if stack.is_empty() {
                roots += 1;
            }
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        rest = &rest[close + 1..];
    }
    assert!(rest.trim().is_empty(), "text after the root");
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(roots, 1, "one root element");
}

fn polyline_points(svg: &str) -> Vec<Vec<(f64, f64)>> {
    svg.match_indices("<polyline")
        .map(|(i, _)| {
            let tag = &svg[i..i + svg[i..].find('>').unwrap()];
            let points = tag.split("points=\"").nth(1).unwrap();
            let points = &points[..points.find('"').unwrap()];
            points
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

#[test]
fn hist_out_and_plot() {
    let port = http_server();
    let dir = scratch("hist_out_and_plot");
    let url = format!("http://127.0.0.1:{port}/x");
    let out = loadtest(
        &[
            "-c",
            "4",
            "--rate",
            "2000",
            "--requests",
            "1500",
            "--json",
            "--hist-out",
            "lat.hgrm",
            "--plot",
            "lat.svg",
            &url,
        ],
        &dir,
    );
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ok = v["ok"].as_u64().unwrap();
    assert_eq!(ok, 1500);

    let text = std::fs::read_to_string(dir.join("lat.hgrm")).unwrap();
    let (rows, total) = parse_hgrm(&text);
    assert_eq!(total, ok, "footer total count is the JSON's ok");
    assert!(rows.len() > 20, "5 ticks per half distance: {}", rows.len());
    assert!(
        rows.windows(2).all(|w| w[0].1 < w[1].1),
        "percentiles increase"
    );
    assert!(rows.windows(2).all(|w| w[0].0 <= w[1].0), "values increase");
    assert!(rows.windows(2).all(|w| w[0].2 <= w[1].2), "counts increase");
    let last = rows.last().unwrap();
    assert_eq!((last.1, last.2), (1.0, ok));
    let max_ms = v["latency_us"]["max"].as_f64().unwrap() / 1000.0;
    assert!(
        (last.0 - max_ms).abs() <= max_ms * 0.001 + 0.001,
        "{last:?} vs {max_ms}"
    );

    let svg = std::fs::read_to_string(dir.join("lat.svg")).unwrap();
    check_xml(&svg);
    let lines = polyline_points(&svg);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].len() > 20);
    assert!(lines[0].windows(2).all(|w| w[0].0 <= w[1].0), "x grows");
    for label in ["99.999%", "Latency (ms)", &url, "open loop at 2000 req/s"] {
        assert!(svg.contains(label), "{label} in the plot");
    }
}

/// `halb-loadtest plot` draws several `--hist-out` files in one SVG, and names a bad input.
#[test]
fn plot_subcommand_overlays_hist_out_files() {
    let port = http_server();
    let dir = scratch("plot_subcommand");
    let url = format!("http://127.0.0.1:{port}/x");
    for (name, conns) in [("two.hgrm", "2"), ("eight.hgrm", "8")] {
        let out = loadtest(
            &["-c", conns, "--requests", "500", "--hist-out", name, &url],
            &dir,
        );
        assert!(out.status.success());
    }
    let out = loadtest(
        &[
            "plot",
            "both.svg",
            "--title",
            "two vs eight",
            "c=2=two.hgrm",
            "eight conns=eight.hgrm",
        ],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = std::fs::read_to_string(dir.join("both.svg")).unwrap();
    check_xml(&svg);
    assert_eq!(polyline_points(&svg).len(), 2);
    for label in ["two vs eight", "c=2", "eight conns"] {
        assert!(svg.contains(label), "{label} in the plot");
    }

    std::fs::write(dir.join("bad.hgrm"), "0.5 7.0 1 2\n").unwrap();
    for args in [
        &["plot", "x.svg", "a=missing.hgrm"][..],
        &["plot", "x.svg", "a=bad.hgrm"],
        &["plot", "x.svg", "no-equals-sign"],
        &["plot", "x.svg"],
    ] {
        let out = loadtest(args, &dir);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("halb-loadtest plot:"));
    }
    assert!(!dir.join("x.svg").exists());
}

#[test]
fn hist_out_without_samples_has_a_zero_total() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = scratch("hist_out_empty");
    let url = format!("http://127.0.0.1:{port}/");
    let out = loadtest(
        &[
            "--requests",
            "2",
            "--hist-out",
            "h",
            "--plot",
            "p.svg",
            &url,
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1));
    let (rows, total) = parse_hgrm(&std::fs::read_to_string(dir.join("h")).unwrap());
    assert_eq!((rows.len(), total), (0, 0));
    check_xml(&std::fs::read_to_string(dir.join("p.svg")).unwrap());
}

#[test]
fn scenario_matrix_writes_json_summary_and_plot() {
    let port = http_server();
    let dir = scratch("scenario_matrix");
    let file = dir.join("bench.toml");
    std::fs::write(
        &file,
        format!(
            r#"
title = "matrix test"
plot = true

[defaults]
requests = 200
timeout = "1s"

[[run]]
name = "web"
url = "http://127.0.0.1:{port}/x"
matrix = {{ connections = [1, 4] }}
"#
        ),
    )
    .unwrap();
    let out = loadtest(&["scenario", "bench.toml", "--out", "results"], &dir);
    assert!(out.status.success());
    let results = dir.join("results");
    let mut names: Vec<String> = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "latency.svg",
            "summary.md",
            "web-connections1.hgrm",
            "web-connections1.json",
            "web-connections4.hgrm",
            "web-connections4.json"
        ]
    );
    for c in [1, 4] {
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(results.join(format!("web-connections{c}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(v["name"], format!("web-connections{c}"));
        assert_eq!(v["connections"], c);
        assert_eq!(v["ok"], 200);
        assert_eq!(v["errors_total"], 0);
    }
    let summary = std::fs::read_to_string(results.join("summary.md")).unwrap();
    assert!(summary.starts_with("# matrix test\n"), "{summary}");
    let rows: Vec<Vec<&str>> = summary
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "name",
            "req/s",
            "bytes/s",
            "p50 (µs)",
            "p99 (µs)",
            "p99.9 (µs)",
            "max (µs)",
            "errors"
        ]
    );
    assert_eq!(rows.len(), 4, "header, rule, two runs");
    for (row, name) in rows[2..]
        .iter()
        .zip(["web-connections1", "web-connections4"])
    {
        assert_eq!(row[0], name);
        assert!(row[1].parse::<f64>().unwrap() > 0.0);
        assert!(row[3].parse::<u64>().unwrap() > 0);
        assert_eq!(row[7], "0");
    }
    let svg = std::fs::read_to_string(results.join("latency.svg")).unwrap();
    check_xml(&svg);
    assert_eq!(polyline_points(&svg).len(), 2, "one curve per run");
    assert!(svg.contains("web-connections4"));

    // A bad option is refused before any run.
    std::fs::write(
        &file,
        format!("[[run]]\nurl = \"http://127.0.0.1:{port}/\"\nconections = 3\n"),
    )
    .unwrap();
    let out = loadtest(&["scenario", "bench.toml", "--out", "bad"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.join("bad").exists());
}
