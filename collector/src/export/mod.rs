//! Exporting spans, sidecar-grade: ClickHouse (`otel_traces`) and OTLP endpoints.
//!
//! ```text
//! capture thread                         tokio runtime (own threads)
//! Pipeline ─▶ ExportSink ─▶ Arc<Batch> ─▶ queue (per exporter) ─▶ Exporter::export
//!                                            │  full or exporter down
//!                                            ▼
//!                                          spool (bounded, on disk) ─▶ replayed in order
//! ```
//!
//! Every exporter gets the same [`Batch`]es through its own bounded queue, so a
//! slow or dead exporter never stalls the others or the capture. A batch's
//! [`Batch::id`] is a pure function of its spans, so retries, spool replays and
//! restarts can be deduplicated by the destination (ClickHouse
//! `insert_deduplication_token`).

pub mod clickhouse;
pub mod otlp;
pub mod queue;
pub mod spool;

use mcptap_mcp::Span;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// Spans exported together, with a stable identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// FNV-1a 64 over the trace and span ids of `spans`, in order: the same spans
    /// always give the same id (used as the deduplication token).
    pub id: u64,
    /// The spans, in completion order.
    pub spans: Vec<Span>,
}

impl Batch {
    /// A batch of `spans` with its id computed.
    pub fn new(spans: Vec<Span>) -> Batch {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for s in &spans {
            for b in s.trace_id.iter().chain(s.span_id.iter()) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        Batch { id: h, spans }
    }

    /// The deduplication token for this batch, e.g. `mcptap-00ab…` (16 hex digits).
    pub fn token(&self) -> String {
        format!("mcptap-{:016x}", self.id)
    }
}

/// Why an export attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportError {
    /// Worth retrying (connection refused, timeout, 5xx, ClickHouse overload...).
    Retryable(String),
    /// Retrying cannot help (bad schema, authentication, malformed request): the
    /// batch is dropped and counted, and the error is logged clearly.
    Fatal(String),
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportError::Retryable(m) => write!(f, "retryable: {m}"),
            ExportError::Fatal(m) => write!(f, "fatal: {m}"),
        }
    }
}

/// A destination for batches. The queue calls `export` for one batch at a time,
/// never concurrently, from a tokio task.
pub trait Exporter: Send + 'static {
    /// Short name used in metrics labels and logs: `clickhouse`, `otlp`.
    fn name(&self) -> &'static str;
    /// Sends one batch. Must be idempotent per [`Batch::id`] where the destination
    /// allows (the queue may send a batch again after a timeout or a restart).
    fn export(&mut self, batch: &Batch) -> impl Future<Output = Result<(), ExportError>> + Send;
    /// Flushes and releases resources at shutdown.
    fn shutdown(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
