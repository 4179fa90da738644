//! Telling the segment that the virtual addresses moved here: a gratuitous ARP per IPv4
//! address and an unsolicited neighbour advertisement per IPv6 address, sent as whole
//! Ethernet frames on an `AF_PACKET` socket bound to the interface
//! ([`crate::sys::netdev::PacketSocket`]). The frames are built with `pnet_packet`.
//!
//! The gratuitous ARP is Keepalived's, byte for byte: an ARP *request* (opcode 1) from our
//! MAC to the broadcast address, sender and target protocol address both the virtual
//! address, target hardware address ff:ff:ff:ff:ff:ff; 42 bytes, no padding (the driver
//! pads short frames on the wire). The neighbour advertisement (RFC 4861 §7.2.6) goes to
//! all-nodes (ff02::1, 33:33:00:00:00:01) with hop limit 255, Override set, Solicited
//! and Router clear, and a target link-layer address option.

use crate::sys::netdev::{PacketSocket, ETH_P_ARP, ETH_P_IPV6};
use pnet_base::MacAddr;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherType, EtherTypes, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{MutableNeighborAdvertPacket, NdpOptionTypes, NeighborAdvertFlags};
use pnet_packet::icmpv6::{self, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::MutableIpv6Packet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const ETHERNET_HEADER: usize = 14;
const ARP_LEN: usize = 28;
const IPV6_HEADER: usize = 40;
/// Neighbour advertisement (24) + target link-layer address option (8).
const NA_LEN: usize = 32;
const BROADCAST: MacAddr = MacAddr(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
/// ff02::1 mapped to Ethernet (RFC 2464 §7).
const ALL_NODES_MAC: MacAddr = MacAddr(0x33, 0x33, 0, 0, 0, 1);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

fn mac_addr(mac: [u8; 6]) -> MacAddr {
    MacAddr(mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
}

fn ethernet(frame: &mut [u8], destination: MacAddr, source: [u8; 6], ethertype: EtherType) {
    let mut eth = MutableEthernetPacket::new(frame).expect("frame holds an Ethernet header");
    eth.set_destination(destination);
    eth.set_source(mac_addr(source));
    eth.set_ethertype(ethertype);
}

/// The gratuitous ARP for `ip` from `mac`: a 42-byte Ethernet frame, as Keepalived sends.
pub fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut frame = vec![0u8; ETHERNET_HEADER + ARP_LEN];
    ethernet(&mut frame, BROADCAST, mac, EtherTypes::Arp);
    let mut arp = MutableArpPacket::new(&mut frame[ETHERNET_HEADER..]).expect("room for ARP");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(ArpOperations::Request);
    arp.set_sender_hw_addr(mac_addr(mac));
    arp.set_sender_proto_addr(ip);
    arp.set_target_hw_addr(BROADCAST);
    arp.set_target_proto_addr(ip);
    frame
}

/// The unsolicited neighbour advertisement for `target` from `mac`, IPv6 source `src`:
/// an 86-byte Ethernet frame to all-nodes.
pub fn unsolicited_na(mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let mut frame = vec![0u8; ETHERNET_HEADER + IPV6_HEADER + NA_LEN];
    ethernet(&mut frame, ALL_NODES_MAC, mac, EtherTypes::Ipv6);
    {
        let mut ip = MutableIpv6Packet::new(&mut frame[ETHERNET_HEADER..]).expect("room for IPv6");
        ip.set_version(6);
        ip.set_payload_length(NA_LEN as u16);
        ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
        ip.set_hop_limit(255);
        ip.set_source(src);
        ip.set_destination(ALL_NODES);
    }
    let icmp = &mut frame[ETHERNET_HEADER + IPV6_HEADER..];
    {
        let mut na = MutableNeighborAdvertPacket::new(icmp).expect("room for the NA");
        na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
        na.set_flags(NeighborAdvertFlags::Override);
        na.set_target_addr(target);
    }
    // The target link-layer address option (RFC 4861 §4.6.1): type 2, length 1 (x 8 bytes).
    icmp[24] = NdpOptionTypes::TargetLLAddr.0;
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&mac);
    let checksum = icmpv6::checksum(&Icmpv6Packet::new(icmp).expect("ICMPv6"), &src, &ALL_NODES);
    MutableNeighborAdvertPacket::new(icmp)
        .expect("room for the NA")
        .set_checksum(checksum);
    frame
}

/// Sends the announcements of one interface.
#[derive(Debug)]
pub struct Announcer {
    socket: PacketSocket,
    ifindex: u32,
    mac: [u8; 6],
}

impl Announcer {
    /// A send-only packet socket bound to interface `ifindex`, whose hardware address is
    /// `mac` (the frames' source). Needs `CAP_NET_RAW`.
    pub fn open(ifindex: u32, mac: [u8; 6]) -> io::Result<Announcer> {
        let socket = PacketSocket::open(ifindex, 0, true).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("opening a packet socket on interface index {ifindex}: {e}"),
            )
        })?;
        Ok(Announcer {
            socket,
            ifindex,
            mac,
        })
    }

    /// One frame per address: a gratuitous ARP for IPv4, an unsolicited neighbour
    /// advertisement for IPv6 with IPv6 source `link_local` (the interface's link-local
    /// address; if `None`, the target itself, which RFC 4861 also allows). Every frame is
    /// attempted, without blocking; returns how many were sent, or the first failure
    /// (naming the address) if any failed.
    pub fn announce(
        &self,
        addresses: &[IpAddr],
        link_local: Option<Ipv6Addr>,
    ) -> io::Result<usize> {
        let mut sent = 0;
        let mut first_error = None;
        for address in addresses {
            let (frame, protocol, what) = match *address {
                IpAddr::V4(ip) => (gratuitous_arp(self.mac, ip), ETH_P_ARP, "gratuitous ARP"),
                IpAddr::V6(ip) => (
                    unsolicited_na(self.mac, link_local.unwrap_or(ip), ip),
                    ETH_P_IPV6,
                    "unsolicited neighbour advertisement",
                ),
            };
            match self.socket.send_frame(&frame, protocol) {
                Ok(_) => sent += 1,
                Err(e) => {
                    first_error.get_or_insert_with(|| {
                        let ifindex = self.ifindex;
                        io::Error::new(
                            e.kind(),
                            format!(
                                "sending {what} for {address} on interface index {ifindex}: {e}"
                            ),
                        )
                    });
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(sent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::vrrp::netlink::Netlink;
    use crate::sys::netdev::ETH_P_ALL;

    /// Keepalived 2's first gratuitous ARP in
    /// shared/anchors/fixtures/keepalived-v2-adv1-term.pcap (`tcpdump -r ... -xx arp`).
    /// The capture is 42 bytes, unpadded: it was taken on a veth, which does not pad.
    const KEEPALIVED_GARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x6a, 0x66, 0x69, 0x02, 0xfe, 0xab, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x6a, 0x66, 0x69, 0x02, 0xfe, 0xab, 0x0a, 0x63,
        0x00, 0x64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x63, 0x00, 0x64,
    ];
    const KEEPALIVED_MAC: [u8; 6] = [0x6a, 0x66, 0x69, 0x02, 0xfe, 0xab];

    #[test]
    fn gratuitous_arp_is_keepalived_s() {
        let frame = gratuitous_arp(KEEPALIVED_MAC, Ipv4Addr::new(10, 99, 0, 100));
        assert_eq!(frame, KEEPALIVED_GARP);
    }

    /// RFC 1071 over the IPv6 pseudo-header (RFC 8200 §8.1), written independently of
    /// pnet's.
    fn icmpv6_checksum_ok(frame: &[u8]) -> bool {
        let ip = &frame[ETHERNET_HEADER..];
        let payload = &ip[IPV6_HEADER..];
        let mut data = Vec::new();
        data.extend_from_slice(&ip[8..40]); // source, destination
        data.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        data.extend_from_slice(&[0, 0, 0, 58]);
        data.extend_from_slice(payload);
        let mut sum: u32 = data
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum == 0xffff
    }

    #[test]
    fn unsolicited_na_layout() {
        let mac = [0x02, 0x00, 0x5e, 0x00, 0x02, 0x33];
        let src: Ipv6Addr = "fe80::5eff:fe00:233".parse().unwrap();
        let target: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let frame = unsolicited_na(mac, src, target);
        let mut expected = vec![0x33, 0x33, 0, 0, 0, 1];
        expected.extend_from_slice(&mac);
        expected.extend_from_slice(&[0x86, 0xdd]);
        // IPv6: version 6, class 0, flow 0, payload 32, next header 58, hop limit 255.
        expected.extend_from_slice(&[0x60, 0, 0, 0, 0, 32, 58, 255]);
        expected.extend_from_slice(&src.octets());
        expected.extend_from_slice(&ALL_NODES.octets());
        // ICMPv6 type 136 code 0, checksum (checked below), flags O (0x20), reserved.
        expected.extend_from_slice(&[136, 0]);
        expected.extend_from_slice(&frame[56..58]);
        expected.extend_from_slice(&[0x20, 0, 0, 0]);
        expected.extend_from_slice(&target.octets());
        expected.extend_from_slice(&[2, 1]);
        expected.extend_from_slice(&mac);
        assert_eq!(frame, expected);
        assert_ne!(&frame[56..58], &[0, 0]);
        assert!(icmpv6_checksum_ok(&frame));
        // A different source changes the checksum, and it is still right.
        let other = unsolicited_na(mac, target, target);
        assert_ne!(other[56..58], frame[56..58]);
        assert!(icmpv6_checksum_ok(&other));
    }

    fn ip(args: &str) {
        let status = std::process::Command::new("ip")
            .args(args.split(' '))
            .status()
            .unwrap();
        assert!(status.success(), "ip {args}");
    }

    /// The index of `name`, once it is up with carrier (veth carrier follows a moment
    /// after `ip link set up`, through the kernel's link watch).
    fn wait_up(name: &str) -> u32 {
        let mut nl = Netlink::open().unwrap();
        for _ in 0..500 {
            match nl.link_by_name(name).unwrap() {
                Some(link) if link.up => return link.index,
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        panic!("{name} not up within 5 s");
    }

    /// Announce on v0, receive on v1 (a veth pair in a private network namespace).
    #[test]
    fn netns_frames_reach_the_peer() {
        if crate::sys::current_uid() != 0 {
            eprintln!("skipped: needs root (private network namespace)");
            return;
        }
        std::thread::spawn(|| {
            crate::sys::unshare_network().expect("unshare(CLONE_NEWNET)");
            ip("link add v0 type veth peer name v1");
            // No IPv6 link-local addresses, DAD or router solicitations: nothing but our
            // frames (and possibly MLD reports from the peer) on the wire.
            for dev in ["v0", "v1"] {
                ip(&format!("link set {dev} addrgenmode none"));
                ip(&format!("link set {dev} up"));
            }
            let mac = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x07];
            ip("link set v0 address 02:00:5e:00:01:07");
            let (v0, v1) = (wait_up("v0"), wait_up("v1"));
            let receiver = PacketSocket::open(v1, ETH_P_ALL, true).unwrap();
            let announcer = Announcer::open(v0, mac).unwrap();

            let vip4 = Ipv4Addr::new(10, 99, 0, 100);
            let vip6: Ipv6Addr = "fd00:99::100".parse().unwrap();
            let link_local: Ipv6Addr = "fe80::5eff:fe00:107".parse().unwrap();
            let sent = announcer.announce(&[IpAddr::V4(vip4), IpAddr::V6(vip6)], Some(link_local));
            assert_eq!(sent.unwrap(), 2);
            let mut got = Vec::new();
            for _ in 0..500 {
                let mut buf = [0u8; 2048];
                while let Ok(n) = receiver.recv_now(&mut buf) {
                    if buf[6..12] == mac {
                        got.push(buf[..n].to_vec());
                    }
                }
                if got.len() >= 2 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert_eq!(got.len(), 2, "frames from v0 seen on v1: {got:?}");
            assert_eq!(got[0], gratuitous_arp(mac, vip4));
            assert_eq!(got[1], unsolicited_na(mac, link_local, vip6));
            assert_eq!(got[1].len(), 86);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn netns_send_on_a_down_interface_fails_with_the_address() {
        if crate::sys::current_uid() != 0 {
            eprintln!("skipped: needs root (private network namespace)");
            return;
        }
        std::thread::spawn(|| {
            crate::sys::unshare_network().expect("unshare(CLONE_NEWNET)");
            ip("link add v0 type veth peer name v1");
            let v0 = Netlink::open()
                .unwrap()
                .link_by_name("v0")
                .unwrap()
                .unwrap();
            let announcer = Announcer::open(v0.index, [2, 0, 0, 0, 0, 1]).unwrap();
            let e = announcer
                .announce(&["10.1.2.3".parse().unwrap()], None)
                .unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("sending gratuitous ARP for 10.1.2.3 on interface index"),
                "{e}"
            );
        })
        .join()
        .unwrap();
    }
}
