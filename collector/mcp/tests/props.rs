//! Property tests: arbitrary bytes in any body or SSE field never panic the
//! decoder, every request yields at least one span, and spans are well formed.

use mcptap_mcp::{Decoder, DecoderConfig};
use mcptap_wire::{ConnMeta, FlowId, Header, Headers, HttpEvent, HttpRequest, MsgFlags, SseEvent};
use proptest::prelude::*;

fn events(
    req_body: Vec<u8>,
    sse_data: Vec<String>,
    resp_body: Vec<u8>,
    hdr: Vec<u8>,
    use_sse: bool,
) -> Vec<HttpEvent> {
    let conn = ConnMeta {
        flow: FlowId(1),
        client: "10.0.0.1:5000".parse().expect("addr"),
        server: "10.0.0.2:80".parse().expect("addr"),
        client_isn: 1,
    };
    let headers: Headers = vec![
        Header {
            name: "Mcp-Name".into(),
            value: hdr.clone(),
        },
        Header {
            name: "MCP-Protocol-Version".into(),
            value: b"2026-07-28".to_vec(),
        },
        Header {
            name: "traceparent".into(),
            value: hdr.clone(),
        },
        Header {
            name: "Mcp-Session-Id".into(),
            value: hdr,
        },
    ]
    .into();
    let mut v = vec![HttpEvent::Request {
        conn,
        req: HttpRequest {
            index: 0,
            ts_first: 100,
            ts_last: 50,
            method: "POST".into(),
            target: "/mcp".into(),
            version_minor: 1,
            headers: headers.clone(),
            body: req_body,
            flags: MsgFlags::default(),
        },
    }];
    v.push(HttpEvent::ResponseHead {
        flow: FlowId(1),
        index: 0,
        ts: 10,
        status: 200,
        headers,
        sse: use_sse,
    });
    for (i, d) in sse_data.into_iter().enumerate() {
        v.push(HttpEvent::SseEvent {
            flow: FlowId(1),
            index: 0,
            ts: 200 + i as u64,
            event: SseEvent {
                event: None,
                data: d,
                id: None,
                retry_ms: None,
            },
        });
    }
    v.push(HttpEvent::ResponseEnd {
        flow: FlowId(1),
        index: 0,
        ts: 5,
        body: resp_body,
        flags: MsgFlags::default(),
    });
    v
}

fn json_like() -> impl Strategy<Value = String> {
    prop_oneof![
        ".*",
        r#"\{"jsonrpc":"2.0","id":(1|"1"|null|\[\]|\{\}),"(method|result|error)":("tools/call"|\{"name":"x","code":"y","isError":true,"structuredContent":\[\{"a_id":[0-9]\}\]\}|\[\]|1e999)\}"#,
        r#"\[(\{"jsonrpc":"2.0","id":[0-9],"method":"m","params":\{"_meta":\{"traceparent":"00-[0-9a-f]{32}-[0-9a-f]{16}-01"\}\}\},?){0,4}\]"#,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(
        req in proptest::collection::vec(any::<u8>(), 0..300),
        resp in proptest::collection::vec(any::<u8>(), 0..300),
        sse in proptest::collection::vec(".*", 0..4),
        hdr in proptest::collection::vec(any::<u8>(), 0..80),
        use_sse in any::<bool>(),
        capture in any::<bool>(),
    ) {
        let cfg = DecoderConfig { capture_bodies: capture, capture_body_max_bytes: 17, max_span_events: 2, ..DecoderConfig::default() };
        let mut d = Decoder::new(cfg);
        let mut out = Vec::new();
        for e in events(req, sse, resp, hdr, use_sse) {
            d.on_event(e, &mut out);
        }
        d.finish(&mut out);
        prop_assert!(!out.is_empty());
        for s in &out {
            prop_assert!(s.end_ns >= s.start_ns);
            prop_assert!(s.span_id != [0u8; 8]);
            prop_assert!(s.trace_id != [0u8; 16]);
        }
    }

    #[test]
    fn json_like_bodies_never_panic(
        req in json_like(),
        resp in json_like(),
        sse in proptest::collection::vec(json_like(), 0..4),
        use_sse in any::<bool>(),
    ) {
        let cfg = DecoderConfig { capture_bodies: true, ..DecoderConfig::default() };
        let mut d = Decoder::new(cfg);
        let mut out = Vec::new();
        for e in events(req.into_bytes(), sse, resp.into_bytes(), b"=?base64?eA==?=".to_vec(), use_sse) {
            d.on_event(e, &mut out);
        }
        d.on_event(HttpEvent::Closed { flow: FlowId(1), ts: 0 }, &mut out);
        d.finish(&mut out);
        prop_assert!(!out.is_empty());
        for s in &out {
            prop_assert!(s.end_ns >= s.start_ns);
        }
    }
}

#[test]
fn deep_nesting_and_huge_numbers() {
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"t","arguments":{}1{}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let deep_ok = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"t","arguments":{{"a_id":"x","d":{}{{"b_id":"y"}}{}}}}}}}"#,
        "{\"k\":".repeat(100),
        "}".repeat(100)
    );
    for body in [
        deep,
        deep_ok,
        r#"{"jsonrpc":"2.0","id":1e400,"method":"x"}"#.to_string(),
        r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"x"}"#.to_string(),
    ] {
        let cfg = DecoderConfig {
            capture_bodies: true,
            ..DecoderConfig::default()
        };
        let mut d = Decoder::new(cfg);
        let mut out = Vec::new();
        for e in events(
            body.clone().into_bytes(),
            vec![body.clone()],
            body.into_bytes(),
            vec![],
            true,
        ) {
            d.on_event(e, &mut out);
        }
        assert_eq!(out.len(), 1);
    }
}
