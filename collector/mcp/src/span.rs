//! The span model handed to exporters: one OpenTelemetry SERVER span per JSON-RPC
//! request or notification (or per HTTP exchange that carried none).

use std::borrow::Cow;

/// One attribute value. OTel `AnyValue` restricted to what this crate emits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AttrValue {
    /// UTF-8 string: borrowed for the fixed values the decoder emits
    /// (`"http"`, `"request"`, routing statuses, ...), owned otherwise.
    Str(Cow<'static, str>),
    /// Signed 64-bit integer.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// Array of strings.
    StrArray(Vec<String>),
}

/// An attribute: name (usually a constant from [`crate::attrs`]) and value.
pub type Attr = (Cow<'static, str>, AttrValue);

/// Span status, following the OTel MCP and HTTP server conventions (see
/// `docs/attributes.md`, "Status rule").
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SpanStatus {
    /// Not an error (the OTel default; "OK" is never set by instrumentation).
    Unset,
    /// An error, with its description (JSON-RPC error message, `tool_error`,
    /// `HTTP 503`, `no_response`).
    Error(String),
}

/// A timestamped event inside a span (an SSE notification that preceded the
/// response, or a server→client request seen on the stream).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SpanEvent {
    /// Nanoseconds since the Unix epoch (the SSE event's capture timestamp).
    pub time_ns: u64,
    /// Notification or request method, e.g. `notifications/progress`.
    pub name: String,
    /// Event attributes (never message text unless bodies are captured).
    pub attributes: Vec<Attr>,
}

/// One finished span. Its kind is always SERVER (the collector observes the server
/// side of each exchange).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Span {
    /// W3C trace id: inherited from `traceparent`, else derived (see `ids`). Never all zero.
    pub trace_id: [u8; 16],
    /// Span id, derived deterministically from the connection and request position.
    /// Never all zero.
    pub span_id: [u8; 8],
    /// Parent span id from an inherited `traceparent`, else `None` (root span).
    pub parent_span_id: Option<[u8; 8]>,
    /// W3C `tracestate` that came with the inherited `traceparent`, else empty.
    pub trace_state: String,
    /// `{mcp.method.name} {target}` or the HTTP method for http-level spans.
    pub name: String,
    /// Start: first byte of the HTTP request (ns since the Unix epoch).
    pub start_ns: u64,
    /// End: the response (SSE event or end of body), or when the exchange was given
    /// up (ns since the Unix epoch). Never before `start_ns`.
    pub end_ns: u64,
    /// Span status.
    pub status: SpanStatus,
    /// `service.instance.id` for this span's resource.
    pub instance_id: String,
    /// Attributes, see [`crate::attrs`].
    pub attributes: Vec<Attr>,
    /// Span events (capped at `DecoderConfig::max_span_events`).
    pub events: Vec<SpanEvent>,
}

impl Span {
    /// First attribute called `name`, if any.
    pub fn attr(&self, name: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// String value of attribute `name` (`None` if absent or not a string).
    pub fn attr_str(&self, name: &str) -> Option<&str> {
        match self.attr(name) {
            Some(AttrValue::Str(s)) => Some(s),
            _ => None,
        }
    }
}
