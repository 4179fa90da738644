//! rustls configurations from the validated config: a frontend's `ServerConfig` (TLS
//! termination) and a TLS server's `ClientConfig` (TLS to backends).
//!
//! Both sides use the aws-lc-rs provider with its default cipher suites (TLS 1.3: AES-GCM and
//! ChaCha20-Poly1305; TLS 1.2: ECDHE with AES-GCM and ChaCha20-Poly1305 only) and speak
//! TLS 1.2 and 1.3, nothing older.
//!
//! Termination: [`Termination`] holds what a frontend's shards share — the SNI resolver
//! over the loaded certificates and the session-ticket keys (so that a client resumes on
//! whichever shard accepts its next connection) — and [`Termination::shard_config`]
//! builds one shard's `ServerConfig`, with that shard's own stateful session cache (no
//! cross-core locking on resumption).

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{NoServerSessionStorage, ProducesTickets, ServerSessionMemoryCache};
use rustls::{
    ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme, SupportedProtocolVersion,
};

use super::resolver::SniResolver;
use crate::config::{FrontendTls, Mode, ServerTls, TlsVerify, TlsVersion};

/// Why a rustls configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A frontend's `tls` has no certificate (the config validation prevents it).
    #[error("no certificate to serve")]
    NoCertificate,
    /// rustls refused the settings.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// ALPN of an http side when the configuration says nothing: HTTP/1.1, what halb speaks.
pub const HTTP_ALPN: &str = "http/1.1";

/// The protocol versions from `min` up.
pub fn versions(min: TlsVersion) -> &'static [&'static SupportedProtocolVersion] {
    static BOTH: [&SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match min {
        TlsVersion::Tls12 => &BOTH,
        TlsVersion::Tls13 => &TLS13_ONLY,
    }
}

/// The crypto provider of both sides: ring, default cipher suites and key exchanges.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// What every shard of one frontend shares for TLS termination; [`Termination::shard_config`]
/// builds one shard's `ServerConfig`.
pub struct Termination {
    provider: Arc<CryptoProvider>,
    resolver: Arc<SniResolver>,
    /// Ticket keys (rotated every 6 hours), shared by the shards; `None` = tickets off.
    ticketer: Option<Arc<dyn ProducesTickets>>,
    versions: &'static [&'static SupportedProtocolVersion],
    alpn: Vec<Vec<u8>>,
    session_cache: usize,
}

impl std::fmt::Debug for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Termination")
            .field("resolver", &self.resolver)
            .field("tickets", &self.ticketer.is_some())
            .field("versions", &self.versions)
            .field("alpn", &self.alpn)
            .field("session_cache", &self.session_cache)
            .finish()
    }
}

impl Termination {
    /// The shared parts of a frontend's `tls` settings (resolver, ticket keys).
    pub fn new(tls: &FrontendTls) -> Result<Termination, TlsError> {
        let resolver = SniResolver::new(&tls.certs).ok_or(TlsError::NoCertificate)?;
        let ticketer = if tls.session_tickets {
            Some(rustls::crypto::aws_lc_rs::Ticketer::new()?)
        } else {
            None
        };
        Ok(Termination {
            provider: provider(),
            resolver: Arc::new(resolver),
            ticketer,
            versions: versions(tls.min_version),
            alpn: tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect(),
            session_cache: tls.session_cache as usize,
        })
    }

    /// One shard's `ServerConfig`: the shared resolver and ticket keys, a session cache of
    /// its own.
    pub fn shard_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(self.versions)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&self.resolver) as _);
        config.alpn_protocols = self.alpn.clone();
        config.session_storage = if self.session_cache == 0 {
            Arc::new(NoServerSessionStorage {})
        } else {
            ServerSessionMemoryCache::new(self.session_cache)
        };
        if let Some(ticketer) = &self.ticketer {
            config.ticketer = Arc::clone(ticketer);
        } else if self.session_cache == 0 {
            // Neither tickets nor a cache: a TLS 1.3 ticket could never be honoured.
            config.send_tls13_tickets = 0;
        }
        Ok(Arc::new(config))
    }
}

/// The `ClientConfig` halb uses to connect to a server with `tls`: verification per
/// `verify`, ALPN `http/1.1` toward an http backend (`mode`), none toward a tcp one.
pub fn client_config(tls: &ServerTls, mode: Mode) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions(TlsVersion::Tls12))?;
    let mut config = match &tls.verify {
        TlsVerify::Required(ca) => builder
            .with_root_certificates(Arc::clone(&ca.roots))
            .with_no_client_auth(),
        TlsVerify::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(InsecureAcceptAnyCertificate::new(
                &provider,
            )))
            .with_no_client_auth(),
    };
    if mode == Mode::Http {
        config.alpn_protocols = vec![HTTP_ALPN.as_bytes().to_vec()];
    }
    Ok(Arc::new(config))
}

/// The name a connection to the server at `address` is made for: `sni` when set (sent
/// as SNI, and what the certificate must name), else the server's IP address (rustls
/// sends no SNI for an IP address, and a verified certificate must carry it as an IP SAN).
pub fn server_name(tls: &ServerTls, address: SocketAddr) -> ServerName<'static> {
    tls.sni
        .as_deref()
        .and_then(|name| ServerName::try_from(name.to_string()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(address.ip().into()))
}

/// **Insecure**: a certificate verifier that accepts any certificate for any name
/// (`verify = "none"`).
///
/// The handshake signature is still checked against the certificate the server sent, so
/// the traffic is encrypted to whoever holds that certificate's key — but nothing says
/// who that is: an active attacker between halb and the server can impersonate it. Use
/// only on a network you trust, as with HAProxy's `verify none`.
#[derive(Debug)]
pub struct InsecureAcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl InsecureAcceptAnyCertificate {
    /// A verifier checking handshake signatures with `provider`'s algorithms.
    pub fn new(provider: &CryptoProvider) -> InsecureAcceptAnyCertificate {
        InsecureAcceptAnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for InsecureAcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::certs::testing::*;
    use crate::tls::certs::{load_ca_bundle, load_certificate, Certificate};
    use rustls::{ClientConnection, ServerConnection};

    /// Moves bytes between the two ends until neither has anything to write; returns
    /// the error of either side, if any.
    fn handshake(
        client: &mut ClientConnection,
        server: &mut ServerConnection,
    ) -> Result<(), String> {
        for _ in 0..20 {
            let mut progressed = false;
            let mut buf = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                progressed = true;
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    server.read_tls(&mut rd).unwrap();
                }
                server
                    .process_new_packets()
                    .map_err(|e| format!("server: {e}"))?;
            }
            let mut buf = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                progressed = true;
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    client.read_tls(&mut rd).unwrap();
                }
                client
                    .process_new_packets()
                    .map_err(|e| format!("client: {e}"))?;
            }
            if !progressed {
                break;
            }
        }
        if client.is_handshaking() || server.is_handshaking() {
            return Err("handshake did not complete".to_string());
        }
        Ok(())
    }

    fn frontend_tls(certs: Vec<Arc<Certificate>>) -> FrontendTls {
        FrontendTls {
            bind: vec!["127.0.0.1:8443".parse().unwrap()],
            certs,
            alpn: vec![HTTP_ALPN.to_string()],
            min_version: TlsVersion::Tls12,
            session_cache: 100,
            session_tickets: true,
        }
    }

    /// A client trusting every certificate of `trusted` (DER), restricted to `versions`.
    fn client(
        trusted: &[&Generated],
        versions: &[&'static SupportedProtocolVersion],
        alpn: &[&str],
    ) -> Arc<ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for g in trusted {
            roots.add(CertificateDer::from(g.der.clone())).unwrap();
        }
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Arc::new(config)
    }

    fn connect(
        client_config: &Arc<ClientConfig>,
        name: &str,
        server_config: &Arc<ServerConfig>,
    ) -> (ClientConnection, ServerConnection, Result<(), String>) {
        let name = ServerName::try_from(name.to_string()).unwrap();
        let mut c = ClientConnection::new(Arc::clone(client_config), name).unwrap();
        let mut s = ServerConnection::new(Arc::clone(server_config)).unwrap();
        let result = handshake(&mut c, &mut s);
        (c, s, result)
    }

    struct Site {
        _dir: TempDir,
        default: Generated,
        wild: Generated,
        www: Generated,
        tls: FrontendTls,
    }

    fn site() -> Site {
        let dir = TempDir::new("server");
        let default = generate(&["default.example.net"]);
        let wild = generate_with(&["*.example.com"], &rcgen::PKCS_ED25519);
        let www = generate_with(&["www.example.com"], &rcgen::PKCS_ECDSA_P384_SHA384);
        let certs = [(&default, "d.pem"), (&wild, "w.pem"), (&www, "www.pem")]
            .into_iter()
            .map(|(g, f)| Arc::new(load_certificate(&g.write(&dir, f)).unwrap()))
            .collect();
        Site {
            _dir: dir,
            tls: frontend_tls(certs),
            default,
            wild,
            www,
        }
    }

    fn received(c: &ClientConnection) -> Vec<u8> {
        c.peer_certificates().unwrap()[0].as_ref().to_vec()
    }

    #[test]
    fn handshake_picks_the_certificate_by_sni() {
        let s = site();
        let server = Termination::new(&s.tls).unwrap().shard_config().unwrap();
        let all = client(
            &[&s.default, &s.wild, &s.www],
            &[&rustls::version::TLS13],
            &[],
        );
        for (name, want) in [
            ("www.example.com", &s.www),
            ("api.example.com", &s.wild),
            ("default.example.net", &s.default),
        ] {
            let (c, srv, result) = connect(&all, name, &server);
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(received(&c), want.der, "{name}");
            assert_eq!(srv.server_name(), Some(name));
        }
        // An unknown name gets the default certificate (which a verifying client then
        // refuses: it does not name other.org).
        let (_, _, result) = connect(&all, "other.org", &server);
        assert!(result.unwrap_err().contains("client"));
        let insecure = Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(versions(TlsVersion::Tls12))
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(InsecureAcceptAnyCertificate::new(
                    &provider(),
                )))
                .with_no_client_auth(),
        );
        let (c, _, result) = connect(&insecure, "other.org", &server);
        result.unwrap();
        assert_eq!(received(&c), s.default.der);
        // No SNI (an IP address): the default certificate too.
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut c = ClientConnection::new(insecure, ServerName::IpAddress(ip.into())).unwrap();
        let mut srv = ServerConnection::new(Arc::clone(&server)).unwrap();
        handshake(&mut c, &mut srv).unwrap();
        assert_eq!(srv.server_name(), None);
        assert_eq!(received(&c), s.default.der);
    }

    #[test]
    fn tls13_only_refuses_a_tls12_client_and_tls12_works_by_default() {
        let s = site();
        let tls12 = client(&[&s.www], &[&rustls::version::TLS12], &[]);
        let server = Termination::new(&s.tls).unwrap().shard_config().unwrap();
        let (c, _, result) = connect(&tls12, "www.example.com", &server);
        result.expect("TLS 1.2 accepted by default");
        assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));

        let mut only13 = s.tls.clone();
        only13.min_version = TlsVersion::Tls13;
        let server = Termination::new(&only13).unwrap().shard_config().unwrap();
        let (_, _, result) = connect(&tls12, "www.example.com", &server);
        let err = result.unwrap_err();
        assert!(err.contains("server"), "{err}");
    }

    #[test]
    fn alpn_is_negotiated() {
        let s = site();
        let server = Termination::new(&s.tls).unwrap().shard_config().unwrap();
        let both = client(&[&s.www], &[&rustls::version::TLS13], &["h2", "http/1.1"]);
        let (c, srv, result) = connect(&both, "www.example.com", &server);
        result.unwrap();
        assert_eq!(c.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(srv.alpn_protocol(), Some(&b"http/1.1"[..]));

        // A client offering only protocols the frontend does not speak is refused.
        let h2 = client(&[&s.www], &[&rustls::version::TLS13], &["h2"]);
        let (_, _, result) = connect(&h2, "www.example.com", &server);
        assert!(result.is_err());

        // No ALPN configured (mode tcp): nothing negotiated, any client accepted.
        let mut tcp = s.tls.clone();
        tcp.alpn.clear();
        let server = Termination::new(&tcp).unwrap().shard_config().unwrap();
        let (c, _, result) = connect(&h2, "www.example.com", &server);
        result.unwrap();
        assert_eq!(c.alpn_protocol(), None);
    }

    #[test]
    fn shards_share_ticket_keys() {
        let s = site();
        let termination = Termination::new(&s.tls).unwrap();
        let shard1 = termination.shard_config().unwrap();
        let shard2 = termination.shard_config().unwrap();
        assert!(shard1.ticketer.enabled());
        assert!(Arc::ptr_eq(&shard1.ticketer, &shard2.ticketer));
        // Resumption across shards: a TLS 1.2 ticket from shard 1 is accepted by shard 2.
        let c = client(&[&s.www], &[&rustls::version::TLS12], &[]);
        let (_, _, r) = connect(&c, "www.example.com", &shard1);
        r.unwrap();
        let (cc, _, r) = connect(&c, "www.example.com", &shard2);
        r.unwrap();
        assert_eq!(cc.handshake_kind(), Some(rustls::HandshakeKind::Resumed));

        let mut off = s.tls.clone();
        off.session_tickets = false;
        off.session_cache = 0;
        let shard = Termination::new(&off).unwrap().shard_config().unwrap();
        assert!(!shard.ticketer.enabled());
        assert_eq!(shard.send_tls13_tickets, 0);
    }

    /// A server config for `g` alone, as a backend would present it.
    fn backend(g: &Generated, dir: &TempDir, file: &str) -> Arc<ServerConfig> {
        let cert = Arc::new(load_certificate(&g.write(dir, file)).unwrap());
        let mut tls = frontend_tls(vec![cert]);
        tls.alpn = vec!["http/1.1".into()];
        Termination::new(&tls).unwrap().shard_config().unwrap()
    }

    #[test]
    fn client_config_verifies_against_ca_file_and_sni() {
        let dir = TempDir::new("client");
        let good = generate(&["api.internal"]);
        let server = backend(&good, &dir, "good.pem");
        let ca = Arc::new(load_ca_bundle(&dir.write("ca.pem", &good.cert)).unwrap());
        let tls = ServerTls {
            verify: TlsVerify::Required(ca.clone()),
            sni: Some("api.internal".into()),
        };
        let config = client_config(&tls, Mode::Http).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let name = server_name(&tls, "10.0.0.1:443".parse().unwrap());
        assert_eq!(name.to_str(), "api.internal");
        let mut c = ClientConnection::new(Arc::clone(&config), name).unwrap();
        let mut s = ServerConnection::new(Arc::clone(&server)).unwrap();
        handshake(&mut c, &mut s).expect("verified");
        assert_eq!(s.server_name(), Some("api.internal"));

        // The wrong name, or a certificate from another CA, is refused.
        let (_, _, r) = connect(&config, "other.internal", &server);
        assert!(r.unwrap_err().contains("client"));
        let stranger = backend(&generate(&["api.internal"]), &dir, "stranger.pem");
        let (_, _, r) = connect(&config, "api.internal", &stranger);
        assert!(r.is_err());

        // Without sni: the IP address is the name, no SNI is sent.
        let no_sni = ServerTls {
            verify: TlsVerify::Required(ca),
            sni: None,
        };
        assert_eq!(
            server_name(&no_sni, "10.0.0.1:443".parse().unwrap()).to_str(),
            "10.0.0.1"
        );
        assert!(client_config(&no_sni, Mode::Tcp)
            .unwrap()
            .alpn_protocols
            .is_empty());
    }

    #[test]
    fn verify_none_accepts_any_certificate() {
        let dir = TempDir::new("insecure");
        let server = backend(&generate(&["whatever.example"]), &dir, "x.pem");
        let tls = ServerTls {
            verify: TlsVerify::None,
            sni: None,
        };
        let config = client_config(&tls, Mode::Tcp).unwrap();
        let name = server_name(&tls, "192.0.2.7:443".parse().unwrap());
        let mut c = ClientConnection::new(config, name).unwrap();
        let mut s = ServerConnection::new(server).unwrap();
        handshake(&mut c, &mut s).expect("accepted without verification");
    }
}
