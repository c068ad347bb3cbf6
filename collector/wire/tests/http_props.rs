//! Property tests of `conn::HttpConnection`: a captured-like conversation gives
//! the same events (and counters) however its bytes are split into calls, and
//! arbitrary or corrupted input never panics and keeps memory bounded.

use mcptap_wire::conn::{HttpConfig, HttpConnection};
use mcptap_wire::stats::WireStats;
use mcptap_wire::{ConnMeta, Dir, FlowId, HttpEvent};
use proptest::prelude::*;

const C2S: Dir = Dir::ClientToServer;
const S2C: Dir = Dir::ServerToClient;

fn meta() -> ConnMeta {
    ConnMeta {
        flow: FlowId(1),
        client: "192.168.1.10:51000".parse().expect("addr"),
        server: "192.168.1.20:3000".parse().expect("addr"),
        client_isn: 42,
    }
}

fn chunk(payload: &[u8]) -> Vec<u8> {
    let mut v = format!("{:x}\r\n", payload.len()).into_bytes();
    v.extend_from_slice(payload);
    v.extend_from_slice(b"\r\n");
    v
}

fn post(id: u64, extra_head: &str) -> Vec<u8> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"hi {id}"}}}}}}"#
    );
    format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost:3000\r\nAccept: application/json, text/event-stream\r\n\
         Content-Type: application/json\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\n{extra_head}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn json_resp(id: u64) -> Vec<u8> {
    let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[]}}}}"#);
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A conversation shaped like real MCP traffic: JSON and SSE (CRLF and LF)
/// responses, pipelining, a 202, a chunked request with trailers,
/// `100 Continue`, and a final SSE stream cut by the close.
fn conversation() -> Vec<(Dir, Vec<u8>)> {
    let mut segs = Vec::new();
    segs.push((C2S, post(1, "")));
    segs.push((S2C, json_resp(1)));
    // Pipelined: a request and a notification in one segment.
    let notif = br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9}}"#;
    let mut two = post(2, "");
    two.extend(
        format!(
            "POST /mcp HTTP/1.1\r\nHost: localhost:3000\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            notif.len()
        )
        .as_bytes(),
    );
    two.extend_from_slice(notif);
    segs.push((C2S, two));
    // Python-style SSE answer, then the 202 for the notification.
    let mut py =
        b"HTTP/1.1 200 OK\r\ncache-control: no-cache, no-transform\r\nconnection: keep-alive\r\n\
content-type: text/event-stream\r\nx-accel-buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    py.extend(chunk(b"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\r\n\r\n"));
    py.extend(chunk(b": ping - 2026-11-21 05:00:15\r\n\r\n"));
    py.extend(chunk(
        b"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\r\n\r\n",
    ));
    py.extend(b"0\r\n\r\n");
    py.extend(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n");
    segs.push((S2C, py));
    // Legacy GET stream, answered Node-style (LF) and ended.
    segs.push((
        C2S,
        b"GET /mcp HTTP/1.1\r\nHost: localhost:3000\r\nAccept: text/event-stream\r\nmcp-session-id: 5f2c\r\n\r\n"
            .to_vec(),
    ));
    let mut node =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    node.extend(chunk(b"id: s1_0\nretry: 3000\ndata: \n\n"));
    node.extend(chunk(
        b"event: message\nid: s1_1\ndata: {\"a\":\ndata: 1}\n\n",
    ));
    node.extend(b"0\r\n\r\n");
    segs.push((S2C, node));
    // Chunked request with an extension and a trailer.
    let mut chunked =
        b"POST /mcp HTTP/1.1\r\nHost: localhost:3000\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    chunked.extend(b"11;x=y\r\n{\"jsonrpc\":\"2.0\",\r\n");
    chunked.extend(chunk(b"\"id\":3,\"method\":\"ping\"}"));
    chunked.extend(b"0\r\nX-T: 1\r\n\r\n");
    segs.push((C2S, chunked));
    let mut cresp =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    cresp.extend(chunk(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#));
    cresp.extend(b"0\r\n\r\n");
    segs.push((S2C, cresp));
    // Expect: 100-continue.
    let full = post(4, "Expect: 100-continue\r\n");
    let split = full
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| p + 4);
    let (head, body) = full.split_at(split);
    segs.push((C2S, head.to_vec()));
    segs.push((S2C, b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()));
    segs.push((C2S, body.to_vec()));
    // Final SSE stream, cut by the close.
    let mut cut =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    cut.extend(chunk(b"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\r\n\r\n"));
    cut.extend(b"20\r\nevent: mess");
    segs.push((S2C, cut));
    segs
}

/// Feeds each segment as the given pieces (timestamp = segment number), then closes.
fn feed(
    segs: &[(Dir, Vec<Vec<u8>>)],
    saw_syn: bool,
    cfg: HttpConfig,
) -> (Vec<HttpEvent>, WireStats) {
    let mut conn = HttpConnection::new(meta(), saw_syn, cfg);
    let mut stats = WireStats::default();
    let mut out = Vec::new();
    for (n, (dir, pieces)) in segs.iter().enumerate() {
        for p in pieces {
            conn.on_data(*dir, n as u64, p, &mut stats, &mut out);
        }
    }
    conn.on_close(1000, &mut stats, &mut out);
    (out, stats)
}

fn whole(segs: &[(Dir, Vec<u8>)]) -> Vec<(Dir, Vec<Vec<u8>>)> {
    segs.iter().map(|(d, b)| (*d, vec![b.clone()])).collect()
}

#[test]
fn conversation_is_understood() {
    let (out, stats) = feed(&whole(&conversation()), true, HttpConfig::default());
    let reqs = out
        .iter()
        .filter(|e| matches!(e, HttpEvent::Request { .. }))
        .count();
    let sse = out
        .iter()
        .filter(|e| matches!(e, HttpEvent::SseEvent { .. }))
        .count();
    let ends: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            HttpEvent::ResponseEnd { index, flags, .. } => Some((*index, flags.incomplete)),
            _ => None,
        })
        .collect();
    assert_eq!(reqs, 6);
    let chunked_body = out.iter().find_map(|e| match e {
        HttpEvent::Request { req, .. } if req.index == 4 => Some(req.body.clone()),
        _ => None,
    });
    assert_eq!(
        chunked_body.as_deref(),
        Some(&br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#[..])
    );
    assert_eq!(sse, 5);
    assert_eq!(
        ends,
        vec![
            (0, false),
            (1, false),
            (2, false),
            (3, false),
            (4, false),
            (5, true)
        ]
    );
    assert_eq!(stats.http_parse_errors, 0);
    assert_eq!(stats.http_resync_skipped_bytes, 0);
    assert_eq!(stats.http_informational, 1);
    assert_eq!(stats.sse_comments, 1);
}

#[test]
fn every_two_way_split_gives_same_events() {
    let segs = conversation();
    let reference = feed(&whole(&segs), true, HttpConfig::default());
    for s in 0..segs.len() {
        let bytes = &segs[s].1;
        for i in 0..=bytes.len() {
            let mut split = whole(&segs);
            let (a, b) = bytes.split_at(i);
            split[s].1 = vec![a.to_vec(), b.to_vec()];
            let got = feed(&split, true, HttpConfig::default());
            assert_eq!(got, reference, "segment {s} split at {i}");
        }
    }
}

/// Cuts every segment into pieces whose sizes cycle through `sizes`.
fn cut(segs: &[(Dir, Vec<u8>)], sizes: &[usize]) -> Vec<(Dir, Vec<Vec<u8>>)> {
    let mut k = 0usize;
    segs.iter()
        .map(|(d, b)| {
            let mut pieces = Vec::new();
            let mut rest: &[u8] = b;
            while !rest.is_empty() {
                let n = sizes
                    .get(k % sizes.len().max(1))
                    .copied()
                    .unwrap_or(1)
                    .clamp(1, rest.len());
                k += 1;
                let (p, r) = rest.split_at(n);
                pieces.push(p.to_vec());
                rest = r;
            }
            (*d, pieces)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_multi_splits_give_same_events(sizes in prop::collection::vec(1usize..80, 1..40)) {
        let segs = conversation();
        let reference = feed(&whole(&segs), true, HttpConfig::default());
        prop_assert_eq!(feed(&cut(&segs, &sizes), true, HttpConfig::default()), reference);
    }

    #[test]
    fn mid_connection_splits_give_same_events(
        skip in 0usize..400,
        sizes in prop::collection::vec(1usize..80, 1..40),
    ) {
        // Drop the first `skip` bytes of the first segment: a capture that began
        // mid-connection. Splitting must still not change anything.
        let mut segs = conversation();
        let first = &mut segs[0].1;
        let skip = skip.min(first.len());
        first.drain(..skip);
        let reference = feed(&whole(&segs), false, HttpConfig::default());
        prop_assert_eq!(feed(&cut(&segs, &sizes), false, HttpConfig::default()), reference);
    }

    #[test]
    fn small_caps_splits_give_same_events(sizes in prop::collection::vec(1usize..80, 1..40)) {
        let cfg = HttpConfig { max_body_bytes: 24, max_head_bytes: 200 };
        let segs = conversation();
        let reference = feed(&whole(&segs), true, cfg);
        prop_assert_eq!(feed(&cut(&segs, &sizes), true, cfg), reference);
    }

    #[test]
    fn random_input_never_panics_and_stays_bounded(
        ops in prop::collection::vec(
            (any::<bool>(), prop::collection::vec(any::<u8>(), 0..300), 0u8..10),
            0..40,
        ),
        saw_syn in any::<bool>(),
    ) {
        let cfg = HttpConfig { max_body_bytes: 256, max_head_bytes: 512 };
        let mut conn = HttpConnection::new(meta(), saw_syn, cfg);
        let mut stats = WireStats::default();
        let mut out = Vec::new();
        for (i, (c2s, bytes, action)) in ops.iter().enumerate() {
            let dir = if *c2s { C2S } else { S2C };
            if *action == 0 {
                conn.on_gap(dir, i as u64, bytes.len() as u64 + 1, &mut stats, &mut out);
            } else {
                conn.on_data(dir, i as u64, bytes, &mut stats, &mut out);
            }
            prop_assert!(conn.buffered_bytes() <= bound(cfg), "{}", conn.buffered_bytes());
        }
        conn.on_close(99, &mut stats, &mut out);
        let closed_last = matches!(out.last(), Some(HttpEvent::Closed { .. }));
        prop_assert!(closed_last);
    }

    #[test]
    fn corrupted_conversation_never_panics_and_stays_bounded(
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..20),
        gaps in prop::collection::vec((any::<prop::sample::Index>(), 1u64..200), 0..3),
        sizes in prop::collection::vec(1usize..120, 1..20),
        saw_syn in any::<bool>(),
    ) {
        let cfg = HttpConfig { max_body_bytes: 64, max_head_bytes: 300 };
        let mut segs = conversation();
        for (idx, val) in &mutations {
            let s = idx.index(segs.len());
            let b = &mut segs[s].1;
            if !b.is_empty() {
                let p = idx.index(b.len());
                b[p] = *val;
            }
        }
        let gap_after: Vec<(usize, u64)> = gaps.iter().map(|(i, n)| (i.index(segs.len()), *n)).collect();
        let mut conn = HttpConnection::new(meta(), saw_syn, cfg);
        let mut stats = WireStats::default();
        let mut out = Vec::new();
        for (n, (dir, pieces)) in cut(&segs, &sizes).iter().enumerate() {
            for p in pieces {
                conn.on_data(*dir, n as u64, p, &mut stats, &mut out);
                prop_assert!(conn.buffered_bytes() <= bound(cfg));
            }
            for (s, len) in &gap_after {
                if *s == n {
                    conn.on_gap(*dir, n as u64, *len, &mut stats, &mut out);
                }
            }
        }
        conn.on_close(99, &mut stats, &mut out);
        // Every reported response end pairs with a reported request.
        let req_idx: Vec<u64> = out.iter().filter_map(|e| match e {
            HttpEvent::Request { req, .. } => Some(req.index),
            _ => None,
        }).collect();
        for e in &out {
            if let HttpEvent::ResponseEnd { index, .. } | HttpEvent::ResponseHead { index, .. } = e {
                prop_assert!(req_idx.contains(index));
            }
        }
        let closed_last = matches!(out.last(), Some(HttpEvent::Closed { .. }));
        prop_assert!(closed_last);
    }
}

/// Upper bound of `HttpConnection::buffered_bytes` for `cfg`: per direction,
/// a parser buffer (head or resync line), a body, and an SSE event in progress.
fn bound(cfg: HttpConfig) -> usize {
    2 * (cfg.max_head_bytes.max(mcptap_wire::http::RESYNC_LINE_MAX) + 1 + 4 * cfg.max_body_bytes)
}
