//! Prometheus text exposition (format 0.0.4) of the collector's counters,
//! served on `/metrics` by [`crate::admin`] and rendered by the
//! `prometheus-client` crate (`encoding::prometheus_text`). Every metric is
//! listed in `docs/metrics.md`.
//!
//! The pipeline's counters are plain `u64`s owned by the capture thread, so the
//! capture thread publishes a [`CaptureSnapshot`] copy periodically (about once a
//! second) into a [`MetricsSource`]; export counters are [`ExportCounters`]
//! atomics. Neither is a prometheus-client metric: one custom [`Collector`]
//! ([`SnapshotCollector`]) reads both at scrape time, so the capture thread
//! touches no atomic and no registry per packet.
//!
//! Conventions (Prometheus "Writing exporters" / exposition format 0.0.4):
//! counters end in `_total`, every family has `# HELP` and `# TYPE` lines,
//! label values escape `\`, `"` and newline; HELP text escapes `\` and newline.
//! prometheus-client appends `_total` to counter names itself, so the names in
//! this file are written with the suffix and passed to it without.

use crate::export::{DropReason, ExportCounters};
use crate::pipeline::PipelineStats;
use crate::source::KernelStats;
use mcptap_mcp::McpStats;
use mcptap_wire::stats::WireStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeMetric, MetricEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// A copy of the pipeline's counters at one moment (cheap: a few hundred
/// integers plus at most 256 method names).
#[derive(Debug, Clone, Default)]
pub struct CaptureSnapshot {
    /// Link and TCP counters.
    pub link_tcp: WireStats,
    /// HTTP and SSE counters.
    pub http: WireStats,
    /// MCP decoder counters.
    pub mcp: McpStats,
    /// Spans handed to the sinks.
    pub spans: u64,
    /// Connections tracked now.
    pub open_flows: u64,
    /// libpcap counters of a live capture (`None` for a file). libpcap keeps
    /// them in 32 bits: they wrap after 2^32 packets (Prometheus sees a reset).
    pub kernel: Option<KernelStats>,
}

impl CaptureSnapshot {
    /// Copies the counters of a running pipeline (call on the capture thread).
    pub fn from_pipeline(stats: &PipelineStats<'_>, kernel: Option<KernelStats>) -> Self {
        CaptureSnapshot {
            link_tcp: stats.link_tcp.clone(),
            http: stats.http.clone(),
            mcp: stats.mcp.clone(),
            spans: stats.spans,
            open_flows: stats.open_flows as u64,
            kernel,
        }
    }
}

/// The content type of the exposition (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What `/metrics` reports: the last [`CaptureSnapshot`] the capture thread
/// published (with when), and the counters of every exporter. Shared (`Arc`)
/// between the capture thread, the export queues and the scrape.
#[derive(Debug, Default)]
pub struct MetricsSource {
    capture: RwLock<Option<(CaptureSnapshot, Instant)>>,
    exports: RwLock<Vec<Arc<ExportCounters>>>,
    /// The admin server's own connections.
    pub admin: AdminCounters,
}

/// Connections of the admin server ([`crate::admin`]), updated by its tasks on
/// the admin runtime (never by the capture thread).
#[derive(Debug, Default)]
pub struct AdminCounters {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// Closed by the server because `--admin-max-connections` were open.
    pub closed_max_connections: AtomicU64,
    /// Closed by the server: no complete request head within
    /// `--admin-header-read-timeout`.
    pub closed_header_read_timeout: AtomicU64,
    /// Closed by the server: no byte moved for `--admin-idle-timeout`.
    pub closed_idle_timeout: AtomicU64,
}

impl MetricsSource {
    /// Replaces the capture counters (the capture thread, about once a second).
    pub fn publish_capture(&self, snapshot: CaptureSnapshot) {
        if let Ok(mut g) = self.capture.write() {
            *g = Some((snapshot, Instant::now()));
        }
    }

    /// Adds an exporter's counters (once per exporter).
    pub fn add_exporter(&self, counters: Arc<ExportCounters>) {
        if let Ok(mut g) = self.exports.write() {
            g.push(counters);
        }
    }
}

/// A registry holding one [`SnapshotCollector`] over `source`.
pub fn registry(source: Arc<MetricsSource>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(SnapshotCollector(source)));
    r
}

/// The exposition of `registry` in the Prometheus text format 0.0.4.
/// Errors: only if a collector fails (ours do not; the `String` writer cannot).
pub fn encode(registry: &Registry) -> Result<String, fmt::Error> {
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?;
    Ok(out)
}

/// The prometheus-client [`Collector`] of the collector's metrics: build
/// info, the published capture snapshot (absent until the first publication)
/// and each exporter's counters, read at scrape time.
#[derive(Debug)]
pub struct SnapshotCollector(pub Arc<MetricsSource>);

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), fmt::Error> {
        let mut w = Families(&mut enc);
        w.gauge_labelled(
            "mcptap_build_info",
            "Always 1; the version label is the collector's version.",
            &[&[("version", env!("CARGO_PKG_VERSION"))]],
            1u64,
        )?;
        let capture = self.0.capture.read().ok();
        if let Some((c, at)) = capture.as_ref().and_then(|g| g.as_ref()) {
            w.gauge(
                "mcptap_capture_snapshot_age_seconds",
                "Seconds since the capture thread last published its counters (grows if it is stuck).",
                at.elapsed().as_secs_f64(),
            )?;
            render_capture(&mut w, c)?;
        }
        drop(capture);
        let exports = self.0.exports.read().ok();
        render_exports(&mut w, exports.as_ref().map_or(&[], |g| g.as_slice()))?;
        render_admin(&mut w, &self.0.admin)
    }
}

/// The admin server's connection families.
fn render_admin(w: &mut Families<'_, '_>, a: &AdminCounters) -> fmt::Result {
    let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
    w.counter(
        "mcptap_admin_connections_total",
        "Connections accepted by the admin server.",
        r(&a.accepted),
    )?;
    w.gauge(
        "mcptap_admin_connections_open",
        "Connections open on the admin server now.",
        r(&a.open),
    )?;
    w.counters(
        "mcptap_admin_connections_closed_total",
        "Admin connections closed by the server, by reason (max_connections: the cap was reached and this was the oldest; header_read_timeout; idle_timeout).",
        "reason",
        &[
            ("max_connections", r(&a.closed_max_connections)),
            ("header_read_timeout", r(&a.closed_header_read_timeout)),
            ("idle_timeout", r(&a.closed_idle_timeout)),
        ],
    )
}

/// Writes metric families through a prometheus-client [`DescriptorEncoder`].
struct Families<'a, 'e>(&'a mut DescriptorEncoder<'e>);

impl Families<'_, '_> {
    /// The family's HELP and TYPE lines. `name` is the full name; counters
    /// lose their `_total`, which prometheus-client writes back.
    fn family(
        &mut self,
        name: &'static str,
        kind: MetricType,
        help: &str,
    ) -> Result<MetricEncoder<'_>, fmt::Error> {
        let base = match kind {
            MetricType::Counter => name.strip_suffix("_total").ok_or(fmt::Error)?,
            _ => name,
        };
        self.0.encode_descriptor(base, help, None, kind)
    }

    /// One counter family with one unlabelled sample.
    fn counter(&mut self, name: &'static str, help: &str, v: u64) -> fmt::Result {
        ConstCounter::new(v).encode(self.family(name, MetricType::Counter, help)?)
    }

    /// One gauge family with one unlabelled sample.
    fn gauge(&mut self, name: &'static str, help: &str, v: impl EncodeGaugeValue) -> fmt::Result {
        ConstGauge::new(v).encode(self.family(name, MetricType::Gauge, help)?)
    }

    /// One gauge family with one sample per label set, all of value `v`.
    fn gauge_labelled(
        &mut self,
        name: &'static str,
        help: &str,
        sets: &[&[(&str, &str)]],
        v: u64,
    ) -> fmt::Result {
        let mut m = self.family(name, MetricType::Gauge, help)?;
        for labels in sets {
            ConstGauge::new(v).encode(m.encode_family(labels)?)?;
        }
        Ok(())
    }

    /// One counter family with one sample per `(label value, value)`.
    fn counters(
        &mut self,
        name: &'static str,
        help: &str,
        label: &str,
        values: &[(&str, u64)],
    ) -> fmt::Result {
        let mut m = self.family(name, MetricType::Counter, help)?;
        for (l, v) in values {
            ConstCounter::new(*v).encode(m.encode_family(&[(label, *l)])?)?;
        }
        Ok(())
    }
}
/// The capture families, in the order `docs/metrics.md` lists them.
fn render_capture(w: &mut Families<'_, '_>, c: &CaptureSnapshot) -> fmt::Result {
    render_link_tcp(w, c)?;
    render_http(w, c)?;
    render_mcp(w, c)
}

/// Frames, flows and TCP reassembly.
fn render_link_tcp(w: &mut Families<'_, '_>, c: &CaptureSnapshot) -> fmt::Result {
    let l = &c.link_tcp;
    w.counter(
        "mcptap_packets_total",
        "Frames captured and decoded (all link types).",
        l.packets,
    )?;
    w.counter(
        "mcptap_packet_bytes_total",
        "Bytes of captured frames (captured length).",
        l.packet_bytes,
    )?;
    w.counters(
        "mcptap_packets_dropped_total",
        "Frames dropped before TCP reassembly, by reason.",
        "reason",
        &[
            ("not_tcp", l.packets_not_tcp),
            ("malformed", l.packets_malformed),
            ("fragmented", l.packets_fragmented),
            ("unsupported_link", l.packets_unsupported_link),
        ],
    )?;
    w.counter(
        "mcptap_flows_opened_total",
        "TCP connections tracked.",
        l.flows_opened,
    )?;
    w.counters(
        "mcptap_flows_closed_total",
        "TCP connections closed, by reason (fin_rst: FIN both ways or RST; idle_timeout; evicted: flow table full; end_of_input).",
        "reason",
        &[
            ("fin_rst", l.flows_closed),
            ("idle_timeout", l.flows_idle_timeout),
            ("evicted", l.flows_evicted),
            ("end_of_input", l.flows_end_of_input),
        ],
    )?;
    w.gauge(
        "mcptap_flows_open",
        "TCP connections tracked now.",
        c.open_flows,
    )?;
    w.counter(
        "mcptap_tcp_bytes_total",
        "TCP payload bytes delivered in order to the HTTP layer.",
        l.tcp_bytes_delivered,
    )?;
    w.counter(
        "mcptap_tcp_retransmitted_segments_total",
        "TCP segments that were complete retransmissions.",
        l.tcp_retransmitted_segments,
    )?;
    w.counter(
        "mcptap_tcp_out_of_order_segments_total",
        "TCP segments buffered because they arrived ahead of a hole.",
        l.tcp_out_of_order_segments,
    )?;
    w.counter(
        "mcptap_tcp_gaps_total",
        "Holes in TCP streams skipped over (lost packets, capture drops, buffer caps).",
        l.tcp_gaps,
    )?;
    w.counter(
        "mcptap_tcp_gap_bytes_total",
        "Bytes skipped in TCP gaps.",
        l.tcp_gap_bytes,
    )?;
    w.counter(
        "mcptap_tcp_buffer_overflow_bytes_total",
        "Gap bytes declared because an out-of-order buffer cap was hit (subset of mcptap_tcp_gap_bytes_total).",
        l.tcp_buffer_overflow_bytes,
    )?;
    Ok(())
}

/// HTTP and SSE framing, decode errors by stage, requests by method.
fn render_http(w: &mut Families<'_, '_>, c: &CaptureSnapshot) -> fmt::Result {
    let h = &c.http;
    let m = &c.mcp;
    w.counter(
        "mcptap_http_requests_total",
        "HTTP requests parsed.",
        h.http_requests,
    )?;
    w.counter(
        "mcptap_http_parse_errors_total",
        "HTTP heads or chunk framing that could not be parsed (the stream resynchronised).",
        h.http_parse_errors,
    )?;
    w.counter(
        "mcptap_http_bodies_truncated_total",
        "HTTP bodies longer than --max-body-bytes (kept up to the cap).",
        h.http_bodies_truncated,
    )?;
    w.counter(
        "mcptap_sse_events_total",
        "SSE events parsed.",
        h.sse_events,
    )?;
    w.counter(
        "mcptap_http_early_responses_total",
        "Responses that began before their request's body was complete (held until it was).",
        h.http_early_responses,
    )?;
    w.counter(
        "mcptap_tls_connections_total",
        "Connections recognised as TLS by their first bytes: counted, never parsed as HTTP (not decrypted).",
        h.tls_connections,
    )?;
    w.counter(
        "mcptap_tls_bytes_total",
        "Bytes of TLS connections (not decrypted).",
        h.tls_bytes,
    )?;
    w.counter(
        "mcptap_tls_hellos_unread_total",
        "TLS connections whose ClientHello could not be read (malformed, fragmented, or cut).",
        h.tls_hellos_unread,
    )?;
    w.counters(
        "mcptap_decode_errors_total",
        "Input the decoder could not use, by stage.",
        "stage",
        &[
            ("http", h.http_parse_errors),
            ("http_incomplete", h.http_incomplete_messages),
            ("http_unpaired_response", h.http_unpaired_responses),
            ("sse", h.sse_events_dropped),
            ("json_request", m.request_json_errors),
            ("json_response", m.response_json_errors),
            ("json_sse", m.sse_json_errors),
            ("jsonrpc", m.invalid_jsonrpc),
            ("jsonrpc_unmatched_response", m.unmatched_responses),
            ("traceparent", m.traceparent_invalid),
            ("mcp_name", m.mcp_name_decode_errors),
        ],
    )?;
    let mut requests = w.family(
        "mcptap_mcp_requests_total",
        MetricType::Counter,
        "JSON-RPC requests and notifications by MCP method (at most 256 names; later ones as \"(other)\").",
    )?;
    for (method, n) in &m.methods {
        ConstCounter::new(*n).encode(requests.encode_family(&[("method", method.as_str())])?)?;
    }
    Ok(())
}

/// Responses, eras, sessions, routing, spans and the libpcap counters.
fn render_mcp(w: &mut Families<'_, '_>, c: &CaptureSnapshot) -> fmt::Result {
    let m = &c.mcp;
    w.counters(
        "mcptap_http_responses_total",
        "Final HTTP responses of MCP exchanges by status class (none: no response at all).",
        "class",
        &[
            ("1xx", m.status_1xx),
            ("2xx", m.status_2xx),
            ("3xx", m.status_3xx),
            ("4xx", m.status_4xx),
            ("5xx", m.status_5xx),
            ("other", m.status_other),
            ("none", m.status_none),
        ],
    )?;
    w.counters(
        "mcptap_mcp_exchanges_total",
        "HTTP exchanges by protocol era (legacy: no or pre-2026 MCP-Protocol-Version; modern: stateless 2026-07-28).",
        "era",
        &[("legacy", m.era_legacy), ("modern", m.era_modern)],
    )?;
    w.counter(
        "mcptap_legacy_session_requests_total",
        "Requests that carried Mcp-Session-Id (legacy session use).",
        m.legacy_session_requests,
    )?;
    w.counter(
        "mcptap_mcp_sessions_minted_total",
        "Responses that set Mcp-Session-Id (sessions created).",
        m.sessions_minted,
    )?;
    w.counters(
        "mcptap_mcp_routing_errors_total",
        "Modern requests whose Mcp-Method/Mcp-Name headers disagreed with the body (mismatch) or were missing.",
        "kind",
        &[("mismatch", m.routing_mismatch), ("missing", m.routing_missing)],
    )?;
    w.counters(
        "mcptap_upstream_legs_total",
        "Requests forwarded by a trusted proxy, by whether their client leg was in the same capture and linked.",
        "outcome",
        &[
            ("linked", m.upstream_legs_linked),
            ("unlinked", m.upstream_legs_unlinked),
        ],
    )?;
    w.counter(
        "mcptap_hop_index_resets_total",
        "Times the index of client legs awaiting their upstream leg was full and started over (legs then stay unlinked).",
        m.hop_index_resets,
    )?;
    w.counter(
        "mcptap_client_address_forwarded_total",
        "Requests whose client.address came from forwarding headers sent by a trusted proxy.",
        m.client_address_forwarded,
    )?;
    let by = &m.client_address_anomalies_by_reason;
    let n = |r: &str| by.get(r).copied().unwrap_or(0);
    w.counters(
        "mcptap_client_address_anomalies_total",
        "Requests with something wrong in their forwarding headers, by reason.",
        "reason",
        &[
            ("untrusted_peer", n("untrusted_peer")),
            ("malformed", n("malformed")),
            ("hidden", n("hidden")),
            ("unbracketed_ipv6", n("unbracketed_ipv6")),
            ("too_many_hops", n("too_many_hops")),
            ("too_long", n("too_long")),
        ],
    )?;
    w.counter(
        "mcptap_mcp_pending_evicted_total",
        "Exchanges evicted while awaiting a response (--max-pending reached).",
        m.pending_evicted,
    )?;
    w.counter(
        "mcptap_spans_total",
        "Spans produced by the decoder.",
        c.spans,
    )?;
    if let Some(k) = c.kernel {
        w.counter(
            "mcptap_capture_kernel_received_total",
            "Packets received by the capture filter (libpcap, 32-bit: wraps).",
            k.received,
        )?;
        w.counter(
            "mcptap_capture_kernel_dropped_total",
            "Packets dropped by the kernel because the capture buffer was full (libpcap, 32-bit: wraps).",
            k.dropped,
        )?;
        w.counter(
            "mcptap_capture_interface_dropped_total",
            "Packets dropped by the network interface or driver (libpcap, 32-bit: wraps).",
            k.if_dropped,
        )?;
    }
    Ok(())
}

/// Each exporter's span and batch counters by outcome, then its gauges.
fn render_exports(w: &mut Families<'_, '_>, exports: &[Arc<ExportCounters>]) -> fmt::Result {
    if exports.is_empty() {
        return Ok(());
    }
    let r = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut spans = w.family(
        "mcptap_export_spans_total",
        MetricType::Counter,
        "Spans per exporter and outcome: queued, sent (acknowledged, including replayed), spooled (written to disk), replayed (sent from the spool), dropped_<reason>.",
    )?;
    for c in exports {
        let sink = c.exporter;
        for (outcome, v) in [
            ("queued", r(&c.queued)),
            ("sent", r(&c.sent)),
            ("spooled", r(&c.spooled)),
            ("replayed", r(&c.replayed)),
        ] {
            ConstCounter::new(v)
                .encode(spans.encode_family(&[("sink", sink), ("outcome", outcome)])?)?;
        }
        for reason in DropReason::ALL {
            let outcome = format!("dropped_{}", reason.as_str());
            let labels = [("sink", sink), ("outcome", outcome.as_str())];
            ConstCounter::new(c.dropped(reason)).encode(spans.encode_family(&labels)?)?;
        }
    }
    let mut batches = w.family(
        "mcptap_export_batches_total",
        MetricType::Counter,
        "Batches per exporter and outcome (queued, sent).",
    )?;
    for c in exports {
        for (outcome, v) in [
            ("queued", r(&c.batches_queued)),
            ("sent", r(&c.batches_sent)),
        ] {
            ConstCounter::new(v)
                .encode(batches.encode_family(&[("sink", c.exporter), ("outcome", outcome)])?)?;
        }
    }
    render_export_gauges(w, exports)
}

/// The retry counter and the gauges of each exporter, one `sink` label each.
fn render_export_gauges(w: &mut Families<'_, '_>, exports: &[Arc<ExportCounters>]) -> fmt::Result {
    type Get = fn(&ExportCounters) -> u64;
    let per_sink: [(&'static str, MetricType, &str, Get); 6] = [
        (
            "mcptap_export_retries_total",
            MetricType::Counter,
            "Export attempts that failed with a retryable error and were retried (batches).",
            |c| c.retried.load(Ordering::Relaxed),
        ),
        (
            "mcptap_export_queue_depth",
            MetricType::Gauge,
            "Batches waiting in the exporter's memory queue.",
            |c| c.queue_batches.load(Ordering::Relaxed),
        ),
        (
            "mcptap_export_queue_spans",
            MetricType::Gauge,
            "Spans waiting in the exporter's memory queue.",
            |c| c.queue_spans.load(Ordering::Relaxed),
        ),
        (
            "mcptap_export_spool_bytes",
            MetricType::Gauge,
            "Bytes of the exporter's on-disk spool.",
            |c| c.spool_bytes.load(Ordering::Relaxed),
        ),
        (
            "mcptap_export_spool_batches",
            MetricType::Gauge,
            "Batches in the exporter's on-disk spool.",
            |c| c.spool_batches.load(Ordering::Relaxed),
        ),
        (
            "mcptap_export_up",
            MetricType::Gauge,
            "1 while the exporter's last attempt succeeded (or none was made), 0 while it is failing.",
            |c| c.up.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, get) in per_sink {
        let mut m = w.family(name, kind, help)?;
        for c in exports {
            let labels = [("sink", c.exporter)];
            let sample = m.encode_family(&labels)?;
            match kind {
                MetricType::Counter => ConstCounter::new(get(c)).encode(sample)?,
                _ => ConstGauge::new(get(c)).encode(sample)?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn families_once_each() {
        let mut c = CaptureSnapshot::default();
        c.mcp.methods.insert("tools/call".into(), 3);
        c.mcp.methods.insert("a\"b\\c\nd".into(), 1);
        c.kernel = Some(KernelStats::default());
        let source = Arc::new(MetricsSource::default());
        source.add_exporter(Arc::new(ExportCounters::new("otlp")));
        if let Ok(mut g) = source.capture.write() {
            *g = Some((c, Instant::now() - Duration::from_millis(1500)));
        }
        let s = encode(&registry(source)).expect("encode");
        let mut seen = std::collections::BTreeSet::new();
        for line in s.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap_or_default().to_string();
            assert!(seen.insert(name.clone()), "{name} twice");
        }
        assert_eq!(seen.len(), 49, "{s}");
        assert!(s.contains("mcptap_mcp_requests_total{method=\"tools/call\"} 3\n"));
        // Label values escape `\`, `"` and newline.
        assert!(
            s.contains("mcptap_mcp_requests_total{method=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{s}"
        );
        assert!(s.contains("# TYPE mcptap_spans_total counter\nmcptap_spans_total 0\n"));
        assert!(s.contains("mcptap_capture_snapshot_age_seconds 1.5"), "{s}");
        assert!(!s.contains("# EOF"));
    }
}
