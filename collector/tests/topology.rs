//! The same real SDK traffic captured at three points of a proxied topology
//! (`tests/fixtures/topology-*.pcap`, ground truth `topology.truth.json` from
//! the clients', servers', proxies' and probe's logs; `gen/topology.sh`):
//! every span names the real client, never a proxy; the two plaintext legs
//! of a request in the bridge capture are linked; the mesh pod's TLS leg is
//! counted, not parsed; early responses keep their method.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn truth() -> Value {
    let text = std::fs::read_to_string(support::fixture("topology.truth.json")).expect("truth");
    serde_json::from_str(&text).expect("truth json")
}

/// Spans (OTLP/JSON) and the summary of one capture.
fn decode(capture: &str) -> (Vec<Value>, String) {
    let (code, out, err) = support::run(
        support::collector()
            .arg("--pcap")
            .arg(support::fixture(capture))
            .args(["--output", "otlp-json"]),
    );
    assert_eq!(code, 0, "{err}");
    (support::spans(&out), err)
}

fn a(span: &Value, key: &str) -> Option<String> {
    support::attr(span, key)
}

/// The real client address of each request id, from the truth.
fn clients_by_request_id(t: &Value) -> BTreeMap<String, String> {
    t["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|r| {
            Some((
                r["request_id"].as_str()?.to_owned(),
                r["client_address"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn request_id(span: &Value) -> Option<String> {
    // A StrArray: `{"arrayValue":{"values":[{"stringValue":"…"}]}}`.
    let raw = a(span, "http.request.header.x-request-id")?;
    let v: Value = serde_json::from_str(&raw).ok()?;
    v["arrayValue"]["values"][0]["stringValue"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn every_capture_point_names_the_real_client_never_a_proxy() {
    let t = truth();
    let proxies: BTreeSet<String> = t["topology"]["proxies_never_instances"]
        .as_array()
        .expect("proxies")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    let by_rid = clients_by_request_id(&t);
    for capture in [
        "topology-pod-a.pcap",
        "topology-pod-b-any.pcap",
        "topology-pod-c.pcap",
        "topology-bridge.pcap",
    ] {
        let expected = &t["captures"][capture]["expected"];
        let real: BTreeSet<String> = expected["real_client_addresses"]
            .as_array()
            .expect("addresses")
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect();
        let (spans, _) = decode(capture);
        assert_eq!(
            spans.len() as u64,
            expected["plaintext_http_exchanges"]
                .as_u64()
                .expect("count"),
            "{capture}"
        );
        let mut checked = 0;
        for s in &spans {
            let client = a(s, "client.address").expect("client.address");
            assert!(
                !proxies.contains(&client),
                "{capture}: a proxy as client: {s}"
            );
            assert!(
                real.contains(&client),
                "{capture}: {client} is not a real client"
            );
            if let Some(rid) = request_id(s) {
                assert_eq!(by_rid.get(&rid), Some(&client), "{capture}: request {rid}");
                checked += 1;
            }
        }
        assert!(checked > 0, "{capture}: no span carried X-Request-Id");
    }
}

#[test]
fn bridge_links_the_two_plaintext_legs() {
    let t = truth();
    let expected = &t["captures"]["topology-bridge.pcap"]["expected"];
    let (spans, _) = decode("topology-bridge.pcap");
    let hop = |s: &Value| a(s, "mcptap.hop").unwrap_or_default();
    let by_id: BTreeMap<String, &Value> = spans
        .iter()
        .map(|s| (s["spanId"].as_str().unwrap_or_default().to_owned(), s))
        .collect();
    let upstream: Vec<&Value> = spans.iter().filter(|s| hop(s) == "upstream").collect();
    let two_legs = expected["requests_with_two_plaintext_legs"]
        .as_u64()
        .expect("n");
    assert_eq!(upstream.len() as u64, two_legs);
    // One upstream leg carries no body (the pod answered 404 from the head
    // alone, nginx never forwarded the body) and its client leg ended before
    // it: the only one not linked.
    let mut linked = 0;
    for up in &upstream {
        let Some(parent) = up["parentSpanId"].as_str().filter(|p| !p.is_empty()) else {
            assert_eq!(
                a(up, "mcp.method.name"),
                None,
                "only the body-less leg: {up}"
            );
            continue;
        };
        let client_leg = by_id.get(parent).expect("parent in the capture");
        assert_eq!(hop(client_leg), "client");
        assert_eq!(a(client_leg, "client.address"), a(up, "client.address"));
        assert_eq!(client_leg["traceId"], up["traceId"]);
        assert_eq!(a(client_leg, "mcp.method.name"), a(up, "mcp.method.name"));
        linked += 1;
    }
    assert_eq!(linked, two_legs - 1);
    // Requests to the ingress with no upstream leg in sight: the two it
    // answered itself, the 12 it forwarded to pod-b over TLS, and the client
    // leg of the body-less one.
    let client_only = spans.iter().filter(|s| hop(s) == "client_only").count() as u64;
    let tls_forwarded = 12;
    assert_eq!(
        client_only,
        expected["answered_by_ingress"].as_u64().expect("n") + tls_forwarded + 1
    );
}

#[test]
fn mesh_pod_tls_leg_is_counted_and_the_loopback_leg_decoded() {
    let t = truth();
    let (spans, summary) = decode("topology-pod-b-eth0.pcap");
    assert!(spans.is_empty(), "TLS is never parsed as HTTP");
    let tls = t["captures"]["topology-pod-b-eth0.pcap"]["expected"]["tls_connections"]
        .as_u64()
        .expect("n");
    assert!(
        summary.contains(&format!("connections {tls} ")),
        "{summary}"
    );
    assert!(summary.contains("parse-errors 0"), "{summary}");
    let (spans, _) = decode("topology-pod-b-any.pcap");
    // The loopback peer is the mesh proxy; the client comes from XFF, the
    // workload from XFCC when the mesh proxy's peer is the client itself
    // (through the ingress, XFCC names the ingress: no client workload).
    let workloads: BTreeMap<String, Option<String>> = t["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|r| {
            Some((
                r["request_id"].as_str()?.to_owned(),
                r["workload_identity"].as_str().map(str::to_owned),
            ))
        })
        .collect();
    let mut with_workload = 0;
    for s in &spans {
        assert_eq!(a(s, "network.peer.address").as_deref(), Some("127.0.0.6"));
        assert_eq!(a(s, "mcptap.hop").as_deref(), Some("upstream"));
        let rid = request_id(s).expect("X-Request-Id on the loopback leg");
        let want = workloads.get(&rid).expect("request in the truth");
        assert_eq!(&a(s, "mcptap.client.workload"), want, "request {rid}");
        with_workload += usize::from(want.is_some());
    }
    assert_eq!(with_workload, 16, "the mesh client's 15 and the probe's 1");
}

#[test]
fn early_responses_keep_their_method() {
    let t = truth();
    for capture in ["topology-pod-a.pcap", "topology-bridge.pcap"] {
        let expected = &t["captures"][capture]["expected"];
        let (spans, summary) = decode(capture);
        let mut methods: Vec<String> = Vec::new();
        for e in expected["early_responses"].as_array().expect("early") {
            for leg in e["legs"].as_array().expect("legs") {
                if leg["request_body_on_leg"] == true {
                    methods.push(e["mcp_method"].as_str().expect("method").to_owned());
                }
            }
        }
        let statuses: BTreeSet<i64> = expected["early_responses"]
            .as_array()
            .expect("early")
            .iter()
            .filter_map(|e| e["status"].as_i64())
            .collect();
        let mut seen: Vec<String> = spans
            .iter()
            .filter(|s| {
                a(s, "http.response.status_code")
                    .and_then(|c| c.parse::<i64>().ok())
                    .is_some_and(|c| statuses.contains(&c))
            })
            .filter(|s| a(s, "mcptap.message.incomplete").is_none())
            .filter_map(|s| a(s, "mcp.method.name"))
            .collect();
        for m in &methods {
            let at = seen.iter().position(|x| x == m);
            assert!(
                at.is_some(),
                "{capture}: early response to {m} without its method: {seen:?}"
            );
            if let Some(i) = at {
                seen.remove(i);
            }
        }
        assert!(summary.contains("early responses"), "{capture}: {summary}");
    }
}
