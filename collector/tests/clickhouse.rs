//! Integration: the real fixture replayed into a real ClickHouse engine (the
//! chDB front of tools/chfront, or `CLICKHOUSE_URL`), read back with SQL,
//! including the queries Grafana's trace view runs.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use support::*;

fn rows(tsv: &str) -> Vec<Vec<String>> {
    tsv.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(unescape).collect())
        .collect()
}

/// Undoes TabSeparated escaping (`\'`, `\\`, `\t`, `\n`).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

/// Spans of an OTLP/JSON lines file, by span id.
fn otlp_spans(path: &std::path::Path) -> BTreeMap<String, Value> {
    spans(&std::fs::read_to_string(path).unwrap())
        .into_iter()
        .map(|s| (s["spanId"].as_str().unwrap().to_owned(), s))
        .collect()
}

#[test]
fn cutover_into_clickhouse_read_back_grafana_and_dedup() {
    let front = Front::start();
    let db = unique_db("it");
    let q = |sql: &str| front.q(&sql.replace("DB", &db));

    // Schema: applied, then idempotent.
    let first = apply_schema(&front, &db);
    assert!(
        first.contains("0001_otel_traces") && first.contains("applied"),
        "{first}"
    );
    assert!(first.contains("skipped (cluster only)"), "{first}");
    let second = apply_schema(&front, &db);
    assert!(
        second.contains(" 0 applied") && second.contains("already applied"),
        "{second}"
    );
    assert!(!second.contains("  applied\n"), "{second}");

    // Replay beside --output otlp-json, with a namespace from the downward API.
    let tmp = TempDir::new("it");
    let json = tmp.path().join("spans.jsonl");
    let replay = || {
        replay_into(
            &front.url,
            &db,
            &fixture("cutover.pcap"),
            &tmp.path().join("spool"),
        )
    };
    let (code, _out, err) = run(replay()
        .arg("--output")
        .arg(format!("otlp-json={}", json.display()))
        .arg("--no-summary")
        .env("POD_NAMESPACE", "shop"));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("67 spans queued, 67 sent") && err.contains("0 dropped"),
        "{err}"
    );

    let json_spans = otlp_spans(&json);
    assert_eq!(json_spans.len(), 67);
    assert_eq!(
        q("SELECT count(), uniq(SpanId) FROM DB.otel_traces"),
        "67\t67\n"
    );

    // Per-instance, per-method counts equal the fixture truth.
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("cutover.truth.json")).unwrap())
            .unwrap();
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (inst, methods) in truth["expected"]["per_instance_mcp_method"]
        .as_object()
        .unwrap()
    {
        for (m, n) in methods.as_object().unwrap() {
            want.insert((inst.clone(), m.clone()), n.as_u64().unwrap());
        }
    }
    let mut got: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in rows(&q(
        "SELECT InstanceId, if(McpMethod = '', concat('null (', SpanAttributes['http.request.method'], ')'), McpMethod), count() \
         FROM DB.otel_traces GROUP BY 1, 2 ORDER BY 1, 2",
    )) {
        got.insert((r[0].clone(), r[1].clone()), r[2].parse().unwrap());
    }
    assert_eq!(got, want);

    // HTTP status per the truth (materialized HttpStatus).
    let mut want_status: BTreeMap<String, u64> = BTreeMap::new();
    for (s, n) in truth["expected"]["per_status"].as_object().unwrap() {
        want_status.insert(s.clone(), n.as_u64().unwrap());
    }
    let got_status: BTreeMap<String, u64> = rows(&q(
        "SELECT toString(HttpStatus), count() FROM DB.otel_traces GROUP BY 1",
    ))
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .collect();
    assert_eq!(got_status, want_status);

    // Every row equals its OTLP/JSON twin: ids in hex, ns timestamps, duration, status.
    let table = rows(&q(
        "SELECT SpanId, TraceId, ParentSpanId, SpanName, toUnixTimestamp64Nano(Timestamp), Duration, \
                StatusCode, StatusMessage, SpanKind, ServiceName, ScopeName, \
                ResourceAttributes['service.instance.id'], ResourceAttributes['k8s.namespace.name'], \
                McpMethod = SpanAttributes['mcp.method.name'], McpEra = SpanAttributes['mcptap.era'], \
                length(SpanAttributes), length(Events.Name) \
         FROM DB.otel_traces",
    ));
    assert_eq!(table.len(), 67);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    for r in &table {
        let j = &json_spans[&r[0]];
        assert!(hex(&r[0], 16) && hex(&r[1], 32), "{r:?}");
        assert_eq!(r[1], j["traceId"].as_str().unwrap());
        assert_eq!(r[2], j["parentSpanId"].as_str().unwrap_or(""));
        assert!(r[2].is_empty() || hex(&r[2], 16));
        assert_eq!(r[3], j["name"].as_str().unwrap());
        let start: u64 = j["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        let end: u64 = j["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert_eq!(r[4].parse::<u64>().unwrap(), start, "ns start of {}", r[0]);
        assert_eq!(
            r[5].parse::<u64>().unwrap(),
            end - start,
            "duration of {}",
            r[0]
        );
        let err = j["status"]["code"].as_i64() == Some(2);
        assert_eq!(r[6], if err { "Error" } else { "Unset" });
        assert_eq!(r[7], j["status"]["message"].as_str().unwrap_or(""));
        assert_eq!(
            (r[8].as_str(), r[9].as_str(), r[10].as_str()),
            ("Server", "mcp-server", "mcptap-collector")
        );
        assert!(r[11].ends_with(":8000"), "{r:?}");
        assert_eq!(r[12], "shop");
        assert_eq!((r[13].as_str(), r[14].as_str()), ("1", "1"));
        assert_eq!(
            r[15].parse::<usize>().unwrap(),
            j["attributes"].as_array().unwrap().len()
        );
        assert_eq!(
            r[16].parse::<usize>().unwrap(),
            j["events"].as_array().map_or(0, Vec::len)
        );
    }
    // Both status values occur in this capture.
    assert_eq!(
        q(
            "SELECT groupUniqArray(StatusCode) FROM (SELECT StatusCode FROM DB.otel_traces ORDER BY StatusCode)"
        ),
        "['Error','Unset']\n"
    );
    // Materialized columns are populated where the attribute exists.
    let m = rows(&q(
        "SELECT countIf(McpMethod != ''), countIf(mapContains(SpanAttributes, 'mcp.method.name')), \
                countIf(McpClientName != ''), countIf(mapContains(SpanAttributes, 'mcptap.client.name')), \
                countIf(length(HandlesUsed) > 0), countIf(mapContains(SpanAttributes, 'mcptap.handles.used')), \
                countIf(InstanceId != '') \
         FROM DB.otel_traces",
    ));
    let m: Vec<u64> = m[0].iter().map(|x| x.parse().unwrap()).collect();
    assert!(m[0] > 0 && m[0] == m[1], "{m:?}");
    assert!(m[2] > 0 && m[2] == m[3], "{m:?}");
    assert!(m[4] > 0 && m[4] == m[5], "{m:?}");
    assert_eq!(m[6], 67);
    // The handle that crossed pods can be found through the materialized array.
    let basket = "bsk-pod-a-001-05bc46f1";
    let used_on = q(&format!(
        "SELECT groupUniqArray(InstanceId) FROM DB.otel_traces WHERE arrayExists(h -> h LIKE '%{basket}', HandlesUsed)"
    ));
    assert!(used_on.contains("10.77.0.12:8000"), "{used_on}");

    // Grafana: trace by id, with the trace_id_ts lookup (the plugin's optimised form).
    let (trace, n) = {
        let r = rows(&q(
            "SELECT TraceId, count() c FROM DB.otel_traces GROUP BY TraceId ORDER BY c DESC, TraceId LIMIT 1",
        ));
        (r[0][0].clone(), r[0][1].parse::<usize>().unwrap())
    };
    let grafana = format!(
        "WITH '{trace}' as __gf_trace_id, \
         (SELECT min(Start) FROM \"DB\".\"otel_traces_trace_id_ts\" WHERE TraceId = __gf_trace_id) as __gf_trace_start, \
         (SELECT max(End) + 1 FROM \"DB\".\"otel_traces_trace_id_ts\" WHERE TraceId = __gf_trace_id) as __gf_trace_end \
         SELECT \"TraceId\" as traceID, \"SpanId\" as spanID, \"ParentSpanId\" as parentSpanID, \
           \"ServiceName\" as serviceName, \"SpanName\" as operationName, \
           multiply(toUnixTimestamp64Nano(\"Timestamp\"), 0.000001) as startTime, \
           multiply(\"Duration\", 0.000001) as duration, \
           arrayMap(key -> map('key', key, 'value', \"SpanAttributes\"[key]), mapKeys(\"SpanAttributes\")) as tags, \
           arrayMap(key -> map('key', key, 'value', \"ResourceAttributes\"[key]), mapKeys(\"ResourceAttributes\")) as serviceTags, \
           if(\"StatusCode\" IN ('Error', 'STATUS_CODE_ERROR'), 2, 0) as statusCode, \
           arrayMap((name, timestamp, attributes) -> tuple(name, toString(toUnixTimestamp64Milli(timestamp)), \
             arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes)))::Tuple(name String, timestamp String, fields Array(Map(String, String))), \
             \"Events.Name\", \"Events.Timestamp\", \"Events.Attributes\") AS logs, \
           arrayMap((traceID, spanID, attributes) -> tuple(traceID, spanID, \
             arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes)))::Tuple(traceID String, spanID String, tags Array(Map(String, String))), \
             \"Links.TraceId\", \"Links.SpanId\", \"Links.Attributes\") AS references, \
           \"SpanKind\" as kind, \"StatusMessage\" as statusMessage, \"TraceState\" as traceState \
         FROM \"DB\".\"otel_traces\" \
         WHERE traceID = __gf_trace_id AND \"Timestamp\" >= __gf_trace_start AND \"Timestamp\" <= __gf_trace_end \
         ORDER BY startTime ASC"
    );
    let spans = rows(&q(&grafana));
    assert_eq!(spans.len(), n, "trace {trace}: {spans:?}");
    assert!(spans.iter().all(|r| r[0] == trace && r[12] == "Server"));
    // Spans by service and time range (the trace search / table panel).
    let (lo, hi) = {
        let r = rows(&q(
            "SELECT toUnixTimestamp64Nano(min(Timestamp)), toUnixTimestamp64Nano(max(Timestamp)) FROM DB.otel_traces",
        ));
        (r[0][0].clone(), r[0][1].clone())
    };
    let by_service = q(&format!(
        "SELECT count() FROM (SELECT \"Timestamp\" as timestamp, \"TraceId\" as traceID, \"ServiceName\" as serviceName, \
           \"SpanName\" as operationName, \"Duration\" / 1000000 as duration_ms \
         FROM \"DB\".\"otel_traces\" \
         WHERE serviceName = 'mcp-server' AND \"Timestamp\" >= fromUnixTimestamp64Nano({lo}) \
           AND \"Timestamp\" <= fromUnixTimestamp64Nano({hi}) AND \"ParentSpanId\" = '' \
         ORDER BY timestamp DESC LIMIT 1000)"
    ));
    let roots = q("SELECT count() FROM DB.otel_traces WHERE ParentSpanId = ''");
    assert_eq!(by_service, roots);

    // Replaying the same capture again inserts nothing new (deduplication token).
    let (code, _, err) = run(replay().arg("--no-summary").env("POD_NAMESPACE", "shop"));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("67 sent"), "{err}");
    assert_eq!(
        q("SELECT count(), uniq(SpanId) FROM DB.otel_traces"),
        "67\t67\n"
    );

    if front.external {
        q("DROP DATABASE IF EXISTS DB");
    }
}
