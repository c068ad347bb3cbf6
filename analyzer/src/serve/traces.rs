//! Drill-down: the spans of one trace, read from ClickHouse with the trace id bound as a
//! parameter (`{trace_id:String}`), never formatted into SQL.

use crate::clickhouse::{Db, de_i64, de_u64};
use crate::timeutil::format_rfc3339_ns;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most spans returned for one trace.
pub const MAX_SPANS: u64 = 500;

/// Longest attribute value returned (longer ones are cut, with `…`).
const MAX_ATTR_LEN: usize = 512;

/// The spans of a trace, oldest first.
pub const SQL: &str = "
SELECT lower(TraceId) AS trace_id, lower(SpanId) AS span_id, lower(ParentSpanId) AS parent_span_id,
  SpanName AS name, ServiceName AS service, toString(@instance@) AS instance,
  @ts_ns@ AS start_ns, Duration AS duration_ns,
  toString(StatusCode) AS status_code, StatusMessage AS status_message,
  toString(@method@) AS method, toString(@tool@) AS tool, toUInt32(@status@) AS http_status,
  toString(@rpc@) AS rpc_code, toString(@era@) AS era, toString(@sid@) AS session_id,
  toString(@cname@) AS client_name, toString(@cver@) AS client_version, @addr@ AS client_address,
  SpanAttributes AS attributes
FROM @from@
WHERE TraceId = {trace_id:String}
ORDER BY Timestamp, SpanId
LIMIT {max_spans:UInt64}
";

/// One span row.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct SpanRow {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub service: String,
    pub instance: String,
    #[serde(deserialize_with = "de_i64")]
    pub start_ns: i64,
    #[serde(deserialize_with = "de_u64")]
    pub duration_ns: u64,
    pub status_code: String,
    pub status_message: String,
    pub method: String,
    pub tool: String,
    #[serde(deserialize_with = "de_u64")]
    pub http_status: u64,
    pub rpc_code: String,
    pub era: String,
    pub session_id: String,
    pub client_name: String,
    pub client_version: String,
    pub client_address: String,
    pub attributes: BTreeMap<String, String>,
}

/// A span as the API returns it (`GET /api/v1/traces/{trace_id}`).
#[derive(Debug, Clone, Serialize)]
pub struct Span {
    /// The row (attribute values cut at 512 characters).
    #[serde(flatten)]
    pub row: SpanRow,
    /// `start_ns` as RFC 3339.
    pub start: String,
    /// `duration_ns` in ms.
    pub duration_ms: f64,
}

/// Normalises a trace id: 1..=32 hex digits, lowercased. `None` for anything else.
pub fn normalize_trace_id(s: &str) -> Option<String> {
    (!s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| s.to_ascii_lowercase())
}

fn cut(s: &mut String) {
    if s.chars().count() > MAX_ATTR_LEN {
        let mut t: String = s.chars().take(MAX_ATTR_LEN - 1).collect();
        t.push('…');
        *s = t;
    }
}

/// The spans of `trace_id` (already normalised), oldest first, at most [`MAX_SPANS`]. The
/// stored id may be upper- or lowercase: both spellings are looked up.
///
/// # Errors
/// Query failure.
pub async fn spans(db: &Db, trace_id: &str) -> Result<Vec<Span>> {
    let mut rows: Vec<SpanRow> = db
        .fetch(
            db.query(SQL, 0, 0)?
                .param("trace_id", trace_id)
                .param("max_spans", MAX_SPANS),
        )
        .await?;
    if rows.is_empty() {
        rows = db
            .fetch(
                db.query(SQL, 0, 0)?
                    .param("trace_id", trace_id.to_ascii_uppercase())
                    .param("max_spans", MAX_SPANS),
            )
            .await?;
    }
    Ok(rows
        .into_iter()
        .map(|mut row| {
            for v in row.attributes.values_mut() {
                cut(v);
            }
            Span {
                start: format_rfc3339_ns(row.start_ns),
                duration_ms: row.duration_ns as f64 / 1e6,
                row,
            }
        })
        .collect())
}
