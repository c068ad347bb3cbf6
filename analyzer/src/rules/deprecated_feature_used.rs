//! `deprecated_feature_used`: Roots, Sampling and Logging, deprecated by SEP-2577 in
//! 2026-07-28 (still functional; earliest removal in the first revision on or after
//! 2027-07-28).
//!
//! **Signals** per span (a span may give several), `feature:signal`:
//! - `logging:method` — a `logging/setLevel` request (removed in 2026-07-28);
//! - `logging:notification` — the span's SSE stream carried `notifications/message`;
//! - `roots:method` — `roots/list` or `notifications/roots/list_changed` sent to the server;
//! - `roots:server_request` — the server sent `roots/list` on the span's stream;
//! - `sampling:method` — `sampling/createMessage` sent to the server;
//! - `sampling:server_request` — the server sent `sampling/createMessage` on the stream;
//! - `roots:capability`, `sampling:capability` — a **modern-era** request declared the
//!   `roots` / `sampling` client capability (`mcptap.client.capabilities`). Legacy clients
//!   declaring them are normal for their version and are covered by the session rules.
//!
//! Not visible to the collector, so not covered: `_meta` `logLevel` opt-in and MRTR
//! `inputRequests` asking for roots/sampling.
//!
//! **One finding per (client, feature).** **Severity**: `info`. **Counts**: `spans`,
//! `declared`, `method_calls`, `server_requests`, `notifications`, `modern_spans`.

use super::{ClientCols, GroupFinding, Seen, sorted};
use crate::clickhouse::{Db, de_u64};
use crate::config::{Config, Range};
use crate::finding::{Finding, RuleId, Severity, Subject};
use anyhow::Result;
use serde::Deserialize;

/// One row per (client, feature).
pub const SQL: &str = "
SELECT @client_cols@, splitByChar(':', fs)[1] AS feature,
  count() AS spans,
  countIf(splitByChar(':', fs)[2] = 'capability') AS declared,
  countIf(splitByChar(':', fs)[2] = 'method') AS method_calls,
  countIf(splitByChar(':', fs)[2] = 'server_request') AS server_requests,
  countIf(splitByChar(':', fs)[2] = 'notification') AS notifications,
  countIf(@era@ = 'modern') AS modern_spans,
  groupUniqArray(64)(toString(@instance@)) AS instances,
  groupUniqArray(8)(@ua@) AS user_agents,
  min(@ts_ns@) AS first_ns, max(@ts_ns@) AS last_ns,
  groupArray(10)(TraceId) AS traces
FROM @from_clients@
ARRAY JOIN arrayFilter(x -> x != '', [
  if(@method@ = 'logging/setLevel', 'logging:method', ''),
  if(has(Events.Name, 'notifications/message'), 'logging:notification', ''),
  if(@method@ IN ('roots/list', 'notifications/roots/list_changed'), 'roots:method', ''),
  if(has(Events.Name, 'roots/list'), 'roots:server_request', ''),
  if(@method@ = 'sampling/createMessage', 'sampling:method', ''),
  if(has(Events.Name, 'sampling/createMessage'), 'sampling:server_request', ''),
  if(@era@ = 'modern' AND has(JSONExtract(SpanAttributes['mcptap.client.capabilities'], 'Array(String)'), 'roots'), 'roots:capability', ''),
  if(@era@ = 'modern' AND has(JSONExtract(SpanAttributes['mcptap.client.capabilities'], 'Array(String)'), 'sampling'), 'sampling:capability', '')
]) AS fs
WHERE @range@
  AND (@method@ IN ('logging/setLevel', 'roots/list', 'notifications/roots/list_changed', 'sampling/createMessage')
       OR notEmpty(Events.Name)
       OR (@era@ = 'modern' AND (position(SpanAttributes['mcptap.client.capabilities'], '\"roots\"') > 0
                                 OR position(SpanAttributes['mcptap.client.capabilities'], '\"sampling\"') > 0)))
GROUP BY client_name, client_version, client_ua, client_address, feature
ORDER BY spans DESC, client_name, client_ua, client_address, feature
";

/// A row of [`SQL`].
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct Row {
    #[serde(flatten)]
    pub client: ClientCols,
    pub feature: String,
    #[serde(deserialize_with = "de_u64")]
    pub spans: u64,
    #[serde(deserialize_with = "de_u64")]
    pub declared: u64,
    #[serde(deserialize_with = "de_u64")]
    pub method_calls: u64,
    #[serde(deserialize_with = "de_u64")]
    pub server_requests: u64,
    #[serde(deserialize_with = "de_u64")]
    pub notifications: u64,
    #[serde(deserialize_with = "de_u64")]
    pub modern_spans: u64,
    pub instances: Vec<String>,
    pub user_agents: Vec<String>,
    #[serde(flatten)]
    pub seen: Seen,
}

/// Turns rows into findings (pure).
pub fn findings(rows: &[Row], cfg: &Config) -> Vec<Finding> {
    rows.iter()
        .map(|r| {
            let client = r.client.client(&r.user_agents);
            GroupFinding {
                rule: RuleId::DeprecatedFeatureUsed,
                severity: Severity::Info,
                summary: format!(
                    "{} uses deprecated {} ({} span(s): {} declared, {} calls, {} server requests, {} notifications)",
                    client.label(),
                    r.feature,
                    r.spans,
                    r.declared,
                    r.method_calls,
                    r.server_requests,
                    r.notifications
                ),
                subject: Subject { client: Some(client), instances: sorted(&r.instances), ..Subject::default() },
                count: r.spans,
                counts: &[
                    ("spans", r.spans),
                    ("declared", r.declared),
                    ("method_calls", r.method_calls),
                    ("server_requests", r.server_requests),
                    ("notifications", r.notifications),
                    ("modern_spans", r.modern_spans),
                ],
                details: serde_json::json!({ "feature": r.feature, "instances": sorted(&r.instances) }),
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
