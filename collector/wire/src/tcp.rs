//! TCP reassembly: per connection and direction, bytes in sequence order.
//!
//! [`FlowTable::ingest`] takes decoded segments ([`TcpPacket`]) in capture
//! order and reports, per connection, [`TcpEvent::Opened`], then in-order
//! [`TcpEvent::Data`] and [`TcpEvent::Gap`] per direction, then exactly one
//! [`TcpEvent::Closed`]. It follows RFC 9293 sequence-number semantics (SYN and
//! FIN each occupy one sequence number; comparisons are modulo 2³²).
//!
//! # Choices
//!
//! - **Connections.** A connection is the unordered pair of endpoints. Each gets
//!   a fresh [`FlowId`] from a counter. A SYN without ACK on a known pair starts
//!   a new connection (the old one is closed first) unless it is a retransmission
//!   of the SYN that opened the current one (same sender, same ISN, no FIN seen
//!   yet). Segments without payload and without SYN (pure ACKs, lone FIN or RST)
//!   never open a connection: the last ACK after both FINs must not create a
//!   phantom one (counted in `WireStats::tcp_segments_without_flow`).
//! - **Client guess.** The SYN-without-ACK sender is the client; the SYN+ACK
//!   sender is the server. Without a handshake (capture began mid-connection):
//!   a port in [`COMMON_SERVER_PORTS`] marks the server when exactly one side
//!   has one; else a port below 32768 (outside the usual ephemeral range) marks
//!   the server when exactly one side has one; else the lower port is the
//!   server; equal ports make the first segment's destination the server.
//! - **`client_isn`.** The client's SYN sequence number when the SYN was seen;
//!   the SYN+ACK's acknowledgement number minus one when only the SYN+ACK was
//!   seen (`saw_syn` is `true` in both cases); without a handshake, the first
//!   segment's sequence number if it came from the client, else its
//!   acknowledgement number (the client's next sequence number) if it carries
//!   ACK, else 0.
//! - **Start of a stream.** A direction starts at SYN+1 (or at the SYN+ACK's
//!   acknowledgement number for the client when its SYN was missed), else at
//!   the first payload byte seen. Bytes before that start are ignored (counted
//!   as retransmissions).
//! - **Overlaps.** The first bytes received for a stream position win: bytes
//!   already delivered are never delivered again, and a segment overlapping
//!   buffered bytes only adds the positions not yet buffered.
//! - **Gaps.** A hole (missing bytes before buffered ones) is declared a
//!   [`TcpEvent::Gap`] and delivery continues after it when: the direction
//!   buffers more than `max_buffered_bytes_per_dir` bytes or more than
//!   [`MAX_SEGMENTS_PER_DIR`] separate runs; the table buffers more than
//!   `max_buffered_bytes_total` bytes (holes of the largest buffer are skipped
//!   first); the other side acknowledged bytes beyond the hole start (the
//!   receiver got bytes the capture missed; the gap then ends at the
//!   acknowledged position or at the next buffered byte, whichever comes
//!   first); or the connection closes (RST, both FINs, idle timeout,
//!   eviction, end of input). On close, bytes known to exist before a FIN but
//!   never seen are also declared a gap. Bytes that never arrive after the
//!   last byte seen are not reported (their length is unknown).
//! - **Close.** RST closes at once ([`CloseReason::Rst`]). Once both sides sent
//!   FIN, everything up to both FINs is delivered (gaps declared) and the
//!   connection closes ([`CloseReason::Fin`]). Segments after that open
//!   nothing unless they carry payload or SYN.
//! - **Timestamps.** `Data.ts` is the capture time of the segment that
//!   completed the bytes; `Gap.ts` and `Closed.ts` the time of the segment,
//!   [`FlowTable::expire`] `now` or [`FlowTable::finish`] `ts` that caused them.
//!
//! # Cost
//!
//! Per connection: one boxed slot (152 bytes plus the caller's state `T`;
//! the out-of-order buffers are allocated only while bytes are buffered), a
//! 4-byte slot index in the 4-tuple hash table (keyed foldhash, compared
//! against the 40-byte packed key stored in the flow) and a 4-byte slot
//! index in the LRU heap. An in-order segment with nothing buffered is
//! delivered straight from the packet's payload slice without allocating; a
//! pure ACK (no payload, SYN, FIN or RST) on a connection with nothing
//! buffered only moves the connection's activity time.
//! Out-of-order bytes are copied into per-direction buffers, adjacent runs
//! merged. The LRU key of a connection is moved at most once per
//! [`LRU_GRANULARITY_NS`] and corrected lazily, so eviction and
//! [`FlowTable::expire`] stay exact and cost O(log n) per connection they
//! touch.

use crate::link::TcpPacket;
use crate::stats::WireStats;
use crate::{Dir, FlowId, TimestampNs};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;

/// Limits of the flow table. Memory is bounded by
/// `max_flows × (per-flow overhead) + max_buffered_bytes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConfig {
    /// Connections tracked at once; the least recently active is evicted beyond it.
    /// 0 is treated as 1.
    pub max_flows: usize,
    /// Out-of-order bytes buffered per direction before the hole is declared a gap.
    pub max_buffered_bytes_per_dir: usize,
    /// Out-of-order bytes buffered over all flows before holes are declared gaps.
    pub max_buffered_bytes_total: usize,
    /// A connection with no packet for this long (capture time, ns) is closed.
    pub idle_timeout_ns: u64,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_flows: 100_000,
            max_buffered_bytes_per_dir: 256 * 1024,
            max_buffered_bytes_total: 64 * 1024 * 1024,
            idle_timeout_ns: 300_000_000_000,
        }
    }
}

/// Why a connection left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Both sides sent FIN (and everything before it was delivered).
    /// Also used when a new SYN replaces a connection that had seen a FIN.
    Fin,
    /// A RST was seen. Also used when a new SYN (different ISN) replaces a
    /// connection that saw no FIN: the old connection must have been aborted.
    Rst,
    /// No packet for `idle_timeout_ns`.
    IdleTimeout,
    /// The table was full and this was the least recently active connection.
    Evicted,
    /// [`FlowTable::finish`] was called (end of the capture file).
    EndOfInput,
}

/// What the reassembler reports, in order, per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpEvent<'a> {
    /// A new connection entered the table.
    Opened {
        /// Its id.
        flow: FlowId,
        /// The side believed to be the client (SYN sender, else port heuristic).
        client: SocketAddr,
        /// The other side.
        server: SocketAddr,
        /// Client ISN from the SYN, else the first client sequence number seen
        /// (see the module docs for the exact rule).
        client_isn: u32,
        /// Whether the handshake was captured (SYN or SYN+ACK seen first; else
        /// the capture began mid-connection).
        saw_syn: bool,
        /// Timestamp of the first packet.
        ts: TimestampNs,
    },
    /// In-order payload bytes.
    Data {
        /// Connection.
        flow: FlowId,
        /// Direction relative to the believed client.
        dir: Dir,
        /// Capture timestamp of the segment that completed these bytes.
        ts: TimestampNs,
        /// The bytes.
        data: &'a [u8],
    },
    /// `len` bytes in `dir` are missing and were skipped; data after them follows.
    Gap {
        /// Connection.
        flow: FlowId,
        /// Direction.
        dir: Dir,
        /// When the gap was declared.
        ts: TimestampNs,
        /// Missing bytes.
        len: u64,
    },
    /// The connection left the table; no more events for `flow`.
    Closed {
        /// Connection.
        flow: FlowId,
        /// When.
        ts: TimestampNs,
        /// Why.
        reason: CloseReason,
    },
}

/// Receives reassembly events.
pub trait TcpSink {
    /// Called once per event, in order.
    fn on_tcp_event(&mut self, ev: TcpEvent<'_>);
}

/// Receives reassembly events together with the caller's per-connection
/// state `T`, which the table stores inside each flow (see
/// [`FlowTable::with_conn_state`]): one allocation and one lookup per
/// connection serve both layers. Every [`TcpSink`] is a `FlowSink<()>`.
pub trait FlowSink<T> {
    /// A connection opened (what [`TcpEvent::Opened`] reports); returns its state.
    fn on_open(&mut self, ev: FlowOpened) -> T;
    /// Any later event of the connection whose state is `conn`, in order
    /// ([`TcpEvent::Closed`] last; the state is dropped after it).
    fn on_flow_event(&mut self, conn: &mut T, ev: TcpEvent<'_>);
}

/// The fields of [`TcpEvent::Opened`], for [`FlowSink::on_open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowOpened {
    /// Its id.
    pub flow: FlowId,
    /// The side believed to be the client (SYN sender, else port heuristic).
    pub client: SocketAddr,
    /// The other side.
    pub server: SocketAddr,
    /// Client ISN (see [`TcpEvent::Opened`]).
    pub client_isn: u32,
    /// Whether the handshake was captured.
    pub saw_syn: bool,
    /// Timestamp of the first packet, ns.
    pub ts: TimestampNs,
}

impl<S: TcpSink> FlowSink<()> for S {
    fn on_open(&mut self, ev: FlowOpened) {
        self.on_tcp_event(TcpEvent::Opened {
            flow: ev.flow,
            client: ev.client,
            server: ev.server,
            client_isn: ev.client_isn,
            saw_syn: ev.saw_syn,
            ts: ev.ts,
        });
    }

    fn on_flow_event(&mut self, _conn: &mut (), ev: TcpEvent<'_>) {
        self.on_tcp_event(ev);
    }
}

/// Server ports recognised by the client/server guess when the handshake was
/// not captured (HTTP and common dev/proxy ports).
pub const COMMON_SERVER_PORTS: &[u16] = &[
    80, 443, 3000, 3001, 4000, 5000, 5001, 8000, 8001, 8008, 8080, 8081, 8088, 8443, 8888, 9000,
    9090,
];

/// Separate buffered runs per direction beyond which the first hole is
/// declared a gap (bounds the per-entry overhead of tiny segments).
pub const MAX_SEGMENTS_PER_DIR: usize = 1024;

/// The LRU index of a connection is re-keyed only when its last activity moved
/// by at least this much (ns); stale keys are corrected lazily.
pub const LRU_GRANULARITY_NS: u64 = 1_000_000_000;

/// Unordered endpoint pair, packed into five words (40 bytes; two
/// `SocketAddr`s take 64): the smaller address first, each address as two
/// words (an IPv4 address in the second word, the first zero), then one word
/// holding both ports and the family (so an IPv4 flow never equals one of
/// IPv4-mapped IPv6 addresses). IPv6 flow info and scope id are not kept (the
/// link decoder never sets them).
#[derive(Debug, Clone, Copy, Eq)]
struct FlowKey([u64; 5]);

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
    fn new(a: SocketAddr, b: SocketAddr) -> (FlowKey, bool) {
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
    fn hash(&self, state: &foldhash::fast::FixedState) -> u64 {
        let mut h = state.build_hasher();
        for w in self.0 {
            h.write_u64(w);
        }
        h.finish()
    }
}

/// The out-of-order bytes of one direction (allocated only while some are
/// buffered: most directions never see a segment out of order).
#[derive(Debug, Default)]
struct Ooo {
    /// Out-of-order runs by stream offset: non-overlapping, non-adjacent,
    /// all starting after the half's `next_off`; never empty while allocated.
    buf: BTreeMap<u64, Vec<u8>>,
    /// Bytes in `buf`.
    buffered: usize,
}

/// One direction of a connection. 40 bytes: the options are stored as a
/// value plus a flag, and the out-of-order buffer is boxed on first use.
#[derive(Debug, Default)]
struct Half {
    /// Stream offset of `next_seq` (bytes delivered or skipped so far).
    next_off: u64,
    /// Stream offset of the FIN, valid when `has_fin`.
    fin_off_v: u64,
    /// Sequence number of the next byte to deliver.
    next_seq: u32,
    /// ISN when the SYN (or the peer's SYN+ACK acknowledging it) was seen,
    /// valid when `has_syn`.
    syn_seq_v: u32,
    /// `next_seq`/`next_off` are valid.
    init: bool,
    has_syn: bool,
    has_fin: bool,
    /// Buffered out-of-order runs; `None` when there are none.
    ooo: Option<Box<Ooo>>,
}

/// Where a half's events go.
struct Out<'x, S, T> {
    flow: FlowId,
    dir: Dir,
    ts: TimestampNs,
    stats: &'x mut WireStats,
    sink: &'x mut S,
    /// The flow's caller state.
    conn: &'x mut T,
}

impl<S: FlowSink<T>, T> Out<'_, S, T> {
    #[inline(always)]
    fn data(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.stats.tcp_bytes_delivered = self
            .stats
            .tcp_bytes_delivered
            .saturating_add(data.len() as u64);
        self.sink.on_flow_event(
            self.conn,
            TcpEvent::Data {
                flow: self.flow,
                dir: self.dir,
                ts: self.ts,
                data,
            },
        );
    }

    fn gap(&mut self, len: u64, by_cap: bool) {
        if len == 0 {
            return;
        }
        self.stats.tcp_gaps = self.stats.tcp_gaps.saturating_add(1);
        self.stats.tcp_gap_bytes = self.stats.tcp_gap_bytes.saturating_add(len);
        if by_cap {
            self.stats.tcp_buffer_overflow_bytes =
                self.stats.tcp_buffer_overflow_bytes.saturating_add(len);
        }
        self.sink.on_flow_event(
            self.conn,
            TcpEvent::Gap {
                flow: self.flow,
                dir: self.dir,
                ts: self.ts,
                len,
            },
        );
    }
}

impl Half {
    /// ISN when the SYN (or the peer's SYN+ACK acknowledging it) was seen.
    #[inline]
    fn syn_seq(&self) -> Option<u32> {
        self.has_syn.then_some(self.syn_seq_v)
    }

    #[inline]
    fn set_syn_seq(&mut self, seq: u32) {
        self.has_syn = true;
        self.syn_seq_v = seq;
    }

    /// Stream offset of the FIN, once seen.
    #[inline]
    fn fin_off(&self) -> Option<u64> {
        self.has_fin.then_some(self.fin_off_v)
    }

    /// Out-of-order bytes buffered.
    #[inline]
    fn buffered(&self) -> usize {
        self.ooo.as_ref().map_or(0, |o| o.buffered)
    }

    /// Stream offset of the first buffered run.
    #[inline]
    fn first_buffered(&self) -> Option<u64> {
        self.ooo
            .as_ref()
            .and_then(|o| o.buf.first_key_value().map(|(k, _)| *k))
    }

    /// Frees the out-of-order buffer once it is empty.
    #[inline]
    fn release_empty(&mut self) {
        if self.ooo.as_ref().is_some_and(|o| o.buf.is_empty()) {
            self.ooo = None;
        }
    }

    /// Starts the stream at `seq` (offset 0).
    #[inline]
    fn start(&mut self, seq: u32) {
        self.init = true;
        self.next_seq = seq;
        self.next_off = 0;
    }

    /// Signed distance of `seq` from `next_seq`, modulo 2³² (RFC 9293 §3.4).
    #[inline]
    fn rel(&self, seq: u32) -> i64 {
        i64::from(seq.wrapping_sub(self.next_seq) as i32)
    }

    /// Stream offset of `seq`, `None` when it lies before the stream start.
    #[inline]
    fn offset_of(&self, seq: u32) -> Option<u64> {
        let rel = self.rel(seq);
        if rel >= 0 {
            Some(self.next_off.saturating_add(rel.unsigned_abs()))
        } else {
            self.next_off.checked_sub(rel.unsigned_abs())
        }
    }

    /// Moves the delivery point `n` bytes forward.
    #[inline]
    fn advance(&mut self, n: u64) {
        self.next_off = self.next_off.saturating_add(n);
        // Truncation is the modulo-2³² arithmetic sequence numbers use.
        self.next_seq = self.next_seq.wrapping_add(n as u32);
    }

    /// Delivers the buffered run starting at `next_off`, if any. (Runs never
    /// start before `next_off`; if one did, its stale prefix is dropped, so
    /// every call removes such entries and callers always make progress.)
    fn drain<S: FlowSink<T>, T>(&mut self, out: &mut Out<'_, S, T>) {
        while let Some(entry) = self.ooo.as_deref_mut().and_then(|o| o.buf.first_entry()) {
            let key = *entry.key();
            if key > self.next_off {
                break;
            }
            let v = entry.remove();
            if let Some(o) = self.ooo.as_deref_mut() {
                o.buffered = o.buffered.saturating_sub(v.len());
            }
            let skip = usize::try_from(self.next_off - key).unwrap_or(usize::MAX);
            if let Some(fresh) = v.get(skip..) {
                out.data(fresh);
                self.advance(fresh.len() as u64);
            }
        }
        self.release_empty();
    }

    /// Declares the first hole a gap and delivers the run after it.
    /// Returns `false` when nothing is buffered.
    fn skip_hole<S: FlowSink<T>, T>(&mut self, out: &mut Out<'_, S, T>, by_cap: bool) -> bool {
        let Some(first) = self.first_buffered() else {
            return false;
        };
        let len = first.saturating_sub(self.next_off);
        out.gap(len, by_cap);
        self.advance(len);
        self.drain(out);
        true
    }

    /// Payload `payload` whose first byte has sequence number `seq`.
    #[inline(always)]
    fn data<S: FlowSink<T>, T>(
        &mut self,
        seq: u32,
        payload: &[u8],
        cap: usize,
        pieces: &mut Vec<(u64, u64)>,
        out: &mut Out<'_, S, T>,
    ) {
        if payload.is_empty() {
            return;
        }
        if !self.init {
            self.start(seq);
        }
        let rel = self.rel(seq);
        let (start, p) = if rel < 0 {
            let behind = rel.unsigned_abs();
            match usize::try_from(behind).ok().and_then(|b| payload.get(b..)) {
                Some(rest) if !rest.is_empty() => (self.next_off, rest),
                _ => {
                    out.stats.tcp_retransmitted_segments =
                        out.stats.tcp_retransmitted_segments.saturating_add(1);
                    return;
                }
            }
        } else {
            (self.next_off.saturating_add(rel.unsigned_abs()), payload)
        };
        let end = start.saturating_add(p.len() as u64);
        if start == self.next_off {
            let first = self.first_buffered();
            if first.is_none_or(|k| end < k) {
                // Fast path: straight from the packet, nothing to merge.
                out.data(p);
                self.advance(p.len() as u64);
                return;
            }
            self.ooo.get_or_insert_default().insert(start, p, pieces);
            self.drain(out);
        } else {
            if self.ooo.get_or_insert_default().insert(start, p, pieces) == 0 {
                self.release_empty();
                out.stats.tcp_retransmitted_segments =
                    out.stats.tcp_retransmitted_segments.saturating_add(1);
                return;
            }
            out.stats.tcp_out_of_order_segments =
                out.stats.tcp_out_of_order_segments.saturating_add(1);
        }
        while self.buffered() > cap
            || self.ooo.as_ref().map_or(0, |o| o.buf.len()) > MAX_SEGMENTS_PER_DIR
        {
            if !self.skip_hole(out, true) {
                break;
            }
        }
    }

    /// The peer acknowledged everything before `ack`: holes before it will not
    /// be filled by the capture.
    fn on_ack<S: FlowSink<T>, T>(&mut self, ack: u32, out: &mut Out<'_, S, T>) {
        if !self.init || self.ooo.is_none() {
            return;
        }
        let rel = self.rel(ack);
        if rel <= 0 {
            return;
        }
        let ack_off = self.next_off.saturating_add(rel.unsigned_abs());
        while self.next_off < ack_off {
            let Some(first) = self.first_buffered() else {
                break;
            };
            if first <= ack_off {
                self.skip_hole(out, false);
            } else {
                let len = ack_off - self.next_off;
                out.gap(len, false);
                self.advance(len);
                break;
            }
        }
    }

    /// A FIN at sequence number `seq`.
    #[inline]
    fn on_fin(&mut self, seq: u32) {
        if !self.init {
            self.start(seq);
        }
        if !self.has_fin {
            self.fin_off_v = self.offset_of(seq).unwrap_or(self.next_off);
            self.has_fin = true;
        }
    }

    /// Connection is going away: declare every hole, deliver every buffered
    /// byte, and declare the bytes missing before a FIN.
    fn flush<S: FlowSink<T>, T>(&mut self, out: &mut Out<'_, S, T>) {
        while self.skip_hole(out, false) {}
        if let Some(fin) = self.fin_off()
            && fin > self.next_off
        {
            let len = fin - self.next_off;
            out.gap(len, false);
            self.advance(len);
        }
    }
}

impl Ooo {
    /// Buffers the positions of `[start, start + p.len())` not buffered yet
    /// (first received wins). Returns the bytes added.
    fn insert(&mut self, start: u64, p: &[u8], pieces: &mut Vec<(u64, u64)>) -> usize {
        let end = start.saturating_add(p.len() as u64);
        pieces.clear();
        let mut cur = start;
        if let Some((&k, v)) = self.buf.range(..start).next_back() {
            cur = cur.max(k.saturating_add(v.len() as u64).min(end));
        }
        for (&k, v) in self.buf.range(start..end) {
            if k > cur {
                pieces.push((cur, k));
            }
            cur = cur.max(k.saturating_add(v.len() as u64).min(end));
        }
        if cur < end {
            pieces.push((cur, end));
        }
        let mut added = 0;
        for &(a, b) in pieces.iter() {
            let (Ok(lo), Ok(hi)) = (usize::try_from(a - start), usize::try_from(b - start)) else {
                continue;
            };
            let Some(bytes) = p.get(lo..hi) else {
                continue;
            };
            self.insert_piece(a, bytes);
            added += bytes.len();
        }
        added
    }

    /// Adds a run at `a` that overlaps nothing buffered, merging it with the
    /// runs that end at `a` or start right after it.
    fn insert_piece(&mut self, a: u64, bytes: &[u8]) {
        let b = a.saturating_add(bytes.len() as u64);
        let next = self.buf.remove(&b);
        let prev = self
            .buf
            .range_mut(..a)
            .next_back()
            .filter(|(k, v)| k.saturating_add(v.len() as u64) == a);
        match prev {
            Some((_, v)) => {
                v.extend_from_slice(bytes);
                if let Some(n) = next {
                    v.extend_from_slice(&n);
                }
            }
            None => {
                let mut v = Vec::with_capacity(bytes.len() + next.as_ref().map_or(0, Vec::len));
                v.extend_from_slice(bytes);
                if let Some(n) = next {
                    v.extend_from_slice(&n);
                }
                self.buf.insert(a, v);
            }
        }
        self.buffered = self.buffered.saturating_add(bytes.len());
    }
}

/// One tracked connection, with the caller's state `T` for it.
#[derive(Debug)]
struct Flow<T> {
    id: FlowId,
    key: FlowKey,
    /// The client is the key's first endpoint (else its second); a bool, not a third address, to
    /// keep idle flows small (BENCHMARKS.md, peak RSS).
    client_first: bool,
    /// Latest capture time of a segment (max, so time going backwards is harmless).
    last_ts: TimestampNs,
    /// Key of this flow in `FlowTable::lru` (≤ `last_ts`).
    lru_ts: TimestampNs,
    /// Index of this flow's slot in the `FlowTable::lru` heap.
    heap_pos: u32,
    /// `[client→server, server→client]`.
    halves: [Half; 2],
    /// The caller's state for this connection ([`FlowSink::on_open`]).
    conn: T,
}

impl<T> Flow<T> {
    fn any_fin(&self) -> bool {
        self.halves.iter().any(|h| h.has_fin)
    }

    /// Index into `halves` of a segment, `src_first` telling whether its
    /// source is the key's first endpoint (see [`FlowKey::new`]). A
    /// connection from an endpoint to itself has `client_first` set (see
    /// [`FlowTable::open`]) and all its segments `src_first`: index 0.
    #[inline]
    fn dir_index(&self, src_first: bool) -> usize {
        if src_first == self.client_first { 0 } else { 1 }
    }
}

/// Direction of `halves[i]`.
#[inline]
fn dir_of(i: usize) -> Dir {
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

/// All tracked connections, each with the caller's state `T` (`()` for a
/// plain [`TcpSink`]; see [`FlowSink`]).
#[derive(Debug)]
pub struct FlowTable<T = ()> {
    cfg: TcpConfig,
    /// Flow storage; `None` slots are in `free`. Boxed: a `Vec` of inline flows
    /// keeps up to twice the live flows' size in spare capacity.
    slots: Vec<Option<Box<Flow<T>>>>,
    free: Vec<usize>,
    /// Slot index of every flow, by the hash of its [`FlowKey`] (compared
    /// against the key stored in the flow): 4 bytes plus a control byte per
    /// entry instead of a copy of the 40-byte key.
    by_key: hashbrown::HashTable<u32>,
    /// Seed of the `by_key` hashes, random per table (from the std's
    /// randomly keyed `RandomState`, i.e. the OS's random source).
    hasher: foldhash::fast::FixedState,
    /// Binary min-heap of slot indexes ordered by the flows' `(lru_ts, flow
    /// id)` (unique keys, so the minimum is the same flow a sorted index
    /// would give first); each flow knows its position (`heap_pos`). 4 bytes
    /// per flow instead of a B-tree entry.
    lru: Vec<u32>,
    /// `(buffered bytes, flow id, slot, half)` for every half with bytes buffered.
    by_buffer: BTreeSet<(usize, u64, usize, usize)>,
    buffered_total: usize,
    next_id: u64,
    /// Scratch for `Half::insert`.
    pieces: Vec<(u64, u64)>,
    /// Tests only: every segment takes the general path (the differential
    /// test of the pure-ACK fast path).
    #[cfg(test)]
    general_only: bool,
    /// Slot of the flow of the previous segment, tried before the hash
    /// table (segments come in runs per connection); its key is always
    /// compared, so a stale or freed slot is harmless.
    last: usize,
}

impl FlowTable {
    /// An empty table with limits `cfg`, for a plain [`TcpSink`].
    pub fn new(cfg: TcpConfig) -> Self {
        FlowTable::with_conn_state(cfg)
    }
}

impl<T> FlowTable<T> {
    /// An empty table with limits `cfg` that keeps a `T` per connection,
    /// created by [`FlowSink::on_open`] and handed to every later event.
    pub fn with_conn_state(cfg: TcpConfig) -> Self {
        FlowTable {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            by_key: hashbrown::HashTable::new(),
            hasher: foldhash::fast::FixedState::with_seed(
                std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish(),
            ),
            lru: Vec::new(),
            by_buffer: BTreeSet::new(),
            buffered_total: 0,
            next_id: 0,
            pieces: Vec::new(),
            last: usize::MAX,
            #[cfg(test)]
            general_only: false,
        }
    }

    /// Whether the fast paths are off (tests only; always `false` otherwise).
    #[cfg(test)]
    fn general_only(&self) -> bool {
        self.general_only
    }

    /// Whether the fast paths are off (tests only; always `false` otherwise).
    #[cfg(not(test))]
    #[inline(always)]
    fn general_only(&self) -> bool {
        false
    }

    /// Feeds one segment captured at `ts`.
    ///
    /// Emits, for this and possibly other connections (eviction, the total
    /// buffer cap), the events the segment causes. Never panics.
    #[inline(always)]
    pub fn ingest(
        &mut self,
        ts: TimestampNs,
        pkt: &TcpPacket<'_>,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) {
        // The key is built at the call site (inlined), where the caller may
        // know the address family (the pipeline's IPv4 fast path does).
        let (key, src_first) = FlowKey::new(pkt.src, pkt.dst);
        self.ingest_keyed(ts, &key, src_first, pkt, stats, sink);
    }

    /// [`FlowTable::ingest`] with the segment's key and whether its source
    /// is the key's first endpoint. A pure ACK (no payload, SYN, FIN or
    /// RST) on the flow of the previous segment with nothing buffered is
    /// handled here, inline at the caller: it only refreshes the activity
    /// time, as [`FlowTable::ingest_general`] would (same tests, in the same
    /// order); every other segment goes there (one call, out of line).
    #[inline(always)]
    fn ingest_keyed(
        &mut self,
        ts: TimestampNs,
        key: &FlowKey,
        src_first: bool,
        pkt: &TcpPacket<'_>,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) {
        let flags = pkt.flags;
        if pkt.payload.is_empty()
            && !(flags.syn || flags.fin || flags.rst)
            && !self.general_only()
            && let Some(flow) = self.slots.get_mut(self.last).and_then(Option::as_deref_mut)
            && flow.key == *key
            && !flow.halves.iter().any(|h| h.ooo.is_some())
        {
            flow.last_ts = flow.last_ts.max(ts);
            if flow.last_ts.saturating_sub(flow.lru_ts) >= LRU_GRANULARITY_NS {
                flow.lru_ts = flow.last_ts;
                let pos = flow.heap_pos as usize;
                self.sift_down(pos);
            }
            self.enforce_total(ts, stats, sink);
            return;
        }
        self.ingest_general(ts, key, src_first, pkt, stats, sink);
    }

    /// [`FlowTable::ingest_keyed`] for any segment.
    // (The pure-ACK test reads in the order of the checks: clippy's
    // "simplified" form of it made the release build slower.)
    #[allow(clippy::nonminimal_bool)]
    fn ingest_general(
        &mut self,
        ts: TimestampNs,
        key: &FlowKey,
        src_first: bool,
        pkt: &TcpPacket<'_>,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) {
        let flags = pkt.flags;
        let mut slot = self.find(key);
        if let Some(s) = slot
            && flags.syn
            && !flags.ack
            && !flags.rst
            && let Some(f) = self.flow(s)
        {
            let h = &f.halves[f.dir_index(src_first)];
            let retransmitted_syn = h.syn_seq() == Some(pkt.seq) && !f.any_fin();
            if !retransmitted_syn {
                let reason = if f.any_fin() {
                    CloseReason::Fin
                } else {
                    CloseReason::Rst
                };
                self.close(s, ts, reason, stats, sink);
                slot = None;
            }
        }
        let slot = match slot {
            Some(s) => s,
            None => {
                if flags.rst || (pkt.payload.is_empty() && !flags.syn) {
                    stats.tcp_segments_without_flow =
                        stats.tcp_segments_without_flow.saturating_add(1);
                    return;
                }
                self.open(ts, (*key, src_first), pkt, stats, sink)
            }
        };
        self.last = slot;
        let general_only = self.general_only();
        // One look-up of the flow for the activity time, the segment and the
        // buffer accounting (most segments leave both halves without
        // out-of-order bytes: then there is nothing to account).
        let (close, resift, before) = match self.slots.get_mut(slot).and_then(Option::as_deref_mut)
        {
            Some(flow) => {
                flow.last_ts = flow.last_ts.max(ts);
                // The LRU key only grows: the flow can only move down the heap
                // (re-keyed after the segment; nothing here reads the heap).
                let resift = if flow.last_ts.saturating_sub(flow.lru_ts) >= LRU_GRANULARITY_NS {
                    flow.lru_ts = flow.last_ts;
                    Some(flow.heap_pos as usize)
                } else {
                    None
                };
                let had_ooo = flow.halves.iter().any(|h| h.ooo.is_some());
                // A pure ACK (no payload, SYN, FIN or RST) while nothing is
                // buffered changes nothing but the activity time: `process`
                // would start no stream, deliver nothing and skip `on_ack`
                // (which acts on buffered bytes only).
                if !had_ooo
                    && pkt.payload.is_empty()
                    && !(flags.syn || flags.fin || flags.rst)
                    && !general_only
                {
                    if let Some(pos) = resift {
                        self.sift_down(pos);
                    }
                    self.enforce_total(ts, stats, sink);
                    return;
                }
                let before = if had_ooo {
                    [flow.halves[0].buffered(), flow.halves[1].buffered()]
                } else {
                    [0, 0]
                };
                let close = process(
                    flow,
                    ts,
                    pkt,
                    src_first,
                    &self.cfg,
                    &mut self.pieces,
                    stats,
                    sink,
                );
                let changed = (had_ooo || flow.halves.iter().any(|h| h.ooo.is_some()))
                    && [flow.halves[0].buffered(), flow.halves[1].buffered()] != before;
                (close, resift, changed.then_some(before))
            }
            None => (None, None, None),
        };
        if let Some(pos) = resift {
            self.sift_down(pos);
        }
        if let Some(before) = before {
            self.rebuffer(slot, before);
        }
        if let Some(reason) = close {
            self.close(slot, ts, reason, stats, sink);
        }
        self.enforce_total(ts, stats, sink);
    }

    /// Closes connections idle since before `now - idle_timeout_ns` (no
    /// segment for strictly longer than `idle_timeout_ns`), delivering what
    /// they buffered (gaps declared), with [`CloseReason::IdleTimeout`] at
    /// `now`. Cost: O(log n) per connection examined; cheap to call once per
    /// capture second.
    pub fn expire(&mut self, now: TimestampNs, stats: &mut WireStats, sink: &mut impl FlowSink<T>) {
        while let Some(&top) = self.lru.first() {
            let (slot, (kts, _)) = (top as usize, self.lru_key(top));
            if now.saturating_sub(kts) <= self.cfg.idle_timeout_ns {
                break;
            }
            if self.fix_stale(slot) {
                continue;
            }
            self.close(slot, now, CloseReason::IdleTimeout, stats, sink);
        }
    }

    /// End of input: delivers what is buffered (declaring gaps) and closes
    /// every connection with [`CloseReason::EndOfInput`] at `ts`, in
    /// [`FlowId`] order. The table is empty afterwards and can be reused.
    pub fn finish(&mut self, ts: TimestampNs, stats: &mut WireStats, sink: &mut impl FlowSink<T>) {
        let mut order: Vec<(u64, usize)> = self
            .lru
            .iter()
            .map(|&s| (self.lru_key(s).1, s as usize))
            .collect();
        order.sort_unstable();
        for (_, slot) in order {
            self.close(slot, ts, CloseReason::EndOfInput, stats, sink);
        }
    }

    /// Connections currently tracked.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// `true` when no connection is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Out-of-order bytes currently buffered over all connections.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_total
    }

    /// Slot of the flow with key `key`.
    fn find(&self, key: &FlowKey) -> Option<usize> {
        if self.flow(self.last).is_some_and(|f| f.key == *key) {
            return Some(self.last);
        }
        let slots = &self.slots;
        self.by_key
            .find(key.hash(&self.hasher), |&s| {
                slots
                    .get(s as usize)
                    .and_then(Option::as_deref)
                    .is_some_and(|f| f.key == *key)
            })
            .map(|&s| s as usize)
    }

    fn flow(&self, slot: usize) -> Option<&Flow<T>> {
        self.slots.get(slot).and_then(Option::as_deref)
    }

    fn buffered_of(&self, slot: usize) -> [usize; 2] {
        self.flow(slot)
            .map_or([0, 0], |f| [f.halves[0].buffered(), f.halves[1].buffered()])
    }

    /// When the flow in `slot` (the top of the LRU heap) has its LRU key
    /// behind its activity, re-keys it and returns `true`.
    fn fix_stale(&mut self, slot: usize) -> bool {
        match self.slots.get_mut(slot).and_then(Option::as_mut) {
            Some(f) => {
                if f.last_ts == f.lru_ts {
                    return false;
                }
                f.lru_ts = f.last_ts;
                let pos = f.heap_pos as usize;
                self.sift_down(pos);
                true
            }
            None => {
                // Cannot happen (index out of sync); drop the entry to make progress.
                if let Some(pos) = self.lru.iter().position(|&s| s as usize == slot) {
                    self.heap_remove(pos);
                }
                true
            }
        }
    }

    /// The LRU key `(lru_ts, flow id)` of the flow in `slot` (`(MAX, MAX)`
    /// for an empty slot, which cannot be in the heap).
    fn lru_key(&self, slot: u32) -> (TimestampNs, u64) {
        self.slots
            .get(slot as usize)
            .and_then(Option::as_deref)
            .map_or((u64::MAX, u64::MAX), |f| (f.lru_ts, f.id.0))
    }

    /// Records that the flow in `slot` sits at heap index `pos`.
    fn set_heap_pos(&mut self, slot: u32, pos: usize) {
        if let Some(f) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
            // `pos < lru.len() <= slots.len() <= u32::MAX` (see `open`).
            f.heap_pos = pos as u32;
        }
    }

    /// Moves the entry at heap index `pos` towards the root while it is
    /// smaller than its parent.
    fn sift_up(&mut self, mut pos: usize) {
        let Some(&item) = self.lru.get(pos) else {
            return;
        };
        let key = self.lru_key(item);
        while pos > 0 {
            let parent = (pos - 1) / 2;
            let p = self.lru[parent];
            if self.lru_key(p) <= key {
                break;
            }
            self.lru[pos] = p;
            self.set_heap_pos(p, pos);
            pos = parent;
        }
        self.lru[pos] = item;
        self.set_heap_pos(item, pos);
    }

    /// Moves the entry at heap index `pos` towards the leaves while a child
    /// is smaller.
    fn sift_down(&mut self, mut pos: usize) {
        let Some(&item) = self.lru.get(pos) else {
            return;
        };
        let key = self.lru_key(item);
        let n = self.lru.len();
        loop {
            let left = 2 * pos + 1;
            if left >= n {
                break;
            }
            let mut child = left;
            let mut child_key = self.lru_key(self.lru[left]);
            if left + 1 < n {
                let right_key = self.lru_key(self.lru[left + 1]);
                if right_key < child_key {
                    child = left + 1;
                    child_key = right_key;
                }
            }
            if key <= child_key {
                break;
            }
            let c = self.lru[child];
            self.lru[pos] = c;
            self.set_heap_pos(c, pos);
            pos = child;
        }
        self.lru[pos] = item;
        self.set_heap_pos(item, pos);
    }

    /// Removes the entry at heap index `pos`.
    fn heap_remove(&mut self, pos: usize) {
        let Some(last) = self.lru.pop() else {
            return;
        };
        if pos < self.lru.len() {
            self.lru[pos] = last;
            self.set_heap_pos(last, pos);
            self.sift_down(pos);
            let pos = self
                .slots
                .get(last as usize)
                .and_then(Option::as_deref)
                .map_or(pos, |f| f.heap_pos as usize);
            self.sift_up(pos);
        }
    }

    /// Updates `by_buffer` and `buffered_total` after a flow's halves changed.
    fn rebuffer(&mut self, slot: usize, before: [usize; 2]) {
        let Some(f) = self.slots.get(slot).and_then(Option::as_ref) else {
            return;
        };
        for (i, &old) in before.iter().enumerate() {
            let now = f.halves[i].buffered();
            if now == old {
                continue;
            }
            if old > 0 {
                self.by_buffer.remove(&(old, f.id.0, slot, i));
            }
            if now > 0 {
                self.by_buffer.insert((now, f.id.0, slot, i));
            }
            self.buffered_total = self.buffered_total.saturating_sub(old).saturating_add(now);
        }
    }

    /// While the table buffers more than the total cap, skips the first hole
    /// of the largest buffer. (The check inline, the work out of line: it is
    /// called for every segment and almost never has anything to do.)
    #[inline(always)]
    fn enforce_total(
        &mut self,
        ts: TimestampNs,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) {
        if self.buffered_total > self.cfg.max_buffered_bytes_total {
            self.enforce_total_slow(ts, stats, sink);
        }
    }

    /// [`FlowTable::enforce_total`] once the table is over the cap.
    #[inline(never)]
    fn enforce_total_slow(
        &mut self,
        ts: TimestampNs,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) {
        while self.buffered_total > self.cfg.max_buffered_bytes_total {
            let Some(&(_, _, slot, i)) = self.by_buffer.last() else {
                break;
            };
            let before = self.buffered_of(slot);
            let progressed = match self.slots.get_mut(slot).and_then(Option::as_mut) {
                Some(f) => {
                    let Flow {
                        id, halves, conn, ..
                    } = &mut **f;
                    let mut out = Out {
                        flow: *id,
                        dir: dir_of(i),
                        ts,
                        stats: &mut *stats,
                        sink: &mut *sink,
                        conn,
                    };
                    halves
                        .get_mut(i)
                        .is_some_and(|h| h.skip_hole(&mut out, true))
                }
                None => false,
            };
            self.rebuffer(slot, before);
            if !progressed {
                break;
            }
        }
    }

    /// Creates the flow for `pkt` (evicting when full) and emits `Opened`.
    fn open(
        &mut self,
        ts: TimestampNs,
        (key, src_first): (FlowKey, bool),
        pkt: &TcpPacket<'_>,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) -> usize {
        // Slots are indexed by u32 in `by_key`.
        let max = self.cfg.max_flows.clamp(1, u32::MAX as usize);
        while self.by_key.len() >= max {
            let Some(&top) = self.lru.first() else {
                break;
            };
            let slot = top as usize;
            if self.fix_stale(slot) {
                continue;
            }
            self.close(slot, ts, CloseReason::Evicted, stats, sink);
        }
        let flags = pkt.flags;
        let (client_is_src, client_isn, saw_syn) = if flags.syn && !flags.ack {
            (true, pkt.seq, true)
        } else if flags.syn {
            (false, pkt.ack.wrapping_sub(1), true)
        } else if dst_is_server(pkt.src.port(), pkt.dst.port()) {
            (true, pkt.seq, false)
        } else {
            let isn = if flags.ack { pkt.ack } else { 0 };
            (false, isn, false)
        };
        let (client, server) = if client_is_src {
            (pkt.src, pkt.dst)
        } else {
            (pkt.dst, pkt.src)
        };
        let id = FlowId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        stats.flows_opened = stats.flows_opened.saturating_add(1);
        let conn = sink.on_open(FlowOpened {
            flow: id,
            client,
            server,
            client_isn,
            saw_syn,
            ts,
        });
        let flow = Flow {
            id,
            key,
            // An endpoint talking to itself: every segment is `src_first`
            // and goes to the client half (see `dir_index`).
            client_first: client_is_src == src_first || pkt.src == pkt.dst,
            last_ts: ts,
            lru_ts: ts,
            heap_pos: 0,
            halves: [Half::default(), Half::default()],
            conn,
        };
        let slot = match self.free.pop() {
            Some(s) if s < self.slots.len() => {
                self.slots[s] = Some(Box::new(flow));
                s
            }
            _ => {
                self.slots.push(Some(Box::new(flow)));
                self.slots.len() - 1
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_key.insert_unique(
            key.hash(hasher),
            // `slots.len() <= max <= u32::MAX` (see above).
            slot as u32,
            |&s| {
                slots
                    .get(s as usize)
                    .and_then(Option::as_deref)
                    .map_or(0, |f| f.key.hash(hasher))
            },
        );
        // `slot < slots.len() <= max <= u32::MAX` (see above).
        self.lru.push(slot as u32);
        self.sift_up(self.lru.len() - 1);
        slot
    }

    /// Flushes both halves, emits `Closed`, counts it and frees the slot.
    fn close(
        &mut self,
        slot: usize,
        ts: TimestampNs,
        reason: CloseReason,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) {
        let before = self.buffered_of(slot);
        let Some(f) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Flow {
            id, halves, conn, ..
        } = &mut **f;
        for (i, h) in halves.iter_mut().enumerate() {
            let mut out = Out {
                flow: *id,
                dir: dir_of(i),
                ts,
                stats: &mut *stats,
                sink: &mut *sink,
                conn: &mut *conn,
            };
            h.flush(&mut out);
        }
        // (Flushing only empties buffers: nothing buffered before, nothing to account.)
        if before != [0, 0] {
            self.rebuffer(slot, before);
        }
        let Some(mut f) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if let Ok(e) = self
            .by_key
            .find_entry(f.key.hash(&self.hasher), |&s| s as usize == slot)
        {
            e.remove();
        }
        if self.lru.get(f.heap_pos as usize) == Some(&(slot as u32)) {
            self.heap_remove(f.heap_pos as usize);
        }
        self.free.push(slot);
        let counter = match reason {
            CloseReason::Fin | CloseReason::Rst => &mut stats.flows_closed,
            CloseReason::IdleTimeout => &mut stats.flows_idle_timeout,
            CloseReason::Evicted => &mut stats.flows_evicted,
            CloseReason::EndOfInput => &mut stats.flows_end_of_input,
        };
        *counter = counter.saturating_add(1);
        sink.on_flow_event(
            &mut f.conn,
            TcpEvent::Closed {
                flow: f.id,
                ts,
                reason,
            },
        );
    }
}

/// Applies one segment to its flow; returns why the flow must close now, if so.
#[allow(clippy::too_many_arguments)] // private; one call site
#[inline(always)]
fn process<S: FlowSink<T>, T>(
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
    //! Internal invariants of the table under arbitrary input.

    use super::*;
    use crate::link::TcpFlags;
    use proptest::prelude::*;

    struct Null;
    impl TcpSink for Null {
        fn on_tcp_event(&mut self, _: TcpEvent<'_>) {}
    }

    impl<T> FlowTable<T> {
        /// Every index agrees with the flows; every buffer is well formed.
        fn check(&self) -> Result<(), String> {
            let mut total = 0;
            let mut n = 0;
            for (slot, f) in self.slots.iter().enumerate() {
                let Some(f) = f else {
                    if !self.free.contains(&slot) {
                        return Err(format!("empty slot {slot} not free"));
                    }
                    continue;
                };
                n += 1;
                if self.find(&f.key) != Some(slot) {
                    return Err(format!("by_key wrong for {slot}"));
                }
                let pos = f.heap_pos as usize;
                if self.lru.get(pos) != Some(&(slot as u32)) || f.lru_ts > f.last_ts {
                    return Err(format!("lru wrong for {slot}"));
                }
                if pos > 0 && self.lru_key(self.lru[(pos - 1) / 2]) > (f.lru_ts, f.id.0) {
                    return Err(format!("lru heap order broken at {slot}"));
                }
                for (i, h) in f.halves.iter().enumerate() {
                    let mut sum = 0;
                    let mut prev_end: Option<u64> = None;
                    if h.ooo.as_ref().is_some_and(|o| o.buf.is_empty()) {
                        return Err("empty out-of-order buffer kept".into());
                    }
                    for (&k, v) in h.ooo.iter().flat_map(|o| o.buf.iter()) {
                        if v.is_empty() || k <= h.next_off {
                            return Err(format!("bad run at {k} (next {})", h.next_off));
                        }
                        if prev_end.is_some_and(|e| k <= e) {
                            return Err(format!("overlapping/adjacent runs at {k}"));
                        }
                        prev_end = Some(k + v.len() as u64);
                        sum += v.len();
                    }
                    if sum != h.buffered() {
                        return Err(format!("buffered {} != {sum}", h.buffered()));
                    }
                    if (h.buffered() > 0)
                        != self.by_buffer.contains(&(h.buffered(), f.id.0, slot, i))
                    {
                        return Err("by_buffer wrong".into());
                    }
                    total += sum;
                }
            }
            if n != self.by_key.len() || n != self.lru.len() || total != self.buffered_total {
                return Err("counts disagree".into());
            }
            if self.by_buffer.iter().map(|e| e.0).sum::<usize>() != total {
                return Err("by_buffer total".into());
            }
            Ok(())
        }
    }

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

    /// Records the direction and bytes of every `Data` event.
    struct Dirs(Vec<(Dir, Vec<u8>)>);
    impl TcpSink for Dirs {
        fn on_tcp_event(&mut self, ev: TcpEvent<'_>) {
            if let TcpEvent::Data { dir, data, .. } = ev {
                self.0.push((dir, data.to_vec()));
            }
        }
    }

    /// An endpoint talking to itself: every segment is one stream, in the
    /// client direction, whichever segment opened the connection (the SYN+ACK
    /// opener makes the client guess "not the source").
    #[test]
    fn a_connection_to_itself_is_one_client_stream() {
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap_or_else(|_| unreachable!());
        let seg = |seq: u32, syn: bool, ack: bool, payload: &'static [u8]| TcpPacket {
            src: a,
            dst: a,
            seq,
            ack: 1,
            flags: TcpFlags {
                syn,
                ack,
                fin: false,
                rst: false,
            },
            payload,
        };
        for opener in [
            seg(99, true, false, b""),
            seg(99, true, true, b""),
            seg(100, false, true, b"x"),
        ] {
            let mut t = FlowTable::new(TcpConfig::default());
            let mut stats = WireStats::default();
            let mut sink = Dirs(Vec::new());
            let data_start = if opener.payload.is_empty() { 100 } else { 101 };
            t.ingest(1, &opener, &mut stats, &mut sink);
            t.ingest(
                2,
                &seg(data_start, false, true, b"ab"),
                &mut stats,
                &mut sink,
            );
            t.ingest(
                3,
                &seg(data_start + 2, false, true, b"cd"),
                &mut stats,
                &mut sink,
            );
            assert!(sink.0.iter().all(|(d, _)| *d == Dir::ClientToServer));
            let bytes: Vec<u8> = sink.0.iter().flat_map(|(_, b)| b.clone()).collect();
            let want: &[u8] = if opener.payload.is_empty() {
                b"abcd"
            } else {
                b"xabcd"
            };
            assert_eq!(bytes, want);
            assert_eq!(t.len(), 1);
            assert!(t.check().is_ok());
        }
    }

    /// The per-connection memory budget (BENCHMARKS.md, peak RSS at 100k
    /// flows): a flow with its HTTP state fits mimalloc's 384-byte class.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn flow_with_http_state_fits_384_bytes() {
        assert!(std::mem::size_of::<Flow<crate::conn::HttpConnection>>() <= 384);
        assert!(std::mem::size_of::<Half>() <= 40);
    }

    /// Records the order of closes.
    struct Closes(Vec<(u64, CloseReason)>);
    impl TcpSink for Closes {
        fn on_tcp_event(&mut self, ev: TcpEvent<'_>) {
            if let TcpEvent::Closed { flow, reason, .. } = ev {
                self.0.push((flow.0, reason));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// The eviction and idle-timeout contract: the flow closed first is
        /// always the one with the smallest `(last activity, flow id)`
        /// (equal timestamps in flow-id order), whatever the LRU index's lazy
        /// re-keying does; time may go backwards (activity is a maximum).
        #[test]
        fn evictions_and_expiry_follow_last_activity_then_flow_id(
            ops in proptest::collection::vec((0u16..12, 0u8..8, any::<bool>()), 1..200),
            max_flows in 1usize..6,
        ) {
            let cfg = TcpConfig {
                max_flows,
                idle_timeout_ns: 3 * LRU_GRANULARITY_NS,
                ..TcpConfig::default()
            };
            let mut t = FlowTable::new(cfg);
            let mut stats = WireStats::default();
            let mut sink = Closes(Vec::new());
            // Model: port → (flow id, last activity).
            let mut live: std::collections::BTreeMap<u16, (u64, u64)> = Default::default();
            let mut expected = Vec::new();
            let mut next_id = 0u64;
            let mut ts = 10 * LRU_GRANULARITY_NS;
            let server: SocketAddr = "10.0.0.1:80".parse().unwrap_or_else(|_| unreachable!());
            for (port, step, expire) in ops {
                // Steps: equal times, small and granularity-sized moves, backwards.
                ts = match step {
                    0 | 1 => ts,
                    2 => ts + 1,
                    3 => ts + LRU_GRANULARITY_NS / 2,
                    4 => ts + LRU_GRANULARITY_NS,
                    5 => ts + 2 * LRU_GRANULARITY_NS + 7,
                    6 => ts.saturating_sub(LRU_GRANULARITY_NS),
                    _ => ts.saturating_sub(3),
                };
                if expire {
                    t.expire(ts, &mut stats, &mut sink);
                    loop {
                        let oldest = live.iter().map(|(&p, &(id, last))| (last, id, p)).min();
                        match oldest {
                            Some((last, id, p)) if ts.saturating_sub(last) > cfg.idle_timeout_ns => {
                                live.remove(&p);
                                expected.push((id, CloseReason::IdleTimeout));
                            }
                            _ => break,
                        }
                    }
                    continue;
                }
                let src = SocketAddr::from(([10, 0, 0, 2], 40000 + port));
                let pkt = TcpPacket {
                    src,
                    dst: server,
                    seq: 1,
                    ack: 1,
                    flags: TcpFlags { syn: false, ack: true, fin: false, rst: false },
                    payload: b"x",
                };
                t.ingest(ts, &pkt, &mut stats, &mut sink);
                match live.get_mut(&port) {
                    Some((_, last)) => *last = (*last).max(ts),
                    None => {
                        if live.len() >= max_flows {
                            let oldest = live.iter().map(|(&p, &(id, last))| (last, id, p)).min();
                            if let Some((_, id, p)) = oldest {
                                live.remove(&p);
                                expected.push((id, CloseReason::Evicted));
                            }
                        }
                        live.insert(port, (next_id, ts));
                        next_id += 1;
                    }
                }
                prop_assert!(t.check().is_ok(), "{:?}", t.check());
            }
            prop_assert_eq!(&sink.0, &expected);
        }
    }

    /// The endpoints of the arbitrary-segment proptests: a server and two clients.
    fn three_endpoints() -> [SocketAddr; 3] {
        [
            "10.0.0.1:80".parse().unwrap_or_else(|_| unreachable!()),
            "10.0.0.2:40000".parse().unwrap_or_else(|_| unreachable!()),
            "10.0.0.3:40000".parse().unwrap_or_else(|_| unreachable!()),
        ]
    }

    /// Tiny caps and a 200 ns idle timeout, so eviction, caps and expiry all happen.
    fn tiny_config(max_flows: usize, per_dir: usize, total: usize) -> TcpConfig {
        TcpConfig {
            max_flows,
            max_buffered_bytes_per_dir: per_dir,
            max_buffered_bytes_total: total,
            idle_timeout_ns: 200,
        }
    }

    /// Segment `(src, dst, seq, ack, flag byte)` between `eps`, sequence numbers
    /// around wrap-around; SYN when `fl & syn_mask == 0`, ACK on bit 4, FIN on
    /// bits 5–6 both set, RST on bits 7 and 3 both set.
    fn arbitrary_segment<'p>(
        eps: &[SocketAddr; 3],
        (a, b, seq, ack, fl): (usize, usize, u32, u32, u8),
        syn_mask: u8,
        payload: &'p [u8],
    ) -> TcpPacket<'p> {
        TcpPacket {
            src: eps[a],
            dst: eps[b],
            seq: seq.wrapping_sub(40),
            ack: ack.wrapping_sub(40),
            flags: TcpFlags {
                syn: fl & syn_mask == 0,
                ack: fl & 0x10 != 0,
                fin: fl & 0x60 == 0x60,
                rst: fl & 0x80 != 0 && fl & 0x08 != 0,
            },
            payload,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn invariants_hold_under_arbitrary_segments(
            ops in proptest::collection::vec(
                (0usize..3, 0usize..3, 0u32..96, 0u32..96, any::<u8>(), 0usize..24, 0u64..300),
                0..150,
            ),
            max_flows in 1usize..4,
            per_dir in 0usize..80,
            total in 0usize..120,
        ) {
            let eps = three_endpoints();
            let cfg = tiny_config(max_flows, per_dir, total);
            let mut t = FlowTable::new(cfg);
            let mut stats = WireStats::default();
            let payload = [7u8; 24];
            let mut ts = 0;
            for (k, (a, b, seq, ack, fl, len, dt)) in ops.iter().enumerate() {
                ts += dt;
                let pkt = arbitrary_segment(&eps, (*a, *b, *seq, *ack, *fl), 0x07, &payload[..*len]);
                t.ingest(ts, &pkt, &mut stats, &mut Null);
                prop_assert!(t.check().is_ok(), "{:?}", t.check());
                prop_assert!(t.buffered_bytes() <= total);
                if k % 7 == 0 {
                    t.expire(ts, &mut stats, &mut Null);
                    prop_assert!(t.check().is_ok(), "{:?}", t.check());
                }
            }
            t.finish(ts, &mut stats, &mut Null);
            prop_assert!(t.check().is_ok(), "{:?}", t.check());
            prop_assert!(t.is_empty());
        }
    }

    /// Records every event, rendered.
    struct Log(Vec<String>);
    impl TcpSink for Log {
        fn on_tcp_event(&mut self, ev: TcpEvent<'_>) {
            self.0.push(format!("{ev:?}"));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The pure-ACK fast path (a segment without payload, SYN, FIN or RST
        /// while nothing is buffered only moves the activity time) gives the
        /// same events, counters and table state as the general path, under
        /// arbitrary segments, pure ACKs in abundance, with expiry and caps.
        #[test]
        fn pure_ack_fast_path_matches_the_general_path(
            ops in proptest::collection::vec(
                (0usize..3, 0usize..3, 0u32..96, 0u32..96, any::<u8>(), prop_oneof![Just(0usize), 0usize..24], 0u64..300),
                0..150,
            ),
            max_flows in 1usize..4,
            per_dir in 0usize..80,
            total in 0usize..120,
        ) {
            let eps = three_endpoints();
            let cfg = tiny_config(max_flows, per_dir, total);
            let mut fast = FlowTable::new(cfg);
            let mut slow = FlowTable::new(cfg);
            slow.general_only = true;
            let (mut fs, mut ss) = (WireStats::default(), WireStats::default());
            let (mut fl_log, mut sl_log) = (Log(Vec::new()), Log(Vec::new()));
            let payload = [7u8; 24];
            let mut ts = 0;
            for (k, (a, b, seq, ack, fl, len, dt)) in ops.iter().enumerate() {
                ts += dt;
                // Mostly plain ACKs: SYN on 1 in 16 flag bytes.
                let pkt = arbitrary_segment(&eps, (*a, *b, *seq, *ack, *fl), 0x0f, &payload[..*len]);
                fast.ingest(ts, &pkt, &mut fs, &mut fl_log);
                slow.ingest(ts, &pkt, &mut ss, &mut sl_log);
                if k % 7 == 0 {
                    fast.expire(ts, &mut fs, &mut fl_log);
                    slow.expire(ts, &mut ss, &mut sl_log);
                }
                prop_assert_eq!(&fl_log.0, &sl_log.0);
                prop_assert_eq!(format!("{fs:?}"), format!("{ss:?}"));
                prop_assert_eq!(format!("{:?}", fast.slots), format!("{:?}", slow.slots));
                prop_assert_eq!(&fast.lru, &slow.lru);
            }
            fast.finish(ts, &mut fs, &mut fl_log);
            slow.finish(ts, &mut ss, &mut sl_log);
            prop_assert_eq!(&fl_log.0, &sl_log.0);
            prop_assert_eq!(format!("{fs:?}"), format!("{ss:?}"));
        }
    }
}
