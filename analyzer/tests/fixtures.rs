//! The rules on the real SDK capture `tests/fixtures/cutover.pcap` in other table layouts and
//! deployments (the exporter's table without mcptap's columns, the collector's own writer, one
//! sidecar per pod), each checked against the ground truth (`common::ground_truth`); the clean
//! modern client alone must give zero findings. One test per rule on the plain layout:
//! `tests/rules.rs`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ground_truth::{by_rule, s};
use mcptap_analyzer::clickhouse::Cols;
use mcptap_analyzer::config::{Config, Range};
use mcptap_analyzer::engine::{Analysis, analyze};
use mcptap_analyzer::finding::RuleId;
use mcptap_analyzer::readiness::Verdict;
use serde_json::Value;
use std::collections::BTreeMap;

/// Range covering the capture (2026-11-21 05:50 .. 05:55 UTC).
fn fixture_range() -> Range {
    let since = mcptap_analyzer::timeutil::parse_rfc3339_ns("2026-11-21T05:50:00Z").unwrap();
    let until = mcptap_analyzer::timeutil::parse_rfc3339_ns("2026-11-21T06:00:00Z").unwrap();
    Range::new(since, until).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_table_without_mcptap_columns() {
    let url = common::clickhouse_url();
    let database = common::fresh_database("bare");
    common::create_schema(&url, &database, "spans", false).await;
    let rows = common::otlp_to_rows(&common::fixture_otlp("cutover.pcap"), &|_| true);
    common::insert_rows(&url, &database, "spans", &rows).await;
    let db = common::analyzer_db(&url, &database, "spans").await;
    assert!(!db.cols().uses_materialized());
    let a = analyze(&db, fixture_range(), &Config::default(), &RuleId::ALL).await;
    common::ground_truth::check_all(&a, &common::truth("cutover.truth.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_modern_client_gives_zero_findings() {
    let url = common::clickhouse_url();
    let database = common::fresh_database("clean");
    common::create_schema(&url, &database, "otel_traces", true).await;
    // direct-modern-py: stateless requests on one instance, including a tool error on the
    // instance that minted the handle (a used-up basket), which is no cross-instance failure.
    let rows = common::otlp_to_rows(&common::fixture_otlp("cutover.pcap"), &|a| {
        a.get("mcptap.client.name").and_then(Value::as_str) == Some("direct-modern-py")
    });
    assert_eq!(rows.len(), 7);
    common::insert_rows(&url, &database, "otel_traces", &rows).await;
    let db = common::analyzer_db(&url, &database, "otel_traces").await;
    let a = analyze(&db, fixture_range(), &Config::default(), &RuleId::ALL).await;
    assert!(!a.has_errors(), "{:?}", a.rules);
    assert!(a.findings.is_empty(), "{:#?}", a.findings);
    let r = a.readiness.unwrap();
    assert_eq!(r.verdict, Verdict::Ready);
    assert!(r.sticky_sessions_removable);
    assert_eq!(r.requests, 7);
    assert_eq!(r.session_dependent_requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_range_is_no_data() {
    let url = common::clickhouse_url();
    let database = common::fresh_database("empty");
    common::create_schema(&url, &database, "otel_traces", true).await;
    let db = common::analyzer_db(&url, &database, "otel_traces").await;
    let a = analyze(&db, fixture_range(), &Config::default(), &RuleId::ALL).await;
    assert!(!a.has_errors(), "{:?}", a.rules);
    assert!(a.findings.is_empty());
    assert_eq!(a.readiness.unwrap().verdict, Verdict::NoData);
}

/// The whole path as deployed: `mcptap-collector schema` creates the tables, the collector
/// replays the capture straight into ClickHouse with its own writer, the analyzer reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_writer_end_to_end() {
    let url = common::clickhouse_url();
    let database = common::fresh_database("e2e");
    let bin = common::collector_bin();
    let out = std::process::Command::new(&bin)
        .args(["schema", "--clickhouse-url", &url, "--database", &database])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "schema: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(&bin)
        .arg("--pcap")
        .arg(common::repo_root().join("tests/fixtures/cutover.pcap"))
        .args([
            "--clickhouse-url",
            &url,
            "--clickhouse-database",
            &database,
            "--no-summary",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "collector: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = common::analyzer_db(&url, &database, "otel_traces").await;
    assert!(db.cols().uses_materialized());
    let a = analyze(&db, fixture_range(), &Config::default(), &RuleId::ALL).await;
    common::ground_truth::check_all(&a, &common::truth("cutover.truth.json"));
}

/// The cutover capture as one sidecar per pod would export it: a pod's collector only knows
/// the sessions minted by `initialize` on its own pod, so a span carrying a session minted on
/// another instance has no clientInfo (the single-capture collector filled it from its legacy
/// session map, `mcptap.client.info_source = session`; those attributes are removed here).
/// `shift_mints_ns` moves the minting spans back in time (a session minted long ago).
fn per_pod_rows(shift_mints_ns: i64) -> (Vec<Value>, usize) {
    let rows = common::otlp_to_rows(&common::fixture_otlp("cutover.pcap"), &|_| true);
    let inst = |r: &Value| s(&r["ResourceAttributes"]["service.instance.id"]);
    let minted_on: BTreeMap<String, String> = rows
        .iter()
        .filter_map(|r| {
            let sid = s(&r["SpanAttributes"]["mcptap.session.minted"]);
            (!sid.is_empty()).then(|| (sid, inst(r)))
        })
        .collect();
    let mut stripped = 0;
    let rows = rows
        .into_iter()
        .map(|mut r| {
            let sid = s(&r["SpanAttributes"]["mcp.session.id"]);
            if minted_on.get(&sid).is_some_and(|m| *m != inst(&r)) {
                let sa = r["SpanAttributes"].as_object_mut().unwrap();
                assert_eq!(
                    sa.get("mcptap.client.info_source").and_then(Value::as_str),
                    Some("session"),
                    "a cross-instance session span knew its client only from the session map"
                );
                for k in [
                    "mcptap.client.name",
                    "mcptap.client.version",
                    "mcptap.client.info_source",
                ] {
                    sa.remove(k);
                }
                stripped += 1;
            }
            if shift_mints_ns != 0 && !s(&r["SpanAttributes"]["mcptap.session.minted"]).is_empty() {
                let ts = mcptap_analyzer::timeutil::parse_rfc3339_ns(&s(&r["Timestamp"])).unwrap();
                r["Timestamp"] = Value::String(mcptap_analyzer::timeutil::format_rfc3339_ns(
                    ts - shift_mints_ns,
                ));
            }
            r
        })
        .collect();
    (rows, stripped)
}

/// Per-pod sidecars: the 404s answered by pods that never saw the session's `initialize`
/// carry no clientInfo; the analyzer resolves their client through the span that minted the
/// session on another instance, so every rule gives exactly the findings of the
/// single-capture data (and the truth), with the materialized columns and the maps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_resolved_through_session_minted_on_another_instance() {
    let url = common::clickhouse_url();
    let truth = common::truth("cutover.truth.json");
    let whole = common::fresh_database("whole");
    common::create_schema(&url, &whole, "otel_traces", true).await;
    let rows = common::otlp_to_rows(&common::fixture_otlp("cutover.pcap"), &|_| true);
    common::insert_rows(&url, &whole, "otel_traces", &rows).await;
    let db = common::analyzer_db(&url, &whole, "otel_traces").await;
    let reference = analyze(&db, fixture_range(), &Config::default(), &RuleId::ALL).await;

    let database = common::fresh_database("perpod");
    common::create_schema(&url, &database, "otel_traces", true).await;
    let (rows, stripped) = per_pod_rows(0);
    // legacy-py's 15 and legacy-ts's 2 session 404s on other pods.
    assert_eq!(stripped, 17);
    common::insert_rows(&url, &database, "otel_traces", &rows).await;
    let mut db = common::analyzer_db(&url, &database, "otel_traces").await;
    assert!(db.cols().uses_materialized());
    let a = analyze(&db, fixture_range(), &Config::default(), &RuleId::ALL).await;
    common::ground_truth::check_all(&a, &truth);
    assert_eq!(a.findings, reference.findings);
    assert_eq!(a.readiness, reference.readiness);
    db.set_cols(Cols::map_only());
    let b = analyze(&db, fixture_range(), &Config::default(), &RuleId::ALL).await;
    common::ground_truth::check_all(&b, &truth);
    assert_eq!(b.findings, reference.findings);

    // The by-client spike split uses the resolved identity too.
    let mut cfg = Config::default();
    cfg.spike.by_client = true;
    cfg.spike.min_count = 1;
    let spike = [RuleId::Status4xxSpike];
    let want = analyze(
        &common::analyzer_db(&url, &whole, "otel_traces").await,
        fixture_range(),
        &cfg,
        &spike,
    )
    .await;
    assert!(!want.findings.is_empty());
    for cols in [None, Some(Cols::map_only())] {
        let mut db = common::analyzer_db(&url, &database, "otel_traces").await;
        if let Some(c) = cols {
            db.set_cols(c);
        }
        let got = analyze(&db, fixture_range(), &cfg, &spike).await;
        assert!(!got.has_errors(), "{:?}", got.rules);
        assert_eq!(got.findings, want.findings);
    }
}

/// The mint may lie before `--since`: it is searched `--session-lookback` back (default
/// 24 h); with a shorter lookback the client is unknown and the user agent is shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_lookback_bounds_the_mint_search() {
    let url = common::clickhouse_url();
    let database = common::fresh_database("lookback");
    common::create_schema(&url, &database, "otel_traces", true).await;
    let hour = 3600 * mcptap_analyzer::timeutil::NS_PER_SEC;
    let (rows, stripped) = per_pod_rows(2 * hour);
    assert_eq!(stripped, 17);
    common::insert_rows(&url, &database, "otel_traces", &rows).await;
    let names = |a: &Analysis| -> BTreeMap<String, u64> {
        assert!(!a.has_errors(), "{:?}", a.rules);
        by_rule(a, RuleId::SessionIdStillSent)
            .iter()
            .map(|f| {
                let c = f.subject.client.as_ref().unwrap();
                let who = if c.name.is_empty() {
                    format!("ua:{}", c.user_agent)
                } else {
                    c.name.clone()
                };
                (who, f.counts.get("status_404").copied().unwrap_or(0))
            })
            .collect()
    };
    for map_only in [false, true] {
        let mut db = common::analyzer_db(&url, &database, "otel_traces").await;
        if map_only {
            db.set_cols(Cols::map_only());
        }
        let a = analyze(&db, fixture_range(), &Config::default(), &RuleId::ALL).await;
        let got = names(&a);
        assert_eq!(got.get("legacy-py"), Some(&15), "{got:?}");
        assert_eq!(got.get("legacy-ts"), Some(&2), "{got:?}");
        assert!(got.keys().all(|k| !k.starts_with("ua:")), "{got:?}");

        let cfg = Config {
            session_lookback_ns: hour,
            ..Config::default()
        };
        let a = analyze(&db, fixture_range(), &cfg, &RuleId::ALL).await;
        let got = names(&a);
        assert_eq!(got.get("ua:python-httpx2/2.16.2"), Some(&15), "{got:?}");
        assert_eq!(got.get("ua:node"), Some(&2), "{got:?}");
    }
}
