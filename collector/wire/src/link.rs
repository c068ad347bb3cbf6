//! Link-layer and IP decoding: one captured frame to one TCP segment.
//!
//! Link types follow the tcpdump.org LINKTYPE registry
//! (<https://www.tcpdump.org/linktypes.html>). Ethernet (with 802.1Q/802.1ad
//! VLAN tags), IPv4, IPv6 (with extension headers) and TCP are decoded with
//! `etherparse`'s lax slicer, so that a frame cut short by the capture's
//! snapshot length still yields the TCP payload bytes it carries. Linux cooked
//! capture v1 (LINKTYPE_LINUX_SLL = 113) and v2 (LINKTYPE_LINUX_SLL2 = 276,
//! what `tcpdump -i any` writes with libpcap ≥ 1.10) and BSD loopback
//! (LINKTYPE_NULL / LINKTYPE_LOOP) headers are stripped here by hand, because
//! etherparse only knows SLL v1 and has no lax entry point for it.
//!
//! Choices:
//!
//! - **Trimming.** The TCP payload is cut to the IPv4 total length / IPv6
//!   payload length, so Ethernet padding (short frames are padded to 60 bytes)
//!   and trailing FCS bytes never become TCP payload.
//! - **Truncation.** A frame truncated by the snapshot length whose IP and TCP
//!   headers are complete yields the payload bytes actually present (fewer than
//!   the IP header announces). The reassembler then sees a hole where the
//!   missing bytes were and declares a gap (see [`crate::tcp`]). A frame cut
//!   inside the IP or TCP header is [`DropReason::Malformed`].
//! - **Fragments.** IPv4 packets with MF set or a non-zero fragment offset and
//!   IPv6 packets with a fragment header that fragments (M set or offset > 0)
//!   are [`DropReason::Fragmented`]: fragments are not reassembled. An IPv6
//!   "atomic fragment" (offset 0, M clear) is a whole packet and is decoded.
//! - **Fast path.** Most frames are Ethernet (or SLL/SLL2) → IPv4 → TCP,
//!   unfragmented, with complete headers and the whole IP packet captured.
//!   Their fixed IPv4 and TCP headers are read by hand ([`decode_fast`]:
//!   each field once, a few bounds checks, where the lax slicer builds and
//!   moves a large `LaxSlicedPacket` per frame and etherparse's strict
//!   slices re-check lengths per accessor; figures in BENCHMARKS.md,
//!   round 8). Any other frame (VLAN tags, IPv6,
//!   options that do not fit, truncation, fragments, odd lengths) takes the
//!   lax slicer. The property test `fast_path_agrees_with_lax_slicer` checks
//!   that both give the same answer wherever the fast path answers.
//! - **IP version.** For LINKTYPE_RAW, LINKTYPE_IPV4 and LINKTYPE_IPV6 (and the
//!   SLL/Null protocol fields) the IP header's version nibble decides how the
//!   packet is decoded; the link type only says where the IP header starts.

use etherparse::err::Layer;
use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Link-layer header types we decode (tcpdump.org LINKTYPE values in the docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET = 1 (with 802.1Q / 802.1ad VLAN tags).
    Ethernet,
    /// LINKTYPE_LINUX_SLL = 113.
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 = 276.
    LinuxSll2,
    /// LINKTYPE_RAW = 101 (also DLT_RAW 12 and 14): IPv4 or IPv6 by version nibble.
    RawIp,
    /// LINKTYPE_IPV4 = 228.
    Ipv4,
    /// LINKTYPE_IPV6 = 229.
    Ipv6,
    /// LINKTYPE_NULL = 0 / LINKTYPE_LOOP = 108: 4-byte address family (BSD loopback).
    Null,
}

impl LinkType {
    /// Every supported link type (for tests and fuzzing).
    pub const ALL: [LinkType; 7] = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIp,
        LinkType::Ipv4,
        LinkType::Ipv6,
        LinkType::Null,
    ];

    /// Maps a pcap/pcapng link-type (or DLT) number to a [`LinkType`]; `None` when unsupported.
    ///
    /// 1 → Ethernet, 113 → LinuxSll, 276 → LinuxSll2, 101/12/14 → RawIp,
    /// 228 → Ipv4, 229 → Ipv6, 0/108 → Null.
    pub fn from_linktype(value: i32) -> Option<LinkType> {
        match value {
            1 => Some(LinkType::Ethernet),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            101 | 12 | 14 => Some(LinkType::RawIp),
            228 => Some(LinkType::Ipv4),
            229 => Some(LinkType::Ipv6),
            0 | 108 => Some(LinkType::Null),
            _ => None,
        }
    }
}

/// TCP control flags we act on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// ACK (the `ack` field is valid).
    pub ack: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
}

/// One TCP segment, borrowing its payload from the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPacket<'a> {
    /// Sender address and port.
    pub src: SocketAddr,
    /// Receiver address and port.
    pub dst: SocketAddr,
    /// Sequence number of the first payload byte (or of the SYN/FIN).
    pub seq: u32,
    /// Acknowledgement number (meaningful when `flags.ack`).
    pub ack: u32,
    /// Control flags.
    pub flags: TcpFlags,
    /// TCP payload, trimmed to the IP total length (Ethernet padding removed).
    pub payload: &'a [u8],
}

/// Why a frame yielded no TCP segment. Each maps to one [`crate::stats::WireStats`] counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not TCP over IPv4/IPv6.
    NotTcp,
    /// Truncated or malformed headers.
    Malformed,
    /// Link type not decoded.
    UnsupportedLink,
    /// An IP fragment.
    Fragmented,
}

/// EtherType of IPv4 (IEEE 802 numbers).
const ETH_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
const ETH_IPV6: u16 = 0x86DD;
/// Length of an Ethernet II header without VLAN tags.
const ETH_LEN: usize = 14;
/// Length of the Linux cooked capture v1 header (LINKTYPE_LINUX_SLL).
const SLL_LEN: usize = 16;
/// Length of the Linux cooked capture v2 header (LINKTYPE_LINUX_SLL2).
const SLL2_LEN: usize = 20;
/// Length of the BSD loopback address-family header (LINKTYPE_NULL/LOOP).
const NULL_LEN: usize = 4;

/// Decodes one frame of link type `link` to its TCP segment.
///
/// `frame` is the captured bytes (possibly shorter than the original packet).
/// The returned payload borrows from `frame`, trimmed to the IP length and
/// possibly shorter than it when the capture truncated the frame (see the
/// module docs).
///
/// Errors: a [`DropReason`]; never panics on any input.
pub fn decode_packet(link: LinkType, frame: &[u8]) -> Result<TcpPacket<'_>, DropReason> {
    if let Some(p) = decode_fast(link, frame) {
        return Ok(p);
    }
    decode_lax(link, frame)
}

/// The IPv4 packet of an Ethernet (no VLAN tag), SLL or SLL2 frame, if the
/// link header says IPv4; `None` for every other frame.
fn ipv4_of(link: LinkType, frame: &[u8]) -> Option<&[u8]> {
    let (proto, start) = match link {
        // 6 destination, 6 source, 2 EtherType.
        LinkType::Ethernet => (be16(frame, 12)?, ETH_LEN),
        LinkType::LinuxSll => (be16(frame, 14)?, SLL_LEN),
        LinkType::LinuxSll2 => (be16(frame, 0)?, SLL2_LEN),
        _ => return None,
    };
    if proto == ETH_IPV4 {
        frame.get(start..)
    } else {
        None
    }
}

/// Decodes the common frame only (see "Fast path" in the module docs): an
/// Ethernet (no VLAN tag), SLL or SLL2 frame carrying an unfragmented IPv4
/// packet, captured whole, with TCP inside. The segment's addresses are then
/// always IPv4. `None` means "not this kind of frame", never an error: such
/// a frame must go through [`decode_packet`], which gives the same answer as
/// this function wherever this one answers.
///
/// For callers that handle the common frame on a separate code path (the
/// pipeline does, so that IPv4 addresses are not merged with the general
/// path's IPv6-capable ones). Never panics.
#[inline(always)]
pub fn decode_fast(link: LinkType, frame: &[u8]) -> Option<TcpPacket<'_>> {
    let ip = ipv4_of(link, frame)?;
    // The fixed IPv4 header (RFC 791 §3.1), read by hand: each field once,
    // one bounds check (etherparse's strict slices re-check lengths per
    // accessor). Version 4, IHL ≥ 5 words, protocol 6 (TCP), and neither
    // MF nor a fragment offset (RFC 791: flags 0x20, offset 13 bits).
    let [
        vihl,
        _,
        tl0,
        tl1,
        _,
        _,
        ff0,
        ff1,
        _,
        proto,
        _,
        _,
        s0,
        s1,
        s2,
        s3,
        d0,
        d1,
        d2,
        d3,
    ] = *ip.first_chunk::<20>()?;
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 || proto != 6 || (ff0 & 0x3f) | ff1 != 0 {
        return None;
    }
    // Header and options inside the total length, the total length inside
    // the capture (else the lax slicer decides: truncation, odd lengths).
    let total = usize::from(u16::from_be_bytes([tl0, tl1]));
    let tcp = ip.get(ihl..total)?;
    // The fixed TCP header (RFC 9293 §3.1): ports, sequence and
    // acknowledgement numbers, data offset ≥ 5 words, control bits.
    let t = tcp.first_chunk::<20>()?;
    let doff = usize::from(t[12] >> 4) * 4;
    if doff < 20 {
        return None;
    }
    let payload = tcp.get(doff..)?;
    let bits = t[13];
    // Built here, not through a helper shared with `classify` (inlining;
    // BENCHMARKS.md, round 8).
    Some(TcpPacket {
        src: SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(s0, s1, s2, s3)),
            u16::from_be_bytes([t[0], t[1]]),
        ),
        dst: SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(d0, d1, d2, d3)),
            u16::from_be_bytes([t[2], t[3]]),
        ),
        seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
        flags: TcpFlags {
            syn: bits & 0x02 != 0,
            ack: bits & 0x10 != 0,
            fin: bits & 0x01 != 0,
            rst: bits & 0x04 != 0,
        },
        payload,
    })
}

/// Every frame through etherparse's lax slicer (the general path).
fn decode_lax(link: LinkType, frame: &[u8]) -> Result<TcpPacket<'_>, DropReason> {
    let sliced = match link {
        LinkType::Ethernet => {
            LaxSlicedPacket::from_ethernet(frame).map_err(|_| DropReason::Malformed)?
        }
        LinkType::LinuxSll => {
            // 2 packet type, 2 ARPHRD type, 2 address length, 8 address, 2 protocol.
            let proto = be16(frame, 14).ok_or(DropReason::Malformed)?;
            let rest = frame.get(SLL_LEN..).ok_or(DropReason::Malformed)?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), rest)
        }
        LinkType::LinuxSll2 => {
            // 2 protocol, 2 reserved, 4 interface index, 2 ARPHRD type,
            // 1 packet type, 1 address length, 8 address.
            let proto = be16(frame, 0).ok_or(DropReason::Malformed)?;
            let rest = frame.get(SLL2_LEN..).ok_or(DropReason::Malformed)?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), rest)
        }
        LinkType::RawIp => {
            let first = *frame.first().ok_or(DropReason::Malformed)?;
            let ether_type = match first >> 4 {
                4 => ETH_IPV4,
                6 => ETH_IPV6,
                _ => return Err(DropReason::Malformed),
            };
            LaxSlicedPacket::from_ether_type(EtherType(ether_type), frame)
        }
        LinkType::Ipv4 => LaxSlicedPacket::from_ether_type(EtherType(ETH_IPV4), frame),
        LinkType::Ipv6 => LaxSlicedPacket::from_ether_type(EtherType(ETH_IPV6), frame),
        LinkType::Null => {
            let af: [u8; 4] = frame
                .get(..NULL_LEN)
                .and_then(|b| b.try_into().ok())
                .ok_or(DropReason::Malformed)?;
            let rest = frame.get(NULL_LEN..).ok_or(DropReason::Malformed)?;
            // Host byte order of the capturing machine: accept either.
            let ether_type = match (u32::from_le_bytes(af), u32::from_be_bytes(af)) {
                (2, _) | (_, 2) => ETH_IPV4,
                // AF_INET6 is 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
                (24 | 28 | 30, _) | (_, 24 | 28 | 30) => ETH_IPV6,
                _ => return Err(DropReason::NotTcp),
            };
            LaxSlicedPacket::from_ether_type(EtherType(ether_type), rest)
        }
    };
    classify(sliced)
}

/// Big-endian u16 at `at`, `None` when out of bounds.
fn be16(b: &[u8], at: usize) -> Option<u16> {
    let end = at.checked_add(2)?;
    let s = b.get(at..end)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

/// Turns the lax slicer's result into a segment or a drop reason.
fn classify(p: LaxSlicedPacket<'_>) -> Result<TcpPacket<'_>, DropReason> {
    let Some(net) = &p.net else {
        // No IP layer: either the link layer was cut short/invalid, or it
        // carried something other than IP (unknown EtherType, ...).
        return Err(if p.stop_err.is_some() {
            DropReason::Malformed
        } else {
            DropReason::NotTcp
        });
    };
    let (src_ip, dst_ip, fragmented) = match net {
        LaxNetSlice::Ipv4(s) => (
            IpAddr::V4(s.header().source_addr()),
            IpAddr::V4(s.header().destination_addr()),
            s.payload().fragmented,
        ),
        LaxNetSlice::Ipv6(s) => (
            IpAddr::V6(s.header().source_addr()),
            IpAddr::V6(s.header().destination_addr()),
            s.payload().fragmented,
        ),
        LaxNetSlice::Arp(_) => return Err(DropReason::NotTcp),
    };
    if fragmented {
        return Err(DropReason::Fragmented);
    }
    match &p.transport {
        Some(TransportSlice::Tcp(tcp)) => Ok(TcpPacket {
            src: SocketAddr::new(src_ip, tcp.source_port()),
            dst: SocketAddr::new(dst_ip, tcp.destination_port()),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            flags: TcpFlags {
                syn: tcp.syn(),
                ack: tcp.ack(),
                fin: tcp.fin(),
                rst: tcp.rst(),
            },
            payload: tcp.payload(),
        }),
        Some(_) => Err(DropReason::NotTcp),
        None => match &p.stop_err {
            // A broken UDP/ICMP/IGMP header is still "not TCP".
            Some((
                _,
                Layer::UdpHeader
                | Layer::UdpPayload
                | Layer::Icmpv4
                | Layer::Icmpv4Timestamp
                | Layer::Icmpv4TimestampReply
                | Layer::Icmpv6
                | Layer::Igmp,
            )) => Err(DropReason::NotTcp),
            Some(_) => Err(DropReason::Malformed),
            None => Err(DropReason::NotTcp),
        },
    }
}

/// Adds one decode outcome to the link counters of `stats`: `packets`,
/// `packet_bytes` (`frame_len` bytes) and the counter matching `result`'s
/// [`DropReason`], if any.
pub fn count(
    stats: &mut crate::stats::WireStats,
    frame_len: usize,
    result: &Result<TcpPacket<'_>, DropReason>,
) {
    stats.packets = stats.packets.saturating_add(1);
    stats.packet_bytes = stats.packet_bytes.saturating_add(frame_len as u64);
    if let Err(reason) = result {
        let c = match reason {
            DropReason::NotTcp => &mut stats.packets_not_tcp,
            DropReason::Malformed => &mut stats.packets_malformed,
            DropReason::UnsupportedLink => &mut stats.packets_unsupported_link,
            DropReason::Fragmented => &mut stats.packets_fragmented,
        };
        *c = c.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Ethernet + IPv4 (with `opt` 4-byte option words) + TCP (with
    /// `tcp_opt` option words) carrying `payload`; lengths and flags as given.
    fn frame(opt: u8, tcp_opt: u8, flags: u8, frag: u16, payload: &[u8], pad: usize) -> Vec<u8> {
        let ihl = 5 + opt;
        let thl = 5 + tcp_opt;
        let total = usize::from(ihl) * 4 + usize::from(thl) * 4 + payload.len();
        let mut f = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00];
        f.push(0x40 | ihl);
        f.push(0);
        f.extend_from_slice(&u16::try_from(total).unwrap_or(u16::MAX).to_be_bytes());
        f.extend_from_slice(&[0, 1]);
        f.extend_from_slice(&frag.to_be_bytes());
        f.extend_from_slice(&[64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend(std::iter::repeat_n(1u8, usize::from(opt) * 4));
        f.extend_from_slice(&[0x9c, 0x40, 0x1f, 0x90, 0, 0, 3, 232, 0, 0, 7, 208]);
        f.push(thl << 4);
        f.push(flags);
        f.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        f.extend(std::iter::repeat_n(1u8, usize::from(tcp_opt) * 4));
        f.extend_from_slice(payload);
        f.extend(std::iter::repeat_n(0u8, pad));
        f
    }

    #[test]
    fn fast_path_takes_a_plain_segment() {
        let f = frame(0, 0, 0x18, 0x4000, b"GET / HTTP/1.1\r\n", 0);
        let p = decode_fast(LinkType::Ethernet, &f);
        assert!(p.is_some());
        assert_eq!(p, decode_lax(LinkType::Ethernet, &f).ok());
        assert_eq!(p.map(|p| p.payload), Some(&b"GET / HTTP/1.1\r\n"[..]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// Wherever the fast path answers, the lax slicer gives the same
        /// segment; mutated, truncated and padded frames included.
        #[test]
        fn fast_path_agrees_with_lax_slicer(
            opt in 0u8..3, tcp_opt in 0u8..3, flags in any::<u8>(),
            frag in prop_oneof![Just(0u16), Just(0x4000u16), any::<u16>()],
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            pad in 0usize..8,
            cut in any::<prop::sample::Index>(),
            do_cut in any::<bool>(),
            muts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            link in prop_oneof![Just(LinkType::Ethernet), Just(LinkType::LinuxSll), Just(LinkType::LinuxSll2)],
        ) {
            let mut f = frame(opt, tcp_opt, flags, frag, &payload, pad);
            for (i, b) in muts {
                let at = i.index(f.len());
                f[at] = b;
            }
            if do_cut {
                f.truncate(cut.index(f.len() + 1));
            }
            // Re-frame the IP packet for the cooked link types.
            let f = match link {
                LinkType::LinuxSll => {
                    let mut g = vec![0u8; 14];
                    g.extend_from_slice(f.get(12..).unwrap_or_default());
                    g
                }
                LinkType::LinuxSll2 => {
                    let mut g = f.get(12..14).unwrap_or_default().to_vec();
                    g.resize(20, 0);
                    g.extend_from_slice(f.get(14..).unwrap_or_default());
                    g
                }
                _ => f,
            };
            if let Some(p) = decode_fast(link, &f) {
                prop_assert_eq!(Ok(p), decode_lax(link, &f));
            }
        }
    }
}
