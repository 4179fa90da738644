//! VRRP: the sockets that reach the network devices themselves — a `NETLINK_ROUTE`
//! socket ([`NetlinkSocket`]: virtual addresses and link state) and an `AF_PACKET` raw
//! socket ([`PacketSocket`]: gratuitous ARP and unsolicited neighbour advertisements).
//! Only the socket calls are here; the messages and frames are built and parsed in
//! `control::vrrp::{netlink, announce}`.

use super::{check, check_size};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `ETH_P_ALL`: every protocol, for a [`PacketSocket`] that receives (tests, captures).
pub const ETH_P_ALL: u16 = libc::ETH_P_ALL as u16;
/// `ETH_P_ARP`: the ARP ethertype.
pub const ETH_P_ARP: u16 = libc::ETH_P_ARP as u16;
/// `ETH_P_IPV6`: the IPv6 ethertype.
pub const ETH_P_IPV6: u16 = libc::ETH_P_IPV6 as u16;

/// A `NETLINK_ROUTE` socket, bound with a kernel-assigned port id and optionally
/// subscribed to multicast groups (`RTMGRP_*`).
#[derive(Debug)]
pub struct NetlinkSocket {
    fd: OwnedFd,
}

impl NetlinkSocket {
    /// Open and bind a `NETLINK_ROUTE` socket subscribed to `groups` (a mask of
    /// `RTMGRP_*`, 0 for a request socket). `nonblocking` sets `O_NONBLOCK`.
    pub fn open_route(groups: u32, nonblocking: bool) -> io::Result<NetlinkSocket> {
        let mut ty = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
        if nonblocking {
            ty |= libc::SOCK_NONBLOCK;
        }
        // SAFETY: socket(2) takes plain integers and touches no memory of ours.
        let fd = check(unsafe { libc::socket(libc::AF_NETLINK, ty, libc::NETLINK_ROUTE) })?;
        // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_pid = 0; // the kernel assigns the port id
        addr.nl_groups = groups;
        // SAFETY: `addr` is a valid sockaddr_nl and the length passed is its size.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })?;
        Ok(NetlinkSocket { fd })
    }

    /// Ask for extended acknowledgements (`NETLINK_EXT_ACK`: the kernel's error text
    /// rides in `NLMSG_ERROR` as `NLMSGERR_ATTR_MSG`) without the request echoed back
    /// (`NETLINK_CAP_ACK`). Kernels older than 4.12 refuse the first: callers may ignore it.
    pub fn enable_ext_ack(&self) -> io::Result<()> {
        const NETLINK_CAP_ACK: libc::c_int = 10;
        const NETLINK_EXT_ACK: libc::c_int = 11;
        for option in [NETLINK_CAP_ACK, NETLINK_EXT_ACK] {
            let on: libc::c_int = 1;
            // SAFETY: `on` is a valid c_int for the whole call and its size is passed.
            check(unsafe {
                libc::setsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_NETLINK,
                    option,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            })?;
        }
        Ok(())
    }

    /// Set the receive buffer (`SO_RCVBUF`; the kernel doubles it and caps it at
    /// `net.core.rmem_max`): how many notifications may queue before `ENOBUFS`.
    pub fn set_recv_buffer(&self, bytes: usize) -> io::Result<()> {
        socket2::SockRef::from(&self.fd).set_recv_buffer_size(bytes)
    }

    /// Send one datagram (one or more netlink messages) to the kernel (port id 0).
    pub fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `msg` is valid for reads of `msg.len()` bytes and `addr` is a valid
        // sockaddr_nl of the length passed; the kernel copies both before returning.
        let sent = check_size(unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })?;
        if sent != msg.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short netlink send",
            ));
        }
        Ok(())
    }

    /// Receive one datagram into `buf`: returns its length and the sender's port id (0
    /// is the kernel). A datagram larger than `buf` is an error (`EMSGSIZE`), never a
    /// silent truncation. On a non-blocking socket, nothing queued is `WouldBlock`;
    /// `ENOBUFS` means the socket's receive queue overran and messages were lost.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, u32)> {
        // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes and `addr`/`len`
        // describe a writable sockaddr_nl; the kernel writes within those bounds.
        let n = check_size(unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
                (&mut addr as *mut libc::sockaddr_nl).cast(),
                &mut len,
            )
        })?;
        if n > buf.len() {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        Ok((n, addr.nl_pid))
    }
}

impl AsRawFd for NetlinkSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// An `AF_PACKET`/`SOCK_RAW` socket bound to one interface: frames sent and received
/// include the link-layer (Ethernet) header.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

impl PacketSocket {
    /// Open a packet socket bound to interface `ifindex`. `protocol` (an ethertype in
    /// host order, e.g. [`ETH_P_ALL`]) selects what it receives; 0 makes a send-only
    /// socket that never queues received frames. `nonblocking` sets `O_NONBLOCK`.
    /// Needs `CAP_NET_RAW`.
    pub fn open(ifindex: u32, protocol: u16, nonblocking: bool) -> io::Result<PacketSocket> {
        let mut ty = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
        if nonblocking {
            ty |= libc::SOCK_NONBLOCK;
        }
        // Protocol 0 at creation: nothing is received until bind(2) names the
        // interface, so no frame of another interface slips in between.
        // SAFETY: socket(2) takes plain integers and touches no memory of ours.
        let fd = check(unsafe { libc::socket(libc::AF_PACKET, ty, 0) })?;
        // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let addr = sockaddr_ll(ifindex, protocol)?;
        // SAFETY: `addr` is a valid sockaddr_ll and the length passed is its size.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(PacketSocket { fd, ifindex })
    }

    /// Send one complete frame (Ethernet header included) of ethertype `protocol` (host
    /// order) on the bound interface. Never blocks: a full send buffer is `WouldBlock`.
    pub fn send_frame(&self, frame: &[u8], protocol: u16) -> io::Result<usize> {
        let addr = sockaddr_ll(self.ifindex, protocol)?;
        // SAFETY: `frame` is valid for reads of `frame.len()` bytes and `addr` is a
        // valid sockaddr_ll of the length passed; the kernel copies both.
        check_size(unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })
    }

    /// Receive one frame into `buf` (truncated to `buf.len()`); returns the bytes
    /// stored. Never blocks: nothing queued is `WouldBlock`.
    pub fn recv_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        super::recv_now(self.fd.as_raw_fd(), buf)
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn sockaddr_ll(ifindex: u32, protocol: u16) -> io::Result<libc::sockaddr_ll> {
    let ifindex = libc::c_int::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index too large"))?;
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as libc::c_ushort;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = ifindex;
    Ok(addr)
}
