//! One TCP connection's HTTP/1.x conversation: frames both directions, pairs
//! responses with requests, and reports [`HttpEvent`]s.
//! (STUB: filled in by the HTTP/SSE work.)

use crate::stats::WireStats;
use crate::{ConnMeta, Dir, HttpEvent, TimestampNs};

/// Limits of the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Body bytes kept per message; the rest is skipped and the message flagged.
    pub max_body_bytes: usize,
    /// Largest head (request/status line plus headers) accepted, in bytes.
    pub max_head_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 1024 * 1024,
            max_head_bytes: 64 * 1024,
        }
    }
}

/// HTTP state of one connection.
#[derive(Debug)]
pub struct HttpConnection {
    meta: ConnMeta,
}

impl HttpConnection {
    /// A connection whose endpoints the TCP layer guessed as `meta`; `saw_syn`
    /// false means the capture began mid-connection (parsers start in resync mode).
    pub fn new(meta: ConnMeta, saw_syn: bool, cfg: HttpConfig) -> Self {
        let _ = (saw_syn, cfg);
        HttpConnection { meta }
    }

    /// In-order bytes of direction `dir` (relative to the TCP layer's guess).
    pub fn on_data(
        &mut self,
        dir: Dir,
        ts: TimestampNs,
        data: &[u8],
        stats: &mut WireStats,
        out: &mut Vec<HttpEvent>,
    ) {
        let _ = (dir, ts, data, stats, out, &self.meta);
    }

    /// `len` bytes of direction `dir` are missing.
    pub fn on_gap(
        &mut self,
        dir: Dir,
        ts: TimestampNs,
        len: u64,
        stats: &mut WireStats,
        out: &mut Vec<HttpEvent>,
    ) {
        let _ = (dir, ts, len, stats, out);
    }

    /// The connection is gone: flushes cut messages (flagged `incomplete`) and
    /// reports [`HttpEvent::Closed`] last.
    pub fn on_close(&mut self, ts: TimestampNs, stats: &mut WireStats, out: &mut Vec<HttpEvent>) {
        let _ = (ts, stats, out);
    }
}
