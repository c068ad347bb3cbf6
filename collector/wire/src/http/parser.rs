//! [`MessageParser`], the incremental framer of one direction's messages:
//! one method per [`State`].

use super::framing::{BodyFraming, FramingError, Head, Kind, parse_chunk_line};
use super::head::{LineState, find_blank_line_end, parse_head, parse_head_prefix, partial_head_ok};
use super::resync::{Class, RESYNC_LINE_MAX, Scan, classify, scan_for_start};
use crate::stats::WireStats;
use crate::{MsgFlags, TimestampNs};

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

/// What one state's step of [`MessageParser::next`] did.
enum Step<'a> {
    /// `next` returns this event.
    Emit(Event<'a>),
    /// The input is consumed (buffered or skipped): `next` returns `None`.
    NeedMore,
    /// The state changed: step again.
    Again,
}

/// The next body piece of at most `remaining` bytes from `data` (advanced
/// past it) and the bytes still expected after it; `None` when `data` is
/// empty.
fn take_body<'a>(data: &mut &'a [u8], remaining: u64) -> Option<(&'a [u8], u64)> {
    let d: &'a [u8] = data;
    if d.is_empty() {
        return None;
    }
    let n = usize::try_from(remaining)
        .unwrap_or(usize::MAX)
        .min(d.len());
    let (body, rest) = d.split_at(n);
    *data = rest;
    Some((body, remaining.saturating_sub(n as u64)))
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
            let step = match self.state {
                State::Done => Step::Emit(self.end_message()),
                State::Resync if data.is_empty() => Step::NeedMore,
                State::Resync => {
                    self.resync_step(data, ts, stats);
                    Step::Again
                }
                State::Head { started: false, .. } => self.idle(data, ts),
                State::Head { line, checked, .. } => self.head(data, line, checked, stats),
                State::Length { remaining } => self.length_body(data, remaining),
                State::UntilClose => self.until_close_body(data),
                State::ChunkData { remaining } => self.chunk_data(data, remaining),
                State::ChunkDataEnd { cr } => self.chunk_data_end(data, cr, stats),
                State::ChunkSize => self.chunk_size(data, stats),
                State::Trailers { line, bytes } => self.trailers(data, line, bytes, stats),
            };
            match step {
                Step::Emit(ev) => return Some(ev),
                Step::NeedMore => return None,
                Step::Again => {}
            }
        }
    }

    /// [`State::Done`]: the message's [`Event::End`]; the parser is idle.
    fn end_message(&mut self) -> Event<'static> {
        self.state = Self::idle_state();
        self.in_message = false;
        Event::End {
            flags: std::mem::take(&mut self.flags),
        }
    }

    /// Idle between messages: skips line breaks, then a head starts.
    fn idle<'a>(&mut self, data: &mut &'a [u8], ts: TimestampNs) -> Step<'a> {
        let d: &'a [u8] = data;
        let skip = d.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
        let d = d.get(skip..).unwrap_or_default();
        *data = d;
        if d.is_empty() {
            return Step::NeedMore;
        }
        self.msg_ts = ts;
        self.state = State::Head {
            started: true,
            line: LineState::Mid,
            checked: false,
        };
        Step::Again
    }

    /// Inside a head (`line`: the blank-line scanner's state after what is
    /// in `pending`; `checked`: its first line passed [`partial_head_ok`]).
    fn head<'a>(
        &mut self,
        data: &mut &'a [u8],
        line: LineState,
        checked: bool,
        stats: &mut WireStats,
    ) -> Step<'a> {
        let d: &'a [u8] = data;
        if d.is_empty() {
            return Step::NeedMore;
        }
        // The whole head is in this piece (the usual case): parsed in place,
        // in one pass.
        if self.pending.is_empty()
            && let Some((len, head, framing)) = parse_head_prefix(d, self.kind_of(d))
            && len <= self.max_head()
        {
            *data = d.get(len..).unwrap_or_default();
            return match self.start_message(head, framing, len, stats) {
                Some(ev) => Step::Emit(ev),
                None => Step::Again,
            };
        }
        let mut line = line;
        match find_blank_line_end(&mut line, d) {
            None => self.head_partial(data, line, checked, stats),
            Some(e) => self.head_complete(data, e, stats),
        }
    }

    /// No blank line in `data` yet: buffers it (within `max_head_bytes`) and
    /// checks the first line as soon as it is complete.
    fn head_partial<'a>(
        &mut self,
        data: &mut &'a [u8],
        line: LineState,
        checked: bool,
        stats: &mut WireStats,
    ) -> Step<'a> {
        let d: &'a [u8] = data;
        if self.pending.len().saturating_add(d.len()) > self.max_head() {
            stats.http_parse_errors += 1;
            self.enter_resync(stats);
            return Step::Again;
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
                return Step::Again;
            }
        }
        self.state = State::Head {
            started: true,
            line,
            checked,
        };
        Step::NeedMore
    }

    /// The head ends `e` bytes into `data` (after what is in `pending`):
    /// parses it and starts its message, or resyncs.
    fn head_complete<'a>(
        &mut self,
        data: &mut &'a [u8],
        e: usize,
        stats: &mut WireStats,
    ) -> Step<'a> {
        let d: &'a [u8] = data;
        let total = self.pending.len().saturating_add(e);
        let (head_part, rest) = d.split_at(e.min(d.len()));
        *data = rest;
        if total > self.max_head() {
            stats.http_parse_errors += 1;
            stats.http_resync_skipped_bytes += e as u64;
            self.enter_resync(stats);
            return Step::Again;
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
                if let Some(ev) = self.start_message(head, framing, total, stats) {
                    return Step::Emit(ev);
                }
            }
            None => {
                stats.http_parse_errors += 1;
                stats.http_resync_skipped_bytes += total as u64;
                self.enter_resync(stats);
            }
        }
        Step::Again
    }

    /// [`State::Length`]: the next piece of a `Content-Length` body.
    fn length_body<'a>(&mut self, data: &mut &'a [u8], remaining: u64) -> Step<'a> {
        let Some((body, remaining)) = take_body(data, remaining) else {
            return Step::NeedMore;
        };
        self.state = if remaining == 0 {
            State::Done
        } else {
            State::Length { remaining }
        };
        Step::Emit(Event::Body(body))
    }

    /// [`State::UntilClose`]: all of `data` is body.
    fn until_close_body<'a>(&mut self, data: &mut &'a [u8]) -> Step<'a> {
        let d: &'a [u8] = data;
        if d.is_empty() {
            return Step::NeedMore;
        }
        *data = &[];
        Step::Emit(Event::Body(d))
    }

    /// [`State::ChunkData`]: the next piece of one chunk's data.
    fn chunk_data<'a>(&mut self, data: &mut &'a [u8], remaining: u64) -> Step<'a> {
        let Some((body, remaining)) = take_body(data, remaining) else {
            return Step::NeedMore;
        };
        self.state = if remaining == 0 {
            State::ChunkDataEnd { cr: false }
        } else {
            State::ChunkData { remaining }
        };
        Step::Emit(Event::Body(body))
    }

    /// [`State::ChunkDataEnd`]: the line end after a chunk's data.
    fn chunk_data_end<'a>(
        &mut self,
        data: &mut &'a [u8],
        cr: bool,
        stats: &mut WireStats,
    ) -> Step<'a> {
        let d: &'a [u8] = data;
        let Some(&b) = d.first() else {
            return Step::NeedMore;
        };
        match (cr, b) {
            (false, b'\r') => self.state = State::ChunkDataEnd { cr: true },
            (_, b'\n') => self.state = State::ChunkSize,
            _ => return Step::Emit(self.body_error(stats)),
        }
        *data = d.get(1..).unwrap_or_default();
        Step::Again
    }

    /// [`State::ChunkSize`]: a chunk-size line, buffered in `pending` until
    /// its LF (within `max_head_bytes`).
    fn chunk_size<'a>(&mut self, data: &mut &'a [u8], stats: &mut WireStats) -> Step<'a> {
        let d: &'a [u8] = data;
        if d.is_empty() {
            return Step::NeedMore;
        }
        let Some(i) = memchr::memchr(b'\n', d) else {
            *data = &[];
            if self.pending.len().saturating_add(d.len()) > self.max_head() {
                stats.http_resync_skipped_bytes += d.len() as u64;
                return Step::Emit(self.body_error(stats));
            }
            self.pending.extend_from_slice(d);
            return Step::NeedMore;
        };
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
                return Step::Emit(self.body_error(stats));
            }
        }
        Step::Again
    }

    /// [`State::Trailers`]: trailer fields until a blank line (`bytes` so
    /// far, within `max_head_bytes`); they are not reported.
    fn trailers<'a>(
        &mut self,
        data: &mut &'a [u8],
        line: LineState,
        bytes: usize,
        stats: &mut WireStats,
    ) -> Step<'a> {
        let d: &'a [u8] = data;
        if d.is_empty() {
            return Step::NeedMore;
        }
        let mut line = line;
        if let Some(e) = find_blank_line_end(&mut line, d) {
            *data = d.get(e..).unwrap_or_default();
            self.state = State::Done;
            return Step::Again;
        }
        let bytes = bytes.saturating_add(d.len());
        *data = &[];
        if bytes > self.max_head() {
            stats.http_resync_skipped_bytes += d.len() as u64;
            return Step::Emit(self.body_error(stats));
        }
        self.state = State::Trailers { line, bytes };
        Step::NeedMore
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
        if self.pending.is_empty() {
            self.resync_scan(data, ts, stats);
        } else {
            self.resync_candidate(data, stats);
        }
    }

    /// Resync with no candidate buffered: scans `data` for a start line.
    fn resync_scan(&mut self, data: &mut &[u8], ts: TimestampNs, stats: &mut WireStats) {
        let d: &[u8] = data;
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
    }

    /// Resync with a candidate in `pending`: extends it up to the end of its
    /// line, then accepts it, waits, or looks for another candidate in it.
    fn resync_candidate(&mut self, data: &mut &[u8], stats: &mut WireStats) {
        let d: &[u8] = data;
        let take = memchr::memchr(b'\n', d).map_or(d.len(), |i| i + 1);
        let room = RESYNC_LINE_MAX.saturating_sub(self.pending.len()).max(1);
        let take = take.min(room);
        self.pending
            .extend_from_slice(d.get(..take).unwrap_or_default());
        *data = d.get(take..).unwrap_or_default();
        match classify(&self.pending, self.expect) {
            Class::Yes => self.head_from_candidate(),
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
                            self.head_from_candidate();
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

    /// The candidate in `pending` is a start line: it begins a head.
    fn head_from_candidate(&mut self) {
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
