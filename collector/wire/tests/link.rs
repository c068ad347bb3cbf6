//! Link-layer decode tests: hand-built frames for every link type, VLAN,
//! IPv6 extension headers, padding, fragments, truncation and random bytes.

use etherparse::{PacketBuilder, VlanId};
use mcptap_wire::link::{DropReason, LinkType, TcpFlags, TcpPacket, count, decode_packet};
use mcptap_wire::stats::WireStats;
use proptest::prelude::*;
use std::net::SocketAddr;

const ETH_HDR: usize = 14;
const PAYLOAD: &[u8] = b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";

fn v4(a: &str) -> SocketAddr {
    a.parse().unwrap_or_else(|_| panic!("{a}"))
}

fn vlan(id: u16) -> VlanId {
    VlanId::try_new(id).unwrap_or_else(|_| panic!("vlan {id}"))
}

/// Ethernet + IPv4 + TCP (ACK|PSH, seq 1000, ack 2000) carrying `payload`.
fn eth_v4(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 8080, 1000, 65535)
        .ack(2000)
        .psh();
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).unwrap_or_else(|e| panic!("{e:?}"));
    v
}

/// Ethernet + IPv6 + TCP (SYN, seq 7) carrying `payload`.
fn eth_v6(payload: &[u8]) -> Vec<u8> {
    let mut src = [0u8; 16];
    src[0] = 0x20;
    src[15] = 1;
    let mut dst = src;
    dst[15] = 2;
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv6(src, dst, 64)
        .tcp(50000, 443, 7, 1000)
        .syn();
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap_or_else(|e| panic!("{e:?}"));
    v
}

fn v6_addrs() -> (SocketAddr, SocketAddr) {
    (v4("[2000::1]:50000"), v4("[2000::2]:443"))
}

fn ip_of(eth: &[u8]) -> &[u8] {
    &eth[ETH_HDR..]
}

fn sll(proto: u16, ip: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
    v.extend_from_slice(&proto.to_be_bytes());
    v.extend_from_slice(ip);
    v
}

fn sll2(proto: u16, ip: &[u8]) -> Vec<u8> {
    let mut v = proto.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 1, 2, 3, 4, 5, 6, 0, 0]);
    assert_eq!(v.len(), 20);
    v.extend_from_slice(ip);
    v
}

fn null(af: [u8; 4], ip: &[u8]) -> Vec<u8> {
    let mut v = af.to_vec();
    v.extend_from_slice(ip);
    v
}

fn expected_v4(payload: &[u8]) -> TcpPacket<'_> {
    TcpPacket {
        src: v4("10.0.0.1:40000"),
        dst: v4("10.0.0.2:8080"),
        seq: 1000,
        ack: 2000,
        flags: TcpFlags {
            ack: true,
            ..TcpFlags::default()
        },
        payload,
    }
}

#[test]
fn linktype_numbers() {
    let cases = [
        (1, Some(LinkType::Ethernet)),
        (113, Some(LinkType::LinuxSll)),
        (276, Some(LinkType::LinuxSll2)),
        (101, Some(LinkType::RawIp)),
        (12, Some(LinkType::RawIp)),
        (14, Some(LinkType::RawIp)),
        (228, Some(LinkType::Ipv4)),
        (229, Some(LinkType::Ipv6)),
        (0, Some(LinkType::Null)),
        (108, Some(LinkType::Null)),
        (105, None),
        (127, None),
        (-1, None),
    ];
    for (n, want) in cases {
        assert_eq!(LinkType::from_linktype(n), want, "linktype {n}");
    }
}

#[test]
fn ethernet_ipv4_tcp() {
    let f = eth_v4(PAYLOAD);
    assert_eq!(
        decode_packet(LinkType::Ethernet, &f),
        Ok(expected_v4(PAYLOAD))
    );
}

#[test]
fn ethernet_padding_and_fcs_are_not_payload() {
    let mut f = eth_v4(b"ab");
    assert_eq!(f.len(), 56);
    f.resize(60, 0); // minimum frame padding
    f.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]); // FCS
    assert_eq!(
        decode_packet(LinkType::Ethernet, &f),
        Ok(expected_v4(b"ab"))
    );
    // Pure ACK in a padded frame: empty payload.
    let mut f = eth_v4(b"");
    f.resize(60, 0);
    assert_eq!(decode_packet(LinkType::Ethernet, &f), Ok(expected_v4(b"")));
}

#[test]
fn vlan_single_and_double() {
    for double in [false, true] {
        let base = PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]);
        let b = if double {
            base.double_vlan(vlan(100), vlan(200))
        } else {
            base.single_vlan(vlan(100))
        };
        let b = b
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 8080, 1000, 65535)
            .ack(2000);
        let mut f = Vec::new();
        b.write(&mut f, PAYLOAD).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(f.len(), eth_v4(PAYLOAD).len() + if double { 8 } else { 4 });
        assert_eq!(
            decode_packet(LinkType::Ethernet, &f),
            Ok(expected_v4(PAYLOAD)),
            "double={double}"
        );
    }
}

#[test]
fn ipv6_tcp_and_extension_headers() {
    let f = eth_v6(b"hello");
    let (src, dst) = v6_addrs();
    let want = TcpPacket {
        src,
        dst,
        seq: 7,
        ack: 0,
        flags: TcpFlags {
            syn: true,
            ..TcpFlags::default()
        },
        payload: b"hello",
    };
    assert_eq!(decode_packet(LinkType::Ethernet, &f), Ok(want.clone()));
    assert_eq!(decode_packet(LinkType::Ipv6, ip_of(&f)), Ok(want.clone()));
    assert_eq!(decode_packet(LinkType::RawIp, ip_of(&f)), Ok(want.clone()));

    // Insert a hop-by-hop options header (8 bytes, PadN) before TCP.
    let ext = with_ipv6_ext(ip_of(&f), 0, &[6, 0, 1, 4, 0, 0, 0, 0]);
    assert_eq!(decode_packet(LinkType::Ipv6, &ext), Ok(want.clone()));
    // Destination options then a routing header? One more: destination options.
    let ext2 = with_ipv6_ext(&ext, 60, &[0, 0, 1, 4, 0, 0, 0, 0]);
    // ext2: dest-opts(next=0 hop-by-hop) is invalid order (HBH must be first),
    // which is malformed, never a panic.
    assert!(decode_packet(LinkType::Ipv6, &ext2).is_err());

    // Atomic fragment (offset 0, M clear): a whole packet.
    let atomic = with_ipv6_ext(ip_of(&f), 44, &[6, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(decode_packet(LinkType::Ipv6, &atomic), Ok(want));
    // Real fragments.
    let first = with_ipv6_ext(ip_of(&f), 44, &[6, 0, 0, 1, 0, 0, 0, 1]);
    assert_eq!(
        decode_packet(LinkType::Ipv6, &first),
        Err(DropReason::Fragmented)
    );
    let later = with_ipv6_ext(ip_of(&f), 44, &[6, 0, 0, 0x10, 0, 0, 0, 1]);
    assert_eq!(
        decode_packet(LinkType::Ipv6, &later),
        Err(DropReason::Fragmented)
    );
}

/// Inserts extension header `ext` (whose first byte is its own next-header)
/// right after the fixed IPv6 header, giving it protocol number `proto`.
fn with_ipv6_ext(ip: &[u8], proto: u8, ext: &[u8]) -> Vec<u8> {
    let mut v = ip[..40].to_vec();
    let mut e = ext.to_vec();
    e[0] = v[6]; // the extension points to what the fixed header pointed to
    v[6] = proto;
    let plen = u16::from_be_bytes([v[4], v[5]]) + ext.len() as u16;
    v[4..6].copy_from_slice(&plen.to_be_bytes());
    v.extend_from_slice(&e);
    v.extend_from_slice(&ip[40..]);
    v
}

#[test]
fn linux_sll_v1_and_v2() {
    let f = eth_v4(PAYLOAD);
    let ip = ip_of(&f);
    assert_eq!(
        decode_packet(LinkType::LinuxSll, &sll(0x0800, ip)),
        Ok(expected_v4(PAYLOAD))
    );
    assert_eq!(
        decode_packet(LinkType::LinuxSll2, &sll2(0x0800, ip)),
        Ok(expected_v4(PAYLOAD))
    );
    let f6 = eth_v6(b"x");
    let ip6 = ip_of(&f6);
    assert!(decode_packet(LinkType::LinuxSll, &sll(0x86DD, ip6)).is_ok());
    assert!(decode_packet(LinkType::LinuxSll2, &sll2(0x86DD, ip6)).is_ok());
    // Unknown protocol type: not TCP.
    assert_eq!(
        decode_packet(LinkType::LinuxSll2, &sll2(0x0004, ip)),
        Err(DropReason::NotTcp)
    );
    // ARP, and ARP cut short: dropped either way.
    assert_eq!(
        decode_packet(LinkType::LinuxSll, &sll(0x0806, &[0; 10])),
        Err(DropReason::NotTcp),
    );
    assert!(decode_packet(LinkType::LinuxSll, &sll(0x0806, &[0; 3])).is_err());
    // VLAN tag inside SLL2.
    let mut tagged = vec![0x00, 0x64, 0x08, 0x00];
    tagged.extend_from_slice(ip);
    assert_eq!(
        decode_packet(LinkType::LinuxSll2, &sll2(0x8100, &tagged)),
        Ok(expected_v4(PAYLOAD))
    );
    // Short headers.
    assert_eq!(
        decode_packet(LinkType::LinuxSll2, &[0x08, 0x00, 0]),
        Err(DropReason::Malformed)
    );
    assert_eq!(
        decode_packet(LinkType::LinuxSll, &[0; 15]),
        Err(DropReason::Malformed)
    );
}

#[test]
fn raw_ipv4_ipv6_link_types() {
    let f = eth_v4(PAYLOAD);
    let ip = ip_of(&f);
    assert_eq!(decode_packet(LinkType::RawIp, ip), Ok(expected_v4(PAYLOAD)));
    assert_eq!(decode_packet(LinkType::Ipv4, ip), Ok(expected_v4(PAYLOAD)));
    // The version nibble decides (etherparse): an IPv4 packet under
    // LINKTYPE_IPV6 is still decoded.
    assert_eq!(decode_packet(LinkType::Ipv6, ip), Ok(expected_v4(PAYLOAD)));
    assert_eq!(
        decode_packet(LinkType::RawIp, &[]),
        Err(DropReason::Malformed)
    );
    assert_eq!(
        decode_packet(LinkType::RawIp, &[0x50; 40]),
        Err(DropReason::Malformed)
    );
}

#[test]
fn null_loopback_both_byte_orders() {
    let f = eth_v4(PAYLOAD);
    let ip = ip_of(&f);
    for af in [[2, 0, 0, 0], [0, 0, 0, 2]] {
        assert_eq!(
            decode_packet(LinkType::Null, &null(af, ip)),
            Ok(expected_v4(PAYLOAD))
        );
    }
    let f6 = eth_v6(b"x");
    for af in [24u32, 28, 30] {
        for bytes in [af.to_le_bytes(), af.to_be_bytes()] {
            assert!(
                decode_packet(LinkType::Null, &null(bytes, ip_of(&f6))).is_ok(),
                "af {af}"
            );
        }
    }
    assert_eq!(
        decode_packet(LinkType::Null, &null([7, 0, 0, 0], ip)),
        Err(DropReason::NotTcp)
    );
    assert_eq!(
        decode_packet(LinkType::Null, &[2, 0]),
        Err(DropReason::Malformed)
    );
}

#[test]
fn non_tcp_is_not_tcp() {
    let udp = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(53, 5353);
    let mut f = Vec::new();
    udp.write(&mut f, b"dns")
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        decode_packet(LinkType::Ethernet, &f),
        Err(DropReason::NotTcp)
    );
    let icmp = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .icmpv4_echo_request(1, 1);
    let mut f = Vec::new();
    icmp.write(&mut f, b"ping")
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        decode_packet(LinkType::Ethernet, &f),
        Err(DropReason::NotTcp)
    );
    // ARP request (28 bytes) over Ethernet.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[1, 2, 3, 4, 5, 6, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&[1, 2, 3, 4, 5, 6, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    assert_eq!(
        decode_packet(LinkType::Ethernet, &arp),
        Err(DropReason::NotTcp)
    );
    // Unknown EtherType.
    let mut other = eth_v4(b"x");
    other[12..14].copy_from_slice(&[0x88, 0xcc]);
    assert_eq!(
        decode_packet(LinkType::Ethernet, &other),
        Err(DropReason::NotTcp)
    );
}

#[test]
fn ipv4_fragments_are_dropped() {
    let f = eth_v4(PAYLOAD);
    let mut mf = f.clone();
    mf[ETH_HDR + 6] |= 0x20; // More Fragments
    assert_eq!(
        decode_packet(LinkType::Ethernet, &mf),
        Err(DropReason::Fragmented)
    );
    let mut off = f.clone();
    off[ETH_HDR + 7] = 0x10; // fragment offset 16 (×8 bytes)
    assert_eq!(
        decode_packet(LinkType::Ethernet, &off),
        Err(DropReason::Fragmented)
    );
    let mut df = f;
    df[ETH_HDR + 6] |= 0x40; // Don't Fragment: a whole packet
    assert_eq!(
        decode_packet(LinkType::Ethernet, &df),
        Ok(expected_v4(PAYLOAD))
    );
}

/// Every link type's framing of the same IPv4 segment.
fn framed_all() -> Vec<(LinkType, Vec<u8>, usize)> {
    let f = eth_v4(PAYLOAD);
    let ip = ip_of(&f).to_vec();
    vec![
        (LinkType::Ethernet, f.clone(), ETH_HDR),
        (LinkType::LinuxSll, sll(0x0800, &ip), 16),
        (LinkType::LinuxSll2, sll2(0x0800, &ip), 20),
        (LinkType::RawIp, ip.clone(), 0),
        (LinkType::Ipv4, ip.clone(), 0),
        (LinkType::Null, null([2, 0, 0, 0], &ip), 4),
    ]
}

#[test]
fn truncation_at_every_length() {
    const IP_TCP: usize = 40;
    for (link, frame, link_len) in framed_all() {
        let headers = link_len + IP_TCP;
        for cut in 0..=frame.len() {
            let got = decode_packet(link, &frame[..cut]);
            if cut < headers {
                assert_eq!(got, Err(DropReason::Malformed), "{link:?} cut {cut}");
            } else {
                // Snaplen-truncated: the payload bytes actually present.
                assert_eq!(
                    got,
                    Ok(expected_v4(&PAYLOAD[..cut - headers])),
                    "{link:?} cut {cut}"
                );
            }
        }
    }
    // IPv6 too.
    let f6 = eth_v6(PAYLOAD);
    for cut in 0..=f6.len() {
        let got = decode_packet(LinkType::Ethernet, &f6[..cut]);
        if cut < ETH_HDR + 60 {
            assert_eq!(got, Err(DropReason::Malformed), "v6 cut {cut}");
        } else {
            let p = got.unwrap_or_else(|e| panic!("v6 cut {cut}: {e:?}"));
            assert_eq!(p.payload, &PAYLOAD[..cut - ETH_HDR - 60]);
        }
    }
}

#[test]
fn count_updates_stats() {
    let mut s = WireStats::default();
    let f = eth_v4(b"x");
    count(&mut s, f.len(), &decode_packet(LinkType::Ethernet, &f));
    count(&mut s, 3, &decode_packet(LinkType::Ethernet, &f[..3]));
    count(&mut s, 0, &Err(DropReason::NotTcp));
    count(&mut s, 0, &Err(DropReason::Fragmented));
    count(&mut s, 0, &Err(DropReason::UnsupportedLink));
    assert_eq!(s.packets, 5);
    assert_eq!(s.packet_bytes, f.len() as u64 + 3);
    assert_eq!(s.packets_malformed, 1);
    assert_eq!(s.packets_not_tcp, 1);
    assert_eq!(s.packets_fragmented, 1);
    assert_eq!(s.packets_unsupported_link, 1);
}

proptest! {
    /// Random bytes never panic, whatever the link type; a decoded payload
    /// always lies within the frame.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for link in LinkType::ALL {
            if let Ok(p) = decode_packet(link, &bytes) {
                prop_assert!(p.payload.len() <= bytes.len());
            }
        }
    }

    /// Valid frames with random bytes overwritten never panic.
    #[test]
    fn mutated_frames_never_panic(
        which in 0usize..6,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let all = framed_all();
        let (link, mut frame, _) = all[which].clone();
        for (at, b) in edits {
            let i = at % frame.len();
            frame[i] = b;
        }
        let end = cut % (frame.len() + 1);
        for l in LinkType::ALL {
            let _ = decode_packet(l, &frame[..end]);
        }
        let _ = decode_packet(link, &frame);
    }
}
