//! Every span and span-event attribute name this crate emits, in one place.
//!
//! The table in `docs/attributes.md` documents each one (type, when set, source).
//! Names under `mcp.*`, `gen_ai.*`, `jsonrpc.*`, `rpc.*` and `error.type` follow the
//! OpenTelemetry MCP semantic conventions (semantic-conventions-genai `model/mcp`);
//! `http.*`, `url.*`, `user_agent.*`, `client.*`, `server.*` and `network.*` follow the
//! OTel HTTP server span conventions; `mcptap.*` names are this project's own.

// ---- OTel MCP semantic conventions -------------------------------------------------

/// JSON-RPC method, e.g. `tools/call` (Str).
pub const MCP_METHOD_NAME: &str = "mcp.method.name";
/// MCP protocol version, e.g. `2026-07-28` (Str).
pub const MCP_PROTOCOL_VERSION: &str = "mcp.protocol.version";
/// Legacy `Mcp-Session-Id` request header value (Str); never set for modern traffic
/// that did not send one.
pub const MCP_SESSION_ID: &str = "mcp.session.id";
/// `params.uri` of resource requests (Str).
pub const MCP_RESOURCE_URI: &str = "mcp.resource.uri";
/// JSON-RPC `id` in string form (Str); absent for notifications and null ids.
pub const JSONRPC_REQUEST_ID: &str = "jsonrpc.request.id";
/// The `jsonrpc` member when it is not `"2.0"` (Str).
pub const JSONRPC_PROTOCOL_VERSION: &str = "jsonrpc.protocol.version";
/// Tool name of `tools/call` (Str).
pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
/// Prompt name of `prompts/get` (Str).
pub const GEN_AI_PROMPT_NAME: &str = "gen_ai.prompt.name";
/// `execute_tool` for `tools/call` (Str).
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// JSON-RPC error code as a string, e.g. `-32602` (Str).
pub const RPC_RESPONSE_STATUS_CODE: &str = "rpc.response.status_code";
/// Error class (Str): JSON-RPC code, `tool_error`, HTTP 5xx code or `no_response`.
pub const ERROR_TYPE: &str = "error.type";

// ---- OTel HTTP / network semantic conventions ----------------------------------------

/// HTTP method, e.g. `POST` (Str).
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
/// HTTP status code of the final response (Int).
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
/// Request target path without query or fragment (Str).
pub const URL_PATH: &str = "url.path";
/// Always `http` (the capture sees cleartext only) (Str).
pub const URL_SCHEME: &str = "url.scheme";
/// `User-Agent` request header (Str).
pub const USER_AGENT_ORIGINAL: &str = "user_agent.original";
/// Client IP address (Str).
pub const CLIENT_ADDRESS: &str = "client.address";
/// Client TCP port (Int).
pub const CLIENT_PORT: &str = "client.port";
/// Socket peer address (Str): the captured connection's client endpoint, a
/// proxy when `client.address` came from forwarding headers (OTel HTTP server
/// semconv).
pub const NETWORK_PEER_ADDRESS: &str = "network.peer.address";
/// Socket peer port (Int).
pub const NETWORK_PEER_PORT: &str = "network.peer.port";
/// The request's `X-Request-Id` header (StrArray, one value per header line;
/// OTel `http.request.header.<key>`), to join legs and logs.
pub const HTTP_REQUEST_HEADER_X_REQUEST_ID: &str = "http.request.header.x-request-id";
/// Server IP address (Str).
pub const SERVER_ADDRESS: &str = "server.address";
/// Server TCP port (Int).
pub const SERVER_PORT: &str = "server.port";
/// Always `http` (Str).
pub const NETWORK_PROTOCOL_NAME: &str = "network.protocol.name";
/// `1.1` or `1.0` (Str).
pub const NETWORK_PROTOCOL_VERSION: &str = "network.protocol.version";
/// Always `tcp` (Str).
pub const NETWORK_TRANSPORT: &str = "network.transport";

// ---- mcptap: the client behind proxies and meshes ----------------------------------------
/// Which header gave `client.address` (Str): `forwarded`, `x-forwarded-for`
/// or `x-real-ip`; absent when it is the socket peer.
pub const CLIENT_ADDRESS_SOURCE: &str = "mcptap.client.address_source";
/// Trusted proxies between the client and the capture point, the socket peer
/// included (Int); with `mcptap.client.address_source`.
pub const CLIENT_PROXY_HOPS: &str = "mcptap.client.proxy_hops";
/// Something wrong in the forwarding headers (Str, `Anomaly::as_str`:
/// `untrusted_peer`, `malformed`, `hidden`, ...).
pub const CLIENT_ADDRESS_ANOMALY: &str = "mcptap.client.address_anomaly";
/// The client's mesh workload identity (Str): the SPIFFE URI of the last
/// `x-forwarded-client-cert` element, or Linkerd's `l5d-client-id`, sent by a
/// trusted peer.
pub const CLIENT_WORKLOAD: &str = "mcptap.client.workload";
/// Which header gave `mcptap.client.workload` (Str): `x-forwarded-client-cert`
/// or `l5d-client-id`.
pub const CLIENT_WORKLOAD_SOURCE: &str = "mcptap.client.workload_source";
/// Which leg of a proxied request a span is (Str): `upstream` (forwarded by a
/// trusted proxy, its socket peer), `client` (a request to a proxy that
/// forwarded it; its upstream leg is this span's child), `proxy` (a request
/// to a known proxy that was not forwarded: answered by the proxy itself);
/// absent for a direct request.
pub const HOP: &str = "mcptap.hop";

// ---- mcptap: exchange shape -------------------------------------------------------------

/// `request`, `notification` or `http` (Str).
pub const EXCHANGE_KIND: &str = "mcptap.exchange.kind";
/// `legacy` or `modern` (Str).
pub const ERA: &str = "mcptap.era";
/// Number of JSON-RPC requests/notifications in a batch body (Int; batches only).
pub const BATCH_SIZE: &str = "mcptap.batch.size";
/// Position of this message in its batch, from 0 (Int; batches only).
pub const BATCH_INDEX: &str = "mcptap.batch.index";
/// JSON-RPC responses the client POSTed in this body (Int; http spans only).
pub const POSTED_RESPONSES: &str = "mcptap.jsonrpc.posted_responses";
/// The request body was present but not valid JSON / not JSON-RPC (Bool).
pub const REQUEST_INVALID: &str = "mcptap.request.invalid";
/// The response body (or an SSE data field) was not valid JSON (Bool).
pub const RESPONSE_INVALID: &str = "mcptap.response.invalid";
/// No HTTP response arrived (Bool).
pub const RESPONSE_MISSING: &str = "mcptap.response.missing";
/// Why the exchange ended without a response: `closed`, `capture_end`, `evicted` (Str).
pub const RESPONSE_MISSING_REASON: &str = "mcptap.response.missing_reason";
/// An HTTP response came but no JSON-RPC response with this request's id (Bool).
pub const RPC_RESPONSE_MISSING: &str = "mcptap.rpc.response.missing";
/// The JSON-RPC error applied to this span had a null id (Bool).
pub const RPC_ERROR_ID_NULL: &str = "mcptap.rpc.error.id_null";
/// Long-lived stream (`subscriptions/listen`, GET SSE) (Bool).
pub const STREAM_LONG_LIVED: &str = "mcptap.stream.long_lived";

// ---- mcptap: session and client identity --------------------------------------------------

/// `Mcp-Session-Id` response header value minted by the server (Str).
pub const SESSION_MINTED: &str = "mcptap.session.minted";
/// Client implementation name (Str).
pub const CLIENT_NAME: &str = "mcptap.client.name";
/// Client implementation version (Str).
pub const CLIENT_VERSION: &str = "mcptap.client.version";
/// `meta`, `initialize` or `session` (Str).
pub const CLIENT_INFO_SOURCE: &str = "mcptap.client.info_source";
/// Top-level client capability keys plus extension ids (StrArray).
pub const CLIENT_CAPABILITIES: &str = "mcptap.client.capabilities";

// ---- mcptap: routing headers (2026-07-28 §2.4/2.5) ------------------------------------------

/// `Mcp-Method` header as sent (Str).
pub const ROUTING_MCP_METHOD: &str = "mcptap.routing.mcp_method";
/// `Mcp-Name` header, base64 sentinel decoded (Str).
pub const ROUTING_MCP_NAME: &str = "mcptap.routing.mcp_name";
/// `Mcp-Name` was sent base64-sentinel-encoded (Bool).
pub const ROUTING_MCP_NAME_ENCODED: &str = "mcptap.routing.mcp_name_encoded";
/// Raw `Mcp-Name` value when it was encoded (Str).
pub const ROUTING_MCP_NAME_RAW: &str = "mcptap.routing.mcp_name_raw";
/// `match`/`mismatch`/`missing`/`not_required` for `Mcp-Method` (Str).
pub const ROUTING_METHOD_STATUS: &str = "mcptap.routing.method_status";
/// `match`/`mismatch`/`missing`/`not_required` for `Mcp-Name` (Str).
pub const ROUTING_NAME_STATUS: &str = "mcptap.routing.name_status";
/// `match`/`mismatch`/`missing`/`not_required` for the version header vs `_meta` (Str).
pub const ROUTING_PROTOCOL_VERSION_STATUS: &str = "mcptap.routing.protocol_version_status";
/// Names (never values) of `Mcp-Param-*` headers (StrArray).
pub const ROUTING_PARAM_HEADERS: &str = "mcptap.routing.param_headers";

// ---- mcptap: results and tasks ---------------------------------------------------------------

/// `result.resultType` (`complete`, `input_required`, `task`, ...) (Str).
pub const RESULT_TYPE: &str = "mcptap.result.type";
/// `result.ttlMs` (Int, milliseconds).
pub const TTL_MS: &str = "mcptap.ttl_ms";
/// `result.cacheScope` (Str).
pub const CACHE_SCOPE: &str = "mcptap.cache_scope";
/// Task id (Str).
pub const TASK_ID: &str = "mcptap.task.id";
/// `params.task` present (2025-11-25 task augmentation) (Bool).
pub const TASK_LEGACY_REQUESTED: &str = "mcptap.task.legacy_requested";
/// Task status (Str).
pub const TASK_STATUS: &str = "mcptap.task.status";

// ---- mcptap: SSE -----------------------------------------------------------------------------

/// The response was `text/event-stream` (Bool).
pub const RESPONSE_SSE: &str = "mcptap.response.sse";
/// SSE events seen on the stream (Int).
pub const SSE_EVENTS: &str = "mcptap.sse.events";
/// JSON-RPC notifications attributed to this span (Int).
pub const SSE_NOTIFICATIONS: &str = "mcptap.sse.notifications";
/// Server→client JSON-RPC requests seen on the stream (Int).
pub const SSE_SERVER_REQUESTS: &str = "mcptap.sse.server_requests";
/// Span events not recorded because of `max_span_events` (Int).
pub const SSE_EVENTS_DROPPED: &str = "mcptap.sse.events_dropped";

// ---- mcptap: handles ---------------------------------------------------------------------------

/// Handles found in `params.arguments`, as `key=value` (StrArray).
pub const HANDLES_USED: &str = "mcptap.handles.used";
/// Handles found in the result, as `key=value` (StrArray).
pub const HANDLES_MINTED: &str = "mcptap.handles.minted";

// ---- mcptap: bodies and framing flags ---------------------------------------------------------

/// Redacted request message (Str; only with `capture_bodies`).
pub const REQUEST_BODY: &str = "mcptap.request.body";
/// Redacted response message (Str; only with `capture_bodies`).
pub const RESPONSE_BODY: &str = "mcptap.response.body";
/// A captured body was cut at `capture_body_max_bytes` (Bool).
pub const BODY_CAPTURE_TRUNCATED: &str = "mcptap.body.capture_truncated";
/// The HTTP layer cut a body at its cap (Bool).
pub const BODY_TRUNCATED: &str = "mcptap.body.truncated";
/// A message ended before its framing said it would (Bool).
pub const MESSAGE_INCOMPLETE: &str = "mcptap.message.incomplete";
/// A TCP gap fell inside the exchange (Bool).
pub const TCP_GAP: &str = "mcptap.tcp.gap";
/// The HTTP parser resynchronised on this exchange (Bool).
pub const HTTP_RESYNCED: &str = "mcptap.http.resynced";

// ---- mcptap: trace context -------------------------------------------------------------------

/// Where the parent context came from: `meta` or `header` (Str).
pub const TRACE_SOURCE: &str = "mcptap.trace.source";
/// A `traceparent` was present but malformed and ignored (Bool).
pub const TRACE_INVALID: &str = "mcptap.trace.invalid";

// ---- span event attributes -----------------------------------------------------------------

/// `params.progress` of `notifications/progress` (Str: the JSON number as
/// written). Not an OTel semconv name, hence under `mcptap.` (was
/// `mcp.progress`, see [`RENAMED`]).
pub const PROGRESS: &str = "mcptap.progress";
/// `params.total` of `notifications/progress` (Str: the JSON number as
/// written; was `mcp.progress.total`).
pub const PROGRESS_TOTAL: &str = "mcptap.progress.total";
/// `params.level` of `notifications/message` (Str; was `mcp.log.level`).
pub const LOG_LEVEL: &str = "mcptap.log.level";
/// `params.logger` of `notifications/message` (Str; was `mcp.log.logger`).
pub const LOG_LOGGER: &str = "mcptap.log.logger";
/// Redacted notification params (Str; only with `capture_bodies`).
pub const NOTIFICATION_BODY: &str = "mcptap.notification.body";

// ---- all of the above -------------------------------------------------------------------------

/// Every name above, in the order of this file: the names a span or span
/// event can carry. (A unit test checks that none is missing.)
pub const ALL: &[&str] = &[
    MCP_METHOD_NAME,
    MCP_PROTOCOL_VERSION,
    MCP_SESSION_ID,
    MCP_RESOURCE_URI,
    JSONRPC_REQUEST_ID,
    JSONRPC_PROTOCOL_VERSION,
    GEN_AI_TOOL_NAME,
    GEN_AI_PROMPT_NAME,
    GEN_AI_OPERATION_NAME,
    RPC_RESPONSE_STATUS_CODE,
    ERROR_TYPE,
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    URL_PATH,
    URL_SCHEME,
    USER_AGENT_ORIGINAL,
    CLIENT_ADDRESS,
    CLIENT_PORT,
    SERVER_ADDRESS,
    SERVER_PORT,
    NETWORK_PROTOCOL_NAME,
    NETWORK_PROTOCOL_VERSION,
    NETWORK_TRANSPORT,
    NETWORK_PEER_ADDRESS,
    NETWORK_PEER_PORT,
    HTTP_REQUEST_HEADER_X_REQUEST_ID,
    CLIENT_ADDRESS_SOURCE,
    CLIENT_PROXY_HOPS,
    CLIENT_ADDRESS_ANOMALY,
    CLIENT_WORKLOAD,
    CLIENT_WORKLOAD_SOURCE,
    HOP,
    EXCHANGE_KIND,
    ERA,
    BATCH_SIZE,
    BATCH_INDEX,
    POSTED_RESPONSES,
    REQUEST_INVALID,
    RESPONSE_INVALID,
    RESPONSE_MISSING,
    RESPONSE_MISSING_REASON,
    RPC_RESPONSE_MISSING,
    RPC_ERROR_ID_NULL,
    STREAM_LONG_LIVED,
    SESSION_MINTED,
    CLIENT_NAME,
    CLIENT_VERSION,
    CLIENT_INFO_SOURCE,
    CLIENT_CAPABILITIES,
    ROUTING_MCP_METHOD,
    ROUTING_MCP_NAME,
    ROUTING_MCP_NAME_ENCODED,
    ROUTING_MCP_NAME_RAW,
    ROUTING_METHOD_STATUS,
    ROUTING_NAME_STATUS,
    ROUTING_PROTOCOL_VERSION_STATUS,
    ROUTING_PARAM_HEADERS,
    RESULT_TYPE,
    TTL_MS,
    CACHE_SCOPE,
    TASK_ID,
    TASK_LEGACY_REQUESTED,
    TASK_STATUS,
    RESPONSE_SSE,
    SSE_EVENTS,
    SSE_NOTIFICATIONS,
    SSE_SERVER_REQUESTS,
    SSE_EVENTS_DROPPED,
    HANDLES_USED,
    HANDLES_MINTED,
    REQUEST_BODY,
    RESPONSE_BODY,
    BODY_CAPTURE_TRUNCATED,
    BODY_TRUNCATED,
    MESSAGE_INCOMPLETE,
    TCP_GAP,
    HTTP_RESYNCED,
    TRACE_SOURCE,
    TRACE_INVALID,
    PROGRESS,
    PROGRESS_TOTAL,
    LOG_LEVEL,
    LOG_LOGGER,
    NOTIFICATION_BODY,
];

/// Names earlier versions wrote, and the constant each is now (old, new):
/// spans read back from an older spool file carry the new names.
pub const RENAMED: &[(&str, &str)] = &[
    ("mcp.progress", PROGRESS),
    ("mcp.progress.total", PROGRESS_TOTAL),
    ("mcp.log.level", LOG_LEVEL),
    ("mcp.log.logger", LOG_LOGGER),
];

/// `name` as the `'static` constant above with the same text, if there is one.
pub fn known(name: &str) -> Option<&'static str> {
    ALL.iter().copied().find(|k| *k == name)
}

/// The constant `name` reads back as: [`known`], else the new name of a
/// [`RENAMED`] one.
pub fn read_back(name: &str) -> Option<&'static str> {
    known(name).or_else(|| {
        RENAMED
            .iter()
            .find(|(old, _)| *old == name)
            .map(|&(_, new)| new)
    })
}

#[cfg(test)]
mod tests {
    /// `ALL` lists every constant of this file, once.
    #[test]
    fn all_lists_every_name() {
        let src = include_str!("attrs.rs");
        let mut seen = 0;
        for line in src.lines() {
            let Some(rest) = line.strip_prefix("pub const ") else {
                continue;
            };
            let Some((_, value)) = rest.split_once(": &str = \"") else {
                continue;
            };
            let value = value.trim_end_matches("\";");
            assert_eq!(super::known(value), Some(value), "{value} missing from ALL");
            seen += 1;
        }
        assert_eq!(seen, super::ALL.len());
        assert_eq!(super::known("no.such.attribute"), None);
    }

    /// Old names read back as their new constants; current names as themselves.
    #[test]
    fn renamed_names_read_back_as_new() {
        for &(old, new) in super::RENAMED {
            assert_eq!(super::known(old), None, "{old} is still a current name");
            assert_eq!(super::read_back(old), Some(new));
            assert!(super::ALL.contains(&new));
        }
        assert_eq!(super::read_back(super::PROGRESS), Some(super::PROGRESS));
        assert_eq!(super::read_back("no.such.attribute"), None);
    }
}
