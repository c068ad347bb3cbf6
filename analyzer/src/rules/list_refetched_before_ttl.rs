//! `list_refetched_before_ttl`: clients that fetch a cacheable result again before the
//! `ttlMs` they were given has passed (2026-07-28 caching, `CacheableResult`).
//!
//! **Cacheable methods**: `tools/list`, `prompts/list`, `resources/list`,
//! `resources/templates/list`, `server/discover`, `resources/read` (per resource URI).
//!
//! **Definition.** Spans of those methods in range, ordered by start time per (client
//! identity, method, resource URI). A fetch is a *refetch before TTL* when the previous
//! fetch of the same series carried `mcptap.ttl_ms = T > 0` and this one started less than
//! `T` ms after the previous one started. `ttlMs` 0 or absent means "do not cache" and
//! never triggers. Limitations: the collector does not export pagination cursors, so a
//! paginated list (page 2 right after page 1) looks like a refetch when the pages carry a
//! TTL; clients sharing an identity and address (several processes behind one NAT) are
//! one series.
//!
//! **One finding per (client, method).** **Severity**: `info` (wasted load, not a
//! blocker). **Counts**: `fetches` (refetches before TTL), `series` (distinct URIs for
//! `resources/read`). **Details**: `min_ttl_ms`, `max_ttl_ms`, `min_gap_ms`, `instances`.

use super::{ClientCols, GroupFinding, Seen, sorted};
use crate::clickhouse::{Db, de_u64};
use crate::config::{Config, Range};
use crate::finding::{Finding, RuleId, Severity, Subject};
use anyhow::Result;
use serde::Deserialize;

/// One row per (client, method).
pub const SQL: &str = "
SELECT client_name, client_version, client_ua, client_address, method,
  count() AS fetches,
  uniqExact(target) AS series,
  min(prev_ttl_ms) AS min_ttl_ms, max(prev_ttl_ms) AS max_ttl_ms,
  intDiv(min(ts - prev_ts), 1000000) AS min_gap_ms,
  groupUniqArray(64)(instance) AS instances,
  groupUniqArray(8)(ua) AS user_agents,
  min(ts) AS first_ns, max(ts) AS last_ns,
  groupArray(10)(trace) AS traces
FROM (
  SELECT @client_cols@, toString(@method@) AS method, SpanAttributes['mcp.resource.uri'] AS target,
    @ts_ns@ AS ts, TraceId AS trace, toString(@instance@) AS instance, @ua@ AS ua,
    lagInFrame(@ts_ns@, 1, toInt64(0)) OVER w AS prev_ts,
    lagInFrame(toInt64OrZero(SpanAttributes['mcptap.ttl_ms']), 1, toInt64(0)) OVER w AS prev_ttl_ms
  FROM @from_clients@
  WHERE @range@ AND @method@ IN ('tools/list', 'prompts/list', 'resources/list',
    'resources/templates/list', 'server/discover', 'resources/read')
  WINDOW w AS (PARTITION BY client_name, client_version, client_ua, client_address, method, target
               ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
)
WHERE prev_ts > 0 AND prev_ttl_ms > 0 AND ts - prev_ts < prev_ttl_ms * 1000000
GROUP BY client_name, client_version, client_ua, client_address, method
ORDER BY fetches DESC, client_name, client_ua, client_address, method
";

/// A row of [`SQL`].
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct Row {
    #[serde(flatten)]
    pub client: ClientCols,
    pub method: String,
    #[serde(deserialize_with = "de_u64")]
    pub fetches: u64,
    #[serde(deserialize_with = "de_u64")]
    pub series: u64,
    #[serde(deserialize_with = "de_u64")]
    pub min_ttl_ms: u64,
    #[serde(deserialize_with = "de_u64")]
    pub max_ttl_ms: u64,
    #[serde(deserialize_with = "de_u64")]
    pub min_gap_ms: u64,
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
                rule: RuleId::ListRefetchedBeforeTtl,
                severity: Severity::Info,
                summary: format!(
                    "{} refetched {} {} time(s) before its ttlMs ({}..{} ms) ran out (gap down to {} ms)",
                    client.label(),
                    r.method,
                    r.fetches,
                    r.min_ttl_ms,
                    r.max_ttl_ms,
                    r.min_gap_ms
                ),
                subject: Subject {
                    client: Some(client),
                    instances: sorted(&r.instances),
                    method: Some(r.method.clone()),
                    ..Subject::default()
                },
                count: r.fetches,
                counts: &[("fetches", r.fetches), ("series", r.series)],
                details: serde_json::json!({
                    "min_ttl_ms": r.min_ttl_ms,
                    "max_ttl_ms": r.max_ttl_ms,
                    "min_gap_ms": r.min_gap_ms,
                    "instances": sorted(&r.instances),
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
