//! The rules on the real SDK capture `tests/fixtures/cutover.pcap`, decoded by the real
//! collector and stored in a real ClickHouse (chDB front) with the real migrations: each rule
//! must find exactly the ground-truth cases of `cutover.truth.json` and nothing else; the
//! clean modern client alone must give zero findings. Both with mcptap's MATERIALIZED columns
//! and with the attribute maps only.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use mcptap_analyzer::clickhouse::Cols;
use mcptap_analyzer::config::{Config, Range};
use mcptap_analyzer::engine::{Analysis, analyze};
use mcptap_analyzer::finding::{Finding, RuleId, Severity};
use mcptap_analyzer::readiness::Verdict;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Range covering the capture (2026-11-21 05:50 .. 05:55 UTC).
fn fixture_range() -> Range {
    let since = mcptap_analyzer::timeutil::parse_rfc3339_ns("2026-11-21T05:50:00Z").unwrap();
    let until = mcptap_analyzer::timeutil::parse_rfc3339_ns("2026-11-21T06:00:00Z").unwrap();
    Range::new(since, until).unwrap()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn by_rule(a: &Analysis, r: RuleId) -> Vec<&Finding> {
    a.findings.iter().filter(|f| f.rule == r).collect()
}

fn client_name(f: &Finding) -> String {
    f.subject
        .client
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_default()
}

/// Checks every rule against the truth.
fn check_against_truth(a: &Analysis, truth: &Value) {
    for r in &a.rules {
        assert!(r.error.is_none(), "rule {} failed: {:?}", r.rule, r.error);
    }
    assert!(a.readiness_error.is_none(), "{:?}", a.readiness_error);
    let ex: Vec<&Value> = truth["exchanges"].as_array().unwrap().iter().collect();

    // --- session_id_still_sent: per client, requests with a session id, 404s, instances.
    let mut want: BTreeMap<String, (u64, u64, BTreeSet<String>, bool)> = BTreeMap::new();
    for e in ex.iter().filter(|e| !e["session_id_sent"].is_null()) {
        let w = want.entry(s(&e["client_name"])).or_default();
        w.0 += 1;
        w.1 += u64::from(e["status"] == 404);
        w.2.insert(s(&e["instance"]));
        w.3 |= e["era"] == "legacy";
    }
    let got = by_rule(a, RuleId::SessionIdStillSent);
    assert_eq!(
        got.len(),
        want.len(),
        "session_id_still_sent: {:#?}",
        got.iter().map(|f| &f.summary).collect::<Vec<_>>()
    );
    for f in got {
        let w = want
            .get(&client_name(f))
            .unwrap_or_else(|| panic!("unexpected client {}", f.summary));
        assert_eq!(f.count, w.0, "{}", f.summary);
        assert_eq!(
            f.counts.get("status_404").copied().unwrap_or(0),
            w.1,
            "{}",
            f.summary
        );
        assert_eq!(
            f.subject.instances.iter().cloned().collect::<BTreeSet<_>>(),
            w.2,
            "{}",
            f.summary
        );
        let sev = if w.3 && w.1 > 0 {
            Severity::Critical
        } else if w.3 {
            Severity::Warning
        } else {
            Severity::Info
        };
        assert_eq!(f.severity, sev, "{}", f.summary);
        assert!(!f.sample_trace_ids.is_empty());
    }
    // The truth's legacy clients are exactly the non-info ones.
    let legacy: BTreeSet<String> = truth["expected"]["legacy_clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    let warned: BTreeSet<String> = by_rule(a, RuleId::SessionIdStillSent)
        .into_iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(client_name)
        .collect();
    assert_eq!(warned, legacy);
    // Session 404s: the truth's list, per client.
    let mut s404: BTreeMap<String, u64> = BTreeMap::new();
    for e in truth["expected"]["session_not_found_404"]
        .as_array()
        .unwrap()
    {
        *s404.entry(s(&e["client_name"])).or_default() += 1;
    }
    for (c, n) in &s404 {
        let f = by_rule(a, RuleId::SessionIdStillSent)
            .into_iter()
            .find(|f| &client_name(f) == c)
            .unwrap();
        assert_eq!(f.counts.get("status_404"), Some(n), "{c}");
    }

    // --- initialize_still_called.
    let mut want: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for e in ex.iter().filter(|e| e["mcp_method"] == "initialize") {
        let w = want.entry(s(&e["client_name"])).or_default();
        w.0 += 1;
        w.1 += u64::from(e["era"] == "legacy");
    }
    let got = by_rule(a, RuleId::InitializeStillCalled);
    assert_eq!(got.len(), want.len());
    for f in got {
        let w = want[&client_name(f)];
        assert_eq!(
            (
                f.count,
                f.counts.get("legacy_requests").copied().unwrap_or(0)
            ),
            w,
            "{}",
            f.summary
        );
    }

    // --- cross_instance_handle_failure: exactly the truth's list.
    let want: Vec<&Value> = truth["expected"]["cross_instance_handle_failures"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let got = by_rule(a, RuleId::CrossInstanceHandleFailure);
    assert_eq!(got.len(), want.len(), "{:#?}", got);
    for w in want {
        let f = got
            .iter()
            .find(|f| f.subject.tool.as_deref() == w["tool"].as_str())
            .unwrap_or_else(|| panic!("missing {w}"));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.count, 1);
        assert_eq!(client_name(f), s(&w["client_name"]));
        assert_eq!(f.subject.handle.as_deref(), w["handle"].as_str());
        assert_eq!(f.details["minted_on"], w["minted_on"]);
        assert_eq!(f.details["used_on"], w["used_on"]);
        let ex0 = &f.details["examples"][0];
        assert_eq!(
            s(&ex0["handle"]),
            format!("{}={}", s(&w["handle"]), s(&w["value"]))
        );
        assert_eq!(ex0["error_type"], "tool_error");
        assert_eq!(ex0["http_status"], w["status"]);
        assert_ne!(ex0["minted_trace_id"], ex0["used_trace_id"]);
        assert_eq!(f.sample_trace_ids.len(), 2);
        assert_eq!(f.counts.get("tool_errors"), Some(&1));
    }

    // --- status_4xx_spike: one incident per instance with 4xx (the capture fits in one
    // 1-minute window and has no baseline); causes exactly as the truth's answers.
    let mut want: BTreeMap<String, BTreeMap<&str, u64>> = BTreeMap::new();
    for e in &ex {
        let st = e["status"].as_u64().unwrap_or(0);
        let inst = s(&e["instance"]);
        let w = want.entry(inst).or_default();
        *w.entry("requests").or_default() += 1;
        if !(400..500).contains(&st) {
            continue;
        }
        *w.entry("status_4xx").or_default() += 1;
        let code = e["rpc_error_code"].as_i64();
        let cause = if st == 404 && !e["session_id_sent"].is_null() {
            "session_not_found"
        } else if st == 400 && code == Some(-32020) {
            "header_mismatch"
        } else if st == 404 && code == Some(-32601) {
            "unknown_method"
        } else {
            "other"
        };
        *w.entry(cause).or_default() += 1;
    }
    want.retain(|_, w| w.get("status_4xx").copied().unwrap_or(0) > 0);
    let got = by_rule(a, RuleId::Status4xxSpike);
    assert_eq!(
        got.len(),
        want.len(),
        "{:#?}",
        got.iter().map(|f| &f.summary).collect::<Vec<_>>()
    );
    for f in got {
        let w = &want[f.subject.instance.as_deref().unwrap()];
        let gotc: BTreeMap<&str, u64> = f.counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(&gotc, w, "{}", f.summary);
        assert!(f.details["attribution"].as_array().unwrap().len() >= 2);
    }

    // --- routing headers: from the truth's header and body values.
    let mut missing: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut mismatch: BTreeMap<(String, String), u64> = BTreeMap::new();
    for e in ex
        .iter()
        .filter(|e| e["era"] == "modern" && e["rpc_kind"] == "request" && e["batch"] == false)
    {
        let m = s(&e["mcp_method"]);
        let name_required = matches!(m.as_str(), "tools/call" | "prompts/get" | "resources/read");
        let key = (s(&e["client_name"]), m.clone());
        let mh = &e["mcp_method_header"];
        let nh = &e["mcp_name_header"];
        if mh.is_null() || (name_required && nh.is_null()) {
            *missing.entry(key.clone()).or_default() += 1;
        }
        if (!mh.is_null() && s(mh) != m) || (name_required && !nh.is_null() && nh != &e["name"]) {
            *mismatch.entry(key).or_default() += 1;
        }
    }
    for (rule, want) in [
        (RuleId::RoutingHeadersMissing, &missing),
        (RuleId::RoutingHeaderMismatch, &mismatch),
    ] {
        let got: BTreeMap<(String, String), u64> = by_rule(a, rule)
            .into_iter()
            .map(|f| {
                (
                    (client_name(f), f.subject.method.clone().unwrap_or_default()),
                    f.count,
                )
            })
            .collect();
        assert_eq!(&got, want, "{rule}");
    }
    assert_eq!(
        missing.values().sum::<u64>() + mismatch.values().sum::<u64>(),
        truth["expected"]["header_mismatch_400"].as_u64().unwrap()
    );

    // --- list_refetched_before_ttl: a refetch before a positive ttl_ms (none in the capture).
    let mut last: BTreeMap<(String, String, String), (u64, u64)> = BTreeMap::new();
    let mut refetch = 0;
    let cacheable = [
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
        "server/discover",
        "resources/read",
    ];
    for e in &ex {
        let m = s(&e["mcp_method"]);
        if !cacheable.contains(&m.as_str()) {
            continue;
        }
        let key = (s(&e["client_name"]), m, s(&e["name"]));
        let t = e["t_start_ns"].as_u64().unwrap();
        if let Some((pt, pttl)) = last.get(&key)
            && *pttl > 0
            && t - pt < pttl * 1_000_000
        {
            refetch += 1;
        }
        last.insert(key, (t, e["ttl_ms"].as_u64().unwrap_or(0)));
    }
    assert_eq!(by_rule(a, RuleId::ListRefetchedBeforeTtl).len(), refetch);

    // --- legacy tasks / deprecated features: the capture has none.
    let tasks = ex
        .iter()
        .filter(|e| {
            matches!(
                e["mcp_method"].as_str(),
                Some("tasks/result" | "tasks/list")
            )
        })
        .count();
    assert_eq!(by_rule(a, RuleId::LegacyTasksApi).len(), tasks);
    let deprecated = ex
        .iter()
        .filter(|e| {
            matches!(
                e["mcp_method"].as_str(),
                Some("logging/setLevel" | "roots/list" | "sampling/createMessage")
            )
        })
        .count();
    assert_eq!(by_rule(a, RuleId::DeprecatedFeatureUsed).len(), deprecated);

    // --- readiness.
    let r = a.readiness.as_ref().unwrap();
    let dep = ex
        .iter()
        .filter(|e| {
            e["era"] == "legacy"
                && (!e["session_id_sent"].is_null()
                    || !e["session_id_minted"].is_null()
                    || e["mcp_method"] == "initialize")
        })
        .count() as u64;
    assert_eq!(r.requests, ex.len() as u64);
    assert_eq!(r.session_dependent_requests, dep);
    assert_eq!(r.verdict, Verdict::NotReady);
    assert!(!r.sticky_sessions_removable);
    assert_eq!(r.cross_instance_handle_failures, 1);
    let rc: BTreeSet<String> = r.clients.iter().map(|c| c.client.name.clone()).collect();
    assert_eq!(rc, legacy);
    assert_eq!(
        r.session_404,
        truth["expected"]["session_not_found_404"]
            .as_array()
            .unwrap()
            .len() as u64
    );
    assert_eq!(r.instances.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutover_fixture_matches_truth() {
    let url = common::clickhouse_url();
    let database = common::fresh_database("cutover");
    common::create_schema(&url, &database, "otel_traces", true).await;
    let rows = common::otlp_to_rows(&common::fixture_otlp("cutover.pcap"), &|_| true);
    assert_eq!(rows.len(), 67);
    common::insert_rows(&url, &database, "otel_traces", &rows).await;
    let truth = common::truth("cutover.truth.json");

    let mut db = common::analyzer_db(&url, &database, "otel_traces").await;
    assert!(
        db.cols().uses_materialized(),
        "the 0005 migration's columns should be used"
    );
    let a = analyze(&db, fixture_range(), &Config::default(), &RuleId::ALL).await;
    check_against_truth(&a, &truth);

    db.set_cols(Cols::map_only());
    let b = analyze(&db, fixture_range(), &Config::default(), &RuleId::ALL).await;
    check_against_truth(&b, &truth);
    assert_eq!(
        a.findings, b.findings,
        "materialized columns and maps must agree"
    );
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
    check_against_truth(&a, &common::truth("cutover.truth.json"));
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
    check_against_truth(&a, &common::truth("cutover.truth.json"));
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
    check_against_truth(&a, &truth);
    assert_eq!(a.findings, reference.findings);
    assert_eq!(a.readiness, reference.readiness);
    db.set_cols(Cols::map_only());
    let b = analyze(&db, fixture_range(), &Config::default(), &RuleId::ALL).await;
    check_against_truth(&b, &truth);
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
