//! Pure decoding of captured bytes, from link-layer frames to HTTP/1.1 messages
//! and Server-Sent Events.
//!
//! The chain, one module per arrow:
//!
//! ```text
//! frame bytes ──link::decode_packet──▶ TcpPacket
//!             ──tcp::FlowTable::ingest──▶ TcpEvent (ordered bytes per direction, gaps, close)
//!             ──conn::HttpConnection::on_*──▶ HttpEvent (requests, response heads, SSE events, ends)
//! ```
//!
//! Invariants (see ARCHITECTURE.md): no I/O, no libpcap, no clock; nothing here
//! panics on any input; "need more bytes" is a normal outcome, never an error;
//! every byte that is thrown away is counted in [`stats::WireStats`].
//!
//! Timestamps are nanoseconds since the Unix epoch ([`TimestampNs`]), taken from
//! the capture, never from the wall clock.

pub mod conn;
pub mod forwarded;
mod headers;
pub mod http;
pub mod link;
pub mod pcapfile;
pub mod sse;
pub mod stats;
pub mod swar;
pub mod tcp;
pub mod tls;

/// Differential checks for the fuzz targets, compiled only under `cargo fuzz`
/// (which builds every crate with `--cfg fuzzing`); see `fuzz/fuzz_targets/http_head.rs`.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// Panics when the fast head walk (`http/head.rs`, `parse_head_fast`) accepts
    /// `bytes` as a request or response head and httparse reads it differently.
    pub fn head_parsers_agree(bytes: &[u8]) {
        crate::http::fuzz_agree(bytes);
    }

    /// Reads `data[1..]` as a capture file twice, whole and in windows of
    /// `data[0] * 7 + 1` bytes (`pcapfile.rs`, the way a file source refills its
    /// buffer), and panics if the two readings differ or an answer makes no
    /// progress.
    pub fn pcap_file_reads_agree(data: &[u8]) {
        let Some((&w, file)) = data.split_first() else {
            return;
        };
        let whole = crate::pcapfile::read_windowed(file, file.len().max(1));
        let windowed = crate::pcapfile::read_windowed(file, usize::from(w) * 7 + 1);
        assert_eq!(whole, windowed);
    }
}

pub use headers::{Header, HeaderRef, Headers, header, header_str, header_text};
use std::net::SocketAddr;

/// Nanoseconds since the Unix epoch (1970-01-01T00:00:00Z), from the capture.
pub type TimestampNs = u64;

/// Identifies one TCP connection within one [`tcp::FlowTable`]: a counter that
/// never repeats for the life of the table (a reused 4-tuple gets a new id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

/// Direction of bytes within a connection, relative to the side the flow table
/// believes is the client (the SYN sender, else a port heuristic; see
/// [`tcp::FlowTable`]). The HTTP layer corrects the guess when the bytes show
/// otherwise (see [`conn::HttpConnection`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From the (believed) client to the (believed) server.
    ClientToServer,
    /// From the (believed) server to the (believed) client.
    ServerToClient,
}

impl Dir {
    /// The other direction.
    pub fn reverse(self) -> Dir {
        match self {
            Dir::ClientToServer => Dir::ServerToClient,
            Dir::ServerToClient => Dir::ClientToServer,
        }
    }
}

/// The two endpoints of a connection and what identifies it across captures.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnMeta {
    /// Flow id within this run.
    pub flow: FlowId,
    /// The endpoint that sends HTTP requests.
    pub client: SocketAddr,
    /// The endpoint that answers them.
    pub server: SocketAddr,
    /// The client's initial sequence number when the SYN was captured, else the
    /// first client sequence number seen. Stable across two captures of the same
    /// traffic that both saw the handshake; used to derive span ids.
    pub client_isn: u32,
}

/// `String::from_utf8_lossy`, checking valid input with the faster
/// `str::from_utf8` first (the lossy scan has no ASCII fast path).
pub(crate) fn lossy(v: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(v) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v),
    }
}

/// `String::from_utf8_lossy(&v).into_owned()` without copying valid input.
pub(crate) fn lossy_owned(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Irregularities seen while framing one HTTP message. All `false` for a clean message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsgFlags {
    /// The body was longer than the configured cap; only the first `cap` bytes are kept.
    pub body_truncated: bool,
    /// The message ended before its framing said it would (connection closed or
    /// timed out before the body, the last chunk or the terminating chunk arrived).
    pub incomplete: bool,
    /// A TCP gap (missing bytes) fell inside this message.
    pub gap: bool,
    /// The parser resynchronised on this message after a gap or garbage, or the
    /// capture started mid-connection.
    pub resynced: bool,
}

impl MsgFlags {
    /// Field-wise OR.
    pub fn merge(&mut self, other: MsgFlags) {
        self.body_truncated |= other.body_truncated;
        self.incomplete |= other.incomplete;
        self.gap |= other.gap;
        self.resynced |= other.resynced;
    }
}

/// A complete HTTP/1.x request (head and de-chunked body, capped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Position of this request on its connection, from 0, in the order sent
    /// (pipelined requests keep their order; responses are paired by this index).
    pub index: u64,
    /// Timestamp of the first byte of the request line.
    pub ts_first: TimestampNs,
    /// Timestamp of the last byte of the message (end of head for a body-less request).
    pub ts_last: TimestampNs,
    /// Method token, e.g. `POST`.
    pub method: String,
    /// Request target as sent, e.g. `/mcp?x=1`.
    pub target: String,
    /// HTTP minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    /// Headers in wire order.
    pub headers: Headers,
    /// Body after de-chunking, at most the configured cap in bytes.
    pub body: Vec<u8>,
    /// Framing irregularities.
    pub flags: MsgFlags,
}

/// One Server-Sent Event, per the WHATWG HTML "event stream interpretation".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// `event:` field, `None` when absent (the default type `message`).
    pub event: Option<String>,
    /// `data:` lines joined with `\n` (may be empty, as in a priming event).
    pub data: String,
    /// `id:` field when present.
    pub id: Option<String>,
    /// `retry:` field in milliseconds when present and valid.
    pub retry_ms: Option<u64>,
}

/// What the HTTP layer reports, in wire order per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpEvent {
    /// A request is complete (or was cut: see its flags).
    Request {
        /// Connection endpoints; repeated on every request so a consumer needs no other state.
        conn: ConnMeta,
        /// The request.
        req: HttpRequest,
    },
    /// The head of the final (non-1xx) response to request `index` on `flow`.
    ResponseHead {
        /// Connection.
        flow: FlowId,
        /// Index of the request this answers.
        index: u64,
        /// Timestamp of the last byte of the head.
        ts: TimestampNs,
        /// Status code, e.g. 200.
        status: u16,
        /// Headers in wire order.
        headers: Headers,
        /// `true` when `Content-Type` is `text/event-stream`: the body arrives as
        /// [`HttpEvent::SseEvent`]s instead of in [`HttpEvent::ResponseEnd`].
        sse: bool,
    },
    /// One event of an SSE response body.
    SseEvent {
        /// Connection.
        flow: FlowId,
        /// Index of the request this stream answers.
        index: u64,
        /// Timestamp of the last byte of the event (its terminating blank line).
        ts: TimestampNs,
        /// The event.
        event: SseEvent,
    },
    /// The response to request `index` is over.
    ResponseEnd {
        /// Connection.
        flow: FlowId,
        /// Index of the request this answers.
        index: u64,
        /// Timestamp of the last byte of the response.
        ts: TimestampNs,
        /// De-chunked body, capped; empty for SSE responses (their events came before).
        body: Vec<u8>,
        /// Framing irregularities (e.g. a stream cut before its terminating chunk).
        flags: MsgFlags,
    },
    /// The connection carries TLS, not HTTP (a mesh's mTLS leg, or a server
    /// that terminates TLS itself): reported once, when the client's first
    /// record has been read (or the connection ended before), and never
    /// followed by HTTP events; see [`tls`]. Nothing is decrypted.
    Tls {
        /// Connection endpoints.
        conn: ConnMeta,
        /// Timestamp of the data that completed the ClientHello (or of the close).
        ts: TimestampNs,
        /// What the ClientHello said; `None` when it could not be read.
        hello: Option<tls::ClientHello>,
    },
    /// The connection is gone (FIN/RST, idle timeout or eviction); nothing more
    /// will be reported for `flow`. Requests still waiting for a response never get one.
    Closed {
        /// Connection.
        flow: FlowId,
        /// Timestamp of the packet or timeout that closed it.
        ts: TimestampNs,
    },
}

#[cfg(test)]
mod lossy_tests {
    use super::{lossy, lossy_owned};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lossy_matches_std(v in proptest::collection::vec(any::<u8>(), 0..64), text in ".{0,16}") {
            prop_assert_eq!(lossy(&v), String::from_utf8_lossy(&v));
            prop_assert_eq!(lossy_owned(v.clone()), String::from_utf8_lossy(&v).into_owned());
            prop_assert_eq!(lossy(text.as_bytes()), text.as_str());
            prop_assert_eq!(lossy_owned(text.clone().into_bytes()), text);
        }
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(lossy(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(lossy_owned(b"\xc3(".to_vec()), "\u{fffd}(");
    }
}
