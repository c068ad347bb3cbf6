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
pub mod sink;
pub mod spool;

use mcptap_mcp::Span;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Why spans were dropped by an export queue (the `reason` label of the
/// `dropped` counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Memory queue and spool were both full: the newest batch was dropped.
    SpoolFull,
    /// Memory queue full and no spool configured (`--spool-max-bytes 0`).
    QueueFull,
    /// The exporter answered with a non-retryable error (bad schema, authentication...).
    Fatal,
    /// A spool file could not be written (disk error) or read back (corrupt file).
    SpoolError,
    /// Shutdown grace period over and the batch could not be spooled.
    Shutdown,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 5] = [
        DropReason::SpoolFull,
        DropReason::QueueFull,
        DropReason::Fatal,
        DropReason::SpoolError,
        DropReason::Shutdown,
    ];

    /// Label value: `spool_full`, `queue_full`, `fatal`, `spool_error`, `shutdown`.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::SpoolFull => "spool_full",
            DropReason::QueueFull => "queue_full",
            DropReason::Fatal => "fatal",
            DropReason::SpoolError => "spool_error",
            DropReason::Shutdown => "shutdown",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters and gauges of one exporter's queue, shared (`Arc`) between the
/// capture thread, the queue worker and the admin endpoint. All span counts are
/// spans (rows), not batches, unless the name says `batches`. Counters only grow;
/// gauges (`queue_batches`, `queue_spans`, `spool_bytes`, `spool_batches`, `up`)
/// move both ways. Read them with `load(Ordering::Relaxed)`.
#[derive(Debug)]
pub struct ExportCounters {
    /// Exporter name (`clickhouse`, `otlp`): the `exporter` label.
    pub exporter: &'static str,
    /// Spans handed to this exporter's queue (every span the capture produced).
    pub queued: AtomicU64,
    /// Batches handed to the queue.
    pub batches_queued: AtomicU64,
    /// Spans acknowledged by the destination (including replayed ones).
    pub sent: AtomicU64,
    /// Batches acknowledged by the destination.
    pub batches_sent: AtomicU64,
    /// Export attempts that failed with a retryable error and were retried
    /// (one per attempt, counted in batches).
    pub retried: AtomicU64,
    /// Spans written to the on-disk spool (memory queue full or exporter down,
    /// or still pending at shutdown).
    pub spooled: AtomicU64,
    /// Spans sent from the spool (a subset of `sent`; includes spool files left
    /// by a previous run).
    pub replayed: AtomicU64,
    /// Spans dropped, per [`DropReason`] (index = `DropReason as usize`); see
    /// [`ExportCounters::dropped`].
    pub dropped_by_reason: [AtomicU64; 5],
    /// Gauge: batches waiting in memory (not counting the one being exported).
    pub queue_batches: AtomicU64,
    /// Gauge: spans waiting in memory.
    pub queue_spans: AtomicU64,
    /// Gauge: bytes of spool files on disk.
    pub spool_bytes: AtomicU64,
    /// Gauge: batches in the spool on disk.
    pub spool_batches: AtomicU64,
    /// Gauge: 1 while the last export attempt succeeded (or none was made yet),
    /// 0 while the exporter is failing.
    pub up: AtomicU64,
    /// Text of the last export error (retryable or fatal), for logs and reports.
    pub last_error: Mutex<Option<String>>,
}

impl ExportCounters {
    /// Zeroed counters for exporter `name`, with `up` = 1.
    pub fn new(exporter: &'static str) -> ExportCounters {
        ExportCounters {
            exporter,
            queued: AtomicU64::new(0),
            batches_queued: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            batches_sent: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            spooled: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            dropped_by_reason: Default::default(),
            queue_batches: AtomicU64::new(0),
            queue_spans: AtomicU64::new(0),
            spool_bytes: AtomicU64::new(0),
            spool_batches: AtomicU64::new(0),
            up: AtomicU64::new(1),
            last_error: Mutex::new(None),
        }
    }

    /// Spans dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped_by_reason[reason.index()].load(Ordering::Relaxed)
    }

    /// Spans dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.dropped(*r)).sum()
    }

    /// Adds `spans` to the `reason` drop counter.
    pub fn add_dropped(&self, reason: DropReason, spans: u64) {
        self.dropped_by_reason[reason.index()].fetch_add(spans, Ordering::Relaxed);
    }

    /// The last error text, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }

    pub(crate) fn set_last_error(&self, e: &str) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = Some(e.to_owned());
        }
    }

    /// One line for logs and the end-of-run report, e.g.
    /// `clickhouse: 67 queued, 67 sent (0 replayed), 0 retried, 0 spooled, 0 dropped`.
    pub fn summary_line(&self) -> String {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = format!(
            "{}: {} spans queued, {} sent ({} replayed from the spool), {} retries, {} spooled, {} dropped",
            self.exporter,
            r(&self.queued),
            r(&self.sent),
            r(&self.replayed),
            r(&self.retried),
            r(&self.spooled),
            self.dropped_total(),
        );
        let reasons: Vec<String> = DropReason::ALL
            .iter()
            .filter(|d| self.dropped(**d) > 0)
            .map(|d| format!("{}={}", d.as_str(), self.dropped(*d)))
            .collect();
        if !reasons.is_empty() {
            s.push_str(&format!(" ({})", reasons.join(", ")));
        }
        s
    }
}
