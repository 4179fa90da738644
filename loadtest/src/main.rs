//! halb-loadtest: halb's bundled load generator.
//!
//! Thread-per-core like halb: one pinned glommio executor per worker core, the
//! connections split between them. Closed loop by default; open loop at a constant total
//! rate with `--rate`, latency measured from each request's intended send time. HTTP/1.1
//! (also over TLS: `https://`), plain TCP request/response (`tcp://`) and TCP bulk streaming (`tcp-bulk://`); scenario
//! files run a matrix of runs (`halb-loadtest scenario FILE.toml`).

mod histogram;
mod http;
mod plot;
mod scenario;
mod tcp;
mod worker;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use glommio::{LocalExecutorBuilder, Placement};

use tcp::TcpPlan;
use worker::{ErrorKind, Plan, Stats, Timeline, TlsPlan};

/// Locked memory for each executor's io_uring rings (as halb's shards).
const IO_MEMORY: usize = 256 * 1024;

/// Default write size for `tcp-bulk://` (request/response defaults to 64 bytes).
const BULK_PAYLOAD: usize = 64 * 1024;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "halb-loadtest",
    version,
    about = "Load generator bundled with halb: HTTP/1.1, TCP request/response and TCP bulk (closed loop, or open loop with --rate)",
    after_help = "Scenario files: halb-loadtest scenario FILE.toml [--out DIR] (see README)\nPlots of --hist-out files: halb-loadtest plot OUT.svg [--title T] LABEL=FILE..."
)]
struct Cli {
    /// Target: http://host[:port][/path], https://host[:port][/path], tcp://host:port or tcp-bulk://host:port
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
    /// Write the latency percentile distribution (HdrHistogram text format, ms) to FILE
    #[arg(long, value_name = "FILE")]
    hist_out: Option<PathBuf>,
    /// Write a latency-by-percentile plot (SVG) to FILE
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// TCP: bytes written per exchange (tcp://, default 64) or per write (tcp-bulk://, default 65536)
    #[arg(long, value_name = "N")]
    payload: Option<usize>,
    /// tcp://: bytes expected back per exchange (default: the payload size, an echo)
    #[arg(long, value_name = "N")]
    response: Option<usize>,
    /// https://: verify the server with the CA certificates of this PEM file
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// https://: do not verify the server's certificate (insecure)
    #[arg(long)]
    insecure: bool,
    /// https://: the server name sent (SNI) and verified (default: the URL's host)
    #[arg(long, value_name = "NAME")]
    sni: Option<String>,
    /// https://: resume TLS sessions on new connections (a session cache per worker core)
    #[arg(long)]
    tls_resume: bool,
    /// https://: only this TLS version (default: 1.2 and 1.3)
    #[arg(long, value_name = "VERSION", value_parser = ["1.2", "1.3"])]
    tls_version: Option<String>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http,
    Https,
    Tcp,
    TcpBulk,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Tcp => "tcp",
            Protocol::TcpBulk => "tcp-bulk",
        }
    }

    /// HTTP/1.1, over TLS or not.
    fn is_http(self) -> bool {
        matches!(self, Protocol::Http | Protocol::Https)
    }
}

struct Target {
    protocol: Protocol,
    addr: SocketAddr,
    /// The host as written in the URL (no brackets around an IPv6 address).
    host: String,
    host_header: String,
    path: String,
}

fn parse_url(url: &str) -> Result<Target, String> {
    let (protocol, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Protocol::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Protocol::Https, rest)
    } else if let Some(rest) = url.strip_prefix("tcp://") {
        (Protocol::Tcp, rest)
    } else if let Some(rest) = url.strip_prefix("tcp-bulk://") {
        (Protocol::TcpBulk, rest)
    } else {
        return Err(format!(
            "{url:?}: only http://, https://, tcp:// and tcp-bulk:// URLs are supported"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    if !protocol.is_http() && path != "/" {
        return Err(format!("{url:?}: a TCP target has no path"));
    }
    let default_port = match protocol {
        Protocol::Http => Some(80),
        Protocol::Https => Some(443),
        _ => None,
    };
    let port_of = |p: Option<&str>| -> Result<u16, String> {
        match p {
            None => default_port.ok_or_else(|| format!("{url:?}: a TCP target needs a port")),
            Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port")),
        }
    };
    // [v6]:port, host:port, or host (port 80).
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or_else(|| format!("{url:?}: unclosed ["))?;
        let port = match &v6[end + 1..] {
            "" => port_of(None)?,
            p => port_of(Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("{url:?}: bad port"))?,
            ))?,
        };
        (&v6[..end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, port_of(Some(p))?),
            None => (authority, port_of(None)?),
        }
    };
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{url:?}: cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url:?}: {host} has no address"))?;
    Ok(Target {
        protocol,
        addr,
        host: host.to_string(),
        host_header: authority.to_string(),
        path: path.to_string(),
    })
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "scenario") {
        return scenario::main(&args[2..]);
    }
    if args.get(1).is_some_and(|a| a == "plot") {
        return plot::main(&args[2..]);
    }
    let cli = Cli::parse_from(args);
    let result = measure(&cli).and_then(|outcome| {
        write_files(&cli, &outcome)?;
        if cli.json {
            println!("{}", outcome.json);
        } else {
            print!("{}", outcome.text);
        }
        Ok(outcome.exit_code())
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("halb-loadtest: {e}");
            ExitCode::from(2)
        }
    }
}

/// The work each executor runs.
#[derive(Clone)]
enum Job {
    Http(Arc<Plan>),
    Tcp(Arc<TcpPlan>),
}

impl Job {
    fn counters(&self) -> (u64, u64) {
        let (ok, err) = match self {
            Job::Http(p) => (&p.timeline.done_ok, &p.timeline.done_err),
            Job::Tcp(p) => (&p.timeline.done_ok, &p.timeline.done_err),
        };
        (ok.load(Ordering::Relaxed), err.load(Ordering::Relaxed))
    }
}

/// One finished run: the merged stats and its reports.
pub struct Outcome {
    pub stats: Stats,
    pub json: serde_json::Value,
    pub text: String,
    /// The plot title: URL, mode and rate.
    pub title: String,
}

impl Outcome {
    fn exit_code(&self) -> ExitCode {
        if self.stats.ok == 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }

    /// The percentile curve, latency in ms.
    pub fn curve(&self) -> Vec<(f64, f64)> {
        histogram::steps(&self.stats.hist, histogram::TICKS_PER_HALF_DISTANCE)
            .into_iter()
            .map(|s| (s.quantile, s.value as f64 / 1000.0))
            .collect()
    }
}

fn write_file(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `--hist-out` and `--plot`.
fn write_files(cli: &Cli, outcome: &Outcome) -> Result<(), String> {
    if let Some(path) = &cli.hist_out {
        write_file(
            path,
            &histogram::percentile_distribution(&outcome.stats.hist, 1000.0),
        )?;
    }
    if let Some(path) = &cli.plot {
        let series = plot::Series {
            label: outcome.title.clone(),
            points: outcome.curve(),
        };
        write_file(path, &plot::svg(&outcome.title, &[series]))?;
    }
    Ok(())
}

/// The TLS settings of an `https://` target (`None` for other schemes, which refuse the
/// TLS options).
fn tls_plan(cli: &Cli, target: &Target) -> Result<Option<TlsPlan>, String> {
    if target.protocol != Protocol::Https {
        let given: Vec<&str> = [
            (cli.cacert.is_some(), "--cacert"),
            (cli.insecure, "--insecure"),
            (cli.sni.is_some(), "--sni"),
            (cli.tls_resume, "--tls-resume"),
            (cli.tls_version.is_some(), "--tls-version"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if !given.is_empty() {
            return Err(format!("{} only apply to https:// URLs", given.join(", ")));
        }
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    static BOTH: [&rustls::SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    static TLS12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    static TLS13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    let versions: &[&rustls::SupportedProtocolVersion] = match cli.tls_version.as_deref() {
        Some("1.2") => &TLS12,
        Some("1.3") => &TLS13,
        _ => &BOTH,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS: {e}"))?;
    let mut config = match (&cli.cacert, cli.insecure) {
        (Some(_), true) => return Err("--cacert and --insecure exclude each other".into()),
        (Some(path), false) => {
            let bundle = halb::tls::certs::load_ca_bundle(path).map_err(|e| e.to_string())?;
            builder
                .with_root_certificates(bundle.roots)
                .with_no_client_auth()
        }
        (None, true) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(
                halb::tls::server::InsecureAcceptAnyCertificate::new(&provider),
            ))
            .with_no_client_auth(),
        (None, false) => {
            return Err(
                "https:// needs --cacert FILE (the CA bundle to verify the server with) or --insecure (no verification): no root store is built in"
                    .into(),
            )
        }
    };
    config.alpn_protocols = vec![halb::tls::server::HTTP_ALPN.as_bytes().to_vec()];
    let name = cli.sni.clone().unwrap_or_else(|| target.host.clone());
    let server_name = rustls::pki_types::ServerName::try_from(name.clone())
        .map_err(|_| format!("{name:?} is not a valid TLS server name (--sni)"))?;
    Ok(Some(TlsPlan {
        config: Arc::new(config),
        server_name,
        resume: cli.tls_resume,
    }))
}

/// Runs the load described by `cli` to the end.
fn measure(cli: &Cli) -> Result<Outcome, String> {
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
    let tls = tls_plan(cli, &target)?;
    match target.protocol {
        Protocol::Http | Protocol::Https => {
            if cli.payload.is_some() || cli.response.is_some() {
                return Err("--payload and --response are for tcp:// targets".into());
            }
        }
        Protocol::Tcp => {
            if cli.expect_status.is_some() || cli.expect_body_size.is_some() {
                return Err(
                    "--expect-status and --expect-body-size are for http:// targets".into(),
                );
            }
        }
        Protocol::TcpBulk => {
            if cli.expect_status.is_some() || cli.expect_body_size.is_some() {
                return Err(
                    "--expect-status and --expect-body-size are for http:// targets".into(),
                );
            }
            if cli.rate.is_some() || cli.requests.is_some() || cli.response.is_some() {
                return Err(
                    "tcp-bulk:// runs for --duration: no --rate, --requests or --response".into(),
                );
            }
            if cli.close {
                return Err("tcp-bulk:// streams on each connection: no --close".into());
            }
            if cli.payload == Some(0) {
                return Err("--payload must be at least 1 for tcp-bulk://".into());
            }
        }
    }
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
    let deadline = duration.map(|d| measure_from + d);
    let payload_len = cli.payload.unwrap_or(match target.protocol {
        Protocol::TcpBulk => BULK_PAYLOAD,
        _ => 64,
    });
    let timeline = || Timeline {
        start,
        measure_from,
        deadline,
        requests: cli.requests,
        rate: cli.rate,
        total_connections: cli.connections,
        tickets: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        done_ok: AtomicU64::new(0),
        done_err: AtomicU64::new(0),
    };
    let job = match target.protocol {
        Protocol::Http | Protocol::Https => Job::Http(Arc::new(Plan {
            addr: target.addr,
            tls,
            request: http::build_request(&target.host_header, &target.path, cli.close),
            close: cli.close,
            timeout: cli.timeout,
            expect_status: cli.expect_status,
            expect_body_size: cli.expect_body_size,
            timeline: timeline(),
        })),
        Protocol::Tcp | Protocol::TcpBulk => Job::Tcp(Arc::new(TcpPlan {
            addr: target.addr,
            bulk: target.protocol == Protocol::TcpBulk,
            payload: tcp::payload(payload_len),
            response: cli.response.unwrap_or(payload_len),
            close: cli.close,
            timeout: cli.timeout,
            timeline: timeline(),
        })),
    };

    let mut handles = Vec::with_capacity(workers);
    for (w, core) in allowed.iter().take(workers).enumerate() {
        let connections: Vec<usize> = (w..cli.connections).step_by(workers).collect();
        let job = job.clone();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(core.id))
            .name(&format!("loadtest-{w}"))
            .io_memory(IO_MEMORY)
            .spawn(move || async move {
                match job {
                    Job::Http(plan) => worker::run_worker(plan, connections).await,
                    Job::Tcp(plan) => tcp::run_worker(plan, connections).await,
                }
            })
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
        let job = job.clone();
        let done = progress_done.clone();
        std::thread::spawn(move || progress_line(&job, &done))
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

    // The measured window ends with the last recorded event; for bulk streaming, which
    // runs for the whole --duration by definition, at the deadline (a peer that stalled
    // near the end must not shrink the window and inflate the rate).
    let end = match (target.protocol, deadline) {
        (Protocol::TcpBulk, Some(d)) => d.min(finished),
        _ => stats.last.unwrap_or(finished),
    }
    .max(measure_from);
    let elapsed = end.saturating_duration_since(measure_from).as_secs_f64();
    let report = Report {
        url: &cli.url,
        tls: target.protocol == Protocol::Https,
        cli,
        protocol: target.protocol,
        payload: payload_len,
        workers,
        stats: &stats,
        duration_s: elapsed,
    };
    let (json, text, title) = (report.json(), report.text(), report.title());
    Ok(Outcome {
        stats,
        json,
        text,
        title,
    })
}

fn progress_line(job: &Job, done: &AtomicBool) {
    let began = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(250));
        let (ok, err) = job.counters();
        eprint!(
            "\r[{:6.1}s] {ok} ok, {err} errors   ",
            began.elapsed().as_secs_f64(),
        );
    }
    eprint!("\r{:60}\r", "");
}

struct Report<'a> {
    url: &'a str,
    /// An https run: report its handshakes.
    tls: bool,
    cli: &'a Cli,
    protocol: Protocol,
    payload: usize,
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

    fn bulk(&self) -> bool {
        self.protocol == Protocol::TcpBulk
    }

    fn mode(&self) -> &'static str {
        match (self.bulk(), self.cli.rate) {
            (true, _) => "bulk",
            (false, Some(_)) => "open",
            (false, None) => "closed",
        }
    }

    fn title(&self) -> String {
        match self.cli.rate {
            Some(r) => format!("{}: {} loop at {r} req/s", self.url, self.mode()),
            None => format!(
                "{}: {} loop, {} connection(s)",
                self.url,
                self.mode(),
                self.cli.connections
            ),
        }
    }

    fn json(&self) -> serde_json::Value {
        let s = self.stats;
        let errors: serde_json::Map<String, serde_json::Value> = ErrorKind::ALL
            .iter()
            .map(|k| (k.name().to_string(), s.errors[*k as usize].into()))
            .collect();
        let latency = if self.bulk() {
            serde_json::Value::Null
        } else {
            serde_json::json!({
                "min": if s.hist.is_empty() { 0 } else { s.hist.min() },
                "mean": if s.hist.is_empty() { 0.0 } else { s.hist.mean() },
                "p50": self.quantile(0.50),
                "p90": self.quantile(0.90),
                "p99": self.quantile(0.99),
                "p999": self.quantile(0.999),
                "p9999": self.quantile(0.9999),
                "max": if s.hist.is_empty() { 0 } else { s.hist.max() },
            })
        };
        let mut v = serde_json::json!({
            "url": self.url,
            "protocol": self.protocol.name(),
            "mode": self.mode(),
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
            "requests_per_sec": if self.bulk() { None } else { Some(self.per_sec(s.ok)) },
            "bytes": s.bytes,
            "bytes_per_sec": self.per_sec(s.bytes),
            "gbit_per_sec": self.per_sec(s.bytes) * 8.0 / 1e9,
            "latency_us": latency,
        });
        v["tls"] = if self.tls {
            let t = &s.tls;
            serde_json::json!({
                "handshakes": t.handshakes,
                "resumed": t.resumed,
                "version": t.version.map(|v| format!("{v:?}")),
                "alpn": t.alpn,
            })
        } else {
            serde_json::Value::Null
        };
        if !self.protocol.is_http() {
            v["payload"] = self.payload.into();
        }
        if self.protocol == Protocol::Tcp {
            v["response"] = self.cli.response.unwrap_or(self.payload).into();
        }
        v
    }

    fn text(&self) -> String {
        let s = self.stats;
        let mode = match (self.bulk(), self.cli.rate) {
            (true, _) => format!("bulk, {} B writes", self.payload),
            (false, Some(r)) => format!("open loop at {r} req/s"),
            (false, None) => "closed loop".to_string(),
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
        let what = if self.bulk() { "writes  " } else { "requests" };
        out += &format!("  {what}    {} ok, {} errors\n", s.ok, s.error_total());
        if s.error_total() > 0 {
            let kinds: Vec<String> = ErrorKind::ALL
                .iter()
                .filter(|k| s.errors[**k as usize] > 0)
                .map(|k| format!("{} {}", k.name(), s.errors[*k as usize]))
                .collect();
            out += &format!("  errors      {}\n", kinds.join(", "));
        }
        if self.bulk() {
            out += &format!(
                "  throughput  {:.2} MiB/s, {:.3} Gbit/s\n",
                self.per_sec(s.bytes) / (1024.0 * 1024.0),
                self.per_sec(s.bytes) * 8.0 / 1e9
            );
            return out;
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
        if self.tls {
            let t = &s.tls;
            let version = t.version.map_or("-".to_string(), |v| format!("{v:?}"));
            let alpn = t.alpn.unwrap_or("-");
            out += &format!(
                "  tls         {} handshakes ({} resumed), {version}, alpn {alpn}\n",
                t.handshakes, t.resumed
            );
        }
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
        let t = parse_url("https://127.0.0.1/p").unwrap();
        assert_eq!((t.protocol, t.addr.port()), (Protocol::Https, 443));
        let t = parse_url("https://[::1]:8443").unwrap();
        assert_eq!((t.host.as_str(), t.addr.port()), ("::1", 8443));
        assert!(parse_url("ftp://x/").is_err());
        let t = parse_url("tcp://127.0.0.1:9").unwrap();
        assert_eq!((t.protocol, t.addr.port()), (Protocol::Tcp, 9));
        let t = parse_url("tcp-bulk://[::1]:9").unwrap();
        assert_eq!((t.protocol, t.addr.port()), (Protocol::TcpBulk, 9));
        assert!(parse_url("tcp://127.0.0.1").is_err());
        assert!(parse_url("tcp://127.0.0.1:9/x").is_err());
        assert!(parse_url("http://127.0.0.1:x/").is_err());
    }
}
