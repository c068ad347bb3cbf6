//! Incremental HTTP/1.x message framing for one direction of a connection.
//!
//! [`MessageParser`] turns the in-order bytes of one direction into a sequence
//! of [`Event`]s: a message [`Event::Head`], its de-chunked [`Event::Body`]
//! pieces (borrowed from the input, never copied here), and [`Event::End`].
//! It is pure and incremental: bytes may be split anywhere; "need more bytes"
//! is the normal outcome of a call ([`MessageParser::next`] returns `None`).
//!
//! Heads are parsed with `httparse` (RFC 9112 §2–§5), or, when written the
//! plain way (CRLF endings, single spaces, visible-ASCII target, at most 32
//! headers), by our own walk (`parse_head_fast`), which accepts only what
//! `httparse` accepts, with the same result (proptest against `httparse`);
//! chunk-size lines with `httparse::parse_chunk_size` (RFC 9112 §7.1).
//! Body length follows RFC 9112 §6.3 (see [`body_framing`]). Interim 1xx
//! responses (e.g. `100 Continue`) are skipped and counted in
//! [`WireStats::http_informational`].
//!
//! Only what is needed is buffered: a partial head (at most `max_head_bytes`),
//! a partial chunk-size or trailer line, or a partial candidate start line while
//! resynchronising. Body bytes go straight out as [`Event::Body`].
//!
//! **Resync.** After garbage, a parse error, a gap that cannot be skipped, or
//! when the capture began mid-connection, the parser skips bytes until a
//! plausible message start, counting them in
//! [`WireStats::http_resync_skipped_bytes`], and flags the next message
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

#[cfg(test)]
use crate::Header;
use crate::stats::WireStats;
use crate::{Headers, MsgFlags, TimestampNs};
use std::mem::MaybeUninit;

/// Longest candidate start line (bytes, including its line ending) that resync
/// recognises as a message start.
pub const RESYNC_LINE_MAX: usize = 4096;

/// Headers parsed per head at first; doubled on `TooManyHeaders`.
const HEADERS_INITIAL: usize = 64;
/// Upper bound of headers per head; more is a parse error.
const HEADERS_MAX: usize = 1024;

/// Request methods accepted as a resync point (with the following space).
const RESYNC_METHODS: [&[u8]; 7] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
];

/// Which kind of messages a direction carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Requests (the client's direction).
    Request,
    /// Responses (the server's direction).
    Response,
}

impl Kind {
    /// The kind the opposite direction carries.
    pub fn other(self) -> Kind {
        match self {
            Kind::Request => Kind::Response,
            Kind::Response => Kind::Request,
        }
    }
}

/// A parsed request line and headers (RFC 9112 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Method token, e.g. `POST`.
    pub method: String,
    /// Request target as sent, e.g. `/mcp`.
    pub target: String,
    /// HTTP minor version: 0 or 1.
    pub version_minor: u8,
    /// Headers in wire order.
    pub headers: Headers,
}

/// A parsed status line and headers (RFC 9112 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code, 100..=999.
    pub status: u16,
    /// HTTP minor version: 0 or 1.
    pub version_minor: u8,
    /// Headers in wire order.
    pub headers: Headers,
    /// The first `Content-Type` is `text/event-stream` (case-insensitive,
    /// parameters ignored; RFC 9110 §8.3.1): the body is an event stream.
    pub event_stream: bool,
}

/// A message head of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// A request head.
    Request(RequestHead),
    /// A response head.
    Response(ResponseHead),
}

impl Head {
    /// Request or response.
    pub fn kind(&self) -> Kind {
        match self {
            Head::Request(_) => Kind::Request,
            Head::Response(_) => Kind::Response,
        }
    }

    /// The headers, in wire order.
    pub fn headers(&self) -> &Headers {
        match self {
            Head::Request(r) => &r.headers,
            Head::Response(r) => &r.headers,
        }
    }
}

/// How the body of a message is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked` (RFC 9112 §7.1).
    Chunked,
    /// Everything until the connection closes (responses only).
    UntilClose,
}

/// Why a head's body framing is unusable (RFC 9112 §6.3 items 4–5: the
/// recipient must treat the message as malformed and stop framing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// `Content-Length` is not a decimal number, or several differing values.
    BadContentLength,
    /// A request's `Transfer-Encoding` does not end with `chunked`.
    RequestNotChunked,
}

/// The body framing of `head`, per RFC 9112 §6.3, for a response to anything
/// but `HEAD` (the caller handles `HEAD`, see [`MessageParser::set_no_body`]):
///
/// - responses 1xx, 204, 304: [`BodyFraming::None`];
/// - `Transfer-Encoding` whose last coding is `chunked`: [`BodyFraming::Chunked`]
///   (wins over `Content-Length`); other codings: response
///   [`BodyFraming::UntilClose`], request [`FramingError::RequestNotChunked`];
/// - valid `Content-Length` (several equal values allowed): [`BodyFraming::Length`];
/// - otherwise: request [`BodyFraming::None`], response [`BodyFraming::UntilClose`].
pub fn body_framing(head: &Head) -> Result<BodyFraming, FramingError> {
    let status = match head {
        Head::Response(r) => Some(r.status),
        Head::Request(_) => None,
    };
    framing_of(status, head.headers().byte_pairs())
}

/// A lowercase ASCII token to compare names against case-insensitively,
/// with its case mask (0x20 on letters), so that a comparison is a few
/// whole-array operations instead of a byte loop with early exits.
struct Token<const N: usize> {
    lower: [u8; N],
    mask: [u8; N],
}

impl<const N: usize> Token<N> {
    /// `lower` must be lowercase ASCII (letters, digits, punctuation).
    const fn new(lower: &[u8; N]) -> Self {
        let mut mask = [0u8; N];
        let mut i = 0;
        while i < N {
            if lower[i].is_ascii_lowercase() {
                mask[i] = 0x20;
            }
            i += 1;
        }
        Token {
            lower: *lower,
            mask,
        }
    }

    /// `name.eq_ignore_ascii_case(lower)`: letters match in either case,
    /// every other byte exactly.
    #[inline]
    fn matches(&self, name: &[u8]) -> bool {
        let Ok(name): Result<&[u8; N], _> = name.try_into() else {
            return false;
        };
        name.iter()
            .zip(&self.mask)
            .zip(&self.lower)
            .fold(0u8, |diff, ((&b, &m), &l)| diff | ((b | m) ^ l))
            == 0
    }
}

const TRANSFER_ENCODING: Token<17> = Token::new(b"transfer-encoding");
const CONTENT_LENGTH: Token<14> = Token::new(b"content-length");
const CONTENT_TYPE: Token<12> = Token::new(b"content-type");
const CHUNKED: Token<7> = Token::new(b"chunked");

/// [`body_framing`] of a request (`status == None`) or a response with
/// status `status` and headers `pairs` (`(name, value)`, values already
/// trimmed), in one pass (see [`FramingScan`]).
fn framing_of<'h>(
    status: Option<u16>,
    pairs: impl Iterator<Item = (&'h [u8], &'h [u8])>,
) -> Result<BodyFraming, FramingError> {
    let mut scan = FramingScan::new();
    for (name, value) in pairs {
        scan.add(name, value);
    }
    scan.finish(status)
}

/// The framing headers of a head, fed one header at a time (values
/// already trimmed): a parsed head's framing is computed from `httparse`'s
/// header slots in the same walk that trims and measures them, so the
/// packed headers are not walked again.
struct FramingScan<'h> {
    /// Last non-empty `Transfer-Encoding` coding so far.
    last_coding: Option<&'h [u8]>,
    /// `Err` once a `Content-Length` is bad or disagrees; it only matters
    /// when no `Transfer-Encoding` coding is present (that one wins).
    length: Result<Option<u64>, FramingError>,
}

impl<'h> FramingScan<'h> {
    fn new() -> Self {
        FramingScan {
            last_coding: None,
            length: Ok(None),
        }
    }

    /// The next header (any header: others are ignored).
    #[inline]
    fn add(&mut self, name: &[u8], value: &'h [u8]) {
        if TRANSFER_ENCODING.matches(name) {
            self.add_codings(value);
        } else if CONTENT_LENGTH.matches(name) {
            self.add_length(value);
        }
    }

    /// The value of a `Transfer-Encoding` header.
    fn add_codings(&mut self, value: &'h [u8]) {
        for coding in value.split(|&b| b == b',') {
            let coding = trim_ows(coding);
            if !coding.is_empty() {
                self.last_coding = Some(coding);
            }
        }
    }

    /// The value of a `Content-Length` header.
    fn add_length(&mut self, value: &[u8]) {
        if let Ok(prev) = self.length {
            // Usually one plain number: the list below in one step.
            if let Some(n) = parse_decimal(value) {
                self.length = match prev {
                    Some(p) if p != n => Err(FramingError::BadContentLength),
                    _ => Ok(Some(n)),
                };
                return;
            }
            self.length = value.split(|&b| b == b',').try_fold(prev, |acc, part| {
                let n = parse_decimal(trim_ows(part)).ok_or(FramingError::BadContentLength)?;
                match acc {
                    Some(p) if p != n => Err(FramingError::BadContentLength),
                    _ => Ok(Some(n)),
                }
            });
        }
    }

    /// The framing of a request (`status == None`) or a response with
    /// status `status` whose headers were all added.
    fn finish(self, status: Option<u16>) -> Result<BodyFraming, FramingError> {
        if let Some(s) = status
            && (s < 200 || s == 204 || s == 304)
        {
            return Ok(BodyFraming::None);
        }
        let kind = if status.is_some() {
            Kind::Response
        } else {
            Kind::Request
        };
        if let Some(coding) = self.last_coding {
            let chunked = CHUNKED.matches(coding);
            return match (chunked, kind) {
                (true, _) => Ok(BodyFraming::Chunked),
                (false, Kind::Response) => Ok(BodyFraming::UntilClose),
                (false, Kind::Request) => Err(FramingError::RequestNotChunked),
            };
        }
        Ok(match (self.length?, kind) {
            (Some(0), _) => BodyFraming::None,
            (Some(n), _) => BodyFraming::Length(n),
            (None, Kind::Request) => BodyFraming::None,
            (None, Kind::Response) => BodyFraming::UntilClose,
        })
    }
}

/// One step of framing, in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A message head was parsed (never a 1xx response: those are skipped).
    Head {
        /// The head.
        head: Head,
        /// Timestamp of the call that delivered the first byte of the start line.
        ts_first: TimestampNs,
        /// Flags known so far (`resynced`).
        flags: MsgFlags,
    },
    /// The next piece of the current message's body (de-chunked), borrowed from
    /// the input given to [`MessageParser::next`].
    Body(&'a [u8]),
    /// The current message ended (normally, or cut: see `flags.incomplete`).
    End {
        /// All flags of the message (`resynced`, `gap`, `incomplete`).
        flags: MsgFlags,
    },
}

/// What [`MessageParser::on_gap`] did with a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapOutcome {
    /// No message was reported as started (idle, resyncing, or inside a head
    /// that is now dropped): the parser resyncs; nothing to report.
    Resync,
    /// The gap fell inside a body of known extent and was skipped: the parser is
    /// still in sync and the current message continues, flagged `gap`; its body
    /// has a hole.
    Skipped,
    /// The current message ended here (same meaning as [`Event::End`]).
    Ended(MsgFlags),
}

/// Line-end scanner state, for finding the blank line that ends a head or a
/// trailer section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineState {
    /// At the start of a line.
    Start,
    /// At the start of a line, after a CR.
    StartCr,
    /// Inside a non-empty line.
    Mid,
}

/// Finds the end (index just past the LF) of the first empty line in `data`,
/// continuing from `state`; updates `state` when not found.
fn find_blank_line_end(state: &mut LineState, data: &[u8]) -> Option<usize> {
    let mut i = 0usize;
    loop {
        match *state {
            LineState::Start => match data.get(i) {
                None => return None,
                Some(b'\n') => return Some(i + 1),
                Some(b'\r') => {
                    *state = LineState::StartCr;
                    i += 1;
                }
                Some(_) => *state = LineState::Mid,
            },
            LineState::StartCr => match data.get(i) {
                None => return None,
                Some(b'\n') => return Some(i + 1),
                Some(_) => *state = LineState::Mid,
            },
            LineState::Mid => {
                let rest = data.get(i..).unwrap_or_default();
                match memchr::memchr(b'\n', rest) {
                    None => return None,
                    Some(j) => {
                        i = i + j + 1;
                        *state = LineState::Start;
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Searching for a message start; `pending` may hold a candidate start line.
    Resync,
    /// Reading a head into `pending`. `started == false`: idle between messages.
    Head {
        started: bool,
        line: LineState,
        checked: bool,
    },
    /// `Content-Length` body.
    Length { remaining: u64 },
    /// Reading a chunk-size line into `pending`.
    ChunkSize,
    /// Inside the data of one chunk.
    ChunkData { remaining: u64 },
    /// Expecting the CRLF after chunk data (`cr`: the CR was seen).
    ChunkDataEnd { cr: bool },
    /// After the last chunk: trailer fields until a blank line.
    Trailers { line: LineState, bytes: usize },
    /// Body until the connection closes.
    UntilClose,
    /// The message is complete; [`Event::End`] not yet returned.
    Done,
}

/// Outcome of checking a candidate start line.
enum Class {
    Yes,
    No,
    NeedMore,
}

/// Compares `s` with the literal `lit`: `Some(true)` when `s` starts with it,
/// `None` when `s` is a proper prefix of it, `Some(false)` otherwise.
fn starts_with_partial(s: &[u8], lit: &[u8]) -> Option<bool> {
    let n = s.len().min(lit.len());
    if s.get(..n) != lit.get(..n) {
        Some(false)
    } else if s.len() >= lit.len() {
        Some(true)
    } else {
        None
    }
}

/// Checks that `s` continues with `[CR] LF` (index `i` is the first byte after
/// the version).
fn class_line_end(s: &[u8], i: usize) -> Class {
    match s.get(i) {
        None => Class::NeedMore,
        Some(b'\n') => Class::Yes,
        Some(b'\r') => match s.get(i + 1) {
            None => Class::NeedMore,
            Some(b'\n') => Class::Yes,
            Some(_) => Class::No,
        },
        Some(_) => Class::No,
    }
}

/// Is `s` (from a candidate position) a plausible status line?
fn classify_status_line(s: &[u8]) -> Class {
    match starts_with_partial(s, b"HTTP/1.") {
        Some(false) => return Class::No,
        None => return Class::NeedMore,
        Some(true) => {}
    }
    let fixed = [
        s.get(7).map(|&b| b == b'0' || b == b'1'),
        s.get(8).map(|&b| b == b' '),
        s.get(9).map(u8::is_ascii_digit),
        s.get(10).map(u8::is_ascii_digit),
        s.get(11).map(u8::is_ascii_digit),
    ];
    for f in fixed {
        match f {
            Some(false) => return Class::No,
            None => return Class::NeedMore,
            Some(true) => {}
        }
    }
    match s.get(12) {
        None => Class::NeedMore,
        Some(b'\r' | b'\n') => class_line_end(s, 12),
        Some(b' ') => {
            // Reason phrase: HTAB / SP / VCHAR / obs-text, then the line end.
            let rest = s.get(13..).unwrap_or_default();
            match rest
                .iter()
                .position(|&b| !(b == b'\t' || b == b' ' || b >= 0x21 && b != 0x7f))
            {
                None => Class::NeedMore,
                Some(j) => class_line_end(s, 13 + j),
            }
        }
        Some(_) => Class::No,
    }
}

/// Is `s` (from a candidate position) a plausible request line?
fn classify_request_line(s: &[u8]) -> Class {
    let mut need_more = false;
    for m in RESYNC_METHODS {
        match starts_with_partial(s, m) {
            Some(false) => continue,
            None => {
                need_more = true;
                continue;
            }
            Some(true) => {}
        }
        let rest = s.get(m.len()..).unwrap_or_default();
        let Some(t) = rest.iter().position(|&b| !(0x21..=0x7e).contains(&b)) else {
            return Class::NeedMore;
        };
        if t == 0 || rest.get(t) != Some(&b' ') {
            return Class::No;
        }
        let after = rest.get(t + 1..).unwrap_or_default();
        return match starts_with_partial(after, b"HTTP/1.") {
            Some(false) => Class::No,
            None => Class::NeedMore,
            Some(true) => match after.get(7) {
                None => Class::NeedMore,
                Some(b'0' | b'1') => class_line_end(s, m.len() + t + 1 + 8),
                Some(_) => Class::No,
            },
        };
    }
    if need_more {
        Class::NeedMore
    } else {
        Class::No
    }
}

/// A start-line check.
type Classifier = fn(&[u8]) -> Class;

/// Classifies a candidate message start, limited to the kinds allowed.
fn classify(s: &[u8], expect: Option<Kind>) -> Class {
    let window = s.get(..RESYNC_LINE_MAX).unwrap_or(s);
    let mut need_more = false;
    let checks: [(Kind, Classifier); 2] = [
        (Kind::Response, classify_status_line),
        (Kind::Request, classify_request_line),
    ];
    for (kind, check) in checks {
        if expect.is_some_and(|k| k != kind) {
            continue;
        }
        match check(window) {
            Class::Yes => return Class::Yes,
            Class::NeedMore => need_more = true,
            Class::No => {}
        }
    }
    if need_more && s.len() < RESYNC_LINE_MAX {
        Class::NeedMore
    } else {
        Class::No
    }
}

/// Where a resync scan over a slice stopped.
enum Scan {
    /// A complete plausible start line begins at this index.
    Found(usize),
    /// A possible start line begins at this index but the slice ends first.
    Partial(usize),
    /// No candidate in the slice.
    Nothing,
}

fn scan_for_start(s: &[u8], expect: Option<Kind>) -> Scan {
    let mut i = 0usize;
    while let Some(off) = s.get(i..).and_then(|r| {
        r.iter()
            .position(|b| matches!(b, b'H' | b'G' | b'P' | b'D' | b'O'))
    }) {
        let p = i + off;
        match classify(s.get(p..).unwrap_or_default(), expect) {
            Class::Yes => return Scan::Found(p),
            Class::NeedMore => return Scan::Partial(p),
            Class::No => i = p + 1,
        }
    }
    Scan::Nothing
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    // Usually nothing to trim (httparse already trims header values).
    if !v.first().is_some_and(ows) && !v.last().is_some_and(ows) {
        return v;
    }
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    v.get(start..end).unwrap_or_default()
}

/// A non-empty run of ASCII digits as a number; `None` for anything else
/// or above `u64::MAX`.
fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut acc = 0u64;
    let mut overflow = false;
    for &b in v {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        // Keep checking digits after an overflow: a non-digit is `None` too.
        match acc
            .checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(d)))
        {
            Some(a) => acc = a,
            None => overflow = true,
        }
    }
    (!overflow).then_some(acc)
}

/// Packs httparse's headers and computes from the same slots, in the same
/// walk, the body framing (`status`: `None` for a request; see
/// [`framing_of`]) and, for a response, whether its first `Content-Type`
/// is `text/event-stream` (see [`is_event_stream`]).
///
/// The values are stored as `httparse` gives them: it already strips the
/// spaces and tabs around a value (those after the colon, and trailing
/// SP/HTAB/CR/LF; obsolete line folding is not enabled), so they are
/// trimmed as [`trim_ows`] would (the property test
/// `stored_headers_match_httparse_slots` checks it on odd whitespace).
fn convert_headers(headers: &[httparse::Header<'_>], status: Option<u16>) -> ParsedHeaders {
    let mut content_type: Option<&[u8]> = None;
    let mut scan = FramingScan::new();
    let (mut names_len, mut values_len) = (0, 0);
    for h in headers {
        names_len += h.name.len();
        values_len += h.value.len();
        match h.name.len() {
            12 if status.is_some()
                && content_type.is_none()
                && CONTENT_TYPE.matches(h.name.as_bytes()) =>
            {
                content_type = Some(h.value);
            }
            14 | 17 => scan.add(h.name.as_bytes(), h.value),
            _ => {}
        }
    }
    let event_stream = content_type.is_some_and(is_event_stream);
    let framing = scan.finish(status);
    let stored = Headers::pack(
        headers.len(),
        names_len,
        values_len,
        headers.iter().map(|h| (h.name.as_bytes(), h.value)),
    );
    ParsedHeaders {
        headers: stored,
        framing,
        event_stream,
    }
}

/// A `Content-Type` value whose media type is `text/event-stream`
/// (case-insensitive, parameters ignored; RFC 9110 §8.3.1).
pub(crate) fn is_event_stream(value: &[u8]) -> bool {
    let media = value.split(|&b| b == b';').next().unwrap_or_default();
    let media = media
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |s| media.get(s..).unwrap_or_default());
    let end = media
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |e| e + 1);
    media
        .get(..end)
        .is_some_and(|m| m.eq_ignore_ascii_case(b"text/event-stream"))
}

/// Stored headers, the body framing they give, and whether a response's
/// body is an event stream.
struct ParsedHeaders {
    headers: Headers,
    framing: Result<BodyFraming, FramingError>,
    event_stream: bool,
}

/// Parses a complete head (ending with its blank line) of the given kind;
/// returns it with its [`body_framing`].
fn parse_head(buf: &[u8], kind: Kind) -> Option<(Head, Result<BodyFraming, FramingError>)> {
    // The first attempt uses slots on the stack (no allocation per head),
    // left uninitialised (httparse writes the ones it fills: no 2 KiB of
    // empty headers written per head).
    let mut stack = [MaybeUninit::uninit(); HEADERS_INITIAL];
    let whole = |parsed: Option<ParsedHead>| match parsed {
        Some((len, head, framing)) if len == buf.len() => Some((head, framing)),
        _ => None,
    };
    if let Some(parsed) = parse_head_fast(buf, kind) {
        return whole(Some(parsed));
    }
    if let Ok(parsed) = parse_head_with(buf, kind, &mut stack) {
        return whole(parsed);
    }
    let mut n = HEADERS_INITIAL * 2;
    loop {
        let mut headers = vec![MaybeUninit::uninit(); n];
        match parse_head_with(buf, kind, &mut headers) {
            Ok(parsed) => return whole(parsed),
            Err(()) if n < HEADERS_MAX => n *= 2,
            Err(()) => return None,
        }
    }
}

/// A head parsed at the start of a buffer: its length in bytes (blank line
/// included), the head and its [`body_framing`].
type ParsedHead = (usize, Head, Result<BodyFraming, FramingError>);

/// The head at the start of `buf` when `buf` holds all of it and it is
/// well formed within [`HEADERS_INITIAL`] headers (one `httparse` pass, no
/// separate search for the blank line); `None` otherwise (incomplete,
/// malformed or too many headers: the caller takes the general path, which
/// reaches the same verdict on those). `httparse` ends a head at its first
/// empty line, as [`find_blank_line_end`] does, so the length is the one
/// the general path would find.
fn parse_head_prefix(buf: &[u8], kind: Kind) -> Option<ParsedHead> {
    if let Some(parsed) = parse_head_fast(buf, kind) {
        return Some(parsed);
    }
    let mut stack = [MaybeUninit::uninit(); HEADERS_INITIAL];
    parse_head_with(buf, kind, &mut stack).ok().flatten()
}

/// One attempt of [`parse_head`] with the given header slots on the head at
/// the start of `buf`: `Err(())` when they were too few, `Ok(None)` on any
/// other failure (incomplete head included).
fn parse_head_with<'b>(
    buf: &'b [u8],
    kind: Kind,
    headers: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Option<ParsedHead>, ()> {
    let config = httparse::ParserConfig::default();
    {
        let result = match kind {
            Kind::Request => {
                let mut req = httparse::Request::new(&mut []);
                match config.parse_request_with_uninit_headers(&mut req, buf, headers) {
                    Ok(httparse::Status::Complete(len)) => {
                        let ParsedHeaders {
                            headers, framing, ..
                        } = convert_headers(req.headers, None);
                        let head = Head::Request(RequestHead {
                            method: req.method.unwrap_or_default().to_owned(),
                            target: req.path.unwrap_or_default().to_owned(),
                            version_minor: req.version.unwrap_or(1),
                            headers,
                        });
                        Ok(Some((len, head, framing)))
                    }
                    Ok(_) => Ok(None),
                    Err(e) => Err(e),
                }
            }
            Kind::Response => {
                let mut resp = httparse::Response::new(&mut []);
                match config.parse_response_with_uninit_headers(&mut resp, buf, headers) {
                    Ok(httparse::Status::Complete(len)) => {
                        let status = resp.code.unwrap_or_default();
                        let ParsedHeaders {
                            headers,
                            framing,
                            event_stream,
                        } = convert_headers(resp.headers, Some(status));
                        let head = Head::Response(ResponseHead {
                            status,
                            version_minor: resp.version.unwrap_or(1),
                            headers,
                            event_stream,
                        });
                        Ok(Some((len, head, framing)))
                    }
                    Ok(_) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(head) => Ok(head),
            Err(httparse::Error::TooManyHeaders) => Err(()),
            Err(_) => Ok(None),
        }
    }
}

/// Headers [`parse_head_fast`] records; a head with more takes `httparse`'s
/// path (which allows up to [`HEADERS_MAX`]).
const FAST_HEADERS: usize = 32;

/// `tchar` (RFC 9110 §5.6.2), the bytes of a method or a header name:
/// exactly the bytes `httparse` accepts there (its `TOKEN_MAP`).
static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

/// Length of the run of `tchar` bytes at the start of `s` (`None` when
/// `s` ends inside it).
#[inline]
fn tchar_run(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| !TCHAR[usize::from(b)])
}

/// Index of the first byte at or after `i` that is not a `tchar` (see
/// [`TCHAR`]), or `buf.len()`. Eight bytes at a time for the usual name
/// bytes (letters and `-`): each lane is range-checked on its low seven
/// bits (no carries between lanes), bytes from 0x80 fail; the first
/// failing lane is then looked up in [`TCHAR`] (a digit or a rarer
/// `tchar` such as `_` is stepped over: digits are rare in header names,
/// and a third range test per word cost more than it saved).
#[inline(always)]
fn tchar_end(buf: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = LO * 0x80;
    while let Some(w) = buf.get(i..).and_then(|r| r.first_chunk::<8>()) {
        let x = u64::from_le_bytes(*w);
        let x7 = x & !HI;
        // High bit of a lane set when the condition holds for that lane.
        let l = x7 | (LO * 0x20); // letters folded to lowercase
        let letter = l.wrapping_add(LO * 0x1f) & !l.wrapping_add(LO * 0x05); // 0x61..=0x7a
        let dash = !(x7 ^ (LO * 0x2d)).wrapping_add(LO * 0x7f); // 0x2d
        let odd = !((letter | dash) & !x) & HI;
        if odd == 0 {
            i += 8;
            continue;
        }
        let j = i + (odd.trailing_zeros() / 8) as usize;
        match buf.get(j) {
            Some(&b) if TCHAR[usize::from(b)] => i = j + 1,
            _ => return j,
        }
    }
    // Fewer than eight bytes left.
    i + tchar_run(buf.get(i..).unwrap_or_default()).unwrap_or(buf.len().saturating_sub(i))
}

/// Index of the first byte at or after `i` that may not appear in a header
/// value or a reason phrase, or `buf.len()`. Allowed are HTAB, SP, VCHAR
/// and obs-text (RFC 9110 §5.5): every byte but DEL and the controls other
/// than HTAB, as `httparse`'s `HEADER_VALUE_MAP`. Eight bytes at a time:
/// a byte below 0x20 or equal to 0x7F sets the high bit of its lane
/// (borrows only run upwards, so the lowest marked lane is the first such
/// byte); a marked HTAB is stepped over.
#[inline(always)]
fn value_stop(buf: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while let Some(w) = buf.get(i..).and_then(|r| r.first_chunk::<8>()) {
        let x = u64::from_le_bytes(*w);
        let ctl = x.wrapping_sub(LO * 0x20) & !x;
        let y = x ^ (LO * 0x7f);
        let del = y.wrapping_sub(LO) & !y;
        let marked = (ctl | del) & HI;
        if marked == 0 {
            i += 8;
            continue;
        }
        let j = i + (marked.trailing_zeros() / 8) as usize;
        if buf.get(j) != Some(&b'\t') {
            return j;
        }
        i = j + 1;
    }
    // Fewer than eight bytes left.
    while let Some(&b) = buf.get(i) {
        if !(b == b'\t' || (b >= 0x20 && b != 0x7f)) {
            break;
        }
        i += 1;
    }
    i
}

/// `bytes` as text, one `char` per byte: the same as `str::from_utf8` for
/// the ASCII that the fast walk checked (method and target), without a
/// second validation pass or a `memcpy` call.
fn ascii_string(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    s.extend(bytes.iter().map(|&b| char::from(b)));
    s
}

/// `HTTP/1.0` or `HTTP/1.1` followed by CRLF: the minor version.
#[inline(always)]
fn version_crlf(s: Option<&[u8; 10]>) -> Option<u8> {
    match s? {
        b"HTTP/1.1\r\n" => Some(1),
        b"HTTP/1.0\r\n" => Some(0),
        _ => None,
    }
}

/// Differential check for the `http_head` fuzz target (compiled only under
/// `cargo fuzz`, which sets `--cfg fuzzing`): panics when [`parse_head_fast`]
/// accepts `buf` (as a request head or as a response head) and httparse,
/// given as many header slots as the general path allows, does not read the
/// same head (length, start line, packed headers, framing, event-stream flag).
#[cfg(fuzzing)]
pub(crate) fn fuzz_agree(buf: &[u8]) {
    for kind in [Kind::Request, Kind::Response] {
        if let Some(fast) = parse_head_fast(buf, kind) {
            let mut slots = vec![MaybeUninit::uninit(); HEADERS_MAX];
            let model = parse_head_with(buf, kind, &mut slots).ok().flatten();
            assert_eq!(
                Some(fast),
                model,
                "fast head walk and httparse disagree ({kind:?})"
            );
        }
    }
}

/// The head at the start of `buf` when it is complete and written the
/// plain way: CRLF line endings, a request target of visible ASCII, one
/// space between the parts of the start line, at most [`FAST_HEADERS`]
/// headers; `None` for anything else (incomplete, malformed, or just
/// unusual: the caller then asks `httparse`, whose verdict stands).
///
/// Whatever it accepts, `httparse` accepts with the same result: the same
/// length, method, target, version, status and header slots (values
/// trimmed of SP/HTAB as `httparse` trims them), hence the same packed
/// headers, framing and event-stream flag as [`parse_head_with`] (checked
/// by the proptest `fast_head_is_httparse`). It needs no header slots and
/// computes the framing and the event-stream flag while it walks.
fn parse_head_fast(buf: &[u8], kind: Kind) -> Option<ParsedHead> {
    // Start line: request (RFC 9112 §3) or status line (§4).
    let mut i;
    let mut request = None;
    let mut status = None;
    let version_minor;
    match kind {
        Kind::Request => {
            let m = tchar_run(buf)?;
            if m == 0 || buf.get(m) != Some(&b' ') {
                return None;
            }
            let t0 = m + 1;
            let t = buf
                .get(t0..)?
                .iter()
                .position(|&b| !(0x21..=0x7e).contains(&b))?;
            if t == 0 || buf.get(t0 + t) != Some(&b' ') {
                return None;
            }
            let v0 = t0 + t + 1;
            version_minor = version_crlf(buf.get(v0..).and_then(|r| r.first_chunk::<10>()))?;
            request = Some((buf.get(..m)?, buf.get(t0..t0 + t)?));
            i = v0 + 10;
        }
        Kind::Response => {
            let line = buf.first_chunk::<13>()?;
            let (version, rest) = line.split_at(8);
            version_minor = match version {
                b"HTTP/1.1" => 1,
                b"HTTP/1.0" => 0,
                _ => return None,
            };
            let &[b' ', h, t, o, after] = rest else {
                return None;
            };
            if !(h.is_ascii_digit() && t.is_ascii_digit() && o.is_ascii_digit()) {
                return None;
            }
            status =
                Some(u16::from(h - b'0') * 100 + u16::from(t - b'0') * 10 + u16::from(o - b'0'));
            i = match after {
                b' ' => {
                    let e = value_stop(buf, 13);
                    if buf.get(e..e + 2) != Some(b"\r\n") {
                        return None;
                    }
                    e + 2
                }
                b'\r' if buf.get(13) == Some(&b'\n') => 14,
                _ => return None,
            };
        }
    }
    // Header lines (RFC 9112 §5), then the empty line.
    let mut spans = [[0u16; 4]; FAST_HEADERS];
    let mut count = 0;
    let (mut names_len, mut values_len) = (0usize, 0usize);
    let mut scan = FramingScan::new();
    let mut content_type: Option<&[u8]> = None;
    loop {
        let rest = buf.get(i..)?;
        if rest.first() == Some(&b'\r') {
            if rest.get(1) != Some(&b'\n') {
                return None;
            }
            i += 2;
            break;
        }
        let colon = tchar_end(buf, i);
        let n = colon - i;
        if n == 0 || buf.get(colon) != Some(&b':') {
            return None;
        }
        let mut v = colon + 1;
        // Usually one space, then the value.
        if let Some(&[b' ', b]) = buf.get(v..).and_then(|r| r.first_chunk::<2>())
            && b != b' '
            && b != b'\t'
        {
            v += 1;
        } else {
            while let Some(b' ' | b'\t') = buf.get(v) {
                v += 1;
            }
        }
        let stop = value_stop(buf, v);
        if buf.get(stop..stop + 2) != Some(b"\r\n") {
            return None;
        }
        let mut end = stop;
        // Usually no trailing whitespace: one test of the byte before the CR.
        if matches!(buf.get(stop.wrapping_sub(1)), Some(b' ' | b'\t')) {
            while end > v && matches!(buf.get(end - 1), Some(b' ' | b'\t')) {
                end -= 1;
            }
        }
        match n {
            12 if status.is_some() && content_type.is_none() => {
                if let (Some(name), Some(value)) = (rest.get(..n), buf.get(v..end))
                    && CONTENT_TYPE.matches(name)
                {
                    content_type = Some(value);
                }
            }
            // (The name is tested here: `mcp-session-id` is 14 bytes too.)
            14 => {
                if let (Some(name), Some(value)) = (rest.get(..n), buf.get(v..end))
                    && CONTENT_LENGTH.matches(name)
                {
                    scan.add_length(value);
                }
            }
            17 => {
                if let (Some(name), Some(value)) = (rest.get(..n), buf.get(v..end))
                    && TRANSFER_ENCODING.matches(name)
                {
                    scan.add_codings(value);
                }
            }
            _ => {}
        }
        // Offsets are checked below (the whole head fits in u16).
        *spans.get_mut(count)? = [i as u16, n as u16, v as u16, (end - v) as u16];
        count += 1;
        names_len += n;
        values_len += end - v;
        i = stop + 2;
    }
    if i > usize::from(u16::MAX) {
        return None;
    }
    let headers = Headers::pack_spans(buf, spans.get(..count)?, names_len, values_len);
    let framing = scan.finish(status);
    let head = match (request, status) {
        (Some((method, target)), _) => Head::Request(RequestHead {
            method: match method {
                // The usual methods from constants (no byte loop).
                b"POST" => String::from("POST"),
                b"GET" => String::from("GET"),
                b"DELETE" => String::from("DELETE"),
                _ => ascii_string(method),
            },
            target: ascii_string(target),
            version_minor,
            headers,
        }),
        (None, Some(status)) => Head::Response(ResponseHead {
            status,
            version_minor,
            headers,
            event_stream: content_type.is_some_and(is_event_stream),
        }),
        (None, None) => return None,
    };
    Some((i, head, framing))
}

/// Checks a partial head (no blank line yet) for early errors; `false` when
/// `httparse` already rejects it (running out of header slots is not an error
/// here: the complete head is parsed with more).
fn partial_head_ok(buf: &[u8], kind: Kind) -> bool {
    let mut headers = [MaybeUninit::uninit(); HEADERS_INITIAL];
    let config = httparse::ParserConfig::default();
    let result = match kind {
        Kind::Request => config
            .parse_request_with_uninit_headers(
                &mut httparse::Request::new(&mut []),
                buf,
                &mut headers,
            )
            .map(|_| ()),
        Kind::Response => config
            .parse_response_with_uninit_headers(
                &mut httparse::Response::new(&mut []),
                buf,
                &mut headers,
            )
            .map(|_| ()),
    };
    matches!(result, Ok(()) | Err(httparse::Error::TooManyHeaders))
}

/// Parses one chunk-size line (with its line ending). Bare-LF endings are
/// accepted (RFC 9112 §2.2 allows recognising a lone LF). A line that already
/// ends with CRLF is parsed in place; only a bare-LF line is copied (to give
/// `httparse` its CRLF).
fn parse_chunk_line(line: &[u8]) -> Option<u64> {
    let content = line.strip_suffix(b"\n").unwrap_or(line);
    let content = content.strip_suffix(b"\r").unwrap_or(content);
    if !content.first().is_some_and(u8::is_ascii_hexdigit) {
        return None;
    }
    let parse = |l: &[u8]| match httparse::parse_chunk_size(l) {
        Ok(httparse::Status::Complete((used, size))) if used == l.len() => Some(size),
        _ => None,
    };
    if line.len() == content.len() + 2 && line.ends_with(b"\r\n") {
        return parse(line);
    }
    let mut crlf = Vec::with_capacity(content.len() + 2);
    crlf.extend_from_slice(content);
    crlf.extend_from_slice(b"\r\n");
    parse(&crlf)
}

/// Incremental framer of the HTTP/1.x messages of one direction.
///
/// Drive it with [`MessageParser::next`] until it returns `None` for each piece
/// of input; call [`MessageParser::on_gap`] for missing bytes and
/// [`MessageParser::finish`] at the end.
#[derive(Debug, Clone)]
pub struct MessageParser {
    /// Largest head in bytes (u32: a cap above 4 GiB is clamped; keeps the
    /// parser small, it lives as long as its connection).
    max_head_bytes: u32,
    state: State,
    /// Partial head, chunk-size line, or resync candidate.
    pending: Vec<u8>,
    /// Timestamp of the call that delivered `pending[0]` (resync candidate).
    pending_ts: TimestampNs,
    /// Expected kind of messages (set by the caller or by the first head).
    expect: Option<Kind>,
    /// Flags for the next message (set by resync).
    next_flags: MsgFlags,
    /// Flags of the current message.
    flags: MsgFlags,
    /// Timestamp of the first byte of the current message.
    msg_ts: TimestampNs,
    /// A head was reported and its end not yet.
    in_message: bool,
}

impl MessageParser {
    /// A parser accepting heads up to `max_head_bytes` (start line, headers and
    /// blank line; also the cap for a chunk-size line and for trailers; at
    /// least 16, at most `u32::MAX` bytes). `resync == true` starts in resync mode (capture began mid-connection).
    pub fn new(max_head_bytes: usize, resync: bool) -> Self {
        MessageParser {
            max_head_bytes: u32::try_from(max_head_bytes.max(16)).unwrap_or(u32::MAX),
            state: if resync {
                State::Resync
            } else {
                State::Head {
                    started: false,
                    line: LineState::Mid,
                    checked: false,
                }
            },
            pending: Vec::new(),
            pending_ts: 0,
            expect: None,
            next_flags: MsgFlags {
                resynced: resync,
                ..MsgFlags::default()
            },
            flags: MsgFlags::default(),
            msg_ts: 0,
            in_message: false,
        }
    }

    /// From now on accept only messages of `kind` (a head of the other kind is
    /// a parse error).
    pub fn set_expected_kind(&mut self, kind: Kind) {
        self.expect = Some(kind);
    }

    /// The kind this direction carries, once known (set by
    /// [`MessageParser::set_expected_kind`] or by the first parsed head).
    pub fn kind(&self) -> Option<Kind> {
        self.expect
    }

    /// `true` between an [`Event::Head`] and its [`Event::End`].
    pub fn in_message(&self) -> bool {
        self.in_message
    }

    /// Bytes buffered by the parser (partial head, chunk line or resync
    /// candidate); at most about `max_head_bytes`.
    pub fn buffered_bytes(&self) -> usize {
        self.pending.len()
    }

    /// The message whose [`Event::Head`] was just returned has no body (a
    /// response to `HEAD`): its [`Event::End`] comes next. Call it before the
    /// next [`MessageParser::next`].
    pub fn set_no_body(&mut self) {
        if self.in_message {
            self.state = State::Done;
        }
    }

    /// The head size cap in bytes.
    fn max_head(&self) -> usize {
        self.max_head_bytes as usize
    }

    fn idle_state() -> State {
        State::Head {
            started: false,
            line: LineState::Mid,
            checked: false,
        }
    }

    fn enter_resync(&mut self, stats: &mut WireStats) {
        stats.http_resync_skipped_bytes += self.pending.len() as u64;
        self.pending.clear();
        self.state = State::Resync;
        self.next_flags = MsgFlags {
            resynced: true,
            ..MsgFlags::default()
        };
    }

    /// A framing error inside a body: the message ends incomplete; resync.
    fn body_error(&mut self, stats: &mut WireStats) -> Event<'static> {
        stats.http_parse_errors += 1;
        stats.http_incomplete_messages += 1;
        let mut flags = std::mem::take(&mut self.flags);
        flags.incomplete = true;
        self.in_message = false;
        self.enter_resync(stats);
        Event::End { flags }
    }

    /// Frames from `data`, advancing it past what was consumed. Returns the next
    /// event, or `None` when all of `data` is consumed (buffered or skipped) and
    /// more bytes are needed. Call repeatedly until `None`. `ts` is the
    /// timestamp of this piece of input.
    pub fn next<'a>(
        &mut self,
        data: &mut &'a [u8],
        ts: TimestampNs,
        stats: &mut WireStats,
    ) -> Option<Event<'a>> {
        loop {
            let d: &'a [u8] = data;
            match self.state {
                State::Done => {
                    self.state = Self::idle_state();
                    self.in_message = false;
                    return Some(Event::End {
                        flags: std::mem::take(&mut self.flags),
                    });
                }
                State::Resync => {
                    if d.is_empty() {
                        return None;
                    }
                    self.resync_step(data, ts, stats);
                }
                State::Head {
                    started,
                    line,
                    checked,
                } => {
                    if !started {
                        let skip = d.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
                        let d = d.get(skip..).unwrap_or_default();
                        *data = d;
                        if d.is_empty() {
                            return None;
                        }
                        self.msg_ts = ts;
                        self.state = State::Head {
                            started: true,
                            line: LineState::Mid,
                            checked: false,
                        };
                        continue;
                    }
                    if d.is_empty() {
                        return None;
                    }
                    // Fast path: the whole head is in this piece (the usual
                    // case): parse it in place, in one pass.
                    if self.pending.is_empty()
                        && let Some((len, head, framing)) = parse_head_prefix(d, self.kind_of(d))
                        && len <= self.max_head()
                    {
                        *data = d.get(len..).unwrap_or_default();
                        if let Some(ev) = self.start_message(head, framing, len, stats) {
                            return Some(ev);
                        }
                        continue;
                    }
                    let mut line = line;
                    match find_blank_line_end(&mut line, d) {
                        None => {
                            if self.pending.len().saturating_add(d.len()) > self.max_head() {
                                stats.http_parse_errors += 1;
                                self.enter_resync(stats);
                                continue;
                            }
                            self.pending.extend_from_slice(d);
                            *data = &[];
                            let mut checked = checked;
                            if !checked && memchr::memchr(b'\n', &self.pending).is_some() {
                                checked = true;
                                let kind = self.kind_of(&self.pending);
                                if !partial_head_ok(&self.pending, kind) {
                                    stats.http_parse_errors += 1;
                                    self.enter_resync(stats);
                                    continue;
                                }
                            }
                            self.state = State::Head {
                                started: true,
                                line,
                                checked,
                            };
                            return None;
                        }
                        Some(e) => {
                            let total = self.pending.len().saturating_add(e);
                            let (head_part, rest) = d.split_at(e.min(d.len()));
                            *data = rest;
                            if total > self.max_head() {
                                stats.http_parse_errors += 1;
                                stats.http_resync_skipped_bytes += e as u64;
                                self.enter_resync(stats);
                                continue;
                            }
                            let parsed = if self.pending.is_empty() {
                                let kind = self.kind_of(head_part);
                                parse_head(head_part, kind)
                            } else {
                                self.pending.extend_from_slice(head_part);
                                let kind = self.kind_of(&self.pending);
                                parse_head(&self.pending, kind)
                            };
                            self.pending.clear();
                            match parsed {
                                Some((head, framing)) => {
                                    if let Some(ev) =
                                        self.start_message(head, framing, total, stats)
                                    {
                                        return Some(ev);
                                    }
                                }
                                None => {
                                    stats.http_parse_errors += 1;
                                    stats.http_resync_skipped_bytes += total as u64;
                                    self.enter_resync(stats);
                                }
                            }
                        }
                    }
                }
                State::Length { remaining } => {
                    if d.is_empty() {
                        return None;
                    }
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(d.len());
                    let (body, rest) = d.split_at(n);
                    *data = rest;
                    let remaining = remaining.saturating_sub(n as u64);
                    self.state = if remaining == 0 {
                        State::Done
                    } else {
                        State::Length { remaining }
                    };
                    return Some(Event::Body(body));
                }
                State::UntilClose => {
                    if d.is_empty() {
                        return None;
                    }
                    *data = &[];
                    return Some(Event::Body(d));
                }
                State::ChunkData { remaining } => {
                    if d.is_empty() {
                        return None;
                    }
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(d.len());
                    let (body, rest) = d.split_at(n);
                    *data = rest;
                    let remaining = remaining.saturating_sub(n as u64);
                    self.state = if remaining == 0 {
                        State::ChunkDataEnd { cr: false }
                    } else {
                        State::ChunkData { remaining }
                    };
                    return Some(Event::Body(body));
                }
                State::ChunkDataEnd { cr } => {
                    let &b = d.first()?;
                    match (cr, b) {
                        (false, b'\r') => self.state = State::ChunkDataEnd { cr: true },
                        (_, b'\n') => self.state = State::ChunkSize,
                        _ => return Some(self.body_error(stats)),
                    }
                    *data = d.get(1..).unwrap_or_default();
                }
                State::ChunkSize => {
                    if d.is_empty() {
                        return None;
                    }
                    match memchr::memchr(b'\n', d) {
                        None => {
                            if self.pending.len().saturating_add(d.len()) > self.max_head() {
                                stats.http_resync_skipped_bytes += d.len() as u64;
                                *data = &[];
                                return Some(self.body_error(stats));
                            }
                            self.pending.extend_from_slice(d);
                            *data = &[];
                            return None;
                        }
                        Some(i) => {
                            let (line, rest) = d.split_at(i + 1);
                            *data = rest;
                            let size = if self.pending.is_empty() {
                                parse_chunk_line(line)
                            } else {
                                self.pending.extend_from_slice(line);
                                let r = parse_chunk_line(&self.pending);
                                self.pending.clear();
                                r
                            };
                            match size {
                                Some(0) => {
                                    self.state = State::Trailers {
                                        line: LineState::Start,
                                        bytes: 0,
                                    }
                                }
                                Some(n) => self.state = State::ChunkData { remaining: n },
                                None => {
                                    stats.http_resync_skipped_bytes += line.len() as u64;
                                    return Some(self.body_error(stats));
                                }
                            }
                        }
                    }
                }
                State::Trailers { line, bytes } => {
                    if d.is_empty() {
                        return None;
                    }
                    let mut line = line;
                    match find_blank_line_end(&mut line, d) {
                        Some(e) => {
                            let (_, rest) = d.split_at(e.min(d.len()));
                            *data = rest;
                            self.state = State::Done;
                        }
                        None => {
                            let bytes = bytes.saturating_add(d.len());
                            *data = &[];
                            if bytes > self.max_head() {
                                stats.http_resync_skipped_bytes += d.len() as u64;
                                return Some(self.body_error(stats));
                            }
                            self.state = State::Trailers { line, bytes };
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// The kind to parse `head` as: the expected one, else by its first bytes.
    fn kind_of(&self, head: &[u8]) -> Kind {
        match self.expect {
            Some(k) => k,
            None if head.starts_with(b"HTTP/") => Kind::Response,
            None => Kind::Request,
        }
    }

    /// A head was parsed: counts it, sets up body framing, returns the event
    /// (or `None` for a skipped 1xx or an unusable head).
    fn start_message(
        &mut self,
        head: Head,
        framing: Result<BodyFraming, FramingError>,
        head_len: usize,
        stats: &mut WireStats,
    ) -> Option<Event<'static>> {
        if self.expect.is_none() {
            self.expect = Some(head.kind());
        }
        if let Head::Response(r) = &head
            && r.status < 200
        {
            stats.http_informational += 1;
            self.state = Self::idle_state();
            return None;
        }
        let framing = match framing {
            Ok(f) => f,
            Err(_) => {
                stats.http_parse_errors += 1;
                stats.http_resync_skipped_bytes += head_len as u64;
                self.enter_resync(stats);
                return None;
            }
        };
        match head.kind() {
            Kind::Request => stats.http_requests += 1,
            Kind::Response => stats.http_responses += 1,
        }
        self.state = match framing {
            BodyFraming::None => State::Done,
            BodyFraming::Length(n) => State::Length { remaining: n },
            BodyFraming::Chunked => State::ChunkSize,
            BodyFraming::UntilClose => State::UntilClose,
        };
        self.flags = std::mem::take(&mut self.next_flags);
        self.in_message = true;
        Some(Event::Head {
            head,
            ts_first: self.msg_ts,
            flags: self.flags,
        })
    }

    /// One resync step over non-empty `data`: skips, buffers a candidate, or
    /// switches to reading a head.
    fn resync_step(&mut self, data: &mut &[u8], ts: TimestampNs, stats: &mut WireStats) {
        let d: &[u8] = data;
        if self.pending.is_empty() {
            match scan_for_start(d, self.expect) {
                Scan::Found(p) => {
                    stats.http_resync_skipped_bytes += p as u64;
                    *data = d.get(p..).unwrap_or_default();
                    self.msg_ts = ts;
                    self.state = State::Head {
                        started: true,
                        line: LineState::Mid,
                        checked: false,
                    };
                }
                Scan::Partial(p) => {
                    stats.http_resync_skipped_bytes += p as u64;
                    self.pending
                        .extend_from_slice(d.get(p..).unwrap_or_default());
                    self.pending_ts = ts;
                    *data = &[];
                }
                Scan::Nothing => {
                    stats.http_resync_skipped_bytes += d.len() as u64;
                    *data = &[];
                }
            }
            return;
        }
        // A candidate is in `pending`: extend it up to the end of its line.
        let take = memchr::memchr(b'\n', d).map_or(d.len(), |i| i + 1);
        let room = RESYNC_LINE_MAX.saturating_sub(self.pending.len()).max(1);
        let take = take.min(room);
        self.pending
            .extend_from_slice(d.get(..take).unwrap_or_default());
        *data = d.get(take..).unwrap_or_default();
        match classify(&self.pending, self.expect) {
            Class::Yes => {
                self.msg_ts = self.pending_ts;
                let line = if self.pending.last() == Some(&b'\n') {
                    LineState::Start
                } else {
                    LineState::Mid
                };
                self.state = State::Head {
                    started: true,
                    line,
                    checked: false,
                };
            }
            Class::NeedMore => {}
            Class::No => {
                // Look for another candidate inside what was buffered.
                let buf = std::mem::take(&mut self.pending);
                let tail = buf.get(1..).unwrap_or_default();
                match scan_for_start(tail, self.expect) {
                    Scan::Found(p) | Scan::Partial(p) => {
                        stats.http_resync_skipped_bytes += (p + 1) as u64;
                        self.pending
                            .extend_from_slice(tail.get(p..).unwrap_or_default());
                        // `pending_ts` is kept: the candidate began no earlier.
                        if let Class::Yes = classify(&self.pending, self.expect) {
                            self.msg_ts = self.pending_ts;
                            let line = if self.pending.last() == Some(&b'\n') {
                                LineState::Start
                            } else {
                                LineState::Mid
                            };
                            self.state = State::Head {
                                started: true,
                                line,
                                checked: false,
                            };
                        }
                    }
                    Scan::Nothing => {
                        stats.http_resync_skipped_bytes += buf.len() as u64;
                    }
                }
                let mut buf = buf;
                buf.clear();
                if self.pending.is_empty() {
                    // Reuse the allocation.
                    self.pending = buf;
                }
            }
        }
    }

    /// `len` bytes of this direction are missing. See [`GapOutcome`]; counts
    /// [`WireStats::http_incomplete_messages`] for a message cut here.
    pub fn on_gap(&mut self, len: u64, stats: &mut WireStats) -> GapOutcome {
        match self.state {
            State::Resync => {
                self.enter_resync(stats);
                GapOutcome::Resync
            }
            State::Head { started, .. } => {
                if started {
                    stats.http_incomplete_messages += 1;
                }
                self.enter_resync(stats);
                GapOutcome::Resync
            }
            State::Length { remaining } => {
                self.flags.gap = true;
                if len < remaining {
                    self.state = State::Length {
                        remaining: remaining - len,
                    };
                    GapOutcome::Skipped
                } else {
                    let flags = std::mem::take(&mut self.flags);
                    self.in_message = false;
                    if len == remaining {
                        self.state = Self::idle_state();
                    } else {
                        self.enter_resync(stats);
                    }
                    GapOutcome::Ended(flags)
                }
            }
            State::ChunkData { remaining } if len <= remaining => {
                self.flags.gap = true;
                self.state = if len == remaining {
                    State::ChunkDataEnd { cr: false }
                } else {
                    State::ChunkData {
                        remaining: remaining - len,
                    }
                };
                GapOutcome::Skipped
            }
            State::UntilClose => {
                self.flags.gap = true;
                GapOutcome::Skipped
            }
            State::Done => {
                let flags = std::mem::take(&mut self.flags);
                self.in_message = false;
                self.enter_resync(stats);
                GapOutcome::Ended(flags)
            }
            State::ChunkData { .. }
            | State::ChunkDataEnd { .. }
            | State::ChunkSize
            | State::Trailers { .. } => {
                stats.http_incomplete_messages += 1;
                let mut flags = std::mem::take(&mut self.flags);
                flags.gap = true;
                flags.incomplete = true;
                self.in_message = false;
                self.enter_resync(stats);
                GapOutcome::Ended(flags)
            }
        }
    }

    /// The direction ended (connection closed). Returns the flags of the
    /// message in progress, if a head was reported: a read-until-close body (or
    /// a chunked body whose last chunk arrived, missing only the final CRLF)
    /// ends normally; a cut `Content-Length` or chunked body is flagged
    /// `incomplete` and counted in [`WireStats::http_incomplete_messages`]. A
    /// partial head is dropped (counted as incomplete). The parser is then idle.
    pub fn finish(&mut self, stats: &mut WireStats) -> Option<MsgFlags> {
        let state = std::mem::replace(&mut self.state, Self::idle_state());
        let result = match state {
            State::Resync => {
                stats.http_resync_skipped_bytes += self.pending.len() as u64;
                None
            }
            State::Head { started, .. } => {
                if started {
                    stats.http_incomplete_messages += 1;
                    stats.http_resync_skipped_bytes += self.pending.len() as u64;
                }
                None
            }
            State::UntilClose | State::Done | State::Trailers { .. } => {
                Some(std::mem::take(&mut self.flags))
            }
            State::Length { .. }
            | State::ChunkSize
            | State::ChunkData { .. }
            | State::ChunkDataEnd { .. } => {
                stats.http_incomplete_messages += 1;
                let mut flags = std::mem::take(&mut self.flags);
                flags.incomplete = true;
                Some(flags)
            }
        };
        self.pending.clear();
        self.in_message = false;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[&[u8]], resync: bool) -> (Vec<String>, WireStats) {
        let mut p = MessageParser::new(1024, resync);
        let mut stats = WireStats::default();
        let mut out = Vec::new();
        for piece in input {
            let mut d: &[u8] = piece;
            while let Some(ev) = p.next(&mut d, 0, &mut stats) {
                out.push(match ev {
                    Event::Head { head, flags, .. } => match head {
                        Head::Request(r) => format!("req {} {} {:?}", r.method, r.target, flags),
                        Head::Response(r) => format!("resp {} {:?}", r.status, flags),
                    },
                    Event::Body(b) => format!("body {}", String::from_utf8_lossy(b)),
                    Event::End { flags } => format!("end {flags:?}"),
                });
            }
        }
        if let Some(flags) = p.finish(&mut stats) {
            out.push(format!("finish {flags:?}"));
        }
        (out, stats)
    }

    #[test]
    fn classify_start_lines() {
        assert!(matches!(
            classify(b"POST /mcp HTTP/1.1\r\n", None),
            Class::Yes
        ));
        assert!(matches!(classify(b"HTTP/1.1 200 OK\r\n", None), Class::Yes));
        assert!(matches!(classify(b"HTTP/1.1 202\n", None), Class::Yes));
        assert!(matches!(
            classify(b"HTTP/1.1 200 OK", None),
            Class::NeedMore
        ));
        assert!(matches!(classify(b"PO", None), Class::NeedMore));
        assert!(matches!(classify(b"POSTX", None), Class::No));
        assert!(matches!(classify(b"GET  / HTTP/1.1\r\n", None), Class::No));
        assert!(matches!(classify(b"GET / HTTP/2.0\r\n", None), Class::No));
        assert!(matches!(classify(b"GET / HTTP/1.1x", None), Class::No));
        assert!(matches!(
            classify(b"HTTP/1.1 200 OK\r\n", Some(Kind::Request)),
            Class::No
        ));
    }

    /// The framing a parsed head carries (computed from httparse's slots)
    /// is the framing of the packed head, for every mix of the two framing
    /// headers, for requests and responses.
    #[test]
    fn parsed_framing_matches_body_framing() {
        let values = [
            "",
            "0",
            "12",
            " 12 , 12",
            "12, 13",
            "x",
            "chunked",
            "gzip, chunked",
            "gzip",
        ];
        let starts: [&[u8]; 4] = [
            b"POST / HTTP/1.1\r\n",
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 204 No Content\r\n",
            b"HTTP/1.1 101 Switching\r\n",
        ];
        let mut checked = 0;
        for start in starts {
            let kind = if start.starts_with(b"HTTP/") {
                Kind::Response
            } else {
                Kind::Request
            };
            for cl in values {
                for te in values {
                    for order in [false, true] {
                        let mut buf = start.to_vec();
                        let mut lines = vec![];
                        if !cl.is_empty() {
                            lines.push(format!("Content-Length: {cl}\r\n"));
                            lines.push(format!("content-length:{cl}\r\n"));
                        }
                        if !te.is_empty() {
                            lines.push(format!("Transfer-Encoding: {te}\r\n"));
                        }
                        if order {
                            lines.reverse();
                        }
                        buf.extend(lines.concat().into_bytes());
                        buf.extend_from_slice(b"X: y\r\n\r\n");
                        let Some((head, framing)) = parse_head(&buf, kind) else {
                            panic!("unparsed head {:?}", String::from_utf8_lossy(&buf));
                        };
                        assert_eq!(
                            framing,
                            body_framing(&head),
                            "{}",
                            String::from_utf8_lossy(&buf)
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 9 * 9 * 2);
    }

    /// Every header of `stored` and every lookup agree with the trimmed
    /// `httparse` slots `want` (the simple model: a list, first match wins).
    fn check_stored(stored: &Headers, want: &[(String, Vec<u8>)]) {
        let got: Vec<(String, Vec<u8>)> = stored
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(stored.len(), want.len());
        let packed: Headers = want
            .iter()
            .map(|(name, value)| Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        assert_eq!(stored, &packed);
        let mut names: Vec<String> = want.iter().map(|(n, _)| n.to_ascii_uppercase()).collect();
        names.extend(["", ":", "a:", "not-there", "x-a: b", "X-A\r\nB"].map(String::from));
        for (name, _) in want {
            // Prefixes and extensions of real names, and names spilling
            // into the value.
            names.push(
                name.get(..name.len().saturating_sub(1))
                    .unwrap_or("")
                    .to_owned(),
            );
            names.push(format!("{name}:"));
            names.push(format!("{name}x"));
        }
        for name in &names {
            let first = want
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| &v[..]);
            assert_eq!(crate::header(stored, name), first, "{name:?}");
            assert_eq!(crate::header(&packed, name), first, "{name:?}");
        }
    }

    proptest::proptest! {
        /// `Token::matches` is `eq_ignore_ascii_case` against its lowercase
        /// text, on names near it (case flips, byte edits, other lengths).
        #[test]
        fn token_matches_like_eq_ignore_ascii_case(
            which in 0usize..4,
            edits in proptest::collection::vec((0usize..20, proptest::prelude::any::<u8>()), 0..3),
            flips in proptest::collection::vec(proptest::prelude::any::<bool>(), 20),
            cut in 0usize..3,
        ) {
            let text: &[u8] = [&b"transfer-encoding"[..], b"content-length", b"content-type", b"chunked"][which];
            let mut name: Vec<u8> = text
                .iter()
                .zip(&flips)
                .map(|(&b, &f)| if f { b.to_ascii_uppercase() } else { b })
                .collect();
            for (pos, b) in edits {
                if let Some(x) = name.get_mut(pos % text.len()) {
                    *x = b;
                }
            }
            match cut {
                0 => name.push(b'x'),
                1 => {}
                _ => {
                    name.pop();
                }
            }
            let want = name.eq_ignore_ascii_case(text);
            let got = match which {
                0 => TRANSFER_ENCODING.matches(&name),
                1 => CONTENT_LENGTH.matches(&name),
                2 => CONTENT_TYPE.matches(&name),
                _ => CHUNKED.matches(&name),
            };
            proptest::prop_assert_eq!(got, want);
        }
    }

    proptest::proptest! {
        /// A response's `event_stream` (found while converting the head)
        /// is what a lookup of its first `Content-Type` gives, with case
        /// flips, spaces, parameters, repeated and look-alike headers.
        #[test]
        fn event_stream_flag_matches_content_type_lookup(
            types in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["content-type", "Content-Type", "CONTENT-TYPE", "content-typ", "x-content-type"]),
                    proptest::sample::select(vec!["text/event-stream", "Text/Event-Stream", "text/event-stream; charset=utf-8", " text/event-stream ;x", "application/json", "text/event-streams", ""]),
                ),
                0..4,
            ),
        ) {
            let mut buf = b"HTTP/1.1 200 OK\r\n".to_vec();
            for (name, value) in &types {
                buf.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            buf.extend_from_slice(b"\r\n");
            let Some((Head::Response(r), _)) = parse_head(&buf, Kind::Response) else {
                panic!("unparsed {:?}", String::from_utf8_lossy(&buf));
            };
            let want = crate::header(&r.headers, "content-type").is_some_and(is_event_stream);
            proptest::prop_assert_eq!(r.event_stream, want);
        }
    }

    /// Headers of a parsed head keep names, trimmed values and order.
    #[test]
    fn parsed_headers_kept() {
        let buf: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type:  text/event-stream ; x=1\r\n\
            X-Empty:\r\nX-Tab:\tv \t\nmcp-session-id: abc\r\nX-Last: \r\n\r\n";
        let Some((Head::Response(r), _)) = parse_head(buf, Kind::Response) else {
            panic!("unparsed");
        };
        assert!(r.event_stream);
        check_stored(
            &r.headers,
            &[
                ("Content-Type".into(), b"text/event-stream ; x=1".to_vec()),
                ("X-Empty".into(), vec![]),
                ("X-Tab".into(), b"v".to_vec()),
                ("mcp-session-id".into(), b"abc".to_vec()),
                ("X-Last".into(), vec![]),
            ],
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]
        /// Stored headers give back exactly `httparse`'s trimmed slots and
        /// are found by the same lookups as the simple model, on heads with
        /// odd whitespace, empty values, bare LFs, colons and non-UTF-8
        /// bytes in values (whatever `httparse` accepts).
        #[test]
        fn stored_headers_match_httparse_slots(
            response in proptest::prelude::any::<bool>(),
            lines in proptest::collection::vec(
                (
                    "[A-Za-z0-9!#$%&'*+.^_`|~-]{0,6}",
                    proptest::collection::vec(
                        proptest::sample::select(vec![b'a', b'Z', b' ', b'\t', b':', 0x80, 0xff, b'\r', b'\n', 0]),
                        0..8,
                    ),
                    proptest::prelude::any::<bool>(),
                ),
                0..8,
            ),
        ) {
            let mut buf: Vec<u8> = if response {
                b"HTTP/1.1 200 OK\r\n".to_vec()
            } else {
                b"POST /mcp HTTP/1.1\r\n".to_vec()
            };
            for (name, value, crlf) in &lines {
                buf.extend_from_slice(name.as_bytes());
                buf.push(b':');
                buf.extend_from_slice(value);
                buf.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
            buf.extend_from_slice(b"\r\n");
            let kind = if response { Kind::Response } else { Kind::Request };
            if let Some((head, _)) = parse_head(&buf, kind) {
                let mut slots = [httparse::EMPTY_HEADER; 16];
                let n = if response {
                    let mut r = httparse::Response::new(&mut slots);
                    proptest::prop_assert!(r.parse(&buf).is_ok_and(|s| s.is_complete()));
                    r.headers.len()
                } else {
                    let mut r = httparse::Request::new(&mut slots);
                    proptest::prop_assert!(r.parse(&buf).is_ok_and(|s| s.is_complete()));
                    r.headers.len()
                };
                let want: Vec<(String, Vec<u8>)> = slots[..n]
                    .iter()
                    .map(|h| (h.name.to_owned(), trim_ows(h.value).to_vec()))
                    .collect();
                check_stored(head.headers(), &want);
            }
        }
    }

    /// `httparse` alone (the model of [`parse_head_fast`]): the head at the
    /// start of `buf` with as many header slots as the general path allows.
    fn httparse_head(buf: &[u8], kind: Kind) -> Option<ParsedHead> {
        let mut slots = vec![MaybeUninit::uninit(); HEADERS_MAX];
        parse_head_with(buf, kind, &mut slots).ok().flatten()
    }

    proptest::proptest! {
        /// The eight-bytes-at-a-time scans stop where a byte loop over
        /// `httparse`'s tables stops, from any start, on bytes near every
        /// class boundary.
        #[test]
        fn word_scans_match_byte_loops(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        0u8, 0x08, b'\t', 0x0a, b'\r', 0x1f, b' ', b'!', b'"', b',', b'-', b'.',
                        b'/', b'0', b'9', b':', b'@', b'A', b'Z', b'[', b'_', b'`', b'a', b'z',
                        b'{', b'|', b'}', b'~', 0x7f, 0x80, 0xad, 0xe0, 0xff,
                    ]),
                    proptest::prelude::any::<u8>(),
                    proptest::sample::select(vec![b'a', b'Z', b'-', b'5']),
                ],
                0..40,
            ),
            start in 0usize..42,
        ) {
            let tchar = bytes
                .iter()
                .skip(start)
                .position(|&b| !httparse_tchar(b))
                .map_or(bytes.len().max(start), |p| start + p);
            proptest::prop_assert_eq!(tchar_end(&bytes, start), tchar);
            let value = bytes
                .iter()
                .skip(start)
                .position(|&b| !(b == b'\t' || (b' '..=0x7e).contains(&b) || b >= 0x80))
                .map_or(bytes.len().max(start), |p| start + p);
            proptest::prop_assert_eq!(value_stop(&bytes, start), value);
        }
    }

    proptest::proptest! {
        /// `parse_decimal` is `u64`'s parser restricted to plain digits
        /// (no sign, no spaces, not empty), overflow included.
        #[test]
        fn parse_decimal_is_u64_parse(
            v in proptest::collection::vec(
                proptest::sample::select(vec![b'0', b'1', b'5', b'9', b'/', b':', b' ', b'+', b'a']),
                0..24,
            ),
            big in proptest::prelude::any::<u64>(),
            tail in proptest::collection::vec(proptest::sample::select(vec![b'0', b'9', b'x']), 0..3),
        ) {
            for v in [v, [big.to_string().into_bytes(), tail].concat()] {
                let want = if !v.is_empty() && v.iter().all(u8::is_ascii_digit) {
                    std::str::from_utf8(&v).ok().and_then(|t| t.parse::<u64>().ok())
                } else {
                    None
                };
                proptest::prop_assert_eq!(parse_decimal(&v), want);
            }
        }
    }

    /// `httparse`'s `TOKEN_MAP`, spelled out (RFC 9110 §5.6.2 `tchar`).
    fn httparse_tchar(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
    }

    #[test]
    fn tchar_table_is_rfc_tchar() {
        for b in 0..=255u8 {
            assert_eq!(TCHAR[usize::from(b)], httparse_tchar(b), "{b:#x}");
        }
    }

    /// One of `good` (most of the time) or of `bad`.
    fn pick<T: Copy + std::fmt::Debug + 'static>(
        good: &'static [T],
        bad: &'static [T],
    ) -> impl proptest::strategy::Strategy<Value = T> {
        use proptest::prelude::*;
        prop_oneof![
            40 => proptest::sample::select(good),
            1 => proptest::sample::select(bad),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// Whatever the fast head parser accepts, `httparse` accepts with
        /// the same length, start line, packed headers, framing and
        /// event-stream flag; on start lines and header lines built from
        /// pieces that are valid, odd or wrong (spaces, tabs, bare LFs,
        /// CRs, controls, DEL, obs-text, colons, non-tchar names), cut
        /// anywhere, with a body or nothing after the head.
        #[test]
        fn fast_head_is_httparse(
            start in pick(
                &["POST /mcp HTTP/1.1\r\n", "GET / HTTP/1.0\r\n", "M-X_! /a?b=c%20 HTTP/1.1\r\n",
                  "HTTP/1.1 200 OK\r\n", "HTTP/1.0 204 \r\n", "HTTP/1.1 404\r\n",
                  "HTTP/1.1 200 O\tK \u{e9}\r\n", "HTTP/1.1 100 Continue\r\n"],
                &["POST  /mcp HTTP/1.1\r\n", "POST /mcp HTTP/1.1\n", "POST /m\u{e9} HTTP/1.1\r\n",
                  "POST /mcp HTTP/1.2\r\n", "POST /mcp HTTP/1.1 \r\n", "PO(ST /mcp HTTP/1.1\r\n",
                  "HTTP/1.1 20 OK\r\n", "HTTP/1.1  200 OK\r\n", "HTTP/1.1 200 OK\n",
                  "HTTP/1.1 200\rOK\r\n", "HTTP/2.0 200 OK\r\n", "\r\nPOST /mcp HTTP/1.1\r\n"],
            ),
            lines in proptest::collection::vec(
                (
                    pick(
                        &["Content-Type", "content-length", "Transfer-Encoding", "X_y.z~1", "a",
                          "Host", "mcp-session-id", "Accept"],
                        &["Bad Name", "Bad\"", "", "N\u{e9}", "Host "],
                    ),
                    pick(&[": ", ":", ":\t ", ":  "], &[" :", "\r\n:"]),
                    proptest::collection::vec(
                        pick(
                            &[b'a', b'Z', b'0', b'5', b' ', b'\t', b':', b',', b'/', b';', 0x80, 0xff],
                            &[0x7f, 0, 0x1f, b'\r', b'\n'],
                        ),
                        0..6,
                    ),
                    proptest::sample::select(vec![
                        "text/event-stream", "chunked", "12", "1, 1", "", " x ", "gzip, chunked",
                        "0123456789abcdef0123456789abcdef0123456789",
                    ]),
                    pick(&["\r\n", " \r\n", "\t\r\n"], &["\n", "\r", "\r\r\n"]),
                ),
                0..36,
            ),
            end in pick(&["\r\n", "\r\n5\r\nhello\r\n0\r\n\r\n"], &["\n", "\r", ""]),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            do_cut in proptest::prelude::any::<u8>(),
        ) {
            let mut buf = start.as_bytes().to_vec();
            for (name, sep, raw, word, eol) in &lines {
                buf.extend_from_slice(name.as_bytes());
                buf.extend_from_slice(sep.as_bytes());
                buf.extend_from_slice(raw);
                buf.extend_from_slice(word.as_bytes());
                buf.extend_from_slice(eol.as_bytes());
            }
            buf.extend_from_slice(end.as_bytes());
            if do_cut < 64 {
                buf.truncate(cut.index(buf.len() + 1));
            }
            for kind in [Kind::Request, Kind::Response] {
                if let Some(fast) = parse_head_fast(&buf, kind) {
                    proptest::prop_assert_eq!(Some(fast), httparse_head(&buf, kind));
                }
            }
        }
    }

    /// Plain heads (as the SDKs send them) take the fast path.
    #[test]
    fn plain_heads_take_the_fast_path() {
        let heads: [(&[u8], Kind); 3] = [
            (
                b"POST /mcp HTTP/1.1\r\nHost: a:1\r\ncontent-type: application/json\r\n\
                  Content-Length: 5\r\nX-Tab:\tv\t \r\nX-Empty:\r\n\r\nhello",
                Kind::Request,
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                  Transfer-Encoding: chunked\r\n\r\n",
                Kind::Response,
            ),
            (b"HTTP/1.0 204\r\nX: \x80\xff\r\n\r\n", Kind::Response),
        ];
        for (buf, kind) in heads {
            let fast = parse_head_fast(buf, kind);
            assert!(fast.is_some(), "{:?}", String::from_utf8_lossy(buf));
            assert_eq!(fast, httparse_head(buf, kind));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        /// The in-place fast path (`parse_head_prefix`) agrees with the
        /// general one (blank-line search, then `parse_head` of exactly that
        /// prefix) whenever it answers, on heads with random bytes replaced
        /// by line breaks, spaces, colons and other troublemakers.
        #[test]
        fn head_fast_path_agrees_with_blank_line_search(
            response in proptest::prelude::any::<bool>(),
            edits in proptest::collection::vec((0usize..200, 0usize..10), 0..6),
            cut in 0usize..220,
        ) {
            let base: &[u8] = if response {
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 5\r\n\r\nhello"
            } else {
                b"POST /mcp HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n5\r\nhello\r\n"
            };
            let mut buf = base.to_vec();
            let alphabet = [b'\r', b'\n', b' ', b':', b'\t', b'a', 0x80, b'H', 0, b'/'];
            for (pos, b) in edits {
                if let Some(x) = buf.get_mut(pos % base.len()) {
                    *x = alphabet[b];
                }
            }
            buf.truncate(cut);
            // `MessageParser::next` skips line breaks before a head.
            let skip = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
            let d = &buf[skip..];
            for kind in [Kind::Request, Kind::Response] {
                if let Some((len, head, framing)) = parse_head_prefix(d, kind) {
                    let mut line = LineState::Mid;
                    proptest::prop_assert_eq!(find_blank_line_end(&mut line, d), Some(len));
                    proptest::prop_assert_eq!(parse_head(&d[..len], kind), Some((head, framing)));
                }
            }
        }
    }

    #[test]
    fn framing_rules() {
        let req = |hs: &[(&str, &str)]| {
            Head::Request(RequestHead {
                method: "POST".into(),
                target: "/".into(),
                version_minor: 1,
                headers: hs
                    .iter()
                    .map(|(n, v)| Header {
                        name: (*n).into(),
                        value: v.as_bytes().to_vec(),
                    })
                    .collect(),
            })
        };
        assert_eq!(body_framing(&req(&[])), Ok(BodyFraming::None));
        assert_eq!(
            body_framing(&req(&[("Content-Length", "12")])),
            Ok(BodyFraming::Length(12))
        );
        assert_eq!(
            body_framing(&req(&[("Content-Length", "12, 12")])),
            Ok(BodyFraming::Length(12))
        );
        assert_eq!(
            body_framing(&req(&[("Content-Length", "12"), ("content-length", "13")])),
            Err(FramingError::BadContentLength)
        );
        assert_eq!(
            body_framing(&req(&[("Content-Length", "-1")])),
            Err(FramingError::BadContentLength)
        );
        assert_eq!(
            body_framing(&req(&[
                ("Transfer-Encoding", "gzip, Chunked"),
                ("Content-Length", "3")
            ])),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            body_framing(&req(&[("Transfer-Encoding", "gzip")])),
            Err(FramingError::RequestNotChunked)
        );
        let resp = |status: u16, hs: &[(&str, &str)]| {
            Head::Response(ResponseHead {
                status,
                version_minor: 1,
                headers: hs
                    .iter()
                    .map(|(n, v)| Header {
                        name: (*n).into(),
                        value: v.as_bytes().to_vec(),
                    })
                    .collect(),
                event_stream: false,
            })
        };
        assert_eq!(body_framing(&resp(200, &[])), Ok(BodyFraming::UntilClose));
        assert_eq!(
            body_framing(&resp(204, &[("Content-Length", "5")])),
            Ok(BodyFraming::None)
        );
        assert_eq!(body_framing(&resp(304, &[])), Ok(BodyFraming::None));
        assert_eq!(
            body_framing(&resp(200, &[("Transfer-Encoding", "gzip")])),
            Ok(BodyFraming::UntilClose)
        );
    }

    #[test]
    fn chunked_with_extensions_and_trailers_split_everywhere() {
        let msg: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;name=val\r\nhello\r\n6 ; x\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let whole = run(&[msg], false).0;
        let bodies: String = whole
            .iter()
            .filter_map(|l| l.strip_prefix("body "))
            .collect();
        assert_eq!(bodies, "hello world");
        assert!(whole.last().is_some_and(|l| l.starts_with("end ")));
        for i in 0..=msg.len() {
            let (a, b) = msg.split_at(i);
            let split = run(&[a, b], false).0;
            let split_bodies: String = split
                .iter()
                .filter_map(|l| l.strip_prefix("body "))
                .collect();
            assert_eq!(split_bodies, "hello world", "split at {i}");
            assert_eq!(split.first(), whole.first());
            assert_eq!(split.last(), whole.last());
        }
    }

    #[test]
    fn bare_lf_chunk_lines_accepted() {
        let (out, stats) = run(
            &[b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n"],
            false,
        );
        assert_eq!(out.get(1).map(String::as_str), Some("body abc"));
        assert_eq!(stats.http_parse_errors, 0);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn bad_chunk_size_ends_incomplete_and_resyncs() {
        let (out, stats) = run(
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nHTTP/1.1 204 No\r\n\r\n"],
            false,
        );
        assert!(out.get(1).is_some_and(|l| l.contains("incomplete: true")));
        assert!(
            out.get(2)
                .is_some_and(|l| l.starts_with("resp 204") && l.contains("resynced: true"))
        );
        assert_eq!(stats.http_parse_errors, 1);
    }

    #[test]
    fn informational_skipped() {
        let (out, stats) = run(
            &[b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
            false,
        );
        assert_eq!(out.len(), 3);
        assert!(out.first().is_some_and(|l| l.starts_with("resp 200")));
        assert_eq!(stats.http_informational, 1);
        assert_eq!(stats.http_responses, 1);
    }

    #[test]
    fn oversized_head_is_parse_error() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 2000));
        big.extend_from_slice(b"\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
        let (out, stats) = run(&[&big], false);
        assert_eq!(stats.http_parse_errors, 1);
        assert_eq!(out.len(), 2);
        assert!(out.first().is_some_and(|l| l.starts_with("req GET /next")));
    }

    #[test]
    fn resync_candidate_split_across_calls() {
        let (out, stats) = run(&[b"xx}PO", b"ST /mcp HT", b"TP/1.1\r\n\r\n"], true);
        assert_eq!(out.len(), 2);
        assert!(
            out.first()
                .is_some_and(|l| l.starts_with("req POST /mcp") && l.contains("resynced: true"))
        );
        assert_eq!(stats.http_resync_skipped_bytes, 3);
    }

    #[test]
    fn resync_rejected_candidate_rescanned() {
        // "GET GET / HTTP/1.1": the first GET is not a start, the second is.
        let (out, stats) = run(&[b"GET G", b"ET / HTTP/1.1\r\n\r\n"], true);
        assert!(
            out.first().is_some_and(|l| l.starts_with("req GET /")),
            "{out:?}"
        );
        assert_eq!(stats.http_resync_skipped_bytes, 4);
    }
}
