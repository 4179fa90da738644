//! PEM files loaded and checked: a frontend's certificates (chain + private key, with an
//! optional stapled OCSP response) and a backend's CA bundle.
//!
//! A certificate file holds the leaf certificate first, then its intermediates, and
//! exactly one unencrypted private key (PKCS#8, PKCS#1 RSA or SEC1 EC), in any order —
//! HAProxy's `crt` format. The key must be RSA, ECDSA P-256/P-384 or Ed25519 (what the
//! aws-lc-rs provider signs with) and must match the leaf certificate. Following HAProxy, a
//! DER OCSP response in `<file>.ocsp` next to the PEM is stapled.
//!
//! Loading extracts what `halb check` reports: the DNS names of the leaf (its SANs, or its
//! CN when it has no SAN) and its validity period. An expired or not-yet-valid certificate
//! loads (a warning, see [`Certificate::validity_warning`]): refusing to start would turn
//! an expired certificate into an outage of every other site on the frontend.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, SectionKind};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use x509_parser::extensions::GeneralName;

/// The key types the aws-lc-rs provider signs with, for messages.
pub const SUPPORTED_KEYS: &str = "RSA, ECDSA P-256/P-384, Ed25519";

/// Why a PEM file (or its OCSP response) could not be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not PEM text, or a PEM section is broken.
    #[error("{}: not a PEM file: {reason}", path.display())]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No `CERTIFICATE` section.
    #[error("{}: no certificate in the file (expected a -----BEGIN CERTIFICATE----- section)", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// No usable private key section.
    #[error("{}: no private key in the file{hint}", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
        /// Why, when known (e.g. the key is encrypted).
        hint: String,
    },
    /// More than one private key section.
    #[error("{}: {count} private keys in the file: put exactly one, the key of the first certificate", path.display())]
    SeveralKeys {
        /// The file.
        path: PathBuf,
        /// How many keys were found.
        count: usize,
    },
    /// The private key is of a type the aws-lc-rs provider cannot sign with.
    #[error("{}: unsupported private key type (supported: {SUPPORTED_KEYS}): {reason}", path.display())]
    UnsupportedKey {
        /// The file.
        path: PathBuf,
        /// rustls' reason.
        reason: String,
    },
    /// The private key is not the key of the leaf (first) certificate.
    #[error("{}: the private key does not match the certificate (the first certificate of the file must be the one the key belongs to)", path.display())]
    KeyMismatch {
        /// The file.
        path: PathBuf,
    },
    /// A certificate could not be parsed as X.509.
    #[error("{}: certificate #{} is not a valid X.509 certificate: {reason}", path.display(), index + 1)]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// 0-based position of the certificate in the file.
        index: usize,
        /// What the parser said.
        reason: String,
    },
    /// `<pem>.ocsp` exists but cannot be read, or is empty.
    #[error("{}: cannot use the OCSP response: {reason}", path.display())]
    Ocsp {
        /// The `.ocsp` file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A loaded, checked certificate file, ready for the SNI resolver.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The PEM file it was loaded from.
    pub path: PathBuf,
    /// The chain and signing key (and the stapled OCSP response, if any) for rustls.
    pub key: Arc<CertifiedKey>,
    /// DNS names of the leaf, lowercase: its SAN DNS entries, or its subject CN when the
    /// certificate has no SAN at all. May hold wildcards (`*.example.com`).
    pub names: Vec<String>,
    /// Start of the validity period (notBefore), Unix seconds.
    pub not_before: i64,
    /// End of the validity period (notAfter), Unix seconds.
    pub not_after: i64,
}

/// Equal when loaded from the same file with the same contents (enough for config tests).
impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
            && self.key.cert == other.key.cert
            && self.key.ocsp == other.key.ocsp
    }
}

impl Certificate {
    /// The path of the OCSP response stapled with `pem` (`<pem>.ocsp`, HAProxy's convention).
    pub fn ocsp_path(pem: &Path) -> PathBuf {
        let mut s = pem.as_os_str().to_os_string();
        s.push(".ocsp");
        PathBuf::from(s)
    }

    /// Whether an OCSP response is stapled.
    pub fn has_ocsp(&self) -> bool {
        self.key.ocsp.is_some()
    }

    /// A warning when the certificate is not valid at `now` (Unix seconds): expired, or
    /// not valid yet. `None` when it is.
    pub fn validity_warning(&self, now: i64) -> Option<String> {
        if now > self.not_after {
            Some(format!(
                "{}: the certificate expired on {} (clients will refuse it)",
                self.path.display(),
                format_date(self.not_after)
            ))
        } else if now < self.not_before {
            Some(format!(
                "{}: the certificate is not valid before {} (clients will refuse it until then)",
                self.path.display(),
                format_date(self.not_before)
            ))
        } else {
            None
        }
    }
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `YYYY-MM-DD` (UTC) of a Unix time in seconds.
pub fn format_date(unix: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The PEM sections of `bytes`, in order. A file without any PEM section is an error
/// (DER is recognised and named as such).
fn pem_sections(path: &Path, bytes: &[u8]) -> Result<Vec<(SectionKind, Vec<u8>)>, CertError> {
    let not_pem = |reason: String| CertError::NotPem {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader: &[u8] = bytes;
    let mut out = Vec::new();
    loop {
        match pem::from_buf(&mut reader) {
            Ok(Some(section)) => out.push(section),
            Ok(None) => break,
            Err(e) => return Err(not_pem(e.to_string())),
        }
        if reader.fill_buf().map_or(true, |b| b.is_empty()) {
            break;
        }
    }
    if out.is_empty() && !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(not_pem(if bytes.first() == Some(&0x30) {
            "it looks like DER (binary); convert it with `openssl x509 -inform der` / `openssl pkey -inform der`".to_string()
        } else {
            "no -----BEGIN ...----- section found".to_string()
        }));
    }
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads `path`: the certificate chain and its private key, checked, with the stapled
/// OCSP response from `<path>.ocsp` when that file exists.
pub fn load_certificate(path: &Path) -> Result<Certificate, CertError> {
    let bytes = read(path)?;
    let sections = pem_sections(path, &bytes)?;
    let mut chain: Vec<CertificateDer<'static>> = Vec::new();
    let mut keys: Vec<PrivateKeyDer<'static>> = Vec::new();
    for (kind, der) in sections {
        match kind {
            SectionKind::Certificate => chain.push(CertificateDer::from(der)),
            SectionKind::PrivateKey => keys.push(PrivatePkcs8KeyDer::from(der).into()),
            SectionKind::RsaPrivateKey => keys.push(PrivatePkcs1KeyDer::from(der).into()),
            SectionKind::EcPrivateKey => keys.push(PrivateSec1KeyDer::from(der).into()),
            _ => {}
        }
    }
    if chain.is_empty() {
        return Err(CertError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    let key = match keys.len() {
        0 => {
            let hint = if bytes.windows(21).any(|w| w == b"ENCRYPTED PRIVATE KEY")
                || bytes.windows(18).any(|w| w == b"Proc-Type: 4,ENCRY")
            {
                ": the key is encrypted; halb needs it unencrypted (`openssl pkey -in KEY -out KEY.plain`, file mode 0600)".to_string()
            } else {
                " (expected a -----BEGIN PRIVATE KEY----- section after the certificates)"
                    .to_string()
            };
            return Err(CertError::NoPrivateKey {
                path: path.to_path_buf(),
                hint,
            });
        }
        1 => keys.pop().expect("one key"),
        count => {
            return Err(CertError::SeveralKeys {
                path: path.to_path_buf(),
                count,
            })
        }
    };

    // Facts from the leaf, and every certificate of the chain must parse.
    let mut names = Vec::new();
    let (mut not_before, mut not_after) = (0, 0);
    for (index, der) in chain.iter().enumerate() {
        let bad = |reason: String| CertError::BadCertificate {
            path: path.to_path_buf(),
            index,
            reason,
        };
        let (_, cert) =
            x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| bad(e.to_string()))?;
        if index > 0 {
            continue;
        }
        not_before = cert.validity().not_before.timestamp();
        not_after = cert.validity().not_after.timestamp();
        match cert.subject_alternative_name() {
            Ok(Some(san)) => {
                for name in &san.value.general_names {
                    if let GeneralName::DNSName(dns) = name {
                        push_name(&mut names, dns);
                    }
                }
            }
            Ok(None) => {
                if let Some(cn) = cert
                    .subject()
                    .iter_common_name()
                    .next()
                    .and_then(|cn| cn.as_str().ok())
                {
                    push_name(&mut names, cn);
                }
            }
            Err(e) => return Err(bad(format!("bad subjectAltName extension: {e}"))),
        }
    }

    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).map_err(|e| {
        CertError::UnsupportedKey {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    let mut certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(CertError::KeyMismatch {
                path: path.to_path_buf(),
            })
        }
        Err(e) => {
            return Err(CertError::BadCertificate {
                path: path.to_path_buf(),
                index: 0,
                reason: e.to_string(),
            })
        }
    }

    let ocsp_path = Certificate::ocsp_path(path);
    if ocsp_path.exists() {
        let ocsp = std::fs::read(&ocsp_path).map_err(|e| CertError::Ocsp {
            path: ocsp_path.clone(),
            reason: format!("cannot read: {e}"),
        })?;
        if ocsp.is_empty() {
            return Err(CertError::Ocsp {
                path: ocsp_path,
                reason: "the file is empty (expected a DER OCSP response; remove the file to staple nothing)".to_string(),
            });
        }
        certified.ocsp = Some(ocsp);
    }

    Ok(Certificate {
        path: path.to_path_buf(),
        key: Arc::new(certified),
        names,
        not_before,
        not_after,
    })
}

/// Adds a DNS name (lowercase, without a trailing dot) unless it is already there.
fn push_name(names: &mut Vec<String>, name: &str) {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if !name.is_empty() && !names.contains(&name) {
        names.push(name);
    }
}

/// A CA bundle (`ca_file`): the certificates a backend's certificate must chain to.
#[derive(Debug, Clone)]
pub struct CaBundle {
    /// The PEM file it was loaded from.
    pub path: PathBuf,
    /// The trust anchors, for rustls' verifier.
    pub roots: Arc<RootCertStore>,
    /// The certificates as read (DER).
    pub certs: Vec<CertificateDer<'static>>,
}

/// Equal when loaded from the same file with the same certificates.
impl PartialEq for CaBundle {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.certs == other.certs
    }
}

/// Loads a PEM bundle of CA certificates (other sections are ignored); at least one
/// certificate is required and every one must be usable as a trust anchor.
pub fn load_ca_bundle(path: &Path) -> Result<CaBundle, CertError> {
    let bytes = read(path)?;
    let certs: Vec<CertificateDer<'static>> = pem_sections(path, &bytes)?
        .into_iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der))
        .collect();
    if certs.is_empty() {
        return Err(CertError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    let mut roots = RootCertStore::empty();
    for (index, der) in certs.iter().enumerate() {
        roots
            .add(der.clone())
            .map_err(|e| CertError::BadCertificate {
                path: path.to_path_buf(),
                index,
                reason: e.to_string(),
            })?;
    }
    Ok(CaBundle {
        path: path.to_path_buf(),
        roots: Arc::new(roots),
        certs,
    })
}

/// Test helpers: certificates generated with rcgen into a temporary directory.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rcgen::{CertificateParams, KeyPair, SignatureAlgorithm};

    /// A temporary directory, removed on drop.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        /// A fresh directory under the system temp dir.
        pub fn new(label: &str) -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "halb-tls-{label}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        /// Writes `bytes` to `name` in the directory.
        pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, bytes).expect("write file");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A self-signed certificate and its key, as PEM.
    pub struct Generated {
        /// The certificate, PEM.
        pub cert: String,
        /// The private key, PEM (PKCS#8).
        pub key: String,
        /// The certificate, DER.
        pub der: Vec<u8>,
    }

    impl Generated {
        /// Certificate then key, as a halb certificate file.
        pub fn pem(&self) -> String {
            format!("{}{}", self.cert, self.key)
        }

        /// Writes [`Generated::pem`] to `name` in `dir`.
        pub fn write(&self, dir: &TempDir, name: &str) -> PathBuf {
            dir.write(name, self.pem())
        }
    }

    /// A self-signed certificate for `names` with a key of algorithm `alg`.
    pub fn generate_with(names: &[&str], alg: &'static SignatureAlgorithm) -> Generated {
        let key = KeyPair::generate_for(alg).expect("generate key");
        generate_for_key(names, key, |_| {})
    }

    /// A self-signed ECDSA P-256 certificate for `names`.
    pub fn generate(names: &[&str]) -> Generated {
        generate_with(names, &rcgen::PKCS_ECDSA_P256_SHA256)
    }

    /// A self-signed certificate for `names`, with `key`, and `params` adjusted by `edit`.
    pub fn generate_for_key(
        names: &[&str],
        key: KeyPair,
        edit: impl FnOnce(&mut CertificateParams),
    ) -> Generated {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        edit(&mut params);
        let cert = params.self_signed(&key).expect("self-sign");
        Generated {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// An RSA 2048 key (rcgen cannot generate RSA keys with ring: made by openssl when
    /// available, `None` otherwise).
    pub fn rsa_key(dir: &Path) -> Option<KeyPair> {
        let path = dir.join("rsa-key.pem");
        let status = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
        let pem = std::fs::read_to_string(&path).ok()?;
        let _ = std::fs::remove_file(&path);
        KeyPair::from_pem(&pem).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn loads_ecdsa_p256_p384_and_ed25519() {
        let dir = TempDir::new("algs");
        for (alg, label) in [
            (&rcgen::PKCS_ECDSA_P256_SHA256, "p256"),
            (&rcgen::PKCS_ECDSA_P384_SHA384, "p384"),
            (&rcgen::PKCS_ED25519, "ed25519"),
        ] {
            let path = generate_with(&["Www.Example.com", "example.com"], alg)
                .write(&dir, &format!("{label}.pem"));
            let cert = load_certificate(&path).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(cert.names, ["www.example.com", "example.com"], "{label}");
            assert!(cert.validity_warning(unix_now()).is_none(), "{label}");
            assert!(!cert.has_ocsp());
            assert_eq!(cert.key.cert.len(), 1);
        }
    }

    #[test]
    fn loads_rsa() {
        let dir = TempDir::new("rsa");
        // Not skipped when openssl is missing: tests/run-all.sh installs it.
        let key = rsa_key(&dir.0)
            .expect("the openssl binary makes the RSA key (apt-get install openssl)");
        let path = generate_for_key(&["rsa.example.com"], key, |_| {}).write(&dir, "rsa.pem");
        let cert = load_certificate(&path).expect("RSA certificate loads");
        assert_eq!(cert.names, ["rsa.example.com"]);
    }

    #[test]
    fn key_before_certificate_and_a_chain_are_accepted() {
        let dir = TempDir::new("order");
        let leaf = generate(&["a.example.com"]);
        let other = generate(&["ca.example.com"]);
        let path = dir.write("x.pem", format!("{}{}{}", leaf.key, leaf.cert, other.cert));
        let cert = load_certificate(&path).expect("loads");
        assert_eq!(cert.key.cert.len(), 2);
        assert_eq!(cert.names, ["a.example.com"]);
    }

    #[test]
    fn common_name_only_without_sans() {
        let dir = TempDir::new("cn");
        let key = KeyPair::generate().unwrap();
        let g = generate_for_key(&[], key, |p| {
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "Legacy.Example.org");
        });
        let cert = load_certificate(&g.write(&dir, "cn.pem")).expect("loads");
        assert_eq!(cert.names, ["legacy.example.org"]);
    }

    use rcgen::KeyPair;

    fn error_of(path: &Path) -> String {
        match load_certificate(path) {
            Ok(_) => panic!("{} loaded", path.display()),
            Err(e) => {
                let text = e.to_string();
                assert!(text.starts_with(&path.display().to_string()), "{text}");
                text
            }
        }
    }

    #[test]
    fn key_of_another_certificate_is_refused() {
        let dir = TempDir::new("mismatch");
        let a = generate(&["a.example.com"]);
        let b = generate(&["b.example.com"]);
        let path = dir.write("x.pem", format!("{}{}", a.cert, b.key));
        let text = error_of(&path);
        assert!(text.contains("does not match the certificate"), "{text}");
    }

    #[test]
    fn missing_key_several_keys_no_certificate_not_pem_unreadable() {
        let dir = TempDir::new("bad");
        let a = generate(&["a.example.com"]);
        let b = generate(&["b.example.com"]);

        let text = error_of(&dir.write("nokey.pem", &a.cert));
        assert!(text.contains("no private key"), "{text}");

        let text = error_of(&dir.write("twokeys.pem", format!("{}{}{}", a.cert, a.key, b.key)));
        assert!(text.contains("2 private keys"), "{text}");

        let text = error_of(&dir.write("nocert.pem", &a.key));
        assert!(text.contains("no certificate"), "{text}");

        let text = error_of(&dir.write("text.pem", "hello\n"));
        assert!(text.contains("not a PEM file"), "{text}");

        let text = error_of(&dir.write("der.pem", &a.der));
        assert!(text.contains("looks like DER"), "{text}");

        // A section that never ends. (Not followed by the key: the reader would then read
        // on into the key's section, and whether that decodes depends on the random
        // certificate's length, so the message would vary from run to run.)
        let broken = a.cert.replace("-----END CERTIFICATE-----", "");
        let text = error_of(&dir.write("broken.pem", broken));
        assert!(text.contains("not a PEM file"), "{text}");

        let text = error_of(&dir.0.join("missing.pem"));
        assert!(text.contains("cannot read"), "{text}");

        let enc = format!(
            "{}-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            a.cert
        );
        let text = error_of(&dir.write("enc.pem", enc));
        assert!(text.contains("the key is encrypted"), "{text}");
    }

    #[test]
    fn unsupported_key_type_is_named() {
        let dir = TempDir::new("unsupported");
        let a = generate(&["a.example.com"]);
        // A PKCS#8 section that no key provider can load.
        let garbage = "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n";
        let text = error_of(&dir.write("bad.pem", format!("{}{garbage}", a.cert)));
        assert!(text.contains("unsupported private key type"), "{text}");
        assert!(text.contains(SUPPORTED_KEYS), "{text}");
    }

    #[test]
    fn expired_and_future_certificates_load_with_a_warning() {
        let dir = TempDir::new("expired");
        let old = generate_for_key(&["old.example.com"], KeyPair::generate().unwrap(), |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 2, 3);
        });
        let cert = load_certificate(&old.write(&dir, "old.pem")).expect("expired loads");
        let warning = cert.validity_warning(unix_now()).expect("a warning");
        assert!(warning.contains("expired on 2021-02-03"), "{warning}");
        assert!(warning.contains("old.pem"), "{warning}");

        let future = generate_for_key(&["new.example.com"], KeyPair::generate().unwrap(), |p| {
            p.not_before = rcgen::date_time_ymd(2999, 1, 1);
            p.not_after = rcgen::date_time_ymd(3000, 1, 1);
        });
        let cert = load_certificate(&future.write(&dir, "new.pem")).expect("loads");
        let warning = cert.validity_warning(unix_now()).expect("a warning");
        assert!(warning.contains("not valid before 2999-01-01"), "{warning}");
    }

    #[test]
    fn ocsp_response_next_to_the_pem_is_stapled() {
        let dir = TempDir::new("ocsp");
        let path = generate(&["a.example.com"]).write(&dir, "a.pem");
        dir.write("a.pem.ocsp", [0x30, 0x03, 0x0a, 0x01, 0x00]);
        let cert = load_certificate(&path).expect("loads");
        assert_eq!(
            cert.key.ocsp.as_deref(),
            Some(&[0x30, 0x03, 0x0a, 0x01, 0x00][..])
        );

        dir.write("a.pem.ocsp", []);
        let text = error_of(&path);
        assert!(
            text.contains("a.pem.ocsp: cannot use the OCSP response"),
            "{text}"
        );
    }

    #[test]
    fn ca_bundle() {
        let dir = TempDir::new("ca");
        let a = generate(&["a.example.com"]);
        let b = generate(&["b.example.com"]);
        let bundle = load_ca_bundle(&dir.write("ca.pem", format!("{}{}", a.cert, b.cert)))
            .expect("bundle loads");
        assert_eq!(bundle.roots.len(), 2);
        let err = load_ca_bundle(&dir.write("key.pem", &a.key)).unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");
    }

    #[test]
    fn dates() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(951_782_400), "2000-02-29");
        assert_eq!(format_date(1_700_000_000), "2023-11-14");
        assert_eq!(format_date(-86_400), "1969-12-31");
    }
}
