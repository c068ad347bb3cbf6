//! The `mcptap-analyzer report` binary end to end on the real capture: table and JSON output,
//! the JSON schema's stable fields, and the CI exit codes of `--fail-on`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;
use std::process::Command;

const SINCE: &str = "2026-11-21T05:50:00Z";
const UNTIL: &str = "2026-11-21T06:00:00Z";

async fn loaded(tag: &str) -> (String, String) {
    let url = common::clickhouse_url();
    let database = common::fresh_database(tag);
    common::create_schema(&url, &database, "otel_traces", true).await;
    let rows = common::otlp_to_rows(&common::fixture_otlp("cutover.pcap"), &|_| true);
    common::insert_rows(&url, &database, "otel_traces", &rows).await;
    (url, database)
}

fn report(url: &str, database: &str, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcptap-analyzer"))
        .args([
            "report",
            "--clickhouse-url",
            url,
            "--database",
            database,
            "--since",
            SINCE,
            "--until",
            UNTIL,
        ])
        .args(extra)
        .env_remove("CLICKHOUSE_URL")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_table_json_and_exit_codes() {
    let (url, database) = loaded("cli").await;

    let (code, table, err) = report(&url, &database, &[]);
    println!("{table}");
    assert_eq!(code, 0, "{err}");
    assert!(table.contains("CUTOVER READINESS: NOT READY"), "{table}");
    assert!(table.contains("cross_instance_handle_failure"));
    assert!(table.contains("legacy-py/2.3.0 @ 10.77.0.20"));

    let (code, json, err) = report(
        &url,
        &database,
        &["--format", "json", "--fail-on", "critical"],
    );
    assert_eq!(code, 4, "{err}");
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["range"]["since"], "2026-11-21T05:50:00.000000000Z");
    assert_eq!(doc["source"]["database"], database.as_str());
    assert_eq!(doc["source"]["materialized_columns"], true);
    assert_eq!(doc["readiness"]["verdict"], "not_ready");
    assert_eq!(doc["readiness"]["sticky_sessions_removable"], false);
    assert_eq!(doc["errors"].as_array().unwrap().len(), 0);
    assert_eq!(doc["rules"].as_array().unwrap().len(), 9);
    let by_rule = &doc["summary"]["by_rule"];
    assert_eq!(by_rule["cross_instance_handle_failure"], 1);
    assert_eq!(by_rule["status_4xx_spike"], 3);
    assert_eq!(by_rule["legacy_tasks_api"], 0);
    for f in doc["findings"].as_array().unwrap() {
        for k in [
            "rule",
            "severity",
            "summary",
            "subject",
            "count",
            "counts",
            "first_seen",
            "last_seen",
            "sample_trace_ids",
            "details",
        ] {
            assert!(f.get(k).is_some(), "finding without {k}: {f}");
        }
        assert!(f["first_seen"].as_str().unwrap().ends_with('Z'));
    }

    // Only info-level rules selected: nothing at/above warning.
    let (code, _, err) = report(
        &url,
        &database,
        &["--rule", "list_refetched_before_ttl", "--fail-on", "info"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = report(
        &url,
        &database,
        &["--rule", "session_id_still_sent", "--fail-on", "warning"],
    );
    assert_eq!(code, 4);

    // A range without spans: no data, exit 0 even with --fail-on info.
    let out = Command::new(env!("CARGO_BIN_EXE_mcptap-analyzer"))
        .args([
            "report",
            "--clickhouse-url",
            &url,
            "--database",
            &database,
            "--since",
            "2000-01-01T00:00:00Z",
            "--until",
            "2000-01-02T00:00:00Z",
            "--fail-on",
            "info",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("NO DATA"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_exit_1() {
    let url = common::clickhouse_url();
    // Not an identifier: refused before any query.
    let (code, _, err) = report(&url, "x; DROP TABLE y", &[]);
    assert_eq!(code, 1);
    assert!(err.contains("not a plain identifier"), "{err}");
    // Missing table.
    let (code, _, err) = report(&url, "no_such_db_mcptap", &[]);
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");
    // Bad time.
    let out = Command::new(env!("CARGO_BIN_EXE_mcptap-analyzer"))
        .args(["report", "--clickhouse-url", &url, "--since", "yesterday"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
}
