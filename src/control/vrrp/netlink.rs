//! rtnetlink for VRRP: look an interface up, list / add / remove its addresses (the
//! virtual IPs), and watch links and addresses change — synchronous `NETLINK_ROUTE`
//! requests on the control thread, without running `ip`.
//!
//! The messages (`nlmsghdr`, `ifinfomsg`, `ifaddrmsg`, `rtattr`, 4-byte aligned) are
//! encoded and decoded here by hand and unit-tested; the socket is
//! [`crate::sys::netdev::NetlinkSocket`]. Every request either asks for the kernel's
//! acknowledgement (`NLM_F_ACK`) or reads its reply, and a refusal becomes an
//! [`io::Error`] of the errno's kind whose message names the operation, the address and
//! the interface. Dumps are read until `NLMSG_DONE`.

use crate::sys::netdev::NetlinkSocket;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};

// ---- constants (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h, linux/if_link.h)

const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;

const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_MULTI: u16 = 0x02;
const NLM_F_ACK: u16 = 0x04;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
/// In an `NLMSG_ERROR`: the request was not echoed back (`NETLINK_CAP_ACK`).
const NLM_F_CAPPED: u16 = 0x100;
/// In an `NLMSG_ERROR`: extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
/// IPv4: a secondary address. (For IPv6 the same bit means "temporary".)
const IFA_F_SECONDARY: u32 = 0x01;
/// IPv6: skip duplicate address detection, so the address is usable at once.
const IFA_F_NODAD: u32 = 0x02;
/// Attribute type bits (the top two are NLA_F_NESTED / NLA_F_NET_BYTEORDER).
const NLA_TYPE_MASK: u16 = 0x3fff;

const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const ARPHRD_ETHER: u16 = 1;
const IFF_UP: u32 = 0x1;
const IFF_RUNNING: u32 = 0x40;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_HOST: u8 = 254;

const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// Longest interface name (IFNAMSIZ less the terminating NUL).
const MAX_IFNAME: usize = 15;
/// Receive buffer: more than the largest datagram the kernel builds for a dump.
const RECV_BUFFER: usize = 64 * 1024;

// ---- public types

/// A network interface as `RTM_GETLINK` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address, for Ethernet-like interfaces (`ARPHRD_ETHER`: physical, veth,
    /// VLAN, bond, bridge, macvlan); `None` otherwise (loopback, tunnels).
    pub mac: Option<[u8; 6]>,
    /// Administratively up (`IFF_UP`) and operationally running (`IFF_RUNNING`: carrier
    /// and operstate UP or UNKNOWN) — Keepalived's test for a usable interface.
    pub up: bool,
}

/// One address of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddress {
    /// The local address (`IFA_LOCAL`, else `IFA_ADDRESS`).
    pub address: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// IPv4 only: a secondary address of its subnet (`IFA_F_SECONDARY`); always false
    /// for IPv6, where the same bit means "temporary".
    pub secondary: bool,
}

/// What a [`LinkMonitor`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A link was created or changed (any attribute: not only up/down), or removed
    /// (reported with `up: false`).
    Link {
        /// Interface index.
        index: u32,
        /// Interface name.
        name: String,
        /// As [`Link::up`].
        up: bool,
    },
    /// An address was removed from interface `index`.
    AddressRemoved {
        /// Interface index.
        index: u32,
        /// The address removed.
        address: IpAddr,
    },
    /// An address was added to interface `index`, or its flags or lifetimes changed
    /// (IPv6 reports the end of duplicate address detection this way).
    AddressAdded {
        /// Interface index.
        index: u32,
        /// The address.
        address: IpAddr,
    },
    /// The kernel dropped notifications (the socket's queue overran, `ENOBUFS`): what
    /// is known of links and addresses may be stale; read the state again.
    Overrun,
}

// ---- encoding

/// Round up to the netlink alignment (4 bytes).
fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Builds one netlink message: header, fixed family header, attributes.
struct MessageBuilder {
    buf: Vec<u8>,
}

impl MessageBuilder {
    fn new(ty: u16, flags: u16, seq: u32) -> MessageBuilder {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, set by finish
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it
        MessageBuilder { buf }
    }

    fn pad(&mut self) {
        self.buf.resize(align(self.buf.len()), 0);
    }

    fn ifinfomsg(mut self, family: u8, index: u32, flags: u32) -> Self {
        self.buf.push(family);
        self.buf.push(0); // padding
        self.buf.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // ifi_change
        self
    }

    fn ifaddrmsg(mut self, family: u8, prefix: u8, flags: u8, scope: u8, index: u32) -> Self {
        self.buf.extend_from_slice(&[family, prefix, flags, scope]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self
    }

    fn attr(mut self, ty: u16, payload: &[u8]) -> Self {
        self.pad();
        let len = u16::try_from(4 + payload.len()).expect("netlink attribute too long");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self
    }

    fn finish(mut self) -> Vec<u8> {
        self.pad();
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

fn ip_family(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

fn ip_bytes(address: &IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn encode_get_link_by_name(seq: u32, name: &str) -> Vec<u8> {
    let mut ifname = name.as_bytes().to_vec();
    ifname.push(0);
    MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST, seq)
        .ifinfomsg(AF_UNSPEC, 0, 0)
        .attr(IFLA_IFNAME, &ifname)
        .finish()
}

fn encode_get_link_by_index(seq: u32, index: u32) -> Vec<u8> {
    MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST, seq)
        .ifinfomsg(AF_UNSPEC, index, 0)
        .finish()
}

fn encode_dump_addresses(seq: u32) -> Vec<u8> {
    MessageBuilder::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq)
        .ifaddrmsg(AF_UNSPEC, 0, 0, 0, 0)
        .finish()
}

/// `RTM_NEWADDR` as `ip addr add ADDR/PREFIX dev IFINDEX` sends it (IFA_LOCAL and
/// IFA_ADDRESS both the address), exclusive so that "already there" is `EEXIST`; IPv6
/// gets `IFA_F_NODAD` (in the header and in IFA_FLAGS).
fn encode_new_address(seq: u32, index: u32, address: IpAddr, prefix: u8) -> Vec<u8> {
    let (flags, scope) = match address {
        IpAddr::V4(a) if a.is_loopback() => (0, RT_SCOPE_HOST),
        IpAddr::V4(_) => (0, RT_SCOPE_UNIVERSE),
        // The kernel derives an IPv6 address's scope itself.
        IpAddr::V6(_) => (IFA_F_NODAD, RT_SCOPE_UNIVERSE),
    };
    let bytes = ip_bytes(&address);
    let mut msg = MessageBuilder::new(
        RTM_NEWADDR,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        seq,
    )
    .ifaddrmsg(ip_family(address), prefix, flags as u8, scope, index)
    .attr(IFA_LOCAL, &bytes)
    .attr(IFA_ADDRESS, &bytes);
    if flags != 0 {
        msg = msg.attr(IFA_FLAGS, &flags.to_ne_bytes());
    }
    msg.finish()
}

/// `RTM_DELADDR` for exactly ADDR/PREFIX on IFINDEX (IFA_ADDRESS makes IPv4 match the
/// prefix length too, as `ip addr del` does).
fn encode_del_address(seq: u32, index: u32, address: IpAddr, prefix: u8) -> Vec<u8> {
    let bytes = ip_bytes(&address);
    MessageBuilder::new(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, seq)
        .ifaddrmsg(ip_family(address), prefix, 0, 0, index)
        .attr(IFA_LOCAL, &bytes)
        .attr(IFA_ADDRESS, &bytes)
        .finish()
}

// ---- decoding

/// One netlink message of a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Message<'a> {
    ty: u16,
    flags: u16,
    seq: u32,
    /// After the 16-byte header, up to nlmsg_len.
    payload: &'a [u8],
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed netlink message: {what}"),
    )
}

fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([buf[at], buf[at + 1]])
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Split a datagram into its messages.
fn parse_messages(mut buf: &[u8]) -> io::Result<Vec<Message<'_>>> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32_at(buf, 0) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(invalid("bad nlmsg_len"));
        }
        out.push(Message {
            ty: u16_at(buf, 4),
            flags: u16_at(buf, 6),
            seq: u32_at(buf, 8),
            payload: &buf[NLMSG_HDRLEN..len],
        });
        buf = &buf[align(len).min(buf.len())..];
    }
    Ok(out)
}

/// The attributes of `buf` as (type, payload); stops at the first malformed one.
fn attributes(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16_at(buf, 0) as usize;
        if len < 4 || len > buf.len() {
            return None;
        }
        let item = (u16_at(buf, 2) & NLA_TYPE_MASK, &buf[4..len]);
        buf = &buf[align(len).min(buf.len())..];
        Some(item)
    })
}

/// The error of an `NLMSG_ERROR` message: 0 for an acknowledgement, else the positive
/// errno, with the kernel's extended-ack text when it sent one.
fn parse_error(msg: &Message) -> io::Result<(i32, Option<String>)> {
    if msg.payload.len() < 4 {
        return Err(invalid("short NLMSG_ERROR"));
    }
    let errno = -(u32_at(msg.payload, 0) as i32);
    let mut text = None;
    if msg.flags & NLM_F_ACK_TLVS != 0 && msg.payload.len() >= 4 + NLMSG_HDRLEN {
        let echoed = if msg.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            align(u32_at(msg.payload, 4) as usize)
        };
        if let Some(tlvs) = msg.payload.get(4 + echoed..) {
            text = attributes(tlvs)
                .find(|(ty, _)| *ty == NLMSGERR_ATTR_MSG)
                .map(|(_, v)| c_string(v));
        }
    }
    Ok((errno, text))
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Decode an `RTM_NEWLINK` / `RTM_DELLINK` payload.
fn parse_link(payload: &[u8]) -> io::Result<Link> {
    if payload.len() < IFINFOMSG_LEN {
        return Err(invalid("short ifinfomsg"));
    }
    let ty = u16_at(payload, 2);
    let index = u32_at(payload, 4);
    let flags = u32_at(payload, 8);
    let mut name = None;
    let mut mac = None;
    for (attr, value) in attributes(&payload[IFINFOMSG_LEN..]) {
        match attr {
            IFLA_IFNAME => name = Some(c_string(value)),
            IFLA_ADDRESS if ty == ARPHRD_ETHER && value.len() == 6 => {
                mac = Some(<[u8; 6]>::try_from(value).expect("length checked"))
            }
            _ => {}
        }
    }
    Ok(Link {
        index,
        name: name.ok_or_else(|| invalid("link without IFLA_IFNAME"))?,
        mac,
        up: flags & IFF_UP != 0 && flags & IFF_RUNNING != 0,
    })
}

fn parse_ip(family: u8, bytes: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        AF_INET6 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        _ => None,
    }
}

/// Decode an `RTM_NEWADDR` / `RTM_DELADDR` payload into (interface index, address);
/// `None` for a family other than IPv4 / IPv6.
fn parse_address(payload: &[u8]) -> io::Result<Option<(u32, IfAddress)>> {
    if payload.len() < IFADDRMSG_LEN {
        return Err(invalid("short ifaddrmsg"));
    }
    let family = payload[0];
    let prefix = payload[1];
    let mut flags = payload[2] as u32;
    let index = u32_at(payload, 4);
    if family != AF_INET && family != AF_INET6 {
        return Ok(None);
    }
    let (mut local, mut address) = (None, None);
    for (attr, value) in attributes(&payload[IFADDRMSG_LEN..]) {
        match attr {
            IFA_LOCAL => local = parse_ip(family, value),
            IFA_ADDRESS => address = parse_ip(family, value),
            IFA_FLAGS if value.len() == 4 => flags = u32_at(value, 0),
            _ => {}
        }
    }
    // On a point-to-point link IFA_ADDRESS is the peer's; IFA_LOCAL is always ours.
    let address = local
        .or(address)
        .ok_or_else(|| invalid("address without IFA_ADDRESS"))?;
    let secondary = family == AF_INET && flags & IFA_F_SECONDARY != 0;
    Ok(Some((
        index,
        IfAddress {
            address,
            prefix,
            secondary,
        },
    )))
}

/// Decode one notification for a [`LinkMonitor`].
fn parse_change(msg: &Message) -> io::Result<Option<Change>> {
    Ok(match msg.ty {
        RTM_NEWLINK | RTM_DELLINK => {
            let link = parse_link(msg.payload)?;
            Some(Change::Link {
                index: link.index,
                name: link.name,
                up: link.up && msg.ty == RTM_NEWLINK,
            })
        }
        RTM_NEWADDR => parse_address(msg.payload)?.map(|(index, a)| Change::AddressAdded {
            index,
            address: a.address,
        }),
        RTM_DELADDR => parse_address(msg.payload)?.map(|(index, a)| Change::AddressRemoved {
            index,
            address: a.address,
        }),
        NLMSG_OVERRUN => Some(Change::Overrun),
        _ => None,
    })
}

// ---- requests

/// A `NETLINK_ROUTE` request socket: each call is one synchronous kernel round trip.
#[derive(Debug)]
pub struct Netlink {
    socket: NetlinkSocket,
    seq: u32,
    buf: Vec<u8>,
}

/// How a round trip failed: the kernel refused (errno and its extended-ack text), or the
/// socket did.
enum Failure {
    Kernel(i32, Option<String>),
    Io(io::Error),
}

impl Failure {
    /// An `io::Error` of the errno's kind whose message starts with `context`.
    fn into_error(self, context: &str) -> io::Error {
        match self {
            Failure::Kernel(errno, text) => {
                let os = io::Error::from_raw_os_error(errno);
                let message = match text {
                    Some(text) if !text.is_empty() => format!("{context}: {os} ({text})"),
                    _ => format!("{context}: {os}"),
                };
                io::Error::new(os.kind(), message)
            }
            Failure::Io(e) => io::Error::new(e.kind(), format!("{context}: {e}")),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Io(e)
    }
}

impl Netlink {
    /// Open a request socket (extended acknowledgements on when the kernel has them).
    pub fn open() -> io::Result<Netlink> {
        let socket = NetlinkSocket::open_route(0, false)?;
        // Only makes error messages better: kernels before 4.12 lack it.
        let _ = socket.enable_ext_ack();
        Ok(Netlink {
            socket,
            seq: 0,
            buf: vec![0; RECV_BUFFER],
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Send `request` (numbered `seq`) and read the replies until the exchange ends: an
    /// `NLMSG_ERROR` (0 = acknowledged), `NLMSG_DONE` after a dump, or a single
    /// (non-multipart) reply. Each reply message is handed to `on_reply`; the first error
    /// it returns is kept, but the replies are still read to the end so that none is
    /// left queued. Messages of other sequence numbers (left from an earlier exchange)
    /// and from anyone but the kernel are skipped.
    fn exchange(
        &mut self,
        request: &[u8],
        seq: u32,
        mut on_reply: impl FnMut(&Message) -> io::Result<()>,
    ) -> Result<(), Failure> {
        self.socket.send(request)?;
        let mut kept: Option<io::Error> = None;
        loop {
            let (n, sender) = match self.socket.recv(&mut self.buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Io(e)),
            };
            if sender != 0 {
                continue;
            }
            for msg in parse_messages(&self.buf[..n])? {
                if msg.seq != seq || msg.ty == NLMSG_NOOP {
                    continue;
                }
                match msg.ty {
                    NLMSG_ERROR => {
                        let (errno, text) = parse_error(&msg)?;
                        if errno != 0 {
                            return Err(Failure::Kernel(errno, text));
                        }
                        return kept.map_or(Ok(()), |e| Err(Failure::Io(e)));
                    }
                    NLMSG_DONE => {
                        // A dump that failed part-way says so here.
                        if msg.payload.len() >= 4 {
                            let errno = -(u32_at(msg.payload, 0) as i32);
                            if errno > 0 {
                                return Err(Failure::Kernel(errno, None));
                            }
                        }
                        return kept.map_or(Ok(()), |e| Err(Failure::Io(e)));
                    }
                    _ => {
                        if let Err(e) = on_reply(&msg) {
                            kept.get_or_insert(e);
                        }
                        if msg.flags & NLM_F_MULTI == 0 {
                            return kept.map_or(Ok(()), |e| Err(Failure::Io(e)));
                        }
                    }
                }
            }
        }
    }

    fn get_link(&mut self, request: Vec<u8>, seq: u32) -> Result<Option<Link>, Failure> {
        let mut found = None;
        match self.exchange(&request, seq, |msg| {
            if msg.ty == RTM_NEWLINK {
                found = Some(parse_link(msg.payload)?);
            }
            Ok(())
        }) {
            Ok(()) => Ok(found),
            Err(Failure::Kernel(errno, _)) if errno == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The interface named `name`, or `None` if there is none.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>> {
        if name.is_empty() || name.len() > MAX_IFNAME || name.contains('\0') {
            return Ok(None);
        }
        let seq = self.next_seq();
        self.get_link(encode_get_link_by_name(seq, name), seq)
            .map_err(|e| e.into_error(&format!("looking up interface {name}")))
    }

    /// The interface of index `index`, or `None` if there is none.
    pub fn link_by_index(&mut self, index: u32) -> io::Result<Option<Link>> {
        let seq = self.next_seq();
        self.get_link(encode_get_link_by_index(seq, index), seq)
            .map_err(|e| e.into_error(&format!("looking up interface index {index}")))
    }

    /// "eth0 (index 3)", or "index 3" if the name cannot be had, for error messages.
    fn describe(&mut self, index: u32) -> String {
        match self.link_by_index(index) {
            Ok(Some(link)) => format!("{} (index {index})", link.name),
            _ => format!("index {index}"),
        }
    }

    /// Every IPv4 and IPv6 address of interface `index`, in the kernel's order.
    pub fn addresses(&mut self, index: u32) -> io::Result<Vec<IfAddress>> {
        let seq = self.next_seq();
        let mut out = Vec::new();
        let result = self.exchange(&encode_dump_addresses(seq), seq, |msg| {
            if msg.ty == RTM_NEWADDR {
                if let Some((i, address)) = parse_address(msg.payload)? {
                    if i == index {
                        out.push(address);
                    }
                }
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(out),
            Err(e) => {
                let context = format!("listing the addresses of {}", self.describe(index));
                Err(e.into_error(&context))
            }
        }
    }

    /// Add `address/prefix` to interface `index`; already present is `Ok`. IPv6 gets
    /// `IFA_F_NODAD` so it is usable at once (as Keepalived does).
    pub fn add_address(&mut self, index: u32, address: IpAddr, prefix: u8) -> io::Result<()> {
        let seq = self.next_seq();
        match self.exchange(
            &encode_new_address(seq, index, address, prefix),
            seq,
            |_| Ok(()),
        ) {
            Ok(()) => Ok(()),
            Err(Failure::Kernel(errno, _)) if errno == libc::EEXIST => Ok(()),
            Err(e) => {
                let context = format!("adding {address}/{prefix} on {}", self.describe(index));
                Err(e.into_error(&context))
            }
        }
    }

    /// Remove `address/prefix` from interface `index`; not present is `Ok`.
    ///
    /// Beware the kernel's rule for IPv4: removing the *primary* address of a subnet also
    /// removes its secondaries unless `net.ipv4.conf.IF.promote_secondaries` is 1.
    pub fn remove_address(&mut self, index: u32, address: IpAddr, prefix: u8) -> io::Result<()> {
        let seq = self.next_seq();
        match self.exchange(
            &encode_del_address(seq, index, address, prefix),
            seq,
            |_| Ok(()),
        ) {
            Ok(()) => Ok(()),
            Err(Failure::Kernel(errno, _)) if errno == libc::EADDRNOTAVAIL => Ok(()),
            Err(e) => {
                let context = format!("removing {address}/{prefix} from {}", self.describe(index));
                Err(e.into_error(&context))
            }
        }
    }
}

// ---- notifications

/// A non-blocking socket subscribed to link and address notifications (`RTMGRP_LINK`,
/// `RTMGRP_IPV4_IFADDR`, `RTMGRP_IPV6_IFADDR`): for `track_interface`, and for noticing
/// a virtual address removed behind our back. Register [`LinkMonitor::fd`] for
/// readability and call [`LinkMonitor::drain`] when it is readable.
#[derive(Debug)]
pub struct LinkMonitor {
    socket: NetlinkSocket,
    buf: Vec<u8>,
}

impl LinkMonitor {
    /// Open and subscribe.
    pub fn open() -> io::Result<LinkMonitor> {
        let groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
        let socket = NetlinkSocket::open_route(groups, true)?;
        Ok(LinkMonitor {
            socket,
            buf: vec![0; RECV_BUFFER],
        })
    }

    /// Set the socket's receive buffer (`SO_RCVBUF`, capped by `net.core.rmem_max`):
    /// how much may queue between two [`LinkMonitor::drain`]s before
    /// [`Change::Overrun`]. The default (`net.core.rmem_default`) holds a few hundred
    /// notifications.
    pub fn set_receive_buffer(&self, bytes: usize) -> io::Result<()> {
        self.socket.set_recv_buffer(bytes)
    }

    /// The socket, to wait for readability on.
    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Every notification queued now, in order; never blocks. Lost notifications
    /// (`ENOBUFS`) are reported as [`Change::Overrun`] in their place. Messages the
    /// kernel did not send, and malformed ones, are skipped.
    pub fn drain(&mut self) -> io::Result<Vec<Change>> {
        let mut changes = Vec::new();
        loop {
            let (n, sender) = match self.socket.recv(&mut self.buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(changes),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    if changes.last() != Some(&Change::Overrun) {
                        changes.push(Change::Overrun);
                    }
                    continue;
                }
                Err(e) => return Err(io::Error::new(e.kind(), format!("link monitor: {e}"))),
            };
            if sender != 0 {
                continue;
            }
            let messages = match parse_messages(&self.buf[..n]) {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::debug!("link monitor: {e}");
                    continue;
                }
            };
            for msg in messages {
                match parse_change(&msg) {
                    Ok(Some(change)) => changes.push(change),
                    Ok(None) => {}
                    Err(e) => tracing::debug!("link monitor: {e}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel-style RTM_NEWLINK message for the decoders.
    fn link_message(ty: u16, index: u32, flags: u32, name: &str, mac: [u8; 6]) -> Vec<u8> {
        let mut ifname = name.as_bytes().to_vec();
        ifname.push(0);
        let mut msg = MessageBuilder::new(ty, 0, 0).ifinfomsg(AF_UNSPEC, index, flags);
        msg.buf[NLMSG_HDRLEN + 2..NLMSG_HDRLEN + 4].copy_from_slice(&ARPHRD_ETHER.to_ne_bytes());
        msg.attr(IFLA_IFNAME, &ifname)
            .attr(IFLA_ADDRESS, &mac)
            .finish()
    }

    #[test]
    fn new_address_v4_bytes() {
        let msg = encode_new_address(7, 3, "10.0.0.5".parse().unwrap(), 24);
        let mut expected = Vec::new();
        expected.extend_from_slice(&40u32.to_ne_bytes()); // 16 + 8 + 8 + 8
        expected.extend_from_slice(&RTM_NEWADDR.to_ne_bytes());
        expected.extend_from_slice(&0x0605u16.to_ne_bytes()); // REQUEST|ACK|EXCL|CREATE
        expected.extend_from_slice(&7u32.to_ne_bytes());
        expected.extend_from_slice(&0u32.to_ne_bytes());
        expected.extend_from_slice(&[AF_INET, 24, 0, 0]);
        expected.extend_from_slice(&3u32.to_ne_bytes());
        for ty in [IFA_LOCAL, IFA_ADDRESS] {
            expected.extend_from_slice(&8u16.to_ne_bytes());
            expected.extend_from_slice(&ty.to_ne_bytes());
            expected.extend_from_slice(&[10, 0, 0, 5]);
        }
        assert_eq!(msg, expected);
    }

    #[test]
    fn new_address_v6_has_nodad_and_round_trips() {
        let address: IpAddr = "2001:db8::5".parse().unwrap();
        let msg = encode_new_address(1, 9, address, 64);
        assert_eq!(msg.len() % 4, 0);
        let messages = parse_messages(&msg).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].ty, RTM_NEWADDR);
        assert_eq!(messages[0].seq, 1);
        let payload = messages[0].payload;
        assert_eq!(payload[2] as u32, IFA_F_NODAD);
        let flags: Vec<_> = attributes(&payload[IFADDRMSG_LEN..])
            .filter(|(ty, _)| *ty == IFA_FLAGS)
            .map(|(_, v)| u32_at(v, 0))
            .collect();
        assert_eq!(flags, vec![IFA_F_NODAD]);
        let (index, decoded) = parse_address(payload).unwrap().unwrap();
        assert_eq!(index, 9);
        assert_eq!(
            decoded,
            IfAddress {
                address,
                prefix: 64,
                secondary: false
            }
        );
    }

    #[test]
    fn del_address_round_trips() {
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        let msg = encode_del_address(4, 2, address, 32);
        let messages = parse_messages(&msg).unwrap();
        assert_eq!(messages[0].ty, RTM_DELADDR);
        assert_eq!(messages[0].flags, NLM_F_REQUEST | NLM_F_ACK);
        let change = parse_change(&messages[0]).unwrap();
        assert_eq!(change, Some(Change::AddressRemoved { index: 2, address }));
    }

    #[test]
    fn address_prefers_local_and_reads_secondary() {
        // A point-to-point address: IFA_ADDRESS is the peer, IFA_LOCAL ours; secondary
        // given in IFA_FLAGS (which overrides the 8-bit header field).
        let msg = MessageBuilder::new(RTM_NEWADDR, 0, 0)
            .ifaddrmsg(AF_INET, 24, 0, 0, 5)
            .attr(IFA_ADDRESS, &[10, 0, 0, 2])
            .attr(IFA_LOCAL, &[10, 0, 0, 1])
            .attr(IFA_FLAGS, &(IFA_F_SECONDARY | 0x80).to_ne_bytes())
            .finish();
        let messages = parse_messages(&msg).unwrap();
        let (index, a) = parse_address(messages[0].payload).unwrap().unwrap();
        assert_eq!(index, 5);
        assert_eq!(a.address, IpAddr::from([10, 0, 0, 1]));
        assert!(a.secondary);
        // Other families are not addresses of ours.
        let msg = MessageBuilder::new(RTM_NEWADDR, 0, 0)
            .ifaddrmsg(17, 0, 0, 0, 5)
            .finish();
        assert_eq!(
            parse_address(parse_messages(&msg).unwrap()[0].payload).unwrap(),
            None
        );
    }

    #[test]
    fn get_link_by_name_round_trips_the_name() {
        let msg = encode_get_link_by_name(3, "eth0");
        // 16 + 16 + attribute header 4 + "eth0\0" 5, padded to 12.
        assert_eq!(msg.len(), 44);
        assert_eq!(u32_at(&msg, 0), 44);
        let messages = parse_messages(&msg).unwrap();
        assert_eq!(messages[0].flags, NLM_F_REQUEST);
        let attrs: Vec<_> = attributes(&messages[0].payload[IFINFOMSG_LEN..]).collect();
        assert_eq!(attrs, vec![(IFLA_IFNAME, &b"eth0\0"[..])]);
    }

    #[test]
    fn link_decodes_flags_mac_and_name() {
        let mac = [0x02, 0, 0, 0, 0, 0x11];
        let running = IFF_UP | IFF_RUNNING | 0x10000;
        let msg = link_message(RTM_NEWLINK, 4, running, "veth-a", mac);
        let link = parse_link(parse_messages(&msg).unwrap()[0].payload).unwrap();
        assert_eq!(
            link,
            Link {
                index: 4,
                name: "veth-a".into(),
                mac: Some(mac),
                up: true
            }
        );
        // Up but no carrier, and a removed link, are not up.
        let msg = link_message(RTM_NEWLINK, 4, IFF_UP, "veth-a", mac);
        assert!(
            !parse_link(parse_messages(&msg).unwrap()[0].payload)
                .unwrap()
                .up
        );
        let msg = link_message(RTM_DELLINK, 4, running, "veth-a", mac);
        let change = parse_change(&parse_messages(&msg).unwrap()[0]).unwrap();
        assert_eq!(
            change,
            Some(Change::Link {
                index: 4,
                name: "veth-a".into(),
                up: false
            })
        );
    }

    #[test]
    fn multipart_datagram_splits_and_rejects_bad_lengths() {
        let mut datagram = link_message(RTM_NEWLINK, 1, 0, "lo", [0; 6]);
        datagram.extend(link_message(RTM_NEWLINK, 2, 0, "eth0", [1; 6]));
        datagram.extend(MessageBuilder::new(NLMSG_DONE, NLM_F_MULTI, 0).finish());
        let messages = parse_messages(&datagram).unwrap();
        assert_eq!(
            messages.iter().map(|m| m.ty).collect::<Vec<_>>(),
            [16, 16, NLMSG_DONE]
        );
        datagram[0] = 0xff; // nlmsg_len past the end
        assert!(parse_messages(&datagram).is_err());
    }

    #[test]
    fn error_message_with_extended_ack() {
        // NLMSG_ERROR, capped (request header only), with an NLMSGERR_ATTR_MSG.
        let mut payload = (-libc::EINVAL).to_ne_bytes().to_vec();
        payload.extend(MessageBuilder::new(RTM_NEWADDR, 0, 9).finish());
        let mut msg = MessageBuilder::new(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 9);
        msg.buf.extend(&payload);
        let msg = msg
            .attr(NLMSGERR_ATTR_MSG, b"Invalid prefix length\0")
            .finish();
        let messages = parse_messages(&msg).unwrap();
        let (errno, text) = parse_error(&messages[0]).unwrap();
        assert_eq!(errno, libc::EINVAL);
        assert_eq!(text.as_deref(), Some("Invalid prefix length"));
        let e = Failure::Kernel(errno, text).into_error("adding 10.0.0.5/99 on eth0 (index 3)");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e
            .to_string()
            .starts_with("adding 10.0.0.5/99 on eth0 (index 3): Invalid"));
        assert!(e.to_string().ends_with("(Invalid prefix length)"));
        // A plain acknowledgement.
        let mut ack = MessageBuilder::new(NLMSG_ERROR, 0, 9);
        ack.buf.extend(0i32.to_ne_bytes());
        ack.buf
            .extend(MessageBuilder::new(RTM_NEWADDR, 0, 9).finish());
        let ack = ack.finish();
        assert_eq!(
            parse_error(&parse_messages(&ack).unwrap()[0]).unwrap(),
            (0, None)
        );
    }

    /// Run `f` on a thread in a private, empty network namespace with a veth pair
    /// v0 (10.77.0.1/24) – v1 (10.77.0.2/24), both up. Root only.
    fn in_netns(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(move || {
            crate::sys::unshare_network().expect("unshare(CLONE_NEWNET)");
            for args in [
                "link add v0 type veth peer name v1",
                "link set v0 up",
                "link set v1 up",
                "addr add 10.77.0.1/24 dev v0",
                "addr add 10.77.0.2/24 dev v1",
            ] {
                let status = std::process::Command::new("ip")
                    .args(args.split(' '))
                    .status()
                    .expect("run ip");
                assert!(status.success(), "ip {args}");
            }
            f()
        })
        .join()
        .unwrap();
    }

    fn ip(args: &str) {
        let status = std::process::Command::new("ip")
            .args(args.split(' '))
            .status()
            .unwrap();
        assert!(status.success(), "ip {args}");
    }

    /// Poll `f` until it returns Some, for up to 5 s.
    fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> T {
        for _ in 0..500 {
            if let Some(v) = f() {
                return v;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("condition not met within 5 s");
    }

    #[test]
    fn netns_links_and_addresses() {
        if crate::sys::current_uid() != 0 {
            eprintln!("skipped: needs root (private network namespace)");
            return;
        }
        in_netns(|| {
            let mut nl = Netlink::open().unwrap();
            assert_eq!(nl.link_by_name("nonexistent0").unwrap(), None);
            assert_eq!(
                nl.link_by_name("a-name-far-too-long-for-linux").unwrap(),
                None
            );
            let lo = nl.link_by_name("lo").unwrap().unwrap();
            assert_eq!(lo.mac, None);
            // Carrier comes through the kernel's link watch, a moment after "up".
            let v0 = eventually(|| nl.link_by_name("v0").unwrap().filter(|l| l.up));
            let shown = String::from_utf8(
                std::process::Command::new("ip")
                    .args(["-o", "link", "show", "v0"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap();
            let mac = v0.mac.unwrap();
            let mac_text = mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":");
            assert!(shown.contains(&format!("link/ether {mac_text}")), "{shown}");
            assert!(shown.starts_with(&format!("{}: v0", v0.index)), "{shown}");
            assert_eq!(nl.link_by_index(v0.index).unwrap().unwrap(), v0);

            let mut monitor = LinkMonitor::open().unwrap();
            assert_eq!(monitor.drain().unwrap(), vec![]);

            let vip4: IpAddr = "10.77.0.100".parse().unwrap();
            let vip6: IpAddr = "fd00:77::100".parse().unwrap();
            for (vip, prefix) in [(vip4, 24), (vip6, 64)] {
                nl.add_address(v0.index, vip, prefix).unwrap();
                nl.add_address(v0.index, vip, prefix).unwrap(); // already there: Ok
            }
            let addresses = nl.addresses(v0.index).unwrap();
            let primary = IfAddress {
                address: "10.77.0.1".parse().unwrap(),
                prefix: 24,
                secondary: false,
            };
            assert!(addresses.contains(&primary), "{addresses:?}");
            assert!(addresses.contains(&IfAddress {
                address: vip4,
                prefix: 24,
                secondary: true
            }));
            assert!(addresses.contains(&IfAddress {
                address: vip6,
                prefix: 64,
                secondary: false
            }));
            // NODAD: usable at once, never "tentative".
            let shown = String::from_utf8(
                std::process::Command::new("ip")
                    .args(["-6", "addr", "show", "dev", "v0"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap();
            assert!(
                shown.contains("fd00:77::100/64 scope global nodad"),
                "{shown}"
            );
            assert!(
                !shown.contains("fd00:77::100/64 scope global tentative"),
                "{shown}"
            );
            // The addresses of another interface are not v0's.
            let v1 = nl.link_by_name("v1").unwrap().unwrap();
            assert!(!nl
                .addresses(v1.index)
                .unwrap()
                .iter()
                .any(|a| a.address == vip4));

            for (vip, prefix) in [(vip4, 24), (vip6, 64)] {
                nl.remove_address(v0.index, vip, prefix).unwrap();
                nl.remove_address(v0.index, vip, prefix).unwrap(); // not there: Ok
            }
            let addresses = nl.addresses(v0.index).unwrap();
            assert!(!addresses
                .iter()
                .any(|a| a.address == vip4 || a.address == vip6));
            assert!(addresses.contains(&primary));

            // Errors name the operation, the address and the interface.
            let e = nl.add_address(v0.index, vip4, 99).unwrap_err();
            assert!(
                e.to_string().starts_with("adding 10.77.0.100/99 on v0 ("),
                "{e}"
            );
            let e = nl.add_address(9999, vip4, 24).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("adding 10.77.0.100/24 on index 9999: "),
                "{e}"
            );

            // The monitor saw the VIPs come and go, then sees v0 go down and an address
            // removed behind our back.
            ip("link set v0 down");
            ip("addr del 10.77.0.2/24 dev v1");
            let mut seen = Vec::new();
            eventually(|| {
                seen.extend(monitor.drain().unwrap());
                let down = seen.contains(&Change::Link {
                    index: v0.index,
                    name: "v0".into(),
                    up: false,
                });
                let removed = seen.contains(&Change::AddressRemoved {
                    index: v1.index,
                    address: "10.77.0.2".parse().unwrap(),
                });
                (down && removed).then_some(())
            });
            for change in [
                Change::AddressAdded {
                    index: v0.index,
                    address: vip4,
                },
                Change::AddressAdded {
                    index: v0.index,
                    address: vip6,
                },
                Change::AddressRemoved {
                    index: v0.index,
                    address: vip4,
                },
                Change::AddressRemoved {
                    index: v0.index,
                    address: vip6,
                },
            ] {
                assert!(seen.contains(&change), "{change:?} not in {seen:?}");
            }
            assert!(!nl.link_by_name("v0").unwrap().unwrap().up);
            // And the link coming back up.
            ip("link set v0 up");
            eventually(|| {
                monitor.drain().unwrap().into_iter().find(|c| {
                    *c == Change::Link {
                        index: v0.index,
                        name: "v0".into(),
                        up: true,
                    }
                })
            });
        });
    }

    #[test]
    fn monitor_reports_overrun() {
        if crate::sys::current_uid() != 0 {
            eprintln!("skipped: needs root (private network namespace)");
            return;
        }
        in_netns(|| {
            let mut nl = Netlink::open().unwrap();
            let v0 = nl.link_by_name("v0").unwrap().unwrap();
            let mut monitor = LinkMonitor::open().unwrap();
            // The smallest receive buffer the kernel allows, then more address changes
            // than it can hold.
            monitor.set_receive_buffer(0).unwrap();
            for i in 0..300u32 {
                let address = IpAddr::from([10, 78, (i >> 8) as u8, i as u8]);
                nl.add_address(v0.index, address, 32).unwrap();
            }
            let changes = monitor.drain().unwrap();
            assert!(
                changes.contains(&Change::Overrun),
                "{} changes, no overrun",
                changes.len()
            );
            assert_eq!(changes.iter().filter(|c| **c == Change::Overrun).count(), 1);
            // A dump of that many addresses spans several datagrams (NLM_F_MULTI).
            let listed = nl.addresses(v0.index).unwrap();
            let flood = |a: &&IfAddress| matches!(a.address, IpAddr::V4(v4) if v4.octets()[..2] == [10, 78]);
            assert_eq!(listed.iter().filter(flood).count(), 300);
            assert_eq!(monitor.drain().unwrap(), vec![]);
            // It goes on working after the overrun.
            nl.remove_address(v0.index, IpAddr::from([10, 78, 0, 0]), 32)
                .unwrap();
            let address = IpAddr::from([10, 78, 0, 0]);
            let removed = Change::AddressRemoved {
                index: v0.index,
                address,
            };
            assert_eq!(monitor.drain().unwrap(), vec![removed]);
        });
    }
}
