//! The exchange table: one [`Exchange`] per HTTP request awaiting (the rest
//! of) its response, keyed by (flow, request index), with the arrival order
//! used for eviction and [`Decoder::finish`](super::Decoder::finish). Also
//! the types an exchange is made of: its JSON-RPC messages ([`Msg`]), their
//! responses ([`Outcome`]) and attached SSE messages ([`Attached`]).

use super::hops::Hop;
use mcptap_wire::{ConnMeta, FlowId, Headers, HttpRequest, MsgFlags};
use serde_json::Value;

use super::pending::{Order, Pending};
use crate::protocol::Method;
use crate::request::Params;
use crate::response::RespMsg;
use crate::span::{SpanEvent, Text};

/// Why an exchange ended without a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EndReason {
    /// The response ended normally.
    Response,
    /// The connection closed.
    Closed,
    /// End of input ([`Decoder::finish`](super::Decoder::finish)).
    CaptureEnd,
    /// Evicted from the pending table.
    Evicted,
}

/// Notifications and server requests attributed to one span.
#[derive(Debug, Default)]
pub(super) struct Attached {
    pub(super) events: Vec<SpanEvent>,
    pub(super) dropped: u64,
    pub(super) notifications: u64,
    pub(super) server_requests: u64,
}

/// A JSON-RPC response received for a message.
#[derive(Debug)]
pub(super) struct Outcome {
    pub(super) msg: RespMsg,
    pub(super) ts: u64,
}

/// One JSON-RPC request or notification from a request body.
#[derive(Debug)]
pub(super) struct Msg {
    /// Uncut; a known method is its `'static` text.
    pub(super) method: Text,
    /// `method` as a known [`Method`], when it is one.
    pub(super) kind: Option<Method>,
    /// `Some` when the message has an `id` member (a request), even `null`.
    pub(super) id: Option<Value>,
    /// `jsonrpc` when a string other than `2.0` (cut).
    pub(super) jsonrpc: Option<String>,
    /// The `params` members the decoder reads.
    pub(super) params: Box<Params>,
    /// The whole message, kept only when bodies are captured.
    pub(super) body: Option<Value>,
    pub(super) batch_index: Option<u64>,
    pub(super) response: Option<Outcome>,
    pub(super) attached: Attached,
}

impl Msg {
    pub(super) fn is_request(&self) -> bool {
        self.id.is_some()
    }
    pub(super) fn awaiting(&self) -> bool {
        self.is_request() && self.response.is_none()
    }
}

/// One HTTP request and what has arrived of its response.
#[derive(Debug)]
pub(super) struct Exchange {
    pub(super) seq: u64,
    pub(super) conn: ConnMeta,
    pub(super) index: u64,
    pub(super) method: String,
    pub(super) target: String,
    pub(super) version_minor: u8,
    pub(super) headers: Headers,
    pub(super) ts_first: u64,
    pub(super) flags: MsgFlags,
    pub(super) msgs: Vec<Msg>,
    pub(super) batch: bool,
    pub(super) posted_responses: u64,
    pub(super) request_invalid: bool,
    pub(super) request_json: Option<Value>,
    pub(super) status: Option<u16>,
    pub(super) resp_headers: Headers,
    pub(super) sse: bool,
    pub(super) sse_events: u64,
    pub(super) response_invalid: bool,
    pub(super) response_json: Option<Value>,
    pub(super) null_error: Option<RespMsg>,
    pub(super) http_attached: Attached,
    pub(super) last_ts: u64,
    /// [`super::hops::digest`] of the request (set by the decoder on arrival).
    pub(super) digest: u64,
    /// Which leg of a proxied request this is.
    pub(super) hop: Hop,
}

/// The pending exchanges: at most the configured `max_pending` (the caller
/// evicts the oldest first, [`Exchanges::pop_oldest`]).
#[derive(Debug, Default)]
pub(super) struct Exchanges {
    /// Boxed: the table moves pointers, not whole exchanges.
    pending: Pending<Box<Exchange>>,
    /// Arrival order of the pending exchanges (eviction, `finish`).
    order: Order,
    next_seq: u64,
}

impl Exchanges {
    /// Exchanges currently pending.
    pub(super) fn len(&self) -> usize {
        self.pending.len()
    }

    /// The pending exchange of request `index` on `flow`.
    pub(super) fn get_mut(&mut self, flow: FlowId, index: u64) -> Option<&mut Exchange> {
        self.pending.get_mut(flow, index).map(|b| &mut **b)
    }

    /// Removes the pending exchange of request `index` on `flow`.
    pub(super) fn remove(&mut self, flow: FlowId, index: u64) -> Option<Box<Exchange>> {
        let ex = self.pending.remove(flow, index)?;
        self.order.remove(ex.seq);
        Some(ex)
    }

    /// Removes every pending exchange of `flow`, in request-index order.
    #[allow(clippy::vec_box)] // the boxes the table holds, moved out as they are
    pub(super) fn take_flow(&mut self, flow: FlowId) -> Vec<Box<Exchange>> {
        let taken = self.pending.take_flow(flow);
        for ex in &taken {
            self.order.remove(ex.seq);
        }
        taken
    }

    /// Takes the oldest key off the arrival order: `None` when none is left,
    /// else the exchange it named (`None` if no longer pending).
    pub(super) fn pop_oldest(&mut self) -> Option<Option<Box<Exchange>>> {
        let (f, i) = self.order.pop_first()?;
        Some(self.pending.remove(f, i))
    }

    /// The keys of the pending exchanges, oldest first.
    pub(super) fn keys_in_order(&self) -> Vec<(FlowId, u64)> {
        self.order.keys().collect()
    }

    /// A new exchange for `req` (not yet pending: [`Exchanges::insert`]),
    /// with the next arrival number, and the request's body.
    pub(super) fn admit(&mut self, conn: ConnMeta, req: HttpRequest) -> (Box<Exchange>, Vec<u8>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        fresh(seq, conn, req)
    }

    /// Makes `ex` pending under its flow and request index.
    pub(super) fn insert(&mut self, ex: Box<Exchange>) {
        let key = (ex.conn.flow, ex.index);
        self.order.push(ex.seq, key);
        self.pending.insert(key.0, key.1, ex);
    }
}

/// A new exchange box for `req`, and the request's body.
fn fresh(seq: u64, conn: ConnMeta, req: HttpRequest) -> (Box<Exchange>, Vec<u8>) {
    let last_ts = req.ts_last.max(req.ts_first);
    let ex = Box::new(Exchange {
        seq,
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
        digest: 0,
        hop: Hop::Direct,
    });
    (ex, req.body)
}
