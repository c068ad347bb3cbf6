//! One TCP connection's HTTP/1.x conversation: frames both directions, pairs
//! responses with requests, and reports [`HttpEvent`]s.
//!
//! Each direction has its own [`MessageParser`]. Roles are detected from the
//! bytes: the first head parsed in either direction tells whether it carries
//! requests or responses; when that contradicts the TCP layer's guess (the
//! handshake was not captured), client and server are swapped in the reported
//! [`ConnMeta`]. Requests get indexes 0, 1, 2… in order (pipelining is fine);
//! final responses pair with outstanding requests first-in first-out (RFC 9112
//! §9.3.2), remembering each request's method so a response to `HEAD` has no
//! body (RFC 9112 §6.3 item 1).
//!
//! Event order per connection: a request's [`HttpEvent::Request`] when its body
//! is complete; for its final response [`HttpEvent::ResponseHead`] as soon as the
//! head is parsed, then one [`HttpEvent::SseEvent`] per event of a
//! `text/event-stream` body, then [`HttpEvent::ResponseEnd`]; and
//! [`HttpEvent::Closed`] last.
//!
//! A connection whose first bytes are a TLS record (a mesh's mTLS leg, a
//! server terminating TLS itself; [`crate::tls`]) is never fed to the HTTP
//! parsers: its bytes are counted ([`WireStats::tls_bytes`]) and one
//! [`HttpEvent::Tls`] reports what the ClientHello said (SNI, ALPN, version).
//!
//! A server may answer before it has read the whole request (nginx and
//! Starlette answer 404 or 413 from the head alone while the client is still
//! sending the body). Such an early response's events are held until the
//! request is complete, so the request is reported whole and still before its
//! response events, whatever the order of the two directions' segments on the
//! wire ([`WireStats::http_early_responses`]). A request body that never
//! completes (the connection closes, or a gap cuts it) is reported flagged
//! `incomplete` before the held events; so is one whose held response events
//! pass `HttpConfig::max_body_bytes` (the rest of its body is then framed and
//! dropped).

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::http::{Event, GapOutcome, Head, Kind, MessageParser, RequestHead, ResponseHead};
use crate::sse::{SseParser, SseSink};
use crate::stats::WireStats;
use crate::tls::{self, HelloParse, Sniff};
use crate::{ConnMeta, Dir, FlowId, HttpEvent, HttpRequest, MsgFlags, SseEvent, TimestampNs};

/// Requests awaiting a response kept per connection; older ones are forgotten
/// (counted in [`WireStats::http_outstanding_overflow`]).
const MAX_OUTSTANDING: usize = 1024;

/// Limits of the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Body bytes kept per message; the rest is skipped and the message flagged.
    /// Also the cap of one SSE event.
    pub max_body_bytes: usize,
    /// Largest head (request/status line plus headers) accepted, in bytes. Also
    /// the cap of one chunk-size line and of a trailer section.
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

/// Where a connection's [`HttpEvent`]s go, one at a time, in the order they
/// are produced (see the module docs). A `Vec<HttpEvent>` collects them; the
/// collector's pipeline hands each straight to the MCP decoder, so an event
/// (about 200 bytes) is not moved through a vector first.
pub trait EventSink {
    /// Takes the next event.
    fn event(&mut self, ev: HttpEvent);
}

impl EventSink for Vec<HttpEvent> {
    #[inline]
    fn event(&mut self, ev: HttpEvent) {
        self.push(ev);
    }
}

/// A request waiting for its response.
#[derive(Debug, Clone, Copy)]
struct Outstanding {
    index: u64,
    is_head: bool,
}

/// The requests waiting for their responses, oldest first. Requests get
/// consecutive indexes, so the queue is the range `end - len .. end`; only the
/// (rare) `HEAD` requests among them are stored, so a connection with
/// ordinary requests allocates nothing here (BENCHMARKS.md, peak RSS).
#[derive(Debug, Default)]
struct OutstandingQueue {
    /// One past the index of the last request pushed.
    end: u64,
    /// Number of requests waiting (at most [`MAX_OUTSTANDING`]).
    len: u32,
    /// Indexes of the waiting `HEAD` requests, ascending; allocated with the
    /// first `HEAD` request.
    #[allow(clippy::box_collection)] // 8 bytes per idle connection instead of 32
    heads: Option<Box<VecDeque<u64>>>,
}

impl OutstandingQueue {
    fn len(&self) -> usize {
        self.len as usize
    }

    /// Appends request `index`, which must follow the last one pushed.
    fn push_back(&mut self, o: Outstanding) {
        if self.len > 0 && o.index != self.end {
            // Not consecutive (never happens: indexes come from one counter):
            // start over rather than pair wrongly.
            self.len = 0;
            self.heads = None;
        }
        self.end = o.index.saturating_add(1);
        self.len = self.len.saturating_add(1);
        if o.is_head {
            self.heads.get_or_insert_default().push_back(o.index);
        }
    }

    /// Removes and returns the oldest waiting request.
    fn pop_front(&mut self) -> Option<Outstanding> {
        if self.len == 0 {
            return None;
        }
        let index = self.end.saturating_sub(u64::from(self.len));
        self.len -= 1;
        let is_head = self
            .heads
            .as_ref()
            .is_some_and(|h| h.front() == Some(&index));
        if is_head && let Some(h) = &mut self.heads {
            h.pop_front();
            if h.is_empty() {
                self.heads = None;
            }
        }
        Some(Outstanding { index, is_head })
    }
}

/// The [`SseSink`] of one piece of an SSE body: each event goes out at once
/// as an [`HttpEvent::SseEvent`] of request `index` at `ts`.
struct SseOut<'o, O> {
    out: &'o mut O,
    flow: FlowId,
    index: u64,
    ts: TimestampNs,
}

impl<O: EventSink> SseSink for SseOut<'_, O> {
    #[inline]
    fn event(&mut self, event: SseEvent) {
        self.out.event(HttpEvent::SseEvent {
            flow: self.flow,
            index: self.index,
            ts: self.ts,
            event,
        });
    }
}

/// The events of a response that began while its request was still being
/// received, held until that request is reported (see the module docs).
#[derive(Debug)]
struct HeldResponse {
    /// The response's events so far, in order.
    events: Vec<HttpEvent>,
    /// Body and event bytes in `events`; bounded by `max_body_bytes`.
    bytes: usize,
}

/// A response being received.
#[derive(Debug)]
struct RespBuild {
    index: u64,
    /// The event-stream parser of an SSE response (boxed: most responses
    /// are not streams).
    sse: Option<Box<SseParser>>,
    body: Vec<u8>,
    flags: MsgFlags,
    last_ts: TimestampNs,
}

/// The message in progress in one direction. 128 bytes (the request), boxed.
#[derive(Debug)]
enum Msg {
    /// A request being received, and the events of its response if that
    /// began early (held until the request is complete; see the module docs).
    Request(HttpRequest, Option<Box<HeldResponse>>),
    /// A request already reported (early, because its response started); the
    /// rest of its body is framed and dropped.
    Emitted,
    Response(RespBuild),
    /// A response nobody asked for: framed, not reported.
    Unpaired,
    /// A TLS connection: nothing is parsed as HTTP. The client's direction
    /// keeps its first bytes (at most [`tls::MAX_HELLO_BYTES`]) until the
    /// ClientHello is read and [`HttpEvent::Tls`] reported.
    Tls {
        /// The client's first bytes, while the hello is incomplete.
        hello: Vec<u8>,
        /// `true` once [`HttpEvent::Tls`] went out (always, on the server's side).
        reported: bool,
    },
}

/// The two endpoints of a connection, compact: 16 bytes for IPv4 (the
/// common case) instead of two 32-byte `SocketAddr`s; anything else boxed.
#[derive(Debug)]
enum Endpoints {
    /// IPv4 client and server: addresses and ports.
    V4 {
        client_ip: [u8; 4],
        server_ip: [u8; 4],
        client_port: u16,
        server_port: u16,
    },
    /// Any other pair, as given.
    Other(Box<(SocketAddr, SocketAddr)>),
}

impl Endpoints {
    fn new(client: SocketAddr, server: SocketAddr) -> Endpoints {
        match (client, server) {
            (SocketAddr::V4(c), SocketAddr::V4(s)) => Endpoints::V4 {
                client_ip: c.ip().octets(),
                server_ip: s.ip().octets(),
                client_port: c.port(),
                server_port: s.port(),
            },
            _ => Endpoints::Other(Box::new((client, server))),
        }
    }

    /// `(client, server)`.
    fn get(&self) -> (SocketAddr, SocketAddr) {
        match self {
            Endpoints::V4 {
                client_ip,
                server_ip,
                client_port,
                server_port,
            } => (
                SocketAddr::from((*client_ip, *client_port)),
                SocketAddr::from((*server_ip, *server_port)),
            ),
            Endpoints::Other(b) => **b,
        }
    }
}

/// HTTP state of one connection.
#[derive(Debug)]
pub struct HttpConnection {
    /// `ConnMeta::flow`.
    flow: FlowId,
    /// `ConnMeta::client_isn`.
    client_isn: u32,
    /// `ConnMeta::client` and `server` as the TCP layer guessed them (kept
    /// compact: the connection lives as long as its flow; BENCHMARKS.md, peak
    /// RSS at 100k flows).
    endpoints: Endpoints,
    /// `HttpConfig::max_body_bytes` (the head cap lives in the parsers).
    max_body_bytes: usize,
    /// The TCP-relative direction that carries requests, once known.
    req_dir: Option<Dir>,
    /// Parsers, indexed by [`slot`] of the TCP-relative direction.
    parsers: [MessageParser; 2],
    /// Message in progress per direction, same indexing. Boxed: a `Msg` is a
    /// few hundred bytes and most connections are idle most of the time
    /// (BENCHMARKS.md, peak RSS at 100k flows).
    msgs: [Option<Box<Msg>>; 2],
    next_index: u64,
    outstanding: OutstandingQueue,
    /// Some byte has arrived in either direction (TLS is recognised on the
    /// connection's first bytes only).
    seen_data: bool,
    closed: bool,
}

/// Array index of a TCP-relative direction.
fn slot(dir: Dir) -> usize {
    match dir {
        Dir::ClientToServer => 0,
        Dir::ServerToClient => 1,
    }
}

fn dir_of(slot: usize) -> Dir {
    if slot == 0 {
        Dir::ClientToServer
    } else {
        Dir::ServerToClient
    }
}

/// Appends `bytes` to `body` up to `cap`; sets `truncated` and counts
/// [`WireStats::http_bodies_truncated`] once per message.
fn append_capped(
    body: &mut Vec<u8>,
    bytes: &[u8],
    cap: usize,
    flags: &mut MsgFlags,
    stats: &mut WireStats,
) {
    let room = cap.saturating_sub(body.len());
    let take = room.min(bytes.len());
    let piece = bytes.get(..take).unwrap_or_default();
    if body.capacity() == 0 {
        // The first piece (often the whole body): allocated at its size
        // directly, not through `Vec`'s amortised growth path.
        *body = piece.to_vec();
    } else {
        body.extend_from_slice(piece);
    }
    if take < bytes.len() && !flags.body_truncated {
        flags.body_truncated = true;
        stats.http_bodies_truncated += 1;
    }
}

impl HttpConnection {
    /// A connection whose endpoints the TCP layer guessed as `meta`; `saw_syn`
    /// false means the capture began mid-connection (parsers start in resync mode).
    pub fn new(meta: ConnMeta, saw_syn: bool, cfg: HttpConfig) -> Self {
        let resync = !saw_syn;
        HttpConnection {
            flow: meta.flow,
            client_isn: meta.client_isn,
            endpoints: Endpoints::new(meta.client, meta.server),
            max_body_bytes: cfg.max_body_bytes,
            req_dir: None,
            parsers: [
                MessageParser::new(cfg.max_head_bytes, resync),
                MessageParser::new(cfg.max_head_bytes, resync),
            ],
            msgs: [None, None],
            next_index: 0,
            outstanding: OutstandingQueue::default(),
            seen_data: false,
            closed: false,
        }
    }

    /// The endpoints as reported in events: the TCP layer's guess, with client
    /// and server swapped when the bytes showed the guess was wrong.
    /// (`client_isn` is passed through unchanged.)
    pub fn meta(&self) -> ConnMeta {
        let (mut client, mut server) = self.endpoints.get();
        if self.roles_swapped() {
            std::mem::swap(&mut client, &mut server);
        }
        ConnMeta {
            flow: self.flow,
            client,
            server,
            client_isn: self.client_isn,
        }
    }

    /// `true` when requests were found flowing in the TCP layer's
    /// `ServerToClient` direction.
    pub fn roles_swapped(&self) -> bool {
        self.req_dir == Some(Dir::ServerToClient)
    }

    /// The TCP-relative direction that carries requests, once a head showed it.
    pub fn request_dir(&self) -> Option<Dir> {
        self.req_dir
    }

    /// Requests sent and not yet answered (pipelined or awaiting a response).
    pub fn outstanding_requests(&self) -> usize {
        self.outstanding.len()
    }

    /// Bytes held by this connection: parser buffers plus bodies and SSE events
    /// being assembled. Bounded by about `2 × (max_head_bytes + 2 × max_body_bytes)`.
    pub fn buffered_bytes(&self) -> usize {
        let mut n: usize = self.parsers.iter().map(MessageParser::buffered_bytes).sum();
        for m in self.msgs.iter().flatten() {
            n += match &**m {
                Msg::Request(r, held) => r.body.len() + held.as_ref().map_or(0, |h| h.bytes),
                Msg::Response(r) => r.body.len() + r.sse.as_ref().map_or(0, |s| s.buffered_bytes()),
                Msg::Tls { hello, .. } => hello.len(),
                Msg::Unpaired | Msg::Emitted => 0,
            };
        }
        n
    }

    fn flow(&self) -> FlowId {
        self.flow
    }

    /// In-order bytes of direction `dir` (relative to the TCP layer's guess).
    pub fn on_data(
        &mut self,
        dir: Dir,
        ts: TimestampNs,
        data: &[u8],
        stats: &mut WireStats,
        out: &mut impl EventSink,
    ) {
        if self.closed || data.is_empty() {
            return;
        }
        let s = slot(dir);
        if self.tls_data(s, ts, data, stats, out) {
            return;
        }
        self.seen_data = true;
        let mut d = data;
        while let Some(ev) = self.parsers[s].next(&mut d, ts, stats) {
            self.handle(s, ev, ts, stats, out);
        }
    }

    /// `len` bytes of direction `dir` are missing.
    pub fn on_gap(
        &mut self,
        dir: Dir,
        ts: TimestampNs,
        len: u64,
        stats: &mut WireStats,
        out: &mut impl EventSink,
    ) {
        let _ = ts;
        if self.closed || len == 0 {
            return;
        }
        let s = slot(dir);
        if matches!(self.msgs[s].as_deref(), Some(Msg::Tls { .. })) {
            return;
        }
        match self.parsers[s].on_gap(len, stats) {
            GapOutcome::Resync => {}
            GapOutcome::Skipped => {
                if let Some(Msg::Response(r)) = self.msgs[s].as_deref_mut()
                    && let Some(sse) = &mut r.sse
                {
                    sse.on_gap(stats);
                }
            }
            GapOutcome::Ended(flags) => self.end_message(s, flags, None, stats, out),
        }
    }

    /// The connection is gone: flushes cut messages (flagged `incomplete`) and
    /// reports [`HttpEvent::Closed`] last.
    pub fn on_close(&mut self, ts: TimestampNs, stats: &mut WireStats, out: &mut impl EventSink) {
        if self.closed {
            return;
        }
        let order = match self.req_dir {
            Some(d) => [slot(d), slot(d.reverse())],
            None => [0, 1],
        };
        for s in order {
            if let Some(Msg::Tls {
                reported: false, ..
            }) = self.msgs[s].as_deref()
            {
                // Closed before the ClientHello was complete.
                stats.tls_hellos_unread += 1;
                out.event(HttpEvent::Tls {
                    conn: self.meta(),
                    ts,
                    hello: None,
                });
            }
            if let Some(flags) = self.parsers[s].finish(stats) {
                self.end_message(s, flags, None, stats, out);
            }
            // Anything still held (cannot normally happen) is dropped.
            self.msgs[s] = None;
        }
        self.closed = true;
        out.event(HttpEvent::Closed {
            flow: self.flow(),
            ts,
        });
    }

    /// Records which direction carries requests, from a head of `kind` seen in slot `s`.
    fn learn_roles(&mut self, s: usize, kind: Kind) {
        if self.req_dir.is_some() {
            return;
        }
        let dir = dir_of(s);
        let req_dir = match kind {
            Kind::Request => dir,
            Kind::Response => dir.reverse(),
        };
        self.req_dir = Some(req_dir);
        self.parsers[slot(req_dir)].set_expected_kind(Kind::Request);
        self.parsers[slot(req_dir.reverse())].set_expected_kind(Kind::Response);
    }

    fn handle(
        &mut self,
        s: usize,
        ev: Event<'_>,
        ts: TimestampNs,
        stats: &mut WireStats,
        out: &mut impl EventSink,
    ) {
        match ev {
            Event::Head {
                head,
                ts_first,
                flags,
            } => {
                self.learn_roles(s, head.kind());
                match head {
                    Head::Request(r) => self.request_head(s, r, (ts_first, ts), flags, stats),
                    Head::Response(r) => self.response_head(s, r, ts, flags, stats, out),
                }
            }
            Event::Body(bytes) => self.body(s, bytes, ts, stats, out),
            Event::End { flags } => self.end_message(s, flags, Some(ts), stats, out),
        }
    }

    /// A request head in slot `s`, received over `(first, last)` timestamps.
    fn request_head(
        &mut self,
        s: usize,
        r: RequestHead,
        (ts_first, ts): (TimestampNs, TimestampNs),
        flags: MsgFlags,
        stats: &mut WireStats,
    ) {
        let index = self.next_index;
        self.next_index += 1;
        if self.outstanding.len() >= MAX_OUTSTANDING {
            self.outstanding.pop_front();
            stats.http_outstanding_overflow += 1;
        }
        self.outstanding.push_back(Outstanding {
            index,
            is_head: r.method == "HEAD",
        });
        self.msgs[s] = Some(Box::new(Msg::Request(
            HttpRequest {
                index,
                ts_first,
                ts_last: ts,
                method: r.method,
                target: r.target,
                version_minor: r.version_minor,
                headers: r.headers,
                body: Vec::new(),
                flags,
            },
            None,
        )));
    }

    /// A response head in slot `s`: paired with the oldest outstanding
    /// request; held when that request is still arriving.
    fn response_head(
        &mut self,
        s: usize,
        r: ResponseHead,
        ts: TimestampNs,
        flags: MsgFlags,
        stats: &mut WireStats,
        out: &mut impl EventSink,
    ) {
        let Some(o) = self.outstanding.pop_front() else {
            stats.http_unpaired_responses += 1;
            self.msgs[s] = Some(Box::new(Msg::Unpaired));
            return;
        };
        if o.is_head {
            self.parsers[s].set_no_body();
        }
        if let Some(Msg::Request(req, held)) = self.msgs[1 - s.min(1)].as_deref_mut()
            && req.index == o.index
        {
            stats.http_early_responses += 1;
            *held = Some(Box::new(HeldResponse {
                events: Vec::new(),
                bytes: 0,
            }));
        }
        let sse = r.event_stream;
        let head = HttpEvent::ResponseHead {
            flow: self.flow(),
            index: o.index,
            ts,
            status: r.status,
            headers: r.headers,
            sse,
        };
        self.send(s, head, 0, stats, out);
        self.msgs[s] = Some(Box::new(Msg::Response(RespBuild {
            index: o.index,
            sse: sse.then(|| Box::new(SseParser::new(self.max_body_bytes))),
            body: Vec::new(),
            flags,
            last_ts: ts,
        })));
    }

    /// Body bytes of the message in slot `s`.
    fn body(
        &mut self,
        s: usize,
        bytes: &[u8],
        ts: TimestampNs,
        stats: &mut WireStats,
        out: &mut impl EventSink,
    ) {
        let mut check_held = false;
        let cap = self.max_body_bytes;
        let flow = self.flow();
        let (this, other) = two_slots(&mut self.msgs, s);
        match this.as_deref_mut() {
            Some(Msg::Request(req, _)) => {
                req.ts_last = ts;
                append_capped(&mut req.body, bytes, cap, &mut req.flags, stats);
            }
            Some(Msg::Response(r)) => {
                r.last_ts = ts;
                let held = match other.as_deref_mut() {
                    Some(Msg::Request(_, Some(held))) => Some(held),
                    _ => None,
                };
                match (&mut r.sse, held) {
                    (Some(sse), None) => {
                        let mut sse_out = SseOut {
                            out,
                            flow,
                            index: r.index,
                            ts,
                        };
                        sse.feed(bytes, stats, &mut sse_out);
                    }
                    (Some(sse), Some(held)) => {
                        let before = held.events.len();
                        let mut sse_out = SseOut {
                            out: &mut held.events,
                            flow,
                            index: r.index,
                            ts,
                        };
                        sse.feed(bytes, stats, &mut sse_out);
                        held.bytes += held.events[before..].iter().map(event_bytes).sum::<usize>();
                        check_held = true;
                    }
                    (None, _) => append_capped(&mut r.body, bytes, cap, &mut r.flags, stats),
                }
            }
            Some(Msg::Unpaired | Msg::Emitted | Msg::Tls { .. }) | None => {}
        }
        if check_held {
            self.check_held(s, stats, out);
        }
    }

    /// Sends a response event (of `bytes` body or event bytes) from slot
    /// `resp_slot`: held while its request is still arriving, else at once.
    fn send(
        &mut self,
        resp_slot: usize,
        ev: HttpEvent,
        bytes: usize,
        stats: &mut WireStats,
        out: &mut impl EventSink,
    ) {
        match self.msgs[1 - resp_slot.min(1)].as_deref_mut() {
            Some(Msg::Request(_, Some(held))) => {
                held.bytes += bytes;
                held.events.push(ev);
                self.check_held(resp_slot, stats, out);
            }
            _ => out.event(ev),
        }
    }

    /// Held events past `max_body_bytes`: stop waiting for the request. It is
    /// reported now, flagged `incomplete` (the rest of its body is framed and
    /// dropped), then the held events.
    fn check_held(&mut self, resp_slot: usize, stats: &mut WireStats, out: &mut impl EventSink) {
        let other = 1 - resp_slot.min(1);
        let over = matches!(self.msgs[other].as_deref(),
            Some(Msg::Request(_, Some(h))) if h.bytes > self.max_body_bytes);
        if !over {
            return;
        }
        let meta = self.meta();
        if let Some(m) = self.msgs[other].as_deref_mut()
            && let Msg::Request(mut req, held) = std::mem::replace(m, Msg::Emitted)
        {
            req.flags.incomplete = true;
            stats.http_incomplete_messages += 1;
            out.event(HttpEvent::Request { conn: meta, req });
            release(held, out);
        }
    }

    /// The message in slot `s` ended with parser `flags`; `ts` is the time of
    /// the data that ended it (`None`: ended by a gap or close, use the last
    /// data time).
    fn end_message(
        &mut self,
        s: usize,
        flags: MsgFlags,
        ts: Option<TimestampNs>,
        stats: &mut WireStats,
        out: &mut impl EventSink,
    ) {
        match self.msgs[s].take().map(|m| *m) {
            Some(Msg::Request(mut req, held)) => {
                if let Some(ts) = ts {
                    req.ts_last = ts;
                }
                req.flags.merge(flags);
                out.event(HttpEvent::Request {
                    conn: self.meta(),
                    req,
                });
                release(held, out);
            }
            Some(Msg::Response(mut r)) => {
                if let Some(ts) = ts {
                    r.last_ts = ts;
                }
                if let Some(sse) = &mut r.sse {
                    sse.finish(stats);
                }
                r.flags.merge(flags);
                let bytes = r.body.len();
                let end = HttpEvent::ResponseEnd {
                    flow: self.flow(),
                    index: r.index,
                    ts: r.last_ts,
                    body: r.body,
                    flags: r.flags,
                };
                self.send(s, end, bytes, stats, out);
            }
            Some(Msg::Unpaired | Msg::Emitted | Msg::Tls { .. }) | None => {}
        }
    }

    /// TLS handling of `data` arriving in slot `s`: recognises a TLS
    /// connection on its first bytes, counts its bytes and reads the
    /// ClientHello. `false`: not TLS, parse `data` as HTTP.
    fn tls_data(
        &mut self,
        s: usize,
        ts: TimestampNs,
        data: &[u8],
        stats: &mut WireStats,
        out: &mut impl EventSink,
    ) -> bool {
        if !matches!(self.msgs[s].as_deref(), Some(Msg::Tls { .. })) {
            if self.seen_data || tls::sniff(data) != Sniff::Tls {
                return false;
            }
            stats.tls_connections += 1;
            self.seen_data = true;
            self.msgs[s] = Some(Box::new(Msg::Tls {
                hello: Vec::new(),
                reported: false,
            }));
            self.msgs[1 - s.min(1)] = Some(Box::new(Msg::Tls {
                hello: Vec::new(),
                reported: true,
            }));
        }
        stats.tls_bytes += data.len() as u64;
        let Some(Msg::Tls {
            hello,
            reported: reported @ false,
        }) = self.msgs[s].as_deref_mut()
        else {
            return true;
        };
        let room = tls::MAX_HELLO_BYTES.saturating_sub(hello.len());
        hello.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
        let parsed = match tls::parse_client_hello(hello) {
            HelloParse::NeedMore => return true,
            HelloParse::Hello(h) => Some(h),
            HelloParse::NotAHello => {
                stats.tls_hellos_unread += 1;
                None
            }
        };
        *reported = true;
        *hello = Vec::new();
        out.event(HttpEvent::Tls {
            conn: self.meta(),
            ts,
            hello: parsed,
        });
        true
    }
}

/// The two message slots as (`s`, the other one).
fn two_slots(
    msgs: &mut [Option<Box<Msg>>; 2],
    s: usize,
) -> (&mut Option<Box<Msg>>, &mut Option<Box<Msg>>) {
    let [a, b] = msgs;
    if s == 0 { (a, b) } else { (b, a) }
}

/// Sends the held events of an early response, if any, in order.
fn release(held: Option<Box<HeldResponse>>, out: &mut impl EventSink) {
    for ev in held.into_iter().flat_map(|h| h.events) {
        out.event(ev);
    }
}

/// Bytes an SSE event holds (its data and fields), for the held-response bound.
fn event_bytes(ev: &HttpEvent) -> usize {
    match ev {
        HttpEvent::SseEvent { event, .. } => {
            event.data.len()
                + event.event.as_ref().map_or(0, String::len)
                + event.id.as_ref().map_or(0, String::len)
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::{Outstanding, OutstandingQueue};

    fn pop(q: &mut OutstandingQueue) -> Option<(u64, bool)> {
        q.pop_front().map(|o| (o.index, o.is_head))
    }

    #[test]
    fn outstanding_queue_is_fifo_and_remembers_head_requests() {
        let mut q = OutstandingQueue::default();
        assert_eq!(pop(&mut q), None);
        for index in 0..5 {
            q.push_back(Outstanding {
                index,
                is_head: index == 1 || index == 3,
            });
        }
        assert_eq!(q.len(), 5);
        assert_eq!(pop(&mut q), Some((0, false)));
        assert_eq!(pop(&mut q), Some((1, true)));
        q.push_back(Outstanding {
            index: 5,
            is_head: true,
        });
        assert_eq!(pop(&mut q), Some((2, false)));
        assert_eq!(pop(&mut q), Some((3, true)));
        assert_eq!(pop(&mut q), Some((4, false)));
        assert_eq!(pop(&mut q), Some((5, true)));
        assert_eq!(pop(&mut q), None);
        assert_eq!(q.len(), 0);
        // Dropping the oldest (overflow) keeps the rest paired.
        for index in 6..9 {
            q.push_back(Outstanding {
                index,
                is_head: index == 6,
            });
        }
        assert_eq!(pop(&mut q), Some((6, true)));
        assert_eq!(pop(&mut q), Some((7, false)));
        assert_eq!(pop(&mut q), Some((8, false)));
        assert!(q.heads.is_none());
    }
}
