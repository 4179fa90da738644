//! TLS with rustls (aws-lc-rs provider, no OpenSSL): termination on the shards and TLS to
//! backends.
//!
//! - [`certs`]: PEM files (certificate chain + private key) loaded and checked, with the
//!   facts `halb check` reports (names from the SANs, expiry).
//! - [`resolver`]: the certificate for a handshake, chosen by SNI (exact and wildcard
//!   names), with a default for clients without SNI or with an unknown name.
//! - [`server`]: a frontend's rustls `ServerConfig` ([`server::Termination`]: what the
//!   shards share, the ticket keys among it, and one config per shard with its own session
//!   cache), and the `ClientConfig` for TLS to servers.
//! - [`stream`]: a TLS connection driven over a shard's non-blocking [`Socket`], with the
//!   same readiness model as plain sockets ([`stream::Transport`], implemented by both).
//!
//! The data plane carries TLS and plain connections as one [`crate::stream::Stream`]; see
//! `docs/architecture.md` ("TLS") for where the handshakes run and how the shards get
//! their rustls configurations.
//!
//! [`Socket`]: crate::l4::socket::Socket

pub mod certs;
pub mod resolver;
pub mod server;
pub mod stream;
