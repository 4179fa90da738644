//! VRRP: the IP-protocol-112 socket's options and ancillary data — what `socket2` does
//! not cover: `IP_MULTICAST_IF` by interface index (`ip_mreqn`), `IPV6_RECVPKTINFO`, and
//! `sendmsg`/`recvmsg` with `IPV6_PKTINFO` / `IPV6_HOPLIMIT` control messages.
//! Everything here is non-blocking (`MSG_DONTWAIT`).

use std::io;
use std::mem;
use std::net::Ipv6Addr;
use std::os::fd::RawFd;

use super::{check, check_size};

/// `setsockopt(2)` of a plain value `T` (an int or a C struct without pointers).
fn set_opt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live, initialized T for the whole call, and the length
    // passed is exactly its size; the kernel only reads it.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value as *const T as *const libc::c_void,
            mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// `IP_MULTICAST_IF` by interface index (`struct ip_mreqn`): IPv4 multicast sent on the
/// socket leaves through interface `ifindex`, whatever its addresses.
pub fn set_multicast_if_index_v4(fd: RawFd, ifindex: u32) -> io::Result<()> {
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as libc::c_int,
    };
    set_opt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreqn)
}

/// `IPV6_RECVPKTINFO`: deliver each datagram's destination address and arrival interface
/// as an `IPV6_PKTINFO` control message.
pub fn set_recv_pktinfo_v6(fd: RawFd, on: bool) -> io::Result<()> {
    let v = libc::c_int::from(on);
    set_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &v)
}

/// `IPV6_RECVHOPLIMIT`: deliver each datagram's hop limit as an `IPV6_HOPLIMIT` control
/// message.
pub fn set_recv_hoplimit_v6(fd: RawFd, on: bool) -> io::Result<()> {
    let v = libc::c_int::from(on);
    set_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &v)
}

/// Room for the control messages we send or expect (pktinfo + hop limit, with slack for
/// anything else the kernel adds), aligned for `cmsghdr`.
#[repr(C, align(8))]
struct ControlBuf([u8; 128]);

fn sockaddr_v6(addr: Ipv6Addr, scope_id: u32) -> libc::sockaddr_in6 {
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: 0,
        sin6_flowinfo: 0,
        sin6_addr: libc::in6_addr {
            s6_addr: addr.octets(),
        },
        sin6_scope_id: scope_id,
    }
}

/// Send `message` as one IPv6 datagram to `dst` with source address exactly `src`, out of
/// interface `ifindex` (an `IPV6_PKTINFO` control message; `ifindex` is also the scope of
/// a link-local or multicast `dst`). Never blocks: a full send buffer is `WouldBlock`.
pub fn send_v6_from(
    fd: RawFd,
    message: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ifindex: u32,
) -> io::Result<usize> {
    let mut name = sockaddr_v6(dst, ifindex);
    let mut iov = libc::iovec {
        iov_base: message.as_ptr() as *mut libc::c_void,
        iov_len: message.len(),
    };
    let mut control = ControlBuf([0; 128]);
    let info = libc::in6_pktinfo {
        ipi6_addr: libc::in6_addr {
            s6_addr: src.octets(),
        },
        ipi6_ifindex: ifindex,
    };
    // SAFETY: msghdr is plain old data; all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = &mut name as *mut libc::sockaddr_in6 as *mut libc::c_void;
    msg.msg_namelen = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr() as *mut libc::c_void;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(mem::size_of::<libc::in6_pktinfo>() as u32) };
    debug_assert!(space as usize <= control.0.len());
    msg.msg_controllen = space as usize;
    // SAFETY: msg_control points to `control`, 8-aligned and at least `space` bytes long, so
    // CMSG_FIRSTHDR returns a non-null, aligned cmsghdr inside it, and CMSG_DATA of that
    // header has room for one in6_pktinfo (CMSG_SPACE counted it). write_unaligned is used
    // for the payload, which the kernel reads by value.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
        (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
        (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<libc::in6_pktinfo>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut libc::in6_pktinfo, info);
    }
    // SAFETY: every pointer in `msg` (name, iov → `message`, control) refers to memory that
    // is live and of the stated length for the whole call; the kernel only reads them.
    check_size(unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) })
}

/// One IPv6 datagram received by [`recv_v6`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvV6 {
    /// Payload length (the IPv6 header is not part of what a raw socket delivers).
    pub len: usize,
    /// The payload did not fit the buffer (the rest was discarded).
    pub truncated: bool,
    /// The sender's address.
    pub src: Ipv6Addr,
    /// The sender's scope (interface index) for a link-local source, else 0.
    pub scope_id: u32,
    /// The destination address (`IPV6_PKTINFO`; needs [`set_recv_pktinfo_v6`]).
    pub dst: Option<Ipv6Addr>,
    /// The arrival interface (`IPV6_PKTINFO`).
    pub ifindex: Option<u32>,
    /// The hop limit it arrived with (`IPV6_HOPLIMIT`; needs [`set_recv_hoplimit_v6`]).
    pub hop_limit: Option<u8>,
}

/// `recvmsg(2)` of one IPv6 datagram into `buf`, never blocking (`WouldBlock` when none is
/// queued), with its source, and its destination and hop limit from control messages.
pub fn recv_v6(fd: RawFd, buf: &mut [u8]) -> io::Result<RecvV6> {
    // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
    let mut name: libc::sockaddr_in6 = unsafe { mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut control = ControlBuf([0; 128]);
    // SAFETY: msghdr is plain old data; all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = &mut name as *mut libc::sockaddr_in6 as *mut libc::c_void;
    msg.msg_namelen = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = control.0.len();
    // SAFETY: every pointer in `msg` (name, iov → `buf`, control) refers to live, writable
    // memory of the stated length for the whole call; the kernel writes at most that much
    // and updates msg_namelen / msg_controllen / msg_flags.
    let len = check_size(unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) })?;
    let mut out = RecvV6 {
        len,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        src: Ipv6Addr::from(name.sin6_addr.s6_addr),
        scope_id: name.sin6_scope_id,
        dst: None,
        ifindex: None,
        hop_limit: None,
    };
    // SAFETY: after a successful recvmsg, msg_control/msg_controllen describe the control
    // messages the kernel wrote into `control` (still live and unmoved); CMSG_FIRSTHDR /
    // CMSG_NXTHDR only return headers lying entirely within that range (or null), and each
    // payload is read with read_unaligned only after checking that cmsg_len covers it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            let room = ((*cmsg).cmsg_len as usize).saturating_sub(data as usize - cmsg as usize);
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                    if room >= mem::size_of::<libc::in6_pktinfo>() =>
                {
                    let info = std::ptr::read_unaligned(data as *const libc::in6_pktinfo);
                    out.dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                    out.ifindex = Some(info.ipi6_ifindex);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT)
                    if room >= mem::size_of::<libc::c_int>() =>
                {
                    let hops = std::ptr::read_unaligned(data as *const libc::c_int);
                    out.hop_limit = u8::try_from(hops).ok();
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        // A control message was cut: what we have may be incomplete.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "control messages truncated",
        ));
    }
    Ok(out)
}
