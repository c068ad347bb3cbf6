//! Attributes every span of an exchange shares ([`Decoder::base_attrs`]), the
//! routing-header checks, and the status rules (JSON-RPC errors, HTTP 5xx,
//! no response); `push` and friends append attributes.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

use super::Decoder;
use super::exchange::{Attached, EndReason, Exchange};
use super::spans::ExCtx;
use super::texts::{known_or_owned, known_path, number_text, url_path};
use crate::attrs as a;
use crate::json::cap;
use crate::protocol::{Era, Method, NameParam, error_code, known_method, trim};
use crate::redact::{REDACTED, looks_like_credential};
use crate::request::Params;
use crate::response::RpcError;
use crate::routing::{Check, decode_header_value, param_header_names};
use crate::span::{Attr, AttrValue, SpanEvent, SpanStatus, Text};
use mcptap_wire::forwarded::ClientSource;

impl Decoder {
    /// Attributes shared by every span of an exchange; `last` for the
    /// exchange's last span, which takes the per-exchange strings of `ctx`
    /// instead of copying them.
    pub(super) fn base_attrs(
        &self,
        ex: &Exchange,
        ctx: &mut ExCtx,
        last: bool,
        attrs: &mut Vec<Attr>,
    ) {
        http_attrs(ex, ctx, attrs);
        self.exchange_attrs(ex, ctx, last, attrs);
    }

    /// The exchange's MCP-level attributes shared by its spans: era,
    /// session, response shape, damage flags and routing headers.
    fn exchange_attrs(&self, ex: &Exchange, ctx: &mut ExCtx, last: bool, attrs: &mut Vec<Attr>) {
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

    #[allow(clippy::too_many_arguments)]
    pub(super) fn routing_attrs(
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

/// The exchange's HTTP, URL and network attributes (OTel HTTP semconv).
fn http_attrs(ex: &Exchange, ctx: &ExCtx, attrs: &mut Vec<Attr>) {
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
    client_attrs(ex, ctx, attrs);
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
}

/// `client.*` (the original client), `network.peer.*` (the socket peer), and
/// how the client was found behind proxies and meshes.
fn client_attrs(ex: &Exchange, ctx: &ExCtx, attrs: &mut Vec<Attr>) {
    push(
        attrs,
        a::CLIENT_ADDRESS,
        AttrValue::Str(Text::Shared(Arc::clone(&ctx.client_ip))),
    );
    if let Some(port) = ctx.client_port {
        push(attrs, a::CLIENT_PORT, AttrValue::Int(i64::from(port)));
    }
    push(
        attrs,
        a::NETWORK_PEER_ADDRESS,
        AttrValue::Str(Text::Shared(Arc::clone(&ctx.peer_ip))),
    );
    push(
        attrs,
        a::NETWORK_PEER_PORT,
        AttrValue::Int(i64::from(ex.conn.client.port())),
    );
    if let Some(id) = &ctx.client_via {
        if id.source != ClientSource::Peer {
            push_str(attrs, a::CLIENT_ADDRESS_SOURCE, id.source.as_str());
            push(
                attrs,
                a::CLIENT_PROXY_HOPS,
                AttrValue::Int(i64::from(id.hops)),
            );
        }
        if let Some(anomaly) = id.anomaly {
            push_str(attrs, a::CLIENT_ADDRESS_ANOMALY, anomaly.as_str());
        }
    }
    if let Some((id, source)) = &ctx.workload {
        push(
            attrs,
            a::CLIENT_WORKLOAD,
            AttrValue::Str(Text::from(id.clone())),
        );
        push_str(attrs, a::CLIENT_WORKLOAD_SOURCE, source);
    }
    if let Some(rid) = ctx.hdrs.request_id {
        push(
            attrs,
            a::HTTP_REQUEST_HEADER_X_REQUEST_ID,
            AttrValue::StrArray(vec![super::headers::owned_text(rid)]),
        );
    }
}

/// Appends the attribute `k` = `v`.
pub(super) fn push(attrs: &mut Vec<Attr>, k: &'static str, v: AttrValue) {
    attrs.push((k, v));
}

/// Pushes a fixed string value without allocating.
pub(super) fn push_str(attrs: &mut Vec<Attr>, k: &'static str, v: &'static str) {
    push(attrs, k, AttrValue::Str(Text::Static(v)));
}

/// `s` itself when `last` (the exchange's last span takes it, leaving it
/// empty), else a copy.
pub(super) fn share(s: &mut String, last: bool) -> String {
    if last { std::mem::take(s) } else { s.clone() }
}

/// `n` as an `i64`, saturated.
pub(super) fn sat_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A string value, cut.
pub(super) fn as_string(v: &Value) -> Option<String> {
    v.as_str().map(|s| cap(s).to_string())
}

/// Sets `rpc.response.status_code`, `error.type` for a JSON-RPC error object and
/// returns the status it implies.
pub(super) fn rpc_error_attrs(err: &RpcError, attrs: &mut Vec<Attr>) -> SpanStatus {
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
                if looks_like_credential(m) {
                    REDACTED.to_string()
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
pub(super) fn http_status_rule(
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
pub(super) fn attach_attrs(att: Attached, attrs: &mut Vec<Attr>) -> Vec<SpanEvent> {
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
