//! halb: a high-availability load balancer appliance (VRRP + L4/L7 proxy) in one binary.
//!
//! See `docs/architecture.md` for the shape: shards (one glommio executor per core) own
//! connections; one control thread publishes immutable [`snapshot::Snapshot`]s.

pub mod balance;
pub mod config;
pub mod control;
pub mod demo;
pub mod http;
pub mod l4;
pub mod l7;
pub mod logging;
pub mod runtime;
pub mod snapshot;
pub mod stats;
pub mod stream;
pub mod sys;
pub mod tls;
