//! Criterion micro-benchmarks of each decoding stage, in bytes per second, on
//! the real fixture `tests/fixtures/cutover.pcap` (834 packets, 140 KB of real
//! MCP SDK traffic; see tests/fixtures/README.md).
//!
//! Every stage is fed exactly what it receives in the collector, precomputed
//! outside the timed loop by running the stages before it once:
//!
//! | bench | input | throughput counted |
//! |---|---|---|
//! | `pcap_records` | the fixture's file bytes, record by record (`mcptap_wire::pcapfile`) | file bytes |
//! | `pcapng_records` | the same packets as pcapng (`tests/fixtures/cutover.pcapng`) | file bytes |
//! | `link_decode` | every frame | frame bytes |
//! | `tcp_reassembly` | every decoded segment, fresh `FlowTable` | frame bytes |
//! | `http_conn` | every reassembled `TcpEvent`, fresh `HttpConnection`s (HTTP framing + SSE + pairing) | TCP payload bytes |
//! | `sse` | the SSE events of the capture re-serialised as one stream | stream bytes |
//! | `mcp_decode` | every `HttpEvent`, fresh `Decoder` | HTTP body + SSE data bytes |
//! | `pipeline` | every frame through `Pipeline` (all stages) | frame bytes |
//! | `floor_httparse` | the capture's request and response heads, re-serialised; `httparse` only, no copy | head bytes |
//! | `floor_json_ignored` | every HTTP body and SSE `data` field; `serde_json` syntax check only (`IgnoredAny`) | body bytes |
//!
//! The two `floor_*` benches are what the libraries the stages are built on
//! cost for the least work they can do on the same bytes (parse every head;
//! check every body is JSON, keeping nothing): a stage cannot be faster than
//! its floor while it keeps using that library.
//!
//! Run: `cargo bench -p mcptap-collector --bench parsers` (not run in CI; CI
//! only builds it with `cargo build --all-targets`).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mcptap_collector::pipeline::{Pipeline, PipelineConfig, SpanSink};
use mcptap_mcp::{Decoder, DecoderConfig, Span};
use mcptap_wire::conn::{HttpConfig, HttpConnection};
use mcptap_wire::link::{LinkType, decode_packet};
use mcptap_wire::pcapfile::{CaptureFile, Record};
use mcptap_wire::sse::SseParser;
use mcptap_wire::stats::WireStats;
use mcptap_wire::tcp::{FlowTable, TcpConfig, TcpEvent, TcpSink};
use mcptap_wire::{ConnMeta, Dir, FlowId, HttpEvent, TimestampNs};
use std::collections::HashMap;
use std::hint::black_box;

/// Calls `f` with every packet (timestamp, captured bytes) of a capture file
/// held in memory, decoded by `mcptap_wire::pcapfile`; stops at the first
/// damaged record.
fn each_packet(file: &[u8], mut f: impl FnMut(TimestampNs, &[u8])) {
    let Ok(Some((mut capture, mut off))) = CaptureFile::open(file) else {
        return;
    };
    while let Some(rest) = file.get(off..) {
        match capture.next(rest) {
            Ok(Record::Packet { ts, data, len }) => {
                f(ts, &rest[data]);
                off += len;
            }
            Ok(Record::Skip { len }) => off += len,
            Ok(Record::NeedMore { .. }) | Err(_) => break,
        }
    }
}

/// Packets and captured bytes of a capture file held in memory.
fn read_records(file: &[u8]) -> (usize, u64) {
    let (mut packets, mut bytes) = (0, 0);
    each_packet(file, |_, data| {
        packets += 1;
        bytes += data.len() as u64;
    });
    (packets, bytes)
}

/// The frames of a capture file held in memory, with their timestamps.
fn frames(file: &[u8]) -> Vec<(TimestampNs, Vec<u8>)> {
    let mut out = Vec::new();
    each_packet(file, |ts, data| out.push((ts, data.to_vec())));
    out
}

/// An owned copy of a [`TcpEvent`].
#[derive(Clone)]
enum OwnedTcp {
    Opened(ConnMeta, bool),
    Data(FlowId, Dir, TimestampNs, Vec<u8>),
    Gap(FlowId, Dir, TimestampNs, u64),
    Closed(FlowId, TimestampNs),
}

#[derive(Default)]
struct Recorder(Vec<OwnedTcp>, u64);

impl TcpSink for Recorder {
    fn on_tcp_event(&mut self, ev: TcpEvent<'_>) {
        self.0.push(match ev {
            TcpEvent::Opened {
                flow,
                client,
                server,
                client_isn,
                saw_syn,
                ..
            } => OwnedTcp::Opened(
                ConnMeta {
                    flow,
                    client,
                    server,
                    client_isn,
                },
                saw_syn,
            ),
            TcpEvent::Data {
                flow,
                dir,
                ts,
                data,
            } => {
                self.1 += data.len() as u64;
                OwnedTcp::Data(flow, dir, ts, data.to_vec())
            }
            TcpEvent::Gap { flow, dir, ts, len } => OwnedTcp::Gap(flow, dir, ts, len),
            TcpEvent::Closed { flow, ts, .. } => OwnedTcp::Closed(flow, ts),
        });
    }
}

/// Counts delivered bytes only.
struct CountSink(u64);

impl TcpSink for CountSink {
    fn on_tcp_event(&mut self, ev: TcpEvent<'_>) {
        if let TcpEvent::Data { data, .. } = ev {
            self.0 += data.len() as u64;
        }
    }
}

/// Replays recorded TCP events through fresh HTTP connections, as the pipeline does.
fn http_replay(events: &[OwnedTcp], out: &mut Vec<HttpEvent>) -> WireStats {
    let mut stats = WireStats::default();
    let mut conns: HashMap<FlowId, HttpConnection> = HashMap::new();
    for ev in events {
        match ev {
            OwnedTcp::Opened(meta, saw_syn) => {
                conns.insert(
                    meta.flow,
                    HttpConnection::new(meta.clone(), *saw_syn, HttpConfig::default()),
                );
            }
            OwnedTcp::Data(flow, dir, ts, data) => {
                if let Some(c) = conns.get_mut(flow) {
                    c.on_data(*dir, *ts, data, &mut stats, out);
                }
            }
            OwnedTcp::Gap(flow, dir, ts, len) => {
                if let Some(c) = conns.get_mut(flow) {
                    c.on_gap(*dir, *ts, *len, &mut stats, out);
                }
            }
            OwnedTcp::Closed(flow, ts) => {
                if let Some(mut c) = conns.remove(flow) {
                    c.on_close(*ts, &mut stats, out);
                }
            }
        }
    }
    stats
}

/// The request and response heads of `events`, re-serialised as HTTP/1.1
/// (request line or status line, headers in wire order, blank line): the
/// bytes `httparse` sees, up to the case of the reason phrase.
fn heads(events: &[HttpEvent]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for ev in events {
        let mut h = match ev {
            HttpEvent::Request { req, .. } => format!(
                "{} {} HTTP/1.{}\r\n",
                req.method, req.target, req.version_minor
            )
            .into_bytes(),
            HttpEvent::ResponseHead { status, .. } => {
                format!("HTTP/1.1 {status} OK\r\n").into_bytes()
            }
            _ => continue,
        };
        let headers = match ev {
            HttpEvent::Request { req, .. } => &req.headers,
            HttpEvent::ResponseHead { headers, .. } => headers,
            _ => continue,
        };
        for hd in headers.iter() {
            h.extend_from_slice(hd.name.as_bytes());
            h.extend_from_slice(b": ");
            h.extend_from_slice(hd.value);
            h.extend_from_slice(b"\r\n");
        }
        h.extend_from_slice(b"\r\n");
        out.push(h);
    }
    out
}

struct Discard;

impl SpanSink for Discard {
    fn export(&mut self, spans: &mut Vec<Span>) -> anyhow::Result<()> {
        black_box(&spans);
        spans.clear();
        Ok(())
    }
    fn finish(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn benches(c: &mut Criterion) {
    let pcap = mcptap_collector::DEMO_PCAP;
    let frames = frames(pcap);
    let frame_bytes: u64 = frames.iter().map(|(_, f)| f.len() as u64).sum();

    // Stage inputs, computed once.
    let mut stats = WireStats::default();
    let mut flows = FlowTable::new(TcpConfig::default());
    let mut rec = Recorder::default();
    for (ts, f) in &frames {
        if let Ok(p) = decode_packet(LinkType::Ethernet, f) {
            flows.ingest(*ts, &p, &mut stats, &mut rec);
        }
    }
    let last_ts = frames.last().map_or(0, |(ts, _)| *ts);
    flows.finish(last_ts, &mut stats, &mut rec);
    let (tcp_events, payload_bytes) = (rec.0, rec.1);
    let mut http_events = Vec::new();
    http_replay(&tcp_events, &mut http_events);
    let mut body_bytes = 0u64;
    let mut sse_stream = Vec::new();
    for ev in &http_events {
        match ev {
            HttpEvent::Request { req, .. } => body_bytes += req.body.len() as u64,
            HttpEvent::ResponseEnd { body, .. } => body_bytes += body.len() as u64,
            HttpEvent::SseEvent { event, .. } => {
                body_bytes += event.data.len() as u64;
                if let Some(e) = &event.event {
                    sse_stream.extend_from_slice(format!("event: {e}\r\n").as_bytes());
                }
                for line in event.data.split('\n') {
                    sse_stream.extend_from_slice(format!("data: {line}\r\n").as_bytes());
                }
                sse_stream.extend_from_slice(b"\r\n");
            }
            _ => {}
        }
    }

    let mut g = c.benchmark_group("stages");
    let pcapng = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/cutover.pcapng"
    ))
    .expect("tests/fixtures/cutover.pcapng");
    for (name, file) in [("pcap_records", pcap), ("pcapng_records", &pcapng[..])] {
        g.throughput(Throughput::Bytes(file.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let (packets, bytes) = read_records(black_box(file));
                assert_eq!(packets, frames.len());
                bytes
            })
        });
    }
    g.throughput(Throughput::Bytes(frame_bytes));
    g.bench_function("link_decode", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for (_, f) in &frames {
                if let Ok(p) = decode_packet(LinkType::Ethernet, black_box(f)) {
                    n += p.payload.len();
                }
            }
            n
        })
    });
    let packets: Vec<_> = frames
        .iter()
        .filter_map(|(ts, f)| decode_packet(LinkType::Ethernet, f).ok().map(|p| (*ts, p)))
        .collect();
    g.bench_function("tcp_reassembly", |b| {
        b.iter(|| {
            let mut stats = WireStats::default();
            let mut flows = FlowTable::new(TcpConfig::default());
            let mut sink = CountSink(0);
            for (ts, p) in &packets {
                flows.ingest(*ts, p, &mut stats, &mut sink);
            }
            flows.finish(last_ts, &mut stats, &mut sink);
            sink.0
        })
    });

    g.throughput(Throughput::Bytes(payload_bytes));
    g.bench_function("http_conn", |b| {
        let mut out = Vec::with_capacity(http_events.len());
        b.iter(|| {
            out.clear();
            http_replay(&tcp_events, &mut out);
            out.len()
        })
    });

    g.throughput(Throughput::Bytes(sse_stream.len() as u64));
    g.bench_function("sse", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            let mut stats = WireStats::default();
            let mut p = SseParser::new(1024 * 1024);
            p.feed(black_box(&sse_stream), &mut stats, &mut out);
            p.finish(&mut stats);
            out.len()
        })
    });

    g.throughput(Throughput::Bytes(body_bytes));
    g.bench_function("mcp_decode", |b| {
        b.iter_batched(
            || http_events.clone(),
            |events| {
                let mut d = Decoder::new(DecoderConfig::default());
                let mut spans = Vec::new();
                for ev in events {
                    d.on_event(ev, &mut spans);
                }
                d.finish(&mut spans);
                spans.len()
            },
            BatchSize::SmallInput,
        )
    });

    // Library floors (see the module doc).
    let heads = heads(&http_events);
    g.throughput(Throughput::Bytes(
        heads.iter().map(|h| h.len() as u64).sum(),
    ));
    g.bench_function("floor_httparse", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for h in &heads {
                let mut hs = [httparse::EMPTY_HEADER; 64];
                if h.starts_with(b"HTTP/") {
                    let mut r = httparse::Response::new(&mut hs);
                    if let Ok(httparse::Status::Complete(k)) = r.parse(black_box(h)) {
                        n += k + r.headers.len();
                    }
                } else {
                    let mut r = httparse::Request::new(&mut hs);
                    if let Ok(httparse::Status::Complete(k)) = r.parse(black_box(h)) {
                        n += k + r.headers.len();
                    }
                }
            }
            n
        })
    });
    let bodies: Vec<&[u8]> = http_events
        .iter()
        .filter_map(|ev| match ev {
            HttpEvent::Request { req, .. } => Some(req.body.as_slice()),
            HttpEvent::ResponseEnd { body, .. } => Some(body.as_slice()),
            HttpEvent::SseEvent { event, .. } => Some(event.data.as_bytes()),
            _ => None,
        })
        .filter(|b| !b.is_empty())
        .collect();
    g.throughput(Throughput::Bytes(body_bytes));
    g.bench_function("floor_json_ignored", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for body in &bodies {
                n += usize::from(
                    serde_json::from_slice::<serde::de::IgnoredAny>(black_box(body)).is_ok(),
                );
            }
            n
        })
    });

    g.throughput(Throughput::Bytes(frame_bytes));
    g.bench_function("pipeline", |b| {
        b.iter(|| {
            let mut p = Pipeline::new(LinkType::Ethernet, PipelineConfig::default());
            for (ts, f) in &frames {
                let _ = p.packet(*ts, f, &mut Discard);
            }
            let _ = p.finish(&mut Discard);
            p.stats().spans
        })
    });
    g.finish();
}

criterion_group!(parsers, benches);
criterion_main!(parsers);
