//! Body parsing: the JSON-RPC messages of request bodies, response bodies
//! and SSE `data` fields, applied to their exchange (responses matched to
//! requests by `id`, notifications and server requests attached as events).

use serde_json::Value;

use super::exchange::{Attached, Exchange, Msg, Outcome};
use super::span_attrs::push;
use super::texts::{id_string, number_attr_text};
use crate::attrs as a;
use crate::config::DecoderConfig;
use crate::json::{Body, cap};
use crate::protocol::Method;
use crate::redact::capture;
use crate::request::{self, ReqMsg};
use crate::response::{self, RespBody, RespMsg};
use crate::span::{Attr, AttrValue, SpanEvent};
use crate::stats::McpStats;

/// Reads the JSON-RPC messages of a request body into `ex` (one per message,
/// or the body as JSON for an HTTP-level span when bodies are captured).
pub(super) fn parse_request_body(
    ex: &mut Exchange,
    body: &[u8],
    cfg: &DecoderConfig,
    stats: &mut McpStats,
) {
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
            // A single message: one slot, not the four `push` reserves,
            // allocated directly (no growth step).
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
pub(super) fn absorb(
    ex: &mut Exchange,
    v: RespBody,
    ts: u64,
    cfg: &DecoderConfig,
    stats: &mut McpStats,
) {
    match v {
        RespBody::Batch(items) => {
            for item in items {
                absorb_one(ex, item, ts, cfg, stats);
            }
        }
        RespBody::Single(m) => absorb_one(ex, m, ts, cfg, stats),
    }
}

/// Applies one message of a response body or SSE `data` field: a notification
/// or server request is attached to the message it concerns, a response
/// matched to its request by `id`.
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

/// The span event of a notification or server request (progress and log
/// members as attributes).
fn make_event(method: &str, msg: &RespMsg, ts: u64, cfg: &DecoderConfig) -> SpanEvent {
    let mut attrs: Vec<Attr> = Vec::new();
    let params = msg.params.as_ref();
    match Method::parse(method) {
        Some(Method::NotificationsProgress) => {
            if let Some(p) = params.and_then(|p| p.progress.as_ref()) {
                push(&mut attrs, a::PROGRESS, AttrValue::Str(number_attr_text(p)));
            }
            if let Some(p) = params.and_then(|p| p.total.as_ref()) {
                push(
                    &mut attrs,
                    a::PROGRESS_TOTAL,
                    AttrValue::Str(number_attr_text(p)),
                );
            }
        }
        Some(Method::NotificationsMessage) => {
            if let Some(l) = params.and_then(|p| p.level.as_deref()) {
                push(
                    &mut attrs,
                    a::LOG_LEVEL,
                    AttrValue::Str(cap(l).to_string().into()),
                );
            }
            if let Some(l) = params.and_then(|p| p.logger.as_deref()) {
                push(
                    &mut attrs,
                    a::LOG_LOGGER,
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

/// Applies the JSON-RPC messages of one SSE event's `data` to `ex` (an empty
/// `data` is a priming event or keep-alive).
pub(super) fn absorb_sse_data(
    ex: &mut Exchange,
    data: &str,
    ts: u64,
    cfg: &DecoderConfig,
    stats: &mut McpStats,
) {
    if data.trim().is_empty() {
        return; // priming event or keep-alive
    }
    match response::parse_text(data, cfg.capture_bodies, &cfg.handle_rule) {
        Ok((v, _)) => absorb(ex, v, ts, cfg, stats),
        Err(_) => {
            stats.sse_json_errors += 1;
            ex.response_invalid = true;
        }
    }
}

/// Applies the JSON-RPC messages of a whole response body to `ex` (with
/// captured bodies, the body as JSON for an HTTP-level span).
pub(super) fn absorb_response_body(
    ex: &mut Exchange,
    body: &[u8],
    ts: u64,
    cfg: &DecoderConfig,
    stats: &mut McpStats,
) {
    if body.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    match response::parse(body, cfg.capture_bodies, &cfg.handle_rule) {
        Ok((v, whole)) => {
            if cfg.capture_bodies && ex.msgs.is_empty() {
                ex.response_json = whole;
            }
            absorb(ex, v, ts, cfg, stats);
        }
        Err(_) => {
            stats.response_json_errors += 1;
            ex.response_invalid = true;
        }
    }
}
