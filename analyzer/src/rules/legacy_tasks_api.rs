//! `legacy_tasks_api`: the 2025-11-25 experimental tasks API, removed by the 2026-07-28 Tasks
//! extension (SEP-2663): `tasks/result` and `tasks/list` requests, and task augmentation of a
//! request through `params.task` (`mcptap.task.legacy_requested = true`).
//!
//! **One finding per (client, method).** **Severity**: `warning` (a 2026-07-28 server answers
//! `tasks/result`/`tasks/list` with `-32601` and ignores `params.task`). **Counts**:
//! `requests`, `tasks_result`, `tasks_list`, `task_augmented`, `modern_requests`,
//! `errors` (4xx/5xx or JSON-RPC error). **Details**: `instances`.

use super::{ClientCols, GroupFinding, Seen, sorted};
use crate::clickhouse::{Db, de_u64};
use crate::config::{Config, Range};
use crate::finding::{Finding, RuleId, Severity, Subject};
use anyhow::Result;
use serde::Deserialize;

/// One row per (client, method).
pub const SQL: &str = "
SELECT @client_cols@, toString(@method@) AS method,
  count() AS requests,
  countIf(@method@ = 'tasks/result') AS tasks_result,
  countIf(@method@ = 'tasks/list') AS tasks_list,
  countIf(SpanAttributes['mcptap.task.legacy_requested'] = 'true') AS task_augmented,
  countIf(@era@ = 'modern') AS modern_requests,
  countIf(@status@ >= 400 OR @rpc@ != '') AS errors,
  groupUniqArray(64)(toString(@instance@)) AS instances,
  groupUniqArray(8)(@ua@) AS user_agents,
  min(@ts_ns@) AS first_ns, max(@ts_ns@) AS last_ns,
  groupArray(10)(TraceId) AS traces
FROM @from_clients@
WHERE @range@
  AND (@method@ IN ('tasks/result', 'tasks/list') OR SpanAttributes['mcptap.task.legacy_requested'] = 'true')
GROUP BY client_name, client_version, client_ua, client_address, method
ORDER BY requests DESC, client_name, client_ua, client_address, method
";

/// A row of [`SQL`].
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct Row {
    #[serde(flatten)]
    pub client: ClientCols,
    pub method: String,
    #[serde(deserialize_with = "de_u64")]
    pub requests: u64,
    #[serde(deserialize_with = "de_u64")]
    pub tasks_result: u64,
    #[serde(deserialize_with = "de_u64")]
    pub tasks_list: u64,
    #[serde(deserialize_with = "de_u64")]
    pub task_augmented: u64,
    #[serde(deserialize_with = "de_u64")]
    pub modern_requests: u64,
    #[serde(deserialize_with = "de_u64")]
    pub errors: u64,
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
            let what = if r.task_augmented > 0 && r.tasks_result + r.tasks_list == 0 {
                format!("{} request(s) with params.task", r.method)
            } else {
                r.method.clone()
            };
            GroupFinding {
                rule: RuleId::LegacyTasksApi,
                severity: Severity::Warning,
                summary: format!(
                    "{} uses the 2025-11-25 tasks API: {} x{}",
                    client.label(),
                    what,
                    r.requests
                ),
                subject: Subject {
                    client: Some(client),
                    instances: sorted(&r.instances),
                    method: Some(r.method.clone()).filter(|m| !m.is_empty()),
                    ..Subject::default()
                },
                count: r.requests,
                counts: &[
                    ("requests", r.requests),
                    ("tasks_result", r.tasks_result),
                    ("tasks_list", r.tasks_list),
                    ("task_augmented", r.task_augmented),
                    ("modern_requests", r.modern_requests),
                    ("errors", r.errors),
                ],
                details: serde_json::json!({ "instances": sorted(&r.instances) }),
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
