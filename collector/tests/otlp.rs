//! OTLP export against real receivers.
//!
//! - oteltest's `GrpcSink` and `HttpSink` (PyPI oteltest 0.49.0, through
//!   `tests/support/otlp_sink.py`) receive every span decoded from
//!   `tests/fixtures/cutover.pcap`; the test compares trace ids, span ids,
//!   parents, ns timestamps, names, kinds, typed attributes, events, status,
//!   resource and scope with the decoded spans, and the credentials header.
//! - rotel (PyPI rotel 0.0.1a15, a Rust OpenTelemetry collector) accepts the
//!   same spans over gRPC and HTTP and logs their ids.
//! - Configuration and transport errors are clear and classified: refused
//!   connection → retryable; 401 → fatal with a credentials hint.
//!
//! The Python tools come from `.venv/` (created by `scripts/test-venv.sh`, which
//! the tests run; it needs PyPI once).

mod support;

use mcptap_collector::export::otlp::{OtlpConfig, OtlpExporter, OtlpFlags, OtlpProtocol};
use mcptap_collector::export::{Batch, ExportError, Exporter};
use mcptap_collector::otlp_json::ResourceInfo;
use mcptap_collector::pipeline::PipelineConfig;
use mcptap_collector::run::decode_file;
use mcptap_mcp::{AttrValue, Span, SpanStatus};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;
use support::{ChildGuard, OtlpSink, SinkProtocol, TempDir, free_port};

fn cutover_spans() -> Vec<Span> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/cutover.pcap");
    let d = decode_file(&path, PipelineConfig::default()).expect("decoding cutover.pcap");
    assert!(d.truncated.is_none());
    d.spans
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn resource() -> ResourceInfo {
    ResourceInfo {
        service_name: "mcp-test".into(),
        extra: vec![("k8s.namespace.name".into(), "shop".into())],
    }
}

fn config(endpoint: String, protocol: OtlpProtocol) -> OtlpConfig {
    OtlpConfig {
        endpoint,
        protocol,
        headers: vec![("authorization".into(), "Bearer test-token".into())],
        timeout: Duration::from_secs(10),
        resource: resource(),
    }
}

/// The sink's JSON form of one attribute value.
fn expected_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => json!({ "string": s }),
        AttrValue::Int(i) => json!({ "int": i }),
        AttrValue::Bool(b) => json!({ "bool": b }),
        AttrValue::StrArray(a) => {
            json!({ "array": a.iter().map(|s| json!({ "string": s })).collect::<Vec<_>>() })
        }
    }
}

fn expected_attrs(attrs: &[mcptap_mcp::Attr]) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in attrs {
        m.entry(k.to_string()).or_insert_with(|| expected_value(v));
    }
    Value::Object(m)
}

/// Sends `spans` in batches of 10 through a fresh exporter.
async fn export_all(cfg: OtlpConfig, spans: &[Span]) {
    let mut exp = OtlpExporter::new(cfg).await.expect("building the exporter");
    assert_eq!(exp.name(), "otlp");
    for chunk in spans.chunks(10) {
        let batch = Batch::new(chunk.to_vec());
        exp.export(&batch).await.expect("export");
    }
    exp.shutdown().await;
}

/// Every received span, keyed by span id, with its resource and scope.
fn received_by_span_id(reqs: &[Value]) -> BTreeMap<String, (Value, Value, Value)> {
    let mut out = BTreeMap::new();
    for r in reqs {
        for rs in r["resourceSpans"].as_array().expect("resourceSpans") {
            for sc in rs["scopes"].as_array().expect("scopes") {
                for s in sc["spans"].as_array().expect("spans") {
                    let id = s["spanId"].as_str().expect("spanId").to_string();
                    let scope = json!({ "name": sc["name"], "version": sc["version"] });
                    let prev = out.insert(id.clone(), (s.clone(), rs["resource"].clone(), scope));
                    assert!(prev.is_none(), "span {id} received twice");
                }
            }
        }
    }
    out
}

fn assert_received_equal(spans: &[Span], reqs: &[Value]) {
    let got = received_by_span_id(reqs);
    assert_eq!(got.len(), spans.len(), "spans received");
    let mut errors = 0;
    let mut int_status = 0;
    for s in spans {
        let id = hex(&s.span_id);
        let (r, res, scope) = got
            .get(&id)
            .unwrap_or_else(|| panic!("span {id} not received"));
        assert_eq!(r["traceId"], hex(&s.trace_id), "{id}: trace id");
        assert_eq!(
            r["parentSpanId"],
            s.parent_span_id.map(|p| hex(&p)).unwrap_or_default(),
            "{id}: parent"
        );
        assert_eq!(r["traceState"], s.trace_state, "{id}: tracestate");
        assert_eq!(r["name"], s.name, "{id}: name");
        assert_eq!(r["kind"], 2, "{id}: kind SERVER");
        assert_eq!(
            r["startTimeUnixNano"].as_u64(),
            Some(s.start_ns),
            "{id}: start ns"
        );
        assert_eq!(
            r["endTimeUnixNano"].as_u64(),
            Some(s.end_ns),
            "{id}: end ns"
        );
        // Low byte: W3C flags (sampled); 0x100/0x200: parent is remote (OTLP span flags).
        let flags = r["flags"].as_u64().expect("flags");
        assert_eq!(flags & 0xff, 1, "{id}: sampled");
        if s.parent_span_id.is_some() {
            assert_eq!(flags & 0x300, 0x300, "{id}: remote parent flags");
        }
        assert_eq!(
            r["attributes"],
            expected_attrs(&s.attributes),
            "{id}: attributes"
        );
        if let Some(AttrValue::Int(code)) = s.attr("http.response.status_code") {
            assert_eq!(
                r["attributes"]["http.response.status_code"],
                json!({ "int": code })
            );
            int_status += 1;
        }
        match &s.status {
            SpanStatus::Unset => assert_eq!(r["status"]["code"], 0, "{id}: status unset"),
            SpanStatus::Error(m) => {
                assert_eq!(
                    r["status"],
                    json!({ "code": 2, "message": m }),
                    "{id}: status"
                );
                errors += 1;
            }
        }
        let events: Vec<Value> = s
            .events
            .iter()
            .map(|e| {
                json!({ "name": e.name, "timeUnixNano": e.time_ns, "attributes": expected_attrs(&e.attributes) })
            })
            .collect();
        assert_eq!(r["events"], Value::Array(events), "{id}: events");
        assert_eq!(
            res["service.instance.id"],
            json!({ "string": s.instance_id }),
            "{id}: instance"
        );
        assert_eq!(res["service.name"], json!({ "string": "mcp-test" }));
        assert_eq!(res["k8s.namespace.name"], json!({ "string": "shop" }));
        assert_eq!(scope["name"], "mcptap-collector");
        assert_eq!(scope["version"], env!("CARGO_PKG_VERSION"));
    }
    assert!(
        int_status > 50,
        "http.response.status_code present as int: {int_status}"
    );
    assert!(errors > 0, "the capture has error spans");
    for r in reqs {
        assert_eq!(
            r["headers"]["authorization"], "Bearer test-token",
            "credentials header"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_sink_receives_every_span_exactly() {
    let spans = cutover_spans();
    assert_eq!(spans.len(), 67);
    let dir = TempDir::new("otlp-grpc");
    let sink = OtlpSink::start(SinkProtocol::Grpc, &dir.0);
    let cfg = config(
        format!("http://127.0.0.1:{}", sink.port),
        OtlpProtocol::Grpc,
    );
    export_all(cfg, &spans).await;
    let reqs = sink.wait_for_spans(spans.len(), Duration::from_secs(10));
    assert_received_equal(&spans, &reqs);
    // The capture has several instances: requests were split per resource.
    let instances: std::collections::BTreeSet<&str> =
        spans.iter().map(|s| s.instance_id.as_str()).collect();
    assert!(instances.len() > 1, "{instances:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sink_receives_every_span_exactly() {
    let spans = cutover_spans();
    let dir = TempDir::new("otlp-http");
    let sink = OtlpSink::start(SinkProtocol::Http, &dir.0);
    // Resolved the way an operator configures it: base URL from the environment form.
    let cfg = OtlpConfig::from_lookup(&OtlpFlags::default(), resource(), |k| match k {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(format!("http://127.0.0.1:{}", sink.port)),
        "OTEL_EXPORTER_OTLP_HEADERS" => Some("Authorization=Bearer%20test-token".into()),
        _ => None,
    })
    .expect("config")
    .expect("enabled");
    assert_eq!(
        cfg.endpoint,
        format!("http://127.0.0.1:{}/v1/traces", sink.port)
    );
    assert_eq!(cfg.protocol, OtlpProtocol::HttpProtobuf);
    export_all(cfg, &spans).await;
    let reqs = sink.wait_for_spans(spans.len(), Duration::from_secs(10));
    assert_received_equal(&spans, &reqs);
}

/// rotel, a real OpenTelemetry collector, accepts our spans over gRPC and HTTP
/// and logs their ids (debug exporter), with exact start/end ns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotel_collector_accepts_spans() {
    let spans = cutover_spans();
    let py = support::venv_python();
    let rotel = py
        .parent()
        .and_then(Path::parent)
        .map(|v| v.join("lib/python3.11/site-packages/rotel/rotel-agent"))
        .filter(|p| p.exists())
        .or_else(|| {
            // Another Python minor version: ask the interpreter.
            let out = std::process::Command::new(&py)
                .args(["-c", "import rotel,os;print(os.path.join(os.path.dirname(rotel.__file__),'rotel-agent'))"])
                .output()
                .ok()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().into())
        })
        .expect("rotel-agent in .venv");
    let dir = TempDir::new("otlp-rotel");
    let (gp, hp) = (free_port(), free_port());
    let log = dir.0.join("rotel.out");
    let out = std::fs::File::create(&log).expect("log file");
    let child = std::process::Command::new(&rotel)
        .args(["start", "--exporter", "blackhole"])
        .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{gp}")])
        .args(["--otlp-http-endpoint", &format!("127.0.0.1:{hp}")])
        .args(["--debug-log", "traces", "--debug-log-verbosity", "detailed"])
        .arg("--pid-file")
        .arg(dir.0.join("rotel.pid"))
        .arg("--log-file")
        .arg(dir.0.join("rotel.log"))
        .env("NO_COLOR", "1")
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .spawn()
        .expect("starting rotel-agent");
    let _guard = ChildGuard(child);
    for port in [gp, hp] {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "rotel did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let (first, second) = spans.split_at(spans.len() / 2);
    export_all(
        config(format!("http://127.0.0.1:{gp}"), OtlpProtocol::Grpc),
        first,
    )
    .await;
    export_all(
        config(
            format!("http://127.0.0.1:{hp}/v1/traces"),
            OtlpProtocol::HttpProtobuf,
        ),
        second,
    )
    .await;
    // rotel's debug log prints every span's id and its start/end in ns.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let missing: Vec<&Span> = spans
            .iter()
            .filter(|s| !text.contains(&hex(&s.span_id)))
            .collect();
        if missing.is_empty() {
            for s in &spans {
                assert!(
                    text.contains(&hex(&s.trace_id)),
                    "trace id of {}",
                    hex(&s.span_id)
                );
                assert!(
                    text.contains(&s.start_ns.to_string()),
                    "start ns of {}",
                    hex(&s.span_id)
                );
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rotel did not log {} of {} spans, e.g. {}; log:\n{}",
            missing.len(),
            spans.len(),
            hex(&missing[0].span_id),
            text.chars().take(3000).collect::<String>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn one_batch() -> Batch {
    Batch::new(cutover_spans().into_iter().take(3).collect())
}

#[tokio::test]
async fn refused_connection_is_retryable_with_a_clear_message() {
    let port = free_port(); // nothing listens there
    for (protocol, endpoint) in [
        (
            OtlpProtocol::HttpProtobuf,
            format!("http://127.0.0.1:{port}/v1/traces"),
        ),
        (OtlpProtocol::Grpc, format!("http://127.0.0.1:{port}")),
    ] {
        let mut cfg = config(endpoint.clone(), protocol);
        cfg.timeout = Duration::from_secs(3);
        let mut exp = OtlpExporter::new(cfg).await.expect("exporter");
        match exp.export(&one_batch()).await {
            Err(ExportError::Retryable(m)) => {
                assert!(m.contains(&endpoint), "{m}");
                assert!(m.to_lowercase().contains("refused"), "{protocol:?}: {m}");
            }
            other => panic!("{protocol:?}: expected retryable, got {other:?}"),
        }
    }
}

/// A tiny HTTP receiver that answers every request with `status` (and counts them).
fn answering_server(status: &'static str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    scripted_server(vec![status])
}

/// A tiny HTTP receiver answering the n-th request with `statuses[n]` (the last
/// one repeated), counting requests.
fn scripted_server(
    statuses: Vec<&'static str>,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { break };
            let n = h.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as usize;
            let status = statuses[n.min(statuses.len() - 1)];
            let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = vec![0u8; 1 << 16];
            let mut got = Vec::new();
            // Read the head and (Content-Length) body, then answer.
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let body = "answer";
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, hits)
}

#[tokio::test]
async fn wrong_credentials_are_fatal_with_a_hint() {
    let (port, hits) = answering_server("401 Unauthorized");
    let cfg = config(
        format!("http://127.0.0.1:{port}/v1/traces"),
        OtlpProtocol::HttpProtobuf,
    );
    let mut exp = OtlpExporter::new(cfg).await.expect("exporter");
    match exp.export(&one_batch()).await {
        Err(ExportError::Fatal(m)) => {
            assert!(m.contains("401"), "{m}");
            assert!(m.contains("credentials"), "{m}");
            assert!(
                m.contains(&format!("http://127.0.0.1:{port}/v1/traces")),
                "{m}"
            );
        }
        other => panic!("expected fatal, got {other:?}"),
    }
    // The exporter's own retries are off: the queue decides.
    assert_eq!(hits.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[tokio::test]
async fn overload_is_retryable() {
    let (port, _) = answering_server("503 Service Unavailable");
    let cfg = config(
        format!("http://127.0.0.1:{port}/v1/traces"),
        OtlpProtocol::HttpProtobuf,
    );
    let mut exp = OtlpExporter::new(cfg).await.expect("exporter");
    assert!(
        matches!(exp.export(&one_batch()).await, Err(ExportError::Retryable(m)) if m.contains("503"))
    );
}

#[test]
fn malformed_configuration_is_rejected_clearly() {
    let cases: [(OtlpFlags<'static>, &str); 5] = [
        (
            OtlpFlags {
                endpoint: Some("http://bad host:4318"),
                ..Default::default()
            },
            "is not a valid URL",
        ),
        (
            OtlpFlags {
                endpoint: Some("https://collector:4318"),
                ..Default::default()
            },
            "TLS not supported in this build",
        ),
        (
            OtlpFlags {
                endpoint: Some("http://c:4318"),
                protocol: Some("udp"),
                ..Default::default()
            },
            "unknown OTLP protocol",
        ),
        (
            OtlpFlags {
                endpoint: Some("http://c:4318"),
                protocol: Some("http/json"),
                ..Default::default()
            },
            "http/json is not supported",
        ),
        (
            OtlpFlags {
                endpoint: Some("collector:4317"),
                protocol: Some("grpc"),
                ..Default::default()
            },
            "has no scheme",
        ),
    ];
    for (flags, want) in cases {
        let e = OtlpConfig::from_lookup(&flags, ResourceInfo::default(), |_| None)
            .expect_err("must be rejected")
            .to_string();
        assert!(e.contains(want), "{flags:?}: {e}");
    }
}

/// A batch spanning two instances is two requests; when the second fails, the
/// retry of the same batch sends only the second (no duplicates downstream).
#[tokio::test]
async fn retry_resumes_after_the_delivered_resource_groups() {
    let spans = cutover_spans();
    let mut by_instance: BTreeMap<String, Vec<Span>> = BTreeMap::new();
    for s in spans {
        by_instance
            .entry(s.instance_id.to_string())
            .or_default()
            .push(s);
    }
    assert!(by_instance.len() >= 2);
    let two: Vec<Span> = by_instance
        .values()
        .take(2)
        .flat_map(|v| v[..2].to_vec())
        .collect();
    let batch = Batch::new(two);
    let (port, hits) = scripted_server(vec!["200 OK", "503 Service Unavailable", "200 OK"]);
    let cfg = config(
        format!("http://127.0.0.1:{port}/v1/traces"),
        OtlpProtocol::HttpProtobuf,
    );
    let mut exp = OtlpExporter::new(cfg).await.expect("exporter");
    assert!(matches!(
        exp.export(&batch).await,
        Err(ExportError::Retryable(_))
    ));
    assert_eq!(hits.load(std::sync::atomic::Ordering::Relaxed), 2);
    exp.export(&batch).await.expect("retry");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::Relaxed),
        3,
        "only the failed group again"
    );
    // A different batch starts from its first group.
    let other = Batch::new(by_instance.values().next().expect("one")[2..4].to_vec());
    exp.export(&other).await.expect("other batch");
    assert_eq!(hits.load(std::sync::atomic::Ordering::Relaxed), 4);
}

/// The collector binary replays the capture and exports every span to a real
/// receiver, configured by flags (gRPC) and by the standard environment (HTTP).
#[test]
fn collector_binary_exports_the_capture() {
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/cutover.pcap");
    let spans = cutover_spans();
    for protocol in [SinkProtocol::Grpc, SinkProtocol::Http] {
        let dir = TempDir::new("otlp-bin");
        let sink = OtlpSink::start(protocol, &dir.0);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mcptap-collector"));
        cmd.arg("--pcap")
            .arg(&pcap)
            .args(["--service-name", "mcp-test", "--no-summary"])
            .env_remove("POD_NAME")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=e2e")
            .env("MCPTAP_SPOOL_DIR", dir.0.join("spool"))
            .current_dir(&dir.0);
        match protocol {
            SinkProtocol::Grpc => {
                cmd.args([
                    "--otlp-endpoint",
                    &format!("http://127.0.0.1:{}", sink.port),
                ])
                .args(["--otlp-protocol", "grpc"]);
            }
            SinkProtocol::Http => {
                cmd.env(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    format!("http://127.0.0.1:{}", sink.port),
                )
                .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
            }
        }
        let out = cmd.output().expect("running mcptap-collector");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{protocol:?}: {stderr}");
        let reqs = sink.wait_for_spans(spans.len(), Duration::from_secs(10));
        let got = received_by_span_id(&reqs);
        assert_eq!(got.len(), spans.len(), "{protocol:?}: {stderr}");
        for s in &spans {
            let (r, res, _) = &got[&hex(&s.span_id)];
            assert_eq!(r["traceId"], hex(&s.trace_id));
            assert_eq!(r["startTimeUnixNano"].as_u64(), Some(s.start_ns));
            assert_eq!(r["endTimeUnixNano"].as_u64(), Some(s.end_ns));
            assert_eq!(
                res["service.instance.id"],
                json!({ "string": s.instance_id })
            );
            assert_eq!(res["service.name"], json!({ "string": "mcp-test" }));
        }
        for r in &reqs {
            assert_eq!(r["headers"]["x-tenant"], "e2e");
        }
    }
}
