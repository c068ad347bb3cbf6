//! The decoder state machine: pairs [`HttpEvent`]s per (flow, request index) into
//! exchanges, parses JSON-RPC bodies and SSE data, matches responses to requests
//! by JSON-RPC `id`, and emits one [`Span`] per JSON-RPC request or notification
//! (or one HTTP-level span for an exchange that carried none).
//!
//! Memory is bounded: at most `max_pending` exchanges and `max_sessions` session
//! entries are kept (oldest evicted and counted); span events are capped per span;
//! bodies are as large as the HTTP layer's cap allows.
//!
//! Rooms: `exchange.rs` (the exchange table and what an exchange holds),
//! `sessions.rs` (the legacy session table and its cache), `headers.rs`
//! (request-header scanning), `body.rs` (body parsing, response matching),
//! `spans.rs` and `span_attrs.rs` (span building), `texts.rs` (attribute
//! texts), `pending.rs` (pending exchanges by flow, arrival order).

mod body;
mod client;
mod exchange;
mod headers;
mod hops;
mod pending;
mod sessions;
mod span_attrs;
mod spans;
mod texts;

use std::net::IpAddr;
use std::sync::Arc;

use mcptap_wire::forwarded::ClientSource;
use mcptap_wire::{ConnMeta, FlowId, HttpEvent, HttpRequest, SseEvent};

use crate::attrs as a;
use crate::config::DecoderConfig;
use crate::ids::derive_ids;
use crate::protocol::Method;
use crate::request::Caps;
use crate::span::{AttrValue, Span, Text};
use crate::stats::McpStats;
use exchange::{EndReason, Exchange, Exchanges};
use hops::{Hop, Leg};
use sessions::{SessionInfo, SessionTable};
use texts::{AddrTexts, LastText};

/// Decodes a stream of [`HttpEvent`]s into MCP server spans. Pure: no I/O, no
/// clock; never panics on any input.
#[derive(Debug)]
pub struct Decoder {
    cfg: DecoderConfig,
    stats: McpStats,
    /// The exchanges awaiting (the rest of) a response.
    exchanges: Exchanges,
    /// Client identity per legacy session id.
    sessions: SessionTable,
    /// Address texts formatted once and shared by the spans of every
    /// connection with the same endpoints.
    texts: AddrTexts,
    /// Text of the last `User-Agent` value.
    user_agent: LastText,
    /// `cfg.instance_id`, shared by every span.
    instance_id: Option<Arc<str>>,
    /// Known proxies and the client legs they may still forward.
    hops: hops::Hops,
    /// The last header-given client identity (`decoder/client.rs`).
    last_client: Option<Box<client::LastClient>>,
    /// Scratch buffer of that cache's key.
    client_key: Vec<u8>,
}

impl Decoder {
    /// A decoder with configuration `cfg`.
    pub fn new(cfg: DecoderConfig) -> Self {
        Decoder {
            stats: McpStats::default(),
            exchanges: Exchanges::default(),
            sessions: SessionTable::new(),
            texts: AddrTexts::new(),
            user_agent: LastText::default(),
            instance_id: cfg.instance_id.as_deref().map(Arc::from),
            hops: hops::Hops::default(),
            last_client: None,
            client_key: Vec::new(),
            cfg,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &McpStats {
        &self.stats
    }

    /// Exchanges currently awaiting (the rest of) a response.
    pub fn pending_len(&self) -> usize {
        self.exchanges.len()
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
                let Some(ex) = self.exchanges.get_mut(flow, index) else {
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
            } => self.on_sse_event(flow, index, ts, &event),
            HttpEvent::ResponseEnd {
                flow,
                index,
                ts,
                body,
                flags,
            } => {
                let Some(mut ex) = self.exchanges.remove(flow, index) else {
                    self.stats.orphan_events += 1;
                    return;
                };
                ex.flags.merge(flags);
                ex.last_ts = ex.last_ts.max(ts);
                body::absorb_response_body(&mut ex, &body, ts, &self.cfg, &mut self.stats);
                self.finalize(ex, ts, EndReason::Response, out);
            }
            // A TLS connection (not decrypted): the pipeline records it.
            HttpEvent::Tls { .. } => {}
            HttpEvent::Closed { flow, ts } => {
                // The flow's exchanges, in request-index order.
                for ex in self.exchanges.take_flow(flow) {
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
        for (f, i) in self.exchanges.keys_in_order() {
            if let Some(ex) = self.exchanges.remove(f, i) {
                self.stats.pending_at_finish += 1;
                let end = ex.last_ts;
                self.finalize(ex, end, EndReason::CaptureEnd, out);
            }
        }
    }

    fn on_sse_event(&mut self, flow: FlowId, index: u64, ts: u64, event: &SseEvent) {
        let Some(ex) = self.exchanges.get_mut(flow, index) else {
            self.stats.orphan_events += 1;
            return;
        };
        ex.sse_events += 1;
        ex.last_ts = ex.last_ts.max(ts);
        self.stats.sse_events += 1;
        body::absorb_sse_data(ex, &event.data, ts, &self.cfg, &mut self.stats);
    }

    fn on_request(&mut self, conn: ConnMeta, req: HttpRequest, out: &mut Vec<Span>) {
        self.stats.http_requests += 1;
        if let Some(old) = self.exchanges.remove(conn.flow, req.index) {
            // Same (flow, index) twice: the first can no longer be answered.
            self.stats.pending_evicted += 1;
            let end = old.last_ts;
            self.finalize(old, end, EndReason::Evicted, out);
        }
        while self.exchanges.len() >= self.cfg.max_pending.max(1) {
            let Some(oldest) = self.exchanges.pop_oldest() else {
                break;
            };
            if let Some(old) = oldest {
                self.stats.pending_evicted += 1;
                let end = old.last_ts;
                self.finalize(old, end, EndReason::Evicted, out);
            }
        }
        let (mut ex, req_body) = self.exchanges.admit(conn, req);
        let server = ex.conn.server.ip();
        let to_proxy = self.hops.is_proxy(server);
        if to_proxy || self.hops.needs_digest() {
            ex.digest = hops::digest(&ex.method, &ex.target, &req_body);
        }
        body::parse_request_body(&mut ex, &req_body, &self.cfg, &mut self.stats);
        if to_proxy {
            let head = hops::head_digest(&ex.method, &ex.target);
            self.index_client_leg(server, (ex.digest, head), ex.conn.flow, ex.index);
        }
        self.exchanges.insert(ex);
    }

    /// Turns a finished exchange into its spans (one per JSON-RPC message,
    /// else one HTTP-level span).
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
        let mut ctx = self.exchange_context(&ex, &headers, end_ts, reason);
        if let Some(id) = ctx.client_via.filter(|id| id.source != ClientSource::Peer) {
            ex.hop = self.link_upstream_leg(&ex, id.address);
        }
        let first_span = out.len();
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
        let to_proxy = self.hops.is_proxy(ex.conn.server.ip());
        for span in out.iter_mut().skip(first_span) {
            hops_attrs(ex.hop, to_proxy, span);
        }
    }

    /// Indexes a request to proxy `proxy` as a client leg (counted when the
    /// index had to start over).
    fn index_client_leg(&mut self, proxy: IpAddr, digests: (u64, u64), flow: FlowId, index: u64) {
        if !self.hops.add_client_leg(proxy, digests, flow, index) {
            self.stats.hop_index_resets += 1;
        }
    }

    /// `ex` was forwarded by its socket peer (a trusted proxy) for `client`:
    /// finds its client leg among the pending requests to that proxy and
    /// marks it; the upstream leg's parent is the client leg's span.
    fn link_upstream_leg(&mut self, ex: &Exchange, client: IpAddr) -> Hop {
        let proxy = ex.conn.client.ip();
        if self.hops.learn_proxy(proxy) {
            // Requests to it that arrived before it was known, oldest first.
            for (f, i) in self.exchanges.keys_in_order() {
                let Some(p) = self.exchanges.get_mut(f, i) else {
                    continue;
                };
                if p.conn.server.ip() == proxy {
                    let d = (p.digest, hops::head_digest(&p.method, &p.target));
                    self.index_client_leg(proxy, d, f, i);
                }
            }
        }
        if !self.hops.seen_client_leg() {
            // No request to a proxy in the data (a pod sidecar): nothing to link to.
            self.stats.upstream_legs_unlinked += 1;
            return Hop::Upstream { parent: None };
        }
        let (exchanges, ts) = (&mut self.exchanges, ex.ts_first);
        // No body forwarded (the instance answered from the head alone):
        // matched on method and target.
        let by_head = ex.msgs.is_empty() && ex.flags.incomplete;
        let key = if by_head {
            hops::head_digest(&ex.method, &ex.target)
        } else {
            ex.digest
        };
        let leg =
            self.hops
                .take_client_leg(proxy, key, by_head, |f, i| match exchanges.get_mut(f, i) {
                    Some(c) if c.hop != Hop::Direct => Leg::Stale,
                    Some(c) if c.conn.client.ip() == client && c.ts_first <= ts => Leg::Take,
                    Some(_) => Leg::Other,
                    None => Leg::Stale,
                });
        let Some((f, i)) = leg else {
            self.stats.upstream_legs_unlinked += 1;
            return Hop::Upstream { parent: None };
        };
        self.stats.upstream_legs_linked += 1;
        let Some(c) = self.exchanges.get_mut(f, i) else {
            return Hop::Upstream { parent: None };
        };
        c.hop = Hop::Client;
        let (span, trace) = derive_ids(
            &c.conn.client,
            &c.conn.server,
            c.conn.client_isn,
            c.index,
            0,
        );
        Hop::Upstream {
            parent: Some((trace, span)),
        }
    }

    /// Updates the session table after exchange `ex`: a successful
    /// `initialize` that minted session `minted` records the client's
    /// identity; a successful DELETE of session `sent` is counted.
    fn update_sessions(&mut self, ex: &Exchange, minted: Option<&str>, sent: Option<&str>) {
        let ok = ex.status.is_some_and(|s| (200..300).contains(&s));
        if ex.method.eq_ignore_ascii_case("DELETE") && ok {
            // The entry stays (the map is bounded by max_sessions): a GET stream of the
            // same session usually ends after the DELETE and still needs the identity.
            if sent.is_some_and(|id| self.sessions.contains(id)) {
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
        let entry = SessionInfo {
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
        self.stats.sessions_evicted += self.sessions.insert(id, entry, self.cfg.max_sessions);
    }
}

/// `mcptap.hop` on a span of a proxied request's leg; an upstream leg linked
/// to its client leg becomes that span's child, in its trace unless the
/// request carried its own trace context (then both legs share it).
fn hops_attrs(hop: Hop, to_proxy: bool, span: &mut Span) {
    let Some(attr) = hop.attr(to_proxy) else {
        return;
    };
    span.attributes
        .push((a::HOP, AttrValue::Str(Text::Static(attr))));
    if let Hop::Upstream {
        parent: Some((trace, parent)),
    } = hop
    {
        if !span.attributes.iter().any(|(k, _)| *k == a::TRACE_SOURCE) {
            span.trace_id = trace;
        }
        span.parent_span_id = Some(parent);
    }
}
