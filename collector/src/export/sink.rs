//! The capture-side end of exporting: a [`SpanSink`] that cuts the span stream
//! into [`Batch`]es and hands each (shared, `Arc`) to every exporter's [`Queue`].
//!
//! A batch closes when it reaches `max_spans` spans or `max_bytes` (estimated
//! encoded size, see [`span_size_estimate`]), when it is `max_delay` old
//! ([`ExportSink::poll`], wall clock, live captures only), and at the end of
//! input. For a pcap replay no time limit applies, so the same file always gives
//! the same batches and the same [`Batch::token`]s: replaying a file twice
//! inserts its rows once.

use super::queue::{Queue, QueueReport};
use super::{Batch, ExportCounters};
use crate::pipeline::SpanSink;
use anyhow::Result;
use mcptap_mcp::{AttrValue, Span};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// When a batch closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Spans per batch, at least 1 (`--batch-max-spans`).
    pub max_spans: usize,
    /// Estimated bytes per batch (`--batch-max-bytes`).
    pub max_bytes: usize,
    /// Age after which an open batch is closed by [`ExportSink::poll`]; `None`
    /// for pcap replays (`--batch-max-delay`).
    pub max_delay: Option<Duration>,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_spans: 1024,
            max_bytes: 2 * 1024 * 1024,
            max_delay: Some(Duration::from_secs(1)),
        }
    }
}

/// Rough encoded size of a span in bytes (RowBinary/protobuf are within a
/// factor of two of this): fixed fields plus every string.
pub fn span_size_estimate(s: &Span) -> usize {
    fn attr_len(v: &AttrValue) -> usize {
        match v {
            AttrValue::Str(s) => s.len(),
            AttrValue::Int(_) => 20,
            AttrValue::Bool(_) => 5,
            AttrValue::StrArray(a) => a.iter().map(|x| x.len() + 3).sum::<usize>() + 2,
        }
    }
    let attrs: usize = s
        .attributes
        .iter()
        .map(|(k, v)| k.len() + attr_len(v) + 4)
        .sum();
    let events: usize = s
        .events
        .iter()
        .map(|e| {
            16 + e.name.len()
                + e.attributes
                    .iter()
                    .map(|(k, v)| k.len() + attr_len(v) + 4)
                    .sum::<usize>()
        })
        .sum();
    128 + s.name.len() + s.trace_state.len() + s.instance_id.len() + attrs + events
}

/// Batches spans for the export queues.
pub struct ExportSink {
    cfg: BatchConfig,
    pending: Vec<Span>,
    pending_bytes: usize,
    opened: Option<Instant>,
    queues: Vec<Queue>,
}

impl ExportSink {
    /// A sink feeding `queues` (one per exporter).
    pub fn new(queues: Vec<Queue>, cfg: BatchConfig) -> ExportSink {
        let mut cfg = cfg;
        cfg.max_spans = cfg.max_spans.max(1);
        ExportSink {
            cfg,
            pending: Vec::new(),
            pending_bytes: 0,
            opened: None,
            queues,
        }
    }

    /// Counters of every queue, in exporter order.
    pub fn counters(&self) -> Vec<Arc<ExportCounters>> {
        self.queues
            .iter()
            .map(|q| Arc::clone(q.counters()))
            .collect()
    }

    /// Closes the open batch if it is older than `max_delay` at `now`.
    pub fn poll(&mut self, now: Instant) {
        if let (Some(d), Some(t)) = (self.cfg.max_delay, self.opened)
            && now.duration_since(t) >= d
        {
            self.close_batch();
        }
    }

    fn close_batch(&mut self) {
        self.opened = None;
        self.pending_bytes = 0;
        if self.pending.is_empty() {
            return;
        }
        let batch = Arc::new(Batch::new(std::mem::take(&mut self.pending)));
        for q in &self.queues {
            q.push(Arc::clone(&batch));
        }
    }

    /// Closes the last batch, then every queue: each gets `grace` to deliver
    /// what it holds before the rest is spooled. Returns one report per queue.
    pub async fn shutdown(mut self, grace: Duration) -> Vec<QueueReport> {
        self.close_batch();
        for q in &self.queues {
            q.close(grace);
        }
        let mut out = Vec::new();
        for q in self.queues.drain(..) {
            out.push(q.join().await);
        }
        out
    }
}

impl SpanSink for ExportSink {
    fn export(&mut self, spans: &mut Vec<Span>) -> Result<()> {
        for s in spans.drain(..) {
            if self.opened.is_none() {
                self.opened = Some(Instant::now());
            }
            self.pending_bytes += span_size_estimate(&s);
            self.pending.push(s);
            if self.pending.len() >= self.cfg.max_spans || self.pending_bytes >= self.cfg.max_bytes
            {
                self.close_batch();
            }
        }
        Ok(())
    }

    /// Closes the open batch (the queues keep running until [`ExportSink::shutdown`]).
    fn finish(&mut self) -> Result<()> {
        self.close_batch();
        Ok(())
    }
}
