//! TCP reassembly: per connection and direction, bytes in sequence order.
//! (STUB: filled in by the link/tcp work.)

use crate::link::TcpPacket;
use crate::stats::WireStats;
use crate::{Dir, FlowId, TimestampNs};
use std::net::SocketAddr;

/// Limits of the flow table. Memory is bounded by
/// `max_flows × (per-flow overhead) + max_buffered_bytes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConfig {
    /// Connections tracked at once; the least recently active is evicted beyond it.
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
    Fin,
    /// A RST was seen.
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
        /// Client ISN from the SYN, else the first client sequence number seen.
        client_isn: u32,
        /// Whether the handshake was captured (else the capture began mid-connection).
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

/// All tracked connections.
#[derive(Debug)]
pub struct FlowTable {
    cfg: TcpConfig,
}

impl FlowTable {
    /// An empty table with limits `cfg`.
    pub fn new(cfg: TcpConfig) -> Self {
        FlowTable { cfg }
    }

    /// Feeds one segment captured at `ts`.
    pub fn ingest(
        &mut self,
        ts: TimestampNs,
        pkt: &TcpPacket<'_>,
        stats: &mut WireStats,
        sink: &mut impl TcpSink,
    ) {
        let _ = (ts, pkt, stats, sink, &self.cfg);
    }

    /// Closes connections idle since before `now - idle_timeout_ns`.
    pub fn expire(&mut self, now: TimestampNs, stats: &mut WireStats, sink: &mut impl TcpSink) {
        let _ = (now, stats, sink);
    }

    /// End of input: delivers what is buffered (declaring gaps) and closes every connection.
    pub fn finish(&mut self, ts: TimestampNs, stats: &mut WireStats, sink: &mut impl TcpSink) {
        let _ = (ts, stats, sink);
    }

    /// Connections currently tracked.
    pub fn len(&self) -> usize {
        0
    }

    /// `true` when no connection is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Out-of-order bytes currently buffered over all connections.
    pub fn buffered_bytes(&self) -> usize {
        0
    }
}
