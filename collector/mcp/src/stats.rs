//! Counters describing what the decoder saw, dropped and repaired.
//!
//! All counters are plain `u64` totals since the decoder was created; the binary
//! exports them as monotonic counters.

use std::collections::BTreeMap;

/// Most distinct method names kept in [`McpStats::methods`]; later names are
/// counted under [`McpStats::OTHER_METHOD`].
pub const MAX_METHOD_KEYS: usize = 256;

/// Decoder counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct McpStats {
    /// HTTP requests received (`HttpEvent::Request`).
    pub http_requests: u64,
    /// HTTP exchanges turned into spans (by response end, close, eviction or finish).
    pub exchanges_done: u64,
    /// Spans emitted.
    pub spans: u64,
    /// JSON-RPC requests (with `id`) found in request bodies.
    pub jsonrpc_requests: u64,
    /// JSON-RPC notifications (no `id`) found in request bodies.
    pub jsonrpc_notifications: u64,
    /// JSON-RPC responses POSTed by the client (answers to server→client requests).
    pub posted_responses: u64,
    /// Exchanges whose request body held no JSON-RPC request/notification (http spans).
    pub http_only_exchanges: u64,
    /// Requests + notifications per method name (at most [`MAX_METHOD_KEYS`] keys;
    /// names are cut to 128 bytes).
    pub methods: BTreeMap<String, u64>,
    /// Final responses with status 1xx (should not happen: 1xx are interim).
    pub status_1xx: u64,
    /// Final responses with status 2xx.
    pub status_2xx: u64,
    /// Final responses with status 3xx.
    pub status_3xx: u64,
    /// Final responses with status 4xx.
    pub status_4xx: u64,
    /// Final responses with status 5xx.
    pub status_5xx: u64,
    /// Final responses with any other status code.
    pub status_other: u64,
    /// Exchanges that ended with no response head at all.
    pub status_none: u64,
    /// Exchanges whose request carried `Mcp-Session-Id` (legacy session use).
    pub legacy_session_requests: u64,
    /// Responses that set `Mcp-Session-Id` (sessions minted).
    pub sessions_minted: u64,
    /// Sessions evicted from the session map because it was full.
    pub sessions_evicted: u64,
    /// Sessions removed by a successful DELETE.
    pub sessions_deleted: u64,
    /// `initialize` requests.
    pub initialize_calls: u64,
    /// Exchanges classified legacy (no or pre-2026 `MCP-Protocol-Version` header).
    pub era_legacy: u64,
    /// Exchanges classified modern.
    pub era_modern: u64,
    /// Non-empty request bodies that were not valid JSON.
    pub request_json_errors: u64,
    /// Non-empty response bodies that were not valid JSON.
    pub response_json_errors: u64,
    /// Non-empty SSE `data` fields that were not valid JSON.
    pub sse_json_errors: u64,
    /// Valid JSON values that were not JSON-RPC messages (skipped).
    pub invalid_jsonrpc: u64,
    /// JSON-RPC responses whose id matched no request of their exchange.
    pub unmatched_responses: u64,
    /// Requests that got an HTTP response but no JSON-RPC response with their id.
    pub rpc_responses_missing: u64,
    /// Exchanges evicted because `max_pending` was reached.
    pub pending_evicted: u64,
    /// Exchanges still pending when the connection closed with no response head.
    pub closed_without_response: u64,
    /// Exchanges still pending at `finish`.
    pub pending_at_finish: u64,
    /// Response/SSE events for an exchange the decoder does not know (evicted, or
    /// the request was never seen).
    pub orphan_events: u64,
    /// Request bodies that were JSON-RPC batches (arrays).
    pub batches: u64,
    /// Messages inside those batches.
    pub batch_messages: u64,
    /// SSE events seen (all, including priming and empty ones).
    pub sse_events: u64,
    /// SSE JSON-RPC notifications seen.
    pub sse_notifications: u64,
    /// SSE server→client JSON-RPC requests seen.
    pub sse_server_requests: u64,
    /// SSE notifications not recorded as span events (cap, or after the response).
    pub span_events_dropped: u64,
    /// `traceparent` values (header or `_meta`) rejected as malformed.
    pub traceparent_invalid: u64,
    /// Spans whose parent came from `_meta.traceparent`.
    pub trace_from_meta: u64,
    /// Spans whose parent came from the `traceparent` header.
    pub trace_from_header: u64,
    /// Modern requests with a routing header that disagreed with the body.
    pub routing_mismatch: u64,
    /// Modern requests missing a required routing header.
    pub routing_missing: u64,
    /// `Mcp-Name` values with a base64 sentinel that did not decode to UTF-8.
    pub mcp_name_decode_errors: u64,
    /// Requests whose `client.address` came from forwarding headers sent by
    /// a trusted proxy (not the socket peer).
    pub client_address_forwarded: u64,
    /// Requests with something wrong in their forwarding headers (all reasons).
    pub client_address_anomalies: u64,
    /// The same by reason (`mcptap_wire::forwarded::Anomaly::as_str`).
    pub client_address_anomalies_by_reason: BTreeMap<&'static str, u64>,
    /// Upstream legs (requests forwarded by a trusted proxy) linked to their
    /// client leg in the same capture.
    pub upstream_legs_linked: u64,
    /// Upstream legs whose client leg is not in the capture (a pod sidecar's
    /// usual view) or was not found.
    pub upstream_legs_unlinked: u64,
    /// Times the client-leg index was full and started over.
    pub hop_index_resets: u64,
    /// Captured bodies cut at `capture_body_max_bytes`.
    pub bodies_capture_truncated: u64,
    /// Handle values dropped by the per-span cap or the depth limit.
    pub handles_dropped: u64,
}

impl McpStats {
    /// Key used in [`McpStats::methods`] once [`MAX_METHOD_KEYS`] names are known.
    pub const OTHER_METHOD: &'static str = "(other)";

    /// Counts one message of `method`.
    pub(crate) fn count_method(&mut self, method: &str) {
        let mut end = method.len().min(128);
        while !method.is_char_boundary(end) {
            end -= 1;
        }
        let key = method.get(..end).unwrap_or("");
        if let Some(n) = self.methods.get_mut(key) {
            *n += 1;
        } else if self.methods.len() < MAX_METHOD_KEYS {
            self.methods.insert(key.to_string(), 1);
        } else {
            *self
                .methods
                .entry(Self::OTHER_METHOD.to_string())
                .or_insert(0) += 1;
        }
    }

    /// Counts one final response status (`None`: no response at all).
    pub(crate) fn count_status(&mut self, status: Option<u16>) {
        match status {
            None => self.status_none += 1,
            Some(100..=199) => self.status_1xx += 1,
            Some(200..=299) => self.status_2xx += 1,
            Some(300..=399) => self.status_3xx += 1,
            Some(400..=499) => self.status_4xx += 1,
            Some(500..=599) => self.status_5xx += 1,
            Some(_) => self.status_other += 1,
        }
    }
}
