//! `serve` bounds the work one request can cause (issue 16): times outside 1970 .. 2200 are
//! refused (the 1700 .. 2262 range was accepted through an `i64` overflow), series have a
//! point cap, and on-demand work has a deadline, so that two slow requests cannot hold both
//! on-demand permits until their clients hang up.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;
use std::time::{Duration, Instant};

async fn get(base: &str, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflowing_and_huge_ranges_are_refused() {
    let (url, database) = common::serve::loaded("limits").await;
    // A --max-range longer than the accepted span: only the clamp and the point cap stop it.
    let srv = common::serve::start(&url, &database, &["--max-range", "100000d"]);
    let b = &srv.base;
    let huge = "since=1700-01-01T00:00:00Z&until=2262-01-01T00:00:00Z";
    for path in [
        format!("/api/v1/findings?{huge}"),
        format!("/api/v1/readiness?{huge}"),
        format!("/api/v1/rules/status_4xx_spike/series?{huge}&step=1s"),
    ] {
        let t = Instant::now();
        let (s, v) = get(b, &path).await;
        assert_eq!(s, 400, "{path}: {v}");
        assert!(message(&v).contains("outside the accepted span"), "{v}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
    let (s, v) = get(
        b,
        "/api/v1/findings?since=2026-01-01T00:00:00Z&until=2250-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(s, 400);
    assert!(message(&v).contains("until 2250-01-01"), "{v}");
    // The whole accepted span at 1 s steps: refused by the point cap, not run.
    let (s, v) = get(
        b,
        "/api/v1/rules/status_4xx_spike/series?since=1970-01-01T00:00:00Z&until=2199-12-31T00:00:00Z&step=1s",
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(message(&v).contains("at most 120 per series"), "{v}");
    // Nothing ran on demand.
    let m = reqwest::get(format!("{b}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("mcptap_analyzer_on_demand_analyses_total 0\n"),
        "{m}"
    );
    // A sane explicit range still works.
    let (s, v) = get(
        b,
        &format!(
            "/api/v1/readiness?since={}&until={}",
            common::serve::SINCE,
            common::serve::UNTIL
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["readiness"]["verdict"], "not_ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_work_has_a_deadline() {
    let (url, database) = common::serve::loaded("deadline").await;
    let srv = common::serve::start(
        &url,
        &database,
        &["--on-demand-timeout", "8s", "--max-series-points", "100000"],
    );
    let b = srv.base.clone();
    // Two series of 86,400 rule runs each (a day at 1 s) would hold both permits for hours.
    let slow = "/api/v1/rules/session_id_still_sent/series?since=2026-11-20T06:00:00Z&until=2026-11-21T06:00:00Z&step=1s";
    let t = Instant::now();
    let (a, c) = tokio::join!(get(&b, slow), get(&b, slow));
    for (s, v) in [a, c] {
        assert_eq!(s, 503, "{v}");
        assert!(message(&v).contains("--on-demand-timeout"), "{v}");
    }
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(7) && took < Duration::from_secs(25),
        "deadline not kept: {took:?}"
    );
    // The permits are free again: an on-demand analysis answers at once.
    let t = Instant::now();
    let (s, v) = get(
        &b,
        &format!(
            "/api/v1/readiness?since={}&until={}",
            common::serve::SINCE,
            common::serve::UNTIL
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(t.elapsed() < Duration::from_secs(10));
}
