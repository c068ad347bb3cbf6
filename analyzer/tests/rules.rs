//! One test per rule on the real SDK capture `tests/fixtures/cutover.pcap`, decoded by the real
//! collector and stored in a real ClickHouse (chDB front) with the real migrations: each rule
//! must find exactly the ground-truth cases of `cutover.truth.json` (`common::ground_truth`)
//! and nothing else, both with mcptap's MATERIALIZED columns and with the attribute maps only.
//! The capture is loaded and analysed once per test binary.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ground_truth as truth;
use mcptap_analyzer::clickhouse::Cols;
use mcptap_analyzer::config::{Config, Range};
use mcptap_analyzer::engine::{Analysis, analyze};
use mcptap_analyzer::finding::RuleId;
use serde_json::Value;
use std::sync::OnceLock;

/// The capture analysed both ways, and its truth.
struct Cutover {
    /// With the 0005 migration's MATERIALIZED columns.
    materialized: Analysis,
    /// With the attribute maps only.
    map_only: Analysis,
    truth: Value,
}

/// Range covering the capture (2026-11-21 05:50 .. 05:55 UTC).
fn fixture_range() -> Range {
    let since = mcptap_analyzer::timeutil::parse_rfc3339_ns("2026-11-21T05:50:00Z").unwrap();
    let until = mcptap_analyzer::timeutil::parse_rfc3339_ns("2026-11-21T06:00:00Z").unwrap();
    Range::new(since, until).unwrap()
}

async fn load() -> Cutover {
    let url = common::clickhouse_url();
    let database = common::fresh_database("cutover");
    common::create_schema(&url, &database, "otel_traces", true).await;
    let rows = common::otlp_to_rows(&common::fixture_otlp("cutover.pcap"), &|_| true);
    assert_eq!(rows.len(), 67);
    common::insert_rows(&url, &database, "otel_traces", &rows).await;
    let mut db = common::analyzer_db(&url, &database, "otel_traces").await;
    assert!(
        db.cols().uses_materialized(),
        "the 0005 migration's columns should be used"
    );
    let materialized = analyze(&db, fixture_range(), &Config::default(), &RuleId::ALL).await;
    db.set_cols(Cols::map_only());
    let map_only = analyze(&db, fixture_range(), &Config::default(), &RuleId::ALL).await;
    Cutover {
        materialized,
        map_only,
        truth: common::truth("cutover.truth.json"),
    }
}

/// The shared analyses (computed once, on a runtime of their own so that no test's runtime
/// owns the connections).
fn cutover() -> &'static Cutover {
    static C: OnceLock<Cutover> = OnceLock::new();
    C.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(load())
        })
        .join()
        .unwrap()
    })
}

/// Runs `check` on both analyses.
fn both(check: impl Fn(&Analysis, &Value)) {
    let c = cutover();
    check(&c.materialized, &c.truth);
    check(&c.map_only, &c.truth);
}

#[test]
fn no_rule_fails() {
    both(|a, _| truth::no_errors(a));
}

#[test]
fn materialized_columns_and_maps_agree() {
    let c = cutover();
    assert!(!c.materialized.findings.is_empty());
    assert_eq!(c.materialized.findings, c.map_only.findings);
}

#[test]
fn session_id_still_sent() {
    both(truth::session_id_still_sent);
}

#[test]
fn initialize_still_called() {
    both(truth::initialize_still_called);
}

#[test]
fn cross_instance_handle_failure() {
    both(truth::cross_instance_handle_failure);
}

#[test]
fn status_4xx_spike() {
    both(truth::status_4xx_spike);
}

#[test]
fn routing_headers_missing() {
    both(|a, t| truth::routing_headers(a, t, RuleId::RoutingHeadersMissing));
}

#[test]
fn routing_header_mismatch() {
    both(|a, t| truth::routing_headers(a, t, RuleId::RoutingHeaderMismatch));
}

#[test]
fn list_refetched_before_ttl() {
    both(truth::list_refetched_before_ttl);
}

#[test]
fn legacy_tasks_api() {
    both(truth::legacy_tasks_api);
}

#[test]
fn deprecated_feature_used() {
    both(truth::deprecated_feature_used);
}

#[test]
fn readiness_verdict() {
    both(truth::readiness);
}
