//! Incremental Server-Sent Events parser, following WHATWG HTML §9.2.6
//! "Interpreting an event stream".
//!
//! Bytes arrive in arbitrary pieces ([`SseParser::feed`]); complete events come
//! out as [`SseEvent`]s. The rules implemented:
//!
//! - Lines end with CRLF, LF or CR. A CR that ends one piece and an LF that
//!   starts the next form a single line ending.
//! - A UTF-8 byte order mark at the very start of the stream is skipped (even
//!   when split across pieces).
//! - A line starting with `:` is a comment (MCP keep-alives are `: ping`); it is
//!   counted in [`WireStats::sse_comments`] and produces no event.
//! - `field:value` sets a field; one space after the colon is stripped; a line
//!   without a colon is a field with an empty value. Known fields are `data`
//!   (several lines joined with `\n`), `event`, `id` (ignored when it contains
//!   NUL) and `retry` (ASCII digits only, milliseconds). Other fields are ignored.
//! - A blank line dispatches the event, but only when at least one `data` line
//!   was seen. `data:` with an empty value counts, so the MCP priming event
//!   `id: X` + `data:` (mcp-wire.md §1.2, SEP-1699) is dispatched with `data == ""`.
//! - At the end of the stream a half-received event is discarded (WHATWG), and
//!   counted in [`WireStats::sse_events_dropped`].
//!
//! Deviations, for a passive observer: `SseEvent::id` is the `id` of this event
//! only (not the persisted "last event ID"), and an `event:` with an empty value
//! is reported as `None` (WHATWG treats it as the default type `message`).
//!
//! Memory is bounded: an event (its lines together) larger than
//! `max_event_bytes` is dropped whole, counted in
//! [`WireStats::sse_events_dropped`], and the parser skips to the next blank
//! line without buffering. Text is decoded as lossy UTF-8.

use crate::SseEvent;
use crate::stats::WireStats;

/// The UTF-8 encoding of U+FEFF.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Where a parser's dispatched events go, one at a time, in order. A
/// `Vec<SseEvent>` collects them; the HTTP connection wraps each in an
/// [`crate::HttpEvent::SseEvent`] as it comes (no list in between).
pub trait SseSink {
    /// Takes the next event.
    fn event(&mut self, ev: SseEvent);
}

impl SseSink for Vec<SseEvent> {
    #[inline]
    fn event(&mut self, ev: SseEvent) {
        self.push(ev);
    }
}

/// Incremental SSE parser for one response body (one event stream).
#[derive(Debug, Clone)]
pub struct SseParser {
    /// Largest event (sum of its line lengths, in bytes) kept; larger ones are dropped.
    max_event_bytes: usize,
    /// Bytes of the current, not yet terminated line.
    line: Vec<u8>,
    /// The previous piece ended with a CR that ended a line: skip one leading LF.
    after_cr: bool,
    /// Number of BOM bytes matched at the stream start; `None` once decided.
    bom_matched: Option<usize>,
    /// Dropping the current event (too large, or damaged by a gap) until a blank line.
    discarding: bool,
    /// While discarding: the current line has content (so its end is not a blank line).
    discard_line_nonempty: bool,
    /// `data` buffer: every data line's value followed by `\n`.
    data: Vec<u8>,
    /// At least one `data` line was seen for the current event.
    has_data: bool,
    /// `event` field of the current event (raw bytes, decoded at dispatch).
    event: Option<Vec<u8>>,
    /// `id` field of the current event (raw bytes, decoded at dispatch).
    id: Option<Vec<u8>>,
    /// `retry` field of the current event, milliseconds.
    retry_ms: Option<u64>,
    /// Bytes of the lines of the current event so far.
    event_bytes: usize,
}

impl SseParser {
    /// A parser for a new stream; events whose lines total more than
    /// `max_event_bytes` bytes are dropped (a cap of 0 is raised to 1).
    pub fn new(max_event_bytes: usize) -> Self {
        SseParser {
            max_event_bytes: max_event_bytes.max(1),
            line: Vec::new(),
            after_cr: false,
            bom_matched: Some(0),
            discarding: false,
            discard_line_nonempty: false,
            data: Vec::new(),
            has_data: false,
            event: None,
            id: None,
            retry_ms: None,
            event_bytes: 0,
        }
    }

    /// Feeds the next piece of the stream; dispatched events are appended to
    /// `out` in order. Counts [`WireStats::sse_events`], `sse_comments` and
    /// `sse_events_dropped`.
    pub fn feed(&mut self, data: &[u8], stats: &mut WireStats, out: &mut impl SseSink) {
        let mut rest = data;
        if let Some(matched) = self.bom_matched {
            let mut m = matched;
            while m < BOM.len() {
                match rest.first() {
                    None => {
                        self.bom_matched = Some(m);
                        return;
                    }
                    Some(&b) if Some(&b) == BOM.get(m) => {
                        m += 1;
                        rest = rest.get(1..).unwrap_or_default();
                    }
                    Some(_) => break,
                }
            }
            self.bom_matched = None;
            if m < BOM.len() {
                // Not a BOM: the bytes matched so far are ordinary line content.
                let prefix = BOM.get(..m).unwrap_or_default();
                self.append_partial(prefix, stats);
            }
        }
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest.first() == Some(&b'\n') {
                rest = rest.get(1..).unwrap_or_default();
            }
        }
        while !rest.is_empty() {
            match memchr::memchr2(b'\r', b'\n', rest) {
                None => {
                    self.append_partial(rest, stats);
                    return;
                }
                Some(i) => {
                    let content = rest.get(..i).unwrap_or_default();
                    let eol = rest.get(i).copied();
                    rest = rest.get(i + 1..).unwrap_or_default();
                    self.end_line(content, stats, out);
                    if eol == Some(b'\r') {
                        if rest.is_empty() {
                            self.after_cr = true;
                        } else if rest.first() == Some(&b'\n') {
                            rest = rest.get(1..).unwrap_or_default();
                        }
                    }
                }
            }
        }
    }

    /// `n` bytes of the stream are missing (a TCP gap skipped inside the body):
    /// the event in progress is dropped and everything up to the next blank
    /// line is ignored, since it may be the tail of a damaged event.
    pub fn on_gap(&mut self, stats: &mut WireStats) {
        if !self.discarding && self.in_progress() {
            stats.sse_events_dropped += 1;
        }
        self.reset_event();
        self.line.clear();
        self.after_cr = false;
        self.bom_matched = None;
        self.discarding = true;
        self.discard_line_nonempty = true;
    }

    /// The stream ended: a half-received event is discarded (WHATWG) and
    /// counted in [`WireStats::sse_events_dropped`]. The parser is reset.
    pub fn finish(&mut self, stats: &mut WireStats) {
        if !self.discarding && self.in_progress() {
            stats.sse_events_dropped += 1;
        }
        *self = SseParser::new(self.max_event_bytes);
    }

    /// Bytes currently buffered (partial line plus the event in progress, as
    /// raw bytes); never more than `max_event_bytes`.
    pub fn buffered_bytes(&self) -> usize {
        self.line.len()
            + self.data.len()
            + self.event.as_ref().map_or(0, Vec::len)
            + self.id.as_ref().map_or(0, Vec::len)
    }

    /// Something of an event (a field or part of a line) has been received.
    fn in_progress(&self) -> bool {
        !self.line.is_empty()
            || self.has_data
            || self.event.is_some()
            || self.id.is_some()
            || self.retry_ms.is_some()
    }

    fn reset_event(&mut self) {
        self.data.clear();
        self.has_data = false;
        self.event = None;
        self.id = None;
        self.retry_ms = None;
        self.event_bytes = 0;
    }

    /// Starts dropping the current event because it outgrew the cap.
    fn start_discarding(&mut self, stats: &mut WireStats) {
        stats.sse_events_dropped += 1;
        self.reset_event();
        self.line.clear();
        self.discarding = true;
        self.discard_line_nonempty = true;
    }

    /// Adds bytes of a line whose end has not arrived yet.
    fn append_partial(&mut self, bytes: &[u8], stats: &mut WireStats) {
        if bytes.is_empty() {
            return;
        }
        if self.discarding {
            self.discard_line_nonempty = true;
            return;
        }
        let size = self
            .event_bytes
            .saturating_add(self.line.len())
            .saturating_add(bytes.len());
        if size > self.max_event_bytes {
            self.start_discarding(stats);
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    /// A line ended; `tail` is its content after what is buffered in `self.line`.
    fn end_line(&mut self, tail: &[u8], stats: &mut WireStats, out: &mut impl SseSink) {
        if self.discarding {
            let blank = tail.is_empty() && !self.discard_line_nonempty;
            self.discard_line_nonempty = false;
            if blank {
                self.discarding = false;
                self.reset_event();
            }
            return;
        }
        let size = self
            .event_bytes
            .saturating_add(self.line.len())
            .saturating_add(tail.len());
        if size > self.max_event_bytes {
            self.start_discarding(stats);
            // This line has ended; the event's end is the next blank line.
            self.discard_line_nonempty = false;
            return;
        }
        if self.line.is_empty() {
            self.process_line(tail, stats, out);
        } else {
            let mut line = std::mem::take(&mut self.line);
            line.extend_from_slice(tail);
            self.process_line(&line, stats, out);
            line.clear();
            // Keep the allocation for the next partial line.
            self.line = line;
        }
    }

    fn process_line(&mut self, line: &[u8], stats: &mut WireStats, out: &mut impl SseSink) {
        if line.is_empty() {
            self.dispatch(stats, out);
            return;
        }
        if line.first() == Some(&b':') {
            stats.sse_comments += 1;
            return;
        }
        self.event_bytes = self.event_bytes.saturating_add(line.len());
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let field = line.get(..i).unwrap_or_default();
                let mut value = line.get(i + 1..).unwrap_or_default();
                if value.first() == Some(&b' ') {
                    value = value.get(1..).unwrap_or_default();
                }
                (field, value)
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                // Room for the value and its `\n` at once: the push never
                // reallocates (and copies) the data of a one-line event. The
                // first line's buffer is allocated at its size directly (not
                // through `Vec`'s amortised growth path).
                if self.data.capacity() == 0 {
                    self.data = Vec::with_capacity(value.len() + 1);
                } else {
                    self.data.reserve(value.len() + 1);
                }
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
                self.has_data = true;
            }
            b"event" => {
                self.event = if value.is_empty() {
                    None
                } else {
                    Some(value.to_vec())
                };
            }
            b"id" if !value.contains(&0) => {
                self.id = Some(value.to_vec());
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // Too many digits to fit a u64: ignored like any invalid value.
                if let Some(ms) = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, stats: &mut WireStats, out: &mut impl SseSink) {
        if !self.has_data {
            // WHATWG: an empty data buffer means no event (fields are reset).
            self.reset_event();
            return;
        }
        if self.data.last() == Some(&b'\n') {
            self.data.pop();
        }
        let data = crate::lossy_owned(std::mem::take(&mut self.data));
        out.event(SseEvent {
            event: self.event.take().map(crate::lossy_owned),
            data,
            id: self.id.take().map(crate::lossy_owned),
            retry_ms: self.retry_ms.take(),
        });
        stats.sse_events += 1;
        self.reset_event();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_pieces(pieces: &[&[u8]]) -> (Vec<SseEvent>, WireStats) {
        let mut p = SseParser::new(1024);
        let mut stats = WireStats::default();
        let mut out = Vec::new();
        for piece in pieces {
            p.feed(piece, &mut stats, &mut out);
        }
        (out, stats)
    }

    fn ev(event: Option<&str>, data: &str, id: Option<&str>, retry: Option<u64>) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
            id: id.map(str::to_owned),
            retry_ms: retry,
        }
    }

    #[test]
    fn python_style_crlf_event() {
        let (out, stats) = parse_pieces(&[
            b"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\n\r\n",
        ]);
        assert_eq!(
            out,
            vec![ev(
                Some("message"),
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}",
                None,
                None
            )]
        );
        assert_eq!(stats.sse_events, 1);
    }

    #[test]
    fn node_style_priming_then_message() {
        let (out, _) = parse_pieces(&[
            b"id: 0_1\nretry: 1000\ndata: \n\n",
            b"event: message\nid: 0_2\ndata: {\"a\":1}\n\n",
        ]);
        assert_eq!(
            out,
            vec![
                ev(None, "", Some("0_1"), Some(1000)),
                ev(Some("message"), "{\"a\":1}", Some("0_2"), None)
            ]
        );
    }

    #[test]
    fn priming_event_without_space_is_dispatched() {
        let (out, _) = parse_pieces(&[b"id: x\ndata\n\n"]);
        assert_eq!(out, vec![ev(None, "", Some("x"), None)]);
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        let (out, stats) = parse_pieces(&[b"id: 7\nevent: foo\n\nretry: 5\n\n"]);
        assert!(out.is_empty());
        assert_eq!(stats.sse_events, 0);
    }

    #[test]
    fn multi_line_data_and_comments() {
        let (out, stats) =
            parse_pieces(&[b": ping\r\n\r\ndata: a\r\ndata:b\r\ndata:  c\r\n\r\n: ping\r\n\r\n"]);
        assert_eq!(out, vec![ev(None, "a\nb\n c", None, None)]);
        assert_eq!(stats.sse_comments, 2);
    }

    #[test]
    fn cr_only_line_endings_and_split_crlf() {
        let (out, _) = parse_pieces(&[b"data: x\r", b"\n\r", b"\ndata: y\r\r"]);
        assert_eq!(
            out,
            vec![ev(None, "x", None, None), ev(None, "y", None, None)]
        );
    }

    #[test]
    fn bom_skipped_even_when_split() {
        let (out, _) = parse_pieces(&[b"\xEF", b"\xBB", b"\xBFdata: 1\n\n"]);
        assert_eq!(out, vec![ev(None, "1", None, None)]);
        // A partial BOM followed by other bytes is content.
        let (out, _) = parse_pieces(&[b"\xEF", b"x\ndata: 2\n\n"]);
        assert_eq!(out, vec![ev(None, "2", None, None)]);
    }

    #[test]
    fn id_with_nul_ignored_and_bad_retry_ignored() {
        let (out, _) = parse_pieces(&[b"id: a\0b\nretry: 12x\ndata: d\n\n"]);
        assert_eq!(out, vec![ev(None, "d", None, None)]);
    }

    #[test]
    fn oversized_event_dropped_then_next_parsed() {
        let mut p = SseParser::new(16);
        let mut stats = WireStats::default();
        let mut out = Vec::new();
        p.feed(b"data: 0123456789", &mut stats, &mut out);
        p.feed(
            b"0123456789\ndata: more\n\ndata: ok\n\n",
            &mut stats,
            &mut out,
        );
        assert_eq!(out, vec![ev(None, "ok", None, None)]);
        assert_eq!(stats.sse_events_dropped, 1);
        assert!(p.buffered_bytes() <= 16);
    }

    #[test]
    fn gap_discards_damaged_event() {
        let mut p = SseParser::new(1024);
        let mut stats = WireStats::default();
        let mut out = Vec::new();
        p.feed(b"data: {\"par", &mut stats, &mut out);
        p.on_gap(&mut stats);
        p.feed(b"tial\"}\n\ndata: next\n\n", &mut stats, &mut out);
        assert_eq!(out, vec![ev(None, "next", None, None)]);
        assert_eq!(stats.sse_events_dropped, 1);
    }

    #[test]
    fn finish_discards_partial_event() {
        let mut p = SseParser::new(1024);
        let mut stats = WireStats::default();
        let mut out = Vec::new();
        p.feed(b"data: a\n", &mut stats, &mut out);
        p.finish(&mut stats);
        assert!(out.is_empty());
        assert_eq!(stats.sse_events_dropped, 1);
    }
}
