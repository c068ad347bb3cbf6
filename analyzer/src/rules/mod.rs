//! The rules. Each module holds one rule: its SQL (`pub const SQL`), the row type the SQL
//! returns, and a pure function turning those rows into [`Finding`]s (unit-testable without
//! ClickHouse). [`crate::engine`] runs them; `analyzer/RULES.md` documents them.
//!
//! SQL conventions: `@name@` placeholders are column expressions filled in by
//! [`crate::clickhouse::Cols`]; `{name:Type}` are ClickHouse server-side parameters bound by the
//! engine (`db`, `table`, `since_ns`, `until_ns`, `session_since_ns`, plus each rule's own).
//!
//! Client identity (`@client_cols@`, see [`ClientCols`]): the span's own clientInfo
//! (`mcptap.client.name`/`version`); else, for a span carrying `Mcp-Session-Id`, the
//! clientInfo of the span that minted that session (`mcptap.session.minted`, on **any**
//! instance, started in `[since - session_lookback, until)`): with one collector per pod, the
//! pod that answers a session minted elsewhere never saw its `initialize`; else the user
//! agent. The session lookup is a `LEFT ANY JOIN` on a per-session subquery, so such SQL reads
//! `FROM @from_clients@` and is started with [`query`], which binds `session_since_ns`.

pub mod cross_instance_handle_failure;
pub mod deprecated_feature_used;
pub mod initialize_still_called;
pub mod legacy_tasks_api;
pub mod list_refetched_before_ttl;
pub mod routing_headers;
pub mod session_id_still_sent;
pub mod status_4xx_spike;

use crate::clickhouse::{Db, de_i64, de_u64};
use crate::config::Config;
use crate::finding::{Client, Finding, RuleId, Severity, Subject};
use crate::timeutil::format_rfc3339_ns;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Starts a rule query like [`Db::query`] and also binds `session_since_ns` =
/// `since_ns - cfg.session_lookback_ns` (the start of the session-mint search of
/// `@from_clients@`; pass the earliest start time the query reads as `since_ns`).
///
/// # Errors
/// An unknown placeholder in `sql`.
pub fn query(
    db: &Db,
    sql: &str,
    since_ns: i64,
    until_ns: i64,
    cfg: &Config,
) -> anyhow::Result<clickhouse::query::Query> {
    Ok(db.query(sql, since_ns, until_ns)?.param(
        "session_since_ns",
        since_ns.saturating_sub(cfg.session_lookback_ns.max(0)),
    ))
}

/// The four client identity columns every grouped rule selects (`@client_cols@`): the span's
/// own clientInfo, else that of the span that minted its session (any instance, within
/// `session_lookback`), else the user agent (see the module documentation).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClientCols {
    /// `mcptap.client.name`.
    #[serde(default)]
    pub client_name: String,
    /// `mcptap.client.version` (empty when the name is).
    #[serde(default)]
    pub client_version: String,
    /// `user_agent.original` when the name is unknown, else empty.
    #[serde(default)]
    pub client_ua: String,
    /// `client.address`.
    #[serde(default)]
    pub client_address: String,
}

impl ClientCols {
    /// The identity, with `user_agents[0]` shown when the name is known.
    pub fn client(&self, user_agents: &[String]) -> Client {
        let ua = if self.client_ua.is_empty() {
            user_agents.first().cloned().unwrap_or_default()
        } else {
            self.client_ua.clone()
        };
        Client {
            name: self.client_name.clone(),
            version: self.client_version.clone(),
            user_agent: ua,
            address: self.client_address.clone(),
        }
    }
}

/// Time span and samples common to grouped rows.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Seen {
    /// Earliest span start, Unix ns.
    #[serde(deserialize_with = "de_i64", default)]
    pub first_ns: i64,
    /// Latest span start, Unix ns.
    #[serde(deserialize_with = "de_i64", default)]
    pub last_ns: i64,
    /// Sample trace ids.
    #[serde(default)]
    pub traces: Vec<String>,
}

impl Seen {
    /// RFC 3339 first/last.
    pub fn rfc3339(&self) -> (String, String) {
        (
            format_rfc3339_ns(self.first_ns),
            format_rfc3339_ns(self.last_ns),
        )
    }
}

/// The per-rule parts of a finding about one group of spans (a client identity, maybe with a
/// method or feature); [`GroupFinding::build`] adds the parts every grouped rule fills the
/// same way.
#[derive(Debug, Clone)]
pub struct GroupFinding<'a> {
    /// [`Finding::rule`].
    pub rule: RuleId,
    /// [`Finding::severity`].
    pub severity: Severity,
    /// [`Finding::summary`].
    pub summary: String,
    /// [`Finding::subject`].
    pub subject: Subject,
    /// [`Finding::count`], the headline count.
    pub count: u64,
    /// `(name, value)` pairs of [`Finding::counts`]; zeros are left out (see [`counts`]).
    pub counts: &'a [(&'a str, u64)],
    /// [`Finding::details`].
    pub details: serde_json::Value,
}

impl GroupFinding<'_> {
    /// The finding: first/last seen from `seen` (RFC 3339), sample trace ids
    /// `problem_traces` then `seen.traces` (see [`samples`], at most `cfg.samples`).
    pub fn build(self, seen: &Seen, problem_traces: &[String], cfg: &Config) -> Finding {
        let (first_seen, last_seen) = seen.rfc3339();
        Finding {
            rule: self.rule,
            severity: self.severity,
            summary: self.summary,
            subject: self.subject,
            count: self.count,
            counts: counts(self.counts),
            first_seen,
            last_seen,
            sample_trace_ids: samples(problem_traces, &seen.traces, cfg.samples),
            details: self.details,
        }
    }
}

/// Deserialises a `{key: count}` map whose counts may be numbers or strings.
///
/// # Errors
/// A value that is not a non-negative integer.
pub fn de_count_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, u64>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "de_u64")] u64);
    let m: BTreeMap<String, W> = BTreeMap::deserialize(d)?;
    Ok(m.into_iter().map(|(k, W(v))| (k, v)).collect())
}

/// Builds a `counts` map from `(name, value)` pairs, leaving out zeros.
pub fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| ((*k).to_string(), *v))
        .collect()
}

/// Merges sample trace ids: `first` then `rest`, de-duplicated, at most `n`.
pub fn samples(first: &[String], rest: &[String], n: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in first.iter().chain(rest) {
        if !t.is_empty() && !out.contains(t) && out.len() < n {
            out.push(t.clone());
        }
    }
    out
}

/// Sorted, de-duplicated, non-empty strings.
pub fn sorted(v: &[String]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().filter(|s| !s.is_empty()).cloned().collect();
    v.sort();
    v.dedup();
    v
}
