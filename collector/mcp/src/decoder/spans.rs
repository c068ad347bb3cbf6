//! Span building: the per-exchange context ([`ExCtx`]), then one span per
//! JSON-RPC message ([`Decoder::msg_span`], in the steps its attributes come
//! in: method and id, target, protocol version, client identity, routing,
//! tasks and handles, response, bodies, trace context) or one HTTP-level
//! span ([`Decoder::http_span`]).

use std::borrow::Cow;
use std::sync::Arc;

use mcptap_wire::forwarded::ClientIdentity;
use mcptap_wire::{Headers, header};

use super::Decoder;
use super::exchange::{EndReason, Exchange, Msg};
use super::headers::{ReqHeaders, known_text, owned_text, text};
use super::sessions::SessionInfo;
use super::span_attrs::{
    as_string, attach_attrs, http_status_rule, push, push_str, rpc_error_attrs, sat_i64,
};
use super::texts::{known_or_owned, take_id_string};
use crate::attrs as a;
use crate::handles::Handles;
use crate::ids::{derive_ids, parse_traceparent};
use crate::json::cap;
use crate::protocol::{
    Era, Method, is_tasks_method, known_cache_scope, known_method, known_method_bytes,
    known_result_type, known_version, known_version_bytes,
};
use crate::redact::capture;
use crate::request::{Caps, Meta};
use crate::response::{ResultFields, RpcError};
use crate::routing::decode_header_value;
use crate::span::{Attr, AttrValue, Span, SpanEvent, SpanStatus, Text};

/// Per-exchange context computed once at finalisation.
pub(super) struct ExCtx<'h> {
    pub(super) era: Era,
    pub(super) end_ts: u64,
    pub(super) reason: EndReason,
    /// The request's `Mcp-Session-Id` (lossy UTF-8), shared with the
    /// session table's cache.
    pub(super) session: Option<Arc<str>>,
    pub(super) minted: Option<String>,
    /// `service.instance.id`, shared with the address texts or the configuration.
    pub(super) instance_id: Arc<str>,
    /// `client.address`: the original client (from forwarding headers sent by
    /// a trusted peer, else the socket peer), shared with the address texts.
    pub(super) client_ip: Arc<str>,
    /// `client.port`, when known.
    pub(super) client_port: Option<u16>,
    /// `network.peer.address`: the socket peer, shared with the address texts.
    pub(super) peer_ip: Arc<str>,
    /// Where `client.address` came from, hops, anomaly (`None`: the peer, no anomaly).
    pub(super) client_via: Option<ClientIdentity>,
    /// `mcptap.client.workload` and its source header.
    pub(super) workload: Option<(String, &'static str)>,
    /// `server.address`, likewise.
    pub(super) server_ip: Arc<str>,
    /// `user_agent.original` (lossy UTF-8), shared with the last `User-Agent` text.
    pub(super) user_agent: Option<Arc<str>>,
    pub(super) hdrs: ReqHeaders<'h>,
    /// `MCP-Protocol-Version` as text (lossy UTF-8).
    pub(super) hdr_pv: Option<Cow<'h, str>>,
    /// `Mcp-Method` as text (lossy UTF-8).
    pub(super) hdr_method: Option<Cow<'h, str>>,
    /// The entry of the request's `Mcp-Session-Id` after this exchange
    /// updated the table, looked up once.
    pub(super) session_info: Option<Arc<SessionInfo>>,
}

/// Where the span name and the `params.name` / `params.uri` attributes of a
/// message go.
struct Target {
    /// `None`: the method name alone, moved into the span at the end.
    name: Option<String>,
    /// Index of the attribute that takes `params.name`.
    name_slot: Option<usize>,
    /// Index of the attribute that takes `params.uri`.
    uri_slot: Option<usize>,
}

/// The task a message concerns: its id and status (cut).
#[derive(Default)]
struct Task {
    id: Option<String>,
    status: Option<String>,
}

impl Decoder {
    /// The context of `ex` ending at `end_ts` for `reason`: era, session
    /// (the table updated with what this exchange minted), endpoint texts;
    /// `headers` are the exchange's request headers.
    pub(super) fn exchange_context<'h>(
        &mut self,
        ex: &Exchange,
        headers: &'h Headers,
        end_ts: u64,
        reason: EndReason,
    ) -> ExCtx<'h> {
        let hdrs = ReqHeaders::scan(headers);
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
        let session_hdr = hdrs.session_id.map(|v| self.sessions.text(v));
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
            ex,
            minted.as_deref(),
            session_hdr.as_ref().map(|(t, _)| &**t),
        );
        let session_info = session_hdr
            .as_ref()
            .and_then(|(t, slot)| self.sessions.get(*slot, t));
        let session_hdr = session_hdr.map(|(t, _)| t);

        let (client_ip, client_port, peer_ip, client_via, workload) =
            self.client_identity(ex, &hdrs);
        let server_ip = self.texts.ip(ex.conn.server.ip());
        let instance_id = match &self.instance_id {
            Some(id) => Arc::clone(id),
            None => self.texts.socket(ex.conn.server, &server_ip),
        };
        ExCtx {
            era,
            end_ts: end_ts.max(ex.ts_first),
            reason,
            session: session_hdr,
            minted,
            instance_id,
            client_ip,
            client_port,
            peer_ip,
            client_via,
            workload,
            user_agent: hdrs.user_agent.map(|v| self.user_agent.text(v)),
            server_ip,
            hdrs,
            hdr_pv,
            hdr_method,
            session_info,
        }
    }

    /// The span of an exchange that carried no JSON-RPC request or
    /// notification (HTTP-level: GET streams, DELETE, posted responses,
    /// bodies that are not JSON-RPC).
    pub(super) fn http_span(&mut self, ex: &mut Exchange, ctx: &mut ExCtx) -> Span {
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
        self.http_bodies(ex, &mut attrs);
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

    /// Trace context from the `traceparent` / `tracestate` headers.
    fn apply_header_trace(&mut self, hdrs: &ReqHeaders<'_>, span: &mut Span) {
        if let Some(tp) = hdrs.traceparent.map(text) {
            let state = || hdrs.tracestate.map(owned_text).unwrap_or_default();
            if apply_traceparent(span, &tp, state, "header") {
                self.stats.trace_from_header += 1;
            } else {
                self.stats.traceparent_invalid += 1;
            }
        }
    }

    /// Client identity remembered for the request's session; `false` when
    /// the session is unknown.
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

    /// The captured request and response bodies of an HTTP-level span.
    fn http_bodies(&mut self, ex: &Exchange, attrs: &mut Vec<Attr>) {
        if !self.cfg.capture_bodies {
            return;
        }
        let mut truncated = false;
        if let Some(v) = &ex.request_json {
            let (s, t) = capture(v, &self.cfg.handle_rule, self.cfg.capture_body_max_bytes);
            truncated |= t;
            push(attrs, a::REQUEST_BODY, AttrValue::Str(s.into()));
        }
        if let Some(v) = &ex.response_json {
            let (s, t) = capture(v, &self.cfg.handle_rule, self.cfg.capture_body_max_bytes);
            truncated |= t;
            push(attrs, a::RESPONSE_BODY, AttrValue::Str(s.into()));
        }
        if truncated {
            self.stats.bodies_capture_truncated += 1;
            push(attrs, a::BODY_CAPTURE_TRUNCATED, AttrValue::Bool(true));
        }
    }

    /// The span of message `m` of `ex` (`batch_size` messages in the body;
    /// `last` for the exchange's last span). Its strings move out of `m`.
    pub(super) fn msg_span(
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
        msg_head_attrs(ex, m, batch_size, &mut attrs);
        let target = msg_target(m, &mut attrs);
        let is_init = m.kind == Some(Method::Initialize);
        msg_protocol_version(m, ctx, is_init, &mut attrs);
        self.msg_client_identity(m, ctx, is_init, &mut attrs);
        if is_init {
            self.stats.initialize_calls += 1;
        }
        let params = &*m.params;
        self.routing_attrs(
            ex,
            ctx,
            &m.method,
            m.kind,
            m.is_request(),
            params,
            params.meta.protocol_version.as_deref(),
            ctx.hdr_pv.as_deref(),
            &mut attrs,
        );
        // The attributes of `params.name` and `params.uri` are filled in
        // after the routing checks have read them: their strings then move.
        for (slot, text) in [
            (target.name_slot, &mut m.params.name),
            (target.uri_slot, &mut m.params.uri),
        ] {
            if let (Some(v), Some((_, held))) = (text.take(), slot.and_then(|i| attrs.get_mut(i))) {
                *held = AttrValue::Str(v.into());
            }
        }
        let long_lived = m.kind == Some(Method::SubscriptionsListen);
        if long_lived {
            push(&mut attrs, a::STREAM_LONG_LIVED, AttrValue::Bool(true));
        }
        let status = self.msg_outcome(ex, m, ctx, long_lived, &mut attrs);
        let events = attach_attrs(attached, &mut attrs);
        self.msg_bodies(ex, m, &mut attrs);
        let mut span = msg_span_shell(ex, m, ctx, target.name, status, attrs, events);
        self.msg_trace(&m.params.meta, ctx, &mut span);
        span
    }

    /// Client identity: `_meta` client info (2026-07-28), else `initialize`'s
    /// `clientInfo`, else what the session remembers. The strings move out
    /// of `m` (nothing after reads them).
    fn msg_client_identity(&self, m: &mut Msg, ctx: &ExCtx, is_init: bool, attrs: &mut Vec<Attr>) {
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
                push(attrs, a::CLIENT_NAME, AttrValue::Str(n.into()));
            }
            if let Some(v) = info.version.take() {
                push(attrs, a::CLIENT_VERSION, AttrValue::Str(v.into()));
            }
            push_str(attrs, a::CLIENT_INFO_SOURCE, src);
            if let Some(c) = caps {
                push(attrs, a::CLIENT_CAPABILITIES, AttrValue::StrArray(c));
            }
        } else if let Some(c) = caps {
            push(attrs, a::CLIENT_CAPABILITIES, AttrValue::StrArray(c));
        } else {
            self.session_identity(ctx, attrs);
        }
    }

    /// Tasks, handles and the response of `m`: their attributes, and the
    /// span status they imply (JSON-RPC error, tool error, no response,
    /// HTTP status rules).
    fn msg_outcome(
        &mut self,
        ex: &Exchange,
        m: &Msg,
        ctx: &ExCtx,
        long_lived: bool,
        attrs: &mut Vec<Attr>,
    ) -> SpanStatus {
        // Tasks (request side).
        let params = &*m.params;
        if params.task_is_object {
            push(attrs, a::TASK_LEGACY_REQUESTED, AttrValue::Bool(true));
        }
        let mut task = Task {
            id: if is_tasks_method(&m.method) {
                params.task_id.as_ref().and_then(as_string)
            } else {
                None
            },
            status: None,
        };
        // Handles used.
        let mut used = Handles::default();
        used.extend(&params.arguments);
        if let Some(t) = &params.task_id {
            used.push("taskId", t);
        }
        // Response.
        let resp = m.response.as_ref();
        let (mut status, has_rpc_error) = rpc_outcome(ex, m, attrs);
        let mut minted = Handles::default();
        if let Some(r) = resp.and_then(|r| r.msg.result.as_ref()) {
            result_attrs(ctx, m, r, &mut task, &mut minted, &mut status, attrs);
        }
        if let Some(t) = task.id {
            push(
                attrs,
                a::TASK_ID,
                AttrValue::Str(cap(&t).to_string().into()),
            );
        }
        if let Some(s) = task.status {
            push(
                attrs,
                a::TASK_STATUS,
                AttrValue::Str(cap(&s).to_string().into()),
            );
        }
        // A result that echoes a handle of the arguments did not mint it.
        minted.list.retain(|h| !used.list.contains(h));
        self.stats.handles_dropped += used.dropped + minted.dropped;
        if !used.list.is_empty() {
            push(attrs, a::HANDLES_USED, AttrValue::StrArray(used.list));
        }
        if !minted.list.is_empty() {
            push(attrs, a::HANDLES_MINTED, AttrValue::StrArray(minted.list));
        }
        // No JSON-RPC response although the HTTP exchange finished.
        if m.is_request() && resp.is_none() && !has_rpc_error && ex.status.is_some() {
            push(attrs, a::RPC_RESPONSE_MISSING, AttrValue::Bool(true));
            self.stats.rpc_responses_missing += 1;
            let ok_2xx = ex
                .status
                .is_some_and(|s| (200..300).contains(&s) && s != 202);
            let damaged = ex.response_invalid || ex.flags.body_truncated;
            if ok_2xx && !long_lived && !damaged {
                push_str(attrs, a::ERROR_TYPE, "no_response");
                status = SpanStatus::Error("no_response".into());
            }
        }
        http_status_rule(ex, ctx, has_rpc_error, &mut status, attrs);
        status
    }

    /// The captured bodies of `m`: the request message, and its response
    /// (or the exchange's `id: null` error when it has none).
    fn msg_bodies(&mut self, ex: &Exchange, m: &Msg, attrs: &mut Vec<Attr>) {
        if !self.cfg.capture_bodies {
            return;
        }
        let rule = &self.cfg.handle_rule;
        let max = self.cfg.capture_body_max_bytes;
        let mut truncated = false;
        if let Some(body) = &m.body {
            let (s, t) = capture(body, rule, max);
            truncated = t;
            push(attrs, a::REQUEST_BODY, AttrValue::Str(s.into()));
        }
        if let Some(r) = m.response.as_ref() {
            if let Some(b) = &r.msg.body {
                let (s, t) = capture(b, rule, max);
                truncated |= t;
                push(attrs, a::RESPONSE_BODY, AttrValue::Str(s.into()));
            }
        } else if let Some(e) = ex.null_error.as_ref().and_then(|e| e.body.as_ref()) {
            let (s, t) = capture(e, rule, max);
            truncated |= t;
            push(attrs, a::RESPONSE_BODY, AttrValue::Str(s.into()));
        }
        if truncated {
            self.stats.bodies_capture_truncated += 1;
            push(attrs, a::BODY_CAPTURE_TRUNCATED, AttrValue::Bool(true));
        }
    }

    /// Trace context of a message span: `_meta.traceparent` (SEP-414), else
    /// the request headers.
    fn msg_trace(&mut self, meta: &Meta, ctx: &ExCtx, span: &mut Span) {
        let mut from_meta = false;
        if let Some(tp) = meta.traceparent.as_deref() {
            let state = || meta.tracestate.clone().unwrap_or_default();
            from_meta = apply_traceparent(span, tp, state, "meta");
            if from_meta {
                self.stats.trace_from_meta += 1;
            } else {
                self.stats.traceparent_invalid += 1;
            }
        }
        if !from_meta {
            self.apply_header_trace(&ctx.hdrs, span);
        }
    }
}

/// Kind, method, JSON-RPC id and version, batch position of `m` (the id
/// moves out of `m`).
fn msg_head_attrs(ex: &Exchange, m: &mut Msg, batch_size: usize, attrs: &mut Vec<Attr>) {
    push_str(
        attrs,
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
        _ => known_or_owned(cap(&m.method), known_method),
    };
    push(attrs, a::MCP_METHOD_NAME, AttrValue::Str(method_text));
    if let Some(id) = m.id.as_mut().and_then(take_id_string) {
        push(attrs, a::JSONRPC_REQUEST_ID, AttrValue::Str(id));
    }
    if let Some(v) = &m.jsonrpc {
        push(
            attrs,
            a::JSONRPC_PROTOCOL_VERSION,
            AttrValue::Str(v.clone().into()),
        );
    }
    if ex.batch {
        push(
            attrs,
            a::BATCH_SIZE,
            AttrValue::Int(sat_i64(batch_size as u64)),
        );
        if let Some(i) = m.batch_index {
            push(attrs, a::BATCH_INDEX, AttrValue::Int(sat_i64(i)));
        }
    }
}

/// Span name and target attributes (`gen_ai.tool.name`, `gen_ai.prompt.name`,
/// `mcp.resource.uri`), pushed empty: [`Decoder::msg_span`] fills them in.
fn msg_target(m: &Msg, attrs: &mut Vec<Attr>) -> Target {
    let method = cap(&m.method);
    let pname = m.params.name.as_deref();
    let target_attr = match m.kind {
        Some(Method::ToolsCall) => {
            push_str(attrs, a::GEN_AI_OPERATION_NAME, "execute_tool");
            Some(a::GEN_AI_TOOL_NAME)
        }
        Some(Method::PromptsGet) => Some(a::GEN_AI_PROMPT_NAME),
        _ => None,
    };
    let mut name_slot = None;
    let name = match (target_attr, pname) {
        (Some(k), Some(n)) => {
            name_slot = Some(attrs.len());
            push_str(attrs, k, "");
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
        push_str(attrs, a::MCP_RESOURCE_URI, "");
        attrs.len() - 1
    });
    Target {
        name,
        name_slot,
        uri_slot,
    }
}

/// `mcp.protocol.version`: the header, else `_meta`, else `initialize`'s
/// `protocolVersion`, else the session's.
fn msg_protocol_version(m: &Msg, ctx: &ExCtx, is_init: bool, attrs: &mut Vec<Attr>) {
    let session_info = ctx.session_info.as_deref();
    let pv = ctx
        .hdr_pv
        .as_deref()
        .or(m.params.meta.protocol_version.as_deref())
        .or_else(|| {
            is_init
                .then_some(m.params.protocol_version.as_deref())
                .flatten()
        })
        .or_else(|| session_info.and_then(|i| i.protocol_version.as_deref()));
    if let Some(pv) = pv {
        push(
            attrs,
            a::MCP_PROTOCOL_VERSION,
            AttrValue::Str(known_or_owned(cap(pv), known_version)),
        );
    }
}

/// The JSON-RPC error of `m` (its own, else the exchange's `id: null` error
/// when `m` got no response): its attributes, the status it implies, and
/// whether there was one.
fn rpc_outcome(ex: &Exchange, m: &Msg, attrs: &mut Vec<Attr>) -> (SpanStatus, bool) {
    let resp = m.response.as_ref();
    let own_err: Option<&RpcError> = resp.and_then(|r| r.msg.error.as_deref());
    let null_err = ex.null_error.as_ref().and_then(|e| e.error.as_deref());
    let Some(err) = own_err.or(if resp.is_none() { null_err } else { None }) else {
        return (SpanStatus::Unset, false);
    };
    let status = rpc_error_attrs(err, attrs);
    if own_err.is_none() {
        push(attrs, a::RPC_ERROR_ID_NULL, AttrValue::Bool(true));
    }
    (status, true)
}

/// The attributes of a `result` object: tool error, `resultType`, `ttlMs`,
/// `cacheScope`; the task it names and the handles it mints.
fn result_attrs(
    ctx: &ExCtx,
    m: &Msg,
    r: &ResultFields,
    task: &mut Task,
    minted: &mut Handles,
    status: &mut SpanStatus,
    attrs: &mut Vec<Attr>,
) {
    if r.is_error {
        push_str(attrs, a::ERROR_TYPE, "tool_error");
        *status = SpanStatus::Error("tool_error".into());
    }
    match &r.result_type {
        Some(t) => push(
            attrs,
            a::RESULT_TYPE,
            AttrValue::Str(known_or_owned(t, known_result_type)),
        ),
        None if ctx.era == Era::Modern => push_str(attrs, a::RESULT_TYPE, "complete"),
        None => {}
    }
    if let Some(t) = r.ttl_ms {
        push(attrs, a::TTL_MS, AttrValue::Int(t));
    }
    if let Some(s) = &r.cache_scope {
        push(
            attrs,
            a::CACHE_SCOPE,
            AttrValue::Str(known_or_owned(s, known_cache_scope)),
        );
    }
    let wrapped = r.task.as_ref();
    if let Some(t) = r.task_id.as_ref().and_then(as_string) {
        task.id = Some(t);
        task.status = r.status.clone();
    } else if let Some(t) = wrapped.and_then(|w| w.task_id.as_ref()).and_then(as_string) {
        task.id = Some(t);
        task.status = wrapped.and_then(|w| w.status.clone());
    } else if is_tasks_method(&m.method) {
        task.status = r.status.clone();
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

/// The span of `m` with its ids, name, times, status, attributes and events
/// (no trace context yet); `name` from [`msg_target`], else the
/// method, moved out of `m`.
fn msg_span_shell(
    ex: &Exchange,
    m: &mut Msg,
    ctx: &ExCtx,
    name: Option<String>,
    status: SpanStatus,
    attrs: Vec<Attr>,
    events: Vec<SpanEvent>,
) -> Span {
    let batch_idx = m.batch_index.unwrap_or(0);
    let (span_id, trace_id) = derive_ids(
        &ex.conn.client,
        &ex.conn.server,
        ex.conn.client_isn,
        ex.index,
        batch_idx,
    );
    let end = m
        .response
        .as_ref()
        .map(|r| r.ts)
        .unwrap_or(ctx.end_ts)
        .max(ex.ts_first);
    let name = name.unwrap_or_else(|| {
        if cap(&m.method).len() == m.method.len() {
            std::mem::take(&mut m.method).into_string()
        } else {
            cap(&m.method).to_string()
        }
    });
    Span {
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
    }
}

/// Applies a W3C `traceparent` value to `span`: its trace id, the caller's span
/// as parent, the `tracestate` that `state` gives, and `mcptap.trace.source` =
/// `source` (`header` or `meta`). `false` when the value is invalid: the span
/// keeps its own ids and is flagged `mcptap.trace.invalid`.
fn apply_traceparent(
    span: &mut Span,
    tp: &str,
    state: impl FnOnce() -> String,
    source: &'static str,
) -> bool {
    match parse_traceparent(tp) {
        Some(p) => {
            span.trace_id = p.trace_id;
            span.parent_span_id = Some(p.span_id);
            span.trace_state = state();
            push_str(&mut span.attributes, a::TRACE_SOURCE, source);
            true
        }
        None => {
            push(
                &mut span.attributes,
                a::TRACE_INVALID,
                AttrValue::Bool(true),
            );
            false
        }
    }
}
