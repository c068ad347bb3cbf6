//! `session_id_still_sent`: requests that carry `Mcp-Session-Id`.
//!
//! **Selects** spans in range with `mcp.session.id` set (the request carried the header, any
//! case; GET/DELETE http spans included), **grouped by client identity** (clientInfo
//! name+version, else user agent; plus source address).
//!
//! **One finding per client**, with the instances hit (`details.per_instance`: requests and
//! 404/400 answers per instance), the sessions used, the protocol era split, and sample
//! traces (404/400 answers first).
//!
//! **Severity**:
//! - `critical`: legacy-era requests with a session got 404 (the session lives on another
//!   instance: the client is failing now, typically behind a non-sticky balancer);
//! - `warning`: legacy-era requests with a session (the client needs sticky sessions);
//! - `info`: only modern-era requests carry the header (2026-07-28 servers ignore it; a
//!   leftover in the client, harmless but worth cleaning).
//!
//! **Counts**: `requests`, `legacy_requests`, `modern_requests`, `status_404`, `status_400`,
//! `status_4xx`, `sessions` (distinct session ids).

use super::{ClientCols, GroupFinding, Seen, de_count_map, sorted};
use crate::clickhouse::{Db, de_u64};
use crate::config::{Config, Range};
use crate::finding::{Finding, RuleId, Severity, Subject};
use anyhow::Result;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One row per client identity.
pub const SQL: &str = "
SELECT @client_cols@,
  count() AS requests,
  countIf(@era@ = 'legacy') AS legacy_requests,
  countIf(@era@ != 'legacy') AS modern_requests,
  countIf(@era@ = 'legacy' AND @status@ = 404) AS legacy_404,
  countIf(@status@ = 404) AS status_404,
  countIf(@status@ = 400) AS status_400,
  countIf(@status@ >= 400 AND @status@ < 500) AS status_4xx,
  uniqExact(@sid@) AS sessions,
  sumMap(map(toString(@instance@), toUInt64(1))) AS per_instance,
  sumMap(map(toString(@instance@), toUInt64(@status@ = 404))) AS per_instance_404,
  sumMap(map(toString(@instance@), toUInt64(@status@ = 400))) AS per_instance_400,
  groupUniqArray(8)(@ua@) AS user_agents,
  groupUniqArray(16)(if(@method@ != '', toString(@method@), SpanAttributes['http.request.method'])) AS methods,
  min(@ts_ns@) AS first_ns, max(@ts_ns@) AS last_ns,
  groupArrayIf(10)(TraceId, @status@ >= 400) AS error_traces,
  groupArray(10)(TraceId) AS traces
FROM @from_clients@
WHERE @range@ AND @sid@ != ''
GROUP BY client_name, client_version, client_ua, client_address
ORDER BY requests DESC, client_name, client_ua, client_address
";

/// A row of [`SQL`].
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct Row {
    #[serde(flatten)]
    pub client: ClientCols,
    #[serde(deserialize_with = "de_u64")]
    pub requests: u64,
    #[serde(deserialize_with = "de_u64")]
    pub legacy_requests: u64,
    #[serde(deserialize_with = "de_u64")]
    pub modern_requests: u64,
    #[serde(deserialize_with = "de_u64")]
    pub legacy_404: u64,
    #[serde(deserialize_with = "de_u64")]
    pub status_404: u64,
    #[serde(deserialize_with = "de_u64")]
    pub status_400: u64,
    #[serde(deserialize_with = "de_u64")]
    pub status_4xx: u64,
    #[serde(deserialize_with = "de_u64")]
    pub sessions: u64,
    #[serde(deserialize_with = "de_count_map")]
    pub per_instance: BTreeMap<String, u64>,
    #[serde(deserialize_with = "de_count_map")]
    pub per_instance_404: BTreeMap<String, u64>,
    #[serde(deserialize_with = "de_count_map")]
    pub per_instance_400: BTreeMap<String, u64>,
    pub user_agents: Vec<String>,
    pub methods: Vec<String>,
    pub error_traces: Vec<String>,
    #[serde(flatten)]
    pub seen: Seen,
}

/// Turns rows into findings (pure).
pub fn findings(rows: &[Row], cfg: &Config) -> Vec<Finding> {
    rows.iter()
        .map(|r| {
            let severity = if r.legacy_404 > 0 {
                Severity::Critical
            } else if r.legacy_requests > 0 {
                Severity::Warning
            } else {
                Severity::Info
            };
            let client = r.client.client(&r.user_agents);
            let instances: Vec<String> = r.per_instance.keys().cloned().collect();
            let per_instance: BTreeMap<&String, serde_json::Value> = r
                .per_instance
                .iter()
                .map(|(i, n)| {
                    (
                        i,
                        serde_json::json!({
                            "requests": n,
                            "status_404": r.per_instance_404.get(i).copied().unwrap_or(0),
                            "status_400": r.per_instance_400.get(i).copied().unwrap_or(0),
                        }),
                    )
                })
                .collect();
            let summary = match severity {
                Severity::Critical => format!(
                    "{} sent Mcp-Session-Id on {} requests; {} got 404 (session on another instance)",
                    client.label(),
                    r.requests,
                    r.status_404
                ),
                Severity::Warning => format!(
                    "{} still uses sessions: {} requests with Mcp-Session-Id on {} instance(s)",
                    client.label(),
                    r.requests,
                    instances.len()
                ),
                Severity::Info => format!(
                    "{} sends an (ignored) Mcp-Session-Id on {} modern requests",
                    client.label(),
                    r.requests
                ),
            };
            GroupFinding {
                rule: RuleId::SessionIdStillSent,
                severity,
                summary,
                subject: Subject { client: Some(client), instances: instances.clone(), ..Subject::default() },
                count: r.requests,
                counts: &[
                    ("requests", r.requests),
                    ("legacy_requests", r.legacy_requests),
                    ("modern_requests", r.modern_requests),
                    ("status_404", r.status_404),
                    ("status_400", r.status_400),
                    ("status_4xx", r.status_4xx),
                    ("sessions", r.sessions),
                ],
                details: serde_json::json!({
                    "per_instance": per_instance,
                    "user_agents": sorted(&r.user_agents),
                    "methods": sorted(&r.methods),
                }),
            }
            .build(&r.seen, &r.error_traces, cfg)
        })
        .collect()
}

/// Runs the rule.
///
/// # Errors
/// Query failure.
pub async fn run(db: &Db, range: &Range, cfg: &Config) -> Result<Vec<Finding>> {
    let rows: Vec<Row> = db
        .fetch(super::query(db, SQL, range.since_ns, range.until_ns, cfg)?)
        .await?;
    Ok(findings(&rows, cfg))
}
