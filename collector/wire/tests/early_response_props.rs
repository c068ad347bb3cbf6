//! Property: however the segments of a request and of its response interleave
//! on the wire (the response may start, or end, before the request's body is
//! complete: nginx and Starlette answer from the head alone), one connection
//! reports the same events: the request whole and first, then its response.
//! A request body that never completes gives the same events in every order
//! too (the request flagged `incomplete`, then the response).

use mcptap_wire::conn::{HttpConfig, HttpConnection};
use mcptap_wire::stats::WireStats;
use mcptap_wire::{ConnMeta, Dir, FlowId, HttpEvent};
use proptest::prelude::*;

fn meta() -> ConnMeta {
    ConnMeta {
        flow: FlowId(7),
        client: "10.0.0.1:40000".parse().expect("addr"),
        server: "10.0.0.2:8000".parse().expect("addr"),
        client_isn: 1,
    }
}

/// A request head and its body, and a response (JSON or SSE).
fn messages(body_len: usize, chunked: bool, sse_events: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let body: Vec<u8> = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"{}\"}}}}}}",
        "x".repeat(body_len)
    )
    .into_bytes();
    let (head, body) = if chunked {
        let mut framed = Vec::new();
        for piece in body.chunks(37) {
            framed.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            framed.extend_from_slice(piece);
            framed.extend_from_slice(b"\r\n");
        }
        framed.extend_from_slice(b"0\r\n\r\n");
        (
            b"POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            framed,
        )
    } else {
        (
            format!(
                "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes(),
            body,
        )
    };
    let resp = if sse_events == 0 {
        let json = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32601,\"message\":\"no\"}}";
        let mut r = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            json.len()
        )
        .into_bytes();
        r.extend_from_slice(json);
        r
    } else {
        let mut r =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        for i in 0..sse_events {
            let ev = format!(
                "event: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{{\"progress\":{i}}}}}\n\n"
            );
            r.extend_from_slice(format!("{:x}\r\n{ev}\r\n", ev.len()).as_bytes());
        }
        r.extend_from_slice(b"0\r\n\r\n");
        r
    };
    (head, body, resp)
}

/// Cuts `bytes` at the given fractions (per mille) into segments.
fn cut(bytes: &[u8], cuts: &[u16]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|c| bytes.len() * usize::from(*c) / 1000)
        .filter(|&p| p > 0 && p < bytes.len())
        .collect();
    at.sort_unstable();
    at.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for p in at.into_iter().chain([bytes.len()]) {
        out.push(bytes[start..p].to_vec());
        start = p;
    }
    out
}

/// Feeds the request head, then the body and response segments in the order
/// `order` picks (true: next request segment), each segment with its own
/// timestamp; then closes.
fn run(
    head: &[u8],
    req: &[Vec<u8>],
    resp: &[Vec<u8>],
    order: &[bool],
) -> (Vec<HttpEvent>, WireStats) {
    let mut conn = HttpConnection::new(meta(), true, HttpConfig::default());
    let mut stats = WireStats::default();
    let mut out = Vec::new();
    conn.on_data(Dir::ClientToServer, 1, head, &mut stats, &mut out);
    let (mut i, mut j) = (0, 0);
    let mut picks = order.iter().copied().chain(std::iter::repeat(true));
    while i < req.len() || j < resp.len() {
        let take_req = j >= resp.len() || (i < req.len() && picks.next().unwrap_or(true));
        if take_req {
            let ts = 100 + i as u64;
            conn.on_data(Dir::ClientToServer, ts, &req[i], &mut stats, &mut out);
            i += 1;
        } else {
            let ts = 10_000 + j as u64;
            conn.on_data(Dir::ServerToClient, ts, &resp[j], &mut stats, &mut out);
            j += 1;
        }
    }
    conn.on_close(99_999, &mut stats, &mut out);
    (out, stats)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_interleaving_gives_the_same_events(
        body_len in 0usize..300,
        chunked in any::<bool>(),
        sse_events in 0usize..4,
        req_cuts in proptest::collection::vec(1u16..1000, 0..6),
        resp_cuts in proptest::collection::vec(1u16..1000, 0..6),
        order in proptest::collection::vec(any::<bool>(), 0..16),
        drop_tail in 0usize..3,
    ) {
        let (head, body, resp) = messages(body_len, chunked, sse_events);
        let mut req = cut(&body, &req_cuts);
        // `drop_tail` > 0: the end of the request body never arrives.
        let keep = req.len().saturating_sub(drop_tail);
        req.truncate(keep);
        let resp = cut(&resp, &resp_cuts);
        let in_order = vec![true; req.len()];
        let (want, _) = run(&head, &req, &resp, &in_order);
        let (got, stats) = run(&head, &req, &resp, &order);
        prop_assert_eq!(&got, &want);
        // The request is reported once, before any event of its response.
        let first = got.iter().position(|e| matches!(e, HttpEvent::Request { .. }));
        prop_assert_eq!(first, Some(0));
        prop_assert_eq!(got.iter().filter(|e| matches!(e, HttpEvent::Request { .. })).count(), 1);
        let HttpEvent::Request { req: r, .. } = &got[0] else { unreachable!() };
        // (A chunked body missing only its final CRLF ends normally: RFC 9112
        // §7.1 leniency of the parser, so only Content-Length bodies here.)
        if !chunked {
            prop_assert_eq!(r.flags.incomplete, keep < cut(&body, &req_cuts).len());
        }
        prop_assert!(stats.http_early_responses <= 1);
    }
}
