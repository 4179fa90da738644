//! VRRP advertisements on the wire (sans-io): VRRPv3 (RFC 5798) for IPv4 and IPv6, and
//! VRRPv2 (RFC 3768) with no authentication or the simple text password.
//!
//! [`Advert::encode`] builds the VRRP message (the IP header is the kernel's: a raw socket
//! of protocol 112 with TTL / hop limit 255); [`decode`] validates a received one strictly
//! — version, type, VRID, address count and length, checksum (RFC 5798 §5.2.8: over a
//! pseudo-header for v3), authentication for v2 — and says why it refuses one. The IP-level
//! checks (TTL 255, protocol) are the caller's, who has the IP header.

use std::net::IpAddr;
use std::time::Duration;

/// IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;

/// The only VRRP packet type.
pub const TYPE_ADVERTISEMENT: u8 = 1;

/// Longest VRRPv2 password (RFC 3768 §5.3.6.1: 8 octets, zero-padded).
pub const MAX_PASSWORD: usize = 8;

/// Which protocol version an instance speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// RFC 3768 (IPv4 only; interval in seconds; optional simple password).
    V2,
    /// RFC 5798 (IPv4 and IPv6; interval in centiseconds).
    V3,
}

/// VRRPv2 authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Auth type 0.
    None,
    /// Auth type 1: the 8-octet, zero-padded password.
    Password([u8; MAX_PASSWORD]),
}

impl Auth {
    /// The simple password `text` (at most 8 bytes).
    pub fn password(text: &str) -> Option<Auth> {
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_PASSWORD {
            return None;
        }
        let mut pw = [0u8; MAX_PASSWORD];
        pw[..bytes.len()].copy_from_slice(bytes);
        Some(Auth::Password(pw))
    }
}

/// One advertisement, decoded or to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// Protocol version.
    pub version: Version,
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// Priority: 0 = the master is leaving, 255 = the address owner.
    pub priority: u8,
    /// Advertisement interval (v2: whole seconds; v3: centiseconds, at most 40.95 s).
    pub interval: Duration,
    /// The virtual addresses (all of one family).
    pub addresses: Vec<IpAddr>,
    /// VRRPv2 authentication (always [`Auth::None`] in v3).
    pub auth: Auth,
}

/// Why a received packet is dropped (each kind is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Shorter than its header or than its address count says.
    #[error("truncated packet")]
    Truncated,
    /// Not the version the instance speaks.
    #[error("wrong version")]
    Version,
    /// Not an advertisement.
    #[error("wrong type")]
    Type,
    /// VRID 0.
    #[error("invalid vrid")]
    Vrid,
    /// No address, or a length that does not match the count.
    #[error("bad address count")]
    Count,
    /// The checksum does not match.
    #[error("bad checksum")]
    Checksum,
    /// v2: another authentication type or password than ours.
    #[error("authentication mismatch")]
    Auth,
    /// An interval of 0.
    #[error("invalid advertisement interval")]
    Interval,
    /// IPv6 with VRRPv2.
    #[error("VRRPv2 is IPv4 only")]
    Family,
    /// The IP header's TTL / hop limit is not 255 (checked by the caller).
    #[error("TTL is not 255")]
    Ttl,
}

impl Advert {
    /// The VRRP message (no IP header). `src`/`dst` are the addresses of the IP packet
    /// that carries it (v3 checksums them).
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let v6 = matches!(self.addresses.first(), Some(IpAddr::V6(_)));
        let mut out = Vec::with_capacity(8 + self.addresses.len() * 16 + MAX_PASSWORD);
        let (version, second) = match self.version {
            Version::V2 => (2u8, None),
            Version::V3 => (3u8, Some(())),
        };
        out.push((version << 4) | TYPE_ADVERTISEMENT);
        out.push(self.vrid);
        out.push(self.priority);
        out.push(self.addresses.len() as u8);
        match second {
            None => {
                out.push(match self.auth {
                    Auth::None => 0,
                    Auth::Password(_) => 1,
                });
                out.push(self.interval.as_secs().clamp(1, 255) as u8);
            }
            Some(()) => {
                let cs = (self.interval.as_millis() / 10).clamp(1, 0x0fff) as u16;
                out.extend_from_slice(&cs.to_be_bytes());
            }
        }
        out.extend_from_slice(&[0, 0]); // checksum
        for a in &self.addresses {
            match a {
                IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
                IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
            }
        }
        if self.version == Version::V2 {
            match &self.auth {
                Auth::None => out.extend_from_slice(&[0u8; MAX_PASSWORD]),
                Auth::Password(pw) => out.extend_from_slice(pw),
            }
        }
        let sum = match self.version {
            Version::V2 => checksum(&[&out]),
            Version::V3 => checksum(&[&pseudo_header(src, dst, out.len(), v6), &out]),
        };
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        out
    }
}

/// The RFC 5798 §5.2.8 pseudo-header (RFC 8200 §8.1 for IPv6).
fn pseudo_header(src: IpAddr, dst: IpAddr, len: usize, v6: bool) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) if v6 => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, PROTOCOL]);
        }
        _ => {
            let octets = |a: IpAddr| match a {
                IpAddr::V4(v4) => v4.octets(),
                IpAddr::V6(_) => [0; 4],
            };
            p.extend_from_slice(&octets(src));
            p.extend_from_slice(&octets(dst));
            p.extend_from_slice(&[0, PROTOCOL]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
    }
    p
}

/// The Internet checksum (RFC 1071) of the concatenation of `parts`.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What a receiving instance expects.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    /// Its version.
    pub version: Version,
    /// Its authentication (v2).
    pub auth: &'a Auth,
}

/// Decode and validate the VRRP message `bytes`, received in an IP packet from `src` to
/// `dst` with TTL / hop limit `ttl`.
pub fn decode(
    bytes: &[u8],
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    expect: &Expect<'_>,
) -> Result<Advert, Invalid> {
    if ttl != 255 {
        return Err(Invalid::Ttl);
    }
    if bytes.len() < 8 {
        return Err(Invalid::Truncated);
    }
    let version = match bytes[0] >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        _ => return Err(Invalid::Version),
    };
    if version != expect.version {
        return Err(Invalid::Version);
    }
    if bytes[0] & 0x0f != TYPE_ADVERTISEMENT {
        return Err(Invalid::Type);
    }
    let vrid = bytes[1];
    if vrid == 0 {
        return Err(Invalid::Vrid);
    }
    let priority = bytes[2];
    let count = bytes[3] as usize;
    if count == 0 {
        return Err(Invalid::Count);
    }
    let v6 = src.is_ipv6();
    if v6 && version == Version::V2 {
        return Err(Invalid::Family);
    }
    let width = if v6 { 16 } else { 4 };
    let auth_len = if version == Version::V2 {
        MAX_PASSWORD
    } else {
        0
    };
    let want = 8 + count * width + auth_len;
    if bytes.len() < want {
        return Err(Invalid::Truncated);
    }
    // Trailing bytes beyond the announced addresses (+ v2 auth data) are refused: the
    // count must describe the message.
    if bytes.len() != want {
        return Err(Invalid::Count);
    }
    let sum = match version {
        Version::V2 => checksum(&[bytes]),
        Version::V3 => checksum(&[&pseudo_header(src, dst, bytes.len(), v6), bytes]),
    };
    if sum != 0 {
        return Err(Invalid::Checksum);
    }
    let (interval, auth) = match version {
        Version::V2 => {
            let auth = match bytes[4] {
                0 => Auth::None,
                1 => {
                    let mut pw = [0u8; MAX_PASSWORD];
                    pw.copy_from_slice(&bytes[want - MAX_PASSWORD..want]);
                    Auth::Password(pw)
                }
                _ => return Err(Invalid::Auth),
            };
            if &auth != expect.auth {
                return Err(Invalid::Auth);
            }
            (Duration::from_secs(u64::from(bytes[5])), auth)
        }
        Version::V3 => {
            let cs = u16::from_be_bytes([bytes[4], bytes[5]]) & 0x0fff;
            (Duration::from_millis(u64::from(cs) * 10), Auth::None)
        }
    };
    if interval.is_zero() {
        return Err(Invalid::Interval);
    }
    let mut addresses = Vec::with_capacity(count);
    for i in 0..count {
        let at = 8 + i * width;
        let a = &bytes[at..at + width];
        addresses.push(if v6 {
            let mut o = [0u8; 16];
            o.copy_from_slice(a);
            IpAddr::from(o)
        } else {
            IpAddr::from([a[0], a[1], a[2], a[3]])
        });
    }
    Ok(Advert {
        version,
        vrid,
        priority,
        interval,
        addresses,
        auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const SRC: &str = "10.99.0.11";
    const GROUP: &str = "224.0.0.18";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Keepalived 2.2.7's adverts, captured (`../shared/anchors/README.md`): IP header,
    /// then VRRP.
    const KEEPALIVED_V2: &str = "45c0 0028 0001 0000 ff70 d024 0a63 000b e000 0012 2133 6501 0001 6f03 0a63 0064 0000 0000 0000 0000";
    const KEEPALIVED_V3: &str =
        "45c0 0020 0001 0000 ff70 d02c 0a63 000b e000 0012 3133 6501 000a 73fd 0a63 0064";
    const KEEPALIVED_V2_PRIO0: &str = "45c0 0028 0007 0000 ff70 d01e 0a63 000b e000 0012 2133 0001 0001 d403 0a63 0064 0000 0000 0000 0000";

    #[test]
    fn decodes_keepalived_v2_and_v3() {
        let v2 = hex(KEEPALIVED_V2);
        let a = decode(
            &v2[20..],
            ip(SRC),
            ip(GROUP),
            v2[8],
            &Expect {
                version: Version::V2,
                auth: &Auth::None,
            },
        )
        .unwrap();
        assert_eq!(
            (a.vrid, a.priority, a.interval, a.addresses.clone()),
            (51, 101, Duration::from_secs(1), vec![ip("10.99.0.100")])
        );
        // Our encoding is byte for byte Keepalived's.
        assert_eq!(a.encode(ip(SRC), ip(GROUP)), &v2[20..]);

        let v3 = hex(KEEPALIVED_V3);
        let a = decode(
            &v3[20..],
            ip(SRC),
            ip(GROUP),
            v3[8],
            &Expect {
                version: Version::V3,
                auth: &Auth::None,
            },
        )
        .unwrap();
        assert_eq!(
            (a.vrid, a.priority, a.interval),
            (51, 101, Duration::from_millis(100))
        );
        assert_eq!(a.encode(ip(SRC), ip(GROUP)), &v3[20..]);

        let p0 = hex(KEEPALIVED_V2_PRIO0);
        let a = decode(
            &p0[20..],
            ip(SRC),
            ip(GROUP),
            255,
            &Expect {
                version: Version::V2,
                auth: &Auth::None,
            },
        )
        .unwrap();
        assert_eq!(a.priority, 0);
    }

    #[test]
    fn refuses_invalid_packets() {
        let v3 = hex(KEEPALIVED_V3)[20..].to_vec();
        let expect = Expect {
            version: Version::V3,
            auth: &Auth::None,
        };
        let check = |bytes: &[u8], ttl: u8| decode(bytes, ip(SRC), ip(GROUP), ttl, &expect);
        assert_eq!(check(&v3, 254), Err(Invalid::Ttl));
        assert_eq!(check(&v3[..7], 255), Err(Invalid::Truncated));
        assert_eq!(check(&v3[..10], 255), Err(Invalid::Truncated));
        let mut bad = v3.clone();
        bad[2] = 102; // priority changed, checksum not
        assert_eq!(check(&bad, 255), Err(Invalid::Checksum));
        let mut bad = v3.clone();
        bad[0] = 0x32;
        assert_eq!(check(&bad, 255), Err(Invalid::Type));
        let mut extra = v3.clone();
        extra.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(check(&extra, 255), Err(Invalid::Count));
        // The same packet from another source fails the v3 pseudo-header checksum.
        assert_eq!(
            decode(&v3, ip("10.99.0.12"), ip(GROUP), 255, &expect),
            Err(Invalid::Checksum)
        );
        // A v2 speaker refuses v3.
        assert_eq!(
            decode(
                &v3,
                ip(SRC),
                ip(GROUP),
                255,
                &Expect {
                    version: Version::V2,
                    auth: &Auth::None
                }
            ),
            Err(Invalid::Version)
        );
    }

    #[test]
    fn v2_password_round_trip_and_mismatch() {
        let pw = Auth::password("s3cret").unwrap();
        let advert = Advert {
            version: Version::V2,
            vrid: 7,
            priority: 150,
            interval: Duration::from_secs(1),
            addresses: vec![ip("10.0.0.100"), ip("10.0.0.101")],
            auth: pw.clone(),
        };
        let bytes = advert.encode(ip(SRC), ip(GROUP));
        assert_eq!(bytes.len(), 8 + 2 * 4 + 8);
        let ok = decode(
            &bytes,
            ip(SRC),
            ip(GROUP),
            255,
            &Expect {
                version: Version::V2,
                auth: &pw,
            },
        );
        assert_eq!(ok, Ok(advert));
        let other = Auth::password("other").unwrap();
        for auth in [&Auth::None, &other] {
            assert_eq!(
                decode(
                    &bytes,
                    ip(SRC),
                    ip(GROUP),
                    255,
                    &Expect {
                        version: Version::V2,
                        auth
                    }
                ),
                Err(Invalid::Auth)
            );
        }
        assert!(Auth::password("123456789").is_none());
        assert!(Auth::password("").is_none());
    }

    #[test]
    fn v3_ipv6_round_trip() {
        let src = ip("fe80::1");
        let dst = ip("ff02::12");
        let advert = Advert {
            version: Version::V3,
            vrid: 9,
            priority: 200,
            interval: Duration::from_millis(10),
            addresses: vec![ip("2001:db8::100")],
            auth: Auth::None,
        };
        let bytes = advert.encode(src, dst);
        assert_eq!(bytes.len(), 8 + 16);
        let expect = Expect {
            version: Version::V3,
            auth: &Auth::None,
        };
        assert_eq!(decode(&bytes, src, dst, 255, &expect), Ok(advert));
        assert_eq!(
            decode(&bytes, ip("fe80::2"), dst, 255, &expect),
            Err(Invalid::Checksum)
        );
    }

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 §3: 0001 f203 f4f5 f6f7 sums to ddf2, so the checksum is 220d.
        assert_eq!(checksum(&[&hex("0001f203f4f5f6f7")]), 0x220d);
        // Odd lengths pad with a zero byte, and splitting the input changes nothing.
        assert_eq!(
            checksum(&[&[0x01], &[0x02, 0x03]]),
            checksum(&[&[0x01, 0x02, 0x03]])
        );
    }
}
