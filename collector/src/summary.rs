//! The one-screen summary printed on stderr at the end of a run.

use crate::pipeline::PipelineStats;
use crate::source::KernelStats;
use std::time::Duration;

/// Prints the summary of a run to stderr.
pub fn print(s: &PipelineStats<'_>, kernel: Option<KernelStats>, elapsed: Duration) {
    eprint!("{}", render(s, kernel, elapsed));
}

/// The summary text (also used by tests).
pub fn render(s: &PipelineStats<'_>, kernel: Option<KernelStats>, elapsed: Duration) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let w = s.link_tcp;
    let h = s.http;
    let _ = writeln!(
        o,
        "── mcptap summary ──────────────────────────────────────────────"
    );
    let _ = writeln!(
        o,
        "packets {}  ({} bytes, {:.2}s)   flows opened {}   spans {}",
        w.packets,
        w.packet_bytes,
        elapsed.as_secs_f64(),
        w.flows_opened,
        s.spans
    );
    render_mcp(&mut o, s);
    let m = s.mcp;
    let _ = writeln!(
        o,
        "decode errors: json request/response/sse {}/{}/{}  not json-rpc {}  unmatched responses {}  \
         bad traceparent {}  pending evicted {}",
        m.request_json_errors,
        m.response_json_errors,
        m.sse_json_errors,
        m.invalid_jsonrpc,
        m.unmatched_responses,
        m.traceparent_invalid,
        m.pending_evicted
    );
    let _ = writeln!(
        o,
        "drops: not-tcp {}  malformed {}  fragmented {}  unsupported-link {}  tcp-gaps {} ({} bytes)  \
         buffer-overflow {} bytes  evicted-flows {}",
        w.packets_not_tcp,
        w.packets_malformed,
        w.packets_fragmented,
        w.packets_unsupported_link,
        w.tcp_gaps,
        w.tcp_gap_bytes,
        w.tcp_buffer_overflow_bytes,
        w.flows_evicted
    );
    let _ = writeln!(
        o,
        "http: requests {}  responses {}  parse-errors {}  resync-skipped {} bytes  truncated-bodies {}  \
         incomplete {}  unpaired-responses {}  sse-events {}",
        h.http_requests,
        h.http_responses,
        h.http_parse_errors,
        h.http_resync_skipped_bytes,
        h.http_bodies_truncated,
        h.http_incomplete_messages,
        h.http_unpaired_responses,
        h.sse_events
    );
    render_topology(&mut o, s);
    if let Some(k) = kernel {
        let _ = writeln!(
            o,
            "kernel: received {}  dropped {}  interface-dropped {}",
            k.received, k.dropped, k.if_dropped
        );
    }
    o
}

/// The MCP lines: requests and notifications, methods, status classes, legacy
/// session use, routing headers.
fn render_mcp(o: &mut String, s: &PipelineStats<'_>) {
    use std::fmt::Write as _;
    let m = s.mcp;
    let _ = writeln!(
        *o,
        "mcp: requests {}  notifications {}  http-only exchanges {}  batches {}",
        m.jsonrpc_requests, m.jsonrpc_notifications, m.http_only_exchanges, m.batches
    );
    let mut methods: Vec<(&String, &u64)> = m.methods.iter().collect();
    methods.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for chunk in methods.chunks(3) {
        let line: Vec<String> = chunk
            .iter()
            .map(|(k, v)| format!("{k:<28} {v:>7}"))
            .collect();
        let _ = writeln!(*o, "  {}", line.join("   "));
    }
    let _ = writeln!(
        *o,
        "status: 2xx {}  3xx {}  4xx {}  5xx {}  other {}  no-response {}",
        m.status_2xx,
        m.status_3xx,
        m.status_4xx,
        m.status_5xx,
        m.status_1xx + m.status_other,
        m.status_none
    );
    let _ = writeln!(
        *o,
        "legacy: requests with Mcp-Session-Id {}  sessions minted {}  initialize {}  era legacy/modern {}/{}",
        m.legacy_session_requests,
        m.sessions_minted,
        m.initialize_calls,
        m.era_legacy,
        m.era_modern
    );
    let _ = writeln!(
        *o,
        "routing headers (2026-07-28): mismatched {}  missing {}",
        m.routing_mismatch, m.routing_missing
    );
}

/// Early responses and TLS connections, when there were any.
fn render_topology(o: &mut String, s: &PipelineStats<'_>) {
    use std::fmt::Write as _;
    let h = s.http;
    if h.http_early_responses > 0 {
        let _ = writeln!(
            *o,
            "http: early responses {} (answered before the request body was complete; held until it was)",
            h.http_early_responses
        );
    }
    if h.tls_connections > 0 {
        let servers: Vec<String> = s
            .tls
            .by_server
            .iter()
            .map(|((sni, alpn), n)| {
                let sni = if sni.is_empty() { "(no sni)" } else { sni };
                if alpn.is_empty() {
                    format!("{sni} {n}")
                } else {
                    format!("{sni} [{alpn}] {n}")
                }
            })
            .chain((s.tls.other > 0).then(|| format!("other {}", s.tls.other)))
            .collect();
        let _ = writeln!(
            *o,
            "tls (not decrypted, not parsed as http): connections {}  bytes {}  hellos unread {}  servers: {}",
            h.tls_connections,
            h.tls_bytes,
            h.tls_hellos_unread,
            servers.join(", ")
        );
    }
}
