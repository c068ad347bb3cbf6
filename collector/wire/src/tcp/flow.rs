//! One tracked connection ([`Flow`]): its key (the unordered endpoint
//! pair, [`FlowKey`]), its two halves, the client guess by ports, and how one
//! segment applies to it ([`process`]).

use super::half::{Half, Out};
use super::{COMMON_SERVER_PORTS, CloseReason, FlowSink, TcpConfig};
use crate::link::TcpPacket;
use crate::stats::WireStats;
use crate::{Dir, FlowId, TimestampNs};
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;

/// Unordered endpoint pair, packed into five words (40 bytes; two
/// `SocketAddr`s take 64): the smaller address first, each address as two
/// words (an IPv4 address in the second word, the first zero), then one word
/// holding both ports and the family (so an IPv4 flow never equals one of
/// IPv4-mapped IPv6 addresses). IPv6 flow info and scope id are not kept (the
/// link decoder never sets them).
#[derive(Debug, Clone, Copy, Eq)]
pub(super) struct FlowKey(pub(super) [u64; 5]);

impl PartialEq for FlowKey {
    /// Five word compares, without a call to `memcmp` (which the derived
    /// array equality makes on every lookup).
    #[inline]
    fn eq(&self, other: &FlowKey) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// The two words of an address in a [`FlowKey`].
#[inline]
fn addr_words(addr: SocketAddr) -> [u64; 2] {
    match addr.ip() {
        std::net::IpAddr::V4(v4) => [0, u64::from(u32::from(v4))],
        std::net::IpAddr::V6(v6) => {
            let v = u128::from(v6);
            // Truncation splits the address into its two halves.
            [(v >> 64) as u64, v as u64]
        }
    }
}

impl FlowKey {
    /// The key of the pair `a`, `b`, and whether `a` is its first endpoint
    /// (endpoints ordered by their address words, then port: cheaper than
    /// `SocketAddr`'s ordering, and any fixed order does). The family word
    /// counts the IPv6 endpoints, so it is the same for both orders even for
    /// a mixed pair (which the link decoder never yields).
    #[inline]
    pub(super) fn new(a: SocketAddr, b: SocketAddr) -> (FlowKey, bool) {
        let (wa, wb) = (addr_words(a), addr_words(b));
        let (pa, pb) = (a.port(), b.port());
        let a_first = (wa[0], wa[1], pa) <= (wb[0], wb[1], pb);
        let ([l0, l1], lp, [h0, h1], hp) = if a_first {
            (wa, pa, wb, pb)
        } else {
            (wb, pb, wa, pa)
        };
        let family = u64::from(a.is_ipv6()) + u64::from(b.is_ipv6());
        let tail = u64::from(lp) | u64::from(hp) << 16 | family << 32;
        (FlowKey([l0, l1, h0, h1, tail]), a_first)
    }

    /// The key's hash under the table's randomly seeded `state`: foldhash
    /// over the five words (keyed, so crafted 4-tuples cannot aim at one
    /// bucket without the seed; far cheaper than SipHash).
    #[inline]
    pub(super) fn hash(&self, state: &foldhash::fast::FixedState) -> u64 {
        let mut h = state.build_hasher();
        for w in self.0 {
            h.write_u64(w);
        }
        h.finish()
    }
}

/// One tracked connection, with the caller's state `T` for it.
#[derive(Debug)]
pub(super) struct Flow<T> {
    pub(super) id: FlowId,
    pub(super) key: FlowKey,
    /// The client is the key's first endpoint (else its second); a bool, not a third address, to
    /// keep idle flows small (BENCHMARKS.md, peak RSS).
    pub(super) client_first: bool,
    /// Latest capture time of a segment (max, so time going backwards is harmless).
    pub(super) last_ts: TimestampNs,
    /// Key of this flow in `FlowTable::lru` (≤ `last_ts`).
    pub(super) lru_ts: TimestampNs,
    /// Index of this flow's slot in the `FlowTable::lru` heap.
    pub(super) heap_pos: u32,
    /// `[client→server, server→client]`.
    pub(super) halves: [Half; 2],
    /// The caller's state for this connection ([`FlowSink::on_open`]).
    pub(super) conn: T,
}

impl<T> Flow<T> {
    pub(super) fn any_fin(&self) -> bool {
        self.halves.iter().any(|h| h.has_fin)
    }

    /// Index into `halves` of a segment, `src_first` telling whether its
    /// source is the key's first endpoint (see [`FlowKey::new`]). A
    /// connection from an endpoint to itself has `client_first` set (see
    /// `FlowTable::open`) and all its segments `src_first`: index 0.
    #[inline]
    pub(super) fn dir_index(&self, src_first: bool) -> usize {
        if src_first == self.client_first { 0 } else { 1 }
    }
}

/// Direction of `halves[i]`.
#[inline]
pub(super) fn dir_of(i: usize) -> Dir {
    if i == 0 {
        Dir::ClientToServer
    } else {
        Dir::ServerToClient
    }
}

/// Server side by ports when the handshake was not seen: `true` when `dst`
/// (the first segment's receiver) is the server.
fn dst_is_server(src: u16, dst: u16) -> bool {
    let common = |p: u16| COMMON_SERVER_PORTS.contains(&p);
    let low = |p: u16| p < 32768;
    if common(src) != common(dst) {
        return common(dst);
    }
    if low(src) != low(dst) {
        return low(dst);
    }
    dst <= src
}

/// The client guess for the first segment `pkt` of a connection (see the
/// module docs, "Client guess" and "`client_isn`"): whether its source is
/// the client, the client's ISN, and whether the handshake was seen.
pub(super) fn client_guess(pkt: &TcpPacket<'_>) -> (bool, u32, bool) {
    let flags = pkt.flags;
    if flags.syn && !flags.ack {
        (true, pkt.seq, true)
    } else if flags.syn {
        (false, pkt.ack.wrapping_sub(1), true)
    } else if dst_is_server(pkt.src.port(), pkt.dst.port()) {
        (true, pkt.seq, false)
    } else {
        let isn = if flags.ack { pkt.ack } else { 0 };
        (false, isn, false)
    }
}

/// Applies one segment to its flow; returns why the flow must close now, if so.
#[allow(clippy::too_many_arguments)] // private; one call site
pub(super) fn process<S: FlowSink<T>, T>(
    flow: &mut Flow<T>,
    ts: TimestampNs,
    pkt: &TcpPacket<'_>,
    src_first: bool,
    cfg: &TcpConfig,
    pieces: &mut Vec<(u64, u64)>,
    stats: &mut WireStats,
    sink: &mut S,
) -> Option<CloseReason> {
    let flags = pkt.flags;
    if flags.rst {
        return Some(CloseReason::Rst);
    }
    let i = flow.dir_index(src_first);
    let Flow {
        id, halves, conn, ..
    } = flow;
    let id = *id;
    let [c2s, s2c] = halves;
    let (me, other) = if i == 0 { (c2s, s2c) } else { (s2c, c2s) };
    if flags.syn && !me.init {
        me.start(pkt.seq.wrapping_add(1));
        me.set_syn_seq(pkt.seq);
    }
    if flags.syn && flags.ack && !other.init {
        // The SYN+ACK acknowledges the peer's SYN: its stream starts at `ack`.
        other.start(pkt.ack);
        other.set_syn_seq(pkt.ack.wrapping_sub(1));
    }
    // (`on_ack` only acts on buffered bytes: skip building its output otherwise.)
    if flags.ack && other.ooo.is_some() {
        let mut out = Out {
            flow: id,
            dir: dir_of(1 - i),
            ts,
            stats: &mut *stats,
            sink: &mut *sink,
            conn: &mut *conn,
        };
        other.on_ack(pkt.ack, &mut out);
    }
    let data_seq = pkt.seq.wrapping_add(u32::from(flags.syn));
    // (`data` ignores an empty payload: pure ACKs skip building its output.)
    if !pkt.payload.is_empty() {
        let mut out = Out {
            flow: id,
            dir: dir_of(i),
            ts,
            stats,
            sink,
            conn,
        };
        me.data(
            data_seq,
            pkt.payload,
            cfg.max_buffered_bytes_per_dir,
            pieces,
            &mut out,
        );
    }
    if flags.fin {
        // Truncation is the modulo-2³² arithmetic sequence numbers use.
        me.on_fin(data_seq.wrapping_add(pkt.payload.len() as u32));
        if other.has_fin {
            return Some(CloseReason::Fin);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_key_is_unordered_and_keeps_family_and_ports_apart() {
        let p = |s: &str| s.parse::<SocketAddr>().unwrap_or_else(|_| unreachable!());
        let (a, b) = (p("10.0.0.1:80"), p("10.0.0.2:40000"));
        let (k1, a_first) = FlowKey::new(a, b);
        let (k2, b_first) = FlowKey::new(b, a);
        assert_eq!(k1, k2);
        assert_ne!(a_first, b_first);
        let mapped = (p("[::ffff:10.0.0.1]:80"), p("[::ffff:10.0.0.2]:40000"));
        assert_ne!(FlowKey::new(mapped.0, mapped.1).0, k1);
        assert_ne!(FlowKey::new(p("10.0.0.1:81"), b).0, k1);
        assert_ne!(FlowKey::new(a, p("10.0.0.2:40001")).0, k1);
        let v6 = (p("[2001:db8::1]:443"), p("[2001:db8::2]:50000"));
        assert_eq!(FlowKey::new(v6.0, v6.1).0, FlowKey::new(v6.1, v6.0).0);
        assert_ne!(
            FlowKey::new(v6.0, v6.1).0,
            FlowKey::new(v6.0, p("[2001:db8::3]:50000")).0
        );
    }
}
