//! `mcptap-collector`: captures MCP Streamable HTTP traffic and turns each MCP
//! request into an OpenTelemetry SERVER span.
//!
//! The pure decoding lives in `mcptap-wire` (packets → HTTP) and `mcptap-mcp`
//! (HTTP → spans). This crate adds the parts with I/O: the packet [`source`]
//! (libpcap live, capture files read in blocks), the [`pipeline`] driver, outputs ([`otlp_json`]), the end-of-run
//! [`summary`] and the [`cli`].

pub mod admin;
pub mod cli;
pub mod export;
pub mod inject;
pub mod metrics;
pub mod otlp_json;
pub mod pipeline;
pub mod run;
pub mod schema;
pub mod source;
pub mod summary;

/// The bundled real capture replayed by `mcptap-collector demo`
/// (`tests/fixtures/cutover.pcap`; see tests/fixtures/README.md).
pub const DEMO_PCAP: &[u8] = include_bytes!("../../tests/fixtures/cutover.pcap");
