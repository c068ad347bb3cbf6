//! `status_4xx_spike`: 4xx rate per instance (optionally also per method and client) over
//! short windows, against a trailing baseline, with each spike attributed to clients and
//! causes.
//!
//! **Windows.** Spans are bucketed by start time into windows of `bucket` (default 1 min,
//! aligned on the Unix epoch), per key = instance (`service.instance.id`), plus the MCP method
//! (`--spike-by-method`; http spans use the HTTP method) and/or the client identity
//! (`--spike-by-client`).
//!
//! **Baseline.** For each window in `[since, until)`: the 4xx rate of the same key over the
//! previous `baseline` windows (default 60), leaving out windows already flagged (an incident
//! does not raise its own baseline). Windows without traffic do not count. Data before
//! `since` is read for the baseline.
//!
//! The client leg of a forwarded request is counted once, on its upstream leg
//! (`mcptap.hop` = `client` is left out).
//!
//! **Spike** when all hold (the sensitivity flags): 4xx count >= `min_count` (default 5);
//! rate >= `min_rate` (default 0.05); and, when the baseline has traffic, rate >=
//! `factor` × baseline rate (default 3). Consecutive flagged windows of one key are merged
//! into one finding.
//!
//! **Causes** of each 4xx answer, first match wins:
//! - `answered_by_proxy`: a request to a proxy whose upstream leg is not in the data
//!   (`mcptap.hop` = `client_only`), under the instance `proxy <address>`;
//! - `session_not_found`: 404 to a request that carried `Mcp-Session-Id`;
//! - `header_mismatch`: 400 with JSON-RPC `-32020`, or a routing header status
//!   `mismatch`/`missing`;
//! - `unknown_method`: 404 with JSON-RPC `-32601`;
//! - `session_missing`: 400 to a legacy-era non-`initialize` request without a session id;
//! - `other`.
//!
//! **Severity**: `critical` when the peak window rate >= `critical_rate` (default 0.5), else
//! `warning`. **Counts**: `requests`, `status_4xx`, and one per cause present.
//! **Details**: `windows` (start, end, requests, status_4xx, rate, baseline_rate),
//! `causes`, `attribution` (client, method, cause, count, sample traces), `peak_rate`,
//! `baseline_rate`, `thresholds`.

use super::{ClientCols, Seen, counts};
use crate::clickhouse::{Db, de_i64, de_u64};
use crate::config::{Config, Range, SpikeConfig};
use crate::finding::{Finding, RuleId, Severity, Subject};
use crate::timeutil::format_rfc3339_ns;
use anyhow::{Result, bail};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// Method label: the MCP method, else the HTTP method (GET/DELETE http spans).
const METHOD_LABEL: &str =
    "if(@method@ != '', toString(@method@), SpanAttributes['http.request.method'])";

/// Client key of `--spike-by-client` (the resolved identity, see [`super::ClientCols`]).
const CLIENT_KEY: &str = "concat(@client_name@, '|', @client_version@, '|', if(@client_name@ != '', '', @ua@), '|', @addr@)";

/// The instance of a span: `service.instance.id`, except for a request to a proxy whose
/// upstream leg is not in the data (`mcptap.hop` = `client_only`: the proxy answered it
/// itself, or forwarded it out of sight), shown as `proxy <its address>` so that a proxy is
/// never taken for an instance. Client legs of forwarded requests are counted on their
/// upstream leg only (`mcptap.hop` = `client` is left out).
const INSTANCE: &str = "if(SpanAttributes['mcptap.hop'] = 'client_only', concat('proxy ', toString(@instance@)), toString(@instance@))";

/// Totals per (key, window) over `[base_since, until)`. `$GCLIENT`/`$FROM`: `CLIENT_KEY`
/// and `@from_clients@` with `--spike-by-client`, else `''` and `@from@` (no session join).
pub const SQL_TOTALS: &str = "
SELECT $INSTANCE AS instance,
  if({by_method:Bool}, $METHOD, '') AS g_method,
  $GCLIENT AS g_client,
  intDiv(@ts_ns@, {bucket_ns:Int64}) AS bucket,
  count() AS total,
  countIf(@status@ >= 400 AND @status@ < 500) AS c4xx
FROM $FROM
WHERE Timestamp >= fromUnixTimestamp64Nano({base_since_ns:Int64})
  AND Timestamp < fromUnixTimestamp64Nano({until_ns:Int64})
  AND SpanAttributes['mcptap.hop'] != 'client'
GROUP BY instance, g_method, g_client, bucket
ORDER BY instance, g_method, g_client, bucket
";

/// 4xx answers in `[since, until)` per (key, window, client, method, cause).
pub const SQL_BREAKDOWN: &str = "
SELECT $INSTANCE AS instance,
  if({by_method:Bool}, $METHOD, '') AS g_method,
  if({by_client:Bool}, $CLIENT_KEY, '') AS g_client,
  intDiv(@ts_ns@, {bucket_ns:Int64}) AS bucket,
  @client_cols@,
  $METHOD AS method,
  multiIf(
    SpanAttributes['mcptap.hop'] = 'client_only', 'answered_by_proxy',
    @status@ = 404 AND @sid@ != '', 'session_not_found',
    @status@ = 400 AND (@rpc@ = '-32020' OR @rmethod@ IN ('mismatch', 'missing') OR @rname@ IN ('mismatch', 'missing')), 'header_mismatch',
    @status@ = 404 AND @rpc@ = '-32601', 'unknown_method',
    @status@ = 400 AND @era@ = 'legacy' AND @sid@ = '' AND @method@ != 'initialize', 'session_missing',
    'other') AS cause,
  count() AS n,
  min(@ts_ns@) AS first_ns, max(@ts_ns@) AS last_ns,
  groupArray(5)(TraceId) AS traces
FROM @from_clients@
WHERE Timestamp >= fromUnixTimestamp64Nano({since_ns:Int64})
  AND Timestamp < fromUnixTimestamp64Nano({until_ns:Int64})
  AND SpanAttributes['mcptap.hop'] != 'client'
  AND @status@ >= 400 AND @status@ < 500
GROUP BY instance, g_method, g_client, bucket, client_name, client_version, client_ua, client_address, method, cause
ORDER BY instance, g_method, g_client, bucket, n DESC
";

/// A row of [`SQL_TOTALS`].
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct TotalRow {
    pub instance: String,
    pub g_method: String,
    pub g_client: String,
    #[serde(deserialize_with = "de_i64")]
    pub bucket: i64,
    #[serde(deserialize_with = "de_u64")]
    pub total: u64,
    #[serde(deserialize_with = "de_u64")]
    pub c4xx: u64,
}

/// A row of [`SQL_BREAKDOWN`].
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct CauseRow {
    pub instance: String,
    pub g_method: String,
    pub g_client: String,
    #[serde(deserialize_with = "de_i64")]
    pub bucket: i64,
    #[serde(flatten)]
    pub client: ClientCols,
    pub method: String,
    pub cause: String,
    #[serde(deserialize_with = "de_u64")]
    pub n: u64,
    #[serde(flatten)]
    pub seen: Seen,
}

type Key = (String, String, String);

/// A detected incident: consecutive flagged windows of one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// (instance, method or '', client key or '').
    pub key: Key,
    /// Flagged windows: (bucket, total, 4xx, baseline rate or None when no baseline traffic).
    pub windows: Vec<(i64, u64, u64, Option<f64>)>,
}

/// Detects spikes in the totals (pure). Only buckets overlapping `[since, until)` are
/// candidates; earlier buckets form the baseline.
pub fn detect(totals: &[TotalRow], range: &Range, sc: &SpikeConfig) -> Vec<Incident> {
    let mut series: BTreeMap<Key, BTreeMap<i64, (u64, u64)>> = BTreeMap::new();
    for t in totals {
        let e = series
            .entry((t.instance.clone(), t.g_method.clone(), t.g_client.clone()))
            .or_default()
            .entry(t.bucket)
            .or_default();
        e.0 += t.total;
        e.1 += t.c4xx;
    }
    let bucket_ns = sc.bucket_ns.max(1);
    let first_bucket = range.since_ns.div_euclid(bucket_ns);
    let mut out = Vec::new();
    for (key, s) in series {
        let mut flagged: BTreeSet<i64> = BTreeSet::new();
        let mut windows = Vec::new();
        for (&b, &(total, c4xx)) in s.range(first_bucket..) {
            let lo = b - i64::from(sc.baseline_buckets);
            let (mut bt, mut b4) = (0u64, 0u64);
            for (&pb, &(pt, p4)) in s.range(lo..b) {
                if !flagged.contains(&pb) {
                    bt += pt;
                    b4 += p4;
                }
            }
            let rate = if total == 0 {
                0.0
            } else {
                c4xx as f64 / total as f64
            };
            let base = if bt == 0 {
                None
            } else {
                Some(b4 as f64 / bt as f64)
            };
            let spike = c4xx >= sc.min_count
                && rate >= sc.min_rate
                && base.is_none_or(|br| rate >= sc.factor * br && rate > br);
            if spike {
                flagged.insert(b);
                windows.push((b, total, c4xx, base));
            }
        }
        // Merge consecutive windows into incidents.
        let mut cur: Vec<(i64, u64, u64, Option<f64>)> = Vec::new();
        for w in windows {
            if cur.last().is_some_and(|l| l.0 + 1 != w.0) {
                out.push(Incident {
                    key: key.clone(),
                    windows: std::mem::take(&mut cur),
                });
            }
            cur.push(w);
        }
        if !cur.is_empty() {
            out.push(Incident {
                key: key.clone(),
                windows: cur,
            });
        }
    }
    out
}

/// Client, method and cause of 4xx answers, with their count and up to 3 sample traces.
type Attribution = Vec<((ClientCols, String, String), (u64, Vec<String>))>;

/// The 4xx answers of an incident's rows by cause, and attributed to client, method and cause
/// (most first).
fn attribute(rows: &[&CauseRow]) -> (BTreeMap<String, u64>, Attribution) {
    let mut by_cause: BTreeMap<String, u64> = BTreeMap::new();
    let mut attribution: BTreeMap<(ClientCols, String, String), (u64, Vec<String>)> =
        BTreeMap::new();
    for r in rows {
        *by_cause.entry(r.cause.clone()).or_default() += r.n;
        let a = attribution
            .entry((r.client.clone(), r.method.clone(), r.cause.clone()))
            .or_default();
        a.0 += r.n;
        for t in &r.seen.traces {
            if a.1.len() < 3 && !a.1.contains(t) {
                a.1.push(t.clone());
            }
        }
    }
    let mut attr: Vec<_> = attribution.into_iter().collect();
    attr.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    (by_cause, attr)
}

/// The cause rows of an incident (its key, its windows).
fn incident_rows<'a>(inc: &Incident, causes: &'a [CauseRow]) -> Vec<&'a CauseRow> {
    let buckets: BTreeSet<i64> = inc.windows.iter().map(|w| w.0).collect();
    causes
        .iter()
        .filter(|c| {
            (
                c.instance.as_str(),
                c.g_method.as_str(),
                c.g_client.as_str(),
            ) == (inc.key.0.as_str(), inc.key.1.as_str(), inc.key.2.as_str())
                && buckets.contains(&c.bucket)
        })
        .collect()
}

/// The first sample trace of each attribution entry, in order, de-duplicated, at most `n`.
fn attribution_samples(attr: &Attribution, n: usize) -> Vec<String> {
    let mut traces = Vec::new();
    for (_, (_, ts)) in attr {
        if let Some(t) = ts.first()
            && traces.len() < n
            && !traces.contains(t)
        {
            traces.push(t.clone());
        }
    }
    traces
}

/// The `details` of an incident's finding.
fn details(
    inc: &Incident,
    sc: &SpikeConfig,
    (peak, baseline): (f64, Option<f64>),
    by_cause: &BTreeMap<String, u64>,
    attr: &Attribution,
) -> serde_json::Value {
    let bucket_ns = sc.bucket_ns.max(1);
    serde_json::json!({
        "windows": inc.windows.iter().map(|w| serde_json::json!({
            "start": format_rfc3339_ns(w.0.saturating_mul(bucket_ns)),
            "end": format_rfc3339_ns(w.0.saturating_add(1).saturating_mul(bucket_ns)),
            "requests": w.1,
            "status_4xx": w.2,
            "rate": if w.1 == 0 { 0.0 } else { w.2 as f64 / w.1 as f64 },
            "baseline_rate": w.3,
        })).collect::<Vec<_>>(),
        "peak_rate": peak,
        "baseline_rate": baseline,
        "causes": by_cause,
        "attribution": attr.iter().map(|((cc, m, cause), (n, ts))| serde_json::json!({
            "client": cc.client(&[]),
            "method": m,
            "cause": cause,
            "count": n,
            "sample_trace_ids": ts,
        })).collect::<Vec<_>>(),
        "thresholds": {
            "window_seconds": bucket_ns as f64 / 1e9,
            "baseline_windows": sc.baseline_buckets,
            "min_count": sc.min_count,
            "min_rate": sc.min_rate,
            "factor": sc.factor,
        },
    })
}

/// Builds findings from incidents and the cause breakdown (pure).
pub fn findings(incidents: &[Incident], causes: &[CauseRow], cfg: &Config) -> Vec<Finding> {
    let sc = &cfg.spike;
    incidents
        .iter()
        .map(|inc| {
            let rows = incident_rows(inc, causes);
            let requests: u64 = inc.windows.iter().map(|w| w.1).sum();
            let c4xx: u64 = inc.windows.iter().map(|w| w.2).sum();
            let peak = inc
                .windows
                .iter()
                .map(|w| {
                    if w.1 == 0 {
                        0.0
                    } else {
                        w.2 as f64 / w.1 as f64
                    }
                })
                .fold(0.0_f64, f64::max);
            let (by_cause, attr) = attribute(&rows);
            let traces = attribution_samples(&attr, cfg.samples);
            let first = rows.iter().map(|r| r.seen.first_ns).min().unwrap_or(0);
            let last = rows.iter().map(|r| r.seen.last_ns).max().unwrap_or(0);
            let base_rates: Vec<f64> = inc.windows.iter().filter_map(|w| w.3).collect();
            let baseline = base_rates.first().copied();
            let mut cause_list: Vec<(&String, &u64)> = by_cause.iter().collect();
            cause_list.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let cause_text: Vec<String> =
                cause_list.iter().map(|(c, n)| format!("{c} {n}")).collect();
            let client_subject = rows
                .first()
                .filter(|_| !inc.key.2.is_empty())
                .map(|r| r.client.client(&[]));
            let mut c = counts(&[("requests", requests), ("status_4xx", c4xx)]);
            for (k, v) in &by_cause {
                if *v > 0 {
                    c.insert(k.clone(), *v);
                }
            }
            let severity = if peak >= sc.critical_rate {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let where_ = if inc.key.1.is_empty() {
                inc.key.0.clone()
            } else {
                format!("{} {}", inc.key.0, inc.key.1)
            };
            Finding {
                rule: RuleId::Status4xxSpike,
                severity,
                summary: format!(
                    "4xx spike on {where_}: {c4xx}/{requests} ({:.0}%) in {} window(s); causes: {}",
                    peak * 100.0,
                    inc.windows.len(),
                    cause_text.join(", ")
                ),
                subject: Subject {
                    client: client_subject,
                    instance: Some(inc.key.0.clone()),
                    method: Some(inc.key.1.clone()).filter(|m| !m.is_empty()),
                    ..Subject::default()
                },
                count: c4xx,
                counts: c,
                first_seen: format_rfc3339_ns(first),
                last_seen: format_rfc3339_ns(last),
                sample_trace_ids: traces,
                details: details(inc, sc, (peak, baseline), &by_cause, &attr),
            }
        })
        .collect()
}

/// Runs the rule.
///
/// # Errors
/// Invalid sensitivity, or a query failure.
pub async fn run(db: &Db, range: &Range, cfg: &Config) -> Result<Vec<Finding>> {
    let sc = &cfg.spike;
    if sc.bucket_ns <= 0 {
        bail!("spike window must be positive");
    }
    let base_since = range
        .since_ns
        .div_euclid(sc.bucket_ns)
        .saturating_sub(i64::from(sc.baseline_buckets))
        .saturating_mul(sc.bucket_ns);
    let (g_client, from) = if sc.by_client {
        (CLIENT_KEY, "@from_clients@")
    } else {
        ("''", "@from@")
    };
    let totals_sql = SQL_TOTALS
        .replace("$INSTANCE", INSTANCE)
        .replace("$METHOD", METHOD_LABEL)
        .replace("$GCLIENT", g_client)
        .replace("$FROM", from);
    // The totals read from `base_since` (their SQL has no `since_ns`), so the session-mint
    // search starts `session_lookback` before that.
    let q = super::query(db, &totals_sql, base_since, range.until_ns, cfg)?
        .param("by_method", sc.by_method)
        .param("by_client", sc.by_client)
        .param("bucket_ns", sc.bucket_ns)
        .param("base_since_ns", base_since);
    let totals: Vec<TotalRow> = db.fetch(q).await?;
    let incidents = detect(&totals, range, sc);
    if incidents.is_empty() {
        return Ok(Vec::new());
    }
    let sql = SQL_BREAKDOWN
        .replace("$INSTANCE", INSTANCE)
        .replace("$METHOD", METHOD_LABEL)
        .replace("$CLIENT_KEY", CLIENT_KEY);
    let q = super::query(db, &sql, range.since_ns, range.until_ns, cfg)?
        .param("by_method", sc.by_method)
        .param("by_client", sc.by_client)
        .param("bucket_ns", sc.bucket_ns);
    let causes: Vec<CauseRow> = db.fetch(q).await?;
    Ok(findings(&incidents, &causes, cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(b: i64, total: u64, c4xx: u64) -> TotalRow {
        TotalRow {
            instance: "i".into(),
            g_method: String::new(),
            g_client: String::new(),
            bucket: b,
            total,
            c4xx,
        }
    }

    #[test]
    fn flags_only_windows_above_baseline() {
        let sc = SpikeConfig {
            bucket_ns: 1,
            ..SpikeConfig::default()
        };
        let range = Range {
            since_ns: 10,
            until_ns: 20,
        };
        // Baseline 1% (buckets 0..10), spike at 12-13 (20%), normal at 14, small at 16.
        let mut rows: Vec<TotalRow> = (0..10).map(|b| t(b, 100, 1)).collect();
        rows.extend([
            t(10, 100, 1),
            t(11, 100, 2),
            t(12, 100, 20),
            t(13, 100, 30),
            t(14, 100, 1),
            t(16, 10, 4),
        ]);
        let inc = detect(&rows, &range, &sc);
        assert_eq!(inc.len(), 1);
        assert_eq!(
            inc[0].windows.iter().map(|w| w.0).collect::<Vec<_>>(),
            vec![12, 13]
        );
        // The baseline of 13 leaves out the flagged 12.
        let b13 = inc[0].windows[1].3.unwrap_or(-1.0);
        assert!((b13 - 13.0 / 1200.0).abs() < 1e-9, "{b13}");
    }

    #[test]
    fn no_baseline_means_threshold_only() {
        let sc = SpikeConfig {
            bucket_ns: 1,
            ..SpikeConfig::default()
        };
        let range = Range {
            since_ns: 0,
            until_ns: 5,
        };
        assert_eq!(detect(&[t(0, 10, 5)], &range, &sc).len(), 1);
        assert!(detect(&[t(0, 10, 4)], &range, &sc).is_empty());
        assert!(detect(&[t(0, 1000, 10)], &range, &sc).is_empty()); // 1% < min_rate
        // A constant high rate is no spike once there is a baseline.
        let rows: Vec<TotalRow> = (0..5).map(|b| t(b, 100, 30)).collect();
        let range = Range {
            since_ns: 4,
            until_ns: 5,
        };
        assert!(detect(&rows, &range, &sc).is_empty());
    }
}
