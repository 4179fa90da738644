//! TLS with rustls (ring provider, no OpenSSL): termination on the shards and TLS to
//! backends.
//!
//! - [`certs`]: PEM files (certificate chain + private key) loaded and checked, with the
//!   facts `halb check` reports (names from the SANs, expiry).
//! - [`resolver`]: the certificate for a handshake, chosen by SNI (exact and wildcard
//!   names), with a default for clients without SNI or with an unknown name.
//! - [`server`]: a frontend's rustls `ServerConfig` (versions, ALPN, session resumption).
//! - [`stream`]: a TLS connection driven over a shard's non-blocking [`Socket`]
//!   (`crate::l4::socket::Socket`), with the same readiness model as plain sockets.
//!
//! [`Socket`]: crate::l4::socket::Socket

pub mod certs;
pub mod resolver;
pub mod server;
pub mod stream;
