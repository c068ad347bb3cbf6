//! Prometheus text exposition (format 0.0.4) of the collector's counters,
//! served on `/metrics` by [`crate::admin`]. Every metric is listed in
//! `docs/metrics.md`.
//!
//! The pipeline's counters are plain `u64`s owned by the capture thread, so the
//! capture thread publishes a [`CaptureSnapshot`] copy periodically (about once a
//! second) into [`crate::admin::AdminState`]; export counters are
//! [`ExportCounters`] atomics read at scrape time.
//!
//! Conventions (Prometheus "Writing exporters" / exposition format 0.0.4):
//! counters end in `_total`, every family has `# HELP` and `# TYPE` lines,
//! label values escape `\`, `"` and newline; HELP text escapes `\` and newline.

use crate::export::{DropReason, ExportCounters};
use crate::pipeline::PipelineStats;
use crate::source::KernelStats;
use mcptap_mcp::McpStats;
use mcptap_wire::stats::WireStats;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

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

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Appends metric families to a string.
struct Writer<'a> {
    out: &'a mut String,
}

impl Writer<'_> {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    fn sample_f64(&mut self, name: &str, value: f64) {
        let _ = writeln!(self.out, "{name} {value}");
    }

    /// One family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// One family with one sample per `(label value, value)`.
    fn labelled(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        label: &str,
        values: &[(&str, u64)],
    ) {
        self.family(name, kind, help);
        for (l, v) in values {
            self.sample(name, &[(label, l)], *v);
        }
    }
}

/// Escapes a label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Renders everything: build info, the capture snapshot (if one was published;
/// `age` is how old it is) and each exporter's counters.
pub fn render(
    capture: Option<(&CaptureSnapshot, Duration)>,
    exports: &[std::sync::Arc<ExportCounters>],
    out: &mut String,
) {
    let mut w = Writer { out };
    w.family(
        "mcptap_build_info",
        "gauge",
        "Always 1; the version label is the collector's version.",
    );
    w.sample(
        "mcptap_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    if let Some((c, age)) = capture {
        w.family(
            "mcptap_capture_snapshot_age_seconds",
            "gauge",
            "Seconds since the capture thread last published its counters (grows if it is stuck).",
        );
        w.sample_f64("mcptap_capture_snapshot_age_seconds", age.as_secs_f64());
        render_capture(&mut w, c);
    }
    render_exports(&mut w, exports);
}

fn render_capture(w: &mut Writer<'_>, c: &CaptureSnapshot) {
    let l = &c.link_tcp;
    let h = &c.http;
    let m = &c.mcp;
    w.single(
        "mcptap_packets_total",
        "counter",
        "Frames captured and decoded (all link types).",
        l.packets,
    );
    w.single(
        "mcptap_packet_bytes_total",
        "counter",
        "Bytes of captured frames (captured length).",
        l.packet_bytes,
    );
    w.labelled(
        "mcptap_packets_dropped_total",
        "counter",
        "Frames dropped before TCP reassembly, by reason.",
        "reason",
        &[
            ("not_tcp", l.packets_not_tcp),
            ("malformed", l.packets_malformed),
            ("fragmented", l.packets_fragmented),
            ("unsupported_link", l.packets_unsupported_link),
        ],
    );
    w.single(
        "mcptap_flows_opened_total",
        "counter",
        "TCP connections tracked.",
        l.flows_opened,
    );
    w.labelled(
        "mcptap_flows_closed_total",
        "counter",
        "TCP connections closed, by reason (fin_rst: FIN both ways or RST; idle_timeout; evicted: flow table full; end_of_input).",
        "reason",
        &[
            ("fin_rst", l.flows_closed),
            ("idle_timeout", l.flows_idle_timeout),
            ("evicted", l.flows_evicted),
            ("end_of_input", l.flows_end_of_input),
        ],
    );
    w.single(
        "mcptap_flows_open",
        "gauge",
        "TCP connections tracked now.",
        c.open_flows,
    );
    w.single(
        "mcptap_tcp_bytes_total",
        "counter",
        "TCP payload bytes delivered in order to the HTTP layer.",
        l.tcp_bytes_delivered,
    );
    w.single(
        "mcptap_tcp_retransmitted_segments_total",
        "counter",
        "TCP segments that were complete retransmissions.",
        l.tcp_retransmitted_segments,
    );
    w.single(
        "mcptap_tcp_out_of_order_segments_total",
        "counter",
        "TCP segments buffered because they arrived ahead of a hole.",
        l.tcp_out_of_order_segments,
    );
    w.single(
        "mcptap_tcp_gaps_total",
        "counter",
        "Holes in TCP streams skipped over (lost packets, capture drops, buffer caps).",
        l.tcp_gaps,
    );
    w.single(
        "mcptap_tcp_gap_bytes_total",
        "counter",
        "Bytes skipped in TCP gaps.",
        l.tcp_gap_bytes,
    );
    w.single(
        "mcptap_tcp_buffer_overflow_bytes_total",
        "counter",
        "Gap bytes declared because an out-of-order buffer cap was hit (subset of mcptap_tcp_gap_bytes_total).",
        l.tcp_buffer_overflow_bytes,
    );
    w.single(
        "mcptap_http_requests_total",
        "counter",
        "HTTP requests parsed.",
        h.http_requests,
    );
    w.single(
        "mcptap_http_parse_errors_total",
        "counter",
        "HTTP heads or chunk framing that could not be parsed (the stream resynchronised).",
        h.http_parse_errors,
    );
    w.single(
        "mcptap_http_bodies_truncated_total",
        "counter",
        "HTTP bodies longer than --max-body-bytes (kept up to the cap).",
        h.http_bodies_truncated,
    );
    w.single(
        "mcptap_sse_events_total",
        "counter",
        "SSE events parsed.",
        h.sse_events,
    );
    w.labelled(
        "mcptap_decode_errors_total",
        "counter",
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
    );
    w.family(
        "mcptap_mcp_requests_total",
        "counter",
        "JSON-RPC requests and notifications by MCP method (at most 256 names; later ones as \"(other)\").",
    );
    for (method, n) in &m.methods {
        w.sample("mcptap_mcp_requests_total", &[("method", method)], *n);
    }
    w.labelled(
        "mcptap_http_responses_total",
        "counter",
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
    );
    w.labelled(
        "mcptap_mcp_exchanges_total",
        "counter",
        "HTTP exchanges by protocol era (legacy: no or pre-2026 MCP-Protocol-Version; modern: stateless 2026-07-28).",
        "era",
        &[("legacy", m.era_legacy), ("modern", m.era_modern)],
    );
    w.single(
        "mcptap_legacy_session_requests_total",
        "counter",
        "Requests that carried Mcp-Session-Id (legacy session use).",
        m.legacy_session_requests,
    );
    w.single(
        "mcptap_mcp_sessions_minted_total",
        "counter",
        "Responses that set Mcp-Session-Id (sessions created).",
        m.sessions_minted,
    );
    w.labelled(
        "mcptap_mcp_routing_errors_total",
        "counter",
        "Modern requests whose Mcp-Method/Mcp-Name headers disagreed with the body (mismatch) or were missing.",
        "kind",
        &[("mismatch", m.routing_mismatch), ("missing", m.routing_missing)],
    );
    w.single(
        "mcptap_mcp_pending_evicted_total",
        "counter",
        "Exchanges evicted while awaiting a response (--max-pending reached).",
        m.pending_evicted,
    );
    w.single(
        "mcptap_spans_total",
        "counter",
        "Spans produced by the decoder.",
        c.spans,
    );
    if let Some(k) = c.kernel {
        w.single(
            "mcptap_capture_kernel_received_total",
            "counter",
            "Packets received by the capture filter (libpcap, 32-bit: wraps).",
            k.received,
        );
        w.single(
            "mcptap_capture_kernel_dropped_total",
            "counter",
            "Packets dropped by the kernel because the capture buffer was full (libpcap, 32-bit: wraps).",
            k.dropped,
        );
        w.single(
            "mcptap_capture_interface_dropped_total",
            "counter",
            "Packets dropped by the network interface or driver (libpcap, 32-bit: wraps).",
            k.if_dropped,
        );
    }
}

fn render_exports(w: &mut Writer<'_>, exports: &[std::sync::Arc<ExportCounters>]) {
    if exports.is_empty() {
        return;
    }
    let r = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    w.family(
        "mcptap_export_spans_total",
        "counter",
        "Spans per exporter and outcome: queued, sent (acknowledged, including replayed), spooled (written to disk), replayed (sent from the spool), dropped_<reason>.",
    );
    for c in exports {
        let sink = c.exporter;
        for (outcome, v) in [
            ("queued", r(&c.queued)),
            ("sent", r(&c.sent)),
            ("spooled", r(&c.spooled)),
            ("replayed", r(&c.replayed)),
        ] {
            w.sample(
                "mcptap_export_spans_total",
                &[("sink", sink), ("outcome", outcome)],
                v,
            );
        }
        for reason in DropReason::ALL {
            let outcome = format!("dropped_{}", reason.as_str());
            w.sample(
                "mcptap_export_spans_total",
                &[("sink", sink), ("outcome", &outcome)],
                c.dropped(reason),
            );
        }
    }
    w.family(
        "mcptap_export_batches_total",
        "counter",
        "Batches per exporter and outcome (queued, sent).",
    );
    for c in exports {
        for (outcome, v) in [
            ("queued", r(&c.batches_queued)),
            ("sent", r(&c.batches_sent)),
        ] {
            w.sample(
                "mcptap_export_batches_total",
                &[("sink", c.exporter), ("outcome", outcome)],
                v,
            );
        }
    }
    type Get = fn(&ExportCounters) -> u64;
    let per_sink: [(&str, &str, &str, Get); 6] = [
        (
            "mcptap_export_retries_total",
            "counter",
            "Export attempts that failed with a retryable error and were retried (batches).",
            |c| c.retried.load(Ordering::Relaxed),
        ),
        (
            "mcptap_export_queue_depth",
            "gauge",
            "Batches waiting in the exporter's memory queue.",
            |c| c.queue_batches.load(Ordering::Relaxed),
        ),
        (
            "mcptap_export_queue_spans",
            "gauge",
            "Spans waiting in the exporter's memory queue.",
            |c| c.queue_spans.load(Ordering::Relaxed),
        ),
        (
            "mcptap_export_spool_bytes",
            "gauge",
            "Bytes of the exporter's on-disk spool.",
            |c| c.spool_bytes.load(Ordering::Relaxed),
        ),
        (
            "mcptap_export_spool_batches",
            "gauge",
            "Batches in the exporter's on-disk spool.",
            |c| c.spool_batches.load(Ordering::Relaxed),
        ),
        (
            "mcptap_export_up",
            "gauge",
            "1 while the exporter's last attempt succeeded (or none was made), 0 while it is failing.",
            |c| c.up.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, get) in per_sink {
        w.family(name, kind, help);
        for c in exports {
            w.sample(name, &[("sink", c.exporter)], get(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_escaping() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn families_once_each() {
        let mut c = CaptureSnapshot::default();
        c.mcp.methods.insert("tools/call".into(), 3);
        c.kernel = Some(KernelStats::default());
        let e = std::sync::Arc::new(ExportCounters::new("otlp"));
        let mut s = String::new();
        render(Some((&c, Duration::from_millis(1500))), &[e], &mut s);
        let mut seen = std::collections::BTreeSet::new();
        for line in s.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap_or_default().to_string();
            assert!(seen.insert(name.clone()), "{name} twice");
        }
        assert!(s.contains("mcptap_mcp_requests_total{method=\"tools/call\"} 3\n"));
        assert!(s.contains("mcptap_capture_snapshot_age_seconds 1.5\n"));
    }
}
