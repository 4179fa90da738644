//! `https://` targets: the real `halb-loadtest` binary against a small rustls HTTPS server
//! written here (std threads, `rustls::StreamOwned`, certificates from a test CA made
//! with rcgen and written to a temp dir). Loopback only; every server socket has a read
//! timeout, so nothing outlives the test by more than a few seconds.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::Value;

mod common;
use common::loadtest as run;
use common::Acceptor;

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "halb-loadtest-https-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test CA (its certificate written to `<dir>/<name>-ca.pem`) and a server
/// certificate it signed for `localhost` and 127.0.0.1.
struct Pki {
    ca_file: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

fn pki(dir: &TempDir, name: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("halb-loadtest test CA {name}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    let ca_file = dir.0.join(format!("{name}-ca.pem"));
    std::fs::write(&ca_file, ca.pem()).unwrap();
    Pki {
        ca_file,
        chain: vec![leaf.der().clone()],
        key: leaf_key.serialize_der(),
    }
}

struct Server {
    accept: Acceptor,
    /// The SNI of the last handshake (None: none sent).
    last_sni: Arc<Mutex<Option<String>>>,
}

impl Server {
    /// An HTTPS server answering every request with a 5-byte body; `silent`: accept the
    /// TCP connection but never answer the TLS handshake.
    fn start(pki: &Pki, silent: bool) -> Server {
        let mut config = ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            pki.chain.clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone())),
        )
        .unwrap();
        // The default session cache (and TLS 1.3 stateful tickets) stay on.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let last_sni = Arc::new(Mutex::new(None));
        let sni = last_sni.clone();
        let accept = Acceptor::start(move |conn| {
            if silent {
                let mut conn = conn;
                conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                let mut sink = [0u8; 4096];
                while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
            } else {
                serve(conn, config.clone(), &sni);
            }
        });
        Server { accept, last_sni }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/x", self.accept.port)
    }
}

/// HTTP/1.1 over TLS: one response per request head; after `Connection: close`, answer,
/// send close_notify and end.
fn serve(tcp: TcpStream, config: Arc<ServerConfig>, sni: &Mutex<Option<String>>) {
    tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = tcp.set_nodelay(true);
    let mut tls = StreamOwned::new(ServerConnection::new(config).unwrap(), tcp);
    let mut buf = [0u8; 4096];
    let mut have: Vec<u8> = Vec::new();
    let mut handshook = false;
    loop {
        let n = match tls.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !handshook {
            handshook = true;
            *sni.lock().unwrap() = tls.conn.server_name().map(str::to_owned);
        }
        have.extend_from_slice(&buf[..n]);
        while let Some(end) = have.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&have[..end]).to_ascii_lowercase();
            have.drain(..end + 4);
            let close = head.contains("connection: close");
            let response: &[u8] = if close {
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
            };
            if tls.write_all(response).and_then(|_| tls.flush()).is_err() {
                return;
            }
            if close {
                tls.conn.send_close_notify();
                let _ = tls.flush();
                return;
            }
        }
    }
}

fn run_json(args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run(&all);
    let json = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    (out.status.code(), json)
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn keep_alive_with_cacert_one_handshake_per_connection() {
    let dir = TempDir::new("keepalive");
    let pki = pki(&dir, "a");
    let server = Server::start(&pki, false);
    let url = server.url();
    let (code, j) = run_json(&["-c", "2", "-n", "200", "--cacert", path(&pki.ca_file), &url]);
    assert_eq!(code, Some(0));
    assert_eq!(j["protocol"], "https");
    assert_eq!(
        (j["ok"].as_u64(), j["errors_total"].as_u64()),
        (Some(200), Some(0))
    );
    assert_eq!(j["bytes"].as_u64(), Some(200 * 43));
    let tls = &j["tls"];
    assert_eq!(tls["handshakes"].as_u64(), Some(2));
    assert_eq!(tls["resumed"].as_u64(), Some(0));
    assert_eq!(tls["version"], "TLSv1_3");
    assert_eq!(tls["alpn"], "http/1.1");
    assert_eq!(server.accept.connections(), 2);
    // An IP address is verified against the certificate's IP SAN, and sent no SNI.
    assert_eq!(*server.last_sni.lock().unwrap(), None);

    // The text summary has a tls line.
    let out = run(&["-c", "1", "-n", "5", "--cacert", path(&pki.ca_file), &url]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("tls         1 handshakes (0 resumed), TLSv1_3, alpn http/1.1"),
        "{text}"
    );
}

#[test]
fn sni_is_sent_and_verified() {
    let dir = TempDir::new("sni");
    let pki = pki(&dir, "a");
    let server = Server::start(&pki, false);
    let url = server.url();
    let args = ["-c", "1", "-n", "3", "--cacert", path(&pki.ca_file)];
    let (code, j) = run_json(&[&args[..], &["--sni", "localhost", &url]].concat());
    assert_eq!((code, j["ok"].as_u64()), (Some(0), Some(3)));
    assert_eq!(
        server.last_sni.lock().unwrap().as_deref(),
        Some("localhost")
    );
    // A name the certificate does not carry fails verification.
    let (code, j) = run_json(&[&args[..], &["--sni", "elsewhere.test", &url]].concat());
    assert_eq!((code, j["errors"]["connect"].as_u64()), (Some(1), Some(3)));
}

#[test]
fn close_makes_a_full_handshake_per_request() {
    let dir = TempDir::new("close");
    let pki = pki(&dir, "a");
    let server = Server::start(&pki, false);
    let (code, j) = run_json(&[
        "-c",
        "2",
        "-n",
        "40",
        "--close",
        "--cacert",
        path(&pki.ca_file),
        &server.url(),
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(
        (j["ok"].as_u64(), j["errors_total"].as_u64()),
        (Some(40), Some(0))
    );
    assert_eq!(j["tls"]["handshakes"].as_u64(), Some(40));
    assert_eq!(j["tls"]["resumed"].as_u64(), Some(0));
    assert_eq!(j["tls"]["alpn"], "http/1.1");
}

#[test]
fn close_with_tls_resume_resumes_sessions() {
    let dir = TempDir::new("resume");
    let pki = pki(&dir, "a");
    let server = Server::start(&pki, false);
    for version in ["1.3", "1.2"] {
        let (code, j) = run_json(&[
            "-c",
            "2",
            "-n",
            "40",
            "--close",
            "--tls-resume",
            "--tls-version",
            version,
            "--cacert",
            path(&pki.ca_file),
            &server.url(),
        ]);
        assert_eq!(code, Some(0));
        assert_eq!(j["ok"].as_u64(), Some(40));
        let tls = &j["tls"];
        assert_eq!(tls["handshakes"].as_u64(), Some(40));
        assert_eq!(tls["alpn"], "http/1.1");
        let resumed = tls["resumed"].as_u64().unwrap();
        // Only the first connection(s) need a full handshake.
        assert!(resumed >= 30, "TLS {version}: {resumed} resumed of 40");
    }
}

#[test]
fn insecure_accepts_an_unknown_ca_and_a_wrong_cacert_fails() {
    let dir = TempDir::new("insecure");
    let served = pki(&dir, "served");
    let other = pki(&dir, "other");
    let server = Server::start(&served, false);
    let url = server.url();
    let (code, j) = run_json(&["-c", "2", "-n", "20", "--insecure", &url]);
    assert_eq!((code, j["ok"].as_u64()), (Some(0), Some(20)));
    assert_eq!(j["tls"]["handshakes"].as_u64(), Some(2));

    let (code, j) = run_json(&[
        "-c",
        "2",
        "-n",
        "10",
        "--cacert",
        path(&other.ca_file),
        &url,
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(j["ok"].as_u64(), Some(0));
    assert_eq!(j["errors_total"].as_u64(), Some(10));
    assert_eq!(j["errors"]["connect"].as_u64(), Some(10));
    assert_eq!(j["tls"]["handshakes"].as_u64(), Some(0));
}

#[test]
fn tls_version_pins_the_protocol() {
    let dir = TempDir::new("version");
    let pki = pki(&dir, "a");
    let server = Server::start(&pki, false);
    let url = server.url();
    for (version, name) in [("1.2", "TLSv1_2"), ("1.3", "TLSv1_3")] {
        let (code, j) = run_json(&[
            "-c",
            "1",
            "-n",
            "5",
            "--tls-version",
            version,
            "--cacert",
            path(&pki.ca_file),
            &url,
        ]);
        assert_eq!((code, j["ok"].as_u64()), (Some(0), Some(5)));
        assert_eq!(j["tls"]["version"], name);
        assert_eq!(j["tls"]["alpn"], "http/1.1");
    }
}

#[test]
fn a_handshake_timeout_is_a_connect_error() {
    let dir = TempDir::new("timeout");
    let pki = pki(&dir, "a");
    let server = Server::start(&pki, true);
    let (code, j) = run_json(&[
        "-c",
        "1",
        "-n",
        "2",
        "--timeout",
        "200ms",
        "--insecure",
        &server.url(),
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(j["errors"]["connect"].as_u64(), Some(2));
    assert_eq!(j["errors"]["timeout"].as_u64(), Some(0));
}

#[test]
fn tls_options_are_checked() {
    let dir = TempDir::new("options");
    let pki = pki(&dir, "a");
    let ca = path(&pki.ca_file);
    let refused = |args: &[&str], needle: &str| {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{needle:?} not in {err}");
    };
    refused(&["-n", "1", "https://127.0.0.1:1/"], "--cacert");
    refused(
        &["-n", "1", "--insecure", "http://127.0.0.1:1/"],
        "https://",
    );
    refused(
        &["-n", "1", "--cacert", ca, "http://127.0.0.1:1/"],
        "https://",
    );
    refused(
        &["-n", "1", "--tls-resume", "tcp://127.0.0.1:1"],
        "https://",
    );
    refused(
        &[
            "-n",
            "1",
            "--insecure",
            "--cacert",
            ca,
            "https://127.0.0.1:1/",
        ],
        "exclude",
    );
    refused(
        &[
            "-n",
            "1",
            "--insecure",
            "--tls-version",
            "1.1",
            "https://127.0.0.1:1/",
        ],
        "1.1",
    );
    let missing = dir.0.join("missing.pem");
    refused(
        &[
            "-n",
            "1",
            "--cacert",
            path(&missing),
            "https://127.0.0.1:1/",
        ],
        "missing.pem",
    );
}
