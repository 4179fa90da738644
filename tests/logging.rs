//! `HALB_LOG`: a level, or per-target directives (`info,halb::access=off` keeps every
//! line but the access log).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{free_addr, Halb};

/// A frontend that answers `/load` itself (403) and has no live server.
fn config(bind: std::net::SocketAddr) -> String {
    format!(
        "[defaults]\nmode = \"http\"\n[frontend.web]\nbind = [\"{bind}\"]\ndefault_backend = \"app\"\n[frontend.web.acl]\nis_load = \"path_beg /load\"\n[[frontend.web.http_request]]\ndeny = 403\nif = \"is_load\"\n[backend.app]\n[[backend.app.server]]\nname = \"s\"\naddress = \"{}\"\n",
        common::dead_addr()
    )
}

/// One request on its own connection; the status line.
fn get(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /load HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines().next().unwrap_or_default().to_string()
}

#[test]
fn access_log_can_be_turned_off_alone() {
    let addr = free_addr();
    // Default: INFO, access lines included.
    let halb = Halb::start(&config(addr), addr);
    assert_eq!(get(addr), "HTTP/1.1 403 Forbidden");
    halb.wait_access_logs(1, Duration::from_secs(5));

    let addr = free_addr();
    let quiet = Halb::start_with_env(
        &config(addr),
        addr,
        &[("HALB_LOG", "info,halb::access=off")],
    );
    for _ in 0..3 {
        assert_eq!(get(addr), "HTTP/1.1 403 Forbidden");
    }
    // The next INFO line (a stop) comes after the requests' lines would have.
    quiet.signal("TERM");
    let mut quiet = quiet;
    quiet
        .wait_exit(Duration::from_secs(10))
        .expect("halb exits");
    let text = quiet.output_text();
    assert!(
        text.contains("INFO halb::runtime: shards on cores"),
        "{text}"
    );
    assert!(text.contains("INFO halb::runtime: stopped"), "{text}");
    assert!(!text.contains("halb::access"), "{text}");

    let addr = free_addr();
    let mut warn = Halb::start_with_env(&config(addr), addr, &[("HALB_LOG", "warn")]);
    assert_eq!(get(addr), "HTTP/1.1 403 Forbidden");
    warn.signal("TERM");
    warn.wait_exit(Duration::from_secs(10)).expect("halb exits");
    let text = warn.output_text();
    assert!(text.contains("halb: ready"), "{text}");
    assert!(!text.contains(" INFO "), "{text}");

    // A value it cannot read is said, and the default level kept.
    let addr = free_addr();
    let mut odd = Halb::start_with_env(&config(addr), addr, &[("HALB_LOG", "info,=nonsense=")]);
    odd.signal("TERM");
    odd.wait_exit(Duration::from_secs(10)).expect("halb exits");
    let text = odd.output_text();
    assert!(
        text.contains("HALB_LOG=\"info,=nonsense=\" is not understood"),
        "{text}"
    );
    assert!(text.contains("INFO halb::runtime: stopped"), "{text}");
}
