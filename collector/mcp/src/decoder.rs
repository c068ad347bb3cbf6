//! The decoder state machine: pairs [`HttpEvent`]s per (flow, request index) into
//! exchanges, parses JSON-RPC bodies and SSE data, matches responses to requests
//! by JSON-RPC `id`, and emits one [`Span`] per JSON-RPC request or notification
//! (or one HTTP-level span for an exchange that carried none).
//!
//! Memory is bounded: at most `max_pending` exchanges and `max_sessions` session
//! entries are kept (oldest evicted and counted); span events are capped per span;
//! bodies are as large as the HTTP layer's cap allows.

mod pending;
mod session_cache;
mod texts;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use mcptap_wire::{ConnMeta, FlowId, Headers, HttpEvent, HttpRequest, MsgFlags, header};
use serde_json::Value;

use crate::attrs as a;
use crate::config::DecoderConfig;
use crate::handles::Handles;
use crate::ids::{derive_ids, parse_traceparent};
use crate::json::{Body, cap};
use crate::protocol::{
    Era, Method, NameParam, error_code, is_tasks_method, known_cache_scope, known_method,
    known_method_bytes, known_result_type, known_version, known_version_bytes, trim,
};
use crate::redact::capture;
use crate::request::{self, Caps, Params, ReqMsg};
use crate::response::{self, RespBody, RespMsg, RpcError};
use crate::routing::{Check, decode_header_value, param_header_names};
use crate::span::{Attr, AttrValue, Span, SpanEvent, SpanStatus, Text};
use crate::stats::McpStats;
use pending::{Order, Pending};
use session_cache::SessionCache;
use texts::{
    AddrTexts, LastText, id_string, known_or_owned, known_path, number_attr_text, number_text,
    take_id_string, url_path,
};

/// Why an exchange ended without a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndReason {
    /// The response ended normally.
    Response,
    /// The connection closed.
    Closed,
    /// End of input ([`Decoder::finish`]).
    CaptureEnd,
    /// Evicted from the pending table.
    Evicted,
}

/// Client identity remembered per legacy session.
#[derive(Debug, Clone, Default)]
struct SessionInfo {
    seq: u64,
    /// Shared by the spans of the session.
    client_name: Option<Arc<str>>,
    client_version: Option<Arc<str>>,
    capabilities: Option<Vec<String>>,
    protocol_version: Option<String>,
}

/// Notifications and server requests attributed to one span.
#[derive(Debug, Default)]
struct Attached {
    events: Vec<SpanEvent>,
    dropped: u64,
    notifications: u64,
    server_requests: u64,
}

/// A JSON-RPC response received for a message.
#[derive(Debug)]
struct Outcome {
    msg: RespMsg,
    ts: u64,
}

/// One JSON-RPC request or notification from a request body.
#[derive(Debug)]
struct Msg {
    /// Uncut; a known method is its `'static` text.
    method: Text,
    /// `method` as a known [`Method`], when it is one.
    kind: Option<Method>,
    /// `Some` when the message has an `id` member (a request), even `null`.
    id: Option<Value>,
    /// `jsonrpc` when a string other than `2.0` (cut).
    jsonrpc: Option<String>,
    /// The `params` members the decoder reads.
    params: Box<Params>,
    /// The whole message, kept only when bodies are captured.
    body: Option<Value>,
    batch_index: Option<u64>,
    response: Option<Outcome>,
    attached: Attached,
}

impl Msg {
    fn is_request(&self) -> bool {
        self.id.is_some()
    }
    fn awaiting(&self) -> bool {
        self.is_request() && self.response.is_none()
    }
}

/// One HTTP request and what has arrived of its response.
#[derive(Debug)]
struct Exchange {
    seq: u64,
    conn: ConnMeta,
    index: u64,
    method: String,
    target: String,
    version_minor: u8,
    headers: Headers,
    ts_first: u64,
    flags: MsgFlags,
    msgs: Vec<Msg>,
    batch: bool,
    posted_responses: u64,
    request_invalid: bool,
    request_json: Option<Value>,
    status: Option<u16>,
    resp_headers: Headers,
    sse: bool,
    sse_events: u64,
    response_invalid: bool,
    response_json: Option<Value>,
    null_error: Option<RespMsg>,
    http_attached: Attached,
    last_ts: u64,
}

/// Decodes a stream of [`HttpEvent`]s into MCP server spans. Pure: no I/O, no
/// clock; never panics on any input.
#[derive(Debug)]
pub struct Decoder {
    cfg: DecoderConfig,
    stats: McpStats,
    /// Boxed: the table then moves pointers, not ~600-byte exchanges.
    pending: Pending<Box<Exchange>>,
    /// Arrival order of the pending exchanges (eviction, `finish`).
    order: Order,
    next_seq: u64,
    /// Shared so that an exchange looks its session up once
    /// ([`ExCtx::session_info`]).
    /// Keyed by session id. Ids come off the wire, so the hash is foldhash with a
    /// random per-process seed (like the wire crate's flow table): crafted ids
    /// cannot be made to collide; cheaper than std's SipHash.
    sessions: HashMap<String, Arc<SessionInfo>, foldhash::fast::RandomState>,
    session_order: BTreeMap<u64, String>,
    next_session_seq: u64,
    /// Texts of recent session ids and recent answers of `sessions` (the
    /// answers cleared whenever it changes).
    session_cache: SessionCache<Arc<SessionInfo>>,
    /// Address texts formatted once and shared by the spans of every
    /// connection with the same endpoints.
    texts: AddrTexts,
    /// Text of the last `User-Agent` value.
    user_agent: LastText,

    /// `cfg.instance_id`, shared by every span.
    instance_id: Option<Arc<str>>,
    /// Boxes of finished exchanges kept for the next requests (at most
    /// [`SPARE_EXCHANGES`]; their old contents are dropped on reuse).
    #[allow(clippy::vec_box)] // the boxes are what is reused
    spare: Vec<Box<Exchange>>,
}

/// Exchange boxes kept for reuse.
const SPARE_EXCHANGES: usize = 8;

impl Decoder {
    /// A decoder with configuration `cfg`.
    pub fn new(cfg: DecoderConfig) -> Self {
        Decoder {
            stats: McpStats::default(),
            pending: Pending::default(),
            order: Order::default(),
            next_seq: 0,
            sessions: HashMap::with_hasher(foldhash::fast::RandomState::default()),
            session_order: BTreeMap::new(),
            next_session_seq: 0,
            session_cache: SessionCache::new(),
            texts: AddrTexts::new(),
            user_agent: LastText::default(),
            instance_id: cfg.instance_id.as_deref().map(Arc::from),
            spare: Vec::new(),
            cfg,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &McpStats {
        &self.stats
    }

    /// Exchanges currently awaiting (the rest of) a response.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Feeds one event; finished spans are appended to `out`.
    pub fn on_event(&mut self, ev: HttpEvent, out: &mut Vec<Span>) {
        match ev {
            HttpEvent::Request { conn, req } => self.on_request(conn, req, out),
            HttpEvent::ResponseHead {
                flow,
                index,
                ts,
                status,
                headers,
                sse,
            } => {
                let Some(ex) = self.pending.get_mut(flow, index) else {
                    self.stats.orphan_events += 1;
                    return;
                };
                ex.status = Some(status);
                ex.resp_headers = headers;
                ex.sse = sse;
                ex.last_ts = ex.last_ts.max(ts);
            }
            HttpEvent::SseEvent {
                flow,
                index,
                ts,
                event,
            } => {
                let Some(ex) = self.pending.get_mut(flow, index) else {
                    self.stats.orphan_events += 1;
                    return;
                };
                ex.sse_events += 1;
                ex.last_ts = ex.last_ts.max(ts);
                self.stats.sse_events += 1;
                if event.data.trim().is_empty() {
                    return; // priming event or keep-alive
                }
                match response::parse_text(
                    &event.data,
                    self.cfg.capture_bodies,
                    &self.cfg.handle_rule,
                ) {
                    Ok((v, _)) => absorb(ex, v, ts, &self.cfg, &mut self.stats),
                    Err(_) => {
                        self.stats.sse_json_errors += 1;
                        ex.response_invalid = true;
                    }
                }
            }
            HttpEvent::ResponseEnd {
                flow,
                index,
                ts,
                body,
                flags,
            } => {
                let Some(mut ex) = self.remove(flow, index) else {
                    self.stats.orphan_events += 1;
                    return;
                };
                ex.flags.merge(flags);
                ex.last_ts = ex.last_ts.max(ts);
                if !body.iter().all(u8::is_ascii_whitespace) {
                    match response::parse(&body, self.cfg.capture_bodies, &self.cfg.handle_rule) {
                        Ok((v, whole)) => {
                            if self.cfg.capture_bodies && ex.msgs.is_empty() {
                                ex.response_json = whole;
                            }
                            absorb(&mut ex, v, ts, &self.cfg, &mut self.stats);
                        }
                        Err(_) => {
                            self.stats.response_json_errors += 1;
                            ex.response_invalid = true;
                        }
                    }
                }
                self.finalize(ex, ts, EndReason::Response, out);
            }
            HttpEvent::Closed { flow, ts } => {
                // The flow's exchanges, in request-index order.
                for ex in self.pending.take_flow(flow) {
                    self.order.remove(ex.seq);
                    if ex.status.is_none() {
                        self.stats.closed_without_response += 1;
                    }
                    let end = ts.max(ex.last_ts);
                    self.finalize(ex, end, EndReason::Closed, out);
                }
            }
        }
    }

    /// End of input: every pending exchange becomes a span, flagged
    /// `mcptap.response.missing_reason = "capture_end"` when no response head came.
    pub fn finish(&mut self, out: &mut Vec<Span>) {
        let keys: Vec<(FlowId, u64)> = self.order.keys().collect();
        for (f, i) in keys {
            if let Some(ex) = self.remove(f, i) {
                self.stats.pending_at_finish += 1;
                let end = ex.last_ts;
                self.finalize(ex, end, EndReason::CaptureEnd, out);
            }
        }
    }

    fn remove(&mut self, flow: FlowId, index: u64) -> Option<Box<Exchange>> {
        let ex = self.pending.remove(flow, index)?;
        self.order.remove(ex.seq);
        Some(ex)
    }

    fn on_request(&mut self, conn: ConnMeta, req: HttpRequest, out: &mut Vec<Span>) {
        self.stats.http_requests += 1;
        let key = (conn.flow, req.index);
        if let Some(old) = self.remove(key.0, key.1) {
            // Same (flow, index) twice: the first can no longer be answered.
            self.stats.pending_evicted += 1;
            let end = old.last_ts;
            self.finalize(old, end, EndReason::Evicted, out);
        }
        while self.pending.len() >= self.cfg.max_pending.max(1) {
            let Some((f, i)) = self.order.pop_first() else {
                break;
            };
            if let Some(old) = self.pending.remove(f, i) {
                self.stats.pending_evicted += 1;
                let end = old.last_ts;
                self.finalize(old, end, EndReason::Evicted, out);
            }
        }
        let last_ts = req.ts_last.max(req.ts_first);
        // A finished exchange's box, if one is kept, saves an allocation; it
        // is refilled field by field (every field is named below, so none
        // can keep an old value), without a whole new exchange built on the
        // stack and copied in.
        let mut ex = match self.spare.pop() {
            Some(mut b) => {
                let Exchange {
                    seq,
                    conn: b_conn,
                    index,
                    method,
                    target,
                    version_minor,
                    headers,
                    ts_first,
                    flags,
                    msgs,
                    batch,
                    posted_responses,
                    request_invalid,
                    request_json,
                    status,
                    resp_headers,
                    sse,
                    sse_events,
                    response_invalid,
                    response_json,
                    null_error,
                    http_attached,
                    last_ts: b_last_ts,
                } = &mut *b;
                *seq = self.next_seq;
                *b_conn = conn;
                *index = req.index;
                *method = req.method;
                *target = req.target;
                *version_minor = req.version_minor;
                *headers = req.headers;
                *ts_first = req.ts_first;
                *flags = req.flags;
                msgs.clear();
                *batch = false;
                *posted_responses = 0;
                *request_invalid = false;
                *request_json = None;
                *status = None;
                *resp_headers = Headers::new();
                *sse = false;
                *sse_events = 0;
                *response_invalid = false;
                *response_json = None;
                *null_error = None;
                *http_attached = Attached::default();
                *b_last_ts = last_ts;
                b
            }
            None => Box::new(Exchange {
                seq: self.next_seq,
                index: req.index,
                conn,
                method: req.method,
                target: req.target,
                version_minor: req.version_minor,
                headers: req.headers,
                ts_first: req.ts_first,
                flags: req.flags,
                msgs: Vec::new(),
                batch: false,
                posted_responses: 0,
                request_invalid: false,
                request_json: None,
                status: None,
                resp_headers: Headers::new(),
                sse: false,
                sse_events: 0,
                response_invalid: false,
                response_json: None,
                null_error: None,
                http_attached: Attached::default(),
                last_ts,
            }),
        };
        self.next_seq += 1;
        parse_request_body(&mut ex, &req.body, &self.cfg, &mut self.stats);
        self.order.push(ex.seq, key);
        self.pending.insert(key.0, key.1, ex);
    }

    // ---- span building ---------------------------------------------------------------

    fn finalize(
        &mut self,
        mut ex: Box<Exchange>,
        end_ts: u64,
        reason: EndReason,
        out: &mut Vec<Span>,
    ) {
        self.stats.exchanges_done += 1;
        self.stats.count_status(ex.status);
        let headers = std::mem::take(&mut ex.headers);
        let hdrs = ReqHeaders::scan(&headers);
        // Texts of the headers read more than once, converted once.
        let hdr_pv = hdrs
            .protocol_version
            .map(|v| known_text(v, known_version_bytes));
        let hdr_method = hdrs.mcp_method.map(|v| known_text(v, known_method_bytes));
        let era = Era::classify(hdr_pv.as_deref());
        match era {
            Era::Legacy => self.stats.era_legacy += 1,
            Era::Modern => self.stats.era_modern += 1,
        }
        // The text of the session id and its slot in the cache.
        let session_hdr = hdrs.session_id.map(|v| self.session_cache.text(v));
        if session_hdr.is_some() {
            self.stats.legacy_session_requests += 1;
        }
        // Legacy servers repeat the session header on every response of the session;
        // only an id the request did not already carry is newly minted.
        // Equal bytes are equal texts: the text (and its copy) is made only for
        // a header that differs from the request's.
        let minted = header(&ex.resp_headers, "mcp-session-id")
            .filter(|m| hdrs.session_id != Some(*m))
            .map(owned_text)
            .filter(|m| session_hdr.as_ref().map(|(t, _)| &**t) != Some(m.as_str()));
        if minted.is_some() {
            self.stats.sessions_minted += 1;
        }
        self.update_sessions(
            &ex,
            minted.as_deref(),
            session_hdr.as_ref().map(|(t, _)| &**t),
        );
        let sessions = &self.sessions;
        let session_info = session_hdr.as_ref().and_then(|(t, slot)| {
            self.session_cache
                .answer(*slot, t, |k| sessions.get(k).cloned())
        });
        let session_hdr = session_hdr.map(|(t, _)| t);

        let server_ip = self.texts.ip(ex.conn.server.ip());
        let instance_id = match &self.instance_id {
            Some(id) => Arc::clone(id),
            None => self.texts.socket(ex.conn.server, &server_ip),
        };
        let mut ctx = ExCtx {
            era,
            end_ts: end_ts.max(ex.ts_first),
            reason,
            session: session_hdr,
            minted,
            instance_id,
            client_ip: self.texts.ip(ex.conn.client.ip()),
            user_agent: hdrs.user_agent.map(|v| self.user_agent.text(v)),
            server_ip,
            hdrs,
            hdr_pv,
            hdr_method,
            session_info,
        };
        let mut msgs = std::mem::take(&mut ex.msgs);
        if msgs.is_empty() {
            self.stats.http_only_exchanges += 1;
            let span = self.http_span(&mut ex, &mut ctx);
            self.stats.spans += 1;
            out.push(span);
        } else {
            let n = msgs.len();
            // Each message is read in place (not moved out of the vector);
            // the vector drops them all at the end.
            for (i, m) in msgs.iter_mut().enumerate() {
                let span = self.msg_span(&ex, m, n, &mut ctx, i + 1 == n);
                self.stats.spans += 1;
                out.push(span);
            }
        }
        if self.spare.len() < SPARE_EXCHANGES {
            self.spare.push(ex);
        }
    }

    fn update_sessions(&mut self, ex: &Exchange, minted: Option<&str>, sent: Option<&str>) {
        let ok = ex.status.is_some_and(|s| (200..300).contains(&s));
        if ex.method.eq_ignore_ascii_case("DELETE") && ok {
            // The entry stays (the map is bounded by max_sessions): a GET stream of the
            // same session usually ends after the DELETE and still needs the identity.
            if sent.is_some_and(|id| self.sessions.contains_key(id)) {
                self.stats.sessions_deleted += 1;
            }
            return;
        }
        let (Some(id), true) = (minted, ok) else {
            return;
        };
        let Some(init) = ex.msgs.iter().find(|m| m.kind == Some(Method::Initialize)) else {
            return;
        };
        let params = &init.params;
        let info = params.client_info.as_ref();
        let mut entry = SessionInfo {
            seq: 0,
            client_name: info.and_then(|i| i.name.as_deref()).map(Arc::from),
            client_version: info.and_then(|i| i.version.as_deref()).map(Arc::from),
            capabilities: match &params.capabilities {
                Caps::Absent => None,
                Caps::NotObject => Some(Vec::new()),
                Caps::Keys(k) => Some(k.clone()),
            },
            protocol_version: init
                .response
                .as_ref()
                .and_then(|r| r.msg.result.as_ref())
                .and_then(|r| r.protocol_version.clone())
                .or_else(|| params.protocol_version.clone()),
        };
        self.session_cache.clear_answers();
        if let Some(old) = self.sessions.remove(id) {
            self.session_order.remove(&old.seq);
        }
        while self.sessions.len() >= self.cfg.max_sessions.max(1) {
            let Some((_, k)) = self.session_order.pop_first() else {
                break;
            };
            self.sessions.remove(&k);
            self.stats.sessions_evicted += 1;
        }
        entry.seq = self.next_session_seq;
        self.next_session_seq += 1;
        self.session_order.insert(entry.seq, id.to_string());
        self.sessions.insert(id.to_string(), Arc::new(entry));
    }

    /// Attributes shared by every span of an exchange; `last` for the
    /// exchange's last span, which takes the per-exchange strings of `ctx`
    /// instead of copying them.
    fn base_attrs(&self, ex: &Exchange, ctx: &mut ExCtx, last: bool, attrs: &mut Vec<Attr>) {
        let method = match ex.method.as_str() {
            "POST" => Text::Static("POST"),
            "GET" => Text::Static("GET"),
            "DELETE" => Text::Static("DELETE"),
            other => Text::from(other.to_owned()),
        };
        push(attrs, a::HTTP_REQUEST_METHOD, AttrValue::Str(method));
        if let Some(s) = ex.status {
            push(
                attrs,
                a::HTTP_RESPONSE_STATUS_CODE,
                AttrValue::Int(i64::from(s)),
            );
        }
        push(
            attrs,
            a::URL_PATH,
            AttrValue::Str(known_or_owned(url_path(&ex.target), known_path)),
        );
        push_str(attrs, a::URL_SCHEME, "http");
        if let Some(ua) = &ctx.user_agent {
            push(
                attrs,
                a::USER_AGENT_ORIGINAL,
                AttrValue::Str(Text::Shared(Arc::clone(ua))),
            );
        }
        push(
            attrs,
            a::CLIENT_ADDRESS,
            AttrValue::Str(Text::Shared(Arc::clone(&ctx.client_ip))),
        );
        push(
            attrs,
            a::CLIENT_PORT,
            AttrValue::Int(i64::from(ex.conn.client.port())),
        );
        push(
            attrs,
            a::SERVER_ADDRESS,
            AttrValue::Str(Text::Shared(Arc::clone(&ctx.server_ip))),
        );
        push(
            attrs,
            a::SERVER_PORT,
            AttrValue::Int(i64::from(ex.conn.server.port())),
        );
        push_str(attrs, a::NETWORK_PROTOCOL_NAME, "http");
        push_str(
            attrs,
            a::NETWORK_PROTOCOL_VERSION,
            if ex.version_minor == 0 { "1.0" } else { "1.1" },
        );
        push_str(attrs, a::NETWORK_TRANSPORT, "tcp");
        push_str(attrs, a::ERA, ctx.era.as_str());
        if let Some(s) = &ctx.session {
            push(
                attrs,
                a::MCP_SESSION_ID,
                AttrValue::Str(Text::Shared(Arc::clone(s))),
            );
        }
        if let Some(s) = &mut ctx.minted {
            push(
                attrs,
                a::SESSION_MINTED,
                AttrValue::Str(share(s, last).into()),
            );
        }
        if ex.status.is_some() {
            push(attrs, a::RESPONSE_SSE, AttrValue::Bool(ex.sse));
        }
        if ex.sse {
            push(attrs, a::SSE_EVENTS, AttrValue::Int(sat_i64(ex.sse_events)));
        }
        if ex.status.is_none() && ctx.reason != EndReason::Response {
            push(attrs, a::RESPONSE_MISSING, AttrValue::Bool(true));
            let r = match ctx.reason {
                EndReason::Closed => "closed",
                EndReason::CaptureEnd => "capture_end",
                EndReason::Evicted => "evicted",
                EndReason::Response => "response",
            };
            push_str(attrs, a::RESPONSE_MISSING_REASON, r);
        } else if ctx.reason != EndReason::Response {
            // Head came but the body never ended.
            push(attrs, a::MESSAGE_INCOMPLETE, AttrValue::Bool(true));
        }
        if ex.request_invalid {
            push(attrs, a::REQUEST_INVALID, AttrValue::Bool(true));
        }
        if ex.response_invalid {
            push(attrs, a::RESPONSE_INVALID, AttrValue::Bool(true));
        }
        let f = ex.flags;
        if f.body_truncated {
            push(attrs, a::BODY_TRUNCATED, AttrValue::Bool(true));
        }
        if f.incomplete && ctx.reason == EndReason::Response {
            push(attrs, a::MESSAGE_INCOMPLETE, AttrValue::Bool(true));
        }
        if f.gap {
            push(attrs, a::TCP_GAP, AttrValue::Bool(true));
        }
        if f.resynced {
            push(attrs, a::HTTP_RESYNCED, AttrValue::Bool(true));
        }
        if let Some(m) = ctx.hdr_method.as_deref() {
            push(
                attrs,
                a::ROUTING_MCP_METHOD,
                AttrValue::Str(known_or_owned(m, known_method)),
            );
        }
        let params = if ctx.hdrs.param_headers {
            param_header_names(ctx.hdrs.headers)
        } else {
            Vec::new()
        };
        if !params.is_empty() {
            push(attrs, a::ROUTING_PARAM_HEADERS, AttrValue::StrArray(params));
        }
    }

    fn http_span(&mut self, ex: &mut Exchange, ctx: &mut ExCtx) -> Span {
        let mut attrs = Vec::with_capacity(32);
        self.base_attrs(ex, ctx, true, &mut attrs);
        push_str(&mut attrs, a::EXCHANGE_KIND, "http");
        if ex.posted_responses > 0 {
            push(
                &mut attrs,
                a::POSTED_RESPONSES,
                AttrValue::Int(sat_i64(ex.posted_responses)),
            );
        }
        if let Some(raw) = ctx.hdrs.mcp_name {
            let n = decode_header_value(raw);
            push(
                &mut attrs,
                a::ROUTING_MCP_NAME,
                AttrValue::Str(n.value.into()),
            );
        }
        let pv = ctx.hdr_pv.as_deref().or_else(|| {
            ctx.session_info
                .as_deref()
                .and_then(|i| i.protocol_version.as_deref())
        });
        if let Some(pv) = pv {
            push(
                &mut attrs,
                a::MCP_PROTOCOL_VERSION,
                AttrValue::Str(known_or_owned(pv, known_version)),
            );
        }
        self.session_identity(ctx, &mut attrs);
        let long_lived = ex.method.eq_ignore_ascii_case("GET") && ex.sse;
        if long_lived {
            push(&mut attrs, a::STREAM_LONG_LIVED, AttrValue::Bool(true));
        }
        let attached = std::mem::take(&mut ex.http_attached);
        let events = attach_attrs(attached, &mut attrs);
        let mut status = SpanStatus::Unset;
        let mut has_rpc_error = false;
        if let Some(err) = ex.null_error.as_ref().and_then(|e| e.error.as_ref()) {
            has_rpc_error = true;
            status = rpc_error_attrs(err, &mut attrs);
            push(&mut attrs, a::RPC_ERROR_ID_NULL, AttrValue::Bool(true));
        }
        http_status_rule(ex, ctx, has_rpc_error, &mut status, &mut attrs);
        if self.cfg.capture_bodies {
            let mut truncated = false;
            if let Some(v) = &ex.request_json {
                let (s, t) = capture(v, &self.cfg.handle_rule, self.cfg.capture_body_max_bytes);
                truncated |= t;
                push(&mut attrs, a::REQUEST_BODY, AttrValue::Str(s.into()));
            }
            if let Some(v) = &ex.response_json {
                let (s, t) = capture(v, &self.cfg.handle_rule, self.cfg.capture_body_max_bytes);
                truncated |= t;
                push(&mut attrs, a::RESPONSE_BODY, AttrValue::Str(s.into()));
            }
            if truncated {
                self.stats.bodies_capture_truncated += 1;
                push(&mut attrs, a::BODY_CAPTURE_TRUNCATED, AttrValue::Bool(true));
            }
        }
        let (span_id, trace_id) = derive_ids(
            &ex.conn.client,
            &ex.conn.server,
            ex.conn.client_isn,
            ex.index,
            0,
        );
        let mut span = Span {
            trace_id,
            span_id,
            parent_span_id: None,
            trace_state: String::new(),
            // The exchange ends with this span: its method moves.
            name: std::mem::take(&mut ex.method),
            start_ns: ex.ts_first,
            end_ns: ctx.end_ts,
            status,
            instance_id: Text::Shared(Arc::clone(&ctx.instance_id)),
            attributes: attrs,
            events,
        };
        self.apply_header_trace(&ctx.hdrs, &mut span);
        span
    }

    fn apply_header_trace(&mut self, hdrs: &ReqHeaders<'_>, span: &mut Span) {
        if let Some(tp) = hdrs.traceparent.map(text) {
            match parse_traceparent(&tp) {
                Some(p) => {
                    self.stats.trace_from_header += 1;
                    span.trace_id = p.trace_id;
                    span.parent_span_id = Some(p.span_id);
                    span.trace_state = hdrs.tracestate.map(owned_text).unwrap_or_default();
                    push_str(&mut span.attributes, a::TRACE_SOURCE, "header");
                }
                None => {
                    self.stats.traceparent_invalid += 1;
                    push(
                        &mut span.attributes,
                        a::TRACE_INVALID,
                        AttrValue::Bool(true),
                    );
                }
            }
        }
    }

    fn session_identity(&self, ctx: &ExCtx, attrs: &mut Vec<Attr>) -> bool {
        let Some(info) = ctx.session_info.as_deref() else {
            return false;
        };
        let mut any = false;
        if let Some(n) = &info.client_name {
            push(
                attrs,
                a::CLIENT_NAME,
                AttrValue::Str(Text::Shared(n.clone())),
            );
            any = true;
        }
        if let Some(v) = &info.client_version {
            push(
                attrs,
                a::CLIENT_VERSION,
                AttrValue::Str(Text::Shared(v.clone())),
            );
            any = true;
        }
        if any {
            push_str(attrs, a::CLIENT_INFO_SOURCE, "session");
        }
        if let Some(c) = &info.capabilities {
            push(
                attrs,
                a::CLIENT_CAPABILITIES,
                AttrValue::StrArray(c.clone()),
            );
        }
        true
    }

    fn msg_span(
        &mut self,
        ex: &Exchange,
        m: &mut Msg,
        batch_size: usize,
        ctx: &mut ExCtx,
        last: bool,
    ) -> Span {
        let mut attrs = Vec::with_capacity(48);
        self.base_attrs(ex, ctx, last, &mut attrs);
        let attached = std::mem::take(&mut m.attached);
        let method = cap(&m.method);

        push_str(
            &mut attrs,
            a::EXCHANGE_KIND,
            if m.is_request() {
                "request"
            } else {
                "notification"
            },
        );
        let method_text = match &m.method {
            // Known when read: no second look-up.
            Text::Static(k) => Text::Static(k),
            _ => known_or_owned(method, known_method),
        };
        push(&mut attrs, a::MCP_METHOD_NAME, AttrValue::Str(method_text));
        if let Some(id) = m.id.as_mut().and_then(take_id_string) {
            push(&mut attrs, a::JSONRPC_REQUEST_ID, AttrValue::Str(id));
        }
        if let Some(v) = &m.jsonrpc {
            push(
                &mut attrs,
                a::JSONRPC_PROTOCOL_VERSION,
                AttrValue::Str(v.clone().into()),
            );
        }
        if ex.batch {
            push(
                &mut attrs,
                a::BATCH_SIZE,
                AttrValue::Int(sat_i64(batch_size as u64)),
            );
            if let Some(i) = m.batch_index {
                push(&mut attrs, a::BATCH_INDEX, AttrValue::Int(sat_i64(i)));
            }
        }

        // Span name and target attributes.
        let pname = m.params.name.as_deref();
        let target_attr = match m.kind {
            Some(Method::ToolsCall) => {
                push_str(&mut attrs, a::GEN_AI_OPERATION_NAME, "execute_tool");
                Some(a::GEN_AI_TOOL_NAME)
            }
            Some(Method::PromptsGet) => Some(a::GEN_AI_PROMPT_NAME),
            _ => None,
        };
        // `None`: the method name alone, moved into the span at the end.
        // The attributes of `params.name` and `params.uri` are filled in
        // after the routing checks have read them: their strings then move.
        let mut name_slot = None;
        let name = match (target_attr, pname) {
            (Some(k), Some(n)) => {
                name_slot = Some(attrs.len());
                push_str(&mut attrs, k, "");
                // `format!("{method} {n}")` without the formatting machinery.
                let mut name = String::with_capacity(method.len() + 1 + n.len());
                name.push_str(method);
                name.push(' ');
                name.push_str(n);
                Some(name)
            }
            _ => None,
        };
        let uri_slot = m.params.uri.is_some().then(|| {
            push_str(&mut attrs, a::MCP_RESOURCE_URI, "");
            attrs.len() - 1
        });

        // Protocol version.
        let is_init = m.kind == Some(Method::Initialize);
        let hdr_pv = ctx.hdr_pv.as_deref();
        let session_info = ctx.session_info.as_deref();
        let pv = hdr_pv
            .or(m.params.meta.protocol_version.as_deref())
            .or_else(|| {
                is_init
                    .then_some(m.params.protocol_version.as_deref())
                    .flatten()
            })
            .or_else(|| session_info.and_then(|i| i.protocol_version.as_deref()));
        if let Some(pv) = pv {
            push(
                &mut attrs,
                a::MCP_PROTOCOL_VERSION,
                AttrValue::Str(known_or_owned(cap(pv), known_version)),
            );
        }

        // Client identity. The message is owned: its strings move into the
        // attributes (nothing below reads them).
        let params = &mut *m.params;
        let caps = params
            .meta
            .client_caps
            .take()
            .or_else(|| match &mut params.capabilities {
                Caps::Keys(k) if is_init => Some(std::mem::take(k)),
                _ => None,
            });
        let meta_info = params.meta.client_info.as_mut();
        let init_info = is_init.then_some(params.client_info.as_mut()).flatten();
        if let Some((info, src)) = meta_info
            .map(|i| (i, "meta"))
            .or_else(|| init_info.map(|i| (i, "initialize")))
        {
            if let Some(n) = info.name.take() {
                push(&mut attrs, a::CLIENT_NAME, AttrValue::Str(n.into()));
            }
            if let Some(v) = info.version.take() {
                push(&mut attrs, a::CLIENT_VERSION, AttrValue::Str(v.into()));
            }
            push_str(&mut attrs, a::CLIENT_INFO_SOURCE, src);
            if let Some(c) = caps {
                push(&mut attrs, a::CLIENT_CAPABILITIES, AttrValue::StrArray(c));
            }
        } else if let Some(c) = caps {
            push(&mut attrs, a::CLIENT_CAPABILITIES, AttrValue::StrArray(c));
        } else {
            self.session_identity(ctx, &mut attrs);
        }
        if is_init {
            self.stats.initialize_calls += 1;
        }
        let params = &*m.params;
        let meta = &params.meta;

        // Routing headers.
        self.routing_attrs(
            ex,
            ctx,
            &m.method,
            m.kind,
            m.is_request(),
            params,
            meta.protocol_version.as_deref(),
            hdr_pv,
            &mut attrs,
        );

        for (slot, text) in [
            (name_slot, &mut m.params.name),
            (uri_slot, &mut m.params.uri),
        ] {
            if let (Some(v), Some((_, held))) = (text.take(), slot.and_then(|i| attrs.get_mut(i))) {
                *held = AttrValue::Str(v.into());
            }
        }
        let params = &*m.params;
        let meta = &params.meta;

        // Long-lived streams.
        let long_lived = m.kind == Some(Method::SubscriptionsListen);
        if long_lived {
            push(&mut attrs, a::STREAM_LONG_LIVED, AttrValue::Bool(true));
        }

        // Tasks (request side).
        if params.task_is_object {
            push(&mut attrs, a::TASK_LEGACY_REQUESTED, AttrValue::Bool(true));
        }
        let mut task_id = if is_tasks_method(&m.method) {
            params.task_id.as_ref().and_then(as_string)
        } else {
            None
        };
        let mut task_status = None;

        // Handles used.
        let mut used = Handles::default();
        used.extend(&params.arguments);
        if let Some(t) = &params.task_id {
            used.push("taskId", t);
        }

        // Response.
        let resp = m.response.as_ref();
        let result = resp.and_then(|r| r.msg.result.as_ref());
        let mut status = SpanStatus::Unset;
        let mut has_rpc_error = false;
        let own_err = resp.and_then(|r| r.msg.error.as_ref());
        let null_err = ex.null_error.as_ref().and_then(|e| e.error.as_ref());
        if let Some(err) = own_err.or(if resp.is_none() { null_err } else { None }) {
            has_rpc_error = true;
            status = rpc_error_attrs(err, &mut attrs);
            if own_err.is_none() {
                push(&mut attrs, a::RPC_ERROR_ID_NULL, AttrValue::Bool(true));
            }
        }
        let mut minted = Handles::default();
        if let Some(r) = result {
            if r.is_error {
                push_str(&mut attrs, a::ERROR_TYPE, "tool_error");
                status = SpanStatus::Error("tool_error".into());
            }
            match &r.result_type {
                Some(t) => push(
                    &mut attrs,
                    a::RESULT_TYPE,
                    AttrValue::Str(known_or_owned(t, known_result_type)),
                ),
                None if ctx.era == Era::Modern => push_str(&mut attrs, a::RESULT_TYPE, "complete"),
                None => {}
            }
            if let Some(t) = r.ttl_ms {
                push(&mut attrs, a::TTL_MS, AttrValue::Int(t));
            }
            if let Some(s) = &r.cache_scope {
                push(
                    &mut attrs,
                    a::CACHE_SCOPE,
                    AttrValue::Str(known_or_owned(s, known_cache_scope)),
                );
            }
            let wrapped = r.task.as_ref();
            if let Some(t) = r.task_id.as_ref().and_then(as_string) {
                task_id = Some(t);
                task_status = r.status.clone();
            } else if let Some(t) = wrapped.and_then(|w| w.task_id.as_ref()).and_then(as_string) {
                task_id = Some(t);
                task_status = wrapped.and_then(|w| w.status.clone());
            } else if is_tasks_method(&m.method) {
                task_status = r.status.clone();
            }
            minted.extend(&r.structured_content);
            if let Some(t) = &r.task_id {
                minted.push("taskId", t);
            }
            if let Some(t) = wrapped.and_then(|w| w.task_id.as_ref()) {
                minted.push("taskId", t);
            }
            minted.extend(&r.text_handles);
        }
        if let Some(t) = task_id {
            push(
                &mut attrs,
                a::TASK_ID,
                AttrValue::Str(cap(&t).to_string().into()),
            );
        }
        if let Some(s) = task_status {
            push(
                &mut attrs,
                a::TASK_STATUS,
                AttrValue::Str(cap(&s).to_string().into()),
            );
        }
        // A result that echoes a handle of the arguments did not mint it.
        minted.list.retain(|h| !used.list.contains(h));
        self.stats.handles_dropped += used.dropped + minted.dropped;
        if !used.list.is_empty() {
            push(&mut attrs, a::HANDLES_USED, AttrValue::StrArray(used.list));
        }
        if !minted.list.is_empty() {
            push(
                &mut attrs,
                a::HANDLES_MINTED,
                AttrValue::StrArray(minted.list),
            );
        }

        // No JSON-RPC response although the HTTP exchange finished.
        if m.is_request() && resp.is_none() && !has_rpc_error && ex.status.is_some() {
            push(&mut attrs, a::RPC_RESPONSE_MISSING, AttrValue::Bool(true));
            self.stats.rpc_responses_missing += 1;
            let ok_2xx = ex
                .status
                .is_some_and(|s| (200..300).contains(&s) && s != 202);
            let damaged = ex.response_invalid || ex.flags.body_truncated;
            if ok_2xx && !long_lived && !damaged {
                push_str(&mut attrs, a::ERROR_TYPE, "no_response");
                status = SpanStatus::Error("no_response".into());
            }
        }
        http_status_rule(ex, ctx, has_rpc_error, &mut status, &mut attrs);

        // Events.
        let events = attach_attrs(attached, &mut attrs);

        // Bodies.
        if self.cfg.capture_bodies {
            let rule = &self.cfg.handle_rule;
            let max = self.cfg.capture_body_max_bytes;
            let mut truncated = false;
            if let Some(body) = &m.body {
                let (s, t) = capture(body, rule, max);
                truncated = t;
                push(&mut attrs, a::REQUEST_BODY, AttrValue::Str(s.into()));
            }
            if let Some(r) = resp {
                if let Some(b) = &r.msg.body {
                    let (s, t) = capture(b, rule, max);
                    truncated |= t;
                    push(&mut attrs, a::RESPONSE_BODY, AttrValue::Str(s.into()));
                }
            } else if let Some(e) = ex.null_error.as_ref().and_then(|e| e.body.as_ref()) {
                let (s, t) = capture(e, rule, max);
                truncated |= t;
                push(&mut attrs, a::RESPONSE_BODY, AttrValue::Str(s.into()));
            }
            if truncated {
                self.stats.bodies_capture_truncated += 1;
                push(&mut attrs, a::BODY_CAPTURE_TRUNCATED, AttrValue::Bool(true));
            }
        }

        // Ids and trace context.
        let batch_idx = m.batch_index.unwrap_or(0);
        let (span_id, trace_id) = derive_ids(
            &ex.conn.client,
            &ex.conn.server,
            ex.conn.client_isn,
            ex.index,
            batch_idx,
        );
        let end = resp.map(|r| r.ts).unwrap_or(ctx.end_ts).max(ex.ts_first);
        let name = name.unwrap_or_else(|| {
            if cap(&m.method).len() == m.method.len() {
                std::mem::take(&mut m.method).into_string()
            } else {
                cap(&m.method).to_string()
            }
        });
        let mut span = Span {
            trace_id,
            span_id,
            parent_span_id: None,
            trace_state: String::new(),
            name,
            start_ns: ex.ts_first,
            end_ns: end,
            status,
            instance_id: Text::Shared(Arc::clone(&ctx.instance_id)),
            attributes: attrs,
            events,
        };
        let meta_tp = meta.traceparent.as_deref();
        let mut from_meta = false;
        if let Some(tp) = meta_tp {
            match parse_traceparent(tp) {
                Some(p) => {
                    from_meta = true;
                    self.stats.trace_from_meta += 1;
                    span.trace_id = p.trace_id;
                    span.parent_span_id = Some(p.span_id);
                    span.trace_state = meta.tracestate.clone().unwrap_or_default();
                    push_str(&mut span.attributes, a::TRACE_SOURCE, "meta");
                }
                None => {
                    self.stats.traceparent_invalid += 1;
                    push(
                        &mut span.attributes,
                        a::TRACE_INVALID,
                        AttrValue::Bool(true),
                    );
                }
            }
        }
        if !from_meta {
            self.apply_header_trace(&ctx.hdrs, &mut span);
        }
        span
    }

    #[allow(clippy::too_many_arguments)]
    fn routing_attrs(
        &mut self,
        ex: &Exchange,
        ctx: &ExCtx,
        method: &str,
        kind: Option<Method>,
        is_request: bool,
        params: &Params,
        meta_pv: Option<&str>,
        hdr_pv: Option<&str>,
        attrs: &mut Vec<Attr>,
    ) {
        let modern = ctx.era == Era::Modern && !ex.batch;
        let hdr_method = ctx.hdr_method.as_deref();
        let name_hdr = ctx.hdrs.mcp_name.map(decode_header_value);
        // The checks first: then the header's texts move into the attributes.
        let (ms, ns, ps) = if !modern {
            (Check::NotRequired, Check::NotRequired, Check::NotRequired)
        } else {
            let ms = match hdr_method {
                Some(h) if h == method => Check::Match,
                Some(_) => Check::Mismatch,
                None if is_request => Check::Missing,
                None => Check::NotRequired,
            };
            let ns = match kind.and_then(Method::name_param) {
                None => Check::NotRequired,
                Some(field) => {
                    let body = match field {
                        NameParam::Name => params.name.as_deref(),
                        NameParam::Uri => params.uri.as_deref(),
                        NameParam::TaskId => {
                            params.task_id.as_ref().and_then(Value::as_str).map(cap)
                        }
                    };
                    match (&name_hdr, body) {
                        (None, _) => Check::Missing,
                        (Some(h), Some(b)) if !h.decode_error && h.value == b => Check::Match,
                        (Some(_), _) => Check::Mismatch,
                    }
                }
            };
            let ps = match (hdr_pv, meta_pv) {
                (Some(h), Some(mv)) if trim(h) == mv => Check::Match,
                (Some(_), Some(_)) => Check::Mismatch,
                (_, None) => Check::Missing,
                (None, Some(_)) => Check::Missing,
            };
            (ms, ns, ps)
        };
        if let Some(n) = name_hdr {
            if n.decode_error {
                self.stats.mcp_name_decode_errors += 1;
            }
            push(attrs, a::ROUTING_MCP_NAME, AttrValue::Str(n.value.into()));
            if let Some(raw) = n.raw_if_encoded {
                push(attrs, a::ROUTING_MCP_NAME_ENCODED, AttrValue::Bool(true));
                push(attrs, a::ROUTING_MCP_NAME_RAW, AttrValue::Str(raw.into()));
            }
        }
        for c in [ms, ns, ps] {
            match c {
                Check::Mismatch => self.stats.routing_mismatch += 1,
                Check::Missing => self.stats.routing_missing += 1,
                _ => {}
            }
        }
        push_str(attrs, a::ROUTING_METHOD_STATUS, ms.as_str());
        push_str(attrs, a::ROUTING_NAME_STATUS, ns.as_str());
        push_str(attrs, a::ROUTING_PROTOCOL_VERSION_STATUS, ps.as_str());
    }
}

/// Per-exchange context computed once at finalisation.
struct ExCtx<'h> {
    era: Era,
    end_ts: u64,
    reason: EndReason,
    /// The request's `Mcp-Session-Id` (lossy UTF-8), shared with
    /// [`SessionCache`].
    session: Option<Arc<str>>,
    minted: Option<String>,
    /// `service.instance.id`, shared with [`AddrTexts`] or the configuration.
    instance_id: Arc<str>,
    /// `client.address` ([`texts::ip_text`] of the client), shared with
    /// [`AddrTexts`].
    client_ip: Arc<str>,
    /// `server.address`, likewise.
    server_ip: Arc<str>,
    /// `user_agent.original` (lossy UTF-8), shared with [`LastText`].
    user_agent: Option<Arc<str>>,
    hdrs: ReqHeaders<'h>,
    /// `MCP-Protocol-Version` as text (lossy UTF-8).
    hdr_pv: Option<Cow<'h, str>>,
    /// `Mcp-Method` as text (lossy UTF-8).
    hdr_method: Option<Cow<'h, str>>,
    /// The entry of the request's `Mcp-Session-Id` after this exchange
    /// updated the table, looked up once.
    session_info: Option<Arc<SessionInfo>>,
}

/// The request headers the decoder reads, found in one pass over the head:
/// the first header of each name, names compared case-insensitively (as
/// [`mcptap_wire::header`] does).
#[derive(Debug, Clone, Copy)]
struct ReqHeaders<'h> {
    headers: &'h Headers,
    protocol_version: Option<&'h [u8]>,
    session_id: Option<&'h [u8]>,
    user_agent: Option<&'h [u8]>,
    mcp_method: Option<&'h [u8]>,
    mcp_name: Option<&'h [u8]>,
    traceparent: Option<&'h [u8]>,
    tracestate: Option<&'h [u8]>,
    /// Some header name starts with `mcp-param-` (any case).
    param_headers: bool,
}

impl<'h> ReqHeaders<'h> {
    fn scan(headers: &'h Headers) -> ReqHeaders<'h> {
        let mut r = ReqHeaders {
            headers,
            protocol_version: None,
            session_id: None,
            user_agent: None,
            mcp_method: None,
            mcp_name: None,
            traceparent: None,
            tracestate: None,
            param_headers: false,
        };
        for (n, value) in headers.iter_bytes() {
            // Names of ten bytes are told apart by their first letter
            // first (`connection`, on most requests, is none of them).
            let first = n.first().map_or(0, |c| c | 0x20);
            let slot = match n.len() {
                8 if name_is(n, b"mcp-name") => &mut r.mcp_name,
                10 if first == b'u' && name_is(n, b"user-agent") => &mut r.user_agent,
                10 if first == b'm' && name_is(n, b"mcp-method") => &mut r.mcp_method,
                10 if first == b't' && name_is(n, b"tracestate") => &mut r.tracestate,
                11 if name_is(n, b"traceparent") => &mut r.traceparent,
                14 if name_is(n, b"mcp-session-id") => &mut r.session_id,
                20 if name_is(n, b"mcp-protocol-version") => &mut r.protocol_version,
                _ => {
                    if n.len() >= 10
                        && n.first().is_some_and(|c| c.eq_ignore_ascii_case(&b'm'))
                        && n.get(..10).is_some_and(|p| name_is(p, b"mcp-param-"))
                    {
                        r.param_headers = true;
                    }
                    continue;
                }
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        r
    }
}

/// `n.eq_ignore_ascii_case(t)` for a lowercase ASCII name `t`, eight bytes
/// at a time when `t` has at least eight: a byte of `n` matches a letter of
/// `t` in either case (`b | 0x20 == t`) and any other byte of `t` exactly,
/// which is the byte-wise rule (see the proptest).
#[inline(always)]
fn name_is(n: &[u8], t: &[u8]) -> bool {
    if n.len() != t.len() || t.len() < 8 {
        return n.eq_ignore_ascii_case(t);
    }
    let last = t.len() - 8;
    let mut at = 0;
    loop {
        let at8 = at.min(last);
        let (Some(a), Some(b)) = (word8(n, at8), word8(t, at8)) else {
            return false;
        };
        if a | lower_letters(b) != b {
            return false;
        }
        if at8 == last {
            return true;
        }
        at += 8;
    }
}

/// The eight bytes of `s` from `at`, little-endian.
#[inline(always)]
fn word8(s: &[u8], at: usize) -> Option<u64> {
    let w = s.get(at..at.checked_add(8)?)?;
    <[u8; 8]>::try_from(w).ok().map(u64::from_le_bytes)
}

/// `0x20` in each byte of `w` that is a lowercase ASCII letter, else `0`
/// (`w` all ASCII: no byte sum below carries into the next byte).
#[inline(always)]
const fn lower_letters(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let from_a = w.wrapping_add(ONES * (0x80 - b'a' as u64));
    let past_z = w.wrapping_add(ONES * (0x80 - b'z' as u64 - 1));
    ((from_a & !past_z) & (ONES * 0x80)) >> 2
}

/// A header value as UTF-8 text, lossy (as [`mcptap_wire::header_text`]).
fn text(v: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(v) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v),
    }
}

/// [`text`] of `v`, without the UTF-8 check when `known` recognises it (its
/// known values are ASCII).
fn known_text(v: &[u8], known: fn(&[u8]) -> Option<&'static str>) -> Cow<'_, str> {
    match known(v) {
        Some(k) => Cow::Borrowed(k),
        None => text(v),
    }
}

/// A header value as an owned UTF-8 string, lossy (as [`mcptap_wire::header_str`]).
fn owned_text(v: &[u8]) -> String {
    text(v).into_owned()
}

// ---- body parsing ---------------------------------------------------------------------

fn parse_request_body(ex: &mut Exchange, body: &[u8], cfg: &DecoderConfig, stats: &mut McpStats) {
    if body.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    if cfg.capture_bodies {
        // The redacted body needs the whole message: keep the `Value` and read
        // the typed members from it.
        let v = match serde_json::from_slice::<Value>(body) {
            Ok(v) => v,
            Err(_) => {
                stats.request_json_errors += 1;
                ex.request_invalid = true;
                return;
            }
        };
        match v {
            Value::Array(items) => {
                stats.batches += 1;
                stats.batch_messages += items.len() as u64;
                ex.request_json = Some(Value::Array(items.clone()));
                ex.batch = true;
                ex.msgs.reserve_exact(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let m = request::msg_from_value(&item, &cfg.handle_rule);
                    push_msg(ex, m, Some(item), Some(i as u64), stats);
                }
            }
            other => {
                ex.request_json = Some(other.clone());
                let m = request::msg_from_value(&other, &cfg.handle_rule);
                push_msg(ex, m, Some(other), None, stats);
            }
        }
    } else {
        match request::parse(body, &cfg.handle_rule) {
            Ok(Body::Batch(items)) => {
                stats.batches += 1;
                stats.batch_messages += items.len() as u64;
                ex.batch = true;
                ex.msgs.reserve_exact(items.len());
                for (i, m) in items.into_iter().enumerate() {
                    push_msg(ex, m, None, Some(i as u64), stats);
                }
            }
            Ok(Body::Single(m)) => push_msg(ex, m, None, None, stats),
            Err(_) => {
                stats.request_json_errors += 1;
                ex.request_invalid = true;
                return;
            }
        }
    }
    if !ex.msgs.is_empty() {
        // Bodies are only kept for http-level spans.
        ex.request_json = None;
    }
}

/// Adds one parsed message (`None`: not a JSON object) to `ex`; `body` is the
/// message as JSON when bodies are captured.
fn push_msg(
    ex: &mut Exchange,
    msg: Option<ReqMsg>,
    body: Option<Value>,
    batch_index: Option<u64>,
    stats: &mut McpStats,
) {
    let Some(msg) = msg else {
        stats.invalid_jsonrpc += 1;
        ex.request_invalid = true;
        return;
    };
    if let Some(method) = msg.method {
        if msg.id.is_some() {
            stats.jsonrpc_requests += 1;
        } else {
            stats.jsonrpc_notifications += 1;
        }
        stats.count_method(&method);
        if batch_index.is_none() && ex.msgs.capacity() == 0 {
            // A single message: one slot, not the four (1.5 KiB) `push`
            // reserves, allocated directly (no growth step).
            ex.msgs = Vec::with_capacity(1);
        } else if batch_index.is_none() {
            ex.msgs.reserve_exact(1);
        }
        ex.msgs.push(Msg {
            method,
            kind: msg.kind,
            id: msg.id,
            jsonrpc: msg.jsonrpc,
            params: msg.params,
            body,
            batch_index,
            response: None,
            attached: Attached::default(),
        });
    } else if msg.has_result_or_error {
        stats.posted_responses += 1;
        ex.posted_responses += 1;
    } else {
        stats.invalid_jsonrpc += 1;
        ex.request_invalid = true;
    }
}

/// Applies the messages of one response body or SSE `data` field.
fn absorb(ex: &mut Exchange, v: RespBody, ts: u64, cfg: &DecoderConfig, stats: &mut McpStats) {
    match v {
        RespBody::Batch(items) => {
            for item in items {
                absorb_one(ex, item, ts, cfg, stats);
            }
        }
        RespBody::Single(m) => absorb_one(ex, m, ts, cfg, stats),
    }
}

fn absorb_one(
    ex: &mut Exchange,
    msg: Option<RespMsg>,
    ts: u64,
    cfg: &DecoderConfig,
    stats: &mut McpStats,
) {
    let Some(msg) = msg else {
        stats.invalid_jsonrpc += 1;
        return;
    };
    if let Some(method) = &msg.method {
        let is_request = msg.id.is_some();
        if is_request {
            stats.sse_server_requests += 1;
        } else {
            stats.sse_notifications += 1;
        }
        let token = msg.params.as_ref().and_then(|p| p.progress_token.as_ref());
        let ev = make_event(method, &msg, ts, cfg);
        let target: Option<&mut Attached> = if ex.msgs.is_empty() {
            Some(&mut ex.http_attached)
        } else {
            let by_token = token.and_then(|t| {
                ex.msgs
                    .iter()
                    .position(|m| m.awaiting() && m.params.meta.progress_token.as_ref() == Some(t))
            });
            let idx = by_token.or_else(|| ex.msgs.iter().position(Msg::awaiting));
            idx.and_then(|i| ex.msgs.get_mut(i))
                .map(|m| &mut m.attached)
        };
        match target {
            Some(t) => {
                if is_request {
                    t.server_requests += 1;
                } else {
                    t.notifications += 1;
                }
                if t.events.len() < cfg.max_span_events {
                    t.events.push(ev);
                } else {
                    t.dropped += 1;
                    stats.span_events_dropped += 1;
                }
            }
            None => stats.span_events_dropped += 1,
        }
        return;
    }
    if !(msg.has_result || msg.error.is_some()) {
        stats.invalid_jsonrpc += 1;
        return;
    }
    let id = msg.id.as_ref().unwrap_or(&Value::Null);
    if id.is_null() {
        if msg.error.is_some() && ex.null_error.is_none() {
            ex.null_error = Some(msg);
        } else {
            stats.unmatched_responses += 1;
        }
        return;
    }
    match ex
        .msgs
        .iter_mut()
        .find(|m| m.awaiting() && m.id.as_ref() == Some(id))
    {
        Some(m) => m.response = Some(Outcome { msg, ts }),
        None => stats.unmatched_responses += 1,
    }
}

fn make_event(method: &str, msg: &RespMsg, ts: u64, cfg: &DecoderConfig) -> SpanEvent {
    let mut attrs: Vec<Attr> = Vec::new();
    let params = msg.params.as_ref();
    match Method::parse(method) {
        Some(Method::NotificationsProgress) => {
            if let Some(p) = params.and_then(|p| p.progress.as_ref()) {
                push(
                    &mut attrs,
                    a::MCP_PROGRESS,
                    AttrValue::Str(number_attr_text(p)),
                );
            }
            if let Some(p) = params.and_then(|p| p.total.as_ref()) {
                push(
                    &mut attrs,
                    a::MCP_PROGRESS_TOTAL,
                    AttrValue::Str(number_attr_text(p)),
                );
            }
        }
        Some(Method::NotificationsMessage) => {
            if let Some(l) = params.and_then(|p| p.level.as_deref()) {
                push(
                    &mut attrs,
                    a::MCP_LOG_LEVEL,
                    AttrValue::Str(cap(l).to_string().into()),
                );
            }
            if let Some(l) = params.and_then(|p| p.logger.as_deref()) {
                push(
                    &mut attrs,
                    a::MCP_LOG_LOGGER,
                    AttrValue::Str(cap(l).to_string().into()),
                );
            }
        }
        _ => {}
    }
    if let Some(id) = msg.id.as_ref().and_then(id_string) {
        push(&mut attrs, a::JSONRPC_REQUEST_ID, AttrValue::Str(id.into()));
    }
    if cfg.capture_bodies
        && let Some(p) = params.and_then(|p| p.body.as_ref())
    {
        let (s, _) = capture(p, &cfg.handle_rule, cfg.capture_body_max_bytes);
        push(&mut attrs, a::NOTIFICATION_BODY, AttrValue::Str(s.into()));
    }
    SpanEvent {
        time_ns: ts,
        name: cap(method).to_string(),
        attributes: attrs,
    }
}

// ---- attribute helpers -----------------------------------------------------------------

fn push(attrs: &mut Vec<Attr>, k: &'static str, v: AttrValue) {
    attrs.push((k, v));
}

/// Pushes a fixed string value without allocating.
fn push_str(attrs: &mut Vec<Attr>, k: &'static str, v: &'static str) {
    push(attrs, k, AttrValue::Str(Text::Static(v)));
}

/// `s` itself when `last` (the exchange's last span takes it, leaving it
/// empty), else a copy.
fn share(s: &mut String, last: bool) -> String {
    if last { std::mem::take(s) } else { s.clone() }
}

fn sat_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn as_string(v: &Value) -> Option<String> {
    v.as_str().map(|s| cap(s).to_string())
}

/// Sets `rpc.response.status_code`, `error.type` for a JSON-RPC error object and
/// returns the status it implies.
fn rpc_error_attrs(err: &RpcError, attrs: &mut Vec<Attr>) -> SpanStatus {
    let code = err.code.as_ref();
    let code_str: Cow<'static, str> = match code {
        Some(Value::Number(n)) => match n.as_i64().and_then(error_code::known_text) {
            Some(k) => Cow::Borrowed(k),
            None => Cow::Owned(number_text(n)),
        },
        Some(other) => Cow::Owned(cap(&other.to_string()).to_string()),
        None => Cow::Borrowed("unknown"),
    };
    push(
        attrs,
        a::RPC_RESPONSE_STATUS_CODE,
        AttrValue::Str(code_str.clone().into()),
    );
    push(
        attrs,
        a::ERROR_TYPE,
        AttrValue::Str(code_str.clone().into()),
    );
    let caller_fault = code
        .and_then(Value::as_i64)
        .is_some_and(|c| error_code::CALLER_FAULT.contains(&c));
    if caller_fault {
        SpanStatus::Unset
    } else {
        // The message is server text that may echo a credential (e.g. "invalid
        // key sk-…"): one that looks like a credential is not exported.
        let msg = err
            .message
            .as_deref()
            .map(|m| {
                if crate::redact::looks_like_credential(m) {
                    crate::redact::REDACTED.to_string()
                } else {
                    cap(m).to_string()
                }
            })
            .unwrap_or_else(|| code_str.into_owned());
        SpanStatus::Error(msg)
    }
}

/// HTTP-level status rules: 5xx is an error (error.type = the code when no
/// JSON-RPC error set one); a connection closed with no response is `no_response`.
fn http_status_rule(
    ex: &Exchange,
    ctx: &ExCtx,
    has_rpc_error: bool,
    status: &mut SpanStatus,
    attrs: &mut Vec<Attr>,
) {
    match ex.status {
        Some(s @ 500..=599) => {
            if !has_rpc_error && !attrs.iter().any(|(k, _)| *k == a::ERROR_TYPE) {
                push(attrs, a::ERROR_TYPE, AttrValue::Str(s.to_string().into()));
                *status = SpanStatus::Error(format!("HTTP {s}"));
            } else if *status == SpanStatus::Unset {
                *status = SpanStatus::Error(format!("HTTP {s}"));
            }
        }
        None if ctx.reason == EndReason::Closed => {
            push_str(attrs, a::ERROR_TYPE, "no_response");
            *status = SpanStatus::Error("no_response".into());
        }
        _ => {}
    }
}

/// Adds the SSE counters of `att` and returns its events.
fn attach_attrs(att: Attached, attrs: &mut Vec<Attr>) -> Vec<SpanEvent> {
    if att.notifications > 0 {
        push(
            attrs,
            a::SSE_NOTIFICATIONS,
            AttrValue::Int(sat_i64(att.notifications)),
        );
    }
    if att.server_requests > 0 {
        push(
            attrs,
            a::SSE_SERVER_REQUESTS,
            AttrValue::Int(sat_i64(att.server_requests)),
        );
    }
    if att.dropped > 0 {
        push(
            attrs,
            a::SSE_EVENTS_DROPPED,
            AttrValue::Int(sat_i64(att.dropped)),
        );
    }
    att.events
}

#[cfg(test)]
mod req_header_tests {
    use proptest::prelude::*;

    proptest! {
        /// The word-wise name comparison is `eq_ignore_ascii_case`.
        #[test]
        fn name_is_matches_eq_ignore_ascii_case(
            t in prop_oneof![
                Just("mcp-name"), Just("user-agent"), Just("mcp-method"), Just("tracestate"),
                Just("traceparent"), Just("mcp-session-id"), Just("mcp-protocol-version"),
                Just("mcp-param-"), Just("host"),
            ],
            flips in proptest::collection::vec(any::<u8>(), 20),
            junk in proptest::collection::vec(any::<u8>(), 0..22),
        ) {
            let t = t.as_bytes();
            // Same bytes with cases flipped and some bytes replaced (often by
            // a neighbour of the right byte), and unrelated bytes.
            let mixed: Vec<u8> = t
                .iter()
                .zip(flips.iter().cycle())
                .map(|(&b, &f)| match f % 8 {
                    0 => b.to_ascii_uppercase(),
                    1 => b ^ 0x20,
                    2 => b ^ 0x80,
                    3 => f,
                    _ => b,
                })
                .collect();
            for n in [t, mixed.as_slice(), junk.as_slice()] {
                prop_assert_eq!(super::name_is(n, t), n.eq_ignore_ascii_case(t));
            }
        }
    }

    proptest! {
        /// A known header value reads as the same text, known or not.
        #[test]
        fn known_text_is_text(
            v in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..12),
                Just(b"2025-06-18".to_vec()),
                Just(b"tools/call".to_vec()),
                Just(b"2026-07-28 ".to_vec()),
            ]
        ) {
            for known in [super::known_method_bytes, super::known_version_bytes] {
                prop_assert_eq!(super::known_text(&v, known), super::text(&v));
            }
        }
    }

    proptest! {
        /// The one-pass header scan finds what a lookup of each name finds
        /// (first header of the name, any case), and flags `Mcp-Param-*` names.
        #[test]
        fn req_headers_scan_matches_lookups(
            hs in proptest::collection::vec(
                (
                    prop_oneof![
                        Just("Mcp-Name"), Just("user-agent"), Just("MCP-METHOD"),
                        Just("tracestate"), Just("Traceparent"), Just("mcp-session-id"),
                        Just("MCP-Protocol-Version"), Just("mcp-param-"), Just("Mcp-Param-Region"),
                        Just("mcp-par"), Just("content-type"), Just("host"), Just("x-mcp-param-a"),
                    ],
                    proptest::collection::vec(any::<u8>(), 0..6),
                ),
                0..12,
            )
        ) {
            let headers: mcptap_wire::Headers = hs
                .iter()
                .map(|(n, v)| mcptap_wire::Header { name: (*n).to_string(), value: v.clone() })
                .collect::<Vec<_>>()
                .into();
            let r = super::ReqHeaders::scan(&headers);
            let look = |n: &str| mcptap_wire::header(&headers, n);
            prop_assert_eq!(r.mcp_name, look("mcp-name"));
            prop_assert_eq!(r.user_agent, look("user-agent"));
            prop_assert_eq!(r.mcp_method, look("mcp-method"));
            prop_assert_eq!(r.tracestate, look("tracestate"));
            prop_assert_eq!(r.traceparent, look("traceparent"));
            prop_assert_eq!(r.session_id, look("mcp-session-id"));
            prop_assert_eq!(r.protocol_version, look("mcp-protocol-version"));
            let params = hs.iter().any(|(n, _)| {
                n.get(..10).is_some_and(|p| p.eq_ignore_ascii_case("mcp-param-"))
            });
            prop_assert_eq!(r.param_headers, params);
        }
    }
}
