//! `initialize_still_called`: clients that still run the legacy `initialize` handshake.
//!
//! **Selects** request spans with `mcp.method.name = 'initialize'` in range, **one finding per
//! client identity**. 2026-07-28 has no handshake: a legacy-era `initialize` (no modern
//! `MCP-Protocol-Version`) means the client speaks 2025-11-25 or older and will keep a
//! session; a modern-era `initialize` (2026 headers) is a confused client, which a
//! 2026-07-28 server answers with 404 `-32601` (Method not found).
//!
//! **Severity**: `warning` (the client depends on the handshake/session; in itself the call
//! works on a dual-era server). **Counts**: `requests`, `legacy_requests`,
//! `modern_requests`, `sessions_minted` (answers that set a new `Mcp-Session-Id`),
//! `status_4xx`, `rpc_errors`. **Details**: `instances`, `protocol_versions`,
//! `user_agents`.

use super::{ClientCols, GroupFinding, Seen, sorted};
use crate::clickhouse::{Db, de_u64};
use crate::config::{Config, Range};
use crate::finding::{Finding, RuleId, Severity, Subject};
use anyhow::Result;
use serde::Deserialize;

/// One row per client identity.
pub const SQL: &str = "
SELECT @client_cols@,
  count() AS requests,
  countIf(@era@ = 'legacy') AS legacy_requests,
  countIf(@era@ != 'legacy') AS modern_requests,
  countIf(@sminted@ != '') AS sessions_minted,
  countIf(@status@ >= 400 AND @status@ < 500) AS status_4xx,
  countIf(@rpc@ != '') AS rpc_errors,
  groupUniqArray(64)(toString(@instance@)) AS instances,
  groupUniqArray(8)(SpanAttributes['mcp.protocol.version']) AS protocol_versions,
  groupUniqArray(8)(@ua@) AS user_agents,
  min(@ts_ns@) AS first_ns, max(@ts_ns@) AS last_ns,
  groupArray(10)(TraceId) AS traces
FROM @from_clients@
WHERE @range@ AND @method@ = 'initialize'
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
    pub sessions_minted: u64,
    #[serde(deserialize_with = "de_u64")]
    pub status_4xx: u64,
    #[serde(deserialize_with = "de_u64")]
    pub rpc_errors: u64,
    pub instances: Vec<String>,
    pub protocol_versions: Vec<String>,
    pub user_agents: Vec<String>,
    #[serde(flatten)]
    pub seen: Seen,
}

/// Turns rows into findings (pure).
pub fn findings(rows: &[Row], cfg: &Config) -> Vec<Finding> {
    rows.iter()
        .map(|r| {
            let client = r.client.client(&r.user_agents);
            let instances = sorted(&r.instances);
            let summary = if r.legacy_requests > 0 {
                format!(
                    "{} still runs the initialize handshake ({} times, {} sessions minted)",
                    client.label(),
                    r.requests,
                    r.sessions_minted
                )
            } else {
                format!(
                    "{} sends initialize with 2026-07-28 headers ({} times; answered 4xx {} times)",
                    client.label(),
                    r.requests,
                    r.status_4xx
                )
            };
            GroupFinding {
                rule: RuleId::InitializeStillCalled,
                severity: Severity::Warning,
                summary,
                subject: Subject {
                    client: Some(client),
                    instances: instances.clone(),
                    method: Some("initialize".into()),
                    ..Subject::default()
                },
                count: r.requests,
                counts: &[
                    ("requests", r.requests),
                    ("legacy_requests", r.legacy_requests),
                    ("modern_requests", r.modern_requests),
                    ("sessions_minted", r.sessions_minted),
                    ("status_4xx", r.status_4xx),
                    ("rpc_errors", r.rpc_errors),
                ],
                details: serde_json::json!({
                    "instances": instances,
                    "protocol_versions": sorted(&r.protocol_versions),
                    "user_agents": sorted(&r.user_agents),
                }),
            }
            .build(&r.seen, &[], cfg)
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
