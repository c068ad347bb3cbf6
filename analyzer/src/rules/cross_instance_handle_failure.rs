//! `cross_instance_handle_failure`: a handle minted on one instance, later used in a call on
//! **another** instance that failed.
//!
//! **Definition.** A *use* is an entry `key=value` of `mcptap.handles.used` on a span in range
//! whose call failed: HTTP status >= 400, or a JSON-RPC error (`rpc.response.status_code`
//! set), or `error.type = 'tool_error'` (`isError: true`). Its *mint* is the **latest** span
//! with the same `key=value` in `mcptap.handles.minted` that started at or before the use,
//! looked up from `since - handle_lookback` (default 24 h) on (ClickHouse `ASOF JOIN`). The
//! pair is reported when the mint's `service.instance.id` differs from the use's. A failure on
//! the minting instance itself (e.g. a basket already checked out) is not reported.
//!
//! **Findings** are grouped by (client, tool, handle key, minted-on instance, used-on
//! instance); `details.examples` lists up to `samples` individual failures with the handle
//! value, both instances, both trace ids (and span ids), the HTTP status, the JSON-RPC code,
//! `error.type` and the span status message.
//!
//! **Severity**: `critical` (calls are failing now because state is instance-local).
//! **Counts**: `failures`, `http_4xx`, `http_5xx`, `rpc_errors`, `tool_errors`.

use super::{ClientCols, counts};
use crate::clickhouse::{Db, de_i64, de_u64};
use crate::config::{Config, Range};
use crate::finding::{Finding, RuleId, Severity, Subject};
use crate::timeutil::format_rfc3339_ns;
use anyhow::Result;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One row per failed use whose latest mint was on another instance.
pub const SQL: &str = "
WITH
used AS (
  SELECT h, toString(@instance@) AS used_on, @ts_ns@ AS used_ns, TraceId AS used_trace,
    SpanId AS used_span, @client_cols@, toString(@tool@) AS tool, toString(@method@) AS method,
    toUInt32(@status@) AS http_status, toString(@rpc@) AS rpc_code, toString(@errtype@) AS error_type,
    StatusMessage AS status_message
  FROM @from_clients@
  ARRAY JOIN @hused@ AS h
  WHERE @range@ AND (@status@ >= 400 OR @rpc@ != '' OR @errtype@ = 'tool_error')
),
minted AS (
  SELECT h, toString(@instance@) AS minted_on, @ts_ns@ AS minted_ns, TraceId AS minted_trace,
    SpanId AS minted_span, toString(@tool@) AS minted_tool
  FROM @from@
  ARRAY JOIN @hminted@ AS h
  WHERE Timestamp >= fromUnixTimestamp64Nano({mint_since_ns:Int64})
    AND Timestamp < fromUnixTimestamp64Nano({until_ns:Int64})
    AND @one_leg@
    AND h IN (SELECT h FROM used)
)
SELECT u.h AS handle, u.used_on AS used_on, u.used_ns AS used_ns, u.used_trace AS used_trace,
  u.used_span AS used_span, u.client_name AS client_name, u.client_version AS client_version,
  u.client_ua AS client_ua, u.client_address AS client_address, u.tool AS tool, u.method AS method,
  u.http_status AS http_status, u.rpc_code AS rpc_code, u.error_type AS error_type,
  u.status_message AS status_message, m.minted_on AS minted_on, m.minted_ns AS minted_ns,
  m.minted_trace AS minted_trace, m.minted_span AS minted_span, m.minted_tool AS minted_tool
FROM used AS u
ASOF INNER JOIN minted AS m ON u.h = m.h AND u.used_ns >= m.minted_ns
WHERE m.minted_on != u.used_on
ORDER BY used_ns, used_trace, handle
";

/// A row of [`SQL`].
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct Row {
    pub handle: String,
    pub used_on: String,
    #[serde(deserialize_with = "de_i64")]
    pub used_ns: i64,
    pub used_trace: String,
    pub used_span: String,
    #[serde(flatten)]
    pub client: ClientCols,
    pub tool: String,
    pub method: String,
    #[serde(deserialize_with = "de_u64")]
    pub http_status: u64,
    pub rpc_code: String,
    pub error_type: String,
    pub status_message: String,
    pub minted_on: String,
    #[serde(deserialize_with = "de_i64")]
    pub minted_ns: i64,
    pub minted_trace: String,
    pub minted_span: String,
    pub minted_tool: String,
}

/// One failed use with its mint, as `details.examples[]` shows it.
fn example(r: &Row) -> serde_json::Value {
    serde_json::json!({
        "handle": r.handle,
        "tool": r.tool,
        "method": r.method,
        "minted_on": r.minted_on,
        "minted_at": format_rfc3339_ns(r.minted_ns),
        "minted_trace_id": r.minted_trace,
        "minted_span_id": r.minted_span,
        "minted_by_tool": r.minted_tool,
        "used_on": r.used_on,
        "used_at": format_rfc3339_ns(r.used_ns),
        "used_trace_id": r.used_trace,
        "used_span_id": r.used_span,
        "http_status": r.http_status,
        "rpc_error_code": r.rpc_code,
        "error_type": r.error_type,
        "error": r.status_message,
    })
}

/// Turns rows into findings (pure): grouped by (client, tool, handle key, minted_on, used_on).
pub fn findings(rows: &[Row], cfg: &Config) -> Vec<Finding> {
    type Key = (ClientCols, String, String, String, String);
    let mut groups: BTreeMap<Key, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        let key_name = r
            .handle
            .split_once('=')
            .map_or(r.handle.as_str(), |(k, _)| k)
            .to_string();
        groups
            .entry((
                r.client.clone(),
                r.tool.clone(),
                key_name,
                r.minted_on.clone(),
                r.used_on.clone(),
            ))
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|((cc, tool, hkey, minted_on, used_on), rs)| {
            let client = cc.client(&[]);
            let n = rs.len() as u64;
            let c = |f: &dyn Fn(&Row) -> bool| rs.iter().filter(|r| f(r)).count() as u64;
            let first = rs.iter().map(|r| r.used_ns).min().unwrap_or(0);
            let last = rs.iter().map(|r| r.used_ns).max().unwrap_or(0);
            let examples: Vec<serde_json::Value> =
                rs.iter().take(cfg.samples.max(1)).map(|r| example(r)).collect();
            let mut traces = Vec::new();
            for r in &rs {
                for t in [&r.used_trace, &r.minted_trace] {
                    if !t.is_empty() && !traces.contains(t) && traces.len() < cfg.samples.max(2) {
                        traces.push(t.clone());
                    }
                }
            }
            let tool_label = if tool.is_empty() { "a call".to_string() } else { tool.clone() };
            Finding {
                rule: RuleId::CrossInstanceHandleFailure,
                severity: Severity::Critical,
                summary: format!(
                    "{tool_label} failed {n}x on {used_on} with a {hkey} minted on {minted_on} ({})",
                    client.label()
                ),
                subject: Subject {
                    client: Some(client),
                    instance: Some(used_on.clone()),
                    instances: {
                        let mut v = vec![minted_on.clone(), used_on.clone()];
                        v.sort();
                        v
                    },
                    method: rs.first().map(|r| r.method.clone()).filter(|m| !m.is_empty()),
                    tool: Some(tool.clone()).filter(|t| !t.is_empty()),
                    handle: Some(hkey.clone()),
                },
                count: n,
                counts: counts(&[
                    ("failures", n),
                    ("http_4xx", c(&|r| (400..500).contains(&r.http_status))),
                    ("http_5xx", c(&|r| r.http_status >= 500)),
                    ("rpc_errors", c(&|r| !r.rpc_code.is_empty())),
                    ("tool_errors", c(&|r| r.error_type == "tool_error")),
                ]),
                first_seen: format_rfc3339_ns(first),
                last_seen: format_rfc3339_ns(last),
                sample_trace_ids: traces,
                details: serde_json::json!({
                    "minted_on": minted_on,
                    "used_on": used_on,
                    "examples": examples,
                }),
            }
        })
        .collect()
}

/// Runs the rule.
///
/// # Errors
/// Query failure.
pub async fn run(db: &Db, range: &Range, cfg: &Config) -> Result<Vec<Finding>> {
    let q = super::query(db, SQL, range.since_ns, range.until_ns, cfg)?.param(
        "mint_since_ns",
        range.since_ns.saturating_sub(cfg.handle_lookback_ns),
    );
    let rows: Vec<Row> = db.fetch(q).await?;
    Ok(findings(&rows, cfg))
}
