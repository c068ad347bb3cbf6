//! The cutover readiness verdict: which share of requests, which clients and which instances
//! still depend on MCP sessions, and whether sticky sessions can be removed now.
//!
//! **Session-dependent request**: a legacy-era span (`mcptap.era = 'legacy'`) that carries
//! `Mcp-Session-Id`, mints one (`mcptap.session.minted`), or is `initialize`. Such a request
//! only works when the balancer sends it to the instance holding the session.
//!
//! **Verdict**:
//! - `no_data`: no spans in range;
//! - `not_ready`: session-dependent requests exist (sticky sessions cannot be removed), or
//!   `cross_instance_handle_failure` findings exist (server state behind handles is
//!   instance-local: requests fail when routed elsewhere, whatever the stickiness);
//! - `ready`: neither.
//!
//! `sticky_sessions_removable` is true only when there is traffic and no session-dependent
//! request. `reasons` explains the verdict in sentences; `advice` lists non-blocking
//! findings (routing header problems, modern clients still sending a session id...).

use crate::clickhouse::{Db, de_u64};
use crate::config::{Config, Range};
use crate::finding::{Client, Finding, RuleId};
use crate::rules::ClientCols;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per (instance, client) counts over the range.
pub const SQL: &str = "
SELECT toString(@instance@) AS instance, @client_cols@,
  count() AS requests,
  countIf(@era@ = 'legacy' AND (@sid@ != '' OR @sminted@ != '' OR @method@ = 'initialize')) AS session_dependent,
  countIf(@era@ = 'legacy') AS legacy,
  countIf(@era@ = 'legacy' AND @sid@ != '' AND @status@ = 404) AS session_404,
  groupUniqArray(4)(@ua@) AS user_agents
FROM @from_clients@
WHERE @range@
GROUP BY instance, client_name, client_version, client_ua, client_address
";

/// A row of [`SQL`].
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct Row {
    pub instance: String,
    #[serde(flatten)]
    pub client: ClientCols,
    #[serde(deserialize_with = "de_u64")]
    pub requests: u64,
    #[serde(deserialize_with = "de_u64")]
    pub session_dependent: u64,
    #[serde(deserialize_with = "de_u64")]
    pub legacy: u64,
    #[serde(deserialize_with = "de_u64")]
    pub session_404: u64,
    pub user_agents: Vec<String>,
}

/// Verdict values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No session dependence and no instance-local handle failures.
    Ready,
    /// Something blocks the cutover (see reasons).
    NotReady,
    /// No spans in range.
    NoData,
}

/// Session dependence of one client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientDependence {
    /// Client identity.
    pub client: Client,
    /// All its spans in range.
    pub requests: u64,
    /// Its session-dependent spans.
    pub session_dependent: u64,
    /// `session_dependent / requests`.
    pub share: f64,
    /// Its session 404s (legacy requests whose session was on another instance).
    pub session_404: u64,
    /// Instances it reached with session-dependent requests.
    pub instances: Vec<String>,
}

/// Session dependence of one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceDependence {
    /// `service.instance.id`.
    pub instance: String,
    /// All spans it served in range.
    pub requests: u64,
    /// Session-dependent ones.
    pub session_dependent: u64,
    /// `session_dependent / requests`.
    pub share: f64,
    /// Session 404s it answered.
    pub session_404: u64,
}

/// The readiness verdict (JSON: `readiness` in the report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    /// The verdict.
    pub verdict: Verdict,
    /// Whether sticky sessions can be removed now.
    pub sticky_sessions_removable: bool,
    /// Why (one sentence each).
    pub reasons: Vec<String>,
    /// Non-blocking things to fix (one sentence each).
    pub advice: Vec<String>,
    /// All spans in range.
    pub requests: u64,
    /// Session-dependent spans.
    pub session_dependent_requests: u64,
    /// `session_dependent_requests / requests` (0 when no requests).
    pub session_dependent_share: f64,
    /// Legacy-era spans.
    pub legacy_requests: u64,
    /// Session 404s.
    pub session_404: u64,
    /// Failures counted by `cross_instance_handle_failure` findings.
    pub cross_instance_handle_failures: u64,
    /// Clients with session-dependent requests, most dependent first.
    pub clients: Vec<ClientDependence>,
    /// Every instance, most dependent first.
    pub instances: Vec<InstanceDependence>,
}

fn share(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Session dependence per client (only clients with some) and per instance, most dependent
/// first.
fn dependence(rows: &[Row]) -> (Vec<ClientDependence>, Vec<InstanceDependence>) {
    let mut clients: BTreeMap<ClientCols, ClientDependence> = BTreeMap::new();
    let mut instances: BTreeMap<String, InstanceDependence> = BTreeMap::new();
    for r in rows {
        let i = instances
            .entry(r.instance.clone())
            .or_insert_with(|| InstanceDependence {
                instance: r.instance.clone(),
                requests: 0,
                session_dependent: 0,
                share: 0.0,
                session_404: 0,
            });
        i.requests += r.requests;
        i.session_dependent += r.session_dependent;
        i.session_404 += r.session_404;
        let c = clients
            .entry(r.client.clone())
            .or_insert_with(|| ClientDependence {
                client: r.client.client(&r.user_agents),
                requests: 0,
                session_dependent: 0,
                share: 0.0,
                session_404: 0,
                instances: Vec::new(),
            });
        c.requests += r.requests;
        c.session_dependent += r.session_dependent;
        c.session_404 += r.session_404;
        if r.session_dependent > 0 && !c.instances.contains(&r.instance) {
            c.instances.push(r.instance.clone());
        }
    }
    let mut clients: Vec<ClientDependence> = clients
        .into_values()
        .filter(|c| c.session_dependent > 0)
        .map(|mut c| {
            c.share = share(c.session_dependent, c.requests);
            c.instances.sort();
            c
        })
        .collect();
    clients.sort_by(|a, b| {
        b.session_dependent
            .cmp(&a.session_dependent)
            .then(a.client.cmp(&b.client))
    });
    let mut instances: Vec<InstanceDependence> = instances
        .into_values()
        .map(|mut i| {
            i.share = share(i.session_dependent, i.requests);
            i
        })
        .collect();
    instances.sort_by(|a, b| {
        b.session_dependent
            .cmp(&a.session_dependent)
            .then(a.instance.cmp(&b.instance))
    });
    (clients, instances)
}

/// Why the verdict is what it is (before the verdict's own line).
fn reasons(
    (requests, dep, s404, xi): (u64, u64, u64, u64),
    clients: &[ClientDependence],
    instances: &[InstanceDependence],
) -> Vec<String> {
    let mut reasons = Vec::new();
    if requests == 0 {
        reasons.push("no spans in the range: nothing to judge".to_string());
    }
    if dep > 0 {
        let names: Vec<String> = clients.iter().take(10).map(|c| c.client.label()).collect();
        reasons.push(format!(
            "{dep} of {requests} requests ({:.1}%) still depend on MCP sessions, from {} client(s): {}; \
             removing sticky sessions would break them",
            100.0 * share(dep, requests),
            clients.len(),
            names.join(", ")
        ));
        let dep_instances: Vec<&str> = instances
            .iter()
            .filter(|i| i.session_dependent > 0)
            .map(|i| i.instance.as_str())
            .collect();
        reasons.push(format!(
            "instances serving session traffic: {}",
            dep_instances.join(", ")
        ));
    }
    if s404 > 0 {
        reasons.push(format!(
            "{s404} session 404s: legacy requests already reach instances that do not hold their session \
             (stickiness is missing or broken for them today)"
        ));
    }
    if xi > 0 {
        reasons.push(format!(
            "{xi} call(s) failed on another instance than the one that minted their handle: state behind \
             handles is instance-local; move it to a shared store before relying on stateless routing"
        ));
    }
    reasons
}

/// Advice from the other rules' findings (not blocking the verdict).
fn advice(findings: &[Finding]) -> Vec<String> {
    let mut advice = Vec::new();
    for (rule, text) in [
        (
            RuleId::RoutingHeadersMissing,
            "modern requests lack Mcp-Method/Mcp-Name (rejected by compliant servers)",
        ),
        (
            RuleId::RoutingHeaderMismatch,
            "modern requests carry Mcp-Method/Mcp-Name that disagree with the body",
        ),
        (
            RuleId::LegacyTasksApi,
            "clients use the removed 2025-11-25 tasks API",
        ),
        (
            RuleId::DeprecatedFeatureUsed,
            "clients use deprecated Roots/Sampling/Logging",
        ),
        (
            RuleId::ListRefetchedBeforeTtl,
            "clients refetch cacheable lists before their ttlMs",
        ),
    ] {
        let n = findings.iter().filter(|f| f.rule == rule).count();
        if n > 0 {
            advice.push(format!("{rule}: {n} finding(s): {text}"));
        }
    }
    let modern_sid = findings
        .iter()
        .filter(|f| {
            f.rule == RuleId::SessionIdStillSent
                && f.counts.get("legacy_requests").copied().unwrap_or(0) == 0
        })
        .count();
    if modern_sid > 0 {
        advice.push(format!(
            "session_id_still_sent: {modern_sid} modern client(s) still send an ignored Mcp-Session-Id"
        ));
    }
    advice
}

/// Computes the verdict from the rows and the findings of this run (pure).
pub fn from_rows(rows: &[Row], findings: &[Finding]) -> Readiness {
    let requests: u64 = rows.iter().map(|r| r.requests).sum();
    let dep: u64 = rows.iter().map(|r| r.session_dependent).sum();
    let legacy: u64 = rows.iter().map(|r| r.legacy).sum();
    let s404: u64 = rows.iter().map(|r| r.session_404).sum();
    let (clients, instances) = dependence(rows);
    let xi: u64 = findings
        .iter()
        .filter(|f| f.rule == RuleId::CrossInstanceHandleFailure)
        .map(|f| f.count)
        .sum();
    let mut reasons = reasons((requests, dep, s404, xi), &clients, &instances);
    let advice = advice(findings);
    let verdict = if requests == 0 {
        Verdict::NoData
    } else if dep > 0 || xi > 0 {
        Verdict::NotReady
    } else {
        reasons.push(format!(
            "none of the {requests} requests depends on a session"
        ));
        Verdict::Ready
    };
    Readiness {
        verdict,
        sticky_sessions_removable: requests > 0 && dep == 0,
        reasons,
        advice,
        requests,
        session_dependent_requests: dep,
        session_dependent_share: share(dep, requests),
        legacy_requests: legacy,
        session_404: s404,
        cross_instance_handle_failures: xi,
        clients,
        instances,
    }
}

/// Queries and computes the verdict.
///
/// # Errors
/// Query failure.
pub async fn compute(
    db: &Db,
    range: &Range,
    cfg: &Config,
    findings: &[Finding],
) -> Result<Readiness> {
    let rows: Vec<Row> = db
        .fetch(crate::rules::query(
            db,
            SQL,
            range.since_ns,
            range.until_ns,
            cfg,
        )?)
        .await?;
    Ok(from_rows(&rows, findings))
}
