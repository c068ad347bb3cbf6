//! The real client behind a proxy, and the two legs of one proxied request in
//! one capture (client → ingress, ingress → pod): `client.address` from the
//! forwarding headers, `network.peer.address` the socket peer, the upstream
//! leg a child of the client leg, each leg named by `mcptap.hop`, and a
//! request the proxy answered itself marked `proxy`.

use mcptap_mcp::{AttrValue, Decoder, DecoderConfig, McpStats, Span, TrustedProxies, attrs as a};
use mcptap_wire::{ConnMeta, FlowId, Header, Headers, HttpEvent, HttpRequest, MsgFlags};

const CLIENT_A: &str = "203.0.113.7";
const CLIENT_B: &str = "198.51.100.20";
const INGRESS: &str = "10.0.0.10";
const POD: &str = "10.0.0.11";

fn conn(flow: u64, client: &str, port: u16, server: &str, server_port: u16) -> ConnMeta {
    ConnMeta {
        flow: FlowId(flow),
        client: format!("{client}:{port}").parse().expect("addr"),
        server: format!("{server}:{server_port}").parse().expect("addr"),
        client_isn: 7000 + flow as u32,
    }
}

fn request(c: ConnMeta, ts: u64, headers: &[(&str, &str)], body: &str) -> HttpEvent {
    HttpEvent::Request {
        conn: c,
        req: HttpRequest {
            index: 0,
            ts_first: ts,
            ts_last: ts + 1,
            method: "POST".into(),
            target: "/mcp".into(),
            version_minor: 1,
            headers: headers
                .iter()
                .map(|(n, v)| Header {
                    name: (*n).into(),
                    value: v.as_bytes().to_vec(),
                })
                .collect::<Headers>(),
            body: body.as_bytes().to_vec(),
            flags: MsgFlags::default(),
        },
    }
}

fn response(flow: u64, ts: u64, status: u16, body: &str) -> [HttpEvent; 2] {
    [
        HttpEvent::ResponseHead {
            flow: FlowId(flow),
            index: 0,
            ts,
            status,
            headers: [("content-type", "application/json")]
                .iter()
                .map(|(n, v)| Header {
                    name: (*n).into(),
                    value: v.as_bytes().to_vec(),
                })
                .collect(),
            sse: false,
        },
        HttpEvent::ResponseEnd {
            flow: FlowId(flow),
            index: 0,
            ts: ts + 1,
            body: body.as_bytes().to_vec(),
            flags: MsgFlags::default(),
        },
    ]
}

fn call(id: u32) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"add_item","arguments":{{"basket_id":"b1"}}}}}}"#
    )
}

fn result(id: u32) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[]}}}}"#)
}

fn run(cfg: DecoderConfig, evs: Vec<HttpEvent>) -> (Vec<Span>, McpStats) {
    let mut d = Decoder::new(cfg);
    let mut out = Vec::new();
    for e in evs {
        d.on_event(e, &mut out);
    }
    d.finish(&mut out);
    (out, d.stats().clone())
}

fn attr<'a>(s: &'a Span, k: &str) -> Option<&'a str> {
    s.attributes
        .iter()
        .find(|(n, _)| *n == k)
        .and_then(|(_, v)| match v {
            AttrValue::Str(t) => Some(t.as_str()),
            _ => None,
        })
}

fn server(s: &Span) -> &str {
    attr(s, a::SERVER_ADDRESS).unwrap_or_default()
}

/// Two clients with the same call through one ingress, both legs captured,
/// plus a request the ingress answered itself (no upstream leg).
fn bridge_capture() -> Vec<HttpEvent> {
    let mut evs = vec![
        // Client A → ingress, then the ingress forwards it.
        request(conn(1, CLIENT_A, 50000, INGRESS, 8080), 100, &[], &call(1)),
        // Client B sends the very same bytes a moment later.
        request(conn(2, CLIENT_B, 50001, INGRESS, 8080), 101, &[], &call(1)),
        request(
            conn(3, INGRESS, 40000, POD, 8000),
            110,
            &[("X-Forwarded-For", CLIENT_B), ("X-Request-Id", "rid-b")],
            &call(1),
        ),
        request(
            conn(4, INGRESS, 40001, POD, 8000),
            111,
            &[("X-Forwarded-For", CLIENT_A), ("X-Request-Id", "rid-a")],
            &call(1),
        ),
    ];
    evs.extend(response(3, 120, 200, &result(1)));
    evs.extend(response(4, 121, 200, &result(1)));
    evs.extend(response(2, 130, 200, &result(1)));
    evs.extend(response(1, 131, 200, &result(1)));
    // The ingress answers this one itself (no upstream leg).
    evs.push(request(
        conn(5, CLIENT_A, 50002, INGRESS, 8080),
        200,
        &[],
        &call(2),
    ));
    evs.extend(response(5, 201, 502, "<html>502 Bad Gateway</html>"));
    evs
}

#[test]
fn both_legs_are_linked_and_named() {
    let (spans, stats) = run(DecoderConfig::default(), bridge_capture());
    assert_eq!(spans.len(), 5);
    assert_eq!(
        (stats.upstream_legs_linked, stats.upstream_legs_unlinked),
        (2, 0)
    );
    let upstream: Vec<&Span> = spans.iter().filter(|s| server(s) == POD).collect();
    assert_eq!(upstream.len(), 2);
    for up in &upstream {
        assert_eq!(attr(up, a::HOP), Some("upstream"));
        assert_eq!(attr(up, a::NETWORK_PEER_ADDRESS), Some(INGRESS));
        assert_eq!(attr(up, a::CLIENT_ADDRESS_SOURCE), Some("x-forwarded-for"));
        let client = attr(up, a::CLIENT_ADDRESS).expect("client.address");
        // Its parent is the client leg of the same client, in the same trace.
        let parent = spans
            .iter()
            .find(|s| Some(s.span_id) == up.parent_span_id)
            .expect("parent span in the capture");
        assert_eq!(attr(parent, a::HOP), Some("client"));
        assert_eq!(attr(parent, a::CLIENT_ADDRESS), Some(client));
        assert_eq!(server(parent), INGRESS);
        assert_eq!(parent.trace_id, up.trace_id);
        assert_eq!(parent.parent_span_id, None);
    }
    let answered: Vec<&Span> = spans
        .iter()
        .filter(|s| attr(s, a::HOP) == Some("client_only"))
        .collect();
    assert_eq!(answered.len(), 1, "the ingress's own 502");
    assert_eq!(attr(answered[0], a::CLIENT_ADDRESS), Some(CLIENT_A));
}

#[test]
fn a_pod_sidecar_sees_the_real_client_without_the_client_leg() {
    let mut evs = vec![request(
        conn(3, INGRESS, 40000, POD, 8000),
        110,
        &[
            ("X-Forwarded-For", &format!("{CLIENT_B}, 10.0.0.3")),
            (
                "x-forwarded-client-cert",
                "By=spiffe://cluster.local/ns/mcp/sa/mcp;URI=spiffe://cluster.local/ns/shop/sa/agent",
            ),
        ],
        &call(1),
    )];
    evs.extend(response(3, 120, 200, &result(1)));
    let (spans, stats) = run(DecoderConfig::default(), evs);
    let s = &spans[0];
    assert_eq!(
        attr(s, a::CLIENT_ADDRESS),
        Some(CLIENT_B),
        "past the trusted 10.0.0.3 hop"
    );
    assert_eq!(attr(s, a::NETWORK_PEER_ADDRESS), Some(INGRESS));
    assert_eq!(attr(s, a::HOP), Some("upstream"));
    // Two hops: the mesh identity is that of the hop before the ingress, not the client's.
    assert_eq!(attr(s, a::CLIENT_WORKLOAD), None);
    assert!(s.parent_span_id.is_none());
    assert_eq!(
        (stats.upstream_legs_linked, stats.upstream_legs_unlinked),
        (0, 1)
    );
}

#[test]
fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let cfg = DecoderConfig {
        trusted_proxies: "192.0.2.0/24".parse::<TrustedProxies>().expect("cidr"),
        ..DecoderConfig::default()
    };
    let mut evs = vec![request(
        conn(3, INGRESS, 40000, POD, 8000),
        110,
        &[("X-Forwarded-For", CLIENT_B)],
        &call(1),
    )];
    evs.extend(response(3, 120, 200, &result(1)));
    let (spans, stats) = run(cfg, evs);
    let s = &spans[0];
    assert_eq!(attr(s, a::CLIENT_ADDRESS), Some(INGRESS));
    assert_eq!(attr(s, a::CLIENT_ADDRESS_ANOMALY), Some("untrusted_peer"));
    assert_eq!(attr(s, a::HOP), None);
    assert_eq!(stats.client_address_anomalies, 1);
}

#[test]
fn the_mesh_identity_names_a_client_that_reached_the_mesh_proxy_directly() {
    let mut evs = vec![request(
        conn(3, "127.0.0.6", 40000, "127.0.0.1", 8000),
        110,
        &[
            ("X-Forwarded-For", CLIENT_B),
            (
                "x-forwarded-client-cert",
                "By=spiffe://cluster.local/ns/mcp/sa/mcp;URI=spiffe://cluster.local/ns/shop/sa/agent",
            ),
        ],
        &call(1),
    )];
    evs.extend(response(3, 120, 200, &result(1)));
    let (spans, _) = run(DecoderConfig::default(), evs);
    let s = &spans[0];
    assert_eq!(attr(s, a::CLIENT_ADDRESS), Some(CLIENT_B));
    assert_eq!(attr(s, a::NETWORK_PEER_ADDRESS), Some("127.0.0.6"));
    assert_eq!(
        attr(s, a::CLIENT_WORKLOAD),
        Some("spiffe://cluster.local/ns/shop/sa/agent")
    );
    assert_eq!(
        attr(s, a::CLIENT_WORKLOAD_SOURCE),
        Some("x-forwarded-client-cert")
    );
}

#[test]
fn many_forwarding_lines_give_the_same_client_as_one() {
    let one = format!("{CLIENT_A}, 10.0.0.5, 10.0.0.6, 10.0.0.7, 10.0.0.8");
    let joined = [("X-Forwarded-For", one.as_str())];
    let split: Vec<(&str, &str)> = one.split(", ").map(|h| ("X-Forwarded-For", h)).collect();
    let mut answers = Vec::new();
    for headers in [&joined[..], &split[..]] {
        let mut evs = vec![request(
            conn(3, INGRESS, 40000, POD, 8000),
            110,
            headers,
            &call(1),
        )];
        evs.extend(response(3, 120, 200, &result(1)));
        let (spans, _) = run(DecoderConfig::default(), evs);
        answers.push((
            attr(&spans[0], a::CLIENT_ADDRESS).map(str::to_owned),
            attr(&spans[0], a::CLIENT_ADDRESS_SOURCE).map(str::to_owned),
        ));
    }
    assert_eq!(
        answers[0], answers[1],
        "5 lines (more than the scan keeps) read as one"
    );
    assert_eq!(answers[0].0.as_deref(), Some(CLIENT_A));
}

/// The one-entry identity cache answers as a fresh resolution would: a run of
/// requests with repeating, changing, untrusted and malformed forwarding
/// headers gives, request by request, what a decoder that saw only that
/// request gives.
#[test]
fn the_identity_cache_answers_as_a_fresh_decoder() {
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (INGRESS, vec![("X-Forwarded-For", CLIENT_A)]),
        (INGRESS, vec![("X-Forwarded-For", CLIENT_A)]),
        (INGRESS, vec![("X-Forwarded-For", CLIENT_B)]),
        ("192.0.2.99", vec![("X-Forwarded-For", CLIENT_B)]),
        ("192.0.2.99", vec![("X-Forwarded-For", CLIENT_B)]),
        (INGRESS, vec![("X-Forwarded-For", "garbage, 10.0.0.3")]),
        (INGRESS, vec![("Forwarded", "for=\"[2001:db8::7]:4711\"")]),
        (INGRESS, vec![("Forwarded", "for=\"[2001:db8::7]:4711\"")]),
        (
            "127.0.0.6",
            vec![
                ("X-Forwarded-For", CLIENT_A),
                (
                    "l5d-client-id",
                    "web.shop.serviceaccount.identity.linkerd.cluster.local",
                ),
            ],
        ),
        ("127.0.0.6", vec![("X-Forwarded-For", CLIENT_A)]),
        (INGRESS, vec![("X-Real-IP", CLIENT_B)]),
    ];
    let keys = [
        a::CLIENT_ADDRESS,
        a::CLIENT_PORT,
        a::NETWORK_PEER_ADDRESS,
        a::CLIENT_ADDRESS_SOURCE,
        a::CLIENT_ADDRESS_ANOMALY,
        a::CLIENT_WORKLOAD,
    ];
    let view = |s: &Span| -> Vec<String> {
        keys.iter()
            .map(|k| {
                s.attributes
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| format!("{v:?}"))
                    .unwrap_or_default()
            })
            .collect()
    };
    let mut all = Vec::new();
    let mut alone = Vec::new();
    for (i, (peer, headers)) in cases.iter().enumerate() {
        let flow = 10 + i as u64;
        let c = conn(flow, peer, 41000 + i as u16, POD, 8000);
        let mut evs = vec![request(c, 100 + i as u64, headers, &call(1))];
        evs.extend(response(flow, 200 + i as u64, 200, &result(1)));
        all.extend(evs.clone());
        let (spans, _) = run(DecoderConfig::default(), evs);
        alone.push(view(&spans[0]));
    }
    let (spans, _) = run(DecoderConfig::default(), all);
    let together: Vec<Vec<String>> = spans.iter().map(view).collect();
    assert_eq!(together, alone);
}
