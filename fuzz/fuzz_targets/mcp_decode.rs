//! Fuzz target: the MCP decoder on arbitrary request/response bodies.
//!
//! The input is split into a control byte, a request body, a response body (or
//! SSE data events) and an `Mcp-Name` header value; the decoder must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcptap_mcp::{Decoder, DecoderConfig};
use mcptap_wire::{ConnMeta, FlowId, Header, Headers, HttpEvent, HttpRequest, MsgFlags, SseEvent};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    // Split on the first two 0xff bytes: request body, response body, header value.
    let mut parts = rest.splitn(3, |b| *b == 0xff);
    let req_body = parts.next().unwrap_or_default().to_vec();
    let resp = parts.next().unwrap_or_default();
    let hdr = parts.next().unwrap_or_default().to_vec();
    let use_sse = ctl & 1 != 0;
    let cfg = DecoderConfig {
        capture_bodies: ctl & 2 != 0,
        capture_body_max_bytes: 64,
        max_span_events: 4,
        max_pending: 2,
        max_sessions: 2,
        ..DecoderConfig::default()
    };
    let version: &[u8] = if ctl & 4 != 0 { b"2026-07-28" } else { b"2025-11-25" };
    let headers: Headers = vec![
        Header { name: "Mcp-Name".into(), value: hdr.clone() },
        Header { name: "Mcp-Method".into(), value: hdr.clone() },
        Header { name: "MCP-Protocol-Version".into(), value: version.to_vec() },
        Header { name: "traceparent".into(), value: hdr.clone() },
        Header { name: "Mcp-Session-Id".into(), value: hdr },
    ]
    .into();
    let conn = ConnMeta {
        flow: FlowId(1),
        client: "10.0.0.1:5000".parse().expect("static addr"),
        server: "10.0.0.2:80".parse().expect("static addr"),
        client_isn: u32::from(ctl),
    };
    let mut dec = Decoder::new(cfg);
    let mut out = Vec::new();
    // Two requests on the connection so pairing and eviction are exercised.
    for index in 0..2u64 {
        dec.on_event(
            HttpEvent::Request {
                conn: conn.clone(),
                req: HttpRequest {
                    index,
                    ts_first: 1_000 + index,
                    ts_last: 1_001 + index,
                    method: if ctl & 8 != 0 { "GET".into() } else { "POST".into() },
                    target: "/mcp".into(),
                    version_minor: 1,
                    headers: headers.clone(),
                    body: req_body.clone(),
                    flags: MsgFlags::default(),
                },
            },
            &mut out,
        );
    }
    dec.on_event(
        HttpEvent::ResponseHead {
            flow: FlowId(1),
            index: 0,
            ts: 2_000,
            status: if ctl & 16 != 0 { 500 } else { 200 },
            headers: headers.clone(),
            sse: use_sse,
        },
        &mut out,
    );
    if use_sse {
        for (i, chunk) in resp.split(|b| *b == b'\n').enumerate() {
            dec.on_event(
                HttpEvent::SseEvent {
                    flow: FlowId(1),
                    index: 0,
                    ts: 2_001 + i as u64,
                    event: SseEvent {
                        event: None,
                        data: String::from_utf8_lossy(chunk).into_owned(),
                        id: None,
                        retry_ms: None,
                    },
                },
                &mut out,
            );
        }
    }
    dec.on_event(
        HttpEvent::ResponseEnd {
            flow: FlowId(1),
            index: 0,
            ts: 3_000,
            body: if use_sse { Vec::new() } else { resp.to_vec() },
            flags: MsgFlags::default(),
        },
        &mut out,
    );
    if ctl & 32 != 0 {
        dec.on_event(HttpEvent::Closed { flow: FlowId(1), ts: 4_000 }, &mut out);
    }
    dec.finish(&mut out);
    assert!(out.len() >= 2);
    for s in &out {
        assert!(s.end_ns >= s.start_ns);
    }
});
