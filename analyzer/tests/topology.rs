//! The analyzer on the topology captures (`tests/fixtures/topology-*.pcap`: two tenants
//! through an nginx ingress, a mesh-like pod behind a TLS-terminating proxy, the bridge holding
//! both legs; ground truth `topology.truth.json` from the clients', servers' and proxies' logs):
//! the clients are named by their real addresses, no proxy is ever an instance or a client,
//! the request the bridge shows on two legs is counted once, and the cross-instance handle
//! failures equal the ones the clients logged.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

/// OTLP/JSON of one topology capture, decoded with `--instance-id` when given (a pod sidecar).
fn decode(pcap: &str, instance: Option<&str>) -> String {
    let mut cmd = Command::new(common::collector_bin());
    cmd.arg("--pcap")
        .arg(common::repo_root().join("tests/fixtures").join(pcap))
        .args(["--output", "otlp-json", "--no-summary"]);
    if let Some(id) = instance {
        cmd.args(["--instance-id", id]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The time range of the truth's requests, widened by a minute each side (RFC 3339).
fn range(t: &Value) -> (String, String) {
    let ts: Vec<i64> = t["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["t_received_ns"].as_i64())
        .collect();
    let lo = ts.iter().min().unwrap() - 60_000_000_000;
    let hi = ts.iter().max().unwrap() + 60_000_000_000;
    (
        mcptap_analyzer::timeutil::format_rfc3339_ns(lo),
        mcptap_analyzer::timeutil::format_rfc3339_ns(hi),
    )
}

/// The JSON report over `captures` loaded into one fresh table.
async fn report(tag: &str, captures: &[(&str, Option<&str>)], t: &Value) -> Value {
    let url = common::clickhouse_url();
    let database = common::fresh_database(tag);
    common::create_schema(&url, &database, "otel_traces", true).await;
    for (pcap, instance) in captures {
        let rows = common::otlp_to_rows(&decode(pcap, *instance), &|_| true);
        common::insert_rows(&url, &database, "otel_traces", &rows).await;
    }
    let (since, until) = range(t);
    let out = Command::new(env!("CARGO_BIN_EXE_mcptap-analyzer"))
        .args(["report", "--clickhouse-url", &url, "--database", &database])
        .args(["--since", &since, "--until", &until, "--format", "json"])
        .env_remove("CLICKHOUSE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn proxies(t: &Value) -> Vec<String> {
    t["topology"]["proxies_never_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

/// Every client address in the report's findings and readiness.
fn client_addresses(r: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in r["findings"].as_array().unwrap() {
        if let Some(a) = f["subject"]["client"]["address"].as_str() {
            out.insert(a.to_owned());
        }
    }
    for c in r["readiness"]["clients"].as_array().into_iter().flatten() {
        if let Some(a) = c["client"]["address"].as_str() {
            out.insert(a.to_owned());
        }
    }
    out.remove("");
    out
}

fn instances(r: &Value) -> BTreeSet<String> {
    r["readiness"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance"].as_str().unwrap().to_owned())
        .collect()
}

fn cross_instance_failures(r: &Value) -> u64 {
    r["readiness"]["cross_instance_handle_failures"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_sidecars_name_real_clients_and_the_logged_failures() {
    let t = common::truth("topology.truth.json");
    let r = report(
        "topo_pods",
        &[
            ("topology-pod-a.pcap", Some("pod-a")),
            ("topology-pod-b-any.pcap", Some("pod-b")),
            ("topology-pod-c.pcap", Some("pod-c")),
        ],
        &t,
    )
    .await;
    let clients = client_addresses(&r);
    for p in proxies(&t) {
        assert!(
            !clients.iter().any(|c| c.starts_with(&p)),
            "a proxy as client: {clients:?}"
        );
    }
    assert!(
        clients.contains("10.80.0.21") && clients.contains("10.80.0.22"),
        "{clients:?}"
    );
    assert_eq!(
        instances(&r),
        ["pod-a", "pod-b", "pod-c"].map(String::from).into(),
        "{}",
        r["readiness"]
    );
    // Both failures the clients logged (a basket minted on one pod, used on another).
    let logged = t["expected"]["cross_instance_handle_failures"]
        .as_u64()
        .unwrap();
    assert_eq!(cross_instance_failures(&r), logged, "{}", r["readiness"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_counts_each_request_once_and_no_proxy_is_an_instance() {
    let t = common::truth("topology.truth.json");
    let r = report("topo_bridge", &[("topology-bridge.pcap", None)], &t).await;
    // The bridge sees pod-a and pod-c in plaintext (pod-b only as TLS).
    assert_eq!(
        instances(&r),
        ["10.80.0.11:8000", "10.80.0.13:8000"]
            .map(String::from)
            .into(),
        "{}",
        r["readiness"]
    );
    let clients = client_addresses(&r);
    assert!(
        !clients.iter().any(|c| c.starts_with("10.80.0.10")),
        "{clients:?}"
    );
    // Requests counted once: the upstream legs to pod-a and pod-c (the 25 the bridge shows on
    // two legs, counted on their upstream leg), plus the probe's direct request to pod-a.
    let expected = &t["captures"]["topology-bridge.pcap"]["expected"];
    let served: u64 = expected["plaintext_per_server"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !k.starts_with("10.80.0.10"))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        r["readiness"]["requests"].as_u64(),
        Some(served),
        "{}",
        r["readiness"]
    );
    // Anything shown for the ingress is shown as a proxy, never as an instance.
    let text = r.to_string();
    for (i, _) in text.match_indices("10.80.0.10:8080") {
        assert!(
            text[..i].ends_with("proxy "),
            "the ingress as an instance: …{}…",
            &text[i.saturating_sub(60)..i + 20]
        );
    }
}
