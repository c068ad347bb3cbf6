//! Webhook notifications across background runs with changing data: a real local HTTP
//! receiver (axum on 127.0.0.1) captures the POSTs. Run 1 on the real capture sends every
//! finding as firing (Alertmanager and Slack payloads), run 2 on the same data sends nothing
//! (deduplicated), run 3 after removing one client's spans sends exactly the vanished findings
//! as resolved, run 4 nothing; a receiver answering 500 gets the same alerts again next run.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use mcptap_analyzer::config::Config;
use mcptap_analyzer::finding::Severity;
use mcptap_analyzer::serve::notify::{Webhook, WebhookFormat};
use mcptap_analyzer::serve::{App, ServeConfig, finding_id};
use mcptap_analyzer::timeutil::{self, NS_PER_SEC};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Received {
    posts: Mutex<Vec<(String, Value)>>,
    fail_next: AtomicU32,
}

async fn receive(
    State(st): State<Arc<Received>>,
    Path(name): Path<String>,
    body: String,
) -> StatusCode {
    if name == "flaky" && st.fail_next.load(Ordering::SeqCst) > 0 {
        st.fail_next.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    st.posts.lock().unwrap().push((name, v));
    StatusCode::OK
}

fn take(st: &Received, name: &str) -> Vec<Value> {
    let mut g = st.posts.lock().unwrap();
    let (mine, rest): (Vec<_>, Vec<_>) = g.drain(..).partition(|(n, _)| n == name);
    *g = rest;
    mine.into_iter().map(|(_, v)| v).collect()
}

fn ids_with(post: &Value, status: &str) -> BTreeSet<String> {
    post["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == status)
        .map(|a| a["fingerprint"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_and_slack_dedup_and_resolve() {
    // The receiver.
    let st = Arc::new(Received::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hook/{name}", post(receive))
        .with_state(st.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (url, database) = common::serve::loaded("hooks").await;
    let db = common::analyzer_db(&url, &database, "otel_traces").await;
    let hook = |name: &str, format| Webhook {
        url: format!("http://{addr}/hook/{name}"),
        format,
    };
    let cfg = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        interval: Duration::from_secs(3600),
        window_ns: 600 * NS_PER_SEC,
        until: common::serve::UNTIL.to_string(),
        max_range_ns: 31 * 86_400 * NS_PER_SEC,
        max_series_points: 120,
        on_demand_timeout: Duration::from_secs(30),
        bearer_token: None,
        protect_metrics: false,
        webhooks: vec![
            hook("am", WebhookFormat::Alertmanager),
            hook("slack", WebhookFormat::Slack),
            hook("flaky", WebhookFormat::Alertmanager),
        ],
        notify_min_severity: Severity::Info,
        external_url: "http://analyzer.example:8080".into(),
        webhook_timeout: Duration::from_secs(10),
        engine: Config::default(),
        http: mcptap_analyzer::serve::http::HttpLimits::default(),
    };
    let app = App::new(db, cfg).unwrap();
    app.columns_ready();
    st.fail_next.store(1, Ordering::SeqCst);

    // Run 1: everything fires.
    let s1 = app.refresh(timeutil::now_ns()).await.unwrap();
    assert!(!s1.analysis.has_errors());
    let ids1: BTreeSet<String> = s1.analysis.findings.iter().map(finding_id).collect();
    assert!(ids1.len() >= 5);
    let am = take(&st, "am");
    assert_eq!(am.len(), 1, "one POST per run");
    let p = &am[0];
    assert_eq!(p["version"], "4");
    assert_eq!(p["status"], "firing");
    assert_eq!(p["receiver"], "mcptap-analyzer");
    assert_eq!(p["externalURL"], "http://analyzer.example:8080");
    assert!(p["groupKey"].as_str().unwrap().contains("mcptap-analyzer"));
    assert_eq!(p["groupLabels"]["service"], "mcptap-analyzer");
    assert_eq!(p["commonLabels"]["service"], "mcptap-analyzer");
    assert_eq!(ids_with(p, "firing"), ids1);
    assert!(ids_with(p, "resolved").is_empty());
    let xi = p["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "cross_instance_handle_failure")
        .expect("cross-instance alert");
    assert_eq!(xi["labels"]["handle"], "basket_id");
    assert_eq!(
        xi["labels"]["instances"]
            .as_str()
            .unwrap()
            .split(',')
            .count(),
        2
    );
    assert!(["warning", "critical"].contains(&xi["labels"]["severity"].as_str().unwrap()));
    assert_eq!(xi["endsAt"], "0001-01-01T00:00:00Z");
    assert!(
        xi["startsAt"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-21T05:5")
    );
    let fp = xi["fingerprint"].as_str().unwrap();
    assert_eq!(
        xi["generatorURL"],
        format!("http://analyzer.example:8080/#/finding/{fp}")
    );
    assert!(!xi["annotations"]["summary"].as_str().unwrap().is_empty());
    assert!(
        xi["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains("sample traces")
    );
    let clients: BTreeSet<&str> = p["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["labels"]["client_name"].as_str())
        .collect();
    assert!(clients.contains("legacy-py") && clients.contains("legacy-ts"));

    let slack = take(&st, "slack");
    assert_eq!(slack.len(), 1);
    let sp = &slack[0];
    assert!(
        sp["text"]
            .as_str()
            .unwrap()
            .contains(&format!("{} finding(s) firing, 0 resolved", ids1.len()))
    );
    let blocks = sp["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks.len(), 1 + ids1.len());
    assert!(blocks.iter().any(|b| {
        let t = b["text"]["text"].as_str().unwrap_or_default();
        t.contains("FIRING")
            && t.contains("cross_instance_handle_failure")
            && t.contains("|drill-down>")
    }));
    // The flaky receiver failed once: nothing recorded, error counted.
    assert!(take(&st, "flaky").is_empty());
    let counters = app.webhook_counters().await;
    assert_eq!(counters[2], ("2".to_string(), 0, 1));

    // Run 2, same data: nothing new for the receivers that got it; the flaky one gets it now.
    let s2 = app.refresh(timeutil::now_ns()).await.unwrap();
    assert_eq!(
        s2.analysis
            .findings
            .iter()
            .map(finding_id)
            .collect::<BTreeSet<_>>(),
        ids1
    );
    assert!(
        take(&st, "am").is_empty(),
        "still-firing alerts are not re-sent"
    );
    assert!(take(&st, "slack").is_empty());
    let flaky = take(&st, "flaky");
    assert_eq!(flaky.len(), 1);
    assert_eq!(ids_with(&flaky[0], "firing"), ids1);

    // Run 3: legacy-ts's spans are gone.
    let client = clickhouse::Client::default().with_url(&url);
    client
        .query(&format!("TRUNCATE TABLE `{database}`.otel_traces"))
        .execute()
        .await
        .unwrap();
    let rows = common::otlp_to_rows(&common::fixture_otlp("cutover.pcap"), &|a| {
        a.get("mcptap.client.name").and_then(Value::as_str) != Some("legacy-ts")
    });
    common::insert_rows(&url, &database, "otel_traces", &rows).await;
    let s3 = app.refresh(timeutil::now_ns()).await.unwrap();
    assert!(!s3.analysis.has_errors());
    let ids3: BTreeSet<String> = s3.analysis.findings.iter().map(finding_id).collect();
    let gone: BTreeSet<String> = ids1.difference(&ids3).cloned().collect();
    let new: BTreeSet<String> = ids3.difference(&ids1).cloned().collect();
    assert!(!gone.is_empty());
    let am = take(&st, "am");
    assert_eq!(am.len(), 1);
    let p = &am[0];
    assert_eq!(ids_with(p, "resolved"), gone);
    assert_eq!(ids_with(p, "firing"), new, "only new findings fire");
    for a in p["alerts"].as_array().unwrap() {
        if a["status"] == "resolved" {
            assert_ne!(a["endsAt"], "0001-01-01T00:00:00Z");
            assert!(a["endsAt"].as_str().unwrap().ends_with('Z'));
        }
    }
    assert!(
        p["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["status"] == "resolved" && a["labels"]["client_name"] == "legacy-ts")
    );
    let slack = take(&st, "slack");
    assert_eq!(slack.len(), 1);
    assert!(
        slack[0]["text"]
            .as_str()
            .unwrap()
            .contains(&format!("{} resolved", gone.len()))
    );
    assert!(slack[0]["blocks"].as_array().unwrap().iter().any(|b| {
        b["text"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("RESOLVED")
    }));

    let flaky = take(&st, "flaky");
    assert_eq!(flaky.len(), 1);
    assert_eq!(ids_with(&flaky[0], "resolved"), gone);

    // Run 4: nothing changed, nothing sent.
    app.refresh(timeutil::now_ns()).await.unwrap();
    assert!(take(&st, "am").is_empty());
    assert!(take(&st, "slack").is_empty());
    let counters = app.webhook_counters().await;
    assert_eq!(counters[0], ("0".to_string(), 2, 0));
    assert_eq!(counters[2], ("2".to_string(), 2, 1));
    assert!(take(&st, "flaky").is_empty());
}
