//! The ground truth of `tests/fixtures/cutover.pcap` (`cutover.truth.json`, built from the
//! SDK clients' and servers' own logs) as one check per rule: each asserts that the rule found
//! exactly the truth's cases (counts, severities, subjects, samples) and nothing else.
//! `tests/rules.rs` runs each as its own test; [`check_all`] runs them all on one analysis.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use mcptap_analyzer::engine::Analysis;
use mcptap_analyzer::finding::{Finding, RuleId, Severity};
use mcptap_analyzer::readiness::Verdict;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A JSON string value (empty when not a string).
pub fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The findings of rule `r`.
pub fn by_rule(a: &Analysis, r: RuleId) -> Vec<&Finding> {
    a.findings.iter().filter(|f| f.rule == r).collect()
}

/// The client name of a finding's subject (empty without one).
pub fn client_name(f: &Finding) -> String {
    f.subject
        .client
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_default()
}

/// The truth's exchanges.
fn exchanges(truth: &Value) -> Vec<&Value> {
    truth["exchanges"].as_array().unwrap().iter().collect()
}

/// The truth's legacy clients (names).
fn legacy_clients(truth: &Value) -> BTreeSet<String> {
    truth["expected"]["legacy_clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect()
}

/// No rule and not the readiness query failed.
pub fn no_errors(a: &Analysis) {
    for r in &a.rules {
        assert!(r.error.is_none(), "rule {} failed: {:?}", r.rule, r.error);
    }
    assert!(a.readiness_error.is_none(), "{:?}", a.readiness_error);
}

/// Every check below on one analysis.
pub fn check_all(a: &Analysis, truth: &Value) {
    no_errors(a);
    session_id_still_sent(a, truth);
    initialize_still_called(a, truth);
    cross_instance_handle_failure(a, truth);
    status_4xx_spike(a, truth);
    routing_headers(a, truth, RuleId::RoutingHeadersMissing);
    routing_headers(a, truth, RuleId::RoutingHeaderMismatch);
    list_refetched_before_ttl(a, truth);
    legacy_tasks_api(a, truth);
    deprecated_feature_used(a, truth);
    readiness(a, truth);
}

/// `session_id_still_sent`: per client, requests with a session id, 404s, instances, severity.
pub fn session_id_still_sent(a: &Analysis, truth: &Value) {
    let ex = exchanges(truth);
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
    let legacy = legacy_clients(truth);
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
}

/// `initialize_still_called`: per client, `initialize` calls and the legacy ones.
pub fn initialize_still_called(a: &Analysis, truth: &Value) {
    let ex = exchanges(truth);
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
}

/// `cross_instance_handle_failure`: exactly the truth's list.
pub fn cross_instance_handle_failure(a: &Analysis, truth: &Value) {
    let ex = exchanges(truth);
    let _ = ex;
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
}

/// `status_4xx_spike`: one incident per instance with 4xx (the capture fits in one 1-minute
/// window and has no baseline); causes exactly as the truth's answers.
pub fn status_4xx_spike(a: &Analysis, truth: &Value) {
    let ex = exchanges(truth);
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
}

/// `routing_headers_missing` or `routing_header_mismatch` (`rule`): per client and method, from
/// the truth's header and body values; together they are the truth's header-mismatch 400s.
pub fn routing_headers(a: &Analysis, truth: &Value, rule: RuleId) {
    let ex = exchanges(truth);
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
    let want = if rule == RuleId::RoutingHeadersMissing {
        &missing
    } else {
        &mismatch
    };
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
    assert_eq!(
        missing.values().sum::<u64>() + mismatch.values().sum::<u64>(),
        truth["expected"]["header_mismatch_400"].as_u64().unwrap()
    );
}

/// `list_refetched_before_ttl`: a refetch before a positive `ttl_ms` (none in the capture).
pub fn list_refetched_before_ttl(a: &Analysis, truth: &Value) {
    let ex = exchanges(truth);
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
}

/// `legacy_tasks_api`: one finding per legacy tasks call in the truth (none in the capture).
pub fn legacy_tasks_api(a: &Analysis, truth: &Value) {
    let ex = exchanges(truth);
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
}

/// `deprecated_feature_used`: deprecated methods in the truth (none in the capture).
pub fn deprecated_feature_used(a: &Analysis, truth: &Value) {
    let ex = exchanges(truth);
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
}

/// The readiness verdict: requests, session-dependent requests, verdict, clients, 404s, instances.
pub fn readiness(a: &Analysis, truth: &Value) {
    let ex = exchanges(truth);
    let legacy = legacy_clients(truth);
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
