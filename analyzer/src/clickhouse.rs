//! ClickHouse access: connection settings, identifier validation, column detection, and the
//! one query helper every rule uses.
//!
//! Safety rule: no value that comes from a user or a request is ever formatted into SQL
//! text. Database and table names are validated identifiers **and** bound as
//! `{db:Identifier}` / `{table:Identifier}`; times and thresholds are bound as typed server-side
//! parameters (`{since_ns:Int64}` …) through [`clickhouse::query::Query::param`]. The only
//! text substituted into SQL is this crate's own column expressions ([`Cols`]), chosen from a
//! fixed list.
//!
//! Results are read as `JSONEachRow` and deserialised with serde, so a rule's row struct only
//! has to agree with its SELECT list by name; 64-bit integers are accepted as JSON numbers or
//! strings ([`de_u64`], [`de_i64`]).

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// Where the spans are.
#[derive(Debug, Clone)]
pub struct Source {
    /// HTTP(S) URL of ClickHouse, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// User name (none: the server default).
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Database holding the traces table (a validated identifier).
    pub database: String,
    /// Traces table (a validated identifier), `otel_traces` by default.
    pub table: String,
}

/// Checks that `name` is a plain identifier `[A-Za-z_][A-Za-z0-9_]*`, at most 128 bytes.
///
/// # Errors
/// Anything else (quotes, dots, spaces, empty).
pub fn validate_identifier(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
    if !ok {
        bail!("{what} {name:?} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)");
    }
    Ok(())
}

/// Column expressions used by the rule SQL. Each `@name@` placeholder in a rule's SQL is
/// replaced by the matching expression: the mcptap MATERIALIZED column when the table has it
/// (migration `0005_mcptap_columns.sql`), else the equivalent `SpanAttributes[...]` /
/// `ResourceAttributes[...]` access, which works on any `otel_traces` table.
#[derive(Debug, Clone)]
pub struct Cols {
    pairs: Vec<(&'static str, String)>,
}

/// `(placeholder, materialized column, map expression)`.
const COLUMN_CHOICES: &[(&str, &str, &str)] = &[
    ("method", "McpMethod", "SpanAttributes['mcp.method.name']"),
    ("era", "McpEra", "SpanAttributes['mcptap.era']"),
    (
        "kind",
        "McpExchangeKind",
        "SpanAttributes['mcptap.exchange.kind']",
    ),
    (
        "cname",
        "McpClientName",
        "SpanAttributes['mcptap.client.name']",
    ),
    (
        "cver",
        "McpClientVersion",
        "SpanAttributes['mcptap.client.version']",
    ),
    ("sid", "McpSessionId", "SpanAttributes['mcp.session.id']"),
    (
        "sminted",
        "McpSessionMinted",
        "SpanAttributes['mcptap.session.minted']",
    ),
    ("tool", "ToolName", "SpanAttributes['gen_ai.tool.name']"),
    (
        "status",
        "HttpStatus",
        "toUInt16OrZero(SpanAttributes['http.response.status_code'])",
    ),
    (
        "rpc",
        "RpcErrorCode",
        "SpanAttributes['rpc.response.status_code']",
    ),
    ("errtype", "ErrorType", "SpanAttributes['error.type']"),
    (
        "instance",
        "InstanceId",
        "ResourceAttributes['service.instance.id']",
    ),
    (
        "hused",
        "HandlesUsed",
        "JSONExtract(SpanAttributes['mcptap.handles.used'], 'Array(String)')",
    ),
    (
        "hminted",
        "HandlesMinted",
        "JSONExtract(SpanAttributes['mcptap.handles.minted'], 'Array(String)')",
    ),
    (
        "rmethod",
        "RoutingMethodStatus",
        "SpanAttributes['mcptap.routing.method_status']",
    ),
    (
        "rname",
        "RoutingNameStatus",
        "SpanAttributes['mcptap.routing.name_status']",
    ),
];

/// The client's address in every rule: its mesh workload identity when a mesh proxy vouched for
/// it (`mcptap.client.workload`, a SPIFFE or Linkerd identity: it names a workload, which beats
/// an IP), else `client.address` (the original client behind trusted proxies; docs/attributes.md).
pub const ADDR: &str = "if(SpanAttributes['mcptap.client.workload'] != '', SpanAttributes['mcptap.client.workload'], SpanAttributes['client.address'])";

/// One count per logical request, and never a proxy as an instance: the client leg of a
/// forwarded request (`mcptap.hop` = `client`) is counted on its upstream leg, at the instance
/// that served it; a request to a proxy whose upstream leg is not in the data (`client_only`)
/// belongs to no instance (only the 4xx rule reports it, as answered by the proxy). `@range@`
/// includes this condition.
pub const ONE_LEG: &str = "SpanAttributes['mcptap.hop'] NOT IN ('client', 'client_only')";

/// Alias of the session-mint subquery joined by `@from_clients@` (and prefix of its columns).
const MINTED: &str = "mcptap_minted";

/// Fixed expressions (no materialized column exists for them).
const FIXED: &[(&str, &str)] = &[
    ("ua", "SpanAttributes['user_agent.original']"),
    ("addr", ADDR),
    ("ts_ns", "toUnixTimestamp64Nano(Timestamp)"),
    (
        "range",
        "Timestamp >= fromUnixTimestamp64Nano({since_ns:Int64}) AND Timestamp < fromUnixTimestamp64Nano({until_ns:Int64}) AND SpanAttributes['mcptap.hop'] NOT IN ('client', 'client_only')",
    ),
    ("one_leg", ONE_LEG),
    ("from", "{db:Identifier}.{table:Identifier}"),
];

impl Cols {
    /// Map expressions only (works on every `otel_traces` table).
    pub fn map_only() -> Self {
        Self::with_columns(&[])
    }

    /// Uses the materialized column for each placeholder whose column name is in `present`.
    pub fn with_columns(present: &[String]) -> Self {
        let mut pairs: Vec<(&'static str, String)> = COLUMN_CHOICES
            .iter()
            .map(|(p, col, map)| {
                let e = if present.iter().any(|c| c == col) {
                    *col
                } else {
                    *map
                };
                (*p, e.to_string())
            })
            .collect();
        pairs.extend(FIXED.iter().map(|(p, e)| (*p, e.to_string())));
        // The client identity used by every rule (see `finding::Client` and
        // `rules::ClientCols`): the span's own clientInfo, else the clientInfo of the span that
        // minted its session (`@from_clients@`, any instance), else the user agent.
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(p, _)| *p == name)
                .map(|(_, e)| e.clone())
                .unwrap_or_default()
        };
        let (cname, cver, sid, sminted) = (get("cname"), get("cver"), get("sid"), get("sminted"));
        let ua = "SpanAttributes['user_agent.original']";
        let name = format!(
            "if({cname} != '', toString({cname}), ifNull({MINTED}.{MINTED}_name, ''))",
            MINTED = MINTED
        );
        let version = format!(
            "if({cname} != '', toString({cver}), ifNull({MINTED}.{MINTED}_version, ''))",
            MINTED = MINTED
        );
        pairs.push((
            "client_cols",
            format!(
                "{name} AS client_name, {version} AS client_version, \
                 if({name} != '', '', {ua}) AS client_ua, {ADDR} AS client_address"
            ),
        ));
        pairs.push(("client_name", name));
        pairs.push(("client_version", version));
        pairs.push((
            "from_clients",
            format!(
                "{{db:Identifier}}.{{table:Identifier}} LEFT ANY JOIN (\
                 SELECT toString({sminted}) AS {MINTED}_sid, \
                 argMin(toString({cname}), Timestamp) AS {MINTED}_name, \
                 argMin(toString({cver}), Timestamp) AS {MINTED}_version \
                 FROM {{db:Identifier}}.{{table:Identifier}} \
                 WHERE Timestamp >= fromUnixTimestamp64Nano({{session_since_ns:Int64}}) \
                 AND Timestamp < fromUnixTimestamp64Nano({{until_ns:Int64}}) \
                 AND {sminted} != '' AND {cname} != '' \
                 GROUP BY {MINTED}_sid) AS {MINTED} ON toString({sid}) = {MINTED}.{MINTED}_sid",
                MINTED = MINTED
            ),
        ));
        Self { pairs }
    }

    /// Whether any materialized column is used.
    pub fn uses_materialized(&self) -> bool {
        self.pairs
            .iter()
            .any(|(p, e)| COLUMN_CHOICES.iter().any(|(q, col, _)| q == p && e == col))
    }

    /// Replaces every `@name@` placeholder of `sql`.
    ///
    /// The resolved client identity (`@client_cols@`, `@client_name@`, `@client_version@`)
    /// reads the session-mint join, so SQL using it must select `FROM @from_clients@`, which
    /// needs the `{session_since_ns:Int64}` parameter (`rules::query` binds it).
    ///
    /// # Errors
    /// An unknown or unterminated placeholder, or the client identity without
    /// `@from_clients@` (programming errors in a rule's SQL).
    pub fn expand(&self, sql: &str) -> Result<String> {
        if ["@client_cols@", "@client_name@", "@client_version@"]
            .iter()
            .any(|p| sql.contains(p))
            && !sql.contains("@from_clients@")
        {
            bail!("SQL using the client identity must read FROM @from_clients@");
        }
        let mut out = String::with_capacity(sql.len() + 256);
        let mut rest = sql;
        while let Some(i) = rest.find('@') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let Some(j) = after.find('@') else {
                bail!("unterminated placeholder in SQL")
            };
            let name = &after[..j];
            let Some((_, e)) = self.pairs.iter().find(|(p, _)| *p == name) else {
                bail!("unknown SQL placeholder @{name}@");
            };
            out.push_str(e);
            rest = &after[j + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A connected source: the ClickHouse client, the validated names, and the column choice.
#[derive(Clone)]
pub struct Db {
    client: clickhouse::Client,
    database: String,
    table: String,
    cols: Cols,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("database", &self.database)
            .field("table", &self.table)
            .finish()
    }
}

#[derive(Deserialize)]
struct NameRow {
    name: String,
}

impl Db {
    /// Builds the client. Does not contact the server.
    ///
    /// # Errors
    /// An invalid database or table name.
    pub fn new(source: &Source) -> Result<Self> {
        validate_identifier("database", &source.database)?;
        validate_identifier("table", &source.table)?;
        let mut client = clickhouse::Client::default().with_url(source.url.clone());
        if let Some(u) = &source.user {
            client = client.with_user(u.clone());
        }
        if let Some(p) = &source.password {
            client = client.with_password(p.clone());
        }
        Ok(Self {
            client,
            database: source.database.clone(),
            table: source.table.clone(),
            cols: Cols::map_only(),
        })
    }

    /// The database name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The column expressions in use.
    pub fn cols(&self) -> &Cols {
        &self.cols
    }

    /// Forces map-only expressions (ignores materialized columns).
    pub fn set_cols(&mut self, cols: Cols) {
        self.cols = cols;
    }

    /// Looks up the table's columns in `system.columns` and uses the mcptap materialized ones
    /// that exist.
    ///
    /// # Errors
    /// The server cannot be reached or the table does not exist.
    pub async fn detect_columns(&mut self) -> Result<()> {
        let rows: Vec<NameRow> = self
            .fetch(
                self.client
                    .query_raw(
                        "SELECT name FROM system.columns WHERE database = {db:String} AND table = {table:String}",
                    )
                    .param("db", &self.database)
                    .param("table", &self.table),
            )
            .await
            .context("listing the table's columns")?;
        if rows.is_empty() {
            bail!(
                "table {}.{} not found (or has no columns)",
                self.database,
                self.table
            );
        }
        let names: Vec<String> = rows.into_iter().map(|r| r.name).collect();
        self.cols = Cols::with_columns(&names);
        Ok(())
    }

    /// Starts a query: expands the column placeholders of `sql` and binds the common
    /// parameters `db`, `table` (Identifier), `since_ns`, `until_ns` (Int64, Unix ns).
    /// Add rule parameters with `.param(...)`, then run it with [`Db::fetch`].
    ///
    /// # Errors
    /// An unknown placeholder in `sql`.
    pub fn query(
        &self,
        sql: &str,
        since_ns: i64,
        until_ns: i64,
    ) -> Result<clickhouse::query::Query> {
        let sql = self.cols.expand(sql)?;
        Ok(self
            .client
            .query_raw(&sql)
            .param("db", &self.database)
            .param("table", &self.table)
            .param("since_ns", since_ns)
            .param("until_ns", until_ns))
    }

    /// Runs `q` (JSONEachRow) and deserialises each line into `T`. Sets no ClickHouse setting
    /// (compatible with a `readonly = 1` profile); 64-bit integers arrive quoted, so row
    /// structs read them with [`de_u64`] / [`de_i64`].
    ///
    /// # Errors
    /// A transport/server error, or a row that does not match `T`.
    pub async fn fetch<T: DeserializeOwned>(&self, q: clickhouse::query::Query) -> Result<Vec<T>> {
        // No `with_setting` here: a `readonly = 1` user may not change settings, and the
        // server defaults suit us (64-bit integers quoted: read by `de_u64`/`de_i64`).
        let mut cursor = q.fetch_bytes("JSONEachRow")?;
        let bytes = cursor.collect().await?;
        let mut out = Vec::new();
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let row: T = serde_json::from_slice(line).with_context(|| {
                format!(
                    "row {i}: {}",
                    String::from_utf8_lossy(&line[..line.len().min(300)])
                )
            })?;
            out.push(row);
        }
        Ok(out)
    }

    /// Runs a statement that returns nothing (DDL/INSERT in tests and benches).
    ///
    /// # Errors
    /// A transport/server error.
    pub async fn execute(&self, q: clickhouse::query::Query) -> Result<()> {
        q.execute().await?;
        Ok(())
    }

    /// The raw client (tests and benches).
    pub fn client(&self) -> &clickhouse::Client {
        &self.client
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrStr {
    U(u64),
    I(i64),
    F(f64),
    S(String),
}

/// Deserialises a `u64` given as a JSON number or a decimal string.
///
/// # Errors
/// Anything else.
pub fn de_u64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    match NumOrStr::deserialize(d)? {
        NumOrStr::U(v) => Ok(v),
        NumOrStr::I(v) => u64::try_from(v).map_err(serde::de::Error::custom),
        NumOrStr::F(v) => Ok(v.max(0.0) as u64),
        NumOrStr::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// Deserialises an `i64` given as a JSON number or a decimal string.
///
/// # Errors
/// Anything else.
pub fn de_i64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    match NumOrStr::deserialize(d)? {
        NumOrStr::U(v) => i64::try_from(v).map_err(serde::de::Error::custom),
        NumOrStr::I(v) => Ok(v),
        NumOrStr::F(v) => Ok(v as i64),
        NumOrStr::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(validate_identifier("t", "otel_traces").is_ok());
        assert!(validate_identifier("t", "_x1").is_ok());
        assert!(validate_identifier("t", "1x").is_err());
        assert!(validate_identifier("t", "a.b").is_err());
        assert!(validate_identifier("t", "a`b").is_err());
        assert!(validate_identifier("t", "").is_err());
        assert!(validate_identifier("t", "x; DROP TABLE y").is_err());
    }

    #[test]
    fn expands_placeholders() {
        let m = Cols::map_only();
        assert_eq!(
            m.expand("SELECT @method@ FROM @from@").ok().as_deref(),
            Some(
                "SELECT SpanAttributes['mcp.method.name'] FROM {db:Identifier}.{table:Identifier}"
            )
        );
        let c = Cols::with_columns(&["McpMethod".to_string()]);
        assert_eq!(
            c.expand("@method@,@era@").ok().as_deref(),
            Some("McpMethod,SpanAttributes['mcptap.era']")
        );
        assert!(c.uses_materialized());
        assert!(!m.uses_materialized());
        assert!(m.expand("@nope@").is_err());
        assert!(m.expand("@method").is_err());
        // The client identity needs the session-mint join.
        assert!(m.expand("SELECT @client_cols@ FROM @from@").is_err());
        let sql = m
            .expand("SELECT @client_cols@ FROM @from_clients@")
            .unwrap_or_default();
        assert!(sql.contains("LEFT ANY JOIN"), "{sql}");
        assert!(sql.contains("{session_since_ns:Int64}"), "{sql}");
        assert!(
            sql.contains("SpanAttributes['mcptap.session.minted']"),
            "{sql}"
        );
        let sql = Cols::with_columns(&["McpSessionMinted".into(), "McpSessionId".into()])
            .expand("SELECT @client_name@ FROM @from_clients@")
            .unwrap_or_default();
        assert!(
            sql.contains("toString(McpSessionId) = mcptap_minted.mcptap_minted_sid"),
            "{sql}"
        );
    }
}
