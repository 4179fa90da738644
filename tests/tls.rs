//! TLS termination and TLS to servers (issue 7) through the real binary: certificate
//! selection by SNI (exact, wildcard, default), the HTTP→HTTPS redirect with `ssl_fc`,
//! `ssl_fc` routing and header rules, `X-Forwarded-Proto`, HSTS by a response rule, refused
//! protocol versions, stalled and trickled handshakes cut by `timeouts.http_request`,
//! garbage instead of a ClientHello, `mode tcp` termination, TLS to a TLS origin (verified,
//! wrong CA, wrong name, unverified), certificate reload with connections kept, ALPN, and
//! health checks over TLS.
//!
//! Every certificate is generated here with rcgen (RSA keys by the `openssl` binary) and
//! written to a temp dir. Clients are `curl` and a rustls client (`rustls` is a dependency
//! of halb), which shows exactly which certificate was served.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, ServerConfig, ServerConnection,
    StreamOwned,
};

use common::control::*;
use common::http::*;
use common::*;

// ---------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------

/// A test certificate authority.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// Its certificate, PEM (a `ca_file` / `--cacert`).
    path: PathBuf,
}

/// A leaf certificate signed by a [`Ca`] (or self-signed) with its key.
#[derive(Clone)]
struct Leaf {
    /// Certificate PEM then key PEM: a halb certificate file.
    pem: String,
    /// The certificate, DER (compared with what a client was served).
    der: Vec<u8>,
    /// The key, PKCS#8 DER.
    key_der: Vec<u8>,
}

impl Leaf {
    /// Write [`Leaf::pem`] to `dir/name`.
    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).expect("write certificate file");
        path
    }
}

/// The kinds of keys the tests use.
#[derive(Clone, Copy, Debug)]
enum Alg {
    P256,
    Ed25519,
    Rsa,
}

/// A fresh key of `alg` (RSA 2048 made by `openssl genpkey`: rcgen with ring cannot).
fn key(alg: Alg, dir: &Path) -> KeyPair {
    match alg {
        Alg::P256 => KeyPair::generate().expect("P-256 key"),
        Alg::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key"),
        Alg::Rsa => {
            let path = dir.join("rsa-key.pem");
            let out = Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-out",
                ])
                .arg(&path)
                .output()
                .expect("run openssl genpkey (apt-get install openssl)");
            assert!(out.status.success(), "openssl genpkey: {out:?}");
            let pem = std::fs::read_to_string(&path).expect("read RSA key");
            let _ = std::fs::remove_file(&path);
            KeyPair::from_pem(&pem).expect("load RSA key")
        }
    }
}

/// Leaf parameters: `names` as DNS SANs, CN = the first name.
fn leaf_params(names: &[&str]) -> CertificateParams {
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("certificate params");
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    p
}

impl Ca {
    /// A CA called `cn`, its certificate written to `dir/<cn>.pem`.
    fn new(cn: &str, dir: &Path) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).expect("self-sign CA");
        let path = dir.join(format!("{cn}.pem"));
        std::fs::write(&path, cert.pem()).expect("write CA");
        Ca { cert, key, path }
    }

    /// A leaf for `names` (CN = first name) with a fresh `alg` key, signed by this CA.
    fn issue(&self, names: &[&str], alg: Alg, dir: &Path) -> Leaf {
        let key = key(alg, dir);
        let cert = leaf_params(names)
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign leaf");
        Leaf {
            pem: format!("{}{}", cert.pem(), key.serialize_pem()),
            der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    /// The CA certificate, DER.
    fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }
}

/// A self-signed leaf for `names` (no CA knows it).
fn self_signed(names: &[&str]) -> Leaf {
    let key = KeyPair::generate().expect("key");
    let cert = leaf_params(names).self_signed(&key).expect("self-sign");
    Leaf {
        pem: format!("{}{}", cert.pem(), key.serialize_pem()),
        der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

// ---------------------------------------------------------------------------------------
// rustls clients
// ---------------------------------------------------------------------------------------

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// How a test client verifies and what it offers.
#[derive(Clone)]
struct ClientOpts {
    /// Verify against this CA; `None`: accept any certificate.
    ca: Option<CertificateDer<'static>>,
    /// ALPN protocols offered.
    alpn: Vec<Vec<u8>>,
    /// Protocol versions offered (`None`: 1.2 and 1.3).
    versions: Option<Vec<&'static rustls::SupportedProtocolVersion>>,
}

impl ClientOpts {
    fn verified(ca: &Ca) -> ClientOpts {
        ClientOpts {
            ca: Some(ca.der()),
            alpn: Vec::new(),
            versions: None,
        }
    }
    fn any_cert() -> ClientOpts {
        ClientOpts {
            ca: None,
            alpn: Vec::new(),
            versions: None,
        }
    }
    fn alpn(mut self, protos: &[&str]) -> ClientOpts {
        self.alpn = protos.iter().map(|p| p.as_bytes().to_vec()).collect();
        self
    }
    fn versions(mut self, v: &[&'static rustls::SupportedProtocolVersion]) -> ClientOpts {
        self.versions = Some(v.to_vec());
        self
    }
    /// A fresh config (its own session store: no resumption across test connections).
    fn config(&self) -> Arc<ClientConfig> {
        let p = provider();
        let builder = ClientConfig::builder_with_provider(p.clone());
        let builder = match &self.versions {
            Some(v) => builder.with_protocol_versions(v),
            None => builder.with_safe_default_protocol_versions(),
        }
        .expect("protocol versions");
        let mut cfg = match &self.ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(ca.clone()).expect("add test CA");
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            None => builder
                .dangerous()
                // Any certificate (the test wants to see which one was served); handshake
                // signatures are still checked.
                .with_custom_certificate_verifier(Arc::new(
                    halb::tls::server::InsecureAcceptAnyCertificate::new(&p),
                ))
                .with_no_client_auth(),
        };
        cfg.alpn_protocols = self.alpn.clone();
        Arc::new(cfg)
    }
}

/// A TLS client connection carrying HTTP/1.1 requests (keep-alive) or raw bytes.
struct TlsClient {
    tls: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
    eof: bool,
}

/// Connect to `addr`, SNI `sni` (`None`: connect by IP, no SNI), and finish the handshake.
fn tls_connect(addr: SocketAddr, sni: Option<&str>, opts: &ClientOpts) -> io::Result<TlsClient> {
    let mut sock = try_connect(addr)?;
    let name: ServerName<'static> = match sni {
        Some(n) => ServerName::try_from(n.to_string()).expect("valid DNS name"),
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let mut conn = ClientConnection::new(opts.config(), name).map_err(io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    Ok(TlsClient {
        tls: StreamOwned::new(conn, sock),
        buf: Vec::new(),
        eof: false,
    })
}

/// [`tls_connect`] that must succeed.
fn tls_open(addr: SocketAddr, sni: Option<&str>, opts: &ClientOpts) -> TlsClient {
    tls_connect(addr, sni, opts)
        .unwrap_or_else(|e| panic!("TLS handshake with {addr} (SNI {sni:?}): {e}"))
}

impl TlsClient {
    /// DER of the leaf certificate the server sent.
    fn leaf(&self) -> Vec<u8> {
        self.tls
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .expect("the server sent a certificate")
            .to_vec()
    }

    fn alpn(&self) -> Option<Vec<u8>> {
        self.tls.conn.alpn_protocol().map(|p| p.to_vec())
    }

    fn version(&self) -> Option<ProtocolVersion> {
        self.tls.conn.protocol_version()
    }

    /// Send a request (see [`build_request`]) and read its final response.
    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        self.tls
            .write_all(&build_request(method, path, headers, body))?;
        self.tls.flush()?;
        loop {
            let r = self.read_response(method)?;
            if !(100..200).contains(&r.status) {
                return Ok(r);
            }
        }
    }

    fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers, b"")
            .unwrap_or_else(|e| panic!("GET {path} over TLS: {e}"))
    }

    fn read_response(&mut self, method: &str) -> io::Result<Response> {
        read_response_from(&mut self.tls, &mut self.buf, &mut self.eof, method)
    }

    /// Read exactly `n` bytes.
    fn read_exact_bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; n];
        self.tls.read_exact(&mut out)?;
        Ok(out)
    }
}

/// GET `path` on a fresh TLS connection; the leaf served and the response.
fn tls_get(
    addr: SocketAddr,
    sni: Option<&str>,
    opts: &ClientOpts,
    path: &str,
) -> (Vec<u8>, Response) {
    let mut c = tls_open(addr, sni, opts);
    let r = c.get(path, &[]);
    (c.leaf(), r)
}

/// A ClientHello as rustls writes it for `sni` (bytes only: nothing is sent).
fn client_hello(sni: &str) -> Vec<u8> {
    let mut conn = ClientConnection::new(
        ClientOpts::any_cert().config(),
        ServerName::try_from(sni.to_string()).unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    assert!(out.len() > 100 && out[0] == 0x16, "a ClientHello record");
    out
}

/// A TLS 1.1 ClientHello (client_version 3.2, no supported_versions extension) with
/// TLS 1.0/1.1 suites and one 1.2 suite, written by hand (rustls cannot speak 1.1).
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&[0x5a; 32]);
    body.push(0);
    let suites: [u16; 5] = [0xc013, 0xc009, 0x002f, 0x0035, 0xc02b];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]);
    let mut ext = Vec::new();
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]);
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    // signature_algorithms (rustls requires it before it looks at the version).
    ext.extend_from_slice(&[
        0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01,
    ]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend(ext);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend(hs);
    rec
}

/// The TLS records in `bytes`: (content type, payload). Stops at a truncated record.
fn records(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 5 <= bytes.len() {
        let len = u16::from_be_bytes([bytes[at + 3], bytes[at + 4]]) as usize;
        if at + 5 + len > bytes.len() {
            break;
        }
        out.push((bytes[at], bytes[at + 5..at + 5 + len].to_vec()));
        at += 5 + len;
    }
    out
}

// ---------------------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------------------

struct CurlOut {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for CurlOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "curl exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl CurlOut {
    /// The CN of the server certificate from `-v` output (`*  subject: CN=a.test`).
    fn subject_cn(&self) -> Option<String> {
        self.stderr
            .lines()
            .find(|l| l.contains("subject:"))
            .and_then(|l| l.split("CN=").nth(1))
            .map(|s| s.split([',', '/', ';']).next().unwrap().trim().to_string())
    }
}

/// Run curl (bounded by `--max-time 10`) with `args`.
fn curl(args: &[&str]) -> CurlOut {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    CurlOut {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `curl -v --cacert CA --resolve NAME:PORT:IP https://NAME:PORT/PATH`, body then
/// `\n<status>` on stdout.
fn curl_https(ca: &Ca, name: &str, addr: SocketAddr, path: &str, extra: &[&str]) -> CurlOut {
    let resolve = format!("{name}:{}:{}", addr.port(), addr.ip());
    let url = format!("https://{name}:{}{path}", addr.port());
    let mut args = vec![
        "-v",
        "--cacert",
        ca.path.to_str().unwrap(),
        "--resolve",
        &resolve,
        "-w",
        "\n%{http_code}",
    ];
    args.extend_from_slice(extra);
    args.push(&url);
    curl(&args)
}

// ---------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------

/// `tls = { bind = [ADDR], certs = [...], EXTRA }` as a frontend line.
fn tls_line(addr: SocketAddr, certs: &[&Path], extra: &str) -> String {
    let certs: Vec<String> = certs
        .iter()
        .map(|p| toml_str(p.to_str().expect("utf-8 path")))
        .collect();
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!(
        "tls = {{ bind = [\"{addr}\"], certs = [{}]{extra} }}",
        certs.join(", ")
    )
}

/// halb on `conf` with a TLS listener on a fresh address: (halb, TLS address).
fn start_tls(conf: Conf, certs: &[&Path], extra: &str) -> (Halb, SocketAddr) {
    let tls = free_addr();
    let halb = conf.frontend(&tls_line(tls, certs, extra)).start();
    (halb, tls)
}

fn expect_status(r: &Response, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: expected {status}, got:\n{r}");
}

// ---------------------------------------------------------------------------------------
// A TLS origin server
// ---------------------------------------------------------------------------------------

/// A TLS HTTP/1.1 server (rustls) answering every GET with `200`, body `NAME PATH`,
/// keep-alive; it counts handshakes (completed and failed), the SNI of each and requests.
struct TlsOrigin {
    addr: SocketAddr,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    snis: Arc<Mutex<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl TlsOrigin {
    fn start(name: &str, leaf: &Leaf) -> TlsOrigin {
        let cfg = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
            )
            .expect("origin server config");
        let cfg = Arc::new(cfg);
        let listener = TcpListener::bind(SocketAddrV4::new(fresh_ip(), 0)).expect("bind origin");
        let addr = listener.local_addr().unwrap();
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let snis = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let name = name.to_string();
        let (o, f, rq, sn, st) = (
            ok.clone(),
            failed.clone(),
            requests.clone(),
            snis.clone(),
            stop.clone(),
        );
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(sock) = conn else { continue };
                let _ = sock.set_read_timeout(Some(Duration::from_secs(30)));
                let _ = sock.set_write_timeout(Some(Duration::from_secs(30)));
                let (cfg, name) = (cfg.clone(), name.clone());
                let (o, f, rq, sn) = (o.clone(), f.clone(), rq.clone(), sn.clone());
                thread::spawn(move || origin_conn(sock, cfg, &name, &o, &f, &rq, &sn));
            }
        });
        TlsOrigin {
            addr,
            ok,
            failed,
            requests,
            snis,
            stop,
            accept: Some(accept),
        }
    }
    fn ok(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }
    fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
    fn snis(&self) -> Vec<Option<String>> {
        self.snis.lock().unwrap().clone()
    }
}

fn origin_conn(
    mut sock: TcpStream,
    cfg: Arc<ServerConfig>,
    name: &str,
    ok: &AtomicUsize,
    failed: &AtomicUsize,
    requests: &AtomicUsize,
    snis: &Mutex<Vec<Option<String>>>,
) {
    let mut conn = ServerConnection::new(cfg).expect("server connection");
    while conn.is_handshaking() {
        if conn.complete_io(&mut sock).is_err() {
            failed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
    ok.fetch_add(1, Ordering::SeqCst);
    snis.lock()
        .unwrap()
        .push(conn.server_name().map(|s| s.to_string()));
    let mut tls = StreamOwned::new(conn, sock);
    let mut buf = Vec::new();
    let mut tmp = [0u8; 16 * 1024];
    for _ in 0..10_000 {
        let end = loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                break end;
            }
            match tls.read(&mut tmp) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        let path = head.split_whitespace().nth(1).unwrap_or("?").to_string();
        requests.fetch_add(1, Ordering::SeqCst);
        let body = format!("{name} {path}");
        let resp = format!(
            "HTTP/1.1 200 OK\r\nX-Server: {name}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if tls.write_all(resp.as_bytes()).is_err() || tls.flush().is_err() {
            return;
        }
    }
}

impl Drop for TlsOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

// ---------------------------------------------------------------------------------------
// 1. SNI
// ---------------------------------------------------------------------------------------

/// Four certificates (a.test P-256 default, b.test RSA, *.wild.test Ed25519,
/// exact.wild.test P-256 listed after the wildcard): each name gets its certificate, the
/// exact name beats the wildcard, a wildcard matches one label only, and a client without
/// SNI or with an unknown name gets the first; checked with rustls (leaf DER) and curl.
#[test]
fn sni_picks_the_certificate() {
    let dir = TempDir::new();
    let ca = Ca::new("sni-ca", &dir.path);
    let a = ca.issue(&["a.test"], Alg::P256, &dir.path);
    let b = ca.issue(&["b.test"], Alg::Rsa, &dir.path);
    let w = ca.issue(&["*.wild.test"], Alg::Ed25519, &dir.path);
    let x = ca.issue(&["exact.wild.test"], Alg::P256, &dir.path);
    let paths = [
        a.write(&dir.path, "a.pem"),
        b.write(&dir.path, "b.pem"),
        w.write(&dir.path, "w.pem"),
        x.write(&dir.path, "x.pem"),
    ];
    let be = HttpBackend::new("be");
    let (halb, tls) = start_tls(
        Conf::http().server("s1", be.addr),
        &paths.iter().map(|p| p.as_path()).collect::<Vec<_>>(),
        "",
    );

    // Verified rustls clients: the right leaf, and a proxied 200.
    let cases: [(&str, &Leaf, &str); 5] = [
        ("a.test", &a, "a.test"),
        ("b.test", &b, "b.test"),
        ("foo.wild.test", &w, "*.wild.test"),
        ("bar.wild.test", &w, "*.wild.test"),
        ("exact.wild.test", &x, "exact.wild.test"),
    ];
    for (name, leaf, which) in cases {
        let (served, r) = tls_get(
            tls,
            Some(name),
            &ClientOpts::verified(&ca),
            &format!("/{name}"),
        );
        assert!(
            served == leaf.der,
            "SNI {name}: expected the {which} certificate, got another one"
        );
        expect_status(&r, 200, name);
        assert_eq!(r.text(), "be", "SNI {name}");
    }
    // No SNI, unknown names, names a one-label wildcard does not cover: the default (a).
    let any = ClientOpts::any_cert();
    let (served, r) = tls_get(tls, None, &any, "/no-sni");
    assert!(
        served == a.der,
        "no SNI: expected the default (a.test) certificate"
    );
    expect_status(&r, 200, "no SNI");
    for name in ["unknown.test", "wild.test", "a.b.wild.test", "c.test"] {
        let (served, r) = tls_get(tls, Some(name), &any, "/unknown");
        assert!(
            served == a.der,
            "SNI {name}: expected the default (a.test) certificate"
        );
        expect_status(&r, 200, name);
    }

    // curl (OpenSSL): verified against the CA for each name, and the subject it saw.
    for (name, cn) in [
        ("a.test", "a.test"),
        ("b.test", "b.test"),
        ("foo.wild.test", "*.wild.test"),
        ("exact.wild.test", "exact.wild.test"),
    ] {
        let out = curl_https(&ca, name, tls, "/curl", &[]);
        assert_eq!(out.code, Some(0), "curl {name}: {out}");
        assert!(out.stdout.ends_with("\n200"), "curl {name}: {out}");
        assert!(out.stdout.starts_with("be"), "curl {name}: {out}");
        assert_eq!(out.subject_cn().as_deref(), Some(cn), "curl {name}: {out}");
    }
    // curl without SNI (an IP literal) and with an unknown name: the default certificate.
    let url = format!("https://{}/curl-ip", tls);
    let out = curl(&["-v", "-k", "-w", "\n%{http_code}", &url]);
    assert_eq!(out.code, Some(0), "curl by IP: {out}");
    assert!(out.stdout.ends_with("\n200"), "curl by IP: {out}");
    assert_eq!(
        out.subject_cn().as_deref(),
        Some("a.test"),
        "curl by IP: {out}"
    );
    let out = curl_https(&ca, "nobody.test", tls, "/x", &["-k"]);
    assert_eq!(out.code, Some(0), "curl nobody.test: {out}");
    assert_eq!(
        out.subject_cn().as_deref(),
        Some("a.test"),
        "curl nobody.test: {out}"
    );
    // And verification without -k fails for it: the default does not name it.
    let out = curl_https(&ca, "nobody.test", tls, "/x", &[]);
    assert_eq!(out.code, Some(60), "curl nobody.test verified: {out}");
    drop(halb);
}

// ---------------------------------------------------------------------------------------
// 2-4. redirect, ssl_fc, X-Forwarded-Proto, HSTS
// ---------------------------------------------------------------------------------------

/// `redirect = "scheme https"`, `code = 301`, `unless = "ssl_fc"`: the plain listener
/// answers 301 with `Location: https://host/path?query` (nothing forwarded); the same
/// request over TLS is proxied.
#[test]
fn http_to_https_redirect() {
    let dir = TempDir::new();
    let ca = Ca::new("redirect-ca", &dir.path);
    let cert = ca
        .issue(&["shop.test"], Alg::P256, &dir.path)
        .write(&dir.path, "shop.pem");
    let be = HttpBackend::new("be");
    let (halb, tls) = start_tls(
        Conf::http().server("s1", be.addr).http_request(&[
            "redirect = \"scheme https\"",
            "code = 301",
            "unless = \"ssl_fc\"",
        ]),
        &[&cert],
        "",
    );
    let r = get(halb.addr, "/cart/items?id=7", &[("Host", "shop.test")]);
    expect_status(&r, 301, "plain request");
    assert_eq!(
        r.header("location"),
        Some("https://shop.test/cart/items?id=7"),
        "{r}"
    );
    assert_eq!(
        be.request_count(),
        0,
        "the redirected request reached the backend"
    );

    let mut c = tls_open(tls, Some("shop.test"), &ClientOpts::verified(&ca));
    let r = c.get("/cart/items?id=7", &[("Host", "shop.test")]);
    expect_status(&r, 200, "TLS request");
    assert_eq!(r.text(), "be");
    assert_eq!(be.request_count(), 1);
    assert_eq!(be.last().target, "/cart/items?id=7");
    // Keep-alive over TLS: a second request on the same connection.
    let r = c.get("/again", &[("Host", "shop.test")]);
    expect_status(&r, 200, "second TLS request");
    assert_eq!(be.request_count(), 2);

    // The same with curl: 301 on plain, 200 over TLS.
    let plain = format!("http://shop.test:{}/p?q=1", halb.addr.port());
    let resolve = format!("shop.test:{}:{}", halb.addr.port(), halb.addr.ip());
    let out = curl(&[
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &plain,
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        out.stdout,
        format!("301 https://shop.test:{}/p?q=1", halb.addr.port()),
        "{out}"
    );
    let out = curl_https(&ca, "shop.test", tls, "/p?q=1", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout, "be\n200", "{out}");
    assert_eq!(be.request_count(), 3);
}

/// `ssl_fc` routes TLS requests to their own backend and gates a header rule;
/// `x_forwarded_proto` says `https` over TLS and `http` over plain (a spoofed value is
/// replaced).
#[test]
fn ssl_fc_and_x_forwarded_proto() {
    let dir = TempDir::new();
    let ca = Ca::new("fc-ca", &dir.path);
    let cert = ca
        .issue(&["fc.test"], Alg::P256, &dir.path)
        .write(&dir.path, "fc.pem");
    let plain_be = HttpBackend::new("plain");
    let tls_be = HttpBackend::new("secure");
    let (halb, tls) = start_tls(
        Conf::http()
            .server("s1", plain_be.addr)
            .frontend("x_forwarded_proto = true")
            .acl("is_tls", "ssl_fc")
            .http_request(&[
                "set_header = { name = \"X-Via-TLS\", value = \"yes\" }",
                "if = \"ssl_fc\"",
            ])
            .use_backend("tlsbe", "is_tls")
            .extra_backend("tlsbe", &[], &[("t1", tls_be.addr)]),
        &[&cert],
        "",
    );
    for i in 0..3 {
        let r = get(
            halb.addr,
            &format!("/plain/{i}"),
            &[("X-Forwarded-Proto", "https")],
        );
        expect_status(&r, 200, "plain");
        assert_eq!(r.server(), "plain", "plain request {i} went to {r}");
        let seen = plain_be.last();
        assert_eq!(seen.header_all("x-forwarded-proto"), ["http"], "{seen:?}");
        assert!(
            !seen.has("x-via-tls"),
            "X-Via-TLS on a plain request: {seen:?}"
        );

        let mut c = tls_open(tls, Some("fc.test"), &ClientOpts::verified(&ca));
        let r = c.get(&format!("/tls/{i}"), &[("X-Forwarded-Proto", "http")]);
        expect_status(&r, 200, "TLS");
        assert_eq!(r.server(), "secure", "TLS request {i} went to {r}");
        let seen = tls_be.last();
        assert_eq!(seen.header_all("x-forwarded-proto"), ["https"], "{seen:?}");
        assert_eq!(seen.header_all("x-via-tls"), ["yes"], "{seen:?}");
    }
    assert_eq!(plain_be.request_count(), 3);
    assert_eq!(tls_be.request_count(), 3);
}

/// A response rule `set_header Strict-Transport-Security if ssl_fc`: on every HTTPS
/// response (a normal one and an error page), never on plain ones.
#[test]
fn hsts_on_https_responses() {
    let dir = TempDir::new();
    let ca = Ca::new("hsts-ca", &dir.path);
    let cert = ca
        .issue(&["hsts.test"], Alg::P256, &dir.path)
        .write(&dir.path, "hsts.pem");
    let be = HttpBackend::new("be");
    let hsts = "max-age=63072000; includeSubDomains";
    let (halb, tls) = start_tls(
        Conf::http().server("s1", be.addr).http_response(&[
            &format!("set_header = {{ name = \"Strict-Transport-Security\", value = \"{hsts}\" }}"),
            "if = \"ssl_fc\"",
        ]),
        &[&cert],
        "",
    );
    let mut c = tls_open(tls, Some("hsts.test"), &ClientOpts::verified(&ca));
    for path in ["/a", "/b"] {
        let r = c.get(path, &[]);
        expect_status(&r, 200, path);
        assert_eq!(r.header_all("strict-transport-security"), [hsts], "{r}");
    }
    let r = get(halb.addr, "/plain", &[]);
    expect_status(&r, 200, "plain");
    assert!(
        !r.has("strict-transport-security"),
        "HSTS on a plain response: {r}"
    );
    let out = curl_https(&ca, "hsts.test", tls, "/curl", &["-D", "-"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .to_ascii_lowercase()
            .contains(&format!("strict-transport-security: {hsts}").to_ascii_lowercase()),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------
// 5. protocol versions
// ---------------------------------------------------------------------------------------

/// TLS 1.1 is refused (curl `--tls-max 1.1` exits 35; a hand-written 1.1 ClientHello
/// gets a protocol_version alert and no ServerHello) and halb keeps serving; TLS 1.2 and
/// 1.3 are served. With `min_version = "1.3"`, TLS 1.2 is refused (curl and rustls).
#[test]
fn old_versions_refused() {
    let dir = TempDir::new();
    let ca = Ca::new("ver-ca", &dir.path);
    let cert = ca
        .issue(&["v.test"], Alg::P256, &dir.path)
        .write(&dir.path, "v.pem");
    let be = HttpBackend::new("be");
    let (_halb, tls) = start_tls(Conf::http().server("s1", be.addr), &[&cert], "");

    let out = curl_https(
        &ca,
        "v.test",
        tls,
        "/old",
        &["--tlsv1.0", "--tls-max", "1.1"],
    );
    assert_eq!(out.code, Some(35), "curl --tls-max 1.1: {out}");
    let reply = send_raw(tls, &tls11_client_hello());
    assert!(
        reply.closed || reply.reset,
        "a TLS 1.1 hello left the connection open: {}",
        show(&reply.bytes, 200)
    );
    let recs = records(&reply.bytes);
    assert!(
        recs.iter().all(|(t, _)| *t == 0x15),
        "a TLS 1.1 hello got more than alerts: {}",
        show(&reply.bytes, 200)
    );
    assert!(
        recs.iter().any(|(_, p)| p.len() == 2 && p[1] == 70),
        "no protocol_version alert for a TLS 1.1 hello: {}",
        show(&reply.bytes, 200)
    );
    assert_eq!(be.request_count(), 0);

    // Still serving: TLS 1.2 (rustls) and 1.3 (default), and curl.
    let tls12 = ClientOpts::verified(&ca).versions(&[&rustls::version::TLS12]);
    let mut c = tls_open(tls, Some("v.test"), &tls12);
    assert_eq!(c.version(), Some(ProtocolVersion::TLSv1_2));
    expect_status(&c.get("/tls12", &[]), 200, "TLS 1.2");
    let mut c = tls_open(tls, Some("v.test"), &ClientOpts::verified(&ca));
    assert_eq!(c.version(), Some(ProtocolVersion::TLSv1_3));
    expect_status(&c.get("/tls13", &[]), 200, "TLS 1.3");
    let out = curl_https(&ca, "v.test", tls, "/after", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.ends_with("\n200"), "{out}");

    // min_version = "1.3".
    let be13 = HttpBackend::new("be13");
    let (_halb13, tls13) = start_tls(
        Conf::http().server("s1", be13.addr),
        &[&cert],
        "min_version = \"1.3\"",
    );
    let out = curl_https(&ca, "v.test", tls13, "/12", &["--tls-max", "1.2"]);
    assert_eq!(
        out.code,
        Some(35),
        "curl --tls-max 1.2 against min_version 1.3: {out}"
    );
    let err = tls_connect(tls13, Some("v.test"), &tls12).err();
    assert!(
        err.is_some(),
        "a TLS 1.2-only rustls client got through min_version 1.3"
    );
    let out = curl_https(&ca, "v.test", tls13, "/13", &["--tlsv1.3"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.ends_with("\n200"), "{out}");
    let c = tls_open(tls13, Some("v.test"), &ClientOpts::verified(&ca));
    assert_eq!(c.version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(
        be13.request_count(),
        1,
        "only the curl TLS 1.3 request was forwarded"
    );
}

// ---------------------------------------------------------------------------------------
// 6-7. stalled handshakes, garbage
// ---------------------------------------------------------------------------------------

/// 20 connections stall in the handshake (8 send nothing, 8 half a ClientHello, 4 trickle
/// it one byte every 250 ms) with `timeouts.http_request = "1s"`: other clients are
/// served meanwhile, and halb closes every stalled one (bounded wait: 10 s).
#[test]
fn stalled_handshakes_are_cut() {
    let dir = TempDir::new();
    let ca = Ca::new("stall-ca", &dir.path);
    let cert = ca
        .issue(&["stall.test"], Alg::P256, &dir.path)
        .write(&dir.path, "s.pem");
    let be = HttpBackend::new("be");
    let (halb, tls) = start_tls(
        Conf::http()
            .server("s1", be.addr)
            .frontend("timeouts = { http_request = \"1s\", client = \"1m\" }"),
        &[&cert],
        "",
    );
    let hello = client_hello("stall.test");
    let start = Instant::now();
    let mut stalled = Vec::new();
    for i in 0..16 {
        let mut s = connect(tls);
        if i % 2 == 1 {
            s.write_all(&hello[..hello.len() / 2]).unwrap();
        }
        stalled.push((if i % 2 == 1 { "half hello" } else { "nothing" }, s));
    }
    // Tricklers: one byte every 250 ms, stopped when halb closes (or after 12 s).
    let trickle_stop = Arc::new(AtomicBool::new(false));
    let mut tricklers = Vec::new();
    for _ in 0..4 {
        let s = connect(tls);
        let mut w = s.try_clone().unwrap();
        let (hello, stop) = (hello.clone(), trickle_stop.clone());
        tricklers.push(thread::spawn(move || {
            for b in hello.iter().take(hello.len() - 1) {
                if stop.load(Ordering::SeqCst) || w.write_all(&[*b]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(250));
            }
        }));
        stalled.push(("trickled hello", s));
    }

    // Served meanwhile: TLS and plain clients.
    for i in 0..5 {
        let (_, r) = tls_get(
            tls,
            Some("stall.test"),
            &ClientOpts::verified(&ca),
            &format!("/during/{i}"),
        );
        expect_status(&r, 200, "TLS during the stall");
        let r = get(halb.addr, &format!("/plain/{i}"), &[]);
        expect_status(&r, 200, "plain during the stall");
    }

    let bound = Duration::from_secs(10);
    let mut open = Vec::new();
    for (i, (kind, s)) in stalled.iter_mut().enumerate() {
        let left = bound
            .saturating_sub(start.elapsed())
            .max(Duration::from_millis(10));
        s.set_read_timeout(Some(left)).unwrap();
        let end = loop {
            match read_end(s) {
                // A trickled hello may draw an alert first; keep reading to the close.
                End::Data(_) => continue,
                e => break e,
            }
        };
        if !end.closed() {
            open.push(format!("#{i} ({kind}): {end:?}"));
        }
    }
    trickle_stop.store(true, Ordering::SeqCst);
    for t in tricklers {
        let _ = t.join();
    }
    assert!(
        open.is_empty(),
        "with timeouts.http_request = 1s these stalled handshakes were still open {bound:?} after they started: {open:#?}"
    );
    assert_eq!(
        be.request_count(),
        10,
        "only the real requests reached the backend"
    );
    // And still serving.
    let (_, r) = tls_get(
        tls,
        Some("stall.test"),
        &ClientOpts::verified(&ca),
        "/after",
    );
    expect_status(&r, 200, "TLS after the stall");
}

/// A plain HTTP request sent to the TLS port instead of a ClientHello: the connection is
/// closed without an HTTP answer, nothing reaches the backend, and halb keeps serving.
#[test]
fn garbage_instead_of_client_hello() {
    let dir = TempDir::new();
    let ca = Ca::new("garbage-ca", &dir.path);
    let cert = ca
        .issue(&["g.test"], Alg::P256, &dir.path)
        .write(&dir.path, "g.pem");
    let be = HttpBackend::new("be");
    let ctl = Control::new();
    let (halb, tls) = start_tls(ctl.apply(Conf::http().server("s1", be.addr)), &[&cert], "");
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: g.test\r\n\r\n"[..],
        &b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\xff"[..],
        &[0u8; 600][..],
    ] {
        let reply = send_raw(tls, garbage);
        assert!(
            reply.closed || reply.reset,
            "garbage {} left the connection open; got {}",
            show(garbage, 40),
            show(&reply.bytes, 200)
        );
        assert!(
            !contains(&reply.bytes, b"HTTP/1."),
            "an HTTP answer to garbage on the TLS port: {}",
            show(&reply.bytes, 200)
        );
    }
    assert_eq!(be.accepted(), 0, "garbage opened a backend connection");
    assert_eq!(be.request_count(), 0);
    // Each failed handshake leaves its access-log line.
    wait_until("three failed handshakes logged", WAIT, || {
        log_lines(&halb, "end=tls_handshake_failed").len() == 3
    });
    let (_, r) = tls_get(tls, Some("g.test"), &ClientOpts::verified(&ca), "/after");
    expect_status(&r, 200, "after garbage");
    assert_eq!(be.request_count(), 1);
    // The frontend's TLS counters (stats JSON and /metrics).
    let stats = ctl.stats();
    wait_until("the handshakes are counted", WAIT, || {
        let c = &stats.frontend("fe")["counters"];
        c["tls_handshake_failures"] == 3 && c["tls_handshakes"] == 1
    });
    let metrics = stats.get("/metrics").text();
    assert!(
        metrics.contains("halb_frontend_tls_handshake_failures_total{proxy=\"fe\"} 3"),
        "{metrics}"
    );
}

// ---------------------------------------------------------------------------------------
// 8. mode tcp
// ---------------------------------------------------------------------------------------

/// `mode tcp` with `tls`: halb terminates and forwards the plaintext to a plain echo
/// server; 5000 bytes and 1 MiB come back exactly.
#[test]
fn tcp_mode_terminates_tls() {
    let dir = TempDir::new();
    let ca = Ca::new("tcp-ca", &dir.path);
    let cert = ca
        .issue(&["tcp.test"], Alg::P256, &dir.path)
        .write(&dir.path, "t.pem");
    let echo = Backend::echo();
    let (_halb, tls) = start_tls(Conf::new().server("echo", echo.addr), &[&cert], "");
    let opts = ClientOpts::verified(&ca);

    let mut c = tls_open(tls, Some("tcp.test"), &opts);
    let small = pattern(5000);
    c.tls.write_all(&small).unwrap();
    c.tls.flush().unwrap();
    let back = c.read_exact_bytes(small.len()).expect("echo of 5000 bytes");
    assert!(back == small, "5000 bytes came back altered");
    // The echo server saw plaintext: a second payload that is plain text.
    c.tls.write_all(b"hello plaintext\n").unwrap();
    assert_eq!(c.read_exact_bytes(16).unwrap(), b"hello plaintext\n");

    let mut c = tls_open(tls, Some("tcp.test"), &opts);
    let big = pattern(MIB as usize);
    let mut back = Vec::with_capacity(big.len());
    for chunk in big.chunks(64 * 1024) {
        c.tls.write_all(chunk).unwrap();
        c.tls.flush().unwrap();
        back.extend(
            c.read_exact_bytes(chunk.len())
                .expect("echo of a 64 KiB chunk"),
        );
    }
    assert_eq!(back.len(), big.len());
    assert!(
        back == big,
        "1 MiB came back altered (first difference at {:?})",
        back.iter().zip(&big).position(|(x, y)| x != y)
    );
    assert!(echo.accepted() >= 2);
}

// ---------------------------------------------------------------------------------------
// 9. TLS to servers
// ---------------------------------------------------------------------------------------

/// Servers with `tls = true`: `verify = "required"` with the right CA and `sni` → 200
/// with the origin's body (and the origin saw the SNI); a CA that did not sign the
/// origin's certificate, or an `sni` the certificate does not carry → 503, logged, no
/// request reached it; `verify = "none"` against a self-signed origin → 200.
#[test]
fn tls_to_servers() {
    let dir = TempDir::new();
    let ca = Ca::new("origin-ca", &dir.path);
    let other_ca = Ca::new("other-ca", &dir.path);
    let origin_leaf = ca.issue(&["backend.test"], Alg::P256, &dir.path);
    let good = TlsOrigin::start("good", &origin_leaf);
    let bad_ca = TlsOrigin::start("badca", &origin_leaf);
    let bad_name = TlsOrigin::start("badname", &origin_leaf);
    let unverified = TlsOrigin::start("unverified", &self_signed(&["whatever.invalid"]));
    let ca_path = toml_str(ca.path.to_str().unwrap());
    let other_path = toml_str(other_ca.path.to_str().unwrap());
    let server = |backend: &str, name: &str, addr: SocketAddr, lines: &[String]| {
        let mut t =
            format!("\n[[backend.{backend}.server]]\nname = \"{name}\"\naddress = \"{addr}\"\n");
        for l in lines {
            t += l;
            t += "\n";
        }
        t
    };
    let conf = Conf::http()
        .server_with(
            "good",
            good.addr,
            &[
                "tls = true",
                "verify = \"required\"",
                &format!("ca_file = {ca_path}"),
                "sni = \"backend.test\"",
            ],
        )
        .acl("to_badca", "path_beg /badca")
        .acl("to_badname", "path_beg /badname")
        .acl("to_none", "path_beg /none")
        .use_backend("b_badca", "to_badca")
        .use_backend("b_badname", "to_badname")
        .use_backend("b_none", "to_none")
        .raw("\n[backend.b_badca]")
        .raw(&server(
            "b_badca",
            "badca",
            bad_ca.addr,
            &[
                "tls = true".into(),
                "verify = \"required\"".into(),
                format!("ca_file = {other_path}"),
                "sni = \"backend.test\"".into(),
            ],
        ))
        .raw("\n[backend.b_badname]")
        .raw(&server(
            "b_badname",
            "badname",
            bad_name.addr,
            &[
                "tls = true".into(),
                format!("ca_file = {ca_path}"),
                "sni = \"other.test\"".into(),
            ],
        ))
        .raw("\n[backend.b_none]")
        .raw(&server(
            "b_none",
            "unverified",
            unverified.addr,
            &["tls = true".into(), "verify = \"none\"".into()],
        ));
    // The reason of a failed connect is logged at debug (halb::l7): ask for it.
    let addr = free_addr();
    let halb = Halb::start_with_env(
        &conf.render(addr),
        addr,
        &[("HALB_LOG", "info,halb::l7=debug")],
    );

    for i in 0..3 {
        let r = get(halb.addr, &format!("/ok/{i}"), &[]);
        expect_status(&r, 200, "verified TLS server");
        assert_eq!(r.text(), format!("good /ok/{i}"), "{r}");
    }
    assert_eq!(good.requests(), 3);
    assert!(
        good.ok() >= 1 && good.failed() == 0,
        "good: {} ok, {} failed",
        good.ok(),
        good.failed()
    );
    assert!(
        good.snis()
            .iter()
            .all(|s| s.as_deref() == Some("backend.test")),
        "SNI seen by the origin: {:?}",
        good.snis()
    );

    for (path, origin) in [("/badca", &bad_ca), ("/badname", &bad_name)] {
        let r = get(halb.addr, path, &[]);
        expect_status(&r, 503, path);
        assert_eq!(
            origin.requests(),
            0,
            "{path}: a request reached an unverified server"
        );
        assert_eq!(
            origin.ok(),
            0,
            "{path}: halb completed a handshake it should have refused"
        );
        // (The origin counts the failure when it reads halb's alert: maybe after the 503.)
        wait_until(
            &format!("{path}: the origin saw a failed handshake"),
            WAIT,
            || origin.failed() >= 1,
        );
    }
    for (path, backend, why) in [
        ("/badca", "b_badca", "UnknownIssuer"),
        ("/badname", "b_badname", "not valid for name"),
    ] {
        let log = halb.wait_access_log(|l| l.line.contains(&format!("GET {path} ")));
        assert_eq!(
            (log.get("status"), log.get("backend"), log.get("end")),
            ("503", backend, "connect_failed"),
            "access log of {path}: {}",
            log.line
        );
        let server = &backend[2..];
        let line = wait_log(&halb, &format!("server {server} ("));
        assert!(
            line.contains("TLS") && line.contains(why),
            "the failed connection to {server} does not say why ({why}): {line}"
        );
    }

    for i in 0..2 {
        let r = get(halb.addr, &format!("/none/{i}"), &[]);
        expect_status(&r, 200, "verify = none");
        assert_eq!(r.text(), format!("unverified /none/{i}"), "{r}");
    }
    assert_eq!(unverified.requests(), 2);
    assert_eq!(good.requests(), 3);
}

// ---------------------------------------------------------------------------------------
// 10. reload
// ---------------------------------------------------------------------------------------

/// Certificate A, a keep-alive TLS connection with one request done; the PEM file is
/// rewritten with certificate B and halb reloaded (ctl, then SIGHUP with C): new
/// connections get the new certificate, the old connection keeps working (still A).
#[test]
fn certificate_reload_keeps_connections() {
    let dir = TempDir::new();
    let ca = Ca::new("reload-ca", &dir.path);
    let a = ca.issue(&["reload.test"], Alg::P256, &dir.path);
    let b = ca.issue(&["reload.test"], Alg::Ed25519, &dir.path);
    let c = ca.issue(&["reload.test"], Alg::P256, &dir.path);
    let path = a.write(&dir.path, "site.pem");
    let be = HttpBackend::new("be");
    let ctl = Control::new();
    let tls = free_addr();
    let conf = ctl.apply(
        Conf::http()
            .server("s1", be.addr)
            .frontend(&tls_line(tls, &[&path], "")),
    );
    let addr = free_addr();
    let halb = Halb::start(&conf.render(addr), addr);
    let opts = ClientOpts::verified(&ca);

    let mut old = tls_open(tls, Some("reload.test"), &opts);
    assert!(old.leaf() == a.der, "before the reload: not certificate A");
    expect_status(
        &old.get("/old/1", &[]),
        200,
        "old connection, first request",
    );

    b.write(&dir.path, "site.pem");
    let out = ctl.ctl_ok(&["reload"]);
    assert!(out.starts_with("ok"), "reload: {out:?}");
    let (served, r) = tls_get(tls, Some("reload.test"), &opts, "/new/1");
    assert!(
        served == b.der,
        "a new connection after the reload was not served certificate B (A: {})",
        served == a.der
    );
    expect_status(&r, 200, "new connection");
    let r = old.get("/old/2", &[]);
    expect_status(&r, 200, "old connection after the reload");
    assert!(old.leaf() == a.der);

    // SIGHUP with C.
    c.write(&dir.path, "site.pem");
    let gen = ctl.ctl_json(&["show", "info"])["generation"]
        .as_u64()
        .unwrap();
    halb.signal("HUP");
    wait_until("the SIGHUP reload", WAIT, || {
        ctl.ctl_json(&["show", "info"])["generation"]
            .as_u64()
            .unwrap()
            > gen
    });
    let (served, r) = tls_get(tls, Some("reload.test"), &opts, "/new/2");
    assert!(
        served == c.der,
        "a new connection after SIGHUP was not served certificate C (B: {})",
        served == b.der
    );
    expect_status(&r, 200, "new connection after SIGHUP");
    let r = old.get("/old/3", &[]);
    expect_status(&r, 200, "old connection after two reloads");
    assert_eq!(be.request_count(), 5);
}

// ---------------------------------------------------------------------------------------
// 11. ALPN
// ---------------------------------------------------------------------------------------

/// ALPN (mode http, default `["http/1.1"]`): a client offering `http/1.1` (alone, or
/// after `h2`) gets `http/1.1`; a client offering only `h2` is refused; a client without
/// ALPN is served. A tcp frontend with `alpn = ["echo/1"]` negotiates it.
#[test]
fn alpn_negotiation() {
    let dir = TempDir::new();
    let ca = Ca::new("alpn-ca", &dir.path);
    let cert = ca
        .issue(&["alpn.test"], Alg::P256, &dir.path)
        .write(&dir.path, "alpn.pem");
    let be = HttpBackend::new("be");
    let (_halb, tls) = start_tls(Conf::http().server("s1", be.addr), &[&cert], "");
    let opts = ClientOpts::verified(&ca);
    for offer in [&["http/1.1"][..], &["h2", "http/1.1"][..]] {
        let mut c = tls_open(tls, Some("alpn.test"), &opts.clone().alpn(offer));
        assert_eq!(
            c.alpn().as_deref(),
            Some(&b"http/1.1"[..]),
            "offer {offer:?}"
        );
        expect_status(&c.get("/alpn", &[]), 200, "ALPN http/1.1");
    }
    let c = tls_open(tls, Some("alpn.test"), &opts);
    assert_eq!(c.alpn(), None, "no ALPN offered, none negotiated");
    assert!(
        tls_connect(tls, Some("alpn.test"), &opts.clone().alpn(&["h2"])).is_err(),
        "a client offering only h2 was accepted"
    );
    // curl offers h2 and http/1.1 by default: gets http/1.1.
    let out = curl_https(&ca, "alpn.test", tls, "/curl", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stderr.contains("ALPN: server accepted http/1.1"),
        "{out}"
    );

    let echo = Backend::echo();
    let (_h2, tls2) = start_tls(
        Conf::new().server("echo", echo.addr),
        &[&cert],
        "alpn = [\"echo/1\"]",
    );
    let mut c = tls_open(
        tls2,
        Some("alpn.test"),
        &opts.clone().alpn(&["other", "echo/1"]),
    );
    assert_eq!(c.alpn().as_deref(), Some(&b"echo/1"[..]));
    c.tls.write_all(b"ping\n").unwrap();
    assert_eq!(c.read_exact_bytes(5).unwrap(), b"ping\n");
}

// ---------------------------------------------------------------------------------------
// 12. Health checks to TLS servers
// ---------------------------------------------------------------------------------------

/// Checks of `tls = true` servers speak TLS with the server's own verification: an HTTP
/// check through a verified handshake keeps the server UP, the same origin checked with
/// the wrong CA goes DOWN with the certificate problem as its reason (and gets no
/// traffic), a TCP check passes on the handshake alone.
#[test]
fn health_checks_to_tls_servers() {
    let dir = TempDir::new();
    let ca = Ca::new("check-ca", &dir.path);
    let other_ca = Ca::new("other-check-ca", &dir.path);
    let leaf = ca.issue(&["backend.test"], Alg::P256, &dir.path);
    let good = TlsOrigin::start("good", &leaf);
    let wrong = TlsOrigin::start("wrong", &leaf);
    let handshake_only = TlsOrigin::start("tcpcheck", &leaf);
    let ca_path = toml_str(ca.path.to_str().unwrap());
    let other_path = toml_str(other_ca.path.to_str().unwrap());
    let ctl = Control::new();
    let halb = ctl
        .apply(
            Conf::http()
                .backend(&http_check(""))
                .server_with(
                    "good",
                    good.addr,
                    &[
                        "check = true",
                        "tls = true",
                        &format!("ca_file = {ca_path}"),
                        "sni = \"backend.test\"",
                    ],
                )
                .server_with(
                    "wrong",
                    wrong.addr,
                    &[
                        "check = true",
                        "tls = true",
                        &format!("ca_file = {other_path}"),
                        "sni = \"backend.test\"",
                    ],
                )
                .server_with(
                    "tcpcheck",
                    handshake_only.addr,
                    &[
                        &format!("check = {{ type = \"tcp\", {FAST_CHECK} }}"),
                        "tls = true",
                        &format!("ca_file = {ca_path}"),
                        "sni = \"backend.test\"",
                    ],
                ),
        )
        .start();
    let stats = ctl.stats();

    let s = stats.wait_state("be", "wrong", "DOWN");
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("TLS handshake failed") && reason.contains("certificate"),
        "the wrong CA should be the reason, got {reason:?}: {s:#}"
    );
    assert_eq!(
        wrong.requests(),
        0,
        "a failed handshake sends no check request"
    );
    wait_until("good is checked over TLS", WAIT, || {
        stats.server("be", "good")["last_check"]
            .as_str()
            .is_some_and(|c| c.contains("L7 status 200"))
    });
    assert_eq!(stats.state("be", "good"), "UP");
    assert!(good.requests() > 0, "the HTTP check reached the origin");
    wait_until("tcpcheck passes on the handshake", WAIT, || {
        stats.server("be", "tcpcheck")["last_check"]
            .as_str()
            .is_some_and(|c| c.contains("TLS handshake ok"))
    });
    assert_eq!(stats.state("be", "tcpcheck"), "UP");

    // Traffic goes to the UP servers only, over TLS.
    for i in 0..6 {
        let r = get(halb.addr, &format!("/t/{i}"), &[]);
        expect_status(&r, 200, "balanced over the UP TLS servers");
        assert!(
            r.text().starts_with("good ") || r.text().starts_with("tcpcheck "),
            "{r}"
        );
    }
}
