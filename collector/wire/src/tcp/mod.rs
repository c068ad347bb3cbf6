//! TCP reassembly: per connection and direction, bytes in sequence order.
//!
//! Files: `half.rs` (one direction: delivery point, out-of-order buffer,
//! gaps), `flow.rs` (one connection: key, halves, client guess, one segment
//! applied), `lru.rs` (the indexed LRU), `table.rs` ([`FlowTable`]).
//!
//! [`FlowTable::ingest`] takes decoded segments ([`TcpPacket`](crate::link::TcpPacket)) in capture
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

mod flow;
mod half;
mod lru;
mod table;

pub use table::FlowTable;

use crate::{Dir, FlowId, TimestampNs};
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
