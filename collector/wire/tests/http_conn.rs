//! Scenario tests of `conn::HttpConnection` on realistic MCP Streamable HTTP
//! bytes (Python-style CRLF SSE, Node-style LF SSE, JSON, 202s), including the
//! damaged cases: cut streams, gaps, garbage, mid-connection captures.

use mcptap_wire::conn::{HttpConfig, HttpConnection};
use mcptap_wire::stats::WireStats;
use mcptap_wire::{ConnMeta, Dir, FlowId, HttpEvent, HttpRequest, MsgFlags, SseEvent, header_str};

const C2S: Dir = Dir::ClientToServer;
const S2C: Dir = Dir::ServerToClient;

fn meta() -> ConnMeta {
    ConnMeta {
        flow: FlowId(7),
        client: "10.0.0.1:40000".parse().expect("addr"),
        server: "10.0.0.2:8000".parse().expect("addr"),
        client_isn: 1000,
    }
}

struct Run {
    conn: HttpConnection,
    stats: WireStats,
    out: Vec<HttpEvent>,
}

impl Run {
    fn new(saw_syn: bool) -> Self {
        Self::with_cfg(saw_syn, HttpConfig::default())
    }
    fn with_cfg(saw_syn: bool, cfg: HttpConfig) -> Self {
        Run {
            conn: HttpConnection::new(meta(), saw_syn, cfg),
            stats: WireStats::default(),
            out: Vec::new(),
        }
    }
    fn data(&mut self, dir: Dir, ts: u64, bytes: &[u8]) -> &mut Self {
        self.conn
            .on_data(dir, ts, bytes, &mut self.stats, &mut self.out);
        self
    }
    fn gap(&mut self, dir: Dir, ts: u64, len: u64) -> &mut Self {
        self.conn
            .on_gap(dir, ts, len, &mut self.stats, &mut self.out);
        self
    }
    fn close(&mut self, ts: u64) -> &mut Self {
        self.conn.on_close(ts, &mut self.stats, &mut self.out);
        self
    }
    fn requests(&self) -> Vec<&HttpRequest> {
        self.out
            .iter()
            .filter_map(|e| match e {
                HttpEvent::Request { req, .. } => Some(req),
                _ => None,
            })
            .collect()
    }
    /// (index, status, sse) of every ResponseHead.
    fn heads(&self) -> Vec<(u64, u16, bool)> {
        self.out
            .iter()
            .filter_map(|e| match e {
                HttpEvent::ResponseHead {
                    index, status, sse, ..
                } => Some((*index, *status, *sse)),
                _ => None,
            })
            .collect()
    }
    /// (index, body as text, flags) of every ResponseEnd.
    fn ends(&self) -> Vec<(u64, String, MsgFlags)> {
        self.out
            .iter()
            .filter_map(|e| match e {
                HttpEvent::ResponseEnd {
                    index, body, flags, ..
                } => Some((*index, String::from_utf8_lossy(body).into_owned(), *flags)),
                _ => None,
            })
            .collect()
    }
    fn sse(&self) -> Vec<(u64, SseEvent)> {
        self.out
            .iter()
            .filter_map(|e| match e {
                HttpEvent::SseEvent { index, event, .. } => Some((*index, event.clone())),
                _ => None,
            })
            .collect()
    }
}

fn tools_call_body(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"add","arguments":{{"a":1,"b":2}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}}}}"#
    )
}

/// A modern (2026-07-28) `tools/call` POST with a Content-Length body.
fn post_mcp(id: u64) -> Vec<u8> {
    let body = tools_call_body(id);
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAccept: application/json, text/event-stream\r\n\
         Content-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n\
         Mcp-Name: add\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn result_body(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"3"}}]}}}}"#
    )
}

/// A JSON (non-SSE) response with Content-Length.
fn json_response(id: u64) -> Vec<u8> {
    let body = result_body(id);
    format!(
        "HTTP/1.1 200 OK\r\ndate: Sat, 21 Nov 2026 05:00:00 GMT\r\nserver: uvicorn\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn chunk(payload: &[u8]) -> Vec<u8> {
    let mut v = format!("{:x}\r\n", payload.len()).into_bytes();
    v.extend_from_slice(payload);
    v.extend_from_slice(b"\r\n");
    v
}

const PY_SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ndate: Sat, 21 Nov 2026 05:00:00 GMT\r\nserver: uvicorn\r\n\
cache-control: no-cache, no-transform\r\nconnection: keep-alive\r\ncontent-type: text/event-stream\r\n\
x-accel-buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n";

const NODE_SSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
Cache-Control: no-cache\r\nConnection: keep-alive\r\nDate: Sat, 21 Nov 2026 05:00:00 GMT\r\n\
Transfer-Encoding: chunked\r\n\r\n";

fn ev(event: Option<&str>, data: &str, id: Option<&str>, retry: Option<u64>) -> SseEvent {
    SseEvent {
        event: event.map(str::to_owned),
        data: data.to_owned(),
        id: id.map(str::to_owned),
        retry_ms: retry,
    }
}

#[test]
fn keep_alive_several_requests() {
    let mut r = Run::new(true);
    for i in 0..3u64 {
        r.data(C2S, 10 * i + 1, &post_mcp(i + 1));
        r.data(S2C, 10 * i + 2, &json_response(i + 1));
    }
    r.close(100);
    let reqs = r.requests();
    assert_eq!(reqs.len(), 3);
    for (i, req) in reqs.iter().enumerate() {
        assert_eq!(req.index, i as u64);
        assert_eq!(req.method, "POST");
        assert_eq!(req.target, "/mcp");
        assert_eq!(req.version_minor, 1);
        assert_eq!(req.body, tools_call_body(i as u64 + 1).into_bytes());
        assert_eq!(
            header_str(&req.headers, "mcp-method").as_deref(),
            Some("tools/call")
        );
        assert_eq!(header_str(&req.headers, "MCP-NAME").as_deref(), Some("add"));
        assert_eq!(req.ts_first, 10 * i as u64 + 1);
        assert_eq!(req.ts_last, 10 * i as u64 + 1);
        assert_eq!(req.flags, MsgFlags::default());
    }
    assert_eq!(
        r.heads(),
        vec![(0, 200, false), (1, 200, false), (2, 200, false)]
    );
    let ends = r.ends();
    assert_eq!(ends.len(), 3);
    for (i, (index, body, flags)) in ends.iter().enumerate() {
        assert_eq!(*index, i as u64);
        assert_eq!(*body, result_body(i as u64 + 1));
        assert_eq!(*flags, MsgFlags::default());
    }
    // Event order: Request, ResponseHead, ResponseEnd per exchange, Closed last.
    assert!(matches!(r.out.first(), Some(HttpEvent::Request { .. })));
    assert!(matches!(r.out.get(1), Some(HttpEvent::ResponseHead { .. })));
    assert!(matches!(r.out.get(2), Some(HttpEvent::ResponseEnd { .. })));
    assert_eq!(
        r.out.last(),
        Some(&HttpEvent::Closed {
            flow: FlowId(7),
            ts: 100
        })
    );
    assert_eq!(r.out.len(), 10);
    assert_eq!(r.stats.http_requests, 3);
    assert_eq!(r.stats.http_responses, 3);
    assert_eq!(r.stats.http_parse_errors, 0);
    assert_eq!(r.stats.http_resync_skipped_bytes, 0);
    assert!(matches!(r.out.first(), Some(HttpEvent::Request { conn, .. }) if *conn == meta()));
}

#[test]
fn pipelined_requests() {
    let mut r = Run::new(true);
    let mut all = Vec::new();
    for i in 1..=3 {
        all.extend(post_mcp(i));
    }
    all.extend(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    r.data(C2S, 1, &all);
    assert_eq!(r.requests().len(), 4);
    assert_eq!(r.conn.outstanding_requests(), 4);
    let mut resp = Vec::new();
    for i in 1..=3 {
        resp.extend(json_response(i));
    }
    resp.extend(b"HTTP/1.1 204 No Content\r\n\r\n");
    r.data(S2C, 2, &resp);
    let idx: Vec<u64> = r.requests().iter().map(|q| q.index).collect();
    assert_eq!(idx, vec![0, 1, 2, 3]);
    assert_eq!(r.requests().get(3).map(|q| q.method.as_str()), Some("GET"));
    assert_eq!(r.requests().get(3).map(|q| q.body.len()), Some(0));
    assert_eq!(
        r.heads(),
        vec![
            (0, 200, false),
            (1, 200, false),
            (2, 200, false),
            (3, 204, false)
        ]
    );
    let ends = r.ends();
    for i in 0..3 {
        assert_eq!(
            ends.get(i).map(|e| e.1.clone()),
            Some(result_body(i as u64 + 1))
        );
    }
    assert_eq!(ends.get(3).map(|e| e.1.as_str()), Some(""));
    assert_eq!(r.conn.outstanding_requests(), 0);
}

#[test]
fn chunked_request_and_response_with_extensions_and_trailers() {
    let mut r = Run::new(true);
    let body = tools_call_body(5);
    let (a, b) = body.as_bytes().split_at(20);
    let mut req = b"POST /mcp HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nMcp-Method: tools/call\r\n\r\n".to_vec();
    req.extend(format!("{:X};ext=1\r\n", a.len()).as_bytes());
    req.extend(a);
    req.extend(b"\r\n");
    req.extend(format!("{:x} ; name=\"quoted\"\r\n", b.len()).as_bytes());
    req.extend(b);
    req.extend(b"\r\n0\r\nX-Checksum: abc\r\n\r\n");
    r.data(C2S, 1, &req);
    let reqs = r.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs.first().map(|q| q.body.clone()),
        Some(body.into_bytes())
    );
    assert_eq!(reqs.first().map(|q| q.flags), Some(MsgFlags::default()));

    let rb = result_body(5);
    let mut resp =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    resp.extend(chunk(&rb.as_bytes()[..10]));
    resp.extend(b"5;a=b\r\n");
    resp.extend(&rb.as_bytes()[10..15]);
    resp.extend(b"\r\n");
    resp.extend(chunk(&rb.as_bytes()[15..]));
    resp.extend(b"0\r\nServer-Timing: total;dur=3\r\n\r\n");
    r.data(S2C, 2, &resp);
    assert_eq!(r.ends(), vec![(0, rb, MsgFlags::default())]);
    assert_eq!(r.stats.http_parse_errors, 0);
}

#[test]
fn expect_100_continue() {
    let mut r = Run::new(true);
    let body = tools_call_body(9);
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    r.data(C2S, 1, head.as_bytes());
    assert!(r.requests().is_empty(), "request reported before its body");
    r.data(S2C, 2, b"HTTP/1.1 100 Continue\r\n\r\n");
    assert!(r.heads().is_empty(), "1xx is not a final response");
    r.data(C2S, 3, body.as_bytes());
    r.data(S2C, 4, &json_response(9));
    let reqs = r.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs.first().map(|q| (q.ts_first, q.ts_last)), Some((1, 3)));
    assert_eq!(
        reqs.first().map(|q| q.body.clone()),
        Some(body.into_bytes())
    );
    assert_eq!(r.heads(), vec![(0, 200, false)]);
    assert_eq!(r.ends(), vec![(0, result_body(9), MsgFlags::default())]);
    assert_eq!(r.stats.http_informational, 1);
    assert_eq!(r.stats.http_responses, 1);
}

#[test]
fn accepted_202_without_body() {
    let notif = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let mut req = format!(
        "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nmcp-session-id: abc\r\nContent-Length: {}\r\n\r\n",
        notif.len()
    )
    .into_bytes();
    req.extend_from_slice(notif);

    // Content-Length: 0 on a kept-alive connection; the next exchange follows.
    let mut r = Run::new(true);
    r.data(C2S, 1, &req);
    r.data(
        S2C,
        2,
        b"HTTP/1.1 202 Accepted\r\ndate: x\r\nserver: uvicorn\r\ncontent-length: 0\r\n\r\n",
    );
    r.data(C2S, 3, &post_mcp(2));
    r.data(S2C, 4, &json_response(2));
    assert_eq!(r.heads(), vec![(0, 202, false), (1, 200, false)]);
    assert_eq!(
        r.ends(),
        vec![
            (0, String::new(), MsgFlags::default()),
            (1, result_body(2), MsgFlags::default())
        ]
    );

    // Neither Content-Length nor Transfer-Encoding: a response body runs until
    // close (RFC 9112 §6.3 item 8); it is empty and complete at close.
    let mut r = Run::new(true);
    r.data(C2S, 1, &req);
    r.data(S2C, 2, b"HTTP/1.1 202 Accepted\r\nserver: x\r\n\r\n");
    assert_eq!(r.heads(), vec![(0, 202, false)]);
    assert!(r.ends().is_empty());
    r.close(9);
    assert_eq!(r.ends(), vec![(0, String::new(), MsgFlags::default())]);
    // A request with neither header has no body: reported at once.
    let mut r = Run::new(true);
    r.data(
        C2S,
        1,
        b"DELETE /mcp HTTP/1.1\r\nHost: h\r\nMcp-Session-Id: abc\r\n\r\n",
    );
    assert_eq!(r.requests().len(), 1);
    assert_eq!(
        r.requests().first().map(|q| q.method.as_str()),
        Some("DELETE")
    );
}

#[test]
fn sse_python_crlf_chunked() {
    let mut r = Run::new(true);
    r.data(C2S, 1, &post_mcp(3));
    r.data(S2C, 2, PY_SSE_HEAD);
    let progress = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":0.5}}"#;
    r.data(
        S2C,
        3,
        &chunk(format!("event: message\r\ndata: {progress}\r\n\r\n").as_bytes()),
    );
    r.data(
        S2C,
        4,
        &chunk(b": ping - 2026-11-21 05:00:15.000000+00:00\r\n\r\n"),
    );
    // The final event split over two chunks and two calls.
    let fin = format!("event: message\r\ndata: {}\r\n\r\n", result_body(3));
    let (a, b) = fin.as_bytes().split_at(17);
    r.data(S2C, 5, &chunk(a));
    r.data(S2C, 6, &[chunk(b), b"0\r\n\r\n".to_vec()].concat());
    assert_eq!(r.heads(), vec![(0, 200, true)]);
    assert_eq!(
        r.sse(),
        vec![
            (0, ev(Some("message"), progress, None, None)),
            (0, ev(Some("message"), &result_body(3), None, None)),
        ]
    );
    let ts: Vec<u64> = r
        .out
        .iter()
        .filter_map(|e| match e {
            HttpEvent::SseEvent { ts, .. } => Some(*ts),
            _ => None,
        })
        .collect();
    assert_eq!(ts, vec![3, 6]);
    assert_eq!(r.ends(), vec![(0, String::new(), MsgFlags::default())]);
    assert_eq!(r.stats.sse_events, 2);
    assert_eq!(r.stats.sse_comments, 1);
    assert!(matches!(
        r.out.last(),
        Some(HttpEvent::ResponseEnd { ts: 6, .. })
    ));
}

#[test]
fn sse_node_lf_priming_multiline_retry() {
    let mut r = Run::new(true);
    r.data(C2S, 1, &post_mcp(4));
    let mut body = Vec::new();
    body.extend(chunk(b"id: 1_0\nretry: 1000\ndata: \n\n"));
    body.extend(chunk(b"event: message\nid: 1_1\ndata: {\"jsonrpc\":\"2.0\",\ndata: \"method\":\"notifications/message\"}\n\n"));
    body.extend(chunk(b": keepalive\n\n"));
    body.extend(chunk(
        format!("event: message\nid: 1_2\ndata: {}\n\n", result_body(4)).as_bytes(),
    ));
    body.extend(b"0\r\n\r\n");
    // Feed one byte at a time.
    r.data(S2C, 2, NODE_SSE_HEAD);
    for b in &body {
        r.data(S2C, 3, std::slice::from_ref(b));
    }
    assert_eq!(r.heads(), vec![(0, 200, true)]);
    assert_eq!(
        r.sse(),
        vec![
            (0, ev(None, "", Some("1_0"), Some(1000))),
            (
                0,
                ev(
                    Some("message"),
                    "{\"jsonrpc\":\"2.0\",\n\"method\":\"notifications/message\"}",
                    Some("1_1"),
                    None
                )
            ),
            (0, ev(Some("message"), &result_body(4), Some("1_2"), None)),
        ]
    );
    assert_eq!(r.ends(), vec![(0, String::new(), MsgFlags::default())]);
    assert_eq!(r.stats.sse_comments, 1);
}

#[test]
fn stream_cut_before_terminating_chunk() {
    let mut r = Run::new(true);
    r.data(C2S, 1, &post_mcp(3));
    r.data(S2C, 2, PY_SSE_HEAD);
    r.data(S2C, 3, &chunk(b"event: message\r\ndata: {\"a\":1}\r\n\r\n"));
    r.data(S2C, 4, &chunk(b"event: message\r\ndata: {\"half"));
    r.close(50);
    assert_eq!(
        r.sse(),
        vec![(0, ev(Some("message"), "{\"a\":1}", None, None))]
    );
    let ends = r.ends();
    assert_eq!(ends.len(), 1);
    let (index, body, flags) = ends.first().cloned().expect("one end");
    assert_eq!((index, body.as_str()), (0, ""));
    assert!(flags.incomplete);
    assert!(matches!(
        r.out.get(r.out.len() - 2),
        Some(HttpEvent::ResponseEnd { ts: 4, .. })
    ));
    assert_eq!(
        r.out.last(),
        Some(&HttpEvent::Closed {
            flow: FlowId(7),
            ts: 50
        })
    );
    assert_eq!(r.stats.http_incomplete_messages, 1);
    assert_eq!(r.stats.sse_events_dropped, 1);
}

#[test]
fn request_body_never_arrives() {
    // Content-Length announced, body never sent, connection closed.
    let mut r = Run::new(true);
    r.data(
        C2S,
        5,
        b"POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 120\r\n\r\n",
    );
    r.data(C2S, 6, b"{\"jsonrpc\"");
    assert!(r.requests().is_empty());
    r.close(30);
    let reqs = r.requests();
    assert_eq!(reqs.len(), 1);
    let q = reqs.first().expect("request");
    assert!(q.flags.incomplete);
    assert_eq!(q.body, b"{\"jsonrpc\"".to_vec());
    assert_eq!((q.ts_first, q.ts_last), (5, 6));
    assert!(matches!(r.out.last(), Some(HttpEvent::Closed { .. })));
    assert_eq!(r.stats.http_incomplete_messages, 1);

    // Chunked body cut by a gap: reported at the gap, flagged gap + incomplete.
    let mut r = Run::new(true);
    r.data(
        C2S,
        5,
        b"POST /mcp HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    r.gap(C2S, 7, 300);
    let reqs = r.requests();
    assert_eq!(reqs.len(), 1);
    let f = reqs.first().map(|q| q.flags).unwrap_or_default();
    assert!(f.incomplete && f.gap);
}

#[test]
fn body_over_cap_truncated_next_message_parsed() {
    let cfg = HttpConfig {
        max_body_bytes: 32,
        max_head_bytes: 4096,
    };
    let mut r = Run::with_cfg(true, cfg);
    r.data(C2S, 1, &post_mcp(1));
    r.data(C2S, 2, &post_mcp(2));
    r.data(S2C, 3, &json_response(1));
    r.data(S2C, 4, &json_response(2));
    let reqs = r.requests();
    assert_eq!(reqs.len(), 2);
    for (i, q) in reqs.iter().enumerate() {
        assert_eq!(
            q.body,
            tools_call_body(i as u64 + 1).as_bytes()[..32].to_vec()
        );
        assert!(q.flags.body_truncated);
        assert!(!q.flags.incomplete);
    }
    let ends = r.ends();
    assert_eq!(ends.len(), 2);
    assert_eq!(
        ends.get(1).map(|e| e.1.clone()),
        Some(result_body(2)[..32].to_owned())
    );
    assert!(ends.iter().all(|e| e.2.body_truncated));
    assert_eq!(r.stats.http_bodies_truncated, 4);
}

#[test]
fn garbage_then_valid_request_resyncs() {
    let mut r = Run::new(true);
    // (Not a TLS record: a connection that starts with one is TLS, `tls_conn.rs`.)
    let garbage = b"\x00\x02\x01\x02\x00\x01\x00\x01\xfc\x03\x03 random bytes\r\n\r\n";
    r.data(C2S, 1, garbage);
    r.data(C2S, 2, &post_mcp(1));
    r.data(S2C, 3, &json_response(1));
    let reqs = r.requests();
    assert_eq!(reqs.len(), 1);
    let q = reqs.first().expect("request");
    assert!(q.flags.resynced);
    assert_eq!(q.index, 0);
    assert_eq!(q.body, tools_call_body(1).into_bytes());
    assert_eq!(r.heads(), vec![(0, 200, false)]);
    assert_eq!(r.stats.http_parse_errors, 1);
    assert_eq!(r.stats.http_resync_skipped_bytes, garbage.len() as u64);
}

#[test]
fn capture_starts_mid_connection() {
    let mut r = Run::new(false);
    // The tail of an earlier request body, then (on the same line) a new request.
    let c_tail = br#"":{"a":1,"b":2}}}"#;
    let mut c = c_tail.to_vec();
    c.extend(post_mcp(8));
    r.data(C2S, 1, &c);
    // The tail of an SSE response to an earlier request (unpaired data), then the answer.
    let s_tail = b"vent: message\r\ndata: {}\r\n\r\n\r\n0\r\n\r\n";
    let mut s = s_tail.to_vec();
    s.extend(json_response(8));
    r.data(S2C, 2, &s);
    let reqs = r.requests();
    assert_eq!(reqs.len(), 1);
    let q = reqs.first().expect("request");
    assert!(q.flags.resynced);
    assert_eq!(q.body, tools_call_body(8).into_bytes());
    assert_eq!(r.heads(), vec![(0, 200, false)]);
    let ends = r.ends();
    assert_eq!(ends.len(), 1);
    let (_, body, flags) = ends.first().cloned().expect("end");
    assert_eq!(body, result_body(8));
    assert!(flags.resynced);
    assert_eq!(
        r.stats.http_resync_skipped_bytes,
        (c_tail.len() + s_tail.len()) as u64
    );

    // A response to a request sent before the capture: parsed, counted, not reported.
    let mut r = Run::new(false);
    r.data(S2C, 1, &json_response(1));
    r.data(C2S, 2, &post_mcp(2));
    r.data(S2C, 3, &json_response(2));
    assert_eq!(r.stats.http_unpaired_responses, 1);
    assert_eq!(r.heads(), vec![(0, 200, false)]);
    assert_eq!(r.ends().first().map(|e| e.1.clone()), Some(result_body(2)));
}

#[test]
fn gap_in_content_length_body_stays_in_sync() {
    let mut r = Run::new(true);
    r.data(C2S, 1, &post_mcp(1));
    let resp = json_response(1);
    let head_len = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head")
        + 4;
    let (head_and_some, rest) = resp.split_at(head_len + 10);
    let (_lost, tail) = rest.split_at(20);
    r.data(S2C, 2, head_and_some);
    r.gap(S2C, 3, 20);
    r.data(S2C, 4, tail);
    r.data(C2S, 5, &post_mcp(2));
    r.data(S2C, 6, &json_response(2));
    let ends = r.ends();
    assert_eq!(ends.len(), 2);
    let (_, body0, flags0) = ends.first().cloned().expect("end 0");
    assert!(flags0.gap && !flags0.incomplete);
    let rb = result_body(1);
    assert_eq!(body0, format!("{}{}", &rb[..10], &rb[30..]));
    assert_eq!(
        ends.get(1).cloned(),
        Some((1, result_body(2), MsgFlags::default()))
    );
    assert_eq!(r.stats.http_resync_skipped_bytes, 0);
}

#[test]
fn gap_in_chunked_body_resyncs() {
    let mut r = Run::new(true);
    r.data(C2S, 1, &post_mcp(1));
    r.data(S2C, 2, PY_SSE_HEAD);
    r.data(S2C, 3, &chunk(b"event: message\r\ndata: {\"p\":1}\r\n\r\n"));
    // The rest of the stream (more chunks, the terminator) is lost.
    r.gap(S2C, 4, 500);
    let ends = r.ends();
    assert_eq!(ends.len(), 1);
    let f = ends.first().map(|e| e.2).unwrap_or_default();
    assert!(f.gap && f.incomplete);
    // After the gap, bytes from the middle of something, then the next exchange.
    r.data(C2S, 5, &post_mcp(2));
    r.data(
        S2C,
        6,
        &[b"a\r\n0123456789\r\n0\r\n\r\n".to_vec(), json_response(2)].concat(),
    );
    assert_eq!(r.heads(), vec![(0, 200, true), (1, 200, false)]);
    let ends = r.ends();
    let (index, body, flags) = ends.get(1).cloned().expect("second end");
    assert_eq!((index, body), (1, result_body(2)));
    assert!(flags.resynced);
    assert_eq!(r.sse().len(), 1);

    // A gap inside one chunk's data is skipped: the stream stays in sync; the
    // damaged event is dropped, the next one is delivered.
    let mut r = Run::new(true);
    r.data(C2S, 1, &post_mcp(1));
    r.data(S2C, 2, PY_SSE_HEAD);
    let first = b"event: message\r\ndata: {\"p\":1}\r\n\r\n";
    let mut c = format!("{:x}\r\n", first.len()).into_bytes();
    c.extend(&first[..10]);
    r.data(S2C, 3, &c);
    r.gap(S2C, 4, 10);
    r.data(S2C, 5, &[&first[20..], b"\r\n".as_slice()].concat());
    r.data(
        S2C,
        6,
        &[
            chunk(b"event: message\r\ndata: {\"ok\":1}\r\n\r\n"),
            b"0\r\n\r\n".to_vec(),
        ]
        .concat(),
    );
    assert_eq!(
        r.sse(),
        vec![(0, ev(Some("message"), "{\"ok\":1}", None, None))]
    );
    let ends = r.ends();
    assert_eq!(ends.len(), 1);
    let f = ends.first().map(|e| e.2).unwrap_or_default();
    assert!(f.gap && !f.incomplete);
    assert_eq!(r.stats.sse_events_dropped, 1);
}

#[test]
fn roles_swapped_when_handshake_missed() {
    // The TCP layer guessed wrong: the "server" sends requests.
    let mut r = Run::new(false);
    r.data(S2C, 1, &post_mcp(1));
    r.data(C2S, 2, &json_response(1));
    assert!(r.conn.roles_swapped());
    assert_eq!(r.conn.request_dir(), Some(S2C));
    let conn = r
        .out
        .iter()
        .find_map(|e| match e {
            HttpEvent::Request { conn, .. } => Some(conn.clone()),
            _ => None,
        })
        .expect("request");
    assert_eq!(conn.client, meta().server);
    assert_eq!(conn.server, meta().client);
    assert_eq!(conn, r.conn.meta());
    assert_eq!(r.heads(), vec![(0, 200, false)]);
    assert_eq!(r.ends().first().map(|e| e.1.clone()), Some(result_body(1)));

    // Detection from a response seen first.
    let mut r = Run::new(false);
    r.data(C2S, 1, &json_response(1));
    assert!(r.conn.roles_swapped());
    assert_eq!(r.stats.http_unpaired_responses, 1);
}

#[test]
fn head_response_has_no_body() {
    let mut r = Run::new(true);
    r.data(
        C2S,
        1,
        b"HEAD /mcp HTTP/1.1\r\nHost: h\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    r.data(
        S2C,
        2,
        b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    assert_eq!(r.heads(), vec![(0, 200, false), (1, 200, false)]);
    assert_eq!(
        r.ends(),
        vec![
            (0, String::new(), MsgFlags::default()),
            (1, "ok".to_owned(), MsgFlags::default())
        ]
    );
}

#[test]
fn early_response_waits_for_the_request_body() {
    // nginx answers 413 from the head alone while the client still sends.
    let mut r = Run::new(true);
    r.data(
        C2S,
        1,
        b"POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n{\"jsonrpc\"",
    );
    r.data(
        S2C,
        2,
        b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n",
    );
    assert!(r.out.is_empty(), "held until the request is complete");
    assert_eq!(r.stats.http_early_responses, 1);
    r.data(C2S, 3, b":\"2.0\"}");
    assert!(matches!(r.out.first(), Some(HttpEvent::Request { req, .. })
            if !req.flags.incomplete && req.body == b"{\"jsonrpc\":\"2.0\"}" && req.ts_last == 3));
    assert_eq!(r.heads(), vec![(0, 413, false)]);
    assert!(matches!(
        r.out.get(1),
        Some(HttpEvent::ResponseHead { ts: 2, .. })
    ));
    r.close(4);
    assert_eq!(r.requests().len(), 1, "not reported twice");
}

#[test]
fn early_response_to_a_body_that_never_arrives_is_flagged() {
    let mut r = Run::new(true);
    r.data(
        C2S,
        1,
        b"POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n{\"jsonrpc\"",
    );
    r.data(
        S2C,
        2,
        b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n",
    );
    assert!(r.out.is_empty());
    r.close(3);
    assert!(matches!(r.out.first(), Some(HttpEvent::Request { req, .. })
            if req.flags.incomplete && req.body == b"{\"jsonrpc\""));
    assert_eq!(r.heads(), vec![(0, 413, false)]);
    assert_eq!(r.requests().len(), 1, "not reported twice");
    assert!(matches!(r.out.last(), Some(HttpEvent::Closed { .. })));
}

#[test]
fn early_response_past_the_hold_bound_releases_the_request() {
    let cfg = HttpConfig {
        max_body_bytes: 64,
        ..HttpConfig::default()
    };
    let mut r = Run::with_cfg(true, cfg);
    r.data(
        C2S,
        1,
        b"POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n{",
    );
    r.data(
        S2C,
        2,
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n",
    );
    assert!(r.out.is_empty());
    for i in 0..4 {
        r.data(S2C, 3 + i, b"data: 0123456789abcdef0123456789\n\n");
    }
    assert!(
        matches!(r.out.first(), Some(HttpEvent::Request { req, .. }) if req.flags.incomplete),
        "bounded: the request is released, flagged, before the held events"
    );
    let sse = r
        .out
        .iter()
        .filter(|e| matches!(e, HttpEvent::SseEvent { .. }))
        .count();
    assert_eq!(sse, 4, "no event lost");
    r.data(C2S, 9, b"more body");
    r.close(10);
    assert_eq!(r.requests().len(), 1, "not reported twice");
}

#[test]
fn ts_first_and_last_across_calls() {
    let mut r = Run::new(true);
    let req = post_mcp(1);
    let (a, b) = req.split_at(10);
    let (b, c) = b.split_at(b.len() - 5);
    r.data(C2S, 100, b"\r\n"); // stray CRLF between messages is ignored
    r.data(C2S, 101, a);
    r.data(C2S, 102, b);
    r.data(C2S, 103, c);
    let q = r.requests().first().cloned().cloned().expect("request");
    assert_eq!((q.ts_first, q.ts_last), (101, 103));
    r.data(S2C, 200, &json_response(1));
    assert!(
        r.out
            .iter()
            .any(|e| matches!(e, HttpEvent::ResponseHead { ts: 200, .. }))
    );
}

#[test]
fn many_headers_and_oversized_heads() {
    // 150 headers: more than the first httparse header array (64).
    let mut head = "POST /mcp HTTP/1.1\r\nHost: h\r\n".to_owned();
    for i in 0..150 {
        head.push_str(&format!("X-H-{i}: v{i}\r\n"));
    }
    head.push_str("Content-Length: 2\r\n\r\n{}");
    let mut r = Run::new(true);
    let (a, b) = head.as_bytes().split_at(900);
    r.data(C2S, 1, a);
    r.data(C2S, 2, b);
    let q = r.requests().first().cloned().cloned().expect("request");
    assert_eq!(q.headers.len(), 152);
    assert_eq!(header_str(&q.headers, "x-h-149").as_deref(), Some("v149"));
    assert_eq!(q.body, b"{}".to_vec());

    // A head over max_head_bytes is a parse error; the next request is found.
    let cfg = HttpConfig {
        max_body_bytes: 1024,
        max_head_bytes: 512,
    };
    let mut r = Run::with_cfg(true, cfg);
    r.data(C2S, 1, head.as_bytes());
    r.data(C2S, 2, &post_mcp(3));
    let reqs = r.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs.first().map(|q| q.body.clone()),
        Some(tools_call_body(3).into_bytes())
    );
    assert!(reqs.first().is_some_and(|q| q.flags.resynced));
    assert!(r.stats.http_parse_errors >= 1);
}
