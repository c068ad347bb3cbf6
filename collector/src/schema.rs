//! `mcptap-collector schema`: applies the ClickHouse migrations of
//! `deploy/clickhouse/migrations/` (embedded at build time) and reports, for
//! each, `applied`, `already applied` or `skipped`.
//!
//! Format of the files (the contract with the DDL): `NNNN_snake_name.sql`,
//! applied in version order, each at most once; statements end with a `;` at
//! the end of a line; `--` comment lines anywhere; a first line
//! `-- mcptap: cluster-only` or `-- mcptap: single-only` restricts a file to one
//! mode. Placeholders are substituted textually ([`render`]): `{{database}}`,
//! `{{table}}`, `{{local_table}}`, `{{on_cluster}}`, `{{engine}}`,
//! `{{agg_engine}}`, `{{cluster}}`, `{{ttl}}`, `{{ttl_start}}`; single braces
//! (`{shard}`, `{replica}`) are ClickHouse macros and pass through.
//!
//! Applied versions are recorded in `<database>.mcptap_schema_migrations
//! (version UInt32, name String, checksum String, applied_at DateTime64(3))`,
//! created by the runner. Every statement is itself idempotent (`IF NOT
//! EXISTS`), so running twice, or concurrently from several pods, is safe. A
//! file whose text changed after it was applied is not re-applied; the report
//! says `applied earlier, file changed since`.

use crate::export::clickhouse::{ClickHouseConfig, client, validate_url};
use anyhow::{Context, Result, anyhow, bail};
use clickhouse::Client;
use clickhouse::sql::Identifier;
use std::time::Duration;

/// The embedded migration files.
pub mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// Where a migration applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Single node and cluster.
    Both,
    /// `-- mcptap: cluster-only`.
    ClusterOnly,
    /// `-- mcptap: single-only`.
    SingleOnly,
}

/// One migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// `NNNN` of the file name.
    pub version: u32,
    /// File name without `.sql`, e.g. `0001_otel_traces`.
    pub name: String,
    /// Raw file text (placeholders not yet substituted).
    pub sql: String,
    /// Mode restriction from the first line.
    pub scope: Scope,
    /// FNV-1a 64 of the raw text, 16 hex digits (detects edits; not a security measure).
    pub checksum: String,
}

fn fnv_hex(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Parses `(file name, text)` pairs into migrations sorted by version.
/// Errors: a name not of the form `NNNN_name.sql`, or two files with one version.
pub fn parse(files: &[(&str, &str)]) -> Result<Vec<Migration>> {
    let mut out = Vec::new();
    for (file, text) in files {
        let stem = file
            .strip_suffix(".sql")
            .ok_or_else(|| anyhow!("migration {file:?}: not a .sql file"))?;
        let (num, rest) = stem
            .split_once('_')
            .ok_or_else(|| anyhow!("migration {file:?}: expected NNNN_name.sql"))?;
        if num.len() != 4 || !num.bytes().all(|b| b.is_ascii_digit()) || rest.is_empty() {
            bail!("migration {file:?}: expected NNNN_name.sql");
        }
        let version: u32 = num.parse()?;
        let first = text.lines().next().unwrap_or("").trim();
        let scope = match first {
            "-- mcptap: cluster-only" => Scope::ClusterOnly,
            "-- mcptap: single-only" => Scope::SingleOnly,
            _ => Scope::Both,
        };
        out.push(Migration {
            version,
            name: stem.to_owned(),
            sql: (*text).to_owned(),
            scope,
            checksum: fnv_hex(text),
        });
    }
    out.sort_by_key(|m| m.version);
    for w in out.windows(2) {
        if let [a, b] = w
            && a.version == b.version
        {
            bail!(
                "migrations {} and {} share version {}",
                a.name,
                b.name,
                a.version
            );
        }
    }
    Ok(out)
}

/// The migrations built into this binary.
pub fn builtin() -> Result<Vec<Migration>> {
    parse(embedded::MIGRATION_FILES)
}

/// Reads `NNNN_*.sql` files from a directory instead of the embedded ones.
pub fn from_dir(dir: &std::path::Path) -> Result<Vec<Migration>> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "sql") {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            files.push((name, text));
        }
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    parse(&refs)
}

/// Names and options the placeholders take their values from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaParams {
    /// Database (`--database`, default `default`).
    pub database: String,
    /// Traces table (`--table`, default `otel_traces`); the Distributed table in cluster mode.
    pub table: String,
    /// TTL in days; `None` or 0: no TTL.
    pub ttl_days: Option<u32>,
    /// Cluster name: cluster mode (`ON CLUSTER`, ReplicatedMergeTree + Distributed).
    pub cluster: Option<String>,
}

/// Checks that `name` (flag `flag`) is a plain identifier: letters, digits, `_`, `-`.
pub fn check_identifier(flag: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        bail!("{flag} {name:?}: use letters, digits, '_' or '-' only");
    }
    Ok(())
}

impl SchemaParams {
    /// The table holding the data: `<table>_local` in cluster mode, else `table`.
    pub fn local_table(&self) -> String {
        match self.cluster {
            Some(_) => format!("{}_local", self.table),
            None => self.table.clone(),
        }
    }

    /// Checks every name.
    pub fn validate(&self) -> Result<()> {
        check_identifier("--database", &self.database)?;
        check_identifier("--table", &self.table)?;
        if let Some(c) = &self.cluster {
            check_identifier("--cluster", c)?;
        }
        Ok(())
    }

    fn on_cluster(&self) -> String {
        self.cluster
            .as_ref()
            .map(|c| format!("ON CLUSTER `{c}`"))
            .unwrap_or_default()
    }
}

/// Substitutes the placeholders of `sql` (see the module doc).
pub fn render(sql: &str, p: &SchemaParams) -> String {
    let local = p.local_table();
    let (engine, agg) = match &p.cluster {
        Some(_) => (
            "ReplicatedMergeTree('/clickhouse/tables/{shard}/{{database}}/{{local_table}}', '{replica}')",
            "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{{database}}/{{local_table}}', '{replica}')",
        ),
        None => ("MergeTree()", "AggregatingMergeTree()"),
    };
    let days = p.ttl_days.filter(|d| *d > 0);
    let ttl = days
        .map(|d| format!("TTL toDateTime(Timestamp) + toIntervalDay({d})"))
        .unwrap_or_default();
    let ttl_start = days
        .map(|d| format!("TTL toDateTime(Start) + toIntervalDay({d})"))
        .unwrap_or_default();
    // Composite placeholders first, then the names they contain.
    sql.replace("{{engine}}", engine)
        .replace("{{agg_engine}}", agg)
        .replace("{{on_cluster}}", &p.on_cluster())
        .replace("{{ttl}}", &ttl)
        .replace("{{ttl_start}}", &ttl_start)
        .replace("{{cluster}}", p.cluster.as_deref().unwrap_or(""))
        .replace("{{database}}", &p.database)
        .replace("{{local_table}}", &local)
        .replace("{{table}}", &p.table)
}

/// Splits a file into statements: a statement ends at a line ending with `;`.
/// Comment lines (`--`) and blank lines are dropped; the `;` is removed.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let t = line.trim();
        if t.starts_with("--") || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        let end = t.ends_with(';');
        cur.push_str(line.trim_end().trim_end_matches(';'));
        cur.push('\n');
        if end {
            let s = cur.trim().to_owned();
            if !s.is_empty() {
                out.push(s);
            }
            cur.clear();
        }
    }
    let s = cur.trim().to_owned();
    if !s.is_empty() {
        out.push(s);
    }
    out
}

/// What happened to one migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied now.
    Applied,
    /// Recorded as applied earlier, same text.
    AlreadyApplied,
    /// Recorded as applied earlier, but the file's text changed since (not re-applied).
    ChangedSinceApplied,
    /// Not for this mode (`cluster-only` on a single node or `single-only` on a cluster).
    Skipped(&'static str),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Applied => write!(f, "applied"),
            Outcome::AlreadyApplied => write!(f, "already applied"),
            Outcome::ChangedSinceApplied => {
                write!(f, "already applied (file changed since; not re-applied)")
            }
            Outcome::Skipped(why) => write!(f, "skipped ({why})"),
        }
    }
}

/// Name of the bookkeeping table.
pub const MIGRATIONS_TABLE: &str = "mcptap_schema_migrations";

#[derive(clickhouse::Row, serde::Deserialize)]
struct AppliedRow {
    version: u32,
    checksum: String,
}

/// Applies `migrations` through `client` per `p`; returns each migration's outcome.
/// Errors: the first failing statement, with the migration's name and the
/// server's message.
pub async fn apply(
    client: &Client,
    migrations: &[Migration],
    p: &SchemaParams,
) -> Result<Vec<(Migration, Outcome)>> {
    p.validate()?;
    let db = &p.database;
    let onc = p.on_cluster();
    client
        .query_raw(&format!("CREATE DATABASE IF NOT EXISTS `{db}` {onc}"))
        .execute()
        .await
        .with_context(|| format!("creating database `{db}`"))?;
    let engine = match &p.cluster {
        // One replica set over the whole cluster, so every node sees the record.
        Some(_) => format!(
            "ReplicatedMergeTree('/clickhouse/tables/mcptap/{db}/{MIGRATIONS_TABLE}', '{{replica}}')"
        ),
        None => "MergeTree()".to_owned(),
    };
    client
        .query_raw(&format!(
            "CREATE TABLE IF NOT EXISTS `{db}`.`{MIGRATIONS_TABLE}` {onc} \
             (version UInt32, name String, checksum String, applied_at DateTime64(3)) \
             ENGINE = {engine} ORDER BY version"
        ))
        .execute()
        .await
        .with_context(|| format!("creating `{db}`.`{MIGRATIONS_TABLE}`"))?;
    let applied: Vec<AppliedRow> = client
        .query("SELECT version, checksum FROM ?.? ORDER BY version")
        .bind(Identifier(db))
        .bind(Identifier(MIGRATIONS_TABLE))
        .fetch_all()
        .await
        .with_context(|| format!("reading `{db}`.`{MIGRATIONS_TABLE}`"))?;
    let mut out = Vec::new();
    for m in migrations {
        let skip = match (m.scope, p.cluster.is_some()) {
            (Scope::ClusterOnly, false) => Some("cluster only"),
            (Scope::SingleOnly, true) => Some("single node only"),
            _ => None,
        };
        if let Some(why) = skip {
            out.push((m.clone(), Outcome::Skipped(why)));
            continue;
        }
        if let Some(a) = applied.iter().find(|a| a.version == m.version) {
            let o = if a.checksum == m.checksum {
                Outcome::AlreadyApplied
            } else {
                Outcome::ChangedSinceApplied
            };
            out.push((m.clone(), o));
            continue;
        }
        for (i, stmt) in statements(&render(&m.sql, p)).iter().enumerate() {
            client.query_raw(stmt).execute().await.with_context(|| {
                format!(
                    "migration {} statement {}:\n{}",
                    m.name,
                    i + 1,
                    stmt.lines().take(3).collect::<Vec<_>>().join("\n")
                )
            })?;
        }
        client
            .query(
                "INSERT INTO ?.? (version, name, checksum, applied_at) VALUES (?, ?, ?, now64(3))",
            )
            .bind(Identifier(db))
            .bind(Identifier(MIGRATIONS_TABLE))
            .bind(m.version)
            .bind(m.name.as_str())
            .bind(m.checksum.as_str())
            .execute()
            .await
            .with_context(|| format!("recording migration {}", m.name))?;
        out.push((m.clone(), Outcome::Applied));
    }
    Ok(out)
}

/// Options of the `schema` subcommand.
#[derive(Debug, Clone)]
pub struct SchemaOptions {
    /// Connection (the `table` field is ignored; see `params`).
    pub conn: ClickHouseConfig,
    /// Names, TTL, cluster.
    pub params: SchemaParams,
    /// Apply these files instead of the embedded ones.
    pub migrations_dir: Option<std::path::PathBuf>,
    /// Print the rendered statements instead of applying them.
    pub dry_run: bool,
}

/// Runs the `schema` subcommand: prints one line per migration and a total to
/// stdout. Errors: bad names or URL, the server unreachable, a statement failing.
pub fn run(opts: &SchemaOptions) -> Result<()> {
    opts.params.validate()?;
    let migrations = match &opts.migrations_dir {
        Some(d) => from_dir(d)?,
        None => builtin()?,
    };
    if migrations.is_empty() {
        bail!("no migrations found");
    }
    let p = &opts.params;
    let mode = match &p.cluster {
        Some(c) => format!("cluster `{c}`"),
        None => "single node".into(),
    };
    let ttl = match p.ttl_days.filter(|d| *d > 0) {
        Some(d) => format!("TTL {d} days"),
        None => "no TTL".into(),
    };
    if opts.dry_run {
        for m in &migrations {
            println!("-- {} ({:?})", m.name, m.scope);
            for s in statements(&render(&m.sql, p)) {
                println!("{s};\n");
            }
        }
        return Ok(());
    }
    validate_url(&opts.conn.url).map_err(anyhow::Error::msg)?;
    let mut conn = opts.conn.clone();
    // The database may not exist yet: statements name it explicitly.
    conn.database = "default".into();
    let cl = client(&conn);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    println!(
        "ClickHouse {}: database `{}`, table `{}`, {mode}, {ttl}",
        opts.conn.url, p.database, p.table
    );
    let res = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(120).max(opts.conn.timeout),
            apply(&cl, &migrations, p),
        )
        .await
        .map_err(|_| anyhow!("no answer from {} within the time limit", opts.conn.url))?
    });
    let res = res.map_err(|e| {
        let text = format!("{e:#}");
        let hint = if text.contains("Connection refused") || text.contains("network error") {
            " (is ClickHouse running at --clickhouse-url?)"
        } else if text.contains("516") || text.contains("AUTHENTICATION_FAILED") {
            " (check --clickhouse-user/--clickhouse-password)"
        } else {
            ""
        };
        anyhow!("{text}{hint}")
    })?;
    let width = res.iter().map(|(m, _)| m.name.len()).max().unwrap_or(0);
    let (mut a, mut aa, mut sk) = (0, 0, 0);
    for (m, o) in &res {
        println!("  {:width$}  {o}", m.name);
        match o {
            Outcome::Applied => a += 1,
            Outcome::AlreadyApplied | Outcome::ChangedSinceApplied => aa += 1,
            Outcome::Skipped(_) => sk += 1,
        }
    }
    println!(
        "{} migrations: {a} applied, {aa} already applied, {sk} skipped",
        res.len()
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn single() -> SchemaParams {
        SchemaParams {
            database: "db1".into(),
            table: "t".into(),
            ttl_days: None,
            cluster: None,
        }
    }

    #[test]
    fn parse_names_scopes_order() {
        let m = parse(&[
            ("0002_b.sql", "-- mcptap: cluster-only\nSELECT 1;"),
            ("0001_a.sql", "SELECT 1;"),
            ("0003_c.sql", "-- mcptap: single-only\nSELECT 1;"),
        ])
        .unwrap();
        let v: Vec<(u32, Scope)> = m.iter().map(|m| (m.version, m.scope)).collect();
        assert_eq!(
            v,
            [
                (1, Scope::Both),
                (2, Scope::ClusterOnly),
                (3, Scope::SingleOnly)
            ]
        );
        assert!(parse(&[("1_a.sql", "")]).is_err());
        assert!(parse(&[("0001_a.sql", ""), ("0001_b.sql", "")]).is_err());
        assert!(parse(&[("0001_a.txt", "")]).is_err());
    }

    #[test]
    fn split_statements() {
        let s = statements(
            "-- head\nCREATE TABLE x (\n  a String -- c\n);\n\n-- mid\nALTER TABLE x ADD COLUMN b UInt8;\nSELECT ';' \n",
        );
        assert_eq!(
            s,
            [
                "CREATE TABLE x (\n  a String -- c\n)",
                "ALTER TABLE x ADD COLUMN b UInt8",
                "SELECT ';'"
            ]
        );
    }

    #[test]
    fn render_single_and_cluster() {
        let sql = "CREATE TABLE `{{database}}`.`{{local_table}}` {{on_cluster}} (x UInt8) ENGINE = {{engine}} {{ttl}}; -- {{table}} {{cluster}} {{ttl_start}}";
        let r = render(sql, &single());
        assert_eq!(
            r,
            "CREATE TABLE `db1`.`t`  (x UInt8) ENGINE = MergeTree() ; -- t  "
        );
        let mut p = single();
        p.cluster = Some("c1".into());
        p.ttl_days = Some(7);
        let r = render(sql, &p);
        assert_eq!(
            r,
            "CREATE TABLE `db1`.`t_local` ON CLUSTER `c1` (x UInt8) ENGINE = \
             ReplicatedMergeTree('/clickhouse/tables/{shard}/db1/t_local', '{replica}') \
             TTL toDateTime(Timestamp) + toIntervalDay(7); -- t c1 TTL toDateTime(Start) + toIntervalDay(7)"
        );
    }

    #[test]
    fn builtin_files_render_without_leftover_placeholders() {
        let migs = builtin().unwrap();
        for m in &migs {
            for cluster in [None, Some("c".to_owned())] {
                let p = SchemaParams {
                    cluster,
                    ttl_days: Some(30),
                    ..single()
                };
                let r = render(&m.sql, &p);
                assert!(!r.contains("{{"), "{}: leftover placeholder", m.name);
                assert!(!statements(&r).is_empty(), "{}: no statement", m.name);
            }
        }
    }

    #[test]
    fn identifiers() {
        assert!(check_identifier("--table", "otel_traces").is_ok());
        assert!(check_identifier("--table", "a`b").is_err());
        assert!(check_identifier("--table", "").is_err());
        assert!(check_identifier("--table", "a b").is_err());
    }
}
