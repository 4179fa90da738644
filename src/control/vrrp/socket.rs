//! The VRRP transport: one raw IP socket of protocol 112 per (interface, family),
//! non-blocking, bound to its interface (`SO_BINDTODEVICE`).
//!
//! IPv4 sends with `IP_HDRINCL` and our own header (as Keepalived does): TOS 0xC0
//! (internetwork control), TTL 255, no fragment flags, id 0. The kernel then always
//! rewrites the total length and the header checksum, and fills in the id (it is 0 here)
//! and the source (when 0). Received IPv4 packets carry their IP header, which [`recv`]
//! checks and strips. IPv6 raw sockets never see the IP header: the source address is set
//! per packet with `IPV6_PKTINFO`, and the destination and hop limit come back as control
//! messages.
//!
//! Multicast loop is off, and `IP_MULTICAST_ALL` / `IPV6_MULTICAST_ALL` are off so a socket
//! receives only the groups *it* joined (Linux's default would hand a unicast-mode socket
//! every group some other socket joined on the interface). IPv6 raw sockets ignore that
//! option, so [`recv`] also skips multicast it did not ask for. Filtering by source (our
//! own unicast to ourselves) is the caller's.
//!
//! [`recv`]: VrrpSocket::recv

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

use super::packet::{checksum, PROTOCOL};
use crate::sys::{self, rawip};

/// The VRRP IPv4 multicast group (RFC 5798 §5.1.1.2).
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// The VRRP IPv6 multicast group, ff02::12 (RFC 5798 §5.1.2.2).
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// TTL / hop limit of every advertisement we send (and the only one we accept).
pub const TTL: u8 = 255;

/// IPv4 type of service of our advertisements: precedence "internetwork control".
pub const TOS: u8 = 0xc0;

/// Length of the IPv4 header we build (no options).
const IPV4_HEADER_LEN: usize = 20;

/// One VRRP packet read by [`VrrpSocket::recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Source address of the IP packet.
    pub src: IpAddr,
    /// Destination address of the IP packet (the group, or one of ours for unicast).
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6) it arrived with.
    pub ttl: u8,
    /// The VRRP message is `buf[..len]` (the IP header, if any, is stripped).
    pub len: usize,
}

/// A raw socket of IP protocol 112 on one interface, for one address family.
#[derive(Debug)]
pub struct VrrpSocket {
    socket: Socket,
    ifindex: u32,
    ipv6: bool,
    multicast: bool,
}

/// Prefix an I/O error with what was being done, keeping its kind.
fn context<'a>(what: &'a str, interface: &'a str) -> impl FnOnce(io::Error) -> io::Error + 'a {
    move |e| io::Error::new(e.kind(), format!("VRRP socket on {interface}: {what}: {e}"))
}

impl VrrpSocket {
    /// Raw socket for IP protocol 112 on `interface` (index `ifindex`): `SO_BINDTODEVICE`,
    /// O_NONBLOCK, close-on-exec, multicast loop off, multicast out of `ifindex`.
    /// IPv4: `IP_HDRINCL`. IPv6: hop limits 255, `IPV6_RECVHOPLIMIT` and `IPV6_RECVPKTINFO`.
    /// With `multicast`, joins 224.0.0.18 / ff02::12 on `ifindex`; without, the socket
    /// receives unicast only. Needs CAP_NET_RAW.
    pub fn open(
        interface: &str,
        ifindex: u32,
        ipv6: bool,
        multicast: bool,
    ) -> io::Result<VrrpSocket> {
        let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
        // socket2 always adds SOCK_CLOEXEC on Linux.
        let socket = Socket::new(
            domain,
            Type::RAW.nonblocking(),
            Some(Protocol::from(i32::from(PROTOCOL))),
        )
        .map_err(context("socket(IPPROTO 112)", interface))?;
        socket
            .bind_device(Some(interface.as_bytes()))
            .map_err(context("SO_BINDTODEVICE", interface))?;
        let fd = socket.as_raw_fd();
        if ipv6 {
            socket
                .set_multicast_hops_v6(u32::from(TTL))
                .map_err(context("IPV6_MULTICAST_HOPS", interface))?;
            socket
                .set_unicast_hops_v6(u32::from(TTL))
                .map_err(context("IPV6_UNICAST_HOPS", interface))?;
            socket
                .set_multicast_loop_v6(false)
                .map_err(context("IPV6_MULTICAST_LOOP", interface))?;
            socket
                .set_multicast_if_v6(ifindex)
                .map_err(context("IPV6_MULTICAST_IF", interface))?;
            match socket.set_multicast_all_v6(false) {
                // Before Linux 4.20 the option does not exist; the default then is "all".
                Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {}
                other => other.map_err(context("IPV6_MULTICAST_ALL", interface))?,
            }
            rawip::set_recv_hoplimit_v6(fd, true)
                .map_err(context("IPV6_RECVHOPLIMIT", interface))?;
            rawip::set_recv_pktinfo_v6(fd, true).map_err(context("IPV6_RECVPKTINFO", interface))?;
            if multicast {
                socket
                    .join_multicast_v6(&GROUP_V6, ifindex)
                    .map_err(context("join ff02::12", interface))?;
            }
        } else {
            socket
                .set_header_included_v4(true)
                .map_err(context("IP_HDRINCL", interface))?;
            socket
                .set_multicast_loop_v4(false)
                .map_err(context("IP_MULTICAST_LOOP", interface))?;
            rawip::set_multicast_if_index_v4(fd, ifindex)
                .map_err(context("IP_MULTICAST_IF", interface))?;
            socket
                .set_multicast_all_v4(false)
                .map_err(context("IP_MULTICAST_ALL", interface))?;
            if multicast {
                socket
                    .join_multicast_v4_n(&GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))
                    .map_err(context("join 224.0.0.18", interface))?;
            }
        }
        Ok(VrrpSocket {
            socket,
            ifindex,
            ipv6,
            multicast,
        })
    }

    /// The descriptor, to await readability on.
    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Send one VRRP message from `src` to `dst` (the group or a unicast peer), both of the
    /// socket's family. IPv4: behind our own IP header. IPv6: with `IPV6_PKTINFO` so that
    /// the source is exactly `src` (the v3 checksum covers it); `src` must be an address of
    /// the box. Never blocks: a full send buffer is `WouldBlock`.
    pub fn send(&self, message: &[u8], src: IpAddr, dst: IpAddr) -> io::Result<()> {
        let sent = match (src, dst, self.ipv6) {
            (IpAddr::V4(s), IpAddr::V4(d), false) => {
                let mut packet = Vec::with_capacity(IPV4_HEADER_LEN + message.len());
                packet.extend_from_slice(&ipv4_header(s, d, message.len())?);
                packet.extend_from_slice(message);
                let to = SockAddr::from(SocketAddrV4::new(d, 0));
                let n = self.socket.send_to(&packet, &to)?;
                n.saturating_sub(IPV4_HEADER_LEN)
            }
            (IpAddr::V6(s), IpAddr::V6(d), true) => {
                rawip::send_v6_from(self.fd(), message, s, d, self.ifindex)?
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "address family does not match the VRRP socket",
                ))
            }
        };
        if sent != message.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "VRRP packet sent short",
            ));
        }
        Ok(())
    }

    /// Read one packet into `buf`, or `Ok(None)` when nothing is queued. The VRRP message
    /// ends up at the front of `buf` (give it room for a whole packet: the interface's
    /// MTU). Packets to a multicast group other than VRRP's, or to VRRP's on a socket
    /// opened without `multicast`, are skipped. A packet whose IPv4 header is malformed,
    /// or that did not fit `buf`, or (IPv6) that came without destination or hop limit,
    /// is consumed and reported as `InvalidData` (the caller counts it and reads on).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        loop {
            let got = if self.ipv6 {
                self.recv_v6(buf)
            } else {
                self.recv_v4(buf)
            };
            return match got {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
                Ok(r) if !self.wanted(r.dst) => continue,
                Ok(r) => Ok(Some(r)),
            };
        }
    }

    /// Whether a packet to `dst` is for this socket: unicast always; multicast only the
    /// VRRP group, and only on a socket that joined it. (An IPv6 raw socket not bound to
    /// an address gets every group joined on the interface whatever IPV6_MULTICAST_ALL
    /// says; IPv4 is already filtered by the kernel.)
    fn wanted(&self, dst: IpAddr) -> bool {
        match dst {
            IpAddr::V4(d) => !d.is_multicast() || (self.multicast && d == GROUP_V4),
            IpAddr::V6(d) => !d.is_multicast() || (self.multicast && d == GROUP_V6),
        }
    }

    fn recv_v4(&self, buf: &mut [u8]) -> io::Result<Received> {
        let n = sys::recv_now(self.fd(), buf)?;
        let h = parse_ipv4(&buf[..n]).map_err(invalid)?;
        buf.copy_within(h.header_len..h.total_len, 0);
        Ok(Received {
            src: IpAddr::V4(h.src),
            dst: IpAddr::V4(h.dst),
            ttl: h.ttl,
            len: h.total_len - h.header_len,
        })
    }

    fn recv_v6(&self, buf: &mut [u8]) -> io::Result<Received> {
        let r = rawip::recv_v6(self.fd(), buf)?;
        if r.truncated {
            return Err(invalid("IPv6 packet larger than the receive buffer"));
        }
        let dst = r
            .dst
            .ok_or_else(|| invalid("IPv6 packet without IPV6_PKTINFO"))?;
        let ttl = r
            .hop_limit
            .ok_or_else(|| invalid("IPv6 packet without IPV6_HOPLIMIT"))?;
        Ok(Received {
            src: IpAddr::V6(r.src),
            dst: IpAddr::V6(dst),
            ttl,
            len: r.len,
        })
    }
}

fn invalid(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Our IPv4 header in front of a VRRP message of `payload` bytes: version 4, IHL 5,
/// TOS 0xC0, id 0 (the kernel picks one), no fragment flags, TTL 255, protocol 112, and a
/// correct checksum (the kernel recomputes it anyway).
fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, payload: usize) -> io::Result<[u8; IPV4_HEADER_LEN]> {
    let total = u16::try_from(IPV4_HEADER_LEN + payload).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "VRRP message too long for IPv4",
        )
    })?;
    let mut h = [0u8; IPV4_HEADER_LEN];
    h[0] = 0x45;
    h[1] = TOS;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    // [4..6] id 0, [6..8] flags/fragment offset 0.
    h[8] = TTL;
    h[9] = PROTOCOL;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&[&h]);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    Ok(h)
}

/// The fields of a received IPv4 header that matter to VRRP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ipv4Header {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    /// IHL × 4: where the VRRP message starts.
    header_len: usize,
    /// The total length field: where it ends.
    total_len: usize,
}

/// Check and parse the IPv4 header at the front of `packet`: version 4, IHL ≥ 5 and within
/// the packet, total length covering the header and within the packet, protocol 112,
/// header checksum.
fn parse_ipv4(packet: &[u8]) -> Result<Ipv4Header, &'static str> {
    if packet.len() < IPV4_HEADER_LEN {
        return Err("truncated IPv4 header");
    }
    if packet[0] >> 4 != 4 {
        return Err("not an IPv4 header");
    }
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    if header_len < IPV4_HEADER_LEN {
        return Err("IPv4 header length below 20");
    }
    if header_len > packet.len() {
        return Err("truncated IPv4 header");
    }
    let total_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if total_len < header_len {
        return Err("IPv4 total length shorter than its header");
    }
    if total_len > packet.len() {
        return Err("truncated IPv4 packet");
    }
    if packet[9] != PROTOCOL {
        return Err("not IP protocol 112");
    }
    if checksum(&[&packet[..header_len]]) != 0 {
        return Err("bad IPv4 header checksum");
    }
    Ok(Ipv4Header {
        src: Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        dst: Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]),
        ttl: packet[8],
        header_len,
        total_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

    fn packet(payload: &[u8]) -> Vec<u8> {
        let mut p = ipv4_header(A, GROUP_V4, payload.len()).unwrap().to_vec();
        p.extend_from_slice(payload);
        p
    }

    /// Recompute the header checksum after a test altered a field.
    fn reseal(p: &mut [u8]) {
        let ihl = usize::from(p[0] & 0x0f) * 4;
        p[10..12].copy_from_slice(&[0, 0]);
        let sum = checksum(&[&p[..ihl]]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
    }

    #[test]
    fn ipv4_header_fields_and_checksum() {
        let h = ipv4_header(A, GROUP_V4, 12).unwrap();
        let mut fields = h;
        fields[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(
            fields,
            [0x45, 0xc0, 0, 32, 0, 0, 0, 0, 255, 112, 0, 0, 10, 99, 0, 1, 224, 0, 0, 18]
        );
        assert_eq!(checksum(&[&h]), 0, "the header checksums to zero");
        // Independently: the one's complement of the sum of the header's 16-bit words.
        let words = [
            0x45c0u32, 0x0020, 0, 0, 0xff70, 0, 0x0a63, 0x0001, 0xe000, 0x0012,
        ];
        let mut s: u32 = words.iter().sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        assert_eq!(u16::from_be_bytes([h[10], h[11]]), !(s as u16));
        assert!(ipv4_header(A, B, 65_535 - 20).is_ok());
        assert_eq!(
            ipv4_header(A, B, 65_535 - 19).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn ipv4_parse_round_trip() {
        let p = packet(b"vrrp message");
        let h = parse_ipv4(&p).unwrap();
        assert_eq!(
            h,
            Ipv4Header {
                src: A,
                dst: GROUP_V4,
                ttl: 255,
                header_len: 20,
                total_len: 32,
            }
        );
        // Options (IHL 6) are skipped; trailing bytes beyond the total length are ignored.
        let mut o = p.clone();
        o.splice(20..20, [1, 1, 1, 0]);
        o[0] = 0x46;
        o[3] = 36;
        reseal(&mut o);
        o.push(0xee);
        let h = parse_ipv4(&o).unwrap();
        assert_eq!((h.header_len, h.total_len), (24, 36));
        assert_eq!(&o[h.header_len..h.total_len], b"vrrp message");
        // Another TTL is reported, not refused (decode refuses it, and counts it).
        let mut t = p.clone();
        t[8] = 64;
        reseal(&mut t);
        assert_eq!(parse_ipv4(&t).unwrap().ttl, 64);
    }

    #[test]
    fn ipv4_parse_rejects() {
        let p = packet(b"vrrp message");
        let bad = |f: &dyn Fn(&mut Vec<u8>), reseal_it: bool| {
            let mut q = p.clone();
            f(&mut q);
            if reseal_it
                && q.len() >= 20
                && (q[0] & 0x0f) >= 5
                && q.len() >= (q[0] as usize & 0x0f) * 4
            {
                reseal(&mut q);
            }
            parse_ipv4(&q).unwrap_err()
        };
        assert_eq!(bad(&|q| q.truncate(19), false), "truncated IPv4 header");
        assert_eq!(bad(&|q| q.clear(), false), "truncated IPv4 header");
        assert_eq!(bad(&|q| q[0] = 0x65, true), "not an IPv4 header");
        assert_eq!(bad(&|q| q[0] = 0x44, false), "IPv4 header length below 20");
        assert_eq!(bad(&|q| q[0] = 0x40, false), "IPv4 header length below 20");
        // IHL 15 = 60 bytes, more than the 32 we have.
        assert_eq!(bad(&|q| q[0] = 0x4f, false), "truncated IPv4 header");
        assert_eq!(
            bad(&|q| q[2..4].copy_from_slice(&[0, 19]), true),
            "IPv4 total length shorter than its header"
        );
        assert_eq!(
            bad(&|q| q[2..4].copy_from_slice(&[0, 33]), true),
            "truncated IPv4 packet"
        );
        assert_eq!(bad(&|q| q.truncate(31), false), "truncated IPv4 packet");
        assert_eq!(bad(&|q| q[9] = 17, true), "not IP protocol 112");
        assert_eq!(bad(&|q| q[12] = 11, false), "bad IPv4 header checksum");
        assert_eq!(bad(&|q| q[10] ^= 1, false), "bad IPv4 header checksum");
    }

    #[test]
    fn groups() {
        assert_eq!(GROUP_V6.to_string(), "ff02::12");
        assert!(GROUP_V4.is_multicast() && GROUP_V6.is_multicast());
    }

    mod netns {
        //! Two "hosts", each a thread in its own network namespace, joined by a veth pair
        //! (v0 in `a`, v1 in `b`). Root only.

        use super::super::*;
        use super::{A, B};
        use crate::control::vrrp::packet::{self, Advert, Auth, Expect, Invalid, Version};
        use std::process::Command;
        use std::sync::mpsc;
        use std::thread;
        use std::time::{Duration, Instant};

        type Job = Box<dyn FnOnce() + Send>;

        /// A thread living in a fresh network namespace, running jobs sent to it.
        struct Ns {
            jobs: Option<mpsc::Sender<Job>>,
            thread: Option<thread::JoinHandle<()>>,
            tid: String,
        }

        impl Ns {
            fn new() -> Ns {
                let (jobs, rx) = mpsc::channel::<Job>();
                let (ready, ready_rx) = mpsc::channel();
                let thread = thread::spawn(move || {
                    crate::sys::unshare_network().expect("unshare(CLONE_NEWNET)");
                    // "/proc/thread-self" -> "PID/task/TID": `ip link set .. netns TID`
                    // moves a device into this thread's namespace.
                    let link = std::fs::read_link("/proc/thread-self").unwrap();
                    let tid = link.file_name().unwrap().to_string_lossy().into_owned();
                    // No duplicate address detection: addresses are usable at once.
                    for conf in ["all", "default"] {
                        let path = format!("/proc/sys/net/ipv6/conf/{conf}/accept_dad");
                        std::fs::write(path, "0").unwrap();
                    }
                    ready.send(tid).unwrap();
                    for job in rx {
                        job();
                    }
                });
                let tid = ready_rx.recv().expect("namespace thread failed");
                Ns {
                    jobs: Some(jobs),
                    thread: Some(thread),
                    tid,
                }
            }

            fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
                let (tx, rx) = mpsc::channel();
                self.jobs
                    .as_ref()
                    .unwrap()
                    .send(Box::new(move || {
                        let _ = tx.send(f());
                    }))
                    .unwrap();
                rx.recv().expect("job in the namespace panicked")
            }

            /// Run `ip ARGS` in the namespace; its output.
            fn ip(&self, args: &str) -> String {
                let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
                self.run(move || {
                    let out = Command::new("ip").args(&args).output().unwrap();
                    assert!(
                        out.status.success(),
                        "ip {}: {}",
                        args.join(" "),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    String::from_utf8(out.stdout).unwrap()
                })
            }

            fn ifindex(&self, dev: &str) -> u32 {
                let out = self.ip(&format!("-o link show dev {dev}"));
                out.split(':').next().unwrap().trim().parse().unwrap()
            }

            fn open(&self, dev: &'static str, ipv6: bool, multicast: bool) -> VrrpSocket {
                let index = self.ifindex(dev);
                self.run(move || VrrpSocket::open(dev, index, ipv6, multicast).unwrap())
            }
        }

        impl Drop for Ns {
            fn drop(&mut self) {
                self.jobs.take();
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
        }

        const A6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xa);
        const B6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xb);

        /// Hosts `a` (v0: 10.99.0.1, fe80::a) and `b` (v1: 10.99.0.2, fe80::b), or None
        /// when not root.
        fn hosts() -> Option<(Ns, Ns)> {
            if crate::sys::current_uid() != 0 {
                eprintln!("skipped: needs root (private network namespaces)");
                return None;
            }
            let a = Ns::new();
            let b = Ns::new();
            a.ip(&format!(
                "link add v0 type veth peer name v1 netns {}",
                b.tid
            ));
            a.ip("addr add 10.99.0.1/24 dev v0");
            a.ip("addr add fe80::a/64 dev v0 nodad");
            b.ip("addr add 10.99.0.2/24 dev v1");
            b.ip("addr add fe80::b/64 dev v1 nodad");
            a.ip("link set v0 up");
            b.ip("link set v1 up");
            let deadline = Instant::now() + Duration::from_secs(5);
            while !(a.ip("link show dev v0").contains("LOWER_UP")
                && b.ip("link show dev v1").contains("LOWER_UP"))
            {
                assert!(Instant::now() < deadline, "veth pair never came up");
                thread::sleep(Duration::from_millis(10));
            }
            Some((a, b))
        }

        fn recv_within(s: &VrrpSocket, buf: &mut [u8], wait: Duration) -> Option<Received> {
            let deadline = Instant::now() + wait;
            loop {
                if let Some(r) = s.recv(buf).unwrap() {
                    return Some(r);
                }
                if Instant::now() >= deadline {
                    return None;
                }
                thread::sleep(Duration::from_millis(5));
            }
        }

        /// Send until the first copy arrives (a link that just came up may drop the very
        /// first frames), then drain stray duplicates; what arrived and its bytes.
        fn exchange(
            from: &VrrpSocket,
            to: &VrrpSocket,
            message: &[u8],
            src: IpAddr,
            dst: IpAddr,
        ) -> (Received, Vec<u8>) {
            let mut buf = [0u8; 2048];
            for _ in 0..40 {
                from.send(message, src, dst).unwrap();
                if let Some(r) = recv_within(to, &mut buf, Duration::from_millis(100)) {
                    let bytes = buf[..r.len].to_vec();
                    while recv_within(to, &mut [0u8; 2048], Duration::from_millis(50)).is_some() {}
                    return (r, bytes);
                }
            }
            panic!("nothing arrived from {src} to {dst}");
        }

        fn advert(version: Version, vip: IpAddr, auth: Auth) -> Advert {
            Advert {
                version,
                vrid: 51,
                priority: 150,
                interval: Duration::from_secs(1),
                addresses: vec![vip],
                auth,
            }
        }

        #[test]
        fn v3_ipv4_multicast_crosses_the_link_and_not_back() {
            let Some((a, b)) = hosts() else { return };
            let sa = a.open("v0", false, true);
            let sb = b.open("v1", false, true);
            // A unicast-mode socket next to it does not get the group (IP_MULTICAST_ALL 0).
            let sb_unicast = b.open("v1", false, false);
            let ad = advert(
                Version::V3,
                IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100)),
                Auth::None,
            );
            let (src, dst) = (IpAddr::V4(A), IpAddr::V4(GROUP_V4));
            let message = ad.encode(src, dst);
            let (r, bytes) = exchange(&sa, &sb, &message, src, dst);
            assert_eq!(
                r,
                Received {
                    src,
                    dst,
                    ttl: 255,
                    len: message.len()
                }
            );
            assert_eq!(bytes, message);
            let expect = Expect {
                version: Version::V3,
                auth: &Auth::None,
            };
            assert_eq!(packet::decode(&bytes, r.src, r.dst, r.ttl, &expect), Ok(ad));
            // Multicast loop is off: the sender never saw its own advertisements.
            let mut buf = [0u8; 2048];
            assert_eq!(sa.recv(&mut buf).unwrap(), None);
            assert_eq!(sb_unicast.recv(&mut buf).unwrap(), None);
            // Positive control: with the loop on, the sender does get its own copy.
            sa.socket.set_multicast_loop_v4(true).unwrap();
            sa.send(&message, src, dst).unwrap();
            let own = recv_within(&sa, &mut buf, Duration::from_secs(1));
            assert_eq!(own.map(|r| (r.src, r.ttl)), Some((src, 255)));
        }

        #[test]
        fn v2_ipv4_multicast_with_password() {
            let Some((a, b)) = hosts() else { return };
            let sa = a.open("v0", false, true);
            let sb = b.open("v1", false, true);
            let auth = Auth::password("secret").unwrap();
            let ad = advert(
                Version::V2,
                IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100)),
                auth.clone(),
            );
            let (src, dst) = (IpAddr::V4(A), IpAddr::V4(GROUP_V4));
            let message = ad.encode(src, dst);
            let (r, bytes) = exchange(&sa, &sb, &message, src, dst);
            assert_eq!((r.src, r.dst, r.ttl), (src, dst, 255));
            let expect = Expect {
                version: Version::V2,
                auth: &auth,
            };
            assert_eq!(packet::decode(&bytes, r.src, r.dst, r.ttl, &expect), Ok(ad));
        }

        #[test]
        fn v3_ipv4_unicast_to_a_peer() {
            let Some((a, b)) = hosts() else { return };
            let sa = a.open("v0", false, false);
            let sb = b.open("v1", false, false);
            let ad = advert(
                Version::V3,
                IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100)),
                Auth::None,
            );
            let (src, dst) = (IpAddr::V4(A), IpAddr::V4(B));
            let message = ad.encode(src, dst);
            let (r, bytes) = exchange(&sa, &sb, &message, src, dst);
            assert_eq!((r.src, r.dst, r.ttl), (src, dst, 255));
            let expect = Expect {
                version: Version::V3,
                auth: &Auth::None,
            };
            assert_eq!(packet::decode(&bytes, r.src, r.dst, r.ttl, &expect), Ok(ad));
            // And back.
            let back = advert(
                Version::V3,
                IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100)),
                Auth::None,
            );
            let m = back.encode(r.dst, r.src);
            let (r2, _) = exchange(&sb, &sa, &m, r.dst, r.src);
            assert_eq!((r2.src, r2.dst), (IpAddr::V4(B), IpAddr::V4(A)));
        }

        #[test]
        fn what_the_kernel_fills_in_our_ipv4_header() {
            let Some((a, b)) = hosts() else { return };
            let sa = a.open("v0", false, false);
            let sb = b.open("v1", false, false);
            // A plain raw socket on b sees the whole IP packet as it arrived.
            let peek = b.run(|| {
                let s = Socket::new(
                    Domain::IPV4,
                    Type::RAW.nonblocking(),
                    Some(Protocol::from(112)),
                )
                .unwrap();
                s.bind_device(Some(b"v1")).unwrap();
                s
            });
            let message =
                advert(Version::V3, IpAddr::V4(B), Auth::None).encode(IpAddr::V4(A), IpAddr::V4(B));
            exchange(&sa, &sb, &message, IpAddr::V4(A), IpAddr::V4(B));
            let mut buf = [0u8; 2048];
            // The exchange already waited for the copy to arrive on b.
            let n = sys::recv_now(peek.as_raw_fd(), &mut buf).expect("peek");
            let p = &buf[..n];
            assert_eq!(n, 20 + message.len());
            assert_eq!(parse_ipv4(p).unwrap().total_len, n);
            assert_eq!(p[1], TOS, "TOS kept");
            assert_eq!(p[8], 255, "TTL kept");
            assert_eq!(&p[6..8], &[0, 0], "no DF, no fragment offset");
            assert_ne!(&p[4..6], &[0, 0], "the kernel picked an IP id");
            eprintln!(
                "kernel-filled IP id: {:#06x}",
                u16::from_be_bytes([p[4], p[5]])
            );
        }

        #[test]
        fn ttl_64_arrives_as_64_and_decode_refuses_it() {
            let Some((a, b)) = hosts() else { return };
            let sb = b.open("v1", false, false);
            // A plain raw socket, no IP_HDRINCL: the kernel writes the header, TTL 64.
            let plain = a.run(|| {
                let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
                s.bind_device(Some(b"v0")).unwrap();
                s.set_ttl(64).unwrap();
                s
            });
            let ad = advert(
                Version::V3,
                IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100)),
                Auth::None,
            );
            let message = ad.encode(IpAddr::V4(A), IpAddr::V4(B));
            let mut buf = [0u8; 2048];
            let mut got = None;
            for _ in 0..40 {
                plain
                    .send_to(&message, &SockAddr::from(SocketAddrV4::new(B, 0)))
                    .unwrap();
                got = recv_within(&sb, &mut buf, Duration::from_millis(100));
                if got.is_some() {
                    break;
                }
            }
            let r = got.expect("nothing arrived");
            assert_eq!((r.src, r.dst, r.ttl), (IpAddr::V4(A), IpAddr::V4(B), 64));
            let expect = Expect {
                version: Version::V3,
                auth: &Auth::None,
            };
            assert_eq!(
                packet::decode(&buf[..r.len], r.src, r.dst, r.ttl, &expect),
                Err(Invalid::Ttl)
            );
            // With TTL 255 the same bytes pass: only the TTL was wrong.
            assert!(packet::decode(&buf[..r.len], r.src, r.dst, 255, &expect).is_ok());
        }

        #[test]
        fn v3_ipv6_multicast_and_unicast() {
            let Some((a, b)) = hosts() else { return };
            let sa = a.open("v0", true, true);
            let sb = b.open("v1", true, true);
            let sb_unicast = b.open("v1", true, false);
            let vip: IpAddr = "fd00::100".parse().unwrap();
            let ad = advert(Version::V3, vip, Auth::None);
            let (src, dst) = (IpAddr::V6(A6), IpAddr::V6(GROUP_V6));
            let message = ad.encode(src, dst);
            let (r, bytes) = exchange(&sa, &sb, &message, src, dst);
            assert_eq!(
                r,
                Received {
                    src,
                    dst,
                    ttl: 255,
                    len: message.len()
                }
            );
            let expect = Expect {
                version: Version::V3,
                auth: &Auth::None,
            };
            assert_eq!(
                packet::decode(&bytes, r.src, r.dst, r.ttl, &expect),
                Ok(ad.clone())
            );
            let mut buf = [0u8; 2048];
            assert_eq!(
                sa.recv(&mut buf).unwrap(),
                None,
                "IPv6 multicast loop is off"
            );
            assert_eq!(
                sb_unicast.recv(&mut buf).unwrap(),
                None,
                "a unicast-mode socket skips the group"
            );
            // Positive control: with the loop on, the sender does get its own copy.
            sa.socket.set_multicast_loop_v6(true).unwrap();
            sa.send(&message, src, dst).unwrap();
            let own = recv_within(&sa, &mut buf, Duration::from_secs(1));
            assert_eq!(
                own.map(|r| r.src),
                Some(src),
                "looped back with the loop on"
            );
            sa.socket.set_multicast_loop_v6(false).unwrap();
            // Unicast to the peer's link-local address.
            let (src, dst) = (IpAddr::V6(A6), IpAddr::V6(B6));
            let message = ad.encode(src, dst);
            let (r, bytes) = exchange(&sa, &sb_unicast, &message, src, dst);
            assert_eq!((r.src, r.dst, r.ttl), (src, dst, 255));
            assert_eq!(packet::decode(&bytes, r.src, r.dst, r.ttl, &expect), Ok(ad));
            // The family must match the socket.
            let err = sa
                .send(&message, IpAddr::V4(A), IpAddr::V4(GROUP_V4))
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }
}
