//! halb-loadtest: halb's bundled HTTP/1.1 load generator.
//!
//! Thread-per-core like halb: one pinned glommio executor per worker core, the
//! connections split between them. Closed loop by default; open loop at a constant total
//! rate with `--rate`, latency measured from each request's intended send time.

mod http;
mod worker;

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use glommio::{LocalExecutorBuilder, Placement};

use worker::{ErrorKind, Plan, Stats};

/// Locked memory for each executor's io_uring rings (as halb's shards).
const IO_MEMORY: usize = 256 * 1024;

#[derive(Parser, Debug)]
#[command(
    name = "halb-loadtest",
    version,
    about = "HTTP/1.1 load generator bundled with halb (closed loop, or open loop with --rate)"
)]
struct Cli {
    /// Target, http://host[:port][/path]
    url: String,
    /// Concurrent connections (split between the worker cores)
    #[arg(short = 'c', long, default_value_t = 10)]
    connections: usize,
    /// Run length, with a unit: 500ms, 10s, 2m (default 10s unless --requests is given)
    #[arg(short = 'd', long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many measured requests (successes and errors)
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// Warm-up before measuring; its requests are sent but not recorded
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    warmup: Duration,
    /// Worker cores: glommio executors pinned to the first N allowed cores
    #[arg(long, default_value_t = 1)]
    cores: usize,
    /// Open a new connection for every request (default: keep-alive)
    #[arg(long)]
    close: bool,
    /// Open loop: constant total request rate per second (latency from intended send time)
    #[arg(short = 'R', long)]
    rate: Option<f64>,
    /// Print one JSON object instead of the text summary
    #[arg(long)]
    json: bool,
    /// Only this status is a success (default: any 2xx or 3xx)
    #[arg(long)]
    expect_status: Option<u16>,
    /// A response whose body is not exactly N bytes is an error (bad_body_size)
    #[arg(long)]
    expect_body_size: Option<usize>,
    /// Per-request timeout (connect, and request to complete response)
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    timeout: Duration,
}

/// "250ms", "10s", "2m": a whole number with a unit.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit (ms, s, m)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 10s or 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{text:?}: unknown unit {unit:?} (use ms, s or m)")),
    }
}

struct Target {
    addr: SocketAddr,
    host_header: String,
    path: String,
}

fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    // [v6]:port, host:port, or host (port 80).
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or_else(|| format!("{url:?}: unclosed ["))?;
        let port = match &v6[end + 1..] {
            "" => 80,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("{url:?}: bad port"))?,
        };
        (&v6[..end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| format!("{url:?}: bad port"))?),
            None => (authority, 80),
        }
    };
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{url:?}: cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url:?}: {host} has no address"))?;
    Ok(Target {
        addr,
        host_header: authority.to_string(),
        path: path.to_string(),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("halb-loadtest: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    if cli.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if cli.cores == 0 {
        return Err("--cores must be at least 1".into());
    }
    if let Some(rate) = cli.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err("--rate must be a positive number of requests per second".into());
        }
    }
    if cli.timeout.is_zero() {
        return Err("--timeout must be positive".into());
    }
    let target = parse_url(&cli.url)?;
    let allowed = core_affinity::get_core_ids().unwrap_or_default();
    if allowed.len() < cli.cores {
        return Err(format!(
            "--cores {}: only {} core(s) allowed for this process",
            cli.cores,
            allowed.len()
        ));
    }
    let workers = cli.cores.min(cli.connections);
    let duration = match (cli.duration, cli.requests) {
        (None, None) => Some(Duration::from_secs(10)),
        (d, _) => d,
    };

    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + cli.warmup;
    let plan = Arc::new(Plan {
        addr: target.addr,
        request: http::build_request(&target.host_header, &target.path, cli.close),
        close: cli.close,
        start,
        measure_from,
        deadline: duration.map(|d| measure_from + d),
        requests: cli.requests,
        timeout: cli.timeout,
        expect_status: cli.expect_status,
        expect_body_size: cli.expect_body_size,
        rate: cli.rate,
        total_connections: cli.connections,
        tickets: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        done_ok: AtomicU64::new(0),
        done_err: AtomicU64::new(0),
    });

    let mut handles = Vec::with_capacity(workers);
    for (w, core) in allowed.iter().take(workers).enumerate() {
        let connections: Vec<usize> = (w..cli.connections).step_by(workers).collect();
        let plan = plan.clone();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(core.id))
            .name(&format!("loadtest-{w}"))
            .io_memory(IO_MEMORY)
            .spawn(move || worker::run_worker(plan, connections))
            .map_err(|e| {
                format!(
                    "cannot start worker on core {}: {e} (glommio needs RLIMIT_MEMLOCK >= 512 KiB per worker: ulimit -l)",
                    core.id
                )
            })?;
        handles.push(handle);
    }

    let progress_done = Arc::new(AtomicBool::new(false));
    let progress = std::io::stderr().is_terminal().then(|| {
        let plan = plan.clone();
        let done = progress_done.clone();
        std::thread::spawn(move || progress_line(&plan, &done))
    });

    let mut stats = Stats::new();
    let mut failed = None;
    for handle in handles {
        match handle.join() {
            Ok(s) => stats.merge(&s),
            Err(e) => failed = Some(format!("worker failed: {e}")),
        }
    }
    let finished = Instant::now();
    progress_done.store(true, Ordering::Relaxed);
    if let Some(t) = progress {
        let _ = t.join();
    }
    if let Some(e) = failed {
        return Err(e);
    }

    let end = stats.last.unwrap_or(finished).max(measure_from);
    let elapsed = end.saturating_duration_since(measure_from).as_secs_f64();
    let report = Report {
        url: &cli.url,
        cli,
        workers,
        stats: &stats,
        duration_s: elapsed,
    };
    if cli.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    Ok(if stats.ok == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn progress_line(plan: &Plan, done: &AtomicBool) {
    let began = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(250));
        eprint!(
            "\r[{:6.1}s] {} ok, {} errors   ",
            began.elapsed().as_secs_f64(),
            plan.done_ok.load(Ordering::Relaxed),
            plan.done_err.load(Ordering::Relaxed)
        );
    }
    eprint!("\r{:60}\r", "");
}

struct Report<'a> {
    url: &'a str,
    cli: &'a Cli,
    workers: usize,
    stats: &'a Stats,
    duration_s: f64,
}

impl Report<'_> {
    fn per_sec(&self, n: u64) -> f64 {
        if self.duration_s > 0.0 {
            n as f64 / self.duration_s
        } else {
            0.0
        }
    }

    fn quantile(&self, q: f64) -> u64 {
        if self.stats.hist.is_empty() {
            0
        } else {
            self.stats.hist.value_at_quantile(q)
        }
    }

    fn json(&self) -> serde_json::Value {
        let s = self.stats;
        let errors: serde_json::Map<String, serde_json::Value> = ErrorKind::ALL
            .iter()
            .map(|k| (k.name().to_string(), s.errors[*k as usize].into()))
            .collect();
        serde_json::json!({
            "url": self.url,
            "mode": if self.cli.rate.is_some() { "open" } else { "closed" },
            "rate": self.cli.rate,
            "connections": self.cli.connections,
            "cores": self.workers,
            "keep_alive": !self.cli.close,
            "duration_s": self.duration_s,
            "warmup_s": self.cli.warmup.as_secs_f64(),
            "requests": s.ok + s.error_total(),
            "ok": s.ok,
            "errors_total": s.error_total(),
            "errors": errors,
            "requests_per_sec": self.per_sec(s.ok),
            "bytes": s.bytes,
            "bytes_per_sec": self.per_sec(s.bytes),
            "latency_us": {
                "min": if s.hist.is_empty() { 0 } else { s.hist.min() },
                "mean": if s.hist.is_empty() { 0.0 } else { s.hist.mean() },
                "p50": self.quantile(0.50),
                "p90": self.quantile(0.90),
                "p99": self.quantile(0.99),
                "p999": self.quantile(0.999),
                "p9999": self.quantile(0.9999),
                "max": if s.hist.is_empty() { 0 } else { s.hist.max() },
            },
        })
    }

    fn text(&self) -> String {
        let s = self.stats;
        let mode = match self.cli.rate {
            Some(r) => format!("open loop at {r} req/s"),
            None => "closed loop".to_string(),
        };
        let mut out =
            format!(
            "halb-loadtest {}\n  {} connection(s) ({}) on {} core(s), {mode}, {:.2}s measured\n",
            self.url,
            self.cli.connections,
            if self.cli.close { "close" } else { "keep-alive" },
            self.workers,
            self.duration_s
        );
        out += &format!("  requests    {} ok, {} errors\n", s.ok, s.error_total());
        if s.error_total() > 0 {
            let kinds: Vec<String> = ErrorKind::ALL
                .iter()
                .filter(|k| s.errors[**k as usize] > 0)
                .map(|k| format!("{} {}", k.name(), s.errors[*k as usize]))
                .collect();
            out += &format!("  errors      {}\n", kinds.join(", "));
        }
        out += &format!(
            "  throughput  {:.1} req/s, {:.2} MiB/s\n",
            self.per_sec(s.ok),
            self.per_sec(s.bytes) / (1024.0 * 1024.0)
        );
        let max = if s.hist.is_empty() { 0 } else { s.hist.max() };
        out += &format!(
            "  latency µs  p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}\n",
            self.quantile(0.50),
            self.quantile(0.90),
            self.quantile(0.99),
            self.quantile(0.999),
            self.quantile(0.9999),
            max
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn urls() {
        let t = parse_url("http://127.0.0.1:8080/a/b?c=d").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            (t.host_header.as_str(), t.path.as_str()),
            ("127.0.0.1:8080", "/a/b?c=d")
        );
        let t = parse_url("http://[::1]:81").unwrap();
        assert_eq!((t.addr.port(), t.path.as_str()), (81, "/"));
        let t = parse_url("http://127.0.0.1").unwrap();
        assert_eq!(t.addr.port(), 80);
        assert!(parse_url("https://x/").is_err());
        assert!(parse_url("http://127.0.0.1:x/").is_err());
    }
}
