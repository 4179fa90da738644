//! VRRP on the control thread (RFC 5798 v3, RFC 3768 v2).
//!
//! The sans-io protocol core — [`packet`] (advertisements on the wire), [`machine`] (the
//! state machine of one virtual router) and [`track`] (priority and fault from trackers)
//! — is tested by a deterministic multi-router simulation. Around it, [`router`] is the
//! I/O shell: [`socket`] (raw IP protocol 112), [`netlink`] (virtual addresses, link
//! state) and [`announce`] (gratuitous ARP, unsolicited neighbour advertisements).

pub use router::{InstanceReport, Vrrp};

pub mod announce;
pub mod machine;
pub mod netlink;
pub mod packet;
pub mod router;
pub mod socket;
pub mod track;

#[cfg(test)]
mod sim;
