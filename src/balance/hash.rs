//! Stable, seed-free hashing for the hashing balancers.
//!
//! The hash must give the same value for the same input on every shard, in every process
//! and across restarts (a client must land on the same server whichever shard accepted it),
//! so it never uses [`std::collections::hash_map::RandomState`]. It is FNV-1a (64 bit)
//! followed by the MurmurHash3 `fmix64` finalizer: FNV-1a alone mixes the last input bytes
//! poorly (IPv4 addresses often differ only in their last octet), the finalizer gives every
//! input bit full avalanche over the 64 output bits.
//!
//! These functions are part of the on-wire behaviour: changing them re-maps every client
//! of a `balance = "source"` backend (and every key of the L7 hashing balancers). A
//! golden-value test pins them.

use std::net::IpAddr;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Streaming FNV-1a with an `fmix64` finalizer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StableHasher(u64);

impl StableHasher {
    /// A hasher in its initial state.
    pub(crate) const fn new() -> Self {
        StableHasher(FNV_OFFSET)
    }

    /// Feeds `bytes`.
    #[inline]
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
        self.0 = h;
    }

    /// The final, well-mixed 64-bit value.
    #[inline]
    pub(crate) fn finish(self) -> u64 {
        fmix64(self.0)
    }
}

/// MurmurHash3's 64-bit finalizer.
#[inline]
const fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Hash of `bytes`.
#[inline]
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = StableHasher::new();
    h.write(bytes);
    h.finish()
}

/// Hash of a client address. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack
/// `[::]` listener reports for IPv4 clients) hashes like the IPv4 address itself, so a client
/// keeps its server whichever listener accepted it.
#[inline]
pub(crate) fn hash_ip(ip: IpAddr) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => hash_bytes(&v4.octets()),
        IpAddr::V6(v6) => hash_bytes(&v6.octets()),
    }
}

/// Hash of virtual node `index` of the server called `name` on a consistent-hash ring.
pub(crate) fn ring_point(name: &str, index: u32) -> u64 {
    let mut h = StableHasher::new();
    h.write(name.as_bytes());
    // A separator byte that cannot occur in UTF-8, so ("a1", 0) and ("a", ..) never collide
    // by concatenation.
    h.write(&[0xff]);
    h.write(&index.to_le_bytes());
    h.finish()
}

/// Maps a well-mixed 64-bit hash onto `0..len` without a division (Lemire's multiply-shift;
/// uses the high bits of `h`). `len` must not be 0.
#[inline]
pub(crate) fn reduce(h: u64, len: usize) -> usize {
    ((u128::from(h) * len as u128) >> 64) as usize
}
