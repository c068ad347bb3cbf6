//! Counters of everything the wire layer drops or repairs.
//!
//! One plain struct of `u64`s, owned by whoever drives the pipeline, passed by
//! `&mut` into each stage. No atomics: the pipeline is single-threaded. Every
//! field is a monotonically increasing count since start.

/// Counters for the link, TCP and HTTP stages. Units are packets, bytes or
/// events as each field says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Frames handed to [`crate::link::decode_packet`].
    pub packets: u64,
    /// Bytes of those frames (captured length).
    pub packet_bytes: u64,
    /// Frames that were not TCP over IPv4/IPv6 (ARP, UDP, ICMP, ...), dropped.
    pub packets_not_tcp: u64,
    /// Frames whose headers could not be decoded (truncated or malformed), dropped.
    pub packets_malformed: u64,
    /// Frames of a link type we do not decode, dropped.
    pub packets_unsupported_link: u64,
    /// IP fragments (not reassembled), dropped.
    pub packets_fragmented: u64,

    /// TCP connections created in the flow table.
    pub flows_opened: u64,
    /// Connections closed by FIN from both sides or by RST (also: replaced by
    /// a new SYN on the same endpoint pair; see [`crate::tcp::CloseReason`]).
    pub flows_closed: u64,
    /// Connections closed by the idle timeout.
    pub flows_idle_timeout: u64,
    /// Connections evicted because the flow table was full (`max_flows`).
    pub flows_evicted: u64,
    /// TCP payload bytes delivered in order to the HTTP layer.
    pub tcp_bytes_delivered: u64,
    /// Segments whose payload added nothing: complete retransmissions of
    /// delivered or already-buffered bytes, or bytes before the stream start.
    pub tcp_retransmitted_segments: u64,
    /// Segments buffered because they arrived ahead of a hole.
    pub tcp_out_of_order_segments: u64,
    /// Gaps declared (a hole that was skipped over instead of waited for).
    pub tcp_gaps: u64,
    /// Bytes skipped over in those gaps.
    pub tcp_gap_bytes: u64,
    /// Out-of-order bytes dropped because a direction's buffer cap was hit.
    /// The reassembler never drops buffered bytes: it declares the hole in
    /// front of them a gap and delivers them. So this counts the gap bytes
    /// declared because a buffer cap (per direction, table total, or the
    /// per-direction segment count) was hit; a subset of `tcp_gap_bytes`.
    pub tcp_buffer_overflow_bytes: u64,
    /// Segments ignored because they carried neither payload nor SYN (pure
    /// ACK, FIN, RST, e.g. the last ACK after both FINs) for a connection not
    /// in the table. Such segments never open a connection.
    pub tcp_segments_without_flow: u64,
    /// Connections still open at end of input, closed by
    /// [`crate::tcp::FlowTable::finish`].
    pub flows_end_of_input: u64,

    /// HTTP requests parsed.
    pub http_requests: u64,
    /// HTTP responses parsed (final, non-1xx).
    pub http_responses: u64,
    /// Interim 1xx responses skipped (e.g. `100 Continue`).
    pub http_informational: u64,
    /// Heads or chunk framing that could not be parsed; the stream resynchronised.
    pub http_parse_errors: u64,
    /// Bytes skipped while searching for the next message boundary.
    pub http_resync_skipped_bytes: u64,
    /// Bodies longer than the cap (kept up to the cap and flagged).
    pub http_bodies_truncated: u64,
    /// Responses that had no request to pair with (capture started mid-connection).
    pub http_unpaired_responses: u64,
    /// Messages cut before their end (connection closed or timed out).
    pub http_incomplete_messages: u64,
    /// Responses that began before their request's body was complete (their
    /// events were held until the request was; `conn.rs`).
    pub http_early_responses: u64,
    /// Connections recognised as TLS by their first bytes (`tls.rs`): never
    /// parsed as HTTP.
    pub tls_connections: u64,
    /// Bytes of TLS connections (not decrypted).
    pub tls_bytes: u64,
    /// TLS connections whose ClientHello could not be read (malformed,
    /// fragmented over several records, or cut by the end of the connection).
    pub tls_hellos_unread: u64,
    /// SSE events parsed.
    pub sse_events: u64,
    /// SSE comment lines (keep-alives such as `: ping`).
    pub sse_comments: u64,
    /// SSE events discarded: larger than the cap (`max_body_bytes`), damaged by a
    /// TCP gap, or cut by the end of the stream before their blank line.
    pub sse_events_dropped: u64,
    /// Requests forgotten for pairing because more than 1024 requests were already
    /// waiting for a response on one connection (their responses, if any, then
    /// pair with later requests or count as unpaired).
    pub http_outstanding_overflow: u64,
}
