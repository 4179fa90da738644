//! One health check, run on the control thread's executor: a TCP connect, or an HTTP/1.1
//! request whose status (and optionally body) is matched — over TLS when the server has
//! `tls = true` and the check goes to the server's own address and port ([`check_tls`]).
//! The result is `Ok(detail)` or `Err(reason)`, in the words shown by the stats page and
//! the health log, e.g. `L4 connect ok in 1 ms`, `L4 connect refused`, `L6 TLS handshake
//! ok in 3 ms`, `L6 TLS handshake failed: invalid peer certificate: UnknownIssuer`,
//! `L7 status 503`, `timeout after 2s`.
//!
//! Check connections are closed with a reset (SO_LINGER 0), as HAProxy does: a check
//! leaves no TIME_WAIT socket behind, which matters at a thousand checks a second. A TLS
//! check is reset too, without a `close_notify` first.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use crate::config::{format_duration, Check, CheckKind, HttpCheck, Mode, Server, ServerTls};
use crate::tls::stream::{ClientTls, Transport};

/// How much of an HTTP check's answer is read at most (head and body).
pub const MAX_CHECK_RESPONSE: usize = 16 * 1024;

/// The TLS settings a check of `server` speaks with: the server's own (`tls = true`,
/// with its `verify`, `ca_file` and `sni`) when the check goes where the traffic goes;
/// `None` (plain TCP) when the server is plain or its check has a `port` or `address`
/// of its own. HAProxy does the same: `ssl` on a server line implies `check-ssl` unless
/// the check is sent elsewhere (`port`, `addr`), where a separate plain health endpoint
/// is the usual setup.
pub fn check_tls(server: &Server) -> Option<&ServerTls> {
    let check = server.check.as_ref()?;
    if check.port.is_some() || check.address.is_some() {
        return None;
    }
    server.tls.as_ref()
}

/// What a check task holds to speak TLS to its server: the rustls client configuration
/// (built once per task: sessions resume from one check to the next, and a check costs
/// no configuration build) and the name the certificate must carry.
#[derive(Debug, Clone)]
pub struct CheckTls {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl CheckTls {
    /// The TLS client of checks to the server at `server` with `tls`, in a backend of
    /// `mode` (ALPN as for traffic): the same verification and name as traffic. The error
    /// is the reason every check then fails with.
    pub fn new(tls: &ServerTls, mode: Mode, server: SocketAddr) -> Result<CheckTls, String> {
        let config = crate::tls::server::client_config(tls, mode)
            .map_err(|e| format!("L6 TLS client configuration failed: {e}"))?;
        Ok(CheckTls {
            config,
            name: crate::tls::server::server_name(tls, server),
        })
    }
}

/// Run `check` against `target` within `check.timeout`, over TLS with `tls`. `buf` holds
/// the answer of an HTTP check (kept by the caller from one check to the next: its pages
/// stay mapped).
pub async fn run(
    check: &Check,
    target: SocketAddr,
    tls: Option<&CheckTls>,
    buf: &mut Vec<u8>,
) -> Result<String, String> {
    let started = Instant::now();
    let outcome = glommio::timer::timeout(check.timeout, async {
        Ok(attempt(check, target, tls, started, buf).await)
    })
    .await;
    match outcome {
        Ok(result) => result,
        Err(_) => Err(format!("timeout after {}", format_duration(check.timeout))),
    }
}

async fn attempt(
    check: &Check,
    target: SocketAddr,
    tls: Option<&CheckTls>,
    started: Instant,
    buf: &mut Vec<u8>,
) -> Result<String, String> {
    // The outer timer bounds the whole check; the connect gets the same limit.
    let socket = crate::l4::connect_one(target, check.timeout)
        .await
        .map_err(|e| connect_reason(&e, check.timeout))?;
    let _ = socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO));
    let Some(tls) = tls else {
        return match &check.kind {
            CheckKind::Tcp => Ok(format!("L4 connect ok in {}", elapsed_ms(started))),
            CheckKind::Http(http) => http_check(&socket, http, target, started, buf).await,
        };
    };
    let conn = ClientConnection::new(Arc::clone(&tls.config), tls.name.clone())
        .map_err(|e| format!("L6 TLS error: {e}"))?;
    let stream = ClientTls::new(socket, conn);
    stream.handshake().await.map_err(|e| handshake_reason(&e))?;
    match &check.kind {
        CheckKind::Tcp => Ok(format!("L6 TLS handshake ok in {}", elapsed_ms(started))),
        CheckKind::Http(http) => http_check(&stream, http, target, started, buf).await,
    }
}

fn connect_reason(e: &io::Error, limit: Duration) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "L4 connect refused".to_string(),
        io::ErrorKind::TimedOut => format!("timeout after {}", format_duration(limit)),
        _ => format!("L4 connect error: {e}"),
    }
}

/// Why a handshake failed: the rustls error when there is one (a certificate problem
/// reads `invalid peer certificate: ...`), with a hint when the server does not seem to
/// speak TLS at all.
fn handshake_reason(e: &io::Error) -> String {
    const NOT_TLS: &str = "is the server speaking TLS on this port?";
    let tls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls_error {
        Some(err @ rustls::Error::InvalidMessage(_)) => {
            format!("L6 TLS handshake failed: {err} ({NOT_TLS})")
        }
        Some(err) => format!("L6 TLS handshake failed: {err}"),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            format!("L6 TLS handshake failed: the server closed the connection ({NOT_TLS})")
        }
        None => format!("L6 TLS handshake failed: {e}"),
    }
}

fn elapsed_ms(started: Instant) -> String {
    format!("{} ms", started.elapsed().as_millis())
}

/// The request an HTTP check sends.
pub fn request_bytes(http: &HttpCheck, target: SocketAddr) -> Vec<u8> {
    let host = match &http.host {
        Some(h) => h.clone(),
        None => target.to_string(),
    };
    format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: halb-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        http.method, http.path, host
    )
    .into_bytes()
}

/// Write all of `bytes` (and what the stream queues of them: TLS records), awaiting room.
async fn send_all<T: Transport>(stream: &T, mut bytes: &[u8]) -> io::Result<()> {
    loop {
        let step = if bytes.is_empty() {
            stream.flush().map(|()| None)
        } else {
            stream.send(bytes).map(Some)
        };
        match step {
            Ok(None) => return Ok(()),
            Ok(Some(n)) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Send the request of `http` on `stream` (a plain socket or a TLS stream) and judge the
/// answer.
async fn http_check<T: Transport>(
    stream: &T,
    http: &HttpCheck,
    target: SocketAddr,
    started: Instant,
    buf: &mut Vec<u8>,
) -> Result<String, String> {
    let request = request_bytes(http, target);
    send_all(stream, &request)
        .await
        .map_err(|e| format!("L7 send error: {e}"))?;
    buf.resize(MAX_CHECK_RESPONSE, 0);
    let mut len = 0;
    let mut eof = false;
    loop {
        match evaluate(http, &buf[..len], eof || len == buf.len()) {
            Verdict::NeedMore => {}
            Verdict::Pass(status) => {
                return Ok(format!("L7 status {status} in {}", elapsed_ms(started)))
            }
            Verdict::Fail(reason) => return Err(reason),
        }
        match stream.recv(&mut buf[len..]) {
            Ok(0) => eof = true,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.readable().await,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if len == 0 => return Err(format!("L7 receive error: {e}")),
            // A reset after the answer (servers that close hard; over TLS, also a close
            // without close_notify): judge what arrived.
            Err(_) => eof = true,
        }
    }
}

/// What the bytes received so far say.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Read more.
    NeedMore,
    /// The answer matches (its status).
    Pass(u16),
    /// It does not, and why.
    Fail(String),
}

/// Judge an HTTP check's answer `got`; `complete` = nothing more will come (the server
/// closed, or [`MAX_CHECK_RESPONSE`] bytes are here).
pub fn evaluate(http: &HttpCheck, got: &[u8], complete: bool) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(got) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if !complete => return Verdict::NeedMore,
        Ok(httparse::Status::Partial) if got.is_empty() => {
            return Verdict::Fail("L7 connection closed without a response".to_string())
        }
        _ => return Verdict::Fail("L7 invalid response".to_string()),
    };
    let status = response.code.unwrap_or(0);
    if !http.status_ok(status) {
        return Verdict::Fail(format!("L7 status {status}"));
    }
    let Some(expected) = &http.expect_body else {
        return Verdict::Pass(status);
    };
    let content_length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let body = &got[head_len..];
    let needle = expected.as_bytes();
    if body.windows(needle.len().max(1)).any(|w| w == needle) {
        return Verdict::Pass(status);
    }
    let body_complete = complete || content_length.is_some_and(|n| body.len() >= n);
    if body_complete {
        Verdict::Fail(format!("L7 body does not contain {expected:?}"))
    } else {
        Verdict::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(expect_body: Option<&str>) -> HttpCheck {
        HttpCheck {
            method: "GET".into(),
            path: "/health".into(),
            host: None,
            expect_status: vec![(200, 299)],
            expect_body: expect_body.map(str::to_string),
        }
    }

    #[test]
    fn status_and_body() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nall ok\n";
        assert_eq!(evaluate(&http(None), ok, false), Verdict::Pass(200));
        assert_eq!(evaluate(&http(Some("ok")), ok, false), Verdict::Pass(200));
        assert_eq!(
            evaluate(&http(Some("ready")), ok, false),
            Verdict::Fail("L7 body does not contain \"ready\"".into())
        );
        let bad = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            evaluate(&http(None), bad, false),
            Verdict::Fail("L7 status 503".into())
        );
        assert_eq!(
            evaluate(&http(None), b"HTTP/1.1 200", false),
            Verdict::NeedMore
        );
        assert_eq!(
            evaluate(&http(None), b"garbage\r\n\r\n", true),
            Verdict::Fail("L7 invalid response".into())
        );
        assert_eq!(
            evaluate(&http(None), b"", true),
            Verdict::Fail("L7 connection closed without a response".into())
        );
        // Body still arriving, no length: wait for the close.
        let partial = b"HTTP/1.1 200 OK\r\n\r\nnot y";
        assert_eq!(
            evaluate(&http(Some("yes")), partial, false),
            Verdict::NeedMore
        );
    }

    #[test]
    fn request_has_host_and_close() {
        let req = request_bytes(&http(None), "127.0.0.1:80".parse().unwrap());
        let text = String::from_utf8(req).unwrap();
        assert!(text.starts_with("GET /health HTTP/1.1\r\nHost: 127.0.0.1:80\r\n"));
        assert!(text.contains("Connection: close\r\n"));
    }

    // Checks over TLS, against rustls servers on threads of their own, run on a glommio
    // executor like the control thread's.

    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::thread::{self, JoinHandle};

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::{HandshakeKind, ServerConfig, ServerConnection};

    use crate::config::{ServerTls, TlsVerify};
    use crate::runtime::testing::on_fresh_executor;
    use crate::tls::certs::load_ca_bundle;
    use crate::tls::certs::testing::{generate, generate_for_key, Generated, TempDir};

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
    const UNAVAILABLE: &[u8] =
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

    /// A check of `kind` with a generous timeout: a hang shows as `timeout after 10s`.
    fn check(kind: CheckKind) -> Check {
        Check {
            kind,
            inter: Duration::from_secs(2),
            fastinter: Duration::from_secs(2),
            downinter: Duration::from_secs(2),
            rise: 2,
            fall: 3,
            timeout: Duration::from_secs(10),
            port: None,
            address: None,
            observe: None,
            error_limit: 10,
            shutdown_sessions_on_down: false,
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1, self-signed (it is its own
    /// CA), issued by `issuer` (certificates of different issuers are strangers to each
    /// other).
    fn server_cert(issuer: &str) -> Generated {
        let key = rcgen::KeyPair::generate().unwrap();
        generate_for_key(&["localhost", "127.0.0.1"], key, |params| {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, issuer);
        })
    }

    fn server_config(cert: &Generated) -> Arc<ServerConfig> {
        let key = PrivateKeyDer::from_pem_slice(cert.key.as_bytes()).unwrap();
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert.der.clone())], key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// A server's `tls = true` trusting `ca` (`verify = "required"`).
    fn verified(dir: &TempDir, ca: &Generated, sni: Option<&str>) -> ServerTls {
        let bundle = load_ca_bundle(&dir.write("ca.pem", &ca.cert)).unwrap();
        ServerTls {
            verify: TlsVerify::Required(Arc::new(bundle)),
            sni: sni.map(str::to_string),
        }
    }

    /// Accept `connections` connections on a thread: handshake with `config`, then, with
    /// an `answer`, read a request head and answer it. Each connection's handshake kind,
    /// or the server's error.
    fn tls_server(
        config: Arc<ServerConfig>,
        answer: Option<&'static [u8]>,
        connections: usize,
    ) -> (SocketAddr, JoinHandle<Vec<Result<HandshakeKind, String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            (0..connections)
                .map(|_| {
                    let (mut sock, _) = listener.accept().unwrap();
                    sock.set_read_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                    serve_one(&mut sock, &config, answer)
                })
                .collect()
        });
        (addr, server)
    }

    fn serve_one(
        sock: &mut TcpStream,
        config: &Arc<ServerConfig>,
        answer: Option<&[u8]>,
    ) -> Result<HandshakeKind, String> {
        let mut conn = ServerConnection::new(Arc::clone(config)).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(sock).map_err(|e| e.to_string())?;
        }
        let kind = conn.handshake_kind().unwrap();
        if let Some(answer) = answer {
            let mut stream = rustls::Stream::new(&mut conn, sock);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                stream.read_exact(&mut byte).map_err(|e| e.to_string())?;
                head.push(byte[0]);
            }
            assert!(head.starts_with(b"GET /health HTTP/1.1\r\n"));
            stream.write_all(answer).map_err(|e| e.to_string())?;
            conn.send_close_notify();
            // The check resets the connection once it has its answer: best effort.
            let _ = conn.complete_io(sock);
        }
        Ok(kind)
    }

    /// A plain TCP server: reads what comes, answers `answer` (if any) and closes.
    fn plain_server(answer: Option<&'static [u8]>) -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let mut hello = [0u8; 4096];
            let _ = sock.read(&mut hello);
            if let Some(answer) = answer {
                let _ = sock.write_all(answer);
            }
        });
        (addr, server)
    }

    /// Run checks of `kind` one after the other against `addr`, sharing one TLS client
    /// built from `tls` (as a check task does); their results.
    fn run_checks(
        kind: CheckKind,
        addr: SocketAddr,
        tls: ServerTls,
        mode: Mode,
        count: usize,
    ) -> Vec<Result<String, String>> {
        on_fresh_executor(move || async move {
            let client = CheckTls::new(&tls, mode, addr).unwrap();
            let check = check(kind);
            let mut buf = Vec::new();
            let mut results = Vec::new();
            for _ in 0..count {
                results.push(run(&check, addr, Some(&client), &mut buf).await);
            }
            results
        })
    }

    fn run_check(kind: CheckKind, addr: SocketAddr, tls: ServerTls) -> Result<String, String> {
        run_checks(kind, addr, tls, Mode::Tcp, 1).remove(0)
    }

    #[test]
    fn tls_tcp_check_passes_with_the_right_ca() {
        let dir = TempDir::new("check-ok");
        let cert = server_cert("halb test CA");
        // Without sni the certificate must name the IP address; with sni, that name.
        for sni in [None, Some("localhost")] {
            let (addr, server) = tls_server(server_config(&cert), None, 1);
            let result = run_check(CheckKind::Tcp, addr, verified(&dir, &cert, sni));
            let detail = result.unwrap_or_else(|e| panic!("sni {sni:?}: {e}"));
            assert!(detail.starts_with("L6 TLS handshake ok in "), "{detail}");
            // (The server side may end with an error: the check resets once it is done.)
            let _ = server.join().unwrap();
        }
    }

    #[test]
    fn tls_check_fails_with_a_wrong_ca_and_names_the_certificate_problem() {
        let dir = TempDir::new("check-wrong-ca");
        let (addr, server) = tls_server(server_config(&server_cert("halb test CA")), None, 1);
        let stranger = server_cert("another CA");
        let reason = run_check(CheckKind::Tcp, addr, verified(&dir, &stranger, None))
            .expect_err("a certificate from another CA is refused");
        assert!(
            reason.starts_with("L6 TLS handshake failed: invalid peer certificate"),
            "{reason}"
        );
        assert!(reason.contains("UnknownIssuer"), "{reason}");
        let served = server.join().unwrap();
        assert!(served[0].is_err(), "the server saw the alert: {served:?}");
    }

    #[test]
    fn tls_check_with_the_wrong_name_fails() {
        let dir = TempDir::new("check-wrong-name");
        let cert = server_cert("halb test CA");
        let (addr, server) = tls_server(server_config(&cert), None, 1);
        let reason = run_check(
            CheckKind::Tcp,
            addr,
            verified(&dir, &cert, Some("other.example")),
        )
        .expect_err("a certificate for another name is refused");
        assert!(
            reason.starts_with("L6 TLS handshake failed: invalid peer certificate"),
            "{reason}"
        );
        let _ = server.join().unwrap();
    }

    #[test]
    fn verify_none_accepts_any_certificate() {
        let (addr, server) = tls_server(server_config(&generate(&["whatever.example"])), None, 1);
        let tls = ServerTls {
            verify: TlsVerify::None,
            sni: None,
        };
        let detail = run_check(CheckKind::Tcp, addr, tls).unwrap();
        assert!(detail.starts_with("L6 TLS handshake ok in "), "{detail}");
        let _ = server.join().unwrap();
    }

    #[test]
    fn http_check_over_tls_judges_the_answer_and_resumes_the_session() {
        let dir = TempDir::new("check-http");
        let cert = server_cert("halb test CA");
        let tls = verified(&dir, &cert, Some("localhost"));

        let (addr, server) = tls_server(server_config(&cert), Some(OK), 2);
        let kind = CheckKind::Http(http(Some("ok")));
        let results = run_checks(kind, addr, tls.clone(), Mode::Http, 2);
        for result in &results {
            let detail = result.as_ref().unwrap();
            assert!(detail.starts_with("L7 status 200 in "), "{detail}");
        }
        // One TLS client per check task: the second check resumes the first's session.
        let kinds = server.join().unwrap();
        assert_eq!(
            kinds,
            [Ok(HandshakeKind::Full), Ok(HandshakeKind::Resumed)],
            "{results:?}"
        );

        let (addr, server) = tls_server(server_config(&cert), Some(UNAVAILABLE), 1);
        let reason = run_checks(CheckKind::Http(http(None)), addr, tls, Mode::Http, 1)
            .remove(0)
            .unwrap_err();
        assert_eq!(reason, "L7 status 503");
        let _ = server.join().unwrap();
    }

    #[test]
    fn plain_server_fails_the_tls_handshake_with_a_clear_reason() {
        let dir = TempDir::new("check-plain");
        let tls = verified(&dir, &server_cert("halb test CA"), None);
        // An HTTP server answers the ClientHello with a 400 in plain text.
        let (addr, server) = plain_server(Some(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ));
        let reason = run_check(CheckKind::Tcp, addr, tls.clone()).unwrap_err();
        assert!(reason.starts_with("L6 TLS handshake failed: "), "{reason}");
        assert!(
            reason.contains("is the server speaking TLS on this port?"),
            "{reason}"
        );
        server.join().unwrap();
        // A server that closes without a word.
        let (addr, server) = plain_server(None);
        let reason = run_check(CheckKind::Http(http(None)), addr, tls).unwrap_err();
        assert_eq!(
            reason,
            "L6 TLS handshake failed: the server closed the connection \
             (is the server speaking TLS on this port?)"
        );
        server.join().unwrap();
    }

    #[test]
    fn plain_check_still_works_and_tls_only_on_the_servers_own_port() {
        let (addr, server) = plain_server(Some(OK));
        let result = on_fresh_executor(move || async move {
            let mut buf = Vec::new();
            run(&check(CheckKind::Http(http(None))), addr, None, &mut buf).await
        });
        let detail = result.unwrap();
        assert!(detail.starts_with("L7 status 200 in "), "{detail}");
        server.join().unwrap();

        let tls = ServerTls {
            verify: TlsVerify::None,
            sni: None,
        };
        let mut s = Server {
            name: "s1".into(),
            address: "127.0.0.1:443".parse().unwrap(),
            weight: 1,
            backup: false,
            disabled: false,
            cookie: None,
            check: Some(check(CheckKind::Tcp)),
            slowstart: None,
            tls: Some(tls.clone()),
        };
        assert_eq!(check_tls(&s), Some(&tls));
        s.check.as_mut().unwrap().port = Some(8081);
        assert_eq!(check_tls(&s), None, "another port: plain");
        s.check.as_mut().unwrap().port = None;
        s.check.as_mut().unwrap().address = Some("127.0.0.2".parse().unwrap());
        assert_eq!(check_tls(&s), None, "another address: plain");
        s.check.as_mut().unwrap().address = None;
        s.tls = None;
        assert_eq!(check_tls(&s), None, "a plain server");
    }
}
