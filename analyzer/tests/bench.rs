//! Analyzer timings on millions of synthetic spans, generated inside ClickHouse with
//! `INSERT ... SELECT FROM numbers(N)` (nothing committed). Ignored by default; run with
//!
//! ```sh
//! MCPTAP_BENCH_SPANS=2000000 cargo test --release -p mcptap-analyzer --test bench -- --ignored --nocapture
//! ```
//!
//! Prints one Markdown table row per rule (materialized columns and maps only), the numbers
//! recorded in BENCHMARKS.md ("Analyzer").
//!
//! The data: 24 h, 10 instances, 500 clients (50 legacy: initialize + session ids, some
//! session 404s, a few `tasks/list`), tools/list with `ttlMs` 60000 refetched by some
//! clients, create_basket/add_item pairs with 5% of the uses on another instance (failing
//! with a tool error), rare routing header misses, `roots` declared by some modern
//! clients, and a 5-minute burst of 404 `-32601` on one instance.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use mcptap_analyzer::clickhouse::Cols;
use mcptap_analyzer::config::{Config, Range};
use mcptap_analyzer::engine::analyze;
use mcptap_analyzer::finding::RuleId;
use mcptap_analyzer::timeutil::{NS_PER_SEC, parse_rfc3339_ns};
use std::time::Instant;

const GEN: &str = "
INSERT INTO {db:Identifier}.otel_traces
  (Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
   ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage)
SELECT
  fromUnixTimestamp64Nano(ts) AS Timestamp,
  concat(lower(hex(cityHash64(number, 1))), lower(hex(cityHash64(number, 2)))) AS TraceId,
  lower(hex(cityHash64(number, 3))) AS SpanId, '', '',
  if(tool != '', concat(method, ' ', tool), method) AS SpanName, 'Server', 'mcp-server',
  map('service.name', 'mcp-server', 'service.instance.id', pod),
  'mcptap-collector', '0.1.0',
  mapFilter((k, v) -> v != '', map(
    'mcp.method.name', method,
    'http.request.method', 'POST',
    'http.response.status_code', toString(status),
    'mcptap.era', if(legacy, 'legacy', 'modern'),
    'mcptap.exchange.kind', 'request',
    'mcptap.client.name', concat('client-', toString(c)),
    'mcptap.client.version', '1.0.0',
    'user_agent.original', if(legacy, 'node', 'python-httpx2/2.16.2'),
    'client.address', concat('10.1.', toString(intDiv(c, 250)), '.', toString(c % 250)),
    'mcp.session.id', if(legacy AND method != 'initialize', concat('s-', toString(c), '-', toString(intDiv(number, 20000))), ''),
    'mcptap.session.minted', if(legacy AND method = 'initialize', concat('s-', toString(c), '-', toString(intDiv(number, 20000))), ''),
    'gen_ai.tool.name', tool,
    'rpc.response.status_code', rpc,
    'error.type', if(rpc != '', rpc, if(tool_error, 'tool_error', '')),
    'mcptap.handles.minted', if(tool = 'create_basket', concat('[\"basket_id=b-', toString(number), '\"]'), ''),
    'mcptap.handles.used', if(tool = 'add_item', concat('[\"basket_id=b-', toString(number - 1), '\"]'), ''),
    'mcptap.routing.method_status', if(legacy, 'not_required', if(cityHash64(number, 9) % 5000 = 0, 'missing', 'match')),
    'mcptap.routing.name_status', if(legacy OR tool = '', 'not_required', 'match'),
    'mcptap.ttl_ms', if(method = 'tools/list' AND NOT legacy, '60000', ''),
    'mcptap.client.capabilities', if(NOT legacy AND c % 100 = 7, '[\"roots\"]', '[]'),
    'mcptap.task.legacy_requested', ''
  )) AS SpanAttributes,
  toUInt64(1000000 + cityHash64(number, 4) % 50000000) AS Duration,
  if(rpc != '' AND rpc != '-32601' OR tool_error, 'Error', 'Unset'), if(tool_error, 'tool_error', '')
FROM (
  SELECT number,
    toInt64({t0:Int64} + intDiv(toInt64(number) * 86400000, {n:Int64}) * 1000000) AS ts,
    toUInt32(cityHash64(number, 5) % 500) AS c,
    c < 50 AS legacy,
    number % 20 AS slot,
    multiIf(slot = 0, if(legacy, 'initialize', 'server/discover'),
            slot <= 3, 'tools/list',
            slot <= 12, 'tools/call',
            slot = 13, 'resources/read',
            slot = 14, 'prompts/get',
            slot = 16 AND c < 5, 'tasks/list',
            'tools/call') AS method,
    multiIf(slot = 4, 'create_basket', slot = 5, 'add_item', method = 'tools/call', 'search', '') AS tool,
    concat('pod-', toString(if(slot = 5 AND cityHash64(number, 8) % 20 != 0,
                                cityHash64(number - 1, 7) % 10, cityHash64(number, 7) % 10))) AS pod,
    slot = 5 AND pod != concat('pod-', toString(cityHash64(number - 1, 7) % 10)) AS tool_error,
    (ts >= {burst_start:Int64} AND ts < {burst_end:Int64} AND pod = 'pod-3') AS burst,
    multiIf(burst, 404,
            legacy AND method != 'initialize' AND cityHash64(number, 6) % 7 = 0, 404,
            NOT legacy AND cityHash64(number, 9) % 5000 = 0, 400,
            200) AS status,
    multiIf(burst, '-32601', status = 404, '-32600', status = 400, '-32020', '') AS rpc
  FROM numbers({n:Int64})
)
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: generates millions of spans"]
async fn bench_rules_on_synthetic_spans() {
    let n: i64 = std::env::var("MCPTAP_BENCH_SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let url = common::clickhouse_url();
    let database = common::fresh_database("bench");
    common::create_schema(&url, &database, "otel_traces", true).await;
    let t0 = parse_rfc3339_ns("2026-01-01T00:00:00Z").unwrap();
    let burst = t0 + 10 * 3600 * NS_PER_SEC;
    let client = clickhouse::Client::default().with_url(&url);
    let t = Instant::now();
    client
        .query_raw(GEN)
        .param("db", &database)
        .param("t0", t0)
        .param("n", n)
        .param("burst_start", burst)
        .param("burst_end", burst + 300 * NS_PER_SEC)
        .execute()
        .await
        .unwrap();
    println!("generated {n} spans in {:.1} s", t.elapsed().as_secs_f64());
    let range = Range::new(t0, t0 + 86_400 * NS_PER_SEC).unwrap();
    let mut db = common::analyzer_db(&url, &database, "otel_traces").await;
    for (label, cols) in [
        ("materialized columns", None),
        ("attribute maps only", Some(Cols::map_only())),
    ] {
        if let Some(c) = cols {
            db.set_cols(c);
        }
        let t = Instant::now();
        let a = analyze(&db, range, &Config::default(), &RuleId::ALL).await;
        let total = t.elapsed().as_secs_f64();
        println!("\n{label}: {n} spans, whole report {total:.2} s");
        println!("| rule | time (ms) | findings |");
        println!("|---|---:|---:|");
        for r in &a.rules {
            assert!(r.error.is_none(), "{}: {:?}", r.rule, r.error);
            println!("| `{}` | {:.0} | {} |", r.rule, r.duration_ms, r.findings);
        }
        let spikes: Vec<_> = a
            .findings
            .iter()
            .filter(|f| f.rule == RuleId::Status4xxSpike)
            .collect();
        assert!(
            spikes
                .iter()
                .any(|f| f.subject.instance.as_deref() == Some("pod-3")
                    && f.counts.get("unknown_method").copied().unwrap_or(0) > 0),
            "the burst must be found"
        );
        assert!(
            a.findings
                .iter()
                .any(|f| f.rule == RuleId::CrossInstanceHandleFailure)
        );
        let r = a.readiness.as_ref().unwrap();
        println!(
            "readiness: {:?}, session-dependent {}/{}",
            r.verdict, r.session_dependent_requests, r.requests
        );
    }
}
