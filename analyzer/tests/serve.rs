//! `mcptap-analyzer serve` end to end on the real capture (`cutover.pcap` decoded by the
//! collector into ClickHouse): the JSON API against `report --format json`, validation (400s
//! that never reach ClickHouse), bearer-token auth, trace drill-down, series, `/metrics`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::serve::{SINCE, UNTIL};
use serde_json::Value;
use std::collections::BTreeSet;

const TOKEN: &str = "s3cret-token";

async fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

fn ids(doc: &Value) -> BTreeSet<String> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn fingerprints(doc: &Value) -> BTreeSet<String> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}|{}|{}|{}",
                f["rule"], f["severity"], f["count"], f["subject"]
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_on_the_real_capture() {
    let (url, database) = common::serve::loaded("serve").await;
    let srv = common::serve::start(&url, &database, &["--bearer-token", TOKEN]);
    let b = srv.base.as_str();
    let t = Some(TOKEN);

    // Open routes.
    let (s, v) = get(b, "/healthz", None).await;
    assert_eq!((s, v), (200, Value::String("ok\n".into())));
    assert_eq!(get(b, "/readyz", None).await.0, 200);
    // Auth: API closed without / with a wrong token, JSON error.
    let (s, v) = get(b, "/api/v1/findings", None).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["status"], 401);
    assert_eq!(get(b, "/api/v1/findings", Some("wrong")).await.0, 401);
    assert_eq!(
        get(b, "/api/v1/findings", Some("s3cret-tokeN")).await.0,
        401
    );
    assert_eq!(get(b, "/api/v1/readiness", None).await.0, 401);

    // Cached findings: same findings as the report command on the same range.
    let (s, cached) = get(b, "/api/v1/findings", t).await;
    assert_eq!(s, 200, "{cached}");
    assert_eq!(cached["schema_version"], 1);
    assert_eq!(cached["cached"], true);
    assert_eq!(cached["range"]["since"], "2026-11-21T05:50:00.000000000Z");
    assert_eq!(cached["readiness"]["verdict"], "not_ready");
    assert!(
        cached["errors"].as_array().unwrap().is_empty(),
        "{}",
        cached["errors"]
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcptap-analyzer"))
        .args(["report", "--clickhouse-url", &url, "--database", &database])
        .args(["--since", SINCE, "--until", UNTIL, "--format", "json"])
        .env_remove("CLICKHOUSE_URL")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(fingerprints(&cached), fingerprints(&report));
    assert_eq!(cached["summary"], report["summary"]);
    assert_eq!(cached["readiness"], report["readiness"]);
    let n = cached["findings"].as_array().unwrap().len();
    assert!(n >= 5, "{n}");
    assert_eq!(ids(&cached).len(), n, "finding ids are unique");

    // The cross-instance handle failure: basket_id, both instances, traces.
    let xi = cached["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "cross_instance_handle_failure")
        .expect("cross_instance_handle_failure finding")
        .clone();
    assert_eq!(xi["subject"]["handle"], "basket_id");
    assert_eq!(xi["subject"]["instances"].as_array().unwrap().len(), 2);

    // Explicit range: on-demand run, same findings.
    let (s, explicit) = get(
        b,
        &format!("/api/v1/findings?since={SINCE}&until={UNTIL}"),
        t,
    )
    .await;
    assert_eq!(s, 200, "{explicit}");
    assert_eq!(explicit["cached"], false);
    assert_eq!(ids(&explicit), ids(&cached));

    // Filters.
    let (_, only) = get(b, "/api/v1/findings?rule=status_4xx_spike", t).await;
    let rules: BTreeSet<&str> = only["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, BTreeSet::from(["status_4xx_spike"]));
    let (_, crit) = get(b, "/api/v1/findings?severity=critical", t).await;
    assert!(!crit["findings"].as_array().unwrap().is_empty());
    assert!(
        crit["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] == "critical")
    );
    let (_, two) = get(
        b,
        "/api/v1/findings?rule=status_4xx_spike,cross_instance_handle_failure",
        t,
    )
    .await;
    assert!(two["findings"].as_array().unwrap().len() >= 2);

    // One finding by id.
    let id = xi["id"].as_str().unwrap();
    let (s, one) = get(b, &format!("/api/v1/findings/{id}"), t).await;
    assert_eq!(s, 200);
    assert_eq!(one["finding"]["subject"], xi["subject"]);
    assert_eq!(get(b, "/api/v1/findings/0123456789abcdef", t).await.0, 404);

    // Readiness.
    let (s, r) = get(b, "/api/v1/readiness", t).await;
    assert_eq!(s, 200);
    assert_eq!(r["readiness"]["verdict"], "not_ready");
    let clients: Vec<&str> = r["readiness"]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client"]["name"].as_str().unwrap())
        .collect();
    assert!(
        clients.contains(&"legacy-py") && clients.contains(&"legacy-ts"),
        "{clients:?}"
    );

    // Validation: 400 JSON errors (the input never reaches ClickHouse).
    for bad in [
        "/api/v1/findings?since=yesterday",
        "/api/v1/findings?since=2026-13-01T00:00:00Z",
        "/api/v1/findings?until=1h&since=2999-01-01T00:00:00Z", // until before since, whatever the clock says
        "/api/v1/findings?since=2026-01-01T00:00:00Z&until=2026-11-21T06:00:00Z",
        "/api/v1/findings?rule=nope",
        "/api/v1/findings?rule=session_id_still_sent'%20OR%201=1",
        "/api/v1/findings?severity=fatal",
        "/api/v1/findings?limit=5",
        "/api/v1/findings?since=1h&since=2h",
        "/api/v1/readiness?since=%ZZ",
        "/api/v1/rules/nope/series",
        "/api/v1/rules/status_4xx_spike/series?step=1ms",
        "/api/v1/rules/status_4xx_spike/series?step=1s",
        "/api/v1/rules/status_4xx_spike/series?step=soon",
        "/api/v1/traces/not-hex",
        "/api/v1/traces/0123456789abcdef0123456789abcdef00",
        "/api/v1/traces/abc'%20OR%20''='",
        "/api/v1/findings/xyz",
    ] {
        let (s, v) = get(b, bad, t).await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert_eq!(v["error"]["status"], 400, "{bad}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(get(b, "/api/v1/nothing", t).await.0, 404);

    // Series: the spike shows in some step.
    let (s, series) = get(b, "/api/v1/rules/status_4xx_spike/series?step=1m", t).await;
    assert_eq!(s, 200, "{series}");
    let pts = series["points"].as_array().unwrap();
    assert_eq!(pts.len(), 10);
    assert!(pts.iter().all(|p| p.get("error").is_none()), "{series}");
    assert!(
        pts.iter().any(|p| p["requests"].as_u64().unwrap() > 0),
        "{series}"
    );
    let (s, xs) = get(b, "/api/v1/rules/cross_instance_handle_failure/series", t).await;
    assert_eq!(s, 200);
    let total: u64 = xs["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(total, xi["count"].as_u64().unwrap(), "{xs}");

    // Drill-down: the spans of a sample trace.
    let tid = xi["sample_trace_ids"][0].as_str().unwrap();
    let (s, tr) = get(b, &format!("/api/v1/traces/{tid}"), t).await;
    assert_eq!(s, 200, "{tr}");
    let spans = tr["spans"].as_array().unwrap();
    assert!(!spans.is_empty());
    for sp in spans {
        assert_eq!(sp["trace_id"], tid);
        assert!(!sp["span_id"].as_str().unwrap().is_empty());
        assert!(!sp["instance"].as_str().unwrap().is_empty());
        assert!(sp["start"].as_str().unwrap().starts_with("2026-11-21T05:5"));
        assert!(sp["attributes"].is_object());
    }
    assert!(spans.iter().any(|s| s["method"] == "tools/call"), "{tr}");
    let upper = tid.to_ascii_uppercase();
    assert_eq!(get(b, &format!("/api/v1/traces/{upper}"), t).await.0, 200);
    assert_eq!(
        get(b, "/api/v1/traces/0123456789abcdef0123456789abcdef", t)
            .await
            .0,
        404
    );

    // Metrics (open by default): parse the exposition.
    let r = reqwest::get(format!("{b}/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = r.text().await.unwrap();
    let val = |name_labels: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(name_labels) && l[name_labels.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("{name_labels} missing in\n{m}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(val("mcptap_analyzer_readiness{verdict=\"not_ready\"}"), 1.0);
    assert_eq!(val("mcptap_analyzer_readiness{verdict=\"ready\"}"), 0.0);
    assert_eq!(val("mcptap_analyzer_clickhouse_up"), 1.0);
    assert!(val("mcptap_analyzer_last_run_timestamp_seconds") > 1.7e9);
    let mut total = 0.0;
    for l in m
        .lines()
        .filter(|l| l.starts_with("mcptap_analyzer_findings{"))
    {
        total += l.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
    }
    assert_eq!(total as usize, n);
    let xi_sev = xi["severity"].as_str().unwrap();
    assert_eq!(
        val(&format!(
            "mcptap_analyzer_findings{{rule=\"cross_instance_handle_failure\",severity=\"{xi_sev}\"}}"
        )),
        1.0
    );
    assert_eq!(
        val("mcptap_analyzer_rule_errors_total{rule=\"status_4xx_spike\"}"),
        0.0
    );
    assert!(m.contains("mcptap_analyzer_rule_duration_seconds{rule=\"session_id_still_sent\"}"));
    for l in m.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = l.split(' ').nth(2).unwrap();
        assert!(m.contains(&format!("# HELP {name} ")), "{name}");
    }

    // The page and its assets are open and self-contained.
    let r = reqwest::get(format!("{b}/")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("<script src=\"app.js\">"));
    assert!(!html.contains("http://") && !html.contains("https://"));
    let js = reqwest::get(format!("{b}/app.js"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(js.contains("/api/v1/findings"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_metrics_and_no_token_mode() {
    let (url, database) = common::serve::loaded("serve_m").await;
    let srv = common::serve::start(
        &url,
        &database,
        &["--bearer-token", TOKEN, "--protect-metrics"],
    );
    assert_eq!(get(&srv.base, "/metrics", None).await.0, 401);
    assert_eq!(get(&srv.base, "/metrics", Some(TOKEN)).await.0, 200);
    assert_eq!(get(&srv.base, "/healthz", None).await.0, 200);
    drop(srv);
    // Without a token the API is open.
    let srv = common::serve::start(&url, &database, &[]);
    let (s, v) = get(&srv.base, "/api/v1/readiness", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["readiness"]["verdict"], "not_ready");
}

#[test]
fn bad_flags_are_refused() {
    for args in [
        vec!["--webhook", "https://hooks.example/x"],
        vec!["--interval", "0s"],
        vec!["--window", "soon"],
        vec!["--until", "tomorrow"],
        vec!["--database", "x; DROP TABLE y"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcptap-analyzer"))
            .args([
                "serve",
                "--clickhouse-url",
                "http://127.0.0.1:9",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("error"),
            "{args:?}"
        );
    }
}
