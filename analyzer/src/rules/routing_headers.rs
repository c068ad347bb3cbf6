//! `routing_headers_missing` and `routing_header_mismatch`: 2026-07-28 requests without, or
//! with disagreeing, `Mcp-Method` / `Mcp-Name` headers (spec 2026-07-28 transports §"Request
//! Metadata" and §"Server Validation": servers MUST answer 400 `-32020`).
//!
//! **Selects** modern-era spans (`mcptap.era = 'modern'`) in range whose collector verdict
//! `mcptap.routing.method_status` or `mcptap.routing.name_status` is `missing`
//! (`routing_headers_missing`) or `mismatch` (`routing_header_mismatch`; a
//! `mcptap.routing.protocol_version_status = 'mismatch'`, header vs `_meta` version, also
//! counts there). Legacy-era and batch requests are `not_required` and never match;
//! notifications without the header are `not_required` too.
//!
//! **One finding per (client, MCP method).** **Severity**: `warning` (a compliant server or
//! a header-routing gateway rejects or misroutes these). **Counts**: `requests`,
//! `method_header`, `name_header`, `protocol_version_header` (mismatch only),
//! `rejected_400`, `header_mismatch_errors` (`-32020`). **Details**: `instances`,
//! `sent_mcp_method`, `sent_mcp_name` (header values as sent), `tools`, `status_codes`.

use super::{ClientCols, GroupFinding, Seen, sorted};
use crate::clickhouse::{Db, de_u64};
use crate::config::{Config, Range};
use crate::finding::{Finding, RuleId, Severity, Subject};
use anyhow::Result;
use serde::Deserialize;

/// Which of the two rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `routing_headers_missing`: status `missing`.
    Missing,
    /// `routing_header_mismatch`: status `mismatch`.
    Mismatch,
}

/// One row per (client, method); `{status:String}` is `missing` or `mismatch`.
pub const SQL: &str = "
SELECT @client_cols@, toString(@method@) AS method,
  count() AS requests,
  countIf(@rmethod@ = {status:String}) AS method_header,
  countIf(@rname@ = {status:String}) AS name_header,
  countIf({status:String} = 'mismatch' AND SpanAttributes['mcptap.routing.protocol_version_status'] = 'mismatch') AS protocol_version_header,
  countIf(@status@ = 400) AS rejected_400,
  countIf(@rpc@ = '-32020') AS header_mismatch_errors,
  groupUniqArray(64)(toString(@instance@)) AS instances,
  groupUniqArray(8)(SpanAttributes['mcptap.routing.mcp_method']) AS sent_mcp_method,
  groupUniqArray(8)(SpanAttributes['mcptap.routing.mcp_name']) AS sent_mcp_name,
  groupUniqArray(8)(toString(@tool@)) AS tools,
  groupUniqArray(8)(toString(@status@)) AS status_codes,
  groupUniqArray(8)(@ua@) AS user_agents,
  min(@ts_ns@) AS first_ns, max(@ts_ns@) AS last_ns,
  groupArray(10)(TraceId) AS traces
FROM @from_clients@
WHERE @range@ AND @era@ = 'modern'
  AND (@rmethod@ = {status:String} OR @rname@ = {status:String}
       OR ({status:String} = 'mismatch' AND SpanAttributes['mcptap.routing.protocol_version_status'] = 'mismatch'))
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
    pub method_header: u64,
    #[serde(deserialize_with = "de_u64")]
    pub name_header: u64,
    #[serde(deserialize_with = "de_u64")]
    pub protocol_version_header: u64,
    #[serde(deserialize_with = "de_u64")]
    pub rejected_400: u64,
    #[serde(deserialize_with = "de_u64")]
    pub header_mismatch_errors: u64,
    pub instances: Vec<String>,
    pub sent_mcp_method: Vec<String>,
    pub sent_mcp_name: Vec<String>,
    pub tools: Vec<String>,
    pub status_codes: Vec<String>,
    pub user_agents: Vec<String>,
    #[serde(flatten)]
    pub seen: Seen,
}

/// Turns rows into findings (pure).
pub fn findings(rows: &[Row], cfg: &Config, kind: Kind) -> Vec<Finding> {
    rows.iter()
        .map(|r| {
            let client = r.client.client(&r.user_agents);
            let (rule, what) = match kind {
                Kind::Missing => (RuleId::RoutingHeadersMissing, "without required"),
                Kind::Mismatch => (RuleId::RoutingHeaderMismatch, "with disagreeing"),
            };
            let mut headers = Vec::new();
            if r.method_header > 0 {
                headers.push("Mcp-Method");
            }
            if r.name_header > 0 {
                headers.push("Mcp-Name");
            }
            if r.protocol_version_header > 0 {
                headers.push("MCP-Protocol-Version");
            }
            let tools = sorted(&r.tools);
            GroupFinding {
                rule,
                severity: Severity::Warning,
                summary: format!(
                    "{} sent {} {} request(s) {what} {} ({} rejected with 400)",
                    client.label(),
                    r.requests,
                    r.method,
                    headers.join("/"),
                    r.rejected_400
                ),
                subject: Subject {
                    client: Some(client),
                    instances: sorted(&r.instances),
                    method: Some(r.method.clone()).filter(|m| !m.is_empty()),
                    tool: if tools.len() == 1 {
                        tools.first().cloned()
                    } else {
                        None
                    },
                    ..Subject::default()
                },
                count: r.requests,
                counts: &[
                    ("requests", r.requests),
                    ("method_header", r.method_header),
                    ("name_header", r.name_header),
                    ("protocol_version_header", r.protocol_version_header),
                    ("rejected_400", r.rejected_400),
                    ("header_mismatch_errors", r.header_mismatch_errors),
                ],
                details: serde_json::json!({
                    "instances": sorted(&r.instances),
                    "sent_mcp_method": sorted(&r.sent_mcp_method),
                    "sent_mcp_name": sorted(&r.sent_mcp_name),
                    "tools": tools,
                    "status_codes": sorted(&r.status_codes),
                }),
            }
            .build(&r.seen, &[], cfg)
        })
        .collect()
}

/// Runs the rule of `kind`.
///
/// # Errors
/// Query failure.
pub async fn run(db: &Db, range: &Range, cfg: &Config, kind: Kind) -> Result<Vec<Finding>> {
    let status = match kind {
        Kind::Missing => "missing",
        Kind::Mismatch => "mismatch",
    };
    let q = super::query(db, SQL, range.since_ns, range.until_ns, cfg)?.param("status", status);
    let rows: Vec<Row> = db.fetch(q).await?;
    Ok(findings(&rows, cfg, kind))
}
