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
    let _ = writeln!(o, "── mcptap summary ──────────────────────────────────────────────");
    let _ = writeln!(
        o,
        "packets {}  ({} bytes, {:.2}s)   flows opened {}   spans {}",
        w.packets,
        w.packet_bytes,
        elapsed.as_secs_f64(),
        w.flows_opened,
        s.spans
    );
    let _ = writeln!(o, "{}", s.mcp.render());
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
    if let Some(k) = kernel {
        let _ = writeln!(
            o,
            "kernel: received {}  dropped {}  interface-dropped {}",
            k.received, k.dropped, k.if_dropped
        );
    }
    o
}
