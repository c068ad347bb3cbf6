//! Per-rule time series: the rule run over each step of a range.
//!
//! A point is the rule run alone over `[t, t + step)` (the last step is cut at `until`):
//! `findings` (number of findings), `requests` (sum of their counts) and `by_severity`. A rule
//! that looks outside its range keeps doing so per step (`status_4xx_spike` its trailing
//! baseline, `cross_instance_handle_failure` its mint lookback).

use crate::clickhouse::Db;
use crate::config::{Config, Range};
use crate::engine::run_rule;
use crate::finding::RuleId;
use crate::timeutil::format_rfc3339_ns;
use serde_json::{Value, json};

/// The default step for a range: about 30 points, rounded up to a whole minute (at least 1 m).
pub fn default_step_ns(range: &Range) -> i64 {
    let minute = 60 * crate::timeutil::NS_PER_SEC;
    let raw = (range.until_ns - range.since_ns) / 30;
    ((raw + minute - 1) / minute).max(1) * minute
}

/// Number of points of `range` at `step_ns` (> 0).
pub fn points(range: &Range, step_ns: i64) -> i64 {
    let len = range.until_ns - range.since_ns;
    (len + step_ns - 1) / step_ns
}

/// Runs `rule` over every step of `range` (sequentially) into the series document.
pub async fn compute(db: &Db, cfg: &Config, rule: RuleId, range: Range, step_ns: i64) -> Value {
    let mut pts = Vec::new();
    let mut t = range.since_ns;
    let mut errors = 0u64;
    while t < range.until_ns {
        let end = t.saturating_add(step_ns).min(range.until_ns);
        let r = Range {
            since_ns: t,
            until_ns: end,
        };
        match run_rule(db, &r, cfg, rule).await {
            Ok(f) => {
                let sev = |s: &str| f.iter().filter(|x| x.severity.as_str() == s).count();
                pts.push(json!({
                    "t": format_rfc3339_ns(t),
                    "t_ns": t,
                    "findings": f.len(),
                    "requests": f.iter().map(|x| x.count).sum::<u64>(),
                    "by_severity": {"critical": sev("critical"), "warning": sev("warning"), "info": sev("info")},
                }));
            }
            Err(e) => {
                errors += 1;
                pts.push(json!({"t": format_rfc3339_ns(t), "t_ns": t, "error": format!("{e:#}")}));
            }
        }
        t = end;
    }
    json!({
        "rule": rule.as_str(),
        "range": {"since": format_rfc3339_ns(range.since_ns), "until": format_rfc3339_ns(range.until_ns),
                  "since_ns": range.since_ns, "until_ns": range.until_ns},
        "step_seconds": step_ns as f64 / 1e9,
        "errors": errors,
        "points": pts,
    })
}
