//! `halb demo`: three small built-in backends on loopback and a configuration that puts
//! halb in front of them, so a newcomer sees halb work without writing a file.
//!
//! Ports: `port` is the HTTP frontend (mode http: a path ACL routes `/static/…` to a
//! `uri`-hashed backend, everything else goes round robin with cookie persistence),
//! `port + 1 ..= port + 3` are the backends `web1..web3`, `port + 4` is a plain TCP
//! frontend (mode tcp) over the same backends, `port + 5` is the stats page (user
//! `admin`, password `demo`; `/metrics` for Prometheus) and `port + 6` the HTTPS listener
//! of the HTTP frontend (TLS terminated by halb with a self-signed certificate made at
//! start, written with its key to `/tmp/halb-demo-PORT/`). The servers are health-checked
//! (HTTP for the web backends, TCP for the tcp one), and the admin socket is
//! `/tmp/halb-demo-PORT.sock` (`halb ctl -s /tmp/halb-demo-PORT.sock show servers`).
//!
//! Each backend speaks HTTP/1.1 with keep-alive (answering `hello from webN` plus the
//! path it was asked for), or, when the client does not speak HTTP, answers one line with
//! its name and closes (so `nc` works).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::config::{self, Config};

/// Names of the demo backends, in port order after the proxy's port.
pub const BACKENDS: [&str; 3] = ["web1", "web2", "web3"];

/// Ports the demo uses from `port` on: HTTP frontend, three backends, TCP frontend,
/// stats page, HTTPS.
pub const PORTS_USED: u16 = 7;

/// The demo's admin socket for `port`.
pub fn admin_socket(port: u16) -> String {
    format!("/tmp/halb-demo-{port}.sock")
}

/// The demo's directory for `port`: its certificate (`demo.crt`) and the PEM halb serves
/// (`demo.pem`: certificate and key).
pub fn tls_dir(port: u16) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/tmp/halb-demo-{port}"))
}

/// Make a self-signed certificate for `localhost` and `127.0.0.1` (ECDSA P-256; rcgen's
/// default validity, which does not expire) in `dir` (created, mode 0700): `demo.crt` (the certificate, for a
/// client's `--cacert`) and `demo.pem` (certificate and key, mode 0600, for halb).
/// Returns the path of `demo.pem`.
pub fn make_certificate(dir: &Path) -> io::Result<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let failed = |e: rcgen::Error| io::Error::other(format!("self-signed certificate: {e}"));
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(failed)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "halb demo");
    let cert = params.self_signed(&key).map_err(failed)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let write = |name: &str, text: &str, mode: u32| -> io::Result<std::path::PathBuf> {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)?
            .write_all(text.as_bytes())?;
        Ok(path)
    };
    write("demo.crt", &cert.pem(), 0o644)?;
    write(
        "demo.pem",
        &format!("{}{}", cert.pem(), key.serialize_pem()),
        0o600,
    )
}

/// Start the backends (background threads) and return the demo configuration, with the
/// HTTP frontend on `127.0.0.1:port` (and HTTPS on `port + 6`), the backends on the
/// three following ports, the TCP frontend on `port + 4` and the stats page on
/// `port + 5`.
pub fn start(port: u16) -> io::Result<Config> {
    let last = u16::MAX - (PORTS_USED - 1);
    if port == 0 || port > last {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "--port {port}: the demo needs that port and the {} after it; use 1..={last}",
                PORTS_USED - 1
            ),
        ));
    }
    let mut lines = Vec::new();
    for (i, name) in BACKENDS.iter().enumerate() {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port + 1 + i as u16));
        let listener = TcpListener::bind(addr).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("backend {name} cannot listen on {addr}: {e}"),
            )
        })?;
        spawn_backend(listener, name);
        lines.push(format!("  {name} on {addr}"));
    }
    let dir = tls_dir(port);
    let pem = make_certificate(&dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let text = demo_config(port, &pem);
    let cfg = config::parse(&text, Path::new("<demo>"))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let tcp = port + 4;
    let stats = port + 5;
    let https = port + 6;
    let socket = admin_socket(port);
    println!(
        "halb demo: three backends answering with their name\n{}",
        lines.join("\n")
    );
    println!(
        "halb on 127.0.0.1:{port} (mode http, HTTPS on {https}) and 127.0.0.1:{tcp} (mode tcp), stats on http://127.0.0.1:{stats}/stats (admin / demo), configuration:\n"
    );
    for line in text.lines() {
        println!("    {line}");
    }
    println!("\nTry, in another terminal:");
    println!("    curl http://127.0.0.1:{port}/          # each call answered by the next backend");
    println!("    for i in 1 2 3 4 5 6; do curl -s http://127.0.0.1:{port}/; done");
    println!("    curl -si -c /tmp/jar -b /tmp/jar http://127.0.0.1:{port}/   # a cookie pins you to one backend");
    println!("    curl http://127.0.0.1:{port}/static/logo.png   # same path, same backend (balance uri)");
    println!(
        "    curl --cacert {}/demo.crt https://localhost:{https}/   # TLS terminated by halb (HSTS added)",
        dir.display()
    );
    println!(
        "    curl http://127.0.0.1:{port}/admin             # denied (403) by an http_request rule"
    );
    println!("    echo hi | nc -q1 127.0.0.1 {tcp}              # plain TCP through the mode tcp frontend");
    println!("    open http://admin:demo@127.0.0.1:{stats}/stats  # the stats page (also ;csv, ;json, /metrics)");
    println!("    halb ctl -s {socket} show servers         # the admin API");
    println!("    halb ctl -s {socket} set server web/web2 state drain");
    println!("Ctrl-C stops halb (connections in flight are drained first).\n");
    Ok(cfg)
}

/// The demo's configuration text (also a compact example of the format); `pem` is the
/// certificate and key of its HTTPS listener (see [`make_certificate`]).
pub fn demo_config(port: u16, pem: &Path) -> String {
    let servers = |backend: &str, cookies: bool| {
        let mut out = String::new();
        for (i, name) in BACKENDS.iter().enumerate() {
            out.push_str(&format!(
                "\n[[backend.{backend}.server]]\nname = \"{name}\"\naddress = \"127.0.0.1:{}\"\n",
                port + 1 + i as u16
            ));
            if cookies {
                out.push_str(&format!("cookie = \"{name}\"\n"));
            }
            out.push_str("check = true\n");
        }
        out
    };
    let web = servers("web", true);
    let assets = servers("assets", false);
    let tcp = servers("tcp", false);
    let tcp_port = port + 4;
    let stats_port = port + 5;
    let https_port = port + 6;
    // A path of ours (`tls_dir`, or a test's temporary directory): nothing to escape.
    let pem = format!("{:?}", pem.display().to_string());
    let socket = admin_socket(port);
    format!(
        r#"[global]
shards = "auto"
maxconn = 1000
hard_stop_after = "5s"
admin_socket = "{socket}"

[defaults]
mode = "http"
retries = 2

[defaults.timeouts]
connect = "1s"
client = "30s"
server = "30s"

[frontend.demo]
bind = ["127.0.0.1:{port}"]
tls = {{ bind = ["127.0.0.1:{https_port}"], certs = [{pem}] }}
default_backend = "web"
forwardfor = true
x_forwarded_proto = true

[frontend.demo.acl]
is_static = "path_beg /static/"
is_admin = "path_beg /admin"

[[frontend.demo.http_request]]
deny = 403
if = "is_admin"

[[frontend.demo.http_response]]
set_header = {{ name = "X-Proxy", value = "halb" }}

[[frontend.demo.http_response]]
set_header = {{ name = "Strict-Transport-Security", value = "max-age=600" }}
if = "ssl_fc"

[[frontend.demo.use_backend]]
backend = "assets"
if = "is_static"

[backend.web]
balance = "roundrobin"
cookie = {{ name = "HALBSRV", mode = "insert", indirect = true, nocache = true }}
check = {{ type = "http", path = "/health", expect_status = [200], inter = "2s", rise = 2, fall = 3 }}
{web}
[backend.assets]
balance = "uri"
check = {{ type = "http", path = "/health", inter = "2s" }}
{assets}
[frontend.tcp]
mode = "tcp"
bind = ["127.0.0.1:{tcp_port}"]
default_backend = "tcp"

[backend.tcp]
mode = "tcp"
balance = "roundrobin"
check = {{ type = "tcp", inter = "2s" }}
{tcp}
[stats]
bind = "127.0.0.1:{stats_port}"
uri = "/stats"
auth = {{ user = "admin", password = "demo" }}
admin = true
refresh = "5s""#
    )
}

fn spawn_backend(listener: TcpListener, name: &'static str) {
    std::thread::Builder::new()
        .name(format!("demo-{name}"))
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = serve(stream, name);
                });
            }
        })
        .expect("spawn demo backend");
}

/// Answer requests on one connection: HTTP/1.x with keep-alive, or one plain line.
fn serve(stream: TcpStream, name: &str) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path, version) = (parts.next(), parts.next(), parts.next());
        let Some(version) = version.filter(|v| v.starts_with("HTTP/1.")) else {
            writer.write_all(format!("hello from {name}\n").as_bytes())?;
            return writer.shutdown(std::net::Shutdown::Write);
        };
        let (method, path) = (method.unwrap_or("GET"), path.unwrap_or("/"));
        // Fields: only Content-Length (to skip a body) and Connection matter here.
        let mut length = 0usize;
        let mut close = version == "HTTP/1.0";
        loop {
            let mut field = String::new();
            if reader.read_line(&mut field)? == 0 {
                return Ok(());
            }
            let field = field.trim_end();
            if field.is_empty() {
                break;
            }
            let (key, value) = field.split_once(':').unwrap_or((field, ""));
            let value = value.trim().to_ascii_lowercase();
            match key.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "connection" if value.contains("close") => close = true,
                "connection" if value.contains("keep-alive") => close = false,
                _ => {}
            }
        }
        io::copy(&mut (&mut reader).take(length as u64), &mut io::sink())?;
        let body = format!("hello from {name} ({method} {path})\n");
        let connection = if close { "close" } else { "keep-alive" };
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Backend: {name}\r\nConnection: {connection}\r\n\r\n",
            body.len()
        )?;
        if method != "HEAD" {
            writer.write_all(body.as_bytes())?;
        }
        if close {
            return writer.shutdown(std::net::Shutdown::Write);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_that_do_not_leave_room_for_the_backends_are_refused() {
        for port in [0, 65530, 65535] {
            let err = start(port).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{port}");
            assert!(err.to_string().contains("1..=65529"), "{err}");
        }
    }

    #[test]
    fn the_demo_configuration_is_valid_and_balances_three_backends() {
        let dir = std::env::temp_dir().join(format!("halb-demo-unit-{}", std::process::id()));
        let pem = make_certificate(&dir).unwrap();
        let cfg = config::parse(&demo_config(8080, &pem), Path::new("<demo>")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let tls = cfg.frontends[0].tls.as_ref().expect("an HTTPS listener");
        assert_eq!(tls.bind, vec!["127.0.0.1:8086".parse().unwrap()]);
        assert_eq!(tls.certs[0].names, vec!["localhost"]);
        assert_eq!(
            cfg.frontends[0].bind,
            vec!["127.0.0.1:8080".parse().unwrap()]
        );
        let web = cfg.backend_index("web").unwrap();
        let servers: Vec<_> = cfg.backends[web]
            .servers
            .iter()
            .map(|s| s.address.port())
            .collect();
        assert_eq!(servers, vec![8081, 8082, 8083]);
    }
}
