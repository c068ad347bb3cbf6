//! Golden tests: the spans decoded from the real SDK captures in
//! `tests/fixtures/` equal the ground truth built from what the MCP clients and
//! servers logged (never from the pcap; see tests/fixtures/README.md).
//!
//! Every `*.truth.json` names its capture. For each, the multiset of exchange
//! "signatures" (instance, HTTP method and status, MCP method, JSON-RPC id, tool /
//! prompt / resource name, session header, client name, handles used and minted,
//! JSON-RPC error code, tool error) must be equal between spans and truth; trace
//! context must match where the client sent a `traceparent`; planted secrets must
//! appear in no output.

mod support;

use mcptap_collector::otlp_json::{ResourceInfo, export_request};
use mcptap_collector::pipeline::PipelineConfig;
use mcptap_collector::run::decode_file;
use mcptap_mcp::{AttrValue, Span};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a AttrValue> {
    s.attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

fn attr_str(s: &Span, key: &str) -> Option<String> {
    match attr(s, key)? {
        AttrValue::Str(v) => Some(v.to_string()),
        AttrValue::Int(i) => Some(i.to_string()),
        AttrValue::Bool(b) => Some(b.to_string()),
        AttrValue::StrArray(a) => Some(a.join(",")),
    }
}

fn attr_list(s: &Span, key: &str) -> Vec<String> {
    let mut v = match attr(s, key) {
        Some(AttrValue::StrArray(a)) => a.clone(),
        Some(AttrValue::Str(x)) => vec![x.to_string()],
        _ => Vec::new(),
    };
    v.sort();
    v
}

fn json_str(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn handle_list(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| match v {
                Value::Array(a) => a
                    .iter()
                    .filter_map(json_str)
                    .map(|x| format!("{k}={x}"))
                    .collect::<Vec<_>>(),
                other => json_str(other)
                    .map(|x| vec![format!("{k}={x}")])
                    .unwrap_or_default(),
            })
            .collect(),
        _ => Vec::new(),
    };
    out.sort();
    out
}

/// One exchange, as comparable text.
type Signature = String;

fn span_signature(s: &Span, with_client: bool) -> Signature {
    let name = attr_str(s, "gen_ai.tool.name")
        .or_else(|| attr_str(s, "gen_ai.prompt.name"))
        .or_else(|| attr_str(s, "mcp.resource.uri"));
    let is_error = attr_str(s, "error.type").as_deref() == Some("tool_error");
    format!(
        "{} {} {} method={:?} id={:?} name={:?} session={:?} client={:?} used={:?} minted={:?} rpc_code={:?} tool_error={}",
        s.instance_id,
        attr_str(s, "http.request.method").unwrap_or_default(),
        attr_str(s, "http.response.status_code").unwrap_or_default(),
        attr_str(s, "mcp.method.name"),
        attr_str(s, "jsonrpc.request.id"),
        name,
        attr_str(s, "mcp.session.id"),
        if with_client {
            attr_str(s, "mcptap.client.name")
        } else {
            None
        },
        attr_list(s, "mcptap.handles.used"),
        attr_list(s, "mcptap.handles.minted"),
        attr_str(s, "rpc.response.status_code"),
        is_error,
    )
}

fn truth_signature(e: &Value, with_client: bool) -> Signature {
    format!(
        "{} {} {} method={:?} id={:?} name={:?} session={:?} client={:?} used={:?} minted={:?} rpc_code={:?} tool_error={}",
        e["instance"].as_str().unwrap_or_default(),
        e["http_method"].as_str().unwrap_or_default(),
        json_str(&e["status"]).unwrap_or_default(),
        json_str(&e["mcp_method"]),
        json_str(&e["jsonrpc_id"]),
        json_str(&e["name"]),
        json_str(&e["session_id_sent"]),
        if with_client {
            json_str(&e["client_name"])
        } else {
            None
        },
        handle_list(&e["handles_used"]),
        handle_list(&e["handles_minted"]),
        json_str(&e["rpc_error_code"]),
        e["is_error"].as_bool().unwrap_or(false),
    )
}

fn multiset(items: impl IntoIterator<Item = Signature>) -> BTreeMap<Signature, i64> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

fn diff(spans: &BTreeMap<Signature, i64>, truth: &BTreeMap<Signature, i64>) -> String {
    let mut out = String::new();
    for (k, n) in truth {
        let got = spans.get(k).copied().unwrap_or(0);
        if got != *n {
            out.push_str(&format!("  truth {n} × spans {got}: {k}\n"));
        }
    }
    for (k, n) in spans {
        if !truth.contains_key(k) {
            out.push_str(&format!("  extra span ×{n}: {k}\n"));
        }
    }
    out
}

fn truth_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(support::fixtures_dir())
        .expect("tests/fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".truth.json"))
        // The topology captures (several per truth) have their own test, topology.rs.
        .filter(|p| !p.to_string_lossy().ends_with("topology.truth.json"))
        .collect();
    v.sort();
    v
}

struct Case {
    truth: Value,
    spans: Vec<Span>,
    name: String,
}

fn cases() -> Vec<Case> {
    let files = truth_files();
    assert!(!files.is_empty(), "no *.truth.json in tests/fixtures");
    files
        .into_iter()
        .map(|p| {
            let truth: Value = serde_json::from_slice(&std::fs::read(&p).expect("read truth"))
                .expect("truth JSON");
            let capture =
                support::fixtures_dir().join(truth["capture"].as_str().expect("truth.capture"));
            let decoded = decode_file(&capture, PipelineConfig::default()).expect("decode fixture");
            assert!(
                decoded.truncated.is_none(),
                "{} is complete",
                capture.display()
            );
            eprintln!("{}:\n{}", capture.display(), decoded.summary);
            Case {
                truth,
                spans: decoded.spans,
                name: p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            }
        })
        .collect()
}

#[test]
fn spans_equal_ground_truth() {
    for c in cases() {
        let exchanges = c.truth["exchanges"].as_array().expect("exchanges");
        assert_eq!(
            c.spans.len(),
            exchanges.len(),
            "{}: one span per logged exchange",
            c.name
        );
        let s = multiset(c.spans.iter().map(|s| span_signature(s, false)));
        let t = multiset(exchanges.iter().map(|e| truth_signature(e, false)));
        assert!(
            s == t,
            "{}: spans differ from the truth:\n{}",
            c.name,
            diff(&s, &t)
        );
    }
}

#[test]
fn client_identity_equals_ground_truth() {
    for c in cases() {
        let exchanges = c.truth["exchanges"].as_array().expect("exchanges");
        // Exchanges whose client the logs identify, and that the capture can identify too:
        // by `_meta` clientInfo, or by a session whose `initialize` is in this capture (a
        // sidecar capture of one pod cannot name the client of a session minted elsewhere).
        let captured: Vec<&str> = exchanges
            .iter()
            .filter_map(|e| e["instance"].as_str())
            .collect();
        let known: Vec<&Value> = exchanges
            .iter()
            .filter(|e| !e["client_name"].is_null())
            .filter(|e| {
                e["session_id_sent"].is_null()
                    || e["session_minted_on"]
                        .as_str()
                        .is_some_and(|i| captured.contains(&i))
            })
            .collect();
        let t = multiset(known.iter().map(|e| truth_signature(e, true)));
        let s = multiset(
            c.spans
                .iter()
                .map(|s| span_signature(s, true))
                .filter(|sig| !sig.contains(" client=None ")),
        );
        let missing: BTreeMap<_, _> = t
            .iter()
            .filter(|(k, n)| s.get(*k).copied().unwrap_or(0) < **n)
            .collect();
        assert!(
            missing.is_empty(),
            "{}: client identity not decoded for:\n{missing:#?}",
            c.name
        );
    }
}

#[test]
fn instances_are_told_apart() {
    for c in cases() {
        let mut want: Vec<String> = c.truth["exchanges"]
            .as_array()
            .expect("exchanges")
            .iter()
            .filter_map(|e| e["instance"].as_str().map(str::to_owned))
            .collect();
        want.sort();
        want.dedup();
        let mut got: Vec<String> = c.spans.iter().map(|s| s.instance_id.to_string()).collect();
        got.sort();
        got.dedup();
        assert_eq!(
            got, want,
            "{}: service.instance.id per server endpoint",
            c.name
        );
    }
}

#[test]
fn traceparents_are_joined() {
    let mut checked = 0;
    for c in cases() {
        for e in c.truth["exchanges"].as_array().expect("exchanges") {
            let Some(tp) = e["traceparent"].as_str() else {
                continue;
            };
            let parts: Vec<&str> = tp.split('-').collect();
            let (trace, parent) = (parts[1], parts[2]);
            let hit = c.spans.iter().find(|s| {
                attr_str(s, "jsonrpc.request.id") == json_str(&e["jsonrpc_id"])
                    && attr_str(s, "mcp.method.name") == json_str(&e["mcp_method"])
                    && s.instance_id == e["instance"].as_str().unwrap_or_default()
                    && hex(&s.trace_id) == trace
            });
            let s =
                hit.unwrap_or_else(|| panic!("{}: no span joined trace {trace} for {e}", c.name));
            assert_eq!(
                s.parent_span_id.map(|p| hex(&p)).as_deref(),
                Some(parent),
                "{}: parent of {e}",
                c.name
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "the fixtures carry traceparents");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn planted_secrets_never_leave() {
    for c in cases() {
        let out = export_request(
            &c.spans,
            &ResourceInfo {
                service_name: "t".into(),
                extra: vec![],
            },
        )
        .to_string();
        for secret in c.truth["planted_secrets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let secret = secret.as_str().expect("secret string");
            assert!(
                !out.contains(secret),
                "{}: planted secret {secret:?} found in the OTLP output",
                c.name
            );
        }
    }
}

#[test]
fn replay_is_deterministic() {
    for c in cases() {
        let capture = support::fixtures_dir().join(c.truth["capture"].as_str().expect("capture"));
        let again = decode_file(&capture, PipelineConfig::default()).expect("decode again");
        let ids = |v: &[Span]| {
            v.iter()
                .map(|s| (s.trace_id, s.span_id, s.start_ns, s.end_ns))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(&c.spans),
            ids(&again.spans),
            "{}: same ids and times on replay",
            c.name
        );
        let mut uniq: Vec<[u8; 8]> = c.spans.iter().map(|s| s.span_id).collect();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), c.spans.len(), "{}: span ids are unique", c.name);
    }
}
