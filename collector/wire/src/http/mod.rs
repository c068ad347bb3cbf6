//! Incremental HTTP/1.x message framing for one direction of a connection.
//!
//! Files: `framing.rs` (head types, body framing, chunk-size lines),
//! `resync.rs` (the start-line classifier), `head.rs` (head parsing: the
//! plain-head walk and the `httparse` path), `parser.rs` ([`MessageParser`]).
//!
//! [`MessageParser`] turns the in-order bytes of one direction into a sequence
//! of [`Event`]s: a message [`Event::Head`], its de-chunked [`Event::Body`]
//! pieces (borrowed from the input, never copied here), and [`Event::End`].
//! It is pure and incremental: bytes may be split anywhere; "need more bytes"
//! is the normal outcome of a call ([`MessageParser::next`] returns `None`).
//!
//! Heads are parsed with `httparse` (RFC 9112 §2–§5), or, when written the
//! plain way (CRLF endings, single spaces, visible-ASCII target, at most 32
//! headers), by our own walk (`head::parse_head_fast`), which accepts only what
//! `httparse` accepts, with the same result (proptest against `httparse`);
//! chunk-size lines with `httparse::parse_chunk_size` (RFC 9112 §7.1).
//! Body length follows RFC 9112 §6.3 (see [`body_framing`]). Interim 1xx
//! responses (e.g. `100 Continue`) are skipped and counted in
//! [`WireStats::http_informational`](crate::stats::WireStats::http_informational).
//!
//! Only what is needed is buffered: a partial head (at most `max_head_bytes`),
//! a partial chunk-size or trailer line, or a partial candidate start line while
//! resynchronising. Body bytes go straight out as [`Event::Body`].
//!
//! **Resync.** After garbage, a parse error, a gap that cannot be skipped, or
//! when the capture began mid-connection, the parser skips bytes until a
//! plausible message start, counting them in
//! [`WireStats::http_resync_skipped_bytes`](crate::stats::WireStats::http_resync_skipped_bytes), and flags the next message
//! `resynced`. A plausible start is a whole start line, up to its LF and at most
//! [`RESYNC_LINE_MAX`] bytes, that is either `METHOD SP target SP HTTP/1.x`
//! (METHOD one of GET, POST, PUT, DELETE, HEAD, OPTIONS, PATCH; target visible
//! ASCII) or `HTTP/1.0 `/`HTTP/1.1 ` + 3 digits (+ optional reason phrase). The
//! candidate may start anywhere, not only after an LF, because a
//! `Content-Length` body (e.g. JSON) is usually followed by the next message on
//! the same "line"; requiring the complete, well-formed start line keeps false
//! matches inside bodies rare.
//!
//! **Gaps** ([`MessageParser::on_gap`]): inside a `Content-Length` body, inside
//! the data of one chunk, or inside a read-until-close body the missing length
//! is skipped arithmetically and the parser stays in sync (message flagged
//! `gap`). Anywhere else (head, chunk-size line, across chunk boundaries) the
//! message in progress ends flagged `gap` + `incomplete` and the parser resyncs.

mod framing;
mod head;
mod parser;
mod resync;

pub use framing::{BodyFraming, FramingError, Head, Kind, RequestHead, ResponseHead, body_framing};
#[cfg(fuzzing)]
pub(crate) use head::fuzz_agree;
pub use parser::{Event, GapOutcome, MessageParser};
pub use resync::RESYNC_LINE_MAX;
