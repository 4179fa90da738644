//! IP networks (CIDR) for ACLs (`src`) and `forwardfor` `except` lists.
//!
//! Both families are held as IPv6, IPv4 as `::ffff:a.b.c.d`, so an IPv4 pattern also
//! matches an IPv4-mapped client address and `::/0` matches every client (as in HAProxy).

use std::net::{IpAddr, Ipv4Addr};

/// An IP network, both families held as IPv6 (IPv4 as `::ffff:a.b.c.d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: u128,
    mask: u128,
}

impl Cidr {
    /// True if `ip` is inside (an IPv4 client also matches as its IPv4-mapped IPv6 form).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains_bits(bits(ip))
    }

    /// [`Cidr::contains`] for an address already turned into [`bits`] (to test one
    /// address against many networks).
    pub fn contains_bits(&self, ip: u128) -> bool {
        ip & self.mask == self.net
    }

    /// `addr/len`, a bare address (/32 or /128), or an IPv4 `addr/dotted.netmask`. Host
    /// bits under the mask are ignored. The error says what is expected.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        parse_cidr(s)
    }
}

/// An address as 128 bits, IPv4 as `::ffff:a.b.c.d`.
pub fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn prefix_mask(len: u32) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    }
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let bad = || {
        format!(
            "`{s}` is not an IP address or CIDR (expected e.g. 10.0.0.0/8, 192.0.2.1, \
             2001:db8::/32 or ::1)"
        )
    };
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let (bits, max) = match ip {
        IpAddr::V4(_) => (bits(ip), 32u32),
        IpAddr::V6(_) => (bits(ip), 128u32),
    };
    let len = match len {
        None => max,
        Some(l) if l.bytes().all(|b| b.is_ascii_digit()) && !l.is_empty() => {
            let n: u32 = l.parse().map_err(|_| bad())?;
            if n > max {
                return Err(format!("`{s}`: prefix length {n} is larger than {max}"));
            }
            n
        }
        Some(l) if max == 32 && l.contains('.') => {
            let m: Ipv4Addr = l.parse().map_err(|_| bad())?;
            let m = u32::from(m);
            if m.leading_ones() + m.trailing_zeros() != 32 {
                return Err(format!("`{s}`: netmask {l} is not contiguous"));
            }
            m.leading_ones()
        }
        Some(_) => return Err(bad()),
    };
    // IPv4 lives in the last 32 bits of ::ffff:0:0/96.
    let mask = prefix_mask(if max == 32 { len + 96 } else { len });
    Ok(Cidr {
        net: bits & mask,
        mask,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(net: &str, ip: &str) -> bool {
        Cidr::parse(net).unwrap().contains(ip.parse().unwrap())
    }

    #[test]
    fn families_prefixes_and_masks() {
        assert!(has("0.0.0.0/0", "8.8.8.8"));
        assert!(!has("0.0.0.0/0", "::1"));
        assert!(has("::/0", "::1"));
        assert!(has("::/0", "1.2.3.4"), "::/0 covers IPv4 (as IPv4-mapped)");
        assert!(has("10.0.0.0/8", "::ffff:10.1.2.3"));
        assert!(
            has("10.1.2.3/8", "10.200.0.1"),
            "host bits under the mask ignored"
        );
        assert!(has("10.0.0.0/255.0.0.0", "10.9.9.9"));
        assert!(has("192.0.2.1", "192.0.2.1"));
        assert!(!has("192.0.2.1", "192.0.2.2"));
        assert!(has("2001:db8::/32", "2001:db8:ffff::1"));
        assert!(!has("2001:db8::/32", "2001:db9::1"));
    }

    #[test]
    fn bad_networks_say_what_is_expected() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "x/8",
            "1.2.3/8",
        ] {
            let e = Cidr::parse(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        assert!(Cidr::parse("10.0.0.0/255.0.255.0")
            .unwrap_err()
            .contains("contiguous"));
    }
}
