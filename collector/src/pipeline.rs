//! The single-threaded decode pipeline: frame → TCP → HTTP → MCP → span sink.
//!
//! ```text
//! link::decode_packet → tcp::FlowTable → conn::HttpConnection (per flow)
//!                     → mcp::Decoder → SpanSink
//! ```
//! Each stage owns its counters; nothing here does I/O except the sink.

use anyhow::Result;
use mcptap_mcp::{Decoder, DecoderConfig, McpStats, Span};
use mcptap_wire::conn::{EventSink, HttpConfig, HttpConnection};
use mcptap_wire::link::{DropReason, LinkType, decode_fast, decode_packet};
use mcptap_wire::stats::WireStats;
use mcptap_wire::tcp::{FlowOpened, FlowSink, FlowTable, TcpConfig, TcpEvent};
use mcptap_wire::{ConnMeta, HttpEvent, TimestampNs};

/// Receives finished spans.
pub trait SpanSink {
    /// Takes a batch of spans (in completion order) out of `spans`, leaving it
    /// empty: the caller keeps the vector's allocation for the next batch
    /// (anything a sink leaves is dropped by the caller).
    fn export(&mut self, spans: &mut Vec<Span>) -> Result<()>;
    /// End of input: flush everything.
    fn finish(&mut self) -> Result<()>;
}

/// How often idle flows are expired, in capture time (ns).
const EXPIRE_EVERY_NS: u64 = 1_000_000_000;

/// Spans kept before they are handed to the sink in the middle of one
/// reassembly call (a flow-table `finish` or `expire` can close 100k flows at once).
const SPANS_FLUSH_AT: usize = 1024;

/// The HTTP and MCP stages: the decoder fed with each connection's events as
/// soon as they are produced (so closing many flows at once never queues all
/// their events). Each open TCP flow's [`HttpConnection`] lives in the flow
/// table, next to its reassembly state (one allocation, no second map).
struct HttpStage {
    cfg: HttpConfig,
    stats: WireStats,
    decoder: Decoder,
    tls: TlsFlows,
    spans: Vec<Span>,
    /// Spans handed to the sink so far.
    spans_out: u64,
    /// First error of the span sink in the current call; returned (and
    /// cleared) when the call is over. Kept here, not in [`Feed`], so
    /// that the per-packet `Feed` is two pointers.
    err: Option<anyhow::Error>,
}

/// The [`EventSink`] of one connection call: each event goes straight to
/// the decoder (not through a vector: an event is about 200 bytes).
struct Decode<'a> {
    decoder: &'a mut Decoder,
    spans: &'a mut Vec<Span>,
    tls: &'a mut TlsFlows,
}

impl EventSink for Decode<'_> {
    #[inline]
    fn event(&mut self, ev: HttpEvent) {
        if let HttpEvent::Tls { hello, .. } = &ev {
            self.tls.record(hello.as_ref());
        }
        self.decoder.on_event(ev, self.spans);
    }
}

/// TLS connections seen (not decrypted), by what their ClientHello offered:
/// at most [`TlsFlows::MAX_KEYS`] distinct (SNI, ALPN) pairs, the rest counted
/// under `other`.
#[derive(Debug, Default, Clone)]
pub struct TlsFlows {
    /// Connections per `(sni, alpn joined with ',')`; `sni` empty when absent
    /// or the hello was unread.
    pub by_server: std::collections::BTreeMap<(String, String), u64>,
    /// Connections past the key bound.
    pub other: u64,
}

impl TlsFlows {
    /// Distinct (SNI, ALPN) pairs kept.
    pub const MAX_KEYS: usize = 64;

    fn record(&mut self, hello: Option<&mcptap_wire::tls::ClientHello>) {
        let key = hello.map_or_else(Default::default, |h| {
            (h.sni.clone().unwrap_or_default(), h.alpn.join(","))
        });
        if let Some(n) = self.by_server.get_mut(&key) {
            *n += 1;
        } else if self.by_server.len() < Self::MAX_KEYS {
            self.by_server.insert(key, 1);
        } else {
            self.other += 1;
        }
    }
}

/// The [`TcpSink`] given to the flow table for one call: the HTTP/MCP stages
/// plus the span sink, so that spans leave in batches of [`SPANS_FLUSH_AT`]
/// even while one call closes many flows.
struct Feed<'a> {
    stage: &'a mut HttpStage,
    out: &'a mut dyn SpanSink,
}

impl Feed<'_> {
    fn flush(&mut self) {
        if self.stage.spans.is_empty() || self.stage.err.is_some() {
            return;
        }
        self.stage.spans_out += self.stage.spans.len() as u64;
        let res = self.out.export(&mut self.stage.spans);
        self.stage.spans.clear();
        if let Err(e) = res {
            self.stage.err = Some(e);
        }
    }

    fn done(mut self) -> Result<()> {
        // (Most packets complete no span: one test for the common case.)
        if self.stage.spans.is_empty() && self.stage.err.is_none() {
            return Ok(());
        }
        self.flush();
        self.stage.err.take().map_or(Ok(()), Err)
    }
}

impl FlowSink<HttpConnection> for Feed<'_> {
    fn on_open(&mut self, ev: FlowOpened) -> HttpConnection {
        let meta = ConnMeta {
            flow: ev.flow,
            client: ev.client,
            server: ev.server,
            client_isn: ev.client_isn,
        };
        HttpConnection::new(meta, ev.saw_syn, self.stage.cfg)
    }

    fn on_flow_event(&mut self, conn: &mut HttpConnection, ev: TcpEvent<'_>) {
        let stage = &mut *self.stage;
        let stats = &mut stage.stats;
        let out = &mut Decode {
            decoder: &mut stage.decoder,
            spans: &mut stage.spans,
            tls: &mut stage.tls,
        };
        match ev {
            TcpEvent::Opened { .. } => {}
            TcpEvent::Data { dir, ts, data, .. } => conn.on_data(dir, ts, data, stats, out),
            TcpEvent::Gap { dir, ts, len, .. } => conn.on_gap(dir, ts, len, stats, out),
            TcpEvent::Closed { ts, .. } => conn.on_close(ts, stats, out),
        }
        if stage.spans.len() >= SPANS_FLUSH_AT {
            self.flush();
        }
    }
}

/// Limits and options of the whole pipeline.
#[derive(Debug, Clone, Default)]
pub struct PipelineConfig {
    /// TCP reassembly limits.
    pub tcp: TcpConfig,
    /// HTTP framing limits.
    pub http: HttpConfig,
    /// MCP decoding options.
    pub mcp: DecoderConfig,
}

/// Counters of every stage, for the summary and (later) `/metrics`.
pub struct PipelineStats<'a> {
    /// Link and TCP counters.
    pub link_tcp: &'a WireStats,
    /// HTTP and SSE counters.
    pub http: &'a WireStats,
    /// MCP counters.
    pub mcp: &'a McpStats,
    /// Spans handed to the sink.
    pub spans: u64,
    /// Connections currently tracked.
    pub open_flows: usize,
    /// TLS connections by server name and ALPN.
    pub tls: &'a TlsFlows,
}

/// Packets in, spans out.
pub struct Pipeline {
    link: LinkType,
    flows: FlowTable<HttpConnection>,
    http: HttpStage,
    stats: WireStats,
    last_expire: TimestampNs,
    last_ts: TimestampNs,
}

impl Pipeline {
    /// A pipeline for packets of link type `link`.
    pub fn new(link: LinkType, cfg: PipelineConfig) -> Pipeline {
        Pipeline {
            link,
            flows: FlowTable::with_conn_state(cfg.tcp),
            http: HttpStage {
                cfg: cfg.http,
                stats: WireStats::default(),
                decoder: Decoder::new(cfg.mcp),
                tls: TlsFlows::default(),
                spans: Vec::new(),
                spans_out: 0,
                err: None,
            },
            stats: WireStats::default(),
            last_expire: 0,
            last_ts: 0,
        }
    }

    /// Feeds one captured frame; spans completed by it go to `sink`.
    pub fn packet(&mut self, ts: TimestampNs, frame: &[u8], sink: &mut dyn SpanSink) -> Result<()> {
        self.stats.packets += 1;
        self.stats.packet_bytes += frame.len() as u64;
        self.last_ts = self.last_ts.max(ts);
        let mut feed = Feed {
            stage: &mut self.http,
            out: sink,
        };
        // The common frame (Ethernet/SLL → IPv4 → TCP) on its own call site,
        // every other frame out of line: with one call site for both, the
        // IPv4 segment was copied byte by byte into the IPv6-capable layout
        // the general decoder returns (BENCHMARKS.md, round 8).
        match decode_fast(self.link, frame) {
            Some(pkt) => self.flows.ingest(ts, &pkt, &mut self.stats, &mut feed),
            None => general_packet(
                self.link,
                ts,
                frame,
                &mut self.flows,
                &mut self.stats,
                &mut feed,
            ),
        }
        if self.last_ts.saturating_sub(self.last_expire) >= EXPIRE_EVERY_NS {
            self.last_expire = self.last_ts;
            self.flows.expire(self.last_ts, &mut self.stats, &mut feed);
        }
        feed.done()
    }

    /// Expires idle flows at `now` (for live captures with no packets arriving).
    /// Cheap to call often: it expires at most once per second of `now`.
    pub fn tick(&mut self, now: TimestampNs, sink: &mut dyn SpanSink) -> Result<()> {
        if now.saturating_sub(self.last_expire) < EXPIRE_EVERY_NS {
            return Ok(());
        }
        self.last_expire = now;
        let mut feed = Feed {
            stage: &mut self.http,
            out: sink,
        };
        self.flows.expire(now, &mut self.stats, &mut feed);
        feed.done()
    }

    /// End of input: flushes every flow and pending exchange, then the sink.
    pub fn finish(&mut self, sink: &mut dyn SpanSink) -> Result<()> {
        let mut feed = Feed {
            stage: &mut self.http,
            out: sink,
        };
        self.flows.finish(self.last_ts, &mut self.stats, &mut feed);
        feed.stage.decoder.finish(&mut feed.stage.spans);
        feed.done()?;
        sink.finish()
    }

    /// Counters of every stage.
    pub fn stats(&self) -> PipelineStats<'_> {
        PipelineStats {
            link_tcp: &self.stats,
            http: &self.http.stats,
            mcp: self.http.decoder.stats(),
            spans: self.http.spans_out,
            open_flows: self.flows.len(),
            tls: &self.http.tls,
        }
    }
}

/// A frame [`decode_fast`] does not take (VLAN tags, IPv6, other link
/// types, fragments, truncation, malformed or non-TCP frames): decoded by
/// [`decode_packet`] and fed or counted.
#[inline(never)]
fn general_packet(
    link: LinkType,
    ts: TimestampNs,
    frame: &[u8],
    flows: &mut FlowTable<HttpConnection>,
    stats: &mut WireStats,
    feed: &mut Feed<'_>,
) {
    match decode_packet(link, frame) {
        Ok(pkt) => flows.ingest(ts, &pkt, stats, feed),
        Err(DropReason::NotTcp) => stats.packets_not_tcp += 1,
        Err(DropReason::Malformed) => stats.packets_malformed += 1,
        Err(DropReason::UnsupportedLink) => stats.packets_unsupported_link += 1,
        Err(DropReason::Fragmented) => stats.packets_fragmented += 1,
    }
}

/// Keeps every span in memory (tests, small replays).
#[derive(Default)]
pub struct VecSink {
    /// Spans received, in order.
    pub spans: Vec<Span>,
}

impl SpanSink for VecSink {
    fn export(&mut self, spans: &mut Vec<Span>) -> Result<()> {
        self.spans.append(spans);
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
