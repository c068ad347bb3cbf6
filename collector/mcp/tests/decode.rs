//! End-to-end tests of the MCP decoder on hand-built `HttpEvent` sequences with
//! realistic bodies of both protocol eras.

use mcptap_mcp::{AttrValue, Decoder, DecoderConfig, McpStats, Span, SpanStatus, attrs as a};
use mcptap_wire::{ConnMeta, FlowId, Header, Headers, HttpEvent, HttpRequest, MsgFlags, SseEvent};

const S: u64 = 1_700_000_000_000_000_000;

fn conn(flow: u64) -> ConnMeta {
    ConnMeta {
        flow: FlowId(flow),
        client: format!("10.1.0.5:{}", 40000 + flow).parse().expect("addr"),
        server: "10.1.0.9:8000".parse().expect("addr"),
        client_isn: 1000 + flow as u32,
    }
}

fn hdrs(h: &[(&str, &str)]) -> Headers {
    h.iter()
        .map(|(n, v)| Header {
            name: n.to_string(),
            value: v.as_bytes().to_vec(),
        })
        .collect()
}

fn req(flow: u64, index: u64, ts: u64, method: &str, h: &[(&str, &str)], body: &str) -> HttpEvent {
    HttpEvent::Request {
        conn: conn(flow),
        req: HttpRequest {
            index,
            ts_first: ts,
            ts_last: ts + 10,
            method: method.into(),
            target: "/mcp?x=1".into(),
            version_minor: 1,
            headers: hdrs(h),
            body: body.as_bytes().to_vec(),
            flags: MsgFlags::default(),
        },
    }
}

fn post(flow: u64, index: u64, ts: u64, h: &[(&str, &str)], body: &str) -> HttpEvent {
    req(flow, index, ts, "POST", h, body)
}

fn head(flow: u64, index: u64, ts: u64, status: u16, h: &[(&str, &str)], sse: bool) -> HttpEvent {
    HttpEvent::ResponseHead {
        flow: FlowId(flow),
        index,
        ts,
        status,
        headers: hdrs(h),
        sse,
    }
}

fn sse(flow: u64, index: u64, ts: u64, data: &str) -> HttpEvent {
    HttpEvent::SseEvent {
        flow: FlowId(flow),
        index,
        ts,
        event: SseEvent {
            event: Some("message".into()),
            data: data.into(),
            id: None,
            retry_ms: None,
        },
    }
}

fn end(flow: u64, index: u64, ts: u64, body: &str) -> HttpEvent {
    HttpEvent::ResponseEnd {
        flow: FlowId(flow),
        index,
        ts,
        body: body.as_bytes().to_vec(),
        flags: MsgFlags::default(),
    }
}

fn closed(flow: u64, ts: u64) -> HttpEvent {
    HttpEvent::Closed {
        flow: FlowId(flow),
        ts,
    }
}

fn run_cfg(cfg: DecoderConfig, evs: Vec<HttpEvent>) -> (Vec<Span>, McpStats) {
    let mut d = Decoder::new(cfg);
    let mut out = Vec::new();
    for e in evs {
        d.on_event(e, &mut out);
    }
    d.finish(&mut out);
    (out, d.stats().clone())
}

fn run(evs: Vec<HttpEvent>) -> (Vec<Span>, McpStats) {
    run_cfg(DecoderConfig::default(), evs)
}

fn s<'a>(span: &'a Span, k: &str) -> &'a str {
    span.attr_str(k)
        .unwrap_or_else(|| panic!("attribute {k} missing in {:#?}", span.attributes))
}

fn int(span: &Span, k: &str) -> i64 {
    match span.attr(k) {
        Some(AttrValue::Int(i)) => *i,
        other => panic!("{k}: {other:?}"),
    }
}

fn boolean(span: &Span, k: &str) -> bool {
    matches!(span.attr(k), Some(AttrValue::Bool(true)))
}

fn arr(span: &Span, k: &str) -> Vec<String> {
    match span.attr(k) {
        Some(AttrValue::StrArray(v)) => v.clone(),
        other => panic!("{k}: {other:?}"),
    }
}

fn all_attr_text(spans: &[Span]) -> String {
    let mut t = String::new();
    for sp in spans {
        t.push_str(&format!("{:?}{:?}{}", sp.attributes, sp.events, sp.name));
    }
    t
}

const MODERN_META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"mcp","version":"0.1.0"},"io.modelcontextprotocol/clientCapabilities":{"roots":{},"extensions":{"io.modelcontextprotocol/tasks":{}}}}"#;

fn modern_headers<'a>(method: &'a str, name: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("host", "10.1.0.9:8000"),
        ("accept", "application/json, text/event-stream"),
        ("content-type", "application/json"),
        ("user-agent", "python-httpx/0.28.1"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
    ];
    if let Some(n) = name {
        h.push(("mcp-name", n));
    }
    h
}

fn tools_call(id: &str, tool: &str, args: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{args},{MODERN_META}}}}}"#
    )
}

#[test]
fn modern_tools_call_json_with_matching_routing_headers() {
    let body = tools_call("3", "add_item", r#"{"basket_id":"b-17","sku":"apple"}"#);
    let (spans, st) = run(vec![
        post(
            1,
            0,
            S,
            &[
                modern_headers("tools/call", Some("add_item")),
                vec![("Mcp-Param-Region", "eu")],
            ]
            .concat(),
            &body,
        ),
        head(
            1,
            0,
            S + 5_000_000,
            200,
            &[("content-type", "application/json")],
            false,
        ),
        end(
            1,
            0,
            S + 6_000_000,
            r#"{"jsonrpc":"2.0","id":3,"result":{"resultType":"complete","content":[{"type":"text","text":"ok"}],"structuredContent":{"basket_id":"b-17","count":2},"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"shop","version":"1"}}}}"#,
        ),
    ]);
    assert_eq!(spans.len(), 1);
    let sp = &spans[0];
    assert_eq!(sp.name, "tools/call add_item");
    assert_eq!(sp.start_ns, S);
    assert_eq!(sp.end_ns, S + 6_000_000);
    assert_eq!(sp.status, SpanStatus::Unset);
    assert_eq!(sp.instance_id, "10.1.0.9:8000");
    assert_eq!(s(sp, a::MCP_METHOD_NAME), "tools/call");
    assert_eq!(s(sp, a::GEN_AI_TOOL_NAME), "add_item");
    assert_eq!(s(sp, a::GEN_AI_OPERATION_NAME), "execute_tool");
    assert_eq!(s(sp, a::JSONRPC_REQUEST_ID), "3");
    assert_eq!(s(sp, a::MCP_PROTOCOL_VERSION), "2026-07-28");
    assert_eq!(s(sp, a::ERA), "modern");
    assert_eq!(s(sp, a::EXCHANGE_KIND), "request");
    assert_eq!(s(sp, a::ROUTING_MCP_METHOD), "tools/call");
    assert_eq!(s(sp, a::ROUTING_MCP_NAME), "add_item");
    assert_eq!(s(sp, a::ROUTING_METHOD_STATUS), "match");
    assert_eq!(s(sp, a::ROUTING_NAME_STATUS), "match");
    assert_eq!(s(sp, a::ROUTING_PROTOCOL_VERSION_STATUS), "match");
    assert_eq!(arr(sp, a::ROUTING_PARAM_HEADERS), vec!["Mcp-Param-Region"]);
    assert!(
        !all_attr_text(&spans).contains("\"eu\""),
        "param header value leaked"
    );
    assert_eq!(s(sp, a::RESULT_TYPE), "complete");
    assert_eq!(s(sp, a::CLIENT_NAME), "mcp");
    assert_eq!(s(sp, a::CLIENT_VERSION), "0.1.0");
    assert_eq!(s(sp, a::CLIENT_INFO_SOURCE), "meta");
    assert_eq!(
        arr(sp, a::CLIENT_CAPABILITIES),
        vec!["extensions", "roots", "io.modelcontextprotocol/tasks"]
    );
    assert_eq!(arr(sp, a::HANDLES_USED), vec!["basket_id=b-17"]);
    // The result echoes the basket it was given: that handle was used, not minted.
    assert!(sp.attr(a::HANDLES_MINTED).is_none());
    assert_eq!(int(sp, a::HTTP_RESPONSE_STATUS_CODE), 200);
    assert_eq!(s(sp, a::HTTP_REQUEST_METHOD), "POST");
    assert_eq!(s(sp, a::URL_PATH), "/mcp");
    assert_eq!(s(sp, a::URL_SCHEME), "http");
    assert_eq!(s(sp, a::USER_AGENT_ORIGINAL), "python-httpx/0.28.1");
    assert_eq!(s(sp, a::CLIENT_ADDRESS), "10.1.0.5");
    assert_eq!(int(sp, a::CLIENT_PORT), 40001);
    assert_eq!(s(sp, a::SERVER_ADDRESS), "10.1.0.9");
    assert_eq!(int(sp, a::SERVER_PORT), 8000);
    assert_eq!(s(sp, a::NETWORK_PROTOCOL_VERSION), "1.1");
    assert_eq!(s(sp, a::NETWORK_TRANSPORT), "tcp");
    assert!(!boolean(sp, a::RESPONSE_SSE));
    assert!(sp.attr(a::MCP_SESSION_ID).is_none());
    assert!(sp.attr(a::ERROR_TYPE).is_none());
    assert!(sp.attr(a::REQUEST_BODY).is_none());
    assert!(sp.parent_span_id.is_none());
    // Only arguments that are handles are exported.
    assert!(!all_attr_text(&spans).contains("apple"));
    assert_eq!(st.methods.get("tools/call"), Some(&1));
    assert_eq!(st.status_2xx, 1);
    assert_eq!(st.era_modern, 1);
    assert_eq!(st.spans, 1);
}

#[test]
fn mismatch_and_missing_mcp_name() {
    let body = tools_call("\"a\"", "add_item", "{}");
    let (spans, st) = run(vec![
        post(
            1,
            0,
            S,
            &modern_headers("tools/call", Some("remove_item")),
            &body,
        ),
        head(1, 0, S + 1, 400, &[], false),
        end(
            1,
            0,
            S + 2,
            r#"{"jsonrpc":"2.0","id":"a","error":{"code":-32020,"message":"Header mismatch: Mcp-Name"}}"#,
        ),
        post(1, 1, S + 10, &modern_headers("tools/call", None), &body),
        head(1, 1, S + 11, 400, &[], false),
        end(
            1,
            1,
            S + 12,
            r#"{"jsonrpc":"2.0","id":"a","error":{"code":-32020,"message":"Missing Mcp-Name"}}"#,
        ),
        post(
            1,
            2,
            S + 20,
            &modern_headers("tools/list", None),
            &body.replace("tools/call", "tools/list"),
        ),
        head(1, 2, S + 21, 400, &[], false),
        end(1, 2, S + 22, ""),
    ]);
    assert_eq!(spans.len(), 3);
    assert_eq!(s(&spans[0], a::ROUTING_NAME_STATUS), "mismatch");
    assert_eq!(s(&spans[0], a::ROUTING_MCP_NAME), "remove_item");
    assert_eq!(s(&spans[0], a::ROUTING_METHOD_STATUS), "match");
    assert_eq!(s(&spans[0], a::JSONRPC_REQUEST_ID), "a");
    // -32020 is not a caller-fault code in the server rules: an error.
    assert_eq!(s(&spans[0], a::ERROR_TYPE), "-32020");
    assert_eq!(s(&spans[0], a::RPC_RESPONSE_STATUS_CODE), "-32020");
    assert_eq!(
        spans[0].status,
        SpanStatus::Error("Header mismatch: Mcp-Name".into())
    );
    assert_eq!(s(&spans[1], a::ROUTING_NAME_STATUS), "missing");
    assert!(spans[1].attr(a::ROUTING_MCP_NAME).is_none());
    // tools/list needs no Mcp-Name; header method mismatches body? here it matches.
    assert_eq!(s(&spans[2], a::ROUTING_NAME_STATUS), "not_required");
    assert_eq!(s(&spans[2], a::ROUTING_METHOD_STATUS), "match");
    assert_eq!(spans[2].status, SpanStatus::Unset);
    assert!(spans[2].attr(a::ERROR_TYPE).is_none());
    assert!(boolean(&spans[2], a::RPC_RESPONSE_MISSING));
    assert_eq!(st.routing_mismatch, 1);
    assert_eq!(st.routing_missing, 1);
    assert_eq!(st.status_4xx, 3);
}

#[test]
fn method_header_mismatch_and_version_mismatch() {
    let body = tools_call("1", "t", "{}").replace("2026-07-28", "2026-09-01");
    let (spans, _) = run(vec![
        post(1, 0, S, &modern_headers("tools/list", Some("t")), &body),
        end(1, 0, S + 2, ""),
    ]);
    assert_eq!(s(&spans[0], a::ROUTING_METHOD_STATUS), "mismatch");
    assert_eq!(s(&spans[0], a::ROUTING_MCP_METHOD), "tools/list");
    assert_eq!(s(&spans[0], a::ROUTING_PROTOCOL_VERSION_STATUS), "mismatch");
    // Header wins for mcp.protocol.version.
    assert_eq!(s(&spans[0], a::MCP_PROTOCOL_VERSION), "2026-07-28");
}

#[test]
fn base64_mcp_name() {
    let body = tools_call("1", "météo", "{}");
    let (spans, _) = run(vec![
        post(
            1,
            0,
            S,
            &modern_headers("tools/call", Some("=?base64?bcOpdMOpbw==?=")),
            &body,
        ),
        head(1, 0, S + 1, 200, &[], false),
        end(
            1,
            0,
            S + 2,
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#,
        ),
    ]);
    let sp = &spans[0];
    assert_eq!(sp.name, "tools/call météo");
    assert_eq!(s(sp, a::ROUTING_MCP_NAME), "météo");
    assert!(boolean(sp, a::ROUTING_MCP_NAME_ENCODED));
    assert_eq!(s(sp, a::ROUTING_MCP_NAME_RAW), "=?base64?bcOpdMOpbw==?=");
    assert_eq!(s(sp, a::ROUTING_NAME_STATUS), "match");
    // Modern result without resultType counts as complete.
    assert_eq!(s(sp, a::RESULT_TYPE), "complete");
}

#[test]
fn legacy_initialize_session_then_later_request_gets_identity() {
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{},"elicitation":{}},"clientInfo":{"name":"claude-code","version":"2.1.0"}}}"#;
    let sid = "9f1c2e0a4b7d4c2f8e5a6b3c1d0e9f8a";
    let (spans, st) = run(vec![
        post(
            2,
            0,
            S,
            &[
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
            ],
            init,
        ),
        head(
            2,
            0,
            S + 3,
            200,
            &[
                ("content-type", "application/json"),
                ("mcp-session-id", sid),
            ],
            false,
        ),
        end(
            2,
            0,
            S + 4,
            r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"shop","version":"1"}}}"#,
        ),
        post(
            2,
            1,
            S + 10,
            &[
                ("mcp-session-id", sid),
                ("MCP-Protocol-Version", "2025-06-18"),
            ],
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ),
        head(2, 1, S + 11, 202, &[], false),
        end(2, 1, S + 12, ""),
        post(
            2,
            2,
            S + 20,
            &[("Mcp-Session-Id", sid)],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
        ),
        head(2, 2, S + 21, 200, &[], false),
        end(
            2,
            2,
            S + 22,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#,
        ),
    ]);
    assert_eq!(spans.len(), 3);
    let init_sp = &spans[0];
    assert_eq!(init_sp.name, "initialize");
    assert_eq!(s(init_sp, a::ERA), "legacy");
    assert_eq!(s(init_sp, a::SESSION_MINTED), sid);
    assert!(init_sp.attr(a::MCP_SESSION_ID).is_none());
    assert_eq!(s(init_sp, a::MCP_PROTOCOL_VERSION), "2025-11-25");
    assert_eq!(s(init_sp, a::CLIENT_NAME), "claude-code");
    assert_eq!(s(init_sp, a::CLIENT_INFO_SOURCE), "initialize");
    assert_eq!(
        arr(init_sp, a::CLIENT_CAPABILITIES),
        vec!["elicitation", "sampling"]
    );
    assert_eq!(s(init_sp, a::ROUTING_METHOD_STATUS), "not_required");
    assert!(init_sp.attr(a::RESULT_TYPE).is_none());

    let notif = &spans[1];
    assert_eq!(s(notif, a::EXCHANGE_KIND), "notification");
    assert!(notif.attr(a::JSONRPC_REQUEST_ID).is_none());
    assert_eq!(s(notif, a::MCP_SESSION_ID), sid);
    assert_eq!(int(notif, a::HTTP_RESPONSE_STATUS_CODE), 202);
    assert_eq!(notif.status, SpanStatus::Unset);
    assert_eq!(s(notif, a::MCP_PROTOCOL_VERSION), "2025-06-18");

    let list = &spans[2];
    assert_eq!(s(list, a::MCP_SESSION_ID), sid);
    assert_eq!(s(list, a::CLIENT_NAME), "claude-code");
    assert_eq!(s(list, a::CLIENT_VERSION), "2.1.0");
    assert_eq!(s(list, a::CLIENT_INFO_SOURCE), "session");
    assert_eq!(
        arr(list, a::CLIENT_CAPABILITIES),
        vec!["elicitation", "sampling"]
    );
    // Negotiated version from the initialize response.
    assert_eq!(s(list, a::MCP_PROTOCOL_VERSION), "2025-06-18");
    assert_eq!(s(list, a::ERA), "legacy");
    assert_eq!(st.initialize_calls, 1);
    assert_eq!(st.sessions_minted, 1);
    assert_eq!(st.legacy_session_requests, 2);
    assert_eq!(st.era_legacy, 3);
}

#[test]
fn sse_progress_then_result() {
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"slow","arguments":{},"_meta":{"progressToken":"p1","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/logLevel":"info"}}}"#;
    let (spans, st) = run(vec![
        post(3, 0, S, &modern_headers("tools/call", Some("slow")), body),
        head(
            3,
            0,
            S + 100,
            200,
            &[("content-type", "text/event-stream")],
            true,
        ),
        sse(
            3,
            0,
            S + 200,
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p1","progress":1,"total":2,"message":"half way SECRETMSG"}}"#,
        ),
        sse(
            3,
            0,
            S + 300,
            r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","logger":"shop","data":"hello SECRETMSG"}}"#,
        ),
        sse(
            3,
            0,
            S + 400,
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p1","progress":2,"total":2}}"#,
        ),
        sse(
            3,
            0,
            S + 500,
            r#"{"jsonrpc":"2.0","id":7,"result":{"resultType":"complete","content":[{"type":"text","text":"done"}]}}"#,
        ),
        end(3, 0, S + 900, ""),
    ]);
    let sp = &spans[0];
    assert_eq!(sp.end_ns, S + 500);
    assert!(boolean(sp, a::RESPONSE_SSE));
    assert_eq!(int(sp, a::SSE_EVENTS), 4);
    assert_eq!(int(sp, a::SSE_NOTIFICATIONS), 3);
    assert_eq!(sp.events.len(), 3);
    assert_eq!(sp.events[0].name, "notifications/progress");
    assert_eq!(sp.events[0].time_ns, S + 200);
    assert!(
        sp.events[0]
            .attributes
            .contains(&(a::PROGRESS, AttrValue::Str("1".into())))
    );
    assert!(
        sp.events[0]
            .attributes
            .contains(&(a::PROGRESS_TOTAL, AttrValue::Str("2".into())))
    );
    assert_eq!(sp.events[1].name, "notifications/message");
    assert!(
        sp.events[1]
            .attributes
            .contains(&(a::LOG_LEVEL, AttrValue::Str("info".into())))
    );
    assert_eq!(sp.events[2].time_ns, S + 400);
    assert!(!all_attr_text(&spans).contains("SECRETMSG"));
    assert_eq!(sp.status, SpanStatus::Unset);
    assert_eq!(st.sse_notifications, 3);
    assert_eq!(st.sse_events, 4);

    // The same stream with a cap of 1 span event.
    let cfg = DecoderConfig {
        max_span_events: 1,
        ..DecoderConfig::default()
    };
    let (spans, st) = run_cfg(
        cfg,
        vec![
            post(3, 0, S, &modern_headers("tools/call", Some("slow")), body),
            head(3, 0, S + 100, 200, &[], true),
            sse(
                3,
                0,
                S + 200,
                r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p1","progress":1}}"#,
            ),
            sse(
                3,
                0,
                S + 300,
                r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p1","progress":2}}"#,
            ),
            sse(
                3,
                0,
                S + 400,
                r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p1","progress":3}}"#,
            ),
            sse(3, 0, S + 500, r#"{"jsonrpc":"2.0","id":7,"result":{}}"#),
            end(3, 0, S + 900, ""),
        ],
    );
    assert_eq!(spans[0].events.len(), 1);
    assert_eq!(int(&spans[0], a::SSE_EVENTS_DROPPED), 2);
    assert_eq!(int(&spans[0], a::SSE_NOTIFICATIONS), 3);
    assert_eq!(st.span_events_dropped, 2);
}

#[test]
fn tool_is_error() {
    let (spans, _) = run(vec![
        post(
            1,
            0,
            S,
            &modern_headers("tools/call", Some("add_item")),
            &tools_call("1", "add_item", "{}"),
        ),
        head(1, 0, S + 1, 200, &[], false),
        end(
            1,
            0,
            S + 2,
            r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","isError":true,"content":[{"type":"text","text":"out of stock"}]}}"#,
        ),
    ]);
    assert_eq!(s(&spans[0], a::ERROR_TYPE), "tool_error");
    assert_eq!(spans[0].status, SpanStatus::Error("tool_error".into()));
    assert!(spans[0].attr(a::RPC_RESPONSE_STATUS_CODE).is_none());
    assert!(!all_attr_text(&spans).contains("out of stock"));
}

#[test]
fn jsonrpc_errors_caller_fault_vs_server_fault() {
    let (spans, _) = run(vec![
        post(
            1,
            0,
            S,
            &modern_headers("nope/x", None),
            r#"{"jsonrpc":"2.0","id":1,"method":"nope/x","params":{}}"#,
        ),
        head(1, 0, S + 1, 404, &[], false),
        end(
            1,
            0,
            S + 2,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}"#,
        ),
        post(
            1,
            1,
            S + 10,
            &modern_headers("tools/call", Some("x")),
            &tools_call("2", "x", "{}"),
        ),
        head(1, 1, S + 11, 200, &[], false),
        end(
            1,
            1,
            S + 12,
            r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32603,"message":"Internal error"}}"#,
        ),
    ]);
    assert_eq!(s(&spans[0], a::ERROR_TYPE), "-32601");
    assert_eq!(s(&spans[0], a::RPC_RESPONSE_STATUS_CODE), "-32601");
    assert_eq!(spans[0].status, SpanStatus::Unset);
    assert_eq!(int(&spans[0], a::HTTP_RESPONSE_STATUS_CODE), 404);
    assert_eq!(s(&spans[1], a::ERROR_TYPE), "-32603");
    assert_eq!(spans[1].status, SpanStatus::Error("Internal error".into()));
}

/// Regression (found by collector/tests/secrets.rs): a server error message that
/// echoes a credential must not reach the span status in clear.
#[test]
fn jsonrpc_error_message_with_a_credential_is_redacted() {
    let (spans, _) = run(vec![
        post(
            1,
            0,
            S,
            &modern_headers("tools/call", Some("x")),
            &tools_call("1", "x", "{}"),
        ),
        head(1, 0, S + 1, 200, &[], false),
        end(
            1,
            0,
            S + 2,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"invalid api key sk-live-abc123"}}"#,
        ),
    ]);
    assert_eq!(s(&spans[0], a::ERROR_TYPE), "-32603");
    assert_eq!(spans[0].status, SpanStatus::Error("[REDACTED]".into()));
    assert!(!format!("{:?}", spans[0]).contains("sk-live-abc123"));
}

#[test]
fn http_5xx_and_id_string_vs_number() {
    let (spans, st) = run(vec![
        post(
            1,
            0,
            S,
            &[],
            r#"{"jsonrpc":"2.0","id":"1","method":"tools/list"}"#,
        ),
        head(1, 0, S + 1, 502, &[], false),
        // id 1 (number) does not answer id "1" (string).
        end(1, 0, S + 2, r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
    ]);
    assert_eq!(s(&spans[0], a::ERROR_TYPE), "502");
    assert_eq!(spans[0].status, SpanStatus::Error("HTTP 502".into()));
    assert!(boolean(&spans[0], a::RPC_RESPONSE_MISSING));
    assert_eq!(st.unmatched_responses, 1);
    assert_eq!(st.status_5xx, 1);
}

#[test]
fn legacy_session_not_found_404_with_null_id() {
    let (spans, _) = run(vec![
        post(
            1,
            0,
            S,
            &[
                ("mcp-session-id", "stale"),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"add_item","arguments":{}}}"#,
        ),
        head(
            1,
            0,
            S + 1,
            404,
            &[("content-type", "application/json")],
            false,
        ),
        end(
            1,
            0,
            S + 2,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Session not found"}}"#,
        ),
    ]);
    let sp = &spans[0];
    assert_eq!(sp.name, "tools/call add_item");
    assert_eq!(s(sp, a::MCP_SESSION_ID), "stale");
    assert_eq!(int(sp, a::HTTP_RESPONSE_STATUS_CODE), 404);
    assert_eq!(s(sp, a::RPC_RESPONSE_STATUS_CODE), "-32600");
    assert_eq!(s(sp, a::ERROR_TYPE), "-32600");
    assert!(boolean(sp, a::RPC_ERROR_ID_NULL));
    assert_eq!(sp.status, SpanStatus::Unset);
    assert_eq!(s(sp, a::ERA), "legacy");
    assert!(sp.attr(a::RPC_RESPONSE_MISSING).is_none());
}

#[test]
fn batch_of_two_answered_by_array() {
    let body = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"greet"}},{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":0}}]"#;
    let (spans, st) = run(vec![
        post(4, 0, S, &[("mcp-session-id", "s1")], body),
        head(4, 0, S + 1, 200, &[], false),
        end(
            4,
            0,
            S + 9,
            r#"[{"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"bad prompt"}},{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}]"#,
        ),
    ]);
    assert_eq!(spans.len(), 3);
    assert_eq!(spans[0].name, "tools/list");
    assert_eq!(int(&spans[0], a::BATCH_SIZE), 3);
    assert_eq!(int(&spans[0], a::BATCH_INDEX), 0);
    assert!(spans[0].attr(a::ERROR_TYPE).is_none());
    assert_eq!(spans[1].name, "prompts/get greet");
    assert_eq!(s(&spans[1], a::GEN_AI_PROMPT_NAME), "greet");
    assert_eq!(int(&spans[1], a::BATCH_INDEX), 1);
    assert_eq!(s(&spans[1], a::ERROR_TYPE), "-32602");
    assert_eq!(spans[1].status, SpanStatus::Unset);
    assert_eq!(s(&spans[2], a::EXCHANGE_KIND), "notification");
    assert_eq!(int(&spans[2], a::BATCH_INDEX), 2);
    assert_ne!(spans[0].span_id, spans[1].span_id);
    assert_ne!(spans[0].trace_id, spans[1].trace_id);
    assert_eq!(st.batches, 1);
    assert_eq!(st.batch_messages, 3);
}

#[test]
fn notification_202() {
    let (spans, st) = run(vec![
        post(
            1,
            0,
            S,
            &[("mcp-session-id", "s")],
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ),
        head(1, 0, S + 1, 202, &[], false),
        end(1, 0, S + 2, ""),
    ]);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "notifications/initialized");
    assert_eq!(s(&spans[0], a::EXCHANGE_KIND), "notification");
    assert_eq!(spans[0].end_ns, S + 2);
    assert_eq!(spans[0].status, SpanStatus::Unset);
    assert!(spans[0].attr(a::RPC_RESPONSE_MISSING).is_none());
    assert_eq!(st.jsonrpc_notifications, 1);
}

#[test]
fn legacy_get_sse_stream_is_http_span() {
    let (spans, st) = run(vec![
        req(
            5,
            0,
            S,
            "GET",
            &[
                ("accept", "text/event-stream"),
                ("mcp-session-id", "s9"),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            "",
        ),
        head(
            5,
            0,
            S + 1,
            200,
            &[("content-type", "text/event-stream")],
            true,
        ),
        sse(5, 0, S + 2, ""),
        sse(
            5,
            0,
            S + 50,
            r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#,
        ),
        sse(
            5,
            0,
            S + 60,
            r#"{"jsonrpc":"2.0","id":0,"method":"sampling/createMessage","params":{"messages":[]}}"#,
        ),
        closed(5, S + 1_000),
    ]);
    assert_eq!(spans.len(), 1);
    let sp = &spans[0];
    assert_eq!(sp.name, "GET");
    assert_eq!(s(sp, a::EXCHANGE_KIND), "http");
    assert!(boolean(sp, a::STREAM_LONG_LIVED));
    assert_eq!(sp.end_ns, S + 1_000);
    assert_eq!(int(sp, a::SSE_EVENTS), 3);
    assert_eq!(int(sp, a::SSE_NOTIFICATIONS), 1);
    assert_eq!(int(sp, a::SSE_SERVER_REQUESTS), 1);
    assert_eq!(sp.events.len(), 2);
    assert_eq!(sp.events[1].name, "sampling/createMessage");
    assert_eq!(s(sp, a::MCP_SESSION_ID), "s9");
    assert_eq!(s(sp, a::MCP_PROTOCOL_VERSION), "2025-11-25");
    assert!(boolean(sp, a::MESSAGE_INCOMPLETE));
    assert_eq!(sp.status, SpanStatus::Unset);
    assert_eq!(st.sse_server_requests, 1);
    assert_eq!(st.http_only_exchanges, 1);
}

#[test]
fn get_405_and_delete() {
    let (spans, st) = run(vec![
        req(6, 0, S, "GET", &modern_headers("", None), ""),
        head(6, 0, S + 1, 405, &[("allow", "POST")], false),
        end(6, 0, S + 2, ""),
        req(6, 1, S + 10, "DELETE", &[("mcp-session-id", "abc")], ""),
        head(6, 1, S + 11, 200, &[], false),
        end(6, 1, S + 12, ""),
    ]);
    assert_eq!(spans[0].name, "GET");
    assert_eq!(int(&spans[0], a::HTTP_RESPONSE_STATUS_CODE), 405);
    assert_eq!(s(&spans[0], a::ERA), "modern");
    assert_eq!(spans[0].status, SpanStatus::Unset);
    assert!(spans[0].attr(a::STREAM_LONG_LIVED).is_none());
    assert_eq!(spans[1].name, "DELETE");
    assert_eq!(s(&spans[1], a::EXCHANGE_KIND), "http");
    assert_eq!(s(&spans[1], a::MCP_SESSION_ID), "abc");
    assert_eq!(st.http_only_exchanges, 2);
}

#[test]
fn posted_response_and_non_json_body() {
    let (spans, st) = run(vec![
        post(
            1,
            0,
            S,
            &[("mcp-session-id", "s")],
            r#"{"jsonrpc":"2.0","id":0,"result":{"model":"m"}}"#,
        ),
        head(1, 0, S + 1, 202, &[], false),
        end(1, 0, S + 2, ""),
        post(1, 1, S + 10, &[], "not json at all"),
        head(1, 1, S + 11, 400, &[("content-type", "text/plain")], false),
        end(1, 1, S + 12, "Bad Request"),
    ]);
    assert_eq!(spans.len(), 2);
    assert_eq!(s(&spans[0], a::EXCHANGE_KIND), "http");
    assert_eq!(int(&spans[0], a::POSTED_RESPONSES), 1);
    assert_eq!(spans[1].name, "POST");
    assert!(boolean(&spans[1], a::REQUEST_INVALID));
    assert!(boolean(&spans[1], a::RESPONSE_INVALID));
    assert_eq!(st.request_json_errors, 1);
    assert_eq!(st.response_json_errors, 1);
    assert_eq!(st.posted_responses, 1);
}

#[test]
fn traceparent_meta_wins_over_header() {
    let meta_tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let hdr_tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"_meta":{{"traceparent":"{meta_tp}","tracestate":"vendor=meta"}}}}}}"#
    );
    let (spans, st) = run(vec![
        post(
            1,
            0,
            S,
            &[("traceparent", hdr_tp), ("tracestate", "vendor=hdr")],
            &body,
        ),
        end(1, 0, S + 2, ""),
        post(
            1,
            1,
            S + 10,
            &[("traceparent", hdr_tp), ("tracestate", "vendor=hdr")],
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        ),
        end(1, 1, S + 12, ""),
        post(
            1,
            2,
            S + 20,
            &[(
                "traceparent",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            )],
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
        ),
        end(1, 2, S + 22, ""),
    ]);
    assert_eq!(spans[0].trace_id[..2], [0x0a, 0xf7]);
    assert_eq!(
        spans[0].parent_span_id,
        Some([0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31])
    );
    assert_eq!(spans[0].trace_state, "vendor=meta");
    assert_eq!(s(&spans[0], a::TRACE_SOURCE), "meta");
    assert_eq!(spans[1].trace_id[..2], [0x4b, 0xf9]);
    assert_eq!(
        spans[1].parent_span_id,
        Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
    );
    assert_eq!(spans[1].trace_state, "vendor=hdr");
    assert_eq!(s(&spans[1], a::TRACE_SOURCE), "header");
    assert!(spans[2].parent_span_id.is_none());
    assert!(boolean(&spans[2], a::TRACE_INVALID));
    assert_ne!(spans[2].trace_id, [0u8; 16]);
    assert_eq!(st.traceparent_invalid, 1);
    assert_eq!(st.trace_from_meta, 1);
    assert_eq!(st.trace_from_header, 1);
}

#[test]
fn handles_used_and_minted_nested_and_text_content() {
    let args = r#"{"basket_id":"b-1","lines":[{"sku_id":42,"qty":1},{"sku_id":43}],"opts":{"warehouseId":"w-9","note":"x"},"userid":"nomatch"}"#;
    let (spans, _) = run(vec![
        post(
            1,
            0,
            S,
            &modern_headers("tools/call", Some("checkout")),
            &tools_call("1", "checkout", args),
        ),
        end(
            1,
            0,
            S + 2,
            r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","content":[{"type":"text","text":"{\"order_id\":\"o-77\",\"status\":\"ok\"}"}],"structuredContent":{"receipt":{"receipt_id":"r-5"},"items":[{"shipment_id":9}]}}}"#,
        ),
    ]);
    let sp = &spans[0];
    assert_eq!(
        arr(sp, a::HANDLES_USED),
        vec!["basket_id=b-1", "sku_id=42", "sku_id=43", "warehouseId=w-9"]
    );
    assert_eq!(
        arr(sp, a::HANDLES_MINTED),
        vec!["shipment_id=9", "receipt_id=r-5", "order_id=o-77"]
    );
    assert!(!all_attr_text(&spans).contains("nomatch"));
}

#[test]
fn custom_handle_rule() {
    let rule = mcptap_mcp::HandleRule::parse("suffix:_ref, key:cart").expect("rule");
    assert_eq!(rule.suffixes, vec!["_ref"]);
    assert_eq!(rule.exact, vec!["cart"]);
    assert!(mcptap_mcp::HandleRule::parse("prefix:x").is_err());
    let cfg = DecoderConfig {
        handle_rule: rule,
        ..DecoderConfig::default()
    };
    let (spans, _) = run_cfg(
        cfg,
        vec![
            post(
                1,
                0,
                S,
                &[],
                &tools_call(
                    "1",
                    "t",
                    r#"{"cart":"c1","order_ref":"r1","basket_id":"b"}"#,
                ),
            ),
            end(1, 0, S + 1, ""),
        ],
    );
    assert_eq!(
        arr(&spans[0], a::HANDLES_USED),
        vec!["cart=c1", "order_ref=r1"]
    );
}

#[test]
fn tasks_legacy_2025_11_25_and_modern_extension() {
    let legacy_body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"render","arguments":{},"task":{"ttl":60000}}}"#;
    let modern_body = tools_call("2", "render", "{}");
    let (spans, _) = run(vec![
        post(
            1,
            0,
            S,
            &[
                ("mcp-session-id", "s"),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            legacy_body,
        ),
        end(
            1,
            0,
            S + 1,
            r#"{"jsonrpc":"2.0","id":1,"result":{"task":{"taskId":"t-old","status":"working","createdAt":"2025-11-25T00:00:00Z","ttl":60000}}}"#,
        ),
        post(
            1,
            1,
            S + 10,
            &modern_headers("tools/call", Some("render")),
            &modern_body,
        ),
        end(
            1,
            1,
            S + 11,
            r#"{"jsonrpc":"2.0","id":2,"result":{"resultType":"task","taskId":"t-new","status":"working","createdAt":"2026-08-01T00:00:00Z","lastUpdatedAt":"2026-08-01T00:00:00Z","ttlMs":null}}"#,
        ),
        post(
            1,
            2,
            S + 20,
            &modern_headers("tasks/get", Some("t-new")),
            &format!(
                r#"{{"jsonrpc":"2.0","id":3,"method":"tasks/get","params":{{"taskId":"t-new",{MODERN_META}}}}}"#
            ),
        ),
        end(
            1,
            2,
            S + 21,
            r#"{"jsonrpc":"2.0","id":3,"result":{"resultType":"complete","taskId":"t-new","status":"completed","ttlMs":5000,"cacheScope":"private"}}"#,
        ),
    ]);
    assert!(boolean(&spans[0], a::TASK_LEGACY_REQUESTED));
    assert_eq!(s(&spans[0], a::TASK_ID), "t-old");
    assert_eq!(s(&spans[0], a::TASK_STATUS), "working");
    assert_eq!(arr(&spans[0], a::HANDLES_MINTED), vec!["taskId=t-old"]);
    assert!(spans[0].attr(a::RESULT_TYPE).is_none());

    assert_eq!(s(&spans[1], a::RESULT_TYPE), "task");
    assert_eq!(s(&spans[1], a::TASK_ID), "t-new");
    assert_eq!(s(&spans[1], a::TASK_STATUS), "working");
    assert_eq!(arr(&spans[1], a::HANDLES_MINTED), vec!["taskId=t-new"]);
    assert!(spans[1].attr(a::TASK_LEGACY_REQUESTED).is_none());

    assert_eq!(spans[2].name, "tasks/get");
    assert_eq!(s(&spans[2], a::ROUTING_NAME_STATUS), "match");
    assert_eq!(s(&spans[2], a::TASK_ID), "t-new");
    assert_eq!(s(&spans[2], a::TASK_STATUS), "completed");
    assert_eq!(arr(&spans[2], a::HANDLES_USED), vec!["taskId=t-new"]);
    assert_eq!(int(&spans[2], a::TTL_MS), 5000);
    assert_eq!(s(&spans[2], a::CACHE_SCOPE), "private");
}

fn secret_exchange() -> Vec<HttpEvent> {
    let body = tools_call(
        "1",
        "login",
        r#"{"api_key":"SECRET123","note":"Bearer sk-test-SECRET123","account_id":"acc-1","nested":{"password":"hunter2SECRET123"}}"#,
    );
    vec![
        post(
            1,
            0,
            S,
            &[
                modern_headers("tools/call", Some("login")),
                vec![
                    ("authorization", "Bearer sk-test-SECRET123"),
                    ("cookie", "sid=SECRET123"),
                ],
            ]
            .concat(),
            &body,
        ),
        head(1, 0, S + 1, 200, &[("set-cookie", "x=SECRET123")], false),
        end(
            1,
            0,
            S + 2,
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"token is eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRUNSRVQxMjMifQ.SECRET123sig"}],"structuredContent":{"session_token":"SECRET123"}}}"#,
        ),
    ]
}

#[test]
fn secrets_never_exported_by_default() {
    let (spans, _) = run(secret_exchange());
    let text = all_attr_text(&spans);
    assert!(!text.contains("SECRET123"), "{text}");
    assert!(!text.contains("Bearer"));
    assert!(text.contains("account_id=acc-1"));
}

#[test]
fn capture_bodies_redacts() {
    let cfg = DecoderConfig {
        capture_bodies: true,
        ..DecoderConfig::default()
    };
    let (spans, _) = run_cfg(cfg, secret_exchange());
    let text = all_attr_text(&spans);
    assert!(!text.contains("SECRET123"), "{text}");
    assert!(!text.contains("hunter2"));
    let req_body = s(&spans[0], a::REQUEST_BODY);
    assert!(req_body.contains(r#""api_key":"[REDACTED]""#), "{req_body}");
    assert!(req_body.contains(r#""note":"[REDACTED]""#));
    assert!(req_body.contains(r#""password":"[REDACTED]""#));
    assert!(req_body.contains(r#""account_id":"acc-1""#));
    assert!(req_body.contains(r#""name":"login""#));
    let resp_body = s(&spans[0], a::RESPONSE_BODY);
    assert!(
        resp_body.contains(r#""session_token":"[REDACTED]""#),
        "{resp_body}"
    );
    assert!(resp_body.contains(r#""text":"[REDACTED]""#), "{resp_body}");

    // Cap.
    let cfg = DecoderConfig {
        capture_bodies: true,
        capture_body_max_bytes: 20,
        ..DecoderConfig::default()
    };
    let (spans, st) = run_cfg(cfg, secret_exchange());
    assert_eq!(s(&spans[0], a::REQUEST_BODY).len(), 20);
    assert!(boolean(&spans[0], a::BODY_CAPTURE_TRUNCATED));
    assert_eq!(st.bodies_capture_truncated, 1);
}

#[test]
fn deterministic_ids() {
    let evs = || {
        vec![
            post(
                1,
                0,
                S,
                &[],
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            ),
            end(1, 0, S + 1, ""),
            post(
                1,
                1,
                S + 10,
                &[],
                r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
            ),
            end(1, 1, S + 11, ""),
        ]
    };
    let (a1, _) = run(evs());
    let (a2, _) = run(evs());
    assert_eq!(a1.len(), 2);
    for (x, y) in a1.iter().zip(&a2) {
        assert_eq!(x.span_id, y.span_id);
        assert_eq!(x.trace_id, y.trace_id);
        assert_ne!(x.span_id, [0u8; 8]);
        assert_ne!(x.trace_id, [0u8; 16]);
    }
    assert_ne!(a1[0].span_id, a1[1].span_id);
    assert_ne!(a1[0].trace_id, a1[1].trace_id);
    // A different flow id (another run) with the same endpoints and ISN: same ids.
    let moved: Vec<HttpEvent> = evs()
        .into_iter()
        .map(|e| match e {
            HttpEvent::Request { mut conn, req } => {
                conn.flow = FlowId(99);
                HttpEvent::Request { conn, req }
            }
            HttpEvent::ResponseEnd {
                index,
                ts,
                body,
                flags,
                ..
            } => HttpEvent::ResponseEnd {
                flow: FlowId(99),
                index,
                ts,
                body,
                flags,
            },
            other => other,
        })
        .collect();
    let (a3, _) = run(moved);
    assert_eq!(a1[0].span_id, a3[0].span_id);
}

#[test]
fn no_response_on_closed_and_capture_end() {
    let (spans, st) = run(vec![
        post(
            1,
            0,
            S,
            &[],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        ),
        closed(1, S + 500),
        post(
            2,
            0,
            S + 600,
            &[],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        ),
    ]);
    assert_eq!(spans.len(), 2);
    assert!(boolean(&spans[0], a::RESPONSE_MISSING));
    assert_eq!(s(&spans[0], a::RESPONSE_MISSING_REASON), "closed");
    assert_eq!(s(&spans[0], a::ERROR_TYPE), "no_response");
    assert_eq!(spans[0].status, SpanStatus::Error("no_response".into()));
    assert_eq!(spans[0].end_ns, S + 500);
    assert_eq!(s(&spans[1], a::RESPONSE_MISSING_REASON), "capture_end");
    assert_eq!(spans[1].status, SpanStatus::Unset);
    assert_eq!(st.closed_without_response, 1);
    assert_eq!(st.pending_at_finish, 1);
    assert_eq!(st.status_none, 2);
}

#[test]
fn sse_stream_cut_before_result_is_no_response() {
    let (spans, _) = run(vec![
        post(
            1,
            0,
            S,
            &modern_headers("tools/call", Some("slow")),
            &tools_call("1", "slow", "{}"),
        ),
        head(1, 0, S + 1, 200, &[], true),
        sse(
            1,
            0,
            S + 2,
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}"#,
        ),
        closed(1, S + 100),
    ]);
    assert!(boolean(&spans[0], a::RPC_RESPONSE_MISSING));
    assert!(boolean(&spans[0], a::MESSAGE_INCOMPLETE));
    assert_eq!(s(&spans[0], a::ERROR_TYPE), "no_response");
    assert_eq!(spans[0].end_ns, S + 100);
    assert_eq!(spans[0].events.len(), 1);
}

#[test]
fn subscriptions_listen_is_long_lived() {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"subscriptions/listen","params":{{"notifications":{{"toolsListChanged":true}},{MODERN_META}}}}}"#
    );
    let (spans, _) = run(vec![
        post(
            1,
            0,
            S,
            &modern_headers("subscriptions/listen", None),
            &body,
        ),
        head(1, 0, S + 1, 200, &[], true),
        sse(
            1,
            0,
            S + 2,
            r#"{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":9}}}"#,
        ),
        sse(
            1,
            0,
            S + 60_000,
            r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":9}}}"#,
        ),
        closed(1, S + 120_000),
    ]);
    let sp = &spans[0];
    assert!(boolean(sp, a::STREAM_LONG_LIVED));
    assert_eq!(sp.end_ns, S + 120_000);
    assert_eq!(sp.status, SpanStatus::Unset);
    assert!(sp.attr(a::ERROR_TYPE).is_none());
    assert_eq!(sp.events.len(), 2);
}

#[test]
fn bounded_pending_evicts_oldest() {
    let cfg = DecoderConfig {
        max_pending: 2,
        ..DecoderConfig::default()
    };
    let mut d = Decoder::new(cfg);
    let mut out = Vec::new();
    for i in 0..5u64 {
        d.on_event(
            post(
                i,
                0,
                S + i,
                &[],
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            ),
            &mut out,
        );
    }
    assert_eq!(d.pending_len(), 2);
    assert_eq!(out.len(), 3);
    assert_eq!(d.stats().pending_evicted, 3);
    assert_eq!(out[0].attr_str(a::RESPONSE_MISSING_REASON), Some("evicted"));
    assert_eq!(out[0].start_ns, S);
    // A response for an evicted exchange is an orphan.
    d.on_event(
        end(0, 0, S + 100, r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
        &mut out,
    );
    assert_eq!(d.stats().orphan_events, 1);
    d.on_event(
        end(4, 0, S + 100, r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
        &mut out,
    );
    assert_eq!(out.len(), 4);
    assert_eq!(out[3].start_ns, S + 4);
    assert!(out[3].attr(a::RESPONSE_MISSING).is_none());
    assert_eq!(out[3].attr_str(a::MCP_METHOD_NAME), Some("tools/list"));
}

#[test]
fn bounded_sessions() {
    let cfg = DecoderConfig {
        max_sessions: 1,
        ..DecoderConfig::default()
    };
    let init = |n: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"{n}","version":"1"}}}}}}"#
        )
    };
    let (spans, st) = run_cfg(
        cfg,
        vec![
            post(1, 0, S, &[], &init("one")),
            head(1, 0, S + 1, 200, &[("mcp-session-id", "s1")], false),
            end(
                1,
                0,
                S + 2,
                r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25"}}"#,
            ),
            post(1, 1, S + 3, &[], &init("two")),
            head(1, 1, S + 4, 200, &[("mcp-session-id", "s2")], false),
            end(
                1,
                1,
                S + 5,
                r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25"}}"#,
            ),
            post(
                1,
                2,
                S + 6,
                &[("mcp-session-id", "s1")],
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            ),
            end(1, 2, S + 7, ""),
            post(
                1,
                3,
                S + 8,
                &[("mcp-session-id", "s2")],
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            ),
            end(1, 3, S + 9, ""),
        ],
    );
    assert_eq!(st.sessions_evicted, 1);
    assert!(spans[2].attr(a::CLIENT_NAME).is_none());
    assert_eq!(s(&spans[3], a::CLIENT_NAME), "two");
}

#[test]
fn instance_id_from_config_and_ipv6() {
    let cfg = DecoderConfig {
        instance_id: Some("pod-a".into()),
        ..DecoderConfig::default()
    };
    let (spans, _) = run_cfg(cfg, vec![post(1, 0, S, &[], "{}"), end(1, 0, S + 1, "")]);
    assert_eq!(spans[0].instance_id, "pod-a");
    let mut c = conn(1);
    c.server = "[fd00::9]:8000".parse().expect("v6");
    let ev = HttpEvent::Request {
        conn: c,
        req: HttpRequest {
            index: 0,
            ts_first: S,
            ts_last: S,
            method: "GET".into(),
            target: "http://example/mcp/x?q#f".into(),
            version_minor: 0,
            headers: Headers::new(),
            body: vec![],
            flags: MsgFlags {
                gap: true,
                ..MsgFlags::default()
            },
        },
    };
    let (spans, _) = run(vec![ev, end(1, 0, S + 1, "")]);
    assert_eq!(spans[0].instance_id, "[fd00::9]:8000");
    assert_eq!(s(&spans[0], a::SERVER_ADDRESS), "fd00::9");
    assert_eq!(s(&spans[0], a::URL_PATH), "/mcp/x");
    assert_eq!(s(&spans[0], a::NETWORK_PROTOCOL_VERSION), "1.0");
    assert!(boolean(&spans[0], a::TCP_GAP));
}
