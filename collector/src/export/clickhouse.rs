//! ClickHouse exporter: one `INSERT INTO <table> FORMAT RowBinary[WithNamesAndTypes]`
//! per [`Batch`], LZ4-compressed, into the OpenTelemetry Collector
//! clickhouseexporter's `otel_traces` layout (22 columns; see
//! `/work/shared/reference/otel-clickhouse-and-users.md` §4d and
//! `deploy/clickhouse/migrations/`).
//!
//! - Every insert carries the setting `insert_deduplication_token = Batch::token()`,
//!   so a batch sent twice (retry after a lost answer, spool replay, restart,
//!   replay of the same pcap) is stored once. For a non-replicated MergeTree this
//!   needs `non_replicated_deduplication_window` on the table (the migrations
//!   set it).
//! - Validation mode of the `clickhouse` crate stays on: the first insert runs
//!   `DESCRIBE TABLE` and checks the 22 columns by name and type, so a wrong
//!   table gives a clear `schema mismatch` error instead of garbage rows. The
//!   MATERIALIZED columns the migrations add are skipped by it (they have a
//!   default), so they do not get in the way.
//! - Errors are classified by [`classify`]: network errors, timeouts and the
//!   ClickHouse codes of overload or transient states are retryable; bad
//!   credentials, a missing table or database, a schema mismatch or a syntax
//!   error are fatal. An unknown code is retried [`UNKNOWN_CODE_ATTEMPTS`]
//!   times for the same batch, then treated as fatal, so one poison batch cannot
//!   stall the queue forever.

use super::{Batch, ExportError, Exporter};
use crate::otlp_json::{ResourceInfo, SCOPE_NAME};
use clickhouse::{Client, Row};
use mcptap_mcp::{AttrValue, Span, SpanStatus};
use serde::Serialize;
use std::time::Duration;

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ClickHouseConfig {
    /// `http://host:8123` (plain HTTP; https needs a TLS-enabled build).
    pub url: String,
    /// Database of the table (`--clickhouse-database`, default `default`).
    pub database: String,
    /// Traces table (`--clickhouse-table`, default `otel_traces`).
    pub table: String,
    /// User; `None`: the server's default user.
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Time limit of one insert (schema check + sending + server answer).
    pub timeout: Duration,
}

/// How many times an error with an unknown ClickHouse code is retried for one
/// batch before it is treated as fatal.
pub const UNKNOWN_CODE_ATTEMPTS: u32 = 3;

/// Checks that `url` is an `http://` or `https://` URL with a host.
/// Errors: a message naming the flag and what is wrong.
pub fn validate_url(url: &str) -> Result<(), String> {
    let rest = if let Some(r) = url.strip_prefix("http://") {
        r
    } else if url.starts_with("https://") {
        return Err(format!(
            "--clickhouse-url {url:?}: https is not supported by this build (plain http only; \
             terminate TLS in a proxy or use the ClickHouse HTTP port)"
        ));
    } else {
        return Err(format!(
            "--clickhouse-url {url:?} is not a URL: expected http://HOST:PORT (e.g. http://127.0.0.1:8123)"
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_only = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host_only.is_empty() || host_only.starts_with(':') || host_only.contains(' ') {
        return Err(format!(
            "--clickhouse-url {url:?}: no host (expected http://HOST:PORT)"
        ));
    }
    if let Some((_, port)) = host_only
        .rsplit_once(':')
        .filter(|_| !host_only.ends_with(']'))
        && port.parse::<u16>().is_err()
    {
        return Err(format!("--clickhouse-url {url:?}: bad port {port:?}"));
    }
    Ok(())
}

/// A client for `cfg` (URL, user, password, database; LZ4 on).
pub fn client(cfg: &ClickHouseConfig) -> Client {
    let mut c = Client::default()
        .with_url(&cfg.url)
        .with_database(&cfg.database);
    if let Some(u) = &cfg.user {
        c = c.with_user(u);
    }
    if let Some(p) = &cfg.password {
        c = c.with_password(p);
    }
    c
}

/// One `otel_traces` row: the 22 insert columns of the clickhouseexporter, in
/// its order. Timestamps are DateTime64(9) as i64 ns; Map columns are written
/// from key/value vectors; Nested columns as parallel arrays.
#[derive(Debug, Row, Serialize)]
#[allow(missing_docs)]
pub struct TraceRow<'a> {
    #[serde(rename = "Timestamp")]
    pub timestamp: i64,
    #[serde(rename = "TraceId")]
    pub trace_id: String,
    #[serde(rename = "SpanId")]
    pub span_id: String,
    #[serde(rename = "ParentSpanId")]
    pub parent_span_id: String,
    #[serde(rename = "TraceState")]
    pub trace_state: &'a str,
    #[serde(rename = "SpanName")]
    pub span_name: &'a str,
    #[serde(rename = "SpanKind")]
    pub span_kind: &'a str,
    #[serde(rename = "ServiceName")]
    pub service_name: &'a str,
    #[serde(rename = "ResourceAttributes")]
    pub resource_attributes: Vec<(&'a str, &'a str)>,
    #[serde(rename = "ScopeName")]
    pub scope_name: &'a str,
    #[serde(rename = "ScopeVersion")]
    pub scope_version: &'a str,
    #[serde(rename = "SpanAttributes")]
    pub span_attributes: Vec<(&'a str, String)>,
    #[serde(rename = "Duration")]
    pub duration: u64,
    #[serde(rename = "StatusCode")]
    pub status_code: &'a str,
    #[serde(rename = "StatusMessage")]
    pub status_message: &'a str,
    #[serde(rename = "Events.Timestamp")]
    pub events_timestamp: Vec<i64>,
    #[serde(rename = "Events.Name")]
    pub events_name: Vec<&'a str>,
    #[serde(rename = "Events.Attributes")]
    pub events_attributes: Vec<Vec<(&'a str, String)>>,
    #[serde(rename = "Links.TraceId")]
    pub links_trace_id: Vec<String>,
    #[serde(rename = "Links.SpanId")]
    pub links_span_id: Vec<String>,
    #[serde(rename = "Links.TraceState")]
    pub links_trace_state: Vec<String>,
    #[serde(rename = "Links.Attributes")]
    pub links_attributes: Vec<Vec<(String, String)>>,
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[usize::from(b >> 4)] as char);
        s.push(D[usize::from(b & 15)] as char);
    }
    s
}

/// An attribute value as the clickhouseexporter stores it (pdata `AsString()`):
/// strings as is, integers in decimal, booleans `true`/`false`, string arrays as
/// JSON array text.
pub fn attr_string(v: &AttrValue) -> String {
    match v {
        AttrValue::Str(s) => s.to_string(),
        AttrValue::Int(i) => i.to_string(),
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::StrArray(a) => serde_json::to_string(a).unwrap_or_default(),
    }
}

/// The row of `span` under `resource` (ServiceName = `service.name`;
/// ResourceAttributes = service.name, service.instance.id, then the extras).
pub fn row<'a>(span: &'a Span, resource: &'a ResourceInfo) -> TraceRow<'a> {
    let mut res = Vec::with_capacity(2 + resource.extra.len());
    res.push(("service.name", resource.service_name.as_str()));
    res.push(("service.instance.id", span.instance_id.as_str()));
    for (k, v) in &resource.extra {
        res.push((k.as_str(), v.as_str()));
    }
    let (status_code, status_message) = match &span.status {
        SpanStatus::Unset => ("Unset", ""),
        SpanStatus::Error(m) => ("Error", m.as_str()),
    };
    TraceRow {
        timestamp: i64::try_from(span.start_ns).unwrap_or(i64::MAX),
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        parent_span_id: span.parent_span_id.map(|p| hex(&p)).unwrap_or_default(),
        trace_state: &span.trace_state,
        span_name: &span.name,
        span_kind: "Server",
        service_name: &resource.service_name,
        resource_attributes: res,
        scope_name: SCOPE_NAME,
        scope_version: env!("CARGO_PKG_VERSION"),
        span_attributes: span
            .attributes
            .iter()
            .map(|(k, v)| (*k, attr_string(v)))
            .collect(),
        duration: span.end_ns.saturating_sub(span.start_ns),
        status_code,
        status_message,
        events_timestamp: span
            .events
            .iter()
            .map(|e| i64::try_from(e.time_ns).unwrap_or(i64::MAX))
            .collect(),
        events_name: span.events.iter().map(|e| e.name.as_str()).collect(),
        events_attributes: span
            .events
            .iter()
            .map(|e| {
                e.attributes
                    .iter()
                    .map(|(k, v)| (*k, attr_string(v)))
                    .collect()
            })
            .collect(),
        links_trace_id: Vec::new(),
        links_span_id: Vec::new(),
        links_trace_state: Vec::new(),
        links_attributes: Vec::new(),
    }
}

/// The `N` of `Code: N.` in a ClickHouse error text.
pub fn error_code(text: &str) -> Option<u32> {
    let i = text.find("Code: ")?;
    let digits: String = text[i + 6..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `err` followed by its sources (`: cause: cause...`), skipping repeats, so
/// `network error: client error (Connect)` ends with `Connection refused (os error 111)`.
pub fn error_text(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut src = err.source();
    while let Some(e) = src {
        let t = e.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = e.source();
    }
    s
}

/// ClickHouse error codes worth retrying: timeouts, network, overload, read-only
/// or recovering tables, Keeper trouble.
pub const RETRYABLE_CODES: &[u32] = &[
    3,   // UNEXPECTED_END_OF_FILE (connection cut mid-request)
    159, // TIMEOUT_EXCEEDED
    164, // READONLY (server-wide read-only mode)
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    203, // NO_FREE_CONNECTION
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    236, // ABORTED
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    285, // TOO_FEW_LIVE_REPLICAS
    319, // UNKNOWN_STATUS_OF_INSERT
    394, // QUERY_WAS_CANCELLED
    425, // SYSTEM_ERROR
    439, // CANNOT_SCHEDULE_TASK
    999, // KEEPER_EXCEPTION
];

/// ClickHouse error codes that retrying cannot fix, with a hint for the log.
pub const FATAL_CODES: &[(u32, &str)] = &[
    (
        516,
        "authentication failed: check --clickhouse-user/--clickhouse-password (CLICKHOUSE_USER/CLICKHOUSE_PASSWORD)",
    ),
    (
        192,
        "unknown user: check --clickhouse-user (CLICKHOUSE_USER)",
    ),
    (
        497,
        "access denied: the user needs INSERT (and SELECT for the schema check) on the table",
    ),
    (
        60,
        "the table does not exist: run `mcptap-collector schema --clickhouse-url URL` first",
    ),
    (
        81,
        "the database does not exist: run `mcptap-collector schema` or check --clickhouse-database",
    ),
    (
        16,
        "the table lacks a column mcptap writes: it is not an otel_traces table",
    ),
    (47, "unknown column: the table is not an otel_traces table"),
    (53, "type mismatch: the table is not an otel_traces table"),
    (62, "syntax error in the generated INSERT"),
    (27, "the server could not parse the rows: schema mismatch"),
    (33, "the server could not read the rows: schema mismatch"),
    (117, "the server could not read the rows: schema mismatch"),
    (
        115,
        "unknown setting: the server does not know insert_deduplication_token (too old)",
    ),
];

/// Classifies a `clickhouse` crate error (see the module doc). The text keeps
/// the server's message (e.g. `Code: 516. DB::Exception: ... (AUTHENTICATION_FAILED)`)
/// and adds a hint for fatal codes.
pub fn classify(err: &clickhouse::error::Error) -> ExportError {
    use clickhouse::error::Error as E;
    let text = error_text(err);
    match err {
        E::Network(_) | E::TimedOut => ExportError::Retryable(text),
        E::BadResponse(body) => {
            let code = error_code(body);
            match code {
                Some(c) if RETRYABLE_CODES.contains(&c) => ExportError::Retryable(text),
                Some(c) => match FATAL_CODES.iter().find(|(k, _)| *k == c) {
                    Some((_, hint)) => ExportError::Fatal(format!("{text} [{hint}]")),
                    None => ExportError::Retryable(format!("{text} [unknown code {c}]")),
                },
                None => {
                    // No ClickHouse code: a proxy or the HTTP layer answered.
                    let status = body
                        .split_whitespace()
                        .next()
                        .and_then(|s| s.parse::<u16>().ok());
                    match status {
                        Some(401) | Some(403) => ExportError::Fatal(format!(
                            "{text} [authentication failed: check --clickhouse-user/--clickhouse-password]"
                        )),
                        Some(404) => ExportError::Fatal(format!(
                            "{text} [not a ClickHouse HTTP endpoint: check --clickhouse-url]"
                        )),
                        _ => ExportError::Retryable(text),
                    }
                }
            }
        }
        E::SchemaMismatch(_) => ExportError::Fatal(format!(
            "{text} [the table is not an otel_traces table: run `mcptap-collector schema` or check --clickhouse-table]"
        )),
        E::Unsupported(_) | E::InvalidParams(_) => ExportError::Fatal(text),
        _ => ExportError::Fatal(text),
    }
}

/// Exports batches to ClickHouse.
pub struct ClickHouseExporter {
    client: Client,
    cfg: ClickHouseConfig,
    resource: ResourceInfo,
    unknown_retries: (u64, u32),
}

impl ClickHouseExporter {
    /// An exporter for `cfg`; nothing is sent until the first batch.
    /// Errors: a malformed URL.
    pub fn new(
        cfg: ClickHouseConfig,
        resource: ResourceInfo,
    ) -> anyhow::Result<ClickHouseExporter> {
        validate_url(&cfg.url).map_err(anyhow::Error::msg)?;
        Ok(ClickHouseExporter {
            client: client(&cfg),
            cfg,
            resource,
            unknown_retries: (0, 0),
        })
    }

    /// Checks at start-up that the server answers, accepts the credentials and
    /// has the table. `Fatal` means the configuration is wrong; `Retryable`
    /// that the server is not reachable now (spans will queue and spool).
    pub async fn probe(&self) -> Result<(), ExportError> {
        let q = self
            .client
            .query("EXISTS TABLE ?.?")
            .bind(clickhouse::sql::Identifier(&self.cfg.database))
            .bind(clickhouse::sql::Identifier(&self.cfg.table));
        let exists = tokio::time::timeout(self.cfg.timeout, q.fetch_one::<u8>())
            .await
            .map_err(|_| {
                ExportError::Retryable(format!("no answer within {:?}", self.cfg.timeout))
            })?
            .map_err(|e| classify(&e))?;
        if exists == 0 {
            return Err(ExportError::Fatal(format!(
                "table `{}`.`{}` does not exist: run `mcptap-collector schema --clickhouse-url {}` first",
                self.cfg.database, self.cfg.table, self.cfg.url
            )));
        }
        Ok(())
    }

    async fn insert(&self, batch: &Batch) -> Result<(), clickhouse::error::Error> {
        let mut ins = self
            .client
            .insert::<TraceRow<'_>>(&self.cfg.table)
            .await?
            .with_setting("insert_deduplication_token", batch.token())
            .with_timeouts(Some(self.cfg.timeout), Some(self.cfg.timeout));
        for s in &batch.spans {
            ins.write(&row(s, &self.resource)).await?;
        }
        ins.end().await
    }
}

impl Exporter for ClickHouseExporter {
    fn name(&self) -> &'static str {
        "clickhouse"
    }

    async fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        if batch.spans.is_empty() {
            return Ok(());
        }
        let res = match tokio::time::timeout(self.cfg.timeout, self.insert(batch)).await {
            Ok(r) => r.map_err(|e| classify(&e)),
            Err(_) => Err(ExportError::Retryable(format!(
                "insert not answered within {:?}",
                self.cfg.timeout
            ))),
        };
        match res {
            Err(ExportError::Retryable(m)) if m.contains("[unknown code") => {
                let (id, n) = self.unknown_retries;
                let n = if id == batch.id { n + 1 } else { 1 };
                self.unknown_retries = (batch.id, n);
                if n >= UNKNOWN_CODE_ATTEMPTS {
                    Err(ExportError::Fatal(format!(
                        "{m} (failed {n} times, giving up on this batch)"
                    )))
                } else {
                    Err(ExportError::Retryable(m))
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(validate_url("http://127.0.0.1:8123").is_ok());
        assert!(validate_url("http://ch:8123/?database=x").is_ok());
        assert!(validate_url("http://u:p@ch:8123").is_ok());
        assert!(
            validate_url("not a url")
                .unwrap_err()
                .contains("is not a URL")
        );
        assert!(validate_url("http://").unwrap_err().contains("no host"));
        assert!(
            validate_url("http://h:99999")
                .unwrap_err()
                .contains("bad port")
        );
        assert!(validate_url("https://h").unwrap_err().contains("https"));
    }

    #[test]
    fn codes() {
        use clickhouse::error::Error as E;
        let auth = E::BadResponse(
            "Code: 516. DB::Exception: default: Authentication failed. (AUTHENTICATION_FAILED)"
                .into(),
        );
        assert_eq!(error_code(&auth.to_string()), Some(516));
        assert!(
            matches!(classify(&auth), ExportError::Fatal(m) if m.contains("AUTHENTICATION_FAILED") && m.contains("--clickhouse-password"))
        );
        let parts = E::BadResponse("Code: 252. DB::Exception: Too many parts".into());
        assert!(matches!(classify(&parts), ExportError::Retryable(_)));
        let odd = E::BadResponse("Code: 7777. DB::Exception: what".into());
        assert!(
            matches!(classify(&odd), ExportError::Retryable(m) if m.contains("unknown code 7777"))
        );
        let s503 = E::BadResponse("503 Service Unavailable".into());
        assert!(matches!(classify(&s503), ExportError::Retryable(_)));
        assert!(matches!(classify(&E::TimedOut), ExportError::Retryable(_)));
        assert!(matches!(
            classify(&E::SchemaMismatch("x".into())),
            ExportError::Fatal(_)
        ));
    }

    #[test]
    fn row_values() {
        let s = Span {
            trace_id: [0xab; 16],
            span_id: [1, 2, 3, 4, 5, 6, 7, 8],
            parent_span_id: None,
            trace_state: String::new(),
            name: "tools/call add".into(),
            start_ns: 1_700_000_000_123_456_789,
            end_ns: 1_700_000_000_223_456_789,
            status: SpanStatus::Error("tool_error".into()),
            instance_id: "pod-a".into(),
            attributes: vec![
                ("mcp.method.name", AttrValue::Str("tools/call".into())),
                ("http.response.status_code", AttrValue::Int(200)),
                ("mcptap.stream.long_lived", AttrValue::Bool(true)),
                (
                    "mcptap.handles.used",
                    AttrValue::StrArray(vec!["basket_id=b-1".into(), "x=2".into()]),
                ),
            ],
            events: vec![],
        };
        let res = ResourceInfo {
            service_name: "mcp-server".into(),
            extra: vec![("k8s.pod.name".into(), "p".into())],
        };
        let r = row(&s, &res);
        assert_eq!(r.trace_id, "abababababababababababababababab");
        assert_eq!(r.span_id, "0102030405060708");
        assert_eq!(r.parent_span_id, "");
        assert_eq!(r.duration, 100_000_000);
        assert_eq!(r.timestamp, 1_700_000_000_123_456_789);
        assert_eq!((r.status_code, r.status_message), ("Error", "tool_error"));
        assert_eq!(r.span_kind, "Server");
        assert_eq!(
            r.resource_attributes,
            vec![
                ("service.name", "mcp-server"),
                ("service.instance.id", "pod-a"),
                ("k8s.pod.name", "p")
            ]
        );
        let attrs: Vec<(&str, &str)> = r
            .span_attributes
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        assert_eq!(
            attrs,
            vec![
                ("mcp.method.name", "tools/call"),
                ("http.response.status_code", "200"),
                ("mcptap.stream.long_lived", "true"),
                ("mcptap.handles.used", r#"["basket_id=b-1","x=2"]"#),
            ]
        );
    }
}
