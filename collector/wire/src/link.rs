//! Link-layer and IP decoding: one captured frame to one TCP segment.
//!
//! Link types follow the tcpdump.org LINKTYPE registry. Linux cooked capture v2
//! (LINKTYPE_LINUX_SLL2 = 276, what `tcpdump -i any` writes with libpcap ≥ 1.10)
//! is decoded here by hand because etherparse only knows v1.
//! (STUB: filled in by the link/tcp work.)

use std::net::SocketAddr;

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
    /// Maps a pcap/pcapng link-type (or DLT) number to a [`LinkType`]; `None` when unsupported.
    pub fn from_linktype(value: i32) -> Option<LinkType> {
        let _ = value;
        None
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

/// Decodes one frame of link type `link` to its TCP segment.
///
/// Errors: a [`DropReason`]; never panics on any input.
pub fn decode_packet(link: LinkType, frame: &[u8]) -> Result<TcpPacket<'_>, DropReason> {
    let _ = (link, frame);
    Err(DropReason::UnsupportedLink)
}
