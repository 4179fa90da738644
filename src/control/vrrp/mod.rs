//! VRRP on the control thread (RFC 5798 v3, RFC 3768 v2): the sans-io protocol core —
//! [`packet`] (advertisements on the wire) and [`machine`] (the state machine of one
//! virtual router) — tested by a deterministic multi-router simulation.

pub mod machine;
pub mod packet;

#[cfg(test)]
mod sim;
