//! Pure JSON-RPC 2.0 / MCP decoding of HTTP exchanges into OpenTelemetry-shaped
//! SERVER spans.
//!
//! Input: the [`mcptap_wire::HttpEvent`] stream of the wire crate (requests,
//! response heads, SSE events, response ends, connection closes). Output: one
//! [`Span`] per JSON-RPC request or notification found in a request body (a
//! 2025-03-26 batch gives one span per element), or one HTTP-level span for an
//! exchange that carried none (legacy GET streams, DELETE, POSTed responses,
//! non-JSON bodies). Responses are matched by JSON-RPC `id` whether they arrive as
//! the JSON body, inside an array, or as an SSE event after notifications.
//!
//! Both protocol eras are understood (see `docs/attributes.md` and
//! `/work/shared/reference/mcp-wire.md`): the legacy initialize/`Mcp-Session-Id`
//! era (2024-11-05 … 2025-11-25) and the stateless 2026-07-28 era with
//! `Mcp-Method`/`Mcp-Name` routing headers and per-request `_meta`.
//!
//! Invariants: no I/O, no clock, no threads; never panics on any input; memory is
//! bounded by [`DecoderConfig`]; every dropped or repaired thing is counted in
//! [`McpStats`]. Span and trace ids are deterministic (see [`ids`]).
//!
//! ```
//! use mcptap_mcp::{Decoder, DecoderConfig};
//! let mut dec = Decoder::new(DecoderConfig::default());
//! let mut spans = Vec::new();
//! // for ev in http_events { dec.on_event(ev, &mut spans); }
//! dec.finish(&mut spans);
//! assert!(spans.is_empty());
//! ```

pub mod attrs;
mod config;
#[macro_use]
mod json;
mod decoder;
pub mod handles;
pub mod ids;
pub mod protocol;
pub mod redact;
mod request;
mod response;
pub mod routing;
mod span;
mod stats;
#[cfg(test)]
mod testutil;

/// Differential checks for the fuzz targets, compiled only under `cargo fuzz`
/// (which builds every crate with `--cfg fuzzing`); see `fuzz/fuzz_targets/json_body.rs`.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// Panics when the fast JSON deserializer (`json/fast.rs`) and
    /// serde_json's own reader disagree on `bytes`, read as a request body and
    /// as a response body: which texts are rejected, and what is read.
    pub fn json_readers_agree(bytes: &[u8]) {
        crate::request::fuzz_agree(bytes);
        crate::response::fuzz_agree(bytes);
    }
}

pub use config::{DecoderConfig, HandleRule, TrustedProxies};
pub use decoder::Decoder;
pub use span::{Attr, AttrValue, Span, SpanEvent, SpanStatus, Text};
pub use stats::{MAX_METHOD_KEYS, McpStats};
