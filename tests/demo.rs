//! `halb demo` — the README's first command — really runs: three built-in backends
//! answer through halb in round-robin order, over HTTP (curl-style) and plain TCP, its
//! stats page and admin socket answer, and Ctrl-C (SIGINT) stops it cleanly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HALB: &str = env!("CARGO_BIN_EXE_halb");

fn ask(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the demo");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the answer");
    out
}

#[test]
fn demo_serves_three_backends_in_turn_and_stops_on_ctrl_c() {
    // A port range of our own (demo uses port..=port+6).
    let port = 18_600 + (std::process::id() % 200) as u16 * 7;
    let mut child = Command::new(HALB)
        .args(["demo", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn halb demo");
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "demo never listened on {port}");
        assert!(child.try_wait().unwrap().is_none(), "demo exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The probe above was one connection (answered by some backend): align on web1.
    let mut names = Vec::new();
    for _ in 0..6 {
        let reply = ask(
            port,
            b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n",
        );
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.contains("\r\nX-Proxy: halb\r\n"), "{reply}");
        let body = reply
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or("")
            .trim()
            .trim_end_matches(" (GET /)")
            .to_string();
        names.push(body);
    }
    let first = names
        .iter()
        .position(|n| n == "hello from web1")
        .expect("web1 answers");
    assert!(
        first < 3,
        "round robin reaches web1 within 3 requests: {names:?}"
    );
    let cycle: Vec<&str> = names[first..first + 3].iter().map(|s| s.as_str()).collect();
    assert_eq!(
        cycle,
        ["hello from web1", "hello from web2", "hello from web3"]
    );
    for name in ["web1", "web2", "web3"] {
        assert!(
            names.iter().any(|n| n.ends_with(name)),
            "{name} never answered: {names:?}"
        );
    }
    // Cookie persistence: the first answer sets HALBSRV; sending it back sticks.
    let reply = ask(
        port,
        b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n",
    );
    let cookie = reply
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: HALBSRV="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no persistence cookie: {reply}"))
        .to_string();
    for _ in 0..4 {
        let request = format!(
            "GET / HTTP/1.1\r\nHost: demo\r\nCookie: HALBSRV={cookie}\r\nConnection: close\r\n\r\n"
        );
        let reply = ask(port, request.as_bytes());
        assert!(reply.contains(&format!("hello from {cookie} ")), "{reply}");
        assert!(!reply.contains("Set-Cookie"), "{reply}");
    }
    // The path ACL: /admin is denied, /static/ goes to the uri-hashed backend (sticky).
    // (A deny keeps a keep-alive connection open, as in HAProxy: ask for a close.)
    let denied = ask(
        port,
        b"GET /admin HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n",
    );
    assert!(denied.starts_with("HTTP/1.1 403 "), "{denied}");
    let statics: Vec<String> = (0..3)
        .map(|_| {
            let r = ask(
                port,
                b"GET /static/a.png HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n",
            );
            r.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
        })
        .collect();
    assert!(statics[0].starts_with("hello from web"), "{statics:?}");
    assert!(statics.iter().all(|s| s == &statics[0]), "{statics:?}");

    // Plain TCP works too, on the mode tcp frontend.
    let plain = ask(port + 4, b"hi\n");
    assert!(plain.starts_with("hello from web"), "{plain}");

    // HTTPS: TLS terminated by halb with the certificate it made at start (verified by
    // curl against the demo's own certificate), HSTS added on TLS responses only.
    let https = Command::new("curl")
        .args([
            "-sS",
            "-i",
            "--max-time",
            "10",
            "--cacert",
            &format!("/tmp/halb-demo-{port}/demo.crt"),
            &format!("https://localhost:{}/hello", port + 6),
        ])
        .output()
        .expect("run curl (apt-get install curl)");
    let answer = String::from_utf8_lossy(&https.stdout);
    assert!(https.status.success(), "{answer} {:?}", https.stderr);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains("hello from web"), "{answer}");
    assert!(answer.contains("(GET /hello)"), "{answer}");
    assert!(
        answer.contains("strict-transport-security: max-age=600")
            || answer.contains("Strict-Transport-Security: max-age=600"),
        "{answer}"
    );
    let plain_page = ask(
        port,
        b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n",
    );
    assert!(
        !plain_page
            .to_ascii_lowercase()
            .contains("strict-transport-security"),
        "{plain_page}"
    );

    // The stats page (basic auth admin/demo) and the admin socket.
    let refused = ask(
        port + 5,
        b"GET /stats;json HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n",
    );
    assert!(refused.starts_with("HTTP/1.1 401 "), "{refused}");
    let stats = ask(
        port + 5,
        b"GET /stats;json HTTP/1.1\r\nHost: demo\r\nAuthorization: Basic YWRtaW46ZGVtbw==\r\nConnection: close\r\n\r\n",
    );
    assert!(stats.starts_with("HTTP/1.1 200 "), "{stats}");
    for name in ["\"web\"", "\"assets\"", "\"tcp\"", "\"web1\"", "\"web3\""] {
        assert!(stats.contains(name), "{name} missing from {stats}");
    }
    let ctl = Command::new(HALB)
        .args([
            "ctl",
            "--socket",
            &format!("/tmp/halb-demo-{port}.sock"),
            "show",
            "servers",
            "web",
        ])
        .output()
        .expect("run halb ctl");
    let table = String::from_utf8_lossy(&ctl.stdout);
    assert!(ctl.status.success(), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.starts_with("web ")).count(),
        3,
        "{table}"
    );

    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("demo did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "demo exit status {status:?}");
    let mut printed = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut printed)
        .unwrap();
    assert!(
        printed.contains(&format!("curl http://127.0.0.1:{port}/")),
        "{printed}"
    );
}
