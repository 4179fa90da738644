//! `halb demo`: three small built-in backends on loopback and a configuration that puts
//! halb in front of them, so a newcomer sees halb work without writing a file.
//!
//! Each backend answers every connection with its own name — as an HTTP/1.0 response when
//! the client speaks HTTP (so `curl` works), as a plain line otherwise (so `nc` works) —
//! then closes.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::config::{self, Config};

/// Names of the demo backends, in port order after the proxy's port.
pub const BACKENDS: [&str; 3] = ["web1", "web2", "web3"];

/// Start the backends (background threads) and return the demo configuration, with the
/// proxy on `127.0.0.1:port` and the backends on the three following ports.
pub fn start(port: u16) -> io::Result<Config> {
    if port == 0 || port > u16::MAX - BACKENDS.len() as u16 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "--port {port}: the demo needs that port and the {} after it; use 1..={}",
                BACKENDS.len(),
                u16::MAX - BACKENDS.len() as u16
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
    let text = demo_config(port);
    let cfg = config::parse(&text, Path::new("<demo>"))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    println!(
        "halb demo: three backends answering with their name\n{}",
        lines.join("\n")
    );
    println!("halb on 127.0.0.1:{port} (mode tcp, balance roundrobin), configuration:\n");
    for line in text.lines() {
        println!("    {line}");
    }
    println!("\nTry, in another terminal:");
    println!("    curl http://127.0.0.1:{port}/          # each call answered by the next backend");
    println!("    for i in 1 2 3 4 5 6; do curl -s http://127.0.0.1:{port}/; done");
    println!("Ctrl-C stops halb (connections in flight are drained first).\n");
    Ok(cfg)
}

/// The demo's configuration text (also a compact example of the format).
pub fn demo_config(port: u16) -> String {
    let mut servers = String::new();
    for (i, name) in BACKENDS.iter().enumerate() {
        servers.push_str(&format!(
            "\n[[backend.demo.server]]\nname = \"{name}\"\naddress = \"127.0.0.1:{}\"\n",
            port + 1 + i as u16
        ));
    }
    format!(
        r#"[global]
shards = "auto"
maxconn = 1000
hard_stop_after = "5s"

[defaults]
mode = "tcp"
retries = 2

[defaults.timeouts]
connect = "1s"
client = "30s"
server = "30s"

[frontend.demo]
bind = ["127.0.0.1:{port}"]
default_backend = "demo"

[backend.demo]
balance = "roundrobin"
{servers}"#
    )
}

fn spawn_backend(listener: TcpListener, name: &'static str) {
    std::thread::Builder::new()
        .name(format!("demo-{name}"))
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = answer(stream, name);
                });
            }
        })
        .expect("spawn demo backend");
}

/// Read what the client sends first (an HTTP head, a line, or nothing within 300 ms),
/// then answer with the backend's name.
fn answer(mut stream: TcpStream, name: &str) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(300)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                head.extend_from_slice(&buf[..n]);
                if head.windows(4).any(|w| w == b"\r\n\r\n")
                    || (!looks_http(&head) && head.contains(&b'\n'))
                {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let body = format!("hello from {name}\n");
    if looks_http(&head) {
        write!(
            stream,
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Backend: {name}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
    } else {
        stream.write_all(body.as_bytes())?;
    }
    stream.shutdown(std::net::Shutdown::Write)
}

fn looks_http(head: &[u8]) -> bool {
    let methods: [&[u8]; 5] = [b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE "];
    methods.iter().any(|m| head.starts_with(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_that_do_not_leave_room_for_the_backends_are_refused() {
        for port in [0, 65533, 65535] {
            let err = start(port).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{port}");
            assert!(err.to_string().contains("1..=65532"), "{err}");
        }
    }

    #[test]
    fn the_demo_configuration_is_valid_and_balances_three_backends() {
        let cfg = config::parse(&demo_config(8080), Path::new("<demo>")).unwrap();
        assert_eq!(
            cfg.frontends[0].bind,
            vec!["127.0.0.1:8080".parse().unwrap()]
        );
        let servers: Vec<_> = cfg.backends[0]
            .servers
            .iter()
            .map(|s| s.address.port())
            .collect();
        assert_eq!(servers, vec![8081, 8082, 8083]);
    }
}
