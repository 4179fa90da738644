//! The certificate for a handshake, chosen by SNI.
//!
//! Names come from each certificate's SANs (see [`crate::tls::certs`]). A client's server
//! name matches, case-insensitively and without a trailing dot:
//!
//! 1. an exact name (`www.example.com`), else
//! 2. a wildcard covering exactly one label (`*.example.com` matches `a.example.com`, not
//!    `example.com` nor `a.b.example.com`), else
//! 3. the default certificate: the first of the frontend's `certs`. Clients without SNI
//!    (IP literals, old clients) get it too.
//!
//! When several certificates carry the same name (an RSA and an ECDSA one, say), the
//! first whose key can sign with a scheme the client offers wins, so that old clients
//! still get the RSA one; otherwise the first in `certs` order.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use super::certs::Certificate;

/// Chooses a frontend's certificate by SNI: exact names, then one-label wildcards, then
/// the default (first) certificate.
#[derive(Debug)]
pub struct SniResolver {
    /// The first certificate (no SNI, unknown name).
    default: Arc<CertifiedKey>,
    /// Exact names → candidates in `certs` order.
    exact: HashMap<String, Vec<Arc<CertifiedKey>>>,
    /// `*.example.com` stored as `example.com` → candidates in `certs` order.
    wildcard: HashMap<String, Vec<Arc<CertifiedKey>>>,
}

impl SniResolver {
    /// A resolver over `certs`, the first being the default; `None` when `certs` is empty.
    pub fn new(certs: &[Arc<Certificate>]) -> Option<SniResolver> {
        let default = Arc::clone(&certs.first()?.key);
        let mut exact: HashMap<String, Vec<Arc<CertifiedKey>>> = HashMap::new();
        let mut wildcard: HashMap<String, Vec<Arc<CertifiedKey>>> = HashMap::new();
        for cert in certs {
            for name in &cert.names {
                let name = normalize(name);
                let (map, key) = match name.strip_prefix("*.") {
                    Some(parent) if !parent.is_empty() => (&mut wildcard, parent.to_string()),
                    _ => (&mut exact, name),
                };
                let entry = map.entry(key).or_default();
                if !entry.iter().any(|k| Arc::ptr_eq(k, &cert.key)) {
                    entry.push(Arc::clone(&cert.key));
                }
            }
        }
        Some(SniResolver {
            default,
            exact,
            wildcard,
        })
    }

    /// The certificate for a client that sent `server_name` (or none) and offers the
    /// signature `schemes` (empty: no preference).
    pub fn choose(
        &self,
        server_name: Option<&str>,
        schemes: &[SignatureScheme],
    ) -> Arc<CertifiedKey> {
        let Some(name) = server_name.map(normalize).filter(|n| !n.is_empty()) else {
            return Arc::clone(&self.default);
        };
        if let Some(found) = self.exact.get(&name) {
            return pick(found, schemes);
        }
        if let Some((label, parent)) = name.split_once('.') {
            if !label.is_empty() {
                if let Some(found) = self.wildcard.get(parent) {
                    return pick(found, schemes);
                }
            }
        }
        Arc::clone(&self.default)
    }
}

/// Lowercase, without a trailing dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The first candidate that can sign with one of `schemes`, else the first.
fn pick(candidates: &[Arc<CertifiedKey>], schemes: &[SignatureScheme]) -> Arc<CertifiedKey> {
    let usable = candidates
        .iter()
        .find(|k| schemes.is_empty() || k.key.choose_scheme(schemes).is_some());
    Arc::clone(usable.unwrap_or(&candidates[0]))
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.choose(hello.server_name(), hello.signature_schemes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::certs::load_certificate;
    use crate::tls::certs::testing::*;

    fn load(dir: &TempDir, file: &str, names: &[&str]) -> Arc<Certificate> {
        Arc::new(load_certificate(&generate(names).write(dir, file)).expect("loads"))
    }

    #[test]
    fn exact_wildcard_and_default() {
        let dir = TempDir::new("resolver");
        let default = load(&dir, "default.pem", &["default.example.net"]);
        let wild = load(&dir, "wild.pem", &["*.example.com"]);
        let www = load(&dir, "www.pem", &["www.example.com", "example.com"]);
        let r = SniResolver::new(&[default.clone(), wild.clone(), www.clone()]).unwrap();
        let is = |name: Option<&str>, want: &Arc<Certificate>| {
            assert!(
                Arc::ptr_eq(&r.choose(name, &[]), &want.key),
                "{name:?} should get {}",
                want.path.display()
            );
        };
        is(Some("www.example.com"), &www); // exact beats wildcard
        is(Some("WWW.Example.COM."), &www);
        is(Some("example.com"), &www);
        is(Some("api.example.com"), &wild);
        is(Some("a.b.example.com"), &default); // one label only
        is(Some(".example.com"), &default);
        is(Some("other.org"), &default);
        is(Some("default.example.net"), &default);
        is(None, &default);
        is(Some(""), &default);
    }

    #[test]
    fn no_certificates_no_resolver() {
        assert!(SniResolver::new(&[]).is_none());
    }

    #[test]
    fn same_name_prefers_a_key_the_client_can_use() {
        let dir = TempDir::new("schemes");
        let ec = Arc::new(
            load_certificate(
                &generate_with(&["a.example.com"], &rcgen::PKCS_ECDSA_P256_SHA256)
                    .write(&dir, "ec.pem"),
            )
            .unwrap(),
        );
        let ed = Arc::new(
            load_certificate(
                &generate_with(&["a.example.com"], &rcgen::PKCS_ED25519).write(&dir, "ed.pem"),
            )
            .unwrap(),
        );
        let r = SniResolver::new(&[ec.clone(), ed.clone()]).unwrap();
        assert!(Arc::ptr_eq(&r.choose(Some("a.example.com"), &[]), &ec.key));
        assert!(Arc::ptr_eq(
            &r.choose(Some("a.example.com"), &[SignatureScheme::ED25519]),
            &ed.key
        ));
        assert!(Arc::ptr_eq(
            &r.choose(
                Some("a.example.com"),
                &[
                    SignatureScheme::ECDSA_NISTP256_SHA256,
                    SignatureScheme::ED25519
                ]
            ),
            &ec.key
        ));
    }
}
