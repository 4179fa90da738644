//! The benchmark scripts are code too: every shell script under `bench-results/` must
//! parse (`bash -n`), and the suite's record/summary steps must turn runs into the right
//! table and ratios. The summary is fed runs recorded by `record.py` itself, from
//! halb-loadtest JSON and wrk text written here, with numbers chosen so every ratio is
//! known in advance.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "results") {
                continue;
            }
            scripts(&path, out);
        } else if path.extension().is_some_and(|e| e == "sh") {
            out.push(path);
        }
    }
}

#[test]
fn every_bench_script_parses() {
    let mut found = Vec::new();
    scripts(&repo().join("bench-results"), &mut found);
    found.push(repo().join("tests/run-all.sh"));
    assert!(
        found
            .iter()
            .any(|p| p.ends_with("bench-results/suite/run.sh")),
        "the suite is found: {found:?}"
    );
    for script in &found {
        let out = Command::new("bash").arg("-n").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// halb-loadtest's `--json` for a run of 10 s.
fn loadtest_json(ok: u64, p99_us: u64, bytes: u64) -> Value {
    json!({
        "requests": ok, "ok": ok, "errors_total": 0,
        "errors": {"connect": 0, "timeout": 0, "reset": 0, "bad_status": 0, "bad_framing": 0, "bad_body_size": 0},
        "requests_per_sec": ok as f64 / 10.0, "bytes": bytes, "bytes_per_sec": bytes as f64 / 10.0,
        "duration_s": 10.0,
        "latency_us": {"min": 10, "mean": 100.0, "p50": p99_us / 2, "p90": p99_us / 2, "p99": p99_us,
                       "p999": p99_us * 2, "p9999": p99_us * 2, "max": p99_us * 3}
    })
}

struct Run<'a> {
    workload: &'a str,
    variant: &'a str,
    generator: &'a str,
    output: String,
    proxy_ticks: u64,
    rss_kib: Option<u64>,
}

fn record(outdir: &Path, round: u32, run: &Run) {
    let name = format!("{}-{}-r{round}", run.workload, run.variant);
    let raw = outdir.join("raw").join(format!("{name}.out"));
    std::fs::write(&raw, &run.output).unwrap();
    let args = [
        format!("name={name}"),
        "attempt=1".into(),
        "kept=1".into(),
        "noise=".into(),
        format!("raw={}", raw.display()),
        format!("generator={}", run.generator),
        format!("workload={}", run.workload),
        format!("variant={}", run.variant),
        format!("round={round}"),
        "hz=100".into(),
        "wall_s=10.0".into(),
        format!("proxy_ticks={}", run.proxy_ticks),
        "proxy_sched_ns=0".into(),
        "backend_ticks=0".into(),
        "client_cpu_s=1.0".into(),
        "other_pct=1.5".into(),
        "quiet_wait_s=2".into(),
        "busy_before_pct=0.5".into(),
        format!("hwm_reset={}", u8::from(run.rss_kib.is_some())),
        format!(
            "rss_peak_kib={}",
            run.rss_kib.map(|k| k.to_string()).unwrap_or_default()
        ),
        "command=halb-loadtest ...".into(),
    ];
    let out = Command::new("python3")
        .arg(repo().join("bench-results/suite/lib/record.py"))
        .arg(outdir)
        .args(&args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "record.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn suite_summary_tables_and_ratios() {
    let outdir = std::env::temp_dir().join(format!("halb-suite-summary-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&outdir);
    for d in ["raw", "runs", "hist", "plots"] {
        std::fs::create_dir_all(outdir.join(d)).unwrap();
    }
    std::fs::write(
        outdir.join("env.txt"),
        "date_utc=2026-11-22T00:00:00+00:00\nkernel=test\n",
    )
    .unwrap();
    const GIB: u64 = 1 << 30;
    // Two rounds; the second round's numbers are the first's plus a little, so the
    // medians sit between them (median of two = mean).
    for round in 1..=2u32 {
        let bump = u64::from(round - 1);
        let runs = [
            // L7 keep-alive: halb 1.2x the req/s, 0.75x p99, 0.75x CPU/request, 0.5x RSS.
            Run {
                workload: "l7-ka-small",
                variant: "direct",
                generator: "halb-loadtest",
                output: loadtest_json(700_000, 1_000, 0).to_string(),
                proxy_ticks: 0,
                rss_kib: None,
            },
            Run {
                workload: "l7-ka-small",
                variant: "haproxy",
                generator: "halb-loadtest",
                output: loadtest_json(500_000, 2_000, 0).to_string(),
                proxy_ticks: 1_000, // 10 s of CPU / 500,000 = 20 µs per request
                rss_kib: Some(16_384 + 1024 * bump),
            },
            Run {
                workload: "l7-ka-small",
                variant: "halb",
                generator: "halb-loadtest",
                output: loadtest_json(600_000, 1_500, 0).to_string(),
                proxy_ticks: 900, // 9 s / 600,000 = 15 µs per request
                rss_kib: Some(8_192 + 512 * bump),
            },
            // L4 bulk: 20 GiB vs 16 GiB in 10 s; 4 s vs 4 s of CPU: 0.8x s/GiB.
            Run {
                workload: "l4-bulk",
                variant: "haproxy",
                generator: "halb-loadtest",
                output: loadtest_json(100, 200_000, 16 * GIB).to_string(),
                proxy_ticks: 400,
                rss_kib: Some(16_384),
            },
            Run {
                workload: "l4-bulk",
                variant: "halb",
                generator: "halb-loadtest",
                output: loadtest_json(100, 200_000, 20 * GIB).to_string(),
                proxy_ticks: 400,
                rss_kib: Some(8_192),
            },
            // The generator check: wrk's own text output.
            Run {
                workload: "gen-ka",
                variant: "wrk",
                generator: "wrk",
                output: "Running 10s test @ http://127.0.0.1:1/ok\n  1000000 requests in 10.00s, 1.00MB read\nRequests/sec: 100000.00\nTransfer/sec: 1.00MB\n".into(),
                proxy_ticks: 0,
                rss_kib: None,
            },
            Run {
                workload: "gen-ka",
                variant: "halb-loadtest",
                generator: "halb-loadtest",
                output: loadtest_json(1_050_000, 1_000, 0).to_string(),
                proxy_ticks: 0,
                rss_kib: None,
            },
        ];
        for run in &runs {
            record(&outdir, round, run);
        }
    }
    // Percentile files for the plots of the first round (each variant's median run: the
    // first of two equal ones).
    for variant in ["haproxy", "halb"] {
        std::fs::write(
            outdir.join(format!("hist/l7-ka-small-{variant}-r1.hgrm")),
            "       Value     Percentile TotalCount 1/(1-Percentile)\n\n       0.100 0.000000000000          1           1.00\n",
        )
        .unwrap();
    }
    let out = Command::new("python3")
        .arg(repo().join("bench-results/suite/lib/summarize.py"))
        .arg(&outdir)
        .arg("/nonexistent/halb-loadtest") // plots fail, named, the rest goes on
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "summarize.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8_lossy(&out.stdout);
    // RSS: HAProxy median (16384 + 17408) / 2 KiB, halb (8192 + 8704) / 2: exactly 0.5.
    for line in [
        "| L7 keep-alive, small | **1.20×** | **0.75×** | **0.75×** | **0.50×** |",
        "| L4 bulk | **1.25×** | **1.00×** | **0.80×** | **0.50×** |",
        "| keep-alive | 100,000 | 105,000 | **1.05×** |",
        "| halb | 60,000 | 0.75 / 1.5 | 15.0 | 90.0 |",
        "(plot for l7-ka-small failed:",
    ] {
        assert!(md.contains(line), "{line:?} in\n{md}");
    }
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(outdir.join("summary.json")).unwrap())
            .unwrap();
    let r = &summary["workloads"]["l7-ka-small"]["halb_over_haproxy"];
    assert!(
        (r["throughput"].as_f64().unwrap() - 1.2).abs() < 1e-9,
        "{r}"
    );
    assert!((r["cpu_unit"].as_f64().unwrap() - 0.75).abs() < 1e-9, "{r}");
    assert!((summary["generator_check"]["ka"]["ratio"].as_f64().unwrap() - 1.05).abs() < 1e-9);
    assert!(outdir.join("plots/ratios.svg").exists());
    let _ = std::fs::remove_dir_all(&outdir);
}
