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
    let minute = (60 * crate::timeutil::NS_PER_SEC).unsigned_abs();
    let raw = (range.len_ns() / 30).unsigned_abs();
    i64::try_from(raw.div_ceil(minute).max(1) * minute).unwrap_or(i64::MAX)
}

/// Number of points of `range` at `step_ns` (the last one may be short); 0 for `step_ns <= 0`.
pub fn points(range: &Range, step_ns: i64) -> u64 {
    if step_ns <= 0 {
        return 0;
    }
    range
        .len_ns()
        .unsigned_abs()
        .div_ceil(step_ns.unsigned_abs())
}

/// Runs `rule` over every step of `range` (sequentially) into the series document, at most
/// `max_points` steps (the API refuses longer series before; this bounds the loop whatever the
/// caller checked).
pub async fn compute(
    db: &Db,
    cfg: &Config,
    rule: RuleId,
    range: Range,
    step_ns: i64,
    max_points: u64,
) -> Value {
    let mut pts = Vec::new();
    let mut t = range.since_ns;
    let mut errors = 0u64;
    let step_ns = step_ns.max(1);
    while t < range.until_ns && (pts.len() as u64) < max_points {
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
